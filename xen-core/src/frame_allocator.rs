//! The physical frame allocator: one bit per 4 KiB frame, with exact
//! accounting (every frame is free, used, or not RAM at all) and detection
//! of double frees. The bitmap's storage is handed in by the caller, so the
//! allocator itself needs no memory.

use crate::multiboot::{MemoryRegion, RegionKind};

/// Bytes in a frame.
pub const FRAME_SIZE: u64 = 4096;

/// A physical frame number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame(pub u64);

impl Frame {
    /// The frame's first physical byte.
    pub fn address(self) -> u64 {
        self.0 * FRAME_SIZE
    }
    /// The frame holding a physical address.
    pub fn containing(address: u64) -> Frame {
        Frame(address / FRAME_SIZE)
    }
}

/// Why a free was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The frame was already free.
    DoubleFree(Frame),
    /// The frame is not RAM this allocator manages.
    NotManaged(Frame),
}

/// Frame counts, for the boot log and for teardown checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Frames of RAM the allocator manages (free + used).
    pub managed: u64,
    /// Frames free now.
    pub free: u64,
    /// Frames handed out (or reserved at boot) and not yet returned.
    pub used: u64,
    /// Frames of RAM beyond what the bitmap covers: never used.
    pub ignored: u64,
}

/// A bitmap frame allocator covering `64 * WORDS` frames from frame 0.
/// A set bit in `free_bits` means "free"; in `managed_bits`, "RAM we own".
pub struct FrameAllocator<const WORDS: usize> {
    free_bits: [u64; WORDS],
    managed_bits: [u64; WORDS],
    counts: FrameCounts,
    next_search_word: usize,
}

impl<const WORDS: usize> Default for FrameAllocator<WORDS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const WORDS: usize> FrameAllocator<WORDS> {
    /// An allocator that manages nothing yet.
    pub const fn new() -> Self {
        FrameAllocator {
            free_bits: [0; WORDS],
            managed_bits: [0; WORDS],
            counts: FrameCounts { managed: 0, free: 0, used: 0, ignored: 0 },
            next_search_word: 0,
        }
    }

    /// How many frames the bitmap can describe.
    pub fn capacity_frames(&self) -> u64 {
        self.free_bits.len() as u64 * 64
    }

    /// Adds the available RAM of a memory map, page-aligned inward, minus
    /// `reserved` ranges (`[start, end)` physical), which count as used.
    pub fn add_memory_map(
        &mut self,
        regions: impl Iterator<Item = MemoryRegion> + Clone,
        reserved: &[(u64, u64)],
    ) {
        for region in regions.filter(|region| region.kind == RegionKind::Available) {
            let first = region.start.div_ceil(FRAME_SIZE);
            let end = region.end() / FRAME_SIZE;
            for frame in first..end {
                if frame >= self.capacity_frames() {
                    self.counts.ignored += end - frame;
                    break;
                }
                let address = frame * FRAME_SIZE;
                let is_reserved = reserved
                    .iter()
                    .any(|&(start, stop)| address < stop && address + FRAME_SIZE > start);
                self.manage(Frame(frame), !is_reserved);
            }
        }
    }

    fn manage(&mut self, frame: Frame, free: bool) {
        let (word, bit) = Self::position(frame);
        if self.managed_bits[word] & bit != 0 {
            return; // overlapping map entries: count a frame once
        }
        self.managed_bits[word] |= bit;
        self.counts.managed += 1;
        if free {
            self.free_bits[word] |= bit;
            self.counts.free += 1;
        } else {
            self.counts.used += 1;
        }
    }

    fn position(frame: Frame) -> (usize, u64) {
        ((frame.0 / 64) as usize, 1u64 << (frame.0 % 64))
    }

    /// Takes a free frame (lowest first from a moving hint), or `None` when
    /// memory is exhausted. The frame's contents are whatever they were: the
    /// caller zeroes it before use.
    pub fn allocate(&mut self) -> Option<Frame> {
        for step in 0..WORDS {
            let word = (self.next_search_word + step) % WORDS;
            let bits = self.free_bits[word];
            if bits != 0 {
                let bit = bits.trailing_zeros();
                self.free_bits[word] &= !(1u64 << bit);
                self.counts.free -= 1;
                self.counts.used += 1;
                self.next_search_word = word;
                return Some(Frame(word as u64 * 64 + u64::from(bit)));
            }
        }
        None
    }

    /// Takes `count` physically contiguous free frames whose first frame
    /// number is a multiple of `align_frames`.
    pub fn allocate_contiguous(&mut self, count: u64, align_frames: u64) -> Option<Frame> {
        let align = align_frames.max(1);
        let mut start = 0u64;
        while start + count <= self.capacity_frames() {
            match (start..start + count).find(|&frame| !self.is_free(Frame(frame))) {
                None => {
                    for frame in start..start + count {
                        let (word, bit) = Self::position(Frame(frame));
                        self.free_bits[word] &= !bit;
                    }
                    self.counts.free -= count;
                    self.counts.used += count;
                    return Some(Frame(start));
                }
                Some(busy) => start = (busy + 1).div_ceil(align) * align,
            }
        }
        None
    }

