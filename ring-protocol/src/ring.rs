//! The index arithmetic both ends of a ring share: checking a peer's producer index,
//! deciding whether to notify (Xen's `RING_PUSH_*_AND_CHECK_NOTIFY`), and copying one entry
//! into or out of its slot exactly once.

use crate::entry::{MalformedEntry, RingEntry};
use crate::error::RingError;
use crate::layout::{slot_offset, MAX_SLOT_SIZE};
use crate::shared::SharedPage;

/// Whether the peer must be sent an event after publishing entries.
#[must_use = "a required notification that is not sent leaves the peer asleep"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notification {
    /// The peer asked to be woken for one of the entries just published: send the event.
    Required,
    /// The peer is still busy with earlier entries; it will see these without an event.
    Suppressed,
}

impl Notification {
    /// Whether an event must be sent.
    pub const fn is_required(self) -> bool {
        matches!(self, Self::Required)
    }

    /// Xen's rule: notify iff the peer's event index lies in `(old, new]`, that is iff
    /// `new - event < new - old` in wrapping 32-bit arithmetic.
    #[inline]
    pub(crate) const fn decide(old: u32, new: u32, event: u32) -> Self {
        if new.wrapping_sub(event) < new.wrapping_sub(old) {
            Self::Required
        } else {
            Self::Suppressed
        }
    }
}

/// Checks a producer index `producer` read from the peer. `consumer` is our consumer index,
/// `last_seen` the producer index we saw before (never behind `consumer`), and `limit` the
/// most entries the peer may have produced past `consumer`. Returns how many entries are
/// ready to consume.
#[inline]
pub(crate) fn check_producer(
    producer: u32,
    consumer: u32,
    last_seen: u32,
    limit: u32,
) -> Result<u32, RingError> {
    let available = producer.wrapping_sub(consumer);
    let seen = last_seen.wrapping_sub(consumer);
    if available > limit {
        Err(RingError::PeerOverflow {
            producer,
            consumer,
            limit,
        })
    } else if available < seen {
        Err(RingError::PeerRewound {
            producer,
            previous: last_seen,
        })
    } else {
        Ok(available)
    }
}

/// Copies the slot of free-running `index` out of the page once, into a private buffer,
/// and decodes that copy. The peer may rewrite the slot meanwhile; it cannot change what
/// we decoded. `wide` (from [`wide_slots`](crate::entry::wide_slots)) selects 64-bit
/// rather than 32-bit slot words.
#[inline]
pub(crate) fn read_entry<E: RingEntry>(
    page: &SharedPage<'_>,
    index: u32,
    ring_size: u32,
    slot_size: usize,
    wide: bool,
) -> Result<E, MalformedEntry> {
    let mut copy = [0u8; MAX_SLOT_SIZE];
    let copy = &mut copy[..E::SIZE];
    copy_slot(page, slot_offset(index, ring_size, slot_size), wide, copy);
    E::decode(copy)
}

/// As [`read_entry`], decoding the copy into `entry` ([`RingEntry::decode_into`]): the
/// slot is copied out of the page once, and `entry` is written only from that copy.
#[inline]
pub(crate) fn read_entry_into<E: RingEntry>(
    page: &SharedPage<'_>,
    index: u32,
    ring_size: u32,
    slot_size: usize,
    wide: bool,
    entry: &mut E,
) -> Result<(), MalformedEntry> {
    let mut copy = [0u8; MAX_SLOT_SIZE];
    let copy = &mut copy[..E::SIZE];
    copy_slot(page, slot_offset(index, ring_size, slot_size), wide, copy);
    entry.decode_into(copy)
}

/// Copies the slot at `offset` into `copy`, in 64-bit words if `wide`, else 32-bit.
#[inline]
fn copy_slot(page: &SharedPage<'_>, offset: usize, wide: bool, copy: &mut [u8]) {
    if wide {
        page.read_double_words(offset, copy);
    } else {
        page.read_words(offset, copy);
    }
}

/// Encodes `entry` into a zeroed private buffer (so padding is zero, XSA-216) and copies
/// it into the slot of free-running `index`, in 64-bit words if `wide`, else 32-bit.
#[inline]
pub(crate) fn write_entry<E: RingEntry>(
    page: &SharedPage<'_>,
    index: u32,
    ring_size: u32,
    slot_size: usize,
    wide: bool,
    entry: &E,
) {
    let mut encoded = [0u8; MAX_SLOT_SIZE];
    let encoded = &mut encoded[..E::SIZE];
    entry.encode(encoded);
    let offset = slot_offset(index, ring_size, slot_size);
    if wide {
        page.write_double_words(offset, encoded);
    } else {
        page.write_words(offset, encoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_when_event_in_published_range() {
        // Peer waits for entry 1; we publish 0 -> 1.
        assert_eq!(Notification::decide(0, 1, 1), Notification::Required);
        // Peer waits for entry 3; we publish 0 -> 2: it is still busy.
        assert_eq!(Notification::decide(0, 2, 3), Notification::Suppressed);
        // Event exactly at the new producer: notify.
        assert_eq!(Notification::decide(0, 3, 3), Notification::Required);
        // Event at old (already passed earlier): no notify.
        assert_eq!(Notification::decide(5, 7, 5), Notification::Suppressed);
        // Nothing published.
        assert_eq!(Notification::decide(7, 7, 7), Notification::Suppressed);
        assert_eq!(Notification::decide(7, 7, 8), Notification::Suppressed);
    }

    #[test]
    fn notify_across_the_wrap() {
        let old = u32::MAX - 1;
        let new = 2u32; // published 4 entries across 2^32
        assert_eq!(
            Notification::decide(old, new, u32::MAX),
            Notification::Required
        );
        assert_eq!(Notification::decide(old, new, 0), Notification::Required);
        assert_eq!(Notification::decide(old, new, 2), Notification::Required);
        assert_eq!(Notification::decide(old, new, 3), Notification::Suppressed);
        assert_eq!(
            Notification::decide(old, new, old),
            Notification::Suppressed
        );
    }

    #[test]
    fn producer_checks() {
        assert_eq!(check_producer(5, 5, 5, 32), Ok(0));
        assert_eq!(check_producer(37, 5, 5, 32), Ok(32));
        assert!(matches!(
            check_producer(38, 5, 5, 32),
            Err(RingError::PeerOverflow { limit: 32, .. })
        ));
        // Behind the consumer: looks like a huge count.
        assert!(matches!(
            check_producer(4, 5, 5, 32),
            Err(RingError::PeerOverflow { .. })
        ));
        // Behind what was seen, still ahead of the consumer.
        assert_eq!(
            check_producer(7, 5, 9, 32),
            Err(RingError::PeerRewound {
                producer: 7,
                previous: 9
            })
        );
        // Across the wrap.
        assert_eq!(check_producer(3, u32::MAX - 2, u32::MAX, 32), Ok(6));
    }
}
