//! The split-device handshake with a dummy device, both halves and an
//! attacker, over the real store (the control domain's agent):
//!
//! - `dummy-back front=F [id=0] [rounds=2]`: the backend. Each round it
//!   goes InitWait, waits for the frontend's Initialised, maps its
//!   `ring-ref` and binds its `event-channel`, goes Connected and answers
//!   one `ping` with `pong` over the page (a byte pipe in the store-ring
//!   layout). Between rounds it closes (Closing, waits for the frontend's
//!   Closed, Closed) and restarts its state machine (Initialising,
//!   InitWait); after the last it waits for the frontend to close.
//! - `dummy-front [id=0] [rounds=2]`: the frontend: finds its backend in
//!   the store (checked), and each round grants a zeroed page and a port,
//!   publishes them in one transaction, goes Initialised, waits for
//!   Connected, pings; then follows the backend's close and reconnects;
//!   after the last round it closes itself.
//! - `store-attack victim=F backend=B [flood=N]`: tries to read, write,
//!   make and watch the pair's nodes (each must be refused with EACCES),
//!   then floods the store: N pipelined requests (started at once, so they
//!   overlap the pair's handshake), then watches and nodes up to its
//!   quotas and past them (refused).

use alloc::format;
use alloc::string::String;

use guest_runtime::event::{self, EventLoop, Port, PortSet};
use guest_runtime::grant::{self, GrantTable};
use guest_runtime::page::Page;
use guest_runtime::store::{self, EventWait, StoreConnection, StoreError};
use guest_runtime::time::system_time_ns;
use guest_runtime::xenbus::{self, DevicePaths};
use guest_runtime::{ShutdownReason, StartInfo};
use log::{error, info, warn};
use ring_protocol::store::{StoreClient, StoreServer};
use xenstore::checked::XenbusState;
use xenstore::XsError;

use crate::rings::{optional, required, FIRST_TEST_REF, MAX_DOMID};

/// The dummy device's class in the store.
const KIND: &str = "dummy";
/// How long one handshake step may take.
const STEP_NS: u64 = 20_000_000_000;

/// A store connection and the event loop it waits with.
struct Bus {
    store: StoreConnection<'static>,
    port: Port,
    events: EventLoop<'static>,
}

impl Bus {
    fn open(what: &str) -> Option<Bus> {
        let (store, port) = store::open().map_err(|problem| error!("{what}: {problem}")).ok()?;
        let events = EventLoop::this_domain()?;
        Some(Bus { store, port, events })
    }

    fn with<T>(&mut self, body: impl FnOnce(&mut StoreConnection<'static>, &mut EventWait<'_, 'static>) -> T) -> T {
        let mut wait = EventWait { port: self.port, events: &mut self.events };
        body(&mut self.store, &mut wait)
    }

    fn set_state(&mut self, path: &str, state: XenbusState) -> Result<(), StoreError> {
        self.with(|store, wait| store.write_state(wait, path, state))
    }

    fn await_state(&mut self, path: &str, accept: impl Fn(XenbusState) -> bool) -> Result<XenbusState, StoreError> {
        let deadline = system_time_ns().saturating_add(STEP_NS);
        self.with(|store, wait| xenbus::wait_for_state(store, wait, path, deadline, accept))
    }

    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        self.with(|store, wait| store.watch(wait, path, token))
    }

    /// Waits for `port` (the device's channel) until the deadline.
    fn await_port(&mut self, port: Port) -> bool {
        let deadline = system_time_ns().saturating_add(STEP_NS);
        matches!(self.events.wait_until(&PortSet::of(port), deadline), Ok(fired) if !fired.is_empty())
    }
}

fn fail(what: &str, step: &str, problem: StoreError) -> ShutdownReason {
    error!("{what}: {step}: {problem}");
    ShutdownReason::Crash
}

