//! The request builder and response checker: requests of up to 11 granted pages go out
//! with ids from a table of requests in flight; every response must match an entry of
//! that table exactly, or the backend is treated as broken and the device stops.
//!
//! Nothing on the submit and poll paths allocates: the table of requests in flight, the
//! table of page lists and the free pool are sized at construction (the lists grow only
//! if more runs are out at once than ever before); only the copying API's
//! [`Completion::data`] is a heap buffer.
//!
//! Pages are never moved as a list: from the moment a run of pages leaves the pool until
//! it returns, it stays in one entry of the table of page lists (kept inline, no heap). A
//! request in flight names its list by index, and so does the [`LentPages`] handle the
//! caller holds while the run is lent (after [`take_pages`](Blkfront::take_pages), or an
//! in-place read's completion), so submitting lent pages, completing a request and giving
//! pages back each move only the pages' one-word states in or out of the pool. (A list
//! by value is 96 bytes: passed through `take_pages`, `submit_write_pages`, the table,
//! the completion and `give_back`, it was copied about six times a request.)
//!
//! The pool ([`Pool`]) is a stack topped at its low end: a request's pages come out as a
//! run in ascending pool order, and go back as they came out (the request's first page on
//! top), so the next request of the same size gets the same ascending run again, which a
//! backend can merge into one buffer when the pages are physically contiguous.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use ring_protocol::blkif::{
    Blkif, BlkifRequest, BlkifResponse, Segment, TransferRequest, SECTORS_PER_PAGE, SECTOR_SIZE,
    STATUS_OKAY,
};
use ring_protocol::{Frontend, Notification, RingError, SharedPage};
use xen_abi::DomId;

use crate::completion::{Completion, DisconnectReport, FrontendError, Operation, PagedCompletion};
use crate::grants::{GrantError, GrantPages, GrantRef};
use crate::pool::{append_run, DataPage, LentPages, PageList, Pool, MAX_PAGES_PER_REQUEST};
use crate::split::MAX_SECTORS_PER_REQUEST;

/// Bytes in a data page.
const PAGE_SIZE_BYTES: usize = SECTOR_SIZE * SECTORS_PER_PAGE as usize;
/// Requests in flight at most: one per ring slot.
const SLOTS: usize = Frontend::<'static, Blkif>::SIZE as usize;

/// Lists made at construction: one per request in flight, so that a caller who gives
/// pages back before submitting more never makes the table grow.
const INITIAL_LISTS: usize = SLOTS;

/// The identity of the next frontend made, which its [`LentPages`] carry.
static NEXT_OWNER: AtomicU32 = AtomicU32::new(0);

/// A request in flight: what its response is checked against and its completion says.
#[derive(Clone, Copy)]
struct InFlight {
    id: u64,
    operation: Operation,
    sector: u64,
    sector_count: u32,
    /// A read whose pages go to the caller at completion (no copy).
    in_place: bool,
    /// Its list in the table of page lists: the request's pages, in disk order, each with
    /// its grant set (none for a flush).
    list: u32,
}

/// The frontend of one virtual block device.
pub struct Blkfront<'page, G: GrantPages> {
    ring: Frontend<'page, Blkif>,
    pages: G,
    backend: DomId,
    handle: u16,
    /// The free pages (sized for every page given at construction, so putting pages back
    /// never allocates).
    pool: Pool<G::Page>,
    quarantined: Vec<G::Page>,
    /// Per ring slot, the request in flight there.
    slots: Vec<Option<InFlight>>,
    /// The table of page lists: each holds the pages of one request in flight or of one
    /// run lent to the caller, from when they leave the pool until they return; vacant
    /// lists are empty.
    lists: Vec<PageList<G::Page>>,
    /// The vacant lists, lowest on top. Its capacity is kept at least `lists.len()`, so
    /// vacating a list never allocates.
    vacant_lists: Vec<u32>,
    /// This frontend's identity: the [`LentPages`] it lends carry it, and it refuses
    /// those of another.
    owner: u32,
    /// Slots with no request in flight, lowest on top.
    free_slots: heapless::Vec<u8, SLOTS>,
    /// Per slot, the id of the last request completed there (to name duplicates).
    completed: [Option<u64>; SLOTS],
    next_generation: u64,
    fault: Option<FrontendError>,
    /// Persistent grants (`feature-persistent`): see [`Blkfront::set_persistent`].
    persistent: bool,
    /// A page was taken or a request submitted: the grant mode is fixed.
    started: bool,
    /// Every persistent grant made, with its page: [`Blkfront::disconnect`] revokes them
    /// all, wherever the pages are (pool, in flight, lent).
    persistent_grants: Vec<(G::Page, GrantRef)>,
    /// Persistent grants the backend still mapped at disconnect (their pages are
    /// quarantined; a lent one given back later is dropped).
    unrevoked: Vec<GrantRef>,
    /// Pages with the caller.
    lent: usize,
}

