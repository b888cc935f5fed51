//! The interrupt descriptor table and the trap entry: 256 tiny stubs that
//! push a uniform frame, one common path that saves the registers and calls
//! the safe dispatcher in `main.rs` with a [`TrapFrame`].

use core::arch::global_asm;
use core::mem::size_of;

use xen_core::trap::TrapFrame;

use super::gdt::{ist, KERNEL_CODE};

/// Bytes between two stubs (each is aligned to this).
const STUB_STRIDE: u64 = 16;

global_asm!(
    r#"
    .text
    .p2align 4
    .global trap_stubs
trap_stubs:
    .set vector, 0
    .rept 256
    .p2align 4
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    push vector                 /* the CPU pushed an error code */
    .else
    push 0                      /* no error code: keep the frame uniform */
    push vector
    .endif
    jmp trap_common
    .set vector, vector + 1
    .endr

trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call {dispatch}
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16                 /* vector and error code */
    iretq
    "#,
    dispatch = sym trap_entry,
);

/// Called by `trap_common` with the saved frame.
extern "C" fn trap_entry(frame: *mut TrapFrame) {
    // SAFETY: `trap_common` passes the address of the frame it just built
    // on the current stack; it is valid, aligned and not aliased until this
    // function returns and the stub restores from it.
    let frame = unsafe { &mut *frame };
    crate::start::trap_dispatch(frame);
}

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