/// `action=dummy-back`.
pub fn dummy_back(info: &StartInfo) -> ShutdownReason {
    const WHAT: &str = "dummy-back";
    let (Some(front), Some(id), Some(rounds)) =
        (required(info, WHAT, "front", MAX_DOMID), optional(info, "id", 0, 0, 65535), optional(info, "rounds", 2, 1, 100))
    else {
        return ShutdownReason::Crash;
    };
    let Some(mut bus) = Bus::open(WHAT) else { return ShutdownReason::Crash };
    let paths = DevicePaths { kind: String::from(KIND), device_id: id as u32, frontend_id: front as u32, backend_id: info.domid.into() };
    let (own_state, front_state) = (paths.backend_state(), paths.frontend_state());
    if let Err(problem) = bus.watch(&own_state, "self").and_then(|()| bus.await_state(&own_state, |s| s == XenbusState::Initialising)) {
        return fail(WHAT, "waiting for the toolstack's nodes", problem);
    }
    if let Err(problem) = bus.with(|store, wait| xenbus::DevicePaths::check_frontend(store, wait, &paths)) {
        return fail(WHAT, "frontend entries", problem);
    }
    if let Err(problem) = bus.watch(&front_state, "front") {
        return fail(WHAT, "watching the frontend", problem);
    }
    for round in 1..=rounds {
        if let Err(problem) = bus.set_state(&own_state, XenbusState::InitWait) {
            return fail(WHAT, "InitWait", problem);
        }
        if let Err(problem) = bus.await_state(&front_state, |s| s == XenbusState::Initialised) {
            return fail(WHAT, "waiting for Initialised", problem);
        }
        let base = paths.frontend();
        let read = bus.with(|store, wait| {
            Ok::<_, StoreError>((store.read_u32(wait, 0, &format!("{base}/ring-ref"))?, store.read_u32(wait, 0, &format!("{base}/event-channel"))?))
        });
        let (reference, remote_port) = match read {
            Ok(pair) => pair,
            Err(problem) => return fail(WHAT, "reading ring-ref and event-channel", problem),
        };
        let mapping = match grant::map(front as u16, reference, false) {
            Ok(mapping) => mapping,
            Err(failure) => {
                error!("{WHAT}: map d{front} ref {reference}: {failure}");
                return ShutdownReason::Crash;
            }
        };
        let port = match event::bind_interdomain(front as u16, Port(remote_port)) {
            Ok(port) => port,
            Err(errno) => {
                error!("{WHAT}: bind d{front} port {remote_port}: {errno:?}");
                return ShutdownReason::Crash;
            }
        };
        if let Err(problem) = bus.set_state(&own_state, XenbusState::Connected) {
            return fail(WHAT, "Connected", problem);
        }
        info!("{WHAT}: round {round}: connected to d{front} (ref {reference}, port {remote_port})");
        // One ping, one pong.
        let Some(page) = mapping.page() else {
            error!("{WHAT}: the mapping is not a ring page");
            return ShutdownReason::Crash;
        };
        let mut pipe = match StoreServer::attach(page) {
            Ok(pipe) => pipe,
            Err(problem) => {
                error!("{WHAT}: pipe: {problem:?}");
                return ShutdownReason::Crash;
            }
        };
        let mut buffer = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match pipe.requests.read(&mut buffer[got..]) {
                Ok(0) if bus.await_port(port) => {}
                Ok(0) => {
                    error!("{WHAT}: no ping from d{front}");
                    return ShutdownReason::Crash;
                }
                Ok(count) => got += count,
                Err(problem) => {
                    error!("{WHAT}: pipe: {problem:?}");
                    return ShutdownReason::Crash;
                }
            }
        }
        if &buffer != b"ping" || pipe.responses.write(b"pong") != Ok(4) {
            error!("{WHAT}: expected 'ping', got {buffer:?}");
            return ShutdownReason::Crash;
        }
        let _ = event::send(port);
        info!("{WHAT}: round {round}: ping answered");
        let last = round == rounds;
        if last {
            // The frontend closes first this time.
            if let Err(problem) = bus.await_state(&front_state, |s| s >= XenbusState::Closing) {
                return fail(WHAT, "waiting for the frontend to close", problem);
            }
            info!("{WHAT}: frontend is closing");
        }
        // Tear down before saying so: the frontend revokes once we say Closing/Closed.
        if let Err((_, failure)) = grant::unmap(mapping) {
            warn!("{WHAT}: unmap: {failure}");
        }
        let _ = event::close(port);
        if !last {
            if let Err(problem) = bus.set_state(&own_state, XenbusState::Closing) {
                return fail(WHAT, "Closing", problem);
            }
            if let Err(problem) = bus.await_state(&front_state, |s| s == XenbusState::Closed) {
                return fail(WHAT, "waiting for the frontend's Closed", problem);
            }
        }
        if let Err(problem) = bus.set_state(&own_state, XenbusState::Closed) {
            return fail(WHAT, "Closed", problem);
        }
        if !last {
            info!("{WHAT}: round {round}: closed; restarting");
            if let Err(problem) = bus.set_state(&own_state, XenbusState::Initialising) {
                return fail(WHAT, "Initialising", problem);
            }
        }
    }
    info!("{WHAT}: {rounds} rounds done");
    ShutdownReason::Poweroff
}

