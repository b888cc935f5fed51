//! The frontend end of a ring: it produces requests and consumes responses, and nothing
//! else. It trusts the backend no more than the backend trusts it: every response is
//! copied out once before it is decoded, and the backend's `rsp_prod` is checked against
//! the requests actually published.

use crate::entry::{assert_protocol_shape, wide_slots, Protocol};
use crate::error::RingError;
use crate::layout::{
    HEADER_SIZE, REQUEST_EVENT_OFFSET, REQUEST_PRODUCER_OFFSET, RESPONSE_EVENT_OFFSET,
    RESPONSE_PRODUCER_OFFSET,
};
use crate::ring::{check_producer, read_entry, write_entry, Notification};
use crate::shared::{full_fence, SharedPage};
use core::marker::PhantomData;
use core::sync::atomic::Ordering;

/// The frontend end of a ring carrying protocol `P` (Xen's `FRONT_RING`).
pub struct Frontend<'page, P: Protocol> {
    page: SharedPage<'page>,
    /// `req_prod_pvt`: requests written, published or not.
    request_producer: u32,
    /// The `req_prod` we last stored in the page (never read back from it).
    requests_published: u32,
    /// `rsp_cons`: responses consumed.
    response_consumer: u32,
    /// The backend's `rsp_prod` as last read and accepted.
    responses_seen: u32,
    /// The `rsp_event` our last final check stored (never read back from the page), if
    /// any since attaching; see `final_check_for_responses`.
    response_event_armed: Option<u32>,
    /// The first protocol violation of the backend; once set, every call returns it.
    fault: Option<RingError>,
    protocol: PhantomData<fn() -> P>,
}

impl<'page, P: Protocol> Frontend<'page, P> {
    /// Number of slots in the ring.
    pub const SIZE: u32 = P::RING_SIZE;

    /// Whether slots are copied as 64-bit words (see `entry::wide_slots`).
    const WIDE: bool = wide_slots::<P>();

    /// Initializes the shared header of a fresh ring page (Xen's `SHARED_RING_INIT` then
    /// `FRONT_RING_INIT`): producers 0, event indices 1, padding zero.
    pub fn initialize(page: SharedPage<'page>) -> Self {
        Self::initialize_at(page, 0)
    }

    /// Like [`initialize`](Self::initialize), but with all indices starting at
    /// `first_index` instead of 0 (the backend then attaches at the same index). Useful to
    /// exercise the wrap at 2^32.
    pub fn initialize_at(page: SharedPage<'page>, first_index: u32) -> Self {
        // Ordering: Release on each store. The page reaches the backend later through a
        // synchronizing channel (grant and store write, or thread start); Release costs
        // nothing here and keeps the header ordered before any later publication.
        for offset in (0..HEADER_SIZE).step_by(4) {
            page.store_index(offset, 0, Ordering::Release);
        }
        page.store_index(REQUEST_PRODUCER_OFFSET, first_index, Ordering::Release);
        page.store_index(RESPONSE_PRODUCER_OFFSET, first_index, Ordering::Release);
        let event = first_index.wrapping_add(1);
        page.store_index(REQUEST_EVENT_OFFSET, event, Ordering::Release);
        page.store_index(RESPONSE_EVENT_OFFSET, event, Ordering::Release);
        Self::attach_at(page, first_index)
    }

    /// Takes over a ring page whose header is already set up, with both private indices at
    /// `index` (Xen's `FRONT_RING_ATTACH`). Writes nothing to the page.
    pub fn attach_at(page: SharedPage<'page>, index: u32) -> Self {
        const { assert_protocol_shape::<P>() };
        Self {
            page,
            request_producer: index,
            requests_published: index,
            response_consumer: index,
            responses_seen: index,
            response_event_armed: None,
            fault: None,
            protocol: PhantomData,
        }
    }

    /// The protocol violation that poisoned this ring, if any.
    pub fn fault(&self) -> Option<RingError> {
        self.fault
    }

