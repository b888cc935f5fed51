//! The host stand-in for the machine layer, so everything above it builds
//! and is unit-tested with `cargo test`. Hypercalls are answered by a
//! per-thread responder (tests install one and read back the calls made);
//! without one they fail with `ENOSYS`. No `unsafe`, no real machine.

use core::sync::atomic::{AtomicU64, Ordering};

use xen_abi::start_info::SIZE as START_INFO_SIZE;

/// One recorded hypercall: the number and the five argument registers.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) number: u64,
    pub(crate) arguments: [u64; 5],
}

/// What answers a recorded hypercall in a test.
#[cfg(test)]
pub(crate) type Responder = fn(&Call) -> i64;

#[cfg(test)]
std::thread_local! {
    static CALLS: core::cell::RefCell<std::vec::Vec<Call>> = const { core::cell::RefCell::new(std::vec::Vec::new()) };
    static RESPONDER: core::cell::Cell<Option<Responder>> = const { core::cell::Cell::new(None) };
}

/// Runs `body` with `responder` answering this thread's hypercalls; returns
/// what `body` returned and every call it made.
#[cfg(test)]
pub(crate) fn with_responder<T>(responder: Responder, body: impl FnOnce() -> T) -> (T, std::vec::Vec<Call>) {
    CALLS.with(|calls| calls.borrow_mut().clear());
    RESPONDER.with(|slot| slot.set(Some(responder)));
    let value = body();
    RESPONDER.with(|slot| slot.set(None));
    (value, CALLS.with(|calls| calls.take()))
}

/// A hypercall with up to five arguments.
pub(crate) fn hypercall5(number: u64, a0: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> i64 {
    #[cfg(test)]
    {
        let call = Call { number, arguments: [a0, a1, a2, a3, a4] };
        CALLS.with(|calls| calls.borrow_mut().push(call));
        if let Some(responder) = RESPONDER.with(|slot| slot.get()) {
            return responder(&call);
        }
    }
    let _ = (number, a0, a1, a2, a3, a4);
    -xen_abi::errno::ENOSYS
}

/// A hypercall without arguments.
pub(crate) fn hypercall0(number: u64) -> i64 {
    hypercall5(number, 0, 0, 0, 0, 0)
}

/// A hypercall with one argument.
#[allow(dead_code)] // reason: mirrors the arch layer's stub set.
pub(crate) fn hypercall1(number: u64, a0: u64) -> i64 {
    hypercall5(number, a0, 0, 0, 0, 0)
}

/// A hypercall with two arguments.
pub(crate) fn hypercall2(number: u64, a0: u64, a1: u64) -> i64 {
    hypercall5(number, a0, a1, 0, 0, 0)
}

/// A hypercall with three arguments.
pub(crate) fn hypercall3(number: u64, a0: u64, a1: u64, a2: u64) -> i64 {
    hypercall5(number, a0, a1, a2, 0, 0)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A stand-in time-stamp counter: strictly increasing.
pub(crate) fn timestamp_counter() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed) + 1
}

/// There is no start-info page on the host.
#[allow(dead_code)] // reason: mirrors the arch layer; `start` is used only on bare metal.
pub(crate) fn read_start_info(_address: u64) -> Option<[u8; START_INFO_SIZE]> {
    None
}

/// There is no heap region to hand over on the host (the host's own
/// allocator serves tests).
pub(crate) fn init_heap(_start: u64, _end: u64) -> bool {
    false
}
