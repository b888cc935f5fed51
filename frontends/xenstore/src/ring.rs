//! The store's side of one domain's store ring (`xenstore_domain_interface`,
//! see `ring_protocol::store`): reads request bytes into the store, at most
//! what the connection's bounded queue takes (the rest waits on the ring:
//! the domain's own backlog, not ours), and writes replies and watch events
//! back as the response ring has room.
//!
//! What a round produced for a connection waits in its outbox; while the
//! outbox is not empty the connection is marked blocked, so the store serves
//! it nothing more and its outbox is bounded by one round's output. The page
//! is re-attached on every call, so nothing here borrows the mapping.

use alloc::vec::Vec;

use ring_protocol::store::StoreServer;
use ring_protocol::{RingError, SharedPage};

use crate::store::{ConnId, Store};
use crate::wire::{Message, ProtocolError};

/// Why a connection must be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServiceError {
    /// The domain broke its ring's indices.
    Ring(RingError),
    /// The domain's request stream is malformed.
    Protocol(ProtocolError),
}

/// One domain's store ring as the store serves it.
#[derive(Debug)]
pub struct RingConnection {
    /// The store's connection for the domain.
    pub conn: ConnId,
    outbox: Vec<u8>,
    sent: usize,
    /// Request bytes taken off the ring so far.
    pub bytes_in: u64,
    /// Reply bytes put on the ring so far.
    pub bytes_out: u64,
}

/// What one pass over a connection did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Request bytes taken (the domain should be told there is room).
    pub taken: usize,
    /// Reply bytes written (the domain should be told there is news).
    pub written: usize,
}

impl Pass {
    /// Whether the domain should get a notification.
    #[must_use]
    pub fn notify(&self) -> bool {
        self.taken > 0 || self.written > 0
    }
}

impl RingConnection {
    /// A ring for the store connection `conn`.
    #[must_use]
    pub fn new(conn: ConnId) -> Self {
        Self {
            conn,
            outbox: Vec::new(),
            sent: 0,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Reply bytes waiting for room on the ring.
    #[must_use]
    pub fn backlog(&self) -> usize {
        self.outbox.len() - self.sent
    }

    /// Reads what the domain wrote, as much as the store takes now.
    ///
    /// # Errors
    ///
    /// [`ServiceError`] if the domain broke the ring or the stream.
    pub fn receive(&mut self, store: &mut Store, page: SharedPage<'_>) -> Result<usize, ServiceError> {
        let mut server = StoreServer::attach(page).map_err(ServiceError::Ring)?;
        let mut buffer = [0u8; 256];
        let mut total = 0;
        loop {
            let wanted = store.wanted(self.conn).min(buffer.len());
            if wanted == 0 {
                break;
            }
            let count = server.requests.read(&mut buffer[..wanted]).map_err(ServiceError::Ring)?;
            if count == 0 {
                break;
            }
            let taken = store.receive(self.conn, &buffer[..count]).map_err(ServiceError::Protocol)?;
            // `wanted` bounds what we read to what the decoder takes.
            debug_assert_eq!(taken, count);
            total += count;
        }
        self.bytes_in += total as u64;
        Ok(total)
    }

    /// Queues a round's output for this connection.
    pub fn queue(&mut self, messages: &[Message]) {
        if self.sent == self.outbox.len() {
            self.outbox.clear();
            self.sent = 0;
        }
        for message in messages {
            message.encode_into(&mut self.outbox);
        }
    }

    /// Writes what is queued as the ring has room; blocks the connection in
    /// the store while something is left, unblocks it when all is out.
    ///
    /// # Errors
    ///
    /// [`ServiceError::Ring`] if the domain broke the response ring.
    pub fn flush(&mut self, store: &mut Store, page: SharedPage<'_>) -> Result<usize, ServiceError> {
        let mut written = 0;
        if self.backlog() > 0 {
            let mut server = StoreServer::attach(page).map_err(ServiceError::Ring)?;
            written = server.responses.write(&self.outbox[self.sent..]).map_err(ServiceError::Ring)?;
            self.sent += written;
            self.bytes_out += written as u64;
        }
        store.set_blocked(self.conn, self.backlog() > 0);
        Ok(written)
    }
}

/// One service pass over a set of rings: read every ring, run one
/// round-robin round with at most `cap` requests per connection, queue and
/// flush the output. `page_of` lends each connection's page; `fail` is told
/// of each connection that must be dropped (it is skipped afterwards).
/// Returns each connection's pass, in `rings` order.
pub fn serve<'p>(
    store: &mut Store,
    rings: &mut [RingConnection],
    cap: usize,
    mut page_of: impl FnMut(ConnId) -> Option<SharedPage<'p>>,
    mut fail: impl FnMut(ConnId, ServiceError),
) -> Vec<Pass> {
    let mut passes = alloc::vec![Pass::default(); rings.len()];
    let mut broken = alloc::vec![false; rings.len()];
    for (index, ring) in rings.iter_mut().enumerate() {
        let Some(page) = page_of(ring.conn) else { continue };
        // Room may have appeared since the last pass: flush first.
        match ring.flush(store, page.clone()).and_then(|written| Ok((written, ring.receive(store, page)?))) {
            Ok((written, taken)) => passes[index] = Pass { taken, written },
            Err(error) => {
                broken[index] = true;
                fail(ring.conn, error);
            }
        }
    }
    let outputs = store.serve_round(cap);
    for output in outputs {
        let Some(index) = rings.iter().position(|ring| ring.conn == output.conn) else { continue };
        if broken[index] {
            continue;
        }
        rings[index].queue(&output.messages);
        let Some(page) = page_of(output.conn) else { continue };
        match rings[index].flush(store, page) {
            Ok(written) => passes[index].written += written,
            Err(error) => {
                broken[index] = true;
                fail(output.conn, error);
            }
        }
    }
    passes
}
