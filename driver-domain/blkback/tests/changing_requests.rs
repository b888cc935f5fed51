//! A frontend rewriting a request in the ring after the backend copied it out (XSA-155):
//! the backend acts on its copy only, so the rewrite changes nothing.

mod common;

use blkback::memory::MemoryExecutor;
use blkback::{BlockBackend, BlockOperation, DiskMode, ExecuteError, Executor, VirtualDisk};
use common::*;
use ring_protocol::blkif::{Blkif, OPERATION_WRITE, STATUS_OKAY};
use ring_protocol::test_utils::{write_page_words, HostileFrontend};
use ring_protocol::{PageBuffer, SharedPage};

/// Runs `meddle` before every operation, then executes it in memory.
struct MeddlingExecutor<'page> {
    inner: MemoryExecutor,
    meddle: Box<dyn FnMut() + 'page>,
    seen: Vec<(u64, u64)>,
}

impl Executor for MeddlingExecutor<'_> {
    fn execute(&mut self, operation: &BlockOperation<'_>) -> Result<(), ExecuteError> {
        (self.meddle)();
        if let BlockOperation::Write { segments, .. } | BlockOperation::Read { segments, .. } =
            operation
        {
            self.seen.extend(
                segments
                    .iter()
                    .map(|s| (s.physical_sector, s.sector_count())),
            );
        }
        self.inner.execute(operation)
    }
}

#[test]
fn rewriting_a_consumed_request_changes_nothing() {
    let (table, inner) = world(PHYSICAL_SECTORS);
    let ring = PageBuffer::new();
    let page = SharedPage::new(&ring);
    let mut hostile = HostileFrontend::<Blkif>::initialize(page.clone());
    let (_, own) = granted_page(&table, UNTRUSTED, 0x77, true);
    let (_, banking_grant) = granted_page(&table, BANKING, 0x42, true);

    // While the backend works, every slot is rewritten into a request aimed past the
    // extent, at banking's grant, with another id and 11 segments.
    let evil = raw_request(
        OPERATION_WRITE,
        11,
        666,
        1 << 40,
        &[(banking_grant.0, 0, 7); 11],
    );
    let meddling_page = page.clone();
    let meddle = Box::new(move || {
        for slot in 0..32 {
            write_page_words(&meddling_page, 64 + slot * 112, &evil);
        }
    });
    let executor = MeddlingExecutor {
        inner,
        meddle,
        seen: Vec::new(),
    };
    let mut backend = BlockBackend::new(executor, PHYSICAL_SECTORS);
    let disk = VirtualDisk::new(100, 50, DiskMode::ReadWrite).expect("disk");
    let id = backend
        .add_frontend(UNTRUSTED, page.clone(), disk)
        .expect("add");

    for (index, sector) in [(0u32, 3u64), (1, 10)] {
        let request = raw_request(
            OPERATION_WRITE,
            2,
            1000 + u64::from(index),
            sector,
            &[(own.0, 2, 5), (own.0, 0, 0)],
        );
        hostile.produce_raw(&request);
    }
    // One request a round: the first is copied and carried out (the meddling happens
    // while it is), then the second, rewritten meanwhile, is copied.
    let first = backend.serve_round(1);
    let second = backend.serve_round(1);
    assert_eq!((first.requests_served, second.requests_served), (1, 1));
    // The first request was rewritten after it was copied: it is carried out as copied
    // (4 + 1 sectors at 103) and answered with its own id.
    assert_eq!(response_at(&page, 0), (1000, OPERATION_WRITE, STATUS_OKAY));
    // The second was rewritten before it was copied: the backend validates what it
    // copied, the evil request, and refuses it.
    assert_eq!(
        response_at(&page, 1),
        (666, OPERATION_WRITE, ring_protocol::blkif::STATUS_ERROR)
    );
    assert_eq!(backend.executor().seen, [(103, 4), (107, 1)]);
    let physical = backend.executor().inner.disk();
    assert!(physical[103 * 512..108 * 512]
        .iter()
        .all(|byte| *byte == 0x77));
    assert!(physical[..103 * 512].iter().all(|byte| *byte == DISK_FILL));
    assert!(physical[108 * 512..].iter().all(|byte| *byte == DISK_FILL));
    // The producer index did not move, so the rewritten slots were not consumed again.
    assert_eq!(
        backend.counters(id).map(|c| (c.requests_served, c.errors)),
        Some((2, 1))
    );
    assert!(backend.is_connected(id));
}
