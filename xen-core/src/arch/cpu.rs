//! CPU features, control registers and the ways out of the machine
//! (`isa-debug-exit`, halt).

use x86_64::instructions::port::Port;
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

/// The `isa-debug-exit` port QEMU is started with (`iobase=0xf4`).
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// What the hypervisor tells QEMU when it stops: QEMU exits with
/// `(value << 1) | 1`, so 0x10 becomes 33 and 0x11 becomes 35.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// A clean power-off: QEMU exits with 33.
    Success = 0x10,
    /// A panic or fatal fault: QEMU exits with 35.
    Failure = 0x11,
}

/// The CPU features the hypervisor cares about, read once at boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct Features {
    /// Execute-disable pages (EFER.NXE).
    pub nx: bool,
    /// Supervisor-mode execution prevention.
    pub smep: bool,
    /// Supervisor-mode access prevention.
    pub smap: bool,
    /// 1 GiB pages.
    pub huge_pages: bool,
    /// `rdtscp`/invariant TSC (informational).
    pub invariant_tsc: bool,
    /// The local APIC's TSC-deadline timer mode.
    pub tsc_deadline: bool,
}

fn cpuid(leaf: u32, subleaf: u32) -> core::arch::x86_64::CpuidResult {
    core::arch::x86_64::__cpuid_count(leaf, subleaf)
}

impl Features {
    /// Reads the features with `cpuid`.
    pub fn detect() -> Features {
        let max_basic = cpuid(0, 0).eax;
        let max_extended = cpuid(0x8000_0000, 0).eax;
        let leaf1 = cpuid(1, 0);
        let leaf7 = if max_basic >= 7 { cpuid(7, 0) } else { cpuid(0, 0) };
        let has7 = max_basic >= 7;
        let ext1 = if max_extended >= 0x8000_0001 { cpuid(0x8000_0001, 0).edx } else { 0 };
        let ext7 = if max_extended >= 0x8000_0007 { cpuid(0x8000_0007, 0).edx } else { 0 };
        Features {
            nx: ext1 & (1 << 20) != 0,
            huge_pages: ext1 & (1 << 26) != 0,
            smep: has7 && leaf7.ebx & (1 << 7) != 0,
            smap: has7 && leaf7.ebx & (1 << 20) != 0,
            invariant_tsc: ext7 & (1 << 8) != 0,
            tsc_deadline: leaf1.ecx & (1 << 24) != 0,
        }
    }
}

/// Turns on execute-disable (needed before any page table uses NX).
pub fn enable_nx() {
    // SAFETY: setting EFER.NXE only makes the NX bit in page-table entries
    // meaningful; the caller checked the CPU has it, and no entry in use yet
    // sets that bit.
    unsafe { Efer::update(|flags| flags.insert(EferFlags::NO_EXECUTE_ENABLE)) };
}

/// Makes supervisor writes honour read-only pages (W^X for the hypervisor).
pub fn enable_write_protect() {
    // SAFETY: CR0.WP only makes the hypervisor fault on writes to read-only
    // pages, which it never does on purpose.
    unsafe { Cr0::update(|flags| flags.insert(Cr0Flags::WRITE_PROTECT)) };
}

/// Turns on SMEP and SMAP where the CPU has them; returns what it turned on.
pub fn enable_smep_smap(features: &Features) -> (bool, bool) {
    let mut add = Cr4Flags::empty();
    if features.smep {
        add |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if features.smap {
        add |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    // SAFETY: the hypervisor never executes or touches user pages: every
    // copy to or from a domain goes through the direct map.
    unsafe { Cr4::update(|flags| flags.insert(add)) };
    (features.smep, features.smap)
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` has no side effects; CR4.TSD is clear in ring 0.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Reads CR2, the faulting address of the last page fault.
pub fn cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// Stops the machine: QEMU exits with the given code; on hardware without
/// the debug-exit device, the CPU halts for good.
pub fn exit(code: ExitCode) -> ! {
    let mut port: Port<u32> = Port::new(DEBUG_EXIT_PORT);
    // SAFETY: writing to the isa-debug-exit port ends the QEMU process; on a
    // machine without that device the write goes nowhere.
    unsafe { port.write(code as u32) };
    halt_forever()
}

/// Disables interrupts and halts forever.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Enables interrupts, halts until one arrives and has been handled, and
/// disables them again: the idle loop's one step. `sti; hlt` is atomic
/// (the STI shadow), so a wake-up cannot slip in between.
pub fn wait_for_interrupt() {
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
}
