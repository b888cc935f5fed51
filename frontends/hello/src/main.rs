//! `hello`: the smallest domain kernel. It says who it is, shows the heap
//! works, and powers off. On the host this builds to a stub (the domain
//! kernel is the `x86_64-unknown-none` build).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use guest_runtime::{heap, ShutdownReason, StartInfo};

guest_runtime::entry!(domain_main);

/// Logs the greeting and a few heap facts, then asks to power off.
fn domain_main(info: &StartInfo) -> ShutdownReason {
    log::info!("{}", greeting(info));
    let before = heap::statistics();
    let squares: Vec<u64> = (0..256u64).map(|value| value * value).collect();
    let during = heap::statistics();
    log::info!(
        "heap: {} KiB; a vector of {} squares (sum {}) took {} bytes",
        before.total_bytes / 1024,
        squares.len(),
        squares.iter().sum::<u64>(),
        during.in_use_bytes - before.in_use_bytes,
    );
    drop(squares);
    log::info!("heap: {} bytes in use after freeing it; goodbye", heap::statistics().in_use_bytes);
    ShutdownReason::Poweroff
}

/// `hello from <name> (domain <id>), <nr_pages> pages, cmdline '<...>'`.
fn greeting(info: &StartInfo) -> alloc::string::String {
    alloc::format!(
        "hello from {} (domain {}), {} pages, cmdline '{}'",
        info.name(),
        info.domid,
        info.nr_pages,
        info.command_line()
    )
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hello is a domain kernel: build it with --target x86_64-unknown-none and boot it under xen-core.");
    std::process::exit(2);
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::start_info::fill_text;

    #[test]
    fn greeting_names_the_domain() {
        let info = StartInfo {
            nr_pages: 1024,
            shared_info: 0,
            flags: 0,
            domid: 4,
            store_pfn: 3,
            store_evtchn: 0,
            console_pfn: 2,
            console_evtchn: 0,
            first_free_pfn: 300,
            stack_pages: 16,
            name: fill_text("hello"),
            seclabel: fill_text("hello_t"),
            command_line: fill_text("loglvl=info"),
        };
        assert_eq!(greeting(&info), "hello from hello (domain 4), 1024 pages, cmdline 'loglvl=info'");
    }
}
