//! A hostile frontend (ring-protocol's misbehaving peer and hand-written requests) beside
//! a well-behaved one: every bad request is answered with an error or disconnects the
//! hostile frontend alone, and the well-behaved frontend keeps being served.

mod common;

use blkback::memory::MemoryExecutor;
use blkback::{BlockBackend, DisconnectReason, DiskMode, FrontendId, VirtualDisk};
use blkfront::Blkfront;
use common::*;
use ring_protocol::blkif::{
    Blkif, OPERATION_DISCARD, OPERATION_FLUSH_DISKCACHE, OPERATION_INDIRECT, OPERATION_READ,
    OPERATION_WRITE, OPERATION_WRITE_BARRIER, STATUS_ERROR, STATUS_NOT_SUPPORTED, STATUS_OKAY,
};
use ring_protocol::test_utils::{HostileFrontend, Misbehavior};
use ring_protocol::{PageBuffer, RingError, SharedPage};

/// The hostile frontend's extent: physical sectors 512..768.
const HOSTILE_FIRST: u64 = 512;
const HOSTILE_SECTORS: u64 = 256;

struct Setup<'page> {
    table: blkback::memory::SharedGrantTable,
    backend: BlockBackend<'page, MemoryExecutor>,
    banking: Blkfront<'page, ModelPages>,
    hostile: HostileFrontend<'page, Blkif>,
    hostile_page: SharedPage<'page>,
    hostile_id: FrontendId,
    banking_id: FrontendId,
}

fn setup<'page>(banking_ring: &'page PageBuffer, hostile_ring: &'page PageBuffer) -> Setup<'page> {
    let (table, executor) = world(PHYSICAL_SECTORS);
    let mut backend = BlockBackend::new(executor, PHYSICAL_SECTORS);
    let banking_disk = VirtualDisk::new(0, 512, DiskMode::ReadWrite).expect("disk");
    let hostile_disk =
        VirtualDisk::new(HOSTILE_FIRST, HOSTILE_SECTORS, DiskMode::ReadWrite).expect("disk");
    let hostile_page = SharedPage::new(hostile_ring);
    let hostile = HostileFrontend::<Blkif>::initialize(hostile_page.clone());
    let banking_id = backend
        .add_frontend(BANKING, SharedPage::new(banking_ring), banking_disk)
        .expect("add banking");
    let hostile_id = backend
        .add_frontend(UNTRUSTED, hostile_page.clone(), hostile_disk)
        .expect("add hostile");
    let (pages, data_pages) = pages_for(&table, BANKING, 22);
    let banking = Blkfront::new(SharedPage::new(banking_ring), pages, data_pages, DRIVER, 0);
    Setup {
        table,
        backend,
        banking,
        hostile,
        hostile_page,
        hostile_id,
        banking_id,
    }
}

impl Setup<'_> {
    /// Produces `bytes` as the hostile frontend's next request, serves a round and returns
    /// the response to it.
    fn answer(&mut self, bytes: &[u8; 112]) -> (u64, u8, i16) {
        let index = self.hostile.request_producer();
        self.hostile.produce_raw(bytes);
        let _ = self.backend.serve_round(32);
        assert!(
            self.backend.is_connected(self.hostile_id),
            "bad request disconnected"
        );
        assert_eq!(self.hostile.response_producer(), index.wrapping_add(1));
        response_at(&self.hostile_page, index)
    }

    fn assert_hostile_stayed_inside(&self) {
        let disk = self.backend.executor().disk();
        let outside_start = &disk[..HOSTILE_FIRST as usize * 512];
        // Banking's test writes are at sectors 3..23; the hostile extent ends at 768.
        let outside_end = &disk[(HOSTILE_FIRST + HOSTILE_SECTORS) as usize * 512..];
        assert!(outside_start[..3 * 512]
            .iter()
            .all(|byte| *byte == DISK_FILL));
        assert!(outside_start[23 * 512..]
            .iter()
            .all(|byte| *byte == DISK_FILL));
        assert!(outside_end.iter().all(|byte| *byte == DISK_FILL));
    }
}

