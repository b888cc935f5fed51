//! blkfront against a hostile backend (ring-protocol's misbehaving backend): bad response
//! ids, duplicates, wrong operations, index jumps and grants held after a response are
//! errors that stop the device, never panics; disconnecting revokes every grant.

mod common;

use blkfront::{Blkfront, DisconnectReport, FrontendError, Operation};
use common::*;
use ring_protocol::blkif::{
    Blkif, BlkifRequest, BlkifResponse, OPERATION_READ, OPERATION_WRITE, STATUS_ERROR, STATUS_OKAY,
};
use ring_protocol::test_utils::{HostileBackend, Misbehavior};
use ring_protocol::{Backend, PageBuffer, RingError, SharedPage};

/// A frontend with `pages` data pages, a request reader on the backend side, and the
/// hostile backend that answers.
fn setup(
    ring: &PageBuffer,
    pages: usize,
) -> (
    Blkfront<'_, FakeGrants>,
    Shared,
    Backend<'_, Blkif>,
    HostileBackend<'_, Blkif>,
) {
    let (fake, state, data_pages) = FakeGrants::with_pages(pages);
    let frontend = Blkfront::new(SharedPage::new(ring), fake, data_pages, BACKEND, 0x51);
    let reader = Backend::<Blkif>::attach(SharedPage::new(ring));
    let hostile = HostileBackend::<Blkif>::attach(SharedPage::new(ring));
    (frontend, state, reader, hostile)
}

fn respond(hostile: &mut HostileBackend<'_, Blkif>, id: u64, operation: u8, status: i16) {
    hostile.produce(&BlkifResponse {
        id,
        operation,
        status,
    });
}

fn assert_stopped(frontend: &mut Blkfront<'_, FakeGrants>, expected: FrontendError) {
    assert!(expected.is_backend_fault());
    assert_eq!(frontend.fault(), Some(expected));
    assert_eq!(frontend.poll(), Err(expected));
    assert_eq!(frontend.submit_read(0, 1), Err(expected));
    assert_eq!(frontend.publish(), Err(expected));
}

fn disconnect_revokes_everything(frontend: &mut Blkfront<'_, FakeGrants>) -> DisconnectReport {
    let report = frontend.disconnect();
    let state = frontend.pages().0.borrow();
    assert_eq!(
        state.grants.len(),
        state.held.len(),
        "a grant survived disconnect"
    );
    drop(state);
    assert_eq!(frontend.in_flight(), 0);
    assert_eq!(frontend.poll(), Err(FrontendError::Disconnected));
    report
}

#[test]
fn requests_are_well_formed_and_pages_zeroed_before_granting() {
    let ring = PageBuffer::new();
    let (mut frontend, state, mut reader, _hostile) = setup(&ring, 12);
    let data: Vec<u8> = (0..3 * 512).map(|i| i as u8).collect();
    let write_id = frontend.submit_write(40, &data).expect("write");
    let read_id = frontend.submit_read(100, 88).expect("read");
    let _ = frontend.publish().expect("publish");
    let Ok(Some(BlkifRequest::Write(write))) = reader.next_request() else {
        panic!("expected the write");
    };
    assert_eq!(
        (
            write.id,
            write.sector_number,
            write.segment_count,
            write.handle
        ),
        (write_id, 40, 1, 0x51)
    );
    assert_eq!(
        (
            write.segments[0].first_sector,
            write.segments[0].last_sector
        ),
        (0, 2)
    );
    let grant = state.borrow().grants[&write.segments[0].grant].clone();
    assert!(grant.read_only && grant.backend == BACKEND);
    assert_eq!(&grant.snapshot[..3 * 512], &data[..]);
    assert!(
        grant.snapshot[3 * 512..].iter().all(|byte| *byte == 0),
        "junk after the data"
    );
    let Ok(Some(BlkifRequest::Read(read))) = reader.next_request() else {
        panic!("expected the read");
    };
    assert_eq!((read.id, read.segment_count), (read_id, 11));
    for segment in read.used_segments() {
        let grant = state.borrow().grants[&segment.grant].clone();
        assert!(!grant.read_only);
        assert!(
            grant.snapshot.iter().all(|byte| *byte == 0),
            "read page not zeroed"
        );
        assert_eq!((segment.first_sector, segment.last_sector), (0, 7));
    }
    // Only 12 pages: an 11-page read and a 1-page write use them all.
    assert_eq!(frontend.submit_read(0, 1), Err(FrontendError::NoFreePages));
    assert_eq!(frontend.submit_read(0, 0), Err(FrontendError::BadLength));
    assert_eq!(frontend.submit_read(0, 89), Err(FrontendError::BadLength));
    assert_eq!(
        frontend.submit_write(0, &[0; 100]),
        Err(FrontendError::BadLength)
    );
    assert_eq!(
        disconnect_revokes_everything(&mut frontend),
        DisconnectReport {
            revoked: 12,
            still_mapped: 0
        }
    );
}

