//! The AVC log's rate limiter: at most so many lines per window, so a
//! domain that floods denials cannot drown the log; what it holds back is
//! counted and reported in one summary line when the next window opens.

use core::fmt;

/// How many AVC lines may be logged per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Lines per window (0: log nothing, only count).
    pub lines_per_window: u32,
    /// The window, in nanoseconds.
    pub window_ns: u64,
}

impl Default for RateLimit {
    /// Ten lines a second.
    fn default() -> Self {
        RateLimit {
            lines_per_window: 10,
            window_ns: 1_000_000_000,
        }
    }
}

/// The limiter's state.
#[derive(Clone, Debug)]
pub(super) struct RateLimiter {
    limit: RateLimit,
    window_start_ns: u64,
    lines_in_window: u32,
    suppressed_in_window: u64,
    suppressed_total: u64,
}

impl RateLimiter {
    pub(super) fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            window_start_ns: 0,
            lines_in_window: 0,
            suppressed_in_window: 0,
            suppressed_total: 0,
        }
    }

    pub(super) fn limit(&self) -> RateLimit {
        self.limit
    }

    pub(super) fn set_limit(&mut self, limit: RateLimit) {
        self.limit = limit;
    }

    pub(super) fn suppressed_total(&self) -> u64 {
        self.suppressed_total
    }

    /// Opens a new window if the current one is over (or time went
    /// backwards), first logging how many lines the old one held back.
    pub(super) fn roll(&mut self, now_ns: u64, log: &mut dyn FnMut(fmt::Arguments<'_>)) {
        let elapsed_ns = now_ns.checked_sub(self.window_start_ns);
        if elapsed_ns.is_some_and(|elapsed_ns| elapsed_ns < self.limit.window_ns) {
            return;
        }
        if self.suppressed_in_window > 0 {
            log(format_args!(
                "avc:  {} denials suppressed",
                self.suppressed_in_window
            ));
        }
        self.window_start_ns = now_ns;
        self.lines_in_window = 0;
        self.suppressed_in_window = 0;
    }

    /// Whether one more line may be logged at `now_ns`; counts it either way.
    pub(super) fn admit(&mut self, now_ns: u64, log: &mut dyn FnMut(fmt::Arguments<'_>)) -> bool {
        self.roll(now_ns, log);
        if self.lines_in_window < self.limit.lines_per_window {
            self.lines_in_window += 1;
            true
        } else {
            self.suppressed_in_window = self.suppressed_in_window.saturating_add(1);
            self.suppressed_total = self.suppressed_total.saturating_add(1);
            false
        }
    }
}
