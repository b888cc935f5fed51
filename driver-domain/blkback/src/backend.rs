//! The backend proper: a table of connected frontends, each with its ring and virtual
//! disk, served round-robin with a cap on requests per frontend per round. A frontend
//! that breaks its ring is disconnected alone; everyone else keeps being served.

use alloc::vec::Vec;
use ring_protocol::blkif::{Blkif, BlkifResponse, STATUS_OKAY};
use ring_protocol::{Backend, MalformedEntry, RingError, SharedPage};
use xen_abi::DomId;

use crate::disk::VirtualDisk;
use crate::executor::{BlockOperation, ExecuteError, Executor, GrantPolicy};
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
    grants: GrantPolicy,
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
            grants: GrantPolicy::Transient,
        });
        Ok(FrontendId(self.connections.len() - 1))
    }

    /// Stops serving a frontend (its ring page is touched no more) and has the executor
    /// release the grants it kept of the frontend's domain. Unknown ids are left alone.
    pub fn disconnect(&mut self, frontend: FrontendId) {
        if let Some(connection) = self.connections.get_mut(frontend.0) {
            if connection.ring.take().is_some() {
                connection.counters.disconnect = Some(DisconnectReason::Requested);
            }
            // Whatever the executor kept of its grants goes before the caller tells the
            // frontend (which then ends its grants).
            self.executor.release_grants(connection.domain);
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
        connection.grants = GrantPolicy::Transient;
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

    /// How the executor may hold `frontend`'s data grants (from the `feature-persistent`
    /// negotiation; [`GrantPolicy::Transient`] until said otherwise). Returns `false` for
    /// an unknown id.
    pub fn set_grant_policy(&mut self, frontend: FrontendId, grants: GrantPolicy) -> bool {
        let Some(connection) = self.connections.get_mut(frontend.0) else {
            return false;
        };
        connection.grants = grants;
        true
    }

    /// Serves every connected frontend once, at most `cap` requests each (a `cap` of 0 is
    /// taken as 1), starting one frontend further than the last round. The requests of the
    /// round go to the executor as one batch (the device may work on them together), then
    /// each frontend's responses are published and its request event re-armed when its
    /// ring is drained.
    pub fn serve_round(&mut self, cap: u32) -> RoundReport {
        let cap = cap.max(1);
        let mut report = RoundReport::default();
        let count = self.connections.len();
        if count == 0 {
            return report;
        }
        let start = self.next_start % count;
        self.next_start = (start + 1) % count;
        let mut taken: Vec<Taken> = Vec::with_capacity(cap as usize * count);
        // Frontends whose rings broke this round: their kept grants go at the end.
        let mut broken: Vec<DomId> = Vec::new();
        for offset in 0..count {
            let index = (start + offset) % count;
            let connection = &mut self.connections[index];
            connection.served_this_round = 0;
            let first = taken.len();
            if let Err(error) = take_requests(connection, index, cap, &mut taken) {
                // Broken ring: nothing it asked for is carried out or answered.
                taken.truncate(first);
                connection.served_this_round = 0;
                broken.push(connection.break_ring(error));
            }
        }
        let results = execute(&mut self.executor, &self.connections, &taken);
        for (entry, result) in taken.iter().zip(results) {
            let connection = &mut self.connections[entry.connection];
            let Some(ring) = connection.ring.as_mut() else {
                continue;
            };
            let mut response = entry.response;
            let mut reason = entry.reason;
            if let Some(Err(failure)) = result {
                response.status = status_of(Err(failure));
                reason = Some(RefusalReason::Failed(failure));
            }
            if let Some(reason) = reason.filter(|_| response.status != STATUS_OKAY) {
                report.refused.push(Refusal {
                    frontend: FrontendId(entry.connection),
                    id: response.id,
                    operation: response.operation,
                    status: response.status,
                    reason,
                });
            }
            if let Err(error) = ring.push_response(&response) {
                broken.push(connection.break_ring(error));
                continue;
            }
            connection.counters.requests_served += 1;
            if response.status != STATUS_OKAY {
                connection.counters.errors += 1;
            }
        }
        for offset in 0..count {
            let index = (start + offset) % count;
            let connection = &mut self.connections[index];
            report.requests_served += connection.served_this_round;
            let Some(ring) = connection.ring.as_mut() else {
                continue;
            };
            match finish_round(ring) {
                Ok(Service { notify, pending }) => {
                    if notify {
                        report.notify.push(FrontendId(index));
                    }
                    report.more_pending |= pending;
                }
                Err(error) => broken.push(connection.break_ring(error)),
            }
        }
        for domain in broken {
            self.executor.release_grants(domain);
        }
        report
    }
}

impl Connection<'_> {
    /// The frontend broke its ring: stop serving it (the page is touched no more).
    /// Returns its domain, whose kept grants the executor must then release.
    fn break_ring(&mut self, error: RingError) -> DomId {
        self.ring = None;
        self.counters.disconnect = Some(DisconnectReason::Ring(error));
        self.domain
    }
}

