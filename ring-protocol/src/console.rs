//! The console page, byte-compatible with Xen's `xencons_interface` (`io/console.h`):
//! `in[1024]` at 0 (backend to guest), `out[2048]` at 1024 (guest to backend), then
//! `in_cons`, `in_prod`, `out_cons`, `out_prod` at 3072..3088.

use crate::byte_ring::{ByteReader, ByteRingLayout, ByteWriter};
use crate::error::RingError;
use crate::shared::SharedPage;

/// Size of the `in` array (backend to guest).
pub const INPUT_SIZE: u32 = 1024;
/// Size of the `out` array (guest to backend).
pub const OUTPUT_SIZE: u32 = 2048;
/// Offset of `in`.
pub const INPUT_OFFSET: usize = 0;
/// Offset of `out`.
pub const OUTPUT_OFFSET: usize = 1024;
/// Offset of `in_cons`.
pub const INPUT_CONSUMER_OFFSET: usize = 3072;
/// Offset of `in_prod`.
pub const INPUT_PRODUCER_OFFSET: usize = 3076;
/// Offset of `out_cons`.
pub const OUTPUT_CONSUMER_OFFSET: usize = 3080;
/// Offset of `out_prod`.
pub const OUTPUT_PRODUCER_OFFSET: usize = 3084;
/// End of the four indices (`sizeof` up to and including `out_prod`).
pub const INDICES_END: usize = 3088;

/// The `in` direction: the backend writes, the guest reads.
pub const INPUT: ByteRingLayout = ByteRingLayout {
    data_offset: INPUT_OFFSET,
    size: INPUT_SIZE,
    consumer_offset: INPUT_CONSUMER_OFFSET,
    producer_offset: INPUT_PRODUCER_OFFSET,
};

/// The `out` direction: the guest writes, the backend reads.
pub const OUTPUT: ByteRingLayout = ByteRingLayout {
    data_offset: OUTPUT_OFFSET,
    size: OUTPUT_SIZE,
    consumer_offset: OUTPUT_CONSUMER_OFFSET,
    producer_offset: OUTPUT_PRODUCER_OFFSET,
};

/// The guest's side of a console page.
pub struct ConsoleFrontend<'page> {
    /// Writes the guest's output (`out`).
    pub output: ByteWriter<'page>,
    /// Reads the operator's input (`in`).
    pub input: ByteReader<'page>,
}

impl<'page> ConsoleFrontend<'page> {
    /// Attaches to a console page.
    ///
    /// # Errors
    ///
    /// [`RingError::PeerOverflow`] if either direction's indices are inconsistent.
    pub fn attach(page: SharedPage<'page>) -> Result<Self, RingError> {
        Ok(Self {
            output: ByteWriter::attach(page.clone(), OUTPUT)?,
            input: ByteReader::attach(page, INPUT)?,
        })
    }
}

/// The console backend's side of a console page.
pub struct ConsoleBackend<'page> {
    /// Writes the operator's input (`in`).
    pub input: ByteWriter<'page>,
    /// Reads the guest's output (`out`).
    pub output: ByteReader<'page>,
}

impl<'page> ConsoleBackend<'page> {
    /// Attaches to a console page.
    ///
    /// # Errors
    ///
    /// [`RingError::PeerOverflow`] if either direction's indices are inconsistent.
    pub fn attach(page: SharedPage<'page>) -> Result<Self, RingError> {
        Ok(Self {
            input: ByteWriter::attach(page.clone(), INPUT)?,
            output: ByteReader::attach(page, OUTPUT)?,
        })
    }
}
