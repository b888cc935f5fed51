//! The domain-kernel loader's logic: validate an ELF64 image against a
//! domain's RAM window and produce a [`LoadPlan`] — which file bytes go to
//! which guest address, how much to zero, and with which permissions to map
//! each page. The image is untrusted (the control domain hands new ones in
//! at run time), so everything is checked with checked arithmetic, and the
//! plan upholds W^X for domains too. Copying and mapping are the caller's.

use core::fmt;

use xen_abi::layout::{
    IMAGE_OFFSET, MAX_RAM_BYTES, MIN_RAM_BYTES, PAGE_SIZE, RAM_BASE, STACK_BYTES,
};

mod error;

pub use error::ElfError;

#[cfg(test)]
pub(crate) mod test_image;
#[cfg(test)]
mod tests;

/// Most program headers an image may have (and so most segments).
pub const MAX_PROGRAM_HEADERS: usize = 16;

/// ELF constants this loader reads.
pub mod constants {
    /// Bytes of the ELF64 file header.
    pub const FILE_HEADER_SIZE: usize = 64;
    /// Bytes of one ELF64 program header.
    pub const PROGRAM_HEADER_SIZE: u16 = 56;
    /// `\x7fELF`.
    pub const MAGIC: [u8; 4] = *b"\x7fELF";
    /// `EI_CLASS` value for 64-bit objects.
    pub const CLASS_64: u8 = 2;
    /// `EI_DATA` value for little-endian objects.
    pub const DATA_LITTLE_ENDIAN: u8 = 1;
    /// `EV_CURRENT`.
    pub const VERSION_CURRENT: u32 = 1;
    /// `ET_EXEC`: a fixed-address executable.
    pub const TYPE_EXECUTABLE: u16 = 2;
    /// `ET_DYN`: a shared object or position-independent executable.
    pub const TYPE_DYNAMIC: u16 = 3;
    /// `EM_X86_64`.
    pub const MACHINE_X86_64: u16 = 62;
    /// `PT_LOAD`.
    pub const SEGMENT_LOAD: u32 = 1;
    /// `PT_DYNAMIC`.
    pub const SEGMENT_DYNAMIC: u32 = 2;
    /// `PT_INTERP`.
    pub const SEGMENT_INTERPRETER: u32 = 3;
    /// `PT_TLS`.
    pub const SEGMENT_TLS: u32 = 7;
    /// `PF_X`.
    pub const FLAG_EXECUTE: u32 = 1;
    /// `PF_W`.
    pub const FLAG_WRITE: u32 = 2;
    /// `PF_R`.
    pub const FLAG_READ: u32 = 4;
}

use constants::*;

/// One loadable segment: copy `file_size` bytes from `file_offset` of the
/// image to `guest_address`, zero up to `memory_size`, and map the pages it
/// touches with its permissions (always readable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// Guest virtual address of the segment's first byte.
    pub guest_address: u64,
    /// Offset of the segment's bytes in the image.
    pub file_offset: u64,
    /// Bytes to copy from the image.
    pub file_size: u64,
    /// Bytes the segment occupies in memory (the rest is zeroed).
    pub memory_size: u64,
    /// Map its pages writable.
    pub writable: bool,
    /// Map its pages executable.
    pub executable: bool,
}

impl LoadSegment {
    /// The first byte after the segment.
    pub fn end(&self) -> u64 {
        self.guest_address + self.memory_size
    }

    /// The first page the segment touches and the first page after it.
    fn pages(&self) -> (u64, u64) {
        (align_down(self.guest_address), align_up(self.end()))
    }
}

/// How to load an image: its segments (in program-header order, non-empty,
/// non-overlapping, inside the RAM window) and its entry point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// The first instruction (inside an executable segment).
    pub entry: u64,
    /// The segments to load.
    pub segments: heapless::Vec<LoadSegment, MAX_PROGRAM_HEADERS>,
    /// The first byte after the highest segment, rounded up to a page.
    pub image_end: u64,
}

/// The guest addresses loadable segments may occupy in a domain with
/// `ram_bytes` of RAM: from [`IMAGE_OFFSET`] into RAM up to the stack the
/// builder leaves at its top. Empty if RAM is too small.
pub fn load_window(ram_bytes: u64) -> (u64, u64) {
    let start = RAM_BASE + IMAGE_OFFSET;
    let end = RAM_BASE.saturating_add(ram_bytes.saturating_sub(STACK_BYTES));
    (start, end.max(start))
}

