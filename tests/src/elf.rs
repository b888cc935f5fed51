//! Just enough ELF64 reading to check how an image will load: its program
//! headers and the multiboot1 header a loader would find.

/// One loadable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// File offset.
    pub offset: u64,
    /// Virtual address.
    pub virtual_address: u64,
    /// Physical (load) address.
    pub physical_address: u64,
    /// Bytes in the file.
    pub file_size: u64,
    /// Bytes in memory.
    pub memory_size: u64,
    /// PF_X | PF_W | PF_R.
    pub flags: u32,
}

fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(offset..offset + 2)?.try_into().ok()?))
}
fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(offset..offset + 4)?.try_into().ok()?))
}
fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(offset..offset + 8)?.try_into().ok()?))
}

/// The PT_LOAD segments of an ELF64 little-endian image, or `None` if it is
/// not one.
pub fn load_segments(image: &[u8]) -> Option<Vec<Segment>> {
    if image.get(0..4)? != b"\x7fELF" || *image.get(4)? != 2 || *image.get(5)? != 1 {
        return None;
    }
    let header_offset = usize::try_from(u64_at(image, 0x20)?).ok()?;
    let entry_size = usize::from(u16_at(image, 0x36)?);
    let count = usize::from(u16_at(image, 0x38)?);
    let mut segments = Vec::new();
    for index in 0..count {
        let at = header_offset + index * entry_size;
        if u32_at(image, at)? == 1 {
            segments.push(Segment {
                flags: u32_at(image, at + 4)?,
                offset: u64_at(image, at + 8)?,
                virtual_address: u64_at(image, at + 16)?,
                physical_address: u64_at(image, at + 24)?,
                file_size: u64_at(image, at + 32)?,
                memory_size: u64_at(image, at + 40)?,
            });
        }
    }
    Some(segments)
}

/// The multiboot1 header: where it is in the file and its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultibootHeader {
    /// File offset of the magic.
    pub file_offset: usize,
    /// The flags word.
    pub flags: u32,
    /// header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr.
    pub addresses: [u32; 5],
}

/// Finds a valid multiboot1 header (magic, checksum) in the first 8 KiB, on
/// a 4-byte boundary, as a loader would.
pub fn multiboot_header(image: &[u8]) -> Option<MultibootHeader> {
    let limit = image.len().min(8192);
    (0..limit.saturating_sub(12)).step_by(4).find_map(|offset| {
        let magic = u32_at(image, offset)?;
        let flags = u32_at(image, offset + 4)?;
        let checksum = u32_at(image, offset + 8)?;
        if magic != 0x1BAD_B002 || magic.wrapping_add(flags).wrapping_add(checksum) != 0 {
            return None;
        }
        let mut addresses = [0u32; 5];
        for (index, address) in addresses.iter_mut().enumerate() {
            *address = u32_at(image, offset + 12 + 4 * index)?;
        }
        Some(MultibootHeader { file_offset: offset, flags, addresses })
    })
}
