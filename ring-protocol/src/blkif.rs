//! The block device protocol, byte-compatible with Xen's `io/blkif.h` (x86_64): 112-byte
//! requests (read, write, write barrier, flush, discard, indirect), 16-byte responses,
//! 8-byte segments, 32 slots per page.
//!
//! Decoding validates what a backend relies on: segment counts, sector ranges inside a
//! page, known operations. A request that fails is reported with its id and operation so
//! the backend can answer it ([`BlkifResponse::for_malformed`]).

use crate::entry::{wire, Malformation, MalformedEntry, Protocol, RingEntry};
use crate::shared::SharedPage;

/// `BLKIF_OP_READ`.
pub const OPERATION_READ: u8 = 0;
/// `BLKIF_OP_WRITE`.
pub const OPERATION_WRITE: u8 = 1;
/// `BLKIF_OP_WRITE_BARRIER`.
pub const OPERATION_WRITE_BARRIER: u8 = 2;
/// `BLKIF_OP_FLUSH_DISKCACHE`.
pub const OPERATION_FLUSH_DISKCACHE: u8 = 3;
/// `BLKIF_OP_DISCARD`.
pub const OPERATION_DISCARD: u8 = 5;
/// `BLKIF_OP_INDIRECT`.
pub const OPERATION_INDIRECT: u8 = 6;

/// `BLKIF_RSP_OKAY`.
pub const STATUS_OKAY: i16 = 0;
/// `BLKIF_RSP_ERROR`.
pub const STATUS_ERROR: i16 = -1;
/// `BLKIF_RSP_EOPNOTSUPP`.
pub const STATUS_NOT_SUPPORTED: i16 = -2;

/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`.
pub const MAX_SEGMENTS_PER_REQUEST: usize = 11;
/// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`.
pub const MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;
/// Segments per indirect page: 4096 / 8.
pub const SEGMENTS_PER_INDIRECT_PAGE: usize = 512;
/// The most segments an indirect request can describe (backends advertise a lower
/// `feature-max-indirect-segments` and check against it).
pub const MAX_INDIRECT_SEGMENTS: u16 =
    (MAX_INDIRECT_PAGES_PER_REQUEST * SEGMENTS_PER_INDIRECT_PAGE) as u16;
/// Sectors are always 512 bytes; a 4 KiB page holds 8.
pub const SECTOR_SIZE: usize = 512;
/// Sectors per page: a segment's `last_sect` is at most this minus one.
pub const SECTORS_PER_PAGE: u8 = 8;
/// `BLKIF_DISCARD_SECURE`.
pub const DISCARD_SECURE: u8 = 1;

/// Size of `blkif_request` and of a ring slot.
pub const REQUEST_SIZE: usize = 112;
/// Size of `blkif_response`.
pub const RESPONSE_SIZE: usize = 16;
/// Size of `blkif_request_segment`.
pub const SEGMENT_SIZE: usize = 8;

/// Field offsets of Xen's blkif structs, asserted by tests.
pub mod offsets {
    /// `operation` (all request kinds).
    pub const OPERATION: usize = 0;
    /// `nr_segments` (u8, read/write) / `flag` (discard) / `indirect_op` (indirect).
    pub const NR_SEGMENTS: usize = 1;
    /// `handle` (u16, read/write and discard).
    pub const HANDLE: usize = 2;
    /// `nr_segments` of an indirect request (u16).
    pub const INDIRECT_NR_SEGMENTS: usize = 2;
    /// `id` (u64, all request kinds).
    pub const ID: usize = 8;
    /// `sector_number` (u64, all request kinds).
    pub const SECTOR_NUMBER: usize = 16;
    /// `seg[0]` of a read/write request.
    pub const SEGMENTS: usize = 24;
    /// `nr_sectors` of a discard request (u64).
    pub const DISCARD_NR_SECTORS: usize = 24;
    /// `handle` of an indirect request (u16).
    pub const INDIRECT_HANDLE: usize = 24;
    /// `indirect_grefs[0]` of an indirect request.
    pub const INDIRECT_GRANTS: usize = 28;
    /// Segment `gref`.
    pub const SEGMENT_GRANT: usize = 0;
    /// Segment `first_sect`.
    pub const SEGMENT_FIRST_SECTOR: usize = 4;
    /// Segment `last_sect`.
    pub const SEGMENT_LAST_SECTOR: usize = 5;
    /// Response `id` (u64).
    pub const RESPONSE_ID: usize = 0;
    /// Response `operation` (u8).
    pub const RESPONSE_OPERATION: usize = 8;
    /// Response `status` (i16).
    pub const RESPONSE_STATUS: usize = 10;
}

