//! `blk-hostile [id=51712]`: a frontend that connects to its vbd through
//! the store handshake like `blk-pattern`, then misbehaves on the ring
//! with `ring-protocol`'s [`HostileFrontend`] (raw slots, raw indices):
//!
//! - requests the backend must answer with an error status: a write with
//!   no segments, one with 12 (the slot holds 11), a segment whose first
//!   sector is after its last, writes reaching past the end of the extent
//!   (across it, wholly beyond it, at a sector number that overflows), a
//!   write naming a grant reference it never granted;
//! - a read pushed and then rewritten, while the backend may be reading
//!   it, back and forth into a write past the end (either version may be
//!   served; a write never may);
//! - a producer index jump (the backend must disconnect this frontend:
//!   Closing), after which it closes, starts again and reads its extent
//!   over a fresh ring (I/O works after the reconnection, and nothing was
//!   written there), then rewinds its producer index (disconnected again).
//!
//! Its data page holds `HOSTILE!` over and over, so a write that got
//! through would show in the disk image. Logs one line per case and
//! `blk-hostile: ok` if every case was answered as it must be.

use alloc::format;
use alloc::string::String;

use guest_runtime::event::{self, Port, PortSet};
use guest_runtime::page::Page;
use guest_runtime::time::system_time_ns;
use guest_runtime::{sched_yield, ShutdownReason, StartInfo};
use log::{error, info, warn};
use ring_protocol::blkif::{
    offsets, Blkif, OPERATION_READ, OPERATION_WRITE, REQUEST_SIZE, RESPONSE_SIZE, STATUS_OKAY,
};
use ring_protocol::layout::HEADER_SIZE;
use ring_protocol::test_utils::{read_page_words, HostileFrontend, Misbehavior};
use ring_protocol::{Protocol, SharedPage};
use xenstore::checked::XenbusState;

use crate::rings::{optional, FIRST_TEST_REF};
use crate::vbd_link::VbdLink;

const WHAT: &str = "blk-hostile";
/// The ring's grant reference.
const RING_REF: u32 = FIRST_TEST_REF as u32;
/// The data page's grant reference (granted read-write to the backend).
const DATA_REF: u32 = RING_REF + 1;
/// A reference in the table that is never granted.
const NEVER_GRANTED_REF: u32 = 300;
/// How long the backend may take to answer one request.
const ANSWER_NS: u64 = 10_000_000_000;
/// How long the rewriting case rewrites before it waits.
const REWRITE_NS: u64 = 20_000_000;
/// What fills the data page.
const FILL: &[u8; 8] = b"HOSTILE!";

/// One raw blkif request slot: `segments` written as given, the count
/// byte as `count` (which may disagree with them).
fn raw_request(
    operation: u8,
    count: u8,
    id: u64,
    sector: u64,
    segments: &[(u32, u8, u8)],
) -> [u8; REQUEST_SIZE] {
    let mut slot = [0u8; REQUEST_SIZE];
    slot[offsets::OPERATION] = operation;
    slot[offsets::NR_SEGMENTS] = count;
    slot[offsets::ID..offsets::ID + 8].copy_from_slice(&id.to_le_bytes());
    slot[offsets::SECTOR_NUMBER..offsets::SECTOR_NUMBER + 8].copy_from_slice(&sector.to_le_bytes());
    for (index, (grant, first, last)) in segments.iter().enumerate().take(11) {
        let at = offsets::SEGMENTS + 8 * index;
        slot[at..at + 4].copy_from_slice(&grant.to_le_bytes());
        slot[at + 4] = *first;
        slot[at + 5] = *last;
    }
    slot
}

/// A request-slot word (4 bytes) of `slot`, for [`Misbehavior::ScribbleSlot`].
fn word(slot: &[u8; REQUEST_SIZE], index: usize) -> u32 {
    u32::from_le_bytes([
        slot[4 * index],
        slot[4 * index + 1],
        slot[4 * index + 2],
        slot[4 * index + 3],
    ])
}

