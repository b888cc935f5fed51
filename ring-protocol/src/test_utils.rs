//! Misbehaving peers for tests (feature `test-utils`): a [`HostileFrontend`] to test
//! backends against and a [`HostileBackend`] to test frontends against, scriptable from
//! raw bytes ([`Misbehavior::script`]) so proptest and fuzzers can drive them, plus the
//! entry point of this crate's backend fuzz target ([`fuzz_backend_consume_page`]).
//!
//! A hostile peer writes the page only through [`SharedPage`], like the ring ends, so the
//! tests that use it stay free of data races even when the peer runs on another thread.

#[cfg(not(loom))]
use crate::backend::Backend;
use crate::entry::{Protocol, RingEntry};
use crate::error::RingError;
use crate::layout::{
    slot_offset, HEADER_SIZE, MAX_SLOT_SIZE, REQUEST_EVENT_OFFSET, REQUEST_PRODUCER_OFFSET,
    RESPONSE_EVENT_OFFSET, RESPONSE_PRODUCER_OFFSET,
};
use crate::shared::SharedPage;
use core::marker::PhantomData;
use core::sync::atomic::Ordering;

/// One misbehavior of a peer. "Own" indices are those the peer legitimately writes
/// (a frontend's `req_prod` and `rsp_event`); "victim" indices are those only the side
/// under test may write, which the hostile peer overwrites anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehavior {
    /// Produce one well-formed entry (encoded from the given seed) and publish it.
    ProduceValid {
        /// Varies the entry's fields.
        seed: u32,
    },
    /// Write these 4 bytes at word `word` of the next slot, then publish it as an entry.
    ProduceGarbage {
        /// Word of the slot to overwrite (taken modulo the slot's words).
        word: u8,
        /// The value.
        value: u32,
    },
    /// Set our own producer index to an arbitrary value.
    SetProducer(u32),
    /// Move our own producer index by a signed amount.
    MoveProducer(i8),
    /// Set our own event index.
    SetEvent(u32),
    /// Overwrite the victim's producer index.
    SetVictimProducer(u32),
    /// Overwrite the victim's event index.
    SetVictimEvent(u32),
    /// Overwrite one word of any slot (possibly one the victim is reading).
    ScribbleSlot {
        /// Slot index (masked by the ring size).
        slot: u32,
        /// Word within the slot.
        word: u8,
        /// The value.
        value: u32,
    },
}

impl Misbehavior {
    /// Decodes one misbehavior from the front of `bytes`, returning it and the rest, or
    /// `None` when `bytes` is too short.
    pub fn decode(bytes: &[u8]) -> Option<(Self, &[u8])> {
        let (&kind, rest) = bytes.split_first()?;
        let word = |rest: &[u8]| -> Option<u32> {
            let field: [u8; 4] = rest.get(..4)?.try_into().ok()?;
            Some(u32::from_le_bytes(field))
        };
        let (action, used) = match kind % 8 {
            0 => (Self::ProduceValid { seed: word(rest)? }, 4),
            1 => (
                Self::ProduceGarbage {
                    word: *rest.first()?,
                    value: word(rest.get(1..)?)?,
                },
                5,
            ),
            2 => (Self::SetProducer(word(rest)?), 4),
            3 => (Self::MoveProducer(*rest.first()? as i8), 1),
            4 => (Self::SetEvent(word(rest)?), 4),
            5 => (Self::SetVictimProducer(word(rest)?), 4),
            6 => (Self::SetVictimEvent(word(rest)?), 4),
            _ => (
                Self::ScribbleSlot {
                    slot: u32::from(*rest.first()?),
                    word: *rest.get(1)?,
                    value: word(rest.get(2..)?)?,
                },
                6,
            ),
        };
        Some((action, &rest[used..]))
    }