/// Validates `image` for a domain with `ram_bytes` of RAM and returns how
/// to load it, or the first problem found.
pub fn plan(image: &[u8], ram_bytes: u64) -> Result<LoadPlan, ElfError> {
    if !(MIN_RAM_BYTES..=MAX_RAM_BYTES).contains(&ram_bytes) || ram_bytes % PAGE_SIZE != 0 {
        return Err(ElfError::RamSize { ram_bytes });
    }
    let header = image.get(..FILE_HEADER_SIZE).ok_or(ElfError::TooShort {
        length: image.len(),
    })?;
    check_file_header(header)?;
    let entry = u64_at(header, 24);
    let program_header_offset = u64_at(header, 32);
    let program_header_size = u16_at(header, 54);
    let program_header_count = u16_at(header, 56);
    if program_header_size != PROGRAM_HEADER_SIZE {
        return Err(ElfError::ProgramHeaderSize {
            size: program_header_size,
        });
    }
    if usize::from(program_header_count) > MAX_PROGRAM_HEADERS {
        return Err(ElfError::TooManyProgramHeaders {
            count: program_header_count,
        });
    }
    let table_bytes = u64::from(program_header_count) * u64::from(PROGRAM_HEADER_SIZE);
    let table = program_header_offset
        .checked_add(table_bytes)
        .and_then(|end| {
            image.get(usize::try_from(program_header_offset).ok()?..usize::try_from(end).ok()?)
        })
        .ok_or(ElfError::ProgramHeadersOutOfRange {
            offset: program_header_offset,
            count: program_header_count,
            image_length: image.len() as u64,
        })?;

    let window = load_window(ram_bytes);
    // Each loadable segment with its program header index, for messages.
    let mut indexed: heapless::Vec<(usize, LoadSegment), MAX_PROGRAM_HEADERS> =
        heapless::Vec::new();
    let mut any_load = false;
    for (index, entry_bytes) in table
        .chunks_exact(usize::from(PROGRAM_HEADER_SIZE))
        .enumerate()
    {
        let Some(segment) = check_program_header(index, entry_bytes, image.len() as u64, window)?
        else {
            continue;
        };
        any_load = true;
        if segment.memory_size == 0 {
            continue;
        }
        check_against_earlier(index, &segment, &indexed)?;
        // At most MAX_PROGRAM_HEADERS headers, so at most that many segments.
        indexed
            .push((index, segment))
            .map_err(|_| ElfError::TooManyProgramHeaders {
                count: program_header_count,
            })?;
    }
    let segments: heapless::Vec<LoadSegment, MAX_PROGRAM_HEADERS> =
        indexed.iter().map(|&(_, segment)| segment).collect();
    if !any_load || segments.is_empty() {
        return Err(ElfError::NoLoadSegment);
    }
    if !segments.iter().any(|segment| {
        segment.executable && (segment.guest_address..segment.end()).contains(&entry)
    }) {
        return Err(ElfError::EntryNotExecutable { entry });
    }
    let image_end = segments
        .iter()
        .map(|segment| align_up(segment.end()))
        .max()
        .unwrap_or(window.0);
    Ok(LoadPlan {
        entry,
        segments,
        image_end,
    })
}

/// Checks the identification and the fixed fields of the file header.
fn check_file_header(header: &[u8]) -> Result<(), ElfError> {
    if header.get(..4) != Some(&MAGIC[..]) {
        return Err(ElfError::NotElf);
    }
    let class = byte_at(header, 4);
    if class != CLASS_64 {
        return Err(ElfError::NotElf64 { class });
    }
    let data = byte_at(header, 5);
    if data != DATA_LITTLE_ENDIAN {
        return Err(ElfError::NotLittleEndian { data });
    }
    let identification_version = u32::from(byte_at(header, 6));
    if identification_version != VERSION_CURRENT {
        return Err(ElfError::UnsupportedVersion {
            version: identification_version,
        });
    }
    let version = u32_at(header, 20);
    if version != VERSION_CURRENT {
        return Err(ElfError::UnsupportedVersion { version });
    }
    let machine = u16_at(header, 18);
    if machine != MACHINE_X86_64 {
        return Err(ElfError::WrongMachine { machine });
    }
    match u16_at(header, 16) {
        TYPE_EXECUTABLE => Ok(()),
        TYPE_DYNAMIC => Err(ElfError::PositionIndependent),
        elf_type => Err(ElfError::NotExecutable { elf_type }),
    }
}

