//! Every index edge of the request/response ring: empty, full, wrap-around at 2^32,
//! notification suppression deciding both ways, and poisoning on a bad producer index.
#![cfg(not(loom))]

use ring_protocol::blkif::{Blkif, BlkifRequest, BlkifResponse, TransferRequest};
use ring_protocol::netif::{NetifTx, TxRequest, TxResponse};
use ring_protocol::test_utils::{read_ring_indices, HostileBackend, HostileFrontend, Misbehavior};
use ring_protocol::{Backend, Blame, Frontend, Notification, PageBuffer, RingError, SharedPage};

fn flush(id: u64) -> BlkifRequest {
    BlkifRequest::FlushDiskCache(TransferRequest {
        id,
        ..TransferRequest::default()
    })
}

fn okay(id: u64) -> BlkifResponse {
    BlkifResponse {
        id,
        operation: ring_protocol::blkif::OPERATION_FLUSH_DISKCACHE,
        status: 0,
    }
}

fn pair(buffer: &PageBuffer, start: u32) -> (Frontend<'_, Blkif>, Backend<'_, Blkif>) {
    let page = SharedPage::new(buffer);
    let frontend = Frontend::<Blkif>::initialize_at(page.clone(), start);
    let backend = Backend::<Blkif>::attach_at(page, start);
    (frontend, backend)
}

#[test]
fn fresh_ring_header_is_xen_shared_ring_init() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let _frontend = Frontend::<Blkif>::initialize(page.clone());
    assert_eq!(read_ring_indices(&page), [0, 1, 0, 1]);
    assert_eq!(Frontend::<Blkif>::SIZE, 32);
    assert_eq!(Frontend::<NetifTx>::SIZE, 256);
}

#[test]
fn empty_ring_has_nothing_to_consume() {
    let buffer = PageBuffer::new();
    let (mut frontend, mut backend) = pair(&buffer, 0);
    assert_eq!(backend.unconsumed_requests(), Ok(0));
    assert_eq!(backend.next_request(), Ok(None));
    assert_eq!(frontend.next_response(), Ok(None));
    assert_eq!(frontend.free_requests(), 32);
    assert!(!frontend.is_full());
    assert_eq!(
        backend.push_response(&okay(0)),
        Err(RingError::NoRequestToAnswer)
    );
    assert_eq!(RingError::NoRequestToAnswer.blame(), Blame::Caller);
    // Publishing nothing never notifies.
    assert_eq!(frontend.publish_requests(), Ok(Notification::Suppressed));
}

#[test]
fn full_ring_refuses_requests_until_responses_are_consumed() {
    let buffer = PageBuffer::new();
    let (mut frontend, mut backend) = pair(&buffer, 0);
    for id in 0..32 {
        frontend.push_request(&flush(id)).expect("space");
    }
    assert!(frontend.is_full());
    assert_eq!(frontend.push_request(&flush(99)), Err(RingError::Full));
    assert_eq!(RingError::Full.blame(), Blame::Caller);
    assert!(frontend.fault().is_none(), "Full is not a peer fault");
    let _ = frontend.publish_requests().expect("publish");
    assert_eq!(backend.unconsumed_requests(), Ok(32));
    for id in 0..32 {
        assert_eq!(backend.next_request(), Ok(Some(flush(id))));
    }
    assert_eq!(backend.next_request(), Ok(None));
    // Responses freed nothing yet: the frontend has not consumed them.
    for id in 0..32 {
        backend.push_response(&okay(id)).expect("answer");
    }
    let _ = backend.publish_responses().expect("publish");
    assert!(frontend.is_full());
    assert_eq!(frontend.next_response(), Ok(Some(okay(0))));
    assert_eq!(frontend.free_requests(), 1);
    frontend.push_request(&flush(32)).expect("one slot free");
    assert!(frontend.is_full());
}

#[test]
fn indices_wrap_at_two_to_the_32() {
    for start in [u32::MAX - 40, u32::MAX - 1, u32::MAX] {
        let buffer = PageBuffer::new();
        let (mut frontend, mut backend) = pair(&buffer, start);
        let mut next_id = 0u64;
        let mut answered = 0u64;
        // Ten rounds of 20: crosses 2^32 and reuses every slot several times.
        for _round in 0..10 {
            for _ in 0..20 {
                frontend.push_request(&flush(next_id)).expect("space");
                next_id += 1;
            }
            let _ = frontend.publish_requests().expect("publish");
            while let Some(request) = backend.next_request().expect("valid") {
                backend.push_response(&okay(request.id())).expect("answer");
            }
            let _ = backend.publish_responses().expect("publish");
            while let Some(response) = frontend.next_response().expect("valid") {
                assert_eq!(response.id, answered);
                answered += 1;
            }
        }
        assert_eq!(answered, 200);
        assert_eq!(frontend.requests_produced(), start.wrapping_add(200));
        assert_eq!(backend.requests_consumed(), start.wrapping_add(200));
        assert_eq!(frontend.free_requests(), 32);
    }
}

