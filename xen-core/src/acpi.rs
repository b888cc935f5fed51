//! ACPI table reader for boot: finds the RSDP, walks the RSDT/XSDT and
//! extracts what the hypervisor needs (the MADT's interrupt controllers and
//! CPUs, the MCFG's PCI ECAM regions).
//!
//! Firmware tables are treated as untrusted input: every read goes through
//! [`PhysicalMemory`] into a small stack buffer, every field is fetched with a
//! bounds-checked helper, every length is capped and every checksum checked,
//! so garbled or hostile firmware yields an [`AcpiError`], never a panic.
//! Nothing here allocates; results live in fixed-capacity `heapless::Vec`s.

use heapless::Vec;

mod error;
mod madt;
mod mcfg;

pub use error::AcpiError;
pub use madt::{InterruptOverride, IoApic, LocalApic, LocalApicNmi, Madt, Polarity, Trigger};
pub use mcfg::PciConfigRegion;

/// Read-only access to physical memory, supplied by the arch layer.
pub trait PhysicalMemory {
    /// Copies `buffer.len()` bytes starting at physical address `address`; Err if the range is not readable RAM/ROM.
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), AcpiError>;
}

const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";
/// Bytes covered by the ACPI 1.0 checksum.
const RSDP_V1_LENGTH: usize = 20;
/// Size of the ACPI 2.0+ RSDP structure.
const RSDP_V2_LENGTH: usize = 36;
const RSDP_MAX_LENGTH: u32 = 4096;
const SDT_HEADER_LENGTH: usize = 36;
/// No table we accept is longer than this; real ones are a few KiB.
const MAX_TABLE_LENGTH: u32 = 64 * 1024;
/// Root-table entries looked at; further ones are logged and ignored.
const MAX_ROOT_ENTRIES: usize = 64;
/// Where the BIOS data area keeps the EBDA's real-mode segment.
const EBDA_POINTER_ADDRESS: u64 = 0x40E;
const EBDA_SEARCH_LENGTH: u64 = 1024;
/// The EBDA lies above the BIOS data area and ends below the 640 KiB video hole.
const EBDA_PLAUSIBLE: core::ops::Range<u64> = 0x500..0xA_0000;
const BIOS_AREA: core::ops::Range<u64> = 0xE_0000..0x10_0000;
const RSDP_ALIGNMENT: u64 = 16;

// ---- bounds-checked little-endian field access -------------------------------------------

/// `N` bytes at `offset`, or `None` if they are not all inside `bytes`.
fn u8_at(bytes: &[u8], offset: usize) -> Option<u8> {
    bytes.get(offset).copied()
}

use xen_abi::bytes::{field, get_u16 as u16_at, get_u32 as u32_at, get_u64 as u64_at};

/// Reads `buffer.len()` bytes at `base + offset`, refusing ranges that wrap.
fn read_at(
    memory: &impl PhysicalMemory,
    base: u64,
    offset: u64,
    buffer: &mut [u8],
) -> Result<(), AcpiError> {
    let unreadable = AcpiError::Unreadable {
        address: base.wrapping_add(offset),
        length: buffer.len(),
    };
    let address = base.checked_add(offset).ok_or(unreadable)?;
    address.checked_add(buffer.len() as u64).ok_or(unreadable)?;
    memory.read(address, buffer)
}

/// The byte sum of `length` bytes at `address`, read in small chunks.
fn byte_sum(memory: &impl PhysicalMemory, address: u64, length: usize) -> Result<u8, AcpiError> {
    let mut chunk = [0u8; 128];
    let mut sum = 0u8;
    let mut done = 0usize;
    while done < length {
        let size = (length - done).min(chunk.len());
        let part = chunk
            .get_mut(..size)
            .ok_or(AcpiError::Unreadable { address, length })?;
        read_at(memory, address, done as u64, part)?;
        sum = part
            .iter()
            .fold(sum, |total, &byte| total.wrapping_add(byte));
        done += size;
    }
    Ok(sum)
}

// ---- RSDP ---------------------------------------------------------------------------------

/// The fields of a validated RSDP.
#[derive(Debug, Clone, Copy)]
struct Rsdp {
    revision: u8,
    oem_id: [u8; 6],
    rsdt_address: u32,
    /// Only for revision >= 2 and when non-zero.
    xsdt_address: Option<u64>,
}

