//! The store: the tree, one connection per domain (its decoder, bounded request queue,
//! watches, transactions and bounded event queue), and fair service. A transport feeds
//! each connection the bytes off its ring ([`Store::receive`], reading at most
//! [`Store::wanted`] bytes so that a full queue pushes back onto the ring), then calls
//! [`Store::serve_round`], which serves every connection at most N requests, round
//! robin, so that one domain's flood cannot hold back another's replies.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::error::XsError;
use crate::tree::{Change, Transaction, Tree, TxView, View};
use crate::watch::{self, EventQueue, Watch};
use crate::wire::{reply_error, Decoder, Message, ProtocolError, PAYLOAD_MAX};
use crate::DomId;

/// Per-domain limits (Xen's xenstored defaults where it has one). The privileged
/// domain is exempt from the node, value and permission quotas.
#[derive(Clone, Debug)]
pub struct Quotas {
    /// Nodes a domain may own (`ENOSPC` beyond).
    pub max_nodes: usize,
    /// Bytes of the nodes a domain owns, counting each node's path, its name in its
    /// parent and its value (`ENOSPC` beyond). The node count alone does not bound
    /// them: a thousand nodes with 2 KiB names and 2 KiB values are megabytes of the
    /// control domain's memory.
    pub max_node_bytes: usize,
    /// Bytes in one value (`E2BIG` beyond).
    pub max_value: usize,
    /// Watches per connection (`E2BIG` beyond).
    pub max_watches: usize,
    /// Watch events queued per connection; further ones are dropped and counted.
    pub max_pending_events: usize,
    /// Requests queued per connection; beyond, the store reads no more of its ring.
    pub max_outstanding: usize,
    /// Open transactions per connection (`ENOSPC` beyond).
    pub max_transactions: usize,
    /// Entries in one permission list (`ENOSPC` beyond).
    pub max_perms: usize,
    /// Distinct nodes one transaction may touch; beyond, the transaction can only be
    /// ended, and a commit fails with `ENOSPC` (its read set cannot grow without bound).
    pub max_transaction_nodes: usize,
    /// Bytes one transaction may hold: the paths it touched and its copies of the
    /// nodes it changed (a copy holds the node's value and all its children's names,
    /// so a few writes under a large directory would otherwise copy megabytes each).
    /// Beyond, as beyond `max_transaction_nodes`; what it held is freed.
    pub max_transaction_bytes: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_nodes: 1000,
            max_node_bytes: 512 * 1024,
            max_value: 2048,
            max_watches: 128,
            max_pending_events: 64,
            max_outstanding: 20,
            max_transactions: 10,
            max_perms: 5,
            max_transaction_nodes: 1024,
            max_transaction_bytes: 64 * 1024,
        }
    }
}

/// The store's configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The domain that bypasses permissions (the control domain; 0 as in Xen).
    pub privileged: DomId,
    /// Per-domain limits.
    pub quotas: Quotas,
}

/// A connection's handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConnId(pub u32);

/// A connection's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Requests answered so far.
    pub served: u64,
    /// Requests waiting.
    pub queued_requests: usize,
    /// Watch events waiting.
    pub pending_events: usize,
    /// Watch events dropped because the queue was full.
    pub dropped_events: u64,
    /// Watches registered.
    pub watches: usize,
    /// Transactions open.
    pub transactions: usize,
    /// Whether the stream broke (the transport should drop the connection).
    pub faulted: bool,
}

/// What one round produced for one connection, in the order to send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The connection.
    pub conn: ConnId,
    /// Replies and watch events.
    pub messages: Vec<Message>,
}

/// A domain introduced over the wire (XS_INTRODUCE), for the transport to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Introduction {
    /// The domain.
    pub domid: DomId,
    /// Its store page's frame, as given.
    pub mfn: u64,
    /// Its store event channel, as given.
    pub port: u32,
    /// The connection created for it.
    pub conn: ConnId,
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) domid: DomId,
    decoder: Decoder,
    requests: VecDeque<Message>,
    pub(crate) events: EventQueue,
    pub(crate) watches: Vec<Watch>,
    pub(crate) transactions: BTreeMap<u32, Transaction>,
    served: u64,
    blocked: bool,
}

/// The store.
#[derive(Debug)]
pub struct Store {
    pub(crate) config: Config,
    pub(crate) tree: Tree,
    pub(crate) conns: BTreeMap<u32, Conn>,
    next_conn: u32,
    pub(crate) next_tx: u32,
    cursor: u32,
    pub(crate) introductions: VecDeque<Introduction>,
}

