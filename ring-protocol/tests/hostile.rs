//! Property tests with a hostile peer: a scripted misbehaving frontend (or backend)
//! writing arbitrary indices and entries, interleaved with a well-behaved ring end. The
//! well-behaved end must never panic or touch memory outside the page, and must report
//! every index anomaly (checked against an independent oracle) and then stay poisoned.
#![cfg(not(loom))]

use proptest::prelude::*;
use ring_protocol::blkif::Blkif;
use ring_protocol::netif::{NetifRx, NetifTx, TxRequest};
use ring_protocol::test_utils::{
    fuzz_backend_consume_page, read_ring_indices, HostileBackend, HostileFrontend, Misbehavior,
    SampleEntry,
};
use ring_protocol::{Backend, Frontend, PageBuffer, Protocol, RingError, SharedPage};

fn misbehavior() -> impl Strategy<Value = Misbehavior> {
    // Index values near the interesting edges as well as anywhere.
    let index = prop_oneof![
        0u32..80,
        any::<u32>(),
        (0u32..80).prop_map(|offset| u32::MAX - offset),
    ];
    prop_oneof![
        4 => any::<u32>().prop_map(|seed| Misbehavior::ProduceValid { seed }),
        2 => (any::<u8>(), any::<u32>())
            .prop_map(|(word, value)| Misbehavior::ProduceGarbage { word, value }),
        1 => index.clone().prop_map(Misbehavior::SetProducer),
        2 => any::<i8>().prop_map(Misbehavior::MoveProducer),
        1 => index.clone().prop_map(Misbehavior::SetEvent),
        1 => index.clone().prop_map(Misbehavior::SetVictimProducer),
        1 => index.prop_map(Misbehavior::SetVictimEvent),
        1 => (any::<u32>(), any::<u8>(), any::<u32>())
            .prop_map(|(slot, word, value)| Misbehavior::ScribbleSlot { slot, word, value }),
    ]
}

#[derive(Clone, Debug)]
enum BackendStep {
    Hostile(Misbehavior),
    Consume,
    Respond,
    Publish,
    FinalCheck,
}

fn backend_step() -> impl Strategy<Value = BackendStep> {
    prop_oneof![
        3 => misbehavior().prop_map(BackendStep::Hostile),
        3 => Just(BackendStep::Consume),
        2 => Just(BackendStep::Respond),
        1 => Just(BackendStep::Publish),
        1 => Just(BackendStep::FinalCheck),
    ]
}

/// The oracle: what a correct backend must say about producer index `producer`.
fn expected_window(
    producer: u32,
    consumer: u32,
    last_seen: u32,
    awaiting: u32,
    size: u32,
) -> Result<u32, ()> {
    let available = producer.wrapping_sub(consumer);
    if available > size - awaiting || available < last_seen.wrapping_sub(consumer) {
        Err(())
    } else {
        Ok(available)
    }
}

