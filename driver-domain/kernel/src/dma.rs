//! Memory the device may reach, and the bus addresses it reaches it by.
//!
//! - [`PagePool`]: a static, page-aligned pool of our own pages handed out
//!   in contiguous runs for the virtqueues (`Hal::dma_alloc`); its pages
//!   are `PageBuffer`s (atomics), so the device writing them behind the
//!   compiler's back is sound.
//! - [`BusMap`]: turns an address of ours into a bus address
//!   (`Hal::share`): a page of our RAM through the hypervisor's
//!   `MEMORY_OP_BUS_ADDRESS` (cached per frame: our frames do not move), a
//!   page of the grant window through the bus address its grant mapping
//!   returned (registered while the mapping lives, withdrawn before it
//!   goes). A range over several window pages translates only when their
//!   bus addresses follow each other (a request's pages merged into one
//!   buffer). Anything else has no bus address: the device is never pointed
//!   at it.

use alloc::vec::Vec;

use guest_runtime::page::{address_of, PageBuffer};
use xen_abi::layout::{GRANT_WINDOW_BASE, GRANT_WINDOW_PAGES, MAX_RAM_BYTES, PAGE_SIZE, RAM_BASE};

/// The pool `Hal::dma_alloc` hands out.
pub static POOL: PagePool = PagePool::new();

/// The translations `Hal::share` uses.
static BUS: spin::Mutex<BusMap> = spin::Mutex::new(BusMap::new());

/// The bus address of `[address, address + length)`: our RAM (asking the
/// hypervisor the first time a frame is seen) or a registered granted page.
pub fn bus_address(address: u64, length: u64) -> Option<u64> {
    BUS.lock().translate(address, length, |pfn, count| {
        guest_runtime::physdev::bus_address(pfn, count).ok()
    })
}

/// Registers the bus address of a granted page mapped at `page`.
pub fn register_grant(page: u64, bus: u64) {
    BUS.lock().add_grant(page, bus);
}

/// Withdraws the registered granted page mapped at `page` (its mapping is
/// about to go).
pub fn remove_grant(page: u64) {
    BUS.lock().remove_grant(page);
}

/// Pages in the DMA pool (the virtqueue of virtio-blk needs two).
pub const POOL_PAGES: usize = 16;

/// A fixed pool of pages, allocated in contiguous runs.
pub struct PagePool {
    pages: [PageBuffer; POOL_PAGES],
    /// Bit `i` set: page `i` is handed out.
    used: spin::Mutex<u32>,
}

const _: () = assert!(POOL_PAGES <= 32);

impl PagePool {
    /// An empty pool.
    pub const fn new() -> PagePool {
        PagePool {
            pages: [const { PageBuffer::new() }; POOL_PAGES],
            used: spin::Mutex::new(0),
        }
    }

    /// Takes `count` contiguous free pages, zeroes them and returns the
    /// address of the first; `None` if no run is free.
    pub fn allocate(&self, count: usize) -> Option<u64> {
        if count == 0 || count > POOL_PAGES {
            return None;
        }
        let mut used = self.used.lock();
        let run = ((1u64 << count) - 1) as u32;
        let first = (0..=POOL_PAGES - count).find(|first| *used & (run << first) == 0)?;
        *used |= run << first;
        drop(used);
        let pages = &self.pages[first..first + count];
        for page in pages {
            page_zero(page);
        }
        Some(address_of(&pages[0]))
    }

    /// Gives back the run of `count` pages at `address`; `false` if that is
    /// not a run this pool handed out.
    pub fn release(&self, address: u64, count: usize) -> bool {
        let Some(first) = self.index_of(address) else {
            return false;
        };
        if count == 0 || first + count > POOL_PAGES {
            return false;
        }
        let run = (((1u64 << count) - 1) as u32) << first;
        let mut used = self.used.lock();
        if *used & run != run {
            return false;
        }
        *used &= !run;
        true
    }

    /// Which page of the pool starts at `address`.
    fn index_of(&self, address: u64) -> Option<usize> {
        let base = address_of(&self.pages[0]);
        let offset = address.checked_sub(base)?;
        (offset % PAGE_SIZE == 0 && offset / PAGE_SIZE < POOL_PAGES as u64)
            .then_some((offset / PAGE_SIZE) as usize)
    }

    /// Pages handed out now.
    #[cfg(test)]
    pub fn pages_in_use(&self) -> u32 {
        self.used.lock().count_ones()
    }
}

impl Default for PagePool {
    fn default() -> Self {
        PagePool::new()
    }
}

/// Zeroes a page through its atomics.
fn page_zero(page: &PageBuffer) {
    ring_protocol::SharedPage::new(page).copy_in(0, &[0u8; PAGE_SIZE as usize]);
}

/// Where an address lies, for translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// Our RAM: pseudo-physical frames `first..=last`.
    Ram {
        /// First frame.
        first: u64,
        /// Last frame.
        last: u64,
    },
    /// Pages of the grant window: the first one's address and how many.
    Grant {
        /// Address of the first page.
        page: u64,
        /// Pages the range touches.
        pages: u64,
    },
}

