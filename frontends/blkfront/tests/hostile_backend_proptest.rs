//! Property test: a scripted hostile backend (arbitrary responses, ids and index moves)
//! interleaved with a frontend submitting and polling never panics the frontend; once the
//! frontend disconnects, no grant survives except those the backend really holds. Both
//! grant modes (per request and persistent) and both APIs (copying and zero-copy).

mod common;

use blkfront::{Blkfront, FrontendError};
use common::*;
use proptest::prelude::*;
use ring_protocol::blkif::{Blkif, BlkifResponse};
use ring_protocol::test_utils::{HostileBackend, Misbehavior};
use ring_protocol::{PageBuffer, SharedPage};

#[derive(Clone, Debug)]
enum Step {
    Misbehave(Misbehavior),
    /// Answer with an id near the ones in use (small), or anything.
    Respond {
        id: u64,
        operation: u8,
        status: i16,
    },
    Read(u32),
    Write(u8),
    Flush,
    Publish,
    Poll,
    Hold(u8),
    ReadInPlace(u32),
    WritePages(u32),
    PollInPlace,
}

fn step() -> impl Strategy<Value = Step> {
    let id = prop_oneof![3 => 0u64..70, 1 => any::<u64>()];
    let misbehavior = prop_oneof![
        any::<u32>().prop_map(|seed| Misbehavior::ProduceValid { seed }),
        (any::<u8>(), any::<u32>())
            .prop_map(|(word, value)| Misbehavior::ProduceGarbage { word, value }),
        prop_oneof![0u32..40, any::<u32>()].prop_map(Misbehavior::SetProducer),
        any::<i8>().prop_map(Misbehavior::MoveProducer),
        any::<u32>().prop_map(Misbehavior::SetEvent),
        any::<u32>().prop_map(Misbehavior::SetVictimProducer),
        (any::<u32>(), any::<u8>(), any::<u32>())
            .prop_map(|(slot, word, value)| Misbehavior::ScribbleSlot { slot, word, value }),
    ];
    prop_oneof![
        1 => misbehavior.prop_map(Step::Misbehave),
        4 => (id, prop_oneof![0u8..4, any::<u8>()], prop_oneof![-2i16..=0, any::<i16>()])
            .prop_map(|(id, operation, status)| Step::Respond { id, operation, status }),
        2 => (0u32..100).prop_map(Step::Read),
        2 => (0u8..100).prop_map(Step::Write),
        1 => Just(Step::Flush),
        2 => Just(Step::Publish),
        3 => Just(Step::Poll),
        1 => any::<u8>().prop_map(Step::Hold),
        2 => (0u32..100).prop_map(Step::ReadInPlace),
        2 => (0u32..100).prop_map(Step::WritePages),
        3 => Just(Step::PollInPlace),
    ]
}

proptest! {
    #[test]
    fn a_hostile_backend_never_panics_the_frontend(
        steps in proptest::collection::vec(step(), 0..80),
        persistent in any::<bool>(),
    ) {
        let ring = PageBuffer::new();
        let (fake, state, data_pages) = FakeGrants::with_pages(40);
        let mut frontend = Blkfront::new(SharedPage::new(&ring), fake, data_pages, BACKEND, 0);
        frontend.set_persistent(persistent).expect("first");
        let mut hostile = HostileBackend::<Blkif>::attach(SharedPage::new(&ring));
        for step in steps {
            let result = match step {
                Step::Misbehave(action) => { hostile.apply(action); Ok(()) }
                Step::Respond { id, operation, status } => {
                    hostile.produce(&BlkifResponse { id, operation, status });
                    Ok(())
                }
                Step::Read(count) => frontend.submit_read(u64::from(count) * 3, count).map(|_| ()),
                Step::Write(sectors) => frontend.submit_write(7, &vec![sectors; usize::from(sectors) * 512]).map(|_| ()),
                Step::Flush => frontend.submit_flush().map(|_| ()),
                Step::Publish => frontend.publish().map(|_| ()),
                Step::Poll => frontend.poll().map(|completion| {
                    if let Some(completion) = completion {
                        assert!(completion.data.is_empty() || completion.data.len() == completion.sector_count as usize * 512);
                    }
                }),
                Step::ReadInPlace(count) => frontend.submit_read_in_place(u64::from(count), count).map(|_| ()),
                Step::WritePages(count) => frontend
                    .take_pages((count as usize).div_ceil(8).max(1))
                    .and_then(|pages| frontend.submit_write_pages(9, count, pages))
                    .map(|_| ()),
                Step::PollInPlace => frontend.poll_in_place().map(|completion| {
                    if let Some(done) = completion {
                        assert!(done.completion.data.is_empty());
                        if let Some(pages) = done.pages {
                            let count = frontend.lent_pages(&pages).expect("ours").len();
                            assert_eq!(count, (done.completion.sector_count as usize).div_ceil(8));
                            frontend.give_back(pages);
                        }
                    }
                }),
                Step::Hold(which) => {
                    let mut state = state.borrow_mut();
                    let grants: Vec<u32> = state.grants.keys().copied().collect();
                    if let Some(grant) = grants.get(usize::from(which) % grants.len().max(1)) {
                        state.held.insert(*grant);
                    }
                    Ok(())
                }
            };
            if let Err(error) = result {
                if error.is_backend_fault() {
                    prop_assert_eq!(frontend.fault(), Some(error));
                }
            }
            let state = state.borrow();
            // Every page is free, in flight (granted) or quarantined: none is lost.
            prop_assert!(frontend.free_page_count() + frontend.quarantined_page_count() <= 40);
            prop_assert_eq!(frontend.lent_page_count(), 0);
            prop_assert!(state.grants.len() <= 40);
        }
        let _report = frontend.disconnect();
        let state = state.borrow();
        // The only grants left are those the backend holds, one per quarantined page.
        prop_assert_eq!(state.grants.len(), frontend.quarantined_page_count());
        prop_assert!(state.grants.keys().all(|grant| state.held.contains(grant)));
        prop_assert_eq!(frontend.free_page_count() + frontend.quarantined_page_count(), 40);
        prop_assert_eq!(frontend.poll(), Err(FrontendError::Disconnected));
    }
}
