//! Service over byte streams: backpressure on the request queue, round-robin fairness
//! under a flood, and a XenbusState handshake between a frontend and a backend that
//! closes and reconnects, driven only by watch events.

mod common;

use common::events;
use xenstore::checked::XenbusState;
use xenstore::perms::{Access, Perms};
use xenstore::{Config, ConnId, Message, MsgType, Quotas, Store, XsError};

#[test]
fn receive_pushes_back_when_the_queue_is_full() {
    let quotas = Quotas {
        max_outstanding: 3,
        ..Quotas::default()
    };
    let (mut s, d0) = common::store_with(Config {
        privileged: 0,
        quotas,
    });
    let d1 = common::domain(&mut s, d0, 1);
    let one = Message::with_args(MsgType::Read, 1, 0, &[b"x"]).encode();
    let stream: Vec<u8> = (0..10).flat_map(|_| one.clone()).collect();
    assert_eq!(s.wanted(d1), 16);
    let taken = s.receive(d1, &stream).unwrap();
    assert_eq!(taken, 3 * one.len());
    assert_eq!(s.wanted(d1), 0);
    assert_eq!(
        s.submit(d1, Message::new(MsgType::Read, 2, 0, vec![])),
        Err(XsError::Busy)
    );
    let out = s.serve_round(2);
    assert_eq!(out[0].messages.len(), 2);
    assert_eq!(out[0].messages[0].error(), Some(XsError::Noent));
    assert_eq!(s.receive(d1, &stream[taken..]).unwrap(), 2 * one.len());
}

#[test]
fn oversized_message_faults_the_connection() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    let mut header = Vec::new();
    for word in [11u32, 1, 0, 100_000] {
        header.extend(word.to_le_bytes());
    }
    assert!(s.receive(d1, &header).is_err());
    assert!(s.stats(d1).unwrap().faulted);
    assert_eq!(s.wanted(d1), 0);
}

#[test]
fn a_flood_does_not_hold_back_another_domain() {
    let (mut s, d0) = common::store();
    let flood = common::domain(&mut s, d0, 1);
    let quiet = common::domain(&mut s, d0, 2);
    for i in 0..20 {
        s.submit(
            flood,
            Message::with_args(MsgType::Write, i, 0, &[b"spam", b"x"]),
        )
        .unwrap();
    }
    s.submit(
        quiet,
        Message::with_args(MsgType::Write, 99, 0, &[b"state", b"4"]),
    )
    .unwrap();
    let out = s.serve_round(4);
    let quiet_out = out.iter().find(|o| o.conn == quiet).unwrap();
    assert_eq!(quiet_out.messages[0].req_id, 99);
    assert_eq!(quiet_out.messages[0].payload, b"OK\0");
    let flood_out = out.iter().find(|o| o.conn == flood).unwrap();
    assert_eq!(flood_out.messages.len(), 4);
    let stats = s.stats(flood).unwrap();
    assert_eq!((stats.served, stats.queued_requests), (4, 16));
    assert_eq!(s.stats(quiet).unwrap().served, 1);
    let rounds = (0..10).take_while(|_| !s.serve_round(4).is_empty()).count();
    assert_eq!(rounds, 4);
}

#[test]
fn blocked_connections_are_not_served() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    s.submit(d1, Message::with_args(MsgType::Read, 1, 0, &[b"x"]))
        .unwrap();
    s.set_blocked(d1, true);
    assert!(s.serve_round(4).is_empty());
    s.set_blocked(d1, false);
    assert_eq!(s.serve_round(4).len(), 1);
}

/// A domain's view of its connection: sends requests through the queue, gets replies
/// and events back from `serve_round`.
struct Side {
    conn: ConnId,
    events: Vec<(String, String)>,
}

fn roundtrip(s: &mut Store, sides: &mut [&mut Side]) {
    for output in s.serve_round(8) {
        if let Some(side) = sides.iter_mut().find(|side| side.conn == output.conn) {
            side.events.extend(events(&output.messages));
        }
    }
}

fn set_state(s: &mut Store, side: &Side, path: &str, state: XenbusState) {
    assert_eq!(s.write(side.conn, 0, path, &state.to_value()), Ok(()));
}