/// Classifies `[address, address + length)`: inside our RAM, or inside
/// the grant window; `None` otherwise (and for length 0).
pub fn region_of(address: u64, length: u64) -> Option<Region> {
    let end = address.checked_add(length)?;
    if length == 0 {
        return None;
    }
    if address >= RAM_BASE && end <= RAM_BASE + MAX_RAM_BYTES {
        return Some(Region::Ram {
            first: (address - RAM_BASE) / PAGE_SIZE,
            last: (end - 1 - RAM_BASE) / PAGE_SIZE,
        });
    }
    let window_end = GRANT_WINDOW_BASE + GRANT_WINDOW_PAGES * PAGE_SIZE;
    if address >= GRANT_WINDOW_BASE && end <= window_end {
        let page = address & !(PAGE_SIZE - 1);
        let pages = (end - 1 - page) / PAGE_SIZE + 1;
        return Some(Region::Grant { page, pages });
    }
    None
}

/// Bus addresses of our frames and contiguous runs of them (cached: our
/// frames do not move), and of the granted pages mapped now, by their page
/// of the grant window (a flat table: one look-up per buffer, however many
/// grants stay mapped).
pub struct BusMap {
    /// By frame number (below [`MAX_CACHED_FRAMES`]), its bus address (0:
    /// not asked yet): one index per buffer, where a search tree cost a
    /// hundred instructions, three times a request.
    frames: Vec<u64>,
    /// Runs of several frames: (first frame, count, bus address).
    runs: Vec<(u64, u64, u64)>,
    /// Per page of the grant window, its bus address (0: none registered).
    granted: [u64; GRANT_WINDOW_PAGES as usize],
}

/// Frames of ours whose bus addresses are remembered: the first 16 MiB of
/// our RAM (a 32 KiB table at most).
const MAX_CACHED_FRAMES: usize = 4096;
/// Runs of frames remembered at most.
const MAX_CACHED_RUNS: usize = 16;

impl Default for BusMap {
    fn default() -> Self {
        BusMap::new()
    }
}

impl BusMap {
    /// An empty map.
    pub const fn new() -> BusMap {
        BusMap {
            frames: Vec::new(),
            runs: Vec::new(),
            granted: [0; GRANT_WINDOW_PAGES as usize],
        }
    }

    fn window_index(page: u64) -> Option<usize> {
        let index = page.checked_sub(GRANT_WINDOW_BASE)? / PAGE_SIZE;
        (page % PAGE_SIZE == 0 && index < GRANT_WINDOW_PAGES).then_some(index as usize)
    }

    /// Notes that the grant-window page `page` has bus address `bus`.
    pub fn add_grant(&mut self, page: u64, bus: u64) {
        if let Some(index) = Self::window_index(page) {
            self.granted[index] = bus;
        }
    }

    /// Forgets the granted page at `page` (its mapping is about to go).
    pub fn remove_grant(&mut self, page: u64) {
        if let Some(index) = Self::window_index(page) {
            self.granted[index] = 0;
        }
    }

