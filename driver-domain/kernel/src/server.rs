//! The block backend at work: finds the vbd devices the toolstack put under
//! `/local/domain/<self>/backend/vbd`, runs each one's XenbusState
//! handshake as the backend ([`crate::vbd`] decides, this acts), serves
//! the connected rings round-robin with a cap per frontend per round, and
//! blocks on the store's and the frontends' event channels when idle.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use blkback::{BlockBackend, DomId, FrontendId, GrantPolicy, VirtualDisk, SECTOR_SIZE_BYTES};
use guest_runtime::event::{self, Port, PortSet};
use guest_runtime::store::{EventWait, StoreConnection, StoreError};
use guest_runtime::xenbus::{self, DevicePaths};
use log::{error, info, warn};
use xenstore::checked::{self, XenbusState};
use xenstore::XsError;

use crate::arch::MappedRing;
use crate::disk::VirtioDisk;
use crate::vbd::{self, Step, VDISK_READONLY};

/// Requests served per frontend per round.
pub const CAP_PER_ROUND: u32 = 16;
/// The device class served.
const KIND: &str = "vbd";
/// Steps taken for one device per look (each changes its state).
const MAX_STEPS: usize = 4;
/// Refused requests logged one by one per connection (a hostile frontend
/// cannot flood the log; the rest are counted at disconnect).
const REFUSALS_LOGGED: u32 = 16;

/// One device the toolstack gave us.
struct Vbd {
    paths: DevicePaths,
    own: XenbusState,
    disk: Option<VirtualDisk>,
    /// Its slot in the backend, kept across reconnections.
    frontend: Option<FrontendId>,
    ring: Option<MappedRing>,
    port: Option<Port>,
    connections: u32,
    /// Refused requests logged on this connection.
    refusals_logged: u32,
    /// Refused for good (bad nodes): no further steps.
    refused: bool,
}

impl Vbd {
    fn name(&self) -> String {
        format!("vbd d{}/{}", self.paths.frontend_id, self.paths.device_id)
    }
}

/// The backend of every vbd of this domain.
pub struct Server {
    self_id: u32,
    store: StoreConnection<'static>,
    store_port: Port,
    backend: BlockBackend<'static, VirtioDisk>,
    devices: Vec<Vbd>,
    /// Devices that were connected and are gone.
    finished: u32,
    /// Rounds served, and the instructions (`rdtsc` under `-icount`) they
    /// took, waits for the device included.
    rounds: u64,
    serving: u64,
    sends: u64,
}

