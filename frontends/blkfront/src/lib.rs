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
//!
//! Two ways to move data:
//!
//! - copying: [`Blkfront::submit_write`] copies the caller's bytes into pool pages,
//!   [`Blkfront::poll`] copies a read's data out into [`Completion::data`];
//! - zero-copy: [`Blkfront::take_pages`] lends pool pages ([`LentPages`], a handle; the
//!   pages stay in the frontend) for the caller to fill through the provider,
//!   [`Blkfront::submit_write_pages`] writes them; [`Blkfront::submit_read_in_place`]
//!   reads into pool pages that [`Blkfront::poll_in_place`] lends
//!   ([`PagedCompletion::pages`]) until [`Blkfront::give_back`]. Nothing on that path
//!   allocates or copies a page, nor moves a request's list of pages.
//!
//! Grants are per request (granted at submit, revoked at completion, before read data is
//! looked at) unless the backend offers `feature-persistent` and the caller turns on
//! [`Blkfront::set_persistent`]: then each pool page is zeroed and granted read-write
//! once, reused in every request, and revoked only at [`Blkfront::disconnect`].

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod completion;
mod frontend;
mod grants;
mod pool;
mod split;

pub use completion::{Completion, DisconnectReport, FrontendError, Operation, PagedCompletion};
pub use frontend::Blkfront;
pub use grants::{GrantError, GrantPages, GrantRef};
pub use pool::{DataPage, LentPages, MAX_PAGES_PER_REQUEST};
pub use split::{split_range, Chunk, Chunks, SplitError, MAX_SECTORS_PER_REQUEST};
pub use xen_abi::DomId;
