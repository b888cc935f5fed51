//! The pool hands out a request's pages in ascending pool order: a fresh frontend's first
//! request gets the first pages given at construction, in order, and in the steady state
//! (requests of one size, several in flight, completed in order, their pages given back)
//! every request still gets one contiguous ascending run of pool pages, which a backend
//! can merge into one DMA buffer when the pages are physically contiguous.

mod common;

use blkfront::{Blkfront, LentPages, Operation};
use common::*;
use ring_protocol::blkif::{Blkif, BlkifRequest, BlkifResponse, STATUS_OKAY};
use ring_protocol::{Backend, PageBuffer, SharedPage};

/// Pages of the pool: 32 requests of 11 pages, as the split profile runs.
const POOL: usize = 352;

fn setup(ring: &PageBuffer, persistent: bool) -> (Blkfront<'_, FakeGrants>, Shared) {
    let (fake, state, data_pages) = FakeGrants::with_pages(POOL);
    let mut frontend = Blkfront::new(SharedPage::new(ring), fake, data_pages, BACKEND, 7);
    frontend
        .set_persistent(persistent)
        .expect("before the first request");
    (frontend, state)
}

/// Takes the next published request off the ring and returns its id, operation code and
/// the pool pages behind its segments (through the fake grant table), in segment order.
fn next_request(reader: &mut Backend<'_, Blkif>, state: &Shared) -> Option<(u64, u8, Vec<usize>)> {
    let request = reader.next_request().expect("well-formed")?;
    let (transfer, operation) = match request {
        BlkifRequest::Read(transfer) => (transfer, 0),
        BlkifRequest::Write(transfer) => (transfer, 1),
        other => panic!("unexpected {other:?}"),
    };
    let state = state.borrow();
    let pages = transfer
        .used_segments()
        .iter()
        .map(|segment| state.grants.get(&segment.grant).expect("a live grant").page)
        .collect();
    Some((transfer.id, operation, pages))
}

/// The pool pages behind lent pages, in order.
fn page_numbers(frontend: &Blkfront<'_, FakeGrants>, pages: &LentPages) -> Vec<usize> {
    frontend
        .lent_pages(pages)
        .expect("lent by this frontend")
        .iter()
        .map(|page| page.page())
        .collect()
}

/// Whether `pages` are one ascending run of consecutive pool pages.
fn ascending_run(pages: &[usize]) -> bool {
    pages.windows(2).all(|pair| pair[1] == pair[0] + 1)
}

#[test]
fn a_fresh_frontend_hands_out_the_first_pages_in_order() {
    for persistent in [false, true] {
        let ring = PageBuffer::new();
        let (mut frontend, state) = setup(&ring, persistent);
        let mut reader = Backend::<Blkif>::attach(SharedPage::new(&ring));
        frontend.submit_read_in_place(0, 88).expect("read");
        let _ = frontend.publish().expect("publish");
        let (_, _, pages) = next_request(&mut reader, &state).expect("the read");
        assert_eq!(
            pages,
            (0..11).collect::<Vec<_>>(),
            "persistent: {persistent}"
        );
        // The zero-copy write path takes the next run the same way.
        let taken = frontend.take_pages(11).expect("pages");
        assert_eq!(
            page_numbers(&frontend, &taken),
            (11..22).collect::<Vec<_>>(),
            "persistent: {persistent}"
        );
        frontend.give_back(taken);
        let taken = frontend.take_pages(11).expect("pages");
        assert_eq!(
            page_numbers(&frontend, &taken),
            (11..22).collect::<Vec<_>>(),
            "given back, the same run comes out again in order"
        );
        frontend.give_back(taken);
    }
}

/// 100 cycles of: fill the ring (32 requests of 11 pages: the whole pool), let the
/// backend answer `round` of them in order, poll and give the pages back. Reads and
/// zero-copy writes alternate by request; every request must carry an ascending run.
fn steady_state(persistent: bool, round: usize) {
    let ring = PageBuffer::new();
    let (mut frontend, state) = setup(&ring, persistent);
    if persistent {
        assert_eq!(frontend.prepare_pool(), Ok(POOL));
    }
    let mut backend = Backend::<Blkif>::attach(SharedPage::new(&ring));
    let (mut submitted, mut completed, mut checked) = (0u64, 0u64, 0usize);
    // Ids answered in order, as the backend took them.
    let mut pending = std::collections::VecDeque::new();
    for _cycle in 0..100 {
        while frontend.in_flight() < 32 {
            let sector = (submitted % 64) * 88;
            if submitted % 2 == 0 {
                frontend.submit_read_in_place(sector, 88).expect("read");
            } else {
                let pages = frontend.take_pages(11).expect("pages");
                let numbers = page_numbers(&frontend, &pages);
                assert!(ascending_run(&numbers), "taken: {numbers:?}");
                frontend
                    .submit_write_pages(sector, 88, pages)
                    .expect("write");
            }
            submitted += 1;
        }
        let _ = frontend.publish().expect("publish");
        while let Some((id, operation, pages)) = next_request(&mut backend, &state) {
            assert_eq!(pages.len(), 11);
            assert!(
                ascending_run(&pages),
                "request {id} ({}): {pages:?}",
                if operation == 0 { "read" } else { "write" }
            );
            checked += 1;
            pending.push_back((id, operation));
        }
        // Answer a round, in the order the requests came.
        for _ in 0..round.min(pending.len()) {
            let (id, operation) = pending.pop_front().expect("pending");
            backend
                .push_response(&BlkifResponse {
                    id,
                    operation,
                    status: STATUS_OKAY,
                })
                .expect("room");
        }
        let _ = backend.publish_responses().expect("publish");
        while let Some(done) = frontend.poll_in_place().expect("poll") {
            assert!(done.completion.is_ok());
            if done.completion.operation == Operation::Read {
                let pages = done.pages.as_ref().expect("an in-place read's pages");
                let numbers = page_numbers(&frontend, pages);
                assert!(ascending_run(&numbers), "read back: {numbers:?}");
            }
            if let Some(pages) = done.pages {
                frontend.give_back(pages);
            }
            completed += 1;
        }
    }
    // Every cycle answered a full round, and every request submitted was checked.
    assert_eq!(completed, 100 * round as u64);
    assert_eq!(checked as u64, submitted);
    assert_eq!(submitted, completed + frontend.in_flight() as u64);
    assert_eq!(frontend.lent_page_count(), 0);
}

#[test]
fn every_request_gets_an_ascending_contiguous_run_in_the_steady_state() {
    for persistent in [true, false] {
        for round in [16, 5, 32] {
            steady_state(persistent, round);
        }
    }
}
