//! Prints the benchmark table: round trips per second through the ring, an rtrb pair and
//! an `ArrayQueue` pair, side by side in one run, the ratios, and how many notifications
//! per 1,000 requests the ring's suppression leaves under load.
//! Run: `cargo run --release -p ring-protocol --example ring_report [round_trips] [runs]`

#[path = "../benches/workload.rs"]
mod workload;

use workload::RunResult;

fn best_of(runs: u32, run: impl Fn() -> RunResult) -> RunResult {
    (0..runs)
        .map(|_| run())
        .min_by_key(|result| result.elapsed)
        .expect("at least one run")
}

fn main() {
    let mut arguments = std::env::args().skip(1);
    let round_trips: u64 = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(2_000_000);
    let runs: u32 = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(5);
    // Interleave the contenders run by run, so a noisy neighbour hurts all alike.
    let mut ring = Vec::new();
    let mut rtrb = Vec::new();
    let mut array_queue = Vec::new();
    for _ in 0..runs {
        ring.push(best_of(1, || workload::run_ring(round_trips)));
        rtrb.push(best_of(1, || workload::run_rtrb(round_trips)));
        array_queue.push(best_of(1, || workload::run_array_queue(round_trips)));
    }
    let median = |results: &mut Vec<RunResult>| {
        results.sort_by_key(|result| result.elapsed);
        results[results.len() / 2]
    };
    let ring = median(&mut ring);
    let rtrb = median(&mut rtrb);
    let array_queue = median(&mut array_queue);
    let rate = |result: &RunResult| round_trips as f64 / result.elapsed.as_secs_f64();
    let per_thousand = |count: u64| count as f64 * 1000.0 / round_trips as f64;
    println!("{round_trips} round trips per run, median of {runs} interleaved runs");
    println!("| transport | round trips/s | ring ÷ this | notifications per 1,000 requests (to backend / to frontend) |");
    println!("|---|---:|---:|---:|");
    for (name, result) in [
        ("ring-protocol blkif ring", &ring),
        ("rtrb pair", &rtrb),
        ("crossbeam ArrayQueue pair", &array_queue),
    ] {
        let notifications = if std::ptr::eq(result, &ring) {
            format!(
                "{:.2} / {:.2}",
                per_thousand(result.request_notifications),
                per_thousand(result.response_notifications)
            )
        } else {
            "1000 / 1000 (no suppression)".to_string()
        };
        println!(
            "| {name} | {:.0} | {:.2} | {notifications} |",
            rate(result),
            rate(&ring) / rate(result)
        );
    }
}
