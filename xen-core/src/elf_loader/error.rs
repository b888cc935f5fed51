//! Why a domain kernel image was rejected, said so that whoever linked it
//! can fix it: which segment, which addresses, which limit.

use core::fmt;

use super::constants::{
    MACHINE_X86_64, PROGRAM_HEADER_SIZE, SEGMENT_DYNAMIC, SEGMENT_INTERPRETER, SEGMENT_TLS,
};
use super::MAX_PROGRAM_HEADERS;

/// Why an image cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The domain's RAM size is not a whole number of pages within the
    /// layout's limits.
    RamSize {
        /// The RAM size asked for.
        ram_bytes: u64,
    },
    /// Shorter than an ELF64 file header.
    TooShort {
        /// Bytes present.
        length: usize,
    },
    /// No `\x7fELF` magic.
    NotElf,
    /// Not a 64-bit object.
    NotElf64 {
        /// `EI_CLASS`.
        class: u8,
    },
    /// Not little-endian.
    NotLittleEndian {
        /// `EI_DATA`.
        data: u8,
    },
    /// `EI_VERSION` or `e_version` is not 1.
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// Not built for x86-64.
    WrongMachine {
        /// `e_machine`.
        machine: u16,
    },
    /// `ET_DYN`: a position-independent image, which nothing here relocates.
    PositionIndependent,
    /// Neither `ET_EXEC` nor `ET_DYN`.
    NotExecutable {
        /// `e_type`.
        elf_type: u16,
    },
    /// `e_phentsize` is not 56.
    ProgramHeaderSize {
        /// `e_phentsize`.
        size: u16,
    },
    /// More than [`MAX_PROGRAM_HEADERS`] program headers.
    TooManyProgramHeaders {
        /// `e_phnum`.
        count: u16,
    },
    /// The program header table is not inside the image.
    ProgramHeadersOutOfRange {
        /// `e_phoff`.
        offset: u64,
        /// `e_phnum`.
        count: u16,
        /// Bytes in the image.
        image_length: u64,
    },
    /// A `PT_INTERP`, `PT_DYNAMIC` or `PT_TLS` segment: the image is not a
    /// static, thread-local-free executable.
    ForbiddenSegment {
        /// Program header index.
        index: usize,
        /// `p_type`.
        segment_type: u32,
    },
    /// `p_filesz` is larger than `p_memsz`.
    FileSizeExceedsMemorySize {
        /// Program header index.
        index: usize,
        /// `p_filesz`.
        file_size: u64,
        /// `p_memsz`.
        memory_size: u64,
    },
    /// The segment's file bytes are not inside the image.
    FileRangeOutOfImage {
        /// Program header index.
        index: usize,
        /// `p_offset`.
        file_offset: u64,
        /// `p_filesz`.
        file_size: u64,
        /// Bytes in the image.
        image_length: u64,
    },
    /// `p_vaddr + p_memsz` overflows.
    AddressOverflow {
        /// Program header index.
        index: usize,
        /// `p_vaddr`.
        guest_address: u64,
        /// `p_memsz`.
        memory_size: u64,
    },
    /// The segment is not inside the domain's load window.
    OutsideRamWindow {
        /// Program header index.
        index: usize,
        /// The segment's first address.
        start: u64,
        /// The first address after it.
        end: u64,
        /// The window's first address.
        window_start: u64,
        /// The first address after the window.
        window_end: u64,
    },
    /// The segment is both writable and executable (W^X).
    WritableAndExecutable {
        /// Program header index.
        index: usize,
        /// The segment's first address.
        start: u64,
        /// The first address after it.
        end: u64,
    },
    /// Two segments share bytes.
    Overlap {
        /// Program header index of the later segment.
        index: usize,
        /// Its first address.
        start: u64,
        /// The first address after it.
        end: u64,
        /// Program header index of the earlier segment.
        other: usize,
        /// The earlier segment's first address.
        other_start: u64,
        /// The first address after it.
        other_end: u64,
    },
    /// Two segments with different permissions share a page.
    SharedPagePermissions {
        /// Program header index of the later segment.
        index: usize,
        /// Program header index of the earlier segment.
        other: usize,
        /// The first page they share.
        page: u64,
    },
    /// No non-empty `PT_LOAD` segment.
    NoLoadSegment,
    /// The entry point is not inside an executable segment.
    EntryNotExecutable {
        /// `e_entry`.
        entry: u64,
    },
}

