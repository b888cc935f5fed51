//! Validation of one blkif request, copied out of the ring, against the frontend's
//! virtual disk: what the request may do, translated to physical sectors, or why it is
//! refused. Nothing here trusts the decoder's checks alone; the cheap ones are repeated.

use alloc::vec::Vec;
use ring_protocol::blkif::{
    BlkifRequest, DiscardRequest, Segment, TransferRequest, MAX_SEGMENTS_PER_REQUEST,
    SECTORS_PER_PAGE, STATUS_ERROR, STATUS_NOT_SUPPORTED, STATUS_OKAY,
};

use crate::disk::{DiskError, VirtualDisk};
use crate::executor::{ExecuteError, GrantRef, SegmentTransfer};

/// Why a request was refused before reaching the executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The request did not decode (bad segment count, bad sector range in a page).
    Malformed,
    /// An operation this backend does not offer (indirect, write barrier, unknown).
    NotSupported,
    /// The segment count is outside what the operation allows.
    BadSegmentCount,
    /// A segment's in-page range is not `first <= last <= 7`.
    BadSectorRange,
    /// The request reaches outside the virtual disk, or its range overflows.
    OutOfRange,
    /// A write or discard on a read-only disk.
    ReadOnly,
}

impl Rejection {
    /// The blkif status that answers this rejection.
    pub const fn status(self) -> i16 {
        match self {
            Self::NotSupported => STATUS_NOT_SUPPORTED,
            _ => STATUS_ERROR,
        }
    }
}

/// Where a validated transfer's segments, translated to physical sectors, lie in the
/// round's segment list: `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentRange {
    start: usize,
    end: usize,
}

impl SegmentRange {
    /// The segments in the round's segment list.
    #[inline]
    pub(crate) fn of(self, segments: &[SegmentTransfer]) -> &[SegmentTransfer] {
        &segments[self.start..self.end]
    }
}

/// The segments of a round's valid transfers, translated to physical sectors. Appending
/// writes into slots kept from earlier rounds (the backing list only grows, with default
/// slots, when a round needs more than any round before), so the per-segment writes need
/// no capacity check or length update.
#[derive(Debug, Default)]
pub(crate) struct SegmentList {
    /// Slots `..len` are this round's segments; the rest are left from earlier rounds.
    slots: Vec<SegmentTransfer>,
    len: usize,
}

impl SegmentList {
    /// Number of segments in the list.
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// The segments.
    pub(crate) fn as_slice(&self) -> &[SegmentTransfer] {
        &self.slots[..self.len]
    }

    /// Drops every segment from `len` on.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Empties the list (its slots are kept).
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `count` segments, every one of which the caller writes through the slice
    /// returned (they hold whatever an earlier round left).
    #[inline]
    fn append(&mut self, count: usize) -> (SegmentRange, &mut [SegmentTransfer]) {
        let start = self.len;
        let end = start + count;
        if self.slots.len() < end {
            self.slots.resize(end, SegmentTransfer::default());
        }
        self.len = end;
        (SegmentRange { start, end }, &mut self.slots[start..end])
    }
}

/// What a valid request asks the executor to do.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Work {
    /// Disk to pages.
    Read(SegmentRange),
    /// Pages to disk.
    Write(SegmentRange),
    /// Pages to disk, then a flush (a flush request carrying data, as Linux sends).
    WriteThenFlush(SegmentRange),
    /// A flush without data.
    Flush,
    /// Discard physical sectors.
    Discard {
        /// First physical sector.
        physical_sector: u64,
        /// Number of sectors.
        sector_count: u64,
        /// `BLKIF_DISCARD_SECURE`.
        secure: bool,
    },
}

impl Work {
    /// How many executor operations carry it out (see `operations_of`).
    #[inline]
    pub(crate) const fn operation_count(&self) -> usize {
        match self {
            Self::WriteThenFlush(_) => 2,
            _ => 1,
        }
    }
}

