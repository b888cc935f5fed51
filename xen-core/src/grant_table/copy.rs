//! `GNTTABOP_copy`: copy bytes between two frames, each named either by a
//! grant ref (of any domain that granted it to the caller) or by the
//! caller's own frame number. Both ends are checked and pinned for the
//! copy (reading on the source, writing on the destination), the hypercall
//! layer copies, then both pins are released.

use xen_abi::grant_table::{copy as layout, status};
use xen_abi::layout::PAGE_SIZE;
use xen_abi::DomId;

use super::{pin, release, GrantRef, GrantStatus, Granter, Pin};
use crate::frame_allocator::Frame;

/// What one end of a copy names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyTarget {
    /// A grant ref of the pointer's domain (`GNTCOPY_*_gref` set).
    Reference(GrantRef),
    /// A pseudo-physical frame of the caller itself.
    OwnFrame(u64),
}

/// One end of a copy request (`struct gnttab_copy_ptr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyPointer {
    /// Ref or own frame.
    pub target: CopyTarget,
    /// The granting domain, or `DOMID_SELF`.
    pub domid: DomId,
    /// Byte offset in the frame.
    pub offset: u16,
}

/// A decoded `struct gnttab_copy`, not yet checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyRequest {
    /// Where the bytes come from.
    pub source: CopyPointer,
    /// Where they go.
    pub dest: CopyPointer,
    /// Bytes to copy.
    pub length: u16,
    /// `GNTCOPY_*` flags as given.
    pub flags: u16,
}

fn field<const N: usize>(block: &[u8; layout::SIZE], offset: usize) -> [u8; N] {
    let mut bytes = [0u8; N];
    bytes.copy_from_slice(&block[offset..offset + N]);
    bytes
}

fn pointer(block: &[u8; layout::SIZE], base: usize, by_reference: bool) -> CopyPointer {
    let raw = u64::from_le_bytes(field(block, base + layout::POINTER_REF_OR_GMFN));
    CopyPointer {
        target: if by_reference { CopyTarget::Reference(GrantRef(raw as u32)) } else { CopyTarget::OwnFrame(raw) },
        domid: DomId(u16::from_le_bytes(field(block, base + layout::POINTER_DOMID))),
        offset: u16::from_le_bytes(field(block, base + layout::POINTER_OFFSET)),
    }
}

impl CopyRequest {
    /// Decodes the 40-byte block the caller handed in (copied in once).
    pub fn decode(block: &[u8; layout::SIZE]) -> CopyRequest {
        let flags = u16::from_le_bytes(field(block, layout::FLAGS));
        CopyRequest {
            source: pointer(block, layout::SOURCE, flags & layout::SOURCE_GREF != 0),
            dest: pointer(block, layout::DEST, flags & layout::DEST_GREF != 0),
            length: u16::from_le_bytes(field(block, layout::LEN)),
            flags,
        }
    }

    /// The shape checks (`GNTST_bad_copy_arg`): known flags only, a length
    /// of 1 to a page, both ranges inside their page.
    pub fn check_shape(&self) -> Result<(), GrantStatus> {
        let length = u64::from(self.length);
        let fits = |offset: u16| u64::from(offset) + length <= PAGE_SIZE;
        if self.flags & !(layout::SOURCE_GREF | layout::DEST_GREF) != 0 || length == 0 || !fits(self.source.offset) || !fits(self.dest.offset) {
            return Err(status::BAD_COPY_ARG);
        }
        Ok(())
    }
}

/// How the copy code reaches the domains involved: the hypercall layer
/// implements it over the domains it has locked. `None` means no such
/// domain (or not locked for this call: `GNTST_bad_domain`).
pub trait GranterAccess {
    /// Domain `id`'s grant state and memory map.
    fn granter(&mut self, id: DomId) -> Option<Granter<'_>>;
}

/// One resolved end of a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyEnd {
    /// The machine frame.
    pub frame: Frame,
    /// Byte offset in it.
    pub offset: u16,
}

/// A checked copy, its granted ends pinned: copy `length` bytes from
/// `source` to `dest` (they may be the same frame: copy as `memmove`), then
/// hand it to [`end_copy`].
#[derive(Debug)]
#[must_use = "a copy plan holds pins: pass it to end_copy"]
pub struct CopyPlan {
    /// Where the bytes come from.
    pub source: CopyEnd,
    /// Where they go.
    pub dest: CopyEnd,
    /// Bytes to copy (1 to a page).
    pub length: u16,
    pins: [Option<Pin>; 2],
}

fn resolve(access: &mut impl GranterAccess, caller: DomId, pointer: &CopyPointer, writable: bool) -> Result<(CopyEnd, Option<Pin>), GrantStatus> {
    let domid = if pointer.domid == DomId::SELF { caller } else { pointer.domid };
    match pointer.target {
        CopyTarget::OwnFrame(gmfn) => {
            if domid != caller {
                return Err(status::PERMISSION_DENIED);
            }
            let own = access.granter(caller).ok_or(status::BAD_DOMAIN)?;
            let frame = usize::try_from(gmfn).ok().and_then(|index| own.p2m.get(index)).ok_or(status::BAD_PAGE)?;
            Ok((CopyEnd { frame: *frame, offset: pointer.offset }, None))
        }
        CopyTarget::Reference(reference) => {
            let mut granter = access.granter(domid).ok_or(status::BAD_DOMAIN)?;
            let claim = pin(&mut granter, caller, reference, writable)?;
            Ok((CopyEnd { frame: claim.frame(), offset: pointer.offset }, Some(claim)))
        }
    }
}

/// Checks a copy for `caller` and pins its granted ends; on failure
/// nothing stays pinned. A frame named by number must be the caller's own
/// (`GNTST_permission_denied` otherwise, as in Xen); a ref is checked as
/// [`pin`] checks it, reading for the source, writing for the destination.
pub fn begin_copy(access: &mut impl GranterAccess, caller: DomId, request: &CopyRequest) -> Result<CopyPlan, GrantStatus> {
    request.check_shape()?;
    let (source, source_pin) = resolve(access, caller, &request.source, false)?;
    match resolve(access, caller, &request.dest, true) {
        Ok((dest, dest_pin)) => Ok(CopyPlan { source, dest, length: request.length, pins: [source_pin, dest_pin] }),
        Err(error) => {
            release_pins(access, [source_pin, None]);
            Err(error)
        }
    }
}

fn release_pins(access: &mut impl GranterAccess, pins: [Option<Pin>; 2]) {
    for claim in pins.into_iter().flatten() {
        let released = match access.granter(claim.granter()) {
            Some(mut granter) => release(&mut granter, claim).is_ok(),
            None => false,
        };
        if !released {
            // Fail safe: the ref stays pinned, so its frame is never reused.
            log::error!("grant copy: a pin could not be released; its frame stays in use");
        }
    }
}

/// Releases the pins of a finished copy (clearing reading/writing as the
/// last users go).
pub fn end_copy(access: &mut impl GranterAccess, plan: CopyPlan) {
    release_pins(access, plan.pins);
}

/// A whole `GNTTABOP_copy` entry: [`begin_copy`], `copier` moves the
/// bytes, [`end_copy`].
pub fn copy(access: &mut impl GranterAccess, caller: DomId, request: &CopyRequest, copier: impl FnOnce(&CopyPlan)) -> Result<(), GrantStatus> {
    let plan = begin_copy(access, caller, request)?;
    copier(&plan);
    end_copy(access, plan);
    Ok(())
}
