//! A threaded test of the claim protocol (XSA-230): one thread, the
//! granter, revokes and re-grants an entry as fast as it can, with the same
//! compare-and-swap a guest uses (it may clear the entry only while the
//! hypervisor has not set reading/writing); another thread, the hypervisor,
//! maps and unmaps it. No map may succeed on a revoked entry, and no revoke
//! may succeed while the entry is mapped.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use xen_abi::grant_table::{entry_flags, map_flags};
use xen_abi::DomId;

use super::{map, release, ActiveGrants, EntryHeader, GrantEntries, GrantEntry, GrantRef, Granter, Maptrack};
use crate::frame_allocator::Frame;

const GRANTER: DomId = DomId(1);
const MAPPER: DomId = DomId(2);
const REFERENCE: GrantRef = GrantRef(8);

/// The granter's table as the hypervisor sees it: shared atomics.
struct SharedTable(Arc<[AtomicU32; 32]>);

impl GrantEntries for SharedTable {
    fn entry_count(&self) -> u32 {
        16
    }
    fn read(&self, reference: GrantRef) -> GrantEntry {
        let at = reference.0 as usize * 2;
        GrantEntry { header: EntryHeader::from_word(self.0[at].load(Ordering::Acquire)), frame: self.0[at + 1].load(Ordering::Acquire) }
    }
    fn compare_exchange_header(&mut self, reference: GrantRef, current: EntryHeader, new: EntryHeader) -> Result<(), EntryHeader> {
        self.0[reference.0 as usize * 2]
            .compare_exchange(current.to_word(), new.to_word(), Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(EntryHeader::from_word)
    }
    fn clear_flags(&mut self, reference: GrantRef, bits: u16) {
        self.0[reference.0 as usize * 2].fetch_and(!u32::from(bits), Ordering::AcqRel);
    }
}

fn granted() -> u32 {
    EntryHeader { flags: entry_flags::PERMIT_ACCESS, domid: MAPPER.0 }.to_word()
}

#[test]
fn revokes_race_maps_without_either_lying() {
    let table: Arc<[AtomicU32; 32]> = Arc::new(core::array::from_fn(|_| AtomicU32::new(0)));
    table[REFERENCE.0 as usize * 2 + 1].store(3, Ordering::Release); // pfn 3
    table[REFERENCE.0 as usize * 2].store(granted(), Ordering::Release);
    let stop = Arc::new(AtomicBool::new(false));
    let (revokes, refused_revokes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    let granter = {
        let (table, stop, revokes, refused) = (Arc::clone(&table), Arc::clone(&stop), Arc::clone(&revokes), Arc::clone(&refused_revokes));
        std::thread::spawn(move || {
            let word = &table[REFERENCE.0 as usize * 2];
            while !stop.load(Ordering::Acquire) {
                // Revoke as a guest does: only from "granted, not in use".
                match word.compare_exchange(granted(), 0, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => {
                        revokes.fetch_add(1, Ordering::Relaxed);
                        word.store(granted(), Ordering::Release);
                    }
                    Err(current) => {
                        let flags = EntryHeader::from_word(current).flags;
                        if flags & (entry_flags::READING | entry_flags::WRITING) != 0 {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        })
    };

    let p2m: Vec<Frame> = (0..8).map(|n| Frame(100 + n)).collect();
    let mut active = ActiveGrants::new(16).expect("a table");
    let mut maptrack = Maptrack::new(16).expect("a maptrack");
    let mut entries = SharedTable(Arc::clone(&table));
    let (mut mapped, mut refused_maps) = (0u64, 0u64);
    for _ in 0..200_000 {
        let mut view = Granter { id: GRANTER, entries: &mut entries, active: &mut active, p2m: &p2m };
        match map(MAPPER, &mut maptrack, &mut view, REFERENCE, map_flags::HOST_MAP) {
            Ok(mapping) => {
                mapped += 1;
                // While mapped, the entry cannot have been revoked: it still
                // grants access and carries our reading/writing bits.
                let header = EntryHeader::from_word(table[REFERENCE.0 as usize * 2].load(Ordering::Acquire));
                assert_eq!(header.flags & entry_flags::PERMIT_ACCESS, entry_flags::PERMIT_ACCESS, "mapped but revoked");
                assert_ne!(header.flags & entry_flags::WRITING, 0, "mapped writable without GTF_writing");
                let entry = maptrack.remove(mapping.handle, mapping.guest_address.unwrap_or(0)).expect("our own mapping");
                let mut view = Granter { id: GRANTER, entries: &mut entries, active: &mut active, p2m: &p2m };
                assert!(release(&mut view, entry.pin).is_ok());
            }
            Err(_) => refused_maps += 1,
        }
    }
    stop.store(true, Ordering::Release);
    granter.join().expect("the granter thread");
    // Both sides really raced: some maps won, some revokes won, and some
    // revokes were refused because a mapping was in place.
    assert!(mapped > 0, "no map ever succeeded");
    assert!(revokes.load(Ordering::Relaxed) > 0, "no revoke ever succeeded");
    assert_eq!(active.pinned_refs(), 0);
    let final_flags = EntryHeader::from_word(table[REFERENCE.0 as usize * 2].load(Ordering::Acquire)).flags;
    assert_eq!(final_flags & (entry_flags::READING | entry_flags::WRITING), 0, "bits left set after the last unmap");
    eprintln!(
        "maps {mapped} (refused {refused_maps}); revokes {} (refused while mapped {})",
        revokes.load(Ordering::Relaxed),
        refused_revokes.load(Ordering::Relaxed)
    );
}
