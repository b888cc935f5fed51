//! The store (Xen's xenstored) as a library: the `xs_wire` message format, the tree
//! of nodes with Xen-style permissions, watches, transactions, per-domain quotas and
//! round-robin service across connections. The core knows nothing of rings or event
//! channels; [`ring`] is the transport over each domain's store page, which the
//! control domain's agent drives (feeding the store the bytes read from each ring
//! and writing back what it returns).
//!
//! Nothing a guest writes is trusted: paths are validated before use, values are
//! opaque bytes, and [`checked`] offers strict readers for the toolstack and backends.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod checked;
mod client;
mod dispatch;
pub mod error;
mod ops;
pub mod path;
pub mod perms;
pub mod ring;
pub mod store;
mod tree;
mod watch;
pub mod wire;

pub use error::XsError;
pub use perms::{Access, PermEntry, Perms};
pub use store::{Config, ConnId, ConnStats, Introduction, Output, Quotas, Store};
pub use wire::{Decoder, Message, MsgType, ProtocolError};

/// A domain identifier.
pub type DomId = u32;
