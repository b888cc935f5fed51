//! `bench-direct=N`: the driver domain using its virtio-blk directly from
//! its own pages, timed with `rdtsc` (instructions under `-icount
//! shift=0,sleep=off`): the baseline `make bench` sets the split path
//! (blkfront, blkback, grants) against. Same sizes and order as the probe's
//! `blk-bench`; requests go to the device [`DEPTH`] at a time, as blkback
//! batches one frontend's requests (its cap per round), and one at a time
//! for reference; all of that `bench-repeat=` times (1), for a median: when
//! the device finishes, and so whether the domain blocks, depends on the
//! host.

use guest_runtime::time::{cancel_timer, sleep_ns};
use guest_runtime::timestamp_counter;
use log::{error, info};

use crate::arch::PoolRun;
use crate::disk::VirtioDisk;
use crate::server::CAP_PER_ROUND;

/// Request sizes, in sectors (4 KiB and 44 KiB, blkif's largest).
const SIZES_SECTORS: [u64; 2] = [8, 88];
/// Pages for the largest request.
const PAGES: usize = 11;
/// Requests queued at once: blkback's batch for one busy frontend.
pub const DEPTH: u64 = CAP_PER_ROUND as u64;
/// System time to let pass first, so every deadline the store calls armed
/// has fired and none is pending while timing (`-icount sleep=off` would
/// otherwise jump to it while the machine waits for the disk).
const SETTLE_NS: u64 = 40_000_000_000;

/// Runs the benchmark; `false` if it could not.
pub fn direct(disk: &mut VirtioDisk, count: u64, repeat: u64) -> bool {
    let Some(run) = PoolRun::take(PAGES) else {
        error!("driver: bench-direct: no {PAGES} contiguous DMA pages");
        return false;
    };
    let _ = sleep_ns(SETTLE_NS);
    let _ = cancel_timer();
    for size in (0..repeat).flat_map(|_| SIZES_SECTORS) {
        let length = size as usize * 512;
        for write in [true, false] {
            for depth in [DEPTH, 1] {
                let interrupts = disk.counters().interrupts;
                let started = timestamp_counter();
                let mut index = 0;
                while index < count {
                    let batch = depth.min(count - index);
                    if let Err(problem) =
                        disk.direct(write, index * size, size, batch as usize, &run)
                    {
                        error!("driver: bench-direct: requests from {index}: {problem}");
                        return false;
                    }
                    index += batch;
                }
                let instructions = timestamp_counter().wrapping_sub(started);
                info!(
                    "bench: blk direct{} {} {length} B: {instructions} instructions for {count} requests (0 errors), {} interrupts",
                    if depth == 1 { "-serial" } else { "" },
                    if write { "write" } else { "read" },
                    disk.counters().interrupts - interrupts
                );
            }
        }
    }
    true
}