impl<'page, G: GrantPages> Blkfront<'page, G> {
    /// Initializes the ring in `ring_page` (already granted to `backend` by the caller)
    /// and takes `data_pages` as the pool it grants from. `handle` is the virtual device
    /// number written into requests. Grants are per request until
    /// [`set_persistent`](Self::set_persistent).
    pub fn new(
        ring_page: SharedPage<'page>,
        pages: G,
        data_pages: Vec<G::Page>,
        backend: DomId,
        handle: u16,
    ) -> Self {
        let count = data_pages.len();
        let mut free_slots = heapless::Vec::new();
        for slot in (0..SLOTS as u8).rev() {
            let _ = free_slots.push(slot);
        }
        let mut vacant_lists = Vec::with_capacity(INITIAL_LISTS);
        vacant_lists.extend((0..INITIAL_LISTS as u32).rev());
        Self {
            ring: Frontend::initialize(ring_page),
            pages,
            backend,
            handle,
            pool: Pool::new(data_pages),
            quarantined: Vec::new(),
            slots: alloc::vec![None; SLOTS],
            lists: (0..INITIAL_LISTS).map(|_| PageList::new()).collect(),
            vacant_lists,
            owner: NEXT_OWNER.fetch_add(1, Ordering::Relaxed),
            free_slots,
            completed: [None; SLOTS],
            next_generation: 0,
            fault: None,
            persistent: false,
            started: false,
            persistent_grants: Vec::with_capacity(count),
            unrevoked: Vec::new(),
            lent: 0,
        }
    }

    /// Chooses persistent grants (both ends agreed on `feature-persistent`) or grants per
    /// request (the default). In persistent mode each pool page is zeroed and granted
    /// read-write once, the first time it is used (or at
    /// [`prepare_pool`](Self::prepare_pool)), and the same grant is reused in every later
    /// request: completions revoke nothing and pages are not zeroed again (they only ever
    /// hold this device's data, which its backend has seen). [`disconnect`](Self::disconnect)
    /// revokes them all.
    ///
    /// # Errors
    ///
    /// [`FrontendError::AlreadyStarted`] once a page was taken or a request submitted.
    pub fn set_persistent(&mut self, persistent: bool) -> Result<(), FrontendError> {
        if self.started {
            return Err(FrontendError::AlreadyStarted);
        }
        self.persistent = persistent;
        Ok(())
    }

    /// Whether grants are persistent (see [`set_persistent`](Self::set_persistent)).
    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// The page and grant provider, for the runtime's bookkeeping and tests.
    pub fn pages(&self) -> &G {
        &self.pages
    }

    /// The provider, to read and fill pages lent by [`take_pages`](Self::take_pages) or an
    /// in-place read (only through its `read`, `write` and `zero`; grants are the
    /// frontend's).
    pub fn pages_mut(&mut self) -> &mut G {
        &mut self.pages
    }

    /// Requests submitted and not yet completed.
    pub fn in_flight(&self) -> usize {
        SLOTS - self.free_slots.len()
    }

    /// Data pages free to grant (in the pool).
    pub fn free_page_count(&self) -> usize {
        self.pool.len()
    }

    /// Pages lent to the caller and not given back.
    pub fn lent_page_count(&self) -> usize {
        self.lent
    }

    /// Persistent grants made and not yet revoked (0 in non-persistent mode).
    pub fn persistent_grant_count(&self) -> usize {
        self.persistent_grants.len()
    }

    /// Pages the backend would not give back; never reused.
    pub fn quarantined_page_count(&self) -> usize {
        self.quarantined.len()
    }

    /// The error that stopped the device, if any.
    pub fn fault(&self) -> Option<FrontendError> {
        self.fault
    }

    /// The device's fault, if any, as an error (one test on the way in).
    #[inline]
    fn check(&self) -> Result<(), FrontendError> {
        if self.fault.is_none() {
            Ok(())
        } else {
            self.stopped()
        }
    }

    #[cold]
    fn stopped(&self) -> Result<(), FrontendError> {
        self.fault.map_or(Ok(()), Err)
    }

