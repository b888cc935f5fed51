//! The hypervisor's own page tables: the direct map of RAM (read/write,
//! never executable), the image with W^X per section, guard pages left
//! unmapped below every stack, and device registers uncached. Built with the
//! safe [`AddressSpace`] over frames reached through the direct map.

use xen_core::frame_allocator::{Frame, FrameAllocator};
use xen_core::layout::{DIRECT_MAP_BASE, KERNEL_VMA};
use xen_core::page_table::{flags, AddressSpace, MapError, TableMemory, PAGE_4K};

use super::physical::{self, BOOT_MAP_LIMIT};

/// Page-table memory: frames from the allocator, reached through the
/// direct map.
pub struct DirectMapTables<'a, const WORDS: usize> {
    /// Where new table frames come from.
    pub frames: &'a mut FrameAllocator<WORDS>,
}

impl<const WORDS: usize> TableMemory for DirectMapTables<'_, WORDS> {
    fn read_entry(&self, table: Frame, index: usize) -> u64 {
        physical::read_u64(table, index)
    }
    fn write_entry(&mut self, table: Frame, index: usize, entry: u64) {
        physical::write_u64(table, index, entry);
    }
    fn allocate_table(&mut self) -> Option<Frame> {
        let frame = self.frames.allocate()?;
        // While the boot map is live only the first 4 GiB are reachable.
        assert!(frame.address() < BOOT_MAP_LIMIT, "page-table frame above the boot map");
        physical::zero_frame(frame);
        Some(frame)
    }
}

/// The image's sections, from the linker script.
struct ImageLayout {
    text: (u64, u64),
    rodata: (u64, u64),
    data: (u64, u64),
}

fn image_layout() -> ImageLayout {
    extern "C" {
        static __text_start: u8;
        static __text_end: u8;
        static __rodata_start: u8;
        static __rodata_end: u8;
        static __data_start: u8;
        static __data_end: u8;
    }
    let address = |symbol: *const u8| symbol as u64;
    ImageLayout {
        text: (address(core::ptr::addr_of!(__text_start)), address(core::ptr::addr_of!(__text_end))),
        rodata: (address(core::ptr::addr_of!(__rodata_start)), address(core::ptr::addr_of!(__rodata_end))),
        data: (address(core::ptr::addr_of!(__data_start)), address(core::ptr::addr_of!(__data_end))),
    }
}

/// Physical end of the loaded image (bss included).
pub fn image_physical_range() -> (u64, u64) {
    let layout = image_layout();
    (0x10_0000, layout.data.1 - KERNEL_VMA)
}

/// The virtual addresses of guard pages, which stay unmapped.
fn is_guard_page(address: u64, guards: &[u64]) -> bool {
    guards.contains(&address)
}

/// Maps the image section by section. Text is executable and read-only,
/// rodata read-only, data and bss writable; only text is executable.
fn map_image<const WORDS: usize>(space: &mut AddressSpace, tables: &mut DirectMapTables<'_, WORDS>, guards: &[u64]) -> Result<(), MapError> {
    let layout = image_layout();
    let sections = [
        (layout.text, flags::GLOBAL),
        (layout.rodata, flags::GLOBAL | flags::NO_EXECUTE),
        (layout.data, flags::GLOBAL | flags::WRITABLE | flags::NO_EXECUTE),
    ];
    for ((start, end), leaf_flags) in sections {
        let mut page = start;
        while page < end {
            if !is_guard_page(page, guards) {
                space.map(tables, page, page - KERNEL_VMA, PAGE_4K, leaf_flags)?;
            }
            page += PAGE_4K;
        }
    }
    Ok(())
}

/// Maps `[start, end)` of physical RAM into the direct map.
pub fn map_direct<const WORDS: usize>(space: &mut AddressSpace, tables: &mut DirectMapTables<'_, WORDS>, start: u64, end: u64) -> Result<(), MapError> {
    let start = start & !(PAGE_4K - 1);
    let end = end.next_multiple_of(PAGE_4K);
    if end <= start {
        return Ok(());
    }
    space.map_range(
        tables,
        DIRECT_MAP_BASE + start,
        start,
        end - start,
        flags::GLOBAL | flags::WRITABLE | flags::NO_EXECUTE,
    )
}

/// Maps one page of device registers uncached at `virtual_address`.
pub fn map_mmio<const WORDS: usize>(space: &mut AddressSpace, tables: &mut DirectMapTables<'_, WORDS>, virtual_address: u64, physical_address: u64) -> Result<(), MapError> {
    space.map(
        tables,
        virtual_address,
        physical_address & !(PAGE_4K - 1),
        PAGE_4K,
        flags::GLOBAL | flags::WRITABLE | flags::NO_EXECUTE | flags::NO_CACHE | flags::WRITE_THROUGH,
    )
}

/// Builds the hypervisor's address space: the image (W^X, guards unmapped)
/// and the direct map of `ram` ranges. Device pages are added by the caller
/// before switching.
pub fn build<const WORDS: usize>(
    frames: &mut FrameAllocator<WORDS>,
    ram: impl Iterator<Item = (u64, u64)>,
    guards: &[u64],
) -> Result<AddressSpace, MapError> {
    let mut tables = DirectMapTables { frames };
    let mut space = AddressSpace::new(&mut tables)?;
    map_image(&mut space, &mut tables, guards)?;
    for (start, end) in ram {
        map_direct(&mut space, &mut tables, start, end)?;
    }
    Ok(space)
}

/// Switches to `space`. From here on the boot tables (and the identity map
/// of low memory) are gone.
pub fn activate(space: &AddressSpace) {
    // SAFETY: `space` maps the image (so the code running now and its stack
    // stay mapped at the same addresses), the direct map and the devices the
    // hypervisor uses; the boot tables' other mappings are no longer needed.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) space.root.address(), options(nostack)) };
}