/// One scatter-gather segment: sectors `first_sector..=last_sector` of a granted page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Grant reference of the data page.
    pub grant: u32,
    /// First sector in the page (inclusive).
    pub first_sector: u8,
    /// Last sector in the page (inclusive).
    pub last_sector: u8,
}

impl Segment {
    /// Decodes and validates `first_sector <= last_sector < 8`.
    #[inline]
    fn decode(bytes: &[u8; SEGMENT_SIZE], index: u16) -> Result<Self, Malformation> {
        let segment = Self::decode_unchecked(bytes);
        if segment.first_sector > segment.last_sector || segment.last_sector >= SECTORS_PER_PAGE {
            return Err(Malformation::BadSectorRange {
                segment: index,
                first: segment.first_sector,
                last: segment.last_sector,
            });
        }
        Ok(segment)
    }

    /// `first | last | (last - first)` (wrapping) of the segment's sector range: below
    /// [`SECTORS_PER_PAGE`] (8, a power of two) exactly when `first <= last < 8`, the
    /// check of [`decode`](Self::decode). If `first <= last < 8`, all three are below 8.
    /// Otherwise either `first` or `last` is 8 or more, or `first > last` with both below
    /// 8, and then `last - first` wraps to 249 or more. So an OR over many segments is
    /// below 8 exactly when every one of them passes.
    #[inline]
    fn range_bits(bytes: &[u8; SEGMENT_SIZE]) -> u8 {
        let first = wire::read_u8(bytes, offsets::SEGMENT_FIRST_SECTOR);
        let last = wire::read_u8(bytes, offsets::SEGMENT_LAST_SECTOR);
        first | last | last.wrapping_sub(first)
    }

    /// Decodes without checking: only for a segment [`decode`](Self::decode) accepted.
    #[inline]
    fn decode_unchecked(bytes: &[u8; SEGMENT_SIZE]) -> Self {
        Self {
            grant: wire::read_u32(bytes, offsets::SEGMENT_GRANT),
            first_sector: wire::read_u8(bytes, offsets::SEGMENT_FIRST_SECTOR),
            last_sector: wire::read_u8(bytes, offsets::SEGMENT_LAST_SECTOR),
        }
    }

    #[inline]
    fn encode(&self, bytes: &mut [u8; SEGMENT_SIZE]) {
        wire::write_u64(bytes, 0, self.word());
    }

    /// The segment's 8 wire bytes as one little-endian word: `gref` in bytes 0..4,
    /// `first_sect` at 4, `last_sect` at 5, padding (bytes 6 and 7) zero. Encoding a
    /// whole word at once lets the slot copy read it back in one piece: three narrow
    /// stores followed by one wide load would stall store-to-load forwarding.
    #[inline]
    const fn word(&self) -> u64 {
        const _: () = assert!(
            offsets::SEGMENT_GRANT == 0
                && offsets::SEGMENT_FIRST_SECTOR == 4
                && offsets::SEGMENT_LAST_SECTOR == 5
        );
        self.grant as u64 | (self.first_sector as u64) << 32 | (self.last_sector as u64) << 40
    }

    /// Number of sectors the segment covers.
    pub const fn sector_count(&self) -> u32 {
        (self.last_sector - self.first_sector) as u32 + 1
    }
}

