//! Proptests of grant tables between three domains: random grants,
//! rewrites, revokes, maps, unmaps (with stale handles), copies and mapper
//! teardowns keep the flags equal to the counts, the counts equal to the
//! live mappings, and every handle naming exactly one mapping.

use super::fake_entries::{FakeDomain, FakeDomains};
use super::*;
use proptest::prelude::*;
use xen_abi::grant_table::{copy as copy_layout, map_flags};

const REFS: u32 = 6;

#[derive(Clone, Debug)]
enum Operation {
    /// The granter writes an entry (keeping the hypervisor's bits, as a
    /// granter that updates in place would).
    Grant { granter: usize, reference: u32, to: usize, pfn: u32, readonly: bool },
    /// The granter ends access the careful way.
    Revoke { granter: usize, reference: u32 },
    Map { mapper: usize, granter: usize, reference: u32, readonly: bool },
    /// Maps an entry that names this mapper, if any.
    MapGranted { mapper: usize, pick: prop::sample::Index, readonly: bool },
    Unmap { mapper: usize, pick: prop::sample::Index, stale: bool },
    Copy { caller: usize, source: (usize, u32), dest: (usize, u32) },
    /// Copies between two entries that name the caller, if any.
    CopyGranted { caller: usize, source: prop::sample::Index, dest: prop::sample::Index },
    MapperTeardown { mapper: usize },
}

fn operation() -> impl Strategy<Value = Operation> {
    let domain = 0usize..3;
    let reference = 0u32..REFS;
    prop_oneof![
        3 => (domain.clone(), reference.clone(), domain.clone(), 0u32..18, any::<bool>())
            .prop_map(|(granter, reference, to, pfn, readonly)| Operation::Grant { granter, reference, to, pfn, readonly }),
        1 => (domain.clone(), reference.clone()).prop_map(|(granter, reference)| Operation::Revoke { granter, reference }),
        5 => (domain.clone(), domain.clone(), reference.clone(), any::<bool>())
            .prop_map(|(mapper, granter, reference, readonly)| Operation::Map { mapper, granter, reference, readonly }),
        5 => (domain.clone(), any::<prop::sample::Index>(), any::<bool>())
            .prop_map(|(mapper, pick, readonly)| Operation::MapGranted { mapper, pick, readonly }),
        4 => (domain.clone(), any::<prop::sample::Index>(), any::<bool>())
            .prop_map(|(mapper, pick, stale)| Operation::Unmap { mapper, pick, stale }),
        2 => (domain.clone(), (domain.clone(), reference.clone()), (domain.clone(), reference))
            .prop_map(|(caller, source, dest)| Operation::Copy { caller, source, dest }),
        2 => (domain.clone(), any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(caller, source, dest)| Operation::CopyGranted { caller, source, dest }),
        1 => domain.prop_map(|mapper| Operation::MapperTeardown { mapper }),
    ]
}

struct World {
    domains: FakeDomains,
    /// Live handles per mapper, and handles unmapped already.
    live: Vec<Vec<GrantHandle>>,
    stale: Vec<Vec<GrantHandle>>,
}

fn id(index: usize) -> DomId {
    DomId(index as u16 + 1)
}

impl World {
    fn new() -> World {
        World {
            domains: FakeDomains((0..3).map(|index| FakeDomain::new(index as u16 + 1, 16)).collect()),
            live: vec![Vec::new(); 3],
            stale: vec![Vec::new(); 3],
        }
    }

    /// Mapper and granter, distinct or the same domain.
    fn map(&mut self, mapper: usize, granter: usize, reference: u32, flags: u32) -> Result<Mapping, GrantStatus> {
        let domains = &mut self.domains.0;
        if mapper == granter {
            let domain = &mut domains[mapper];
            let mut granter = Granter { id: domain.id, entries: &mut domain.table, active: &mut domain.active, p2m: &domain.p2m };
            return map(domain.id, &mut domain.maptrack, &mut granter, GrantRef(reference), flags);
        }
        let (low, high) = domains.split_at_mut(mapper.max(granter));
        let (mapper_domain, granter_domain) = if mapper < granter { (&mut low[mapper], &mut high[0]) } else { (&mut high[0], &mut low[granter]) };
        mapper_domain.map_from(granter_domain, GrantRef(reference), flags)
    }

    /// (granter, ref) of every entry that grants access to `mapper`.
    fn granted_to(&self, mapper: usize) -> Vec<(usize, u32)> {
        let mut granted = Vec::new();
        for (granter, domain) in self.domains.0.iter().enumerate() {
            for reference in 0..REFS {
                let header = domain.table.read(GrantRef(reference)).header;
                if header.domid == id(mapper).0 && header.flags & entry_flags::TYPE_MASK == entry_flags::PERMIT_ACCESS {
                    granted.push((granter, reference));
                }
            }
        }
        granted
    }

    fn release(&mut self, entry: MapEntry) {
        let granter = entry.pin.granter();
        let mut granter = self.domains.granter(granter).unwrap();
        assert!(release(&mut granter, entry.pin).is_ok());
    }

