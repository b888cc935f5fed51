//! Probing a function once, when it is assigned: its identity and header
//! type, the real size of each BAR (sized by the hypervisor with decoding
//! off, then everything restored), and a bounded walk of its capability list
//! that finds MSI and MSI-X.

use alloc::vec::Vec;

use super::register::*;
use super::{AssignedFunction, Bdf, ConfigSpace, FilterCounters};

/// The most capabilities a list can hold: one per dword from 0x40 to 0xFF.
pub const MAX_CAPABILITIES: usize = 48;

/// What one BAR register holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    /// Not implemented: it reads back zero after all-ones.
    Unused,
    /// An I/O port BAR (never mapped for the driver domain).
    Io {
        /// The first port.
        address: u32,
        /// Ports decoded (a power of two).
        size_bytes: u32,
    },
    /// A memory BAR.
    Memory {
        /// The bus address of the first byte.
        address: u64,
        /// Bytes decoded (a power of two).
        size_bytes: u64,
        /// A 64-bit BAR: the next register is its upper half.
        is_64bit: bool,
        /// Prefetchable (reads have no side effects).
        prefetchable: bool,
    },
    /// The upper half of the 64-bit memory BAR in the register before.
    Upper64,
}

impl Bar {
    /// Whether this register holds (the low half of) a memory BAR.
    pub fn is_memory(&self) -> bool {
        matches!(self, Self::Memory { .. })
    }

    /// The flag bits of this register that sizing leaves alone.
    pub(super) fn flag_bits(self) -> u32 {
        match self {
            Self::Io { .. } => BAR_IO_FLAGS,
            Self::Memory { .. } => BAR_MEMORY_FLAGS,
            Self::Unused | Self::Upper64 => 0,
        }
    }
}

/// One entry of the capability list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapabilityInfo {
    /// Where it starts in config space.
    pub offset: u8,
    /// Its capability ID.
    pub id: u8,
    /// Hidden from the guest (MSI, MSI-X).
    pub hidden: bool,
}

/// The MSI capability (PCI 3.0 section 6.8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiCapability {
    /// Where it starts in config space.
    pub offset: u8,
    /// Its length in bytes (10, 14, 20 or 24).
    pub length_bytes: u8,
    /// It takes a 64-bit message address.
    pub is_64bit: bool,
    /// It has per-vector mask and pending bits.
    pub per_vector_masking: bool,
    /// MSI was enabled when the function was probed.
    pub enabled: bool,
}

/// Where an MSI-X structure lies: in which BAR, and where in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixRegion {
    /// The BAR indicator (BIR) as the device reports it (0..8; only 0..6
    /// name a BAR).
    pub bar_index: u8,
    /// Offset from the start of that BAR (a multiple of 8).
    pub offset_bytes: u32,
    /// Length in bytes.
    pub size_bytes: u32,
}

/// The MSI-X capability (PCI 3.0 section 6.8.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixCapability {
    /// Where it starts in config space.
    pub offset: u8,
    /// Entries in the table (1..=2048).
    pub table_entries: u16,
    /// The vector table (16 bytes an entry).
    pub table: MsixRegion,
    /// The pending bit array (PBA: one bit an entry, in 64-bit words).
    pub pending_bit_array: MsixRegion,
    /// MSI-X was enabled when the function was probed.
    pub enabled: bool,
}

/// The length of the MSI-X capability in bytes.
const MSIX_LENGTH_BYTES: u8 = 12;

