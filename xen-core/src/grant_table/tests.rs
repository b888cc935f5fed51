//! Host tests of grant tables: every check of a map, the reading/writing
//! flags across maps and unmaps, granters racing the compare-and-swap,
//! bounded maptracks, stale handles, teardown on both sides, copies and
//! batches.

use super::fake_entries::{FakeDomain, FakeDomains, FakeTable, RacingTable};
use super::*;
use xen_abi::grant_table::{copy as copy_layout, map_flags};
use xen_abi::layout::{GRANT_WINDOW_BASE, PAGE_SIZE};

const D1: DomId = DomId(1);
const D2: DomId = DomId(2);
const D3: DomId = DomId(3);
const R5: GrantRef = GrantRef(5);
const HOST: u32 = map_flags::HOST_MAP;
const HOST_READONLY: u32 = map_flags::HOST_MAP | map_flags::READONLY;
const READING: u16 = entry_flags::READING;
const WRITING: u16 = entry_flags::WRITING;

/// d1 (the granter, 16 pages) and d2 (the mapper); d1 grants pfn 10 to d2
/// as ref 5.
fn granter_and_mapper(readonly: bool) -> (FakeDomain, FakeDomain) {
    let mut granter = FakeDomain::new(1, 16);
    granter.table.grant(R5, D2, 10, readonly);
    (granter, FakeDomain::new(2, 16))
}

fn untouched(granter: &FakeDomain, mapper: &FakeDomain, reference: GrantRef) {
    assert_eq!(granter.table.flags(reference) & (READING | WRITING), 0);
    assert_eq!(granter.active.pinned_refs(), 0);
    assert_eq!(mapper.maptrack.live(), 0);
}

#[test]
fn a_map_is_checked_against_the_entry() {
    let (mut granter, mut mapper) = granter_and_mapper(false);
    let mut stranger = FakeDomain::new(3, 16);
    assert_eq!(stranger.map_from(&mut granter, R5, HOST), Err(status::PERMISSION_DENIED), "granted to d2, not d3");
    for reference in [DEFAULT_ENTRIES, u32::MAX] {
        assert_eq!(mapper.map_from(&mut granter, GrantRef(reference), HOST), Err(status::BAD_GNTREF));
    }
    assert_eq!(mapper.map_from(&mut granter, GrantRef(6), HOST), Err(status::PERMISSION_DENIED), "an empty entry");
    assert_eq!(mapper.map_from(&mut granter, R5, map_flags::READONLY), Err(status::BAD_GNTREF), "neither host nor device map");
    assert_eq!(mapper.map_from(&mut granter, R5, HOST | 1 << 4), Err(status::GENERAL_ERROR), "GNTMAP_contains_pte is not offered");
    granter.table.grant(GrantRef(7), D2, 16, false);
    assert_eq!(mapper.map_from(&mut granter, GrantRef(7), HOST), Err(status::BAD_PAGE), "pfn past the granter's RAM");
    granter.table.grant(GrantRef(8), D2, u32::MAX, false);
    assert_eq!(mapper.map_from(&mut granter, GrantRef(8), HOST), Err(status::BAD_PAGE));
    granter.table.set_flags(GrantRef(8), entry_flags::ACCEPT_TRANSFER);
    assert_eq!(mapper.map_from(&mut granter, GrantRef(8), HOST), Err(status::PERMISSION_DENIED));
    for reference in [5, 6, 7, 8] {
        untouched(&granter, &mapper, GrantRef(reference));
    }
    assert_eq!(granter.table.flags(R5), entry_flags::PERMIT_ACCESS);
}

