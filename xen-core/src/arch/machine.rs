//! Physical memory for the domain builder and hypercalls: frames from the
//! allocator, reached through the direct map, zeroed when handed out and
//! scrubbed when returned.

use xen_core::domain::MachineMemory;
use xen_core::frame_allocator::{Frame, FrameAllocator};
use xen_core::page_table::TableMemory;

use super::physical;

/// The machine's memory, borrowed from the frame allocator.
pub struct DirectMapMachine<'a, const WORDS: usize> {
    /// Where frames come from and go back to.
    pub frames: &'a mut FrameAllocator<WORDS>,
}

impl<const WORDS: usize> TableMemory for DirectMapMachine<'_, WORDS> {
    fn read_entry(&self, table: Frame, index: usize) -> u64 {
        physical::read_u64(table, index)
    }
    fn write_entry(&mut self, table: Frame, index: usize, entry: u64) {
        physical::write_u64(table, index, entry);
    }
    fn allocate_table(&mut self) -> Option<Frame> {
        self.allocate_frame()
    }
}

impl<const WORDS: usize> MachineMemory for DirectMapMachine<'_, WORDS> {
    fn allocate_frame(&mut self) -> Option<Frame> {
        let frame = self.frames.allocate()?;
        physical::zero_frame(frame);
        Some(frame)
    }
    fn free_frame(&mut self, frame: Frame) {
        physical::zero_frame(frame);
        if let Err(error) = self.frames.free(frame) {
            log::error!("memory: refused to free {frame:?}: {error:?}");
        }
    }
    fn free_frame_count(&self) -> u64 {
        self.frames.counts().free
    }
    fn read(&self, frame: Frame, offset: usize, out: &mut [u8]) {
        physical::read_frame(frame, offset, out);
    }
    fn write(&mut self, frame: Frame, offset: usize, data: &[u8]) {
        physical::write_frame(frame, offset, data);
    }
}
