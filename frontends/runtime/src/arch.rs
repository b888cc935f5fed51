//! The machine layer, bare metal only, and the only `unsafe` in the runtime:
//! the entry point, the `syscall` hypercall stubs, reading the start-info
//! page and the shared-info page's time fields, `rdtsc`, and the global
//! allocator over the domain's free RAM.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::{asm, global_asm};
use core::ptr::NonNull;

use linked_list_allocator::Heap;
use xen_abi::layout::{MIN_RAM_BYTES, PAGE_SIZE, RAM_BASE};
use xen_abi::shared_info::SIZE as SHARED_INFO_SIZE;
use xen_abi::start_info::SIZE as START_INFO_SIZE;

// The first instruction of every domain kernel. The hypervisor enters in
// ring 3 with rsp = top of RAM, rdi = address of the start-info page and
// rflags = IF. Align the stack as the System V ABI wants before a `call`,
// end the frame-pointer chain, and hand the start-info address (still in
// rdi) to `runtime_entry`, which the `entry!` macro defines and which never
// returns. `ud2` stops the domain should it ever come back.
global_asm!(
    ".section .text._start, \"ax\"",
    ".global _start",
    ".type _start, @function",
    "_start:",
    "    and rsp, -16",
    "    xor ebp, ebp",
    "    cld",
    "    call runtime_entry",
    "    ud2",
    ".size _start, . - _start",
    ".text",
);

/// A hypercall with up to five arguments (unused ones zero).
///
/// Not `unsafe` inside this crate, by an invariant every caller keeps: the
/// operation either only *reads* the memory its arguments name, or writes
/// only into memory the caller holds exclusively for the call. The public
/// API offers no way to make any other call (see `hypercall::foreign`).
pub(crate) fn hypercall5(number: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    let result: i64;
    // SAFETY: `syscall` enters the hypervisor, which returns with `sysret`
    // to the next instruction. (1) Registers: the instruction clobbers rcx
    // (return rip) and r11 (rflags), declared; the hypervisor preserves
    // every other register and returns the result in rax. (2) Memory: the
    // hypervisor may read the memory the arguments name and, by this
    // function's invariant, writes only memory the caller lent it, so the
    // asm is treated as reading and writing memory (no `nomem`/`readonly`).
    // (3) Stack: the hypervisor runs on its own stack and never writes ours.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number as i64 => result,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            in("r10") a3,
            in("r8") a4,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result
}

/// A hypercall without arguments.
pub(crate) fn hypercall0(number: u64) -> i64 {
    hypercall5(number, 0, 0, 0, 0, 0)
}

/// A hypercall with one argument.
pub(crate) fn hypercall1(number: u64, a0: u64) -> i64 {
    hypercall5(number, a0, 0, 0, 0, 0)
}

/// A hypercall with two arguments.
pub(crate) fn hypercall2(number: u64, a0: u64, a1: u64) -> i64 {
    hypercall5(number, a0, a1, 0, 0, 0)
}

/// A hypercall with three arguments.
pub(crate) fn hypercall3(number: u64, a0: u64, a1: u64, a2: u64) -> i64 {
    hypercall5(number, a0, a1, a2, 0, 0)
}

/// A hypercall with four arguments.
#[allow(dead_code)] // reason: part of the stub set; the event and grant wrappers will use it.
pub(crate) fn hypercall4(number: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    hypercall5(number, a0, a1, a2, a3, 0)
}

/// `domctl` with the argument block `block`, which the hypervisor reads and
/// writes back (and which the caller holds exclusively for the call).
pub(crate) fn domctl(block: &mut [u8; xen_abi::domctl::SIZE]) -> i64 {
    hypercall1(xen_abi::hypercall::DOMCTL, block.as_mut_ptr() as u64)
}

