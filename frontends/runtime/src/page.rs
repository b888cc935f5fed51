//! Pages to share: a page-aligned, zeroed 4 KiB heap page made of atomics
//! ([`Page`], over `ring_protocol::PageBuffer`), so another domain may write
//! it at any time without breaking what Rust assumes of our memory, and the
//! pseudo-physical frame number of a page of ours (`(address - RAM_BASE) /
//! 4096`) to grant it with.
//!
//! A static `PageBuffer` works too (it is zeroed in `.bss`): pass it to
//! [`pfn_of`] and `SharedPage::new`.

use alloc::boxed::Box;

pub use ring_protocol::{PageBuffer, SharedPage};
use xen_abi::layout::{MAX_RAM_BYTES, PAGE_SIZE, RAM_BASE};

/// The pseudo-physical frame at guest address `address`, if it is the start
/// of a page of the RAM window.
pub fn pfn_of_address(address: u64) -> Option<u64> {
    let inside = address % PAGE_SIZE == 0 && (RAM_BASE..RAM_BASE + MAX_RAM_BYTES).contains(&address);
    inside.then(|| (address - RAM_BASE) / PAGE_SIZE)
}

/// The guest address of a page of ours.
pub fn address_of(page: &PageBuffer) -> u64 {
    core::ptr::from_ref(page) as u64
}

/// The pseudo-physical frame of a page of ours (`None` on the host, where
/// memory is not at `RAM_BASE`).
pub fn pfn_of(page: &PageBuffer) -> Option<u64> {
    pfn_of_address(address_of(page))
}

/// A zeroed page of the heap, page-aligned, for granting.
pub struct Page {
    buffer: Box<PageBuffer>,
}

impl Default for Page {
    fn default() -> Self {
        Page::new()
    }
}

impl Page {
    /// A fresh zeroed page (panics, like every allocation, if the heap is
    /// exhausted).
    pub fn new() -> Page {
        Page { buffer: Box::new(PageBuffer::new()) }
    }

    /// Zeroes it again. Taking `&mut self` means nothing of ours shares it;
    /// a peer that still maps it is why a grant must be revoked first.
    pub fn zero(&mut self) {
        *self.buffer = PageBuffer::new();
    }

    /// The buffer, to hand to a grant or a ring.
    pub fn buffer(&self) -> &PageBuffer {
        &self.buffer
    }

    /// The page as a shared ring page.
    pub fn shared(&self) -> SharedPage<'_> {
        SharedPage::new(&self.buffer)
    }

    /// Its guest address.
    pub fn address(&self) -> u64 {
        address_of(&self.buffer)
    }

    /// Its pseudo-physical frame (`None` on the host).
    pub fn pfn(&self) -> Option<u64> {
        pfn_of(&self.buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_addresses() {
        assert_eq!(pfn_of_address(RAM_BASE), Some(0));
        assert_eq!(pfn_of_address(RAM_BASE + 5 * 4096), Some(5));
        assert_eq!(pfn_of_address(RAM_BASE + 5 * 4096 + 8), None, "not a page start");
        assert_eq!(pfn_of_address(RAM_BASE - 4096), None);
        assert_eq!(pfn_of_address(RAM_BASE + MAX_RAM_BYTES), None);
    }

    #[test]
    fn pages_are_aligned_and_zero() {
        let mut page = Page::new();
        assert_eq!(page.address() % 4096, 0);
        let mut ring = ring_protocol::Frontend::<ring_protocol::blkif::Blkif>::initialize(page.shared());
        assert_eq!(ring.free_requests(), 32);
        assert!(!ring.final_check_for_responses().unwrap());
        page.zero();
        assert_eq!(pfn_of(page.buffer()), pfn_of_address(page.address()));
    }
}
