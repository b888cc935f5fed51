//! Grant tables, v1, both sides.
//!
//! - The granting side, [`GrantTable`]: this domain's grant table is its own
//!   page at `xen_abi::layout::GRANT_TABLE_PFN` (512 entries `{flags u16,
//!   domid u16, frame u32}`), which the hypervisor reads and updates with
//!   compare-and-swap (setting `GTF_reading`/`GTF_writing` while the page is
//!   mapped or copied). So it is only touched through atomics
//!   ([`GrantEntry`]). To grant: domid and frame first, then the flags with
//!   Release ordering. To revoke: compare-and-swap the flags to 0 from a
//!   value without reading/writing; if the hypervisor has set either, the
//!   page is still in use and revocation fails ([`GrantError::Busy`]) rather
//!   than pretend (Xen's `gnttab_end_foreign_access_ref`).
//! - The using side: `grant_table_op` (20) wrappers, [`map`], [`unmap`],
//!   [`copy`] and their batches. Each passes an array of Xen-layout blocks
//!   on our stack (at most [`MAX_BATCH`] per call; batches are split), which
//!   the hypervisor reads and writes back, each element with its own status.
//!   A successful map yields a [`Mapping`]: the page the hypervisor mapped
//!   into our grant window, usable as a ring page through
//!   [`Mapping::page`] until [`unmap`] consumes it.
//!
//! Frontends treat the backend as untrusted: grant only zeroed pages of
//! their own ([`crate::page::Page`]), and revoke on disconnect.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use ring_protocol::{PageBuffer, SharedPage};
use xen_abi::grant_table::{
    self as abi, copy as copy_block, entry_flags, map_flags, map_grant_ref as map_block, status, unmap_grant_ref as unmap_block,
    ENTRIES_PER_PAGE, RESERVED_CONSOLE, RESERVED_XENSTORE,
};
use xen_abi::hypercall::GRANT_TABLE_OP;
use xen_abi::layout::{GRANT_WINDOW_BASE, GRANT_WINDOW_PAGES, PAGE_SIZE};
use xen_abi::DomId;

use crate::hypercall::{check, Errno};
use crate::machine;

/// Most elements in one `grant_table_op` call.
pub const MAX_BATCH: usize = 64;

/// A grant reference: an index into a domain's grant table.
pub type GrantRef = u32;

/// One v1 grant entry as atomics (8 bytes, Xen's `grant_entry_v1`).
#[repr(C)]
pub struct GrantEntry {
    flags: AtomicU16,
    domid: AtomicU16,
    frame: AtomicU32,
}

const _: () = assert!(core::mem::size_of::<GrantEntry>() == abi::ENTRY_SIZE);
const _: () = assert!(core::mem::size_of::<[GrantEntry; ENTRIES_PER_PAGE]>() == PAGE_SIZE as usize);

impl GrantEntry {
    /// An invalid (all-zero) entry.
    pub const fn new() -> GrantEntry {
        GrantEntry { flags: AtomicU16::new(0), domid: AtomicU16::new(0), frame: AtomicU32::new(0) }
    }

    /// The flags now (`GTF_*`).
    pub fn flags(&self) -> u16 {
        self.flags.load(Ordering::Acquire)
    }

    /// The domain the entry names.
    pub fn domid(&self) -> u16 {
        self.domid.load(Ordering::Relaxed)
    }

    /// The frame the entry names.
    pub fn frame(&self) -> u32 {
        self.frame.load(Ordering::Relaxed)
    }

    /// Sets `bits` in the flags, as the hypervisor does when it maps the
    /// entry's page (for tests of revocation).
    #[cfg(test)]
    pub(crate) fn hypervisor_sets(&self, bits: u16) {
        self.flags.fetch_or(bits, Ordering::SeqCst);
    }
}

impl Default for GrantEntry {
    fn default() -> Self {
        GrantEntry::new()
    }
}

