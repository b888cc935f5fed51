//! `ring-front` and `ring-back`: a blkif ring between two domains over a
//! granted page and an event channel, the guest side of split devices.
//!
//! The frontend zeroes a page, initializes the ring header in it, grants it
//! to the backend, allocates an unbound port for the backend and pushes
//! `count=` READ requests (id = sector = 0, 1, …), keeping the ring as full
//! as it can; the backend binds the port, maps the page and answers each
//! request (status 0, id and operation echoed). Each side sends an event only
//! when the ring says the peer asked for one, and blocks when it can make no
//! progress. [`Client`] and [`Server`] are the two loops as step functions,
//! tested on the host against each other through one page; the actions
//! around them talk to the hypervisor.

use core::fmt;

use guest_runtime::event::{self, EventLoop, Port, PortSet};
use guest_runtime::grant::{self, GrantError, GrantTable};
use guest_runtime::page::Page;
use guest_runtime::time::{self, system_time_ns};
use guest_runtime::{sched_yield, Errno, ShutdownReason, StartInfo};
use log::{error, info, warn};
use ring_protocol::blkif::{
    Blkif, BlkifRequest, BlkifResponse, Segment, TransferRequest, MAX_SEGMENTS_PER_REQUEST, OPERATION_READ, STATUS_OKAY,
};
use ring_protocol::{Backend, Frontend, RingError};

use crate::action::number;
use crate::timing::NS_PER_MS;

/// What a step says to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Something moved: step again.
    Busy,
    /// Nothing to do until the peer sends an event: block.
    Idle,
    /// All requests answered.
    Done,
}

/// Slots of a blkif ring (requests in flight at most).
const SLOTS: usize = Frontend::<Blkif>::SIZE as usize;

/// The READ request with `id` (sector `id`, one segment of a whole page
/// naming `segment_ref`; the backend moves no data).
pub fn read_request(id: u64, segment_ref: u32) -> BlkifRequest {
    let mut segments = [Segment::default(); MAX_SEGMENTS_PER_REQUEST];
    segments[0] = Segment { grant: segment_ref, first_sector: 0, last_sector: 7 };
    BlkifRequest::Read(TransferRequest { handle: 0, id, sector_number: id, segment_count: 1, segments })
}

/// What went wrong on the frontend's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The ring (a backend's bad index, a malformed response).
    Ring(RingError),
    /// Sending the event failed.
    Notify(Errno),
    /// A response to no request in flight.
    UnknownId(u64),
    /// A response with a status other than 0.
    Status {
        /// The request.
        id: u64,
        /// Its status.
        status: i16,
    },
    /// A response with another operation than the request's.
    Operation {
        /// The request.
        id: u64,
        /// The operation in the response.
        operation: u8,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Ring(error) => write!(f, "ring: {error}"),
            ClientError::Notify(errno) => write!(f, "send: result: {errno}"),
            ClientError::UnknownId(id) => write!(f, "response to id {id}, which is not in flight"),
            ClientError::Status { id, status } => write!(f, "response to id {id} has status {status}"),
            ClientError::Operation { id, operation } => write!(f, "response to id {id} has operation {operation}"),
        }
    }
}

impl From<RingError> for ClientError {
    fn from(error: RingError) -> Self {
        ClientError::Ring(error)
    }
}

/// The frontend's loop: push requests `0..count`, check every response.
#[derive(Debug)]
pub struct Client {
    count: u64,
    next_id: u64,
    completed: u64,
    in_flight: [Option<u64>; SLOTS],
    segment_ref: u32,
    notifications_sent: u64,
}

impl Client {
    /// A client for `count` requests naming `segment_ref` in their segment.
    pub fn new(count: u64, segment_ref: u32) -> Client {
        Client { count, next_id: 0, completed: 0, in_flight: [None; SLOTS], segment_ref, notifications_sent: 0 }
    }