/// `action=dummy-front`.
pub fn dummy_front(info: &StartInfo) -> ShutdownReason {
    const WHAT: &str = "dummy-front";
    let (Some(id), Some(rounds), Some(reference)) =
        (optional(info, "id", 0, 0, 65535), optional(info, "rounds", 2, 1, 100), optional(info, "ref", FIRST_TEST_REF, 2, 511))
    else {
        return ShutdownReason::Crash;
    };
    let reference = reference as u32;
    let Some(mut bus) = Bus::open(WHAT) else { return ShutdownReason::Crash };
    let Some(grants) = GrantTable::this_domain() else {
        error!("{WHAT}: no grant table");
        return ShutdownReason::Crash;
    };
    let paths = match bus.with(|store, wait| DevicePaths::discover_backend(store, wait, info.domid.into(), KIND, id as u32)) {
        Ok(paths) => paths,
        Err(problem) => return fail(WHAT, "finding the backend", problem),
    };
    let back = paths.backend_id as u16;
    let (own_state, back_state) = (paths.frontend_state(), paths.backend_state());
    info!("{WHAT}: backend is d{back} at {}", paths.backend());
    if let Err(problem) = bus.watch(&back_state, "back") {
        return fail(WHAT, "watching the backend", problem);
    }
    for round in 1..=rounds {
        if let Err(problem) = bus.await_state(&back_state, |s| s == XenbusState::InitWait) {
            return fail(WHAT, "waiting for InitWait", problem);
        }
        let mut page = Page::new();
        page.zero();
        let Some(pfn) = page.pfn() else { return ShutdownReason::Crash };
        if let Err(problem) = grants.grant_access(reference, back, pfn, false) {
            error!("{WHAT}: grant: {problem}");
            return ShutdownReason::Crash;
        }
        let port = match event::alloc_unbound(back) {
            Ok(port) => port,
            Err(errno) => {
                error!("{WHAT}: alloc_unbound: {errno:?}");
                return ShutdownReason::Crash;
            }
        };
        let base = paths.frontend();
        // ring-ref and event-channel in one transaction, then Initialised.
        let published = bus.with(|store, wait| loop {
            let tx = store.transaction_start(wait)?;
            store.write(wait, tx, &format!("{base}/ring-ref"), format!("{reference}").as_bytes())?;
            store.write(wait, tx, &format!("{base}/event-channel"), format!("{}", port.0).as_bytes())?;
            match store.transaction_end(wait, tx, true) {
                Err(StoreError::Store(XsError::Again)) => continue,
                other => break other,
            }
        });
        if let Err(problem) = published.and_then(|()| bus.set_state(&own_state, XenbusState::Initialised)) {
            return fail(WHAT, "publishing the ring", problem);
        }
        if let Err(problem) = bus.await_state(&back_state, |s| s == XenbusState::Connected) {
            return fail(WHAT, "waiting for Connected", problem);
        }
        if let Err(problem) = bus.set_state(&own_state, XenbusState::Connected) {
            return fail(WHAT, "Connected", problem);
        }
        info!("{WHAT}: round {round}: connected to d{back}");
        let mut pipe = match StoreClient::attach(page.shared()) {
            Ok(pipe) => pipe,
            Err(problem) => {
                error!("{WHAT}: pipe: {problem:?}");
                return ShutdownReason::Crash;
            }
        };
        if pipe.requests.write(b"ping") != Ok(4) {
            error!("{WHAT}: cannot write the ping");
            return ShutdownReason::Crash;
        }
        let _ = event::send(port);
        let mut buffer = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match pipe.responses.read(&mut buffer[got..]) {
                Ok(0) if bus.await_port(port) => {}
                Ok(count) if count > 0 => got += count,
                other => {
                    error!("{WHAT}: no pong from d{back}: {other:?}");
                    return ShutdownReason::Crash;
                }
            }
        }
        if &buffer != b"pong" {
            error!("{WHAT}: expected 'pong', got {buffer:?}");
            return ShutdownReason::Crash;
        }
        info!("{WHAT}: round {round}: pong received");
        let last = round == rounds;
        if last {
            if let Err(problem) = bus.set_state(&own_state, XenbusState::Closing) {
                return fail(WHAT, "Closing", problem);
            }
        }
        let closing = bus.await_state(&back_state, |s| s >= XenbusState::Closing);
        let seen = match if last { gone_is_closed(WHAT, closing) } else { closing } {
            Ok(state) => state,
            Err(problem) => return fail(WHAT, "waiting for the backend to close", problem),
        };
        if !last {
            info!("{WHAT}: round {round}: backend is {seen:?}; closing too");
        }
        // The backend unmapped before saying so: revoke, close, say Closed.
        if let Err(problem) = grants.end_access(reference) {
            error!("{WHAT}: revoke ref {reference}: {problem}");
            return ShutdownReason::Crash;
        }
        let _ = event::close(port);
        if let Err(problem) = bus.set_state(&own_state, XenbusState::Closed) {
            return fail(WHAT, "Closed", problem);
        }
        if last {
            let closed = bus.await_state(&back_state, |s| s == XenbusState::Closed);
            if let Err(problem) = gone_is_closed(WHAT, closed) {
                return fail(WHAT, "waiting for the backend's Closed", problem);
            }
            info!("{WHAT}: disconnected cleanly after {rounds} rounds");
        } else {
            // Wait for the backend to restart (it passes Closed first).
            if let Err(problem) = bus.await_state(&back_state, |s| s < XenbusState::Closing) {
                return fail(WHAT, "waiting for the backend to restart", problem);
            }
            if let Err(problem) = bus.set_state(&own_state, XenbusState::Initialising) {
                return fail(WHAT, "Initialising", problem);
            }
            info!("{WHAT}: backend restarted; reconnecting");
        }
    }
    ShutdownReason::Poweroff
}

