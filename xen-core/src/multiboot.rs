//! The multiboot1 information a loader hands over: flags, command line,
//! modules and the BIOS memory map. The arch layer copies the raw bytes out
//! of physical memory; this module parses them, trusting nothing about their
//! lengths.

/// The value a multiboot1 loader leaves in EAX.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;

/// Bytes of the fixed information structure this parser reads.
pub const INFO_SIZE: usize = 88;
/// Bytes of one module entry.
pub const MODULE_ENTRY_SIZE: usize = 16;
/// The most memory-map bytes the parser will look at.
pub const MAX_MEMORY_MAP_BYTES: usize = 4096;
/// The most modules the parser will look at.
pub const MAX_MODULES: usize = 16;

/// What was wrong with the multiboot information.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultibootError {
    /// EAX did not hold the multiboot1 magic.
    BadMagic(u32),
    /// The information structure is shorter than [`INFO_SIZE`].
    Truncated,
    /// The loader gave no memory map (flags bit 6 clear).
    NoMemoryMap,
    /// A memory-map entry's size field runs past the map or is too small.
    BadMemoryMapEntry {
        /// Byte offset of the entry in the map.
        offset: usize,
    },
    /// A module's end is before its start.
    BadModule {
        /// Index of the module.
        index: usize,
    },
}

impl core::fmt::Display for MultibootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MultibootError::BadMagic(magic) => {
                write!(f, "not started by a multiboot1 loader (eax={magic:#x})")
            }
            MultibootError::Truncated => write!(f, "multiboot information truncated"),
            MultibootError::NoMemoryMap => write!(f, "the loader passed no memory map"),
            MultibootError::BadMemoryMapEntry { offset } => {
                write!(f, "malformed memory-map entry at byte {offset}")
            }
            MultibootError::BadModule { index } => write!(f, "module {index} ends before it starts"),
        }
    }
}

use xen_abi::bytes::{get_u32 as u32_at, get_u64 as u64_at};

/// The fixed part of the multiboot information.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// Which fields are valid.
    pub flags: u32,
    /// Physical address of the NUL-terminated command line, if any.
    pub command_line: Option<u32>,
    /// Physical address and count of the module entries, if any.
    pub modules: Option<(u32, u32)>,
    /// Physical address and length in bytes of the memory map.
    pub memory_map: (u32, u32),
    /// Physical address of the loader's name, if any.
    pub loader_name: Option<u32>,
}

impl Info {
    /// Parses the fixed structure, given the magic from EAX.
    pub fn parse(magic: u32, bytes: &[u8]) -> Result<Info, MultibootError> {
        if magic != BOOTLOADER_MAGIC {
            return Err(MultibootError::BadMagic(magic));
        }
        let field = |offset| u32_at(bytes, offset).ok_or(MultibootError::Truncated);
        let flags = field(0)?;
        let has = |bit: u32| flags & (1 << bit) != 0;
        if !has(6) {
            return Err(MultibootError::NoMemoryMap);
        }
        Ok(Info {
            flags,
            command_line: if has(2) { Some(field(16)?) } else { None },
            modules: if has(3) { Some((field(24)?, field(20)?)) } else { None },
            memory_map: (field(48)?, field(44)?),
            loader_name: if has(9) { Some(field(64)?) } else { None },
        })
    }
}

/// The BIOS (e820) kinds of memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// Free RAM.
    Available,
    /// ACPI tables, reclaimable once parsed.
    AcpiReclaimable,
    /// ACPI non-volatile storage.
    AcpiNvs,
    /// Bad RAM.
    Defective,
    /// Anything else: reserved.
    Reserved(u32),
}

impl RegionKind {
    fn from_code(code: u32) -> RegionKind {
        match code {
            1 => RegionKind::Available,
            3 => RegionKind::AcpiReclaimable,
            4 => RegionKind::AcpiNvs,
            5 => RegionKind::Defective,
            other => RegionKind::Reserved(other),
        }
    }
}

/// One entry of the memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// First physical byte.
    pub start: u64,
    /// Length in bytes.
    pub length: u64,
    /// What the firmware says it is.
    pub kind: RegionKind,
}

impl MemoryRegion {
    /// One past the last byte, saturating at the top of the address space.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.length)
    }
}

/// Walks the memory map's variable-size entries (`size` does not count
/// itself). Stops at the first malformed entry, reporting it.
pub fn memory_map(bytes: &[u8]) -> impl Iterator<Item = Result<MemoryRegion, MultibootError>> + '_ {
    let bytes = bytes.get(..bytes.len().min(MAX_MEMORY_MAP_BYTES)).unwrap_or(&[]);
    let mut offset = 0usize;
    let mut failed = false;
    core::iter::from_fn(move || {
        if failed || offset >= bytes.len() {
            return None;
        }
        let entry = (|| {
            let size = u32_at(bytes, offset)? as usize;
            if size < 20 {
                return None;
            }
            let next = offset.checked_add(4)?.checked_add(size)?;
            if next > bytes.len() {
                return None;
            }
            let region = MemoryRegion {
                start: u64_at(bytes, offset + 4)?,
                length: u64_at(bytes, offset + 12)?,
                kind: RegionKind::from_code(u32_at(bytes, offset + 20)?),
            };
            Some((region, next))
        })();
        match entry {
            Some((region, next)) => {
                offset = next;
                Some(Ok(region))
            }
            None => {
                failed = true;
                Some(Err(MultibootError::BadMemoryMapEntry { offset }))
            }
        }
    })
}

