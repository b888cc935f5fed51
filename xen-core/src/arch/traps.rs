//! The interrupt descriptor table: every vector points at its stub in the
//! entry trampoline (`entry.rs`). NMI, #DF, #MC and #DB run on IST stacks.

use core::mem::size_of;

use super::gdt::{ist, KERNEL_CODE};

/// Bytes between two stubs (each is aligned to this).
const STUB_STRIDE: u64 = 16;

#[derive(Clone, Copy)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attributes: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

const EMPTY_GATE: Gate = Gate {
    offset_low: 0,
    selector: 0,
    ist: 0,
    type_attributes: 0,
    offset_middle: 0,
    offset_high: 0,
    reserved: 0,
};

#[repr(C, align(16))]
struct Idt([Gate; 256]);

#[link_section = ".entry.data"]
static mut IDT: Idt = Idt([EMPTY_GATE; 256]);

#[repr(C, packed(2))]
struct DescriptorPointer {
    limit: u16,
    base: u64,
}

fn ist_for(vector: usize) -> u8 {
    match vector {
        1 => ist::DEBUG,
        2 => ist::NMI,
        8 => ist::DOUBLE_FAULT,
        18 => ist::MACHINE_CHECK,
        _ => 0,
    }
}

/// Fills the IDT with the stubs (interrupt gates, DPL 0: a domain cannot
/// raise any vector with `int`) and loads it.
pub fn init() {
    extern "C" {
        static trap_stubs: u8;
    }
    let base = core::ptr::addr_of!(trap_stubs) as u64;
    // SAFETY: one CPU, at boot, before interrupts are enabled: nothing else
    // reads or writes the IDT while it is filled.
    let idt = unsafe { &mut *core::ptr::addr_of_mut!(IDT) };
    for (vector, gate) in idt.0.iter_mut().enumerate() {
        let handler = base + vector as u64 * STUB_STRIDE;
        *gate = Gate {
            offset_low: handler as u16,
            selector: KERNEL_CODE,
            ist: ist_for(vector),
            type_attributes: 0x8e, // present, DPL 0, 64-bit interrupt gate
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        };
    }
    let pointer = DescriptorPointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: core::ptr::addr_of!(IDT) as u64,
    };
    // SAFETY: the IDT is a static filled above with gates to valid stubs.
    unsafe { core::arch::asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack)) };
}
