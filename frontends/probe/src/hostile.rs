//! The probe's inline assembly: privileged instructions, accesses to memory
//! that is not the domain's, EFLAGS games and the vector-register check.
//! This is the only `unsafe` in the probe.
//!
//! Most of these are *meant* to fault: the hypervisor then stops the domain
//! before the next instruction, so nothing after the faulting instruction
//! runs and no Rust state is observed broken. If the hypervisor wrongly lets
//! one through, the function returns and the caller reports it; each block
//! says why even that is sound.
#![allow(unsafe_code)] // reason: the probe exists to execute what safe Rust cannot express; every block carries its SAFETY argument.

use core::arch::asm;

use xen_abi::hypercall;

/// The hypervisor image's address (xen-core links its text at
/// 0xffffffff80000000 + 1 MiB).
pub const HYPERVISOR_ADDRESS: u64 = 0xffff_ffff_8010_0000;

/// IA32_LSTAR, the `syscall` entry point MSR.
const IA32_LSTAR: u32 = 0xc000_0082;

/// EFLAGS.TF.
pub const FLAG_TRAP: u64 = 1 << 8;
/// EFLAGS.NT.
pub const FLAG_NESTED_TASK: u64 = 1 << 14;
/// EFLAGS.AC.
pub const FLAG_ALIGNMENT_CHECK: u64 = 1 << 18;

/// Writes a zero byte at `address`, which is not ours.
pub fn write_byte(address: u64) {
    // SAFETY: expected to fault (the address is the hypervisor's, not
    // mapped for ring 3), and the hypervisor kills the domain before the
    // next instruction. Were it to succeed, no memory this program uses
    // changes: the address is outside the domain's RAM.
    unsafe { asm!("mov byte ptr [{}], 0", in(reg) address, options(nostack)) };
}

/// Reads a byte at `address`, which is not ours.
pub fn read_byte(address: u64) -> u8 {
    let value: u8;
    // SAFETY: expected to fault (nothing of the domain's is mapped there)
    // and the hypervisor kills the domain first. Were it to succeed, a read
    // into a register changes nothing.
    unsafe { asm!("mov {}, byte ptr [{}]", out(reg_byte) value, in(reg) address, options(nostack, readonly)) };
    value
}

/// Reads the byte at `address` and writes it straight back.
pub fn rewrite_byte(address: u64) {
    // SAFETY: `address` is in a page of ours mapped without write permission
    // (the start-info page, or our own code), so the write faults and the
    // hypervisor kills the domain. Were it to succeed, the byte written is
    // the byte that was there, so nothing changes; a single vCPU without
    // upcalls means nothing runs in between.
    unsafe {
        asm!(
            "mov {value}, byte ptr [{address}]",
            "mov byte ptr [{address}], {value}",
            address = in(reg) address,
            value = out(reg_byte) _,
            options(nostack),
        );
    }
}

/// The address of some of this program's own code.
pub fn own_code_address() -> u64 {
    own_code_address as fn() -> u64 as usize as u64
}

/// Calls a `ret` written into a stack buffer.
pub fn execute_stack() {
    let buffer = [0xc3u8; 16]; // `ret`
    // SAFETY: the buffer lives on the stack, which the hypervisor maps
    // no-execute, so the `call` faults and the domain is killed. Were it
    // executable, the callee is a single `ret`, which returns at once to
    // the next instruction with no register changed (the call may push on
    // our stack, hence no `nostack`).
    unsafe { asm!("call {}", in(reg) buffer.as_ptr(), clobber_abi("C")) };
}

/// `hlt`.
pub fn hlt() {
    // SAFETY: privileged in ring 3: #GP, the domain is killed. Were it to
    // run, it only waits for an interrupt.
    unsafe { asm!("hlt", options(nomem, nostack)) };
}