/// Why a function cannot be assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// Nothing answers at that BDF (the vendor ID reads all-ones or zero).
    NoFunction,
    /// Only endpoints (header type 0) can be assigned: a bridge (1), a
    /// CardBus bridge (2) or anything else would let the guest route other
    /// devices' traffic.
    NotAnEndpoint {
        /// The header layout found (bit 7, multi-function, masked off).
        header_type: u8,
    },
    /// A BAR of a reserved memory type, a 64-bit BAR in the last slot, or
    /// one not aligned to its size.
    InvalidBar {
        /// The BAR register (0..6).
        index: u8,
        /// What it held.
        value: u32,
    },
    /// A BAR did not read back its original value after sizing.
    BarNotRestored {
        /// The BAR register (0..6).
        index: u8,
    },
    /// The capability list has a pointer below 0x40, one not a multiple of
    /// 4, or a loop.
    MalformedCapabilityList {
        /// The offending pointer.
        pointer: u8,
    },
    /// A second MSI or MSI-X capability.
    DuplicateCapability {
        /// Its ID.
        id: u8,
    },
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoFunction => write!(formatter, "no PCI function there"),
            Self::NotAnEndpoint { header_type } => write!(
                formatter,
                "header type {header_type:#x} is not an endpoint (type 0); bridges cannot be assigned"
            ),
            Self::InvalidBar { index, value } => write!(formatter, "BAR {index} is invalid ({value:#010x})"),
            Self::BarNotRestored { index } => write!(formatter, "BAR {index} changed across sizing"),
            Self::MalformedCapabilityList { pointer } => {
                write!(formatter, "malformed capability list at pointer {pointer:#04x}")
            }
            Self::DuplicateCapability { id } => write!(formatter, "second capability with ID {id:#04x}"),
        }
    }
}

/// BAR registers and their sizing masks, as found by [`size_bars`].
struct SizedBars {
    bars: [Bar; 6],
    values: [u32; 6],
    size_masks: [u32; 6],
}

/// The config-space offset of BAR register `index` (< 6).
fn bar_offset(index: usize) -> u16 {
    BAR0 + 4 * index as u16
}

/// Writes all-ones to one BAR register, reads what sticks, and puts the
/// original back: `(original, mask read)`.
fn size_register<C: ConfigSpace>(config: &mut C, index: usize) -> (u32, u32) {
    let offset = bar_offset(index);
    let original = config.read32(offset);
    config.write32(offset, u32::MAX);
    let mask = config.read32(offset);
    config.write32(offset, original);
    (original, mask)
}

/// The lowest set bit of a non-zero mask: the decoded size.
fn size_from_mask(address_mask: u64) -> u64 {
    address_mask & address_mask.wrapping_neg()
}

/// Sizes all six BAR registers (the caller has turned decoding off).
fn size_bars<C: ConfigSpace>(config: &mut C) -> Result<SizedBars, ProbeError> {
    let mut sized = SizedBars { bars: [Bar::Unused; 6], values: [0; 6], size_masks: [0; 6] };
    let mut index = 0;
    while index < 6 {
        let (value, mask) = size_register(config, index);
        sized.values[index] = value;
        let invalid = ProbeError::InvalidBar { index: index as u8, value };
        if value & BAR_IO_SPACE != 0 {
            let mut address_mask = mask & !BAR_IO_FLAGS;
            // Ports above 64 KiB need not be decoded: the upper half may read 0.
            if address_mask != 0 && address_mask >> 16 == 0 {
                address_mask |= 0xFFFF_0000;
            }
            if address_mask != 0 {
                let size_bytes = size_from_mask(u64::from(address_mask)) as u32;
                let address = value & !BAR_IO_FLAGS;
                if address & (size_bytes - 1) != 0 {
                    return Err(invalid);
                }
                sized.bars[index] = Bar::Io { address, size_bytes };
                sized.size_masks[index] = (!(size_bytes - 1) & !BAR_IO_FLAGS) | (value & BAR_IO_FLAGS);
            }
            index += 1;
            continue;
        }
        let is_64bit = match value & BAR_MEMORY_TYPE_MASK {
            BAR_MEMORY_TYPE_32 | BAR_MEMORY_TYPE_BELOW_1MIB => false,
            BAR_MEMORY_TYPE_64 if index < 5 => true,
            _ => return Err(invalid),
        };
        let (upper_value, upper_mask) = if is_64bit {
            let (upper_value, upper_mask) = size_register(config, index + 1);
            sized.values[index + 1] = upper_value;
            sized.bars[index + 1] = Bar::Upper64;
            (upper_value, upper_mask)
        } else {
            (0, 0)
        };
        let low_mask = mask & !BAR_MEMORY_FLAGS;
        let address_mask = if is_64bit {
            u64::from(upper_mask) << 32 | u64::from(low_mask)
        } else if low_mask != 0 {
            0xFFFF_FFFF_0000_0000 | u64::from(low_mask)
        } else {
            0
        };
        if address_mask != 0 {
            let size_bytes = size_from_mask(address_mask);
            let address = u64::from(upper_value) << 32 | u64::from(value & !BAR_MEMORY_FLAGS);
            // Aligned to its (power-of-two) size, so it cannot wrap either.
            if address & (size_bytes - 1) != 0 {
                return Err(invalid);
            }
            let prefetchable = value & BAR_PREFETCHABLE != 0;
            sized.bars[index] = Bar::Memory { address, size_bytes, is_64bit, prefetchable };
            let size_mask = !(size_bytes - 1);
            sized.size_masks[index] = (size_mask as u32 & !BAR_MEMORY_FLAGS) | (value & BAR_MEMORY_FLAGS);
            if is_64bit {
                sized.size_masks[index + 1] = (size_mask >> 32) as u32;
            }
        }
        index += if is_64bit { 2 } else { 1 };
    }
    Ok(sized)
}

