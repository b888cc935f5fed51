//! Validation of one blkif request, copied out of the ring, against the frontend's
//! virtual disk: what the request may do, translated to physical sectors, or why it is
//! refused. Nothing here trusts the decoder's checks alone; the cheap ones are repeated.

use ring_protocol::blkif::{
    BlkifRequest, DiscardRequest, TransferRequest, MAX_SEGMENTS_PER_REQUEST, STATUS_ERROR,
    STATUS_NOT_SUPPORTED, STATUS_OKAY,
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

/// The segments of a validated transfer, translated to physical sectors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segments {
    list: [SegmentTransfer; MAX_SEGMENTS_PER_REQUEST],
    count: usize,
}

impl Segments {
    /// The used segments.
    pub(crate) fn as_slice(&self) -> &[SegmentTransfer] {
        &self.list[..self.count]
    }
}

/// What a valid request asks the executor to do.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Work {
    /// Disk to pages.
    Read(Segments),
    /// Pages to disk.
    Write(Segments),
    /// Pages to disk, then a flush (a flush request carrying data, as Linux sends).
    WriteThenFlush(Segments),
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

/// Validates `request` against `disk` and translates it.
///
/// # Errors
///
/// The [`Rejection`] that answers it.
pub(crate) fn plan(request: &BlkifRequest, disk: &VirtualDisk) -> Result<Work, Rejection> {
    match request {
        BlkifRequest::Read(transfer) => translate(transfer, disk, 1).map(Work::Read),
        BlkifRequest::Write(transfer) => {
            refuse_read_only(disk)?;
            translate(transfer, disk, 1).map(Work::Write)
        }
        BlkifRequest::FlushDiskCache(transfer) if transfer.segment_count == 0 => Ok(Work::Flush),
        BlkifRequest::FlushDiskCache(transfer) => {
            refuse_read_only(disk)?;
            translate(transfer, disk, 1).map(Work::WriteThenFlush)
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
/// where segment `i - 1` ended (blkif segments are contiguous on disk).
fn translate(
    transfer: &TransferRequest,
    disk: &VirtualDisk,
    minimum_segments: usize,
) -> Result<Segments, Rejection> {
    let count = usize::from(transfer.segment_count);
    if count < minimum_segments || count > MAX_SEGMENTS_PER_REQUEST {
        return Err(Rejection::BadSegmentCount);
    }
    let mut segments = Segments {
        list: [SegmentTransfer::default(); MAX_SEGMENTS_PER_REQUEST],
        count,
    };
    let mut total_sectors: u64 = 0;
    for (slot, segment) in segments.list.iter_mut().zip(&transfer.segments[..count]) {
        *slot = SegmentTransfer {
            grant: GrantRef(segment.grant),
            first_sector_in_page: segment.first_sector,
            last_sector_in_page: segment.last_sector,
            physical_sector: total_sectors, // relative for now
        };
        if !slot.is_valid() {
            return Err(Rejection::BadSectorRange);
        }
        // At most 11 * 8 sectors: cannot overflow.
        total_sectors += slot.sector_count();
    }
    let base = disk
        .translate(transfer.sector_number, total_sectors)
        .map_err(range_rejection)?;
    for slot in &mut segments.list[..count] {
        // base + total_sectors <= disk end, which fits in u64: no overflow.
        slot.physical_sector += base;
    }
    Ok(segments)
}

/// The blkif status answering an executor's result.
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
    use ring_protocol::blkif::Segment;

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
        let work = plan(&BlkifRequest::Write(transfer(4, &[(2, 7), (0, 3)])), &disk)?;
        let Work::Write(segments) = work else {
            panic!("expected a write, got {work:?}");
        };
        let physical: alloc::vec::Vec<u64> = segments
            .as_slice()
            .iter()
            .map(|segment| segment.physical_sector)
            .collect();
        assert_eq!(physical, [1004, 1010]);
        Ok(())
    }

    #[test]
    fn bounds_and_mode_are_enforced() -> Result<(), Rejection> {
        let disk = VirtualDisk::new(0, 16, DiskMode::ReadOnly).map_err(range_rejection)?;
        let read = |sector, ranges: &[(u8, u8)]| {
            plan(&BlkifRequest::Read(transfer(sector, ranges)), &disk)
        };
        assert!(read(8, &[(0, 7)]).is_ok());
        assert_eq!(read(9, &[(0, 7)]).err(), Some(Rejection::OutOfRange));
        assert_eq!(read(u64::MAX, &[(0, 0)]).err(), Some(Rejection::OutOfRange));
        assert_eq!(read(0, &[(3, 2)]).err(), Some(Rejection::BadSectorRange));
        assert_eq!(read(0, &[(0, 8)]).err(), Some(Rejection::BadSectorRange));
        assert_eq!(read(0, &[]).err(), Some(Rejection::BadSegmentCount));
        let write = BlkifRequest::Write(transfer(0, &[(0, 0)]));
        assert_eq!(plan(&write, &disk).err(), Some(Rejection::ReadOnly));
        Ok(())
    }
}