    /// The misbehaviors encoded in `bytes`, in order.
    pub fn script(bytes: &[u8]) -> impl Iterator<Item = Misbehavior> + '_ {
        let mut rest = bytes;
        core::iter::from_fn(move || {
            let (action, remaining) = Self::decode(rest)?;
            rest = remaining;
            Some(action)
        })
    }
}

/// Makes well-formed entries from a seed, so hostile peers can also behave.
pub trait SampleEntry: Sized {
    /// A valid entry derived from `seed`.
    fn sample(seed: u32) -> Self;
}

/// Offsets of the indices one side owns.
#[derive(Clone, Copy)]
struct IndexRoles {
    own_producer: usize,
    own_event: usize,
    victim_producer: usize,
    victim_event: usize,
}

/// The machinery both hostile peers share: raw index and slot writes.
struct HostilePeer<'page> {
    page: SharedPage<'page>,
    roles: IndexRoles,
    ring_size: u32,
    slot_size: usize,
    /// Whether the protocol's slots are 64-bit words: the peer then writes them with
    /// 64-bit atomics too, like a real end, so a racing test mixes no access widths.
    wide: bool,
    producer: u32,
}

impl HostilePeer<'_> {
    fn publish(&self) {
        self.page
            .store_index(self.roles.own_producer, self.producer, Ordering::Release);
    }

    fn write_slot(&self, index: u32, bytes: &[u8]) {
        let offset = slot_offset(index, self.ring_size, self.slot_size);
        if self.wide {
            self.page.write_double_words(offset, bytes);
        } else {
            self.page.write_words(offset, bytes);
        }
    }

    fn scribble(&self, slot: u32, word: u8, value: u32) {
        let words = (self.slot_size / 4) as u32;
        let offset = slot_offset(slot, self.ring_size, self.slot_size)
            + 4 * (u32::from(word) % words) as usize;
        if self.wide {
            // Rewrite the 32-bit half of its 64-bit slot word, keeping the other half.
            let aligned = offset & !7;
            let mut double_word = [0u8; 8];
            self.page.read_double_words(aligned, &mut double_word);
            let half = offset - aligned;
            double_word[half..half + 4].copy_from_slice(&value.to_le_bytes());
            self.page.write_double_words(aligned, &double_word);
        } else {
            self.page.write_words(offset, &value.to_le_bytes());
        }
    }

    fn produce_encoded<E: RingEntry>(&mut self, entry: &E) {
        let mut encoded = [0u8; MAX_SLOT_SIZE];
        entry.encode(&mut encoded[..E::SIZE]);
        self.write_slot(self.producer, &encoded[..E::SIZE]);
        self.producer = self.producer.wrapping_add(1);
        self.publish();
    }

    fn apply<E: RingEntry + SampleEntry>(&mut self, action: Misbehavior) {
        match action {
            Misbehavior::ProduceValid { seed } => self.produce_encoded(&E::sample(seed)),
            Misbehavior::ProduceGarbage { word, value } => {
                self.scribble(self.producer, word, value);
                self.producer = self.producer.wrapping_add(1);
                self.publish();
            }
            Misbehavior::SetProducer(value) => {
                self.producer = value;
                self.publish();
            }
            Misbehavior::MoveProducer(delta) => {
                self.producer = self.producer.wrapping_add_signed(i32::from(delta));
                self.publish();
            }
            Misbehavior::SetEvent(value) => {
                self.page
                    .store_index(self.roles.own_event, value, Ordering::Release);
            }
            Misbehavior::SetVictimProducer(value) => {
                self.page
                    .store_index(self.roles.victim_producer, value, Ordering::Release);
            }
            Misbehavior::SetVictimEvent(value) => {
                self.page
                    .store_index(self.roles.victim_event, value, Ordering::Release);
            }
            Misbehavior::ScribbleSlot { slot, word, value } => self.scribble(slot, word, value),
        }
    }
}

/// A frontend that does whatever it is told: produce valid or garbage requests, move
/// `req_prod` anywhere, overwrite the backend's indices and slots. Test backends with it.
pub struct HostileFrontend<'page, P: Protocol> {
    peer: HostilePeer<'page>,
    protocol: PhantomData<fn() -> P>,
}

