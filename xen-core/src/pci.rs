//! The PCI configuration-space filter that stands between the driver domain
//! and the functions assigned to it.
//!
//! The driver domain never touches config space itself: it asks the
//! hypervisor (physdev_op) to read or write one register of one assigned
//! function, and the hypervisor runs that request through the function's
//! [`AssignedFunction`]. The filter works over a [`ConfigSpace`], the one
//! function's real 4 KiB of config space as 32-bit reads and writes (ECAM on
//! the machine, a fake device in the tests), so everything here is safe Rust
//! that runs on the host.
//!
//! What the hypervisor keeps to itself (DESIGN.md, "Devices" and
//! "Interrupts"):
//! - **BAR placement.** Each BAR is sized once, by the hypervisor, when the
//!   function is assigned ([`AssignedFunction::probe`]). A guest's sizing
//!   (write all-ones, read, restore, as virtio-drivers does) is emulated and
//!   never reaches the device; a write that would move a BAR is ignored.
//! - **Address decoding.** The command register's I/O and memory decode bits
//!   (and every other bit but bus master, memory-write-and-invalidate and
//!   INTx disable) stay as the hypervisor set them.
//! - **MSI and MSI-X.** Both capabilities are taken out of the capability
//!   list the guest walks, their registers read as zero and writes to them
//!   are refused; the MSI-X table and PBA pages are never mapped
//!   ([`AssignedFunction::forbidden_mmio_pages`]).
//! - **Everything else** the filter does not know to be safe (the expansion
//!   ROM, other capabilities, the PCIe extended space) is read-only, and the
//!   interrupt line reads as the hypervisor says.
//!
//! Nothing here panics on any input, and every write the filter refuses or
//! drops is counted per function ([`FilterCounters`]).

use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

mod filter;
mod mmio;
mod probe;

pub use filter::FilterCounters;
pub use mmio::MmioRange;
pub use probe::{Bar, CapabilityInfo, MAX_CAPABILITIES, MsiCapability, MsixCapability, MsixRegion, ProbeError};

#[cfg(test)]
mod fake_device;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod virtio_drivers_replay;

/// Bytes of config space of one function (PCIe: 4 KiB, of which the first
/// 256 are the conventional PCI space).
pub const CONFIG_SPACE_SIZE: u32 = 4096;

/// Register offsets and bits of a type 0 (endpoint) header, PCI Local Bus 3.0
/// section 6.1 and PCIe Base section 7.5.1.
mod register {
    /// Vendor ID (low half) and device ID (high half).
    pub(super) const VENDOR_DEVICE: u16 = 0x00;
    /// Command (low half) and status (high half).
    pub(super) const COMMAND_STATUS: u16 = 0x04;
    /// Cache line size, latency timer, header type (byte 2), BIST.
    pub(super) const HEADER_TYPE_DWORD: u16 = 0x0C;
    /// The first of the six BARs.
    pub(super) const BAR0: u16 = 0x10;
    /// One past the last BAR.
    pub(super) const BAR_END: u16 = 0x28;
    /// The expansion ROM BAR.
    pub(super) const EXPANSION_ROM: u16 = 0x30;
    /// The capabilities pointer (byte 0 of this dword).
    pub(super) const CAPABILITIES_POINTER: u16 = 0x34;
    /// Interrupt line (byte 0), interrupt pin (byte 1), min_gnt, max_lat.
    pub(super) const INTERRUPT: u16 = 0x3C;
    /// Where capabilities may start: the end of the standard header.
    pub(super) const CAPABILITIES_START: u16 = 0x40;
    /// Where the PCIe extended space starts.
    pub(super) const EXTENDED_START: u16 = 0x100;

    /// Command: the function answers I/O space accesses.
    pub(super) const COMMAND_IO_DECODE: u16 = 1 << 0;
    /// Command: the function answers memory space accesses.
    pub(super) const COMMAND_MEMORY_DECODE: u16 = 1 << 1;
    /// Command: the function may master the bus (DMA).
    pub(super) const COMMAND_BUS_MASTER: u16 = 1 << 2;
    /// Command: memory write and invalidate enable.
    pub(super) const COMMAND_MEMORY_WRITE_INVALIDATE: u16 = 1 << 4;
    /// Command: INTx assertion disabled.
    pub(super) const COMMAND_INTX_DISABLE: u16 = 1 << 10;
    /// The command bits defined by the spec (11..15 are reserved).
    pub(super) const COMMAND_DEFINED: u16 = 0x07FF;

    /// Status: the function has a capability list.
    pub(super) const STATUS_CAPABILITIES_LIST: u16 = 1 << 4;
    /// Status: the write-1-to-clear error bits (master data parity error,
    /// signaled/received target abort, received master abort, signaled
    /// system error, detected parity error).
    pub(super) const STATUS_ERROR_BITS: u16 = (1 << 8) | (0b1_1111 << 11);

    /// Header type: the layout field (bit 7 is "multi-function").
    pub(super) const HEADER_LAYOUT_MASK: u8 = 0x7F;