/// The capability list as found by [`walk_capabilities`].
struct Capabilities {
    list: Vec<CapabilityInfo>,
    msi: Option<MsiCapability>,
    msix: Option<MsixCapability>,
    /// Bit n set: the dword at 0x40 + 4n belongs to MSI or MSI-X.
    hidden_dwords: u64,
}

/// Marks the dwords of `[offset, offset + length)` (clipped to 0x100) hidden.
fn hide(hidden_dwords: &mut u64, offset: u8, length_bytes: u8) {
    let start = u16::from(offset);
    let end = (start + u16::from(length_bytes)).min(EXTENDED_START);
    let mut dword = start & !3;
    while dword < end {
        if let Some(slot) = capability_slot(dword) {
            *hidden_dwords |= 1 << slot;
        }
        dword += 4;
    }
}

/// The slot (0..48) of a dword offset in the capability area, if it is in it.
pub(super) fn capability_slot(dword: u16) -> Option<u32> {
    if (CAPABILITIES_START..EXTENDED_START).contains(&dword) {
        Some(u32::from((dword - CAPABILITIES_START) / 4))
    } else {
        None
    }
}

/// Walks the capability list: at most [`MAX_CAPABILITIES`] entries, every
/// pointer at or above 0x40 and dword-aligned, none visited twice.
fn walk_capabilities<C: ConfigSpace>(config: &C, status: u16) -> Result<Capabilities, ProbeError> {
    let mut found = Capabilities { list: Vec::new(), msi: None, msix: None, hidden_dwords: 0 };
    if status & STATUS_CAPABILITIES_LIST == 0 {
        return Ok(found);
    }
    let mut pointer = config.read32(CAPABILITIES_POINTER) as u8;
    let mut visited: u64 = 0;
    for _ in 0..=MAX_CAPABILITIES {
        if pointer == 0 {
            return Ok(found);
        }
        let malformed = ProbeError::MalformedCapabilityList { pointer };
        let slot = match capability_slot(u16::from(pointer)) {
            Some(slot) if pointer % 4 == 0 => slot,
            _ => return Err(malformed),
        };
        if visited & (1 << slot) != 0 {
            return Err(malformed);
        }
        visited |= 1 << slot;
        let header = config.read32(u16::from(pointer));
        let id = header as u8;
        let control = (header >> 16) as u16;
        let hidden = id == CAPABILITY_MSI || id == CAPABILITY_MSIX;
        if id == CAPABILITY_MSI {
            if found.msi.is_some() {
                return Err(ProbeError::DuplicateCapability { id });
            }
            let msi = parse_msi(pointer, control);
            hide(&mut found.hidden_dwords, pointer, msi.length_bytes);
            found.msi = Some(msi);
        } else if id == CAPABILITY_MSIX {
            if found.msix.is_some() {
                return Err(ProbeError::DuplicateCapability { id });
            }
            let msix = parse_msix(config, pointer, control);
            hide(&mut found.hidden_dwords, pointer, MSIX_LENGTH_BYTES);
            found.msix = Some(msix);
        }
        found.list.push(CapabilityInfo { offset: pointer, id, hidden });
        pointer = (header >> 8) as u8;
    }
    // 48 slots and no slot twice: the loop above always returns before here.
    Err(ProbeError::MalformedCapabilityList { pointer })
}

