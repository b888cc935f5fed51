//! Frames on the control channel's byte stream, and the incremental
//! [`Decoder`] that finds them among garbage.
//!
//! A frame is a 24-byte header and a payload, all little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `"XLCP"` ([`MAGIC`]) |
//! | 4 | 1 | version ([`VERSION`]) |
//! | 5 | 1 | kind (a request or response kind, see [`crate::kind`]) |
//! | 6 | 2 | reserved, zero |
//! | 8 | 4 | request id |
//! | 12 | 4 | payload length (at most [`MAX_PAYLOAD_BYTES`]) |
//! | 16 | 4 | CRC-32 of the payload |
//! | 20 | 4 | CRC-32 of bytes 0..20 of the header |
//!
//! The header's own checksum lets a decoder reject a stray magic in
//! garbage at once instead of waiting for a payload that never comes.

use alloc::vec::Vec;
use core::fmt;

use crate::crc32::crc32;

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"XLCP";
/// The version this crate writes and reads.
pub const VERSION: u8 = 1;
/// The header's size in bytes.
pub const HEADER_BYTES: usize = 24;
/// The largest payload a frame may carry (64 KiB).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// The largest frame, header included: the decoder's whole buffer.
pub const MAX_FRAME_BYTES: usize = HEADER_BYTES + MAX_PAYLOAD_BYTES;

/// One frame: its kind, the request it belongs to and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The message kind ([`crate::kind`]).
    pub kind: u8,
    /// The request id: chosen by the host for a request, echoed by every
    /// response to it.
    pub request_id: u32,
    /// The message's encoded fields.
    pub payload: Vec<u8>,
}

/// A frame that cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The payload is this many bytes, over [`MAX_PAYLOAD_BYTES`].
    Oversize(usize),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Oversize(bytes) => write!(
                formatter,
                "payload of {bytes} bytes is over the limit of {MAX_PAYLOAD_BYTES}"
            ),
        }
    }
}

/// What the [`Decoder`] found wrong with a frame it then skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A magic whose header checksum does not match (garbage, or a
    /// corrupted header).
    HeaderChecksum,
    /// A well-formed header of another protocol version.
    UnsupportedVersion(u8),
    /// A well-formed header whose reserved field is not zero.
    ReservedNotZero(u16),
    /// A well-formed header announcing a payload over [`MAX_PAYLOAD_BYTES`].
    Oversize(u32),
    /// The payload does not match its checksum.
    PayloadChecksum {
        /// The frame's kind.
        kind: u8,
        /// The frame's request id.
        request_id: u32,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeaderChecksum => write!(formatter, "frame header checksum mismatch"),
            Self::UnsupportedVersion(version) => write!(
                formatter,
                "frame of protocol version {version}, expected {VERSION}"
            ),
            Self::ReservedNotZero(value) => {
                write!(
                    formatter,
                    "frame header reserved field is {value:#x}, expected 0"
                )
            }
            Self::Oversize(bytes) => write!(
                formatter,
                "frame payload of {bytes} bytes is over the limit of {MAX_PAYLOAD_BYTES}"
            ),
            Self::PayloadChecksum { kind, request_id } => write!(
                formatter,
                "payload checksum mismatch in frame kind {kind:#04x}, request {request_id}"
            ),
        }
    }
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(field) = bytes.get(offset..offset + 4) {
        word.copy_from_slice(field);
    }
    u32::from_le_bytes(word)
}

/// Appends the frame of `kind`, `request_id` and `payload` to `out`.
pub fn encode_frame(
    kind: u8,
    request_id: u32,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(EncodeError::Oversize(payload.len()));
    }
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(kind);
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    let header_crc = crc32(&out[start..start + 20]);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

impl Frame {
    /// The frame's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(HEADER_BYTES + self.payload.len());
        encode_frame(self.kind, self.request_id, &self.payload, &mut out)?;
        Ok(out)
    }
}

