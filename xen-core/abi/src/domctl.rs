//! `domctl` (36): the control domain's operations on other domains.
//! The command numbers are Xen's; the argument block is ours (Xen's
//! `struct xen_domctl` carries page-table and vCPU fields our domains do
//! not have). One hypercall argument: the guest address of a
//! [`SIZE`]-byte block, read in once and written back once.
//!
//! ```text
//! @0  cmd u32           @4  interface_version u32 (= INTERFACE_VERSION)
//! @8  domain u16        @10 reserved (zero) to @16
//! @16 payload, by command (below), to @256
//! ```

/// Bytes of the argument block.
pub const SIZE: usize = 256;
/// The value `interface_version` must hold.
pub const INTERFACE_VERSION: u32 = 0x0000_0001;

/// `XEN_DOMCTL_createdomain`: build a domain from a kernel image in the
/// caller's memory. On success `domain` holds the new id.
pub const CREATE_DOMAIN: u32 = 1;
/// `XEN_DOMCTL_destroydomain`. May return [`crate::errno::EAGAIN`]-style
/// continuation internally; the caller sees 0 when the domain is gone.
pub const DESTROY_DOMAIN: u32 = 2;
/// `XEN_DOMCTL_pausedomain`.
pub const PAUSE_DOMAIN: u32 = 3;
/// `XEN_DOMCTL_unpausedomain`.
pub const UNPAUSE_DOMAIN: u32 = 4;
/// `XEN_DOMCTL_getdomaininfo`: fills the info payload for `domain`, or
/// for the first domain with an id >= `domain` (so a caller can list all).
pub const GET_DOMAIN_INFO: u32 = 5;
/// Ours (Xen asks a PV guest through the store's `control/shutdown`, which
/// our guests do not watch): shut `domain` down as if it had asked to power
/// off, so the toolstack's `on_poweroff` applies. Policy: `domain { shutdown }`.
pub const SHUTDOWN_DOMAIN: u32 = 0x80;

/// Field offsets of the block header.
pub mod header {
    /// `cmd` u32.
    pub const CMD: usize = 0;
    /// `interface_version` u32.
    pub const INTERFACE_VERSION: usize = 4;
    /// `domain` u16 (in for most commands, out for create).
    pub const DOMAIN: usize = 8;
    /// The payload.
    pub const PAYLOAD: usize = 16;
}

/// Payload of [`CREATE_DOMAIN`] (offsets from the block's start).
pub mod create {
    /// `image_address` u64: guest address of the ELF image in the caller.
    pub const IMAGE_ADDRESS: usize = 16;
    /// `image_length` u64 (at most [`crate::bundle::MAX_KERNEL_BYTES`]).
    pub const IMAGE_LENGTH: usize = 24;
    /// `memory_kib` u64.
    pub const MEMORY_KIB: usize = 32;
    /// `flags` u32: [`crate::bundle::domain_flags`] (CONTROL is refused).
    pub const FLAGS: usize = 40;
    /// `weight` u32: scheduler weight (0 = the default, 256).
    pub const WEIGHT: usize = 44;
    /// `command_line_address` u64 (0 with length 0: none).
    pub const COMMAND_LINE_ADDRESS: usize = 48;
    /// `command_line_length` u32 (at most 1023).
    pub const COMMAND_LINE_LENGTH: usize = 56;
    /// `name[32]`, NUL-padded.
    pub const NAME: usize = 64;
    /// `seclabel[64]`, NUL-padded.
    pub const SECLABEL: usize = 96;
}

/// Payload of [`GET_DOMAIN_INFO`] (out).
pub mod info {
    /// `domain` u16: the domain described.
    pub const DOMAIN: usize = 16;
    /// `state` u32: [`super::state`] bits.
    pub const STATE: usize = 20;
    /// `total_pages` u64.
    pub const TOTAL_PAGES: usize = 24;
    /// `cpu_time_ns` u64: time it has run.
    pub const CPU_TIME_NS: usize = 32;
    /// `shutdown_reason` u32 (valid with `state::SHUTDOWN`).
    pub const SHUTDOWN_REASON: usize = 40;
    /// `weight` u32.
    pub const WEIGHT: usize = 44;
    /// `flags` u32: [`crate::bundle::domain_flags`].
    pub const FLAGS: usize = 48;
    /// `name[32]`.
    pub const NAME: usize = 64;
    /// `seclabel[64]`.
    pub const SECLABEL: usize = 96;
}

/// `state` bits of [`GET_DOMAIN_INFO`] (Xen's `XEN_DOMINF_*` spirit).
pub mod state {
    /// Runnable or running.
    pub const RUNNING: u32 = 1 << 0;
    /// Blocked in `sched_op(block)`.
    pub const BLOCKED: u32 = 1 << 1;
    /// Paused by the control domain.
    pub const PAUSED: u32 = 1 << 2;
    /// Shut down (see `shutdown_reason`) and being torn down.
    pub const SHUTDOWN: u32 = 1 << 3;
}

/// The default scheduler weight.
pub const DEFAULT_WEIGHT: u32 = 256;
/// The largest scheduler weight.
pub const MAX_WEIGHT: u32 = 65_535;