#[test]
fn a_mapping_says_where_and_what() {
    let (mut granter, mut mapper) = granter_and_mapper(false);
    let mapping = mapper.map_from(&mut granter, R5, HOST | map_flags::DEVICE_MAP).unwrap();
    assert_eq!(mapping.guest_address, Some(GRANT_WINDOW_BASE));
    assert_eq!((mapping.pfn, mapping.frame), (10, granter.p2m[10]));
    assert_eq!(mapping.bus_address, Some(granter.p2m[10].address()));
    assert!(!mapping.readonly);
    let second = mapper.map_from(&mut granter, R5, map_flags::DEVICE_MAP | map_flags::READONLY).unwrap();
    assert_eq!((second.guest_address, second.readonly), (None, true));
    let entry = mapper.maptrack.lookup(second.handle).unwrap();
    assert_eq!(entry.guest_address, GRANT_WINDOW_BASE + PAGE_SIZE, "each handle owns one window page");
    assert_eq!((entry.pin.granter(), entry.pin.reference()), (D1, R5));
}

#[test]
fn a_readonly_grant_maps_only_readonly() {
    let (mut granter, mut mapper) = granter_and_mapper(true);
    assert_eq!(mapper.map_from(&mut granter, R5, HOST), Err(status::PERMISSION_DENIED));
    untouched(&granter, &mapper, R5);
    let mapping = mapper.map_from(&mut granter, R5, HOST_READONLY).unwrap();
    assert!(mapping.readonly);
    assert_eq!(granter.table.flags(R5) & (READING | WRITING), READING);
}

#[test]
fn reading_and_writing_follow_the_counts() {
    let (mut granter, mut mapper) = granter_and_mapper(false);
    let writable = mapper.map_from(&mut granter, R5, HOST).unwrap();
    let readonly = mapper.map_from(&mut granter, R5, HOST_READONLY).unwrap();
    assert_eq!(granter.table.flags(R5) & (READING | WRITING), READING | WRITING);
    assert_eq!(granter.active.pins(R5), (2, 1));
    assert!(!granter.table.try_revoke(R5), "a mapped grant cannot be revoked");
    let entry = mapper.maptrack.remove(writable.handle, 0).unwrap();
    let released = release(&mut granter.granter(), entry.pin).unwrap();
    assert_eq!(released, Released { frame: granter.p2m[10], ref_unpinned: false, frame_unpinned: false });
    assert_eq!(granter.table.flags(R5) & (READING | WRITING), READING, "the last writer clears writing");
    let entry = mapper.maptrack.remove(readonly.handle, readonly.guest_address.unwrap()).unwrap();
    let released = release(&mut granter.granter(), entry.pin).unwrap();
    assert!(released.ref_unpinned && released.frame_unpinned);
    untouched(&granter, &mapper, R5);
    assert!(granter.table.try_revoke(R5));
    assert_eq!(mapper.map_from(&mut granter, R5, HOST), Err(status::PERMISSION_DENIED), "revoked");
}

fn racing(change: impl FnMut(&mut FakeTable, GrantRef), races: u32) -> RacingTable<impl FnMut(&mut FakeTable, GrantRef)> {
    let mut table = FakeTable::new();
    table.grant(R5, D2, 10, false);
    RacingTable { table, races, change, attempts: 0 }
}

fn map_racing<F: FnMut(&mut FakeTable, GrantRef)>(table: &mut RacingTable<F>, writable: bool) -> (Result<Mapping, GrantStatus>, ActiveGrants) {
    let mut active = ActiveGrants::new(DEFAULT_ENTRIES).unwrap();
    let p2m: Vec<Frame> = (0..16).map(Frame).collect();
    let mut maptrack = Maptrack::new(8).unwrap();
    let mut granter = Granter { id: D1, entries: table, active: &mut active, p2m: &p2m };
    let flags = if writable { HOST } else { HOST_READONLY };
    let result = map(D2, &mut maptrack, &mut granter, R5, flags);
    assert_eq!(maptrack.live(), u32::from(result.is_ok()));
    (result, active)
}