/// `cli`.
pub fn cli() {
    // SAFETY: with IOPL 0 in ring 3: #GP, the domain is killed. Were it to
    // run, it only masks interrupts, which this program does not rely on.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

/// `wrmsr` IA32_LSTAR with 0.
pub fn wrmsr_lstar() {
    // SAFETY: privileged in ring 3: #GP, the domain is killed before the
    // next instruction. Were it to run, it would break the hypervisor's
    // syscall entry, not this program's memory.
    unsafe { asm!("wrmsr", in("ecx") IA32_LSTAR, in("eax") 0u32, in("edx") 0u32, options(nomem, nostack)) };
}

/// `rdmsr` IA32_LSTAR.
pub fn rdmsr_lstar() -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: privileged in ring 3: #GP, the domain is killed. Were it to
    // run, it only reads into registers.
    unsafe { asm!("rdmsr", in("ecx") IA32_LSTAR, out("eax") low, out("edx") high, options(nomem, nostack)) };
    u64::from(high) << 32 | u64::from(low)
}

/// `mov cr3` with 0.
pub fn write_cr3() {
    // SAFETY: privileged in ring 3: #GP, the domain is killed before the
    // next instruction (a successful load of 0 would unmap everything, and
    // the next fetch would fault anyway).
    unsafe { asm!("mov cr3, {}", in(reg) 0u64, options(nostack)) };
}

/// `lgdt` from a stack buffer describing an empty table.
pub fn lgdt() {
    let descriptor = [0u8; 10];
    // SAFETY: privileged in ring 3: #GP, the domain is killed. The operand
    // is a live 10-byte buffer on our stack, only read.
    unsafe { asm!("lgdt [{}]", in(reg) descriptor.as_ptr(), options(nostack, readonly)) };
}

/// `int3`.
pub fn int3() {
    // SAFETY: raises #BP; the hypervisor kills the domain (it has no
    // debugger to offer). Were it to return, no state changed.
    unsafe { asm!("int3", options(nomem, nostack)) };
}

/// `int 0x80`.
pub fn int80() {
    // SAFETY: vector 0x80 has no ring-3 gate: #GP, the domain is killed.
    // Were a handler to run and return, no register of ours is assumed
    // kept, hence the C clobbers.
    unsafe { asm!("int 0x80", clobber_abi("C")) };
}

/// `out 0xf4, al`: QEMU's isa-debug-exit port, which would end the machine.
pub fn port_io() {
    // SAFETY: with IOPL 0 and no I/O bitmap grant: #GP, the domain is
    // killed. Were it to run, it writes to a device, not to memory.
    unsafe { asm!("out 0xf4, al", in("al") 0u8, options(nomem, nostack)) };
}

/// `div` by a zero register.
pub fn divide_by_zero() -> u64 {
    let quotient: u64;
    // SAFETY: raises #DE, the domain is killed. The asm only uses the
    // registers it names; the compiler cannot see the zero divisor.
    unsafe {
        asm!(
            "xor ecx, ecx",
            "div rcx",
            inlateout("rax") 1u64 => quotient,
            inlateout("rdx") 0u64 => _,
            out("rcx") _,
            options(nomem, nostack),
        );
    }
    quotient
}

/// The current EFLAGS.
pub fn flags() -> u64 {
    let flags: u64;
    // SAFETY: pushfq/pop reads the flags through our own stack (hence no
    // `nostack`); nothing else is touched.
    unsafe { asm!("pushfq", "pop {}", out(reg) flags, options(nomem, preserves_flags)) };
    flags
}

/// Sets the EFLAGS bits in `set` and clears those in `clear`.
pub fn change_flags(set: u64, clear: u64) {
    // SAFETY: pushfq/popfq through our own stack (hence no `nostack`).
    // Ring 3 can change AC, NT, TF and the arithmetic flags this way (IF
    // and IOPL changes are silently ignored). AC makes unaligned accesses
    // fault only if the hypervisor set CR0.AM; NT matters only to `iret`;
    // TF makes the next instruction trap, which the callers expect.
    unsafe {
        asm!(
            "pushfq",
            "or qword ptr [rsp], {set}",
            "and qword ptr [rsp], {keep}",
            "popfq",
            set = in(reg) set,
            keep = in(reg) !clear,
            options(nomem),
        );
    }
}

/// Sets TF, then runs a few instructions (each should trap), then clears it.
pub fn trap_flag() {
    // SAFETY: pushfq/popfq through our own stack (hence no `nostack`). The
    // single-step trap after the first `nop` kills the domain; were it
    // ignored, TF is cleared again and only rax was used.
    unsafe {
        asm!(
            "pushfq",
            "or qword ptr [rsp], {trap}",
            "popfq",
            "nop",
            "nop",
            "mov eax, 1",
            "pushfq",
            "and qword ptr [rsp], {keep}",
            "popfq",
            trap = const FLAG_TRAP,
            keep = const !FLAG_TRAP as i64 as i32,
            out("rax") _,
            options(nomem),
        );
    }
}

