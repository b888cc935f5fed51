use super::*;
use crate::host::{with_buffer_responder, Call};
use xen_abi::errno::{EFAULT, EINVAL};

fn table() -> std::vec::Vec<GrantEntry> {
    (0..ENTRIES_PER_PAGE).map(|_| GrantEntry::new()).collect()
}

#[test]
fn granting_writes_the_entry_then_the_flags() {
    let entries = table();
    let grants = GrantTable::over(&entries);
    assert_eq!(grants.grant_access(8, 2, 0x1234, false), Ok(()));
    let entry = grants.get(8).unwrap();
    assert_eq!((entry.flags(), entry.domid(), entry.frame()), (entry_flags::PERMIT_ACCESS, 2, 0x1234));
    assert_eq!(grants.grant_access(9, 3, 7, true), Ok(()));
    assert_eq!(grants.get(9).unwrap().flags(), entry_flags::PERMIT_ACCESS | entry_flags::READONLY);
    assert_eq!(grants.grant_access(8, 2, 1, false), Err(GrantError::InUse(entry_flags::PERMIT_ACCESS)));
    assert_eq!(grants.grant_access(0, 2, 1, false), Err(GrantError::Reserved));
    assert_eq!(grants.grant_access(1, 2, 1, false), Err(GrantError::Reserved));
    assert_eq!(grants.grant_access(512, 2, 1, false), Err(GrantError::BadRef));
    assert_eq!(grants.grant_access(10, 2, 1 << 32, false), Err(GrantError::FrameTooLarge));
    assert_eq!(grants.get(10).unwrap().flags(), 0, "nothing written");
}

#[test]
fn revoking_fails_while_the_hypervisor_uses_the_page() {
    let entries = table();
    let grants = GrantTable::over(&entries);
    grants.grant_access(8, 2, 5, false).unwrap();
    let entry = grants.get(8).unwrap();
    entry.hypervisor_sets(entry_flags::READING | entry_flags::WRITING);
    let busy = entry_flags::PERMIT_ACCESS | entry_flags::READING | entry_flags::WRITING;
    assert_eq!(grants.end_access(8), Err(GrantError::Busy(busy)));
    assert_eq!(entry.flags(), busy, "not revoked");
    // Unmapped: the hypervisor clears reading/writing.
    entry.flags.fetch_and(!(entry_flags::READING | entry_flags::WRITING), Ordering::SeqCst);
    assert_eq!(grants.end_access(8), Ok(()));
    assert_eq!(entry.flags(), 0);
    assert_eq!(grants.end_access(8), Ok(()), "revoking twice is harmless");
    assert_eq!(grants.end_access(600), Err(GrantError::BadRef));
    // Only reading (a read-only mapping) is busy too.
    grants.grant_access(8, 2, 5, true).unwrap();
    entry.hypervisor_sets(entry_flags::READING);
    assert!(matches!(grants.end_access(8), Err(GrantError::Busy(_))));
}

#[test]
fn revoking_races_with_a_mapper() {
    // A thread plays the hypervisor: CAS reading|writing on and off while
    // we revoke; revocation must never succeed while they are set, and
    // must succeed eventually.
    for _ in 0..50 {
        let entries = table();
        let grants = GrantTable::over(&entries);
        grants.grant_access(8, 2, 5, false).unwrap();
        let entry = grants.get(8).unwrap();
        let mapped = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..100 {
                    let permit = entry_flags::PERMIT_ACCESS;
                    let busy = permit | entry_flags::READING | entry_flags::WRITING;
                    if entry.flags.compare_exchange(permit, busy, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                        mapped.store(true, Ordering::SeqCst);
                        std::thread::yield_now();
                        mapped.store(false, Ordering::SeqCst);
                        entry.flags.fetch_and(!(entry_flags::READING | entry_flags::WRITING), Ordering::SeqCst);
                    } else {
                        break;
                    }
                }
            });
            loop {
                match grants.end_access(8) {
                    Ok(()) => {
                        assert!(!mapped.load(Ordering::SeqCst), "revoked while mapped");
                        break;
                    }
                    Err(GrantError::Busy(_)) => std::thread::yield_now(),
                    Err(other) => panic!("{other}"),
                }
            }
        });
        assert_eq!(entry.flags(), 0);
    }
}