/// An indirect request with `segment_count` segments in one indirect page.
fn indirect(operation: u8, segment_count: u16, id: u64) -> [u8; 112] {
    let mut bytes = raw_request(OPERATION_INDIRECT, operation, id, 0, &[]);
    bytes[2..4].copy_from_slice(&segment_count.to_le_bytes());
    bytes[28..32].copy_from_slice(&99u32.to_le_bytes());
    bytes
}

#[test]
fn bad_requests_are_answered_with_errors_and_others_keep_being_served() {
    let (banking_ring, hostile_ring) = (PageBuffer::new(), PageBuffer::new());
    let mut s = setup(&banking_ring, &hostile_ring);
    let (_, own) = granted_page(&s.table, UNTRUSTED, 0x11, false);
    let (_, own_read_only) = granted_page(&s.table, UNTRUSTED, 0x12, true);
    let (_, to_someone_else) = {
        let mut table = s.table.borrow_mut();
        let page = table.new_page(UNTRUSTED, 0x13);
        (
            page,
            table
                .grant(UNTRUSTED, page, blkback::DomId(9), false)
                .expect("grant"),
        )
    };
    let (banking_page, banking_grant) = granted_page(&s.table, BANKING, 0x42, false);
    let own = own.0;
    let last = HOSTILE_SECTORS - 1;

    let cases: Vec<(&str, [u8; 112], i16)> = vec![
        (
            "valid read",
            raw_request(OPERATION_READ, 1, 1, 0, &[(own, 0, 7)]),
            STATUS_OKAY,
        ),
        (
            "nr_segments 0",
            raw_request(OPERATION_READ, 0, 2, 0, &[]),
            STATUS_ERROR,
        ),
        (
            "nr_segments 12",
            raw_request(OPERATION_WRITE, 12, 3, 0, &[(own, 0, 0); 11]),
            STATUS_ERROR,
        ),
        (
            "nr_segments 255",
            raw_request(OPERATION_READ, 255, 4, 0, &[(own, 0, 0); 11]),
            STATUS_ERROR,
        ),
        (
            "first > last",
            raw_request(OPERATION_READ, 1, 5, 0, &[(own, 5, 4)]),
            STATUS_ERROR,
        ),
        (
            "last_sect 8",
            raw_request(OPERATION_READ, 1, 6, 0, &[(own, 0, 8)]),
            STATUS_ERROR,
        ),
        (
            "sector past end",
            raw_request(OPERATION_WRITE, 1, 7, HOSTILE_SECTORS, &[(own, 0, 0)]),
            STATUS_ERROR,
        ),
        (
            "straddles end",
            raw_request(OPERATION_WRITE, 1, 8, last, &[(own, 0, 1)]),
            STATUS_ERROR,
        ),
        (
            "sector+count overflows",
            raw_request(
                OPERATION_WRITE,
                2,
                9,
                u64::MAX - 8,
                &[(own, 0, 7), (own, 0, 7)],
            ),
            STATUS_ERROR,
        ),
        (
            "grant of another domain",
            raw_request(OPERATION_READ, 1, 10, 0, &[(banking_grant.0, 0, 7)]),
            STATUS_ERROR,
        ),
        (
            "grant never made",
            raw_request(OPERATION_WRITE, 1, 11, 0, &[(0xdead, 0, 7)]),
            STATUS_ERROR,
        ),
        (
            "grant to another backend",
            raw_request(OPERATION_WRITE, 1, 12, 0, &[(to_someone_else.0, 0, 0)]),
            STATUS_ERROR,
        ),
        (
            "read into read-only grant",
            raw_request(OPERATION_READ, 1, 13, 0, &[(own_read_only.0, 0, 0)]),
            STATUS_ERROR,
        ),
        (
            "second segment bad grant",
            raw_request(
                OPERATION_WRITE,
                2,
                14,
                0,
                &[(own, 0, 7), (banking_grant.0, 0, 7)],
            ),
            STATUS_ERROR,
        ),
        (
            "unknown operation",
            raw_request(9, 1, 15, 0, &[(own, 0, 0)]),
            STATUS_NOT_SUPPORTED,
        ),
        (
            "operation 255",
            raw_request(255, 1, 16, 0, &[(own, 0, 0)]),
            STATUS_NOT_SUPPORTED,
        ),
        (
            "indirect, 0 segments",
            raw_request(OPERATION_INDIRECT, OPERATION_READ, 17, 0, &[(1, 0, 0)]),
            STATUS_ERROR,
        ),
        (
            "indirect",
            indirect(OPERATION_WRITE, 1, 170),
            STATUS_NOT_SUPPORTED,
        ),
        (
            "indirect, bad operation",
            indirect(OPERATION_FLUSH_DISKCACHE, 1, 171),
            STATUS_ERROR,
        ),
        (
            "write barrier",
            raw_request(OPERATION_WRITE_BARRIER, 0, 18, 0, &[]),
            STATUS_NOT_SUPPORTED,
        ),
        (
            "flush with data past end",
            raw_request(
                OPERATION_FLUSH_DISKCACHE,
                1,
                19,
                HOSTILE_SECTORS,
                &[(own, 0, 0)],
            ),
            STATUS_ERROR,
        ),
        (
            "empty flush",
            raw_request(OPERATION_FLUSH_DISKCACHE, 0, 20, 0, &[]),
            STATUS_OKAY,
        ),
        (
            "valid write, last sector",
            raw_request(OPERATION_WRITE, 1, 21, last, &[(own, 7, 7)]),
            STATUS_OKAY,
        ),
    ];
    for (index, (name, bytes, expected)) in cases.iter().enumerate() {
        let (id, _operation, status) = s.answer(bytes);
        assert_eq!(
            id,
            u64::from_le_bytes(bytes[8..16].try_into().expect("id")),
            "{name}"
        );
        assert_eq!(status, *expected, "{name}");
        assert_served(&mut s.banking, &mut s.backend, index as u8);
        s.assert_hostile_stayed_inside();
    }
    // Banking's granted page was never written through the hostile request.
    assert!(s
        .table
        .borrow()
        .page(BANKING, banking_page)
        .expect("page")
        .iter()
        .all(|b| *b == 0x42));
    let counters = s.backend.counters(s.hostile_id).expect("counters");
    assert_eq!(counters.requests_served, cases.len() as u64);
    assert_eq!(counters.errors, cases.len() as u64 - 3);
    assert!(s.backend.executor().touched_sectors().iter().all(|sector| {
        (HOSTILE_FIRST..HOSTILE_FIRST + HOSTILE_SECTORS).contains(sector) || *sector < 512
    }));
    assert_eq!(counters.disconnect, None);
    assert_eq!(s.backend.counters(s.banking_id).map(|c| c.errors), Some(0));
}

