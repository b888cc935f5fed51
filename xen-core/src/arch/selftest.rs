//! Deliberate faults for `selftest=`: each proves a protection is really on
//! by tripping it. The trap handler reports the fault and fails the run.

use xen_core::cmdline::{SelfTest, SELFTEST_FAULT_ADDRESS};

/// A `ret` instruction kept as data (rodata, never executable).
#[no_mangle]
static RETURN_INSTRUCTION: [u8; 1] = [0xc3];

/// Provokes the requested failure. Returns only if the protection did not
/// trip, which the caller reports as a failure of its own.
pub fn provoke(test: SelfTest) {
    match test {
        SelfTest::PageFault => {
            // SAFETY: the address is unmapped in the hypervisor's tables, so
            // the read faults and never returns a value.
            let _ = unsafe { (SELFTEST_FAULT_ADDRESS as *const u64).read_volatile() };
        }
        SelfTest::WriteText => {
            let target = provoke as fn(SelfTest) as usize as *mut u8;
            // SAFETY: text is mapped read-only and CR0.WP is set, so the write
            // faults before it changes anything.
            unsafe { target.write_volatile(0xcc) };
        }
        SelfTest::ExecuteData => {
            let address = core::ptr::addr_of!(RETURN_INSTRUCTION) as usize;
            // SAFETY: rodata is mapped no-execute, so the call faults at its
            // first fetch; were NX off, it would run a lone `ret`.
            let function: extern "C" fn() = unsafe { core::mem::transmute::<usize, extern "C" fn()>(address) };
            function();
        }
        SelfTest::StackOverflow => overflow(0),
        SelfTest::InvalidOpcode => {
            // SAFETY: `ud2` raises #UD, which is reported as fatal.
            unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
        }
        SelfTest::Panic => panic!("selftest=panic: deliberate panic at boot"),
    }
}

#[inline(never)]
fn overflow(depth: u64) {
    let frame = [depth; 512];
    // Keep the frame alive so the recursion really consumes stack.
    core::hint::black_box(&frame);
    if depth < u64::MAX {
        overflow(depth + 1);
    }
    core::hint::black_box(&frame);
}