    /// The bus address of `[address, address + length)`, asking `frames`
    /// (the hypervisor: first frame, count → bus address if contiguous)
    /// for frames of ours not seen before.
    pub fn translate(
        &mut self,
        address: u64,
        length: u64,
        frames: impl Fn(u64, u64) -> Option<u64>,
    ) -> Option<u64> {
        match region_of(address, length)? {
            Region::Grant { page, pages } => {
                let first = Self::window_index(page)?;
                let (&bus, rest) = self
                    .granted
                    .get(first..first + pages as usize)?
                    .split_first()?;
                // Each further page must be registered right after the one
                // before it on the bus, or the device would reach past it.
                let mut expected = bus;
                for &next in rest {
                    expected += PAGE_SIZE;
                    if next != expected {
                        return None;
                    }
                }
                (bus != 0).then(|| bus + (address - page))
            }
            Region::Ram { first, last } => {
                let offset = (address - RAM_BASE) % PAGE_SIZE;
                let count = last - first + 1;
                if first == last {
                    if let Some(&bus) = self.frames.get(first as usize).filter(|&&bus| bus != 0) {
                        return Some(bus + offset);
                    }
                } else if let Some((_, _, bus)) = self
                    .runs
                    .iter()
                    .find(|(known, frames, _)| *known == first && *frames == count)
                {
                    return Some(bus + offset);
                }
                let bus = frames(first, count)?;
                if first == last && (first as usize) < MAX_CACHED_FRAMES {
                    if self.frames.len() <= first as usize {
                        self.frames.resize(first as usize + 1, 0);
                    }
                    self.frames[first as usize] = bus;
                } else if first != last && self.runs.len() < MAX_CACHED_RUNS {
                    self.runs.push((first, count, bus));
                }
                Some(bus + offset)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_hands_out_contiguous_runs_and_takes_them_back() {
        let pool = PagePool::new();
        let first = pool.allocate(2).unwrap();
        let second = pool.allocate(1).unwrap();
        assert_eq!(first % PAGE_SIZE, 0);
        assert_eq!(second, first + 2 * PAGE_SIZE);
        assert_eq!(pool.pages_in_use(), 3);
        assert!(pool.release(first, 2));
        assert!(!pool.release(first, 2), "twice");
        assert!(!pool.release(first + 1, 1), "not a page start");
        assert_eq!(pool.allocate(POOL_PAGES), None, "one page is still out");
        assert_eq!(pool.allocate(2), Some(first));
        assert!(pool.release(second, 1) && pool.release(first, 2));
        assert_eq!(pool.allocate(POOL_PAGES), Some(first));
        assert_eq!(pool.allocate(0), None);
    }

    #[test]
    fn regions_are_ram_or_one_page_of_the_grant_window() {
        assert_eq!(
            region_of(RAM_BASE + 0x1ff0, 0x20),
            Some(Region::Ram { first: 1, last: 2 })
        );
        assert_eq!(
            region_of(GRANT_WINDOW_BASE + 0x1200, 0x200),
            Some(Region::Grant {
                page: GRANT_WINDOW_BASE + 0x1000,
                pages: 1
            })
        );
        assert_eq!(
            region_of(GRANT_WINDOW_BASE + 0x1e00, 0x400),
            Some(Region::Grant {
                page: GRANT_WINDOW_BASE + 0x1000,
                pages: 2
            }),
            "crosses a grant page"
        );
        assert_eq!(
            region_of(GRANT_WINDOW_BASE + 0x1000, 2 * PAGE_SIZE),
            Some(Region::Grant {
                page: GRANT_WINDOW_BASE + 0x1000,
                pages: 2
            }),
            "ends at a page end"
        );
        assert_eq!(region_of(0x1000, 16), None);
        assert_eq!(region_of(RAM_BASE, 0), None);
        assert_eq!(region_of(u64::MAX - 4, 16), None);
        assert_eq!(
            region_of(GRANT_WINDOW_BASE + GRANT_WINDOW_PAGES * PAGE_SIZE, 8),
            None
        );
    }

    #[test]
    fn translation_caches_our_frames_and_knows_only_registered_grants() {
        let mut map = BusMap::new();
        let asked = core::cell::Cell::new(0);
        let hypervisor = |pfn: u64, count: u64| {
            asked.set(asked.get() + 1);
            (count <= 2).then_some(0x10_0000_0000 + pfn * PAGE_SIZE)
        };
        assert_eq!(
            map.translate(RAM_BASE + 0x3010, 16, hypervisor),
            Some(0x10_0000_3010)
        );
        assert_eq!(
            map.translate(RAM_BASE + 0x3800, 16, hypervisor),
            Some(0x10_0000_3800)
        );
        assert_eq!(asked.get(), 1, "cached");
        assert_eq!(
            map.translate(RAM_BASE + 0x3ff0, 32, hypervisor),
            Some(0x10_0000_3ff0),
            "two frames, asked"
        );
        assert_eq!(
            map.translate(RAM_BASE, 3 * PAGE_SIZE, hypervisor),
            None,
            "not contiguous"
        );
        let before = asked.get();
        assert_eq!(
            map.translate(RAM_BASE + 0x7000, 2 * PAGE_SIZE, hypervisor),
            Some(0x10_0000_7000)
        );
        assert_eq!(
            map.translate(RAM_BASE + 0x7000, 2 * PAGE_SIZE, hypervisor),
            Some(0x10_0000_7000)
        );
        assert_eq!(asked.get(), before + 1, "a run is cached too");
        let page = GRANT_WINDOW_BASE + 5 * PAGE_SIZE;
        assert_eq!(
            map.translate(page + 512, 512, hypervisor),
            None,
            "no grant registered"
        );
        map.add_grant(page, 0x7777_7000);
        assert_eq!(
            map.translate(page + 512, 512, hypervisor),
            Some(0x7777_7200)
        );
        assert_eq!(
            map.translate(page + 512, PAGE_SIZE, hypervisor),
            None,
            "the next window page has no grant"
        );
        map.add_grant(page + PAGE_SIZE, 0x7777_9000);
        assert_eq!(
            map.translate(page + 512, PAGE_SIZE, hypervisor),
            None,
            "the next page is not next on the bus"
        );
        map.add_grant(page + PAGE_SIZE, 0x7777_8000);
        assert_eq!(
            map.translate(page + 512, PAGE_SIZE, hypervisor),
            Some(0x7777_7200),
            "two pages in a row on the bus"
        );
        assert_eq!(
            map.translate(page, 3 * PAGE_SIZE, hypervisor),
            None,
            "the third page has no grant"
        );
        map.remove_grant(page);
        assert_eq!(map.translate(page, 512, hypervisor), None);
        assert_eq!(
            map.translate(page + PAGE_SIZE, 512, hypervisor),
            Some(0x7777_8000)
        );
        assert_eq!(
            map.translate(0x1000, 1, hypervisor),
            None,
            "neither RAM nor grant window"
        );
    }
}
