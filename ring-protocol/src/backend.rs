//! The backend end of a ring: it consumes requests and produces responses, and nothing
//! else. Each request is copied out of the shared page exactly once before it is decoded
//! (Xen XSA-155), and the frontend's `req_prod` is checked so it can never claim more
//! outstanding requests than the ring holds (Linux's `RING_REQUEST_PROD_OVERFLOW`).

use crate::entry::{assert_protocol_shape, wide_slots, Protocol, RingEntry};
use crate::error::RingError;
use crate::layout::{
    slot_offset, REQUEST_EVENT_OFFSET, REQUEST_PRODUCER_OFFSET, RESPONSE_EVENT_OFFSET,
    RESPONSE_PRODUCER_OFFSET,
};
use crate::ring::{check_producer, read_entry, read_entry_into, write_entry, Notification};
use crate::shared::{full_fence, SharedPage};
use core::marker::PhantomData;
use core::sync::atomic::Ordering;

/// The backend end of a ring carrying protocol `P` (Xen's `BACK_RING`).
pub struct Backend<'page, P: Protocol> {
    page: SharedPage<'page>,
    /// `req_cons`: requests consumed (copied out).
    request_consumer: u32,
    /// The frontend's `req_prod` as last read and accepted.
    requests_seen: u32,
    /// `rsp_prod_pvt`: responses written, published or not.
    response_producer: u32,
    /// The `rsp_prod` we last stored in the page (never read back from it).
    responses_published: u32,
    /// The `req_event` our last final check stored (never read back from the page), if
    /// any since attaching. A final check that would store the same value again skips the
    /// store and the fence (see `final_check_for_requests`).
    request_event_armed: Option<u32>,
    /// The first protocol violation of the frontend; once set, every call returns it.
    fault: Option<RingError>,
    protocol: PhantomData<fn() -> P>,
}

impl<'page, P: Protocol> Backend<'page, P> {
    /// Number of slots in the ring.
    pub const SIZE: u32 = P::RING_SIZE;

    /// Whether slots are copied as 64-bit words (see `entry::wide_slots`).
    const WIDE: bool = wide_slots::<P>();

    /// Attaches to a ring the frontend initialized from index 0 (Xen's `BACK_RING_INIT`).
    /// Writes nothing to the page.
    pub fn attach(page: SharedPage<'page>) -> Self {
        Self::attach_at(page, 0)
    }

