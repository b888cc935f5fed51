//! Persistent grants and the zero-copy API against a small in-memory backend that serves
//! requests through the fake grant table: each page is granted once in persistent mode
//! and every grant revoked at disconnect; per-request grants are unchanged otherwise;
//! in-place reads and page writes round-trip without copies.

mod common;

use blkfront::{Blkfront, DisconnectReport, FrontendError, Operation};
use common::*;
use ring_protocol::blkif::{Blkif, BlkifRequest, BlkifResponse, STATUS_ERROR, STATUS_OKAY};
use ring_protocol::{Backend, PageBuffer, SharedPage};

/// Sectors of the test disk.
const DISK_SECTORS: usize = 1024;

/// A backend over a byte disk that reaches the frontend's pages through the fake grant
/// table (as a real one maps grants), recording how each grant was used.
struct DiskBackend<'page> {
    ring: Backend<'page, Blkif>,
    disk: Vec<u8>,
    /// Every (grant, read-only, operation) a request used, in order.
    seen: Vec<(u32, bool, u8)>,
}

impl<'page> DiskBackend<'page> {
    fn new(ring: &'page PageBuffer) -> Self {
        Self {
            ring: Backend::attach(SharedPage::new(ring)),
            disk: (0..DISK_SECTORS * 512)
                .map(|i| (i / 512) as u8 ^ 0x3c)
                .collect(),
            seen: Vec::new(),
        }
    }

    /// Serves every published request and publishes the responses.
    fn serve(&mut self, state: &Shared) {
        while let Some(request) = self.ring.next_request().expect("well-formed") {
            let (transfer, write, operation) = match request {
                BlkifRequest::Read(transfer) => (transfer, false, 0),
                BlkifRequest::Write(transfer) => (transfer, true, 1),
                BlkifRequest::FlushDiskCache(transfer) => (transfer, false, 3),
                other => panic!("unexpected {other:?}"),
            };
            let mut status = STATUS_OKAY;
            let mut sector = transfer.sector_number as usize;
            if operation != 3 {
                for segment in transfer.used_segments() {
                    let mut state = state.borrow_mut();
                    let Some(grant) = state.grants.get(&segment.grant).cloned() else {
                        status = STATUS_ERROR;
                        break;
                    };
                    assert_eq!(grant.backend, BACKEND);
                    self.seen.push((segment.grant, grant.read_only, operation));
                    let count = segment.sector_count() as usize;
                    let first = usize::from(segment.first_sector) * 512;
                    let disk = &mut self.disk[sector * 512..(sector + count) * 512];
                    let page = &mut state.pages[grant.page][first..first + count * 512];
                    if write {
                        disk.copy_from_slice(page);
                    } else if grant.read_only {
                        status = STATUS_ERROR;
                    } else {
                        page.copy_from_slice(disk);
                    }
                    sector += count;
                }
            }
            self.ring
                .push_response(&BlkifResponse {
                    id: transfer.id,
                    operation,
                    status,
                })
                .expect("room");
        }
        let _ = self.ring.publish_responses().expect("publish");
    }
}

fn setup(ring: &PageBuffer, pages: usize, persistent: bool) -> (Blkfront<'_, FakeGrants>, Shared) {
    let (fake, state, data_pages) = FakeGrants::with_pages(pages);
    let mut frontend = Blkfront::new(SharedPage::new(ring), fake, data_pages, BACKEND, 7);
    frontend
        .set_persistent(persistent)
        .expect("before the first request");
    assert_eq!(frontend.is_persistent(), persistent);
    (frontend, state)
}

/// Publishes, serves and polls (copying API) until nothing is in flight.
fn complete(
    frontend: &mut Blkfront<'_, FakeGrants>,
    backend: &mut DiskBackend<'_>,
    state: &Shared,
) -> Vec<blkfront::Completion> {
    let _ = frontend.publish().expect("publish");
    backend.serve(state);
    let mut done = Vec::new();
    while let Some(completion) = frontend.poll().expect("poll") {
        done.push(completion);
    }
    assert_eq!(frontend.in_flight(), 0);
    done
}

