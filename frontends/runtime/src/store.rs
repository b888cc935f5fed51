//! The store client every frontend and backend uses: Xen's `xs_wire` requests
//! over this domain's store ring (the page at `STORE_PFN`, granted to the
//! control domain in reserved ref 1) and store event channel, both named in
//! start-info.
//!
//! The store is another domain and is not trusted more than it must be: a
//! reply is matched by its request id, a stray or malformed one is an error,
//! and every wait has a deadline. Watch events that arrive while a request
//! is outstanding are kept (a bounded queue; the oldest are dropped and
//! counted beyond it) for [`StoreConnection::next_event`].
//!
//! The logic is generic over [`Wait`] (how to kick the store and sleep until
//! it answers), so host tests run it against the real store library.
//!
//! A call's wait for its reply uses up the store port's notification, and
//! the same notification may announce watch events: read before the reply
//! (queued), or written behind it in the same batch (the store sends a
//! round's replies first, then its events) and left on the ring. Either way
//! nothing would wake a caller that now blocks on the port, so every call,
//! pipeline and [`StoreConnection::next_event`] ends by telling its [`Wait`]
//! whether news is left unread ([`Wait::set_unread`]): [`EventWait`] then
//! keeps the port fired in the event loop, and any wait on it, the caller's
//! own included, returns at once until the news is taken.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ring_protocol::store::StoreClient;
use ring_protocol::{RingError, SharedPage};
use xenstore::checked::{self, XenbusState};
use xenstore::wire::{Decoder, Message, MsgType, ProtocolError, PAYLOAD_MAX};
use xenstore::{Perms, XsError};

use crate::event::{EventLoop, Port, PortSet};
use crate::hypercall::Errno;

/// Watch events kept while nobody asks for them; older ones are dropped.
pub const MAX_QUEUED_EVENTS: usize = 64;
/// How long one request may wait for its reply by default.
pub const DEFAULT_TIMEOUT_NS: u64 = 5_000_000_000;

/// What went wrong talking to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The store answered with an error.
    Store(XsError),
    /// The ring's indices were broken (by the store or by us).
    Ring(RingError),
    /// The reply stream was malformed.
    Protocol(ProtocolError),
    /// A reply of the wrong type or for an unknown request.
    Unexpected,
    /// No answer before the deadline.
    Timeout,
    /// The request is larger than the store accepts.
    TooLarge,
    /// An event-channel hypercall failed.
    Event(Errno),
    /// This domain has no store ring (no store event channel in start-info).
    NoStore,
}

impl fmt::Display for StoreError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Store(error) => write!(formatter, "store error {}", error.name()),
            StoreError::Ring(error) => write!(formatter, "store ring broken: {error:?}"),
            StoreError::Protocol(error) => write!(formatter, "malformed reply stream: {error:?}"),
            StoreError::Unexpected => write!(formatter, "unexpected reply"),
            StoreError::Timeout => write!(formatter, "no reply in time"),
            StoreError::TooLarge => write!(formatter, "request too large"),
            StoreError::Event(errno) => write!(formatter, "event channel: {errno:?}"),
            StoreError::NoStore => write!(formatter, "no store ring in start-info"),
        }
    }
}

impl From<RingError> for StoreError {
    fn from(error: RingError) -> Self {
        StoreError::Ring(error)
    }
}

impl From<XsError> for StoreError {
    fn from(error: XsError) -> Self {
        StoreError::Store(error)
    }
}

/// A watch firing: the path that changed and the watch's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The node that changed (as the store names it).
    pub path: String,
    /// The token given when the watch was set.
    pub token: String,
}

/// How the client kicks the store and waits for it.
pub trait Wait {
    /// Tells the store there are requests (or free response space).
    fn notify(&mut self) -> Result<(), StoreError>;
    /// Sleeps until the store may have written something or `deadline_ns`
    /// passes (an early return is fine: the caller looks again).
    fn wait(&mut self, deadline_ns: u64) -> Result<(), StoreError>;
    /// The current time, in the units of the deadlines.
    fn now_ns(&self) -> u64;
    /// Says whether the client holds news from the store (watch events
    /// queued, or bytes on the ring) whose notification a wait used up:
    /// while it does, a wait for the store must return at once; once it
    /// has read everything, a notification already taken announces
    /// nothing more.
    fn set_unread(&mut self, unread: bool);
}

