//! Four-level x86-64 page tables, built and edited by the hypervisor only
//! (domains never write one). The logic is safe and host-tested: frames are
//! reached through [`TableMemory`], which the arch layer implements over the
//! direct map and the tests implement over a map of fake frames.

use crate::frame_allocator::{Frame, FRAME_SIZE};

/// Bits of a page-table entry.
pub mod flags {
    /// The entry is valid.
    pub const PRESENT: u64 = 1 << 0;
    /// Writes are allowed.
    pub const WRITABLE: u64 = 1 << 1;
    /// Ring 3 may use it.
    pub const USER: u64 = 1 << 2;
    /// Write-through caching.
    pub const WRITE_THROUGH: u64 = 1 << 3;
    /// Caching disabled (MMIO).
    pub const NO_CACHE: u64 = 1 << 4;
    /// Set by the CPU on access.
    pub const ACCESSED: u64 = 1 << 5;
    /// Set by the CPU on write.
    pub const DIRTY: u64 = 1 << 6;
    /// A 2 MiB or 1 GiB leaf in a PD or PDPT.
    pub const HUGE: u64 = 1 << 7;
    /// Kept in the TLB across CR3 loads.
    pub const GLOBAL: u64 = 1 << 8;
    /// Instruction fetches fault.
    pub const NO_EXECUTE: u64 = 1 << 63;
    /// The physical-address bits of an entry.
    pub const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
}

/// Bytes mapped by one entry at each level (PT, PD, PDPT).
pub const PAGE_4K: u64 = FRAME_SIZE;
/// Bytes of a 2 MiB page.
pub const PAGE_2M: u64 = 512 * PAGE_4K;
/// Bytes of a 1 GiB page.
pub const PAGE_1G: u64 = 512 * PAGE_2M;

/// Reads and writes page-table entries in physical frames, and hands out
/// zeroed frames for new tables.
pub trait TableMemory {
    /// Reads entry `index` (0..512) of the table in `table`.
    fn read_entry(&self, table: Frame, index: usize) -> u64;
    /// Writes entry `index` of the table in `table`.
    fn write_entry(&mut self, table: Frame, index: usize, entry: u64);
    /// A fresh frame, all zeroes, for a new table; `None` when out of memory.
    fn allocate_table(&mut self) -> Option<Frame>;
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The virtual or physical address is not aligned to the page size.
    Misaligned {
        /// The virtual address asked for.
        virtual_address: u64,
    },
    /// The virtual address is not canonical.
    NonCanonical(u64),
    /// Something is already mapped there.
    AlreadyMapped(u64),
    /// A huge page covers the range where a smaller one was asked for.
    HugePageInTheWay(u64),
    /// No frame left for a page table.
    OutOfFrames,
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MapError::Misaligned { virtual_address } => write!(f, "misaligned mapping at {virtual_address:#x}"),
            MapError::NonCanonical(address) => write!(f, "non-canonical address {address:#x}"),
            MapError::AlreadyMapped(address) => write!(f, "{address:#x} is already mapped"),
            MapError::HugePageInTheWay(address) => write!(f, "a huge page already covers {address:#x}"),
            MapError::OutOfFrames => write!(f, "out of frames for page tables"),
        }
    }
}

/// Whether an address is canonical (bits 63..47 all equal).
pub fn is_canonical(address: u64) -> bool {
    let top = address >> 47;
    top == 0 || top == 0x1ffff
}

fn index(address: u64, level: u32) -> usize {
    ((address >> (12 + 9 * level)) & 0x1ff) as usize
}

/// An address space: the frame of its top-level table (PML4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSpace {
    /// The PML4's frame; CR3 gets its address.
    pub root: Frame,
    /// Frames used by its tables, root included (charged to the owner).
    pub table_frames: u64,
}

impl AddressSpace {
    /// An empty address space.
    pub fn new(memory: &mut impl TableMemory) -> Result<AddressSpace, MapError> {
        let root = memory.allocate_table().ok_or(MapError::OutOfFrames)?;
        Ok(AddressSpace { root, table_frames: 1 })
    }