/// A read, write, write-barrier or flush request with direct segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferRequest {
    /// The virtual device.
    pub handle: u16,
    /// The frontend's id, echoed in the response.
    pub id: u64,
    /// First sector on the disk.
    pub sector_number: u64,
    /// How many of `segments` are used.
    pub segment_count: u8,
    /// The segments; those past `segment_count` are zero.
    pub segments: [Segment; MAX_SEGMENTS_PER_REQUEST],
}

impl TransferRequest {
    /// The used segments.
    #[inline]
    pub fn used_segments(&self) -> &[Segment] {
        &self.segments[..usize::from(self.segment_count).min(MAX_SEGMENTS_PER_REQUEST)]
    }
}

/// A discard (trim) request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiscardRequest {
    /// Whether the discarded data must be made unrecoverable (`BLKIF_DISCARD_SECURE`).
    pub secure: bool,
    /// The virtual device.
    pub handle: u16,
    /// The frontend's id.
    pub id: u64,
    /// First sector to discard.
    pub sector_number: u64,
    /// Number of sectors to discard.
    pub sector_count: u64,
}

/// The operation an indirect request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndirectOperation {
    /// Read.
    Read,
    /// Write.
    Write,
}

/// A request whose segments live in separately granted pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndirectRequest {
    /// Read or write.
    pub operation: IndirectOperation,
    /// Number of segments (1..=[`MAX_INDIRECT_SEGMENTS`]).
    pub segment_count: u16,
    /// The frontend's id.
    pub id: u64,
    /// First sector on the disk.
    pub sector_number: u64,
    /// The virtual device.
    pub handle: u16,
    /// Grant references of the pages holding the segments; those past
    /// [`page_count`](Self::page_count) are zero.
    pub indirect_grants: [u32; MAX_INDIRECT_PAGES_PER_REQUEST],
}

impl IndirectRequest {
    /// Number of indirect pages used: `ceil(segment_count / 512)`.
    pub const fn page_count(&self) -> usize {
        (self.segment_count as usize).div_ceil(SEGMENTS_PER_INDIRECT_PAGE)
    }
}

/// A decoded blkif request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkifRequest {
    /// `BLKIF_OP_READ`, 1..=11 segments.
    Read(TransferRequest),
    /// `BLKIF_OP_WRITE`, 1..=11 segments.
    Write(TransferRequest),
    /// `BLKIF_OP_WRITE_BARRIER`, 0..=11 segments.
    WriteBarrier(TransferRequest),
    /// `BLKIF_OP_FLUSH_DISKCACHE`, 0..=11 segments.
    FlushDiskCache(TransferRequest),
    /// `BLKIF_OP_DISCARD`.
    Discard(DiscardRequest),
    /// `BLKIF_OP_INDIRECT`.
    Indirect(IndirectRequest),
}

impl BlkifRequest {
    /// The frontend's id, to echo in the response.
    pub const fn id(&self) -> u64 {
        match self {
            Self::Read(request)
            | Self::Write(request)
            | Self::WriteBarrier(request)
            | Self::FlushDiskCache(request) => request.id,
            Self::Discard(request) => request.id,
            Self::Indirect(request) => request.id,
        }
    }

    /// The operation code, to echo in the response.
    pub const fn operation(&self) -> u8 {
        match self {
            Self::Read(_) => OPERATION_READ,
            Self::Write(_) => OPERATION_WRITE,
            Self::WriteBarrier(_) => OPERATION_WRITE_BARRIER,
            Self::FlushDiskCache(_) => OPERATION_FLUSH_DISKCACHE,
            Self::Discard(_) => OPERATION_DISCARD,
            Self::Indirect(_) => OPERATION_INDIRECT,
        }
    }

