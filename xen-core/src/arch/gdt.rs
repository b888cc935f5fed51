//! The global descriptor table and the task-state segment.
//!
//! The layout is fixed by `syscall`/`sysret` (STAR): kernel code, kernel
//! data, then user data before user code. The TSS carries the ring-0 stack
//! used on entry from ring 3 and the IST stacks on which NMI, #DF, #MC and #DB
//! run whatever stack was live (a guest's stack is live at `syscall`).

use core::arch::asm;
use core::mem::size_of;

use super::percpu;

/// Selector of the hypervisor's code segment.
pub const KERNEL_CODE: u16 = 0x08;
/// Selector of the hypervisor's data segment.
pub const KERNEL_DATA: u16 = 0x10;
/// Selector of domains' data segment (RPL 3).
pub const USER_DATA: u16 = 0x18 | 3;
/// Selector of domains' 64-bit code segment (RPL 3).
pub const USER_CODE: u16 = 0x20 | 3;
/// Selector of the task-state segment.
pub const TSS: u16 = 0x28;

/// Which IST slot (1-based, as the IDT names them) each special vector uses.
pub mod ist {
    /// Non-maskable interrupt.
    pub const NMI: u8 = 1;
    /// Double fault.
    pub const DOUBLE_FAULT: u8 = 2;
    /// Machine check.
    pub const MACHINE_CHECK: u8 = 3;
    /// Debug.
    pub const DEBUG: u8 = 4;
}

/// The 64-bit TSS (Intel SDM vol. 3, 8.7).
#[repr(C, packed(4))]
struct TaskStateSegment {
    reserved0: u32,
    privilege_stacks: [u64; 3],
    reserved1: u64,
    interrupt_stacks: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    io_map_base: u16,
}

#[repr(C, align(16))]
struct Gdt([u64; 7]);

#[link_section = ".entry.data"]
static mut TSS_SEGMENT: TaskStateSegment = TaskStateSegment {
    reserved0: 0,
    privilege_stacks: [0; 3],
    reserved1: 0,
    interrupt_stacks: [0; 7],
    reserved2: 0,
    reserved3: 0,
    // No I/O bitmap: ring 3 gets no port access (IOPL is 0 too).
    io_map_base: size_of::<TaskStateSegment>() as u16,
};

#[link_section = ".entry.data"]
static mut GDT: Gdt = Gdt([
    0,
    0x00af_9a00_0000_ffff, // kernel code: L, P, DPL 0, execute/read
    0x00cf_9200_0000_ffff, // kernel data: P, DPL 0, read/write
    0x00cf_f200_0000_ffff, // user data: P, DPL 3, read/write
    0x00af_fa00_0000_ffff, // user code: L, P, DPL 3, execute/read
    0,                     // TSS, low half (filled in by `init`)
    0,                     // TSS, high half
]);

#[repr(C, packed(2))]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

/// How many IST slots are used (IST1..=IST4).
const IST_STACK_COUNT: u8 = 4;

/// Top of IST stack `slot` (1-based) in CPU 0's entry area.
fn ist_stack_top(slot: u8) -> u64 {
    percpu::area_base() + percpu::ist_top_offset(slot)
}

/// Builds and loads the GDT and TSS, and reloads every segment register.
pub fn init() {
    let tss_address = core::ptr::addr_of!(TSS_SEGMENT) as u64;
    let limit = (size_of::<TaskStateSegment>() - 1) as u64;
    let low = (limit & 0xffff)
        | ((tss_address & 0xff_ffff) << 16)
        | (0x89 << 40) // present, 64-bit TSS (available)
        | (((limit >> 16) & 0xf) << 48)
        | (((tss_address >> 24) & 0xff) << 56);
    let high = tss_address >> 32;
    // SAFETY: one CPU, during boot, before anything else reads the GDT or
    // TSS; the raw pointers are to statics that live forever.
    unsafe {
        let tss = &mut *core::ptr::addr_of_mut!(TSS_SEGMENT);
        tss.privilege_stacks[0] = percpu::entry_stack_top();
        for slot in 1..=IST_STACK_COUNT {
            tss.interrupt_stacks[usize::from(slot - 1)] = ist_stack_top(slot);
        }
        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        gdt.0[5] = low;
        gdt.0[6] = high;
    }
    let pointer = DescriptorPointer {
        limit: (size_of::<Gdt>() - 1) as u16,
        base: core::ptr::addr_of!(GDT) as u64,
    };
    // SAFETY: the GDT is a static with valid descriptors at the selectors
    // used below; reloading CS with a far return to the next instruction and
    // the data segments with the kernel data selector keeps the current
    // code and stack valid.
    unsafe {
        asm!(
            "lgdt [{pointer}]",
            "push {code}",
            "lea {scratch}, [rip + 2f]",
            "push {scratch}",
            "retfq",
            "2:",
            "mov ds, {data:x}",
            "mov es, {data:x}",
            "mov ss, {data:x}",
            "ltr {tss:x}",
            pointer = in(reg) &pointer,
            code = const KERNEL_CODE as u64,
            data = in(reg) u64::from(KERNEL_DATA),
            tss = in(reg) u64::from(TSS),
            scratch = out(reg) _,
        );
    }
}
