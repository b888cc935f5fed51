//! Xen's v1 grant tables as self-contained state machines.
//!
//! The granter's table is its own memory ([`GrantEntries`]): it may rewrite
//! an entry at any instant, so the hypervisor reads an entry once, checks
//! it, and claims it with compare-and-swap on the `{flags, domid}` word (the
//! domid is in the swapped word so it cannot change between check and
//! claim; Xen XSA-230 and `_set_status_v1`). A claim is a [`Pin`]; the
//! granter's [`ActiveGrants`] counts pins per ref, so `GTF_reading` and
//! `GTF_writing` stay set while anyone uses the frame and are cleared by the
//! last release, and so the granter's frames that others still map are
//! known when it dies. The mapper's side is its [`Maptrack`]: handles with
//! generation numbers, each naming one slot of its grant window.
//!
//! The hypercall layer copies each request in, asks the policy (before any
//! of these runs: XSA-47), locks the domains and calls [`map`],
//! [`Maptrack::remove`] + [`release`] (unmap), [`copy`] or
//! [`begin_copy`]/[`end_copy`], over batches driven by [`run_batch`].

use alloc::vec::Vec;

use xen_abi::grant_table::{entry_flags, status, ENTRIES_PER_PAGE};
use xen_abi::layout::GRANT_TABLE_PAGES;
use xen_abi::DomId;

use crate::frame_allocator::Frame;

mod batch;
mod copy;
mod maptrack;

pub use batch::{run_batch, BatchOutcome, BATCH_BUDGET};
pub use copy::{begin_copy, copy, end_copy, CopyEnd, CopyPlan, CopyPointer, CopyRequest, CopyTarget, GranterAccess};
pub use maptrack::{map, GrantHandle, MapEntry, Mapping, Maptrack, DEFAULT_MAPTRACK_ENTRIES};

/// A `GNTST_*` status (negative on failure), as `xen_abi::grant_table::status`.
pub type GrantStatus = i16;

/// A grant reference: an index into the granter's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantRef(pub u32);

/// Entries of a domain's grant table ([`GRANT_TABLE_PAGES`] pages of 512).
pub const DEFAULT_ENTRIES: u32 = (GRANT_TABLE_PAGES as usize * ENTRIES_PER_PAGE) as u32;

/// Times a claim is retried when the granter changes the entry between our
/// read and our compare-and-swap, before `GNTST_eagain` (Xen tries 4 times
/// too, then gives up: a granter must not keep us looping).
pub const MAX_CLAIM_ATTEMPTS: u32 = 4;

/// The first 32-bit word of a `grant_entry_v1`: flags u16 @0, domid u16 @2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryHeader {
    /// `GTF_*` flags.
    pub flags: u16,
    /// The domain the entry grants to.
    pub domid: u16,
}

impl EntryHeader {
    /// The word as it lies in memory (little-endian: flags in the low half),
    /// for an atomic 32-bit compare-and-swap.
    pub fn to_word(self) -> u32 {
        u32::from(self.flags) | u32::from(self.domid) << 16
    }

    /// The header from its in-memory word.
    pub fn from_word(word: u32) -> EntryHeader {
        EntryHeader { flags: word as u16, domid: (word >> 16) as u16 }
    }
}

/// A snapshot of one `grant_entry_v1`, stale the moment it is taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEntry {
    /// Flags and domid.
    pub header: EntryHeader,
    /// The granted pseudo-physical frame of the granter.
    pub frame: u32,
}

/// A granter's table as the hypervisor reaches it: memory the granter
/// writes concurrently. The hypervisor implements each method as one
/// volatile or atomic access to the page (never a reference into it).
pub trait GrantEntries {
    /// Entries in the table.
    fn entry_count(&self) -> u32;
    /// Reads entry `reference` (below [`Self::entry_count`]) once.
    fn read(&self, reference: GrantRef) -> GrantEntry;
    /// Atomically replaces the entry's header with `new` if it still equals
    /// `current` (a 32-bit `lock cmpxchg`); otherwise returns what it holds.
    fn compare_exchange_header(&mut self, reference: GrantRef, current: EntryHeader, new: EntryHeader) -> Result<(), EntryHeader>;
    /// Atomically clears `bits` of the entry's flags (`lock and`), whatever
    /// the granter did to the other bits meanwhile.
    fn clear_flags(&mut self, reference: GrantRef, bits: u16);
}

/// The table of a granter that is gone: no entries to claim, and releases
/// write nothing. Pass it with the dead granter's [`ActiveGrants`] so the
/// last mappers' releases still find their pins.
#[derive(Clone, Copy, Debug, Default)]
pub struct DetachedEntries;

