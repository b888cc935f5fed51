//! Safe wrappers for the hypercalls a domain kernel makes, built from the
//! numbers in `xen_abi` only, and the [`Errno`] they fail with.

use core::fmt;

use xen_abi::hypercall::{self, console, test_op as test_ops, version};
use xen_abi::layout::{MAX_RAM_BYTES, RAM_BASE};
use xen_abi::sched::{self, Shutdown, ShutdownReason};

use crate::machine;

/// A hypercall's failure: the errno, as a positive number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(i64);

impl Errno {
    /// The errno for a (positive or negative) code.
    pub fn new(code: i64) -> Errno {
        Errno(code.saturating_abs())
    }

    /// The errno as a positive number.
    pub fn code(self) -> i64 {
        self.0
    }

    /// Its name (`"EFAULT"`), `"E?"` if unknown.
    pub fn name(self) -> &'static str {
        xen_abi::errno::name(self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            "E?" => write!(f, "E?({})", self.0),
            name => f.write_str(name),
        }
    }
}

/// Splits a raw hypercall result: negative is an errno, anything else the
/// value.
pub fn check(result: i64) -> Result<u64, Errno> {
    if result < 0 {
        Err(Errno::new(result))
    } else {
        Ok(result as u64)
    }
}

/// One `console_io` WRITE of at most [`console::MAX_WRITE_BYTES`] bytes.
pub(crate) fn console_write_chunk(chunk: &[u8]) -> i64 {
    // The hypervisor only reads the buffer.
    machine::hypercall3(hypercall::CONSOLE_IO, console::WRITE, chunk.len() as u64, chunk.as_ptr() as u64)
}

/// `console_io` WRITE of `count` bytes at an arbitrary guest address, for
/// tests of the hypervisor's checks: returns the raw result. Sound for any
/// address because WRITE only reads the caller's memory; the hypervisor
/// must refuse what is not ours (`-EFAULT`) or too long.
pub fn console_write_from(address: u64, count: u64) -> i64 {
    machine::hypercall3(hypercall::CONSOLE_IO, console::WRITE, count, address)
}

/// `sched_op` YIELD: let another domain run; stays runnable.
pub fn sched_yield() -> Result<(), Errno> {
    check(machine::hypercall2(hypercall::SCHED_OP, sched::YIELD, 0)).map(drop)
}

/// `sched_op` BLOCK: sleep until an event is pending for this domain or its
/// one-shot timer (`crate::time::set_timer`) fires; returns at once if one
/// already is. A wake-up says nothing about *which*: callers re-check what
/// they wait for and block again (as `crate::time::sleep_until` does).
pub fn sched_block() -> Result<(), Errno> {
    check(machine::hypercall2(hypercall::SCHED_OP, sched::BLOCK, 0)).map(drop)
}

/// Asks the hypervisor once to shut this domain down; returns only if it
/// refused (the raw result).
pub(crate) fn request_shutdown(reason: ShutdownReason) -> i64 {
    let request = Shutdown { reason: reason as u32 };
    // The hypervisor only reads `request`, which lives across the call.
    machine::hypercall2(hypercall::SCHED_OP, sched::SHUTDOWN, core::ptr::addr_of!(request) as u64)
}

/// `sched_op` SHUTDOWN with `reason`. Never returns: if the hypervisor
/// does not stop the domain, it yields forever.
pub fn shutdown(reason: ShutdownReason) -> ! {
    let _ = request_shutdown(reason);
    loop {
        let _ = sched_yield();
    }
}

/// The `NULL` hypercall (does nothing): the raw result, 0 on success.
pub fn null_hypercall() -> i64 {
    machine::hypercall0(hypercall::NULL)
}

/// A bare `syscall`/`sysret` round trip, not a hypercall
/// ([`hypercall::BARE_SYSCALL_FOR_BENCHMARK`]): the raw result, which is
/// that number on a hypervisor that offers it.
pub fn bare_syscall() -> i64 {
    machine::hypercall0(hypercall::BARE_SYSCALL_FOR_BENCHMARK)
}

/// `xen_version` VERSION: `(major, minor)`.
pub fn xen_version() -> Result<(u16, u16), Errno> {
    let value = check(machine::hypercall2(hypercall::XEN_VERSION, version::VERSION, 0))?;
    Ok(((value >> 16) as u16, value as u16))
}

