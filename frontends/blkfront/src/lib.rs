//! The guest's block frontend (Xen's blkfront) as safe, host-testable logic.
//!
//! [`Blkfront`] builds blkif read, write and flush requests of up to 11 segments over a
//! `ring_protocol::Frontend`, granting a data page per segment through the
//! [`GrantPages`] trait the guest runtime implements. It treats the backend as untrusted:
//! pages are zeroed before they are granted, every response id is checked against the
//! table of requests in flight (unknown, duplicate or wrong-operation responses are
//! errors that stop the device, never panics), read data is copied out only after the
//! grant is revoked, and [`Blkfront::disconnect`] revokes every grant still out.
//! [`split_range`] cuts a byte range of the disk into requests that fit.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod completion;
mod frontend;
mod grants;
mod split;

pub use completion::{Completion, DisconnectReport, FrontendError, Operation};
pub use frontend::Blkfront;
pub use grants::{GrantError, GrantPages, GrantRef};
pub use split::{split_range, Chunk, Chunks, SplitError, MAX_SECTORS_PER_REQUEST};
pub use xen_abi::DomId;
