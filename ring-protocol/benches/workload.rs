//! The benchmark workload, shared by the criterion bench and the `ring_report` example:
//! two threads, a frontend and a backend, moving blkif requests one way and their
//! responses back, through the ring or through a pair of queues (one each way).
//!
//! The ring sides behave like real drivers: when a side finds no work, it polls the ring
//! briefly ([`POLL_SPINS`] loads of the peer's producer index), and if its final check then
//! agrees, it "sleeps" by spinning on an event flag, which the other side raises only when
//! `publish_*` says a notification is required. So the notification counts are what the
//! suppression would leave with real event channels. The queue pairs have no suppression:
//! each side polls, and an event-driven design would need an event per entry.
//!
//! Both transports get the same request, built inline (`request` is `#[inline]`: built out
//! of line, its narrow field stores are read back by wider loads, a store-forwarding stall
//! that, behind a store buffer full of cache-missing slot writes, cost both transports a
//! third of their rate and measured the harness rather than the queue).
#![allow(dead_code)] // reason: each including target uses a different subset.

use crossbeam_queue::ArrayQueue;
use ring_protocol::blkif::{
    Blkif, BlkifRequest, BlkifResponse, Segment, TransferRequest, STATUS_OKAY,
};
use ring_protocol::{Backend, Frontend, PageBuffer, SharedPage};
use std::hint::spin_loop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Requests in flight at most: the blkif ring's size, used for the queues too.
pub(crate) const WINDOW: usize = 32;

/// The backend publishes its responses at least this often.
pub(crate) const PUBLISH_BATCH: u64 = 8;

/// Before arming its event and sleeping, an idle ring side polls the peer's producer index
/// this many times (a plain load and a spin-loop hint each, well under a microsecond), as
/// a driver that expects more work soon does; the queue sides poll without limit.
pub(crate) const POLL_SPINS: u32 = 64;

/// Polls `ready` up to [`POLL_SPINS`] times; whether it turned true.
fn poll(mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..POLL_SPINS {
        if ready() {
            return true;
        }
        spin_loop();
    }
    false
}

/// What one run measured.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RunResult {
    /// Wall time for all round trips.
    pub(crate) elapsed: Duration,
    /// Events the frontend sent the backend.
    pub(crate) request_notifications: u64,
    /// Events the backend sent the frontend.
    pub(crate) response_notifications: u64,
}

/// The request for round trip `id`: a write with 11 segments, the full 112 bytes.
#[inline]
pub(crate) fn request(id: u64) -> BlkifRequest {
    let mut request = TransferRequest {
        handle: 1,
        id,
        sector_number: id * 8,
        segment_count: 11,
        ..TransferRequest::default()
    };
    for (index, segment) in request.segments.iter_mut().enumerate() {
        *segment = Segment {
            grant: id as u32 + index as u32,
            first_sector: 0,
            last_sector: 7,
        };
    }
    BlkifRequest::Write(request)
}

fn answer(request: &BlkifRequest) -> BlkifResponse {
    BlkifResponse::to(request, STATUS_OKAY)
}

/// An event flag alone on its cache lines (128 bytes: adjacent-line prefetch pairs lines),
/// so a side spinning on it does not steal the line holding the other side's private ring
/// state or the other flag (false sharing the real event channels do not have).
#[repr(align(128))]
struct Event(AtomicBool);

impl Event {
    const fn new() -> Self {
        Self(AtomicBool::new(false))
    }
}

/// Waits until `event` is raised, then lowers it. Spins on a plain load, so the waiting
/// side keeps a shared copy of the line instead of taking it exclusive on every turn (a
/// sleeping vCPU does not write the event channel's line either); only a raised flag is
/// taken with the read-modify-write.
fn sleep_on(event: &Event) {
    loop {
        if event.0.load(Ordering::Relaxed) && event.0.swap(false, Ordering::AcqRel) {
            return;
        }
        spin_loop();
    }
}

fn raise(event: &Event) {
    event.0.store(true, Ordering::Release);
}

