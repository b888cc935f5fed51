//! The client against the real store library over a real store page: the
//! fake [`Wait`] runs one service pass of the store each time the client
//! notifies or waits, as the control domain's agent would.

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;
use core::cell::RefCell;

use ring_protocol::{PageBuffer, SharedPage};
use xenstore::ring::{serve, RingConnection};
use xenstore::{Access, Config, Perms, Store, XsError};

use super::*;

/// The store, one ring per domain (pages leaked: a test's lifetime), and a
/// clock that moves 1 ms per wait.
struct Machine {
    store: Store,
    admin: xenstore::ConnId,
    rings: Vec<RingConnection>,
    pages: Vec<&'static PageBuffer>,
    now_ns: u64,
    /// When false, the store answers nothing.
    serving: bool,
}

impl Machine {
    fn new(domains: &[u32]) -> Machine {
        let mut store = Store::new(Config::default());
        let admin = store.connect(0);
        let mut rings = Vec::new();
        let mut pages = Vec::new();
        for &domid in domains {
            let home = format!("/local/domain/{domid}");
            store.mkdir(admin, 0, &home).unwrap();
            store.set_perms(admin, 0, &home, &Perms::new(domid, Access::None)).unwrap();
            rings.push(RingConnection::new(store.introduce_domain(domid)));
            let page: &'static PageBuffer = Box::leak(Box::new(PageBuffer::new()));
            pages.push(page);
        }
        Machine { store, admin, rings, pages, now_ns: 0, serving: true }
    }

    fn pass(&mut self) {
        if !self.serving {
            return;
        }
        let Machine { store, rings, pages, .. } = self;
        let conns: Vec<_> = rings.iter().map(|ring| ring.conn).collect();
        serve(
            store,
            rings,
            4,
            |conn| conns.iter().position(|&c| c == conn).map(|index| SharedPage::new(pages[index])),
            |conn, error| panic!("connection {conn:?} failed: {error:?}"),
        );
    }
}

struct Waiter<'m> {
    machine: &'m RefCell<Machine>,
}

impl Wait for Waiter<'_> {
    fn notify(&mut self) -> Result<(), StoreError> {
        self.machine.borrow_mut().pass();
        Ok(())
    }

    fn wait(&mut self, _deadline_ns: u64) -> Result<(), StoreError> {
        let mut machine = self.machine.borrow_mut();
        machine.now_ns += 1_000_000;
        machine.pass();
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.machine.borrow().now_ns
    }
}

fn client(machine: &RefCell<Machine>, index: usize) -> StoreConnection<'static> {
    let page = machine.borrow().pages[index];
    StoreConnection::new(SharedPage::new(page)).unwrap()
}

#[test]
fn write_read_directory_and_remove() {
    let machine = RefCell::new(Machine::new(&[5]));
    let mut store = client(&machine, 0);
    let mut wait = Waiter { machine: &machine };
    store.write(&mut wait, 0, "data/greeting", b"hello").unwrap();
    assert_eq!(store.read(&mut wait, 0, "/local/domain/5/data/greeting").unwrap(), b"hello");
    store.mkdir(&mut wait, 0, "data/empty").unwrap();
    assert_eq!(store.directory(&mut wait, 0, "data").unwrap(), ["empty", "greeting"]);
    store.rm(&mut wait, 0, "data/greeting").unwrap();
    assert_eq!(store.read(&mut wait, 0, "data/greeting"), Err(StoreError::Store(XsError::Noent)));
}

#[test]
fn another_domains_nodes_are_refused() {
    let machine = RefCell::new(Machine::new(&[5, 6]));
    let mut five = client(&machine, 0);
    let mut six = client(&machine, 1);
    let mut wait = Waiter { machine: &machine };
    five.write(&mut wait, 0, "secret", b"pin").unwrap();
    assert_eq!(six.read(&mut wait, 0, "/local/domain/5/secret"), Err(StoreError::Store(XsError::Acces)));
    assert_eq!(six.write(&mut wait, 0, "/local/domain/5/secret", b"x"), Err(StoreError::Store(XsError::Acces)));
    assert_eq!(six.watch(&mut wait, "/local/domain/5/secret", "t"), Err(StoreError::Store(XsError::Acces)));
}

#[test]
fn watches_fire_and_states_are_waited_for() {
    let machine = RefCell::new(Machine::new(&[5, 6]));
    let mut five = client(&machine, 0);
    let mut wait = Waiter { machine: &machine };
    five.write_state(&mut wait, "device/dummy/0/state", XenbusState::Initialising).unwrap();
    // Let domain 6 read it, as the toolstack does for a backend.
    {
        let mut m = machine.borrow_mut();
        let admin = m.admin;
        m.store
            .set_perms(admin, 0, "/local/domain/5/device/dummy/0/state", &Perms::new(5, Access::None).with(6, Access::Read))
            .unwrap();
    }
    let mut six = client(&machine, 1);
    let path = "/local/domain/5/device/dummy/0/state";
    six.watch(&mut wait, path, "front").unwrap();
    // The watch fires once when set.
    let first = six.next_event(&mut wait, 10_000_000).unwrap().unwrap();
    assert_eq!((first.path.as_str(), first.token.as_str()), (path, "front"));
    assert!(!six.has_queued_events());
    five.write_state(&mut wait, "device/dummy/0/state", XenbusState::Connected).unwrap();
    // A call of six's reads the event off the ring with its reply: queued.
    assert!(six.read(&mut wait, 0, path).is_ok());
    assert!(six.has_queued_events(), "the event came with the read's reply");
    let state = crate::xenbus::wait_for_state(&mut six, &mut wait, path, 50_000_000, |s| s == XenbusState::Connected).unwrap();
    assert_eq!(state, XenbusState::Connected);
    // Nothing more comes: the wait times out.
    let timeout = crate::xenbus::wait_for_state(&mut six, &mut wait, path, 60_000_000, |s| s == XenbusState::Closed);
    assert_eq!(timeout, Err(StoreError::Timeout));
}