/// Bytes of sector `sector` as the tests write it (never the junk byte 0xee).
fn pattern(sector: u64, count: u32) -> Vec<u8> {
    (0..count as usize * 512)
        .map(|i| ((sector as usize * 512 + i) % 200) as u8)
        .collect()
}

/// A zero-copy write of `count` sectors at `sector` with [`pattern`], then an in-place
/// read back; checks the data and gives the pages back.
fn round_trip(
    frontend: &mut Blkfront<'_, FakeGrants>,
    backend: &mut DiskBackend<'_>,
    state: &Shared,
    sector: u64,
    count: u32,
) {
    let data = pattern(sector, count);
    let pages = frontend
        .take_pages((count as usize).div_ceil(8))
        .expect("pages");
    assert_eq!(
        frontend.lent_page_count(),
        frontend.lent_pages(&pages).expect("ours").len()
    );
    for (index, chunk) in data.chunks(4096).enumerate() {
        frontend.write_page(&pages, index, 0, chunk).expect("fits");
    }
    let id = frontend
        .submit_write_pages(sector, count, pages)
        .expect("write");
    assert_eq!(frontend.lent_page_count(), 0);
    let _ = frontend.publish().expect("publish");
    backend.serve(state);
    let done = frontend.poll_in_place().expect("poll").expect("completion");
    assert_eq!(
        (done.completion.id, done.completion.operation),
        (id, Operation::Write)
    );
    assert!(done.completion.is_ok() && done.pages.is_none());
    let at = sector as usize * 512;
    assert_eq!(
        &backend.disk[at..at + data.len()],
        &data[..],
        "the disk has the write"
    );

    let id = frontend.submit_read_in_place(sector, count).expect("read");
    let _ = frontend.publish().expect("publish");
    backend.serve(state);
    let done = frontend.poll_in_place().expect("poll").expect("completion");
    assert_eq!(
        (
            done.completion.id,
            done.completion.operation,
            done.completion.sector_count
        ),
        (id, Operation::Read, count)
    );
    assert!(done.completion.is_ok() && done.completion.data.is_empty());
    let pages = done.pages.expect("an in-place read's pages");
    let page_count = frontend.lent_pages(&pages).expect("ours").len();
    assert_eq!(page_count, (count as usize).div_ceil(8));
    assert_eq!(frontend.lent_page_count(), page_count);
    if !frontend.is_persistent() {
        assert!(
            state.borrow().grants.is_empty(),
            "revoked before handing over"
        );
    }
    let mut read = vec![0u8; data.len()];
    for (index, chunk) in read.chunks_mut(4096).enumerate() {
        frontend.read_page(&pages, index, 0, chunk).expect("fits");
    }
    assert_eq!(read, data);
    frontend.give_back(pages);
    assert_eq!(frontend.lent_page_count(), 0);
}

#[test]
fn persistent_mode_grants_each_page_once_and_revokes_all_at_disconnect() {
    let ring = PageBuffer::new();
    let (mut frontend, state) = setup(&ring, 22, true);
    let mut backend = DiskBackend::new(&ring);
    for round in 0..40u64 {
        let sector = (round * 88) % 800;
        round_trip(
            &mut frontend,
            &mut backend,
            &state,
            sector,
            1 + (round as u32 * 13) % 88,
        );
        let data = pattern(sector + 3, 24);
        frontend.submit_write(sector + 3, &data).expect("write");
        frontend.submit_read(sector + 3, 24).expect("read");
        frontend.submit_flush().expect("flush");
        let done = complete(&mut frontend, &mut backend, &state);
        assert_eq!(done.len(), 3);
        assert!(done.iter().all(blkfront::Completion::is_ok));
        assert_eq!(done[1].data, data);
    }
    let state_now = state.borrow();
    assert!(
        state_now.granted_ever <= 22,
        "{} grants for 22 pages",
        state_now.granted_ever
    );
    assert_eq!(
        state_now.grants.len(),
        state_now.granted_ever,
        "nothing revoked between requests"
    );
    assert_eq!(frontend.persistent_grant_count(), state_now.granted_ever);
    for grant in state_now.grants.values() {
        assert!(!grant.read_only, "persistent grants are read-write");
        assert!(
            !grant.snapshot.contains(&0xee),
            "page not zeroed before its first grant"
        );
    }
    // Every use of a grant is one of those made, writes included.
    assert!(backend
        .seen
        .iter()
        .all(|(grant, read_only, _)| !read_only && state_now.grants.contains_key(grant)));
    assert!(backend.seen.len() > 300);
    let granted = state_now.granted_ever;
    drop(state_now);
    assert_eq!(
        frontend.disconnect(),
        DisconnectReport {
            revoked: granted,
            still_mapped: 0
        }
    );
    assert!(state.borrow().grants.is_empty());
    assert_eq!(frontend.free_page_count(), 22);
    assert_eq!(frontend.persistent_grant_count(), 0);
    assert_eq!(frontend.poll(), Err(FrontendError::Disconnected));
    let (_, free) = frontend.into_parts();
    assert_eq!(free.len(), 22);
}