/// [`Wait`] over this domain's store event channel and event loop.
pub struct EventWait<'l, 'a> {
    /// The store event channel.
    pub port: Port,
    /// The domain's event loop (other ports that fire stay in it).
    pub events: &'l mut EventLoop<'a>,
}

impl Wait for EventWait<'_, '_> {
    fn notify(&mut self) -> Result<(), StoreError> {
        crate::event::send(self.port).map_err(StoreError::Event)
    }

    fn wait(&mut self, deadline_ns: u64) -> Result<(), StoreError> {
        self.events.wait_until(&PortSet::of(self.port), deadline_ns).map(drop).map_err(StoreError::Event)
    }

    fn now_ns(&self) -> u64 {
        crate::time::system_time_ns()
    }

    /// Keeps the port fired while news is unread, so the domain's next wait
    /// on it (a serving loop's, blocking on several ports) does not sleep
    /// past the news; forgets it once all is read. Forgetting is sound
    /// then: the store writes before it notifies, so whatever a notification
    /// already taken announced was on the ring, and the client has read it.
    fn set_unread(&mut self, unread: bool) {
        if unread {
            self.events.keep_fired(self.port);
        } else {
            self.events.forget_fired(self.port);
        }
    }
}

/// What [`StoreConnection::pipeline`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pipelined {
    /// Replies received.
    pub replies: u64,
    /// Of those, error replies.
    pub errors: u64,
}

/// One domain's connection to the store.
pub struct StoreConnection<'page> {
    ring: StoreClient<'page>,
    decoder: Decoder,
    next_request: u32,
    events: VecDeque<WatchEvent>,
    dropped_events: u64,
    timeout_ns: u64,
    /// We read from a full response ring: the store may be holding more
    /// for us until we say there is room (it writes only when notified),
    /// so we owe it a notification before we next sleep or return.
    owe_kick: bool,
}

impl<'page> StoreConnection<'page> {
    /// A connection over the store page `page`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Ring`] if the page's indices are inconsistent.
    pub fn new(page: SharedPage<'page>) -> Result<Self, StoreError> {
        Ok(StoreConnection {
            ring: StoreClient::attach(page)?,
            decoder: Decoder::new(),
            next_request: 1,
            events: VecDeque::new(),
            dropped_events: 0,
            timeout_ns: DEFAULT_TIMEOUT_NS,
            owe_kick: false,
        })
    }

    /// Sets how long a request waits for its reply.
    pub fn set_timeout_ns(&mut self, timeout_ns: u64) {
        self.timeout_ns = timeout_ns;
    }

    /// Watch events dropped because nobody took them.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// Sends one request and waits for its reply; returns the reply payload.
    ///
    /// # Errors
    ///
    /// The store's error reply, or a transport failure (see [`StoreError`]).
    pub fn call(&mut self, wait: &mut impl Wait, kind: MsgType, tx_id: u32, payload: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let result = self.exchange(wait, kind, tx_id, payload);
        let settled = self.settle(wait);
        let value = result?;
        settled.map(|()| value)
    }

    /// [`call`](Self::call) without telling `wait` what is left unread.
    fn exchange(&mut self, wait: &mut impl Wait, kind: MsgType, tx_id: u32, payload: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        if payload.len() > PAYLOAD_MAX {
            return Err(StoreError::TooLarge);
        }
        let request_id = self.next_request;
        self.next_request = self.next_request.wrapping_add(1).max(1);
        let bytes = Message::new(kind, request_id, tx_id, payload).encode();
        let deadline = wait.now_ns().saturating_add(self.timeout_ns);
        let mut sent = 0;
        while sent < bytes.len() {
            let written = self.ring.requests.write(&bytes[sent..])?;
            if written > 0 {
                sent += written;
                wait.notify()?;
                continue;
            }
            // The ring is full: take what the store answered meanwhile (it
            // may be waiting for room to reply) and sleep.
            self.pump(None)?;
            if wait.now_ns() >= deadline {
                return Err(StoreError::Timeout);
            }
            self.sleep(wait, deadline)?;
        }
        loop {
            if let Some(reply) = self.pump(Some(request_id))? {
                if reply.msg_type() == Some(MsgType::Error) {
                    return Err(reply.error().map_or(StoreError::Unexpected, StoreError::Store));
                }
                if reply.kind != kind as u32 {
                    return Err(StoreError::Unexpected);
                }
                return Ok(reply.payload);
            }
            if wait.now_ns() >= deadline {
                return Err(StoreError::Timeout);
            }
            self.sleep(wait, deadline)?;
        }
    }