/// The MSI capability at `offset` with message control `control`.
fn parse_msi(offset: u8, control: u16) -> MsiCapability {
    let is_64bit = control & (1 << 7) != 0;
    let per_vector_masking = control & (1 << 8) != 0;
    // Header and control (4), address (4 or 8), data (2), then with masking
    // 2 reserved, mask (4) and pending (4).
    let length_bytes = 10 + if is_64bit { 4 } else { 0 } + if per_vector_masking { 10 } else { 0 };
    MsiCapability { offset, length_bytes, is_64bit, per_vector_masking, enabled: control & 1 != 0 }
}

/// The MSI-X capability at `offset` with message control `control`.
fn parse_msix<C: ConfigSpace>(config: &C, offset: u8, control: u16) -> MsixCapability {
    let table_entries = (control & 0x7FF) + 1;
    let table_register = config.read32(u16::from(offset) + 4);
    let pending_register = config.read32(u16::from(offset) + 8);
    MsixCapability {
        offset,
        table_entries,
        table: MsixRegion {
            bar_index: (table_register & 7) as u8,
            offset_bytes: table_register & !7,
            size_bytes: u32::from(table_entries) * 16,
        },
        pending_bit_array: MsixRegion {
            bar_index: (pending_register & 7) as u8,
            offset_bytes: pending_register & !7,
            size_bytes: u32::from(table_entries).div_ceil(64) * 8,
        },
        enabled: control & (1 << 15) != 0,
    }
}

impl<C: ConfigSpace> AssignedFunction<C> {
    /// Probes the function at `bdf` through `config`, once, when it is
    /// assigned: refuses anything but an endpoint, sizes each BAR itself
    /// (decoding off in the command register meanwhile; the BARs and the
    /// command register are restored and checked), and walks the capability
    /// list. The interrupt line starts as the device reports it; set it with
    /// [`AssignedFunction::set_interrupt_line`].
    pub fn probe(bdf: Bdf, mut config: C) -> Result<Self, ProbeError> {
        let identity = config.read32(VENDOR_DEVICE);
        let vendor_id = identity as u16;
        if vendor_id == 0xFFFF || vendor_id == 0 {
            return Err(ProbeError::NoFunction);
        }
        let header_type = (config.read32(HEADER_TYPE_DWORD) >> 16) as u8 & HEADER_LAYOUT_MASK;
        if header_type != 0 {
            return Err(ProbeError::NotAnEndpoint { header_type });
        }

        let command_status = config.read32(COMMAND_STATUS);
        let command = command_status as u16;
        let decode = COMMAND_IO_DECODE | COMMAND_MEMORY_DECODE;
        // The status half is written as zero: its error bits are
        // write-1-to-clear, so this leaves them as they are.
        if command & decode != 0 {
            config.write32(COMMAND_STATUS, u32::from(command & !decode));
        }
        let sized = size_bars(&mut config);
        if command & decode != 0 {
            config.write32(COMMAND_STATUS, u32::from(command));
        }
        let sized = sized?;
        for (index, value) in sized.values.iter().enumerate() {
            if config.read32(bar_offset(index)) != *value {
                return Err(ProbeError::BarNotRestored { index: index as u8 });
            }
        }

        let capabilities = walk_capabilities(&config, (command_status >> 16) as u16)?;
        let interrupt_line = config.read32(INTERRUPT) as u8;
        Ok(Self {
            config,
            bdf,
            vendor_id,
            device_id: (identity >> 16) as u16,
            bars: sized.bars,
            bar_values: sized.values,
            bar_size_masks: sized.size_masks,
            bar_sizing: [false; 6],
            capabilities: capabilities.list,
            hidden_dwords: capabilities.hidden_dwords,
            msi: capabilities.msi,
            msix: capabilities.msix,
            interrupt_line,
            counters: FilterCounters::default(),
        })
    }
}
