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

/// A hypercall with four arguments.
pub(crate) fn hypercall4(number: u64, a0: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    hypercall5(number, a0, a1, a2, a3, 0)
}

/// What answers a hypercall that passes an argument buffer (event channel
/// and grant table operations) in a test: gets the call and the buffer to
/// read and fill, as the hypervisor would. Other hypercalls made while it is
/// installed get it too, with an empty buffer.
#[cfg(test)]
pub(crate) type BufferResponder = fn(&Call, &mut [u8]) -> i64;

#[cfg(test)]
std::thread_local! {
    static BUFFER_RESPONDER: core::cell::Cell<Option<BufferResponder>> = const { core::cell::Cell::new(None) };
}

/// Runs `body` with `responder` answering this thread's hypercalls (see
/// [`BufferResponder`]); returns what `body` returned and every call made.
#[cfg(test)]
pub(crate) fn with_buffer_responder<T>(responder: BufferResponder, body: impl FnOnce() -> T) -> (T, std::vec::Vec<Call>) {
    BUFFER_RESPONDER.with(|slot| slot.set(Some(responder)));
    let result = with_responder(
        |call| BUFFER_RESPONDER.with(|slot| slot.get()).map_or(-xen_abi::errno::ENOSYS, |responder| responder(call, &mut [])),
        body,
    );
    BUFFER_RESPONDER.with(|slot| slot.set(None));
    result
}

/// A hypercall whose `rsi` is the address of `buffer`, which the hypervisor
/// reads and may write (`rdi` = `a0`, `rdx` = `a2`).
pub(crate) fn hypercall_buffer(number: u64, a0: u64, buffer: &mut [u8], a2: u64) -> i64 {
    #[cfg(test)]
    if let Some(responder) = BUFFER_RESPONDER.with(|slot| slot.get()) {
        let call = Call { number, arguments: [a0, buffer.as_ptr() as u64, a2, 0, 0] };
        CALLS.with(|calls| calls.borrow_mut().push(call));
        return responder(&call, buffer);
    }
    hypercall3(number, a0, buffer.as_mut_ptr() as u64, a2)
}

/// There is no shared-info page to make atomics of on the host (tests build
/// `EventBitmaps` over their own atomics).
pub(crate) fn event_bitmaps(_base: u64) -> Option<crate::event::EventBitmaps<'static>> {
    None
}

/// There is no grant-table page on the host (tests build `GrantTable`
/// over their own entries).
pub(crate) fn grant_entries(_nr_pages: u64) -> Option<&'static [crate::grant::GrantEntry]> {
    None
}

/// No ring pages on the host (see the bare-metal `ring_page`).
pub(crate) fn ring_page(_pfn: u64, _nr_pages: u64) -> Option<ring_protocol::SharedPage<'static>> {
    None
}

/// Nothing is ever mapped on the host.
pub(crate) fn foreign_page(_mapping: &crate::grant::Mapping) -> Option<ring_protocol::SharedPage<'_>> {
    None
}

/// What answers `domctl` in a test: gets the argument block to read and
/// fill, as the hypervisor would.
#[cfg(test)]
pub(crate) type DomctlResponder = fn(&mut [u8; xen_abi::domctl::SIZE]) -> i64;

#[cfg(test)]
std::thread_local! {
    static DOMCTL_RESPONDER: core::cell::Cell<Option<DomctlResponder>> = const { core::cell::Cell::new(None) };
}

/// Runs `body` with `responder` answering this thread's `domctl` calls
/// (other hypercalls fail with `ENOSYS`); returns what `body` returned and
/// every call it made.
#[cfg(test)]
pub(crate) fn with_domctl_responder<T>(responder: DomctlResponder, body: impl FnOnce() -> T) -> (T, std::vec::Vec<Call>) {
    DOMCTL_RESPONDER.with(|slot| slot.set(Some(responder)));
    let result = with_responder(|_| -xen_abi::errno::ENOSYS, body);
    DOMCTL_RESPONDER.with(|slot| slot.set(None));
    result
}