#[test]
fn a_revoke_between_read_and_swap_fails_the_map_cleanly() {
    let mut table = racing(|table, reference| table.set_flags(reference, entry_flags::INVALID), 1);
    let (result, active) = map_racing(&mut table, true);
    assert_eq!(result, Err(status::PERMISSION_DENIED));
    assert_eq!(table.table.flags(R5), 0, "the granter's revoke stands; nothing set behind its back");
    assert_eq!((active.pinned_refs(), table.attempts), (0, 1));
    // Made read-only, or granted to someone else, in the window: refused.
    let mut table = racing(|table, reference| table.set_flags(reference, entry_flags::PERMIT_ACCESS | entry_flags::READONLY), 1);
    assert_eq!(map_racing(&mut table, true).0, Err(status::PERMISSION_DENIED));
    assert_eq!(table.table.flags(R5), entry_flags::PERMIT_ACCESS | entry_flags::READONLY);
    let mut table = racing(|table, reference| table.grant(reference, D3, 10, false), 1);
    assert_eq!(map_racing(&mut table, false).0, Err(status::PERMISSION_DENIED));
    assert_eq!(table.table.flags(R5), entry_flags::PERMIT_ACCESS);
}

#[test]
fn a_harmless_race_is_retried_and_an_endless_one_gives_up() {
    let flip = |table: &mut FakeTable, reference: GrantRef| {
        let flags = table.flags(reference);
        table.set_flags(reference, flags ^ 1 << 5);
    };
    let mut table = racing(flip, 1);
    let (result, active) = map_racing(&mut table, true);
    assert!(result.is_ok());
    assert_eq!((table.attempts, active.pins(R5)), (2, (1, 1)));
    assert_eq!(table.table.flags(R5) & (READING | WRITING), READING | WRITING);
    let mut table = racing(flip, u32::MAX);
    let (result, active) = map_racing(&mut table, true);
    assert_eq!(result, Err(status::EAGAIN));
    assert_eq!((table.attempts, active.pinned_refs()), (MAX_CLAIM_ATTEMPTS, 0));
    assert_eq!(table.table.flags(R5) & (READING | WRITING), 0);
}

#[test]
fn a_pinned_ref_serves_one_domain() {
    let (mut granter, mut mapper) = granter_and_mapper(false);
    let mut stranger = FakeDomain::new(3, 16);
    mapper.map_from(&mut granter, R5, HOST).unwrap();
    // The granter rewrites the entry for d3 while d2 still maps it.
    let flags = granter.table.flags(R5);
    granter.table.grant(R5, D3, 11, false);
    granter.table.set_flags(R5, flags);
    assert_eq!(stranger.map_from(&mut granter, R5, HOST), Err(status::GENERAL_ERROR));
    assert_eq!(granter.active.pins(R5), (1, 1));
}

#[test]
fn the_maptrack_is_bounded() {
    assert!(Maptrack::new(0).is_none());
    assert!(Maptrack::new(DEFAULT_MAPTRACK_ENTRIES + 1).is_none());
    let (mut granter, mut mapper) = granter_and_mapper(false);
    mapper.maptrack = Maptrack::new(4).unwrap();
    let handles: Vec<_> = (0..4).map(|_| mapper.map_from(&mut granter, R5, HOST_READONLY).unwrap().handle).collect();
    assert_eq!(mapper.map_from(&mut granter, R5, HOST_READONLY), Err(status::NO_SPACE));
    assert_eq!(granter.active.pins(R5), (4, 0), "a refused map pins nothing");
    let entry = mapper.maptrack.remove(handles[2], 0).unwrap();
    release(&mut granter.granter(), entry.pin).unwrap();
    let again = mapper.map_from(&mut granter, R5, HOST_READONLY).unwrap();
    assert_eq!(again.guest_address, Some(GRANT_WINDOW_BASE + 2 * PAGE_SIZE), "the freed slot is reused");
    assert_ne!(again.handle, handles[2], "with a new generation");
    assert_eq!(mapper.maptrack.live(), 4);
}