fn run_backend_against_hostile_frontend<P: Protocol>(steps: &[BackendStep], start: u32)
where
    P::Request: SampleEntry + core::fmt::Debug,
    P::Response: SampleEntry,
{
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let _ = Frontend::<P>::initialize_at(page.clone(), start);
    let mut hostile = HostileFrontend::<P>::attach(page.clone());
    let mut backend = Backend::<P>::attach_at(page.clone(), start);
    let mut last_seen = start;
    let mut published = start;
    let mut poisoned: Option<RingError> = None;

    for step in steps {
        if let Some(error) = poisoned {
            // Once poisoned, every call returns the same error, whatever the peer does.
            if let BackendStep::Hostile(action) = step {
                hostile.apply(*action);
            }
            assert_eq!(backend.next_request().err(), Some(error));
            assert_eq!(backend.unconsumed_requests(), Err(error));
            assert_eq!(backend.final_check_for_requests(), Err(error));
            assert_eq!(backend.publish_responses().err(), Some(error));
            assert_eq!(
                backend.push_response(&P::Response::sample(0)).err(),
                Some(error)
            );
            continue;
        }
        match step {
            BackendStep::Hostile(action) => hostile.apply(*action),
            BackendStep::Respond => {
                let awaiting = backend.requests_awaiting_response();
                let result = backend.push_response(&P::Response::sample(7));
                if awaiting == 0 {
                    assert_eq!(result, Err(RingError::NoRequestToAnswer));
                } else {
                    assert_eq!(result, Ok(()));
                }
            }
            BackendStep::Publish => {
                let _ = backend.publish_responses().expect("not poisoned");
                if backend.responses_produced() != published {
                    // Something new: rsp_prod is stored from the private copy, whatever
                    // the hostile frontend scribbled there. (With nothing new the page is
                    // left alone.)
                    assert_eq!(read_ring_indices(&page)[2], backend.responses_produced());
                    published = backend.responses_produced();
                }
            }
            BackendStep::Consume | BackendStep::FinalCheck => {
                let producer = read_ring_indices(&page)[0];
                let consumer = backend.requests_consumed();
                let awaiting = backend.requests_awaiting_response();
                // `next_request` reads the index only when its cache of validated entries
                // is empty; the final check always reads it.
                let cached = matches!(step, BackendStep::Consume) && last_seen != consumer;
                let expected =
                    expected_window(producer, consumer, last_seen, awaiting, P::RING_SIZE);
                let result = if matches!(step, BackendStep::Consume) {
                    backend
                        .next_request()
                        .map(|request| u32::from(request.is_some()))
                } else {
                    backend.final_check_for_requests().map(u32::from)
                };
                match result {
                    Err(error) if error.is_fatal() => {
                        assert!(expected.is_err(), "false alarm {error:?}");
                        assert_eq!(backend.fault(), Some(error));
                        poisoned = Some(error);
                    }
                    Err(RingError::Malformed(_)) => {
                        assert_eq!(backend.requests_consumed(), consumer.wrapping_add(1));
                    }
                    Err(other) => panic!("unexpected {other:?}"),
                    Ok(_) if cached => {
                        // Served from entries already validated; nothing new was read.
                    }
                    Ok(_) => {
                        let available = expected.expect("anomaly not reported");
                        last_seen = producer;
                        let _ = available;
                    }
                }
                if poisoned.is_none() && !cached {
                    last_seen = producer;
                }
            }
        }
        assert!(backend.requests_awaiting_response() <= P::RING_SIZE);
    }
}

