//! Shared set-up for the host tests: a store with the control domain (0) connected and
//! a helper that builds domains' homes as the toolstack does.
#![allow(dead_code, unreachable_pub)] // reason: each test file uses a different subset
#![allow(clippy::unwrap_used)] // reason: test set-up; a failed unwrap is a failed test

use xenstore::perms::{Access, Perms};
use xenstore::{Config, ConnId, Message, Store};

/// A store with dom0 connected; returns the store and dom0's connection.
pub fn store() -> (Store, ConnId) {
    store_with(Config::default())
}

/// As [`store`] with a given configuration.
pub fn store_with(config: Config) -> (Store, ConnId) {
    let mut store = Store::new(config);
    let dom0 = store.connect(0);
    store.mkdir(dom0, 0, "/local/domain").unwrap();
    (store, dom0)
}

/// Creates `/local/domain/<domid>` owned by the domain (no access for others) and
/// connects it.
pub fn domain(store: &mut Store, dom0: ConnId, domid: u32) -> ConnId {
    let home = format!("/local/domain/{domid}");
    store.mkdir(dom0, 0, &home).unwrap();
    store
        .set_perms(dom0, 0, &home, &Perms::new(domid, Access::None))
        .unwrap();
    store.connect(domid)
}

/// The (path, token) pairs of watch events.
pub fn events(messages: &[Message]) -> Vec<(String, String)> {
    messages
        .iter()
        .filter(|m| m.kind == 15)
        .map(|m| {
            let mut parts = m.payload.split(|&b| b == 0);
            let path = String::from_utf8(parts.next().unwrap().to_vec()).unwrap();
            let token = String::from_utf8(parts.next().unwrap().to_vec()).unwrap();
            (path, token)
        })
        .collect()
}
