//! Watches (registration event, firing at and below, rm, tokens, relative paths,
//! permission filtering, bounded queue, special paths) and transactions (snapshot
//! reads, commit, conflict, abort).

mod common;

use common::events;
use xenstore::{Config, Quotas, XsError};

fn ev(path: &str, token: &str) -> (String, String) {
    (path.into(), token.into())
}

#[test]
fn watch_fires_on_registration_and_changes() {
    let (mut s, d0) = common::store();
    s.watch(d0, "/a", "tok").unwrap();
    assert_eq!(events(&s.take_events(d0)), vec![ev("/a", "tok")]);
    s.write(d0, 0, "/a/b/c", b"1").unwrap();
    s.write(d0, 0, "/ab", b"1").unwrap(); // not below /a
    s.write(d0, 0, "/a", b"2").unwrap();
    assert_eq!(
        events(&s.take_events(d0)),
        vec![ev("/a/b/c", "tok"), ev("/a", "tok")]
    );
    s.watch(d0, "/a/b/c", "deep").unwrap();
    s.take_events(d0);
    s.rm(d0, 0, "/a/b").unwrap();
    assert_eq!(
        events(&s.take_events(d0)),
        vec![ev("/a/b", "tok"), ev("/a/b/c", "deep")]
    );
    assert_eq!(s.watch(d0, "/a", "tok"), Err(XsError::Exist));
    s.unwatch(d0, "/a", "tok").unwrap();
    assert_eq!(s.unwatch(d0, "/a", "tok"), Err(XsError::Noent));
    s.write(d0, 0, "/a", b"3").unwrap();
    assert!(s.take_events(d0).is_empty());
}

#[test]
fn relative_watches_report_relative_paths() {
    let (mut s, d0) = common::store();
    let d2 = common::domain(&mut s, d0, 2);
    s.watch(d2, "device", "dev").unwrap();
    s.write(d0, 0, "/local/domain/2/device/vbd/1/state", b"1")
        .unwrap();
    assert_eq!(
        events(&s.take_events(d2)),
        vec![ev("device", "dev"), ev("device/vbd/1/state", "dev")]
    );
}

#[test]
fn events_only_reach_watchers_who_may_read() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    let d2 = common::domain(&mut s, d0, 2);
    s.watch(d0, "/local", "all").unwrap();
    s.set_perms(
        d0,
        0,
        "/local",
        &xenstore::Perms::new(0, xenstore::Access::Read),
    )
    .unwrap();
    s.set_perms(
        d0,
        0,
        "/local/domain",
        &xenstore::Perms::new(0, xenstore::Access::Read),
    )
    .unwrap();
    s.watch(d2, "/local/domain", "spy").unwrap();
    s.take_events(d0);
    s.take_events(d2);
    s.write(d1, 0, "secret", b"x").unwrap();
    assert_eq!(
        events(&s.take_events(d0)),
        vec![ev("/local/domain/1/secret", "all")]
    );
    assert!(s.take_events(d2).is_empty());
}

#[test]
fn event_queue_is_bounded_and_drops_are_counted() {
    let quotas = Quotas {
        max_pending_events: 4,
        max_watches: 2,
        ..Quotas::default()
    };
    let (mut s, d0) = common::store_with(Config {
        privileged: 0,
        quotas,
    });
    let d1 = common::domain(&mut s, d0, 1);
    s.watch(d1, "w", "t").unwrap();
    s.watch(d1, "w/x", "u").unwrap();
    assert_eq!(s.watch(d1, "w/y", "v"), Err(XsError::TooBig));
    for i in 0..1000 {
        s.write(d1, 0, "w/x", format!("{i}").as_bytes()).unwrap();
    }
    let stats = s.stats(d1).unwrap();
    assert_eq!(stats.pending_events, 4);
    assert_eq!(stats.dropped_events, 2000 - 2);
    assert_eq!(s.take_events(d1).len(), 4);
}

#[test]
fn special_watches_are_for_the_privileged_domain() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    assert_eq!(s.watch(d1, "@releaseDomain", "r"), Err(XsError::Acces));
    // Any other `@` name is an ordinary (relative) path, as in xenstored.
    s.watch(d1, "@other", "r").unwrap();
    s.watch(d0, "@introduceDomain", "i").unwrap();
    s.watch(d0, "@releaseDomain", "r").unwrap();
    s.take_events(d0);
    let reply = s
        .call(
            d0,
            xenstore::MsgType::Introduce,
            0,
            b"9\x00123\x004\x00".to_vec(),
        )
        .unwrap();
    assert_eq!(reply, b"OK\0");
    let intro = s.take_introductions();
    assert_eq!((intro[0].domid, intro[0].mfn, intro[0].port), (9, 123, 4));
    assert_eq!(
        s.call(
            d1,
            xenstore::MsgType::Introduce,
            0,
            b"8\x001\x001\x00".to_vec()
        ),
        Err(XsError::Acces)
    );
    assert_eq!(
        s.call(
            d0,
            xenstore::MsgType::IsDomainIntroduced,
            0,
            b"9\0".to_vec()
        )
        .unwrap(),
        b"T\0"
    );
    s.release_domain(9);
    assert_eq!(
        events(&s.take_events(d0)),
        vec![ev("@introduceDomain", "i"), ev("@releaseDomain", "r")]
    );
}