fn run_frontend_against_hostile_backend<P: Protocol>(steps: &[(bool, Misbehavior)])
where
    P::Request: SampleEntry,
    P::Response: SampleEntry,
{
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut frontend = Frontend::<P>::initialize(page.clone());
    let mut hostile = HostileBackend::<P>::attach(page.clone());
    let mut last_seen = 0u32;
    let mut published = 0u32;
    for (well_behaved_turn, action) in steps {
        if let Some(error) = frontend.fault() {
            hostile.apply(*action);
            assert_eq!(frontend.next_response().err(), Some(error));
            assert_eq!(frontend.final_check_for_responses(), Err(error));
            assert_eq!(frontend.publish_requests(), Err(error));
            continue;
        }
        if *well_behaved_turn {
            // Push a request if there is room and publish; then try to consume.
            if !frontend.is_full() {
                frontend
                    .push_request(&P::Request::sample(published))
                    .expect("room");
            }
            let _ = frontend.publish_requests().expect("healthy");
            published = frontend.requests_produced();
            let producer = read_ring_indices(&page)[2];
            let consumer = frontend.responses_consumed();
            let cached = last_seen != consumer;
            let available = producer.wrapping_sub(consumer);
            let anomaly = available > published.wrapping_sub(consumer)
                || available < last_seen.wrapping_sub(consumer);
            match frontend.next_response() {
                Err(error) if error.is_fatal() => {
                    assert!(anomaly && !cached, "false alarm {error:?}")
                }
                Err(RingError::Malformed(_)) | Ok(_) => {
                    assert!(cached || !anomaly, "anomaly not reported");
                    if !cached {
                        last_seen = producer;
                    }
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
            assert!(frontend.free_requests() <= P::RING_SIZE);
        } else {
            hostile.apply(*action);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn blkif_backend_survives_hostile_frontend(
        steps in prop::collection::vec(backend_step(), 1..200),
        start in prop_oneof![Just(0u32), Just(u32::MAX - 20), any::<u32>()],
    ) {
        run_backend_against_hostile_frontend::<Blkif>(&steps, start);
    }

    #[test]
    fn netif_backends_survive_hostile_frontend(
        steps in prop::collection::vec(backend_step(), 1..300),
        start in any::<u32>(),
    ) {
        run_backend_against_hostile_frontend::<NetifTx>(&steps, start);
        run_backend_against_hostile_frontend::<NetifRx>(&steps, start);
    }

    #[test]
    fn frontends_survive_hostile_backend(
        steps in prop::collection::vec((any::<bool>(), misbehavior()), 1..200),
    ) {
        run_frontend_against_hostile_backend::<Blkif>(&steps);
        run_frontend_against_hostile_backend::<NetifTx>(&steps);
    }

    /// The fuzz target's entry point, on proptest's inputs: a page of arbitrary bytes,
    /// then an arbitrary script.
    #[test]
    fn backend_consumes_arbitrary_pages(
        data in prop::collection::vec(any::<u8>(), 0..4500),
    ) {
        let report = fuzz_backend_consume_page::<Blkif>(&data);
        prop_assert!(report.responses == report.valid_requests + report.malformed_requests);
        let _ = fuzz_backend_consume_page::<NetifTx>(&data);
    }

    /// Pages that are mostly zero with a few chosen indices, so the ring logic (not just
    /// the first index check) is reached often.
    #[test]
    fn backend_consumes_near_valid_pages(
        request_producer in 0u32..40,
        response_producer in 0u32..8,
        slots in prop::collection::vec(any::<u8>(), 0..(112 * 32)),
        script in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut data = vec![0u8; 4096];
        data[0..4].copy_from_slice(&request_producer.to_le_bytes());
        data[8..12].copy_from_slice(&response_producer.to_le_bytes());
        data[64..64 + slots.len()].copy_from_slice(&slots);
        data.extend_from_slice(&script);
        let report = fuzz_backend_consume_page::<Blkif>(&data);
        if request_producer.wrapping_sub(response_producer) > 32 {
            prop_assert!(report.fault.is_some(), "overflowing page accepted");
        }
    }
}

/// A hostile frontend on another thread rewrites indices and slots as fast as it can
/// while the backend consumes: the backend must neither panic nor loop forever.
#[test]
fn backend_survives_a_racing_hostile_frontend() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let _ = Frontend::<NetifTx>::initialize(page.clone());
    let mut backend = Backend::<NetifTx>::attach(page.clone());
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let stop = &stop;
        let hostile_page = page.clone();
        scope.spawn(move || {
            let mut hostile = HostileFrontend::<NetifTx>::attach(hostile_page);
            let mut seed = 1u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let action = match seed % 4 {
                    0 => Misbehavior::ProduceValid { seed },
                    1 => Misbehavior::ScribbleSlot {
                        slot: seed >> 8,
                        word: seed as u8,
                        value: seed,
                    },
                    2 => Misbehavior::MoveProducer((seed >> 16) as i8 % 3),
                    _ => Misbehavior::ProduceValid { seed: !seed },
                };
                hostile.apply(action);
            }
        });
        for _ in 0..20_000 {
            match backend.next_request() {
                Ok(Some(_)) | Err(RingError::Malformed(_)) => {
                    backend
                        .push_response(&ring_protocol::netif::TxResponse::default())
                        .expect("answering a consumed request");
                }
                Ok(None) => {}
                Err(error) => {
                    assert!(error.is_fatal());
                    break;
                }
            }
            let _ = backend.publish_responses();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let _ = TxRequest::default();
}
