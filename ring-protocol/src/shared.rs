//! The one door to a page the peer can write: every read and write of a shared ring page
//! in this crate goes through [`SharedPage`], and this is the only module with `unsafe`.
//!
//! Rules this module keeps, so a racing or hostile peer causes wrong data, never
//! unsoundness:
//!
//! 1. No `&T` or `&mut T` to plain data in the page is ever created or handed out. Data is
//!    copied in and out through atomic accesses of one fixed width per region: 32-bit words
//!    for ring indices, 64-bit words for the slots of a protocol whose slot and entry sizes
//!    are all multiples of 8 (blkif, netif rx; slots start at the 64-byte header, so they
//!    are 8-aligned) and 32-bit words for the slots of any other (netif tx), single bytes
//!    for the console and store byte rings. Both ends of a ring run this code with the
//!    same protocol, so they access each slot word with the same width.
//!    Atomic accesses are defined even when they race (the peer is another thread in our
//!    tests, or another domain in production, whose accesses are outside our program);
//!    plain or volatile accesses would be a data race, and undefined, within one process.
//! 2. Every offset is bounds-checked against the page here, so a bug elsewhere in the
//!    crate panics instead of touching memory outside the page. Callers compute offsets
//!    from their own, masked indices, never from a peer's value, so the checks do not fire.
//! 3. Values read from the page are returned by value: a caller that reads an entry once
//!    holds a private copy the peer cannot change afterwards (Xen XSA-155).
//!
//! Under `cfg(loom)` the same interface is backed by loom's atomics for the indices and
//! loom `UnsafeCell`s for every data byte, so loom checks the ring code in `frontend.rs`
//! and `backend.rs`, unchanged, for missing orderings and lost wake-ups.

use crate::layout::PAGE_SIZE;
use core::sync::atomic::Ordering;

#[cfg(not(loom))]
pub use implementation::PageBuffer;
pub use implementation::SharedPage;

/// The cache line size `SharedPage::prefetch` steps by (x86_64).
#[cfg(not(loom))]
const CACHE_LINE_SIZE: usize = 64;