impl GrantEntries for DetachedEntries {
    fn entry_count(&self) -> u32 {
        0
    }
    fn read(&self, _reference: GrantRef) -> GrantEntry {
        GrantEntry::default()
    }
    fn compare_exchange_header(&mut self, _reference: GrantRef, _current: EntryHeader, _new: EntryHeader) -> Result<(), EntryHeader> {
        Err(EntryHeader::default())
    }
    fn clear_flags(&mut self, _reference: GrantRef, _bits: u16) {}
}

/// A granting domain's state, borrowed for one operation.
pub struct Granter<'a> {
    /// Its id.
    pub id: DomId,
    /// Its grant table (its memory).
    pub entries: &'a mut dyn GrantEntries,
    /// Its pins per ref.
    pub active: &'a mut ActiveGrants,
    /// Its pseudo-physical-to-machine map: granted frames are checked against
    /// its length and translated through it.
    pub p2m: &'a [Frame],
}

/// The use of one ref while pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ActiveUse {
    pins: u32,
    writable_pins: u32,
    user: DomId,
    pfn: u64,
    frame: Frame,
}

/// A ref that is still pinned (by a mapping or a copy in progress).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StillMapped {
    /// The ref.
    pub reference: GrantRef,
    /// The granter's pseudo-physical frame.
    pub pfn: u64,
    /// Its machine frame: not to be freed or reused until released.
    pub frame: Frame,
    /// The one domain using it.
    pub user: DomId,
    /// Outstanding pins.
    pub pins: u32,
}

/// The granter's side: for each ref, the pins outstanding (Xen's active
/// grant table). A ref is used by one domain at a time, the one its entry
/// named when first pinned.
#[derive(Debug)]
pub struct ActiveGrants {
    uses: Vec<Option<ActiveUse>>,
    pinned_refs: u32,
}

impl ActiveGrants {
    /// State for a table of `entry_count` entries (`None` if the heap is
    /// exhausted).
    pub fn new(entry_count: u32) -> Option<ActiveGrants> {
        let mut uses = Vec::new();
        uses.try_reserve_exact(entry_count as usize).ok()?;
        uses.resize(entry_count as usize, None);
        Some(ActiveGrants { uses, pinned_refs: 0 })
    }

    /// Refs pinned now.
    pub fn pinned_refs(&self) -> u32 {
        self.pinned_refs
    }

    /// (pins, writable pins) outstanding on `reference`.
    pub fn pins(&self, reference: GrantRef) -> (u32, u32) {
        match self.uses.get(reference.0 as usize).copied().flatten() {
            Some(active) => (active.pins, active.writable_pins),
            None => (0, 0),
        }
    }

    /// Whether any pinned ref holds `frame`.
    pub fn is_frame_pinned(&self, frame: Frame) -> bool {
        self.uses.iter().flatten().any(|active| active.frame == frame)
    }

    /// The frames pinned refs hold, sorted, each once: to check many frames
    /// against one scan of the table (teardown), where
    /// [`is_frame_pinned`](Self::is_frame_pinned) would scan it per frame.
    pub fn pinned_frames(&self) -> Vec<Frame> {
        let mut frames: Vec<Frame> = self.uses.iter().flatten().map(|active| active.frame).collect();
        frames.sort_unstable();
        frames.dedup();
        frames
    }

    /// What others still use: at the granter's teardown, these frames must
    /// be kept (not scrubbed, not reused) until [`release`] reports each
    /// unpinned.
    pub fn frames_still_mapped(&self) -> Vec<StillMapped> {
        self.uses
            .iter()
            .enumerate()
            .filter_map(|(index, active)| {
                active.map(|active| StillMapped {
                    reference: GrantRef(index as u32),
                    pfn: active.pfn,
                    frame: active.frame,
                    user: active.user,
                    pins: active.pins,
                })
            })
            .collect()
    }
}

/// A claim on a granted frame: `GTF_reading` (and `GTF_writing`) are set
/// while it lives. Not `Clone`: each pin is released exactly once.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a pin must be released, or the granter's frame stays in use"]
pub struct Pin {
    granter: DomId,
    reference: GrantRef,
    pfn: u64,
    frame: Frame,
    writable: bool,
}

impl Pin {
    /// The granting domain.
    pub fn granter(&self) -> DomId {
        self.granter
    }
    /// The ref.
    pub fn reference(&self) -> GrantRef {
        self.reference
    }
    /// The granter's pseudo-physical frame.
    pub fn pfn(&self) -> u64 {
        self.pfn
    }
    /// The machine frame.
    pub fn frame(&self) -> Frame {
        self.frame
    }
    /// Whether it allows writing.
    pub fn writable(&self) -> bool {
        self.writable
    }
}

