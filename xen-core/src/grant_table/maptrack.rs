//! The mapper's side of grant mapping: its maptrack, a bounded table of
//! handles. Handle slot N is page N of the mapper's grant window, so a
//! handle names both the mapping and where it lives; a generation number
//! in the handle makes a stale handle (one unmapped already) refer to
//! nothing, even after its slot is reused.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use xen_abi::grant_table::{map_flags, status};
use xen_abi::layout::{GRANT_WINDOW_BASE, GRANT_WINDOW_PAGES, PAGE_SIZE};
use xen_abi::DomId;

use super::{pin, GrantRef, GrantStatus, Granter, Pin};
use crate::frame_allocator::Frame;

/// Maptrack entries a domain gets: one per page of its grant window.
pub const DEFAULT_MAPTRACK_ENTRIES: u32 = GRANT_WINDOW_PAGES as u32;

/// Bits of a handle that name the slot; the rest are its generation.
const INDEX_BITS: u32 = 12;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: u32 = u32::MAX >> INDEX_BITS;

/// A grant handle as `map_grant_ref` returns it: slot and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantHandle(pub u32);

impl GrantHandle {
    fn new(index: u32, generation: u32) -> GrantHandle {
        GrantHandle(generation << INDEX_BITS | index)
    }
    fn index(self) -> u32 {
        self.0 & INDEX_MASK
    }
    fn generation(self) -> u32 {
        self.0 >> INDEX_BITS
    }
}

/// One live mapping in the mapper's maptrack.
#[derive(Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// The granter's claim this mapping holds.
    pub pin: Pin,
    /// Where it is mapped in the mapper's grant window.
    pub guest_address: u64,
    /// Whether it is mapped into the address space (`GNTMAP_host_map`).
    pub host_map: bool,
}

/// What `map_grant_ref` hands back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The handle to unmap it with.
    pub handle: GrantHandle,
    /// Its page in the mapper's grant window (map it there, user-accessible,
    /// writable unless `readonly`, never executable), if `GNTMAP_host_map`.
    pub guest_address: Option<u64>,
    /// The granter's machine frame.
    pub frame: Frame,
    /// The granter's pseudo-physical frame.
    pub pfn: u64,
    /// Whether the mapping is read-only.
    pub readonly: bool,
    /// The bus address for DMA (`dev_bus_addr`), if `GNTMAP_device_map`:
    /// the machine address until an IOMMU translates it.
    pub bus_address: Option<u64>,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    entry: Option<MapEntry>,
}

/// A mapper's maptrack: at most `capacity` mappings at once.
#[derive(Debug)]
pub struct Maptrack {
    slots: Vec<Slot>,
    free: VecDeque<u32>,
    capacity: u32,
    live: u32,
}

impl Maptrack {
    /// A maptrack of `capacity` entries (1 to the grant window's pages).
    pub fn new(capacity: u32) -> Option<Maptrack> {
        if capacity == 0 || u64::from(capacity) > GRANT_WINDOW_PAGES || capacity > INDEX_MASK + 1 {
            return None;
        }
        Some(Maptrack { slots: Vec::new(), free: VecDeque::new(), capacity, live: 0 })
    }

    /// Mappings live now.
    pub fn live(&self) -> u32 {
        self.live
    }

    /// Entries at most.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Whether another mapping fits (and the heap can hold its slot).
    pub fn has_space(&mut self) -> bool {
        if !self.free.is_empty() {
            return true;
        }
        // The free queue must be able to take back every slot without allocating.
        (self.slots.len() as u32) < self.capacity
            && self.slots.try_reserve(1).is_ok()
            && self.free.try_reserve(self.slots.len() + 1).is_ok()
    }

    /// The live mapping `handle` names, if any.
    pub fn lookup(&self, handle: GrantHandle) -> Option<&MapEntry> {
        let slot = self.slots.get(handle.index() as usize)?;
        if slot.generation != handle.generation() {
            return None;
        }
        slot.entry.as_ref()
    }

