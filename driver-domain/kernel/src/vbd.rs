//! One virtual block device's backend half of the XenbusState handshake,
//! as pure decisions (host-tested): what the toolstack's `params` and
//! `mode` nodes say the disk is, and what to do next given our state, the
//! frontend's and whether our ring is still served. Level-triggered: the
//! server re-reads both states after every watch event and asks again.

use blkback::{DiskMode, VirtualDisk};
use xenstore::checked::XenbusState;

/// `info` bit of a read-only disk (Xen's `VDISK_READONLY`).
pub const VDISK_READONLY: u32 = 4;

/// Parses the toolstack's `params` (`START+SECTORS`) and `mode` (`r`, `w`).
///
/// # Errors
///
/// What is wrong with them.
pub fn parse_params(params: &[u8], mode: &[u8]) -> Result<VirtualDisk, &'static str> {
    let text = core::str::from_utf8(params).map_err(|_| "params is not text")?;
    let (start, count) = text.split_once('+').ok_or("params is not START+SECTORS")?;
    let decimal = |word: &str| {
        if word.is_empty() || word.len() > 19 || !word.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        word.parse::<u64>().ok()
    };
    let (Some(start), Some(count)) = (decimal(start), decimal(count)) else {
        return Err("params is not START+SECTORS in decimal");
    };
    let mode = match mode {
        b"r" => DiskMode::ReadOnly,
        b"w" => DiskMode::ReadWrite,
        _ => return Err("mode is neither r nor w"),
    };
    VirtualDisk::new(start, count, mode).map_err(|_| "params names an empty or overflowing extent")
}

/// What to do next for one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read `params`/`mode`, publish `sectors`, `sector-size`, `info`,
    /// `feature-flush-cache`, then say InitWait.
    Publish,
    /// Read the frontend's `ring-ref` and `event-channel`, map and bind,
    /// serve the ring, say Connected.
    Connect,
    /// Stop serving the ring, unmap it, close the port, then say this.
    Disconnect(XenbusState),
    /// Only say this.
    Say(XenbusState),
    /// Nothing until the next change.
    Wait,
}

/// The next step from our state `own`, the frontend's `front`
/// (`Unknown` when its node is gone), and whether we hold a ring
/// (`attached`) that the backend still serves (`served`; false once the
/// frontend broke it).
pub fn next_step(own: XenbusState, front: XenbusState, attached: bool, served: bool) -> Step {
    use XenbusState as S;
    let closed_or_gone = matches!(front, S::Closed | S::Unknown);
    if attached
        && (own != S::Connected || !served || !matches!(front, S::Initialised | S::Connected))
    {
        return Step::Disconnect(if closed_or_gone {
            S::Closed
        } else {
            S::Closing
        });
    }
    match own {
        S::Initialising if front != S::Unknown => Step::Publish,
        S::InitWait => match front {
            S::Initialised | S::Connected => Step::Connect,
            S::Closing => Step::Say(S::Closing),
            S::Unknown => Step::Say(S::Closed),
            _ => Step::Wait,
        },
        // Connected without a ring: cannot be; start over by closing.
        S::Connected if !attached => Step::Say(if closed_or_gone {
            S::Closed
        } else {
            S::Closing
        }),
        S::Closing if closed_or_gone || front == S::Initialising => Step::Say(S::Closed),
        // The frontend starts again after a close: so do we.
        S::Closed if matches!(front, S::Initialising | S::InitWait) => Step::Publish,
        _ => Step::Wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use XenbusState as S;

    #[test]
    fn params_and_mode_parse_strictly() {
        let disk = parse_params(b"2048+4096", b"w").unwrap();
        assert_eq!(
            (
                disk.first_sector(),
                disk.sector_count(),
                disk.is_read_only()
            ),
            (2048, 4096, false)
        );
        assert!(parse_params(b"0+8", b"r").unwrap().is_read_only());
        for (params, mode) in [
            (&b"2048"[..], &b"w"[..]),
            (b"+8", b"w"),
            (b"1+0", b"w"),
            (b"-1+8", b"w"),
            (b"1+8", b"rw"),
            (b"1+8", b""),
            (b"18446744073709551615+1", b"r"),
            (b"1+ 8", b"r"),
        ] {
            assert!(parse_params(params, mode).is_err(), "{params:?} {mode:?}");
        }
    }

    #[test]
    fn a_connection_runs_its_course_and_starts_again() {
        // Fresh: publish, then wait for the frontend's ring.
        assert_eq!(
            next_step(S::Initialising, S::Initialising, false, false),
            Step::Publish
        );
        assert_eq!(
            next_step(S::InitWait, S::Initialising, false, false),
            Step::Wait
        );
        assert_eq!(
            next_step(S::InitWait, S::Initialised, false, false),
            Step::Connect
        );
        // Connected and served: nothing to do while the frontend is up.
        assert_eq!(
            next_step(S::Connected, S::Initialised, true, true),
            Step::Wait
        );
        assert_eq!(
            next_step(S::Connected, S::Connected, true, true),
            Step::Wait
        );
        // The frontend closes: tear down, Closing; then Closed after it.
        assert_eq!(
            next_step(S::Connected, S::Closing, true, true),
            Step::Disconnect(S::Closing)
        );
        assert_eq!(next_step(S::Closing, S::Closing, false, false), Step::Wait);
        assert_eq!(
            next_step(S::Closing, S::Closed, false, false),
            Step::Say(S::Closed)
        );
        // It comes back: so do we.
        assert_eq!(next_step(S::Closed, S::Closed, false, false), Step::Wait);
        assert_eq!(
            next_step(S::Closed, S::Initialising, false, false),
            Step::Publish
        );
    }

    #[test]
    fn a_broken_ring_or_a_vanished_frontend_ends_the_connection() {
        assert_eq!(
            next_step(S::Connected, S::Connected, true, false),
            Step::Disconnect(S::Closing)
        );
        assert_eq!(
            next_step(S::Connected, S::Unknown, true, true),
            Step::Disconnect(S::Closed)
        );
        assert_eq!(
            next_step(S::Connected, S::Closed, true, true),
            Step::Disconnect(S::Closed)
        );
        assert_eq!(
            next_step(S::Connected, S::Initialising, true, true),
            Step::Disconnect(S::Closing)
        );
        assert_eq!(
            next_step(S::InitWait, S::Unknown, false, false),
            Step::Say(S::Closed)
        );
        assert_eq!(
            next_step(S::Initialising, S::Unknown, false, false),
            Step::Wait
        );
        assert_eq!(
            next_step(S::Connected, S::Connected, false, false),
            Step::Say(S::Closing)
        );
    }
}