/// Reads and fully validates the RSDP at `address`.
fn read_rsdp(memory: &impl PhysicalMemory, address: u64) -> Result<Rsdp, AcpiError> {
    let mut bytes = [0u8; RSDP_V2_LENGTH];
    let (first, _) = bytes.split_at_mut(RSDP_V1_LENGTH);
    read_at(memory, address, 0, first)?;
    if field::<8>(&bytes, 0).as_ref() != Some(RSDP_SIGNATURE) {
        return Err(AcpiError::RsdpSignature { address });
    }
    if byte_sum(memory, address, RSDP_V1_LENGTH)? != 0 {
        return Err(AcpiError::RsdpChecksum {
            address,
            extended: false,
        });
    }
    // The fixed offsets below lie inside `bytes`; this error cannot occur.
    let malformed = AcpiError::RsdpSignature { address };
    let revision = u8_at(&bytes, 15).ok_or(malformed)?;
    let oem_id = field::<6>(&bytes, 9).ok_or(malformed)?;
    let rsdt_address = u32_at(&bytes, 16).ok_or(malformed)?;
    let mut xsdt_address = None;
    if revision >= 2 {
        read_at(memory, address, 0, &mut bytes)?;
        let length = u32_at(&bytes, 20).ok_or(malformed)?;
        if !(RSDP_V2_LENGTH as u32..=RSDP_MAX_LENGTH).contains(&length) {
            return Err(AcpiError::RsdpLength { address, length });
        }
        if byte_sum(memory, address, length as usize)? != 0 {
            return Err(AcpiError::RsdpChecksum {
                address,
                extended: true,
            });
        }
        xsdt_address = u64_at(&bytes, 24).filter(|&xsdt| xsdt != 0);
    }
    Ok(Rsdp {
        revision,
        oem_id,
        rsdt_address,
        xsdt_address,
    })
}

/// Scans `[start, end)` on 16-byte boundaries for a valid RSDP. A candidate
/// with the right signature but bad contents is remembered in `first_error`.
fn scan_for_rsdp(
    memory: &impl PhysicalMemory,
    start: u64,
    end: u64,
    first_error: &mut Option<AcpiError>,
) -> Option<u64> {
    let mut address = start;
    while address < end {
        let mut signature = [0u8; 8];
        if memory.read(address, &mut signature).is_ok() && &signature == RSDP_SIGNATURE {
            match read_rsdp(memory, address) {
                Ok(_) => return Some(address),
                Err(error) => {
                    log::warn!("{error}; searching on");
                    first_error.get_or_insert(error);
                }
            }
        }
        address += RSDP_ALIGNMENT;
    }
    None
}

/// Finds the RSDP the way a BIOS-booted OS does: the first KiB of the EBDA,
/// then 0xE0000..0x100000, on 16-byte boundaries.
///
/// Returns the RSDP's physical address. If no valid RSDP exists, the error is
/// that of the first candidate that had the signature but failed validation,
/// or [`AcpiError::RsdpNotFound`].
pub fn find_rsdp(memory: &impl PhysicalMemory) -> Result<u64, AcpiError> {
    let mut first_error = None;
    let mut segment = [0u8; 2];
    if memory.read(EBDA_POINTER_ADDRESS, &mut segment).is_ok() {
        let ebda = u64::from(u16::from_le_bytes(segment)) << 4;
        let plausible =
            EBDA_PLAUSIBLE.contains(&ebda) && ebda + EBDA_SEARCH_LENGTH <= EBDA_PLAUSIBLE.end;
        if plausible {
            if let Some(found) =
                scan_for_rsdp(memory, ebda, ebda + EBDA_SEARCH_LENGTH, &mut first_error)
            {
                return Ok(found);
            }
        } else if ebda != 0 {
            log::warn!("ACPI: implausible EBDA address {ebda:#x}, skipping it");
        }
    }
    scan_for_rsdp(memory, BIOS_AREA.start, BIOS_AREA.end, &mut first_error)
        .ok_or(first_error.unwrap_or(AcpiError::RsdpNotFound))
}

// ---- system description tables -----------------------------------------------------------

/// A table whose header has been validated: signature, length bounds, checksum.
#[derive(Debug, Clone, Copy)]
struct Table {
    address: u64,
    signature: [u8; 4],
    length: usize,
}

