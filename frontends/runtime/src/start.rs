//! From `_start` to the domain's main function and back out: read and check
//! the start-info page, set up the logger and the heap, run main, shut
//! down with the reason it returns.

use xen_abi::sched::ShutdownReason;
use xen_abi::start_info::StartInfo;

use crate::console::console_write;
use crate::hypercall::shutdown;
use crate::machine;

static START_INFO: spin::Once<StartInfo> = spin::Once::new();

/// This domain's start-info, once the runtime has read it (always, by the
/// time the domain's main function runs).
pub fn start_info() -> Option<&'static StartInfo> {
    START_INFO.get()
}

/// The time-stamp counter (`rdtsc`); on the host a counter that only
/// increases.
pub fn timestamp_counter() -> u64 {
    machine::timestamp_counter()
}

/// Runs a domain kernel: called by `runtime_entry` (see [`crate::entry!`])
/// with the address the hypervisor passed in `rdi`.
pub fn start(start_info_address: u64, main: fn(&StartInfo) -> ShutdownReason) -> ! {
    let Some(page) = machine::read_start_info(start_info_address) else {
        let _ = console_write(b"runtime: the start-info address is not in the first MiB of RAM\n");
        shutdown(ShutdownReason::Crash)
    };
    let Some(decoded) = StartInfo::decode(&page) else {
        let _ = console_write(b"runtime: the start-info page has no magic\n");
        shutdown(ShutdownReason::Crash)
    };
    let info = START_INFO.call_once(|| decoded);
    crate::logger::init(info.command_line());
    match crate::heap::init(info) {
        Some(bytes) => log::debug!("heap: {} KiB from pfn {}", bytes / 1024, info.first_free_pfn),
        None => log::warn!("heap: no room (nr_pages {}, first_free_pfn {}, stack_pages {})", info.nr_pages, info.first_free_pfn, info.stack_pages),
    }
    let reason = main(info);
    log::debug!("main returned: {}", reason.name());
    shutdown(reason)
}