impl Store {
    /// An empty store (only `/`, owned by the privileged domain).
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            tree: Tree::new(config.privileged),
            config,
            conns: BTreeMap::new(),
            next_conn: 0,
            next_tx: 0,
            cursor: 0,
            introductions: VecDeque::new(),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Number of nodes in the tree.
    #[must_use]
    pub fn node_count(&self) -> usize {
        self.tree.len()
    }

    /// Nodes owned by `domid`.
    #[must_use]
    pub fn owned_by(&self, domid: DomId) -> usize {
        self.tree.owned(domid).nodes
    }

    /// Bytes (paths, names and values) of the nodes owned by `domid`, as the
    /// `max_node_bytes` quota counts them.
    #[must_use]
    pub fn owned_bytes(&self, domid: DomId) -> usize {
        self.tree.owned(domid).bytes
    }

    /// Opens a connection for `domid`.
    pub fn connect(&mut self, domid: DomId) -> ConnId {
        let id = self.next_conn;
        self.next_conn = self.next_conn.wrapping_add(1);
        self.conns.insert(
            id,
            Conn {
                domid,
                decoder: Decoder::new(),
                requests: VecDeque::new(),
                events: EventQueue::default(),
                watches: Vec::new(),
                transactions: BTreeMap::new(),
                served: 0,
                blocked: false,
            },
        );
        ConnId(id)
    }