/// What a release did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Released {
    /// The machine frame the pin held.
    pub frame: Frame,
    /// The ref has no pins left (its reading/writing flags are clear).
    pub ref_unpinned: bool,
    /// No ref of this granter pins the frame any more: if the granter is
    /// dead, the frame may now be scrubbed and freed.
    pub frame_unpinned: bool,
}

/// Checks entry `reference` of `granter` for `user` and claims it: sets
/// `GTF_reading` (and `GTF_writing` if `writable`) with compare-and-swap.
/// The entry must permit access, name `user`, and not be read-only if
/// `writable`; its frame must be the granter's RAM. A granter that keeps
/// changing the entry makes it fail with `GNTST_eagain` after
/// [`MAX_CLAIM_ATTEMPTS`]; nothing is left changed on any failure.
///
/// The entry is re-checked on every pin, also while the ref is pinned
/// already (stricter than Xen, which skips the check then); a pinned ref
/// keeps the frame of its first pin even if the granter rewrites the
/// entry's frame, so every user of a ref sees one frame.
pub fn pin(granter: &mut Granter<'_>, user: DomId, reference: GrantRef, writable: bool) -> Result<Pin, GrantStatus> {
    let index = reference.0 as usize;
    if reference.0 >= granter.entries.entry_count() || index >= granter.active.uses.len() {
        return Err(status::BAD_GNTREF);
    }
    let current_use = granter.active.uses[index];
    if let Some(active) = current_use {
        if active.user != user {
            return Err(status::GENERAL_ERROR);
        }
    }
    let wanted = entry_flags::READING | if writable { entry_flags::WRITING } else { 0 };
    let mut claimed = None;
    for _ in 0..MAX_CLAIM_ATTEMPTS {
        let entry = granter.entries.read(reference);
        let header = entry.header;
        if header.flags & entry_flags::TYPE_MASK != entry_flags::PERMIT_ACCESS || header.domid != user.0 {
            return Err(status::PERMISSION_DENIED);
        }
        if writable && header.flags & entry_flags::READONLY != 0 {
            return Err(status::PERMISSION_DENIED);
        }
        let (pfn, frame) = match current_use {
            Some(active) => (active.pfn, active.frame),
            None => match granter.p2m.get(entry.frame as usize) {
                Some(frame) => (u64::from(entry.frame), *frame),
                None => return Err(status::BAD_PAGE),
            },
        };
        let new = EntryHeader { flags: header.flags | wanted, ..header };
        if granter.entries.compare_exchange_header(reference, header, new).is_ok() {
            claimed = Some((pfn, frame));
            break;
        }
    }
    let Some((pfn, frame)) = claimed else {
        return Err(status::EAGAIN);
    };
    let active = granter.active.uses[index].get_or_insert(ActiveUse { pins: 0, writable_pins: 0, user, pfn, frame });
    if active.pins == 0 {
        granter.active.pinned_refs += 1;
    }
    active.pins += 1;
    active.writable_pins += u32::from(writable);
    Ok(Pin { granter: granter.id, reference, pfn, frame, writable })
}

/// Gives a pin back: the last writable pin of a ref clears `GTF_writing`,
/// the last pin clears `GTF_reading` too. A pin that is not this granter's
/// comes back unchanged.
pub fn release(granter: &mut Granter<'_>, pin: Pin) -> Result<Released, Pin> {
    let index = pin.reference.0 as usize;
    let Some(Some(active)) = granter.active.uses.get_mut(index) else {
        return Err(pin);
    };
    if pin.granter != granter.id || active.frame != pin.frame || (pin.writable && active.writable_pins == 0) {
        return Err(pin);
    }
    active.pins -= 1;
    active.writable_pins -= u32::from(pin.writable);
    let ref_unpinned = active.pins == 0;
    if ref_unpinned {
        granter.active.uses[index] = None;
        granter.active.pinned_refs -= 1;
        granter.entries.clear_flags(pin.reference, entry_flags::READING | entry_flags::WRITING);
    } else if pin.writable && active.writable_pins == 0 {
        granter.entries.clear_flags(pin.reference, entry_flags::WRITING);
    }
    let frame_unpinned = ref_unpinned && !granter.active.is_frame_pinned(pin.frame);
    Ok(Released { frame: pin.frame, ref_unpinned, frame_unpinned })
}

#[cfg(test)]
pub(crate) mod fake_entries;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod threaded;
