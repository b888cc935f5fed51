//! What a ring carries: entries encoded to and decoded from their exact wire bytes, and
//! the protocol that pairs a request type with a response type.
//!
//! Decoding works on a private copy of the slot (the ring copies it out of the shared page
//! exactly once), so no entry type is ever transmuted from peer-written memory.

use crate::layout::{ring_size, MAX_SLOT_SIZE};
use core::fmt;

/// A request or response with a fixed wire layout.
pub trait RingEntry: Sized {
    /// The entry's size in bytes on the wire (`sizeof` of Xen's struct).
    const SIZE: usize;

    /// Writes the entry into `bytes` (exactly `SIZE` long, zeroed beforehand, so any byte
    /// not written — padding — stays zero).
    fn encode(&self, bytes: &mut [u8]);

    /// Reads an entry from `bytes` (exactly `SIZE` long, a private copy), validating it.
    ///
    /// # Errors
    ///
    /// A [`MalformedEntry`] when the bytes do not form a valid entry; it carries what the
    /// backend needs to answer the request with an error.
    fn decode(bytes: &[u8]) -> Result<Self, MalformedEntry>;

    /// Reads an entry from `bytes` into `self`, validating it exactly as
    /// [`decode`](Self::decode) does, for a caller that decodes entry after entry into one
    /// place: an entry type may then rewrite only what changed (blkif rewrites a transfer
    /// over one of the same operation in place). On success `self` equals what `decode`
    /// returns; on error `self` is unchanged.
    ///
    /// # Errors
    ///
    /// The [`MalformedEntry`] that `decode` returns.
    #[inline]
    fn decode_into(&mut self, bytes: &[u8]) -> Result<(), MalformedEntry> {
        *self = Self::decode(bytes)?;
        Ok(())
    }
}

/// A split-device protocol: which entries travel each way on one ring page.
pub trait Protocol {
    /// Produced by the frontend, consumed by the backend.
    type Request: RingEntry;
    /// Produced by the backend, consumed by the frontend.
    type Response: RingEntry;

    /// A slot holds a request or the response that replaces it (Xen's union of the two).
    const SLOT_SIZE: usize = max(Self::Request::SIZE, Self::Response::SIZE);
    /// Number of slots in the ring (a power of two).
    const RING_SIZE: u32 = ring_size(Self::SLOT_SIZE);
}

const fn max(left: usize, right: usize) -> usize {
    if left > right {
        left
    } else {
        right
    }
}

/// Compile-time check that a protocol's slots fit this crate's copy buffer and its
/// 32-bit accessor.
pub(crate) const fn assert_protocol_shape<P: Protocol>() {
    assert!(
        P::SLOT_SIZE <= MAX_SLOT_SIZE,
        "slot too large for the copy buffer"
    );
    assert!(P::SLOT_SIZE % 4 == 0, "slots must be whole 32-bit words");
    assert!(P::Request::SIZE % 4 == 0 && P::Response::SIZE % 4 == 0);
}

/// Whether the slots of protocol `P` are accessed as 64-bit words: when the slot and both
/// entry sizes are multiples of 8 (slots start at the 64-byte header, so every slot word is
/// then 8-aligned). Otherwise 32-bit words. Both ends use the same protocol, so each slot
/// word is always accessed with the same width.
pub(crate) const fn wide_slots<P: Protocol>() -> bool {
    P::SLOT_SIZE % 8 == 0 && P::Request::SIZE % 8 == 0 && P::Response::SIZE % 8 == 0
}

/// Why an entry was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformation {
    /// The operation code is not one this protocol knows.
    UnknownOperation,
    /// The segment count is outside what the operation allows.
    BadSegmentCount {
        /// The count found in the entry.
        count: u16,
    },
    /// A segment's sector range is not `first <= last < sectors per page`.
    BadSectorRange {
        /// Which segment.
        segment: u16,
        /// Its first sector.
        first: u8,
        /// Its last sector.
        last: u8,
    },
    /// An indirect request names an operation that cannot be indirect.
    BadIndirectOperation {
        /// The operation found.
        operation: u8,
    },
}

/// An entry the peer wrote that does not decode. The slot is consumed; a backend answers
/// it with an error response carrying `id` and `operation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedEntry {
    /// The peer's request id, to echo in the error response.
    pub id: u64,
    /// The operation code as found.
    pub operation: u8,
    /// What was wrong.
    pub reason: Malformation,
}

impl fmt::Display for MalformedEntry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "malformed entry id {} operation {}: {:?}",
            self.id, self.operation, self.reason
        )
    }
}

impl core::error::Error for MalformedEntry {}

/// Little-endian field readers and writers over a private copy of an entry. Xen's layouts
/// are native-endian; this crate serves x86_64, which is little-endian.
pub(crate) mod wire {
    /// The `u8` at `offset`.
    #[inline]
    pub(crate) fn read_u8(bytes: &[u8], offset: usize) -> u8 {
        bytes[offset]
    }

    /// The `u16` at `offset`.
    #[inline]
    pub(crate) fn read_u16(bytes: &[u8], offset: usize) -> u16 {
        u16::from_le_bytes([bytes[offset], bytes[offset + 1]])
    }

    /// The `u32` at `offset`.
    #[inline]
    pub(crate) fn read_u32(bytes: &[u8], offset: usize) -> u32 {
        let mut field = [0u8; 4];
        field.copy_from_slice(&bytes[offset..offset + 4]);
        u32::from_le_bytes(field)
    }

    /// The `u64` at `offset`.
    #[inline]
    pub(crate) fn read_u64(bytes: &[u8], offset: usize) -> u64 {
        let mut field = [0u8; 8];
        field.copy_from_slice(&bytes[offset..offset + 8]);
        u64::from_le_bytes(field)
    }

    /// Writes a `u8` at `offset`.
    #[inline]
    pub(crate) fn write_u8(bytes: &mut [u8], offset: usize, value: u8) {
        bytes[offset] = value;
    }

    /// Writes a `u16` at `offset`.
    #[inline]
    pub(crate) fn write_u16(bytes: &mut [u8], offset: usize, value: u16) {
        bytes[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
    }

    /// Writes a `u32` at `offset`.
    #[inline]
    pub(crate) fn write_u32(bytes: &mut [u8], offset: usize, value: u32) {
        bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Writes a `u64` at `offset`.
    #[inline]
    pub(crate) fn write_u64(bytes: &mut [u8], offset: usize, value: u64) {
        bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    }
}