/// An incremental frame decoder with bounded memory (at most
/// [`MAX_FRAME_BYTES`] buffered). Feed it bytes with [`Decoder::push`] and
/// take frames and errors with [`Decoder::next_event`]; or do both with
/// [`Decoder::push_all`]. Garbage between frames is skipped (and counted
/// in [`Decoder::discarded_bytes`]); after a bad header or payload it
/// searches again from the byte after the bad frame's magic. No input
/// makes it panic.
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    discarded: u64,
}

impl Decoder {
    /// An empty decoder.
    pub const fn new() -> Self {
        Self {
            buffer: Vec::new(),
            discarded: 0,
        }
    }

    /// Takes as many of `input`'s bytes as fit in the buffer and returns
    /// how many it took. It takes none only while the buffer is full; then
    /// [`Decoder::next_event`] frees room.
    pub fn push(&mut self, input: &[u8]) -> usize {
        let room = MAX_FRAME_BYTES.saturating_sub(self.buffer.len());
        let taken = input.len().min(room);
        self.buffer.extend_from_slice(&input[..taken]);
        taken
    }

    /// The next frame or error in the buffered bytes, or `None` when more
    /// bytes are needed.
    pub fn next_event(&mut self) -> Option<Result<Frame, FrameError>> {
        self.skip_to_magic();
        if self.buffer.len() < HEADER_BYTES {
            return None;
        }
        let header = &self.buffer[..HEADER_BYTES];
        if crc32(&header[..20]) != read_u32(header, 20) {
            self.discard(1);
            return Some(Err(FrameError::HeaderChecksum));
        }
        let version = header[4];
        let kind = header[5];
        let reserved = u16::from_le_bytes([header[6], header[7]]);
        let request_id = read_u32(header, 8);
        let length = read_u32(header, 12);
        let payload_crc = read_u32(header, 16);
        let error = if version != VERSION {
            Some(FrameError::UnsupportedVersion(version))
        } else if reserved != 0 {
            Some(FrameError::ReservedNotZero(reserved))
        } else if length as usize > MAX_PAYLOAD_BYTES {
            Some(FrameError::Oversize(length))
        } else {
            None
        };
        if let Some(error) = error {
            self.discard(1);
            return Some(Err(error));
        }
        let end = HEADER_BYTES + length as usize;
        if self.buffer.len() < end {
            return None;
        }
        if crc32(&self.buffer[HEADER_BYTES..end]) != payload_crc {
            self.discard(1);
            return Some(Err(FrameError::PayloadChecksum { kind, request_id }));
        }
        let payload = self.buffer[HEADER_BYTES..end].to_vec();
        self.buffer.drain(..end);
        Some(Ok(Frame {
            kind,
            request_id,
            payload,
        }))
    }

    /// Feeds all of `input`, calling `on_event` for every frame and error
    /// found on the way.
    pub fn push_all(
        &mut self,
        mut input: &[u8],
        mut on_event: impl FnMut(Result<Frame, FrameError>),
    ) {
        loop {
            let taken = self.push(input);
            input = &input[taken..];
            while let Some(event) = self.next_event() {
                on_event(event);
            }
            if input.is_empty() {
                return;
            }
        }
    }

    /// How many bytes were skipped as garbage or as parts of bad frames.
    pub fn discarded_bytes(&self) -> u64 {
        self.discarded
    }

    /// How many bytes are buffered, waiting for the rest of a frame.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// Forgets buffered bytes (a new connection starts).
    pub fn reset(&mut self) {
        self.discarded += self.buffer.len() as u64;
        self.buffer.clear();
    }

    fn discard(&mut self, count: usize) {
        let count = count.min(self.buffer.len());
        self.buffer.drain(..count);
        self.discarded += count as u64;
    }

    /// Drops bytes before the first (possibly partial, at the end) magic.
    fn skip_to_magic(&mut self) {
        let mut start = 0;
        while start < self.buffer.len() {
            let rest = &self.buffer[start..];
            let compared = rest.len().min(MAGIC.len());
            if rest[..compared] == MAGIC[..compared] {
                break;
            }
            start += 1;
        }
        self.discard(start);
    }
}
