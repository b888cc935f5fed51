//! The request builder and response checker: requests of up to 11 granted pages go out
//! with ids from a table of requests in flight; every response must match an entry of
//! that table exactly, or the backend is treated as broken and the device stops.

use alloc::vec::Vec;
use ring_protocol::blkif::{
    Blkif, BlkifRequest, BlkifResponse, Segment, TransferRequest, SECTORS_PER_PAGE, SECTOR_SIZE,
    STATUS_OKAY,
};
use ring_protocol::{Frontend, Notification, RingError, SharedPage};
use xen_abi::DomId;

use crate::completion::{Completion, DisconnectReport, FrontendError, Operation};
use crate::grants::{GrantPages, GrantRef};
use crate::split::MAX_SECTORS_PER_REQUEST;

/// Bytes in a data page.
const PAGE_SIZE_BYTES: usize = SECTOR_SIZE * SECTORS_PER_PAGE as usize;
/// Requests in flight at most: one per ring slot.
const SLOTS: usize = Frontend::<'static, Blkif>::SIZE as usize;

struct InFlight<Page> {
    id: u64,
    operation: Operation,
    sector: u64,
    sector_count: u32,
    grants: Vec<(Page, GrantRef)>,
}

/// The frontend of one virtual block device.
pub struct Blkfront<'page, G: GrantPages> {
    ring: Frontend<'page, Blkif>,
    pages: G,
    backend: DomId,
    handle: u16,
    free_pages: Vec<G::Page>,
    quarantined: Vec<G::Page>,
    in_flight: Vec<Option<InFlight<G::Page>>>,
    /// Per slot, the id of the last request completed there (to name duplicates).
    completed: Vec<Option<u64>>,
    next_generation: u64,
    fault: Option<FrontendError>,
}

impl<'page, G: GrantPages> Blkfront<'page, G> {
    /// Initializes the ring in `ring_page` (already granted to `backend` by the caller)
    /// and takes `data_pages` as the pool it grants from. `handle` is the virtual device
    /// number written into requests.
    pub fn new(
        ring_page: SharedPage<'page>,
        pages: G,
        data_pages: Vec<G::Page>,
        backend: DomId,
        handle: u16,
    ) -> Self {
        Self {
            ring: Frontend::initialize(ring_page),
            pages,
            backend,
            handle,
            free_pages: data_pages,
            quarantined: Vec::new(),
            in_flight: (0..SLOTS).map(|_| None).collect(),
            completed: alloc::vec![None; SLOTS],
            next_generation: 0,
            fault: None,
        }
    }

    /// The page and grant provider, for the runtime's bookkeeping and tests.
    pub fn pages(&self) -> &G {
        &self.pages
    }