    #[inline]
    fn decode_transfer(
        bytes: &[u8; REQUEST_SIZE],
        minimum_segments: u8,
    ) -> Result<TransferRequest, Malformation> {
        // Built in one go with a check per segment, as the compiler folds it into the
        // ring's read; decoding into a default and moving it out cost the two-domain ring
        // benchmark 90 instructions a request on the bare-metal target.
        let segment_count = Self::segment_count(bytes, minimum_segments)?;
        let mut segments = [Segment::default(); MAX_SEGMENTS_PER_REQUEST];
        for (index, segment) in segments
            .iter_mut()
            .enumerate()
            .take(usize::from(segment_count))
        {
            *segment = Segment::decode(segment_bytes(bytes, index), index as u16)?;
        }
        Ok(TransferRequest {
            handle: wire::read_u16(bytes, offsets::HANDLE),
            id: wire::read_u64(bytes, offsets::ID),
            sector_number: wire::read_u64(bytes, offsets::SECTOR_NUMBER),
            segment_count,
            segments,
        })
    }

    /// The segment count of a read/write/barrier/flush request, checked against the
    /// operation's minimum and the maximum.
    #[inline]
    fn segment_count(
        bytes: &[u8; REQUEST_SIZE],
        minimum_segments: u8,
    ) -> Result<u8, Malformation> {
        let segment_count = wire::read_u8(bytes, offsets::NR_SEGMENTS);
        if segment_count < minimum_segments || usize::from(segment_count) > MAX_SEGMENTS_PER_REQUEST
        {
            return Err(Malformation::BadSegmentCount {
                count: u16::from(segment_count),
            });
        }
        Ok(segment_count)
    }

    /// Decodes a read/write/barrier/flush request into `request`, which holds a transfer
    /// whose segments past its `segment_count` are zero (as every decoded one does): only
    /// the segments used by either are written. Every check runs before `request` is
    /// written, so a malformed request leaves it unchanged.
    #[inline]
    fn decode_transfer_into(
        bytes: &[u8; REQUEST_SIZE],
        minimum_segments: u8,
        request: &mut TransferRequest,
    ) -> Result<(), Malformation> {
        let segment_count = Self::segment_count(bytes, minimum_segments)?;
        let count = usize::from(segment_count);
        // One verdict over every used segment, without a branch per segment (see
        // `Segment::range_bits`); only a request with a bad range is checked again one
        // segment at a time, to report the first bad one as `Segment::decode` does.
        let mut range_bits = 0;
        for index in 0..count {
            range_bits |= Segment::range_bits(segment_bytes(bytes, index));
        }
        if range_bits >= SECTORS_PER_PAGE {
            for index in 0..count {
                Segment::decode(segment_bytes(bytes, index), index as u16)?;
            }
        }
        for (index, segment) in request.segments[..count].iter_mut().enumerate() {
            *segment = Segment::decode_unchecked(segment_bytes(bytes, index));
        }
        // Segments past the count are zero: only those the previous request used may not be.
        let previous = usize::from(request.segment_count).min(MAX_SEGMENTS_PER_REQUEST);
        if previous > count {
            request.segments[count..previous].fill(Segment::default());
        }
        request.handle = wire::read_u16(bytes, offsets::HANDLE);
        request.id = wire::read_u64(bytes, offsets::ID);
        request.sector_number = wire::read_u64(bytes, offsets::SECTOR_NUMBER);
        request.segment_count = segment_count;
        Ok(())
    }

    /// The answer-carrying error for a request that failed to decode.
    #[inline]
    fn malformed(
        bytes: &[u8; REQUEST_SIZE],
        operation: u8,
        reason: Malformation,
    ) -> MalformedEntry {
        MalformedEntry {
            id: wire::read_u64(bytes, offsets::ID),
            operation,
            reason,
        }
    }