    /// Requests answered (and checked).
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Events sent to the backend.
    pub fn notifications_sent(&self) -> u64 {
        self.notifications_sent
    }

    /// Pushes what fits, publishes (notifying if the ring says so), takes
    /// the responses there are; says whether to go on, block or stop.
    pub fn step(&mut self, ring: &mut Frontend<'_, Blkif>, notify: &mut dyn FnMut() -> Result<(), Errno>) -> Result<Progress, ClientError> {
        let mut progress = false;
        while self.next_id < self.count && !ring.is_full() {
            let slot = &mut self.in_flight[(self.next_id % SLOTS as u64) as usize];
            if slot.is_some() {
                // Its response is not in yet (the ring's free count says it
                // is, so the backend answered out of order): wait for it.
                break;
            }
            ring.push_request(&read_request(self.next_id, self.segment_ref))?;
            *slot = Some(self.next_id);
            self.next_id += 1;
            progress = true;
        }
        if ring.publish_requests()?.is_required() {
            notify().map_err(ClientError::Notify)?;
            self.notifications_sent += 1;
        }
        while let Some(response) = ring.next_response()? {
            self.check(&response)?;
            self.completed += 1;
            progress = true;
        }
        if self.completed == self.count {
            Ok(Progress::Done)
        } else if progress || ring.final_check_for_responses()? {
            Ok(Progress::Busy)
        } else {
            Ok(Progress::Idle)
        }
    }

    fn check(&mut self, response: &BlkifResponse) -> Result<(), ClientError> {
        let id = response.id;
        let slot = &mut self.in_flight[(id % SLOTS as u64) as usize];
        if *slot != Some(id) {
            return Err(ClientError::UnknownId(id));
        }
        *slot = None;
        if response.status != STATUS_OKAY {
            return Err(ClientError::Status { id, status: response.status });
        }
        if response.operation != OPERATION_READ {
            return Err(ClientError::Operation { id, operation: response.operation });
        }
        Ok(())
    }
}

/// What went wrong on the backend's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerError {
    /// The ring (the frontend's bad index).
    Ring(RingError),
    /// Sending the event failed.
    Notify(Errno),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Ring(error) => write!(f, "ring: {error}"),
            ServerError::Notify(errno) => write!(f, "send: result: {errno}"),
        }
    }
}

impl From<RingError> for ServerError {
    fn from(error: RingError) -> Self {
        ServerError::Ring(error)
    }
}

/// The backend's loop: answer `count` requests, status 0.
#[derive(Debug)]
pub struct Server {
    count: u64,
    served: u64,
    malformed: u64,
    notifications_sent: u64,
}

impl Server {
    /// A server for `count` requests.
    pub fn new(count: u64) -> Server {
        Server { count, served: 0, malformed: 0, notifications_sent: 0 }
    }

    /// Requests answered.
    pub fn served(&self) -> u64 {
        self.served
    }

    /// Requests that did not decode (answered with an error status).
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// Events sent to the frontend.
    pub fn notifications_sent(&self) -> u64 {
        self.notifications_sent
    }

    /// Answers the requests there are, publishes (notifying if the ring
    /// says so); says whether to go on, block or stop.
    pub fn step(&mut self, ring: &mut Backend<'_, Blkif>, notify: &mut dyn FnMut() -> Result<(), Errno>) -> Result<Progress, ServerError> {
        let mut progress = false;
        while self.served < self.count {
            let response = match ring.next_request() {
                Ok(Some(request)) => BlkifResponse::to(&request, STATUS_OKAY),
                Ok(None) => break,
                Err(RingError::Malformed(malformed)) => {
                    self.malformed += 1;
                    BlkifResponse::for_malformed(&malformed)
                }
                Err(error) => return Err(error.into()),
            };
            ring.push_response(&response)?;
            self.served += 1;
            progress = true;
        }
        if ring.publish_responses()?.is_required() {
            notify().map_err(ServerError::Notify)?;
            self.notifications_sent += 1;
        }
        if self.served == self.count {
            Ok(Progress::Done)
        } else if progress || ring.final_check_for_requests()? {
            Ok(Progress::Busy)
        } else {
            Ok(Progress::Idle)
        }
    }
}