impl<'page, P: Protocol> HostileFrontend<'page, P>
where
    P::Request: SampleEntry,
{
    /// Initializes the page's header as a fresh ring from index 0 (like
    /// [`crate::Frontend::initialize`]) and takes the frontend role.
    pub fn initialize(page: SharedPage<'page>) -> Self {
        for offset in (0..HEADER_SIZE).step_by(4) {
            page.store_index(offset, 0, Ordering::Release);
        }
        page.store_index(REQUEST_EVENT_OFFSET, 1, Ordering::Release);
        page.store_index(RESPONSE_EVENT_OFFSET, 1, Ordering::Release);
        Self::attach(page)
    }

    /// Takes the frontend role on a page as it is, producing from the `req_prod` found.
    pub fn attach(page: SharedPage<'page>) -> Self {
        let producer = page.load_index(REQUEST_PRODUCER_OFFSET, Ordering::Acquire);
        Self {
            peer: HostilePeer {
                page,
                roles: IndexRoles {
                    own_producer: REQUEST_PRODUCER_OFFSET,
                    own_event: RESPONSE_EVENT_OFFSET,
                    victim_producer: RESPONSE_PRODUCER_OFFSET,
                    victim_event: REQUEST_EVENT_OFFSET,
                },
                ring_size: P::RING_SIZE,
                slot_size: P::SLOT_SIZE,
                wide: crate::entry::wide_slots::<P>(),
                producer,
            },
            protocol: PhantomData,
        }
    }

    /// The `req_prod` this peer last wrote.
    pub fn request_producer(&self) -> u32 {
        self.peer.producer
    }

    /// Writes `request` into the next slot and publishes it, without checking for space.
    pub fn produce(&mut self, request: &P::Request) {
        self.peer.produce_encoded(request);
    }

    /// Writes raw bytes (at most one slot) into the next slot and publishes it.
    pub fn produce_raw(&mut self, bytes: &[u8]) {
        let length = bytes.len().min(P::SLOT_SIZE) & !3;
        self.peer.write_slot(self.peer.producer, &bytes[..length]);
        self.peer.producer = self.peer.producer.wrapping_add(1);
        self.peer.publish();
    }

    /// Reads the backend's `rsp_prod`.
    pub fn response_producer(&self) -> u32 {
        self.peer
            .page
            .load_index(RESPONSE_PRODUCER_OFFSET, Ordering::Acquire)
    }

    /// Carries out one misbehavior.
    pub fn apply(&mut self, action: Misbehavior) {
        self.peer.apply::<P::Request>(action);
    }
}

/// A backend that does whatever it is told: produce valid or garbage responses, move
/// `rsp_prod` anywhere, overwrite the frontend's indices and slots. Test frontends with it.
pub struct HostileBackend<'page, P: Protocol> {
    peer: HostilePeer<'page>,
    protocol: PhantomData<fn() -> P>,
}

impl<'page, P: Protocol> HostileBackend<'page, P>
where
    P::Response: SampleEntry,
{
    /// Takes the backend role on a page, producing from the `rsp_prod` found.
    pub fn attach(page: SharedPage<'page>) -> Self {
        let producer = page.load_index(RESPONSE_PRODUCER_OFFSET, Ordering::Acquire);
        Self {
            peer: HostilePeer {
                page,
                roles: IndexRoles {
                    own_producer: RESPONSE_PRODUCER_OFFSET,
                    own_event: REQUEST_EVENT_OFFSET,
                    victim_producer: REQUEST_PRODUCER_OFFSET,
                    victim_event: RESPONSE_EVENT_OFFSET,
                },
                ring_size: P::RING_SIZE,
                slot_size: P::SLOT_SIZE,
                wide: crate::entry::wide_slots::<P>(),
                producer,
            },
            protocol: PhantomData,
        }
    }

    /// The `rsp_prod` this peer last wrote.
    pub fn response_producer(&self) -> u32 {
        self.peer.producer
    }

    /// Reads the frontend's `req_prod`.
    pub fn request_producer(&self) -> u32 {
        self.peer
            .page
            .load_index(REQUEST_PRODUCER_OFFSET, Ordering::Acquire)
    }

    /// Writes `response` into the next slot and publishes it, whether or not a request
    /// is outstanding.
    pub fn produce(&mut self, response: &P::Response) {
        self.peer.produce_encoded(response);
    }

    /// Carries out one misbehavior.
    pub fn apply(&mut self, action: Misbehavior) {
        self.peer.apply::<P::Response>(action);
    }
}