#[test]
fn transactions_commit() {
    let machine = RefCell::new(Machine::new(&[5]));
    let mut five = client(&machine, 0);
    let mut wait = Waiter { machine: &machine };
    let tx = five.transaction_start(&mut wait).unwrap();
    five.write(&mut wait, tx, "ring-ref", b"8").unwrap();
    five.write(&mut wait, tx, "event-channel", b"3").unwrap();
    assert_eq!(five.read(&mut wait, 0, "ring-ref"), Err(StoreError::Store(XsError::Noent)));
    five.transaction_end(&mut wait, tx, true).unwrap();
    assert_eq!(five.read_u32(&mut wait, 0, "ring-ref").unwrap(), 8);
    assert_eq!(five.read_u32(&mut wait, 0, "event-channel").unwrap(), 3);
}

#[test]
fn a_silent_store_times_out_and_an_oversized_request_is_refused() {
    let machine = RefCell::new(Machine::new(&[5]));
    let mut five = client(&machine, 0);
    let mut wait = Waiter { machine: &machine };
    machine.borrow_mut().serving = false;
    five.set_timeout_ns(20_000_000);
    assert_eq!(five.read(&mut wait, 0, "x"), Err(StoreError::Timeout));
    let huge = alloc::vec![b'a'; 5000];
    assert_eq!(five.write(&mut wait, 0, "x", &huge), Err(StoreError::TooLarge));
}

#[test]
fn a_stray_reply_is_an_error_not_a_mixup() {
    let machine = RefCell::new(Machine::new(&[5]));
    let page = machine.borrow().pages[0];
    // A reply nobody asked for, written by a hostile store.
    let mut server = ring_protocol::store::StoreServer::attach(SharedPage::new(page)).unwrap();
    let stray = xenstore::Message::new(xenstore::MsgType::Read, 77, 0, b"forged".to_vec()).encode();
    server.responses.write(&stray).unwrap();
    let mut five = client(&machine, 0);
    let mut wait = Waiter { machine: &machine };
    assert_eq!(five.read(&mut wait, 0, "x"), Err(StoreError::Unexpected));
}

#[test]
fn device_paths_are_checked_against_what_they_must_be() {
    let machine = RefCell::new(Machine::new(&[5]));
    let mut five = client(&machine, 0);
    let mut wait = Waiter { machine: &machine };
    five.write(&mut wait, 0, "device/vbd/768/backend-id", b"1").unwrap();
    five.write(&mut wait, 0, "device/vbd/768/backend", b"/local/domain/1/backend/vbd/5/768").unwrap();
    let paths = crate::xenbus::DevicePaths::discover_backend(&mut five, &mut wait, 5, "vbd", 768).unwrap();
    assert_eq!(paths.backend_state(), "/local/domain/1/backend/vbd/5/768/state");
    // A backend path pointing elsewhere (XSA-175 class) is refused.
    five.write(&mut wait, 0, "device/vbd/768/backend", b"/local/domain/0/backend/vbd/5/768").unwrap();
    assert_eq!(
        crate::xenbus::DevicePaths::discover_backend(&mut five, &mut wait, 5, "vbd", 768),
        Err(StoreError::Store(XsError::Inval))
    );
    five.write(&mut wait, 0, "device/vbd/768/backend-id", b"01").unwrap();
    assert_eq!(
        crate::xenbus::DevicePaths::discover_backend(&mut five, &mut wait, 5, "vbd", 768),
        Err(StoreError::Store(XsError::Inval))
    );
}

#[test]
fn pipelined_requests_are_all_answered() {
    let machine = RefCell::new(Machine::new(&[5]));
    let mut five = client(&machine, 0);
    let mut wait = Waiter { machine: &machine };
    five.write(&mut wait, 0, "x", b"1").unwrap();
    let report = five
        .pipeline(&mut wait, 300, |index| {
            let path: &[u8] = if index % 3 == 0 { b"missing\0" } else { b"x\0" };
            (xenstore::MsgType::Read, path.to_vec())
        })
        .unwrap();
    assert_eq!(report, Pipelined { replies: 300, errors: 100 });
    // The connection is still in step afterwards.
    assert_eq!(five.read(&mut wait, 0, "x").unwrap(), b"1");
}
