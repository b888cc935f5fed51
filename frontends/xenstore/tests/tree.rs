//! Tree operations, permissions and quotas, as the control domain and as guests.

mod common;

use xenstore::checked::XenbusState;
use xenstore::perms::{Access, Perms};
use xenstore::{Config, Quotas, XsError};

#[test]
fn every_operation() {
    let (mut s, d0) = common::store();
    s.write(d0, 0, "/a/b/c", b"hello").unwrap();
    assert_eq!(s.read(d0, 0, "/a/b/c").unwrap(), b"hello");
    assert_eq!(s.read(d0, 0, "/a/b").unwrap(), b"");
    assert_eq!(s.directory(d0, 0, "/a").unwrap(), vec![b"b".to_vec()]);
    s.mkdir(d0, 0, "/a/d").unwrap();
    s.mkdir(d0, 0, "/a/d").unwrap();
    assert_eq!(
        s.directory(d0, 0, "/a").unwrap(),
        vec![b"b".to_vec(), b"d".to_vec()]
    );
    assert_eq!(
        s.get_perms(d0, 0, "/a/b/c").unwrap(),
        Perms::new(0, Access::None)
    );
    s.set_perms(
        d0,
        0,
        "/a",
        &Perms::new(0, Access::Read).with(4, Access::Both),
    )
    .unwrap();
    assert_eq!(s.get_perms(d0, 0, "/a").unwrap().to_wire(), b"r0\0b4\0");
    s.rm(d0, 0, "/a/b").unwrap();
    assert_eq!(s.read(d0, 0, "/a/b/c"), Err(XsError::Noent));
    assert_eq!(s.directory(d0, 0, "/a").unwrap(), vec![b"d".to_vec()]);
    s.rm(d0, 0, "/a/b").unwrap(); // gone, parent exists: acknowledged
    assert_eq!(s.rm(d0, 0, "/x/y"), Err(XsError::Noent));
    assert_eq!(s.rm(d0, 0, "/"), Err(XsError::Inval));
    assert_eq!(s.read(d0, 0, "/nope"), Err(XsError::Noent));
    let value = vec![0u8, 255, 10, 0];
    s.write(d0, 0, "/bin", &value).unwrap();
    assert_eq!(s.read(d0, 0, "/bin").unwrap(), value);
}

#[test]
fn get_domain_path_and_relative_paths() {
    let (mut s, d0) = common::store();
    let d3 = common::domain(&mut s, d0, 3);
    let reply = s
        .call(d3, xenstore::MsgType::GetDomainPath, 0, b"3\0".to_vec())
        .unwrap();
    assert_eq!(reply, b"/local/domain/3\0");
    s.write(d3, 0, "data/x", b"1").unwrap();
    assert_eq!(s.read(d0, 0, "/local/domain/3/data/x").unwrap(), b"1");
    assert_eq!(s.read_u32(d3, 0, "data/x").unwrap(), 1);
}

#[test]
fn guests_are_confined_to_their_homes() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    let d2 = common::domain(&mut s, d0, 2);
    s.write(d1, 0, "/local/domain/1/secret", b"s").unwrap();
    assert_eq!(s.read(d2, 0, "/local/domain/1/secret"), Err(XsError::Acces));
    assert_eq!(
        s.write(d2, 0, "/local/domain/1/secret", b"x"),
        Err(XsError::Acces)
    );
    assert_eq!(
        s.write(d2, 0, "/local/domain/1/new", b"x"),
        Err(XsError::Acces)
    );
    assert_eq!(s.rm(d2, 0, "/local/domain/1/secret"), Err(XsError::Acces));
    assert_eq!(s.directory(d2, 0, "/local/domain/1"), Err(XsError::Acces));
    assert_eq!(
        s.get_perms(d2, 0, "/local/domain/1/secret"),
        Err(XsError::Acces)
    );
    // Probing for nodes does not tell absent from forbidden.
    assert_eq!(s.read(d2, 0, "/local/domain/1/absent"), Err(XsError::Acces));
    assert_eq!(
        s.watch(d2, "/local/domain/1/secret", "t"),
        Err(XsError::Acces)
    );
    assert_eq!(
        s.watch(d2, "/local/domain/1/absent", "t"),
        Err(XsError::Acces)
    );
    assert_eq!(s.write(d2, 0, "/top", b"x"), Err(XsError::Acces));
    assert_eq!(s.read(d2, 0, "/local/domain/2/absent"), Err(XsError::Noent));
    assert_eq!(s.read(d1, 0, "/local/domain/1/secret").unwrap(), b"s");
    assert_eq!(s.read(d0, 0, "/local/domain/1/secret").unwrap(), b"s");
}

