//! A round's requests reach the executor as one batch (so the device can work on them
//! together), each carrying its frontend's grant policy; the executor is told to release
//! a frontend's kept grants when that frontend is disconnected, by request or for
//! breaking its ring.

mod common;

use blkback::memory::MemoryExecutor;
use blkback::{
    BlockBackend, BlockOperation, DiskMode, DomId, ExecuteError, Executor, GrantPolicy, VirtualDisk,
};
use common::*;
use ring_protocol::blkif::{Blkif, OPERATION_READ, STATUS_OKAY};
use ring_protocol::test_utils::HostileFrontend;
use ring_protocol::{PageBuffer, SharedPage};

/// Records each batch (operation kinds and policies) and each release, then executes in
/// memory.
struct Recorder {
    inner: MemoryExecutor,
    batches: Vec<Vec<(DomId, GrantPolicy)>>,
    released: Vec<DomId>,
}

impl Executor for Recorder {
    fn execute(&mut self, operation: &BlockOperation<'_>) -> Result<(), ExecuteError> {
        self.inner.execute(operation)
    }

    fn execute_batch(
        &mut self,
        batch: &[BlockOperation<'_>],
        results: &mut [Result<(), ExecuteError>],
    ) {
        assert_eq!(batch.len(), results.len());
        self.batches.push(
            batch
                .iter()
                .filter_map(|operation| match operation {
                    BlockOperation::Read {
                        frontend, grants, ..
                    }
                    | BlockOperation::Write {
                        frontend, grants, ..
                    } => Some((*frontend, *grants)),
                    _ => None,
                })
                .collect(),
        );
        for (operation, result) in batch.iter().zip(results.iter_mut()) {
            *result = self.inner.execute(operation);
        }
    }

    fn release_grants(&mut self, frontend: DomId) {
        self.released.push(frontend);
    }
}

#[test]
fn a_round_is_one_batch_with_each_frontends_policy() {
    let (table, inner) = world(PHYSICAL_SECTORS);
    let (ring_a, ring_b) = (PageBuffer::new(), PageBuffer::new());
    let (page_a, page_b) = (SharedPage::new(&ring_a), SharedPage::new(&ring_b));
    let mut front_a = HostileFrontend::<Blkif>::initialize(page_a.clone());
    let mut front_b = HostileFrontend::<Blkif>::initialize(page_b.clone());
    let (_, grant_a) = granted_page(&table, UNTRUSTED, 0, false);
    let (_, grant_b) = granted_page(&table, BANKING, 0, false);
    let mut backend = BlockBackend::new(
        Recorder {
            inner,
            batches: Vec::new(),
            released: Vec::new(),
        },
        PHYSICAL_SECTORS,
    );
    let disk = |first| VirtualDisk::new(first, 50, DiskMode::ReadWrite).expect("disk");
    let a = backend
        .add_frontend(UNTRUSTED, page_a.clone(), disk(100))
        .expect("a");
    let b = backend
        .add_frontend(BANKING, page_b.clone(), disk(200))
        .expect("b");
    assert!(backend.set_grant_policy(b, GrantPolicy::Persistent));
    for id in 0..3u64 {
        front_a.produce_raw(&raw_request(
            OPERATION_READ,
            1,
            id,
            id,
            &[(grant_a.0, 0, 7)],
        ));
        front_b.produce_raw(&raw_request(
            OPERATION_READ,
            1,
            10 + id,
            id,
            &[(grant_b.0, 0, 7)],
        ));
    }
    let report = backend.serve_round(8);
    assert_eq!(report.requests_served, 6);
    let batches = &backend.executor().batches;
    assert_eq!(batches.len(), 1, "one batch for the round: {batches:?}");
    let mut seen = batches[0].clone();
    seen.sort_by_key(|(domain, _)| domain.0);
    let mut expected = [
        [(UNTRUSTED, GrantPolicy::Transient); 3],
        [(BANKING, GrantPolicy::Persistent); 3],
    ]
    .concat();
    expected.sort_by_key(|(domain, _)| domain.0);
    assert_eq!(seen, expected);
    for slot in 0..3 {
        assert_eq!(
            response_at(&page_a, slot),
            (slot as u64, OPERATION_READ, STATUS_OKAY)
        );
        assert_eq!(
            response_at(&page_b, slot),
            (10 + slot as u64, OPERATION_READ, STATUS_OKAY)
        );
    }

    // Disconnecting a frontend releases its domain's kept grants; breaking the ring does
    // too.
    backend.disconnect(b);
    assert_eq!(backend.executor().released, [BANKING]);
    front_a.apply(ring_protocol::test_utils::Misbehavior::SetProducer(1000));
    let _ = backend.serve_round(8);
    assert!(!backend.is_connected(a));
    assert_eq!(backend.executor().released, [BANKING, UNTRUSTED]);
}