#[test]
fn a_stale_handle_unmaps_nothing() {
    let (mut granter, mut mapper) = granter_and_mapper(false);
    mapper.maptrack = Maptrack::new(1).unwrap();
    let first = mapper.map_from(&mut granter, R5, HOST).unwrap();
    let entry = mapper.maptrack.remove(first.handle, 0).unwrap();
    release(&mut granter.granter(), entry.pin).unwrap();
    let second = mapper.map_from(&mut granter, R5, HOST_READONLY).unwrap();
    assert_eq!(second.guest_address, first.guest_address);
    assert_eq!(second.handle, GrantHandle(1 << 12), "slot 0, generation 1");
    assert_eq!(mapper.maptrack.remove(first.handle, 0), Err(status::BAD_HANDLE));
    for handle in [1, 2 << 12, u32::MAX] {
        assert_eq!(mapper.maptrack.remove(GrantHandle(handle), 0), Err(status::BAD_HANDLE), "{handle}");
    }
    assert_eq!(mapper.maptrack.remove(second.handle, GRANT_WINDOW_BASE + PAGE_SIZE), Err(status::BAD_VIRT_ADDR));
    assert!(mapper.maptrack.lookup(second.handle).is_some());
    assert_eq!(granter.active.pins(R5), (1, 0));
}

#[test]
fn a_pin_goes_back_only_to_its_granter() {
    let (mut granter, mut mapper) = granter_and_mapper(false);
    let mut other = FakeDomain::new(3, 16);
    let mapping = mapper.map_from(&mut granter, R5, HOST).unwrap();
    let entry = mapper.maptrack.remove(mapping.handle, 0).unwrap();
    let pin = release(&mut other.granter(), entry.pin).unwrap_err();
    assert_eq!(granter.active.pins(R5), (1, 1));
    assert!(release(&mut granter.granter(), pin).unwrap().ref_unpinned);
}

#[test]
fn a_dying_mapper_gives_everything_back() {
    let (mut granter, mut mapper) = granter_and_mapper(false);
    let mut second_granter = FakeDomain::new(3, 16);
    granter.table.grant(GrantRef(6), D2, 11, true);
    second_granter.table.grant(R5, D2, 1, false);
    mapper.map_from(&mut granter, R5, HOST).unwrap();
    mapper.map_from(&mut granter, R5, HOST_READONLY).unwrap();
    mapper.map_from(&mut granter, GrantRef(6), HOST_READONLY).unwrap();
    mapper.map_from(&mut second_granter, R5, HOST).unwrap();
    let entries = mapper.maptrack.drain();
    assert_eq!((entries.len(), mapper.maptrack.live()), (4, 0));
    for entry in entries {
        let owner = if entry.pin.granter() == D1 { &mut granter } else { &mut second_granter };
        release(&mut owner.granter(), entry.pin).unwrap();
    }
    for (domain, reference) in [(&granter, R5), (&granter, GrantRef(6)), (&second_granter, R5)] {
        untouched(domain, &mapper, reference);
    }
}

#[test]
fn a_dying_granter_keeps_frames_others_map() {
    let (mut granter, mut mapper) = granter_and_mapper(false);
    granter.table.grant(GrantRef(6), D2, 10, true);
    granter.table.grant(GrantRef(7), D2, 12, false);
    let first = mapper.map_from(&mut granter, R5, HOST).unwrap();
    let second = mapper.map_from(&mut granter, GrantRef(6), HOST_READONLY).unwrap();
    let third = mapper.map_from(&mut granter, GrantRef(7), HOST).unwrap();
    let kept = granter.active.frames_still_mapped();
    let kept_frames: Vec<_> = kept.iter().map(|still| (still.reference, still.frame, still.user)).collect();
    assert_eq!(kept_frames, vec![(R5, granter.p2m[10], D2), (GrantRef(6), granter.p2m[10], D2), (GrantRef(7), granter.p2m[12], D2)]);
    // The granter dies: its table is gone, its pins stay until released.
    let mut active = core::mem::replace(&mut granter.active, ActiveGrants::new(0).unwrap());
    let mut dead = Granter { id: D1, entries: &mut DetachedEntries, active: &mut active, p2m: &[] };
    assert_eq!(map(D2, &mut mapper.maptrack, &mut dead, R5, HOST), Err(status::BAD_GNTREF));
    let mut frames_freed = Vec::new();
    for handle in [first.handle, third.handle, second.handle] {
        let entry = mapper.maptrack.remove(handle, 0).unwrap();
        let released = release(&mut dead, entry.pin).unwrap();
        if released.frame_unpinned {
            frames_freed.push(released.frame);
        }
    }
    assert_eq!(frames_freed, vec![granter.p2m[12], granter.p2m[10]], "pfn 10 is freed after its second ref goes");
    assert_eq!(dead.active.pinned_refs(), 0);
}