    fn apply(&mut self, operation: Operation) {
        match operation {
            Operation::Grant { granter, reference, to, pfn, readonly } => {
                let table = &mut self.domains.0[granter].table;
                let kept = table.flags(GrantRef(reference)) & (entry_flags::READING | entry_flags::WRITING);
                table.grant(GrantRef(reference), id(to), pfn, readonly);
                let flags = table.flags(GrantRef(reference));
                table.set_flags(GrantRef(reference), flags | kept);
            }
            Operation::Revoke { granter, reference } => {
                let _ = self.domains.0[granter].table.try_revoke(GrantRef(reference));
            }
            Operation::Map { mapper, granter, reference, readonly } => {
                let flags = map_flags::HOST_MAP | if readonly { map_flags::READONLY } else { 0 };
                if let Ok(mapping) = self.map(mapper, granter, reference, flags) {
                    assert!(!self.live[mapper].contains(&mapping.handle), "a handle names one mapping");
                    self.live[mapper].push(mapping.handle);
                }
            }
            Operation::MapGranted { mapper, pick, readonly } => {
                let granted = self.granted_to(mapper);
                if !granted.is_empty() {
                    let (granter, reference) = *pick.get(&granted);
                    self.apply(Operation::Map { mapper, granter, reference, readonly });
                }
            }
            Operation::CopyGranted { caller, source, dest } => {
                let granted = self.granted_to(caller);
                if !granted.is_empty() {
                    let (source, dest) = (*source.get(&granted), *dest.get(&granted));
                    self.apply(Operation::Copy { caller, source, dest });
                }
            }
            Operation::Unmap { mapper, pick, stale } => {
                if stale && !self.stale[mapper].is_empty() {
                    let handle = *pick.get(&self.stale[mapper]);
                    if !self.live[mapper].contains(&handle) {
                        assert_eq!(self.domains.0[mapper].maptrack.remove(handle, 0), Err(status::BAD_HANDLE));
                    }
                } else if !self.live[mapper].is_empty() {
                    let position = pick.index(self.live[mapper].len());
                    let handle = self.live[mapper].swap_remove(position);
                    let entry = self.domains.0[mapper].maptrack.remove(handle, 0).unwrap();
                    self.release(entry);
                    self.stale[mapper].push(handle);
                }
            }
            Operation::Copy { caller, source, dest } => {
                let mut block = [0u8; copy_layout::SIZE];
                block[copy_layout::SOURCE..copy_layout::SOURCE + 4].copy_from_slice(&source.1.to_le_bytes());
                block[copy_layout::SOURCE + 8..copy_layout::SOURCE + 10].copy_from_slice(&id(source.0).0.to_le_bytes());
                block[copy_layout::DEST..copy_layout::DEST + 4].copy_from_slice(&dest.1.to_le_bytes());
                block[copy_layout::DEST + 8..copy_layout::DEST + 10].copy_from_slice(&id(dest.0).0.to_le_bytes());
                block[copy_layout::LEN..copy_layout::LEN + 2].copy_from_slice(&16u16.to_le_bytes());
                block[copy_layout::FLAGS..copy_layout::FLAGS + 2]
                    .copy_from_slice(&(copy_layout::SOURCE_GREF | copy_layout::DEST_GREF).to_le_bytes());
                let request = CopyRequest::decode(&block);
                let _ = copy(&mut self.domains, id(caller), &request, |_| {});
            }
            Operation::MapperTeardown { mapper } => {
                for entry in self.domains.0[mapper].maptrack.drain() {
                    self.release(entry);
                }
                let handles = core::mem::take(&mut self.live[mapper]);
                self.stale[mapper].extend(handles);
            }
        }
    }

    fn check(&self) {
        for (mapper, handles) in self.live.iter().enumerate() {
            let maptrack = &self.domains.0[mapper].maptrack;
            assert_eq!(maptrack.live() as usize, handles.len());
            let mut addresses: Vec<_> = handles.iter().map(|handle| maptrack.lookup(*handle).unwrap().guest_address).collect();
            addresses.sort();
            addresses.dedup();
            assert_eq!(addresses.len(), handles.len(), "no two handles share a window page");
        }
        for granter in &self.domains.0 {
            let mut pinned = 0;
            for reference in (0..REFS).map(GrantRef) {
                let (pins, writable) = granter.active.pins(reference);
                let mut mapped = (0, 0);
                for (mapper, handles) in self.live.iter().enumerate() {
                    for handle in handles {
                        let pin = &self.domains.0[mapper].maptrack.lookup(*handle).unwrap().pin;
                        if pin.granter() == granter.id && pin.reference() == reference {
                            mapped.0 += 1;
                            mapped.1 += u32::from(pin.writable());
                            assert_eq!(pin.frame(), granter.p2m[pin.pfn() as usize]);
                        }
                    }
                }
                assert_eq!((pins, writable), mapped, "counts are the live mappings of {reference:?}");
                let flags = granter.table.flags(reference);
                assert_eq!(flags & entry_flags::READING != 0, pins > 0, "reading iff pinned");
                assert_eq!(flags & entry_flags::WRITING != 0, writable > 0, "writing iff pinned writable");
                pinned += u32::from(pins > 0);
            }
            assert_eq!(granter.active.pinned_refs(), pinned);
        }
    }
}

proptest! {
    #[test]
    fn random_grant_traffic_keeps_flags_counts_and_handles_consistent(operations in proptest::collection::vec(operation(), 1..200)) {
        let mut world = World::new();
        for operation in operations {
            world.apply(operation);
            world.check();
        }
        for mapper in 0..3 {
            world.apply(Operation::MapperTeardown { mapper });
        }
        world.check();
        for domain in &world.domains.0 {
            prop_assert_eq!(domain.active.pinned_refs(), 0, "teardown leaves nothing pinned");
        }
    }
}
