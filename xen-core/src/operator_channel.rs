//! The operator's channel in the running hypervisor: COM2's interrupt moves
//! received bytes into the buffer (`xen_core::operator`) and raises a flag;
//! the next scheduling pass turns the flag into `VIRQ_CONSOLE` for the
//! control domain, which reads with `CONSOLEIO_read` and answers with
//! `CONSOLEIO_channel_write`.

use core::sync::atomic::{AtomicBool, Ordering};

use xen_core::operator::OperatorInput;

use crate::arch::serial::channel;

/// Bytes received and not yet read.
static INPUT: spin::Mutex<OperatorInput> = spin::Mutex::new(OperatorInput::new());
/// Set by the interrupt when bytes arrived; taken by the scheduler.
static NEWS: AtomicBool = AtomicBool::new(false);
/// Whether COM2 exists.
static PRESENT: AtomicBool = AtomicBool::new(false);

/// Records that the UART answered and is routed.
pub fn set_present() {
    PRESENT.store(true, Ordering::Relaxed);
}

/// Whether there is an operator channel at all.
pub fn present() -> bool {
    PRESENT.load(Ordering::Relaxed)
}

/// COM2's interrupt: take what it received (interrupts are off here).
pub fn on_interrupt() {
    let mut input = INPUT.lock();
    let taken = input.fill(channel::receive);
    if input.held_back() {
        channel::set_receive_interrupt(false);
    }
    if taken > 0 {
        NEWS.store(true, Ordering::Relaxed);
    }
    drop(input);
    crate::arch::apic::end_of_interrupt();
}

/// Whether bytes arrived since the last call.
pub fn take_news() -> bool {
    NEWS.swap(false, Ordering::Relaxed)
}

/// Copies received bytes into `out`; returns how many.
pub fn read(out: &mut [u8]) -> usize {
    let mut input = INPUT.lock();
    let (count, resume) = input.read(out);
    if resume {
        channel::set_receive_interrupt(true);
    }
    count
}

/// Sends the control domain's answer to the operator.
pub fn write(bytes: &[u8]) {
    channel::send(bytes);
}