    /// Whether a frame is managed and free.
    pub fn is_free(&self, frame: Frame) -> bool {
        if frame.0 >= self.capacity_frames() {
            return false;
        }
        let (word, bit) = Self::position(frame);
        self.free_bits[word] & bit != 0
    }

    /// Returns a frame. Freeing a free frame or a frame that is not managed
    /// RAM is refused and changes nothing.
    pub fn free(&mut self, frame: Frame) -> Result<(), FreeError> {
        if frame.0 >= self.capacity_frames() {
            return Err(FreeError::NotManaged(frame));
        }
        let (word, bit) = Self::position(frame);
        if self.managed_bits[word] & bit == 0 {
            return Err(FreeError::NotManaged(frame));
        }
        if self.free_bits[word] & bit != 0 {
            return Err(FreeError::DoubleFree(frame));
        }
        self.free_bits[word] |= bit;
        self.counts.free += 1;
        self.counts.used -= 1;
        Ok(())
    }

    /// The counts now.
    pub fn counts(&self) -> FrameCounts {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: u64, length: u64) -> MemoryRegion {
        MemoryRegion { start, length, kind: RegionKind::Available }
    }

    #[test]
    fn accounting_from_a_memory_map() {
        let mut allocator = FrameAllocator::<64>::new();
        let regions = [
            region(0, 0x9fc00), // 159 whole frames
            MemoryRegion { start: 0xf0000, length: 0x10000, kind: RegionKind::Reserved(2) },
            region(0x100000, 0x700000), // 1 MiB .. 8 MiB = 1792 frames
        ];
        allocator.add_memory_map(regions.iter().copied(), &[(0, 0x100000), (0x100000, 0x180000)]);
        let counts = allocator.counts();
        assert_eq!(counts.managed, 159 + 1792);
        assert_eq!(counts.used, 159 + 128);
        assert_eq!(counts.free, 1792 - 128);
        assert_eq!(counts.managed, counts.free + counts.used);
    }

    #[test]
    fn allocate_free_roundtrip_and_double_free() {
        let mut allocator = FrameAllocator::<2>::new();
        allocator.add_memory_map([region(0x1000, 0x3000)].into_iter(), &[]);
        let a = allocator.allocate().unwrap();
        let b = allocator.allocate().unwrap();
        let c = allocator.allocate().unwrap();
        assert_eq!([a, b, c], [Frame(1), Frame(2), Frame(3)]);
        assert_eq!(allocator.allocate(), None);
        assert_eq!(allocator.counts().free, 0);
        allocator.free(b).unwrap();
        assert_eq!(allocator.free(b), Err(FreeError::DoubleFree(b)));
        assert_eq!(allocator.free(Frame(0)), Err(FreeError::NotManaged(Frame(0))));
        assert_eq!(allocator.free(Frame(1000)), Err(FreeError::NotManaged(Frame(1000))));
        assert_eq!(allocator.allocate(), Some(b));
        assert_eq!(allocator.counts(), FrameCounts { managed: 3, free: 0, used: 3, ignored: 0 });
    }

    #[test]
    fn memory_beyond_the_bitmap_is_counted_as_ignored() {
        let mut allocator = FrameAllocator::<1>::new();
        allocator.add_memory_map([region(0, 100 * FRAME_SIZE)].into_iter(), &[]);
        assert_eq!(allocator.counts().managed, 64);
        assert_eq!(allocator.counts().ignored, 36);
    }

    #[test]
    fn overlapping_regions_count_once() {
        let mut allocator = FrameAllocator::<1>::new();
        allocator.add_memory_map([region(0, 8 * FRAME_SIZE), region(4 * FRAME_SIZE, 8 * FRAME_SIZE)].into_iter(), &[]);
        assert_eq!(allocator.counts().managed, 12);
    }

    #[test]
    fn contiguous_allocation_respects_alignment_and_holes() {
        let mut allocator = FrameAllocator::<4>::new();
        allocator.add_memory_map([region(0, 256 * FRAME_SIZE)].into_iter(), &[(5 * FRAME_SIZE, 6 * FRAME_SIZE)]);
        let run = allocator.allocate_contiguous(8, 8).unwrap();
        assert_eq!(run, Frame(8));
        for frame in 8..16 {
            assert!(!allocator.is_free(Frame(frame)));
        }
        assert_eq!(allocator.counts().used, 9);
        assert_eq!(allocator.allocate_contiguous(1000, 1), None);
    }
}