fn copy_block(source: (u64, u16, u16), dest: (u64, u16, u16), length: u16, flags: u16) -> [u8; copy_layout::SIZE] {
    let mut block = [0u8; copy_layout::SIZE];
    for (base, (target, domid, offset)) in [(copy_layout::SOURCE, source), (copy_layout::DEST, dest)] {
        block[base..base + 8].copy_from_slice(&target.to_le_bytes());
        block[base + 8..base + 10].copy_from_slice(&domid.to_le_bytes());
        block[base + 10..base + 12].copy_from_slice(&offset.to_le_bytes());
    }
    block[32..34].copy_from_slice(&length.to_le_bytes());
    block[34..36].copy_from_slice(&flags.to_le_bytes());
    block
}

const SELF: u16 = DomId::SELF.0;
const BOTH_GREF: u16 = copy_layout::SOURCE_GREF | copy_layout::DEST_GREF;

fn copy_world() -> FakeDomains {
    let (mut granter, mapper) = granter_and_mapper(false);
    granter.table.grant(GrantRef(6), D2, 11, true);
    granter.table.grant(GrantRef(7), D2, 12, false);
    FakeDomains(vec![granter, mapper, FakeDomain::new(3, 16)])
}

#[test]
fn copy_decodes_xen_layout() {
    let request = CopyRequest::decode(&copy_block((0x1_0000_0005, 1, 100), (42, SELF, 7), 300, copy_layout::SOURCE_GREF));
    assert_eq!(request.source, CopyPointer { target: CopyTarget::Reference(R5), domid: D1, offset: 100 });
    assert_eq!(request.dest, CopyPointer { target: CopyTarget::OwnFrame(42), domid: DomId::SELF, offset: 7 });
    assert_eq!((request.length, request.flags), (300, copy_layout::SOURCE_GREF));
}

#[test]
fn copy_pins_both_ends_for_the_copy_only() {
    let mut domains = copy_world();
    let request = CopyRequest::decode(&copy_block((5, 1, 96), (7, 1, 0), 4000, BOTH_GREF));
    let mut seen = None;
    copy(&mut domains, D2, &request, |plan| seen = Some((plan.source, plan.dest, plan.length))).unwrap();
    let frames = &domains.0[0].p2m;
    assert_eq!(seen, Some((CopyEnd { frame: frames[10], offset: 96 }, CopyEnd { frame: frames[12], offset: 0 }, 4000)));
    let plan = begin_copy(&mut domains, D2, &request).unwrap();
    assert_eq!(domains.0[0].table.flags(R5) & (READING | WRITING), READING);
    assert_eq!(domains.0[0].table.flags(GrantRef(7)) & (READING | WRITING), READING | WRITING);
    end_copy(&mut domains, plan);
    untouched(&domains.0[0], &domains.0[1], R5);
    untouched(&domains.0[0], &domains.0[1], GrantRef(7));
    // Own frame to a granted frame.
    let request = CopyRequest::decode(&copy_block((3, SELF, 0), (7, 1, 8), 8, copy_layout::DEST_GREF));
    let plan = begin_copy(&mut domains, D2, &request).unwrap();
    assert_eq!((plan.source.frame, plan.dest.frame), (domains.0[1].p2m[3], domains.0[0].p2m[12]));
    end_copy(&mut domains, plan);
}