#[test]
fn status_names() {
    assert_eq!(std::format!("{}", GrantStatus(status::PERMISSION_DENIED)), "GNTST_permission_denied");
    assert_eq!(std::format!("{}", GrantStatus(0)), "GNTST_okay");
    assert_eq!(std::format!("{}", GrantStatus(-99)), "GNTST_?(-99)");
    assert_eq!(std::format!("{}", Failure::Call(Errno::new(EFAULT))), "EFAULT");
}

/// Answers map, unmap and copy like a hypervisor that maps ref 8 of d2 at
/// the window's third page and denies everything else.
fn hypervisor(call: &Call, blocks: &mut [u8]) -> i64 {
    if call.number != GRANT_TABLE_OP {
        return -EINVAL;
    }
    let count = call.arguments[2] as usize;
    match call.arguments[0] {
        abi::MAP_GRANT_REF => {
            assert_eq!(blocks.len(), count * map_block::SIZE);
            for block in blocks.chunks_mut(map_block::SIZE) {
                let flags = u32::from_le_bytes(get(block, map_block::FLAGS));
                assert_ne!(flags & map_flags::HOST_MAP, 0);
                let reference = u32::from_le_bytes(get(block, map_block::REF));
                let dom = u16::from_le_bytes(get(block, map_block::DOM));
                if reference == 8 && dom == 2 {
                    put(block, map_block::HOST_ADDR, &(GRANT_WINDOW_BASE + 2 * 4096).to_le_bytes());
                    put(block, map_block::HANDLE, &77u32.to_le_bytes());
                    let bus = if flags & map_flags::DEVICE_MAP != 0 { 0xabc000u64 } else { 0 };
                    put(block, map_block::DEV_BUS_ADDR, &bus.to_le_bytes());
                    put(block, map_block::STATUS, &0i16.to_le_bytes());
                } else if reference == 99 {
                    // A lying hypervisor: okay, but an address outside the window.
                    put(block, map_block::HOST_ADDR, &0x1000u64.to_le_bytes());
                } else {
                    put(block, map_block::STATUS, &status::PERMISSION_DENIED.to_le_bytes());
                }
            }
            0
        }
        abi::UNMAP_GRANT_REF => {
            for block in blocks.chunks_mut(unmap_block::SIZE) {
                let handle = u32::from_le_bytes(get(block, unmap_block::HANDLE));
                let address = u64::from_le_bytes(get(block, unmap_block::HOST_ADDR));
                let good = handle == 77 && address == GRANT_WINDOW_BASE + 2 * 4096;
                let status = if good { status::OKAY } else { status::BAD_HANDLE };
                put(block, unmap_block::STATUS, &status.to_le_bytes());
            }
            0
        }
        abi::COPY => {
            for block in blocks.chunks_mut(copy_block::SIZE) {
                let flags = u16::from_le_bytes(get(block, copy_block::FLAGS));
                put(block, copy_block::STATUS, &if flags == copy_block::SOURCE_GREF { 0 } else { status::BAD_COPY_ARG }.to_le_bytes());
            }
            0
        }
        _ => -EINVAL,
    }
}

#[test]
fn map_and_unmap() {
    let (result, calls) = with_buffer_responder(hypervisor, || {
        let mapping = map(2, 8, false).unwrap();
        assert_eq!(mapping.address(), GRANT_WINDOW_BASE + 2 * 4096);
        assert_eq!((mapping.handle(), mapping.bus_address(), mapping.granter(), mapping.reference()), (77, 0, 2, 8));
        assert!(mapping.page().is_none(), "nothing is mapped on the host");
        assert_eq!(map(3, 8, true), Err(Failure::Status(GrantStatus(status::PERMISSION_DENIED))));
        assert_eq!(map(2, 99, false), Err(Failure::BadAnswer));
        unmap(mapping)
    });
    assert_eq!(result, Ok(()));
    assert_eq!(calls.len(), 4);
    assert!(calls.iter().all(|call| call.arguments[2] == 1), "one element per call");
    let (result, _) = with_buffer_responder(|_, _| -EFAULT, || map(2, 8, false));
    assert_eq!(result, Err(Failure::Call(Errno::new(EFAULT))));
}