#[test]
fn discard_is_bounded_and_refused_on_read_only_disks() {
    let (banking_ring, hostile_ring) = (PageBuffer::new(), PageBuffer::new());
    let mut s = setup(&banking_ring, &hostile_ring);
    let mut discard = |sector: u64, count: u64, id: u64| {
        let mut bytes = raw_request(OPERATION_DISCARD, 0, id, sector, &[]);
        bytes[24..32].copy_from_slice(&count.to_le_bytes());
        s.answer(&bytes).2
    };
    assert_eq!(discard(10, 4, 1), STATUS_OKAY);
    assert_eq!(discard(HOSTILE_SECTORS - 1, 2, 2), STATUS_ERROR);
    assert_eq!(discard(1, u64::MAX, 3), STATUS_ERROR);
    assert_eq!(discard(0, 0, 4), STATUS_ERROR);
    let disk = s.backend.executor().disk();
    let discarded = (HOSTILE_FIRST as usize + 10) * 512..(HOSTILE_FIRST as usize + 14) * 512;
    assert!(disk[discarded].iter().all(|byte| *byte == 0));
    s.assert_hostile_stayed_inside();
    assert_served(&mut s.banking, &mut s.backend, 1);
}

fn assert_disconnected_alone(s: &mut Setup<'_>, expected: fn(RingError) -> bool) {
    let counters = s.backend.counters(s.hostile_id).expect("counters");
    match counters.disconnect {
        Some(DisconnectReason::Ring(error)) => assert!(expected(error), "{error:?}"),
        other => panic!("not disconnected for a ring error: {other:?}"),
    }
    assert!(!s.backend.is_connected(s.hostile_id));
    assert!(s.backend.is_connected(s.banking_id));
    assert_served(&mut s.banking, &mut s.backend, 9);
    // Later requests from the disconnected frontend are not looked at.
    let served = counters.requests_served;
    s.hostile
        .produce(&ring_protocol::blkif::BlkifRequest::FlushDiskCache(
            Default::default(),
        ));
    let _ = s.backend.serve_round(32);
    assert_eq!(
        s.backend.counters(s.hostile_id).map(|c| c.requests_served),
        Some(served)
    );
    s.assert_hostile_stayed_inside();
}

