//! The split block path's CPU work on the host, for an instruction profiler
//! (`valgrind --tool=callgrind`): blkfront (persistent grants, zero-copy)
//! and blkback over one ring page, the executor a no-op, `count` reads (or
//! writes, with a third argument `write`) of 4 KiB or 44 KiB with up to 32
//! in flight, the backend serving rounds of 16.
//!
//! `cargo build --release -p blkback --example split_profile &&
//! valgrind --tool=callgrind target/release/examples/split_profile 4096 256`

use blkback::{
    BlockBackend, BlockOperation, DiskMode, DomId, ExecuteError, Executor, GrantPolicy, VirtualDisk,
};
use blkfront::{Blkfront, GrantError, GrantPages, GrantRef};
use ring_protocol::{PageBuffer, SharedPage};

/// Carries out nothing: every operation succeeds at once.
struct Nothing;

impl Executor for Nothing {
    fn execute(&mut self, _operation: &BlockOperation<'_>) -> Result<(), ExecuteError> {
        Ok(())
    }
}

/// Pages that are just numbers; grants that always succeed.
struct Numbers {
    next: u32,
}

impl GrantPages for Numbers {
    type Page = u16;

    fn zero(&mut self, _page: u16) {}

    fn write(&mut self, _page: u16, _offset_bytes: usize, _data: &[u8]) {}

    fn read(&mut self, _page: u16, _offset_bytes: usize, data: &mut [u8]) {
        data.fill(0);
    }

    fn grant(
        &mut self,
        _page: u16,
        _backend: DomId,
        _read_only: bool,
    ) -> Result<GrantRef, GrantError> {
        self.next += 1;
        Ok(GrantRef(self.next))
    }

    fn revoke(&mut self, _grant: GrantRef) -> Result<(), GrantError> {
        Ok(())
    }
}

fn main() {
    let mut arguments = std::env::args()
        .skip(1)
        .map(|argument| argument.parse::<u64>().unwrap_or(0));
    let bytes = arguments.next().filter(|bytes| *bytes > 0).unwrap_or(4096);
    let count = arguments.next().filter(|count| *count > 0).unwrap_or(256);
    let write = std::env::args()
        .nth(3)
        .is_some_and(|argument| argument == "write");
    let sectors = bytes / 512;
    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let mut front = Blkfront::new(
        page.clone(),
        Numbers { next: 0 },
        (0..352u16).collect(),
        DomId(1),
        51712,
    );
    front.set_persistent(true).expect("persistent");
    front.prepare_pool().expect("pool");
    let mut back = BlockBackend::new(Nothing, 1 << 30);
    let disk = VirtualDisk::new(0, 1 << 29, DiskMode::ReadWrite).expect("disk");
    let id = back.add_frontend(DomId(2), page, disk).expect("frontend");
    back.set_grant_policy(id, GrantPolicy::Persistent);
    let (mut submitted, mut completed) = (0u64, 0u64);
    while completed < count {
        while submitted < count && front.in_flight() < 32 {
            if write {
                // Zero-copy write: lend the pool pages, then send them as they are.
                let pages = front
                    .take_pages(sectors.div_ceil(8) as usize)
                    .expect("pages");
                front
                    .submit_write_pages(submitted * sectors, sectors as u32, pages)
                    .expect("submit");
            } else {
                front
                    .submit_read_in_place(submitted * sectors, sectors as u32)
                    .expect("submit");
            }
            submitted += 1;
        }
        let _ = front.publish().expect("publish");
        back.serve_round(16);
        while let Some(done) = front.poll_in_place().expect("poll") {
            assert!(done.completion.is_ok());
            if let Some(pages) = done.pages {
                front.give_back(pages);
            }
            completed += 1;
        }
    }
    println!(
        "{completed} {} of {bytes} B",
        if write { "writes" } else { "reads" }
    );
}
