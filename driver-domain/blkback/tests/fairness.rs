//! Round-robin service: a frontend with a full ring gets at most `cap` requests per
//! round and cannot make another frontend wait more than one round.

mod common;

use blkback::{BlockBackend, DiskMode, VirtualDisk};
use blkfront::Blkfront;
use common::*;
use ring_protocol::{PageBuffer, SharedPage};

#[test]
fn a_full_ring_cannot_make_another_frontend_wait_more_than_one_round() {
    let (table, executor) = world(PHYSICAL_SECTORS);
    let (ring_busy, ring_quiet) = (PageBuffer::new(), PageBuffer::new());
    let mut backend = BlockBackend::new(executor, PHYSICAL_SECTORS);
    let busy_id = backend
        .add_frontend(
            UNTRUSTED,
            SharedPage::new(&ring_busy),
            VirtualDisk::new(0, 1024, DiskMode::ReadWrite).expect("disk"),
        )
        .expect("add");
    let quiet_id = backend
        .add_frontend(
            BANKING,
            SharedPage::new(&ring_quiet),
            VirtualDisk::new(1024, 1024, DiskMode::ReadWrite).expect("disk"),
        )
        .expect("add");
    let (pages, data_pages) = pages_for(&table, UNTRUSTED, 32 * 11);
    let mut busy = Blkfront::new(SharedPage::new(&ring_busy), pages, data_pages, DRIVER, 0);
    let (pages, data_pages) = pages_for(&table, BANKING, 11);
    let mut quiet = Blkfront::new(SharedPage::new(&ring_quiet), pages, data_pages, DRIVER, 0);

    const CAP: u32 = 4;
    for round in 0..3u64 {
        // The busy frontend keeps its ring full of 44 KiB reads.
        while busy.submit_read(round * 88, 88).is_ok() {}
        assert_eq!(busy.in_flight(), 32);
        let _ = busy.publish().expect("publish");
        quiet.submit_read(round, 1).expect("submit");
        let _ = quiet.publish().expect("publish");

        let report = backend.serve_round(CAP);
        assert_eq!(backend.served_last_round(busy_id), CAP);
        assert_eq!(backend.served_last_round(quiet_id), 1);
        assert_eq!(report.requests_served, CAP + 1);
        assert!(report.more_pending);
        let done = quiet
            .poll()
            .expect("poll")
            .expect("answered within one round");
        assert!(done.is_ok());
        assert!(
            report.notify.contains(&quiet_id),
            "round {round}: not notified"
        );
        // Polling until none is left arms the response event for the next round.
        assert!(quiet.poll().expect("poll").is_none());
        // Drain what the busy frontend got, to refill next time.
        while let Some(completion) = busy.poll().expect("poll") {
            assert!(completion.is_ok());
        }
        assert_eq!(busy.in_flight(), 32 - CAP as usize);
    }
    // Rounds continue at `CAP` until the busy ring is drained, then nothing is pending.
    let mut rounds = 0;
    loop {
        let report = backend.serve_round(CAP);
        assert!(report.requests_served <= CAP);
        while busy.poll().expect("poll").is_some() {}
        rounds += 1;
        if !report.more_pending {
            break;
        }
        assert!(rounds < 100);
    }
    assert_eq!(busy.in_flight(), 0);
    assert_eq!(rounds, (32 - CAP as usize).div_ceil(CAP as usize));
}

#[test]
fn rounds_rotate_and_serve_every_frontend_equally() {
    let (table, executor) = world(PHYSICAL_SECTORS);
    let rings: Vec<PageBuffer> = (0..3).map(|_| PageBuffer::new()).collect();
    let mut backend = BlockBackend::new(executor, PHYSICAL_SECTORS);
    let mut frontends = Vec::new();
    for (index, ring) in rings.iter().enumerate() {
        let domain = blkback::DomId(10 + index as u16);
        let disk = VirtualDisk::new(index as u64 * 512, 512, DiskMode::ReadWrite).expect("disk");
        backend
            .add_frontend(domain, SharedPage::new(ring), disk)
            .expect("add");
        let (pages, data_pages) = pages_for(&table, domain, 32);
        let mut frontend = Blkfront::new(SharedPage::new(ring), pages, data_pages, DRIVER, 0);
        while frontend.submit_read(0, 8).is_ok() {}
        let _ = frontend.publish().expect("publish");
        frontends.push(frontend);
    }
    for _ in 0..4 {
        let report = backend.serve_round(8);
        assert_eq!(report.requests_served, 24);
        for (index, frontend) in frontends.iter_mut().enumerate() {
            assert_eq!(backend.served_last_round(blkback::FrontendId(index)), 8);
            let mut answered = 0;
            while frontend.poll().expect("poll").is_some() {
                answered += 1;
            }
            assert_eq!(answered, 8);
        }
    }
    assert!(!backend.serve_round(8).more_pending);
}