mod samples {
    //! [`SampleEntry`] for every protocol entry of this crate.

    use super::SampleEntry;
    use crate::blkif::{BlkifRequest, BlkifResponse, Segment, TransferRequest};
    use crate::netif::{RxRequest, RxResponse, TxRequest, TxResponse};

    impl SampleEntry for BlkifRequest {
        fn sample(seed: u32) -> Self {
            let mut request = TransferRequest {
                handle: seed as u16,
                id: u64::from(seed),
                sector_number: u64::from(seed) * 8,
                segment_count: (seed % 11) as u8 + 1,
                ..TransferRequest::default()
            };
            for (index, segment) in request
                .segments
                .iter_mut()
                .enumerate()
                .take(usize::from(request.segment_count))
            {
                *segment = Segment {
                    grant: seed.wrapping_add(index as u32),
                    first_sector: 0,
                    last_sector: (seed % 8) as u8,
                };
            }
            if seed % 2 == 0 {
                Self::Read(request)
            } else {
                Self::Write(request)
            }
        }
    }

    impl SampleEntry for BlkifResponse {
        fn sample(seed: u32) -> Self {
            Self {
                id: u64::from(seed),
                operation: (seed % 2) as u8,
                status: 0,
            }
        }
    }

    impl SampleEntry for TxRequest {
        fn sample(seed: u32) -> Self {
            Self {
                grant: seed,
                offset: (seed % 2048) as u16,
                flags: 0,
                id: seed as u16,
                size: (seed % 1500) as u16,
            }
        }
    }

    impl SampleEntry for TxResponse {
        fn sample(seed: u32) -> Self {
            Self {
                id: seed as u16,
                status: 0,
            }
        }
    }

    impl SampleEntry for RxRequest {
        fn sample(seed: u32) -> Self {
            Self {
                id: seed as u16,
                grant: seed,
            }
        }
    }

    impl SampleEntry for RxResponse {
        fn sample(seed: u32) -> Self {
            Self {
                id: seed as u16,
                offset: 0,
                flags: 0,
                status: (seed % 1500) as i16,
            }
        }
    }
}

/// What one fuzz or property run saw, for assertions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendRunReport {
    /// Requests decoded.
    pub valid_requests: u32,
    /// Requests that did not decode (and were answered with an error).
    pub malformed_requests: u32,
    /// Responses pushed.
    pub responses: u32,
    /// The fault that poisoned the ring, if any.
    pub fault: Option<RingError>,
}