#[test]
fn prepare_pool_zeroes_and_grants_every_page_once() {
    let ring = PageBuffer::new();
    let (mut frontend, state) = setup(&ring, 12, true);
    let mut backend = DiskBackend::new(&ring);
    assert_eq!(frontend.prepare_pool(), Ok(12));
    assert_eq!(frontend.prepare_pool(), Ok(0));
    assert!(state
        .borrow()
        .grants
        .values()
        .all(|grant| grant.snapshot.iter().all(|byte| *byte == 0)));
    assert_eq!(
        frontend.set_persistent(false),
        Err(FrontendError::AlreadyStarted)
    );
    for sector in 0..20 {
        round_trip(&mut frontend, &mut backend, &state, sector * 8, 88);
    }
    assert_eq!(state.borrow().granted_ever, 12);
    assert_eq!(frontend.disconnect().revoked, 12);
}

#[test]
fn in_place_reads_and_page_writes_round_trip_without_persistent_grants() {
    let ring = PageBuffer::new();
    let (mut frontend, state) = setup(&ring, 11, false);
    let mut backend = DiskBackend::new(&ring);
    for (sector, count) in [(0, 1), (9, 8), (100, 88), (500, 20)] {
        round_trip(&mut frontend, &mut backend, &state, sector, count);
        assert!(
            state.borrow().grants.is_empty(),
            "every per-request grant revoked"
        );
    }
    assert_eq!(frontend.free_page_count(), 11);
    // A grant per page per request: writes read-only, reads read-write.
    let pages = [1, 1, 1, 1, 11, 11, 3, 3];
    assert_eq!(state.borrow().granted_ever, pages.iter().sum::<usize>());
    assert!(backend
        .seen
        .iter()
        .all(|(_, read_only, operation)| *read_only == (*operation == 1)));
    assert_eq!(frontend.persistent_grant_count(), 0);
    assert_eq!(frontend.disconnect(), DisconnectReport::default());
}

#[test]
fn non_persistent_copying_requests_are_unchanged() {
    let ring = PageBuffer::new();
    let (mut frontend, state) = setup(&ring, 11, false);
    let mut backend = DiskBackend::new(&ring);
    let data = pattern(40, 16);
    frontend.submit_write(40, &data).expect("write");
    let _ = frontend.publish().expect("publish");
    {
        let state = state.borrow();
        assert_eq!(state.grants.len(), 2);
        for grant in state.grants.values() {
            assert!(grant.read_only, "a write's page is granted read-only");
        }
    }
    backend.serve(&state);
    assert!(frontend.poll().expect("poll").expect("completion").is_ok());
    assert!(state.borrow().grants.is_empty(), "revoked at completion");
    // A read's pages are zeroed before every grant, even after holding data.
    frontend.submit_read(40, 16).expect("read");
    for grant in state.borrow().grants.values() {
        assert!(!grant.read_only && grant.snapshot.iter().all(|byte| *byte == 0));
    }
    let _ = frontend.publish().expect("publish");
    backend.serve(&state);
    assert_eq!(
        frontend.poll().expect("poll").expect("completion").data,
        data
    );
    assert!(state.borrow().grants.is_empty());
    assert_eq!(state.borrow().granted_ever, 4);
    // The copying poll takes an in-place read's pages back to the pool.
    frontend.submit_read_in_place(40, 16).expect("read");
    let done = complete(&mut frontend, &mut backend, &state);
    assert!(done[0].is_ok() && done[0].data.is_empty());
    assert_eq!(
        (frontend.free_page_count(), frontend.lent_page_count()),
        (11, 0)
    );
}

