//! The store service: one connection per domain over the page behind its
//! reserved grant ref 1 (mapped with the policy's narrow `map_reserved`) and
//! the store event channel the builder made for it, driven by
//! `xenstore::ring::serve`, plus the bookkeeping the tests read: how many
//! requests each domain had answered while another domain's flood was
//! still queued.

use alloc::format;
use alloc::vec::Vec;

use guest_runtime::event::{self, Port, PortSet};
use guest_runtime::grant::{self, Mapping};
use log::{info, warn};
use xen_abi::event_channel::BUILDER_STORE_PORT;
use xen_abi::grant_table::RESERVED_XENSTORE;
use xenstore::ring::{serve, RingConnection, ServiceError};
use xenstore::{Access, Config, ConnId, Perms, Store};

/// Requests answered per connection per round (the fairness cap).
pub const REQUESTS_PER_ROUND: usize = 4;
/// Rounds one [`Service::run`] serves at most before the agent looks at
/// its other events (the operator's channel, domain exits): a domain that
/// keeps its ring full must not keep the agent from them.
pub const ROUNDS_PER_RUN: usize = 64;

/// One domain the store serves.
struct Client {
    domid: u16,
    conn: ConnId,
    mapping: Mapping,
    port: Port,
    /// Requests answered while another connection still had some queued.
    served_beside_backlog: u64,
    /// Its largest request backlog seen after a round.
    peak_backlog: usize,
}

/// The store and every domain's connection to it.
pub struct Service {
    /// The store itself.
    pub store: Store,
    /// The agent's own connection (the privileged domain's).
    pub admin: ConnId,
    clients: Vec<Client>,
    rings: Vec<RingConnection>,
}

/// A connection's figures, for the log.
pub struct Figures {
    /// The domain.
    pub domid: u16,
    /// Requests answered.
    pub served: u64,
    /// Of those, answered while another domain's backlog waited.
    pub served_beside_backlog: u64,
    /// The largest backlog it had after a round.
    pub peak_backlog: usize,
    /// Watch events dropped for it (queue full).
    pub dropped_events: u64,
}

impl Service {
    /// An empty store with `/local/domain` made, privileged for `own`
    /// (the control domain's id: the first domain built, 1 here, where
    /// Xen's dom0 is 0).
    pub fn new(own: u16) -> Service {
        let mut store = Store::new(Config { privileged: u32::from(own), ..Config::default() });
        let admin = store.connect(u32::from(own));
        for path in ["/local", "/local/domain"] {
            if let Err(error) = store.mkdir(admin, 0, path) {
                warn!("store: mkdir {path}: {}", error.name());
            }
        }
        Service { store, admin, clients: Vec::new(), rings: Vec::new() }
    }