/// Validates `request` against `disk` and translates it; a transfer's segments are
/// appended to `segments` (the round's segment list), and only if it is valid.
///
/// # Errors
///
/// The [`Rejection`] that answers it.
#[inline]
pub(crate) fn plan(
    request: &BlkifRequest,
    disk: &VirtualDisk,
    segments: &mut SegmentList,
) -> Result<Work, Rejection> {
    match request {
        BlkifRequest::Read(transfer) => translate(transfer, disk, 1, segments).map(Work::Read),
        BlkifRequest::Write(transfer) => {
            refuse_read_only(disk)?;
            translate(transfer, disk, 1, segments).map(Work::Write)
        }
        BlkifRequest::FlushDiskCache(transfer) if transfer.segment_count == 0 => Ok(Work::Flush),
        BlkifRequest::FlushDiskCache(transfer) => {
            refuse_read_only(disk)?;
            translate(transfer, disk, 1, segments).map(Work::WriteThenFlush)
        }
        BlkifRequest::Discard(discard) => plan_discard(discard, disk),
        // Not advertised (no feature-barrier, no feature-max-indirect-segments).
        BlkifRequest::WriteBarrier(_) | BlkifRequest::Indirect(_) => Err(Rejection::NotSupported),
    }
}

fn refuse_read_only(disk: &VirtualDisk) -> Result<(), Rejection> {
    if disk.is_read_only() {
        Err(Rejection::ReadOnly)
    } else {
        Ok(())
    }
}

fn plan_discard(discard: &DiscardRequest, disk: &VirtualDisk) -> Result<Work, Rejection> {
    refuse_read_only(disk)?;
    let physical_sector = disk
        .translate(discard.sector_number, discard.sector_count)
        .map_err(range_rejection)?;
    Ok(Work::Discard {
        physical_sector,
        sector_count: discard.sector_count,
        secure: discard.secure,
    })
}

const fn range_rejection(_error: DiskError) -> Rejection {
    Rejection::OutOfRange
}

/// Checks the segments of a transfer and lays them out on disk: segment `i` starts
/// where segment `i - 1` ended (blkif segments are contiguous on disk). Appends them to
/// `segments` only once every check passed.
// Always inlined (into the round's loop over requests): as a call of its own, its
// per-request overhead outweighs what a 4 KiB request costs here.
#[inline(always)]
fn translate(
    transfer: &TransferRequest,
    disk: &VirtualDisk,
    minimum_segments: usize,
    segments: &mut SegmentList,
) -> Result<SegmentRange, Rejection> {
    let count = usize::from(transfer.segment_count);
    if count < minimum_segments || count > MAX_SEGMENTS_PER_REQUEST {
        return Err(Rejection::BadSegmentCount);
    }
    let used = &transfer.segments[..count];
    // Every segment is checked, with one verdict for all (the rejection names no
    // segment), so the loop has no branch.
    let mut range_bits = 0;
    let mut total_sectors: u64 = 0;
    for segment in used {
        let span = segment.last_sector.wrapping_sub(segment.first_sector);
        range_bits |= segment.first_sector | segment.last_sector | span;
        // Wrapping, as the range may be invalid (then the sum is discarded): at most
        // 11 * 256 sectors, which cannot overflow.
        total_sectors += u64::from(span) + 1;
    }
    if !in_page(range_bits) {
        return Err(Rejection::BadSectorRange);
    }
    let mut physical_sector = disk
        .translate(transfer.sector_number, total_sectors)
        .map_err(range_rejection)?;
    let (range, slots) = segments.append(count);
    for (slot, segment) in slots.iter_mut().zip(used) {
        // base + total_sectors <= disk end, which fits in u64: no overflow.
        *slot = transfer_of(segment, physical_sector);
        debug_assert!(slot.is_valid());
        physical_sector += slot.sector_count();
    }
    Ok(range)
}

/// Whether `range_bits`, the OR of `first | last | (last - first)` (wrapping) over
/// segments, says that every one of them is valid: [`SegmentTransfer::is_valid`],
/// `first <= last < 8`. With 8 a power of two, the OR is below 8 exactly when each term
/// is: `first` and `last` below 8, and `last - first` too, which it is not when
/// `first > last` (it wraps to 249 or more).
const fn in_page(range_bits: u8) -> bool {
    range_bits < SECTORS_PER_PAGE
}

/// A request segment as the executor sees it, mapped to `physical_sector`.
#[inline]
const fn transfer_of(segment: &Segment, physical_sector: u64) -> SegmentTransfer {
    SegmentTransfer {
        grant: GrantRef(segment.grant),
        first_sector_in_page: segment.first_sector,
        last_sector_in_page: segment.last_sector,
        physical_sector,
    }
}

