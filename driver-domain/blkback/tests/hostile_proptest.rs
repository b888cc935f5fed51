//! Property test: whatever a hostile frontend writes into its ring (scripted index
//! misbehaviour, arbitrary slots, arbitrary requests aimed at its own and others' grants),
//! the backend never panics, never touches a sector outside that frontend's extent, and
//! keeps serving a well-behaved frontend beside it.

mod common;

use blkback::{BlockBackend, DiskMode, VirtualDisk};
use blkfront::Blkfront;
use common::*;
use proptest::prelude::*;
use ring_protocol::blkif::Blkif;
use ring_protocol::test_utils::{write_page_words, HostileFrontend, Misbehavior};
use ring_protocol::{PageBuffer, SharedPage};

const HOSTILE_FIRST: u64 = 64;
const HOSTILE_SECTORS: u64 = 64;
const BANKING_FIRST: u64 = 128;
const PHYSICAL: u64 = 256;

#[derive(Clone, Debug)]
enum Step {
    Misbehave(Misbehavior),
    Request([u8; 112]),
    Serve(u32),
    BankingRoundTrip(u8),
}

fn misbehavior() -> impl Strategy<Value = Misbehavior> {
    let index = prop_oneof![
        0u32..80,
        any::<u32>(),
        (0u32..40).prop_map(|o| u32::MAX - o)
    ];
    prop_oneof![
        3 => any::<u32>().prop_map(|seed| Misbehavior::ProduceValid { seed }),
        2 => (any::<u8>(), any::<u32>()).prop_map(|(word, value)| Misbehavior::ProduceGarbage { word, value }),
        1 => index.clone().prop_map(Misbehavior::SetProducer),
        1 => any::<i8>().prop_map(Misbehavior::MoveProducer),
        1 => index.clone().prop_map(Misbehavior::SetEvent),
        1 => index.prop_map(Misbehavior::SetVictimProducer),
        2 => (any::<u32>(), any::<u8>(), any::<u32>())
            .prop_map(|(slot, word, value)| Misbehavior::ScribbleSlot { slot, word, value }),
    ]
}

/// A request aimed at the edges: known and unknown operations, segment counts around
/// the limits, sectors near the extent's end and near 2^64, grant refs that are the
/// hostile domain's own (8..12), banking's, or anything.
fn request() -> impl Strategy<Value = [u8; 112]> {
    prop_oneof![wild_request(), plausible_request()]
}

/// A request that is often valid: read or write, few segments, near the extent's end.
fn plausible_request() -> impl Strategy<Value = [u8; 112]> {
    let segment = (8u32..13, 0u8..5, 3u8..8);
    (
        0u8..=1,
        1u8..=3,
        any::<u64>(),
        0u64..HOSTILE_SECTORS + 8,
        proptest::collection::vec(segment, 3),
    )
        .prop_map(|(operation, count, id, sector, segments)| {
            raw_request(operation, count, id, sector, &segments)
        })
}

