//! Devices for the driver domain: `physdev_op` (33) sub-operations, the
//! device-description block, and the memory window where its devices' BARs
//! appear. Xen has `PHYSDEVOP_eoi` (12); the PCI configuration calls and the
//! description block are ours (Xen's dom0 reaches config space directly and
//! learns its devices from the hardware; ours may not touch either).
//!
//! Everything here is for the domains the boot bundle assigns PCI
//! functions to (`pci = ['00:03.0']` in xl.cfg), each also allowed by the
//! policy (`resource { use }` on itself); any other caller gets `EPERM`.
//! Register ABI: `rdi` = sub-operation, then `rsi rdx r10 r8` as listed.

/// `PHYSDEVOP_eoi` (Xen's number): (cmd, port) → 0. The device interrupt
/// behind event-channel `port` was handled: unmask its line.
pub const EOI: u64 = 12;
/// Ours: (cmd, bdf, offset, size) → the value read (`size` 1, 2 or 4 at a
/// naturally aligned `offset` below 4096), through the hypervisor's filter.
pub const PCI_CONFIG_READ: u64 = 0x100;
/// Ours: (cmd, bdf, offset, size, value) → 0, through the filter (BAR
/// sizing emulated, placement, decode bits and MSI/MSI-X kept).
pub const PCI_CONFIG_WRITE: u64 = 0x101;
/// Ours: (cmd, buffer, size, index) → 0: the description of the caller's
/// `index`th assigned function ([`device_info`] layout, `size` ≥ its size)
/// into `buffer`; `ENOENT` past the last.
pub const DEVICE_INFO: u64 = 0x102;

/// A PCI function's address as the calls take it: `bus << 8 | device << 3 | function`.
pub const fn bdf(bus: u8, device: u8, function: u8) -> u32 {
    ((bus as u32) << 8) | (((device & 0x1f) as u32) << 3) | ((function & 7) as u32)
}

/// Where BAR `b` at physical address `p` appears in the driver domain:
/// `DEVICE_WINDOW_BASE + p` (uncached). Only the assigned functions' memory
/// BARs are mapped there, never an MSI-X table or PBA page.
pub const DEVICE_WINDOW_BASE: u64 = 0x4000_0000_0000;

/// The device-description block ([`DEVICE_INFO`]).
pub mod device_info {
    /// Its size.
    pub const SIZE: usize = 128;
    /// `bdf` u32.
    pub const BDF: usize = 0;
    /// `vendor` u16, `device` u16.
    pub const VENDOR: usize = 4;
    /// The device id.
    pub const DEVICE: usize = 6;
    /// `event_port` u32: the event channel the hypervisor bound for the
    /// function's interrupt (0: none). The line is masked when the event is
    /// raised; [`super::EOI`] unmasks it.
    pub const EVENT_PORT: usize = 8;
    /// `bar_count` u32: entries that follow.
    pub const BAR_COUNT: usize = 12;
    /// First BAR entry; entries are [`BAR_ENTRY_SIZE`] bytes: `index` u32,
    /// `flags` u32 ([`bar_flags`]), `physical` u64, `size` u64.
    pub const BARS: usize = 16;
    /// Bytes per BAR entry.
    pub const BAR_ENTRY_SIZE: usize = 24;
    /// Most BAR entries (a type-0 header has six BAR registers).
    pub const MAX_BARS: usize = 4;
}

/// A BAR entry's flags.
pub mod bar_flags {
    /// Memory space (else I/O ports, which are not mapped).
    pub const MEMORY: u32 = 1 << 0;
    /// 64-bit.
    pub const WIDE: u32 = 1 << 1;
    /// Prefetchable.
    pub const PREFETCHABLE: u32 = 1 << 2;
    /// Mapped in the device window (memory BARs not holding only MSI-X pages).
    pub const MAPPED: u32 = 1 << 3;
}

/// `memory_op` (12) sub-operation, ours: (cmd, pfn, count) → the bus
/// address of the caller's frame `pfn`, if frames `pfn..pfn+count` are
/// contiguous in machine memory (so one DMA descriptor may span them), else
/// `EINVAL`. Today bus addresses equal machine addresses; with an IOMMU they
/// would be translated and this call would not change.
pub const MEMORY_OP_BUS_ADDRESS: u64 = 0x100;
