//! A fake PCI function for the tests: 4 KiB of config space with hardware
//! semantics where they matter (BARs keep their type bits and only the
//! address bits their size allows, so all-ones reads back the size mask;
//! the status error bits are write-1-to-clear), and a log of every write
//! that reached it.

use alloc::vec::Vec;
use core::cell::Cell;

use super::ConfigSpace;

/// Where the fake's MSI-X table lies: BAR 1, offset 0.
pub(super) const MSIX_TABLE_OFFSET: u32 = 0x000;
/// Where the fake's PBA lies: BAR 1, offset 0x800.
pub(super) const MSIX_PBA_OFFSET: u32 = 0x800;
/// BAR 1 (32-bit memory, 4 KiB: MSI-X), as SeaBIOS places it under QEMU q35.
pub(super) const BAR1_ADDRESS: u32 = 0xFEBD_1000;
/// BAR 4 (64-bit prefetchable memory, 16 KiB: the virtio structures).
pub(super) const BAR4_ADDRESS: u64 = 0xFE00_0000;
/// The virtio capabilities: (offset, cfg_type, length, offset in BAR 4,
/// length in BAR 4), as QEMU's virtio-pci lays them out.
pub(super) const VIRTIO_CAPABILITIES: [(u8, u8, u8, u32, u32); 5] = [
    (0x40, 1, 16, 0x0000, 0x1000), // common
    (0x50, 3, 16, 0x1000, 0x1000), // ISR
    (0x60, 4, 16, 0x2000, 0x1000), // device
    (0x70, 2, 20, 0x3000, 0x1000), // notify (+ multiplier)
    (0x84, 5, 20, 0x0000, 0x0000), // PCI config access window
];
/// Where the fake's MSI-X capability is.
pub(super) const MSIX_CAPABILITY: u8 = 0x98;

/// One function's config space.
#[derive(Clone)]
pub(super) struct FakeFunction {
    /// The dwords.
    space: Vec<u32>,
    /// Per BAR register: the bits a write can change (the address bits
    /// above its size).
    bar_writable: [u32; 6],
    /// Per BAR register: its read-only type bits (0 for an upper half).
    bar_type_bits: [u32; 6],
    /// Every write that reached the device, in order.
    pub(super) writes: Vec<(u16, u32)>,
    /// Reads so far (to show a walk is bounded).
    pub(super) reads: Cell<u64>,
}

impl FakeFunction {
    /// An empty function: every register zero, no BARs.
    pub(super) fn blank() -> Self {
        Self { space: Vec::from([0; 1024]), bar_writable: [0; 6], bar_type_bits: [0; 6], writes: Vec::new(), reads: Cell::new(0) }
    }

    /// QEMU's modern virtio-blk (`-device virtio-blk-pci` on q35, after
    /// SeaBIOS): 1af4:1042, BAR 1 32-bit 4 KiB with the MSI-X table (offset
    /// 0) and PBA (offset 0x800), BAR 4 64-bit prefetchable 16 KiB with the
    /// virtio structures, the capability list 0x98 (MSI-X, 2 vectors) ->
    /// 0x84 -> 0x70 -> 0x60 -> 0x50 -> 0x40 (vendor-specific), I/O and
    /// memory decode on, interrupt pin A on line 11.
    pub(super) fn virtio_blk() -> Self {
        let mut fake = Self::blank();
        fake.set(0x00, 0x1042_1AF4);
        fake.set(0x04, 0x0010_0003); // status: capability list; command: I/O + memory
        fake.set(0x08, 0x0100_0001); // mass storage, revision 1
        fake.set(0x0C, 0x0000_0000); // header type 0
        fake.set(0x14, BAR1_ADDRESS);
        fake.bar_writable[1] = !(0x1000 - 1);
        fake.set(0x20, BAR4_ADDRESS as u32 | 0b1100); // 64-bit, prefetchable
        fake.set(0x24, (BAR4_ADDRESS >> 32) as u32);
        fake.bar_writable[4] = !(0x4000 - 1);
        fake.bar_writable[5] = u32::MAX;
        fake.set(0x2C, 0x1100_1AF4);
        fake.set(0x34, u32::from(MSIX_CAPABILITY));
        fake.set(0x3C, 0x0000_010B); // pin A, line 11
        let mut next = 0;
        for &(offset, cfg_type, length, bar_offset, bar_length) in &VIRTIO_CAPABILITIES {
            fake.set_capability(offset, 0x09, next, u16::from(length) | u16::from(cfg_type) << 8);
            fake.set(u16::from(offset) + 4, if cfg_type == 5 { 0 } else { 4 });
            fake.set(u16::from(offset) + 8, bar_offset);
            fake.set(u16::from(offset) + 12, bar_length);
            if cfg_type == 2 {
                fake.set(u16::from(offset) + 16, 4); // notify_off_multiplier
            }
            next = offset;
        }
        // MSI-X: 2 entries (table size field 1), disabled.
        fake.set_capability(MSIX_CAPABILITY, 0x11, next, 0x0001);
        fake.set(u16::from(MSIX_CAPABILITY) + 4, MSIX_TABLE_OFFSET | 1);
        fake.set(u16::from(MSIX_CAPABILITY) + 8, MSIX_PBA_OFFSET | 1);
        fake.writes.clear();
        fake
    }