/// Checks one program header on its own; `Ok(None)` for segments the
/// loader ignores.
fn check_program_header(
    index: usize,
    entry: &[u8],
    image_length: u64,
    (window_start, window_end): (u64, u64),
) -> Result<Option<LoadSegment>, ElfError> {
    let segment_type = u32_at(entry, 0);
    match segment_type {
        SEGMENT_LOAD => {}
        SEGMENT_INTERPRETER | SEGMENT_DYNAMIC | SEGMENT_TLS => {
            return Err(ElfError::ForbiddenSegment {
                index,
                segment_type,
            })
        }
        _ => return Ok(None),
    }
    let flags = u32_at(entry, 4);
    let file_offset = u64_at(entry, 8);
    let guest_address = u64_at(entry, 16);
    let file_size = u64_at(entry, 32);
    let memory_size = u64_at(entry, 40);
    if file_size > memory_size {
        return Err(ElfError::FileSizeExceedsMemorySize {
            index,
            file_size,
            memory_size,
        });
    }
    if file_offset
        .checked_add(file_size)
        .is_none_or(|end| end > image_length)
    {
        return Err(ElfError::FileRangeOutOfImage {
            index,
            file_offset,
            file_size,
            image_length,
        });
    }
    let writable = flags & FLAG_WRITE != 0;
    let executable = flags & FLAG_EXECUTE != 0;
    let Some(end) = guest_address.checked_add(memory_size) else {
        return Err(ElfError::AddressOverflow {
            index,
            guest_address,
            memory_size,
        });
    };
    if memory_size != 0 && (guest_address < window_start || end > window_end) {
        return Err(ElfError::OutsideRamWindow {
            index,
            start: guest_address,
            end,
            window_start,
            window_end,
        });
    }
    if writable && executable {
        return Err(ElfError::WritableAndExecutable {
            index,
            start: guest_address,
            end,
        });
    }
    Ok(Some(LoadSegment {
        guest_address,
        file_offset,
        file_size,
        memory_size,
        writable,
        executable,
    }))
}

/// Rejects a segment that overlaps an earlier one, or shares a page with
/// one that has different permissions.
fn check_against_earlier(
    index: usize,
    segment: &LoadSegment,
    earlier: &[(usize, LoadSegment)],
) -> Result<(), ElfError> {
    let start = segment.guest_address;
    let end = segment.end();
    let (first_page, end_page) = segment.pages();
    for &(other_index, ref other) in earlier {
        if start < other.end() && other.guest_address < end {
            return Err(ElfError::Overlap {
                index,
                start,
                end,
                other: other_index,
                other_start: other.guest_address,
                other_end: other.end(),
            });
        }
        let (other_first_page, other_end_page) = other.pages();
        let same_permissions =
            segment.writable == other.writable && segment.executable == other.executable;
        if first_page < other_end_page && other_first_page < end_page && !same_permissions {
            let page = first_page.max(other_first_page);
            return Err(ElfError::SharedPagePermissions {
                index,
                other: other_index,
                page,
            });
        }
    }
    Ok(())
}

fn align_down(address: u64) -> u64 {
    address & !(PAGE_SIZE - 1)
}

/// Rounds up to a page; addresses here are below 2 GiB, so it cannot overflow.
fn align_up(address: u64) -> u64 {
    address.saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// `N` bytes at `offset` of `block`, zeros where it is too short (callers
/// pass blocks already checked to be long enough).
fn byte_at(block: &[u8], offset: usize) -> u8 {
    block.get(offset).copied().unwrap_or(0)
}

use xen_abi::bytes::{u16_or_zero as u16_at, u32_or_zero as u32_at, u64_or_zero as u64_at};

impl fmt::Display for LoadSegment {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "[{:#x}, {:#x}) r{}{} from file {:#x}+{:#x}",
            self.guest_address,
            self.end(),
            if self.writable { "w" } else { "-" },
            if self.executable { "x" } else { "-" },
            self.file_offset,
            self.file_size
        )
    }
}

/// The fuzz target's body, shared with the proptests: plans `data` for a
/// few RAM sizes and asserts every promise a returned plan makes. Panics
/// only if the loader breaks one of them.
pub fn fuzz_one(data: &[u8]) {
    for ram_bytes in [MIN_RAM_BYTES, 2 << 20, 64 << 20, MAX_RAM_BYTES] {
        let Ok(plan) = plan(data, ram_bytes) else {
            continue;
        };
        let (window_start, window_end) = load_window(ram_bytes);
        assert!(!plan.segments.is_empty());
        assert!(plan.image_end % PAGE_SIZE == 0 && plan.image_end <= window_end);
        for (index, segment) in plan.segments.iter().enumerate() {
            assert!(segment.memory_size > 0 && segment.file_size <= segment.memory_size);
            assert!(segment.guest_address >= window_start && segment.end() <= plan.image_end);
            assert!(segment.file_offset + segment.file_size <= data.len() as u64);
            assert!(!(segment.writable && segment.executable));
            for other in &plan.segments[..index] {
                assert!(
                    segment.end() <= other.guest_address || other.end() <= segment.guest_address
                );
            }
        }
        assert!(plan.segments.iter().any(|segment| segment.executable
            && (segment.guest_address..segment.end()).contains(&plan.entry)));
    }
}