#[test]
fn suppression_notifies_only_a_sleeping_peer() {
    let buffer = PageBuffer::new();
    let (mut frontend, mut backend) = pair(&buffer, 0);
    // The backend is asleep after init (req_event = 1): first request notifies.
    frontend.push_request(&flush(0)).expect("space");
    assert_eq!(frontend.publish_requests(), Ok(Notification::Required));
    // The backend has not re-armed: more requests go unannounced.
    frontend.push_request(&flush(1)).expect("space");
    assert_eq!(frontend.publish_requests(), Ok(Notification::Suppressed));
    // The backend drains, then its final check arms req_event = cons + 1 and finds none.
    while backend.next_request().expect("valid").is_some() {}
    assert_eq!(backend.final_check_for_requests(), Ok(false));
    assert_eq!(read_ring_indices(&SharedPage::new(&buffer))[1], 3);
    // Now the next request notifies again.
    frontend.push_request(&flush(2)).expect("space");
    assert_eq!(frontend.publish_requests(), Ok(Notification::Required));
    // A final check that finds work does not re-arm (and says so).
    assert_eq!(backend.final_check_for_requests(), Ok(true));

    // Three requests consumed, none answered. Responses: the frontend is asleep
    // (rsp_event = 1), so the first batch notifies.
    while backend.next_request().expect("valid").is_some() {}
    assert_eq!(backend.requests_awaiting_response(), 3);
    backend.push_response(&okay(0)).expect("answer");
    backend.push_response(&okay(1)).expect("answer");
    assert_eq!(backend.publish_responses(), Ok(Notification::Required));
    // The frontend consumes one and does not re-arm: the next response is not announced.
    assert_eq!(frontend.next_response(), Ok(Some(okay(0))));
    backend.push_response(&okay(2)).expect("answer");
    assert_eq!(backend.publish_responses(), Ok(Notification::Suppressed));
    // The frontend drains and arms rsp_event; the next response is announced again.
    while frontend.next_response().expect("valid").is_some() {}
    assert_eq!(frontend.final_check_for_responses(), Ok(false));
    assert_eq!(read_ring_indices(&SharedPage::new(&buffer))[3], 4);
    frontend.push_request(&flush(3)).expect("space");
    let _ = frontend.publish_requests().expect("publish");
    let request = backend.next_request().expect("valid").expect("one ready");
    backend.push_response(&okay(request.id())).expect("answer");
    assert_eq!(backend.publish_responses(), Ok(Notification::Required));
    assert_eq!(frontend.final_check_for_responses(), Ok(true));
}

#[test]
fn repeated_final_checks_arm_once_and_still_see_new_work() {
    let buffer = PageBuffer::new();
    let (mut frontend, mut backend) = pair(&buffer, 0);
    // A fresh backend arms req_event = cons + 1 = 1 (the frontend's initial value too).
    assert_eq!(backend.final_check_for_requests(), Ok(false));
    assert_eq!(read_ring_indices(&SharedPage::new(&buffer))[1], 1);
    // Polling again with nothing consumed: nothing to re-arm, still no work.
    assert_eq!(backend.final_check_for_requests(), Ok(false));
    // The frontend's next request is announced, and a repeated final check sees it.
    frontend.push_request(&flush(0)).expect("space");
    assert_eq!(frontend.publish_requests(), Ok(Notification::Required));
    assert_eq!(backend.final_check_for_requests(), Ok(true));
    // After consuming it, the final check arms the next index.
    assert!(backend.next_request().expect("valid").is_some());
    assert_eq!(backend.final_check_for_requests(), Ok(false));
    assert_eq!(read_ring_indices(&SharedPage::new(&buffer))[1], 2);
    assert_eq!(backend.final_check_for_requests(), Ok(false));

    // The same on the response side.
    assert_eq!(frontend.final_check_for_responses(), Ok(false));
    assert_eq!(frontend.final_check_for_responses(), Ok(false));
    assert_eq!(read_ring_indices(&SharedPage::new(&buffer))[3], 1);
    backend.push_response(&okay(0)).expect("answer");
    assert_eq!(backend.publish_responses(), Ok(Notification::Required));
    assert_eq!(frontend.final_check_for_responses(), Ok(true));
    assert_eq!(frontend.next_response(), Ok(Some(okay(0))));
    assert_eq!(frontend.final_check_for_responses(), Ok(false));
    assert_eq!(read_ring_indices(&SharedPage::new(&buffer))[3], 2);
}

#[test]
fn suppression_batches_many_requests_into_one_event() {
    let buffer = PageBuffer::new();
    let (mut frontend, mut backend) = pair(&buffer, 0);
    let mut notifications = 0;
    for id in 0..32 {
        frontend.push_request(&flush(id)).expect("space");
        if frontend.publish_requests().expect("publish").is_required() {
            notifications += 1;
        }
    }
    assert_eq!(notifications, 1, "backend never re-armed");
    assert_eq!(backend.unconsumed_requests(), Ok(32));
}