/// Why a grant-table entry could not be written or revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// The ref is past the table.
    BadRef,
    /// Refs 0 (console) and 1 (store) belong to the domain builder.
    Reserved,
    /// The entry is in use (its flags are shown); revoke it first.
    InUse(u16),
    /// The frame does not fit the entry's 32-bit field.
    FrameTooLarge,
    /// The granted page is mapped or being copied (`GTF_reading` or
    /// `GTF_writing`, flags shown): it cannot be revoked yet.
    Busy(u16),
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantError::BadRef => f.write_str("no such grant ref"),
            GrantError::Reserved => f.write_str("grant ref reserved for the console or store"),
            GrantError::InUse(flags) => write!(f, "grant ref in use (flags {flags:#x})"),
            GrantError::FrameTooLarge => f.write_str("frame too large for a v1 entry"),
            GrantError::Busy(flags) => write!(f, "busy: still mapped or copied (flags {flags:#x})"),
        }
    }
}

/// Compare-and-swap attempts [`GrantTable::end_access`] makes while the
/// hypervisor keeps changing the flags.
const REVOKE_ATTEMPTS: usize = 64;

/// A domain's grant table, as the granting side writes it.
#[derive(Clone, Copy)]
pub struct GrantTable<'a> {
    entries: &'a [GrantEntry],
}

impl GrantTable<'static> {
    /// This domain's grant table page; `None` before the runtime read the
    /// start-info page (and always on the host).
    pub fn this_domain() -> Option<GrantTable<'static>> {
        let info = crate::start::start_info()?;
        machine::grant_entries(info.nr_pages).map(|entries| GrantTable { entries })
    }
}

impl<'a> GrantTable<'a> {
    /// A table over `entries` (tests; a domain uses [`GrantTable::this_domain`]).
    pub fn over(entries: &'a [GrantEntry]) -> GrantTable<'a> {
        GrantTable { entries }
    }

    fn entry(&self, reference: GrantRef) -> Result<&'a GrantEntry, GrantError> {
        self.entries.get(reference as usize).ok_or(GrantError::BadRef)
    }

    /// The entry `reference`, to inspect.
    pub fn get(&self, reference: GrantRef) -> Option<&'a GrantEntry> {
        self.entries.get(reference as usize)
    }

    /// Lets `domid` map or copy our pseudo-physical frame `pfn` (read-only
    /// if `readonly`) through `reference`: domid and frame first, then the
    /// flags (Release), claimed by compare-and-swap from 0 so an entry in
    /// use is never overwritten.
    ///
    /// Granting write access to memory Rust code uses as ordinary data lets
    /// the peer change it behind the compiler's back: grant pages that are
    /// only accessed atomically ([`grant_page`](Self::grant_page)).
    pub fn grant_access(&self, reference: GrantRef, domid: u16, pfn: u64, readonly: bool) -> Result<(), GrantError> {
        if reference == RESERVED_CONSOLE || reference == RESERVED_XENSTORE {
            return Err(GrantError::Reserved);
        }
        let entry = self.entry(reference)?;
        let frame = u32::try_from(pfn).map_err(|_| GrantError::FrameTooLarge)?;
        let current = entry.flags.load(Ordering::Acquire);
        if current != 0 {
            return Err(GrantError::InUse(current));
        }
        // Ordering: Relaxed; published by the Release on the flags below
        // (Xen's wmb() between the fields and the flags).
        entry.domid.store(domid, Ordering::Relaxed);
        entry.frame.store(frame, Ordering::Relaxed);
        let flags = entry_flags::PERMIT_ACCESS | if readonly { entry_flags::READONLY } else { 0 };
        entry.flags.compare_exchange(0, flags, Ordering::Release, Ordering::Acquire).map(drop).map_err(GrantError::InUse)
    }

    /// [`grant_access`](Self::grant_access) for one of our pages.
    pub fn grant_page(&self, reference: GrantRef, domid: u16, page: &PageBuffer, readonly: bool) -> Result<(), GrantError> {
        let pfn = crate::page::pfn_of(page).ok_or(GrantError::FrameTooLarge)?;
        self.grant_access(reference, domid, pfn, readonly)
    }

    /// Revokes `reference`: flags to 0 by compare-and-swap from a value
    /// without `GTF_reading`/`GTF_writing`. Fails with
    /// [`GrantError::Busy`] while the hypervisor has them set (the page is
    /// mapped or being copied): then the page must not be reused yet.
    pub fn end_access(&self, reference: GrantRef) -> Result<(), GrantError> {
        let entry = self.entry(reference)?;
        let in_use = entry_flags::READING | entry_flags::WRITING;
        let mut flags = entry.flags.load(Ordering::Acquire);
        for _ in 0..REVOKE_ATTEMPTS {
            if flags & in_use != 0 {
                return Err(GrantError::Busy(flags));
            }
            // Ordering: AcqRel; the hypervisor's later use of this entry sees
            // it revoked, and we see its last update if the swap fails.
            match entry.flags.compare_exchange(flags, 0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(now) => flags = now,
            }
        }
        Err(GrantError::Busy(flags))
    }
}

