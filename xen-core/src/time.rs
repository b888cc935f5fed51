//! Time arithmetic: turning TSC ticks into nanoseconds with Xen's
//! `tsc_to_system_mul`/`tsc_shift` pair (so the same scale can be published
//! in `vcpu_time_info`), and nanoseconds into timer counts.

/// Nanoseconds in a second.
pub const NANOSECONDS_PER_SECOND: u64 = 1_000_000_000;

/// A fixed-point scale from ticks of some counter to nanoseconds:
/// `ns = ((ticks << shift) * mul) >> 32` (a right shift when `shift < 0`),
/// exactly as Xen's `vcpu_time_info` defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickScale {
    /// The 32.32 fixed-point multiplier.
    pub mul: u32,
    /// The power of two applied before multiplying.
    pub shift: i8,
}

impl TickScale {
    /// The scale for a counter running at `hz` ticks per second; `None` for
    /// a frequency of zero.
    pub fn from_frequency(hz: u64) -> Option<TickScale> {
        if hz == 0 {
            return None;
        }
        let mut scaled = hz;
        let mut shift: i8 = 0;
        while scaled > 2 * NANOSECONDS_PER_SECOND {
            scaled >>= 1;
            shift -= 1;
        }
        while scaled <= NANOSECONDS_PER_SECOND {
            scaled <<= 1;
            shift += 1;
        }
        // scaled is in (1e9, 2e9], so the quotient is below 2^32.
        let mul = ((u128::from(NANOSECONDS_PER_SECOND) << 32) / u128::from(scaled)) as u32;
        Some(TickScale { mul, shift })
    }

    /// Converts a tick count to nanoseconds.
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        let shifted = if self.shift >= 0 {
            u128::from(ticks) << self.shift
        } else {
            u128::from(ticks >> (-self.shift))
        };
        ((shifted * u128::from(self.mul)) >> 32) as u64
    }
}

/// How many ticks of a `hz` counter cover `ns` nanoseconds, rounded up so a
/// timer never fires early; saturates at `u64::MAX`.
pub fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    let ticks = (u128::from(ns) * u128::from(hz)).div_ceil(u128::from(NANOSECONDS_PER_SECOND));
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// The frequency implied by `ticks` counted over `ns` nanoseconds.
pub fn frequency_from(ticks: u64, ns: u64) -> u64 {
    if ns == 0 {
        return 0;
    }
    let hz = u128::from(ticks) * u128::from(NANOSECONDS_PER_SECOND) / u128::from(ns);
    u64::try_from(hz).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: u64, b: u64, tolerance: u64) -> bool {
        a.abs_diff(b) <= tolerance
    }

    #[test]
    fn scale_round_trips_common_frequencies() {
        for hz in [1_000_000u64, 1_193_182, 100_000_000, 1_000_000_000, 2_400_000_000, 3_999_999_999, 10_000_000_000] {
            let scale = TickScale::from_frequency(hz).unwrap();
            // One second of ticks is one second, within a part per million.
            assert!(close(scale.ticks_to_ns(hz), NANOSECONDS_PER_SECOND, 1_000), "{hz}: {scale:?}");
            // An hour of ticks does not overflow and stays accurate.
            assert!(close(scale.ticks_to_ns(hz * 3600), 3600 * NANOSECONDS_PER_SECOND, 3_600_000), "{hz}");
        }
    }

    #[test]
    fn zero_frequency_has_no_scale() {
        assert_eq!(TickScale::from_frequency(0), None);
    }

    #[test]
    fn one_gigahertz_is_identity_like() {
        let scale = TickScale::from_frequency(NANOSECONDS_PER_SECOND).unwrap();
        assert!(close(scale.ticks_to_ns(123_456_789), 123_456_789, 1));
    }

    #[test]
    fn ns_to_ticks_rounds_up_and_saturates() {
        assert_eq!(ns_to_ticks(1, 1_000_000_000), 1);
        assert_eq!(ns_to_ticks(1, 1_000), 1);
        assert_eq!(ns_to_ticks(10_000_000, 62_500_000), 625_000);
        assert_eq!(ns_to_ticks(u64::MAX, u64::MAX), u64::MAX);
    }

    #[test]
    fn frequency_from_a_measurement() {
        assert_eq!(frequency_from(24_000_000, 10_000_000), 2_400_000_000);
        assert_eq!(frequency_from(5, 0), 0);
    }
}