/// A full memory barrier (Xen's `mb()`): orders this side's earlier stores before its later
/// loads. Under `cfg(loom)` this is loom's fence, so the model sees it.
#[inline]
pub(crate) fn full_fence() {
    #[cfg(not(loom))]
    core::sync::atomic::fence(Ordering::SeqCst);
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// Panics unless `offset..offset + length` lies in the page and is `alignment`-aligned.
/// Reached only through a bug in this crate: callers derive offsets from masked indices.
#[inline]
fn check_range(offset: usize, length: usize, alignment: usize) {
    assert!(
        offset % alignment == 0 && length % alignment == 0,
        "shared page access at {offset} of {length} bytes is not {alignment}-aligned"
    );
    assert!(
        offset <= PAGE_SIZE && length <= PAGE_SIZE - offset,
        "shared page access at {offset} of {length} bytes is outside the page"
    );
}

#[cfg(not(loom))]
mod implementation {
    use super::{check_range, Ordering, CACHE_LINE_SIZE};
    use crate::layout::PAGE_SIZE;
    use core::marker::PhantomData;
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8};

    /// A page-aligned, zeroed 4 KiB buffer that both sides of a ring can share within one
    /// address space: in tests, and for rings between two parts of one program. It is made
    /// of atomics, so sharing it by `&` is sound.
    #[repr(C, align(4096))]
    pub struct PageBuffer {
        words: [AtomicU32; PAGE_SIZE / 4],
    }

    impl PageBuffer {
        /// A zeroed page.
        pub const fn new() -> Self {
            Self {
                words: [const { AtomicU32::new(0) }; PAGE_SIZE / 4],
            }
        }
    }

    impl Default for PageBuffer {
        fn default() -> Self {
            Self::new()
        }
    }

    /// A handle to one 4 KiB page shared with a peer that may write it at any moment.
    ///
    /// It never lends out a reference into the page; it only copies values in and out.
    #[derive(Clone)]
    pub struct SharedPage<'page> {
        base: NonNull<u8>,
        lifetime: PhantomData<&'page PageBuffer>,
    }

    // SAFETY: a `SharedPage` is a pointer to memory that is only ever accessed through
    // atomic operations (rule 1 of the module doc), which are sound from any thread; it owns
    // nothing that is tied to one thread.
    unsafe impl Send for SharedPage<'_> {}
    // SAFETY: as for `Send`: every method takes `&self` and performs only atomic accesses,
    // so concurrent use from several threads is sound.
    unsafe impl Sync for SharedPage<'_> {}

    impl<'page> SharedPage<'page> {
        /// A handle to a page buffer owned by this program.
        pub fn new(buffer: &'page PageBuffer) -> Self {
            Self {
                base: NonNull::from(buffer).cast(),
                lifetime: PhantomData,
            }
        }

        /// A handle to a page mapped from elsewhere, such as a granted page.
        ///
        /// # Safety
        ///
        /// 1. `base` is aligned to 4096 bytes, and the 4096 bytes from it are mapped
        ///    readable and writable for all of `'page`.
        /// 2. Within this program, every access to that page during `'page` goes through a
        ///    `SharedPage` (or is otherwise atomic with the same access widths); no Rust
        ///    reference to its contents exists. Writes by another domain or device are
        ///    outside this program and are allowed at any time.
        pub unsafe fn from_raw(base: NonNull<u8>) -> Self {
            Self {
                base,
                lifetime: PhantomData,
            }
        }

        /// The atomic 32-bit word at `offset` (4-aligned, checked by the caller).
        #[inline]
        fn word(&self, offset: usize) -> &AtomicU32 {
            let pointer = self.base.as_ptr().wrapping_add(offset).cast::<u32>();
            // SAFETY: 1. `offset` is in the page and 4-aligned (checked by every caller
            // through `check_range`), and the base is page-aligned, so `pointer` is in
            // bounds and aligned for `AtomicU32`. 2. The page stays mapped for `'page`
            // (contract of `new`/`from_raw`), and the returned reference does not outlive
            // `&self`. 3. All accesses to this word in this program are 32-bit atomics
            // (module rule 1), as `AtomicU32::from_ptr` requires.
            unsafe { AtomicU32::from_ptr(pointer) }
        }

        /// The atomic 64-bit word at `offset` (8-aligned, checked by the caller).
        #[inline]
        fn double_word(&self, offset: usize) -> &AtomicU64 {
            let pointer = self.base.as_ptr().wrapping_add(offset).cast::<u64>();
            // SAFETY: 1. `offset` is in the page and 8-aligned (checked by every caller
            // through `check_range`), and the base is page-aligned, so `pointer` is in
            // bounds and aligned for `AtomicU64`. 2. The page stays mapped for `'page`
            // (contract of `new`/`from_raw`), and the returned reference does not outlive
            // `&self`. 3. The only region accessed with 64-bit atomics is the slots of a
            // protocol whose slots are whole 64-bit words, which both ends access with
            // 64-bit atomics only (module rule 1), so no racing mixed-size access arises.
            unsafe { AtomicU64::from_ptr(pointer) }
        }

        /// The atomic byte at `offset` (checked by the caller).
        #[inline]
        fn byte(&self, offset: usize) -> &AtomicU8 {
            let pointer = self.base.as_ptr().wrapping_add(offset);
            // SAFETY: as for `word`: `offset` is in the page (checked by every caller), the
            // page is mapped for `'page`, and all accesses to bytes of a byte-ring region
            // are 8-bit atomics (module rule 1).
            unsafe { AtomicU8::from_ptr(pointer) }
        }

        /// Loads the 32-bit index at `offset` with the given ordering.
        #[inline]
        pub(crate) fn load_index(&self, offset: usize, order: Ordering) -> u32 {
            check_range(offset, 4, 4);
            self.word(offset).load(order)
        }

        /// Stores the 32-bit index at `offset` with the given ordering.
        #[inline]
        pub(crate) fn store_index(&self, offset: usize, value: u32, order: Ordering) {
            check_range(offset, 4, 4);
            self.word(offset).store(value, order);
        }

        /// Copies `destination.len()` bytes from `offset` out of the page, one relaxed
        /// 32-bit load per word. Ordering against the indices comes from the index accesses.
        #[inline]
        pub(crate) fn read_words(&self, offset: usize, destination: &mut [u8]) {
            check_range(offset, destination.len(), 4);
            for (index, chunk) in destination.chunks_exact_mut(4).enumerate() {
                let value = self.word(offset + 4 * index).load(Ordering::Relaxed);
                chunk.copy_from_slice(&value.to_ne_bytes());
            }
        }

        /// Copies `source` into the page at `offset`, one relaxed 32-bit store per word.
        #[inline]
        pub(crate) fn write_words(&self, offset: usize, source: &[u8]) {
            check_range(offset, source.len(), 4);
            for (index, chunk) in source.chunks_exact(4).enumerate() {
                let mut bytes = [0u8; 4];
                bytes.copy_from_slice(chunk);
                self.word(offset + 4 * index)
                    .store(u32::from_ne_bytes(bytes), Ordering::Relaxed);
            }
        }

        /// Copies `destination.len()` bytes from `offset` out of the page, one relaxed
        /// 64-bit load per word (`offset` and the length 8-aligned). Only for the slots of
        /// protocols with 64-bit slot words (module rule 1).
        #[inline]
        pub(crate) fn read_double_words(&self, offset: usize, destination: &mut [u8]) {
            check_range(offset, destination.len(), 8);
            for (index, chunk) in destination.chunks_exact_mut(8).enumerate() {
                let value = self.double_word(offset + 8 * index).load(Ordering::Relaxed);
                chunk.copy_from_slice(&value.to_ne_bytes());
            }
        }

        /// Copies `source` into the page at `offset`, one relaxed 64-bit store per word
        /// (`offset` and the length 8-aligned). Only for the slots of protocols with 64-bit
        /// slot words (module rule 1).
        #[inline]
        pub(crate) fn write_double_words(&self, offset: usize, source: &[u8]) {
            check_range(offset, source.len(), 8);
            for (index, chunk) in source.chunks_exact(8).enumerate() {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(chunk);
                self.double_word(offset + 8 * index)
                    .store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
            }
        }

        /// Warms the cache for the `length` bytes at `offset` before they are copied out:
        /// one relaxed load per 64-byte cache line of the range, with the width the
        /// region is copied with (64-bit words if `wide`, else 32-bit; module rule 1).
        /// The values are discarded (`black_box` keeps the loads): nothing read here
        /// reaches any decision, so this is no fetch in the double-fetch sense (XSA-155);
        /// the entry is still copied out exactly once, later. Issued for several entries
        /// at once, the cache misses overlap instead of arriving one entry at a time.
        #[inline]
        pub(crate) fn prefetch(&self, offset: usize, length: usize, wide: bool) {
            let width = if wide { 8 } else { 4 };
            check_range(offset, length, width);
            let end = offset + length;
            let mut address = offset;
            while address < end {
                if wide {
                    core::hint::black_box(self.double_word(address).load(Ordering::Relaxed));
                } else {
                    core::hint::black_box(self.word(address).load(Ordering::Relaxed));
                }
                address = (address & !(CACHE_LINE_SIZE - 1)) + CACHE_LINE_SIZE;
            }
        }

        /// Copies bytes out of the page from `offset`, one relaxed byte load each.
        pub(crate) fn read_bytes(&self, offset: usize, destination: &mut [u8]) {
            check_range(offset, destination.len(), 1);
            for (index, byte) in destination.iter_mut().enumerate() {
                *byte = self.byte(offset + index).load(Ordering::Relaxed);
            }
        }

        /// Copies bytes into the page at `offset`, one relaxed byte store each.
        pub(crate) fn write_bytes(&self, offset: usize, source: &[u8]) {
            check_range(offset, source.len(), 1);
            for (index, byte) in source.iter().enumerate() {
                self.byte(offset + index).store(*byte, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(loom)]
mod implementation {
    use super::{check_range, Ordering};
    use crate::layout::{HEADER_SIZE, PAGE_SIZE};
    use core::marker::PhantomData;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::AtomicU32;
    use std::boxed::Box;
    use std::sync::Arc;

    /// Under loom: the page as loom sees it. The 64-byte header is sixteen loom atomics;
    /// every byte after it is its own loom `UnsafeCell`, so loom reports any slot access
    /// not ordered by the index protocol as a data race.
    struct ModelPage {
        header: [AtomicU32; HEADER_SIZE / 4],
        body: Box<[UnsafeCell<u8>]>,
    }

    /// A handle to one 4 KiB page shared with a peer (loom model version). Clone it to give
    /// the other side its own handle.
    #[derive(Clone)]
    pub struct SharedPage<'page> {
        page: Arc<ModelPage>,
        lifetime: PhantomData<&'page ()>,
    }

    impl SharedPage<'static> {
        /// A zeroed page inside a loom model.
        pub fn new_model() -> Self {
            let page = ModelPage {
                header: core::array::from_fn(|_| AtomicU32::new(0)),
                body: (HEADER_SIZE..PAGE_SIZE)
                    .map(|_| UnsafeCell::new(0))
                    .collect(),
            };
            // reason: loom's cells are not `Sync`; loom runs its model threads itself and
            // checks every access, so sharing the model page across them is what we want.
            #[allow(clippy::arc_with_non_send_sync)]
            let page = Arc::new(page);
            Self {
                page,
                lifetime: PhantomData,
            }
        }
    }

    impl SharedPage<'_> {
        fn cell(&self, offset: usize) -> &UnsafeCell<u8> {
            assert!(
                offset >= HEADER_SIZE,
                "model page: data access inside the header"
            );
            &self.page.body[offset - HEADER_SIZE]
        }

        /// Loads the 32-bit index at `offset` with the given ordering.
        #[inline]
        pub(crate) fn load_index(&self, offset: usize, order: Ordering) -> u32 {
            check_range(offset, 4, 4);
            self.page.header[offset / 4].load(order)
        }

        /// Stores the 32-bit index at `offset` with the given ordering.
        #[inline]
        pub(crate) fn store_index(&self, offset: usize, value: u32, order: Ordering) {
            check_range(offset, 4, 4);
            self.page.header[offset / 4].store(value, order);
        }

        /// Copies bytes out of the page; loom checks each byte for races.
        pub(crate) fn read_words(&self, offset: usize, destination: &mut [u8]) {
            check_range(offset, destination.len(), 4);
            self.read_bytes(offset, destination);
        }

        /// Copies bytes into the page; loom checks each byte for races.
        pub(crate) fn write_words(&self, offset: usize, source: &[u8]) {
            check_range(offset, source.len(), 4);
            self.write_bytes(offset, source);
        }

        /// Copies bytes out of the page; loom checks each byte for races.
        pub(crate) fn read_double_words(&self, offset: usize, destination: &mut [u8]) {
            check_range(offset, destination.len(), 8);
            self.read_bytes(offset, destination);
        }

        /// Copies bytes into the page; loom checks each byte for races.
        pub(crate) fn write_double_words(&self, offset: usize, source: &[u8]) {
            check_range(offset, source.len(), 8);
            self.write_bytes(offset, source);
        }

        /// A cache hint only (see the non-loom version); it reads nothing the model
        /// needs to see, so under loom it checks the range and does nothing else.
        pub(crate) fn prefetch(&self, offset: usize, length: usize, wide: bool) {
            check_range(offset, length, if wide { 8 } else { 4 });
        }

        /// Copies bytes out of the page; loom checks each byte for races.
        pub(crate) fn read_bytes(&self, offset: usize, destination: &mut [u8]) {
            check_range(offset, destination.len(), 1);
            for (index, byte) in destination.iter_mut().enumerate() {
                // SAFETY: loom's `with` hands a pointer valid for reading the cell's `u8`
                // for the duration of the closure; loom itself reports unordered access.
                *byte = self
                    .cell(offset + index)
                    .with(|pointer| unsafe { *pointer });
            }
        }

        /// Copies bytes into the page; loom checks each byte for races.
        pub(crate) fn write_bytes(&self, offset: usize, source: &[u8]) {
            check_range(offset, source.len(), 1);
            for (index, byte) in source.iter().enumerate() {
                // SAFETY: loom's `with_mut` hands a pointer valid for writing the cell's
                // `u8` for the duration of the closure; loom reports unordered access.
                self.cell(offset + index)
                    .with_mut(|pointer| unsafe { *pointer = *byte });
            }
        }
    }
}

impl SharedPage<'_> {
    /// Copies data out of a shared *data* page (a granted I/O page, not a ring): the
    /// `destination.len()` bytes from `offset`, one relaxed 32-bit load per word. Offset
    /// and length must be multiples of 4 inside the page (whole sectors are); whatever
    /// the peer writes meanwhile, the copy is ours afterwards.
    ///
    /// # Panics
    ///
    /// If the range is unaligned or outside the page.
    pub fn copy_out(&self, offset: usize, destination: &mut [u8]) {
        self.read_words(offset, destination);
    }

    /// Copies `source` into a shared *data* page at `offset`, one relaxed 32-bit store per
    /// word (offset and length multiples of 4 inside the page).
    ///
    /// # Panics
    ///
    /// If the range is unaligned or outside the page.
    pub fn copy_in(&self, offset: usize, source: &[u8]) {
        self.write_words(offset, source);
    }
}