#[test]
fn overflowing_producer_poisons_the_backend() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut hostile = HostileFrontend::<Blkif>::initialize(page.clone());
    let mut backend = Backend::<Blkif>::attach(page);
    hostile.apply(Misbehavior::ProduceValid { seed: 1 });
    assert!(matches!(backend.next_request(), Ok(Some(_))));
    // 33 outstanding claimed (1 consumed-unanswered + 32 new): one too many.
    hostile.apply(Misbehavior::SetProducer(34));
    let error = RingError::PeerOverflow {
        producer: 34,
        consumer: 1,
        limit: 31,
    };
    assert_eq!(backend.next_request(), Err(error));
    assert!(error.is_fatal());
    assert_eq!(error.blame(), Blame::Peer);
    // Poisoned: even after the peer repairs the index, every call fails.
    hostile.apply(Misbehavior::SetProducer(1));
    assert_eq!(backend.next_request(), Err(error));
    assert_eq!(backend.unconsumed_requests(), Err(error));
    assert_eq!(backend.push_response(&okay(1)), Err(error));
    assert_eq!(backend.publish_responses(), Err(error));
    assert_eq!(backend.final_check_for_requests(), Err(error));
    assert_eq!(backend.fault(), Some(error));
}

#[test]
fn exactly_a_ring_of_outstanding_requests_is_allowed() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut hostile = HostileFrontend::<Blkif>::initialize(page.clone());
    let mut backend = Backend::<Blkif>::attach(page);
    hostile.apply(Misbehavior::SetProducer(32));
    assert_eq!(backend.unconsumed_requests(), Ok(32));
    hostile.apply(Misbehavior::SetProducer(33));
    assert!(matches!(
        backend.unconsumed_requests(),
        Err(RingError::PeerOverflow { limit: 32, .. })
    ));
}

#[test]
fn rewound_producer_poisons_the_backend() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut hostile = HostileFrontend::<Blkif>::initialize(page.clone());
    let mut backend = Backend::<Blkif>::attach(page);
    for seed in 0..5 {
        hostile.apply(Misbehavior::ProduceValid { seed });
    }
    assert!(backend.next_request().expect("valid").is_some());
    assert_eq!(backend.unconsumed_requests(), Ok(4));
    // Still ahead of our consumer (1), but behind the 5 already published: rewound.
    hostile.apply(Misbehavior::MoveProducer(-2));
    let error = RingError::PeerRewound {
        producer: 3,
        previous: 5,
    };
    assert_eq!(backend.unconsumed_requests(), Err(error));
    assert_eq!(backend.next_request(), Err(error));
    assert!(error.is_fatal());
}

#[test]
fn frontend_rejects_responses_to_requests_never_published() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut frontend = Frontend::<NetifTx>::initialize(page.clone());
    let mut hostile = HostileBackend::<NetifTx>::attach(page);
    frontend.push_request(&TxRequest::default()).expect("space");
    // Pushed but not published: the backend cannot answer it yet.
    hostile.produce(&TxResponse::default());
    assert_eq!(
        frontend.next_response(),
        Err(RingError::PeerOverflow {
            producer: 1,
            consumer: 0,
            limit: 0
        })
    );
    assert!(frontend.push_request(&TxRequest::default()).is_err());
    assert!(frontend.publish_requests().is_err());
    assert!(frontend.final_check_for_responses().is_err());
}

#[test]
fn frontend_ignores_scribbles_on_its_own_indices() {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut frontend = Frontend::<Blkif>::initialize(page.clone());
    let mut backend = Backend::<Blkif>::attach(page.clone());
    let mut hostile = HostileBackend::<Blkif>::attach(page);
    frontend.push_request(&flush(7)).expect("space");
    // A hostile backend rewrites req_prod: the frontend's next publish uses its own copy.
    hostile.apply(Misbehavior::SetVictimProducer(1000));
    frontend.push_request(&flush(8)).expect("space");
    let _ = frontend.publish_requests().expect("publish");
    assert_eq!(read_ring_indices(&SharedPage::new(&buffer))[0], 2);
    assert_eq!(backend.next_request(), Ok(Some(flush(7))));
}

#[test]
fn backend_ignores_scribbles_on_its_own_producer() {
    let buffer = PageBuffer::new();
    let (mut frontend, mut backend) = pair(&buffer, 0);
    let mut hostile = HostileFrontend::<Blkif>::attach(SharedPage::new(&buffer));
    frontend.push_request(&flush(1)).expect("space");
    let _ = frontend.publish_requests().expect("publish");
    let request = backend.next_request().expect("valid").expect("ready");
    backend.push_response(&okay(request.id())).expect("answer");
    // The frontend overwrites rsp_prod so that "old" would look like 1: with Xen's macro
    // the backend would skip the notification. Ours uses its private copy.
    hostile.apply(Misbehavior::SetVictimProducer(1));
    assert_eq!(backend.publish_responses(), Ok(Notification::Required));
}
