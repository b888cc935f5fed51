//! Test grant tables: a page of v1 entries as bytes, a granter that races
//! the hypervisor between its read and its compare-and-swap, and a set of
//! domains for copies.

use super::*;
use crate::frame_allocator::Frame;
use xen_abi::grant_table::ENTRY_SIZE;

/// A grant-table page as bytes (Xen's layout). Nothing races in tests
/// unless a [`RacingTable`] wraps it.
pub(crate) struct FakeTable(pub(crate) Vec<u8>);

impl FakeTable {
    pub(crate) fn new() -> FakeTable {
        FakeTable(vec![0; DEFAULT_ENTRIES as usize * ENTRY_SIZE])
    }
    fn at(reference: GrantRef) -> usize {
        reference.0 as usize * ENTRY_SIZE
    }
    /// What the granter writes to grant `pfn` to `domid`.
    pub(crate) fn grant(&mut self, reference: GrantRef, domid: DomId, pfn: u32, readonly: bool) {
        let at = Self::at(reference);
        let flags = entry_flags::PERMIT_ACCESS | if readonly { entry_flags::READONLY } else { 0 };
        self.0[at + 2..at + 4].copy_from_slice(&domid.0.to_le_bytes());
        self.0[at + 4..at + 8].copy_from_slice(&pfn.to_le_bytes());
        self.set_flags(reference, flags);
    }
    pub(crate) fn flags(&self, reference: GrantRef) -> u16 {
        let at = Self::at(reference);
        u16::from_le_bytes([self.0[at], self.0[at + 1]])
    }
    /// The granter overwrites the flags word (a plain store).
    pub(crate) fn set_flags(&mut self, reference: GrantRef, flags: u16) {
        let at = Self::at(reference);
        self.0[at..at + 2].copy_from_slice(&flags.to_le_bytes());
    }
    /// What a well-behaved granter does to end access (Linux's
    /// `gnttab_end_foreign_access_ref`): compare-and-swap to 0, which fails
    /// while the hypervisor has it marked reading or writing.
    pub(crate) fn try_revoke(&mut self, reference: GrantRef) -> bool {
        let flags = self.flags(reference);
        if flags & (entry_flags::READING | entry_flags::WRITING) != 0 {
            return false;
        }
        self.set_flags(reference, 0);
        true
    }
}

impl GrantEntries for FakeTable {
    fn entry_count(&self) -> u32 {
        (self.0.len() / ENTRY_SIZE) as u32
    }
    fn read(&self, reference: GrantRef) -> GrantEntry {
        let at = Self::at(reference);
        let word = u32::from_le_bytes(self.0[at..at + 4].try_into().unwrap());
        let frame = u32::from_le_bytes(self.0[at + 4..at + 8].try_into().unwrap());
        GrantEntry { header: EntryHeader::from_word(word), frame }
    }
    fn compare_exchange_header(&mut self, reference: GrantRef, current: EntryHeader, new: EntryHeader) -> Result<(), EntryHeader> {
        let at = Self::at(reference);
        let word = u32::from_le_bytes(self.0[at..at + 4].try_into().unwrap());
        if word != current.to_word() {
            return Err(EntryHeader::from_word(word));
        }
        self.0[at..at + 4].copy_from_slice(&new.to_word().to_le_bytes());
        Ok(())
    }
    fn clear_flags(&mut self, reference: GrantRef, bits: u16) {
        let flags = self.flags(reference);
        self.set_flags(reference, flags & !bits);
    }
}

/// A granter that changes its table just before each of the hypervisor's
/// compare-and-swaps, the first `races` times.
pub(crate) struct RacingTable<F: FnMut(&mut FakeTable, GrantRef)> {
    pub(crate) table: FakeTable,
    pub(crate) races: u32,
    pub(crate) change: F,
    pub(crate) attempts: u32,
}

impl<F: FnMut(&mut FakeTable, GrantRef)> GrantEntries for RacingTable<F> {
    fn entry_count(&self) -> u32 {
        self.table.entry_count()
    }
    fn read(&self, reference: GrantRef) -> GrantEntry {
        self.table.read(reference)
    }
    fn compare_exchange_header(&mut self, reference: GrantRef, current: EntryHeader, new: EntryHeader) -> Result<(), EntryHeader> {
        self.attempts += 1;
        if self.races > 0 {
            self.races -= 1;
            (self.change)(&mut self.table, reference);
        }
        self.table.compare_exchange_header(reference, current, new)
    }
    fn clear_flags(&mut self, reference: GrantRef, bits: u16) {
        self.table.clear_flags(reference, bits);
    }
}

/// A test domain's grant state.
pub(crate) struct FakeDomain {
    pub(crate) id: DomId,
    pub(crate) table: FakeTable,
    pub(crate) active: ActiveGrants,
    pub(crate) p2m: Vec<Frame>,
    pub(crate) maptrack: Maptrack,
}

impl FakeDomain {
    /// Domain `id` with `pages` of RAM in machine frames `id * 1000 + pfn`.
    pub(crate) fn new(id: u16, pages: u64) -> FakeDomain {
        FakeDomain {
            id: DomId(id),
            table: FakeTable::new(),
            active: ActiveGrants::new(DEFAULT_ENTRIES).unwrap(),
            p2m: (0..pages).map(|pfn| Frame(u64::from(id) * 1000 + pfn)).collect(),
            maptrack: Maptrack::new(DEFAULT_MAPTRACK_ENTRIES).unwrap(),
        }
    }
    pub(crate) fn granter(&mut self) -> Granter<'_> {
        Granter { id: self.id, entries: &mut self.table, active: &mut self.active, p2m: &self.p2m }
    }
    /// The pieces `map` needs when this domain maps from `granter`.
    pub(crate) fn map_from(&mut self, granter: &mut FakeDomain, reference: GrantRef, flags: u32) -> Result<Mapping, GrantStatus> {
        map(self.id, &mut self.maptrack, &mut granter.granter(), reference, flags)
    }
}

/// Domains by id, as the hypercall layer would lock them.
pub(crate) struct FakeDomains(pub(crate) Vec<FakeDomain>);

impl GranterAccess for FakeDomains {
    fn granter(&mut self, id: DomId) -> Option<Granter<'_>> {
        self.0.iter_mut().find(|domain| domain.id == id).map(FakeDomain::granter)
    }
}
