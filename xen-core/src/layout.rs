//! The hypervisor's virtual address layout. The lower half belongs to
//! domains; the hypervisor lives in the upper half, in its own page tables.

/// All RAM, mapped read/write and never executable, at `DIRECT_MAP_BASE +
/// physical`. Copies to and from domains go through here (via the
/// pseudo-physical-to-machine map), never through a guest address.
pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// Most RAM the direct map covers (1 TiB).
pub const DIRECT_MAP_MAX_BYTES: u64 = 1 << 40;
/// Device registers (LAPIC, IOAPIC, ECAM) are mapped uncached from here.
pub const MMIO_BASE: u64 = 0xffff_c000_0000_0000;
/// The image: text, rodata, data, bss, at `KERNEL_VMA + physical`.
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;
/// Most RAM the frame allocator manages (16 GiB); more is reported and left
/// unused.
pub const MAX_MANAGED_RAM_BYTES: u64 = 16 << 30;
/// Words of the frame allocator's bitmaps (one bit per 4 KiB frame).
pub const FRAME_BITMAP_WORDS: usize = (MAX_MANAGED_RAM_BYTES / 4096 / 64) as usize;
/// Bytes of heap the hypervisor gives itself at boot.
pub const HEAP_BYTES: u64 = 2 << 20;

/// The direct-map address of a physical address.
pub const fn direct_map(physical: u64) -> u64 {
    DIRECT_MAP_BASE + physical
}
