//! The shared ring page as Xen's `io/ring.h` lays it out: a 64-byte header of four
//! free-running 32-bit indices, then the entry slots, as many as fit, rounded down to a
//! power of two.

/// Size of a shared ring page in bytes.
pub const PAGE_SIZE: usize = 4096;

/// Size of the shared header (`req_prod`, `req_event`, `rsp_prod`, `rsp_event`, padding).
pub const HEADER_SIZE: usize = 64;

/// Offset of `req_prod`: the frontend's request producer index.
pub const REQUEST_PRODUCER_OFFSET: usize = 0;
/// Offset of `req_event`: the backend asks to be notified when `req_prod` passes it.
pub const REQUEST_EVENT_OFFSET: usize = 4;
/// Offset of `rsp_prod`: the backend's response producer index.
pub const RESPONSE_PRODUCER_OFFSET: usize = 8;
/// Offset of `rsp_event`: the frontend asks to be notified when `rsp_prod` passes it.
pub const RESPONSE_EVENT_OFFSET: usize = 12;

/// The largest slot this crate supports (blkif's 112-byte request).
pub const MAX_SLOT_SIZE: usize = 112;

/// The number of slots in a one-page ring whose slots are `slot_size` bytes: Xen's
/// `__CONST_RING_SIZE`, `(4096 - 64) / slot_size` rounded down to a power of two.
///
/// `slot_size` must be between 1 and `PAGE_SIZE - HEADER_SIZE`.
pub const fn ring_size(slot_size: usize) -> u32 {
    let fitting = (PAGE_SIZE - HEADER_SIZE) / slot_size;
    // Round down to a power of two: keep only the highest set bit.
    let rounded = 1usize << (usize::BITS - 1 - fitting.leading_zeros());
    rounded as u32
}

/// Byte offset of the slot that free-running index `index` maps to in a ring of
/// `ring_size` (a power of two) slots of `slot_size` bytes.
pub(crate) const fn slot_offset(index: u32, ring_size: u32, slot_size: usize) -> usize {
    HEADER_SIZE + (index & (ring_size - 1)) as usize * slot_size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_match_xen() {
        assert_eq!(ring_size(112), 32); // blkif: 36 fit
        assert_eq!(ring_size(12), 256); // netif tx: 336 fit
        assert_eq!(ring_size(8), 256); // netif rx: 504 fit
        assert_eq!(ring_size(4032), 1);
        assert_eq!(ring_size(64), 63usize.next_power_of_two() as u32 / 2);
    }

    #[test]
    fn last_slot_ends_inside_the_page() {
        for slot_size in [4usize, 8, 12, 16, 64, 112] {
            let size = ring_size(slot_size);
            let end = slot_offset(size - 1, size, slot_size) + slot_size;
            assert!(end <= PAGE_SIZE, "slot size {slot_size}");
            assert_eq!(slot_offset(size, size, slot_size), HEADER_SIZE);
            assert_eq!(slot_offset(u32::MAX, size, slot_size), end - slot_size);
        }
    }
}
