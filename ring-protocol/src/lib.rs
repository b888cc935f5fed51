//! Lock-free shared-memory rings with the semantics of Xen's `io/ring.h`, and the
//! split-device protocols that run on them (blkif, netif, console, store), byte-compatible
//! with Xen's public headers.
//!
//! The page a ring lives in is writable by the other side, which may be hostile. The crate
//! is built so that a misbehaving peer can cause errors, never unsoundness, panics or
//! stalls on our side:
//!
//! - every access to the shared page goes through [`SharedPage`] (module `shared`), the
//!   only module allowed to use `unsafe`; it never hands out a reference into the page and
//!   copies every entry out exactly once (Xen XSA-155);
//! - producer indices written by the peer are checked against what the ring can hold; a
//!   bad one is reported as a [`RingError`] naming the peer, and the ring is poisoned:
//!   every later call returns the same error, so the caller disconnects;
//! - responses are encoded into a zeroed buffer, so their padding is always zero (XSA-216);
//! - no call waits for the peer: each does a bounded amount of work and returns.
//!
//! A frontend ([`Frontend`]) can only produce requests and consume responses, a backend
//! ([`Backend`]) only the reverse.

#![cfg_attr(not(loom), no_std)]
#![deny(unsafe_code)]

#[cfg(loom)]
extern crate std;

pub mod backend;
pub mod blkif;
pub mod byte_ring;
pub mod console;
pub mod entry;
pub mod error;
pub mod frontend;
pub mod layout;
pub mod netif;
mod ring;
// reason: this module is the one door to memory the peer can write. It needs raw-pointer
// atomics and `Send`/`Sync` for a handle to that memory; every block carries a `SAFETY:`
// comment and no reference into the shared page ever leaves it.
#[allow(unsafe_code)]
pub mod shared;
pub mod store;
#[cfg(feature = "test-utils")]
pub mod test_utils;

pub use backend::Backend;
pub use entry::{Malformation, MalformedEntry, Protocol, RingEntry};
pub use error::{Blame, RingError};
pub use frontend::Frontend;
pub use ring::Notification;
#[cfg(not(loom))]
pub use shared::PageBuffer;
pub use shared::SharedPage;