    #[inline]
    fn check_fault(&self) -> Result<(), RingError> {
        match self.fault {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    #[inline]
    fn poison(&mut self, error: RingError) -> RingError {
        self.fault = Some(error);
        error
    }

    /// Slots free for new requests (Xen's `RING_FREE_REQUESTS`): those whose response has
    /// been consumed or that were never used.
    #[inline]
    pub fn free_requests(&self) -> u32 {
        Self::SIZE - self.request_producer.wrapping_sub(self.response_consumer)
    }

    /// Whether no request can be pushed now (Xen's `RING_FULL`).
    #[inline]
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Requests pushed so far (`req_prod_pvt`, free-running).
    pub fn requests_produced(&self) -> u32 {
        self.request_producer
    }

    /// Responses consumed so far (`rsp_cons`, free-running).
    pub fn responses_consumed(&self) -> u32 {
        self.response_consumer
    }

    /// Writes `request` into the next free slot. The backend sees it only after
    /// [`publish_requests`](Self::publish_requests).
    ///
    /// # Errors
    ///
    /// [`RingError::Full`] when no slot is free; the ring's fault if it is poisoned.
    #[inline]
    pub fn push_request(&mut self, request: &P::Request) -> Result<(), RingError> {
        self.check_fault()?;
        if self.is_full() {
            return Err(RingError::Full);
        }
        // The slot is ours: its previous response was consumed (free_requests > 0), and
        // the backend only writes slots of requests it has consumed, which this is not yet.
        write_entry(
            &self.page,
            self.request_producer,
            Self::SIZE,
            P::SLOT_SIZE,
            Self::WIDE,
            request,
        );
        self.request_producer = self.request_producer.wrapping_add(1);
        Ok(())
    }

    /// Publishes the pushed requests and says whether the backend must be notified (Xen's
    /// `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`).
    ///
    /// # Errors
    ///
    /// The ring's fault if it is poisoned.
    #[inline]
    pub fn publish_requests(&mut self) -> Result<Notification, RingError> {
        self.check_fault()?;
        let old = self.requests_published;
        let new = self.request_producer;
        if new == old {
            // Nothing new: Xen's macro would store the same index and notify no one
            // (`new - event < 0` never holds); skip the store and the fence.
            return Ok(Notification::Suppressed);
        }
        // Ordering: Release (Xen's wmb() before the store). The slot writes of every
        // request up to `new` happen before this store, so a backend that reads `new` with
        // Acquire sees the complete requests.
        self.page
            .store_index(REQUEST_PRODUCER_OFFSET, new, Ordering::Release);
        self.requests_published = new;
        // Ordering: full fence (Xen's mb()). Our store of req_prod must be ordered before
        // our load of req_event. The backend's final check stores req_event, then fences,
        // then loads req_prod. With both fences, at least one side sees the other's store:
        // either we read its new req_event and notify, or it reads our req_prod and keeps
        // working. Without it both could read stale values: a lost wake-up.
        full_fence();
        // Ordering: Relaxed; ordered after the req_prod store by the fence above, and the
        // value only steers the notification decision, no data is read through it.
        let event = self
            .page
            .load_index(REQUEST_EVENT_OFFSET, Ordering::Relaxed);
        Ok(Notification::decide(old, new, event))
    }

    /// Number of responses ready to consume (Xen's `RING_HAS_UNCONSUMED_RESPONSES`),
    /// after checking the backend's `rsp_prod`.
    ///
    /// # Errors
    ///
    /// [`RingError::PeerOverflow`] if the backend claims responses to requests never
    /// published, [`RingError::PeerRewound`] if it moved `rsp_prod` back; both poison the
    /// ring.
    #[inline]
    pub fn unconsumed_responses(&mut self) -> Result<u32, RingError> {
        self.check_fault()?;
        // Ordering: Acquire, pairing with the backend's Release store of rsp_prod: the
        // slot writes of every response up to the value read are visible to our copies.
        let producer = self
            .page
            .load_index(RESPONSE_PRODUCER_OFFSET, Ordering::Acquire);
        let limit = self.requests_published.wrapping_sub(self.response_consumer);
        match check_producer(producer, self.response_consumer, self.responses_seen, limit) {
            Ok(available) => {
                self.responses_seen = producer;
                Ok(available)
            }
            Err(error) => Err(self.poison(error)),
        }
    }

    /// Consumes the next response, if one is ready: copies its slot once, then decodes the
    /// copy.
    ///
    /// # Errors
    ///
    /// [`RingError::Malformed`] if the response does not decode (it is consumed; the ring
    /// stays usable); the index errors of
    /// [`unconsumed_responses`](Self::unconsumed_responses).
    #[inline]
    pub fn next_response(&mut self) -> Result<Option<P::Response>, RingError> {
        self.check_fault()?;
        if self.response_consumer == self.responses_seen && self.unconsumed_responses()? == 0 {
            return Ok(None);
        }
        let decoded = read_entry::<P::Response>(
            &self.page,
            self.response_consumer,
            Self::SIZE,
            P::SLOT_SIZE,
            Self::WIDE,
        );
        self.response_consumer = self.response_consumer.wrapping_add(1);
        decoded.map(Some).map_err(RingError::Malformed)
    }

    /// Whether responses are ready, arming the event index first if none are, so that the
    /// backend notifies for the next one (Xen's `RING_FINAL_CHECK_FOR_RESPONSES`). When it
    /// returns `false`, the caller may sleep until the next event. Calling it again with
    /// nothing consumed meanwhile stores nothing and issues no fence (the event index
    /// already holds that value, ordered by the fence after its store), so a caller may
    /// poll with it cheaply.
    ///
    /// # Errors
    ///
    /// The index errors of [`unconsumed_responses`](Self::unconsumed_responses).
    #[inline]
    pub fn final_check_for_responses(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_responses()? > 0 {
            return Ok(true);
        }
        let event = self.response_consumer.wrapping_add(1);
        if self.response_event_armed != Some(event) {
            // Ordering: Relaxed store; it is ordered before the re-check's load of rsp_prod
            // by the full fence below, which is all the protocol needs from it.
            self.page
                .store_index(RESPONSE_EVENT_OFFSET, event, Ordering::Relaxed);
            // Ordering: full fence (Xen's mb()): our rsp_event store before our rsp_prod
            // load, pairing with the fence in the backend's publish_responses (see
            // publish_requests).
            full_fence();
            self.response_event_armed = Some(event);
        }
        // Else an earlier final check stored this very value and fenced after it; that
        // fence orders the store before this load too, so the store and fence are skipped
        // (as in the backend's final_check_for_requests: polling an idle ring then only
        // reads the header line). Only the frontend writes rsp_event; a backend that
        // overwrites it only loses its own notifications.
        Ok(self.unconsumed_responses()? > 0)
    }
}
