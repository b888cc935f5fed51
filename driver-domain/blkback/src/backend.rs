//! The backend proper: a table of connected frontends, each with its ring and virtual
//! disk, served round-robin with a cap on requests per frontend per round. A frontend
//! that breaks its ring is disconnected alone; everyone else keeps being served.

use alloc::vec::Vec;
use ring_protocol::blkif::{Blkif, BlkifRequest, BlkifResponse, STATUS_OKAY};
use ring_protocol::{Backend, MalformedEntry, RingError, SharedPage};
use xen_abi::DomId;

use crate::disk::VirtualDisk;
use crate::executor::{BlockOperation, ExecuteError, Executor};
use crate::request::{plan, status_of, Rejection, Work};

/// A frontend's place in the backend's table (stable for the backend's lifetime).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrontendId(pub usize);

/// Why a frontend is no longer served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// It broke the ring protocol (producer index jump or rewind); the ring is poisoned.
    Ring(RingError),
    /// The integration disconnected it (store state Closing, domain died).
    Requested,
}

/// What the backend has done for one frontend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrontendCounters {
    /// Requests answered, successfully or not.
    pub requests_served: u64,
    /// Requests answered with an error status.
    pub errors: u64,
    /// Why it was disconnected, if it was.
    pub disconnect: Option<DisconnectReason>,
}

/// Why a frontend could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// The virtual disk reaches past the end of the physical disk.
    ExtentPastPhysicalDisk,
    /// The domain id is reserved (not a real domain).
    InvalidDomain,
}

/// Why one request was answered with an error status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// It did not decode (segment count, sector range in a page, operation).
    Malformed(MalformedEntry),
    /// It decoded but validation refused it (range, mode, segments).
    Rejected(Rejection),
    /// The executor failed it (a grant that would not map, a device error).
    Failed(ExecuteError),
}

/// One request answered with an error status, for the integration's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Whose request.
    pub frontend: FrontendId,
    /// The request's id (echoed in the response).
    pub id: u64,
    /// Its operation code.
    pub operation: u8,
    /// The status it was answered with.
    pub status: i16,
    /// Why.
    pub reason: RefusalReason,
}

/// What one round of service did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Frontends that must be sent an event (responses published past their event index).
    pub notify: Vec<FrontendId>,
    /// Requests answered in this round, over all frontends.
    pub requests_served: u32,
    /// Whether some frontend still has requests waiting: run another round without
    /// waiting for an event.
    pub more_pending: bool,
    /// Requests answered with an error status in this round, in order.
    pub refused: Vec<Refusal>,
}

struct Connection<'page> {
    domain: DomId,
    disk: VirtualDisk,
    /// `None` once disconnected: the page is touched no more.
    ring: Option<Backend<'page, Blkif>>,
    counters: FrontendCounters,
    served_this_round: u32,
}

/// A block backend serving many frontends over one [`Executor`].
pub struct BlockBackend<'page, E: Executor> {
    executor: E,
    physical_sector_count: u64,
    connections: Vec<Connection<'page>>,
    /// Where the next round starts, so no frontend is always served first.
    next_start: usize,
}

impl<'page, E: Executor> BlockBackend<'page, E> {
    /// A backend over a physical disk of `physical_sector_count` sectors.
    pub fn new(executor: E, physical_sector_count: u64) -> Self {
        Self {
            executor,
            physical_sector_count,
            connections: Vec::new(),
            next_start: 0,
        }
    }

    /// Starts serving `domain`'s ring in `page` (initialized by the frontend from index
    /// 0) with `disk` as its virtual disk. Extents may overlap (a shared read-only image);
    /// the toolstack decides that.
    ///
    /// # Errors
    ///
    /// [`SetupError`] if the disk does not fit the physical disk or the domain id is
    /// reserved.
    pub fn add_frontend(
        &mut self,
        domain: DomId,
        page: SharedPage<'page>,
        disk: VirtualDisk,
    ) -> Result<FrontendId, SetupError> {
        if !domain.is_domain() {
            return Err(SetupError::InvalidDomain);
        }
        if disk.end_sector() > self.physical_sector_count {
            return Err(SetupError::ExtentPastPhysicalDisk);
        }
        self.connections.push(Connection {
            domain,
            disk,
            ring: Some(Backend::attach(page)),
            counters: FrontendCounters::default(),
            served_this_round: 0,
        });
        Ok(FrontendId(self.connections.len() - 1))
    }

    /// Stops serving a frontend (its ring page is touched no more). Unknown ids and
    /// frontends already disconnected are left alone.
    pub fn disconnect(&mut self, frontend: FrontendId) {
        if let Some(connection) = self.connections.get_mut(frontend.0) {
            if connection.ring.take().is_some() {
                connection.counters.disconnect = Some(DisconnectReason::Requested);
            }
        }
    }

    /// Serves `frontend` again over a fresh ring in `page` (initialized by the frontend
    /// from index 0), after it or we disconnected: the XenbusState handshake ran again.
    /// Its disk and counters stay; the disconnect reason is cleared. Returns `false` for
    /// an unknown id.
    pub fn reattach(&mut self, frontend: FrontendId, page: SharedPage<'page>) -> bool {
        let Some(connection) = self.connections.get_mut(frontend.0) else {
            return false;
        };
        connection.ring = Some(Backend::attach(page));
        connection.counters.disconnect = None;
        true
    }

