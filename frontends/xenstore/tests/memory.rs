//! What one domain can make the control domain hold: the bytes of its nodes, of its
//! transactions, of one round's replies and of its watch events are bounded by the
//! quotas, not only their counts (the agent serving the store has a few MiB).

mod common;

use xenstore::wire::PAYLOAD_MAX;
use xenstore::{Config, Message, MsgType, Quotas, XsError};

#[test]
fn a_domain_s_nodes_are_bounded_in_bytes_not_only_in_number() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    let limit = s.config().quotas.max_node_bytes;
    // Each request as a guest can send it: a 2000-byte name and a 2 KiB value.
    let name = "x".repeat(2000);
    let mut written = 0;
    let mut refused = None;
    for i in 0..1000 {
        match s.write(d1, 0, &format!("{i}{name}"), &[b'v'; 2048]) {
            Ok(()) => written += 1,
            Err(error) => {
                refused = Some(error);
                break;
            }
        }
    }
    assert_eq!(refused, Some(XsError::Nospc), "{written} nodes written");
    assert!(written < 200, "{written} nodes of 6 KiB each were taken");
    assert!(s.owned_bytes(1) <= limit);
}

#[test]
fn growing_a_value_counts_and_removing_gives_the_bytes_back() {
    let quotas = Quotas {
        max_node_bytes: 1000,
        ..Quotas::default()
    };
    let (mut s, d0) = common::store_with(Config {
        privileged: 0,
        quotas,
    });
    let d1 = common::domain(&mut s, d0, 1);
    // The home: its path and its name in `/local/domain`.
    assert_eq!(s.owned_bytes(1), "/local/domain/1".len() + 1);
    s.write(d1, 0, "small", b"").unwrap();
    let used = s.owned_bytes(1);
    assert_eq!(used, 16 + "/local/domain/1/small".len() + "small".len());
    let room = 1000 - used;
    assert_eq!(
        s.write(d1, 0, "small", &vec![b'v'; room + 1]),
        Err(XsError::Nospc)
    );
    s.write(d1, 0, "small", &vec![b'v'; room]).unwrap();
    assert_eq!(s.owned_bytes(1), 1000);
    assert_eq!(s.mkdir(d1, 0, "more"), Err(XsError::Nospc));
    s.write(d1, 0, "small", b"").unwrap();
    assert_eq!(s.owned_bytes(1), used);
    s.rm(d1, 0, "small").unwrap();
    assert_eq!(s.owned_bytes(1), 16);
}

#[test]
fn transactions_cannot_raise_a_domain_s_bytes_past_its_quota_at_commit() {
    let quotas = Quotas {
        max_node_bytes: 8 * 1024,
        ..Quotas::default()
    };
    let (mut s, d0) = common::store_with(Config {
        privileged: 0,
        quotas,
    });
    let d1 = common::domain(&mut s, d0, 1);
    s.mkdir(d1, 0, "a").unwrap();
    s.mkdir(d1, 0, "b").unwrap();
    let (t1, t2) = (
        s.transaction_start(d1).unwrap(),
        s.transaction_start(d1).unwrap(),
    );
    // Each fits alone; together they do not.
    s.write(d1, t1, "a/v", &[b'v'; 2048]).unwrap();
    s.write(d1, t1, "a/w", &[b'v'; 2048]).unwrap();
    s.write(d1, t2, "b/v", &[b'v'; 2048]).unwrap();
    s.write(d1, t2, "b/w", &[b'v'; 2048]).unwrap();
    s.transaction_end(d1, t1, true).unwrap();
    assert_eq!(s.transaction_end(d1, t2, true), Err(XsError::Nospc));
    assert!(s.owned_bytes(1) <= 8 * 1024);
}

