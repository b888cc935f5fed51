//! What the frontend reports: operations, completions, errors (saying whether the
//! backend is to blame) and the outcome of a disconnect.

use alloc::vec::Vec;
use ring_protocol::blkif::{
    OPERATION_FLUSH_DISKCACHE, OPERATION_READ, OPERATION_WRITE, STATUS_OKAY,
};
use ring_protocol::RingError;

use crate::grants::GrantError;
use crate::pool::LentPages;

/// What a request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Disk to memory.
    Read,
    /// Memory to disk.
    Write,
    /// Make completed writes durable.
    Flush,
}

impl Operation {
    /// The blkif operation code.
    pub const fn code(self) -> u8 {
        match self {
            Self::Read => OPERATION_READ,
            Self::Write => OPERATION_WRITE,
            Self::Flush => OPERATION_FLUSH_DISKCACHE,
        }
    }
}

/// Errors of the frontend. The `Backend*`-blamed ones (see
/// [`is_backend_fault`](Self::is_backend_fault)) stop the device: every later call returns
/// the same error until [`Blkfront::disconnect`](crate::Blkfront::disconnect).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontendError {
    /// No ring slot free: poll for responses first.
    RingFull,
    /// Not enough free data pages: poll for responses first.
    NoFreePages,
    /// A request must move 1..=88 sectors (a write's data a whole number of sectors).
    BadLength,
    /// The grant table refused a grant.
    Grant(GrantError),
    /// The backend broke the ring protocol.
    Ring(RingError),
    /// A response carries an id no request in flight has.
    UnknownResponseId(u64),
    /// A second response to a request already completed.
    DuplicateResponse(u64),
    /// A response's operation is not its request's.
    WrongOperation {
        /// The response id.
        id: u64,
        /// The request's operation code.
        expected: u8,
        /// The response's operation code.
        found: u8,
    },
    /// The backend still maps a page of a request it answered.
    GrantStillMapped(u64),
    /// The frontend was disconnected.
    Disconnected,
    /// [`Blkfront::set_persistent`](crate::Blkfront::set_persistent) came after the first
    /// page was taken or request submitted: the grant mode is fixed by then.
    AlreadyStarted,
    /// The [`LentPages`] handle was lent by another frontend (its pages are not this
    /// device's to send or read).
    ForeignPages,
}

impl FrontendError {
    /// Whether the backend misbehaved (the device is stopped).
    pub const fn is_backend_fault(&self) -> bool {
        matches!(
            self,
            Self::Ring(_)
                | Self::UnknownResponseId(_)
                | Self::DuplicateResponse(_)
                | Self::WrongOperation { .. }
                | Self::GrantStillMapped(_)
        )
    }
}

/// A completed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The id [`Blkfront`](crate::Blkfront) returned when the request was submitted.
    pub id: u64,
    /// What the request did.
    pub operation: Operation,
    /// Its first sector.
    pub sector: u64,
    /// Its sector count (0 for a flush).
    pub sector_count: u32,
    /// The backend's status (`BLKIF_RSP_*`).
    pub status: i16,
    /// For a successful read, the data (`sector_count * 512` bytes); empty otherwise.
    pub data: Vec<u8>,
}

impl Completion {
    /// Whether the backend reported success.
    pub const fn is_ok(&self) -> bool {
        self.status == STATUS_OKAY
    }
}

/// A completed request as [`Blkfront::poll_in_place`](crate::Blkfront::poll_in_place)
/// returns it: for a successful read submitted with
/// [`submit_read_in_place`](crate::Blkfront::submit_read_in_place), the handle on the
/// pages holding the data (`completion.data` is then empty); no pages otherwise.
#[derive(Debug, PartialEq, Eq)]
pub struct PagedCompletion {
    /// The request's outcome, as [`Blkfront::poll`](crate::Blkfront::poll) reports it.
    pub completion: Completion,
    /// The read's data pages, in disk order (page `i` holds sectors `8 * i..8 * i + 8` of
    /// the request, the last one possibly partly). They are the caller's until given back
    /// with [`give_back`](crate::Blkfront::give_back).
    pub pages: Option<LentPages>,
}

/// What [`Blkfront::disconnect`](crate::Blkfront::disconnect) did with the grants still out (in persistent mode: every
/// persistent grant of the pool, wherever its page is).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DisconnectReport {
    /// Grants revoked; their pages are free again.
    pub revoked: usize,
    /// Grants the backend still maps; their pages are quarantined, never reused.
    pub still_mapped: usize,
}