/// Calls `attempt` up to `tries` times, yielding between tries; returns the
/// first success with the tries it took, or the last failure.
pub fn retrying<T, E>(tries: u64, mut attempt: impl FnMut() -> Result<T, E>) -> Result<(T, u64), E> {
    let mut tried = 1;
    loop {
        match attempt() {
            Ok(value) => return Ok((value, tried)),
            Err(error) if tried >= tries => return Err(error),
            Err(_) => {
                let _ = sched_yield();
                tried += 1;
            }
        }
    }
}

/// Blocks until `port` fires, or fails after `timeout_ms` of system time
/// (without a clock, waits without a limit). Returns whether it fired.
pub fn wait(events: &mut EventLoop<'_>, port: Port, timeout_ms: u64) -> Result<bool, Errno> {
    if time::clock_running() {
        let deadline = system_time_ns().saturating_add(timeout_ms * NS_PER_MS);
        events.wait_until(&PortSet::of(port), deadline).map(|fired| !fired.is_empty())
    } else {
        events.wait_for_port(port).map(|()| true)
    }
}

/// `key=` that must be there.
pub fn required(info: &StartInfo, what: &str, key: &str, max: u64) -> Option<u64> {
    if guest_runtime::command_line::find(info.command_line(), key).is_none() {
        error!("{what}: {key}= is required");
        return None;
    }
    optional(info, key, 0, 0, max)
}

/// `key=` with a default.
pub fn optional(info: &StartInfo, key: &str, default: u64, min: u64, max: u64) -> Option<u64> {
    number(info.command_line(), key, default, min, max).map_err(|problem| error!("{problem}")).ok()
}

/// The largest domain id (below `DOMID_FIRST_RESERVED`).
pub const MAX_DOMID: u64 = 0x7fef;
/// The largest port of the 2-level ABI.
pub const MAX_PORT: u64 = 4095;
/// The first grant ref tests may use (refs 0 and 1 are the console's and
/// the store's; a few more are left alone).
pub const FIRST_TEST_REF: u64 = 8;
/// The largest ref of the one-page table.
pub const MAX_REF: u64 = 511;
/// Tries (with a yield between) to bind or map before giving up.
pub const DEFAULT_TRIES: u64 = 1000;
/// Tries (with a yield between) to revoke the grant after the run.
pub const REVOKE_TRIES: u64 = 100_000;
/// How long to wait for the peer's event before giving up.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// Parsed and checked arguments, plus the two pieces of the machine.
struct Machine {
    grants: GrantTable<'static>,
    events: EventLoop<'static>,
}

fn machine(what: &str) -> Option<Machine> {
    let Some(grants) = GrantTable::this_domain() else {
        error!("{what}: no grant table page");
        return None;
    };
    let Some(events) = EventLoop::this_domain() else {
        error!("{what}: no shared-info page");
        return None;
    };
    Some(Machine { grants, events })
}