/// Runs a real [`Backend`] against a hostile frontend: `data` gives the initial contents
/// of the ring page (its first 4096 bytes, zero-padded) and, after that, a
/// [`Misbehavior::script`] interleaved with backend steps. Panics if the backend breaks
/// one of its guarantees: a panic here is a bug in the crate.
///
/// This is the entry point of the cargo-fuzz target `backend_page`; this crate's tests
/// call it too.
#[cfg(not(loom))]
pub fn fuzz_backend_consume_page<P: Protocol>(data: &[u8]) -> BackendRunReport
where
    P::Request: SampleEntry,
    P::Response: SampleEntry,
{
    use crate::layout::PAGE_SIZE;
    use crate::shared::PageBuffer;

    let buffer = PageBuffer::new();
    let page = SharedPage::new(&buffer);
    let (contents, script) = data.split_at(data.len().min(PAGE_SIZE));
    let mut padded = [0u8; PAGE_SIZE];
    padded[..contents.len()].copy_from_slice(contents);
    page.write_words(0, &padded);

    // Attach where the page says responses stand, as a reconnecting backend might.
    let attach_at = page.load_index(RESPONSE_PRODUCER_OFFSET, Ordering::Relaxed);
    let mut backend = Backend::<P>::attach_at(page.clone(), attach_at);
    let mut frontend = HostileFrontend::<P>::attach(page);
    let mut report = BackendRunReport::default();

    let mut actions = Misbehavior::script(script);
    // Bounded: each round does at most one ring's worth of work, and rounds are bounded
    // by the script length plus a drain, so a hostile page can never stall the backend.
    for _round in 0..(script.len() + 2) {
        let step = drain_round(&mut backend, &mut report);
        if let Err(error) = step {
            if error.is_fatal() {
                assert_eq!(backend.fault(), Some(error), "fatal error must poison");
                // Poisoned: every call returns the same error from now on.
                assert_eq!(backend.next_request().err(), Some(error));
                assert_eq!(backend.final_check_for_requests().err(), Some(error));
                assert_eq!(backend.publish_responses().err(), Some(error));
                report.fault = Some(error);
                return report;
            }
        }
        match actions.next() {
            Some(action) => frontend.apply(action),
            None => {
                if !backend.final_check_for_requests().unwrap_or(false) {
                    break;
                }
            }
        }
    }
    report
}

#[cfg(not(loom))]
/// One backend round: consume every ready request (at most one ring's worth), answer each,
/// publish. Malformed requests are answered too; fatal errors stop the round.
fn drain_round<P: Protocol>(
    backend: &mut Backend<'_, P>,
    report: &mut BackendRunReport,
) -> Result<(), RingError>
where
    P::Response: SampleEntry,
{
    for _ in 0..P::RING_SIZE {
        match backend.next_request() {
            Ok(Some(_request)) => report.valid_requests += 1,
            Ok(None) => break,
            Err(RingError::Malformed(_)) => report.malformed_requests += 1,
            Err(error) => return Err(error),
        }
        assert!(backend.requests_awaiting_response() <= P::RING_SIZE);
        backend.push_response(&P::Response::sample(report.responses))?;
        report.responses += 1;
    }
    assert_eq!(backend.requests_awaiting_response(), 0);
    let _notification = backend.publish_responses()?;
    Ok(())
}

/// Copies bytes out of a ring page with 32-bit reads (`offset` and the length 4-aligned),
/// so tests can inspect exactly what a ring end wrote.
///
/// The ring ends copy blkif and netif rx slots with 64-bit atomics: use this on such slots
/// only while no ring end runs on another thread (mixed-size racing atomics are undefined).
pub fn read_page_words(page: &SharedPage<'_>, offset: usize, destination: &mut [u8]) {
    page.read_words(offset, destination);
}

/// Writes bytes into a ring page with 32-bit writes (`offset` and length 4-aligned), so
/// tests can set up arbitrary page contents.
///
/// As for [`read_page_words`]: not on 64-bit slots while a ring end runs on another thread.
pub fn write_page_words(page: &SharedPage<'_>, offset: usize, source: &[u8]) {
    page.write_words(offset, source);
}

/// Reads the four shared ring indices: `[req_prod, req_event, rsp_prod, rsp_event]`.
pub fn read_ring_indices(page: &SharedPage<'_>) -> [u32; 4] {
    [
        REQUEST_PRODUCER_OFFSET,
        REQUEST_EVENT_OFFSET,
        RESPONSE_PRODUCER_OFFSET,
        RESPONSE_EVENT_OFFSET,
    ]
    .map(|offset| page.load_index(offset, Ordering::Acquire))
}
