//! The machine layer, bare metal only, and the only `unsafe` in the runtime:
//! the entry point, the `syscall` hypercall stubs, reading the start-info
//! page and the shared-info page's time fields, `rdtsc`, and the global
//! allocator over the domain's free RAM.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::{asm, global_asm};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicU8};

use linked_list_allocator::Heap;
use xen_abi::layout::{MIN_RAM_BYTES, PAGE_SIZE, RAM_BASE};
use xen_abi::shared_info::SIZE as SHARED_INFO_SIZE;
use xen_abi::start_info::SIZE as START_INFO_SIZE;

use crate::event::{EventBitmaps, WORDS as EVENT_WORDS};
use crate::grant::{GrantEntry, Mapping};
use ring_protocol::SharedPage;

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
pub(crate) fn hypercall4(number: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    hypercall5(number, a0, a1, a2, a3, 0)
}

/// A hypercall whose `rsi` is the address of `buffer` (`rdi` = `a0`, `rdx`
/// = `a2`): event-channel and grant-table operations, whose argument blocks
/// the hypervisor reads and writes back. By `hypercall5`'s invariant it
/// writes only `buffer`, which the caller holds exclusively for the call
/// (the count in `a2` never exceeds the blocks in it), or, for a grant copy
/// to one of our frames, a `PageBuffer` the caller named: memory made of
/// atomics, which another agent may write.
pub(crate) fn hypercall_buffer(number: u64, a0: u64, buffer: &mut [u8], a2: u64) -> i64 {
    hypercall3(number, a0, buffer.as_mut_ptr() as u64, a2)
}

/// A hypercall `(number, a0, count, buffer)` or `(number, a0, buffer, count, a3)`
/// after which the hypervisor has written at most `buffer.len()` bytes of
/// `buffer` (console reads, log reads, physinfo): `buffer_first` picks the
/// argument order.
pub(crate) fn hypercall_fill(number: u64, a0: u64, buffer: &mut [u8], buffer_first: bool, a3: u64) -> i64 {
    let (address, length) = (buffer.as_mut_ptr() as u64, buffer.len() as u64);
    if buffer_first {
        hypercall4(number, a0, address, length, a3)
    } else {
        hypercall4(number, a0, length, address, a3)
    }
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

/// The event fields of the shared-info page at `base` (vCPU 0's
/// `evtchn_upcall_pending` and `evtchn_pending_sel`, the pending and mask
/// bitmaps) as atomics, or `None` if `base` is not a page of the first MiB
/// of RAM.
pub(crate) fn event_bitmaps(base: u64) -> Option<EventBitmaps<'static>> {
    use xen_abi::shared_info::{offset, vcpu_info};
    const _: () = assert!(offset::EVTCHN_MASK + 8 * EVENT_WORDS <= SHARED_INFO_SIZE);
    const _: () = assert!(offset::EVTCHN_PENDING + 8 * EVENT_WORDS <= offset::EVTCHN_MASK);
    let upcall = shared_info_field(base, offset::VCPU_INFO + vcpu_info::UPCALL_PENDING, 1)?;
    let selector = shared_info_field(base, offset::VCPU_INFO + vcpu_info::PENDING_SEL, 8)?;
    let pending = shared_info_field(base, offset::EVTCHN_PENDING, 8)?;
    let mask = shared_info_field(base, offset::EVTCHN_MASK, 8)?;
    // SAFETY: (1) each address is a naturally aligned field (the bitmaps:
    // 64 aligned u64 words, which the asserts above keep inside the page)
    // of the shared-info page, a page of the first MiB of our RAM (checked
    // by `shared_info_field`) that the hypervisor maps read-write for every
    // domain for all its life, so `'static` holds; (2) no Rust object lives
    // there (images start at 1 MiB) and nothing in this program accesses
    // these fields but through these atomics (the time code reads other
    // fields of the page); (3) atomics have interior mutability, so shared
    // references to memory the hypervisor writes concurrently are sound;
    // `AtomicU8`/`AtomicU64` have the size and alignment of `u8`/`u64`, so
    // an array of 64 words is `[AtomicU64; 64]`.
    unsafe {
        Some(EventBitmaps {
            upcall_pending: AtomicU8::from_ptr(upcall as *mut u8),
            pending_selector: AtomicU64::from_ptr(selector as *mut u64),
            pending: &*(pending as *const [AtomicU64; EVENT_WORDS]),
            mask: &*(mask as *const [AtomicU64; EVENT_WORDS]),
        })
    }
}