/// `action=ring-front back=<domid> count=<N> ref=<gref> timeout_ms=<ms>`.
pub fn ring_front(info: &StartInfo) -> ShutdownReason {
    let (Some(back), Some(count), Some(reference), Some(timeout_ms)) = (
        required(info, "ring-front", "back", MAX_DOMID),
        optional(info, "count", 10_000, 1, 1_000_000_000),
        optional(info, "ref", FIRST_TEST_REF, 2, MAX_REF),
        optional(info, "timeout_ms", DEFAULT_TIMEOUT_MS, 1, 3_600_000),
    ) else {
        return ShutdownReason::Crash;
    };
    let (back, reference) = (back as u16, reference as u32);
    let Some(Machine { grants, mut events }) = machine("ring-front") else {
        return ShutdownReason::Crash;
    };
    // A fresh page is zero: nothing of ours leaks to the backend.
    let page = Page::new();
    let Some(pfn) = page.pfn() else {
        error!("ring-front: the ring page at {:#x} is not a frame of our RAM", page.address());
        return ShutdownReason::Crash;
    };
    // The header first, so the backend never sees a page without one.
    let mut ring = Frontend::<Blkif>::initialize(page.shared());
    if let Err(problem) = grants.grant_access(reference, back, pfn, false) {
        error!("ring-front: grant ref {reference} to d{back}: {problem}");
        return ShutdownReason::Crash;
    }
    let port = match event::alloc_unbound(back) {
        Ok(port) => port,
        Err(errno) => {
            error!("ring-front: alloc_unbound for d{back}: result: {errno}");
            return revoke_and_stop(&grants, reference, None, page, ShutdownReason::Crash);
        }
    };
    info!("ring-front: port {port} ref {reference} granted to d{back}");
    let mut client = Client::new(count, reference);
    let started = guest_runtime::timestamp_counter();
    let mut received = 0u64;
    let outcome = loop {
        match client.step(&mut ring, &mut || event::send(port)) {
            Ok(Progress::Done) => break ShutdownReason::Poweroff,
            Ok(Progress::Busy) => {}
            Ok(Progress::Idle) => match wait(&mut events, port, timeout_ms) {
                Ok(true) => received += 1,
                Ok(false) => {
                    error!("ring-front: no event from d{back} for {timeout_ms} ms after {} round trips", client.completed());
                    break ShutdownReason::Crash;
                }
                Err(errno) => {
                    error!("ring-front: block: result: {errno}");
                    break ShutdownReason::Crash;
                }
            },
            Err(problem) => {
                error!("ring-front: {problem} after {} round trips", client.completed());
                break ShutdownReason::Crash;
            }
        }
    };
    if outcome == ShutdownReason::Poweroff {
        info!("ring-front: {count} round trips, {} notifications sent, {received} received", client.notifications_sent());
        let cycles = guest_runtime::timestamp_counter().wrapping_sub(started);
        info!("bench: ring {count} round trips in {cycles} cycles");
    }
    revoke_and_stop(&grants, reference, Some(port), page, outcome)
}

/// Revokes `reference` (retrying while the backend still maps it), closes
/// `port`, and stops with `outcome` (crashed if the grant stays busy: then
/// the page is never freed).
fn revoke_and_stop(grants: &GrantTable<'_>, reference: u32, port: Option<Port>, page: Page, outcome: ShutdownReason) -> ShutdownReason {
    let revoked = retrying(REVOKE_TRIES, || match grants.end_access(reference) {
        Err(GrantError::Busy(flags)) => Err(GrantError::Busy(flags)),
        other => Ok(other),
    });
    let outcome = match revoked {
        Ok((Ok(()), tries)) => {
            info!("ring-front: revoked ref {reference}");
            log::debug!("ring-front: revocation took {tries} tries");
            outcome
        }
        Ok((Err(problem), _)) | Err(problem) => {
            error!("ring-front: ref {reference} not revoked after {REVOKE_TRIES} tries: {problem}");
            // The backend may still write it: never hand it to the heap again.
            core::mem::forget(page);
            ShutdownReason::Crash
        }
    };
    if let Some(port) = port {
        if let Err(errno) = event::close(port) {
            warn!("ring-front: close port {port}: result: {errno}");
        }
    }
    outcome
}

