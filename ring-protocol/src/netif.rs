//! The network device protocol, byte-compatible with Xen's `io/netif.h` (x86_64): a
//! transmit ring (12-byte requests, 4-byte responses) and a receive ring (8-byte requests,
//! 8-byte responses), 256 slots each.
//!
//! The entries are plain data with no invalid encodings, so decoding never fails; the
//! checks a backend needs on sizes and offsets are helpers ([`TxRequest::fits_in_page`]).

use crate::entry::{wire, MalformedEntry, Protocol, RingEntry};
use crate::layout::PAGE_SIZE;

/// `NETTXF_csum_blank`: the checksum is not yet computed.
pub const TX_FLAG_CHECKSUM_BLANK: u16 = 1 << 0;
/// `NETTXF_data_validated`: the checksum was validated.
pub const TX_FLAG_DATA_VALIDATED: u16 = 1 << 1;
/// `NETTXF_more_data`: the packet continues in the next request.
pub const TX_FLAG_MORE_DATA: u16 = 1 << 2;
/// `NETTXF_extra_info`: the next slot holds a `netif_extra_info`.
pub const TX_FLAG_EXTRA_INFO: u16 = 1 << 3;

/// `NETRXF_data_validated`.
pub const RX_FLAG_DATA_VALIDATED: u16 = 1 << 0;
/// `NETRXF_csum_blank`.
pub const RX_FLAG_CHECKSUM_BLANK: u16 = 1 << 1;
/// `NETRXF_more_data`.
pub const RX_FLAG_MORE_DATA: u16 = 1 << 2;
/// `NETRXF_extra_info`.
pub const RX_FLAG_EXTRA_INFO: u16 = 1 << 3;

/// `NETIF_RSP_DROPPED`.
pub const STATUS_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`.
pub const STATUS_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`.
pub const STATUS_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: a response slot with no packet (padding after extra info).
pub const STATUS_NULL: i16 = 1;

/// Size of `netif_tx_request`.
pub const TX_REQUEST_SIZE: usize = 12;
/// Size of `netif_tx_response`.
pub const TX_RESPONSE_SIZE: usize = 4;
/// Size of `netif_rx_request`.
pub const RX_REQUEST_SIZE: usize = 8;
/// Size of `netif_rx_response`.
pub const RX_RESPONSE_SIZE: usize = 8;

/// Field offsets of Xen's netif structs, asserted by tests.
pub mod offsets {
    /// `netif_tx_request.gref` (u32).
    pub const TX_REQUEST_GRANT: usize = 0;
    /// `netif_tx_request.offset` (u16).
    pub const TX_REQUEST_OFFSET: usize = 4;
    /// `netif_tx_request.flags` (u16).
    pub const TX_REQUEST_FLAGS: usize = 6;
    /// `netif_tx_request.id` (u16).
    pub const TX_REQUEST_ID: usize = 8;
    /// `netif_tx_request.size` (u16).
    pub const TX_REQUEST_SIZE_FIELD: usize = 10;
    /// `netif_tx_response.id` (u16).
    pub const TX_RESPONSE_ID: usize = 0;
    /// `netif_tx_response.status` (i16).
    pub const TX_RESPONSE_STATUS: usize = 2;
    /// `netif_rx_request.id` (u16).
    pub const RX_REQUEST_ID: usize = 0;
    /// `netif_rx_request.gref` (u32).
    pub const RX_REQUEST_GRANT: usize = 4;
    /// `netif_rx_response.id` (u16).
    pub const RX_RESPONSE_ID: usize = 0;
    /// `netif_rx_response.offset` (u16).
    pub const RX_RESPONSE_OFFSET: usize = 2;
    /// `netif_rx_response.flags` (u16).
    pub const RX_RESPONSE_FLAGS: usize = 4;
    /// `netif_rx_response.status` (i16: size if positive, else an error).
    pub const RX_RESPONSE_STATUS: usize = 6;
}

/// A packet (or packet fragment) the frontend asks the backend to transmit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxRequest {
    /// Grant reference of the page holding the data.
    pub grant: u32,
    /// Offset of the data in that page.
    pub offset: u16,
    /// `TX_FLAG_*` bits.
    pub flags: u16,
    /// The frontend's id, echoed in the response.
    pub id: u16,
    /// Bytes in this fragment (the whole packet's size in the first request).
    pub size: u16,
}

impl TxRequest {
    /// Whether `offset + size` stays within one page, as a fragment's data must.
    pub const fn fits_in_page(&self) -> bool {
        self.offset as usize + self.size as usize <= PAGE_SIZE
    }
}

impl RingEntry for TxRequest {
    const SIZE: usize = TX_REQUEST_SIZE;