/// How a case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// A response with this id and status.
    Status(u64, i16),
    /// No response; the backend disconnected us (its state).
    Disconnected(XenbusState),
}

/// One connection of the hostile frontend.
struct Hostile<'page> {
    ring: HostileFrontend<'page, Blkif>,
    page: SharedPage<'page>,
    port: Port,
    consumed: u32,
}

impl Hostile<'_> {
    /// Pushes `slot`, kicks the backend and waits for the answer.
    fn ask(&mut self, link: &mut VbdLink, slot: &[u8; REQUEST_SIZE]) -> Result<Answer, String> {
        self.ring.produce_raw(slot);
        let _ = event::send(self.port);
        self.answer(link)
    }

    /// Waits for the next response (or the backend's disconnect).
    fn answer(&mut self, link: &mut VbdLink) -> Result<Answer, String> {
        let deadline = system_time_ns().saturating_add(ANSWER_NS);
        loop {
            if let Some(answer) = self.take_response() {
                return Ok(answer);
            }
            let state = link.await_backend(|_| true)?;
            if state >= XenbusState::Closing {
                return Ok(Answer::Disconnected(state));
            }
            if system_time_ns() >= deadline {
                return Err(String::from("no answer and no disconnect"));
            }
            let _ = link.events.wait_until(&PortSet::of(self.port), deadline);
        }
    }

    /// The next response, if the backend published one.
    fn take_response(&mut self) -> Option<Answer> {
        let producer = self.ring.response_producer();
        if producer == self.consumed {
            // Ask for an event at the next response.
            self.ring
                .apply(Misbehavior::SetEvent(self.consumed.wrapping_add(1)));
            if self.ring.response_producer() == self.consumed {
                return None;
            }
        }
        let slot = HEADER_SIZE
            + (self.consumed % <Blkif as Protocol>::RING_SIZE) as usize
                * <Blkif as Protocol>::SLOT_SIZE;
        let mut bytes = [0u8; RESPONSE_SIZE];
        read_page_words(&self.page, slot, &mut bytes);
        self.consumed = self.consumed.wrapping_add(1);
        let id = u64::from_le_bytes(
            bytes[offsets::RESPONSE_ID..offsets::RESPONSE_ID + 8]
                .try_into()
                .unwrap_or([0; 8]),
        );
        let status = i16::from_le_bytes([
            bytes[offsets::RESPONSE_STATUS],
            bytes[offsets::RESPONSE_STATUS + 1],
        ]);
        Some(Answer::Status(id, status))
    }
}

/// `action=blk-hostile`.
pub fn blk_hostile(info: &StartInfo) -> ShutdownReason {
    let Some(id) = optional(info, "id", 51712, 0, 0xffff_ffff) else {
        return ShutdownReason::Crash;
    };
    match run(info, id as u32) {
        Ok(true) => {
            info!("{WHAT}: ok");
            ShutdownReason::Poweroff
        }
        Ok(false) => {
            error!("{WHAT}: FAILED");
            ShutdownReason::Crash
        }
        Err(problem) => {
            error!("{WHAT}: {problem}");
            ShutdownReason::Crash
        }
    }
}

