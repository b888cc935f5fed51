//! The store page, byte-compatible with Xen's `xenstore_domain_interface`
//! (`io/xs_wire.h`): `req[1024]` at 0 (guest to store), `rsp[1024]` at 1024 (store to
//! guest), then `req_cons`, `req_prod`, `rsp_cons`, `rsp_prod` at 2048..2064. The
//! `server_features`, `connection` and `error` words that follow are not handled here.

use crate::byte_ring::{ByteReader, ByteRingLayout, ByteWriter};
use crate::error::RingError;
use crate::shared::SharedPage;

/// Size of each data array.
pub const RING_SIZE: u32 = 1024;
/// Offset of `req`.
pub const REQUEST_OFFSET: usize = 0;
/// Offset of `rsp`.
pub const RESPONSE_OFFSET: usize = 1024;
/// Offset of `req_cons`.
pub const REQUEST_CONSUMER_OFFSET: usize = 2048;
/// Offset of `req_prod`.
pub const REQUEST_PRODUCER_OFFSET: usize = 2052;
/// Offset of `rsp_cons`.
pub const RESPONSE_CONSUMER_OFFSET: usize = 2056;
/// Offset of `rsp_prod`.
pub const RESPONSE_PRODUCER_OFFSET: usize = 2060;
/// Offset of `server_features`.
pub const SERVER_FEATURES_OFFSET: usize = 2064;
/// Offset of `connection`.
pub const CONNECTION_OFFSET: usize = 2068;
/// Offset of `error`.
pub const ERROR_OFFSET: usize = 2072;

/// The request direction: the guest writes, the store reads.
pub const REQUESTS: ByteRingLayout = ByteRingLayout {
    data_offset: REQUEST_OFFSET,
    size: RING_SIZE,
    consumer_offset: REQUEST_CONSUMER_OFFSET,
    producer_offset: REQUEST_PRODUCER_OFFSET,
};

/// The response direction: the store writes, the guest reads.
pub const RESPONSES: ByteRingLayout = ByteRingLayout {
    data_offset: RESPONSE_OFFSET,
    size: RING_SIZE,
    consumer_offset: RESPONSE_CONSUMER_OFFSET,
    producer_offset: RESPONSE_PRODUCER_OFFSET,
};

/// The guest's side of a store page.
pub struct StoreClient<'page> {
    /// Writes requests (`req`).
    pub requests: ByteWriter<'page>,
    /// Reads responses and watch events (`rsp`).
    pub responses: ByteReader<'page>,
}

impl<'page> StoreClient<'page> {
    /// Attaches to a store page.
    ///
    /// # Errors
    ///
    /// [`RingError::PeerOverflow`] if either direction's indices are inconsistent.
    pub fn attach(page: SharedPage<'page>) -> Result<Self, RingError> {
        Ok(Self {
            requests: ByteWriter::attach(page.clone(), REQUESTS)?,
            responses: ByteReader::attach(page, RESPONSES)?,
        })
    }
}

/// The store server's side of a guest's store page.
pub struct StoreServer<'page> {
    /// Reads the guest's requests (`req`).
    pub requests: ByteReader<'page>,
    /// Writes responses and watch events (`rsp`).
    pub responses: ByteWriter<'page>,
}

impl<'page> StoreServer<'page> {
    /// Attaches to a store page.
    ///
    /// # Errors
    ///
    /// [`RingError::PeerOverflow`] if either direction's indices are inconsistent.
    pub fn attach(page: SharedPage<'page>) -> Result<Self, RingError> {
        Ok(Self {
            requests: ByteReader::attach(page.clone(), REQUESTS)?,
            responses: ByteWriter::attach(page, RESPONSES)?,
        })
    }
}