    fn encode(&self, bytes: &mut [u8]) {
        wire::write_u32(bytes, offsets::TX_REQUEST_GRANT, self.grant);
        wire::write_u16(bytes, offsets::TX_REQUEST_OFFSET, self.offset);
        wire::write_u16(bytes, offsets::TX_REQUEST_FLAGS, self.flags);
        wire::write_u16(bytes, offsets::TX_REQUEST_ID, self.id);
        wire::write_u16(bytes, offsets::TX_REQUEST_SIZE_FIELD, self.size);
    }

    fn decode(bytes: &[u8]) -> Result<Self, MalformedEntry> {
        Ok(Self {
            grant: wire::read_u32(bytes, offsets::TX_REQUEST_GRANT),
            offset: wire::read_u16(bytes, offsets::TX_REQUEST_OFFSET),
            flags: wire::read_u16(bytes, offsets::TX_REQUEST_FLAGS),
            id: wire::read_u16(bytes, offsets::TX_REQUEST_ID),
            size: wire::read_u16(bytes, offsets::TX_REQUEST_SIZE_FIELD),
        })
    }
}

/// The backend's answer to a transmit request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxResponse {
    /// The request's id.
    pub id: u16,
    /// `STATUS_*`.
    pub status: i16,
}

impl RingEntry for TxResponse {
    const SIZE: usize = TX_RESPONSE_SIZE;

    fn encode(&self, bytes: &mut [u8]) {
        wire::write_u16(bytes, offsets::TX_RESPONSE_ID, self.id);
        wire::write_u16(bytes, offsets::TX_RESPONSE_STATUS, self.status as u16);
    }

    fn decode(bytes: &[u8]) -> Result<Self, MalformedEntry> {
        Ok(Self {
            id: wire::read_u16(bytes, offsets::TX_RESPONSE_ID),
            status: wire::read_u16(bytes, offsets::TX_RESPONSE_STATUS) as i16,
        })
    }
}

/// A page the frontend offers for a received packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxRequest {
    /// The frontend's id, echoed in the response.
    pub id: u16,
    /// Grant reference of the page to fill.
    pub grant: u32,
}

impl RingEntry for RxRequest {
    const SIZE: usize = RX_REQUEST_SIZE;

    fn encode(&self, bytes: &mut [u8]) {
        wire::write_u16(bytes, offsets::RX_REQUEST_ID, self.id);
        wire::write_u32(bytes, offsets::RX_REQUEST_GRANT, self.grant);
    }

    fn decode(bytes: &[u8]) -> Result<Self, MalformedEntry> {
        Ok(Self {
            id: wire::read_u16(bytes, offsets::RX_REQUEST_ID),
            grant: wire::read_u32(bytes, offsets::RX_REQUEST_GRANT),
        })
    }
}

/// The backend's report of a packet received into an offered page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxResponse {
    /// The request's id.
    pub id: u16,
    /// Offset of the data in the page.
    pub offset: u16,
    /// `RX_FLAG_*` bits.
    pub flags: u16,
    /// Bytes received if positive, else `STATUS_*`.
    pub status: i16,
}

impl RxResponse {
    /// Whether `offset + status` stays within one page (for a positive status).
    pub const fn fits_in_page(&self) -> bool {
        self.status < 0 || self.offset as usize + self.status as usize <= PAGE_SIZE
    }
}

impl RingEntry for RxResponse {
    const SIZE: usize = RX_RESPONSE_SIZE;

    fn encode(&self, bytes: &mut [u8]) {
        wire::write_u16(bytes, offsets::RX_RESPONSE_ID, self.id);
        wire::write_u16(bytes, offsets::RX_RESPONSE_OFFSET, self.offset);
        wire::write_u16(bytes, offsets::RX_RESPONSE_FLAGS, self.flags);
        wire::write_u16(bytes, offsets::RX_RESPONSE_STATUS, self.status as u16);
    }

    fn decode(bytes: &[u8]) -> Result<Self, MalformedEntry> {
        Ok(Self {
            id: wire::read_u16(bytes, offsets::RX_RESPONSE_ID),
            offset: wire::read_u16(bytes, offsets::RX_RESPONSE_OFFSET),
            flags: wire::read_u16(bytes, offsets::RX_RESPONSE_FLAGS),
            status: wire::read_u16(bytes, offsets::RX_RESPONSE_STATUS) as i16,
        })
    }
}

/// The transmit ring: [`TxRequest`] out, [`TxResponse`] back; 256 slots.
#[derive(Debug)]
pub enum NetifTx {}

impl Protocol for NetifTx {
    type Request = TxRequest;
    type Response = TxResponse;
}

/// The receive ring: [`RxRequest`] (empty pages) out, [`RxResponse`] back; 256 slots.
#[derive(Debug)]
pub enum NetifRx {}

impl Protocol for NetifRx {
    type Request = RxRequest;
    type Response = RxResponse;
}
