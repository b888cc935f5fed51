//! Errors of ring operations, each saying who is to blame.

use crate::entry::MalformedEntry;
use core::fmt;

/// Who caused an error: the peer on the other side of the ring, or the caller on ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// The other side broke the protocol; the caller should disconnect from it.
    Peer,
    /// This side used the ring wrongly (for example pushed into a full ring).
    Caller,
}

/// An error from a ring operation.
///
/// Errors blamed on the peer poison the ring: once one is seen, every later call on that
/// ring returns it again and the ring touches the shared page no more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// The peer's producer index claims more unconsumed entries than the ring can hold
    /// (or than were asked for, for responses).
    PeerOverflow {
        /// The producer index the peer wrote.
        producer: u32,
        /// Our consumer index when we read it.
        consumer: u32,
        /// The most entries the peer could legitimately have produced beyond `consumer`.
        limit: u32,
    },
    /// The peer moved its producer index backwards, behind entries it had already
    /// published.
    PeerRewound {
        /// The producer index the peer wrote.
        producer: u32,
        /// The producer index we had seen before.
        previous: u32,
    },
    /// The peer moved the consumer index of a byte ring outside the range it may take
    /// (behind its previous value, or past what we produced).
    PeerConsumerOutOfRange {
        /// The consumer index the peer wrote.
        consumer: u32,
        /// The consumer index we had seen before.
        previous: u32,
        /// Our producer index.
        producer: u32,
    },
    /// The peer wrote an entry that does not decode. The slot has been consumed and the
    /// ring stays usable: a backend answers the request with an error response. This does
    /// not poison the ring.
    Malformed(MalformedEntry),
    /// The ring is full: the caller must wait for the peer to consume.
    Full,
    /// A backend tried to respond with no consumed request left to answer.
    NoRequestToAnswer,
}

impl RingError {
    /// Who caused this error.
    pub const fn blame(&self) -> Blame {
        match self {
            Self::PeerOverflow { .. }
            | Self::PeerRewound { .. }
            | Self::PeerConsumerOutOfRange { .. }
            | Self::Malformed(_) => Blame::Peer,
            Self::Full | Self::NoRequestToAnswer => Blame::Caller,
        }
    }

    /// Whether this error poisons the ring: the peer broke the index protocol, and the
    /// caller should disconnect from it.
    pub const fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::PeerOverflow { .. }
                | Self::PeerRewound { .. }
                | Self::PeerConsumerOutOfRange { .. }
        )
    }
}

impl fmt::Display for RingError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerOverflow {
                producer,
                consumer,
                limit,
            } => write!(
                formatter,
                "peer producer index {producer} is {} past consumer {consumer}, limit {limit}",
                producer.wrapping_sub(*consumer)
            ),
            Self::PeerRewound { producer, previous } => write!(
                formatter,
                "peer producer index went back from {previous} to {producer}"
            ),
            Self::PeerConsumerOutOfRange {
                consumer,
                previous,
                producer,
            } => write!(
                formatter,
                "peer consumer index {consumer} outside {previous}..={producer}"
            ),
            Self::Malformed(entry) => write!(formatter, "{entry}"),
            Self::Full => write!(formatter, "ring full"),
            Self::NoRequestToAnswer => write!(formatter, "no consumed request left to answer"),
        }
    }
}

impl core::error::Error for RingError {}
