//! The driver domain's device calls (`xen_abi::physdev`): PCI configuration
//! space through the hypervisor's filter, the description of each assigned
//! function (its BARs, where they are mapped, its interrupt's event
//! channel), the end-of-interrupt call that unmasks its line, and the bus
//! address of our own frames for DMA. Only a domain the bundle assigned
//! devices to, and the policy lets use them, gets anything but `EPERM`.

use xen_abi::bytes::{u16_or_zero, u32_or_zero, u64_or_zero};
use xen_abi::hypercall::{MEMORY_OP, PHYSDEV_OP};
use xen_abi::physdev::{self, bar_flags, device_info};

use crate::hypercall::{check, Errno};
use crate::machine;

/// Reads `size` (1, 2, 4) bytes of function `bdf`'s configuration space.
pub fn pci_config_read(bdf: u32, offset: u16, size: u8) -> Result<u32, Errno> {
    check(machine::hypercall4(PHYSDEV_OP, physdev::PCI_CONFIG_READ, u64::from(bdf), u64::from(offset), u64::from(size))).map(|value| value as u32)
}

/// Writes `size` (1, 2, 4) bytes of function `bdf`'s configuration space.
pub fn pci_config_write(bdf: u32, offset: u16, size: u8, value: u32) -> Result<(), Errno> {
    check(machine::hypercall5(PHYSDEV_OP, physdev::PCI_CONFIG_WRITE, u64::from(bdf), u64::from(offset), u64::from(size), u64::from(value))).map(drop)
}

/// Says the interrupt behind `port` was handled: the hypervisor unmasks its line.
pub fn eoi(port: u32) -> Result<(), Errno> {
    check(machine::hypercall2(PHYSDEV_OP, physdev::EOI, u64::from(port))).map(drop)
}

/// One BAR of an assigned function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarInfo {
    /// Its BAR register index (0..=5).
    pub index: u32,
    /// `bar_flags`.
    pub flags: u32,
    /// Its physical (bus) address.
    pub physical: u64,
    /// Its size in bytes.
    pub size: u64,
}

impl BarInfo {
    /// Where it is mapped in our address space, if it is.
    pub fn mapped_at(&self) -> Option<u64> {
        (self.flags & bar_flags::MAPPED != 0).then(|| physdev::DEVICE_WINDOW_BASE + self.physical)
    }
}

/// An assigned function, as the hypervisor describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `bus << 8 | device << 3 | function`.
    pub bdf: u32,
    /// PCI vendor id.
    pub vendor: u16,
    /// PCI device id.
    pub device: u16,
    /// The event channel its interrupt arrives on (0: none).
    pub event_port: u32,
    /// How many of `bars` are filled.
    pub bar_count: usize,
    /// Its BARs.
    pub bars: [BarInfo; device_info::MAX_BARS],
}

/// The `index`th function assigned to us; `ENOENT` past the last.
pub fn device_info(index: u32) -> Result<DeviceInfo, Errno> {
    let mut block = [0u8; device_info::SIZE];
    check(machine::hypercall_fill(PHYSDEV_OP, physdev::DEVICE_INFO, &mut block, true, u64::from(index)))?;
    Ok(decode_device_info(&block))
}

/// Decodes a description block.
pub fn decode_device_info(block: &[u8]) -> DeviceInfo {
    let bar_count = (u32_or_zero(block, device_info::BAR_COUNT) as usize).min(device_info::MAX_BARS);
    let mut bars = [BarInfo { index: 0, flags: 0, physical: 0, size: 0 }; device_info::MAX_BARS];
    for (slot, bar) in bars.iter_mut().enumerate().take(bar_count) {
        let at = device_info::BARS + slot * device_info::BAR_ENTRY_SIZE;
        *bar = BarInfo {
            index: u32_or_zero(block, at),
            flags: u32_or_zero(block, at + 4),
            physical: u64_or_zero(block, at + 8),
            size: u64_or_zero(block, at + 16),
        };
    }
    DeviceInfo {
        bdf: u32_or_zero(block, device_info::BDF),
        vendor: u16_or_zero(block, device_info::VENDOR),
        device: u16_or_zero(block, device_info::DEVICE),
        event_port: u32_or_zero(block, device_info::EVENT_PORT),
        bar_count,
        bars,
    }
}

/// The bus address of our frame `pfn`, if `pfn..pfn + count` are contiguous
/// in machine memory (one DMA region may then span them).
pub fn bus_address(pfn: u64, count: u64) -> Result<u64, Errno> {
    check(machine::hypercall3(MEMORY_OP, physdev::MEMORY_OP_BUS_ADDRESS, pfn, count))
}