/// `action=ring-back front=<domid> port=<p> ref=<r> count=<N> tries=<n> timeout_ms=<ms>`.
pub fn ring_back(info: &StartInfo) -> ShutdownReason {
    let (Some(front), Some(remote_port), Some(reference), Some(count), Some(tries), Some(timeout_ms)) = (
        required(info, "ring-back", "front", MAX_DOMID),
        required(info, "ring-back", "port", MAX_PORT),
        optional(info, "ref", FIRST_TEST_REF, 0, MAX_REF),
        optional(info, "count", 10_000, 1, 1_000_000_000),
        optional(info, "tries", DEFAULT_TRIES, 1, 1_000_000_000),
        optional(info, "timeout_ms", DEFAULT_TIMEOUT_MS, 1, 3_600_000),
    ) else {
        return ShutdownReason::Crash;
    };
    let (front, remote_port, reference) = (front as u16, Port(remote_port as u32), reference as u32);
    let Some(mut events) = EventLoop::this_domain() else {
        error!("ring-back: no shared-info page");
        return ShutdownReason::Crash;
    };
    let port = match retrying(tries, || event::bind_interdomain(front, remote_port)) {
        Ok((port, tried)) => {
            info!("ring-back: bound port {port} to d{front} port {remote_port} (try {tried})");
            port
        }
        Err(errno) => {
            error!("ring-back: bind d{front} port {remote_port}: result: {errno} after {tries} tries");
            return ShutdownReason::Crash;
        }
    };
    let mapping = match retrying(tries, || grant::map(front, reference, false)) {
        Ok((mapping, _)) => mapping,
        Err(failure) => {
            error!("ring-back: map d{front} ref {reference}: {failure} after {tries} tries");
            let _ = event::close(port);
            return ShutdownReason::Crash;
        }
    };
    let mut server = Server::new(count);
    let mut received = 0u64;
    let outcome = match mapping.page() {
        None => {
            error!("ring-back: the mapping at {:#x} is not a page of the grant window", mapping.address());
            ShutdownReason::Crash
        }
        Some(page) => {
            let mut ring = Backend::<Blkif>::attach(page);
            loop {
                match server.step(&mut ring, &mut || event::send(port)) {
                    Ok(Progress::Done) => break ShutdownReason::Poweroff,
                    Ok(Progress::Busy) => {}
                    Ok(Progress::Idle) => match wait(&mut events, port, timeout_ms) {
                        Ok(true) => received += 1,
                        Ok(false) => {
                            error!("ring-back: no event from d{front} for {timeout_ms} ms after {} requests", server.served());
                            break ShutdownReason::Crash;
                        }
                        Err(errno) => {
                            error!("ring-back: block: result: {errno}");
                            break ShutdownReason::Crash;
                        }
                    },
                    Err(problem) => {
                        error!("ring-back: {problem} after {} requests", server.served());
                        break ShutdownReason::Crash;
                    }
                }
            }
        }
    };
    let outcome = match grant::unmap(mapping) {
        Ok(()) => outcome,
        Err((mapping, failure)) => {
            error!("ring-back: unmap {:#x} (handle {}): {failure}", mapping.address(), mapping.handle());
            ShutdownReason::Crash
        }
    };
    if let Err(errno) = event::close(port) {
        warn!("ring-back: close port {port}: result: {errno}");
    }
    if outcome == ShutdownReason::Poweroff {
        info!("ring-back: served {count} requests, {} notifications sent", server.notifications_sent());
        info!("ring-back: {received} notifications received, {} malformed requests", server.malformed());
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use ring_protocol::{PageBuffer, SharedPage};

    /// Runs a client and a server through one page on one thread, each
    /// running only while busy or after an event from the other (as if it
    /// blocked in between). A lost wake-up shows as both idle with no event
    /// pending. Returns the client, the server, and how often each was
    /// woken by an event.
    fn run(count: u64) -> (Client, Server, u64, u64) {
        let buffer = PageBuffer::new();
        let mut front = Frontend::<Blkif>::initialize(SharedPage::new(&buffer));
        let mut back = Backend::<Blkif>::attach(SharedPage::new(&buffer));
        let mut client = Client::new(count, 8);
        let mut server = Server::new(count);
        let to_server = Cell::new(false);
        let to_client = Cell::new(false);
        let (mut client_state, mut server_state) = (Progress::Busy, Progress::Busy);
        let (mut client_wakeups, mut server_wakeups) = (0, 0);
        for _ in 0..10 * count + 100 {
            if client_state == Progress::Idle && to_client.replace(false) {
                client_state = Progress::Busy;
                client_wakeups += 1;
            }
            if client_state == Progress::Busy {
                client_state = client.step(&mut front, &mut || {
                    to_server.set(true);
                    Ok(())
                }).unwrap();
            }
            if server_state == Progress::Idle && to_server.replace(false) {
                server_state = Progress::Busy;
                server_wakeups += 1;
            }
            if server_state == Progress::Busy {
                server_state = server.step(&mut back, &mut || {
                    to_client.set(true);
                    Ok(())
                }).unwrap();
            }
            if client_state == Progress::Done && server_state == Progress::Done {
                return (client, server, client_wakeups, server_wakeups);
            }
            assert!(
                client_state == Progress::Busy || server_state == Progress::Busy || to_client.get() || to_server.get(),
                "lost wake-up: client {client_state:?} server {server_state:?} after {} of {count}",
                client.completed()
            );
        }
        panic!("no end: client {client:?} server {server:?}");
    }

    #[test]
    fn every_request_is_answered_with_few_events() {
        for count in [1, 2, 31, 32, 33, 1000] {
            let (client, server, client_wakeups, server_wakeups) = run(count);
            assert_eq!(client.completed(), count);
            assert_eq!(server.served(), count);
            assert_eq!(server.malformed(), 0);
            assert!(client.notifications_sent() <= count && server.notifications_sent() <= count);
            assert!(client_wakeups <= server.notifications_sent() && server_wakeups <= client.notifications_sent());
        }
        let (client, server, _, _) = run(10_000);
        assert!(client.notifications_sent() < 10_000 / 8, "batched: {}", client.notifications_sent());
        assert!(server.notifications_sent() < 10_000 / 8, "batched: {}", server.notifications_sent());
    }

    #[test]
    fn the_client_checks_responses() {
        let mut client = Client::new(4, 8);
        client.in_flight[1] = Some(1);
        let ok = BlkifResponse { id: 1, operation: OPERATION_READ, status: 0 };
        assert_eq!(client.check(&ok), Ok(()));
        assert_eq!(client.check(&ok), Err(ClientError::UnknownId(1)), "answered twice");
        client.in_flight[2] = Some(2);
        let bad = BlkifResponse { id: 2, operation: OPERATION_READ, status: -1 };
        assert_eq!(client.check(&bad), Err(ClientError::Status { id: 2, status: -1 }));
        client.in_flight[3] = Some(3);
        let bad = BlkifResponse { id: 3, operation: 1, status: 0 };
        assert_eq!(client.check(&bad), Err(ClientError::Operation { id: 3, operation: 1 }));
        assert_eq!(client.check(&BlkifResponse { id: 3 + SLOTS as u64, operation: 0, status: 0 }), Err(ClientError::UnknownId(35)));
    }

    #[test]
    fn requests_are_reads_of_their_id() {
        let BlkifRequest::Read(request) = read_request(77, 9) else { panic!("not a read") };
        assert_eq!((request.id, request.sector_number, request.segment_count), (77, 77, 1));
        assert_eq!(request.used_segments(), &[Segment { grant: 9, first_sector: 0, last_sector: 7 }]);
    }

    #[test]
    fn retries_until_success_or_the_limit() {
        let calls = Cell::new(0);
        let result = retrying(5, || {
            calls.set(calls.get() + 1);
            if calls.get() < 3 { Err(calls.get()) } else { Ok("done") }
        });
        assert_eq!(result, Ok(("done", 3)));
        calls.set(0);
        let result: Result<((), u64), u32> = retrying(4, || {
            calls.set(calls.get() + 1);
            Err(calls.get())
        });
        assert_eq!(result, Err(4));
    }
}