fn run(info: &StartInfo, id: u32) -> Result<bool, String> {
    let mut link = VbdLink::open(info, id)?;
    let sectors = link.sectors;
    info!(
        "{WHAT}: vbd {id}: backend d{}, disk of {sectors} sectors",
        link.backend
    );
    let mut data = Page::new();
    for offset in (0..4096).step_by(FILL.len()) {
        data.shared().copy_in(offset, FILL);
    }
    let data_pfn = data.pfn().ok_or("data page outside RAM")?;
    link.table
        .grant_access(DATA_REF, link.backend, data_pfn, false)
        .map_err(|problem| format!("granting the data page: {problem}"))?;

    // First connection: requests that must be refused, one at a time.
    let mut ring_page = Page::new();
    ring_page.zero();
    let ring_pfn = ring_page.pfn().ok_or("ring page outside RAM")?;
    let ring = HostileFrontend::<Blkif>::initialize(ring_page.shared());
    let port = link.connect(RING_REF, ring_pfn)?;
    info!("{WHAT}: connected (ring ref {RING_REF}, port {port}); misbehaving");
    let mut hostile = Hostile {
        ring,
        page: ring_page.shared(),
        port,
        consumed: 0,
    };
    let full = (DATA_REF, 0u8, 7u8);
    let cases: [(&str, [u8; REQUEST_SIZE]); 8] = [
        ("nr_segments 0", raw_request(OPERATION_WRITE, 0, 1, 0, &[])),
        (
            "nr_segments 12",
            raw_request(OPERATION_WRITE, 12, 2, 0, &[full; 11]),
        ),
        (
            "first_sect > last_sect",
            raw_request(OPERATION_WRITE, 1, 3, 0, &[(DATA_REF, 5, 2)]),
        ),
        (
            "last_sect 8 (past the page)",
            raw_request(OPERATION_WRITE, 1, 4, 0, &[(DATA_REF, 0, 8)]),
        ),
        (
            "write across the end of the extent",
            raw_request(OPERATION_WRITE, 1, 5, sectors - 4, &[full]),
        ),
        (
            "write wholly past the end",
            raw_request(OPERATION_WRITE, 2, 6, sectors, &[full, full]),
        ),
        (
            "write at a sector number that overflows",
            raw_request(OPERATION_WRITE, 1, 7, u64::MAX - 3, &[full]),
        ),
        (
            "write from a grant ref never granted",
            raw_request(OPERATION_WRITE, 1, 8, 0, &[(NEVER_GRANTED_REF, 0, 7)]),
        ),
    ];
    let mut outcome = true;
    for (name, slot) in &cases {
        let expected_id = u64::from_le_bytes(slot[8..16].try_into().unwrap_or([0; 8]));
        match hostile.ask(&mut link, slot)? {
            Answer::Status(id, status) if status != STATUS_OKAY && id == expected_id => {
                info!("{WHAT}: {name}: answered with status {status}");
            }
            Answer::Disconnected(state) => {
                warn!(
                    "{WHAT}: {name}: the backend disconnected us ({state:?}) instead of answering"
                );
                outcome = false;
            }
            Answer::Status(id, status) => {
                error!("{WHAT}: UNEXPECTED: {name}: answered id {id} with status {status}");
                outcome = false;
            }
        }
    }

    // A read of sector 0, rewritten into a write past the end and back
    // while the backend may be copying it.
    let read = raw_request(OPERATION_READ, 1, 9, 0, &[full]);
    let write = raw_request(OPERATION_WRITE, 1, 9, sectors - 1, &[full]);
    hostile.ring.produce_raw(&read);
    let slot = hostile.ring.request_producer().wrapping_sub(1);
    let _ = event::send(port);
    let (mut rewrites, started) = (0u64, system_time_ns());
    while hostile.ring.response_producer() == hostile.consumed
        && system_time_ns() < started.saturating_add(REWRITE_NS)
    {
        let version = if rewrites % 2 == 0 { &write } else { &read };
        for index in [0usize, 4, 5] {
            hostile.ring.apply(Misbehavior::ScribbleSlot {
                slot,
                word: index as u8,
                value: word(version, index),
            });
        }
        rewrites += 1;
        if rewrites % 64 == 0 {
            let _ = sched_yield();
        }
    }
    // The slot may already hold the response (its id then shows our last
    // rewrite): only the status matters, and either version may be served.
    match hostile.answer(&mut link)? {
        Answer::Status(_, STATUS_OKAY) => {
            info!("{WHAT}: request rewritten {rewrites} times after the push: served as the read it was (status 0)");
        }
        Answer::Status(_, status) => {
            info!("{WHAT}: request rewritten {rewrites} times after the push: answered with status {status}");
        }
        other => {
            error!("{WHAT}: UNEXPECTED: rewritten request: {other:?}");
            outcome = false;
        }
    }

    // The producer index jumps a ring and more ahead: the backend must
    // disconnect us.
    let jumped = hostile.ring.request_producer().wrapping_add(1000);
    hostile.ring.apply(Misbehavior::SetProducer(jumped));
    let _ = event::send(port);
    outcome &= expect_disconnect(&mut link, &mut hostile, "producer index jumped by 1000")?;
    let ring_revoked = link.finish_close(RING_REF, port)?;
    drop(ring_page);

    // Start again: a fresh ring; a read of our extent must work and find
    // nothing written there.
    link.restart()?;
    info!("{WHAT}: the backend is back (InitWait) after ring ref revoked: {ring_revoked}");
    let mut ring_page = Page::new();
    ring_page.zero();
    let ring_pfn = ring_page.pfn().ok_or("ring page outside RAM")?;
    let ring = HostileFrontend::<Blkif>::initialize(ring_page.shared());
    let port = link.connect(RING_REF, ring_pfn)?;
    let mut hostile = Hostile {
        ring,
        page: ring_page.shared(),
        port,
        consumed: 0,
    };
    data.zero();
    match hostile.ask(&mut link, &raw_request(OPERATION_READ, 1, 10, 0, &[full]))? {
        Answer::Status(10, STATUS_OKAY) => {
            let mut bytes = [0u8; 4096];
            data.shared().copy_out(0, &mut bytes);
            let zero = bytes.iter().all(|byte| *byte == 0);
            info!(
                "{WHAT}: reconnected: read 8 sectors of its extent: status 0, {}",
                if zero { "all zero" } else { "NOT ZERO" }
            );
            outcome &= zero;
        }
        other => {
            error!("{WHAT}: UNEXPECTED: read after reconnecting: {other:?}");
            outcome = false;
        }
    }
    // Now the producer index goes back behind what the backend consumed.
    let rewound = hostile.ring.request_producer().wrapping_sub(3);
    hostile.ring.apply(Misbehavior::SetProducer(rewound));
    let _ = event::send(port);
    outcome &= expect_disconnect(&mut link, &mut hostile, "producer index rewound by 3")?;
    let ring_revoked = link.finish_close(RING_REF, port)? && ring_revoked;
    let data_revoked = link.table.end_access(DATA_REF).is_ok();
    info!("{WHAT}: closed: ring revoked {ring_revoked}, data page revoked {data_revoked}");
    Ok(outcome && ring_revoked && data_revoked)
}