/// A `GNTST_*` status of one element of a `grant_table_op` batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantStatus(pub i16);

impl GrantStatus {
    /// `GNTST_okay`.
    pub const OKAY: GrantStatus = GrantStatus(status::OKAY);

    /// Whether it is `GNTST_okay`.
    pub fn is_okay(self) -> bool {
        self.0 == status::OKAY
    }

    /// Xen's name without the prefix (`"permission_denied"`), `"?"` if
    /// unknown.
    pub fn name(self) -> &'static str {
        match self.0 {
            status::OKAY => "okay",
            status::GENERAL_ERROR => "general_error",
            status::BAD_DOMAIN => "bad_domain",
            status::BAD_GNTREF => "bad_gntref",
            status::BAD_HANDLE => "bad_handle",
            status::BAD_VIRT_ADDR => "bad_virt_addr",
            status::BAD_DEV_ADDR => "bad_dev_addr",
            status::NO_DEVICE_SPACE => "no_device_space",
            status::PERMISSION_DENIED => "permission_denied",
            status::BAD_PAGE => "bad_page",
            status::BAD_COPY_ARG => "bad_copy_arg",
            status::ADDRESS_TOO_BIG => "address_too_big",
            status::EAGAIN => "eagain",
            status::NO_SPACE => "no_space",
            _ => "?",
        }
    }
}

impl fmt::Display for GrantStatus {
    /// `GNTST_permission_denied`, or `GNTST_?(-99)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "?" => write!(f, "GNTST_?({})", self.0),
            name => write!(f, "GNTST_{name}"),
        }
    }
}

/// Why a single map, unmap or copy failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The call itself was refused (bad pointer, count or sub-operation).
    Call(Errno),
    /// The call was processed; the element failed with this status.
    Status(GrantStatus),
    /// A local page of the request is not a frame of our RAM.
    NotOurPage,
    /// The hypervisor answered nonsense (a mapping outside the grant window).
    BadAnswer,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Call(errno) => write!(f, "{errno}"),
            Failure::Status(status) => write!(f, "{status}"),
            Failure::NotOurPage => f.write_str("not a page of our RAM"),
            Failure::BadAnswer => f.write_str("the hypervisor's answer is outside the grant window"),
        }
    }
}

/// A foreign page mapped into our grant window. Made only from a successful
/// `map_grant_ref`; [`unmap`] consumes it. Dropping it leaves the page
/// mapped (and the granter unable to revoke): unmap instead.
#[derive(Debug, PartialEq, Eq)]
pub struct Mapping {
    address: u64,
    handle: u32,
    bus_address: u64,
    granter: u16,
    reference: GrantRef,
    readonly: bool,
}

impl Mapping {
    /// Where the page is mapped (a page of the grant window).
    pub fn address(&self) -> u64 {
        self.address
    }

    /// The handle to unmap it with.
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// The bus address for DMA (`GNTMAP_device_map`), 0 otherwise.
    pub fn bus_address(&self) -> u64 {
        self.bus_address
    }

    /// The domain that granted it.
    pub fn granter(&self) -> u16 {
        self.granter
    }

    /// The granter's ref.
    pub fn reference(&self) -> GrantRef {
        self.reference
    }

    /// Whether it is mapped read-only.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// The mapped page as a shared ring page, for as long as the mapping is
    /// borrowed; `None` for a read-only mapping (a ring page is written)
    /// and on the host.
    pub fn page(&self) -> Option<SharedPage<'_>> {
        if self.readonly {
            return None;
        }
        machine::foreign_page(self)
    }
}