    /// Attaches with both private indices at `index` (Xen's `BACK_RING_ATTACH`), for a
    /// ring initialized at that index or a reconnecting backend that saved it.
    pub fn attach_at(page: SharedPage<'page>, index: u32) -> Self {
        const { assert_protocol_shape::<P>() };
        Self {
            page,
            request_consumer: index,
            requests_seen: index,
            response_producer: index,
            responses_published: index,
            request_event_armed: None,
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

    /// Requests consumed so far (`req_cons`, free-running).
    pub fn requests_consumed(&self) -> u32 {
        self.request_consumer
    }

    /// Responses pushed so far (`rsp_prod_pvt`, free-running).
    pub fn responses_produced(&self) -> u32 {
        self.response_producer
    }

    /// Requests consumed but not yet answered.
    #[inline]
    pub fn requests_awaiting_response(&self) -> u32 {
        self.request_consumer.wrapping_sub(self.response_producer)
    }

    /// Number of requests ready to consume (Xen's `RING_HAS_UNCONSUMED_REQUESTS`), after
    /// checking the frontend's `req_prod`.
    ///
    /// # Errors
    ///
    /// [`RingError::PeerOverflow`] if the frontend claims more outstanding requests than
    /// the ring holds, [`RingError::PeerRewound`] if it moved `req_prod` back; both poison
    /// the ring.
    #[inline]
    pub fn unconsumed_requests(&mut self) -> Result<u32, RingError> {
        self.check_fault()?;
        // Ordering: Acquire, pairing with the frontend's Release store of req_prod: the
        // slot writes of every request up to the value read are visible to our copies.
        let producer = self
            .page
            .load_index(REQUEST_PRODUCER_OFFSET, Ordering::Acquire);
        // Slots not holding an unanswered request: the frontend may fill them, no more.
        let limit = Self::SIZE - self.requests_awaiting_response();
        match check_producer(producer, self.request_consumer, self.requests_seen, limit) {
            Ok(available) => {
                // Warm the cache for the requests just announced, all at once, so their
                // slots arrive from the frontend's cache together rather than one miss per
                // request as next_request copies them (the copies still happen there,
                // once each). At most the ring size, and only for newly seen requests.
                let mut index = self.requests_seen;
                while index != producer {
                    self.page.prefetch(
                        slot_offset(index, Self::SIZE, P::SLOT_SIZE),
                        P::Request::SIZE,
                        Self::WIDE,
                    );
                    index = index.wrapping_add(1);
                }
                self.requests_seen = producer;
                Ok(available)
            }
            Err(error) => Err(self.poison(error)),
        }
    }

    /// Consumes the next request, if one is ready: copies its slot once, then decodes the
    /// copy.
    ///
    /// # Errors
    ///
    /// [`RingError::Malformed`] if the request does not decode: it is consumed, and the
    /// caller answers it with an error response (the ring stays usable). The index errors
    /// of [`unconsumed_requests`](Self::unconsumed_requests).
    #[inline]
    pub fn next_request(&mut self) -> Result<Option<P::Request>, RingError> {
        self.check_fault()?;
        if self.request_consumer == self.requests_seen && self.unconsumed_requests()? == 0 {
            return Ok(None);
        }
        let decoded = read_entry::<P::Request>(
            &self.page,
            self.request_consumer,
            Self::SIZE,
            P::SLOT_SIZE,
            Self::WIDE,
        );
        self.request_consumer = self.request_consumer.wrapping_add(1);
        decoded.map(Some).map_err(RingError::Malformed)
    }

    /// As [`next_request`](Self::next_request), but decodes the request into `request`
    /// ([`RingEntry::decode_into`]), for a backend that takes request after request into
    /// one place: returns `true` when it wrote a request there, `false` when none is
    /// ready (then, and on any error, `request` is unchanged). The slot is copied out of
    /// the page once and `request` is written only from that copy.
    ///
    /// # Errors
    ///
    /// As [`next_request`](Self::next_request).
    #[inline]
    pub fn next_request_into(&mut self, request: &mut P::Request) -> Result<bool, RingError> {
        self.check_fault()?;
        if self.request_consumer == self.requests_seen && self.unconsumed_requests()? == 0 {
            return Ok(false);
        }
        let decoded = read_entry_into(
            &self.page,
            self.request_consumer,
            Self::SIZE,
            P::SLOT_SIZE,
            Self::WIDE,
            request,
        );
        self.request_consumer = self.request_consumer.wrapping_add(1);
        decoded.map(|()| true).map_err(RingError::Malformed)
    }

    /// Writes `response` into the slot of the oldest unanswered request. The frontend sees
    /// it only after [`publish_responses`](Self::publish_responses).
    ///
    /// # Errors
    ///
    /// [`RingError::NoRequestToAnswer`] if every consumed request is answered; the ring's
    /// fault if it is poisoned.
    #[inline]
    pub fn push_response(&mut self, response: &P::Response) -> Result<(), RingError> {
        self.check_fault()?;
        if self.requests_awaiting_response() == 0 {
            return Err(RingError::NoRequestToAnswer);
        }
        // The slot held a request we already copied out; the frontend will not reuse it
        // until it has consumed this response.
        write_entry(
            &self.page,
            self.response_producer,
            Self::SIZE,
            P::SLOT_SIZE,
            Self::WIDE,
            response,
        );
        self.response_producer = self.response_producer.wrapping_add(1);
        Ok(())
    }

    /// Publishes the pushed responses and says whether the frontend must be notified
    /// (Xen's `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`). The old producer value comes from
    /// our private copy, not the page, so a frontend scribbling on `rsp_prod` cannot steer
    /// the decision.
    ///
    /// # Errors
    ///
    /// The ring's fault if it is poisoned.
    #[inline]
    pub fn publish_responses(&mut self) -> Result<Notification, RingError> {
        self.check_fault()?;
        let old = self.responses_published;
        let new = self.response_producer;
        if new == old {
            // Nothing new: Xen's macro would store the same index and notify no one
            // (`new - event < 0` never holds); skip the store and the fence.
            return Ok(Notification::Suppressed);
        }
        // Ordering: Release (Xen's wmb()): the response slot writes happen before this
        // store, so a frontend that reads `new` with Acquire sees complete responses.
        self.page
            .store_index(RESPONSE_PRODUCER_OFFSET, new, Ordering::Release);
        self.responses_published = new;
        // Ordering: full fence (Xen's mb()): our rsp_prod store before our rsp_event load,
        // pairing with the fence in the frontend's final check so that either we see its
        // new rsp_event and notify, or it sees our rsp_prod (no lost wake-up).
        full_fence();
        // Ordering: Relaxed; ordered by the fence, and it only steers the decision.
        let event = self
            .page
            .load_index(RESPONSE_EVENT_OFFSET, Ordering::Relaxed);
        Ok(Notification::decide(old, new, event))
    }

    /// Whether requests are ready, arming the event index first if none are, so that the
    /// frontend notifies for the next one (Xen's `RING_FINAL_CHECK_FOR_REQUESTS`). When it
    /// returns `false`, the caller may sleep until the next event. Calling it again with
    /// nothing consumed meanwhile stores nothing and issues no fence (the event index
    /// already holds that value, ordered by the fence after its store), so a caller may
    /// poll with it cheaply.
    ///
    /// # Errors
    ///
    /// The index errors of [`unconsumed_requests`](Self::unconsumed_requests).
    #[inline]
    pub fn final_check_for_requests(&mut self) -> Result<bool, RingError> {
        if self.unconsumed_requests()? > 0 {
            return Ok(true);
        }
        let event = self.request_consumer.wrapping_add(1);
        if self.request_event_armed != Some(event) {
            // Ordering: Relaxed store, ordered before the re-check's load of req_prod by
            // the full fence below.
            self.page
                .store_index(REQUEST_EVENT_OFFSET, event, Ordering::Relaxed);
            // Ordering: full fence (Xen's mb()): our req_event store before our req_prod
            // load, pairing with the fence in the frontend's publish_requests.
            full_fence();
            self.request_event_armed = Some(event);
        }
        // Else an earlier final check already stored this very value and fenced after it,
        // and that fence orders the store before this load too: storing the same value
        // again and fencing again would change nothing for the protocol, but would take
        // the header's cache line from the frontend on every poll of an idle ring. (Only
        // the backend writes req_event; a frontend that overwrites it anyway only loses
        // its own notifications, as it would by overwriting it right after our store.)
        Ok(self.unconsumed_requests()? > 0)
    }
}