    /// Whether [`disconnect`](Self::disconnect) ran.
    fn disconnected(&self) -> bool {
        self.fault == Some(FrontendError::Disconnected)
    }

    fn fail(&mut self, error: FrontendError) -> FrontendError {
        if self.fault.is_none() {
            self.fault = Some(error);
        }
        error
    }

    /// Queues a read of `sector_count` sectors (1..=88) from `sector`. The backend sees
    /// it after [`publish`](Self::publish); [`poll`](Self::poll) copies the data out.
    /// Returns the request id.
    ///
    /// # Errors
    ///
    /// [`FrontendError::BadLength`], [`FrontendError::RingFull`],
    /// [`FrontendError::NoFreePages`], [`FrontendError::Grant`], or the device's fault.
    pub fn submit_read(&mut self, sector: u64, sector_count: u32) -> Result<u64, FrontendError> {
        self.submit_copying(Operation::Read, sector, sector_count, &[])
    }

    /// Queues a write of `data` (1..=88 whole sectors) at `sector`, copied into pool
    /// pages. Returns the id.
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
        self.submit_copying(Operation::Write, sector, sector_count, data)
    }

    /// Queues a flush of the disk cache (no data). Returns the id.
    ///
    /// # Errors
    ///
    /// [`FrontendError::RingFull`] or the device's fault.
    pub fn submit_flush(&mut self) -> Result<u64, FrontendError> {
        self.check()?;
        self.started = true;
        let slot = self.free_slot()?;
        let list = self.claim_list();
        self.send(slot, Operation::Flush, 0, 0, list, 0, false)
    }

    /// Zero-copy: lends `count` (1..=11) pool pages to fill (see
    /// [`write_page`](Self::write_page), [`lent_pages`](Self::lent_pages)) and write with
    /// [`submit_write_pages`](Self::submit_write_pages), or to give back. A page the
    /// frontend has not zeroed since it joined the pool is zeroed first; otherwise its
    /// contents are what it last held (this device's data), not cleared per request.
    ///
    /// # Errors
    ///
    /// [`FrontendError::BadLength`], [`FrontendError::NoFreePages`] or the device's fault.
    pub fn take_pages(&mut self, count: usize) -> Result<LentPages, FrontendError> {
        self.check()?;
        self.started = true;
        if !(1..=MAX_PAGES_PER_REQUEST).contains(&count) {
            return Err(FrontendError::BadLength);
        }
        if self.pool.len() < count {
            return Err(FrontendError::NoFreePages);
        }
        let list = self.claim_list();
        let run = self.pool.take(count);
        // A page is zeroed where it lies (rarely needed), so that the run is then copied
        // out in one pass.
        for page in run.iter_mut() {
            zero_once(&mut self.pages, page);
        }
        if let Some(taken) = self.lists.get_mut(list) {
            append_run(taken, run);
        }
        self.lent += count;
        Ok(self.lend(list))
    }

    /// Gives lent pages back to the pool (after an in-place read's data was used, or pages
    /// taken and not written): they go back as the run they came out as, its first page on
    /// top, so the next request of the same size gets the same ascending run. After
    /// [`disconnect`](Self::disconnect) their persistent grants are already revoked; a page
    /// the backend still mapped then stays quarantined. A handle another frontend lent is
    /// dropped (its pages are lost to their frontend, as if dropped there).
    pub fn give_back(&mut self, pages: LentPages) {
        let Some(list) = self.redeem(&pages) else {
            return;
        };
        if self.disconnected() {
            self.give_back_after_disconnect(list);
            return;
        }
        self.lent = self
            .lent
            .saturating_sub(self.lists.get(list).map_or(0, |pages| pages.len()));
        self.release(list);
    }

    /// [`give_back`](Self::give_back) once disconnected: persistent grants are gone.
    #[cold]
    fn give_back_after_disconnect(&mut self, list: usize) {
        let pages = self
            .lists
            .get_mut(list)
            .map(core::mem::take)
            .unwrap_or_default();
        self.lent = self.lent.saturating_sub(pages.len());
        // The last first, so that the first ends on top.
        for page in pages.iter().rev() {
            self.return_to_pool(*page);
        }
        self.vacate(list);
    }

    /// Puts a page back in the pool. After [`disconnect`](Self::disconnect) its persistent
    /// grant is gone: the page returns ungranted, or not at all if the backend still
    /// mapped it then (it is quarantined).
    fn return_to_pool(&mut self, mut state: DataPage<G::Page>) {
        if self.disconnected() {
            if let Some(grant) = state.take_grant() {
                if self.unrevoked.contains(&grant) {
                    return;
                }
            }
        }
        self.pool.push(state);
    }

    /// The lent pages, in order (disk order for an in-place read's), to see which pages
    /// they are ([`DataPage::page`]).
    ///
    /// # Errors
    ///
    /// [`FrontendError::ForeignPages`] if another frontend lent them.
    pub fn lent_pages(&self, pages: &LentPages) -> Result<&[DataPage<G::Page>], FrontendError> {
        self.redeem(pages)
            .and_then(|list| self.lists.get(list))
            .map(|list| list.as_slice())
            .ok_or(FrontendError::ForeignPages)
    }

    /// Lent page `index`.
    fn lent_page(&self, pages: &LentPages, index: usize) -> Result<G::Page, FrontendError> {
        self.lent_pages(pages)?
            .get(index)
            .map(DataPage::page)
            .ok_or(FrontendError::BadLength)
    }

    /// Copies `data` into lent page `index` at `offset_bytes`.
    ///
    /// # Errors
    ///
    /// [`FrontendError::BadLength`] if there is no such page or `data` does not fit in it,
    /// [`FrontendError::ForeignPages`] if another frontend lent them.
    pub fn write_page(
        &mut self,
        pages: &LentPages,
        index: usize,
        offset_bytes: usize,
        data: &[u8],
    ) -> Result<(), FrontendError> {
        let page = self.lent_page(pages, index)?;
        fits_in_page(offset_bytes, data.len())?;
        self.pages.write(page, offset_bytes, data);
        Ok(())
    }

    /// Copies from lent page `index` at `offset_bytes` into `data`.
    ///
    /// # Errors
    ///
    /// [`FrontendError::BadLength`] if there is no such page or the range does not fit in
    /// it, [`FrontendError::ForeignPages`] if another frontend lent them.
    pub fn read_page(
        &mut self,
        pages: &LentPages,
        index: usize,
        offset_bytes: usize,
        data: &mut [u8],
    ) -> Result<(), FrontendError> {
        let page = self.lent_page(pages, index)?;
        fits_in_page(offset_bytes, data.len())?;
        self.pages.read(page, offset_bytes, data);
        Ok(())
    }

    /// The handle on `list`, now lent.
    fn lend(&self, list: usize) -> LentPages {
        LentPages {
            owner: self.owner,
            list: list as u32,
        }
    }

    /// The list a handle names, if this frontend lent it. (A handle cannot be copied and
    /// is consumed when its pages return, so one of ours always names a lent list.)
    #[inline]
    fn redeem(&self, pages: &LentPages) -> Option<usize> {
        (pages.owner == self.owner).then_some(pages.list as usize)
    }

    /// A vacant list, to fill; made if none is (only when more runs are out at once than
    /// ever before).
    #[inline]
    fn claim_list(&mut self) -> usize {
        match self.vacant_lists.pop() {
            Some(list) => list as usize,
            None => self.add_list(),
        }
    }

    #[cold]
    fn add_list(&mut self) -> usize {
        self.lists.push(PageList::new());
        // Room to vacate every list without allocating.
        self.vacant_lists
            .reserve(self.lists.len().saturating_sub(self.vacant_lists.len()));
        self.lists.len() - 1
    }

    /// Empties `list` and marks it vacant.
    #[inline]
    fn vacate(&mut self, list: usize) {
        if let Some(pages) = self.lists.get_mut(list) {
            pages.clear();
            self.vacant_lists.push(list as u32);
        }
    }

    /// Zero-copy: queues a write of `sector_count` sectors (1..=88) at `sector` from
    /// `pages` (exactly `sector_count.div_ceil(8)` pages, from [`take_pages`](Self::take_pages)
    /// or an in-place read, in disk order), sent as they are, from where they lie (the
    /// request takes over their list). The pages return to the pool when the write
    /// completes, and at once if this fails. Returns the id.
    ///
    /// # Errors
    ///
    /// [`FrontendError::BadLength`] (also for a page count that does not match),
    /// [`FrontendError::RingFull`], [`FrontendError::Grant`],
    /// [`FrontendError::ForeignPages`] (the handle is dropped), or the device's fault.
    pub fn submit_write_pages(
        &mut self,
        sector: u64,
        sector_count: u32,
        pages: LentPages,
    ) -> Result<u64, FrontendError> {
        let list = self.redeem(&pages).ok_or(FrontendError::ForeignPages)?;
        let count = self.lists.get(list).map_or(0, |pages| pages.len());
        self.lent = self.lent.saturating_sub(count);
        let checked = self.check().and_then(|()| {
            if (1..=MAX_SECTORS_PER_REQUEST).contains(&sector_count)
                && count == pages_for(sector_count)
            {
                self.free_slot()
            } else {
                Err(FrontendError::BadLength)
            }
        });
        let slot = match checked {
            Ok(slot) => slot,
            Err(error) => {
                self.give_back_unsent(list);
                return Err(error);
            }
        };
        self.started = true;
        self.send(slot, Operation::Write, sector, sector_count, list, 0, false)
    }

    /// Zero-copy: queues a read of `sector_count` sectors (1..=88) from `sector` into pool
    /// pages that [`poll_in_place`](Self::poll_in_place) hands over, without copying
    /// (a page is zeroed only the first time the frontend uses it). In non-persistent mode
    /// the grants are revoked before the pages are handed over, so the backend cannot
    /// change the data afterwards. Returns the id.
    ///
    /// # Errors
    ///
    /// As [`submit_read`](Self::submit_read).
    pub fn submit_read_in_place(
        &mut self,
        sector: u64,
        sector_count: u32,
    ) -> Result<u64, FrontendError> {
        self.check()?;
        self.started = true;
        let (slot, page_count) = self.check_transfer(sector_count)?;
        let list = self.claim_list();
        self.send(
            slot,
            Operation::Read,
            sector,
            sector_count,
            list,
            page_count,
            true,
        )
    }

    /// Zeroes every pool page not yet zeroed and, in persistent mode, grants every pool
    /// page not yet granted, so that later requests find them ready (to keep that work
    /// out of a timed section). Returns how many grants it made.
    ///
    /// # Errors
    ///
    /// [`FrontendError::Grant`] (the grants made so far stay) or the device's fault.
    pub fn prepare_pool(&mut self) -> Result<usize, FrontendError> {
        self.check()?;
        self.started = true;
        let mut granted = 0;
        // In the order the pages are handed out.
        for state in self.pool.free_mut() {
            zero_once(&mut self.pages, state);
            if self.persistent && state.grant().is_none() {
                let grant = self
                    .pages
                    .grant(state.page, self.backend, false)
                    .map_err(FrontendError::Grant)?;
                state.set_grant(Some(grant));
                self.persistent_grants.push((state.page, grant));
                granted += 1;
            }
        }
        Ok(granted)
    }

    /// The checks before a transfer takes pages: length, a free slot, enough pages.
    /// Returns the slot and the page count.
    fn check_transfer(&self, sector_count: u32) -> Result<(usize, usize), FrontendError> {
        if !(1..=MAX_SECTORS_PER_REQUEST).contains(&sector_count) {
            return Err(FrontendError::BadLength);
        }
        let slot = self.free_slot()?;
        let page_count = pages_for(sector_count);
        if self.pool.len() < page_count {
            return Err(FrontendError::NoFreePages);
        }
        Ok((slot, page_count))
    }

    /// The slot the next request takes (the lowest free one), if the ring has room.
    fn free_slot(&self) -> Result<usize, FrontendError> {
        match self.free_slots.last() {
            Some(&slot) if !self.ring.is_full() => Ok(usize::from(slot)),
            _ => Err(FrontendError::RingFull),
        }
    }

    /// The copying submit: takes pages from the pool into `slot`, zeroes them (per request
    /// in non-persistent mode, once in persistent mode) and copies a write's data in.
    fn submit_copying(
        &mut self,
        operation: Operation,
        sector: u64,
        sector_count: u32,
        data: &[u8],
    ) -> Result<u64, FrontendError> {
        self.check()?;
        self.started = true;
        let (slot, page_count) = self.check_transfer(sector_count)?;
        let list = self.claim_list();
        if let Some(pages) = self.lists.get_mut(list) {
            let mut chunks = data.chunks(PAGE_SIZE_BYTES);
            for state in self.pool.take(page_count).iter() {
                let mut state = *state;
                if self.persistent {
                    zero_once(&mut self.pages, &mut state);
                } else {
                    self.pages.zero(state.page);
                    state.set_zeroed();
                }
                if let Some(chunk) = chunks.next() {
                    self.pages.write(state.page, 0, chunk);
                }
                let _ = pages.push(state);
            }
        }
        self.send(slot, operation, sector, sector_count, list, 0, false)
    }

    /// Sends the request in `slot`, which must be the lowest free one
    /// ([`free_slot`](Self::free_slot)): its pages are those in `list` (claimed for it),
    /// then `from_pool` more taken off the pool into it (in ascending pool order, each
    /// zeroed the first time). Grants what they need (persistent: read-write, once per
    /// page; otherwise per request, read-only for a write so the backend cannot scribble
    /// on our data), pushes the request and records it, with its list, in `slot`. On
    /// failure the pages return to the pool and the list is vacated.
    #[allow(clippy::too_many_arguments)] // reason: the one internal sender, every argument a field of the request
    fn send(
        &mut self,
        slot: usize,
        operation: Operation,
        sector: u64,
        sector_count: u32,
        list: usize,
        from_pool: usize,
        in_place: bool,
    ) -> Result<u64, FrontendError> {
        let id = self
            .next_generation
            .wrapping_mul(SLOTS as u64)
            .wrapping_add(slot as u64);
        // Built in place (the segments are filled in the request itself, not copied in).
        let transfer = TransferRequest {
            handle: self.handle,
            id,
            sector_number: sector,
            ..TransferRequest::default()
        };
        let mut encoded = match operation {
            Operation::Read => BlkifRequest::Read(transfer),
            Operation::Write => BlkifRequest::Write(transfer),
            Operation::Flush => BlkifRequest::FlushDiskCache(transfer),
        };
        let (BlkifRequest::Read(request)
        | BlkifRequest::Write(request)
        | BlkifRequest::FlushDiskCache(request)) = &mut encoded
        else {
            // Not reached: built as one of those just above.
            self.give_back_unsent(list);
            return Err(FrontendError::BadLength);
        };
        let Some(pages) = self.lists.get_mut(list) else {
            // Not reached: a claimed list exists.
            return Err(FrontendError::BadLength);
        };
        // Ascending pool order, as the run lies in the pool.
        append_run(pages, self.pool.take(from_pool));
        let mut grants = Grants {
            provider: &mut self.pages,
            persistent_grants: &mut self.persistent_grants,
            backend: self.backend,
            persistent: self.persistent,
            read_only: !self.persistent && operation == Operation::Write,
        };
        if let Err(error) = grants.describe(request, pages, sector_count) {
            self.give_back_unsent(list);
            return Err(FrontendError::Grant(error));
        }
        if let Err(error) = self.ring.push_request(&encoded) {
            self.give_back_unsent(list);
            return Err(match error {
                RingError::Full => FrontendError::RingFull,
                other => self.fail(FrontendError::Ring(other)),
            });
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        let _ = self.free_slots.pop();
        self.slots[slot] = Some(InFlight {
            id,
            operation,
            sector,
            sector_count,
            in_place,
            list: list as u32,
        });
        Ok(id)
    }

    /// Pages of a request that did not go out (those in `list`): back to the pool, the
    /// last first (so that the first ends on top); a per-request grant is revoked
    /// (quarantined if the backend somehow maps it already). The list is vacated.
    #[cold]
    fn give_back_unsent(&mut self, list: usize) {
        let pages = self
            .lists
            .get_mut(list)
            .map(core::mem::take)
            .unwrap_or_default();
        for page in pages.iter().rev() {
            let mut state = *page;
            if !self.persistent {
                if let Some(grant) = state.take_grant() {
                    if self.pages.revoke(grant).is_err() {
                        self.quarantined.push(state.page);
                        continue;
                    }
                }
            }
            self.return_to_pool(state);
        }
        self.vacate(list);
    }

    /// Returns the pages in `list` to the pool as they lie (the first ends on top), and
    /// vacates it.
    fn release(&mut self, list: usize) {
        if let Some(pages) = self.lists.get(list) {
            self.pool.put_back(pages);
        }
        self.vacate(list);
    }

    /// Revokes the per-request grants of the pages in `list`. A page whose grant the
    /// backend still maps leaves the list for quarantine. Returns whether none did.
    fn revoke_grants(&mut self, list: usize) -> bool {
        let mut revoked = true;
        let provider = &mut self.pages;
        let quarantined = &mut self.quarantined;
        if let Some(pages) = self.lists.get_mut(list) {
            pages.retain_mut(|page| match page.take_grant() {
                Some(grant) if provider.revoke(grant).is_err() => {
                    quarantined.push(page.page);
                    revoked = false;
                    false
                }
                _ => true,
            });
        }
        revoked
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
    /// revokes the request's grants (not in persistent mode) and, for a successful read,
    /// copies the data out. `None` means no response is ready and the response event is
    /// armed: the caller may block on the event channel. An in-place read's pages go back
    /// to the pool unread (use [`poll_in_place`](Self::poll_in_place) for those).
    ///
    /// # Errors
    ///
    /// A backend fault (the device stops) or the device's earlier fault.
    pub fn poll(&mut self) -> Result<Option<Completion>, FrontendError> {
        Ok(self.poll_in_place()?.map(|done| {
            if let Some(pages) = done.pages {
                self.give_back(pages);
            }
            done.completion
        }))
    }

    /// As [`poll`](Self::poll), but a successful read submitted with
    /// [`submit_read_in_place`](Self::submit_read_in_place) comes with its pages
    /// ([`PagedCompletion::pages`], lent until [`give_back`](Self::give_back); they stay
    /// where the read put them) instead of a copy of its data. Other requests come with no
    /// pages.
    ///
    /// # Errors
    ///
    /// As [`poll`](Self::poll).
    pub fn poll_in_place(&mut self) -> Result<Option<PagedCompletion>, FrontendError> {
        self.check()?;
        let response = match self.next_response() {
            Ok(None) => return Ok(None),
            Ok(Some(response)) => response,
            Err(error) => return Err(self.fail(FrontendError::Ring(error))),
        };
        let slot = (response.id % SLOTS as u64) as usize;
        let request = match self.slots[slot] {
            Some(request) if request.id == response.id => request,
            _ => {
                let error = if self.completed[slot] == Some(response.id) {
                    FrontendError::DuplicateResponse(response.id)
                } else {
                    FrontendError::UnknownResponseId(response.id)
                };
                return Err(self.fail(error));
            }
        };
        let expected = request.operation.code();
        if response.operation != expected {
            return Err(self.fail(FrontendError::WrongOperation {
                id: response.id,
                expected,
                found: response.operation,
            }));
        }
        let InFlight {
            id,
            operation,
            sector,
            sector_count,
            in_place,
            list,
        } = request;
        let list = list as usize;
        self.slots[slot] = None;
        self.completed[slot] = Some(id);
        let _ = self.free_slots.push(slot as u8);
        // Revoke first (non-persistent), so the backend cannot change read data while we
        // copy it out or the caller reads it.
        if !self.persistent && !self.revoke_grants(list) {
            self.release(list);
            return Err(self.fail(FrontendError::GrantStillMapped(id)));
        }
        let mut completion = Completion {
            id,
            operation,
            sector,
            sector_count,
            status: response.status,
            data: Vec::new(),
        };
        let read = response.status == STATUS_OKAY && operation == Operation::Read;
        if read && in_place {
            // The pages are lent where they lie: the caller gets a handle on their list.
            self.lent += self.lists.get(list).map_or(0, |pages| pages.len());
            return Ok(Some(PagedCompletion {
                completion,
                pages: Some(self.lend(list)),
            }));
        }
        if read {
            let mut data = alloc::vec![0u8; sector_count as usize * SECTOR_SIZE];
            if let Some(pages) = self.lists.get(list) {
                for (chunk, page) in data.chunks_mut(PAGE_SIZE_BYTES).zip(pages) {
                    self.pages.read(page.page(), 0, chunk);
                }
            }
            completion.data = data;
        }
        self.release(list);
        Ok(Some(PagedCompletion {
            completion,
            pages: None,
        }))
    }

    /// Disconnects: revokes every grant still out (pages the backend still maps are
    /// quarantined) and stops the device. In persistent mode that is every persistent
    /// grant, whether its page is in the pool, in a request in flight or lent (lent pages
    /// stay lent; given back later, they return to the pool ungranted); call it once the backend has
    /// unmapped them (it says Closing after that). The ring page's own grant is the
    /// caller's.
    pub fn disconnect(&mut self) -> DisconnectReport {
        let mut report = DisconnectReport::default();
        for slot in 0..SLOTS {
            let Some(request) = self.slots[slot].take() else {
                continue;
            };
            let _ = self.free_slots.push(slot as u8);
            let list = request.list as usize;
            if self.persistent {
                self.release(list);
                continue;
            }
            let pages = self
                .lists
                .get_mut(list)
                .map(core::mem::take)
                .unwrap_or_default();
            self.vacate(list);
            // The last first, so that the first ends on top of the pool.
            for page in pages.iter().rev() {
                let mut state = *page;
                let Some(grant) = state.take_grant() else {
                    self.pool.push(state);
                    continue;
                };
                if self.pages.revoke(grant).is_ok() {
                    report.revoked += 1;
                    self.pool.push(state);
                } else {
                    report.still_mapped += 1;
                    self.quarantined.push(state.page);
                }
            }
        }
        // Keep the free slots and vacant lists ordered lowest on top, as at construction.
        self.free_slots.sort_unstable_by(|a, b| b.cmp(a));
        self.vacant_lists.sort_unstable_by(|a, b| b.cmp(a));
        let grants = core::mem::take(&mut self.persistent_grants);
        for (page, grant) in grants {
            if self.pages.revoke(grant).is_ok() {
                report.revoked += 1;
            } else {
                report.still_mapped += 1;
                self.quarantined.push(page);
                self.unrevoked.push(grant);
            }
        }
        let unrevoked = &self.unrevoked;
        self.pool.retain(|state| {
            state
                .grant()
                .is_none_or(|grant| !unrevoked.contains(&grant))
        });
        for state in self.pool.free_mut() {
            state.set_grant(None);
        }
        self.fault = Some(FrontendError::Disconnected);
        report
    }

    /// Gives back the page provider and the free pages (not the quarantined ones, nor
    /// those still lent), for a reconnection after [`disconnect`](Self::disconnect).
    pub fn into_parts(self) -> (G, Vec<G::Page>) {
        // In the order they would have been handed out, so that a new frontend over them
        // hands them out in the same order.
        let free = self.pool.free().iter().map(DataPage::page).collect();
        (self.pages, free)
    }
}

/// What granting needs, borrowed apart from the table of requests in flight and the pool
/// so that pages can be prepared while they move between the two.
struct Grants<'a, G: GrantPages> {
    provider: &'a mut G,
    persistent_grants: &'a mut Vec<(G::Page, GrantRef)>,
    backend: DomId,
    persistent: bool,
    read_only: bool,
}