    fn decode_indirect(bytes: &[u8; REQUEST_SIZE]) -> Result<IndirectRequest, Malformation> {
        let operation = match wire::read_u8(bytes, offsets::NR_SEGMENTS) {
            OPERATION_READ => IndirectOperation::Read,
            OPERATION_WRITE => IndirectOperation::Write,
            other => return Err(Malformation::BadIndirectOperation { operation: other }),
        };
        let segment_count = wire::read_u16(bytes, offsets::INDIRECT_NR_SEGMENTS);
        if segment_count == 0 || segment_count > MAX_INDIRECT_SEGMENTS {
            return Err(Malformation::BadSegmentCount {
                count: segment_count,
            });
        }
        let mut request = IndirectRequest {
            operation,
            segment_count,
            id: wire::read_u64(bytes, offsets::ID),
            sector_number: wire::read_u64(bytes, offsets::SECTOR_NUMBER),
            handle: wire::read_u16(bytes, offsets::INDIRECT_HANDLE),
            indirect_grants: [0; MAX_INDIRECT_PAGES_PER_REQUEST],
        };
        for page in 0..request.page_count() {
            request.indirect_grants[page] =
                wire::read_u32(bytes, offsets::INDIRECT_GRANTS + 4 * page);
        }
        Ok(request)
    }

    /// Encodes a read/write request in whole 64-bit words (see [`Segment::word`]): the
    /// first word is `operation`, `nr_segments`, `handle` and four bytes of zero padding.
    #[inline]
    fn encode_transfer(request: &TransferRequest, operation: u8, bytes: &mut [u8; REQUEST_SIZE]) {
        const _: () =
            assert!(offsets::OPERATION == 0 && offsets::NR_SEGMENTS == 1 && offsets::HANDLE == 2);
        let first_word = u64::from(operation)
            | u64::from(request.segment_count) << 8
            | u64::from(request.handle) << 16;
        wire::write_u64(bytes, offsets::OPERATION, first_word);
        wire::write_u64(bytes, offsets::ID, request.id);
        wire::write_u64(bytes, offsets::SECTOR_NUMBER, request.sector_number);
        for (index, segment) in request.used_segments().iter().enumerate() {
            segment.encode(segment_bytes_mut(bytes, index));
        }
    }
}

/// The bytes of direct segment `index` (below 11) of a request.
#[inline]
fn segment_bytes(bytes: &[u8; REQUEST_SIZE], index: usize) -> &[u8; SEGMENT_SIZE] {
    let start = offsets::SEGMENTS + index * SEGMENT_SIZE;
    bytes[start..start + SEGMENT_SIZE]
        .try_into()
        .expect("a segment is SEGMENT_SIZE bytes")
}

/// The bytes of direct segment `index` (below 11) of a request, to write.
#[inline]
fn segment_bytes_mut(bytes: &mut [u8; REQUEST_SIZE], index: usize) -> &mut [u8; SEGMENT_SIZE] {
    let start = offsets::SEGMENTS + index * SEGMENT_SIZE;
    (&mut bytes[start..start + SEGMENT_SIZE])
        .try_into()
        .expect("a segment is SEGMENT_SIZE bytes")
}

impl RingEntry for BlkifRequest {
    const SIZE: usize = REQUEST_SIZE;

