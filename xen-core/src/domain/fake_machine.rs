//! A machine made of a few hundred fake frames, for host tests of the
//! domain builder and the hypercalls: frames are byte arrays in a map, and
//! every allocation, free and scrub is counted.

use std::collections::BTreeMap;

use crate::domain::MachineMemory;
use crate::frame_allocator::Frame;
use crate::page_table::TableMemory;

/// Fake physical memory.
pub(crate) struct FakeMachine {
    pub(crate) frames: BTreeMap<u64, Box<[u8; 4096]>>,
    pub(crate) free: Vec<u64>,
    pub(crate) scrubbed: u64,
}

impl FakeMachine {
    /// `count` free frames, each filled with 0xAA (as if a previous owner
    /// left data behind).
    pub(crate) fn new(count: u64) -> FakeMachine {
        let mut frames = BTreeMap::new();
        for number in 1000..1000 + count {
            frames.insert(number, Box::new([0xaa; 4096]));
        }
        FakeMachine { frames, free: (1000..1000 + count).rev().collect(), scrubbed: 0 }
    }

    fn bytes(&self, frame: Frame) -> &[u8; 4096] {
        &self.frames[&frame.0]
    }
}

impl TableMemory for FakeMachine {
    fn read_entry(&self, table: Frame, index: usize) -> u64 {
        let bytes = self.bytes(table);
        u64::from_le_bytes(bytes[index * 8..index * 8 + 8].try_into().unwrap())
    }
    fn write_entry(&mut self, table: Frame, index: usize, entry: u64) {
        self.frames.get_mut(&table.0).unwrap()[index * 8..index * 8 + 8].copy_from_slice(&entry.to_le_bytes());
    }
    fn allocate_table(&mut self) -> Option<Frame> {
        self.allocate_frame()
    }
}

impl MachineMemory for FakeMachine {
    fn allocate_frame(&mut self) -> Option<Frame> {
        let number = self.free.pop()?;
        self.frames.get_mut(&number).unwrap().fill(0);
        Some(Frame(number))
    }
    fn free_frame(&mut self, frame: Frame) {
        assert!(!self.free.contains(&frame.0), "double free of {frame:?}");
        self.frames.get_mut(&frame.0).unwrap().fill(0);
        self.scrubbed += 1;
        self.free.push(frame.0);
    }
    fn free_frame_count(&self) -> u64 {
        self.free.len() as u64
    }
    fn read(&self, frame: Frame, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.bytes(frame)[offset..offset + out.len()]);
    }
    fn write(&mut self, frame: Frame, offset: usize, data: &[u8]) {
        self.frames.get_mut(&frame.0).unwrap()[offset..offset + data.len()].copy_from_slice(data);
    }
}