    /// Requests submitted and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight.iter().flatten().count()
    }

    /// Data pages free to grant.
    pub fn free_page_count(&self) -> usize {
        self.free_pages.len()
    }

    /// Pages the backend would not give back; never reused.
    pub fn quarantined_page_count(&self) -> usize {
        self.quarantined.len()
    }

    /// The error that stopped the device, if any.
    pub fn fault(&self) -> Option<FrontendError> {
        self.fault
    }

    fn check(&self) -> Result<(), FrontendError> {
        self.fault.map_or(Ok(()), Err)
    }

    fn fail(&mut self, error: FrontendError) -> FrontendError {
        if self.fault.is_none() {
            self.fault = Some(error);
        }
        error
    }

    /// Queues a read of `sector_count` sectors (1..=88) from `sector`. The backend sees
    /// it after [`publish`](Self::publish). Returns the request id.
    ///
    /// # Errors
    ///
    /// [`FrontendError::BadLength`], [`FrontendError::RingFull`],
    /// [`FrontendError::NoFreePages`], [`FrontendError::Grant`], or the device's fault.
    pub fn submit_read(&mut self, sector: u64, sector_count: u32) -> Result<u64, FrontendError> {
        self.submit(Operation::Read, sector, sector_count, &[])
    }

    /// Queues a write of `data` (1..=88 whole sectors) at `sector`. Returns the id.
    ///
    /// # Errors
    ///
    /// As [`submit_read`](Self::submit_read).
    pub fn submit_write(&mut self, sector: u64, data: &[u8]) -> Result<u64, FrontendError> {
        if data.len() % SECTOR_SIZE != 0 {
            return Err(FrontendError::BadLength);
        }
        let sector_count =
            u32::try_from(data.len() / SECTOR_SIZE).map_err(|_| FrontendError::BadLength)?;
        self.submit(Operation::Write, sector, sector_count, data)
    }

    /// Queues a flush of the disk cache (no data). Returns the id.
    ///
    /// # Errors
    ///
    /// [`FrontendError::RingFull`] or the device's fault.
    pub fn submit_flush(&mut self) -> Result<u64, FrontendError> {
        self.submit(Operation::Flush, 0, 0, &[])
    }

    fn submit(
        &mut self,
        operation: Operation,
        sector: u64,
        sector_count: u32,
        data: &[u8],
    ) -> Result<u64, FrontendError> {
        self.check()?;
        let is_flush = operation == Operation::Flush;
        if !is_flush && !(1..=MAX_SECTORS_PER_REQUEST).contains(&sector_count) {
            return Err(FrontendError::BadLength);
        }
        let Some(slot) = self.in_flight.iter().position(Option::is_none) else {
            return Err(FrontendError::RingFull);
        };
        if self.ring.is_full() {
            return Err(FrontendError::RingFull);
        }
        let page_count = (sector_count as usize).div_ceil(usize::from(SECTORS_PER_PAGE));
        if self.free_pages.len() < page_count {
            return Err(FrontendError::NoFreePages);
        }
        let grants = self.grant_pages(operation, page_count, data)?;
        let mut request = TransferRequest {
            handle: self.handle,
            id: self
                .next_generation
                .wrapping_mul(SLOTS as u64)
                .wrapping_add(slot as u64),
            sector_number: sector,
            segment_count: page_count as u8,
            ..TransferRequest::default()
        };
        self.next_generation = self.next_generation.wrapping_add(1);
        let mut remaining = sector_count;
        for (segment, (_, grant)) in request.segments.iter_mut().zip(&grants) {
            let sectors = remaining.min(u32::from(SECTORS_PER_PAGE));
            remaining -= sectors;
            *segment = Segment {
                grant: grant.0,
                first_sector: 0,
                last_sector: (sectors - 1) as u8,
            };
        }
        let encoded = match operation {
            Operation::Read => BlkifRequest::Read(request),
            Operation::Write => BlkifRequest::Write(request),
            Operation::Flush => BlkifRequest::FlushDiskCache(request),
        };
        if let Err(error) = self.ring.push_request(&encoded) {
            self.release(grants);
            return Err(match error {
                RingError::Full => FrontendError::RingFull,
                other => self.fail(FrontendError::Ring(other)),
            });
        }
        self.in_flight[slot] = Some(InFlight {
            id: request.id,
            operation,
            sector,
            sector_count,
            grants,
        });
        Ok(request.id)
    }

    /// Takes `page_count` free pages, zeroes them, copies a write's data in and grants
    /// them (read-only for a write, so the backend cannot scribble on our data).
    fn grant_pages(
        &mut self,
        operation: Operation,
        page_count: usize,
        data: &[u8],
    ) -> Result<Vec<(G::Page, GrantRef)>, FrontendError> {
        let mut grants = Vec::with_capacity(page_count);
        for index in 0..page_count {
            let Some(page) = self.free_pages.pop() else {
                self.release(grants);
                return Err(FrontendError::NoFreePages);
            };
            self.pages.zero(page);
            if let Some(chunk) = data.chunks(PAGE_SIZE_BYTES).nth(index) {
                self.pages.write(page, 0, chunk);
            }
            match self
                .pages
                .grant(page, self.backend, operation == Operation::Write)
            {
                Ok(grant) => grants.push((page, grant)),
                Err(error) => {
                    self.free_pages.push(page);
                    self.release(grants);
                    return Err(FrontendError::Grant(error));
                }
            }
        }
        Ok(grants)
    }

    /// Revokes `grants`; pages come back to the pool, or to quarantine if the backend
    /// still maps them. Returns how many were still mapped.
    fn release(&mut self, grants: Vec<(G::Page, GrantRef)>) -> usize {
        let mut still_mapped = 0;
        for (page, grant) in grants {
            match self.pages.revoke(grant) {
                Ok(()) => self.free_pages.push(page),
                Err(_) => {
                    self.quarantined.push(page);
                    still_mapped += 1;
                }
            }
        }
        still_mapped
    }

    /// Publishes queued requests; notify the backend's event channel if required.
    ///
    /// # Errors
    ///
    /// The device's fault.
    pub fn publish(&mut self) -> Result<Notification, FrontendError> {
        self.check()?;
        self.ring
            .publish_requests()
            .map_err(|error| self.fail(FrontendError::Ring(error)))
    }

    /// Whether responses are ready, arming the response event if not (call before
    /// blocking on the event channel).
    ///
    /// # Errors
    ///
    /// The device's fault, or a ring error from the backend (which stops the device).
    pub fn final_check(&mut self) -> Result<bool, FrontendError> {
        self.check()?;
        self.ring
            .final_check_for_responses()
            .map_err(|error| self.fail(FrontendError::Ring(error)))
    }

    /// The next response; when there is none, arms the response event first (Xen's
    /// `RING_FINAL_CHECK_FOR_RESPONSES`), so `None` means the caller may block.
    fn next_response(&mut self) -> Result<Option<BlkifResponse>, RingError> {
        if let Some(response) = self.ring.next_response()? {
            return Ok(Some(response));
        }
        if self.ring.final_check_for_responses()? {
            return self.ring.next_response();
        }
        Ok(None)
    }

    /// Takes the next response, checks it against the table of requests in flight,
    /// revokes the request's grants and, for a successful read, copies the data out.
    /// `None` means no response is ready and the response event is armed: the caller may
    /// block on the event channel.
    ///
    /// # Errors
    ///
    /// A backend fault (the device stops) or the device's earlier fault.
    pub fn poll(&mut self) -> Result<Option<Completion>, FrontendError> {
        self.check()?;
        let response = match self.next_response() {
            Ok(None) => return Ok(None),
            Ok(Some(response)) => response,
            Err(error) => return Err(self.fail(FrontendError::Ring(error))),
        };
        let slot = (response.id % SLOTS as u64) as usize;
        let entry = match self.in_flight[slot].take() {
            Some(entry) if entry.id == response.id => entry,
            other => {
                self.in_flight[slot] = other;
                let error = if self.completed[slot] == Some(response.id) {
                    FrontendError::DuplicateResponse(response.id)
                } else {
                    FrontendError::UnknownResponseId(response.id)
                };
                return Err(self.fail(error));
            }
        };
        if response.operation != entry.operation.code() {
            let expected = entry.operation.code();
            self.in_flight[slot] = Some(entry);
            return Err(self.fail(FrontendError::WrongOperation {
                id: response.id,
                expected,
                found: response.operation,
            }));
        }
        self.completed[slot] = Some(entry.id);
        // Revoke first, so the backend cannot change read data while we copy it out.
        let mut data = Vec::new();
        let mut returned = Vec::with_capacity(entry.grants.len());
        let mut still_mapped = false;
        for (page, grant) in &entry.grants {
            match self.pages.revoke(*grant) {
                Ok(()) => returned.push(*page),
                Err(_) => {
                    self.quarantined.push(*page);
                    still_mapped = true;
                }
            }
        }
        if response.status == STATUS_OKAY && entry.operation == Operation::Read && !still_mapped {
            data = alloc::vec![0u8; entry.sector_count as usize * SECTOR_SIZE];
            for (chunk, page) in data.chunks_mut(PAGE_SIZE_BYTES).zip(&returned) {
                self.pages.read(*page, 0, chunk);
            }
        }
        self.free_pages.extend(returned);
        if still_mapped {
            return Err(self.fail(FrontendError::GrantStillMapped(entry.id)));
        }
        Ok(Some(Completion {
            id: entry.id,
            operation: entry.operation,
            sector: entry.sector,
            sector_count: entry.sector_count,
            status: response.status,
            data,
        }))
    }

    /// Disconnects: revokes every grant still out (pages the backend still maps are
    /// quarantined) and stops the device. The ring page's own grant is the caller's.
    pub fn disconnect(&mut self) -> DisconnectReport {
        let mut report = DisconnectReport::default();
        let entries: Vec<InFlight<G::Page>> =
            self.in_flight.iter_mut().filter_map(Option::take).collect();
        for entry in entries {
            let count = entry.grants.len();
            let still_mapped = self.release(entry.grants);
            report.still_mapped += still_mapped;
            report.revoked += count - still_mapped;
        }
        self.fault = Some(FrontendError::Disconnected);
        report
    }

    /// Gives back the page provider and the free pages (not the quarantined ones), for a
    /// reconnection after [`disconnect`](Self::disconnect).
    pub fn into_parts(self) -> (G, Vec<G::Page>) {
        (self.pages, self.free_pages)
    }
}