impl fmt::Display for ElfError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::RamSize { ram_bytes } => {
                write!(formatter, "domain RAM size {ram_bytes:#x} is not a page multiple within the RAM limits")
            }
            Self::TooShort { length } => write!(formatter, "image is {length} bytes, shorter than an ELF64 header"),
            Self::NotElf => formatter.write_str("not an ELF image (bad magic)"),
            Self::NotElf64 { class } => write!(formatter, "not a 64-bit ELF image (class {class})"),
            Self::NotLittleEndian { data } => write!(formatter, "not a little-endian ELF image (data encoding {data})"),
            Self::UnsupportedVersion { version } => write!(formatter, "unsupported ELF version {version}"),
            Self::WrongMachine { machine } => {
                write!(formatter, "ELF machine {machine} is not x86-64 ({MACHINE_X86_64})")
            }
            Self::PositionIndependent => {
                formatter.write_str("position-independent image: link with -C relocation-model=static")
            }
            Self::NotExecutable { elf_type } => write!(formatter, "ELF type {elf_type} is not an executable"),
            Self::ProgramHeaderSize { size } => {
                write!(formatter, "program header size {size} (expected {PROGRAM_HEADER_SIZE})")
            }
            Self::TooManyProgramHeaders { count } => {
                write!(formatter, "{count} program headers (at most {MAX_PROGRAM_HEADERS})")
            }
            Self::ProgramHeadersOutOfRange { offset, count, image_length } => write!(
                formatter,
                "program header table ({count} entries at offset {offset:#x}) is outside the {image_length}-byte image"
            ),
            Self::ForbiddenSegment { index, segment_type } => {
                let kind = match segment_type {
                    SEGMENT_INTERPRETER => "PT_INTERP (needs a dynamic loader)",
                    SEGMENT_DYNAMIC => "PT_DYNAMIC (needs relocation)",
                    SEGMENT_TLS => "PT_TLS (thread-local storage is not set up for domains)",
                    _ => "forbidden",
                };
                write!(formatter, "segment {index} is {kind}: link a static executable")
            }
            Self::FileSizeExceedsMemorySize { index, file_size, memory_size } => write!(
                formatter,
                "segment {index} has file size {file_size:#x} larger than its memory size {memory_size:#x}"
            ),
            Self::FileRangeOutOfImage { index, file_offset, file_size, image_length } => write!(
                formatter,
                "segment {index} file bytes at {file_offset:#x}+{file_size:#x} are outside the {image_length}-byte image"
            ),
            Self::AddressOverflow { index, guest_address, memory_size } => write!(
                formatter,
                "segment {index} at {guest_address:#x} with memory size {memory_size:#x} overflows the address space"
            ),
            Self::OutsideRamWindow { index, start, end, window_start, window_end } => write!(
                formatter,
                "segment {index} [{start:#x}, {end:#x}) is outside the domain's RAM window [{window_start:#x}, {window_end:#x})"
            ),
            Self::WritableAndExecutable { index, start, end } => {
                write!(formatter, "segment {index} [{start:#x}, {end:#x}) is both writable and executable (W^X)")
            }
            Self::Overlap { index, start, end, other, other_start, other_end } => write!(
                formatter,
                "segment {index} [{start:#x}, {end:#x}) overlaps segment {other} [{other_start:#x}, {other_end:#x})"
            ),
            Self::SharedPagePermissions { index, other, page } => write!(
                formatter,
                "segment {index} shares page {page:#x} with segment {other}, which has different permissions"
            ),
            Self::NoLoadSegment => formatter.write_str("no loadable segment"),
            Self::EntryNotExecutable { entry } => {
                write!(formatter, "entry point {entry:#x} is not inside an executable segment")
            }
        }
    }
}