/// The blkif status answering an executor's result.
#[inline]
pub(crate) const fn status_of(result: Result<(), ExecuteError>) -> i16 {
    match result {
        Ok(()) => STATUS_OKAY,
        Err(ExecuteError::NotSupported) => STATUS_NOT_SUPPORTED,
        Err(ExecuteError::Grant | ExecuteError::Io) => STATUS_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::DiskMode;

    fn transfer(sector: u64, ranges: &[(u8, u8)]) -> TransferRequest {
        let mut request = TransferRequest {
            sector_number: sector,
            segment_count: ranges.len() as u8,
            ..TransferRequest::default()
        };
        for (index, (first, last)) in ranges.iter().enumerate() {
            request.segments[index] = Segment {
                grant: index as u32 + 10,
                first_sector: *first,
                last_sector: *last,
            };
        }
        request
    }

    #[test]
    fn segments_are_laid_out_contiguously() -> Result<(), Rejection> {
        let disk = VirtualDisk::new(1000, 64, DiskMode::ReadWrite).map_err(range_rejection)?;
        // The round's list already holds another request's segment.
        let mut list = SegmentList::default();
        let _ = list.append(1);
        let request = BlkifRequest::Write(transfer(4, &[(2, 7), (0, 3)]));
        let work = plan(&request, &disk, &mut list)?;
        let Work::Write(segments) = work else {
            panic!("expected a write, got {work:?}");
        };
        assert_eq!(list.len(), 3);
        let physical: Vec<u64> = segments
            .of(list.as_slice())
            .iter()
            .map(|segment| segment.physical_sector)
            .collect();
        assert_eq!(physical, [1004, 1010]);
        Ok(())
    }

    #[test]
    fn segment_slots_are_reused() {
        let mut list = SegmentList::default();
        let (first, slots) = list.append(3);
        slots[2].physical_sector = 7;
        assert_eq!(first, SegmentRange { start: 0, end: 3 });
        list.truncate(1);
        let (second, slots) = list.append(1);
        assert_eq!(second, SegmentRange { start: 1, end: 2 });
        assert_eq!(slots.len(), 1);
        assert_eq!(list.as_slice().len(), 2);
        list.clear();
        assert_eq!(list.len(), 0);
        let (third, _) = list.append(4);
        assert_eq!(third, SegmentRange { start: 0, end: 4 });
        // Appended slots hold whatever an earlier round left: the caller writes them all.
        assert_eq!(list.as_slice()[2].physical_sector, 7);
    }

    #[test]
    fn range_bits_agree_with_the_segment_check() {
        for first in 0..=u8::MAX {
            for last in 0..=u8::MAX {
                let segment = Segment {
                    grant: 0,
                    first_sector: first,
                    last_sector: last,
                };
                let bits = first | last | last.wrapping_sub(first);
                assert_eq!(
                    in_page(bits),
                    transfer_of(&segment, 0).is_valid(),
                    "first {first} last {last}"
                );
            }
        }
    }

    #[test]
    fn bounds_and_mode_are_enforced() -> Result<(), Rejection> {
        let disk = VirtualDisk::new(0, 16, DiskMode::ReadOnly).map_err(range_rejection)?;
        let mut list = SegmentList::default();
        let mut read = |sector, ranges: &[(u8, u8)]| {
            plan(
                &BlkifRequest::Read(transfer(sector, ranges)),
                &disk,
                &mut list,
            )
        };
        assert!(read(8, &[(0, 7)]).is_ok());
        assert_eq!(read(9, &[(0, 7)]).err(), Some(Rejection::OutOfRange));
        assert_eq!(read(u64::MAX, &[(0, 0)]).err(), Some(Rejection::OutOfRange));
        assert_eq!(read(0, &[(3, 2)]).err(), Some(Rejection::BadSectorRange));
        assert_eq!(read(0, &[(0, 8)]).err(), Some(Rejection::BadSectorRange));
        assert_eq!(read(0, &[]).err(), Some(Rejection::BadSegmentCount));
        assert_eq!(
            read(0, &[(0, 7), (7, 6)]).err(),
            Some(Rejection::BadSectorRange)
        );
        let write = BlkifRequest::Write(transfer(0, &[(0, 0)]));
        assert_eq!(
            plan(&write, &disk, &mut list).err(),
            Some(Rejection::ReadOnly)
        );
        // Only the valid read's segment was appended.
        assert_eq!(list.len(), 1);
        Ok(())
    }
}