    /// Maps one page of size `PAGE_4K`, `PAGE_2M` or `PAGE_1G`. Intermediate
    /// tables are created present+writable (+user when the leaf is user);
    /// the leaf's own flags decide the access.
    pub fn map(
        &mut self,
        memory: &mut impl TableMemory,
        virtual_address: u64,
        physical_address: u64,
        page_size: u64,
        leaf_flags: u64,
    ) -> Result<(), MapError> {
        if !is_canonical(virtual_address) {
            return Err(MapError::NonCanonical(virtual_address));
        }
        let leaf_level = match page_size {
            PAGE_4K => 0,
            PAGE_2M => 1,
            PAGE_1G => 2,
            _ => return Err(MapError::Misaligned { virtual_address }),
        };
        if virtual_address % page_size != 0 || physical_address % page_size != 0 {
            return Err(MapError::Misaligned { virtual_address });
        }
        let intermediate = flags::PRESENT | flags::WRITABLE | (leaf_flags & flags::USER);
        let mut table = self.root;
        for level in (leaf_level + 1..=3).rev() {
            let slot = index(virtual_address, level);
            let entry = memory.read_entry(table, slot);
            table = if entry & flags::PRESENT == 0 {
                let next = memory.allocate_table().ok_or(MapError::OutOfFrames)?;
                self.table_frames += 1;
                memory.write_entry(table, slot, next.address() | intermediate);
                next
            } else if entry & flags::HUGE != 0 {
                return Err(MapError::HugePageInTheWay(virtual_address));
            } else {
                // Widen an existing table's permissions if this leaf needs it.
                if entry & intermediate != intermediate {
                    memory.write_entry(table, slot, entry | intermediate);
                }
                Frame::containing(entry & flags::ADDRESS_MASK)
            };
        }
        let slot = index(virtual_address, leaf_level);
        if memory.read_entry(table, slot) & flags::PRESENT != 0 {
            return Err(MapError::AlreadyMapped(virtual_address));
        }
        let huge = if leaf_level > 0 { flags::HUGE } else { 0 };
        memory.write_entry(table, slot, physical_address | leaf_flags | huge | flags::PRESENT);
        Ok(())
    }

    /// Maps `[virtual, virtual + length)` to `[physical, ...)` with the
    /// largest pages alignment allows (2 MiB where possible, else 4 KiB).
    pub fn map_range(
        &mut self,
        memory: &mut impl TableMemory,
        virtual_address: u64,
        physical_address: u64,
        length: u64,
        leaf_flags: u64,
    ) -> Result<(), MapError> {
        let mut offset = 0;
        while offset < length {
            let (virt, phys) = (virtual_address + offset, physical_address + offset);
            let size = if virt % PAGE_2M == 0 && phys % PAGE_2M == 0 && length - offset >= PAGE_2M {
                PAGE_2M
            } else {
                PAGE_4K
            };
            self.map(memory, virt, phys, size, leaf_flags)?;
            offset += size;
        }
        Ok(())
    }

    /// Hands every table frame of this address space (root included) to
    /// `free`, deepest first. Leaf frames are not touched: the owner of the
    /// mapped memory returns those.
    pub fn free_tables(self, memory: &impl TableMemory, free: &mut dyn FnMut(Frame)) {
        fn walk(memory: &impl TableMemory, table: Frame, level: u32, free: &mut dyn FnMut(Frame)) {
            if level > 0 {
                for slot in 0..512 {
                    let entry = memory.read_entry(table, slot);
                    if entry & flags::PRESENT != 0 && entry & flags::HUGE == 0 {
                        walk(memory, Frame::containing(entry & flags::ADDRESS_MASK), level - 1, free);
                    }
                }
            }
            free(table);
        }
        walk(memory, self.root, 3, free);
    }

