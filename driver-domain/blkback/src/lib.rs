//! The driver domain's block backend (Xen's blkback) as safe, host-testable logic.
//!
//! Each guest's virtual disk is a bounded extent of the physical disk ([`VirtualDisk`]).
//! [`BlockBackend`] serves many frontends, each over its own blkif ring: it copies every
//! request out of the ring once (the ring does that), validates it against the frontend's
//! extent and mode, and hands only valid, translated work to an [`Executor`], which the
//! integration implements on real grant hypercalls and virtio-blk. Nothing a frontend
//! writes can make it panic, touch sectors outside that frontend's extent, or stall the
//! other frontends: a broken ring disconnects its frontend only, and service is
//! round-robin with a per-round cap.
//!
//! Grant references are only ever used through the executor, which resolves them in the
//! frontend's grant table: a reference the frontend did not grant to us simply fails there
//! and the request is answered with an error.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod backend;
mod disk;
mod executor;
#[cfg(feature = "test-utils")]
pub mod memory;
mod request;

pub use backend::{
    recycle, BlockBackend, DisconnectReason, FrontendCounters, FrontendId, Refusal, RefusalReason,
    RoundReport, SetupError,
};
pub use disk::{DiskError, DiskMode, VirtualDisk, SECTOR_SIZE_BYTES};
pub use executor::{
    BlockOperation, ExecuteError, Executor, GrantPolicy, GrantRef, SegmentTransfer,
};
pub use request::Rejection;
pub use xen_abi::DomId;