#[test]
fn xenbus_handshake_close_and_reconnect() {
    let (mut s, d0) = common::store();
    let fe_dir = "/local/domain/5/device/vbd/51712";
    let be_dir = "/local/domain/1/backend/vbd/5/51712";
    let back = common::domain(&mut s, d0, 1);
    let front = common::domain(&mut s, d0, 5);
    // The toolstack lays out both halves.
    s.write(d0, 0, &format!("{fe_dir}/backend"), be_dir.as_bytes())
        .unwrap();
    s.write(d0, 0, &format!("{fe_dir}/backend-id"), b"1")
        .unwrap();
    s.write(d0, 0, &format!("{fe_dir}/state"), b"1").unwrap();
    s.write(d0, 0, &format!("{be_dir}/frontend"), fe_dir.as_bytes())
        .unwrap();
    s.write(d0, 0, &format!("{be_dir}/frontend-id"), b"5")
        .unwrap();
    s.write(d0, 0, &format!("{be_dir}/state"), b"1").unwrap();
    for (dir, perms) in [
        (fe_dir, Perms::new(5, Access::None).with(1, Access::Read)),
        (be_dir, Perms::new(1, Access::None).with(5, Access::Read)),
    ] {
        s.set_perms(d0, 0, dir, &perms).unwrap();
        for child in s.directory(d0, 0, dir).unwrap() {
            let path = format!("{dir}/{}", String::from_utf8(child).unwrap());
            s.set_perms(d0, 0, &path, &perms).unwrap();
        }
    }
    let mut fe = Side {
        conn: front,
        events: vec![],
    };
    let mut be = Side {
        conn: back,
        events: vec![],
    };
    let fe_state = format!("{fe_dir}/state");
    let be_state = format!("{be_dir}/state");
    // Each side watches the other's state.
    s.submit(
        fe.conn,
        Message::with_args(MsgType::Watch, 1, 0, &[be_state.as_bytes(), b"be"]),
    )
    .unwrap();
    s.submit(
        be.conn,
        Message::with_args(MsgType::Watch, 1, 0, &[fe_state.as_bytes(), b"fe"]),
    )
    .unwrap();
    roundtrip(&mut s, &mut [&mut fe, &mut be]);
    assert_eq!(fe.events, vec![(be_state.clone(), "be".into())]);
    // Backend: InitWait. Frontend: publishes ring-ref and event-channel in a
    // transaction, then Initialised.
    set_state(&mut s, &be, &be_state, XenbusState::InitWait);
    let t = s.transaction_start(fe.conn).unwrap();
    s.write(fe.conn, t, &format!("{fe_dir}/ring-ref"), b"8")
        .unwrap();
    s.write(fe.conn, t, &format!("{fe_dir}/event-channel"), b"3")
        .unwrap();
    s.transaction_end(fe.conn, t, true).unwrap();
    set_state(&mut s, &fe, &fe_state, XenbusState::Initialised);
    roundtrip(&mut s, &mut [&mut fe, &mut be]);
    assert!(be.events.iter().any(|(p, t)| p == &fe_state && t == "fe"));
    assert_eq!(
        s.read_state(be.conn, 0, &fe_state).unwrap(),
        XenbusState::Initialised
    );
    assert_eq!(
        s.read_u32(be.conn, 0, &format!("{fe_dir}/ring-ref"))
            .unwrap(),
        8
    );
    set_state(&mut s, &be, &be_state, XenbusState::Connected);
    roundtrip(&mut s, &mut [&mut fe, &mut be]);
    assert_eq!(
        s.read_state(fe.conn, 0, &be_state).unwrap(),
        XenbusState::Connected
    );
    set_state(&mut s, &fe, &fe_state, XenbusState::Connected);
    // The backend goes away: Closing, then Closed; the frontend hears both.
    fe.events.clear();
    set_state(&mut s, &be, &be_state, XenbusState::Closing);
    roundtrip(&mut s, &mut [&mut fe, &mut be]);
    assert_eq!(
        s.read_state(fe.conn, 0, &be_state).unwrap(),
        XenbusState::Closing
    );
    set_state(&mut s, &fe, &fe_state, XenbusState::Closing);
    set_state(&mut s, &be, &be_state, XenbusState::Closed);
    roundtrip(&mut s, &mut [&mut fe, &mut be]);
    assert_eq!(fe.events.len(), 2);
    assert_eq!(
        s.read_state(fe.conn, 0, &be_state).unwrap(),
        XenbusState::Closed
    );
    // The frontend resets to Initialising; the backend comes back and they reconnect.
    set_state(&mut s, &fe, &fe_state, XenbusState::Initialising);
    set_state(&mut s, &be, &be_state, XenbusState::InitWait);
    roundtrip(&mut s, &mut [&mut fe, &mut be]);
    assert_eq!(
        s.read_state(fe.conn, 0, &be_state).unwrap(),
        XenbusState::InitWait
    );
    set_state(&mut s, &fe, &fe_state, XenbusState::Initialised);
    set_state(&mut s, &be, &be_state, XenbusState::Connected);
    set_state(&mut s, &fe, &fe_state, XenbusState::Connected);
    assert_eq!(
        s.read_state(be.conn, 0, &fe_state).unwrap(),
        XenbusState::Connected
    );
    assert_eq!(
        s.read_state(fe.conn, 0, &be_state).unwrap(),
        XenbusState::Connected
    );
}
