//! The heap: the domain's free RAM, from `first_free_pfn` (the first frame
//! after the image) up to the stack (`nr_pages - stack_pages`), handed to
//! the global allocator once at start. Counts bytes in use, so a domain
//! can report (and tests can check) what it holds.

use core::ops::Range;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use xen_abi::layout::{pfn_to_address, IMAGE_OFFSET, MAX_RAM_BYTES, PAGE_SIZE};
use xen_abi::start_info::StartInfo;

/// The heap's address range per the start-info page, or `None` if the
/// page describes no room (or nonsense: more RAM than a domain may have, a
/// free frame inside the first MiB, a stack bigger than RAM).
pub fn region(info: &StartInfo) -> Option<Range<u64>> {
    if info.nr_pages > MAX_RAM_BYTES / PAGE_SIZE || info.first_free_pfn < IMAGE_OFFSET / PAGE_SIZE {
        return None;
    }
    let end_pfn = info.nr_pages.checked_sub(info.stack_pages)?;
    if info.first_free_pfn >= end_pfn {
        return None;
    }
    Some(pfn_to_address(info.first_free_pfn)..pfn_to_address(end_pfn))
}

static TOTAL_BYTES: AtomicUsize = AtomicUsize::new(0);
static IN_USE_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// Gives the allocator the region `info` describes. Returns its size in
/// bytes, or `None` if there is none (then every allocation fails).
pub fn init(info: &StartInfo) -> Option<usize> {
    let range = region(info)?;
    if !crate::machine::init_heap(range.start, range.end) {
        return None;
    }
    let size = (range.end - range.start) as usize;
    TOTAL_BYTES.store(size, Ordering::Relaxed);
    Some(size)
}

/// Called by the allocator for each block handed out.
#[cfg_attr(not(target_os = "none"), allow(dead_code))] // reason: only the bare-metal allocator calls it (and tests).
pub(crate) fn note_allocation(bytes: usize) {
    let now = IN_USE_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK_BYTES.fetch_max(now, Ordering::Relaxed);
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
}

/// Called by the allocator for each block returned.
#[cfg_attr(not(target_os = "none"), allow(dead_code))] // reason: only the bare-metal allocator calls it (and tests).
pub(crate) fn note_release(bytes: usize) {
    IN_USE_BYTES.fetch_sub(bytes, Ordering::Relaxed);
}

/// Called by the allocator when it cannot satisfy a request.
#[cfg_attr(not(target_os = "none"), allow(dead_code))] // reason: only the bare-metal allocator calls it.
pub(crate) fn note_failure() {
    FAILURES.fetch_add(1, Ordering::Relaxed);
}

/// The heap's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Bytes the heap manages (0 before `init` or without a region).
    pub total_bytes: usize,
    /// Bytes in live allocations (as requested, without allocator overhead).
    pub in_use_bytes: usize,
    /// The most bytes ever in use at once.
    pub peak_bytes: usize,
    /// Allocations made so far.
    pub allocations: u64,
    /// Allocations refused for lack of room.
    pub failures: u64,
}

/// The counters now.
pub fn statistics() -> Statistics {
    Statistics {
        total_bytes: TOTAL_BYTES.load(Ordering::Relaxed),
        in_use_bytes: IN_USE_BYTES.load(Ordering::Relaxed),
        peak_bytes: PEAK_BYTES.load(Ordering::Relaxed),
        allocations: ALLOCATIONS.load(Ordering::Relaxed),
        failures: FAILURES.load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::layout::RAM_BASE;
    use xen_abi::start_info::fill_text;

    fn info(nr_pages: u64, first_free_pfn: u64, stack_pages: u64) -> StartInfo {
        StartInfo {
            nr_pages,
            shared_info: 0,
            flags: 0,
            domid: 1,
            store_pfn: 3,
            store_evtchn: 0,
            console_pfn: 2,
            console_evtchn: 0,
            first_free_pfn,
            stack_pages,
            name: fill_text("t"),
            seclabel: fill_text("t"),
            command_line: fill_text(""),
        }
    }

    #[test]
    fn region_is_between_image_and_stack() {
        assert_eq!(region(&info(1024, 300, 16)), Some(RAM_BASE + 300 * 4096..RAM_BASE + 1008 * 4096));
        assert_eq!(region(&info(1024, 1008, 16)), None, "no room");
        assert_eq!(region(&info(16, 300, 32)), None, "stack bigger than RAM");
        assert_eq!(region(&info(1024, 3, 16)), None, "free frame inside the first MiB");
        assert_eq!(region(&info(u64::MAX, 300, 16)), None, "more RAM than allowed");
    }

    #[test]
    fn counters() {
        let before = statistics();
        note_allocation(100);
        note_allocation(50);
        note_release(100);
        let after = statistics();
        assert_eq!(after.allocations, before.allocations + 2);
        assert!(after.peak_bytes >= 150);
        assert_eq!(init(&info(1024, 300, 16)), None, "the host has no region to hand over");
    }
}