    /// The domains served.
    pub fn domains(&self) -> impl Iterator<Item = u16> + '_ {
        self.clients.iter().map(|client| client.domid)
    }

    /// The event-channel ports to wait on.
    pub fn ports(&self) -> PortSet {
        let mut ports = PortSet::new();
        for client in &self.clients {
            ports.insert(client.port);
        }
        ports
    }

    /// Connects `domid`: maps its store page, binds its store channel,
    /// makes its home `/local/domain/<id>` (owned by it) with `name` and
    /// `domid` nodes, and fires `@introduceDomain`.
    pub fn introduce(&mut self, domid: u16, name: &str) -> Result<(), &'static str> {
        if self.clients.iter().any(|client| client.domid == domid) {
            return Err("already connected");
        }
        let mapping = grant::map(domid, RESERVED_XENSTORE, false).map_err(|failure| {
            warn!("store: cannot map domain {domid}'s store page: {failure}");
            "cannot map its store page"
        })?;
        let port = match event::bind_interdomain(domid, Port(BUILDER_STORE_PORT)) {
            Ok(port) => port,
            Err(errno) => {
                warn!("store: cannot bind domain {domid}'s store channel: {errno:?}");
                if let Err((_, failure)) = grant::unmap(mapping) {
                    warn!("store: unmap of domain {domid}'s page failed: {failure}");
                }
                return Err("cannot bind its store channel");
            }
        };
        let home = format!("/local/domain/{domid}");
        let admin = self.admin;
        let made = self
            .store
            .mkdir(admin, 0, &home)
            .and_then(|()| self.store.set_perms(admin, 0, &home, &Perms::new(u32::from(domid), Access::None)))
            .and_then(|()| self.store.write(admin, 0, &format!("{home}/name"), name.as_bytes()))
            .and_then(|()| self.store.write(admin, 0, &format!("{home}/domid"), format!("{domid}").as_bytes()));
        if let Err(error) = made {
            warn!("store: making {home}: {}", error.name());
        }
        let conn = self.store.introduce_domain(u32::from(domid));
        self.clients.push(Client { domid, conn, mapping, port, served_beside_backlog: 0, peak_backlog: 0 });
        self.rings.push(RingConnection::new(conn));
        info!("store: domain {domid} ({name}) connected (page mapped, port {})", port.0);
        Ok(())
    }

    /// Drops `domid`'s connection: its watches and transactions go, its
    /// home is removed, its page unmapped and its channel closed; fires
    /// `@releaseDomain`.
    pub fn release(&mut self, domid: u16) -> Option<Figures> {
        let index = self.clients.iter().position(|client| client.domid == domid)?;
        let figures = self.figures_of(index);
        let client = self.clients.remove(index);
        self.rings.retain(|ring| ring.conn != client.conn);
        self.store.release_domain(u32::from(domid));
        let _ = self.store.rm(self.admin, 0, &format!("/local/domain/{domid}"));
        if let Err(errno) = event::close(client.port) {
            warn!("store: closing domain {domid}'s port: {errno:?}");
        }
        if let Err((_, failure)) = grant::unmap(client.mapping) {
            warn!("store: unmapping domain {domid}'s store page: {failure}");
        }
        Some(figures)
    }

    fn figures_of(&self, index: usize) -> Figures {
        let client = &self.clients[index];
        let stats = self.store.stats(client.conn).unwrap_or_default();
        Figures {
            domid: client.domid,
            served: stats.served,
            served_beside_backlog: client.served_beside_backlog,
            peak_backlog: client.peak_backlog,
            dropped_events: stats.dropped_events,
        }
    }

    /// Serves rounds until one makes no progress or [`ROUNDS_PER_RUN`]
    /// have been served; notifies each domain that got replies or room.
    /// Returns the domains whose connection broke (they are released) and
    /// whether work is left (the caller must not block before the next run).
    pub fn run(&mut self) -> (Vec<u16>, bool) {
        let mut broken: Vec<ConnId> = Vec::new();
        let mut more = false;
        for round in 1..=ROUNDS_PER_RUN {
            let before: Vec<u64> = self.clients.iter().map(|c| self.store.stats(c.conn).map_or(0, |s| s.served)).collect();
            let clients = &self.clients;
            let passes = serve(
                &mut self.store,
                &mut self.rings,
                REQUESTS_PER_ROUND,
                |conn| clients.iter().find(|client| client.conn == conn).and_then(|client| client.mapping.page()),
                |conn, error: ServiceError| {
                    warn!("store: dropping connection {conn:?}: {error:?}");
                    broken.push(conn);
                },
            );
            let backlogs: Vec<usize> = self.clients.iter().map(|c| self.store.stats(c.conn).map_or(0, |s| s.queued_requests)).collect();
            let mut progress = false;
            for (index, client) in self.clients.iter_mut().enumerate() {
                let served = self.store.stats(client.conn).map_or(0, |s| s.served) - before[index];
                let others_waiting = backlogs.iter().enumerate().any(|(other, &backlog)| other != index && backlog > 0);
                if others_waiting {
                    client.served_beside_backlog += served;
                }
                client.peak_backlog = client.peak_backlog.max(backlogs[index]);
                progress |= served > 0;
            }
            for (ring_index, pass) in passes.iter().enumerate() {
                if pass.notify() {
                    progress = true;
                    let conn = self.rings[ring_index].conn;
                    if let Some(client) = self.clients.iter().find(|client| client.conn == conn) {
                        let _ = event::send(client.port);
                    }
                }
            }
            if !broken.is_empty() || !progress {
                break;
            }
            more = round == ROUNDS_PER_RUN;
        }
        let mut gone = Vec::new();
        for conn in broken {
            if let Some(domid) = self.clients.iter().find(|client| client.conn == conn).map(|client| client.domid) {
                self.release(domid);
                gone.push(domid);
            }
        }
        (gone, more)
    }
}
