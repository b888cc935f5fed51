//! The hypervisor's heap: a linked-list allocator over frames taken from the
//! frame allocator (reached through the direct map), with the bytes in use
//! counted so teardown can be measured, not assumed.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use linked_list_allocator::Heap;
use xen_core::frame_allocator::Frame;
use xen_core::layout::direct_map;

/// The global allocator with accounting.
pub struct CountingHeap {
    heap: spin::Mutex<Heap>,
    in_use_bytes: AtomicUsize,
    peak_bytes: AtomicUsize,
}

#[global_allocator]
static HEAP: CountingHeap = CountingHeap {
    heap: spin::Mutex::new(Heap::empty()),
    in_use_bytes: AtomicUsize::new(0),
    peak_bytes: AtomicUsize::new(0),
};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Gives the heap `size_bytes` of contiguous frames from `first`, which the
/// caller has just taken from the frame allocator (so nothing else owns
/// them). Only the first call has any effect.
pub fn init(first: Frame, size_bytes: usize) {
    if INITIALISED.swap(true, Ordering::AcqRel) {
        return;
    }
    let start = direct_map(first.address()) as *mut u8;
    // SAFETY: the frames were allocated for the heap alone and the direct
    // map maps them writable; this runs once (checked above).
    unsafe { HEAP.heap.lock().init(start, size_bytes) };
}

/// (bytes in use now, most ever in use, heap size).
pub fn usage() -> (usize, usize, usize) {
    let size = HEAP.heap.lock().size();
    (HEAP.in_use_bytes.load(Ordering::Relaxed), HEAP.peak_bytes.load(Ordering::Relaxed), size)
}

// SAFETY: allocation and deallocation are delegated to `linked_list_allocator`
// under a lock; the counters do not affect the memory handed out.
unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.heap.lock().allocate_first_fit(layout) {
            Ok(block) => {
                let now = self.in_use_bytes.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
                self.peak_bytes.fetch_max(now, Ordering::Relaxed);
                block.as_ptr()
            }
            Err(()) => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if let Some(block) = NonNull::new(pointer) {
            // SAFETY: GlobalAlloc's contract: `pointer` came from `alloc`
            // with this `layout`.
            unsafe { self.heap.lock().deallocate(block, layout) };
            self.in_use_bytes.fetch_sub(layout.size(), Ordering::Relaxed);
        }
    }
}