/// The time-stamp counter (after an `lfence`, so earlier instructions have
/// completed).
pub(crate) fn timestamp_counter() -> u64 {
    let low: u32;
    let high: u32;
    // SAFETY: `lfence` and `rdtsc` touch no memory; `rdtsc` is allowed in
    // ring 3 unless CR4.TSD is set, in which case it faults and the
    // hypervisor stops the domain before the next instruction.
    unsafe {
        asm!("lfence", "rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags));
    }
    u64::from(high) << 32 | u64::from(low)
}

/// Copies the start-info page the hypervisor put at `address`, or `None` if
/// `address` is not a page of the first MiB of RAM, where the hypervisor
/// puts it (`xen_abi::layout::START_INFO_PFN`).
pub(crate) fn read_start_info(address: u64) -> Option<[u8; START_INFO_SIZE]> {
    let plausible = address % PAGE_SIZE == 0
        && address >= RAM_BASE
        && address.checked_add(PAGE_SIZE)? <= RAM_BASE + MIN_RAM_BYTES;
    if !plausible {
        return None;
    }
    // SAFETY: (1) the address is a page inside the first MiB of our RAM,
    // which the hypervisor maps for every domain (checked above); (2) the
    // start-info page is read-only to us and the hypervisor wrote it before
    // our first instruction, so nothing changes it during the copy; (3) the
    // read is volatile into a local array, so no reference into it is kept.
    Some(unsafe { core::ptr::read_volatile(address as *const [u8; START_INFO_SIZE]) })
}

/// Whether `[base + offset, base + offset + size)` is a naturally aligned
/// field of a shared-info page at `base`, and `base` a page of the first
/// MiB of RAM, where the hypervisor puts that page
/// (`xen_abi::layout::SHARED_INFO_PFN`).
fn shared_info_field(base: u64, offset: usize, size: usize) -> Option<u64> {
    let plausible = base % PAGE_SIZE == 0
        && base >= RAM_BASE
        && base.checked_add(PAGE_SIZE)? <= RAM_BASE + MIN_RAM_BYTES
        && offset % size == 0
        && offset.checked_add(size)? <= SHARED_INFO_SIZE;
    plausible.then_some(base + offset as u64)
}

/// Reads the `u32` at `offset` of the shared-info page at `base` with one
/// volatile load (the hypervisor writes the page while we run), or `None`
/// if `base`/`offset` do not name an aligned field of such a page.
pub(crate) fn read_shared_info_u32(base: u64, offset: usize) -> Option<u32> {
    let address = shared_info_field(base, offset, 4)?;
    // SAFETY: (1) `address` is an aligned u32 inside a page of the first
    // MiB of our RAM (checked above), which the hypervisor maps for every
    // domain and where no Rust object lives (images start at 1 MiB, the
    // heap after them, the stack at the top of RAM); (2) the hypervisor may
    // change the value at any time, hence a volatile load of a plain
    // integer, for which every bit pattern is valid; (3) no reference into
    // the page is created or kept.
    Some(unsafe { core::ptr::read_volatile(address as *const u32) })
}

/// Reads the `u64` at `offset` of the shared-info page at `base`; see
/// [`read_shared_info_u32`].
pub(crate) fn read_shared_info_u64(base: u64, offset: usize) -> Option<u64> {
    let address = shared_info_field(base, offset, 8)?;
    // SAFETY: as in `read_shared_info_u32`: an aligned u64 of the
    // shared-info page in the first MiB of our RAM, read once, volatile,
    // into a plain integer; no reference is kept.
    Some(unsafe { core::ptr::read_volatile(address as *const u64) })
}

/// Reads the byte at `offset` of the shared-info page at `base`; see
/// [`read_shared_info_u32`].
pub(crate) fn read_shared_info_u8(base: u64, offset: usize) -> Option<u8> {
    let address = shared_info_field(base, offset, 1)?;
    // SAFETY: as in `read_shared_info_u32`: a byte of the shared-info page
    // in the first MiB of our RAM, read once, volatile; no reference kept.
    Some(unsafe { core::ptr::read_volatile(address as *const u8) })
}

extern "C" {
    /// The first byte after this image (page aligned), from `guest.ld`.
    static __image_end: u8;
}

/// The first address after the loaded image.
pub(crate) fn image_end() -> u64 {
    // Only the address of the linker-defined symbol is taken; it is never read.
    core::ptr::addr_of!(__image_end) as u64
}

/// The current stack pointer.
pub(crate) fn stack_pointer() -> u64 {
    let rsp: u64;
    // SAFETY: copies rsp into a register; touches no memory.
    unsafe { asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    rsp
}

/// The global allocator: `linked_list_allocator` under a lock, with the
/// bytes in use counted in [`crate::heap`].
struct CountingHeap {
    heap: spin::Mutex<Heap>,
    initialised: spin::Once<()>,
}

#[global_allocator]
static HEAP: CountingHeap = CountingHeap { heap: spin::Mutex::new(Heap::empty()), initialised: spin::Once::new() };

/// Gives the heap `[start, end)`, once. The caller ([`crate::heap::init`])
/// has checked the region against the start-info page; this checks again,
/// against the image and the stack as the machine sees them, and refuses
/// (returning `false`) a region that overlaps either.
pub(crate) fn init_heap(start: u64, end: u64) -> bool {
    let fits = start >= image_end()
        && start % PAGE_SIZE == 0
        && start < end
        && end <= stack_pointer()
        && end <= RAM_BASE + xen_abi::layout::MAX_RAM_BYTES;
    if !fits || HEAP.initialised.is_completed() {
        return false;
    }
    HEAP.initialised.call_once(|| {
        // SAFETY: (1) [start, end) is our own RAM, which the hypervisor
        // maps writable (checked against the start-info page by the caller
        // and bounded by the RAM window above); (2) it lies after the image
        // and below the current stack pointer, and the stack only grows
        // down from the top of RAM, so nothing else uses it; (3) this runs
        // once (`Once`), so the region is given away a single time.
        unsafe { HEAP.heap.lock().init(start as *mut u8, (end - start) as usize) };
    });
    true
}

// SAFETY: allocation and deallocation are delegated to
// `linked_list_allocator` under a lock, which hands out disjoint blocks of
// the region given to it; the counters do not affect the blocks.
unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.heap.lock().allocate_first_fit(layout) {
            Ok(block) => {
                crate::heap::note_allocation(layout.size());
                block.as_ptr()
            }
            Err(()) => {
                crate::heap::note_failure();
                core::ptr::null_mut()
            }
        }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        if let Some(block) = NonNull::new(pointer) {
            // SAFETY: GlobalAlloc's contract: `pointer` came from `alloc`
            // on this allocator with this `layout`.
            unsafe { self.heap.lock().deallocate(block, layout) };
            crate::heap::note_release(layout.size());
        }
    }
}
