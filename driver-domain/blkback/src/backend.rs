//! The backend proper: a table of connected frontends, each with its ring and virtual
//! disk, served round-robin with a cap on requests per frontend per round. A frontend
//! that breaks its ring is disconnected alone; everyone else keeps being served.

use alloc::vec::Vec;
use ring_protocol::blkif::{Blkif, BlkifRequest, BlkifResponse, TransferRequest, STATUS_OKAY};
use ring_protocol::{Backend, MalformedEntry, RingError, SharedPage};
use xen_abi::DomId;

use crate::disk::VirtualDisk;
use crate::executor::{BlockOperation, ExecuteError, Executor, GrantPolicy, SegmentTransfer};
use crate::request::{plan, status_of, Rejection, SegmentList, Work};

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
    /// The working lists of a round, empty between rounds; kept so that their
    /// allocations (as large as the largest round so far) serve every round.
    scratch: Scratch,
}

/// The lists [`BlockBackend::serve_round`] fills and empties again each round.
#[derive(Default)]
struct Scratch {
    /// The requests taken this round, in order.
    taken: Vec<Taken>,
    /// Why each taken request without work is refused, in the same order.
    refusals: Vec<RefusalReason>,
    /// The segments of the round's valid transfers (each [`Work`] names its range).
    segments: SegmentList,
    /// The round's batch for the executor. Its lifetime is that of the segments it borrows
    /// during a round; between rounds it is empty, and only its allocation is kept.
    operations: Vec<BlockOperation<'static>>,
    /// The executor's result of each operation of the batch.
    results: Vec<Result<(), ExecuteError>>,
    /// Domains whose frontends broke their rings this round: their kept grants go at
    /// the end.
    broken: Vec<DomId>,
}

