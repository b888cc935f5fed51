//! Domains' vector (SSE) state, switched eagerly: saved when a domain stops
//! running, restored before it runs, so no domain ever sees another's
//! registers (lazy switching leaked them: LazyFP, XSA-267). The hypervisor
//! itself is soft-float and never touches these registers. CR4.OSXSAVE
//! stays off, so AVX state does not exist and FXSAVE covers everything.

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use xen_core::domain::VectorState;

/// Lets ring 3 use SSE: CR0.EM clear, CR0.MP set, CR4.OSFXSR and
/// CR4.OSXMMEXCPT set.
pub fn init() {
    // SAFETY: these bits only enable SSE instructions and #XM reporting; the
    // hypervisor does not use SSE, and every domain gets its own state.
    unsafe {
        Cr0::update(|flags| {
            flags.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            flags.insert(Cr0Flags::MONITOR_COPROCESSOR);
        });
        Cr4::update(|flags| flags.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
    }
}

/// Saves the CPU's vector state into `state`.
pub fn save(state: &mut VectorState) {
    // SAFETY: `state` is 512 bytes, 16-byte aligned (its type says so) and
    // exclusively borrowed; OSFXSR is on.
    unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) state.0.as_mut_ptr(), options(nostack)) };
}

/// Loads `state` into the CPU.
pub fn restore(state: &VectorState) {
    // SAFETY: `state` is a valid FXSAVE image: either the default (valid
    // FCW and MXCSR, everything else zero) or one `save` wrote; its MXCSR
    // reserved bits are clear because the CPU wrote them.
    unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) state.0.as_ptr(), options(nostack, readonly)) };
}

/// Overwrites every vector register with a recognisable pattern, as running
/// another domain would. Callers save the state first.
pub fn clobber() {
    // SAFETY: only xmm0..xmm15 change, and `pcmpeqd` cannot fault; the
    // caller saved the domain's values and restores them before it runs.
    unsafe {
        core::arch::asm!(
            "pcmpeqd xmm0, xmm0", "pcmpeqd xmm1, xmm1", "pcmpeqd xmm2, xmm2", "pcmpeqd xmm3, xmm3",
            "pcmpeqd xmm4, xmm4", "pcmpeqd xmm5, xmm5", "pcmpeqd xmm6, xmm6", "pcmpeqd xmm7, xmm7",
            "pcmpeqd xmm8, xmm8", "pcmpeqd xmm9, xmm9", "pcmpeqd xmm10, xmm10", "pcmpeqd xmm11, xmm11",
            "pcmpeqd xmm12, xmm12", "pcmpeqd xmm13, xmm13", "pcmpeqd xmm14, xmm14", "pcmpeqd xmm15, xmm15",
            options(nomem, nostack)
        )
    };
}
