//! The one place the hypervisor touches memory a domain can write at the
//! same time: its shared-info page (event bits) and its grant table. Every
//! access is an atomic on a word in the direct map; no Rust reference to the
//! domain's memory is ever formed beyond the atomic itself, so a racing
//! domain can cause wrong data, never unsoundness.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use xen_abi::shared_info::{offset, vcpu_info};
use xen_core::event_channel::{Port, SharedInfoBits};
use xen_core::frame_allocator::Frame;
use xen_core::grant_table::{EntryHeader, GrantEntries, GrantEntry, GrantRef};
use xen_core::layout::direct_map;

fn word64(frame: &Frame, byte_offset: usize) -> &AtomicU64 {
    assert!(byte_offset % 8 == 0 && byte_offset + 8 <= 4096);
    let pointer = (direct_map(frame.address()) as usize + byte_offset) as *const AtomicU64;
    // SAFETY: (1) the frame belongs to a live domain: the caller holds the
    // domain table's lock, so it is not freed while the returned reference
    // (bounded by the borrow of `frame`, one operation) lives; the direct map
    // maps it writable; (2) the offset is in the page and 8-aligned
    // (asserted); (3) an AtomicU64 may alias memory the domain writes
    // concurrently: every access through it is atomic.
    unsafe { &*pointer }
}

fn word32(frame: &Frame, byte_offset: usize) -> &AtomicU32 {
    assert!(byte_offset % 4 == 0 && byte_offset + 4 <= 4096);
    let pointer = (direct_map(frame.address()) as usize + byte_offset) as *const AtomicU32;
    // SAFETY: as for `word64`, with 4-byte alignment.
    unsafe { &*pointer }
}

fn byte(frame: &Frame, byte_offset: usize) -> &AtomicU8 {
    assert!(byte_offset < 4096);
    let pointer = (direct_map(frame.address()) as usize + byte_offset) as *const AtomicU8;
    // SAFETY: as for `word64`; bytes need no alignment.
    unsafe { &*pointer }
}

/// A domain's shared-info page, for event delivery.
pub struct SharedInfoPage(pub Frame);

impl SharedInfoPage {
    fn bit(port: Port) -> (usize, u64) {
        let port = port.0 as usize % xen_abi::shared_info::EVENT_CHANNEL_PORTS;
        (port / 64, 1u64 << (port % 64))
    }

    /// Whether vCPU 0 has an event waiting (`evtchn_upcall_pending`).
    pub fn upcall_pending(&self) -> bool {
        byte(&self.0, offset::VCPU_INFO + vcpu_info::UPCALL_PENDING).load(Ordering::Acquire) != 0
    }
}

impl SharedInfoBits for SharedInfoPage {
    fn test_and_set_pending(&mut self, port: Port) -> bool {
        let (word, bit) = Self::bit(port);
        word64(&self.0, offset::EVTCHN_PENDING + word * 8).fetch_or(bit, Ordering::AcqRel) & bit != 0
    }
    fn clear_pending(&mut self, port: Port) {
        let (word, bit) = Self::bit(port);
        word64(&self.0, offset::EVTCHN_PENDING + word * 8).fetch_and(!bit, Ordering::AcqRel);
    }
    fn is_pending(&self, port: Port) -> bool {
        let (word, bit) = Self::bit(port);
        word64(&self.0, offset::EVTCHN_PENDING + word * 8).load(Ordering::Acquire) & bit != 0
    }
    fn is_masked(&self, port: Port) -> bool {
        let (word, bit) = Self::bit(port);
        word64(&self.0, offset::EVTCHN_MASK + word * 8).load(Ordering::Acquire) & bit != 0
    }
    fn test_and_clear_mask(&mut self, port: Port) -> bool {
        let (word, bit) = Self::bit(port);
        word64(&self.0, offset::EVTCHN_MASK + word * 8).fetch_and(!bit, Ordering::AcqRel) & bit != 0
    }
    fn set_selector_and_upcall(&mut self, word: u32) {
        let bit = 1u64 << (word % 64);
        word64(&self.0, offset::VCPU_INFO + vcpu_info::PENDING_SEL).fetch_or(bit, Ordering::AcqRel);
        byte(&self.0, offset::VCPU_INFO + vcpu_info::UPCALL_PENDING).store(1, Ordering::Release);
    }
}

/// A domain's grant table: its page of v1 entries.
pub struct GrantTablePage(pub Frame);

impl GrantEntries for GrantTablePage {
    fn entry_count(&self) -> u32 {
        xen_abi::grant_table::ENTRIES_PER_PAGE as u32
    }
    fn read(&self, reference: GrantRef) -> GrantEntry {
        let at = reference.0 as usize % xen_abi::grant_table::ENTRIES_PER_PAGE * 8;
        let header = word32(&self.0, at).load(Ordering::Acquire);
        let frame = word32(&self.0, at + 4).load(Ordering::Acquire);
        GrantEntry { header: EntryHeader::from_word(header), frame }
    }
    fn compare_exchange_header(&mut self, reference: GrantRef, current: EntryHeader, new: EntryHeader) -> Result<(), EntryHeader> {
        let at = reference.0 as usize % xen_abi::grant_table::ENTRIES_PER_PAGE * 8;
        word32(&self.0, at)
            .compare_exchange(current.to_word(), new.to_word(), Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(EntryHeader::from_word)
    }
    fn clear_flags(&mut self, reference: GrantRef, bits: u16) {
        let at = reference.0 as usize % xen_abi::grant_table::ENTRIES_PER_PAGE * 8;
        word32(&self.0, at).fetch_and(!u32::from(bits), Ordering::AcqRel);
    }
}