#[test]
fn a_persistent_page_still_mapped_at_disconnect_is_quarantined() {
    let ring = PageBuffer::new();
    let (mut frontend, state) = setup(&ring, 11, true);
    let mut backend = DiskBackend::new(&ring);
    round_trip(&mut frontend, &mut backend, &state, 0, 24);
    let held = *state.borrow().grants.keys().next().expect("a grant");
    state.borrow_mut().held.insert(held);
    let report = frontend.disconnect();
    assert_eq!(
        report,
        DisconnectReport {
            revoked: 2,
            still_mapped: 1
        }
    );
    assert_eq!(frontend.quarantined_page_count(), 1);
    assert_eq!(frontend.free_page_count(), 10);
    let state = state.borrow();
    assert_eq!(state.grants.keys().copied().collect::<Vec<_>>(), vec![held]);
    drop(state);
    let (_, free) = frontend.into_parts();
    assert_eq!(free.len(), 10, "the held page is never handed out again");
}

#[test]
fn persistent_grants_of_lent_and_in_flight_pages_are_revoked_at_disconnect() {
    lent_pages_at_disconnect(false);
    // Spending them in a write after the disconnect returns them the same way.
    lent_pages_at_disconnect(true);
}

fn lent_pages_at_disconnect(spend: bool) {
    let ring = PageBuffer::new();
    let (mut frontend, state) = setup(&ring, 11, true);
    let mut backend = DiskBackend::new(&ring);
    // Pages lent after an in-place read, a request in flight, a held page among the lent.
    frontend.submit_read_in_place(0, 16).expect("read");
    let _ = frontend.publish().expect("publish");
    backend.serve(&state);
    let done = frontend.poll_in_place().expect("poll").expect("completion");
    let pages = done.pages.expect("an in-place read's pages");
    assert_eq!(frontend.lent_pages(&pages).map(<[_]>::len), Ok(2));
    let second = frontend.lent_pages(&pages).expect("ours")[1].page();
    frontend.submit_read(64, 8).expect("read");
    let _ = frontend.publish().expect("publish");
    let lent_grant = state
        .borrow()
        .grants
        .iter()
        .find(|(_, grant)| grant.page == second)
        .map(|(reference, _)| *reference)
        .expect("granted");
    state.borrow_mut().held.insert(lent_grant);
    assert_eq!(
        frontend.disconnect(),
        DisconnectReport {
            revoked: 2,
            still_mapped: 1
        }
    );
    assert_eq!(state.borrow().grants.len(), 1);
    assert_eq!(frontend.in_flight(), 0);
    assert_eq!(
        (frontend.free_page_count(), frontend.lent_page_count()),
        (9, 2)
    );
    if spend {
        assert_eq!(
            frontend.submit_write_pages(0, 16, pages),
            Err(FrontendError::Disconnected)
        );
    } else {
        frontend.give_back(pages);
    }
    assert_eq!(
        (frontend.free_page_count(), frontend.lent_page_count()),
        (10, 0)
    );
    assert_eq!(frontend.quarantined_page_count(), 1);
    assert_eq!(
        frontend.take_pages(1).map(drop),
        Err(FrontendError::Disconnected)
    );
}

#[test]
fn zero_copy_misuse_is_refused_and_loses_no_page() {
    let ring = PageBuffer::new();
    let (mut frontend, _state) = setup(&ring, 11, true);
    assert_eq!(
        frontend.take_pages(0).map(drop),
        Err(FrontendError::BadLength)
    );
    assert_eq!(
        frontend.take_pages(12).map(drop),
        Err(FrontendError::BadLength)
    );
    let pages = frontend.take_pages(2).expect("pages");
    assert_eq!(
        frontend.write_page(&pages, 0, 4000, &[0; 97]),
        Err(FrontendError::BadLength)
    );
    // Two pages hold 9..=16 sectors.
    assert_eq!(
        frontend.submit_write_pages(0, 8, pages),
        Err(FrontendError::BadLength)
    );
    assert_eq!(
        (frontend.free_page_count(), frontend.lent_page_count()),
        (11, 0)
    );
    let pages = frontend.take_pages(11).expect("pages");
    assert_eq!(
        frontend.take_pages(1).map(drop),
        Err(FrontendError::NoFreePages)
    );
    assert_eq!(
        frontend.submit_read_in_place(0, 8),
        Err(FrontendError::NoFreePages)
    );
    frontend.submit_write_pages(0, 88, pages).expect("write");
    assert_eq!(frontend.in_flight(), 1);
}