/// Whether `address` is a page of the grant window.
#[inline]
pub fn in_grant_window(address: u64) -> bool {
    address % PAGE_SIZE == 0 && (GRANT_WINDOW_BASE..GRANT_WINDOW_BASE + GRANT_WINDOW_PAGES * PAGE_SIZE).contains(&address)
}

/// One element of a map batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSpec {
    /// The granting domain.
    pub granter: u16,
    /// Its ref.
    pub reference: GrantRef,
    /// Map read-only (`GNTMAP_readonly`).
    pub readonly: bool,
    /// Also ask for a bus address (`GNTMAP_device_map`).
    pub device: bool,
}

use xen_abi::bytes::put;

fn get<const N: usize>(block: &[u8], at: usize) -> [u8; N] {
    xen_abi::bytes::field(block, at).unwrap_or([0; N])
}

/// Encodes a `gnttab_map_grant_ref` (32 bytes).
pub fn encode_map(spec: &MapSpec, block: &mut [u8]) {
    block.fill(0);
    let flags = map_flags::HOST_MAP
        | if spec.readonly { map_flags::READONLY } else { 0 }
        | if spec.device { map_flags::DEVICE_MAP } else { 0 };
    put(block, map_block::FLAGS, &flags.to_le_bytes());
    put(block, map_block::REF, &spec.reference.to_le_bytes());
    put(block, map_block::DOM, &spec.granter.to_le_bytes());
}

/// Decodes a `gnttab_map_grant_ref` the hypervisor answered.
pub fn decode_map(spec: &MapSpec, block: &[u8]) -> Result<Mapping, Failure> {
    let status = GrantStatus(i16::from_le_bytes(get(block, map_block::STATUS)));
    if !status.is_okay() {
        return Err(Failure::Status(status));
    }
    let address = u64::from_le_bytes(get(block, map_block::HOST_ADDR));
    if !in_grant_window(address) {
        return Err(Failure::BadAnswer);
    }
    Ok(Mapping {
        address,
        handle: u32::from_le_bytes(get(block, map_block::HANDLE)),
        bus_address: u64::from_le_bytes(get(block, map_block::DEV_BUS_ADDR)),
        granter: spec.granter,
        reference: spec.reference,
        readonly: spec.readonly,
    })
}

/// One `grant_table_op` over `blocks` (count = `blocks.len() / size`).
fn op(sub: u64, blocks: &mut [u8], size: usize) -> Result<(), Errno> {
    let count = (blocks.len() / size) as u64;
    check(machine::hypercall_buffer(GRANT_TABLE_OP, sub, blocks, count)).map(drop)
}

/// A map batch whose call was refused.
#[derive(Debug)]
pub struct MapBatchRefused {
    /// What earlier calls of the batch mapped (to unmap).
    pub mapped: Vec<Mapping>,
    /// Why the call was refused.
    pub errno: Errno,
}

/// `GNTTABOP_map_grant_ref` for each of `specs` (in calls of at most
/// [`MAX_BATCH`]): one result per spec. A refused call ends the batch with
/// its errno; mappings made by earlier calls are then returned with it so
/// they can be unmapped.
pub fn map_batch(specs: &[MapSpec]) -> Result<Vec<Result<Mapping, Failure>>, MapBatchRefused> {
    let mut results = Vec::with_capacity(specs.len());
    let mut blocks = [0u8; MAX_BATCH * map_block::SIZE];
    for chunk in specs.chunks(MAX_BATCH) {
        let used = &mut blocks[..chunk.len() * map_block::SIZE];
        for (spec, block) in chunk.iter().zip(used.chunks_mut(map_block::SIZE)) {
            encode_map(spec, block);
        }
        if let Err(errno) = op(abi::MAP_GRANT_REF, used, map_block::SIZE) {
            let mapped = results.into_iter().filter_map(Result::ok).collect();
            return Err(MapBatchRefused { mapped, errno });
        }
        for (spec, block) in chunk.iter().zip(used.chunks(map_block::SIZE)) {
            results.push(decode_map(spec, block));
        }
    }
    Ok(results)
}