#[test]
fn batches_are_split_and_keep_per_element_status() {
    let specs: std::vec::Vec<MapSpec> =
        (0..70).map(|index| MapSpec { granter: 2, reference: if index % 2 == 0 { 8 } else { 9 }, readonly: false, device: true }).collect();
    let (results, calls) = with_buffer_responder(hypervisor, || map_batch(&specs));
    let results = results.unwrap();
    assert_eq!(results.len(), 70);
    assert_eq!(calls.iter().map(|call| call.arguments[2]).collect::<std::vec::Vec<_>>(), [64, 6]);
    assert_eq!(results[0].as_ref().unwrap().bus_address(), 0xabc000);
    assert_eq!(results[1], Err(Failure::Status(GrantStatus(status::PERMISSION_DENIED))));
    let mappings: std::vec::Vec<Mapping> = results.into_iter().filter_map(Result::ok).collect();
    assert_eq!(mappings.len(), 35);
    let (kept, calls) = with_buffer_responder(hypervisor, || unmap_batch(mappings));
    assert!(kept.is_empty());
    assert_eq!(calls.len(), 1);
    // A refused call hands back what earlier calls mapped.
    fn refuse_second(call: &Call, blocks: &mut [u8]) -> i64 {
        if call.arguments[2] == 6 {
            -EFAULT
        } else {
            hypervisor(call, blocks)
        }
    }
    let (result, _) = with_buffer_responder(refuse_second, || map_batch(&specs));
    let refused = result.unwrap_err();
    assert_eq!((refused.mapped.len(), refused.errno), (32, Errno::new(EFAULT)));
}

#[test]
fn copy_encoding() {
    let source = CopyPointer { ref_or_gmfn: 8, domid: 2, offset: 16, is_ref: true };
    let dest = CopyPointer { ref_or_gmfn: 0x1_0000_0005, domid: DomId::SELF.0, offset: 0, is_ref: false };
    let mut block = [0xffu8; copy_block::SIZE];
    encode_copy(&source, &dest, 512, &mut block);
    assert_eq!(&block[0..16], &[8, 0, 0, 0, 0, 0, 0, 0, 2, 0, 16, 0, 0, 0, 0, 0]);
    assert_eq!(&block[16..32], &[5, 0, 0, 0, 1, 0, 0, 0, 0xf0, 0x7f, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&block[32..40], &[0, 2, 1, 0, 0, 0, 0, 0], "len 512, flags source_gref, status 0");
}

#[test]
fn copies() {
    let page = PageBuffer::new();
    let granted = CopySide::Granted { domid: 2, reference: 8, offset: 0 };
    let (result, calls) = with_buffer_responder(hypervisor, || {
        // A local page on the host is not a frame of RAM: refused locally.
        let local = copy(&CopySpec { source: granted, dest: CopySide::Local { page: &page, offset: 0 }, length: 8 });
        let both = copy(&CopySpec { source: granted, dest: granted, length: 8 });
        let batch = copy_batch(&[
            CopySpec { source: granted, dest: CopySide::Local { page: &page, offset: 0 }, length: 8 },
            CopySpec { source: granted, dest: granted, length: 8 },
        ]);
        (local, both, batch)
    });
    assert_eq!(result.0, Err(Failure::NotOurPage));
    assert_eq!(result.1, Err(Failure::Status(GrantStatus(status::BAD_COPY_ARG))));
    assert_eq!(result.2, Ok(std::vec![Err(Failure::NotOurPage), Err(Failure::Status(GrantStatus(status::BAD_COPY_ARG)))]));
    assert_eq!(calls.len(), 2, "nothing sent for the local-only failure");
}