impl<G: GrantPages> Grants<'_, G> {
    /// Readies `pages` (see [`prepare`](Self::prepare)) and describes them in `request`'s
    /// segments, `sector_count` sectors in all (each caller checked that the page count
    /// matches: every page but the last carries 8 sectors).
    fn describe(
        &mut self,
        request: &mut TransferRequest,
        pages: &mut PageList<G::Page>,
        sector_count: u32,
    ) -> Result<(), GrantError> {
        for (segment, page) in request.segments.iter_mut().zip(pages.iter_mut()) {
            if !page.ready() {
                self.prepare(page)?;
            }
            *segment = Segment {
                grant: page.grant_word(),
                first_sector: 0,
                last_sector: SECTORS_PER_PAGE - 1,
            };
        }
        request.segment_count = pages.len() as u8;
        if let Some(last) = pages
            .len()
            .checked_sub(1)
            .and_then(|last| request.segments.get_mut(last))
        {
            last.last_sector = ((sector_count + u32::from(SECTORS_PER_PAGE) - 1)
                % u32::from(SECTORS_PER_PAGE)) as u8;
        }
        Ok(())
    }

    /// Makes a page ready to go out: zeroed if the frontend has not since it joined the
    /// pool (only a page just taken off the pool can be: those lent were zeroed when
    /// taken), and granted if it holds no grant (persistent: for good, and recorded).
    fn prepare(&mut self, state: &mut DataPage<G::Page>) -> Result<(), GrantError> {
        zero_once(self.provider, state);
        if state.grant().is_none() {
            let grant = self
                .provider
                .grant(state.page, self.backend, self.read_only)?;
            state.set_grant(Some(grant));
            if self.persistent {
                self.persistent_grants.push((state.page, grant));
            }
        }
        Ok(())
    }
}

/// `length` bytes at `offset_bytes` lie inside one page.
fn fits_in_page(offset_bytes: usize, length: usize) -> Result<(), FrontendError> {
    match offset_bytes.checked_add(length) {
        Some(end) if end <= PAGE_SIZE_BYTES => Ok(()),
        _ => Err(FrontendError::BadLength),
    }
}

/// Pages a transfer of `sector_count` sectors uses.
fn pages_for(sector_count: u32) -> usize {
    (sector_count as usize).div_ceil(usize::from(SECTORS_PER_PAGE))
}

/// Zeroes the page if the frontend has not since it joined the pool.
#[inline]
fn zero_once<G: GrantPages>(pages: &mut G, state: &mut DataPage<G::Page>) {
    if !state.zeroed() {
        zero(pages, state);
    }
}

/// Zeroes the page (once per page: kept out of the loops that mostly find it done).
#[cold]
fn zero<G: GrantPages>(pages: &mut G, state: &mut DataPage<G::Page>) {
    pages.zero(state.page);
    state.set_zeroed();
}