/// Maps `granter`'s `reference` into our grant window (`GNTMAP_host_map`,
/// read-only if `readonly`).
pub fn map(granter: u16, reference: GrantRef, readonly: bool) -> Result<Mapping, Failure> {
    let spec = MapSpec { granter, reference, readonly, device: false };
    let mut block = [0u8; map_block::SIZE];
    encode_map(&spec, &mut block);
    op(abi::MAP_GRANT_REF, &mut block, map_block::SIZE).map_err(Failure::Call)?;
    decode_map(&spec, &block)
}

fn encode_unmap(mapping: &Mapping, block: &mut [u8]) {
    block.fill(0);
    put(block, unmap_block::HOST_ADDR, &mapping.address.to_le_bytes());
    put(block, unmap_block::DEV_BUS_ADDR, &mapping.bus_address.to_le_bytes());
    put(block, unmap_block::HANDLE, &mapping.handle.to_le_bytes());
}

fn unmap_status(block: &[u8]) -> GrantStatus {
    GrantStatus(i16::from_le_bytes(get(block, unmap_block::STATUS)))
}

/// `GNTTABOP_unmap_grant_ref`. On failure the mapping is handed back.
pub fn unmap(mapping: Mapping) -> Result<(), (Mapping, Failure)> {
    let mut block = [0u8; unmap_block::SIZE];
    encode_unmap(&mapping, &mut block);
    if let Err(errno) = op(abi::UNMAP_GRANT_REF, &mut block, unmap_block::SIZE) {
        return Err((mapping, Failure::Call(errno)));
    }
    match unmap_status(&block) {
        status if status.is_okay() => Ok(()),
        status => Err((mapping, Failure::Status(status))),
    }
}

/// Unmaps each of `mappings` (in calls of at most [`MAX_BATCH`]); returns
/// those that are still mapped, each with why.
pub fn unmap_batch(mappings: Vec<Mapping>) -> Vec<(Mapping, Failure)> {
    let mut kept = Vec::new();
    let mut blocks = [0u8; MAX_BATCH * unmap_block::SIZE];
    let mut pending = mappings.into_iter().peekable();
    while pending.peek().is_some() {
        let chunk: Vec<Mapping> = pending.by_ref().take(MAX_BATCH).collect();
        let used = &mut blocks[..chunk.len() * unmap_block::SIZE];
        for (mapping, block) in chunk.iter().zip(used.chunks_mut(unmap_block::SIZE)) {
            encode_unmap(mapping, block);
        }
        match op(abi::UNMAP_GRANT_REF, used, unmap_block::SIZE) {
            Err(errno) => kept.extend(chunk.into_iter().map(|mapping| (mapping, Failure::Call(errno)))),
            Ok(()) => {
                let statuses: Vec<GrantStatus> = used.chunks(unmap_block::SIZE).map(unmap_status).collect();
                for (mapping, status) in chunk.into_iter().zip(statuses) {
                    if !status.is_okay() {
                        kept.push((mapping, Failure::Status(status)));
                    }
                }
            }
        }
    }
    kept
}

/// One side of a grant copy.
#[derive(Clone, Copy)]
pub enum CopySide<'p> {
    /// Bytes of a page another domain (or we) granted: `domid`'s `reference`.
    Granted {
        /// The granting domain.
        domid: u16,
        /// Its ref.
        reference: GrantRef,
        /// Byte offset in the page.
        offset: u16,
    },
    /// Bytes of one of our own pages (passed as its pseudo-physical frame,
    /// `DOMID_SELF`). The hypervisor may write it: it is made of atomics.
    Local {
        /// The page.
        page: &'p PageBuffer,
        /// Byte offset in the page.
        offset: u16,
    },
}

/// One element of a copy batch.
#[derive(Clone, Copy)]
pub struct CopySpec<'p> {
    /// Where from.
    pub source: CopySide<'p>,
    /// Where to.
    pub dest: CopySide<'p>,
    /// Bytes.
    pub length: u16,
}

/// A copy side as the hypervisor sees it: `(ref or gmfn, domid, offset,
/// is a ref)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyPointer {
    /// `u.ref` (when `is_ref`) or `u.gmfn`.
    pub ref_or_gmfn: u64,
    /// `domid`.
    pub domid: u16,
    /// `offset`.
    pub offset: u16,
    /// Whether it names a grant ref (`GNTCOPY_*_gref`).
    pub is_ref: bool,
}

