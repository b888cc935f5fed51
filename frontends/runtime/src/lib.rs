//! The guest runtime every domain kernel links: our Mini-OS.
//!
//! It provides the entry point (`_start`, see [`entry!`]), safe wrappers for
//! the hypercalls (console, scheduling, version, test operations, `domctl`
//! in [`domctl`], the security server's mode and policy in [`xsm`]), event
//! channels ([`event`]), grant tables ([`grant`],
//! pages to grant in [`page`]), time and the timer ([`time`]), a `log`
//! backend over the hypervisor console, a heap over the domain's free RAM,
//! a panic handler that reports and shuts the domain down as crashed, and a
//! `key=value` command-line parser.
//!
//! All `unsafe` lives in the `arch` module (bare metal only). Everything else
//! builds on the host, where hypercalls go to a stand-in that records them,
//! so `cargo test -p guest-runtime` exercises the logic.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

#[cfg(target_os = "none")]
#[allow(unsafe_code)] // reason: the one layer that touches the machine: entry, `syscall`, `rdtsc`, the start-info page and the allocator.
mod arch;
#[cfg(not(target_os = "none"))]
mod host;

pub mod command_line;
pub mod console;
pub mod domctl;
pub mod event;
pub mod grant;
pub mod heap;
pub mod hypercall;
pub mod logger;
pub mod operator;
pub mod page;
pub mod physdev;
mod start;
pub mod store;
pub mod xenbus;
pub mod time;
pub mod xsm;

#[cfg(target_os = "none")]
mod panic;

/// What the runtime uses as its machine layer: the real one on bare metal,
/// the recording stand-in on the host.
#[cfg(target_os = "none")]
pub(crate) use arch as machine;
#[cfg(not(target_os = "none"))]
pub(crate) use host as machine;

pub use command_line::argument;
pub use console::console_write;
pub use hypercall::{
    bare_syscall, null_hypercall, sched_block, sched_yield, shutdown, test_op, xen_version, Errno,
};
pub use start::{start_info, timestamp_counter};
pub use xen_abi::sched::ShutdownReason;
pub use xen_abi::start_info::StartInfo;

#[doc(hidden)]
pub use start::start as __start;

/// Names a domain kernel's main function:
/// `fn main(info: &StartInfo) -> ShutdownReason`.
///
/// The runtime's `_start` aligns the stack and calls `runtime_entry`, which
/// this macro defines: it reads and checks the start-info page, sets up the
/// heap and the logger, calls `main`, and shuts the domain down with the
/// reason `main` returns. On the host it only marks `main` as used (the
/// binary there is a stub).
///
/// ```ignore
/// guest_runtime::entry!(domain_main);
/// fn domain_main(info: &StartInfo) -> ShutdownReason { ShutdownReason::Poweroff }
/// ```
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// The symbol the runtime's `_start` calls with the start-info address.
        #[cfg(target_os = "none")]
        #[allow(unsafe_code)] // reason: `no_mangle` is how `_start` in the runtime finds this function; its signature is the one `_start` calls.
        #[no_mangle]
        extern "C" fn runtime_entry(start_info_address: u64) -> ! {
            $crate::__start(start_info_address, $main)
        }

        #[cfg(not(target_os = "none"))]
        const _: fn(&$crate::StartInfo) -> $crate::ShutdownReason = $main;
    };
}