    #[inline]
    fn encode(&self, bytes: &mut [u8]) {
        // A fixed-size view, so the field offsets below need no bounds checks (panics, as
        // indexing would, if the caller passes fewer than SIZE bytes).
        let bytes: &mut [u8; REQUEST_SIZE] = (&mut bytes[..REQUEST_SIZE])
            .try_into()
            .expect("sliced to REQUEST_SIZE");
        match self {
            Self::Read(request)
            | Self::Write(request)
            | Self::WriteBarrier(request)
            | Self::FlushDiskCache(request) => {
                Self::encode_transfer(request, self.operation(), bytes);
            }
            Self::Discard(request) => {
                wire::write_u8(bytes, offsets::OPERATION, OPERATION_DISCARD);
                wire::write_u8(
                    bytes,
                    offsets::NR_SEGMENTS,
                    if request.secure { DISCARD_SECURE } else { 0 },
                );
                wire::write_u16(bytes, offsets::HANDLE, request.handle);
                wire::write_u64(bytes, offsets::ID, request.id);
                wire::write_u64(bytes, offsets::SECTOR_NUMBER, request.sector_number);
                wire::write_u64(bytes, offsets::DISCARD_NR_SECTORS, request.sector_count);
            }
            Self::Indirect(request) => {
                wire::write_u8(bytes, offsets::OPERATION, OPERATION_INDIRECT);
                let operation = match request.operation {
                    IndirectOperation::Read => OPERATION_READ,
                    IndirectOperation::Write => OPERATION_WRITE,
                };
                wire::write_u8(bytes, offsets::NR_SEGMENTS, operation);
                wire::write_u16(bytes, offsets::INDIRECT_NR_SEGMENTS, request.segment_count);
                wire::write_u64(bytes, offsets::ID, request.id);
                wire::write_u64(bytes, offsets::SECTOR_NUMBER, request.sector_number);
                wire::write_u16(bytes, offsets::INDIRECT_HANDLE, request.handle);
                for (page, grant) in request.indirect_grants.iter().enumerate() {
                    wire::write_u32(bytes, offsets::INDIRECT_GRANTS + 4 * page, *grant);
                }
            }
        }
    }

    #[inline]
    fn decode(bytes: &[u8]) -> Result<Self, MalformedEntry> {
        let bytes: &[u8; REQUEST_SIZE] = bytes[..REQUEST_SIZE]
            .try_into()
            .expect("sliced to REQUEST_SIZE");
        let operation = wire::read_u8(bytes, offsets::OPERATION);
        let decoded = match operation {
            OPERATION_READ => Self::decode_transfer(bytes, 1).map(Self::Read),
            OPERATION_WRITE => Self::decode_transfer(bytes, 1).map(Self::Write),
            OPERATION_WRITE_BARRIER => Self::decode_transfer(bytes, 0).map(Self::WriteBarrier),
            OPERATION_FLUSH_DISKCACHE => Self::decode_transfer(bytes, 0).map(Self::FlushDiskCache),
            OPERATION_DISCARD => Ok(Self::Discard(DiscardRequest {
                secure: wire::read_u8(bytes, offsets::NR_SEGMENTS) & DISCARD_SECURE != 0,
                handle: wire::read_u16(bytes, offsets::HANDLE),
                id: wire::read_u64(bytes, offsets::ID),
                sector_number: wire::read_u64(bytes, offsets::SECTOR_NUMBER),
                sector_count: wire::read_u64(bytes, offsets::DISCARD_NR_SECTORS),
            })),
            OPERATION_INDIRECT => Self::decode_indirect(bytes).map(Self::Indirect),
            _ => Err(Malformation::UnknownOperation),
        };
        decoded.map_err(|reason| Self::malformed(bytes, operation, reason))
    }

    /// A transfer decoded over a transfer of the same operation is rewritten in place:
    /// its header, the segments the new request uses, and the segments only the old one
    /// used (zeroed). Segments past the old `segment_count` are taken to be zero, as
    /// [`TransferRequest::segments`] says and every decoded request has them. Anything
    /// else is decoded whole.
    #[inline]
    fn decode_into(&mut self, bytes: &[u8]) -> Result<(), MalformedEntry> {
        let bytes: &[u8; REQUEST_SIZE] = bytes[..REQUEST_SIZE]
            .try_into()
            .expect("sliced to REQUEST_SIZE");
        let operation = wire::read_u8(bytes, offsets::OPERATION);
        let (request, minimum_segments) = match (operation, &mut *self) {
            (OPERATION_READ, Self::Read(request)) | (OPERATION_WRITE, Self::Write(request)) => {
                (request, 1)
            }
            (OPERATION_WRITE_BARRIER, Self::WriteBarrier(request))
            | (OPERATION_FLUSH_DISKCACHE, Self::FlushDiskCache(request)) => (request, 0),
            _ => {
                *self = Self::decode(bytes)?;
                return Ok(());
            }
        };
        Self::decode_transfer_into(bytes, minimum_segments, request)
            .map_err(|reason| Self::malformed(bytes, operation, reason))
    }
}