/// A wait for the backend's closing, where its domain going counts as
/// Closed: on the last round the backend says Closed and powers off, the
/// toolstack then removes its nodes, and a node gone from a home we may not
/// read answers EACCES (ENOENT if we may). Linux's xenbus likewise reads a
/// vanished state as Unknown, which frontends treat as closed.
fn gone_is_closed(what: &str, waited: Result<XenbusState, StoreError>) -> Result<XenbusState, StoreError> {
    match waited {
        Err(StoreError::Store(XsError::Acces | XsError::Noent)) => {
            info!("{what}: the backend's state node went with its domain: taken as Closed");
            Ok(XenbusState::Closed)
        }
        other => other,
    }
}

/// What one attack step should get.
fn expect_refused(what: &str, step: &str, result: Result<(), StoreError>) -> bool {
    match result {
        Err(StoreError::Store(XsError::Acces)) => {
            info!("{what}: {step}: refused (EACCES)");
            true
        }
        other => {
            error!("{what}: UNEXPECTED: {step}: {other:?}");
            false
        }
    }
}

/// `action=store-attack`.
pub fn store_attack(info: &StartInfo) -> ShutdownReason {
    const WHAT: &str = "store-attack";
    let (Some(victim), Some(backend), Some(flood)) = (
        required(info, WHAT, "victim", MAX_DOMID),
        required(info, WHAT, "backend", MAX_DOMID),
        optional(info, "flood", 2000, 0, 1_000_000),
    ) else {
        return ShutdownReason::Crash;
    };
    let Some(mut bus) = Bus::open(WHAT) else { return ShutdownReason::Crash };
    let front = format!("/local/domain/{victim}/device/{KIND}/0");
    let back = format!("/local/domain/{backend}/backend/{KIND}/{victim}/0");
    let mut refused = 0;
    let steps: [(&str, String); 6] = [
        ("read the frontend's state", format!("{front}/state")),
        ("read the backend's state", format!("{back}/state")),
        ("write the frontend's state", format!("{front}/state")),
        ("make a node in the backend's directory", format!("{back}/evil")),
        ("watch the frontend's directory", front.clone()),
        ("watch the backend's directory", back.clone()),
    ];
    for (index, (step, path)) in steps.iter().enumerate() {
        let result = bus.with(|store, wait| match index {
            0 | 1 => store.read(wait, 0, path).map(drop),
            2 => store.write(wait, 0, path, b"6"),
            3 => store.mkdir(wait, 0, path),
            _ => store.watch(wait, path, "spy"),
        });
        refused += usize::from(expect_refused(WHAT, step, result));
    }
    // Pipelined reads: the ring kept full.
    let result = bus.with(|store, wait| store.pipeline(wait, flood, |_| (xenstore::MsgType::Read, b"name\0".to_vec())));
    match result {
        Ok(report) => info!("{WHAT}: {flood} pipelined requests: {} replies, {} errors", report.replies, report.errors),
        Err(problem) => return fail(WHAT, "pipelined flood", problem),
    }
    // Watches up to the quota and past it.
    let (mut watches, mut watch_refusals) = (0, 0);
    for index in 0..160 {
        match bus.with(|store, wait| store.watch(wait, &format!("flood/w{index}"), "flood")) {
            Ok(()) => watches += 1,
            Err(StoreError::Store(_)) => watch_refusals += 1,
            Err(problem) => return fail(WHAT, "watch flood", problem),
        }
    }
    info!("{WHAT}: {watches} watches set, {watch_refusals} refused over quota");
    // Nodes up to the quota and past it (each firing our own watches).
    let (mut nodes, mut node_refusals) = (0, 0);
    for index in 0..1100 {
        match bus.with(|store, wait| store.write(wait, 0, &format!("flood/n{index}"), b"x")) {
            Ok(()) => nodes += 1,
            Err(StoreError::Store(_)) => node_refusals += 1,
            Err(problem) => return fail(WHAT, "node flood", problem),
        }
    }
    info!("{WHAT}: {nodes} nodes written, {node_refusals} refused over quota");
    info!("{WHAT}: {refused} of {} probes of the pair's nodes refused", steps.len());
    if refused == steps.len() {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    }
}