/// `domctl` with the argument block `block`.
pub(crate) fn domctl(block: &mut [u8; xen_abi::domctl::SIZE]) -> i64 {
    #[cfg(test)]
    if let Some(responder) = DOMCTL_RESPONDER.with(|slot| slot.get()) {
        let call = Call { number: xen_abi::hypercall::DOMCTL, arguments: [block.as_ptr() as u64, 0, 0, 0, 0] };
        CALLS.with(|calls| calls.borrow_mut().push(call));
        return responder(block);
    }
    hypercall1(xen_abi::hypercall::DOMCTL, block.as_mut_ptr() as u64)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A stand-in time-stamp counter: strictly increasing, or in a test that
/// set one with [`set_timestamp_counter`], that thread's value.
pub(crate) fn timestamp_counter() -> u64 {
    #[cfg(test)]
    if let Some(value) = TSC.with(|tsc| tsc.get()) {
        return value;
    }
    COUNTER.fetch_add(1, Ordering::Relaxed) + 1
}

#[cfg(test)]
std::thread_local! {
    static TSC: core::cell::Cell<Option<u64>> = const { core::cell::Cell::new(None) };
    static SHARED_INFO: core::cell::RefCell<Option<std::vec::Vec<u8>>> = const { core::cell::RefCell::new(None) };
}

/// Makes this thread's [`timestamp_counter`] return `value` (`None`: the
/// global counter again).
#[cfg(test)]
pub(crate) fn set_timestamp_counter(value: Option<u64>) {
    TSC.with(|tsc| tsc.set(value));
}

/// Advances this thread's set time-stamp counter by `cycles`.
#[cfg(test)]
pub(crate) fn advance_timestamp_counter(cycles: u64) {
    TSC.with(|tsc| tsc.set(Some(tsc.get().unwrap_or(0) + cycles)));
}

/// Gives this thread a stand-in shared-info page (`None`: none).
#[cfg(test)]
pub(crate) fn set_shared_info(page: Option<std::vec::Vec<u8>>) {
    SHARED_INFO.with(|slot| *slot.borrow_mut() = page);
}

/// `N` bytes at `offset` of this thread's stand-in shared-info page, if
/// there is one and the (naturally aligned) field is inside it.
fn shared_info_bytes<const N: usize>(offset: usize) -> Option<[u8; N]> {
    if offset % N != 0 || offset.checked_add(N)? > xen_abi::shared_info::SIZE {
        return None;
    }
    #[cfg(test)]
    {
        SHARED_INFO.with(|slot| {
            let page = slot.borrow();
            let mut value = [0u8; N];
            value.copy_from_slice(page.as_ref()?.get(offset..offset + N)?);
            Some(value)
        })
    }
    #[cfg(not(test))]
    None
}

/// The `u32` at `offset` of the stand-in shared-info page (`base` is
/// ignored: there is one page per test thread).
pub(crate) fn read_shared_info_u32(_base: u64, offset: usize) -> Option<u32> {
    shared_info_bytes(offset).map(u32::from_le_bytes)
}

/// The `u64` at `offset` of the stand-in shared-info page.
pub(crate) fn read_shared_info_u64(_base: u64, offset: usize) -> Option<u64> {
    shared_info_bytes(offset).map(u64::from_le_bytes)
}

/// The byte at `offset` of the stand-in shared-info page.
pub(crate) fn read_shared_info_u8(_base: u64, offset: usize) -> Option<u8> {
    shared_info_bytes::<1>(offset).map(|[byte]| byte)
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

/// The host has no hypervisor to fill buffers: every such call is `ENOSYS`.
pub(crate) fn hypercall_fill(_number: u64, _a0: u64, _buffer: &mut [u8], _buffer_first: bool, _a3: u64) -> i64 {
    -xen_abi::errno::ENOSYS
}
