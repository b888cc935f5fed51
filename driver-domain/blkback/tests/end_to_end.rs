//! blkfront ↔ ring ↔ blkback ↔ in-memory disk: data lands at the extent's offset on the
//! physical disk and nowhere else, extents isolate frontends, read-only disks refuse
//! writes.

mod common;

use blkback::{BlockBackend, DiskMode, VirtualDisk};
use blkfront::Blkfront;
use common::*;
use ring_protocol::blkif::{STATUS_ERROR, STATUS_OKAY};
use ring_protocol::{PageBuffer, SharedPage};

#[test]
fn pattern_written_flushed_and_read_back_lands_in_the_extent_only() {
    let (table, executor) = world(PHYSICAL_SECTORS);
    let ring = PageBuffer::new();
    let mut backend = BlockBackend::new(executor, PHYSICAL_SECTORS);
    let disk = VirtualDisk::new(1000, 600, DiskMode::ReadWrite).expect("disk");
    let id = backend
        .add_frontend(BANKING, SharedPage::new(&ring), disk)
        .expect("add");
    let (pages, data_pages) = pages_for(&table, BANKING, 40);
    let mut frontend = Blkfront::new(SharedPage::new(&ring), pages, data_pages, DRIVER, 0);

    let data = pattern(600 * 512, 7);
    let statuses = write(&mut frontend, &mut backend, 0, &data);
    assert_eq!(statuses.len(), 600usize.div_ceil(88));
    assert!(statuses.iter().all(|status| *status == STATUS_OKAY));
    frontend.submit_flush().expect("flush");
    let flushed = complete_all(&mut frontend, &mut backend, 8);
    assert_eq!(flushed.len(), 1);
    assert!(flushed[0].is_ok());
    assert_eq!(backend.executor().flushes(), 1);

    let back = read(&mut frontend, &mut backend, 0, 600).expect("read");
    assert!(back == data, "read back differs");

    let physical = backend.executor().disk();
    assert!(
        physical[1000 * 512..1600 * 512] == data[..],
        "not at the extent's offset"
    );
    assert!(physical[..1000 * 512].iter().all(|byte| *byte == DISK_FILL));
    assert!(physical[1600 * 512..].iter().all(|byte| *byte == DISK_FILL));
    assert!(backend
        .executor()
        .touched_sectors()
        .iter()
        .all(|sector| (1000..1600).contains(sector)));

    let counters = backend.counters(id).expect("counters");
    assert_eq!(counters.errors, 0);
    assert_eq!(counters.requests_served, 2 * 7 + 1);
    // Every data grant was revoked after its response.
    assert_eq!(table.borrow().grant_count(BANKING), 0);
    assert_eq!(frontend.free_page_count(), 40);
}

#[test]
fn adjacent_extents_cannot_touch_each_other() {
    let (table, executor) = world(PHYSICAL_SECTORS);
    let (ring_a, ring_b) = (PageBuffer::new(), PageBuffer::new());
    let mut backend = BlockBackend::new(executor, PHYSICAL_SECTORS);
    let disk_a = VirtualDisk::new(0, 100, DiskMode::ReadWrite).expect("disk a");
    let disk_b = VirtualDisk::new(100, 100, DiskMode::ReadWrite).expect("disk b");
    backend
        .add_frontend(BANKING, SharedPage::new(&ring_a), disk_a)
        .expect("add a");
    backend
        .add_frontend(UNTRUSTED, SharedPage::new(&ring_b), disk_b)
        .expect("add b");
    let (pages_a, data_a) = pages_for(&table, BANKING, 11);
    let (pages_b, data_b) = pages_for(&table, UNTRUSTED, 11);
    let mut a = Blkfront::new(SharedPage::new(&ring_a), pages_a, data_a, DRIVER, 0);
    let mut b = Blkfront::new(SharedPage::new(&ring_b), pages_b, data_b, DRIVER, 0);

    let secret = pattern(100 * 512, 1);
    assert!(write(&mut a, &mut backend, 0, &secret)
        .iter()
        .all(|status| *status == STATUS_OKAY));
    let before = backend.executor().disk().to_vec();

    // B straddles its end, sits just past it, or wraps: all refused.
    for (sector, count) in [(99u64, 2u32), (100, 1), (u64::MAX, 1), (u64::MAX - 3, 8)] {
        b.submit_write(sector, &vec![0x66; count as usize * 512])
            .expect("submit");
        let done = complete_all(&mut b, &mut backend, 8);
        assert_eq!(done[0].status, STATUS_ERROR, "write at {sector}");
        b.submit_read(sector, count).expect("submit");
        let done = complete_all(&mut b, &mut backend, 8);
        assert_eq!(done[0].status, STATUS_ERROR, "read at {sector}");
        assert!(done[0].data.is_empty());
    }
    // A cannot reach B's first sector either.
    assert_eq!(read(&mut a, &mut backend, 100, 1), Err(STATUS_ERROR));
    // B's own disk starts at physical 100, not at A's data.
    let b_view = read(&mut b, &mut backend, 0, 100).expect("b reads its own disk");
    assert!(b_view.iter().all(|byte| *byte == DISK_FILL));
    assert!(
        backend.executor().disk() == &before[..],
        "a refused request changed the disk"
    );
    assert!(read(&mut a, &mut backend, 0, 100).expect("a reads") == secret);
}

#[test]
fn read_only_disk_refuses_writes_but_serves_reads() {
    let (table, executor) = world(PHYSICAL_SECTORS);
    let ring = PageBuffer::new();
    let mut backend = BlockBackend::new(executor, PHYSICAL_SECTORS);
    let disk = VirtualDisk::new(2000, 64, DiskMode::ReadOnly).expect("disk");
    let id = backend
        .add_frontend(BANKING, SharedPage::new(&ring), disk)
        .expect("add");
    let (pages, data_pages) = pages_for(&table, BANKING, 11);
    let mut frontend = Blkfront::new(SharedPage::new(&ring), pages, data_pages, DRIVER, 0);

    assert_eq!(
        write(&mut frontend, &mut backend, 0, &pattern(8 * 512, 3)),
        [STATUS_ERROR]
    );
    let data = read(&mut frontend, &mut backend, 0, 64).expect("reads are fine");
    assert!(data.iter().all(|byte| *byte == DISK_FILL));
    assert!(backend
        .executor()
        .disk()
        .iter()
        .all(|byte| *byte == DISK_FILL));
    // An empty flush is harmless on a read-only disk.
    frontend.submit_flush().expect("flush");
    assert!(complete_all(&mut frontend, &mut backend, 8)[0].is_ok());
    assert_eq!(backend.counters(id).map(|c| c.errors), Some(1));
}

#[test]
fn setup_refuses_extents_past_the_physical_disk_and_reserved_domains() {
    let (_table, executor) = world(100);
    let ring = PageBuffer::new();
    let mut backend = BlockBackend::new(executor, 100);
    let too_big = VirtualDisk::new(50, 51, DiskMode::ReadWrite).expect("disk");
    assert_eq!(
        backend.add_frontend(BANKING, SharedPage::new(&ring), too_big),
        Err(blkback::SetupError::ExtentPastPhysicalDisk)
    );
    let fits = VirtualDisk::new(50, 50, DiskMode::ReadWrite).expect("disk");
    assert_eq!(
        backend.add_frontend(blkback::DomId::SELF, SharedPage::new(&ring), fits),
        Err(blkback::SetupError::InvalidDomain)
    );
    assert!(backend
        .add_frontend(BANKING, SharedPage::new(&ring), fits)
        .is_ok());
}
