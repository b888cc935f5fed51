//! The hypervisor's device assignment, seen from inside:
//!
//! - `pci-probe` (a driver domain given 00:03.0, a virtio-blk): reads the
//!   description of its function, its configuration space through the
//!   filter, sizes a BAR the way virtio-drivers does (emulated: the real BAR
//!   never changes), tries to move it (ignored), walks the capability list
//!   (MSI-X hidden), reads a byte of a mapped BAR, and finds every other
//!   function out of reach.
//! - `pci-steal` (any other domain): every device call is refused.

use guest_runtime::physdev::{self, DeviceInfo};
use guest_runtime::{ShutdownReason, StartInfo};
use log::{error, info};
use xen_abi::physdev::{bar_flags, bdf};

use crate::hostile::read_byte;

fn check(condition: bool, what: &str, failures: &mut u32) {
    if condition {
        info!("pci-probe: {what}: ok");
    } else {
        error!("UNEXPECTED: pci-probe: {what}: failed");
        *failures += 1;
    }
}

fn describe(device: &DeviceInfo) {
    info!(
        "pci-probe: function {:02x}:{:02x}.{} {:04x}:{:04x}, interrupt port {}, {} BARs",
        device.bdf >> 8,
        (device.bdf >> 3) & 0x1f,
        device.bdf & 7,
        device.vendor,
        device.device,
        device.event_port,
        device.bar_count
    );
    for bar in &device.bars[..device.bar_count] {
        info!("pci-probe:   BAR {} flags {:#x} at {:#x}, {} bytes, mapped at {:?}", bar.index, bar.flags, bar.physical, bar.size, bar.mapped_at());
    }
}

/// `action=pci-probe`.
pub fn pci_probe(_info: &StartInfo) -> ShutdownReason {
    let mut failures = 0;
    let device = match physdev::device_info(0) {
        Ok(device) => device,
        Err(errno) => {
            error!("pci-probe: no device: {errno}");
            return ShutdownReason::Crash;
        }
    };
    describe(&device);
    let function = device.bdf;
    let identity = physdev::pci_config_read(function, 0, 4);
    check(identity == Ok(u32::from(device.device) << 16 | u32::from(device.vendor)), "vendor and device through the filter", &mut failures);
    // BAR sizing as virtio-drivers does it, on the first memory BAR.
    if let Some(bar) = device.bars[..device.bar_count].iter().find(|bar| bar.flags & bar_flags::MEMORY != 0) {
        let offset = 0x10 + 4 * bar.index as u16;
        let original = physdev::pci_config_read(function, offset, 4).unwrap_or(0);
        let _ = physdev::pci_config_write(function, offset, 4, 0xffff_ffff);
        let mask = physdev::pci_config_read(function, offset, 4).unwrap_or(0);
        let _ = physdev::pci_config_write(function, offset, 4, original);
        let size = (!(mask & !0xf)).wrapping_add(1);
        info!("pci-probe: BAR {} sized: mask {mask:#x}, size {size:#x} (real {:#x})", bar.index, bar.size);
        check(bar.size > u64::from(u32::MAX) || u64::from(size) == bar.size, "BAR sizing emulated", &mut failures);
        let _ = physdev::pci_config_write(function, offset, 4, original.wrapping_add(0x10_0000));
        check(physdev::pci_config_read(function, offset, 4) == Ok(original), "moving a BAR is ignored", &mut failures);
    } else {
        check(false, "a memory BAR", &mut failures);
    }
    // A mapped BAR reads (uncached, through the device window).
    let mapped = device.bars[..device.bar_count].iter().find_map(|bar| Some((bar.index, bar.mapped_at()?)));
    match mapped {
        Some((index, address)) => {
            let value = read_byte(address);
            info!("pci-probe: BAR {index} mapped: first byte {value:#x}");
        }
        None => check(false, "a mapped BAR", &mut failures),
    }
    // The capability list as we see it.
    let mut pointer = physdev::pci_config_read(function, 0x34, 1).unwrap_or(0) & 0xfc;
    let mut seen = 0;
    let mut msix = false;
    while pointer >= 0x40 && seen < 48 {
        let header = physdev::pci_config_read(function, pointer as u16, 4).unwrap_or(0);
        msix |= header & 0xff == 0x11;
        seen += 1;
        pointer = (header >> 8) & 0xfc;
    }
    info!("pci-probe: {seen} capabilities visible");
    check(!msix && seen > 0, "MSI-X hidden, the rest visible", &mut failures);
    // Decode bits stay the hypervisor's.
    let command = physdev::pci_config_read(function, 4, 2).unwrap_or(0);
    let _ = physdev::pci_config_write(function, 4, 2, command & !0x3);
    check(physdev::pci_config_read(function, 4, 2).map(|value| value & 0x3) == Ok(command & 0x3), "decode bits kept", &mut failures);
    // Nothing else is reachable.
    check(physdev::device_info(1).is_err(), "no second function", &mut failures);
    check(physdev::pci_config_read(bdf(0, 0x1f, 2), 0, 4).is_err(), "another function (00:1f.2) out of reach", &mut failures);
    check(physdev::pci_config_read(function, 0x1000, 4).is_err(), "offsets past 4 KiB refused", &mut failures);
    info!("pci-probe: {failures} failures");
    if failures == 0 {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    }
}

/// `action=pci-steal`.
pub fn pci_steal(_info: &StartInfo) -> ShutdownReason {
    let attempts = [
        ("describe a device", physdev::device_info(0).map(drop)),
        ("read 00:03.0's configuration", physdev::pci_config_read(bdf(0, 3, 0), 0, 4).map(drop)),
        ("write 00:03.0's command register", physdev::pci_config_write(bdf(0, 3, 0), 4, 2, 0x7)),
        ("acknowledge an interrupt", physdev::eoi(3)),
        ("ask a bus address", physdev::bus_address(300, 1).map(drop)),
    ];
    let mut refused = 0;
    for (what, result) in &attempts {
        match result {
            Err(errno) => {
                refused += 1;
                info!("pci-steal: {what}: refused ({errno})");
            }
            Ok(()) => error!("UNEXPECTED: pci-steal: {what}: allowed"),
        }
    }
    info!("pci-steal: {refused} of {} refused", attempts.len());
    if refused == attempts.len() {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    }
}