struct Service {
    notify: bool,
    pending: bool,
}

/// One request taken from a ring in this round, waiting for its answer.
struct Taken {
    /// Whose (index into the backend's table).
    connection: usize,
    /// The answer if the executor is not involved or succeeds; its status is replaced by
    /// the executor's failure.
    response: BlkifResponse,
    /// Why it is refused, if it already is.
    reason: Option<RefusalReason>,
    /// What the executor is to do (`None`: refused before reaching it).
    work: Option<Work>,
}

/// Takes up to `cap` requests of one frontend, validating each.
///
/// # Errors
///
/// A fatal ring error: the caller disconnects the frontend.
fn take_requests(
    connection: &mut Connection<'_>,
    index: usize,
    cap: u32,
    taken: &mut Vec<Taken>,
) -> Result<(), RingError> {
    let Some(ring) = connection.ring.as_mut() else {
        return Ok(());
    };
    for _ in 0..cap {
        let entry = match ring.next_request() {
            Ok(None) => break,
            Ok(Some(request)) => match plan(&request, &connection.disk) {
                Ok(work) => Taken {
                    connection: index,
                    response: BlkifResponse::to(&request, STATUS_OKAY),
                    reason: None,
                    work: Some(work),
                },
                Err(rejection) => Taken {
                    connection: index,
                    response: BlkifResponse::to(&request, Rejection::status(rejection)),
                    reason: Some(RefusalReason::Rejected(rejection)),
                    work: None,
                },
            },
            Err(RingError::Malformed(malformed)) => Taken {
                connection: index,
                response: BlkifResponse::for_malformed(&malformed),
                reason: Some(RefusalReason::Malformed(malformed)),
                work: None,
            },
            Err(error) => return Err(error),
        };
        taken.push(entry);
        connection.served_this_round += 1;
    }
    Ok(())
}

/// Publishes a frontend's responses and re-arms its request event when drained.
fn finish_round(ring: &mut Backend<'_, Blkif>) -> Result<Service, RingError> {
    let notify = ring.publish_responses()?.is_required();
    // Arms req_event when drained, so the frontend's next request raises an event.
    let pending = ring.final_check_for_requests()?;
    Ok(Service { notify, pending })
}

/// Has the executor carry out the round's work as one batch; per taken request, `None`
/// if the executor was not involved, else the first failure of its operations.
fn execute<E: Executor>(
    executor: &mut E,
    connections: &[Connection<'_>],
    taken: &[Taken],
) -> Vec<Option<Result<(), ExecuteError>>> {
    let mut operations: Vec<BlockOperation<'_>> = Vec::with_capacity(taken.len());
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(taken.len());
    for entry in taken {
        let first = operations.len();
        if let Some(work) = &entry.work {
            let connection = &connections[entry.connection];
            operations_of(work, connection.domain, connection.grants, &mut operations);
        }
        spans.push((first, operations.len()));
    }
    let mut results = alloc::vec![Ok(()); operations.len()];
    if !operations.is_empty() {
        executor.execute_batch(&operations, &mut results);
    }
    spans
        .iter()
        .map(|&(first, end)| {
            (first != end).then(|| {
                results[first..end]
                    .iter()
                    .copied()
                    .find(Result::is_err)
                    .unwrap_or(Ok(()))
            })
        })
        .collect()
}

/// The executor's operations for one validated request (a write with a flush is two: the
/// flush waits for the write, as [`Executor::execute_batch`] promises).
fn operations_of<'work>(
    work: &'work Work,
    frontend: DomId,
    grants: GrantPolicy,
    operations: &mut Vec<BlockOperation<'work>>,
) {
    match work {
        Work::Read(segments) => operations.push(BlockOperation::Read {
            frontend,
            segments: segments.as_slice(),
            grants,
        }),
        Work::Write(segments) => operations.push(BlockOperation::Write {
            frontend,
            segments: segments.as_slice(),
            grants,
        }),
        Work::WriteThenFlush(segments) => {
            operations.push(BlockOperation::Write {
                frontend,
                segments: segments.as_slice(),
                grants,
            });
            operations.push(BlockOperation::Flush);
        }
        Work::Flush => operations.push(BlockOperation::Flush),
        Work::Discard {
            physical_sector,
            sector_count,
            secure,
        } => operations.push(BlockOperation::Discard {
            physical_sector: *physical_sector,
            sector_count: *sector_count,
            secure: *secure,
        }),
    }
}