#[test]
fn a_good_response_completes_and_read_data_is_copied_after_revocation() {
    let ring = PageBuffer::new();
    let (mut frontend, state, mut reader, mut hostile) = setup(&ring, 11);
    let id = frontend.submit_read(7, 9).expect("read");
    let _ = frontend.publish().expect("publish");
    let Ok(Some(BlkifRequest::Read(read))) = reader.next_request() else {
        panic!("expected the read");
    };
    for (index, segment) in read.used_segments().iter().enumerate() {
        let mut state = state.borrow_mut();
        state
            .granted_page(segment.grant)
            .expect("granted")
            .fill(index as u8 + 1);
    }
    respond(&mut hostile, id, OPERATION_READ, STATUS_OKAY);
    let done = frontend.poll().expect("poll").expect("completion");
    assert_eq!(
        (done.id, done.operation, done.sector, done.sector_count),
        (id, Operation::Read, 7, 9)
    );
    assert_eq!(done.data.len(), 9 * 512);
    assert!(done.data[..4096].iter().all(|byte| *byte == 1));
    assert!(done.data[4096..].iter().all(|byte| *byte == 2));
    assert!(state.borrow().grants.is_empty());
    assert_eq!(frontend.free_page_count(), 11);
    // An error status completes the request without data.
    let id = frontend.submit_read(0, 1).expect("read");
    let _ = frontend.publish().expect("publish");
    respond(&mut hostile, id, OPERATION_READ, STATUS_ERROR);
    let done = frontend.poll().expect("poll").expect("completion");
    assert!(!done.is_ok() && done.data.is_empty());
    assert_eq!(frontend.poll(), Ok(None));
}

#[test]
fn unknown_response_id_stops_the_device() {
    let ring = PageBuffer::new();
    let (mut frontend, _state, _reader, mut hostile) = setup(&ring, 11);
    let id = frontend.submit_write(0, &[1; 512]).expect("write");
    let _ = frontend.publish().expect("publish");
    respond(&mut hostile, id + 1, OPERATION_WRITE, STATUS_OKAY);
    assert_eq!(
        frontend.poll(),
        Err(FrontendError::UnknownResponseId(id + 1))
    );
    assert_stopped(&mut frontend, FrontendError::UnknownResponseId(id + 1));
    assert_eq!(disconnect_revokes_everything(&mut frontend).revoked, 1);
}

#[test]
fn duplicate_response_stops_the_device() {
    let ring = PageBuffer::new();
    let (mut frontend, _state, _reader, mut hostile) = setup(&ring, 11);
    let first = frontend.submit_flush().expect("flush");
    let second = frontend.submit_read(0, 8).expect("read");
    let _ = frontend.publish().expect("publish");
    respond(
        &mut hostile,
        first,
        ring_protocol::blkif::OPERATION_FLUSH_DISKCACHE,
        STATUS_OKAY,
    );
    assert!(frontend.poll().expect("poll").is_some());
    respond(
        &mut hostile,
        first,
        ring_protocol::blkif::OPERATION_FLUSH_DISKCACHE,
        STATUS_OKAY,
    );
    assert_eq!(
        frontend.poll(),
        Err(FrontendError::DuplicateResponse(first))
    );
    assert_stopped(&mut frontend, FrontendError::DuplicateResponse(first));
    assert_eq!(frontend.in_flight(), 1, "{second}");
    assert_eq!(disconnect_revokes_everything(&mut frontend).revoked, 1);
}