#[test]
fn created_nodes_inherit_perms_with_creator_as_owner() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    s.set_perms(
        d0,
        0,
        "/local/domain/1",
        &Perms::new(1, Access::None).with(5, Access::Read),
    )
    .unwrap();
    s.write(d1, 0, "a/b", b"v").unwrap();
    let perms = s.get_perms(d1, 0, "a/b").unwrap();
    assert_eq!(perms.to_wire(), b"n1\0r5\0");
    assert_eq!(s.owned_by(1), 3); // home, a, a/b
                                  // The privileged domain's creations keep the parent's owner.
    s.write(d0, 0, "/local/domain/1/c", b"v").unwrap();
    assert_eq!(s.get_perms(d0, 0, "/local/domain/1/c").unwrap().owner(), 1);
}

#[test]
fn set_perms_only_by_owner_and_never_gives_away() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    let d2 = common::domain(&mut s, d0, 2);
    s.write(d1, 0, "x", b"").unwrap();
    s.set_perms(
        d1,
        0,
        "x",
        &Perms::new(1, Access::None).with(2, Access::Both),
    )
    .unwrap();
    s.write(d2, 0, "/local/domain/1/x", b"from 2").unwrap();
    assert_eq!(
        s.set_perms(d2, 0, "/local/domain/1/x", &Perms::new(2, Access::Both)),
        Err(XsError::Acces)
    );
    assert_eq!(
        s.set_perms(d1, 0, "x", &Perms::new(2, Access::Both)),
        Err(XsError::Perm)
    );
    let many = (2..9).fold(Perms::new(1, Access::None), |p, d| p.with(d, Access::Read));
    assert_eq!(s.set_perms(d1, 0, "x", &many), Err(XsError::Nospc));
    s.set_perms(d0, 0, "/local/domain/1/x", &Perms::new(2, Access::None))
        .unwrap();
    assert_eq!(s.owned_by(2), 2);
}

#[test]
fn device_subtrees_as_the_toolstack_lays_them_out() {
    let (mut s, d0) = common::store();
    let (n, d, third) = (5, 1, 7);
    let driver = common::domain(&mut s, d0, d);
    let front = common::domain(&mut s, d0, n);
    let other = common::domain(&mut s, d0, third);
    let fe = "/local/domain/5/device/vbd/51712";
    let be = "/local/domain/1/backend/vbd/5/51712";
    for (node, value) in [
        ("backend", be.as_bytes()),
        ("backend-id", b"1"),
        ("state", b"1"),
    ] {
        s.write(d0, 0, &format!("{fe}/{node}"), value).unwrap();
    }
    for (node, value) in [
        ("frontend", fe.as_bytes()),
        ("frontend-id", b"5"),
        ("state", b"1"),
    ] {
        s.write(d0, 0, &format!("{be}/{node}"), value).unwrap();
    }
    let fe_perms = Perms::new(n, Access::None).with(d, Access::Read);
    let be_perms = Perms::new(d, Access::None).with(n, Access::Read);
    for node in ["", "/backend", "/backend-id", "/state"] {
        s.set_perms(d0, 0, &format!("{fe}{node}"), &fe_perms)
            .unwrap();
    }
    for node in ["", "/frontend", "/frontend-id", "/state"] {
        s.set_perms(d0, 0, &format!("{be}{node}"), &be_perms)
            .unwrap();
    }
    // The frontend reads the backend's path and writes its own nodes.
    assert_eq!(
        s.read(front, 0, "device/vbd/51712/backend").unwrap(),
        be.as_bytes()
    );
    assert_eq!(
        s.read_u32(front, 0, "device/vbd/51712/backend-id").unwrap(),
        1
    );
    s.write(front, 0, "device/vbd/51712/ring-ref", b"8")
        .unwrap();
    assert_eq!(
        s.write(front, 0, &format!("{be}/state"), b"4"),
        Err(XsError::Acces)
    );
    // The driver domain reads the frontend's nodes (new ones inherit the read entry).
    assert_eq!(s.read_u32(driver, 0, &format!("{fe}/ring-ref")).unwrap(), 8);
    assert_eq!(
        s.write(driver, 0, &format!("{fe}/state"), b"6"),
        Err(XsError::Acces)
    );
    s.write(driver, 0, &format!("{be}/sectors"), b"2048")
        .unwrap();
    assert_eq!(
        s.read_u32(front, 0, &format!("{be}/sectors")).unwrap(),
        2048
    );
    assert_eq!(
        s.read_state(driver, 0, &format!("{be}/state")).unwrap(),
        XenbusState::Initialising
    );
    // A third domain sees nothing of either.
    for path in [fe, be, &format!("{fe}/state"), &format!("{be}/state")] {
        assert_eq!(s.read(other, 0, path), Err(XsError::Acces));
        assert_eq!(s.write(other, 0, path, b"6"), Err(XsError::Acces));
        assert_eq!(s.watch(other, path, "t"), Err(XsError::Acces));
    }
}

