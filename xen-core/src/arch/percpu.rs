//! Per-CPU state. Each CPU has an *entry area*, aligned to its size, that
//! both the hypervisor's and every domain's page tables map (XPTI): the IST
//! stacks for NMI, #DF, #MC and #DB, the entry stack the CPU switches to on
//! a trap or hypercall from ring 3, and the per-CPU block (`cpu_info`,
//! reached through GS while in the hypervisor). Each stack has an unmapped
//! guard page below it.
//!
//! ```text
//! 0x00000 guard   0x01000..0x05000 IST1 (NMI)
//! 0x05000 guard   0x06000..0x0a000 IST2 (#DF)
//! 0x0a000 guard   0x0b000..0x0f000 IST3 (#MC)
//! 0x0f000 guard   0x10000..0x14000 IST4 (#DB)
//! 0x14000 guard   0x15000..0x1f000 entry stack (40 KiB)
//! 0x1f000         cpu_info (one page)
//! ```

use core::sync::atomic::{AtomicU64, Ordering};

/// Bytes of one entry area (and its alignment).
pub const AREA_SIZE: usize = 0x20000;
/// Offset of the per-CPU block in the area.
pub const CPU_INFO_OFFSET: u64 = 0x1f000;
/// Offset of the top of the entry stack (just below `cpu_info`).
pub const ENTRY_STACK_TOP_OFFSET: u64 = 0x1f000;
/// Offset of the entry stack's guard page.
pub const ENTRY_STACK_GUARD_OFFSET: u64 = 0x14000;

/// Offsets of `cpu_info`'s fields, shared with the entry assembly.
pub mod cpu_info {
    /// CR3 of the hypervisor's own tables.
    pub const HYPERVISOR_CR3: u64 = 0;
    /// CR3 of the domain about to run (or running).
    pub const GUEST_CR3: u64 = 8;
    /// The domain's RSP, parked by the `syscall` entry.
    pub const SCRATCH_USER_RSP: u64 = 16;
    /// Top of this CPU's entry stack.
    pub const ENTRY_STACK_TOP: u64 = 24;
    /// This CPU's number.
    pub const CPU_ID: u64 = 32;
}

/// Offset of IST slot `slot`'s (1..=4) stack top.
pub const fn ist_top_offset(slot: u8) -> u64 {
    0x5000 * slot as u64
}

/// Offset of IST slot `slot`'s guard page.
pub const fn ist_guard_offset(slot: u8) -> u64 {
    0x5000 * (slot as u64 - 1)
}

/// The base address of CPU 0's entry area.
pub fn area_base() -> u64 {
    extern "C" {
        static __cpu0_entry_area: u8;
    }
    core::ptr::addr_of!(__cpu0_entry_area) as u64
}

/// Guard pages of the entry area (to leave unmapped everywhere).
pub fn guard_pages() -> [u64; 5] {
    let base = area_base();
    [
        base + ist_guard_offset(1),
        base + ist_guard_offset(2),
        base + ist_guard_offset(3),
        base + ist_guard_offset(4),
        base + ENTRY_STACK_GUARD_OFFSET,
    ]
}

fn field(offset: u64) -> *mut u64 {
    (area_base() + CPU_INFO_OFFSET + offset) as *mut u64
}

fn write_field(offset: u64, value: u64) {
    // SAFETY: the field lies in CPU 0's cpu_info page, in the image's bss,
    // mapped writable; one CPU and interrupts off in the hypervisor, so no
    // entry path reads it concurrently; no Rust reference to it exists.
    unsafe { field(offset).write_volatile(value) }
}

/// The hypervisor's own CR3, for entry paths that must switch to it without
/// GS (a trap from ring 0 may find a domain's CR3 loaded).
#[link_section = ".entry.data"]
#[no_mangle]
pub static HYPERVISOR_CR3: AtomicU64 = AtomicU64::new(0);

/// Fills CPU 0's block and points GS at it (the hypervisor runs with its GS
/// base on the block; domains get theirs back with `swapgs` on the way out).
pub fn init(hypervisor_cr3: u64) {
    HYPERVISOR_CR3.store(hypervisor_cr3, Ordering::Relaxed);
    write_field(cpu_info::HYPERVISOR_CR3, hypervisor_cr3);
    write_field(cpu_info::GUEST_CR3, hypervisor_cr3);
    write_field(cpu_info::ENTRY_STACK_TOP, area_base() + ENTRY_STACK_TOP_OFFSET);
    write_field(cpu_info::CPU_ID, 0);
    let block = area_base() + CPU_INFO_OFFSET;
    x86_64::registers::model_specific::GsBase::write(x86_64::VirtAddr::new(block));
    x86_64::registers::model_specific::KernelGsBase::write(x86_64::VirtAddr::new(0));
}

/// Sets the CR3 the exit path loads before returning to a domain.
pub fn set_guest_cr3(cr3: u64) {
    write_field(cpu_info::GUEST_CR3, cr3);
}

/// The top of CPU 0's entry stack: where a trap from ring 3 builds its frame.
pub fn entry_stack_top() -> u64 {
    area_base() + ENTRY_STACK_TOP_OFFSET
}