fn wild_request() -> impl Strategy<Value = [u8; 112]> {
    let operation = prop_oneof![4 => 0u8..=6, 1 => any::<u8>()];
    let count = prop_oneof![4 => 0u8..=12, 1 => any::<u8>()];
    let sector = prop_oneof![
        0u64..HOSTILE_SECTORS + 16,
        (0u64..16).prop_map(|o| u64::MAX - o),
        any::<u64>(),
    ];
    let grant = prop_oneof![3 => 8u32..16, 1 => any::<u32>()];
    let segment = (grant, 0u8..=9, 0u8..=9);
    (
        operation,
        count,
        any::<u64>(),
        sector,
        proptest::collection::vec(segment, 11),
        any::<u64>(),
    )
        .prop_map(|(operation, count, id, sector, segments, tail)| {
            let mut bytes = raw_request(operation, count, id, sector, &segments);
            if operation == 5 || operation == 6 {
                // Discard's sector count / indirect's fields live where segments do.
                bytes[24..32].copy_from_slice(&(tail % (HOSTILE_SECTORS + 4)).to_le_bytes());
                bytes[2..4].copy_from_slice(&((tail >> 32) as u16 % 4).to_le_bytes());
            }
            bytes
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => misbehavior().prop_map(Step::Misbehave),
        6 => request().prop_map(Step::Request),
        3 => (0u32..40).prop_map(Step::Serve),
        1 => any::<u8>().prop_map(Step::BankingRoundTrip),
    ]
}

fn run(initial_page: Option<Vec<u8>>, steps: &[Step]) {
    let (table, executor) = world(PHYSICAL);
    let (hostile_ring, banking_ring) = (PageBuffer::new(), PageBuffer::new());
    let hostile_page = SharedPage::new(&hostile_ring);
    let mut hostile = HostileFrontend::<Blkif>::initialize(hostile_page.clone());
    if let Some(contents) = initial_page {
        write_page_words(&hostile_page, 0, &contents);
        hostile = HostileFrontend::<Blkif>::attach(hostile_page.clone());
    }
    // Grants 8..12 in the model: the hostile domain's pages, some read-only.
    for index in 0..4 {
        let _ = granted_page(&table, UNTRUSTED, 0x30 + index, index % 2 == 1);
    }
    let mut backend = BlockBackend::new(executor, PHYSICAL);
    let hostile_disk =
        VirtualDisk::new(HOSTILE_FIRST, HOSTILE_SECTORS, DiskMode::ReadWrite).expect("disk");
    let banking_disk = VirtualDisk::new(BANKING_FIRST, 64, DiskMode::ReadWrite).expect("disk");
    let hostile_id = backend
        .add_frontend(UNTRUSTED, hostile_page, hostile_disk)
        .expect("add");
    let banking_id = backend
        .add_frontend(BANKING, SharedPage::new(&banking_ring), banking_disk)
        .expect("add");
    let (pages, data_pages) = pages_for(&table, BANKING, 11);
    let mut banking = Blkfront::new(SharedPage::new(&banking_ring), pages, data_pages, DRIVER, 0);

    let mut banking_data = pattern(20 * 512, 0);
    assert_eq!(write(&mut banking, &mut backend, 3, &banking_data), [0]);
    for step in steps {
        match step {
            Step::Misbehave(action) => hostile.apply(*action),
            Step::Request(bytes) => hostile.produce_raw(bytes),
            Step::Serve(cap) => {
                let _ = backend.serve_round(*cap);
            }
            Step::BankingRoundTrip(seed) => {
                banking_data = pattern(20 * 512, *seed);
                assert_served(&mut banking, &mut backend, *seed);
            }
        }
        let hostile_extent = HOSTILE_FIRST..HOSTILE_FIRST + HOSTILE_SECTORS;
        let banking_extent = BANKING_FIRST..BANKING_FIRST + 64;
        assert!(backend
            .executor()
            .touched_sectors()
            .iter()
            .all(|sector| hostile_extent.contains(sector) || banking_extent.contains(sector)));
    }
    let _ = backend.serve_round(32);
    let disk = backend.executor().disk();
    let banking_bytes = (BANKING_FIRST as usize + 3) * 512..(BANKING_FIRST as usize + 23) * 512;
    assert!(
        disk[banking_bytes] == banking_data[..],
        "banking's blocks changed"
    );
    assert!(disk[..HOSTILE_FIRST as usize * 512]
        .iter()
        .all(|byte| *byte == DISK_FILL));
    assert!(disk[(BANKING_FIRST as usize + 64) * 512..]
        .iter()
        .all(|byte| *byte == DISK_FILL));
    assert!(backend.is_connected(banking_id));
    assert_eq!(backend.counters(banking_id).map(|c| c.errors), Some(0));
    let hostile = backend.counters(hostile_id).expect("counters");
    assert!(hostile.errors <= hostile.requests_served);
    assert_served(&mut banking, &mut backend, 0xaa);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hostile_ring_contents_never_escape_the_extent(
        steps in proptest::collection::vec(step(), 0..60),
    ) {
        run(None, &steps);
    }

    #[test]
    fn arbitrary_initial_ring_page_never_escapes_the_extent(
        page in proptest::collection::vec(any::<u8>(), 4096),
        steps in proptest::collection::vec(step(), 0..30),
    ) {
        run(Some(page), &steps);
    }
}