/// `TEST_OP` `op` with `arg` (see `xen_abi::hypercall::test_op`): the raw
/// result. Refused unless the hypervisor was booted with `testing=1`.
pub fn test_op(op: u64, arg: u64) -> i64 {
    machine::hypercall2(hypercall::TEST_OP, op, arg)
}

/// `TEST_OP` HEALTH: whether the hypervisor reports no broken invariant.
pub fn hypervisor_healthy() -> Result<bool, Errno> {
    check(test_op(test_ops::HEALTH, 0)).map(|value| value == 1)
}

/// Whether `value` could be an address inside any domain's RAM window.
fn names_our_memory(value: u64) -> bool {
    (RAM_BASE..RAM_BASE + MAX_RAM_BYTES).contains(&value)
}

/// Any hypercall number with arguments that name none of our memory: for
/// tests of the hypervisor's checks (unknown numbers, unknown
/// sub-operations, hostile pointers). Returns the raw result, or `None`
/// without calling if an argument lies in the RAM window: then the
/// hypervisor might write into memory Rust considers ours.
pub fn foreign(number: u64, arguments: [u64; 5]) -> Option<i64> {
    if arguments.iter().any(|&value| names_our_memory(value)) {
        return None;
    }
    let [a0, a1, a2, a3, a4] = arguments;
    Some(machine::hypercall5(number, a0, a1, a2, a3, a4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::with_responder;
    use xen_abi::errno::{EFAULT, ENOSYS};

    #[test]
    fn errno_names_and_display() {
        assert_eq!(Errno::new(-EFAULT).name(), "EFAULT");
        assert_eq!(Errno::new(EFAULT).code(), EFAULT);
        assert_eq!(std::format!("{}", Errno::new(-ENOSYS)), "ENOSYS");
        assert_eq!(std::format!("{}", Errno::new(-999)), "E?(999)");
        assert_eq!(Errno::new(i64::MIN).code(), i64::MAX);
        assert_eq!(check(5), Ok(5));
        assert_eq!(check(-EFAULT), Err(Errno::new(EFAULT)));
    }

    #[test]
    fn wrappers_use_the_abi_numbers() {
        let (_, calls) = with_responder(|_| 0, || {
            sched_yield().unwrap();
            sched_block().unwrap();
            null_hypercall();
            test_op(test_ops::CLOBBER_VECTOR_REGISTERS, 7);
            request_shutdown(ShutdownReason::Crash);
        });
        let numbers: std::vec::Vec<_> = calls.iter().map(|call| (call.number, call.arguments[0])).collect();
        assert_eq!(
            numbers,
            [
                (hypercall::SCHED_OP, sched::YIELD),
                (hypercall::SCHED_OP, sched::BLOCK),
                (hypercall::NULL, 0),
                (hypercall::TEST_OP, test_ops::CLOBBER_VECTOR_REGISTERS),
                (hypercall::SCHED_OP, sched::SHUTDOWN),
            ]
        );
        assert_eq!(calls[3].arguments[1], 7);
        assert_ne!(calls[4].arguments[1], 0, "shutdown passes a pointer to the reason");
    }

    #[test]
    fn version_is_split() {
        let (version, _) = with_responder(|_| 4 << 16 | 14, xen_version);
        assert_eq!(version, Ok((4, 14)));
        let (version, _) = with_responder(|_| -ENOSYS, xen_version);
        assert_eq!(version, Err(Errno::new(ENOSYS)));
    }

    #[test]
    fn foreign_refuses_arguments_in_ram() {
        let (result, calls) = with_responder(|_| -ENOSYS, || foreign(9999, [0, 0, 0, 0, 0]));
        assert_eq!(result, Some(-ENOSYS));
        assert_eq!(calls.len(), 1);
        let (result, calls) = with_responder(|_| 0, || foreign(hypercall::CONSOLE_IO, [1, 16, RAM_BASE + 4096, 0, 0]));
        assert_eq!(result, None);
        assert!(calls.is_empty());
        let (result, _) = with_responder(|_| 0, || foreign(1, [RAM_BASE + MAX_RAM_BYTES, RAM_BASE - 1, 0, 0, 0]));
        assert_eq!(result, Some(0));
    }

    #[test]
    fn without_a_hypervisor_everything_is_enosys() {
        assert_eq!(null_hypercall(), -ENOSYS);
        assert_eq!(sched_yield(), Err(Errno::new(ENOSYS)));
    }
}