    /// Removes the 4 KiB mapping at `virtual_address`; returns the physical
    /// address it mapped. The caller flushes the TLB of any CPU that may
    /// hold the translation before reusing the frame.
    pub fn unmap(&mut self, memory: &mut impl TableMemory, virtual_address: u64) -> Option<u64> {
        let mut table = self.root;
        for level in (1..=3).rev() {
            let entry = memory.read_entry(table, index(virtual_address, level));
            if entry & flags::PRESENT == 0 || entry & flags::HUGE != 0 {
                return None;
            }
            table = Frame::containing(entry & flags::ADDRESS_MASK);
        }
        let slot = index(virtual_address, 0);
        let entry = memory.read_entry(table, slot);
        if entry & flags::PRESENT == 0 {
            return None;
        }
        memory.write_entry(table, slot, 0);
        Some(entry & flags::ADDRESS_MASK)
    }

    /// The physical address and leaf flags a virtual address translates to.
    pub fn translate(&self, memory: &impl TableMemory, virtual_address: u64) -> Option<(u64, u64)> {
        let mut table = self.root;
        for level in (0..=3).rev() {
            let entry = memory.read_entry(table, index(virtual_address, level));
            if entry & flags::PRESENT == 0 {
                return None;
            }
            let page_size = PAGE_4K << (9 * level);
            if level == 0 || entry & flags::HUGE != 0 {
                let base = entry & flags::ADDRESS_MASK & !(page_size - 1);
                let leaf_flags = entry & !flags::ADDRESS_MASK;
                return Some((base + (virtual_address & (page_size - 1)), leaf_flags));
            }
            table = Frame::containing(entry & flags::ADDRESS_MASK);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct FakeMemory {
        tables: HashMap<u64, [u64; 512]>,
        next_frame: u64,
        limit: u64,
    }

    impl TableMemory for FakeMemory {
        fn read_entry(&self, table: Frame, index: usize) -> u64 {
            self.tables[&table.0][index]
        }
        fn write_entry(&mut self, table: Frame, index: usize, entry: u64) {
            self.tables.get_mut(&table.0).unwrap()[index] = entry;
        }
        fn allocate_table(&mut self) -> Option<Frame> {
            if self.next_frame >= self.limit {
                return None;
            }
            self.next_frame += 1;
            self.tables.insert(self.next_frame, [0; 512]);
            Some(Frame(self.next_frame))
        }
    }

    fn memory() -> FakeMemory {
        FakeMemory { limit: 100, ..FakeMemory::default() }
    }

    #[test]
    fn maps_and_translates_4k_and_2m() {
        let mut memory = memory();
        let mut space = AddressSpace::new(&mut memory).unwrap();
        let kernel = 0xffff_ffff_8010_0000;
        space.map(&mut memory, kernel, 0x10_0000, PAGE_4K, flags::GLOBAL).unwrap();
        space.map(&mut memory, 0xffff_8000_0020_0000, 0x20_0000, PAGE_2M, flags::WRITABLE | flags::NO_EXECUTE).unwrap();
        assert_eq!(space.translate(&memory, kernel + 0x123), Some((0x10_0123, flags::GLOBAL | flags::PRESENT)));
        let (physical, leaf) = space.translate(&memory, 0xffff_8000_0031_2345).unwrap();
        assert_eq!(physical, 0x31_2345);
        assert_ne!(leaf & flags::HUGE, 0);
        assert_ne!(leaf & flags::NO_EXECUTE, 0);
        assert_eq!(space.translate(&memory, 0x1000), None);
        assert_eq!(space.table_frames, 1 + 3 + 2);
    }

    #[test]
    fn refuses_overlaps_misalignment_and_noncanonical() {
        let mut memory = memory();
        let mut space = AddressSpace::new(&mut memory).unwrap();
        space.map(&mut memory, 0x20_0000, 0x20_0000, PAGE_2M, 0).unwrap();
        assert_eq!(space.map(&mut memory, 0x20_0000, 0, PAGE_2M, 0), Err(MapError::AlreadyMapped(0x20_0000)));
        assert_eq!(space.map(&mut memory, 0x20_1000, 0, PAGE_4K, 0), Err(MapError::HugePageInTheWay(0x20_1000)));
        assert_eq!(space.map(&mut memory, 0x1001, 0, PAGE_4K, 0), Err(MapError::Misaligned { virtual_address: 0x1001 }));
        assert_eq!(space.map(&mut memory, 0x1000, 0x800, PAGE_4K, 0), Err(MapError::Misaligned { virtual_address: 0x1000 }));
        assert_eq!(space.map(&mut memory, 0x1000, 0, 8192, 0), Err(MapError::Misaligned { virtual_address: 0x1000 }));
        assert_eq!(space.map(&mut memory, 0x0000_8000_0000_0000, 0, PAGE_4K, 0), Err(MapError::NonCanonical(0x0000_8000_0000_0000)));
    }

    #[test]
    fn user_leaves_make_user_paths() {
        let mut memory = memory();
        let mut space = AddressSpace::new(&mut memory).unwrap();
        space.map(&mut memory, 0x40_0000, 0x1000, PAGE_4K, 0).unwrap();
        space.map(&mut memory, 0x40_1000, 0x2000, PAGE_4K, flags::USER).unwrap();
        let pml4_entry = memory.read_entry(space.root, 0);
        assert_ne!(pml4_entry & flags::USER, 0);
        let (_, supervisor_leaf) = space.translate(&memory, 0x40_0000).unwrap();
        assert_eq!(supervisor_leaf & flags::USER, 0);
    }

    #[test]
    fn unmap_removes_only_that_page() {
        let mut memory = memory();
        let mut space = AddressSpace::new(&mut memory).unwrap();
        space.map(&mut memory, 0x8000_0000, 0x1234_5000, PAGE_4K, flags::USER).unwrap();
        space.map(&mut memory, 0x8000_1000, 0x1234_6000, PAGE_4K, flags::USER).unwrap();
        assert_eq!(space.unmap(&mut memory, 0x8000_0000), Some(0x1234_5000));
        assert_eq!(space.translate(&memory, 0x8000_0000), None);
        assert!(space.translate(&memory, 0x8000_1000).is_some());
        assert_eq!(space.unmap(&mut memory, 0x8000_0000), None);
        assert_eq!(space.unmap(&mut memory, 0x9000_0000), None);
        space.map(&mut memory, 0x8000_0000, 0x1234_7000, PAGE_4K, flags::USER).unwrap();
    }

    #[test]
    fn free_tables_returns_every_table_and_no_leaf() {
        let mut memory = memory();
        let mut space = AddressSpace::new(&mut memory).unwrap();
        space.map(&mut memory, 0x4000_0000, 0x9999_0000, PAGE_4K, flags::USER).unwrap();
        space.map(&mut memory, 0xffff_ffff_8010_0000, 0x10_0000, PAGE_4K, 0).unwrap();
        space.map(&mut memory, 0x20_0000, 0x20_0000, PAGE_2M, 0).unwrap();
        let expected = space.table_frames;
        let mut freed = Vec::new();
        space.free_tables(&memory, &mut |frame| freed.push(frame));
        assert_eq!(freed.len() as u64, expected);
        assert_eq!(*freed.last().unwrap(), space.root);
        assert!(!freed.contains(&Frame::containing(0x9999_0000)));
        assert!(!freed.contains(&Frame::containing(0x20_0000)));
    }

    #[test]
    fn map_range_picks_page_sizes_and_reports_exhaustion() {
        let mut memory = memory();
        let mut space = AddressSpace::new(&mut memory).unwrap();
        space.map_range(&mut memory, 0x1f_f000, 0x1f_f000, PAGE_2M + 2 * PAGE_4K, 0).unwrap();
        let (_, leaf) = space.translate(&memory, 0x20_0000).unwrap();
        assert_ne!(leaf & flags::HUGE, 0, "the aligned middle is one 2 MiB page");
        let (_, leaf) = space.translate(&memory, 0x1f_f000).unwrap();
        assert_eq!(leaf & flags::HUGE, 0);
        let mut tiny = FakeMemory { limit: 2, ..FakeMemory::default() };
        let mut space = AddressSpace::new(&mut tiny).unwrap();
        assert_eq!(space.map(&mut tiny, 0x1000, 0, PAGE_4K, 0), Err(MapError::OutOfFrames));
    }
}