    /// Whether `frontend` is still served.
    pub fn is_connected(&self, frontend: FrontendId) -> bool {
        self.connections
            .get(frontend.0)
            .is_some_and(|connection| connection.ring.is_some())
    }

    /// The counters of `frontend`, if it exists.
    pub fn counters(&self, frontend: FrontendId) -> Option<FrontendCounters> {
        self.connections
            .get(frontend.0)
            .map(|connection| connection.counters)
    }

    /// Requests answered for `frontend` in the last round (for fairness checks).
    pub fn served_last_round(&self, frontend: FrontendId) -> u32 {
        self.connections
            .get(frontend.0)
            .map_or(0, |connection| connection.served_this_round)
    }

    /// The domain behind `frontend`.
    pub fn domain(&self, frontend: FrontendId) -> Option<DomId> {
        self.connections
            .get(frontend.0)
            .map(|connection| connection.domain)
    }

    /// The executor, for the integration's bookkeeping and tests.
    pub fn executor(&self) -> &E {
        &self.executor
    }

    /// The executor, mutably.
    pub fn executor_mut(&mut self) -> &mut E {
        &mut self.executor
    }

    /// Serves every connected frontend once, at most `cap` requests each (a `cap` of 0 is
    /// taken as 1), starting one frontend further than the last round. Publishes each
    /// frontend's responses and re-arms its request event when its ring is drained.
    pub fn serve_round(&mut self, cap: u32) -> RoundReport {
        let cap = cap.max(1);
        let mut report = RoundReport::default();
        let count = self.connections.len();
        if count == 0 {
            return report;
        }
        let start = self.next_start % count;
        self.next_start = (start + 1) % count;
        for offset in 0..count {
            let index = (start + offset) % count;
            let connection = &mut self.connections[index];
            connection.served_this_round = 0;
            let outcome = serve_frontend(
                connection,
                &mut self.executor,
                cap,
                FrontendId(index),
                &mut report.refused,
            );
            report.requests_served += connection.served_this_round;
            match outcome {
                Ok(Service { notify, pending }) => {
                    if notify {
                        report.notify.push(FrontendId(index));
                    }
                    report.more_pending |= pending;
                }
                Err(error) => {
                    connection.ring = None;
                    connection.counters.disconnect = Some(DisconnectReason::Ring(error));
                }
            }
        }
        report
    }
}

struct Service {
    notify: bool,
    pending: bool,
}

/// Serves up to `cap` requests of one frontend.
///
/// # Errors
///
/// A fatal ring error: the caller disconnects the frontend.
fn serve_frontend<E: Executor>(
    connection: &mut Connection<'_>,
    executor: &mut E,
    cap: u32,
    frontend: FrontendId,
    refused: &mut Vec<Refusal>,
) -> Result<Service, RingError> {
    let Some(ring) = connection.ring.as_mut() else {
        return Ok(Service {
            notify: false,
            pending: false,
        });
    };
    for _ in 0..cap {
        let (response, reason) = match ring.next_request() {
            Ok(None) => break,
            Ok(Some(request)) => {
                let (status, reason) =
                    handle(&request, connection.domain, &connection.disk, executor);
                (BlkifResponse::to(&request, status), reason)
            }
            Err(RingError::Malformed(malformed)) => (
                BlkifResponse::for_malformed(&malformed),
                Some(RefusalReason::Malformed(malformed)),
            ),
            Err(error) => return Err(error),
        };
        if let Some(reason) = reason.filter(|_| response.status != STATUS_OKAY) {
            refused.push(Refusal {
                frontend,
                id: response.id,
                operation: response.operation,
                status: response.status,
                reason,
            });
        }
        ring.push_response(&response)?;
        connection.served_this_round += 1;
        connection.counters.requests_served += 1;
        if response.status != STATUS_OKAY {
            connection.counters.errors += 1;
        }
    }
    let notify = ring.publish_responses()?.is_required();
    // Arms req_event when drained, so the frontend's next request raises an event.
    let pending = ring.final_check_for_requests()?;
    Ok(Service { notify, pending })
}

/// Validates one request and has the executor carry it out; returns the blkif status
/// and, for an error, why.
fn handle<E: Executor>(
    request: &BlkifRequest,
    domain: DomId,
    disk: &VirtualDisk,
    executor: &mut E,
) -> (i16, Option<RefusalReason>) {
    let work = match plan(request, disk) {
        Ok(work) => work,
        Err(rejection) => {
            return (
                Rejection::status(rejection),
                Some(RefusalReason::Rejected(rejection)),
            )
        }
    };
    let result = match &work {
        Work::Read(segments) => executor.execute(&BlockOperation::Read {
            frontend: domain,
            segments: segments.as_slice(),
        }),
        Work::Write(segments) => executor.execute(&BlockOperation::Write {
            frontend: domain,
            segments: segments.as_slice(),
        }),
        Work::WriteThenFlush(segments) => executor
            .execute(&BlockOperation::Write {
                frontend: domain,
                segments: segments.as_slice(),
            })
            .and_then(|()| executor.execute(&BlockOperation::Flush)),
        Work::Flush => executor.execute(&BlockOperation::Flush),
        Work::Discard {
            physical_sector,
            sector_count,
            secure,
        } => executor.execute(&BlockOperation::Discard {
            physical_sector: *physical_sector,
            sector_count: *sector_count,
            secure: *secure,
        }),
    };
    (status_of(result), result.err().map(RefusalReason::Failed))
}