impl Table {
    /// Reads the header at `address` and validates the table: its length is
    /// within 36..=64 KiB and its bytes sum to zero.
    fn open(memory: &impl PhysicalMemory, address: u64) -> Result<Self, AcpiError> {
        let mut header = [0u8; SDT_HEADER_LENGTH];
        read_at(memory, address, 0, &mut header)?;
        let signature =
            field::<4>(&header, 0).ok_or(AcpiError::Unreadable { address, length: 4 })?;
        let length = u32_at(&header, 4).ok_or(AcpiError::Unreadable { address, length: 8 })?;
        if (length as usize) < SDT_HEADER_LENGTH || length > MAX_TABLE_LENGTH {
            return Err(AcpiError::TableLength {
                signature,
                address,
                length,
            });
        }
        if byte_sum(memory, address, length as usize)? != 0 {
            return Err(AcpiError::TableChecksum { signature, address });
        }
        Ok(Self {
            address,
            signature,
            length: length as usize,
        })
    }

    /// Reads bytes at `offset` into `buffer`; the range must lie inside the table.
    fn read(
        &self,
        memory: &impl PhysicalMemory,
        offset: usize,
        buffer: &mut [u8],
    ) -> Result<(), AcpiError> {
        let inside = offset
            .checked_add(buffer.len())
            .is_some_and(|end| end <= self.length);
        if !inside {
            return Err(self.malformed(offset, buffer.len()));
        }
        read_at(memory, self.address, offset as u64, buffer)
    }

    /// Fails unless the table holds at least `minimum` bytes (its fixed fields).
    fn require_length(&self, minimum: usize) -> Result<(), AcpiError> {
        if self.length < minimum {
            let (signature, address, length) = (self.signature, self.address, self.length as u32);
            return Err(AcpiError::TableLength {
                signature,
                address,
                length,
            });
        }
        Ok(())
    }

    fn malformed(&self, offset: usize, length: usize) -> AcpiError {
        AcpiError::MalformedEntry {
            signature: self.signature,
            address: self.address,
            offset,
            length,
        }
    }

    fn invalid(&self, offset: usize, reason: &'static str) -> AcpiError {
        AcpiError::InvalidField {
            signature: self.signature,
            address: self.address,
            offset,
            reason,
        }
    }
}

/// One entry's bytes, with field accessors that report a too-short entry.
struct Entry<'a> {
    bytes: &'a [u8],
    table: &'a Table,
    offset: usize,
}

impl Entry<'_> {
    fn truncated(&self) -> AcpiError {
        self.table.malformed(self.offset, self.bytes.len())
    }
    fn u8(&self, at: usize) -> Result<u8, AcpiError> {
        u8_at(self.bytes, at).ok_or_else(|| self.truncated())
    }
    fn u16(&self, at: usize) -> Result<u16, AcpiError> {
        u16_at(self.bytes, at).ok_or_else(|| self.truncated())
    }
    fn u32(&self, at: usize) -> Result<u32, AcpiError> {
        u32_at(self.bytes, at).ok_or_else(|| self.truncated())
    }
    fn u64(&self, at: usize) -> Result<u64, AcpiError> {
        u64_at(self.bytes, at).ok_or_else(|| self.truncated())
    }
}

/// Appends `item` unless `list` is full; full lists count what they drop so
/// that each overflow is logged once, with a total.
fn push_counting<T, const N: usize>(list: &mut Vec<T, N>, item: T, dropped: &mut usize) {
    if list.push(item).is_err() {
        *dropped += 1;
    }
}

fn warn_dropped(dropped: usize, capacity: usize, what: &str) {
    if dropped > 0 {
        log::warn!("ACPI: {dropped} {what} beyond the first {capacity} ignored");
    }
}

// ---- results ------------------------------------------------------------------------------

/// Everything the hypervisor takes from the ACPI tables at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiInfo {
    /// The RSDP revision: 0 for ACPI 1.0, 2 for ACPI 2.0 and later.
    pub revision: u8,
    /// The OEM id from the RSDP.
    pub oem_id: [u8; 6],
    /// Signatures of the valid tables the root table lists, in order (for the boot log).
    pub tables: Vec<[u8; 4], 32>,
    /// The interrupt controller description, if the firmware has a MADT.
    pub madt: Option<Madt>,
    /// PCI Express ECAM regions from the MCFG (empty without one).
    pub pci_config_regions: Vec<PciConfigRegion, 4>,
}

