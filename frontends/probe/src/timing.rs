//! The arithmetic of the time actions (`counter`, `sleep`,
//! `time-monotonic`), apart from the machine so it is tested on the host.

/// Nanoseconds in a millisecond.
pub const NS_PER_MS: u64 = 1_000_000;

/// Says when a periodic report is due: every `interval` nanoseconds from
/// `start`, skipping periods that passed unobserved (a descheduled domain
/// reports once when it runs again, not once per missed period).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticker {
    next: u64,
    interval: u64,
}

impl Ticker {
    /// The first report is due at `start + interval` (`interval` at least 1).
    pub fn new(start: u64, interval: u64) -> Ticker {
        let interval = interval.max(1);
        Ticker { next: start.saturating_add(interval), interval }
    }

    /// Whether a report is due at `now`; if so the next one is due at the
    /// first multiple of `interval` after `now`.
    pub fn due(&mut self, now: u64) -> bool {
        if now < self.next {
            return false;
        }
        let missed = (now - self.next) / self.interval;
        self.next = self.next.saturating_add((missed + 1).saturating_mul(self.interval));
        true
    }
}

/// Checks a sequence of time readings: the first place one is below the
/// one before, as `(index, previous, reading)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonotonicCheck {
    previous: Option<u64>,
    reads: u64,
}

impl MonotonicCheck {
    /// Records a reading; `Err((previous, reading))` if it went back.
    pub fn record(&mut self, reading: u64) -> Result<(), (u64, u64)> {
        self.reads += 1;
        match self.previous.replace(reading) {
            Some(previous) if reading < previous => Err((previous, reading)),
            _ => Ok(()),
        }
    }

    /// Readings recorded so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }
}

/// How long after `deadline` the sleeper woke at `woke` (0 if early, which
/// `sleep_until` never returns).
pub fn lateness(deadline: u64, woke: u64) -> u64 {
    woke.saturating_sub(deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticker_reports_once_per_period_and_skips_missed_ones() {
        let mut ticker = Ticker::new(1_000, 100);
        assert!(!ticker.due(1_099));
        assert!(ticker.due(1_100));
        assert!(!ticker.due(1_150));
        assert!(ticker.due(1_200));
        // Away for 3.5 periods: one report, the next at 1_600.
        assert!(ticker.due(1_550));
        assert!(!ticker.due(1_599));
        assert!(ticker.due(1_600));
        let mut zero = Ticker::new(0, 0);
        assert!(zero.due(1));
        let mut end = Ticker::new(u64::MAX - 1, 10);
        assert!(end.due(u64::MAX));
        assert!(end.due(u64::MAX), "saturated: always due, never panics");
    }

    #[test]
    fn monotonic() {
        let mut check = MonotonicCheck::default();
        assert_eq!(check.record(5), Ok(()));
        assert_eq!(check.record(5), Ok(()), "equal is not going back");
        assert_eq!(check.record(9), Ok(()));
        assert_eq!(check.record(8), Err((9, 8)));
        assert_eq!(check.reads(), 4);
        assert_eq!(lateness(100, 130), 30);
        assert_eq!(lateness(100, 90), 0);
    }
}