#[test]
fn wrong_operation_stops_the_device() {
    let ring = PageBuffer::new();
    let (mut frontend, _state, _reader, mut hostile) = setup(&ring, 11);
    let id = frontend.submit_read(0, 16).expect("read");
    let _ = frontend.publish().expect("publish");
    respond(&mut hostile, id, OPERATION_WRITE, STATUS_OKAY);
    let expected = FrontendError::WrongOperation {
        id,
        expected: OPERATION_READ,
        found: OPERATION_WRITE,
    };
    assert_eq!(frontend.poll(), Err(expected));
    assert_stopped(&mut frontend, expected);
    assert_eq!(disconnect_revokes_everything(&mut frontend).revoked, 2);
}

#[test]
fn response_index_jumps_stop_the_device() {
    for misbehavior in [
        Misbehavior::SetProducer(100),
        Misbehavior::MoveProducer(2),
        Misbehavior::MoveProducer(-1),
    ] {
        let ring = PageBuffer::new();
        let (mut frontend, _state, _reader, mut hostile) = setup(&ring, 11);
        let id = frontend.submit_read(0, 1).expect("read");
        let _ = frontend.publish().expect("publish");
        let error = frontend.poll().err();
        assert_eq!(error, None, "{misbehavior:?}");
        hostile.apply(misbehavior);
        let error = frontend.poll().expect_err("index jump");
        assert!(
            matches!(
                error,
                FrontendError::Ring(RingError::PeerOverflow { .. } | RingError::PeerRewound { .. })
            ),
            "{error:?}"
        );
        assert_stopped(&mut frontend, error);
        assert_eq!(
            disconnect_revokes_everything(&mut frontend).revoked,
            1,
            "{id}"
        );
    }
}

#[test]
fn a_grant_still_mapped_after_the_response_is_quarantined() {
    let ring = PageBuffer::new();
    let (mut frontend, state, mut reader, mut hostile) = setup(&ring, 11);
    let id = frontend.submit_read(0, 16).expect("read");
    let other = frontend.submit_write(0, &[5; 512]).expect("write");
    let _ = frontend.publish().expect("publish");
    let Ok(Some(BlkifRequest::Read(read))) = reader.next_request() else {
        panic!("expected the read");
    };
    // The backend answers but keeps the first page mapped.
    state.borrow_mut().held.insert(read.segments[0].grant);
    respond(&mut hostile, id, OPERATION_READ, STATUS_OKAY);
    assert_eq!(frontend.poll(), Err(FrontendError::GrantStillMapped(id)));
    assert_eq!(frontend.quarantined_page_count(), 1);
    assert_eq!(frontend.free_page_count(), 11 - 1 - 1);
    assert_stopped(&mut frontend, FrontendError::GrantStillMapped(id));
    let report = disconnect_revokes_everything(&mut frontend);
    assert_eq!(
        report,
        DisconnectReport {
            revoked: 1,
            still_mapped: 0
        },
        "{other}"
    );
    let (_, free) = frontend.into_parts();
    assert_eq!(free.len(), 10, "the held page is never handed out again");
}

#[test]
fn a_refused_grant_returns_every_page_of_the_request() {
    let ring = PageBuffer::new();
    let (mut frontend, state, _reader, _hostile) = setup(&ring, 11);
    state.borrow_mut().refuse_grants_after = Some(3);
    assert_eq!(
        frontend.submit_read(0, 40),
        Err(FrontendError::Grant(blkfront::GrantError::TableFull))
    );
    assert_eq!(frontend.free_page_count(), 11);
    assert!(state.borrow().grants.is_empty());
    assert_eq!(frontend.in_flight(), 0);
    // The device is not stopped: a refused grant is our side's condition.
    state.borrow_mut().refuse_grants_after = None;
    assert!(frontend.submit_read(0, 40).is_ok());
}

#[test]
fn a_full_ring_is_reported_not_overrun() {
    let ring = PageBuffer::new();
    let (mut frontend, _state, _reader, _hostile) = setup(&ring, 64);
    for _ in 0..32 {
        frontend.submit_flush().expect("flush");
    }
    assert_eq!(frontend.submit_flush(), Err(FrontendError::RingFull));
    assert_eq!(frontend.in_flight(), 32);
}