#[test]
fn a_transaction_cannot_copy_megabytes() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    // A home with 200 children of 1000-byte names: 200 KB of child names, within the
    // domain's node quota.
    let name = "x".repeat(1000);
    for i in 0..200 {
        s.write(d1, 0, &format!("{i}{name}"), b"").unwrap();
    }
    // Each write to the home inside a transaction copied its child list; ten open
    // transactions held ten copies.
    let t = s.transaction_start(d1).unwrap();
    assert_eq!(s.write(d1, t, "/local/domain/1", b"v"), Err(XsError::Nospc));
    assert_eq!(s.read(d1, t, "0xx"), Err(XsError::Nospc), "it can only end");
    assert_eq!(s.transaction_end(d1, t, true), Err(XsError::Nospc));
    // The read set counts its paths' bytes too.
    let t = s.transaction_start(d1).unwrap();
    let long = "y".repeat(2000);
    let refused = (0..100)
        .filter(|i| s.read(d1, t, &format!("{i}{long}")) == Err(XsError::Nospc))
        .count();
    assert!(refused > 60, "{refused}");
    assert_eq!(s.transaction_end(d1, t, false), Ok(()));
    // A small transaction is unaffected.
    s.mkdir(d1, 0, "dev").unwrap();
    let t = s.transaction_start(d1).unwrap();
    s.write(d1, t, "dev/state", b"4").unwrap();
    s.transaction_end(d1, t, true).unwrap();
    assert_eq!(s.read(d1, 0, "dev/state").unwrap(), b"4");
}

#[test]
fn a_reply_too_large_for_the_wire_is_e2big() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    let name = "x".repeat(200);
    for i in 0..30 {
        s.write(d1, 0, &format!("{i}{name}"), b"").unwrap();
    }
    for id in 0..4 {
        s.submit(
            d1,
            Message::with_args(MsgType::Directory, id, 0, &[b"/local/domain/1"]),
        )
        .unwrap();
    }
    let out = s.serve_round(4);
    assert_eq!(out[0].messages.len(), 4);
    for (id, reply) in out[0].messages.iter().enumerate() {
        assert_eq!(reply.req_id, id as u32);
        assert_eq!(reply.error(), Some(XsError::TooBig));
        assert!(reply.payload.len() <= PAYLOAD_MAX);
    }
    // A directory that fits is answered as before.
    s.write(d1, 0, "dev/a", b"").unwrap();
    s.submit(d1, Message::with_args(MsgType::Directory, 9, 0, &[b"dev"]))
        .unwrap();
    assert_eq!(s.serve_round(4)[0].messages[0].payload, b"a\0");
}

#[test]
fn a_watch_event_too_large_for_the_wire_is_dropped_and_counted() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    let token = "t".repeat(3000);
    s.watch(d1, "w", &token).unwrap();
    assert_eq!(s.take_events(d1).len(), 1);
    let child = format!("w/{}", "c".repeat(2000));
    s.write(d1, 0, &child, b"").unwrap();
    let events = s.take_events(d1);
    assert!(
        events.iter().all(|e| e.payload.len() <= PAYLOAD_MAX),
        "an event of {} bytes",
        events[0].payload.len()
    );
    assert_eq!(s.stats(d1).unwrap().dropped_events, 1);
    // A short one still comes.
    s.write(d1, 0, "w/x", b"").unwrap();
    assert_eq!(s.take_events(d1).len(), 1);
}

#[test]
fn a_domain_with_a_recycled_id_inherits_nothing_of_a_released_one() {
    use xenstore::perms::{Access, Perms};
    let (mut s, d0) = common::store();
    let d5 = common::domain(&mut s, d0, 5);
    let d6 = common::domain(&mut s, d0, 6);
    // Domain 6 lets 5 read a node of its own; 5 owns a node outside its home
    // (made there for it by the toolstack, as a backend's device directory).
    s.write(d6, 0, "/local/domain/6/shared", b"for five").unwrap();
    s.set_perms(d6, 0, "/local/domain/6/shared", &Perms::new(6, Access::None).with(5, Access::Read))
        .unwrap();
    s.write(d0, 0, "/outside", b"x").unwrap();
    s.set_perms(d0, 0, "/outside", &Perms::new(5, Access::None)).unwrap();
    assert_eq!(s.read(d5, 0, "/local/domain/6/shared").unwrap(), b"for five");
    assert!(s.owned_by(5) > 0);
    // Domain 5 goes; a new domain is given id 5 again.
    s.release_domain(5);
    let _ = d5;
    let again = s.connect(5);
    assert_eq!(s.read(again, 0, "/local/domain/6/shared"), Err(XsError::Acces), "6's grant to the old 5");
    assert_eq!(s.read(again, 0, "/outside"), Err(XsError::Acces), "the old 5's node");
    assert_eq!(s.owned_by(5), 0, "the old 5's nodes passed to the privileged domain");
    assert_eq!(s.get_perms(d6, 0, "/local/domain/6/shared").unwrap().entries().len(), 1);
    assert_eq!(s.read(d0, 0, "/outside").unwrap(), b"x", "kept, for the toolstack to remove");
}