impl<'page, E: Executor> BlockBackend<'page, E> {
    /// A backend over a physical disk of `physical_sector_count` sectors.
    pub fn new(executor: E, physical_sector_count: u64) -> Self {
        Self {
            executor,
            physical_sector_count,
            connections: Vec::new(),
            next_start: 0,
            scratch: Scratch::default(),
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
    // Never inlined: a round is large and called from one place per integration, and a
    // profile (examples/split_profile.rs) sees its cost as one function.
    #[inline(never)]
    pub fn serve_round(&mut self, cap: u32) -> RoundReport {
        let cap = cap.max(1);
        let mut report = RoundReport::default();
        let count = self.connections.len();
        if count == 0 {
            return report;
        }
        let start = self.next_start % count;
        self.next_start = (start + 1) % count;
        let Scratch {
            taken,
            refusals,
            segments,
            operations,
            results,
            broken,
        } = &mut self.scratch;
        for offset in 0..count {
            let index = (start + offset) % count;
            let connection = &mut self.connections[index];
            connection.served_this_round = 0;
            let first = (taken.len(), refusals.len(), segments.len());
            let lists = Lists {
                taken: &mut *taken,
                refusals: &mut *refusals,
                segments: &mut *segments,
            };
            if let Err(error) = take_requests(connection, cap, lists) {
                // Broken ring: nothing it asked for is carried out or answered.
                let (first, first_refusal, first_segment) = first;
                taken.truncate(first);
                refusals.truncate(first_refusal);
                segments.truncate(first_segment);
                connection.served_this_round = 0;
                broken.push(connection.break_ring(error));
            }
        }
        // The taken requests are grouped by frontend, in the order served, each frontend's
        // `served_this_round` long.
        let mut batch = recycle(core::mem::take(operations));
        let order = (0..count).map(|offset| (start + offset) % count);
        execute(
            &mut self.executor,
            &self.connections,
            order.clone(),
            taken,
            segments.as_slice(),
            &mut batch,
            results,
        );
        *operations = recycle(batch);
        let mut entries = taken.iter();
        let mut outcomes = results.iter();
        let mut refusals_in_order = refusals.iter();
        for index in order {
            let connection = &mut self.connections[index];
            let served = connection.served_this_round as usize;
            for entry in entries.by_ref().take(served) {
                // The executor's results for this request's operations, in order (none if
                // it was refused before reaching the executor).
                let (operation_count, refusal) = match &entry.work {
                    Some(work) => (work.operation_count(), None),
                    None => (0, refusals_in_order.next().copied()),
                };
                let failure = outcomes
                    .by_ref()
                    .take(operation_count)
                    .fold(None, |failure, outcome| failure.or(outcome.err()));
                let Some(ring) = connection.ring.as_mut() else {
                    continue;
                };
                let mut response = entry.response;
                let mut reason = refusal;
                if let Some(failure) = failure {
                    response.status = status_of(Err(failure));
                    reason = Some(RefusalReason::Failed(failure));
                }
                if let Some(reason) = reason.filter(|_| response.status != STATUS_OKAY) {
                    report.refused.push(Refusal {
                        frontend: FrontendId(index),
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
        }
        taken.clear();
        refusals.clear();
        segments.clear();
        results.clear();
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
        for domain in broken.drain(..) {
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
    /// The answer if the executor is not involved or succeeds; its status is replaced by
    /// the executor's failure.
    response: BlkifResponse,
    /// What the executor is to do (`None`: refused before reaching it, for the reason
    /// that is next in the round's list of refusals).
    work: Option<Work>,
}

/// The lists of the round that [`take_requests`] appends to.
struct Lists<'round> {
    taken: &'round mut Vec<Taken>,
    refusals: &'round mut Vec<RefusalReason>,
    segments: &'round mut SegmentList,
}

/// Takes up to `cap` requests of one frontend, validating each: appends each to
/// `lists.taken`, with its reason to `lists.refusals` if it is refused, and the segments
/// of each valid transfer to `lists.segments`.
///
/// # Errors
///
/// A fatal ring error: the caller disconnects the frontend.
fn take_requests(
    connection: &mut Connection<'_>,
    cap: u32,
    lists: Lists<'_>,
) -> Result<(), RingError> {
    let Some(ring) = connection.ring.as_mut() else {
        return Ok(());
    };
    // Each request is decoded into this one place (the ring rewrites only what changed),
    // then validated from it.
    let mut request = BlkifRequest::Read(TransferRequest::default());
    for _ in 0..cap {
        let (response, work) = match ring.next_request_into(&mut request) {
            Ok(false) => break,
            Ok(true) => match plan(&request, &connection.disk, lists.segments) {
                Ok(work) => (BlkifResponse::to(&request, STATUS_OKAY), Some(work)),
                Err(rejection) => {
                    lists.refusals.push(RefusalReason::Rejected(rejection));
                    let status = Rejection::status(rejection);
                    (BlkifResponse::to(&request, status), None)
                }
            },
            Err(RingError::Malformed(malformed)) => {
                lists.refusals.push(RefusalReason::Malformed(malformed));
                (BlkifResponse::for_malformed(&malformed), None)
            }
            Err(error) => return Err(error),
        };
        lists.taken.push(Taken { response, work });
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

/// Empties `items` and gives back its allocation as a vector of `U`: for lists kept from
/// one round to the next whose elements borrow the round (a `T<'round>` kept as a
/// `T<'static>` in between), so the round allocates nothing. Safe Rust: collecting a
/// vector's `into_iter` reuses its allocation when `U` has `T`'s size and alignment, as a
/// type with another lifetime does (otherwise the result is a fresh empty vector); the list
/// is empty, so the closure never runs.
pub fn recycle<T, U>(mut items: Vec<T>) -> Vec<U> {
    items.clear();
    // reason: the closure never runs; it only changes the element type.
    #[allow(clippy::unnecessary_filter_map)]
    items.into_iter().filter_map(|_| None).collect()
}

/// Has the executor carry out the round's work as one batch: the operations of every
/// taken request that reached it, in order, into `operations`, and their results into
/// `results` (one per operation). `taken` holds the requests of the frontends in `order`,
/// each frontend's `served_this_round` of them.
fn execute<'work, E: Executor>(
    executor: &mut E,
    connections: &[Connection<'_>],
    order: impl Iterator<Item = usize>,
    taken: &[Taken],
    segments: &'work [SegmentTransfer],
    operations: &mut Vec<BlockOperation<'work>>,
    results: &mut Vec<Result<(), ExecuteError>>,
) {
    let mut entries = taken.iter();
    for index in order {
        let connection = &connections[index];
        let served = connection.served_this_round as usize;
        for entry in entries.by_ref().take(served) {
            if let Some(work) = &entry.work {
                operations_of(
                    work,
                    connection.domain,
                    connection.grants,
                    segments,
                    operations,
                );
            }
        }
    }
    results.clear();
    results.resize(operations.len(), Ok(()));
    if !operations.is_empty() {
        executor.execute_batch(operations, results);
    }
}

/// The executor's operations for one validated request (a write with a flush is two: the
/// flush waits for the write, as [`Executor::execute_batch`] promises); as many as
/// [`Work::operation_count`] says.
#[inline]
fn operations_of<'work>(
    work: &Work,
    frontend: DomId,
    grants: GrantPolicy,
    segments: &'work [SegmentTransfer],
    operations: &mut Vec<BlockOperation<'work>>,
) {
    match *work {
        Work::Read(range) => operations.push(BlockOperation::Read {
            frontend,
            segments: range.of(segments),
            grants,
        }),
        Work::Write(range) => operations.push(BlockOperation::Write {
            frontend,
            segments: range.of(segments),
            grants,
        }),
        Work::WriteThenFlush(range) => {
            operations.push(BlockOperation::Write {
                frontend,
                segments: range.of(segments),
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
            physical_sector,
            sector_count,
            secure,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycling_keeps_the_allocation() {
        let segments = [SegmentTransfer::default()];
        let mut operations: Vec<BlockOperation<'_>> = Vec::with_capacity(8);
        operations.push(BlockOperation::Read {
            frontend: DomId(1),
            segments: &segments,
            grants: GrantPolicy::Transient,
        });
        let kept: Vec<BlockOperation<'static>> = recycle(operations);
        assert!(kept.is_empty());
        assert!(kept.capacity() >= 8, "allocation lost: {}", kept.capacity());
    }
}