    /// Records `pin` in a free slot (least recently freed first, so slots
    /// and their generations turn over slowly).
    fn insert(&mut self, pin: Pin, host_map: bool, device_map: bool) -> Result<Mapping, Pin> {
        if !self.has_space() {
            return Err(pin);
        }
        let index = match self.free.pop_front() {
            Some(index) => index,
            None => {
                self.slots.push(Slot { generation: 0, entry: None });
                self.slots.len() as u32 - 1
            }
        };
        let guest_address = GRANT_WINDOW_BASE + u64::from(index) * PAGE_SIZE;
        let mapping = Mapping {
            handle: GrantHandle::new(index, self.slots[index as usize].generation),
            guest_address: host_map.then_some(guest_address),
            frame: pin.frame(),
            pfn: pin.pfn(),
            readonly: !pin.writable(),
            bus_address: device_map.then_some(pin.frame().address()),
        };
        self.slots[index as usize].entry = Some(MapEntry { pin, guest_address, host_map });
        self.live += 1;
        Ok(mapping)
    }

    /// `unmap_grant_ref`, the mapper's half: forgets the mapping `handle`
    /// names and returns it. `host_address`, if not 0, must be where it is
    /// mapped. Then the hypercall layer unmaps the window page, flushes the
    /// TLB, and gives the entry's pin to [`super::release`] with its granter.
    pub fn remove(&mut self, handle: GrantHandle, host_address: u64) -> Result<MapEntry, GrantStatus> {
        let index = handle.index();
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return Err(status::BAD_HANDLE);
        };
        match &slot.entry {
            Some(entry) if slot.generation == handle.generation() => {
                if host_address != 0 && (!entry.host_map || host_address != entry.guest_address) {
                    return Err(status::BAD_VIRT_ADDR);
                }
            }
            _ => return Err(status::BAD_HANDLE),
        }
        let entry = slot.entry.take().ok_or(status::BAD_HANDLE)?;
        slot.generation = (slot.generation + 1) & GENERATION_MASK;
        self.free.push_back(index);
        self.live -= 1;
        Ok(entry)
    }

    /// The mapper's teardown: forgets every mapping and returns them, for
    /// the hypercall layer to unmap and [`super::release`] each with its
    /// granter.
    pub fn drain(&mut self) -> Vec<MapEntry> {
        let entries = self.slots.iter_mut().filter_map(|slot| slot.entry.take()).collect();
        self.slots = Vec::new();
        self.free = VecDeque::new();
        self.live = 0;
        entries
    }
}

/// `map_grant_ref`: maps `reference` of `granter` for `mapper`, with
/// `GNTMAP_*` `flags` (host map into the grant window and/or device map;
/// read-only if `GNTMAP_readonly`). Checks, in order: the flags
/// (`GNTST_bad_gntref` if neither map kind, `GNTST_general_error` for
/// bits we do not offer), room in the maptrack (`GNTST_no_space`), then the
/// entry as [`pin`] does. On failure nothing changed.
pub fn map(mapper: DomId, maptrack: &mut Maptrack, granter: &mut Granter<'_>, reference: GrantRef, flags: u32) -> Result<Mapping, GrantStatus> {
    let known = map_flags::HOST_MAP | map_flags::DEVICE_MAP | map_flags::READONLY;
    if flags & (map_flags::HOST_MAP | map_flags::DEVICE_MAP) == 0 {
        return Err(status::BAD_GNTREF);
    }
    if flags & !known != 0 {
        return Err(status::GENERAL_ERROR);
    }
    if !maptrack.has_space() {
        return Err(status::NO_SPACE);
    }
    let claim = pin(granter, mapper, reference, flags & map_flags::READONLY == 0)?;
    let host_map = flags & map_flags::HOST_MAP != 0;
    let device_map = flags & map_flags::DEVICE_MAP != 0;
    match maptrack.insert(claim, host_map, device_map) {
        Ok(mapping) => Ok(mapping),
        Err(claim) => {
            // Unreachable: room was checked above. Give the claim back.
            if super::release(granter, claim).is_err() {
                log::error!("grant map: a fresh claim could not be released");
            }
            Err(status::NO_SPACE)
        }
    }
}
