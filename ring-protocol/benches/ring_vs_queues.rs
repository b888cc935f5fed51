//! Criterion benchmark: blkif round trips between two threads through the ring, against
//! the same work through a pair of rtrb queues and a pair of crossbeam `ArrayQueue`s.
//! Run: `cargo bench -p ring-protocol --bench ring_vs_queues` (about a minute).
//! The notification counts are printed by `cargo run --release -p ring-protocol --example
//! ring_report`.

// reason: `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

mod workload;

fn round_trips(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("blkif_round_trip");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("ring", |bencher| {
        bencher.iter_custom(|iterations| workload::run_ring(iterations).elapsed)
    });
    group.bench_function("rtrb_pair", |bencher| {
        bencher.iter_custom(|iterations| workload::run_rtrb(iterations).elapsed)
    });
    group.bench_function("array_queue_pair", |bencher| {
        bencher.iter_custom(|iterations| workload::run_array_queue(iterations).elapsed)
    });
    group.finish();
}

criterion_group!(benches, round_trips);
criterion_main!(benches);
