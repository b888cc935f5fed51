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
    /// Per domain: whether its store port is raised (a pass wrote to its
    /// ring or took from it, as the agent's `event::send` after a pass).
    raised: Vec<bool>,
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
        let raised = alloc::vec![false; domains.len()];
        Machine { store, admin, rings, pages, now_ns: 0, serving: true, raised }
    }

    fn pass(&mut self) {
        if !self.serving {
            return;
        }
        let Machine { store, rings, pages, raised, .. } = self;
        let conns: Vec<_> = rings.iter().map(|ring| ring.conn).collect();
        let passes = serve(
            store,
            rings,
            4,
            |conn| conns.iter().position(|&c| c == conn).map(|index| SharedPage::new(pages[index])),
            |conn, error| panic!("connection {conn:?} failed: {error:?}"),
        );
        for (raised, pass) in raised.iter_mut().zip(passes) {
            *raised |= pass.notify();
        }
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

    fn set_unread(&mut self, _unread: bool) {}
}

/// Domain `index`'s store port as [`EventWait`] sees it, for the tests of
/// what a wait leaves behind: the store runs only while the domain sleeps
/// (as on another CPU, answering after the kick), a wait takes the port's
/// notification (the event loop's scan), and the client's marks of unread
/// news are kept as [`EventWait`] keeps them in the loop's fired set.
struct PortWaiter<'m> {
    machine: &'m RefCell<Machine>,
    index: usize,
    /// What the client last said with [`Wait::set_unread`].
    marked: bool,
}

impl PortWaiter<'_> {
    /// Whether a wait on the port now would sleep: nothing raised it since
    /// the last wait took it, and the client marked nothing unread.
    fn would_sleep(&self) -> bool {
        !self.marked && !self.machine.borrow().raised[self.index]
    }
}

impl Wait for PortWaiter<'_> {
    fn notify(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn wait(&mut self, _deadline_ns: u64) -> Result<(), StoreError> {
        let sleeps = self.would_sleep();
        let mut machine = self.machine.borrow_mut();
        machine.now_ns += 1_000_000;
        if sleeps {
            machine.pass();
        }
        machine.raised[self.index] = false;
        self.marked = false;
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.machine.borrow().now_ns
    }

    fn set_unread(&mut self, unread: bool) {
        self.marked = unread;
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

/// The dummy device's state node of domain 5, readable by 6.
const STATE: &str = "/local/domain/5/device/dummy/0/state";

/// Domains 5 and 6; 6 may read [`STATE`] (Initialising).
fn pair() -> RefCell<Machine> {
    let machine = RefCell::new(Machine::new(&[5, 6]));
    {
        let mut m = machine.borrow_mut();
        let admin = m.admin;
        m.store.write(admin, 0, STATE, b"1").unwrap();
        m.store.set_perms(admin, 0, STATE, &Perms::new(5, Access::None).with(6, Access::Read)).unwrap();
    }
    machine
}

/// Puts domain 5's write of [`STATE`] (Connected) on its ring, unserved.
fn five_writes_the_state(machine: &RefCell<Machine>) {
    let page = machine.borrow().pages[0];
    let mut five = ring_protocol::store::StoreClient::attach(SharedPage::new(page)).unwrap();
    let request = xenstore::Message::new(xenstore::MsgType::Write, 1, 0, b"device/dummy/0/state\x004".to_vec()).encode();
    assert_eq!(five.requests.write(&request), Ok(request.len()));
}

#[test]
fn a_watchs_first_event_behind_its_reply_keeps_the_port_fired() {
    let machine = pair();
    let mut six = client(&machine, 1);
    let mut wait = PortWaiter { machine: &machine, index: 1, marked: false };
    // The store fires a watch once when set, in the round that answers it:
    // the reply first, the event behind it, one notification for both.
    six.watch(&mut wait, STATE, "front").unwrap();
    assert!(!six.has_queued_events(), "the event is still on the ring");
    assert!(!wait.would_sleep(), "the watch's own event must wake the next wait");
    let first = six.next_event(&mut wait, 0).unwrap().unwrap();
    assert_eq!((first.path.as_str(), first.token.as_str()), (STATE, "front"));
    assert_eq!(six.next_event(&mut wait, 0), Ok(None));
    assert!(wait.would_sleep(), "all read: the port is not kept fired");
}

#[test]
fn a_watch_event_behind_a_reply_keeps_the_port_fired() {
    let machine = pair();
    let mut six = client(&machine, 1);
    let mut wait = PortWaiter { machine: &machine, index: 1, marked: false };
    six.watch(&mut wait, STATE, "front").unwrap();
    assert!(six.next_event(&mut wait, 0).unwrap().is_some());
    assert!(wait.would_sleep());
    // Domain 5's write waits on its ring when 6's read comes (the driver
    // stepping a device while its frontend answers): one round serves
    // both, and 6's ring gets the read's reply, then the watch event.
    five_writes_the_state(&machine);
    assert_eq!(six.read(&mut wait, 0, STATE).unwrap(), b"4", "the write served first, in the same round");
    assert!(!six.has_queued_events(), "the event is still on the ring");
    assert!(!wait.would_sleep(), "the event behind the reply must wake the next wait");
    let event = six.next_event(&mut wait, 0).unwrap().unwrap();
    assert_eq!(event.path, STATE);
    assert_eq!(six.next_event(&mut wait, 0), Ok(None));
    assert!(wait.would_sleep());
}

#[test]
fn queued_watch_events_keep_the_port_fired_until_all_are_taken() {
    let machine = pair();
    let mut six = client(&machine, 1);
    let mut wait = PortWaiter { machine: &machine, index: 1, marked: false };
    six.watch(&mut wait, STATE, "front").unwrap();
    assert_eq!(six.next_event(&mut wait, 0).map(|event| event.is_some()), Ok(true));
    // Two writes served in passes of their own, before 6's read: their
    // events come first and its read queues them.
    for _ in 0..2 {
        five_writes_the_state(&machine);
        machine.borrow_mut().pass();
    }
    assert_eq!(six.read(&mut wait, 0, STATE).unwrap(), b"4");
    assert!(six.has_queued_events());
    assert!(!wait.would_sleep());
    assert!(six.next_event(&mut wait, 0).unwrap().is_some());
    assert!(!wait.would_sleep(), "one event is left");
    assert!(six.next_event(&mut wait, 0).unwrap().is_some());
    assert!(wait.would_sleep());
}

#[test]
fn the_event_wait_keeps_the_store_port_fired_while_news_is_unread() {
    use core::sync::atomic::{AtomicU64, AtomicU8};
    let upcall_pending = AtomicU8::new(0);
    let pending_selector = AtomicU64::new(0);
    let pending = [const { AtomicU64::new(0) }; crate::event::WORDS];
    let mask = [const { AtomicU64::new(0) }; crate::event::WORDS];
    let bitmaps = crate::event::EventBitmaps { upcall_pending: &upcall_pending, pending_selector: &pending_selector, pending: &pending, mask: &mask };
    let mut events = EventLoop::over(bitmaps);
    let mut wait = EventWait { port: Port(4), events: &mut events };
    wait.set_unread(true);
    assert!(wait.events.fired().contains(Port(4)));
    wait.set_unread(false);
    assert!(wait.events.fired().is_empty());
}

/// A store that runs only when kicked, as the control domain's agent does:
/// it sleeps on the domains' store ports and serves a pass when one fires.
/// The client's wait runs the pass its notifications asked for, if any.
struct KickedWaiter<'m> {
    machine: &'m RefCell<Machine>,
    kicked: bool,
}

impl Wait for KickedWaiter<'_> {
    fn notify(&mut self) -> Result<(), StoreError> {
        self.kicked = true;
        Ok(())
    }

    fn wait(&mut self, _deadline_ns: u64) -> Result<(), StoreError> {
        let mut machine = self.machine.borrow_mut();
        machine.now_ns += 1_000_000;
        if core::mem::take(&mut self.kicked) {
            machine.pass();
        }
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.machine.borrow().now_ns
    }

    fn set_unread(&mut self, _unread: bool) {}
}