#[test]
fn producer_index_jump_disconnects_only_that_frontend() {
    let (banking_ring, hostile_ring) = (PageBuffer::new(), PageBuffer::new());
    let mut s = setup(&banking_ring, &hostile_ring);
    s.hostile.apply(Misbehavior::SetProducer(33));
    let _ = s.backend.serve_round(8);
    assert_disconnected_alone(&mut s, |error| {
        matches!(error, RingError::PeerOverflow { .. })
    });
}

#[test]
fn producer_index_rewind_disconnects_only_that_frontend() {
    let (banking_ring, hostile_ring) = (PageBuffer::new(), PageBuffer::new());
    let mut s = setup(&banking_ring, &hostile_ring);
    for seed in 0..6 {
        s.hostile.apply(Misbehavior::ProduceValid { seed });
    }
    // Served 2 of 6 (cap): the backend has seen producer 6 and consumed 2.
    let _ = s.backend.serve_round(2);
    // Then serves 2 more (consumer 4) and finds the producer moved back to 5.
    s.hostile.apply(Misbehavior::MoveProducer(-1));
    let _ = s.backend.serve_round(2);
    assert_disconnected_alone(&mut s, |error| {
        matches!(error, RingError::PeerRewound { .. })
    });
}

#[test]
fn requested_disconnect_stops_service_of_that_frontend_only() {
    let (banking_ring, hostile_ring) = (PageBuffer::new(), PageBuffer::new());
    let mut s = setup(&banking_ring, &hostile_ring);
    s.backend.disconnect(s.hostile_id);
    s.hostile.apply(Misbehavior::ProduceValid { seed: 1 });
    let _ = s.backend.serve_round(8);
    assert_eq!(
        s.backend
            .counters(s.hostile_id)
            .map(|c| (c.requests_served, c.disconnect)),
        Some((0, Some(DisconnectReason::Requested)))
    );
    assert_served(&mut s.banking, &mut s.backend, 4);
}

#[test]
fn a_disconnected_frontend_can_reattach_over_a_fresh_ring() {
    let (banking_ring, hostile_ring, fresh_ring) =
        (PageBuffer::new(), PageBuffer::new(), PageBuffer::new());
    let mut s = setup(&banking_ring, &hostile_ring);
    s.hostile.apply(Misbehavior::SetProducer(1000));
    let _ = s.backend.serve_round(8);
    assert!(!s.backend.is_connected(s.hostile_id));
    let fresh_page = SharedPage::new(&fresh_ring);
    let mut fresh = HostileFrontend::<Blkif>::initialize(fresh_page.clone());
    assert!(s.backend.reattach(s.hostile_id, fresh_page.clone()));
    assert!(!s.backend.reattach(FrontendId(99), fresh_page.clone()));
    fresh.produce_raw(&raw_request(OPERATION_FLUSH_DISKCACHE, 0, 5, 0, &[]));
    let _ = s.backend.serve_round(8);
    assert_eq!(
        response_at(&fresh_page, 0),
        (5, OPERATION_FLUSH_DISKCACHE, STATUS_OKAY)
    );
    assert_eq!(
        s.backend.counters(s.hostile_id).and_then(|c| c.disconnect),
        None
    );
    assert_served(&mut s.banking, &mut s.backend, 2);
}
