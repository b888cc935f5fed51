//! Loom model checks of this crate's own ring code — the same `Frontend` and `Backend`,
//! with only the shared-page accessor swapped for loom's atomics and cells — over
//! producer/consumer ordering for requests and responses, including the final-check race
//! that loses a wake-up when the fence or the re-check is missing, and repeated final checks
//! that skip re-arming an unchanged event index.
//!
//! Run with: `RUSTFLAGS="--cfg loom" cargo test -p ring-protocol --release --test loom`
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use ring_protocol::blkif::{Blkif, BlkifRequest, TransferRequest};
use ring_protocol::netif::{NetifTx, TxRequest, TxResponse};
use ring_protocol::{Backend, Frontend, SharedPage};

/// An event channel: `send` sets it, the sleeper consumes it before deciding to sleep.
#[derive(Clone)]
struct EventChannel(Arc<AtomicBool>);

impl EventChannel {
    fn new() -> Self {
        Self(Arc::new(AtomicBool::new(false)))
    }
    fn send(&self) {
        // An atomic read-modify-write, like Xen's test-and-set of the pending bit, with
        // Release so it orders what the sender did before it. (A plain store here lets
        // loom 0.7 order it before a concurrent `swap` that did not see it, a spurious
        // lost event in the harness rather than in the ring.)
        self.0.swap(true, Ordering::AcqRel);
    }
    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
    fn pending(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

fn model(check: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = None;
    builder.check(check);
}

fn request(id: u64, sector_number: u64) -> BlkifRequest {
    BlkifRequest::WriteBarrier(TransferRequest {
        id,
        sector_number,
        ..TransferRequest::default()
    })
}

/// Requests: the frontend publishes two requests, notifying when told to; the backend
/// drains, final-checks, and sleeps when it finds nothing. It must never sleep while a
/// request it has not seen sits in the ring with no event pending, and every request it
/// reads must be complete (loom flags a slot read racing the slot write).
#[test]
fn requests_are_never_lost_and_never_torn() {
    model(|| {
        let page = SharedPage::new_model();
        let mut frontend = Frontend::<Blkif>::initialize(page.clone());
        let event = EventChannel::new();
        let backend_event = event.clone();
        let backend = thread::spawn(move || {
            let mut backend = Backend::<Blkif>::attach(page);
            let mut consumed = 0u64;
            loop {
                while let Some(request) = backend.next_request().expect("honest frontend") {
                    assert_eq!(request, self::request(consumed, consumed * 8));
                    consumed += 1;
                }
                // Two final checks, as a backend polling before it sleeps does: the second
                // finds req_event already armed at the same value and skips the store and
                // the fence, so the model also checks that the first fence covers it.
                if backend.final_check_for_requests().expect("honest frontend")
                    || backend.final_check_for_requests().expect("honest frontend")
                {
                    continue;
                }
                if backend_event.take() {
                    continue;
                }
                return consumed; // asleep
            }
        });
        for id in 0..2 {
            frontend.push_request(&request(id, id * 8)).expect("space");
            if frontend.publish_requests().expect("healthy").is_required() {
                event.send();
            }
        }
        let consumed = backend.join().expect("backend thread");
        assert!(
            consumed == 2 || event.pending(),
            "lost wake-up: backend asleep after {consumed} of 2 requests, no event pending"
        );
    });
}

/// Responses: the backend answers two published requests one at a time, notifying when
/// told to; the frontend drains responses, final-checks and sleeps when it finds nothing.
#[test]
fn responses_are_never_lost_and_never_torn() {
    model(|| {
        let page = SharedPage::new_model();
        let mut frontend = Frontend::<NetifTx>::initialize(page.clone());
        for id in 0..2u16 {
            frontend
                .push_request(&TxRequest {
                    id,
                    size: 60 + id,
                    ..TxRequest::default()
                })
                .expect("space");
        }
        let _ = frontend.publish_requests().expect("healthy");
        let event = EventChannel::new();
        let backend_event = event.clone();
        let backend = thread::spawn(move || {
            let mut backend = Backend::<NetifTx>::attach(page);
            let mut decisions = Vec::new();
            assert_eq!(
                backend.unconsumed_requests(),
                Ok(2),
                "published before spawn"
            );
            while let Some(request) = backend.next_request().expect("honest frontend") {
                assert_eq!(request.size, 60 + request.id);
                backend
                    .push_response(&TxResponse {
                        id: request.id,
                        status: request.id as i16,
                    })
                    .expect("outstanding request");
                let decision = backend.publish_responses().expect("healthy");
                decisions.push(decision);
                if decision.is_required() {
                    backend_event.send();
                }
            }
            decisions
        });
        let mut consumed = 0u16;
        let mut trace = Vec::new();
        loop {
            while let Some(response) = frontend.next_response().expect("honest backend") {
                assert_eq!((response.id, response.status), (consumed, consumed as i16));
                consumed += 1;
            }
            // Two final checks, the second skipping the rsp_event store and the fence (the
            // value is unchanged), as in the requests model above.
            if frontend
                .final_check_for_responses()
                .expect("honest backend")
                || frontend
                    .final_check_for_responses()
                    .expect("honest backend")
            {
                trace.push("final-check-work");
                continue;
            }
            if event.take() {
                trace.push("took-event");
                continue;
            }
            break; // asleep
        }
        let decisions = backend.join().expect("backend thread");
        assert!(
            consumed == 2 || event.pending(),
            "lost wake-up: frontend asleep after {consumed} of 2 responses, no event pending {decisions:?} {trace:?}"
        );
    });
}

/// A full round trip through one slot reused: request, response, then a new request in
/// the same slot while the backend may still be finishing. Loom checks that the
/// frontend's rewrite of a slot never races the backend's copy of the old request or its
/// write of the response.
#[test]
fn slot_reuse_is_ordered() {
    model(|| {
        let page = SharedPage::new_model();
        // Start at the last index so the wrap at 2^32 is in the model too.
        let start = u32::MAX;
        let mut frontend = Frontend::<NetifTx>::initialize_at(page.clone(), start);
        let backend = thread::spawn(move || {
            let mut backend = Backend::<NetifTx>::attach_at(page, start);
            let mut answered = 0;
            while answered < 2 {
                match backend.next_request().expect("honest frontend") {
                    Some(request) => {
                        backend
                            .push_response(&TxResponse {
                                id: request.id,
                                status: 0,
                            })
                            .expect("outstanding");
                        let _ = backend.publish_responses().expect("healthy");
                        answered += 1;
                    }
                    None => thread::yield_now(),
                }
            }
        });
        let mut received = 0u16;
        let mut sent = 0u16;
        while received < 2 {
            if sent == received {
                frontend
                    .push_request(&TxRequest {
                        id: sent,
                        ..TxRequest::default()
                    })
                    .expect("space");
                let _ = frontend.publish_requests().expect("healthy");
                sent += 1;
            }
            match frontend.next_response().expect("honest backend") {
                Some(response) => {
                    assert_eq!(response.id, received);
                    received += 1;
                }
                None => thread::yield_now(),
            }
        }
        backend.join().expect("backend thread");
    });
}