    /// BAR bit 0: an I/O BAR.
    pub(super) const BAR_IO_SPACE: u32 = 1;
    /// Memory BAR bits 2:1: the address type.
    pub(super) const BAR_MEMORY_TYPE_MASK: u32 = 0b110;
    /// Memory BAR type: 32-bit.
    pub(super) const BAR_MEMORY_TYPE_32: u32 = 0b000;
    /// Memory BAR type: 32-bit below 1 MiB (legacy).
    pub(super) const BAR_MEMORY_TYPE_BELOW_1MIB: u32 = 0b010;
    /// Memory BAR type: 64-bit, the next BAR holds the upper half.
    pub(super) const BAR_MEMORY_TYPE_64: u32 = 0b100;
    /// Memory BAR bit 3: prefetchable.
    pub(super) const BAR_PREFETCHABLE: u32 = 1 << 3;
    /// The flag bits of a memory BAR.
    pub(super) const BAR_MEMORY_FLAGS: u32 = 0xF;
    /// The flag bits of an I/O BAR.
    pub(super) const BAR_IO_FLAGS: u32 = 0x3;

    /// Capability ID: MSI.
    pub(super) const CAPABILITY_MSI: u8 = 0x05;
    /// Capability ID: MSI-X.
    pub(super) const CAPABILITY_MSIX: u8 = 0x11;
}

/// A PCI function's address on segment 0: bus, device (0..32), function
/// (0..8), packed as the 16-bit routing ID `bus << 8 | device << 3 |
/// function`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf(u16);

/// Why a BDF was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BdfError {
    /// Not of the form `BB:DD.F` (hex bus and device, function digit),
    /// optionally preceded by a `SSSS:` segment.
    Syntax,
    /// The device number is 32 or more.
    DeviceOutOfRange,
    /// The function number is 8 or more.
    FunctionOutOfRange,
    /// A segment other than 0 (only segment 0 exists here).
    SegmentNotZero,
}

impl Bdf {
    /// The BDF of `bus:device.function`, checking the device (< 32) and the
    /// function (< 8).
    pub const fn new(bus: u8, device: u8, function: u8) -> Result<Self, BdfError> {
        if device >= 32 {
            return Err(BdfError::DeviceOutOfRange);
        }
        if function >= 8 {
            return Err(BdfError::FunctionOutOfRange);
        }
        Ok(Self(((bus as u16) << 8) | ((device as u16) << 3) | function as u16))
    }

    /// The BDF of a 16-bit routing ID (every value is valid).
    pub const fn from_routing_id(routing_id: u16) -> Self {
        Self(routing_id)
    }

    /// The 16-bit routing ID.
    pub const fn routing_id(self) -> u16 {
        self.0
    }

    /// The bus number.
    pub const fn bus(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// The device number (0..32).
    pub const fn device(self) -> u8 {
        ((self.0 >> 3) & 0x1F) as u8
    }

    /// The function number (0..8).
    pub const fn function(self) -> u8 {
        (self.0 & 0x7) as u8
    }

    /// Where this function's 4 KiB of config space starts inside the ECAM
    /// window of its segment (bus 0 at offset 0).
    pub const fn ecam_offset(self) -> u64 {
        (self.0 as u64) << 12
    }

    /// Parses `BB:DD.F` (xl.cfg's `pci = ['00:03.0']`), or `SSSS:BB:DD.F`
    /// with segment 0; bus and device are one or two hex digits.
    pub fn parse(text: &str) -> Result<Self, BdfError> {
        let (segment, rest) = match text.matches(':').count() {
            1 => (None, text),
            2 => match text.split_once(':') {
                Some((segment, rest)) => (Some(segment), rest),
                None => return Err(BdfError::Syntax),
            },
            _ => return Err(BdfError::Syntax),
        };
        if let Some(segment) = segment {
            if parse_hex(segment, 4)? != 0 {
                return Err(BdfError::SegmentNotZero);
            }
        }
        let (bus, device_function) = rest.split_once(':').ok_or(BdfError::Syntax)?;
        let (device, function) = device_function.split_once('.').ok_or(BdfError::Syntax)?;
        let bus = parse_hex(bus, 2)?;
        let device = parse_hex(device, 2)?;
        let function = parse_hex(function, 1)?;
        // Each fits in a byte: at most two hex digits.
        Self::new(bus as u8, device as u8, function as u8)
    }
}

/// A hex number of 1..=`max_digits` digits (no sign, no prefix).
fn parse_hex(text: &str, max_digits: usize) -> Result<u16, BdfError> {
    if text.is_empty() || text.len() > max_digits || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(BdfError::Syntax);
    }
    u16::from_str_radix(text, 16).map_err(|_| BdfError::Syntax)
}

impl FromStr for Bdf {
    type Err = BdfError;

    fn from_str(text: &str) -> Result<Self, BdfError> {
        Self::parse(text)
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:02x}:{:02x}.{}", self.bus(), self.device(), self.function())
    }
}