fn pointer(side: &CopySide<'_>) -> Result<CopyPointer, Failure> {
    match *side {
        CopySide::Granted { domid, reference, offset } => Ok(CopyPointer { ref_or_gmfn: u64::from(reference), domid, offset, is_ref: true }),
        CopySide::Local { page, offset } => {
            let pfn = crate::page::pfn_of(page).ok_or(Failure::NotOurPage)?;
            Ok(CopyPointer { ref_or_gmfn: pfn, domid: DomId::SELF.0, offset, is_ref: false })
        }
    }
}

/// Encodes a `gnttab_copy` (40 bytes).
pub fn encode_copy(source: &CopyPointer, dest: &CopyPointer, length: u16, block: &mut [u8]) {
    block.fill(0);
    for (base, side) in [(copy_block::SOURCE, source), (copy_block::DEST, dest)] {
        if side.is_ref {
            put(block, base + copy_block::POINTER_REF_OR_GMFN, &(side.ref_or_gmfn as u32).to_le_bytes());
        } else {
            put(block, base + copy_block::POINTER_REF_OR_GMFN, &side.ref_or_gmfn.to_le_bytes());
        }
        put(block, base + copy_block::POINTER_DOMID, &side.domid.to_le_bytes());
        put(block, base + copy_block::POINTER_OFFSET, &side.offset.to_le_bytes());
    }
    let flags = if source.is_ref { copy_block::SOURCE_GREF } else { 0 } | if dest.is_ref { copy_block::DEST_GREF } else { 0 };
    put(block, copy_block::LEN, &length.to_le_bytes());
    put(block, copy_block::FLAGS, &flags.to_le_bytes());
}

fn copy_status(block: &[u8]) -> GrantStatus {
    GrantStatus(i16::from_le_bytes(get(block, copy_block::STATUS)))
}

/// `GNTTABOP_copy` for each of `specs` (in calls of at most [`MAX_BATCH`]):
/// one result per spec; a refused call ends the batch with its errno.
pub fn copy_batch(specs: &[CopySpec<'_>]) -> Result<Vec<Result<(), Failure>>, Errno> {
    let mut results = Vec::with_capacity(specs.len());
    let mut blocks = [0u8; MAX_BATCH * copy_block::SIZE];
    for chunk in specs.chunks(MAX_BATCH) {
        // Elements whose local page is not ours are not sent.
        let mut sent = Vec::with_capacity(chunk.len());
        let mut count = 0;
        for spec in chunk {
            match (pointer(&spec.source), pointer(&spec.dest)) {
                (Ok(source), Ok(dest)) => {
                    encode_copy(&source, &dest, spec.length, &mut blocks[count * copy_block::SIZE..(count + 1) * copy_block::SIZE]);
                    sent.push(Some(count));
                    count += 1;
                }
                (Err(_), _) | (_, Err(_)) => sent.push(None),
            }
        }
        let used = &mut blocks[..count * copy_block::SIZE];
        if count > 0 {
            op(abi::COPY, used, copy_block::SIZE)?;
        }
        for slot in sent {
            results.push(match slot {
                Some(index) => match copy_status(&used[index * copy_block::SIZE..]) {
                    status if status.is_okay() => Ok(()),
                    status => Err(Failure::Status(status)),
                },
                None => Err(Failure::NotOurPage),
            });
        }
    }
    Ok(results)
}

/// One `GNTTABOP_copy`.
pub fn copy(spec: &CopySpec<'_>) -> Result<(), Failure> {
    let source = pointer(&spec.source)?;
    let dest = pointer(&spec.dest)?;
    let mut block = [0u8; copy_block::SIZE];
    encode_copy(&source, &dest, spec.length, &mut block);
    op(abi::COPY, &mut block, copy_block::SIZE).map_err(Failure::Call)?;
    match copy_status(&block) {
        status if status.is_okay() => Ok(()),
        status => Err(Failure::Status(status)),
    }
}

#[cfg(test)]
mod tests;