// ---- parsing ------------------------------------------------------------------------------

/// Reads every table reachable from the RSDP at `rsdp_address` (as found by
/// [`find_rsdp`], or handed over by a boot loader).
///
/// Uses the XSDT when the RSDP revision is >= 2 and the XSDT address is
/// non-zero, else the RSDT. The RSDP, the root table, the MADT and the MCFG
/// must be fully valid or this returns an error; any other table whose header
/// fails validation is logged and left out of [`AcpiInfo::tables`], since we
/// do not use it.
pub fn parse(memory: &impl PhysicalMemory, rsdp_address: u64) -> Result<AcpiInfo, AcpiError> {
    let rsdp = read_rsdp(memory, rsdp_address)?;
    let (root_address, expected, entry_size) = match rsdp.xsdt_address {
        Some(xsdt) => (xsdt, *b"XSDT", 8),
        None => (u64::from(rsdp.rsdt_address), *b"RSDT", 4),
    };
    let root = Table::open(memory, root_address)?;
    if root.signature != expected {
        return Err(AcpiError::SignatureMismatch {
            address: root_address,
            expected,
            found: root.signature,
        });
    }
    let mut info = AcpiInfo {
        revision: rsdp.revision,
        oem_id: rsdp.oem_id,
        tables: Vec::new(),
        madt: None,
        pci_config_regions: Vec::new(),
    };
    let entry_count = (root.length - SDT_HEADER_LENGTH) / entry_size;
    if entry_count > MAX_ROOT_ENTRIES {
        log::warn!(
            "ACPI: root table lists {entry_count} tables; reading the first {MAX_ROOT_ENTRIES}"
        );
    }
    let mut mcfg_seen = false;
    let (mut tables_dropped, mut regions_dropped) = (0, 0);
    for index in 0..entry_count.min(MAX_ROOT_ENTRIES) {
        let address = root_entry(
            memory,
            &root,
            SDT_HEADER_LENGTH + index * entry_size,
            entry_size,
        )?;
        if address == 0 {
            log::warn!("ACPI: root table entry {index} is null; skipping it");
            continue;
        }
        let table = match Table::open(memory, address) {
            Ok(table) => table,
            Err(error) if matches!(&peek_signature(memory, address), b"APIC" | b"MCFG") => {
                return Err(error)
            }
            Err(error) => {
                log::warn!("{error}; ignoring that table");
                continue;
            }
        };
        push_counting(&mut info.tables, table.signature, &mut tables_dropped);
        match &table.signature {
            b"APIC" if info.madt.is_some() => {
                log::warn!("ACPI: second MADT at {address:#x} ignored")
            }
            b"APIC" => info.madt = Some(madt::parse(memory, &table)?),
            b"MCFG" if mcfg_seen => log::warn!("ACPI: second MCFG at {address:#x} ignored"),
            b"MCFG" => {
                mcfg_seen = true;
                mcfg::parse(
                    memory,
                    &table,
                    &mut info.pci_config_regions,
                    &mut regions_dropped,
                )?;
            }
            _ => {}
        }
    }
    warn_dropped(tables_dropped, info.tables.capacity(), "table signatures");
    warn_dropped(
        regions_dropped,
        info.pci_config_regions.capacity(),
        "PCI config regions",
    );
    Ok(info)
}

/// The table address stored `entry_size` (4 for the RSDT, 8 for the XSDT)
/// bytes wide at `offset` of the root table.
fn root_entry(
    memory: &impl PhysicalMemory,
    root: &Table,
    offset: usize,
    entry_size: usize,
) -> Result<u64, AcpiError> {
    let mut bytes = [0u8; 8];
    let pointer = bytes
        .get_mut(..entry_size)
        .ok_or(root.malformed(offset, entry_size))?;
    root.read(memory, offset, pointer)?;
    Ok(u64::from_le_bytes(bytes))
}

/// The signature at `address`, or zeros if unreadable: only used to decide
/// whether an invalid table is one we need.
fn peek_signature(memory: &impl PhysicalMemory, address: u64) -> [u8; 4] {
    let mut signature = [0u8; 4];
    if memory.read(address, &mut signature).is_err() {
        return [0; 4];
    }
    signature
}

#[cfg(test)]
mod tests;