/// This domain's grant-table entries (the page at `GRANT_TABLE_PFN`), or
/// `None` if its RAM (`nr_pages`) does not reach that far.
pub(crate) fn grant_entries(nr_pages: u64) -> Option<&'static [GrantEntry]> {
    use xen_abi::grant_table::ENTRIES_PER_PAGE;
    use xen_abi::layout::{pfn_to_address, GRANT_TABLE_PAGES, GRANT_TABLE_PFN, IMAGE_OFFSET};
    const _: () = assert!(GRANT_TABLE_PFN + GRANT_TABLE_PAGES <= IMAGE_OFFSET / PAGE_SIZE);
    if nr_pages < GRANT_TABLE_PFN + GRANT_TABLE_PAGES {
        return None;
    }
    let address = pfn_to_address(GRANT_TABLE_PFN);
    let count = (GRANT_TABLE_PAGES as usize) * ENTRIES_PER_PAGE;
    // SAFETY: (1) `address` is the page-aligned grant-table page inside the
    // first MiB of our RAM (the asserts and the check above), which the
    // hypervisor maps read-write for every domain for all its life, so
    // `'static` holds; `count` entries of 8 bytes fill exactly its pages
    // (`GrantEntry`'s size is asserted in `grant`), and the alignment (4)
    // divides the page's; (2) no Rust object lives there (images start at
    // 1 MiB) and this program touches the entries only through
    // `GrantEntry`'s atomics; (3) atomics have interior mutability, so
    // shared references to entries the hypervisor updates concurrently
    // (compare-and-swap of the flags) are sound.
    Some(unsafe { core::slice::from_raw_parts(address as *const GrantEntry, count) })
}

/// One of our own pages the builder set aside for a ring shared with the
/// control domain (the console page or the store page), as a ring page;
/// `None` for any other frame or if our RAM does not reach it.
pub(crate) fn ring_page(pfn: u64, nr_pages: u64) -> Option<SharedPage<'static>> {
    use xen_abi::layout::{pfn_to_address, CONSOLE_PFN, IMAGE_OFFSET, STORE_PFN};
    const _: () = assert!(CONSOLE_PFN < IMAGE_OFFSET / PAGE_SIZE && STORE_PFN < IMAGE_OFFSET / PAGE_SIZE);
    if (pfn != CONSOLE_PFN && pfn != STORE_PFN) || pfn >= nr_pages {
        return None;
    }
    let base = NonNull::new(pfn_to_address(pfn) as *mut u8)?;
    // SAFETY: `SharedPage::from_raw`'s contract: (1) `base` is the start of
    // the console or store page (checked above), page-aligned, in the first
    // MiB of our RAM, which the hypervisor maps read-write for all our life,
    // so `'static` holds. (2) No Rust object lives there (images start at
    // 1 MiB, the asserts) and this program reaches these pages only through
    // `SharedPage`s (atomics of the widths that type uses); the control
    // domain's writes through its grant mapping are outside this program.
    Some(unsafe { SharedPage::from_raw(base) })
}

/// The page a [`Mapping`] maps, as a ring page, for as long as the mapping
/// is borrowed; `None` if its address is not a page of the grant window.
pub(crate) fn foreign_page(mapping: &Mapping) -> Option<SharedPage<'_>> {
    let address = mapping.address();
    if !crate::grant::in_grant_window(address) {
        return None;
    }
    let base = NonNull::new(address as *mut u8)?;
    // SAFETY: `SharedPage::from_raw`'s contract: (1) a `Mapping` is made
    // only from a `map_grant_ref` the hypervisor answered GNTST_okay with
    // this address, a page of the grant window (checked again above); it
    // stays mapped until `grant::unmap` consumes the `Mapping`, which cannot
    // happen while the returned page borrows it, and it is mapped writable
    // (`Mapping::page` refuses read-only mappings). (2) The grant window is
    // outside our RAM: no Rust object lives there, and this program reaches
    // it only through `SharedPage`s (atomics of the widths that type uses).
    // Writes by the granting domain are outside this program. Should the
    // hypervisor withdraw the page early, an access faults and the domain is
    // stopped; no other memory is touched.
    Some(unsafe { SharedPage::from_raw(base) })
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