/// A blkif response. Its padding (byte 9 and bytes 12..16) is always written as zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlkifResponse {
    /// The request's id.
    pub id: u64,
    /// The request's operation.
    pub operation: u8,
    /// [`STATUS_OKAY`], [`STATUS_ERROR`] or [`STATUS_NOT_SUPPORTED`].
    pub status: i16,
}

impl BlkifResponse {
    /// A response to `request` with `status`.
    pub const fn to(request: &BlkifRequest, status: i16) -> Self {
        Self {
            id: request.id(),
            operation: request.operation(),
            status,
        }
    }

    /// The answer to a request that did not decode: `EOPNOTSUPP` for an unknown
    /// operation, as Xen's blkback does, and `ERROR` for anything else.
    pub const fn for_malformed(malformed: &MalformedEntry) -> Self {
        let status = match malformed.reason {
            Malformation::UnknownOperation => STATUS_NOT_SUPPORTED,
            _ => STATUS_ERROR,
        };
        Self {
            id: malformed.id,
            operation: malformed.operation,
            status,
        }
    }
}

impl RingEntry for BlkifResponse {
    const SIZE: usize = RESPONSE_SIZE;

    #[inline]
    fn encode(&self, bytes: &mut [u8]) {
        const _: () = assert!(offsets::RESPONSE_OPERATION == 8 && offsets::RESPONSE_STATUS == 10);
        wire::write_u64(bytes, offsets::RESPONSE_ID, self.id);
        // The second word whole (operation, zero padding byte, status, four zero padding
        // bytes), so the slot copy reads back one full store (see `Segment::word`).
        let second_word = u64::from(self.operation) | u64::from(self.status as u16) << 16;
        wire::write_u64(bytes, offsets::RESPONSE_OPERATION, second_word);
    }

    #[inline]
    fn decode(bytes: &[u8]) -> Result<Self, MalformedEntry> {
        Ok(Self {
            id: wire::read_u64(bytes, offsets::RESPONSE_ID),
            operation: wire::read_u8(bytes, offsets::RESPONSE_OPERATION),
            status: wire::read_u16(bytes, offsets::RESPONSE_STATUS) as i16,
        })
    }
}

/// The blkif protocol: [`BlkifRequest`] one way, [`BlkifResponse`] back; 32 slots.
#[derive(Debug)]
pub enum Blkif {}

impl Protocol for Blkif {
    type Request = BlkifRequest;
    type Response = BlkifResponse;
}

/// Reads segment `index` of an indirect segment page (a page the frontend granted, so
/// shared memory too): copied once, then validated.
///
/// # Errors
///
/// [`Malformation::BadSectorRange`] for a bad sector range, and
/// [`Malformation::BadSegmentCount`] if `index` is not below 512.
pub fn read_indirect_segment(page: &SharedPage<'_>, index: u16) -> Result<Segment, Malformation> {
    if usize::from(index) >= SEGMENTS_PER_INDIRECT_PAGE {
        return Err(Malformation::BadSegmentCount { count: index });
    }
    let mut copy = [0u8; SEGMENT_SIZE];
    page.read_words(usize::from(index) * SEGMENT_SIZE, &mut copy);
    Segment::decode(&copy, index)
}

