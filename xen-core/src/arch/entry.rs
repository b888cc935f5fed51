//! The entry trampoline: the only hypervisor code a domain's page tables map
//! (XPTI). It is a few lines of assembly on each path, turning raw register
//! state into a [`TrapFrame`] and handing it to safe Rust:
//!
//! - `trap_stubs`/`trap_common`: every interrupt and exception. From ring 3
//!   it swaps GS and loads the hypervisor's CR3 before touching anything
//!   else; from ring 0, exceptions reload the hypervisor's CR3 too (a fault
//!   on the exit path may find a domain's CR3 loaded).
//! - `syscall_entry`: hypercalls. The domain's stack is live at `syscall`,
//!   so the entry parks RSP in the per-CPU block and switches to the entry
//!   stack first; SFMASK has cleared IF, TF, DF, AC and NT.
//! - `return_to_domain`: loads the domain's CR3, restores registers, swaps
//!   GS back and leaves with `sysretq` when Rust said it is safe (canonical
//!   RIP, frame from `syscall`), else `iretq`.

use core::arch::global_asm;

use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::VirtAddr;
use xen_abi::hypercall::BARE_SYSCALL_FOR_BENCHMARK;
use xen_core::trap::TrapFrame;

use super::gdt::{KERNEL_CODE, KERNEL_DATA, USER_CODE, USER_DATA};
use super::percpu::cpu_info;

/// The vector recorded in frames saved by the `syscall` entry.
pub const SYSCALL_VECTOR: u64 = 0x100;

global_asm!(
    r#"
    /* The saved registers, in `TrapFrame` order (r15 lowest). */
    .macro push_registers
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
    .endm
    .macro pop_registers
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
    .endm

    .section .entry.text, "ax"
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
    push_registers
    test byte ptr [rsp + 18 * 8], 3     /* CS of the interrupted context */
    jz 2f
    swapgs
    mov rax, gs:[{hypervisor_cr3}]
    mov cr3, rax
    mov rdi, rsp
    cld
    call {from_domain}
    jmp return_to_domain
2:
    cmp qword ptr [rsp + 15 * 8], 32    /* exceptions and NMI: be on our tables */
    jae 3f
    mov rax, [rip + HYPERVISOR_CR3]
    mov cr3, rax
3:
    mov rdi, rsp
    cld
    call {from_hypervisor}
    pop_registers
    add rsp, 16
    iretq

    .p2align 4
    .global syscall_entry
syscall_entry:
    cmp rax, {bare}
    jne 1f
    sysretq                             /* benchmark only: nothing saved, nothing switched */
1:
    swapgs
    mov gs:[{scratch_rsp}], rsp
    mov rsp, gs:[{entry_stack_top}]
    push {user_data}
    push qword ptr gs:[{scratch_rsp}]
    push r11
    push {user_code}
    push rcx
    push 0
    push {syscall_vector}
    push_registers
    mov rax, gs:[{hypervisor_cr3}]
    mov cr3, rax
    mov rdi, rsp
    cld
    call {from_syscall}
    /* fall through */

    /* rsp -> the TrapFrame to resume; rax != 0 allows sysret. */
    .global return_to_domain
return_to_domain:
    mov rcx, gs:[{guest_cr3}]
    mov cr3, rcx
    test rax, rax                       /* flags survive pop, lea, swapgs */
    pop_registers
    lea rsp, [rsp + 16]
    swapgs
    jnz 4f
    iretq
4:
    mov rcx, [rsp]                      /* rip */
    mov r11, [rsp + 16]                 /* rflags */
    mov rsp, [rsp + 24]                 /* the domain's stack */
    sysretq

    /* enter_domain(frame): start (or resume) a domain from the hypervisor. */
    .global enter_domain
enter_domain:
    mov rsp, rdi
    xor eax, eax
    jmp return_to_domain
    "#,
    hypervisor_cr3 = const cpu_info::HYPERVISOR_CR3,
    guest_cr3 = const cpu_info::GUEST_CR3,
    scratch_rsp = const cpu_info::SCRATCH_USER_RSP,
    entry_stack_top = const cpu_info::ENTRY_STACK_TOP,
    user_data = const USER_DATA as u64,
    user_code = const USER_CODE as u64,
    syscall_vector = const SYSCALL_VECTOR,
    bare = const BARE_SYSCALL_FOR_BENCHMARK,
    from_domain = sym trap_from_domain,
    from_hypervisor = sym trap_from_hypervisor,
    from_syscall = sym syscall_from_domain,
);

extern "C" {
    fn syscall_entry();
    fn enter_domain(frame: *mut TrapFrame) -> !;
}

extern "C" fn trap_from_domain(frame: *mut TrapFrame) -> u64 {
    // SAFETY: `trap_common` passes the frame it just built on this CPU's
    // entry (or IST) stack: valid, aligned, unaliased until we return.
    let frame = unsafe { &mut *frame };
    u64::from(crate::domains::on_trap_from_domain(frame))
}

extern "C" fn trap_from_hypervisor(frame: *mut TrapFrame) {
    // SAFETY: as for `trap_from_domain`.
    let frame = unsafe { &mut *frame };
    crate::start::trap_dispatch(frame);
}

extern "C" fn syscall_from_domain(frame: *mut TrapFrame) -> u64 {
    // SAFETY: as for `trap_from_domain`; the frame is on the entry stack.
    let frame = unsafe { &mut *frame };
    u64::from(crate::domains::on_hypercall(frame))
}

/// Turns on `syscall`/`sysret`: EFER.SCE, the selectors (STAR), the entry
/// point (LSTAR) and the flags cleared on entry (SFMASK: IF, TF, DF, AC, NT).
pub fn init() {
    // SAFETY: the selectors match the GDT (`gdt.rs`): kernel code/data at
    // 0x08/0x10, user data/code at 0x18/0x20 as sysret requires; the
    // entry point is `syscall_entry`, mapped in every address space.
    unsafe {
        Star::write(
            x86_64::structures::gdt::SegmentSelector(USER_CODE),
            x86_64::structures::gdt::SegmentSelector(USER_DATA),
            x86_64::structures::gdt::SegmentSelector(KERNEL_CODE),
            x86_64::structures::gdt::SegmentSelector(KERNEL_DATA),
        )
        .unwrap_or_else(|error| panic!("STAR: {error}"));
        LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
        SFMask::write(
            RFlags::INTERRUPT_FLAG
                | RFlags::TRAP_FLAG
                | RFlags::DIRECTION_FLAG
                | RFlags::ALIGNMENT_CHECK
                | RFlags::NESTED_TASK,
        );
        Efer::update(|flags| flags.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
    }
}

/// Runs `frame` as the current domain: copies it to the top of the entry
/// stack and leaves through `return_to_domain`. Never returns.
pub fn run_domain_first(frame: &TrapFrame) -> ! {
    let slot = (super::percpu::entry_stack_top() as usize - core::mem::size_of::<TrapFrame>()) as *mut TrapFrame;
    // SAFETY: the slot is the top of this CPU's entry stack, which nothing
    // uses while the hypervisor runs on its boot stack; `enter_domain`
    // switches to it and never returns.
    unsafe {
        slot.write(*frame);
        enter_domain(slot)
    }
}