#[test]
fn checked_readers_reject_hostile_values() {
    let (mut s, d0) = common::store();
    let d1 = common::domain(&mut s, d0, 1);
    for bad in [
        &b""[..],
        b" 1",
        b"1 ",
        b"+1",
        b"01",
        b"4294967296",
        b"1\0",
        b"0x10",
        b"-0",
    ] {
        s.write(d1, 0, "v", bad).unwrap();
        assert_eq!(
            s.read_u32(d0, 0, "/local/domain/1/v"),
            Err(XsError::Inval),
            "{bad:?}"
        );
    }
    s.write(d1, 0, "v", b"4294967295").unwrap();
    assert_eq!(s.read_u32(d0, 0, "/local/domain/1/v").unwrap(), u32::MAX);
    s.write(d1, 0, "state", b"9").unwrap();
    assert_eq!(
        s.read_state(d0, 0, "/local/domain/1/state"),
        Err(XsError::Inval)
    );
    assert_eq!(
        xenstore::checked::parse_domid(b"65536"),
        Err(XsError::Inval)
    );
}

#[test]
fn node_and_value_quotas() {
    let quotas = Quotas {
        max_nodes: 5,
        max_value: 16,
        ..Quotas::default()
    };
    let (mut s, d0) = common::store_with(Config {
        privileged: 0,
        quotas,
    });
    let d1 = common::domain(&mut s, d0, 1); // owns its home: 1 node
    assert_eq!(s.write(d1, 0, "v", &[b'x'; 17]), Err(XsError::TooBig));
    s.write(d1, 0, "v", &[b'x'; 16]).unwrap();
    s.write(d1, 0, "a/b", b"").unwrap(); // 4 nodes
    assert_eq!(s.write(d1, 0, "c/d", b""), Err(XsError::Nospc)); // would be 6
    s.write(d1, 0, "c", b"").unwrap(); // 5
    assert_eq!(s.mkdir(d1, 0, "e"), Err(XsError::Nospc));
    s.rm(d1, 0, "a").unwrap();
    s.write(d1, 0, "e", b"").unwrap();
    assert_eq!(s.owned_by(1), 4);
    // The privileged domain is not limited.
    s.write(d0, 0, "/big", &[0u8; 4000]).unwrap();
}

#[test]
fn transaction_quota_and_node_quota_at_commit() {
    let quotas = Quotas {
        max_nodes: 3,
        max_transactions: 2,
        ..Quotas::default()
    };
    let (mut s, d0) = common::store_with(Config {
        privileged: 0,
        quotas,
    });
    let d1 = common::domain(&mut s, d0, 1);
    let t1 = s.transaction_start(d1).unwrap();
    let t2 = s.transaction_start(d1).unwrap();
    assert_eq!(s.transaction_start(d1), Err(XsError::Nospc));
    s.write(d1, t1, "a", b"").unwrap();
    s.write(d1, t2, "b", b"").unwrap();
    s.transaction_end(d1, t2, true).unwrap();
    // t1 commits a node raising the count past nothing (3 of 3) but it conflicts on
    // the home node whose child list t2 changed.
    assert_eq!(s.transaction_end(d1, t1, true), Err(XsError::Again));
}
