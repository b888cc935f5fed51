//! The PCI functions the hypervisor assigned us: found with
//! `physdev::device_info(0..)`, their configuration space reached only
//! through `physdev::pci_config_read/write` (the hypervisor filters it),
//! and their memory BARs where the hypervisor mapped them
//! (`DEVICE_WINDOW_BASE + physical`). Nothing here scans a bus: a function
//! the hypervisor did not assign reads as absent (all ones).

use alloc::vec::Vec;

use guest_runtime::physdev::{self, DeviceInfo};
use virtio_drivers::transport::pci::bus::DeviceFunction;
use xen_abi::errno::ENOENT;
use xen_abi::physdev::{bdf, DEVICE_WINDOW_BASE};

/// Functions asked about at most.
const MAX_FUNCTIONS: u32 = 32;

/// The assigned functions, as described at start (for the MMIO checks of
/// `Hal::mmio_phys_to_virt`).
static ASSIGNED: spin::Once<Vec<DeviceInfo>> = spin::Once::new();

/// Asks the hypervisor for every function assigned to us, remembers them
/// for [`mmio_window`] and returns them.
///
/// # Errors
///
/// The first error other than `ENOENT` (which ends the list).
pub fn discover() -> Result<&'static [DeviceInfo], guest_runtime::Errno> {
    let mut found = Vec::new();
    for index in 0..MAX_FUNCTIONS {
        match physdev::device_info(index) {
            Ok(info) => found.push(info),
            Err(errno) if errno.code() == ENOENT => break,
            Err(errno) => return Err(errno),
        }
    }
    Ok(ASSIGNED.call_once(|| found).as_slice())
}

/// Where in our address space the MMIO range `[physical, physical + size)`
/// is mapped, if it lies inside one mapped BAR of an assigned function.
pub fn mmio_window(physical: u64, size: u64) -> Option<u64> {
    inside_mapped_bar(ASSIGNED.get()?.as_slice(), physical, size)
}

/// [`mmio_window`] over a given list of functions.
pub fn inside_mapped_bar(functions: &[DeviceInfo], physical: u64, size: u64) -> Option<u64> {
    let end = physical.checked_add(size)?;
    let inside = functions
        .iter()
        .flat_map(|function| function.bars[..function.bar_count].iter())
        .any(|bar| {
            bar.mapped_at().is_some()
                && physical >= bar.physical
                && bar
                    .physical
                    .checked_add(bar.size)
                    .is_some_and(|bar_end| end <= bar_end)
        });
    inside.then(|| DEVICE_WINDOW_BASE + physical)
}

/// The `bus << 8 | device << 3 | function` of a virtio-drivers function.
pub fn bdf_of(function: DeviceFunction) -> u32 {
    bdf(function.bus, function.device, function.function)
}

/// A virtio-drivers function from a `bdf`.
pub fn function_of(bdf: u32) -> DeviceFunction {
    DeviceFunction {
        bus: (bdf >> 8) as u8,
        device: ((bdf >> 3) & 0x1f) as u8,
        function: (bdf & 7) as u8,
    }
}

/// Configuration space through the hypervisor's filter, 32 bits at a time
/// (virtio-drivers' `ConfigurationAccess`, implemented in `arch`).
#[derive(Clone, Copy, Debug, Default)]
pub struct PhysdevConfig;

impl PhysdevConfig {
    /// Reads a word; a refused read (a function not assigned to us, an
    /// offset the filter hides) reads as all ones, "no device".
    pub fn read(function: DeviceFunction, offset: u8) -> u32 {
        physdev::pci_config_read(bdf_of(function), u16::from(offset & !3), 4).unwrap_or(u32::MAX)
    }

    /// Writes a word; the filter decides what of it reaches the device
    /// (a refused write is dropped, as on real hardware).
    pub fn write(function: DeviceFunction, offset: u8, value: u32) {
        if let Err(errno) =
            physdev::pci_config_write(bdf_of(function), u16::from(offset & !3), 4, value)
        {
            log::debug!(
                "pci: config write {:#x} at {offset:#x} of {:02x}:{:02x}.{} refused: {errno:?}",
                value,
                function.bus,
                function.device,
                function.function
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use guest_runtime::physdev::BarInfo;
    use xen_abi::physdev::bar_flags;

    fn function(bars: &[BarInfo]) -> DeviceInfo {
        let mut all = [BarInfo {
            index: 0,
            flags: 0,
            physical: 0,
            size: 0,
        }; 4];
        all[..bars.len()].copy_from_slice(bars);
        DeviceInfo {
            bdf: bdf(0, 3, 0),
            vendor: 0x1af4,
            device: 0x1042,
            event_port: 5,
            bar_count: bars.len(),
            bars: all,
        }
    }

    #[test]
    fn only_ranges_inside_a_mapped_bar_are_reachable() {
        let mapped = BarInfo {
            index: 4,
            flags: bar_flags::MEMORY | bar_flags::WIDE | bar_flags::MAPPED,
            physical: 0xfe00_0000,
            size: 0x4000,
        };
        let unmapped = BarInfo {
            index: 1,
            flags: bar_flags::MEMORY,
            physical: 0xfebd_1000,
            size: 0x1000,
        };
        let functions = [function(&[unmapped, mapped])];
        assert_eq!(
            inside_mapped_bar(&functions, 0xfe00_3000, 0x1000),
            Some(DEVICE_WINDOW_BASE + 0xfe00_3000)
        );
        assert_eq!(
            inside_mapped_bar(&functions, 0xfe00_3000, 0x1001),
            None,
            "runs past the BAR"
        );
        assert_eq!(
            inside_mapped_bar(&functions, 0xfdff_f000, 0x2000),
            None,
            "starts before it"
        );
        assert_eq!(
            inside_mapped_bar(&functions, 0xfebd_1000, 4),
            None,
            "not mapped (MSI-X)"
        );
        assert_eq!(inside_mapped_bar(&functions, u64::MAX, 2), None);
        let counted_only = DeviceInfo {
            bar_count: 0,
            ..functions[0]
        };
        assert_eq!(
            inside_mapped_bar(&[counted_only], 0xfe00_0000, 4),
            None,
            "entries past bar_count are ignored"
        );
    }

    #[test]
    fn addresses_round_trip() {
        let function = function_of(bdf(0, 3, 0));
        assert_eq!(
            (function.bus, function.device, function.function),
            (0, 3, 0)
        );
        assert_eq!(bdf_of(function_of(0x1234)), 0x1234);
    }
}