#[test]
fn copy_arguments_are_checked_and_failures_release_everything() {
    let mut domains = copy_world();
    let cases = [
        (copy_block((5, 1, 0), (7, 1, 0), 0, BOTH_GREF), status::BAD_COPY_ARG),
        (copy_block((5, 1, 0), (7, 1, 0), 4097, BOTH_GREF), status::BAD_COPY_ARG),
        (copy_block((5, 1, 4000), (7, 1, 0), 97, BOTH_GREF), status::BAD_COPY_ARG),
        (copy_block((5, 1, 0), (7, 1, 4095), 2, BOTH_GREF), status::BAD_COPY_ARG),
        (copy_block((5, 1, 0), (7, 1, 0), 8, BOTH_GREF | 4), status::BAD_COPY_ARG),
        (copy_block((3, 1, 0), (7, 1, 0), 8, copy_layout::DEST_GREF), status::PERMISSION_DENIED),
        (copy_block((5, 1, 0), (16, SELF, 0), 8, copy_layout::SOURCE_GREF), status::BAD_PAGE),
        (copy_block((5, 9, 0), (7, 1, 0), 8, BOTH_GREF), status::BAD_DOMAIN),
        (copy_block((5, 1, 0), (6, 1, 0), 8, BOTH_GREF), status::PERMISSION_DENIED),
        (copy_block((5, 3, 0), (7, 1, 0), 8, BOTH_GREF), status::PERMISSION_DENIED),
        (copy_block((5, 1, 0), (600, 1, 0), 8, BOTH_GREF), status::BAD_GNTREF),
    ];
    for (block, expected) in cases {
        let request = CopyRequest::decode(&block);
        assert_eq!(copy(&mut domains, D2, &request, |_| panic!("no copy")), Err(expected), "{request:?}");
        for reference in [R5, GrantRef(6), GrantRef(7)] {
            untouched(&domains.0[0], &domains.0[1], reference);
        }
    }
    // d3 was granted nothing: its refs are not d2's to use.
    let request = CopyRequest::decode(&copy_block((5, 1, 0), (2, SELF, 0), 8, copy_layout::SOURCE_GREF));
    assert_eq!(copy(&mut domains, D3, &request, |_| {}), Err(status::PERMISSION_DENIED));
}

#[test]
fn batches_are_sliced_and_stop_at_a_fault() {
    let mut done = Vec::new();
    let mut start = 0;
    loop {
        match run_batch(start, 200, BATCH_BUDGET, |index| {
            done.push(index);
            Ok(())
        }) {
            BatchOutcome::Continue { next } => {
                assert_eq!(next - start, BATCH_BUDGET);
                start = next;
            }
            outcome => {
                assert_eq!(outcome, BatchOutcome::Finished);
                break;
            }
        }
    }
    assert_eq!(done, (0..200).collect::<Vec<_>>());
    let mut done = Vec::new();
    let outcome = run_batch(0, 10, BATCH_BUDGET, |index| {
        if index == 4 {
            return Err(xen_abi::errno::EFAULT);
        }
        done.push(index);
        Ok(())
    });
    assert_eq!(outcome, BatchOutcome::Aborted { index: 4, errno: xen_abi::errno::EFAULT });
    assert_eq!(done, vec![0, 1, 2, 3], "earlier entries stay done");
    assert_eq!(run_batch(11, 10, 64, |_| Ok(())), BatchOutcome::Aborted { index: 11, errno: xen_abi::errno::EINVAL });
    assert_eq!(run_batch(0, 5, 0, |_| Ok(())), BatchOutcome::Continue { next: 1 }, "a zero budget still progresses");
    assert_eq!(run_batch(5, 5, 64, |_| panic!("nothing to do")), BatchOutcome::Finished);
}

#[test]
fn the_header_word_is_flags_then_domid() {
    let header = EntryHeader { flags: 0x1234, domid: 0x7ff0 };
    assert_eq!(header.to_word(), 0x7ff0_1234);
    assert_eq!(EntryHeader::from_word(0x7ff0_1234), header);
}
