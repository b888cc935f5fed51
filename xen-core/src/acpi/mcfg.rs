//! The MCFG table: PCI Express enhanced configuration (ECAM) regions.

use heapless::Vec;

use super::{push_counting, AcpiError, Entry, PhysicalMemory, Table, SDT_HEADER_LENGTH};

/// One PCI Express enhanced configuration (ECAM) region from the MCFG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciConfigRegion {
    /// The ECAM base address. As in the PCI Firmware Specification, this is
    /// the address bus 0 *would* have, even when `start_bus` is not 0.
    pub base_address: u64,
    /// The PCI segment group.
    pub segment: u16,
    /// First bus decoded by this region.
    pub start_bus: u8,
    /// Last bus decoded by this region (inclusive).
    pub end_bus: u8,
}

impl PciConfigRegion {
    /// Physical address of the 4 KiB configuration space of `bus:device.function`,
    /// or `None` if the bus is outside this region, `device > 31` or `function > 7`.
    pub fn ecam_address(&self, bus: u8, device: u8, function: u8) -> Option<u64> {
        if !(self.start_bus..=self.end_bus).contains(&bus) || device > 31 || function > 7 {
            return None;
        }
        let offset =
            (u64::from(bus) << 20) | (u64::from(device) << 15) | (u64::from(function) << 12);
        self.base_address.checked_add(offset)
    }

    /// Physical address of the first byte this region decodes (that of `start_bus`).
    pub fn start_address(&self) -> u64 {
        self.base_address
            .saturating_add(u64::from(self.start_bus) << 20)
    }

    /// Bytes of configuration space the region decodes: 1 MiB per bus.
    pub fn size_bytes(&self) -> u64 {
        (u64::from(self.end_bus.saturating_sub(self.start_bus)) + 1) << 20
    }
}

/// The MCFG's fixed fields after the header: 8 reserved bytes.
const ENTRIES_OFFSET: usize = SDT_HEADER_LENGTH + 8;
const ENTRY_LENGTH: usize = 16;

/// Parses a validated MCFG, appending its regions to `regions` (counting
/// those that do not fit in `dropped`).
pub(super) fn parse(
    memory: &impl PhysicalMemory,
    table: &Table,
    regions: &mut Vec<PciConfigRegion, 4>,
    dropped: &mut usize,
) -> Result<(), AcpiError> {
    table.require_length(ENTRIES_OFFSET)?;
    let body_length = table.length - ENTRIES_OFFSET;
    let partial = body_length % ENTRY_LENGTH;
    if partial != 0 {
        return Err(table.malformed(table.length - partial, partial));
    }
    for index in 0..body_length / ENTRY_LENGTH {
        let offset = ENTRIES_OFFSET + index * ENTRY_LENGTH;
        let mut bytes = [0u8; ENTRY_LENGTH];
        table.read(memory, offset, &mut bytes)?;
        let entry = Entry {
            bytes: &bytes,
            table,
            offset,
        };
        let region = PciConfigRegion {
            base_address: entry.u64(0)?,
            segment: entry.u16(8)?,
            start_bus: entry.u8(10)?,
            end_bus: entry.u8(11)?,
        };
        if region.end_bus < region.start_bus {
            return Err(table.invalid(offset, "PCI end bus below start bus"));
        }
        let end_offset = (u64::from(region.end_bus) + 1) << 20;
        if region.base_address.checked_add(end_offset).is_none() {
            return Err(table.invalid(offset, "PCI config region wraps the address space"));
        }
        push_counting(regions, region, dropped);
    }
    Ok(())
}