/// Waits for the backend to disconnect us after a ring violation.
fn expect_disconnect(
    link: &mut VbdLink,
    hostile: &mut Hostile<'_>,
    name: &str,
) -> Result<bool, String> {
    // Any response still coming is not ours to wait for: only the state.
    let state = link.await_backend(|state| state >= XenbusState::Closing);
    let _ = hostile.take_response();
    match state {
        Ok(state) => {
            info!("{WHAT}: {name}: the backend disconnected us ({state:?})");
            Ok(true)
        }
        Err(problem) => {
            error!("{WHAT}: UNEXPECTED: {name}: still connected: {problem}");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_requests_are_laid_out_as_blkif() {
        let slot = raw_request(OPERATION_WRITE, 12, 0x0102, 7, &[(9, 1, 6)]);
        assert_eq!(slot[0], OPERATION_WRITE);
        assert_eq!(slot[1], 12);
        assert_eq!(&slot[8..16], &0x0102u64.to_le_bytes());
        assert_eq!(&slot[16..24], &7u64.to_le_bytes());
        assert_eq!(&slot[24..28], &9u32.to_le_bytes());
        assert_eq!((slot[28], slot[29]), (1, 6));
        assert_eq!(word(&slot, 4), 7);
        assert_eq!(word(&slot, 0) & 0xffff, 0x0c01);
    }
}