    /// Closes a connection: its watches, transactions and queues go with it.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.conns.remove(&conn.0);
    }

    /// Connects `domid` and fires `@introduceDomain`.
    pub fn introduce_domain(&mut self, domid: DomId) -> ConnId {
        let conn = self.connect(domid);
        self.fire_special(crate::path::INTRODUCE_DOMAIN);
        conn
    }

    /// Drops every connection of `domid`, hands the nodes it owns to the
    /// privileged domain and drops the permission entries naming it (so that a
    /// later domain with a recycled id inherits neither), and fires
    /// `@releaseDomain`.
    pub fn release_domain(&mut self, domid: DomId) {
        self.conns.retain(|_, c| c.domid != domid);
        if domid != self.config.privileged {
            self.tree.forget_domain(domid, self.config.privileged);
        }
        self.fire_special(crate::path::RELEASE_DOMAIN);
    }

    /// Domains introduced over the wire since the last call, for the transport.
    pub fn take_introductions(&mut self) -> Vec<Introduction> {
        self.introductions.drain(..).collect()
    }

    /// How many bytes the transport may read off `conn`'s ring now: the rest of the
    /// header or message in progress, or 0 while its request queue is full or broken.
    #[must_use]
    pub fn wanted(&self, conn: ConnId) -> usize {
        match self.conns.get(&conn.0) {
            Some(c) if c.requests.len() < self.config.quotas.max_outstanding => c.decoder.wanted(),
            _ => 0,
        }
    }

    /// Feeds bytes read off `conn`'s ring; returns how many were taken (fewer than
    /// given once the request queue fills: the rest belongs back on the ring).
    ///
    /// # Errors
    ///
    /// [`ProtocolError`] if the stream is broken; the connection should be dropped.
    pub fn receive(&mut self, conn: ConnId, bytes: &[u8]) -> Result<usize, ProtocolError> {
        let limit = self.config.quotas.max_outstanding;
        let Some(c) = self.conns.get_mut(&conn.0) else {
            return Ok(0);
        };
        let mut taken = 0;
        while taken < bytes.len() && c.requests.len() < limit {
            let (used, message) = c.decoder.push(&bytes[taken..])?;
            taken += used;
            if let Some(message) = message {
                c.requests.push_back(message);
            }
        }
        Ok(taken)
    }

    /// Queues an already decoded request.
    ///
    /// # Errors
    ///
    /// [`XsError::Noent`] for an unknown connection, [`XsError::Busy`] if its queue is full.
    pub fn submit(&mut self, conn: ConnId, message: Message) -> Result<(), XsError> {
        let limit = self.config.quotas.max_outstanding;
        let c = self.conns.get_mut(&conn.0).ok_or(XsError::Noent)?;
        if c.requests.len() >= limit {
            return Err(XsError::Busy);
        }
        c.requests.push_back(message);
        Ok(())
    }

    /// Marks `conn`'s response ring full (or free again): while blocked it is served no
    /// requests and its events stay queued (bounded), so nothing grows for it.
    pub fn set_blocked(&mut self, conn: ConnId, blocked: bool) {
        if let Some(c) = self.conns.get_mut(&conn.0) {
            c.blocked = blocked;
        }
    }

    /// A connection's counters.
    #[must_use]
    pub fn stats(&self, conn: ConnId) -> Option<ConnStats> {
        self.conns.get(&conn.0).map(|c| ConnStats {
            served: c.served,
            queued_requests: c.requests.len(),
            pending_events: c.events.queue.len(),
            dropped_events: c.events.dropped,
            watches: c.watches.len(),
            transactions: c.transactions.len(),
            faulted: c.decoder.fault().is_some(),
        })
    }

    /// Takes `conn`'s pending watch events.
    pub fn take_events(&mut self, conn: ConnId) -> Vec<Message> {
        self.conns
            .get_mut(&conn.0)
            .map(|c| c.events.queue.drain(..).collect())
            .unwrap_or_default()
    }

    /// One round: every unblocked connection, starting after the one that started the
    /// last round, gets at most `max_per_connection` requests answered; then each gets
    /// its pending watch events. Returns what to send, per connection.
    pub fn serve_round(&mut self, max_per_connection: usize) -> Vec<Output> {
        let ids: Vec<u32> = self.conns.keys().copied().collect();
        let start = ids.iter().position(|&id| id >= self.cursor).unwrap_or(0);
        if let Some(&first) = ids.get(start) {
            self.cursor = first.wrapping_add(1);
        }
        let mut out: BTreeMap<u32, Vec<Message>> = BTreeMap::new();
        for &id in ids[start..].iter().chain(&ids[..start]) {
            for _ in 0..max_per_connection {
                let Some(c) = self.conns.get_mut(&id) else {
                    break;
                };
                if c.blocked {
                    break;
                }
                let Some(request) = c.requests.pop_front() else {
                    break;
                };
                c.served += 1;
                let mut reply = self.process(ConnId(id), &request);
                // A reply goes on the ring only if the client can take it (Xen's
                // `E2BIG`): a directory of many long names would otherwise be
                // megabytes held in the transport's outbox, then a stream the
                // client's decoder refuses.
                if reply.payload.len() > PAYLOAD_MAX {
                    reply = reply_error(&request, XsError::TooBig);
                }
                out.entry(id).or_default().push(reply);
            }
        }
        for (&id, c) in &mut self.conns {
            if !c.blocked && !c.events.queue.is_empty() {
                out.entry(id).or_default().extend(c.events.queue.drain(..));
            }
        }
        out.into_iter()
            .map(|(id, messages)| Output {
                conn: ConnId(id),
                messages,
            })
            .collect()
    }

    /// Routes changes to every connection's watches.
    pub(crate) fn fire(&mut self, changes: &[Change]) {
        let limit = self.config.quotas.max_pending_events;
        let privileged = self.config.privileged;
        for change in changes {
            for c in self.conns.values_mut() {
                watch::route(
                    &c.watches,
                    c.domid,
                    c.domid == privileged,
                    change,
                    &mut c.events,
                    limit,
                );
            }
        }
    }

    fn fire_special(&mut self, special: &str) {
        let limit = self.config.quotas.max_pending_events;
        for c in self.conns.values_mut() {
            watch::route_special(&c.watches, special, &mut c.events, limit);
        }
    }

    /// Runs a tree operation on the tree or, with a non-zero `tx_id`, on that
    /// transaction of `conn`; changes outside a transaction fire at once.
    pub(crate) fn with_view<T>(
        &mut self,
        conn: ConnId,
        tx_id: u32,
        op: impl FnOnce(&mut dyn View, &crate::ops::Caller<'_>) -> Result<(T, Option<Change>), XsError>,
    ) -> Result<T, XsError> {
        let c = self.conns.get_mut(&conn.0).ok_or(XsError::Noent)?;
        let caller = crate::ops::Caller {
            domid: c.domid,
            privileged: c.domid == self.config.privileged,
            quotas: &self.config.quotas,
        };
        if tx_id != 0 {
            let tx = c.transactions.get_mut(&tx_id).ok_or(XsError::Noent)?;
            if tx.overflowed {
                return Err(XsError::Nospc);
            }
            let mut view = TxView {
                base: &self.tree,
                tx,
            };
            let result = op(&mut view, &caller);
            if !caller.privileged
                && (view.tx.touched() > caller.quotas.max_transaction_nodes
                    || view.tx.bytes() > caller.quotas.max_transaction_bytes)
            {
                view.tx.overflow();
                return Err(XsError::Nospc);
            }
            let (value, change) = result?;
            if let Some(change) = change {
                view.tx.record(change);
            }
            return Ok(value);
        }
        let (value, change) = op(&mut self.tree, &caller)?;
        if let Some(change) = change {
            self.fire(&[change]);
        }
        Ok(value)
    }
}