/// Runs `body`'s store calls waiting with the domain's one event loop (the
/// disk's). Watch events the calls leave unread, queued or on the ring
/// behind a reply, keep the store port fired in that loop (the store
/// client sees to it: see `guest_runtime::store`), so the serving loop's
/// wait takes them instead of sleeping past them.
fn with_store<T>(
    store: &mut StoreConnection<'static>,
    store_port: Port,
    backend: &mut BlockBackend<'static, VirtioDisk>,
    body: impl FnOnce(&mut StoreConnection<'static>, &mut EventWait<'_, 'static>) -> T,
) -> T {
    let mut wait = EventWait {
        port: store_port,
        events: backend.executor_mut().events(),
    };
    body(store, &mut wait)
}

impl Server {
    /// A server over `disk` for domain `self_id`'s backend directory.
    pub fn new(
        self_id: u32,
        store: StoreConnection<'static>,
        store_port: Port,
        disk: VirtioDisk,
    ) -> Server {
        let sectors = disk.capacity();
        Server {
            self_id,
            store,
            store_port,
            backend: BlockBackend::new(disk, sectors),
            devices: Vec::new(),
            finished: 0,
            rounds: 0,
            serving: 0,
            sends: 0,
        }
    }

    /// The disk, for work outside the backend (`bench-direct=`).
    pub fn disk_mut(&mut self) -> &mut VirtioDisk {
        self.backend.executor_mut()
    }

    fn store<T>(
        &mut self,
        body: impl FnOnce(&mut StoreConnection<'static>, &mut EventWait<'_, 'static>) -> T,
    ) -> T {
        with_store(&mut self.store, self.store_port, &mut self.backend, body)
    }

    fn base(&self) -> String {
        format!("/local/domain/{}/backend/{KIND}", self.self_id)
    }

    /// Serves until `exit_after` devices have come and gone (forever if
    /// `None`).
    ///
    /// # Errors
    ///
    /// A store failure that leaves nothing to serve with.
    pub fn run(&mut self, exit_after: Option<u32>) -> Result<(), StoreError> {
        let base = self.base();
        self.store(|store, wait| store.watch(wait, &base, "vbd"))?;
        let mut look = true;
        loop {
            loop {
                match self.store(|store, wait| store.next_event(wait, 0)) {
                    Ok(Some(_)) => look = true,
                    // Ring and queue are empty: the client has forgotten
                    // the port it kept fired for them.
                    Ok(None) => break,
                    Err(problem) => {
                        error!("blkback: store events: {problem}");
                        break;
                    }
                }
            }
            if look {
                look = false;
                self.look();
                // Looking made store calls, which may have queued watch
                // events: take those before serving or sleeping.
                continue;
            }
            self.serve();
            if exit_after.is_some_and(|count| self.finished >= count)
                && self.devices.iter().all(|vbd| vbd.ring.is_none())
            {
                let counters = self.backend.executor().counters();
                info!(
                    "blkback: {} devices served and gone; {} buffers by DMA ({} segments joined to the one before), {} interrupts, {} grant failures, {} device errors; exiting",
                    self.finished, counters.buffers, counters.joined, counters.interrupts, counters.grant_failures, counters.device_errors
                );
                info!(
                    "blkback: {} grants mapped in {} calls ({} refused), {} still kept",
                    counters.grants_mapped,
                    counters.map_calls,
                    counters.refused_maps,
                    self.backend.executor().kept_grants()
                );
                info!(
                    "blkback: {} rounds took {} instructions, {} of them waiting for the device; {} blocks, {} sends",
                    self.rounds, self.serving, counters.waited, self.backend.executor().events_blocks(), self.sends
                );
                return Ok(());
            }
            let mut interest = PortSet::of(self.store_port);
            for port in self.devices.iter().filter_map(|vbd| vbd.port) {
                interest.insert(port);
            }
            match self.backend.executor_mut().events().wait_for(&interest) {
                // A store event: look at the devices again next time round
                // (a frontend's event alone only means serving its ring:
                // looking costs several store round trips).
                Ok(fired) => look = fired.contains(self.store_port),
                Err(errno) => {
                    error!("blkback: waiting: {errno}");
                    look = true;
                }
            }
        }
    }

    /// Serves every ring until none has requests waiting, notifying
    /// frontends as their responses require; a ring the frontend broke is
    /// closed.
    fn serve(&mut self) {
        loop {
            let started = guest_runtime::timestamp_counter();
            let report = self.backend.serve_round(CAP_PER_ROUND);
            self.serving += guest_runtime::timestamp_counter().wrapping_sub(started);
            self.rounds += 1;
            for refusal in &report.refused {
                let Some(vbd) = self
                    .devices
                    .iter_mut()
                    .find(|vbd| vbd.frontend == Some(refusal.frontend))
                else {
                    continue;
                };
                if vbd.refusals_logged < REFUSALS_LOGGED {
                    vbd.refusals_logged += 1;
                    warn!(
                        "blkback: {}: request id {} (operation {}) refused with status {}: {:?}",
                        vbd.name(),
                        refusal.id,
                        refusal.operation,
                        refusal.status,
                        refusal.reason
                    );
                }
            }
            for id in &report.notify {
                if let Some(port) = self
                    .devices
                    .iter()
                    .find(|vbd| vbd.frontend == Some(*id) && vbd.ring.is_some())
                    .and_then(|vbd| vbd.port)
                {
                    self.sends += 1;
                    let _ = event::send(port);
                }
            }
            let broken: Vec<usize> = (0..self.devices.len())
                .filter(|&index| {
                    let vbd = &self.devices[index];
                    vbd.ring.is_some()
                        && vbd
                            .frontend
                            .is_some_and(|id| !self.backend.is_connected(id))
                })
                .collect();
            for index in broken {
                let reason = self.devices[index]
                    .frontend
                    .and_then(|id| self.backend.counters(id))
                    .and_then(|counters| counters.disconnect);
                warn!(
                    "blkback: {}: the frontend broke its ring ({reason:?}): disconnecting it",
                    self.devices[index].name()
                );
                self.step(index);
            }
            if !report.more_pending {
                return;
            }
        }
    }

    /// Lists the devices in the store, takes up new ones, drops gone ones
    /// and steps each.
    fn look(&mut self) {
        let base = self.base();
        let mut present: Vec<(u32, u32)> = Vec::new();
        let fronts = match self.store(|store, wait| store.directory(wait, 0, &base)) {
            Ok(fronts) => fronts,
            Err(StoreError::Store(XsError::Noent)) => Vec::new(),
            Err(problem) => {
                error!("blkback: listing {base}: {problem}");
                return;
            }
        };
        for front in fronts {
            let Ok(front_id) = checked::parse_domid(front.as_bytes()) else {
                continue;
            };
            let ids = self
                .store(|store, wait| store.directory(wait, 0, &format!("{base}/{front}")))
                .unwrap_or_default();
            present.extend(
                ids.iter()
                    .filter_map(|id| checked::parse_u32(id.as_bytes()).ok())
                    .map(|id| (front_id, id)),
            );
        }
        // Gone: the toolstack removed the device (its frontend died).
        let mut index = 0;
        while index < self.devices.len() {
            let key = (
                self.devices[index].paths.frontend_id,
                self.devices[index].paths.device_id,
            );
            if present.contains(&key) {
                index += 1;
                continue;
            }
            let mut vbd = self.devices.remove(index);
            self.tear_down(&mut vbd);
            if vbd.connections > 0 {
                self.finished += 1;
            }
            info!(
                "blkback: {}: removed by the toolstack after {} connections",
                vbd.name(),
                vbd.connections
            );
        }
        for (frontend_id, device_id) in present {
            if !self
                .devices
                .iter()
                .any(|vbd| vbd.paths.frontend_id == frontend_id && vbd.paths.device_id == device_id)
            {
                self.adopt(frontend_id, device_id);
            }
        }
        for index in 0..self.devices.len() {
            self.step(index);
        }
    }

    /// Takes up a new device: checks the frontend entries, watches its state.
    fn adopt(&mut self, frontend_id: u32, device_id: u32) {
        let paths = DevicePaths {
            kind: String::from(KIND),
            device_id,
            frontend_id,
            backend_id: self.self_id,
        };
        let mut vbd = Vbd {
            paths,
            own: XenbusState::Unknown,
            disk: None,
            frontend: None,
            ring: None,
            port: None,
            connections: 0,
            refusals_logged: 0,
            refused: false,
        };
        let checked = self.store(|store, wait| {
            DevicePaths::check_frontend(store, wait, &vbd.paths)?;
            store.watch(wait, &vbd.paths.frontend_state(), "front")?;
            xenbus::read_state(store, wait, &vbd.paths.backend_state())
        });
        match checked {
            Ok(own) => vbd.own = own,
            Err(problem) => {
                error!(
                    "blkback: {}: bad toolstack entries: {problem}; refusing it",
                    vbd.name()
                );
                vbd.refused = true;
            }
        }
        info!("blkback: {}: found at {}", vbd.name(), vbd.paths.backend());
        self.devices.push(vbd);
    }

    /// Takes the steps the device's states call for.
    fn step(&mut self, index: usize) {
        for _ in 0..MAX_STEPS {
            let Some(vbd) = self.devices.get(index) else {
                return;
            };
            if vbd.refused {
                return;
            }
            let front_path = vbd.paths.frontend_state();
            let front = match self.store(|store, wait| xenbus::read_state(store, wait, &front_path))
            {
                Ok(state) => state,
                Err(problem) => {
                    warn!("blkback: reading {front_path}: {problem}");
                    return;
                }
            };
            let vbd = &self.devices[index];
            let served = vbd.frontend.is_some_and(|id| self.backend.is_connected(id));
            let step = vbd::next_step(vbd.own, front, vbd.ring.is_some(), served);
            let done = match step {
                Step::Wait => return,
                Step::Publish => self.publish(index),
                Step::Connect => self.connect(index),
                Step::Disconnect(then) => {
                    let mut vbd = core::mem::replace(&mut self.devices[index], placeholder());
                    self.tear_down(&mut vbd);
                    self.devices[index] = vbd;
                    self.say(index, then)
                }
                Step::Say(state) => self.say(index, state),
            };
            if !done {
                return;
            }
        }
    }

    fn say(&mut self, index: usize, state: XenbusState) -> bool {
        let path = self.devices[index].paths.backend_state();
        match self.store(|store, wait| store.write_state(wait, &path, state)) {
            Ok(()) => {
                self.devices[index].own = state;
                true
            }
            Err(problem) => {
                error!(
                    "blkback: {}: saying {state:?}: {problem}",
                    self.devices[index].name()
                );
                false
            }
        }
    }

    /// Reads the toolstack's extent, publishes what the frontend needs,
    /// says InitWait.
    fn publish(&mut self, index: usize) -> bool {
        let base = self.devices[index].paths.backend();
        let nodes = self.store(|store, wait| {
            Ok::<_, StoreError>((
                store.read(wait, 0, &format!("{base}/params"))?,
                store.read(wait, 0, &format!("{base}/mode"))?,
            ))
        });
        let disk = match nodes
            .map_err(|problem| format!("{problem}"))
            .and_then(|(params, mode)| vbd::parse_params(&params, &mode).map_err(String::from))
        {
            Ok(disk) if disk.end_sector() <= self.backend.executor().capacity() => disk,
            Ok(disk) => {
                error!(
                    "blkback: {}: extent {}+{} is past the disk's {} sectors; refusing it",
                    self.devices[index].name(),
                    disk.first_sector(),
                    disk.sector_count(),
                    self.backend.executor().capacity()
                );
                self.devices[index].refused = true;
                let _ = self.say_refused(index);
                return false;
            }
            Err(problem) => {
                error!(
                    "blkback: {}: params/mode: {problem}; refusing it",
                    self.devices[index].name()
                );
                self.devices[index].refused = true;
                let _ = self.say_refused(index);
                return false;
            }
        };
        let info = if disk.is_read_only() {
            VDISK_READONLY
        } else {
            0
        };
        let written = self.store(|store, wait| {
            store.write(
                wait,
                0,
                &format!("{base}/sectors"),
                format!("{}", disk.sector_count()).as_bytes(),
            )?;
            store.write(
                wait,
                0,
                &format!("{base}/sector-size"),
                format!("{SECTOR_SIZE_BYTES}").as_bytes(),
            )?;
            store.write(
                wait,
                0,
                &format!("{base}/info"),
                format!("{info}").as_bytes(),
            )?;
            store.write(wait, 0, &format!("{base}/feature-flush-cache"), b"1")?;
            store.write(wait, 0, &format!("{base}/feature-persistent"), b"1")
        });
        if let Err(problem) = written {
            error!(
                "blkback: {}: publishing the disk: {problem}",
                self.devices[index].name()
            );
            return false;
        }
        info!(
            "blkback: {}: extent {}+{} ({}), InitWait",
            self.devices[index].name(),
            disk.first_sector(),
            disk.sector_count(),
            if disk.is_read_only() {
                "read-only"
            } else {
                "read-write"
            }
        );
        self.devices[index].disk = Some(disk);
        self.say(index, XenbusState::InitWait)
    }

    fn say_refused(&mut self, index: usize) -> bool {
        let path = format!("{}/error", self.devices[index].paths.backend());
        let _ =
            self.store(|store, wait| store.write(wait, 0, &path, b"refused: bad params or mode"));
        self.say(index, XenbusState::Closed)
    }

    /// Maps the frontend's ring, binds its port, serves it, says Connected.
    fn connect(&mut self, index: usize) -> bool {
        let name = self.devices[index].name();
        let front = self.devices[index].paths.frontend();
        let read = self.store(|store, wait| {
            Ok::<_, StoreError>((
                store.read_u32(wait, 0, &format!("{front}/ring-ref"))?,
                store.read_u32(wait, 0, &format!("{front}/event-channel"))?,
            ))
        });
        let (reference, remote_port) = match read {
            Ok(pair) => pair,
            Err(problem) => {
                warn!("blkback: {name}: ring-ref/event-channel: {problem}");
                return self.say(index, XenbusState::Closing);
            }
        };
        // Optional: absent or anything but "1" means grants per request.
        let persistent = self
            .store(|store, wait| store.read(wait, 0, &format!("{front}/feature-persistent")))
            .is_ok_and(|value| value == b"1");
        let frontend_id = self.devices[index].paths.frontend_id as u16;
        let Some(disk) = self.devices[index].disk else {
            return self.say(index, XenbusState::Closing);
        };
        let mapping = match guest_runtime::grant::map(frontend_id, reference, false) {
            Ok(mapping) => mapping,
            Err(failure) => {
                warn!("blkback: {name}: mapping ring ref {reference}: {failure}");
                return self.say(index, XenbusState::Closing);
            }
        };
        let mut ring = match MappedRing::new(mapping) {
            Ok(ring) => ring,
            Err(mapping) => {
                let _ = guest_runtime::grant::unmap(mapping);
                return self.say(index, XenbusState::Closing);
            }
        };
        let port = match event::bind_interdomain(frontend_id, Port(remote_port)) {
            Ok(port) => port,
            Err(errno) => {
                warn!("blkback: {name}: binding port {remote_port}: {errno}");
                let _ = ring.release(&mut self.backend);
                return self.say(index, XenbusState::Closing);
            }
        };
        let attached = match self.devices[index].frontend {
            Some(id) => ring.reattach(&mut self.backend, id).then_some(id),
            None => ring
                .attach(&mut self.backend, DomId(frontend_id), disk)
                .ok(),
        };
        let Some(id) = attached else {
            error!("blkback: {name}: the backend would not take the ring");
            let _ = ring.release(&mut self.backend);
            let _ = event::close(port);
            return self.say(index, XenbusState::Closing);
        };
        let policy = if persistent {
            GrantPolicy::Persistent
        } else {
            GrantPolicy::Transient
        };
        self.backend.set_grant_policy(id, policy);
        let vbd = &mut self.devices[index];
        vbd.frontend = Some(id);
        vbd.ring = Some(ring);
        vbd.port = Some(port);
        vbd.connections += 1;
        vbd.refusals_logged = 0;
        info!(
            "blkback: {name}: connected (ring ref {reference}, port {remote_port}, {} grants), connection {}",
            if persistent { "persistent" } else { "per-request" },
            vbd.connections
        );
        // Requests may already wait: serve once the loop comes round.
        let _ = event::send(port);
        self.say(index, XenbusState::Connected)
    }

    /// Stops serving a device's ring, unmaps it, closes its port.
    fn tear_down(&mut self, vbd: &mut Vbd) {
        let connected = vbd.ring.is_some();
        if let Some(ring) = vbd.ring.take() {
            if let Err((mapping, failure)) = ring.release(&mut self.backend) {
                error!(
                    "blkback: {}: unmapping ring ref {}: {failure}; it stays mapped",
                    vbd.name(),
                    mapping.reference()
                );
            }
        }
        if let Some(port) = vbd.port.take() {
            let _ = event::close(port);
        }
        if let Some(counters) = vbd
            .frontend
            .and_then(|id| self.backend.counters(id))
            .filter(|_| connected)
        {
            info!(
                "blkback: {}: disconnected; {} requests served, {} answered with errors",
                vbd.name(),
                counters.requests_served,
                counters.errors
            );
        }
    }
}

/// A stand-in while a device is out of the table for a moment.
fn placeholder() -> Vbd {
    Vbd {
        paths: DevicePaths {
            kind: String::new(),
            device_id: 0,
            frontend_id: 0,
            backend_id: 0,
        },
        own: XenbusState::Unknown,
        disk: None,
        frontend: None,
        ring: None,
        port: None,
        connections: 0,
        refusals_logged: 0,
        refused: true,
    }
}