    /// Sets a dword directly (not logged as a write); for a BAR register,
    /// its type bits become those of `value`.
    pub(super) fn set(&mut self, offset: u16, value: u32) {
        if (0x10..0x28).contains(&offset) {
            self.bar_type_bits[usize::from((offset - 0x10) / 4)] = value & if value & 1 != 0 { 0x3 } else { 0xF };
        }
        if let Some(dword) = self.space.get_mut(usize::from(offset / 4)) {
            *dword = value;
        }
    }

    /// A dword as it is in the device.
    pub(super) fn get(&self, offset: u16) -> u32 {
        self.space.get(usize::from(offset / 4)).copied().unwrap_or(0)
    }

    /// Writes a capability header: ID, next pointer, and the two bytes
    /// after them.
    pub(super) fn set_capability(&mut self, offset: u8, id: u8, next: u8, rest: u16) {
        self.set(u16::from(offset), u32::from(id) | u32::from(next) << 8 | u32::from(rest) << 16);
    }

    /// Makes BAR register `index` an implemented BAR of `size` bytes at
    /// `value` (type bits included).
    pub(super) fn set_bar(&mut self, index: usize, value: u32, writable: u32) {
        self.set(0x10 + 4 * index as u16, value);
        self.bar_writable[index] = writable;
    }

    /// The writes that reached BAR registers.
    pub(super) fn bar_writes(&self) -> Vec<(u16, u32)> {
        self.writes.iter().copied().filter(|(offset, _)| (0x10..0x28).contains(offset)).collect()
    }
}

impl ConfigSpace for FakeFunction {
    fn read32(&self, offset: u16) -> u32 {
        assert_eq!(offset % 4, 0, "the filter only reads whole dwords");
        assert!(offset < 4096, "the filter stays inside config space");
        self.reads.set(self.reads.get() + 1);
        self.get(offset)
    }

    fn write32(&mut self, offset: u16, value: u32) {
        assert_eq!(offset % 4, 0, "the filter only writes whole dwords");
        assert!(offset < 4096, "the filter stays inside config space");
        self.writes.push((offset, value));
        match offset {
            0x00 | 0x08 | 0x2C | 0x34 => {}
            0x04 => {
                let status = (self.get(0x04) >> 16) as u16 & !((value >> 16) as u16 & 0xF900);
                self.set(0x04, (value & 0x07FF) | u32::from(status) << 16);
            }
            0x10..0x28 => {
                let index = usize::from((offset - 0x10) / 4);
                // Address bits below the size are hardwired to zero; the
                // type bits are read-only.
                let stored = (value & self.bar_writable[index]) | self.bar_type_bits[index];
                if let Some(dword) = self.space.get_mut(usize::from(offset / 4)) {
                    *dword = stored;
                }
            }
            _ => self.set(offset, value),
        }
    }
}