/// One function's real config space, 32 bits at a time. The hypervisor's
/// implementation does the ECAM access; the filter never calls it with an
/// offset that is not a multiple of 4 below [`CONFIG_SPACE_SIZE`], and
/// builds every narrower access on top of these two.
pub trait ConfigSpace {
    /// Reads the dword at `offset`.
    fn read32(&self, offset: u16) -> u32;
    /// Writes the dword at `offset`.
    fn write32(&mut self, offset: u16, value: u32);
}

/// Why a guest's config-space access was refused. The hypercall turns it
/// into an errno with [`FilterError::errno`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterError {
    /// The offset is at or past [`CONFIG_SPACE_SIZE`].
    OffsetOutOfRange,
    /// The size is not 1, 2 or 4 bytes.
    BadSize,
    /// The offset is not a multiple of the size.
    Misaligned,
    /// The value has bits set above the access size.
    ValueTooWide,
    /// The access touches the MSI or MSI-X capability, which the hypervisor
    /// owns.
    MsiOwnedByHypervisor,
}

impl FilterError {
    /// The errno the hypercall returns (negated): `EPERM` for a refusal,
    /// `EINVAL` for a malformed access.
    pub const fn errno(self) -> i64 {
        match self {
            Self::MsiOwnedByHypervisor => xen_abi::errno::EPERM,
            Self::OffsetOutOfRange | Self::BadSize | Self::Misaligned | Self::ValueTooWide => {
                xen_abi::errno::EINVAL
            }
        }
    }
}

/// A function given to the driver domain: what the hypervisor learned by
/// probing it once at assignment ([`AssignedFunction::probe`]), and the
/// guest-facing filter over its config space ([`AssignedFunction::read`],
/// [`AssignedFunction::write`]).
pub struct AssignedFunction<C: ConfigSpace> {
    /// The real config space.
    config: C,
    /// Where the function is.
    bdf: Bdf,
    /// Vendor ID, as probed.
    vendor_id: u16,
    /// Device ID, as probed.
    device_id: u16,
    /// What each of the six BAR registers holds.
    bars: [Bar; 6],
    /// Each BAR register's value at assignment: the placement the guest sees.
    bar_values: [u32; 6],
    /// What each BAR register reads while the guest is sizing it.
    bar_size_masks: [u32; 6],
    /// Which BAR registers the guest is sizing (wrote all-ones, not yet
    /// restored).
    bar_sizing: [bool; 6],
    /// Every capability in list order, hidden ones included.
    capabilities: Vec<CapabilityInfo>,
    /// Bit n set: the dword at 0x40 + 4n belongs to MSI or MSI-X.
    hidden_dwords: u64,
    /// The MSI capability, if any.
    msi: Option<MsiCapability>,
    /// The MSI-X capability, if any.
    msix: Option<MsixCapability>,
    /// What the interrupt line register reads.
    interrupt_line: u8,
    /// Refused and ignored writes.
    counters: FilterCounters,
}

impl<C: ConfigSpace> AssignedFunction<C> {
    /// The function's BDF.
    pub fn bdf(&self) -> Bdf {
        self.bdf
    }

    /// The vendor ID read at assignment.
    pub fn vendor_id(&self) -> u16 {
        self.vendor_id
    }

    /// The device ID read at assignment.
    pub fn device_id(&self) -> u16 {
        self.device_id
    }

    /// The six BAR registers as probed (a 64-bit BAR is followed by
    /// [`Bar::Upper64`]).
    pub fn bars(&self) -> &[Bar; 6] {
        &self.bars
    }

    /// Every capability found, in list order; MSI and MSI-X are marked
    /// hidden.
    pub fn capabilities(&self) -> &[CapabilityInfo] {
        &self.capabilities
    }

    /// The MSI capability, if the function has one.
    pub fn msi(&self) -> Option<&MsiCapability> {
        self.msi.as_ref()
    }

    /// The MSI-X capability, if the function has one.
    pub fn msix(&self) -> Option<&MsixCapability> {
        self.msix.as_ref()
    }

    /// The value the guest reads in the interrupt line register (0x3C).
    pub fn interrupt_line(&self) -> u8 {
        self.interrupt_line
    }

    /// Sets what the guest reads in the interrupt line register (the
    /// hypervisor's choice, e.g. the IOAPIC input; 0xFF means none).
    pub fn set_interrupt_line(&mut self, line: u8) {
        self.interrupt_line = line;
    }

    /// The counts of writes refused or ignored so far.
    pub fn counters(&self) -> &FilterCounters {
        &self.counters
    }

    /// The real config space (for the hypervisor's own use, e.g. turning
    /// decode off when the domain dies).
    pub fn config_space(&self) -> &C {
        &self.config
    }

    /// The real config space, mutably: the hypervisor's own accesses, which
    /// are not filtered.
    pub fn config_space_mut(&mut self) -> &mut C {
        &mut self.config
    }

    /// Gives the config space back (the function is being unassigned).
    pub fn into_config_space(self) -> C {
        self.config
    }
}