/// Writes segment `index` of an indirect segment page, for frontends.
///
/// # Errors
///
/// [`Malformation::BadSegmentCount`] if `index` is not below 512.
pub fn write_indirect_segment(
    page: &SharedPage<'_>,
    index: u16,
    segment: &Segment,
) -> Result<(), Malformation> {
    if usize::from(index) >= SEGMENTS_PER_INDIRECT_PAGE {
        return Err(Malformation::BadSegmentCount { count: index });
    }
    let mut encoded = [0u8; SEGMENT_SIZE];
    segment.encode(&mut encoded);
    page.write_words(usize::from(index) * SEGMENT_SIZE, &encoded);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_bits_agree_with_the_segment_check() {
        for first in 0..=u8::MAX {
            for last in 0..=u8::MAX {
                let mut bytes = [0u8; SEGMENT_SIZE];
                bytes[offsets::SEGMENT_FIRST_SECTOR] = first;
                bytes[offsets::SEGMENT_LAST_SECTOR] = last;
                assert_eq!(
                    Segment::range_bits(&bytes) < SECTORS_PER_PAGE,
                    Segment::decode(&bytes, 0).is_ok(),
                    "first {first} last {last}"
                );
            }
        }
    }

    #[test]
    fn every_bad_sector_range_is_refused_with_its_segment() {
        // The other segments' ranges vary too: a bad range must not hide behind good ones.
        let goods = [(0, 0), (1, 6), (7, 7)].map(|(first_sector, last_sector)| Segment {
            grant: 7,
            first_sector,
            last_sector,
        });
        for first in 0..=u8::MAX {
            for last in 0..=u8::MAX {
                for (index, good) in [0, 5, 10].into_iter().zip(goods) {
                    let mut request = TransferRequest {
                        id: 99,
                        segment_count: 11,
                        segments: [good; MAX_SEGMENTS_PER_REQUEST],
                        ..TransferRequest::default()
                    };
                    request.segments[index].first_sector = first;
                    request.segments[index].last_sector = last;
                    let mut bytes = [0u8; REQUEST_SIZE];
                    BlkifRequest::Read(request).encode(&mut bytes);
                    let decoded = BlkifRequest::decode(&bytes);
                    if first <= last && last < SECTORS_PER_PAGE {
                        assert_eq!(decoded, Ok(BlkifRequest::Read(request)));
                    } else {
                        let reason = Malformation::BadSectorRange {
                            segment: index as u16,
                            first,
                            last,
                        };
                        assert_eq!(
                            decoded,
                            Err(MalformedEntry {
                                id: 99,
                                operation: OPERATION_READ,
                                reason,
                            })
                        );
                    }
                }
            }
        }
    }

    /// xorshift64: reproducible bytes without a dependency.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// A request slot whose fields land near the edges of what decoding accepts.
    fn slot(state: &mut u64) -> [u8; REQUEST_SIZE] {
        let mut bytes = [0u8; REQUEST_SIZE];
        for byte in &mut bytes {
            *byte = next(state) as u8;
        }
        bytes[offsets::OPERATION] = (next(state) % 8) as u8;
        bytes[offsets::NR_SEGMENTS] = (next(state) % 14) as u8;
        for index in 0..MAX_SEGMENTS_PER_REQUEST {
            let start = offsets::SEGMENTS + index * SEGMENT_SIZE;
            if next(state) % 16 != 0 {
                let first = (next(state) % 8) as u8;
                bytes[start + offsets::SEGMENT_FIRST_SECTOR] = first;
                bytes[start + offsets::SEGMENT_LAST_SECTOR] = first + (next(state) % 8) as u8;
            }
        }
        bytes
    }

    #[test]
    fn decoding_into_one_place_equals_decoding() {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        let mut places = [
            BlkifRequest::Read(TransferRequest::default()),
            BlkifRequest::FlushDiskCache(TransferRequest::default()),
            BlkifRequest::Discard(DiscardRequest::default()),
        ];
        let mut decoded = 0;
        for _ in 0..100_000 {
            let bytes = slot(&mut state);
            let expected = BlkifRequest::decode(&bytes);
            for place in &mut places {
                let before = *place;
                match place.decode_into(&bytes) {
                    Ok(()) => {
                        assert_eq!(Ok(*place), expected);
                        decoded += 1;
                    }
                    Err(malformed) => {
                        assert_eq!(Err(malformed), expected);
                        assert_eq!(*place, before, "changed by a malformed request");
                    }
                }
            }
        }
        assert!(decoded > 50_000, "too few valid requests: {decoded}");
    }
}
