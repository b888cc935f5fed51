//! Single-threaded cost of the ring's hot path: one thread plays both ends, pushing a
//! full window of blkif write requests (11 segments), consuming them, answering and
//! consuming the responses. No cache-line transfers, no waiting: what remains is the
//! ring's own work per round trip (encode, slot copies, validation, fences).
//! Run: `cargo run --release -p ring-protocol --example ring_single_thread [round_trips]`

#[path = "../benches/workload.rs"]
mod workload;

use ring_protocol::blkif::{Blkif, BlkifResponse, STATUS_OKAY};
use ring_protocol::{Backend, Frontend, PageBuffer, SharedPage};
use std::time::Instant;

fn main() {
    let round_trips: u64 = std::env::args()
        .nth(1)
        .and_then(|text| text.parse().ok())
        .unwrap_or(10_000_000);
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let mut frontend = Frontend::<Blkif>::initialize(page.clone());
        let mut backend = Backend::<Blkif>::attach(page.clone());
        let start = Instant::now();
        let mut sent = 0u64;
        let mut received = 0u64;
        while received < round_trips {
            while sent < round_trips && !frontend.is_full() {
                frontend
                    .push_request(&workload::request(sent))
                    .expect("space");
                sent += 1;
            }
            let _ = frontend.publish_requests().expect("healthy");
            while let Some(request) = backend.next_request().expect("honest") {
                backend
                    .push_response(&BlkifResponse::to(&request, STATUS_OKAY))
                    .expect("outstanding");
            }
            let _ = backend.publish_responses().expect("healthy");
            let _ = backend.final_check_for_requests().expect("honest");
            while let Some(response) = frontend.next_response().expect("honest") {
                assert_eq!(response.id, received);
                received += 1;
            }
            let _ = frontend.final_check_for_responses().expect("honest");
        }
        let nanos = start.elapsed().as_secs_f64() * 1e9 / round_trips as f64;
        best = best.min(nanos);
    }
    println!("{round_trips} round trips, best of 5: {best:.1} ns per round trip");
}