    /// Sends `count` requests made by `make(index)` as fast as the ring
    /// takes them, without waiting for each reply (a load generator, and
    /// what a flooding domain does); counts the replies and error replies.
    ///
    /// # Errors
    ///
    /// `Timeout` if the store stops answering for the connection's
    /// timeout, or a transport failure.
    pub fn pipeline(
        &mut self,
        wait: &mut impl Wait,
        count: u64,
        make: impl FnMut(u64) -> (MsgType, Vec<u8>),
    ) -> Result<Pipelined, StoreError> {
        let result = self.run_pipeline(wait, count, make);
        let settled = self.settle(wait);
        let value = result?;
        settled.map(|()| value)
    }

    /// [`pipeline`](Self::pipeline) without telling `wait` what is left
    /// unread.
    fn run_pipeline(&mut self, wait: &mut impl Wait, count: u64, mut make: impl FnMut(u64) -> (MsgType, Vec<u8>)) -> Result<Pipelined, StoreError> {
        let mut report = Pipelined::default();
        let (mut made, mut pending): (u64, Vec<u8>) = (0, Vec::new());
        let mut sent_at = 0;
        let mut last_progress = wait.now_ns();
        while report.replies < count {
            let mut progress = false;
            if sent_at == pending.len() && made < count {
                let (kind, payload) = make(made);
                made += 1;
                let request_id = self.next_request;
                self.next_request = self.next_request.wrapping_add(1).max(1);
                pending = Message::new(kind, request_id, 0, payload).encode();
                sent_at = 0;
            }
            if sent_at < pending.len() {
                let written = self.ring.requests.write(&pending[sent_at..])?;
                sent_at += written;
                if written > 0 {
                    progress = true;
                    wait.notify()?;
                }
            }
            let mut buffer = [0u8; 256];
            loop {
                let wanted = self.decoder.wanted().min(buffer.len());
                let read = if wanted == 0 { 0 } else { self.read_responses(&mut buffer[..wanted])? };
                if read == 0 {
                    break;
                }
                progress = true;
                let (_, message) = self.decoder.push(&buffer[..read]).map_err(StoreError::Protocol)?;
                match message {
                    Some(message) if message.msg_type() == Some(MsgType::WatchEvent) => self.queue_event(&message)?,
                    Some(message) => {
                        report.replies += 1;
                        report.errors += u64::from(message.msg_type() == Some(MsgType::Error));
                    }
                    None => {}
                }
            }
            if progress {
                last_progress = wait.now_ns();
                continue;
            }
            let deadline = last_progress.saturating_add(self.timeout_ns);
            if wait.now_ns() >= deadline {
                return Err(StoreError::Timeout);
            }
            // Always kick: the store may also be waiting for our requests.
            self.owe_kick = false;
            wait.notify()?;
            wait.wait(deadline)?;
        }
        Ok(report)
    }

    /// Reads what the store wrote: watch events are queued; the reply to
    /// `expecting`, if it came, is returned. A reply to anything else is an
    /// error (we have one request outstanding at a time).
    fn pump(&mut self, expecting: Option<u32>) -> Result<Option<Message>, StoreError> {
        let mut buffer = [0u8; 256];
        loop {
            let wanted = self.decoder.wanted().min(buffer.len());
            if wanted == 0 {
                return Err(StoreError::Protocol(self.decoder.fault().unwrap_or(ProtocolError::TooLong(0))));
            }
            let count = self.read_responses(&mut buffer[..wanted])?;
            if count == 0 {
                return Ok(None);
            }
            let (used, message) = self.decoder.push(&buffer[..count]).map_err(StoreError::Protocol)?;
            debug_assert_eq!(used, count, "the decoder takes what it asked for");
            let Some(message) = message else { continue };
            if message.msg_type() == Some(MsgType::WatchEvent) {
                self.queue_event(&message)?;
                continue;
            }
            if Some(message.req_id) == expecting {
                return Ok(Some(message));
            }
            return Err(StoreError::Unexpected);
        }
    }