/// Sets TF and at once makes a NULL hypercall: the single-step trap
/// arrives at the hypervisor's first instruction, on the guest's stack.
/// Returns the hypercall's result if the domain survives.
pub fn trap_flag_hypercall() -> i64 {
    let result: i64;
    // SAFETY: the NULL hypercall reads and writes no memory; `syscall`
    // clobbers rcx and r11. The #DB that follows the return (TF comes back
    // from r11) kills the domain; were it ignored, TF is cleared again.
    unsafe {
        asm!(
            "pushfq",
            "or qword ptr [rsp], {trap}",
            "popfq",
            "syscall",
            "pushfq",
            "and qword ptr [rsp], {keep}",
            "popfq",
            trap = const FLAG_TRAP,
            keep = const !FLAG_TRAP as i64 as i32,
            inlateout("rax") hypercall::NULL as i64 => result,
            lateout("rcx") _,
            lateout("r11") _,
            options(nomem),
        );
    }
    result
}

/// Loads xmm0..xmm15 from `input`, makes two hypercalls (TEST_OP
/// CLOBBER_VECTOR_REGISTERS, then sched_op YIELD), and stores the registers
/// into `output`. All in one block, so no compiler code runs between.
/// Returns the two results.
pub fn vector_registers_across_hypercalls(input: &[[u8; 16]; 16], output: &mut [[u8; 16]; 16]) -> (i64, i64) {
    let clobber_result: i64;
    let yield_result: i64;
    // SAFETY: (1) `input` and `output` are live 256-byte buffers; `movdqu`
    // needs no alignment. (2) The target is soft-float, so the compiler
    // keeps nothing in xmm registers: overwriting them breaks nothing.
    // (3) The two hypercalls read and write none of our memory; `syscall`
    // clobbers rcx and r11, and rax/rdi/rsi carry the arguments, all
    // declared. (4) `movdqu` needs CR4.OSFXSR, which the hypervisor sets
    // for domains; without it #UD kills the domain.
    unsafe {
        asm!(
            "movdqu xmm0, [{input}]",
            "movdqu xmm1, [{input} + 16]",
            "movdqu xmm2, [{input} + 32]",
            "movdqu xmm3, [{input} + 48]",
            "movdqu xmm4, [{input} + 64]",
            "movdqu xmm5, [{input} + 80]",
            "movdqu xmm6, [{input} + 96]",
            "movdqu xmm7, [{input} + 112]",
            "movdqu xmm8, [{input} + 128]",
            "movdqu xmm9, [{input} + 144]",
            "movdqu xmm10, [{input} + 160]",
            "movdqu xmm11, [{input} + 176]",
            "movdqu xmm12, [{input} + 192]",
            "movdqu xmm13, [{input} + 208]",
            "movdqu xmm14, [{input} + 224]",
            "movdqu xmm15, [{input} + 240]",
            "mov eax, {test_op}",
            "mov edi, {clobber}",
            "xor esi, esi",
            "syscall",
            "mov {clobber_result}, rax",
            "mov eax, {sched_op}",
            "mov edi, {yield_}",
            "xor esi, esi",
            "syscall",
            "mov {yield_result}, rax",
            "movdqu [{output}], xmm0",
            "movdqu [{output} + 16], xmm1",
            "movdqu [{output} + 32], xmm2",
            "movdqu [{output} + 48], xmm3",
            "movdqu [{output} + 64], xmm4",
            "movdqu [{output} + 80], xmm5",
            "movdqu [{output} + 96], xmm6",
            "movdqu [{output} + 112], xmm7",
            "movdqu [{output} + 128], xmm8",
            "movdqu [{output} + 144], xmm9",
            "movdqu [{output} + 160], xmm10",
            "movdqu [{output} + 176], xmm11",
            "movdqu [{output} + 192], xmm12",
            "movdqu [{output} + 208], xmm13",
            "movdqu [{output} + 224], xmm14",
            "movdqu [{output} + 240], xmm15",
            input = in(reg) input.as_ptr(),
            output = in(reg) output.as_mut_ptr(),
            clobber_result = out(reg) clobber_result,
            yield_result = out(reg) yield_result,
            test_op = const hypercall::TEST_OP,
            clobber = const hypercall::test_op::CLOBBER_VECTOR_REGISTERS,
            sched_op = const hypercall::SCHED_OP,
            yield_ = const xen_abi::sched::YIELD,
            out("rax") _,
            out("rdi") _,
            out("rsi") _,
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    (clobber_result, yield_result)
}

/// Loads xmm0..xmm15 from `input` and leaves them there, for
/// [`yield_and_store_vector_registers`] to check after each switch.
///
/// Only for the bare-metal kernel (the host build is a stub that never
/// runs an action): there the target is soft-float, so no compiler code
/// between this and the next vector-register asm reads or writes an xmm
/// register, and the values stay ours unless something outside the domain
/// changes them, which is what the check is for.
pub fn load_vector_registers(input: &[[u8; 16]; 16]) {
    // SAFETY: (1) `input` is a live 256-byte buffer; `movdqu` needs no
    // alignment. (2) The bare-metal target is soft-float, so the compiler
    // keeps nothing in xmm registers: overwriting them breaks nothing.
    // (3) `movdqu` needs CR4.OSFXSR, which the hypervisor sets for domains;
    // without it #UD kills the domain.
    unsafe {
        asm!(
            "movdqu xmm0, [{input}]",
            "movdqu xmm1, [{input} + 16]",
            "movdqu xmm2, [{input} + 32]",
            "movdqu xmm3, [{input} + 48]",
            "movdqu xmm4, [{input} + 64]",
            "movdqu xmm5, [{input} + 80]",
            "movdqu xmm6, [{input} + 96]",
            "movdqu xmm7, [{input} + 112]",
            "movdqu xmm8, [{input} + 128]",
            "movdqu xmm9, [{input} + 144]",
            "movdqu xmm10, [{input} + 160]",
            "movdqu xmm11, [{input} + 176]",
            "movdqu xmm12, [{input} + 192]",
            "movdqu xmm13, [{input} + 208]",
            "movdqu xmm14, [{input} + 224]",
            "movdqu xmm15, [{input} + 240]",
            input = in(reg) input.as_ptr(),
            options(nostack, readonly, preserves_flags),
        );
    }
}

/// `sched_op` YIELD (another domain may run and fill the vector registers
/// with its own values), then stores xmm0..xmm15 into `output`; one block,
/// so no compiler code runs between. Returns the yield's result.
pub fn yield_and_store_vector_registers(output: &mut [[u8; 16]; 16]) -> i64 {
    let result: i64;
    // SAFETY: (1) `output` is a live, exclusively borrowed 256-byte buffer;
    // `movdqu` needs no alignment. (2) Reading xmm registers disturbs no
    // compiler state (soft-float target; see `load_vector_registers`).
    // (3) YIELD reads and writes none of our memory; `syscall` clobbers rcx
    // and r11, and rax/rdi/rsi carry the arguments, all declared.
    unsafe {
        asm!(
            "mov eax, {sched_op}",
            "mov edi, {yield_}",
            "xor esi, esi",
            "syscall",
            "movdqu [{output}], xmm0",
            "movdqu [{output} + 16], xmm1",
            "movdqu [{output} + 32], xmm2",
            "movdqu [{output} + 48], xmm3",
            "movdqu [{output} + 64], xmm4",
            "movdqu [{output} + 80], xmm5",
            "movdqu [{output} + 96], xmm6",
            "movdqu [{output} + 112], xmm7",
            "movdqu [{output} + 128], xmm8",
            "movdqu [{output} + 144], xmm9",
            "movdqu [{output} + 160], xmm10",
            "movdqu [{output} + 176], xmm11",
            "movdqu [{output} + 192], xmm12",
            "movdqu [{output} + 208], xmm13",
            "movdqu [{output} + 224], xmm14",
            "movdqu [{output} + 240], xmm15",
            output = in(reg) output.as_mut_ptr(),
            sched_op = const hypercall::SCHED_OP,
            yield_ = const xen_abi::sched::YIELD,
            out("rax") result,
            out("rdi") _,
            out("rsi") _,
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    result
}