/// `round_trips` requests and responses through a blkif ring.
pub(crate) fn run_ring(round_trips: u64) -> RunResult {
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut frontend = Frontend::<Blkif>::initialize(page.clone());
    let backend_event = Event::new();
    let frontend_event = Event::new();
    let start = Instant::now();
    let (request_notifications, response_notifications) = std::thread::scope(|scope| {
        let backend_thread = scope.spawn(|| {
            let mut backend = Backend::<Blkif>::attach(page.clone());
            let mut answered = 0u64;
            let mut notifications = 0u64;
            while answered < round_trips {
                // Answer as requests complete, publishing every PUBLISH_BATCH responses
                // and when the ring is drained, so the frontend can refill meanwhile.
                while let Some(request) = backend.next_request().expect("honest frontend") {
                    backend
                        .push_response(&answer(&request))
                        .expect("outstanding");
                    answered += 1;
                    if answered % PUBLISH_BATCH == 0
                        && backend.publish_responses().expect("healthy").is_required()
                    {
                        raise(&frontend_event);
                        notifications += 1;
                    }
                }
                if backend.publish_responses().expect("healthy").is_required() {
                    raise(&frontend_event);
                    notifications += 1;
                }
                if answered < round_trips
                    && !poll(|| backend.unconsumed_requests().expect("honest frontend") > 0)
                    && !backend.final_check_for_requests().expect("honest frontend")
                {
                    sleep_on(&backend_event);
                }
            }
            notifications
        });
        let mut sent = 0u64;
        let mut received = 0u64;
        let mut notifications = 0u64;
        while received < round_trips {
            while sent < round_trips && !frontend.is_full() {
                frontend.push_request(&request(sent)).expect("space");
                sent += 1;
            }
            if frontend.publish_requests().expect("healthy").is_required() {
                raise(&backend_event);
                notifications += 1;
            }
            let mut progress = false;
            while let Some(response) = frontend.next_response().expect("honest backend") {
                debug_assert_eq!(response.id, received);
                received += 1;
                progress = true;
            }
            if !progress
                && received < round_trips
                && !poll(|| frontend.unconsumed_responses().expect("honest backend") > 0)
                && !frontend
                    .final_check_for_responses()
                    .expect("honest backend")
            {
                sleep_on(&frontend_event);
            }
        }
        let response_notifications = backend_thread.join().expect("backend thread");
        (notifications, response_notifications)
    });
    RunResult {
        elapsed: start.elapsed(),
        request_notifications,
        response_notifications,
    }
}

/// The same work through a pair of rtrb queues (requests one way, responses back).
pub(crate) fn run_rtrb(round_trips: u64) -> RunResult {
    let (mut request_producer, mut request_consumer) = rtrb::RingBuffer::new(WINDOW);
    let (mut response_producer, mut response_consumer) = rtrb::RingBuffer::new(WINDOW);
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut answered = 0u64;
            while answered < round_trips {
                match request_consumer.pop() {
                    Ok(request) => {
                        let response = answer(&request);
                        while response_producer.push(response).is_err() {
                            spin_loop();
                        }
                        answered += 1;
                    }
                    Err(_) => spin_loop(),
                }
            }
        });
        let mut sent = 0u64;
        let mut received = 0u64;
        while received < round_trips {
            while sent < round_trips && sent - received < WINDOW as u64 {
                if request_producer.push(request(sent)).is_err() {
                    break;
                }
                sent += 1;
            }
            match response_consumer.pop() {
                Ok(response) => {
                    debug_assert_eq!(response.id, received);
                    received += 1;
                }
                Err(_) => spin_loop(),
            }
        }
    });
    RunResult {
        elapsed: start.elapsed(),
        request_notifications: round_trips,
        response_notifications: round_trips,
    }
}

/// The same work through a pair of crossbeam `ArrayQueue`s.
pub(crate) fn run_array_queue(round_trips: u64) -> RunResult {
    let requests = ArrayQueue::<BlkifRequest>::new(WINDOW);
    let responses = ArrayQueue::<BlkifResponse>::new(WINDOW);
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut answered = 0u64;
            while answered < round_trips {
                match requests.pop() {
                    Some(request) => {
                        let mut response = answer(&request);
                        while let Err(rejected) = responses.push(response) {
                            response = rejected;
                            spin_loop();
                        }
                        answered += 1;
                    }
                    None => spin_loop(),
                }
            }
        });
        let mut sent = 0u64;
        let mut received = 0u64;
        while received < round_trips {
            while sent < round_trips && sent - received < WINDOW as u64 {
                if requests.push(request(sent)).is_err() {
                    break;
                }
                sent += 1;
            }
            match responses.pop() {
                Some(response) => {
                    debug_assert_eq!(response.id, received);
                    received += 1;
                }
                None => spin_loop(),
            }
        }
    });
    RunResult {
        elapsed: start.elapsed(),
        request_notifications: round_trips,
        response_notifications: round_trips,
    }
}