#[test]
fn a_reply_longer_than_the_ring_arrives_whole() {
    let machine = RefCell::new(Machine::new(&[5]));
    let mut five = client(&machine, 0);
    let mut wait = KickedWaiter { machine: &machine, kicked: false };
    five.set_timeout_ns(50_000_000);
    // Twice the ring (the store's largest value): the store writes a
    // ring's worth and waits for the client to say it made room.
    let value: Vec<u8> = (0..2000u32).map(|index| b'a' + (index % 26) as u8).collect();
    five.write(&mut wait, 0, "big", &value).unwrap();
    assert_eq!(five.read(&mut wait, 0, "big").unwrap(), value);
    assert_eq!(five.read(&mut wait, 0, "big").unwrap(), value, "and again: nothing left over");
}

#[test]
fn watch_events_longer_than_the_ring_all_arrive() {
    let machine = RefCell::new(Machine::new(&[5]));
    let mut five = client(&machine, 0);
    let mut wait = KickedWaiter { machine: &machine, kicked: false };
    five.watch(&mut wait, "/local/domain/5/data", "t").unwrap();
    assert!(five.next_event(&mut wait, 0).unwrap().is_some(), "the watch's first event");
    assert_eq!(five.next_event(&mut wait, 0), Ok(None));
    // Forty changes in one store pass, about 2 KiB of events: more than the
    // response ring holds.
    {
        let mut m = machine.borrow_mut();
        let admin = m.admin;
        for index in 0..40 {
            let path = format!("/local/domain/5/data/a-rather-long-node-name-{index:02}");
            m.store.write(admin, 0, &path, b"x").unwrap();
        }
        m.pass();
    }
    let deadline = machine.borrow().now_ns + 50_000_000;
    let mut seen = Vec::new();
    while let Some(event) = five.next_event(&mut wait, deadline).unwrap() {
        seen.push(event.path);
    }
    assert_eq!(seen.len(), 40, "every change's event, none stuck in the store: {seen:?}");
    assert!(seen[39].ends_with("-39"));
}
