//! `driver`: the driver domain's kernel. It asks the hypervisor which PCI
//! functions it was given (`physdev` device descriptions), drives the
//! virtio-blk among them with virtio-drivers (configuration space through
//! the hypervisor's filter, BARs where the hypervisor mapped them, its
//! interrupt as an event channel, DMA to bus addresses), and serves the
//! block frontends the toolstack pairs it with through blkback. It blocks
//! whenever nothing is to be done.
//!
//! Command line: `exit-after=N` powers off once N devices have been served
//! and removed (tests); without it the domain serves forever.
//! `bench-direct=N` (with `exit-after=`): before powering off, times N
//! sequential reads and writes of 4 KiB and 44 KiB straight from our own
//! pages to the device, the baseline `make bench` compares blkfront with;
//! `bench-repeat=R` (1 to 20) does all of that R times.
//! On the host this builds to a stub; the logic's tests run there.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]
// reason: a binary's modules are private to it; `pub` marks what a module
// offers the rest of the binary, which this lint cannot see.
#![allow(unreachable_pub)]

extern crate alloc;

#[allow(unsafe_code)]
// reason: the one layer that hands virtio-drivers pointers (its Hal, DMA into granted pages, the served ring pages); each block says why it is sound.
mod arch;
mod bench;
mod disk;
mod dma;
mod pci;
mod server;
mod vbd;

use guest_runtime::command_line::find;
use guest_runtime::event::EventLoop;
use guest_runtime::{ShutdownReason, StartInfo};
use log::{error, info};

use crate::disk::VirtioDisk;
use crate::server::Server;

/// virtio's PCI vendor id.
const VIRTIO_VENDOR: u16 = 0x1af4;
/// A modern (virtio 1.0) block device.
const VIRTIO_BLOCK_MODERN: u16 = 0x1042;

guest_runtime::entry!(domain_main);

fn domain_main(info: &StartInfo) -> ShutdownReason {
    let bench_direct = match find(info.command_line(), "bench-direct").map(str::parse::<u64>) {
        None => None,
        Some(Ok(count)) if count > 0 => Some(count),
        Some(_) => {
            error!("driver: bench-direct= wants a positive number");
            return ShutdownReason::Crash;
        }
    };
    let bench_repeat = match find(info.command_line(), "bench-repeat").map(str::parse::<u64>) {
        None => 1,
        Some(Ok(repeat)) if (1..=20).contains(&repeat) => repeat,
        Some(_) => {
            error!("driver: bench-repeat= wants a number from 1 to 20");
            return ShutdownReason::Crash;
        }
    };
    let exit_after = match find(info.command_line(), "exit-after").map(str::parse::<u32>) {
        None => None,
        Some(Ok(count)) => Some(count),
        Some(Err(_)) => {
            error!("driver: exit-after= wants a number");
            return ShutdownReason::Crash;
        }
    };
    let functions = match pci::discover() {
        Ok(functions) => functions,
        Err(errno) => {
            error!("driver: device descriptions refused: {errno}");
            return ShutdownReason::Crash;
        }
    };
    for function in functions {
        let bdf = function.bdf;
        info!(
            "driver: assigned {:02x}:{:02x}.{} {:04x}:{:04x}, interrupt port {}, {} BARs",
            bdf >> 8,
            (bdf >> 3) & 0x1f,
            bdf & 7,
            function.vendor,
            function.device,
            function.event_port,
            function.bar_count
        );
        for bar in &function.bars[..function.bar_count] {
            info!(
                "driver:   BAR{} at {:#x} size {:#x} flags {:#x}",
                bar.index, bar.physical, bar.size, bar.flags
            );
        }
    }
    let Some(function) = functions.iter().find(|function| {
        function.vendor == VIRTIO_VENDOR && function.device == VIRTIO_BLOCK_MODERN
    }) else {
        error!(
            "driver: no modern virtio-blk among the {} functions assigned to us",
            functions.len()
        );
        return ShutdownReason::Crash;
    };
    let Some(events) = EventLoop::this_domain() else {
        error!("driver: no event loop");
        return ShutdownReason::Crash;
    };
    let disk = match VirtioDisk::open(function, events) {
        Ok(disk) => disk,
        Err(problem) => {
            error!("driver: {problem}");
            return ShutdownReason::Crash;
        }
    };
    info!(
        "driver: virtio-blk ready: {} sectors{}, interrupt on port {}",
        disk.capacity(),
        if disk.readonly() { " (read-only)" } else { "" },
        disk.interrupt_port()
    );
    let (store, store_port) = match guest_runtime::store::open() {
        Ok(pair) => pair,
        Err(problem) => {
            error!("driver: store: {problem}");
            return ShutdownReason::Crash;
        }
    };
    let mut server = Server::new(info.domid.into(), store, store_port, disk);
    match server.run(exit_after) {
        Ok(()) => match bench_direct {
            Some(count) if !bench::direct(server.disk_mut(), count, bench_repeat) => {
                ShutdownReason::Crash
            }
            _ => ShutdownReason::Poweroff,
        },
        Err(problem) => {
            error!("driver: store: {problem}");
            ShutdownReason::Crash
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("driver is a domain kernel: build it with --target x86_64-unknown-none and boot it under xen-core as the driver domain.");
    std::process::exit(2);
}