#[test]
fn a_full_ring_refuses_zero_copy_writes_and_keeps_the_pages() {
    let ring = PageBuffer::new();
    let (mut frontend, _state) = setup(&ring, 40, false);
    for _ in 0..32 {
        frontend.submit_flush().expect("flush");
    }
    let pages = frontend.take_pages(3).expect("pages");
    assert_eq!(
        frontend.submit_write_pages(0, 24, pages),
        Err(FrontendError::RingFull)
    );
    assert_eq!(
        frontend.submit_read_in_place(0, 8),
        Err(FrontendError::RingFull)
    );
    assert_eq!(
        (frontend.free_page_count(), frontend.lent_page_count()),
        (40, 0)
    );
}

#[test]
fn a_handle_lent_by_another_frontend_is_refused() {
    let ring = PageBuffer::new();
    let other_ring = PageBuffer::new();
    let (mut frontend, _state) = setup(&ring, 11, true);
    let (mut other, _other_state) = setup(&other_ring, 11, true);
    let mine = frontend.take_pages(2).expect("pages");
    let theirs = other.take_pages(2).expect("pages");
    assert_eq!(
        frontend.lent_pages(&theirs).map(<[_]>::len),
        Err(FrontendError::ForeignPages)
    );
    assert_eq!(
        frontend.write_page(&theirs, 0, 0, &[1; 512]),
        Err(FrontendError::ForeignPages)
    );
    assert_eq!(
        frontend.read_page(&theirs, 0, 0, &mut [0; 512]),
        Err(FrontendError::ForeignPages)
    );
    // Past the run: no such page.
    assert_eq!(
        frontend.write_page(&mine, 2, 0, &[1; 512]),
        Err(FrontendError::BadLength)
    );
    assert_eq!(
        frontend.submit_write_pages(0, 16, theirs),
        Err(FrontendError::ForeignPages)
    );
    assert_eq!(frontend.in_flight(), 0);
    let theirs = other.take_pages(1).expect("pages");
    frontend.give_back(theirs);
    // Nothing of ours moved: our run is still lent, the rest still free.
    assert_eq!(
        (frontend.free_page_count(), frontend.lent_page_count()),
        (9, 2)
    );
    frontend.give_back(mine);
    assert_eq!(
        (frontend.free_page_count(), frontend.lent_page_count()),
        (11, 0)
    );
}

#[test]
fn more_runs_lent_at_once_than_ring_slots_all_come_back_in_order() {
    let ring = PageBuffer::new();
    let (mut frontend, _state) = setup(&ring, 80, false);
    // 80 single pages: more runs than the 32 lists made at construction.
    let lent: Vec<_> = (0..80)
        .map(|_| frontend.take_pages(1).expect("a page"))
        .collect();
    let pages: Vec<usize> = lent
        .iter()
        .map(|run| frontend.lent_pages(run).expect("ours")[0].page())
        .collect();
    assert_eq!(pages, (0..80).collect::<Vec<_>>());
    assert_eq!(frontend.free_page_count(), 0);
    // Given back last first, they are handed out again in the first order.
    for run in lent.into_iter().rev() {
        frontend.give_back(run);
    }
    assert_eq!(
        (frontend.free_page_count(), frontend.lent_page_count()),
        (80, 0)
    );
    let run = frontend.take_pages(11).expect("pages");
    assert_eq!(
        frontend
            .lent_pages(&run)
            .expect("ours")
            .iter()
            .map(|page| page.page())
            .collect::<Vec<_>>(),
        (0..11).collect::<Vec<_>>()
    );
    frontend.give_back(run);
}