/// One boot module: where it lies and where its string is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    /// First physical byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
    /// Physical address of its NUL-terminated string (0 if none).
    pub string: u32,
}

/// Parses the module entries (at most [`MAX_MODULES`]).
pub fn modules(bytes: &[u8]) -> impl Iterator<Item = Result<Module, MultibootError>> + '_ {
    bytes
        .chunks_exact(MODULE_ENTRY_SIZE)
        .take(MAX_MODULES)
        .enumerate()
        .map(|(index, entry)| {
            let field = |offset| u32_at(entry, offset).unwrap_or(0);
            let module = Module { start: field(0), end: field(4), string: field(8) };
            if module.end < module.start {
                Err(MultibootError::BadModule { index })
            } else {
                Ok(module)
            }
        })
}

/// The text of a NUL-terminated string copied out of memory: up to the first
/// NUL, and only if it is UTF-8.
pub fn c_string(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().position(|&byte| byte == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_bytes(flags: u32) -> [u8; INFO_SIZE] {
        let mut bytes = [0u8; INFO_SIZE];
        bytes[0..4].copy_from_slice(&flags.to_le_bytes());
        bytes[16..20].copy_from_slice(&0x9000u32.to_le_bytes());
        bytes[20..24].copy_from_slice(&2u32.to_le_bytes());
        bytes[24..28].copy_from_slice(&0xa000u32.to_le_bytes());
        bytes[44..48].copy_from_slice(&48u32.to_le_bytes());
        bytes[48..52].copy_from_slice(&0xb000u32.to_le_bytes());
        bytes
    }

    fn map_entry(start: u64, length: u64, kind: u32) -> [u8; 24] {
        let mut entry = [0u8; 24];
        entry[0..4].copy_from_slice(&20u32.to_le_bytes());
        entry[4..12].copy_from_slice(&start.to_le_bytes());
        entry[12..20].copy_from_slice(&length.to_le_bytes());
        entry[20..24].copy_from_slice(&kind.to_le_bytes());
        entry
    }

    #[test]
    fn parses_fields_by_flag() {
        let info = Info::parse(BOOTLOADER_MAGIC, &info_bytes(0b100_0100)).unwrap();
        assert_eq!(info.command_line, Some(0x9000));
        assert_eq!(info.modules, None);
        assert_eq!(info.memory_map, (0xb000, 48));
        let info = Info::parse(BOOTLOADER_MAGIC, &info_bytes(0b100_1100)).unwrap();
        assert_eq!(info.modules, Some((0xa000, 2)));
    }

    #[test]
    fn rejects_bad_magic_truncation_and_missing_map() {
        assert_eq!(Info::parse(0x1234, &info_bytes(0x40)), Err(MultibootError::BadMagic(0x1234)));
        assert_eq!(Info::parse(BOOTLOADER_MAGIC, &[0x40, 0, 0, 0]), Err(MultibootError::Truncated));
        assert_eq!(Info::parse(BOOTLOADER_MAGIC, &info_bytes(0)), Err(MultibootError::NoMemoryMap));
    }

    #[test]
    fn walks_memory_map() {
        let mut bytes = [0u8; 48];
        bytes[..24].copy_from_slice(&map_entry(0, 0x9fc00, 1));
        bytes[24..].copy_from_slice(&map_entry(0xfeffc000, 0x4000, 2));
        let regions: Vec<_> = memory_map(&bytes).collect();
        assert_eq!(
            regions,
            vec![
                Ok(MemoryRegion { start: 0, length: 0x9fc00, kind: RegionKind::Available }),
                Ok(MemoryRegion { start: 0xfeffc000, length: 0x4000, kind: RegionKind::Reserved(2) }),
            ]
        );
    }

    #[test]
    fn malformed_map_entry_stops_the_walk() {
        let mut bytes = [0u8; 48];
        bytes[..24].copy_from_slice(&map_entry(0, 0x1000, 1));
        bytes[24..28].copy_from_slice(&1000u32.to_le_bytes());
        let regions: Vec<_> = memory_map(&bytes).collect();
        assert_eq!(regions.len(), 2);
        assert_eq!(regions[1], Err(MultibootError::BadMemoryMapEntry { offset: 24 }));
        // A size too small to hold an entry is malformed too.
        let mut bytes = [0u8; 24];
        bytes[0..4].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(memory_map(&bytes).next(), Some(Err(MultibootError::BadMemoryMapEntry { offset: 0 })));
    }

    #[test]
    fn region_end_saturates() {
        let region = MemoryRegion { start: u64::MAX - 1, length: 10, kind: RegionKind::Available };
        assert_eq!(region.end(), u64::MAX);
    }

    #[test]
    fn modules_and_strings() {
        let mut bytes = [0u8; 32];
        bytes[0..4].copy_from_slice(&0x200000u32.to_le_bytes());
        bytes[4..8].copy_from_slice(&0x201000u32.to_le_bytes());
        bytes[16..20].copy_from_slice(&0x300000u32.to_le_bytes());
        bytes[20..24].copy_from_slice(&0x2fffffu32.to_le_bytes());
        let parsed: Vec<_> = modules(&bytes).collect();
        assert_eq!(parsed[0], Ok(Module { start: 0x200000, end: 0x201000, string: 0 }));
        assert_eq!(parsed[1], Err(MultibootError::BadModule { index: 1 }));
        assert_eq!(c_string(b"bundle arg\0junk"), Some("bundle arg"));
        assert_eq!(c_string(b"no terminator"), Some("no terminator"));
        assert_eq!(c_string(b"\xff\0"), None);
    }
}
