//! Cutting a byte range of the disk into requests that fit one blkif request each: whole
//! 512-byte sectors, at most 11 pages of 8 sectors.

use ring_protocol::blkif::{MAX_SEGMENTS_PER_REQUEST, SECTORS_PER_PAGE, SECTOR_SIZE};

/// The most sectors one request carries: 11 full pages, 44 KiB.
pub const MAX_SECTORS_PER_REQUEST: u32 =
    (MAX_SEGMENTS_PER_REQUEST as u32) * (SECTORS_PER_PAGE as u32);

/// Why a byte range cannot be split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitError {
    /// The offset or length is not a whole number of 512-byte sectors.
    Unaligned,
    /// The range is empty.
    Empty,
    /// The range reaches past the end of the disk (or overflows).
    PastEnd,
}

/// One request's share of a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// First disk sector.
    pub sector: u64,
    /// Number of sectors (1..=[`MAX_SECTORS_PER_REQUEST`]).
    pub sector_count: u32,
    /// Where the chunk's bytes start in the caller's buffer.
    pub buffer_offset: usize,
    /// Number of bytes (`sector_count * 512`).
    pub length_bytes: usize,
}

/// The chunks of a range, in disk order.
#[derive(Clone, Debug)]
pub struct Chunks {
    next_sector: u64,
    remaining_sectors: u64,
    buffer_offset: usize,
}

impl Iterator for Chunks {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        if self.remaining_sectors == 0 {
            return None;
        }
        let sector_count = self
            .remaining_sectors
            .min(u64::from(MAX_SECTORS_PER_REQUEST)) as u32;
        let length_bytes = sector_count as usize * SECTOR_SIZE;
        let chunk = Chunk {
            sector: self.next_sector,
            sector_count,
            buffer_offset: self.buffer_offset,
            length_bytes,
        };
        // Cannot overflow: the whole range was checked against the disk size.
        self.next_sector += u64::from(sector_count);
        self.remaining_sectors -= u64::from(sector_count);
        self.buffer_offset += length_bytes;
        Some(chunk)
    }
}

/// Splits `length_bytes` bytes at disk byte offset `offset_bytes` of a disk of
/// `disk_sectors` sectors into requests of at most 88 sectors.
///
/// # Errors
///
/// [`SplitError`] if the range is unaligned, empty or not inside the disk.
pub fn split_range(
    offset_bytes: u64,
    length_bytes: usize,
    disk_sectors: u64,
) -> Result<Chunks, SplitError> {
    let sector_size = SECTOR_SIZE as u64;
    if length_bytes == 0 {
        return Err(SplitError::Empty);
    }
    if offset_bytes % sector_size != 0 || length_bytes % SECTOR_SIZE != 0 {
        return Err(SplitError::Unaligned);
    }
    let first = offset_bytes / sector_size;
    let count = (length_bytes / SECTOR_SIZE) as u64;
    match first.checked_add(count) {
        Some(end) if end <= disk_sectors => Ok(Chunks {
            next_sector: first,
            remaining_sectors: count,
            buffer_offset: 0,
        }),
        _ => Err(SplitError::PastEnd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn splits_into_full_requests_and_a_tail() -> Result<(), SplitError> {
        let chunks: Vec<Chunk> = split_range(1024, 100 * 512, 1000)?.collect();
        assert_eq!(chunks.len(), 2);
        assert_eq!((chunks[0].sector, chunks[0].sector_count), (2, 88));
        assert_eq!((chunks[1].sector, chunks[1].sector_count), (90, 12));
        assert_eq!(chunks[1].buffer_offset, 88 * 512);
        assert_eq!(chunks[1].length_bytes, 12 * 512);
        Ok(())
    }

    #[test]
    fn refuses_bad_ranges() {
        assert_eq!(split_range(1, 512, 10).err(), Some(SplitError::Unaligned));
        assert_eq!(split_range(0, 100, 10).err(), Some(SplitError::Unaligned));
        assert_eq!(split_range(0, 0, 10).err(), Some(SplitError::Empty));
        assert_eq!(
            split_range(512 * 9, 1024, 10).err(),
            Some(SplitError::PastEnd)
        );
        assert_eq!(
            split_range(u64::MAX - 511, 512, 1000).err(),
            Some(SplitError::PastEnd)
        );
        assert!(split_range(512 * 9, 512, 10).is_ok());
    }
}