#[test]
fn transaction_sees_its_own_writes_and_commits() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    s.watch(d0, "/local/domain/1", "w").unwrap();
    s.take_events(d0);
    let t = s.transaction_start(d1).unwrap();
    assert_ne!(t, 0);
    s.write(d1, t, "ring-ref", b"8").unwrap();
    s.write(d1, t, "event-channel", b"3").unwrap();
    assert_eq!(s.read(d1, t, "ring-ref").unwrap(), b"8");
    assert_eq!(s.read(d1, 0, "ring-ref"), Err(XsError::Noent));
    assert!(s.take_events(d0).is_empty());
    s.transaction_end(d1, t, true).unwrap();
    assert_eq!(s.read_u32(d0, 0, "/local/domain/1/ring-ref").unwrap(), 8);
    assert_eq!(s.directory(d1, 0, "").map(|_| ()), Err(XsError::Inval));
    assert_eq!(events(&s.take_events(d0)).len(), 2);
    assert_eq!(s.transaction_end(d1, t, true), Err(XsError::Noent));
    assert_eq!(s.read(d1, 12345, "ring-ref"), Err(XsError::Noent));
}

#[test]
fn conflicting_commit_gets_eagain() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    s.write(d1, 0, "n", b"0").unwrap();
    let t = s.transaction_start(d1).unwrap();
    let v = s.read_u32(d1, t, "n").unwrap();
    s.write(d0, 0, "/local/domain/1/n", b"5").unwrap();
    s.write(d1, t, "n", format!("{}", v + 1).as_bytes())
        .unwrap();
    assert_eq!(s.transaction_end(d1, t, true), Err(XsError::Again));
    assert_eq!(s.read(d1, 0, "n").unwrap(), b"5");
    // A retry succeeds.
    let t = s.transaction_start(d1).unwrap();
    let v = s.read_u32(d1, t, "n").unwrap();
    s.write(d1, t, "n", format!("{}", v + 1).as_bytes())
        .unwrap();
    s.transaction_end(d1, t, true).unwrap();
    assert_eq!(s.read(d1, 0, "n").unwrap(), b"6");
    // Reading an absent node, then someone creates it: conflict too.
    let t = s.transaction_start(d1).unwrap();
    assert_eq!(s.read(d1, t, "m"), Err(XsError::Noent));
    s.write(d1, 0, "m", b"x").unwrap();
    assert_eq!(s.transaction_end(d1, t, true), Err(XsError::Again));
}

#[test]
fn abort_discards_and_rm_inside_a_transaction() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    s.write(d1, 0, "a/b", b"1").unwrap();
    let t = s.transaction_start(d1).unwrap();
    s.rm(d1, t, "a").unwrap();
    s.write(d1, t, "c", b"2").unwrap();
    assert_eq!(s.read(d1, t, "a/b"), Err(XsError::Noent));
    assert_eq!(
        s.directory(d1, t, "/local/domain/1").unwrap(),
        vec![b"c".to_vec()]
    );
    s.transaction_end(d1, t, false).unwrap();
    assert_eq!(s.read(d1, 0, "a/b").unwrap(), b"1");
    assert_eq!(s.read(d1, 0, "c"), Err(XsError::Noent));
    let t = s.transaction_start(d1).unwrap();
    s.rm(d1, t, "a").unwrap();
    s.transaction_end(d1, t, true).unwrap();
    assert_eq!(s.read(d1, 0, "a/b"), Err(XsError::Noent));
    assert_eq!(s.owned_by(1), 1);
    assert_eq!(s.node_count(), 4); // /, /local, /local/domain, /local/domain/1
}

#[test]
fn a_transaction_s_read_set_is_bounded() {
    let quotas = Quotas {
        max_transaction_nodes: 10,
        ..Quotas::default()
    };
    let (mut s, d0) = common::store_with(Config {
        privileged: 0,
        quotas,
    });
    let d1 = common::domain(&mut s, d0, 1);
    let t = s.transaction_start(d1).unwrap();
    let mut refused = 0;
    for i in 0..100 {
        if s.read(d1, t, &format!("n{i}")) == Err(XsError::Nospc) {
            refused += 1;
        }
    }
    assert!(refused > 90);
    assert_eq!(s.transaction_end(d1, t, true), Err(XsError::Nospc));
    assert_eq!(s.stats(d1).unwrap().transactions, 0);
}
