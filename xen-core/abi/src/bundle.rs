//! The boot bundle: the one multiboot module that carries everything the
//! hypervisor builds at boot (Xen's hyperlaunch idea). The toolstack writes
//! it from a launch description; the hypervisor parses it, trusting nothing.
//!
//! ```text
//! header       32 bytes   at 0
//! records      256 bytes  × domain_count, right after the header
//! payload      kernels, command lines and the policy, anywhere after the
//!              records and before total_length, non-overlapping
//! ```
//! All integers little-endian. Every reserved byte must be zero.

/// `"XCBUNDL1"`.
pub const MAGIC: [u8; 8] = *b"XCBUNDL1";
/// The format version this crate describes.
pub const VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_SIZE: usize = 32;
/// Bytes of one domain record.
pub const RECORD_SIZE: usize = 256;
/// Most domains in one bundle.
pub const MAX_DOMAINS: usize = 16;
/// Largest kernel image.
pub const MAX_KERNEL_BYTES: u64 = 16 << 20;
/// Longest command line (without a terminator).
pub const MAX_COMMAND_LINE_BYTES: u32 = 1023;
/// Largest compiled policy.
pub const MAX_POLICY_BYTES: u32 = 1 << 20;
/// Largest bundle.
pub const MAX_TOTAL_BYTES: u64 = 64 << 20;

/// Header field offsets.
pub mod header {
    /// `magic[8]`.
    pub const MAGIC: usize = 0;
    /// `version` u32.
    pub const VERSION: usize = 8;
    /// `domain_count` u32.
    pub const DOMAIN_COUNT: usize = 12;
    /// `total_length` u64: bytes of the whole bundle.
    pub const TOTAL_LENGTH: usize = 16;
    /// `policy_offset` u32 (0 with `policy_length` 0: no policy).
    pub const POLICY_OFFSET: usize = 24;
    /// `policy_length` u32.
    pub const POLICY_LENGTH: usize = 28;
}

/// Domain record field offsets.
pub mod record {
    /// `name[32]`: 1..=31 bytes of `[A-Za-z0-9_.-]`, NUL-padded.
    pub const NAME: usize = 0;
    /// `seclabel[64]`: `user:role:type` or `type`, 1..=63 bytes of UTF-8,
    /// NUL-padded (at least one NUL).
    pub const SECLABEL: usize = 32;
    /// `memory_kib` u64: RAM in KiB, a multiple of 4.
    pub const MEMORY_KIB: usize = 96;
    /// `kernel_offset` u64.
    pub const KERNEL_OFFSET: usize = 104;
    /// `kernel_length` u64: 1..=[`super::MAX_KERNEL_BYTES`].
    pub const KERNEL_LENGTH: usize = 112;
    /// `cmdline_offset` u64 (0 when `cmdline_length` is 0).
    pub const COMMAND_LINE_OFFSET: usize = 120;
    /// `cmdline_length` u32: UTF-8 without NUL, at most
    /// [`super::MAX_COMMAND_LINE_BYTES`].
    pub const COMMAND_LINE_LENGTH: usize = 128;
    /// `flags` u32: see [`super::domain_flags`].
    pub const FLAGS: usize = 132;
    /// `kernel_sha256[32]`.
    pub const KERNEL_SHA256: usize = 136;
    /// `weight` u32: scheduler weight, 0 for the default (xl.cfg `cpu_weight`).
    pub const WEIGHT: usize = 168;
    /// `pci_count` u32: PCI functions assigned to the domain (at most
    /// [`super::MAX_PCI_FUNCTIONS`]; only a driver domain may have any).
    pub const PCI_COUNT: usize = 172;
    /// `pci[8]` u32 each: `bus << 8 | device << 3 | function` (segment 0),
    /// distinct; unused entries 0.
    pub const PCI: usize = 176;
    /// First reserved byte; reserved bytes run to the record's end.
    pub const RESERVED: usize = 208;
}

/// Most PCI functions one domain may be assigned.
pub const MAX_PCI_FUNCTIONS: usize = 8;

/// Domain record `flags`.
pub mod domain_flags {
    /// The control domain (at most one per bundle).
    pub const CONTROL: u32 = 1 << 0;
    /// A driver domain.
    pub const DRIVER: u32 = 1 << 1;
    /// Every defined bit.
    pub const ALL: u32 = CONTROL | DRIVER;
}