    fn queue_event(&mut self, message: &Message) -> Result<(), StoreError> {
        let [path, token] = xenstore::wire::split_args::<2>(&message.payload)?;
        let (Ok(path), Ok(token)) = (core::str::from_utf8(path), core::str::from_utf8(token)) else {
            return Err(StoreError::Unexpected);
        };
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
            self.dropped_events += 1;
        }
        self.events.push_back(WatchEvent { path: String::from(path), token: String::from(token) });
        Ok(())
    }

    /// Whether watch events wait in the queue: a call read them off the
    /// ring while waiting for its reply, and that wait used up the store
    /// port's notification of them (the call told its [`Wait`] so).
    pub fn has_queued_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Whether news is left unread: events in the queue, or bytes on the
    /// ring (events the store wrote behind a reply, which the call that
    /// took the reply left there). A ring the store broke reads as no
    /// news: the next call reports it, and a port kept fired for it would
    /// wake a serving loop for ever.
    fn unread(&mut self) -> bool {
        !self.events.is_empty() || self.ring.responses.available().is_ok_and(|bytes| bytes > 0)
    }

    /// Tells `wait` whether news is left unread, after anything that read
    /// the ring or waited on the port (see the module's documentation), and
    /// tells the store of the room we made if it may be waiting for it.
    fn settle(&mut self, wait: &mut impl Wait) -> Result<(), StoreError> {
        let unread = self.unread();
        wait.set_unread(unread);
        self.kick_if_owed(wait)
    }

    /// Reads response bytes into `buffer`; notes when the ring was full (the
    /// store writes as much as fits and then waits for a notification that
    /// we made room, as Xen's xenstored does, so a reader that empties a
    /// full ring must send one).
    fn read_responses(&mut self, buffer: &mut [u8]) -> Result<usize, StoreError> {
        if self.ring.responses.available()? == ring_protocol::store::RING_SIZE {
            self.owe_kick = true;
        }
        Ok(self.ring.responses.read(buffer)?)
    }

    /// Notifies the store if we emptied a full ring since the last
    /// notification.
    fn kick_if_owed(&mut self, wait: &mut impl Wait) -> Result<(), StoreError> {
        if core::mem::take(&mut self.owe_kick) {
            wait.notify()?;
        }
        Ok(())
    }

    /// Sleeps until the store may have written, after telling it of any
    /// room we made (else a reply longer than the ring never finishes).
    fn sleep(&mut self, wait: &mut impl Wait, deadline_ns: u64) -> Result<(), StoreError> {
        self.kick_if_owed(wait)?;
        wait.wait(deadline_ns)
    }

    /// The next watch event, waiting for one until `deadline_ns`; `None` if
    /// none came in time.
    ///
    /// # Errors
    ///
    /// A transport failure.
    pub fn next_event(&mut self, wait: &mut impl Wait, deadline_ns: u64) -> Result<Option<WatchEvent>, StoreError> {
        let result = self.take_event(wait, deadline_ns);
        let settled = self.settle(wait);
        let value = result?;
        settled.map(|()| value)
    }

    /// [`next_event`](Self::next_event) without telling `wait` what is
    /// left unread.
    fn take_event(&mut self, wait: &mut impl Wait, deadline_ns: u64) -> Result<Option<WatchEvent>, StoreError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            if self.pump(None)?.is_some() {
                return Err(StoreError::Unexpected);
            }
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            if wait.now_ns() >= deadline_ns {
                return Ok(None);
            }
            self.sleep(wait, deadline_ns)?;
        }
    }

    /// `XS_READ`.
    pub fn read(&mut self, wait: &mut impl Wait, tx_id: u32, path: &str) -> Result<Vec<u8>, StoreError> {
        self.call(wait, MsgType::Read, tx_id, args(&[path.as_bytes()]))
    }

    /// `XS_READ` of a XenbusState node, parsed strictly.
    pub fn read_state(&mut self, wait: &mut impl Wait, path: &str) -> Result<XenbusState, StoreError> {
        let value = self.read(wait, 0, path)?;
        Ok(checked::parse_state(&value)?)
    }

    /// `XS_READ` of a decimal u32, parsed strictly.
    pub fn read_u32(&mut self, wait: &mut impl Wait, tx_id: u32, path: &str) -> Result<u32, StoreError> {
        let value = self.read(wait, tx_id, path)?;
        Ok(checked::parse_u32(&value)?)
    }

    /// `XS_WRITE` (`path\0value`, the value without a NUL, as in Xen).
    pub fn write(&mut self, wait: &mut impl Wait, tx_id: u32, path: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut payload = args(&[path.as_bytes()]);
        payload.extend_from_slice(value);
        self.call(wait, MsgType::Write, tx_id, payload).map(drop)
    }

    /// Writes a XenbusState into a `state` node.
    pub fn write_state(&mut self, wait: &mut impl Wait, path: &str, state: XenbusState) -> Result<(), StoreError> {
        self.write(wait, 0, path, &state.to_value())
    }

    /// `XS_MKDIR`.
    pub fn mkdir(&mut self, wait: &mut impl Wait, tx_id: u32, path: &str) -> Result<(), StoreError> {
        self.call(wait, MsgType::Mkdir, tx_id, args(&[path.as_bytes()])).map(drop)
    }

    /// `XS_RM`.
    pub fn rm(&mut self, wait: &mut impl Wait, tx_id: u32, path: &str) -> Result<(), StoreError> {
        self.call(wait, MsgType::Rm, tx_id, args(&[path.as_bytes()])).map(drop)
    }

    /// `XS_DIRECTORY`: the children's names.
    pub fn directory(&mut self, wait: &mut impl Wait, tx_id: u32, path: &str) -> Result<Vec<String>, StoreError> {
        let reply = self.call(wait, MsgType::Directory, tx_id, args(&[path.as_bytes()]))?;
        let body = reply.strip_suffix(&[0]).unwrap_or(&reply);
        if body.is_empty() {
            return Ok(Vec::new());
        }
        body.split(|&byte| byte == 0)
            .map(|name| core::str::from_utf8(name).map(String::from).map_err(|_| StoreError::Unexpected))
            .collect()
    }

    /// `XS_SET_PERMS`.
    pub fn set_perms(&mut self, wait: &mut impl Wait, tx_id: u32, path: &str, perms: &Perms) -> Result<(), StoreError> {
        let mut payload = args(&[path.as_bytes()]);
        payload.extend_from_slice(&perms.to_wire());
        self.call(wait, MsgType::SetPerms, tx_id, payload).map(drop)
    }

    /// `XS_WATCH`: events for `path` and below carry `token`. The store
    /// fires one at once, as Xen's does.
    pub fn watch(&mut self, wait: &mut impl Wait, path: &str, token: &str) -> Result<(), StoreError> {
        self.call(wait, MsgType::Watch, 0, args(&[path.as_bytes(), token.as_bytes()])).map(drop)
    }

    /// `XS_UNWATCH`.
    pub fn unwatch(&mut self, wait: &mut impl Wait, path: &str, token: &str) -> Result<(), StoreError> {
        self.call(wait, MsgType::Unwatch, 0, args(&[path.as_bytes(), token.as_bytes()])).map(drop)
    }

    /// `XS_TRANSACTION_START`: the new transaction's id.
    pub fn transaction_start(&mut self, wait: &mut impl Wait) -> Result<u32, StoreError> {
        let reply = self.call(wait, MsgType::TransactionStart, 0, args(&[b""]))?;
        Ok(checked::parse_u32(reply.strip_suffix(&[0]).unwrap_or(&reply))?)
    }

    /// `XS_TRANSACTION_END`, committing or not. A conflicting commit is
    /// `Store(Again)`: run the transaction again.
    pub fn transaction_end(&mut self, wait: &mut impl Wait, tx_id: u32, commit: bool) -> Result<(), StoreError> {
        let flag: &[u8] = if commit { b"T" } else { b"F" };
        self.call(wait, MsgType::TransactionEnd, tx_id, args(&[flag])).map(drop)
    }
}

/// `a\0b\0...`.
fn args(parts: &[&[u8]]) -> Vec<u8> {
    let mut payload = Vec::new();
    for part in parts {
        payload.extend_from_slice(part);
        payload.push(0);
    }
    payload
}

/// This domain's store connection and event channel, from start-info.
///
/// # Errors
///
/// [`StoreError::NoStore`] if start-info names no store event channel (the
/// control domain, or a machine without one).
pub fn open() -> Result<(StoreConnection<'static>, Port), StoreError> {
    let info = crate::start::start_info().ok_or(StoreError::NoStore)?;
    if info.store_evtchn == 0 {
        return Err(StoreError::NoStore);
    }
    let page = crate::machine::ring_page(info.store_pfn, info.nr_pages).ok_or(StoreError::NoStore)?;
    Ok((StoreConnection::new(page)?, Port(info.store_evtchn)))
}

#[cfg(test)]
mod tests;
