//! Builds small ELF64 images by hand for the loader's tests: a file header,
//! a program header table right after it, and segment bytes filled with a
//! recognisable pattern.

use super::constants::*;
use xen_abi::layout::{IMAGE_OFFSET, RAM_BASE};

/// Where the test images' text is linked.
pub(crate) const TEXT_ADDRESS: u64 = RAM_BASE + IMAGE_OFFSET;

/// One program header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) segment_type: u32,
    pub(crate) flags: u32,
    pub(crate) file_offset: u64,
    pub(crate) guest_address: u64,
    pub(crate) file_size: u64,
    pub(crate) memory_size: u64,
}

impl Header {
    /// A `PT_LOAD` header.
    pub(crate) fn load(
        flags: u32,
        file_offset: u64,
        guest_address: u64,
        file_size: u64,
        memory_size: u64,
    ) -> Self {
        Self {
            segment_type: SEGMENT_LOAD,
            flags,
            file_offset,
            guest_address,
            file_size,
            memory_size,
        }
    }
}

/// An image under construction.
#[derive(Clone, Debug)]
pub(crate) struct Image {
    pub(crate) elf_type: u16,
    pub(crate) entry: u64,
    pub(crate) headers: Vec<Header>,
}

impl Image {
    /// A valid image: text (r-x) at [`TEXT_ADDRESS`], then data (rw-) with
    /// a bss tail on the next page, then a `PT_GNU_STACK`-like header the
    /// loader ignores.
    pub(crate) fn valid() -> Self {
        Self {
            elf_type: TYPE_EXECUTABLE,
            entry: TEXT_ADDRESS + 0x10,
            headers: vec![
                Header::load(FLAG_READ | FLAG_EXECUTE, 0x1000, TEXT_ADDRESS, 0x180, 0x180),
                Header::load(
                    FLAG_READ | FLAG_WRITE,
                    0x1180,
                    TEXT_ADDRESS + 0x1000,
                    0x40,
                    0x2800,
                ),
                Header {
                    segment_type: 0x6474_e551,
                    flags: FLAG_READ | FLAG_WRITE,
                    ..Header::load(0, 0, 0, 0, 0)
                },
            ],
        }
    }

    /// The image's bytes: headers, then every segment's file bytes.
    pub(crate) fn build(&self) -> Vec<u8> {
        let table_end = FILE_HEADER_SIZE + self.headers.len() * usize::from(PROGRAM_HEADER_SIZE);
        let data_end = self
            .headers
            .iter()
            .map(|header| (header.file_offset + header.file_size) as usize)
            .max()
            .unwrap_or(0);
        let mut bytes: Vec<u8> = (0..table_end.max(data_end))
            .map(|position| (position % 251) as u8)
            .collect();
        bytes[..FILE_HEADER_SIZE].fill(0);
        bytes[..4].copy_from_slice(&MAGIC);
        bytes[4] = CLASS_64;
        bytes[5] = DATA_LITTLE_ENDIAN;
        bytes[6] = 1;
        put(&mut bytes, 16, &self.elf_type.to_le_bytes());
        put(&mut bytes, 18, &MACHINE_X86_64.to_le_bytes());
        put(&mut bytes, 20, &VERSION_CURRENT.to_le_bytes());
        put(&mut bytes, 24, &self.entry.to_le_bytes());
        put(&mut bytes, 32, &(FILE_HEADER_SIZE as u64).to_le_bytes());
        put(&mut bytes, 52, &(FILE_HEADER_SIZE as u16).to_le_bytes());
        put(&mut bytes, 54, &PROGRAM_HEADER_SIZE.to_le_bytes());
        put(&mut bytes, 56, &(self.headers.len() as u16).to_le_bytes());
        for (index, header) in self.headers.iter().enumerate() {
            let at = FILE_HEADER_SIZE + index * usize::from(PROGRAM_HEADER_SIZE);
            bytes[at..at + usize::from(PROGRAM_HEADER_SIZE)].fill(0);
            put(&mut bytes, at, &header.segment_type.to_le_bytes());
            put(&mut bytes, at + 4, &header.flags.to_le_bytes());
            put(&mut bytes, at + 8, &header.file_offset.to_le_bytes());
            put(&mut bytes, at + 16, &header.guest_address.to_le_bytes());
            put(&mut bytes, at + 24, &header.guest_address.to_le_bytes());
            put(&mut bytes, at + 32, &header.file_size.to_le_bytes());
            put(&mut bytes, at + 40, &header.memory_size.to_le_bytes());
            put(&mut bytes, at + 48, &0x1000u64.to_le_bytes());
        }
        bytes
    }
}

/// Writes `value` at `offset` of `bytes`.
pub(crate) fn put(bytes: &mut [u8], offset: usize, value: &[u8]) {
    bytes[offset..offset + value.len()].copy_from_slice(value);
}
