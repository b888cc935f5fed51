//! Time: system time (nanoseconds since the hypervisor booted) from
//! `vcpu_time_info` in the shared-info page, read without a hypercall;
//! the wall clock; and the one-shot timer (`set_timer_op`) with sleeping
//! built on it.
//!
//! The hypervisor rewrites `vcpu_time_info` while we run. Like Xen's
//! pvclock readers, [`read_consistent`] reads the version, the fields and
//! the version again, and retries while the version is odd (an update is
//! in progress) or changed. The raw volatile loads are in the machine
//! layer; the loop and the arithmetic here are safe and host-tested.

use core::sync::atomic::{compiler_fence, Ordering};

use xen_abi::hypercall::SET_TIMER_OP;
use xen_abi::shared_info::{offset, vcpu_info, vcpu_time_info, VCPU_INFO_SIZE};

use crate::hypercall::{check, sched_block, Errno};
use crate::machine;

/// A consistent copy of `vcpu_time_info` (vCPU 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeInfo {
    /// `version`: even when the copy is consistent.
    pub version: u32,
    /// `tsc_timestamp`: the TSC when `system_time` was taken.
    pub tsc_timestamp: u64,
    /// `system_time`: nanoseconds since boot at `tsc_timestamp`.
    pub system_time: u64,
    /// `tsc_to_system_mul`: nanoseconds per (shifted) TSC tick, as a 32.32
    /// fixed-point fraction.
    pub tsc_to_system_mul: u32,
    /// `tsc_shift`: shift the TSC delta left (positive) or right (negative)
    /// before multiplying.
    pub tsc_shift: i8,
}

impl TimeInfo {
    /// Whether the hypervisor has filled it in (a zero multiplier would
    /// stop the clock).
    pub fn is_running(&self) -> bool {
        self.tsc_to_system_mul != 0
    }

    /// System time in nanoseconds when the TSC read `tsc`. A TSC value
    /// before `tsc_timestamp` counts as no time past it, so the result never
    /// falls below `system_time`.
    pub fn system_time_at(&self, tsc: u64) -> u64 {
        let delta = tsc.saturating_sub(self.tsc_timestamp);
        self.system_time.saturating_add(scale_delta(delta, self.tsc_to_system_mul, self.tsc_shift))
    }
}

/// Xen's pvclock scaling: `((delta << shift or >> -shift) * mul) >> 32`,
/// computed in 128 bits and saturated (a hostile or broken multiplier
/// cannot make it overflow or panic).
pub fn scale_delta(delta: u64, mul: u32, shift: i8) -> u64 {
    let wide = u128::from(delta);
    let shifted = if shift >= 0 {
        wide << shift.unsigned_abs().min(64)
    } else {
        wide >> shift.unsigned_abs().min(127)
    };
    let scaled = shifted.saturating_mul(u128::from(mul)) >> 32;
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// Reads a versioned record consistently: `version` before and after
/// `body`, retrying while the version is odd or changed. Returns the
/// version seen and what `body` read.
pub fn read_consistent<T>(mut version: impl FnMut() -> u32, mut body: impl FnMut() -> T) -> (u32, T) {
    loop {
        let before = version();
        if before & 1 != 0 {
            core::hint::spin_loop();
            continue;
        }
        // The loads stay in program order: the compiler may not move them
        // across these fences, and x86 does not reorder loads with loads.
        compiler_fence(Ordering::Acquire);
        let value = body();
        compiler_fence(Ordering::Acquire);
        if version() == before {
            return (before, value);
        }
    }
}

/// Offset of vCPU 0's `vcpu_time_info` in the shared-info page.
const TIME_INFO: usize = offset::VCPU_INFO + vcpu_info::TIME;
// vCPU 0's record lies inside its `vcpu_info`.
const _: () = assert!(vcpu_info::TIME + xen_abi::shared_info::VCPU_TIME_INFO_SIZE <= VCPU_INFO_SIZE);

/// The shared-info page's address, from the start-info page.
fn shared_info_base() -> Option<u64> {
    crate::start::start_info().map(|info| info.shared_info)
}

/// A consistent `vcpu_time_info` and the TSC read inside the same retry
/// window, from the shared-info page at `base`; `None` if the page cannot
/// be read there.
fn time_info_and_tsc_at(base: u64) -> Option<(TimeInfo, u64)> {
    let field32 = |at: usize| machine::read_shared_info_u32(base, TIME_INFO + at);
    let field64 = |at: usize| machine::read_shared_info_u64(base, TIME_INFO + at);
    // Check the page is readable at all before looping on it.
    field32(vcpu_time_info::VERSION)?;
    let (version, (fields, tsc)) = read_consistent(
        || field32(vcpu_time_info::VERSION).unwrap_or(0),
        || {
            let fields = (
                field64(vcpu_time_info::TSC_TIMESTAMP).unwrap_or(0),
                field64(vcpu_time_info::SYSTEM_TIME).unwrap_or(0),
                field32(vcpu_time_info::TSC_TO_SYSTEM_MUL).unwrap_or(0),
                machine::read_shared_info_u8(base, TIME_INFO + vcpu_time_info::TSC_SHIFT).unwrap_or(0) as i8,
            );
            (fields, machine::timestamp_counter())
        },
    );
    let (tsc_timestamp, system_time, tsc_to_system_mul, tsc_shift) = fields;
    Some((TimeInfo { version, tsc_timestamp, system_time, tsc_to_system_mul, tsc_shift }, tsc))
}

/// A consistent copy of this domain's `vcpu_time_info`, or `None` before
/// the runtime has read the start-info page (or if it names no usable
/// shared-info page).
pub fn time_info() -> Option<TimeInfo> {
    time_info_and_tsc_at(shared_info_base()?).map(|(info, _)| info)
}

/// Whether system time is available and advancing (the hypervisor fills
/// in `vcpu_time_info`).
pub fn clock_running() -> bool {
    time_info().is_some_and(|info| info.is_running())
}

/// System time at `base`'s shared-info page, 0 if unreadable.
fn system_time_at(base: u64) -> u64 {
    time_info_and_tsc_at(base).map_or(0, |(info, tsc)| info.system_time_at(tsc))
}

/// Nanoseconds of system time since the hypervisor booted, computed from
/// the TSC and `vcpu_time_info` (no hypercall). 0 if there is no readable
/// shared-info page; constant if the hypervisor does not keep the record
/// (see [`clock_running`]).
pub fn system_time_ns() -> u64 {
    shared_info_base().map_or(0, system_time_at)
}

/// The wall clock as the hypervisor publishes it: the time of day (since
/// the Unix epoch) at system time 0, like Xen's `wc_*` fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WallClock {
    /// Seconds (`wc_sec_hi << 32 | wc_sec`).
    pub seconds: u64,
    /// Nanoseconds (`wc_nsec`, below 10^9 from a sane hypervisor).
    pub nanoseconds: u32,
}

impl WallClock {
    /// Decodes the fields `wc_sec`, `wc_nsec`, `wc_sec_hi`.
    pub fn from_fields(sec: u32, nsec: u32, sec_hi: u32) -> WallClock {
        WallClock { seconds: u64::from(sec_hi) << 32 | u64::from(sec), nanoseconds: nsec }
    }

    /// The time of day `system_ns` nanoseconds of system time after this
    /// base: `(seconds, nanoseconds)` since the Unix epoch (saturating).
    pub fn at(&self, system_ns: u64) -> (u64, u32) {
        let total_ns = u128::from(self.nanoseconds) + u128::from(system_ns);
        let seconds = self.seconds.saturating_add(u64::try_from(total_ns / 1_000_000_000).unwrap_or(u64::MAX));
        (seconds, (total_ns % 1_000_000_000) as u32)
    }
}

fn wall_clock_at(base: u64) -> Option<WallClock> {
    let field = |at: usize| machine::read_shared_info_u32(base, at);
    field(offset::WC_VERSION)?;
    let (_, (sec, nsec, sec_hi)) = read_consistent(
        || field(offset::WC_VERSION).unwrap_or(0),
        || {
            (
                field(offset::WC_SEC).unwrap_or(0),
                field(offset::WC_NSEC).unwrap_or(0),
                field(offset::WC_SEC_HI).unwrap_or(0),
            )
        },
    );
    Some(WallClock::from_fields(sec, nsec, sec_hi))
}

/// The wall clock at system time 0 (see [`WallClock`]; the time of day now
/// is `wall_clock().at(system_time_ns())`), or `None` before the runtime
/// has read the start-info page.
pub fn wall_clock() -> Option<WallClock> {
    wall_clock_at(shared_info_base()?)
}

/// `set_timer_op`: arm this domain's one-shot timer for the absolute
/// system time `deadline_ns` (0 cancels). When it passes, the domain gets
/// `VIRQ_TIMER` and returns from [`sched_block`].
pub fn set_timer(deadline_ns: u64) -> Result<(), Errno> {
    check(machine::hypercall1(SET_TIMER_OP, deadline_ns)).map(drop)
}

/// Cancels the one-shot timer.
pub fn cancel_timer() -> Result<(), Errno> {
    set_timer(0)
}

/// Sleeps until system time reaches `deadline_ns`: arms the timer and
/// blocks, again after every wake-up (an event, or the timer) that comes
/// early. Returns the system time it woke at (at or after the deadline),
/// or the error of `set_timer_op` or `sched_op(block)`; without a running
/// clock (see [`clock_running`]) it would never end, so it fails with
/// `ENOSYS` at once.
pub fn sleep_until(deadline_ns: u64) -> Result<u64, Errno> {
    let base = shared_info_base().ok_or(Errno::new(xen_abi::errno::ENOSYS))?;
    sleep_until_at(base, deadline_ns)
}

fn sleep_until_at(base: u64, deadline_ns: u64) -> Result<u64, Errno> {
    if !time_info_and_tsc_at(base).is_some_and(|(info, _)| info.is_running()) {
        return Err(Errno::new(xen_abi::errno::ENOSYS));
    }
    loop {
        let now = system_time_at(base);
        if now >= deadline_ns {
            return Ok(now);
        }
        set_timer(deadline_ns)?;
        sched_block()?;
    }
}

/// Sleeps for `ns` nanoseconds of system time (see [`sleep_until`]).
pub fn sleep_ns(ns: u64) -> Result<u64, Errno> {
    sleep_until(system_time_ns().saturating_add(ns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{advance_timestamp_counter, set_shared_info, set_timestamp_counter, with_responder, Call};
    use core::cell::Cell;
    use xen_abi::errno::ENOSYS;
    use xen_abi::hypercall::SCHED_OP;
    use xen_abi::sched::BLOCK;

    /// A shared-info page with vCPU 0's time record and the wall clock set.
    fn page(info: &TimeInfo, wall: (u32, u32, u32)) -> std::vec::Vec<u8> {
        let mut page = std::vec![0u8; 4096];
        let mut put = |at: usize, bytes: &[u8]| page[at..at + bytes.len()].copy_from_slice(bytes);
        put(TIME_INFO + vcpu_time_info::VERSION, &info.version.to_le_bytes());
        put(TIME_INFO + vcpu_time_info::TSC_TIMESTAMP, &info.tsc_timestamp.to_le_bytes());
        put(TIME_INFO + vcpu_time_info::SYSTEM_TIME, &info.system_time.to_le_bytes());
        put(TIME_INFO + vcpu_time_info::TSC_TO_SYSTEM_MUL, &info.tsc_to_system_mul.to_le_bytes());
        put(TIME_INFO + vcpu_time_info::TSC_SHIFT, &info.tsc_shift.to_le_bytes());
        put(offset::WC_VERSION, &2u32.to_le_bytes());
        put(offset::WC_SEC, &wall.0.to_le_bytes());
        put(offset::WC_NSEC, &wall.1.to_le_bytes());
        put(offset::WC_SEC_HI, &wall.2.to_le_bytes());
        page
    }

    /// One TSC tick per nanosecond: shift 1, mul 2^31.
    const ONE_TO_ONE: (u32, i8) = (1 << 31, 1);

    #[test]
    fn scaling() {
        assert_eq!(scale_delta(1000, ONE_TO_ONE.0, ONE_TO_ONE.1), 1000);
        // A 3 GHz TSC: shift -1, mul = 2/3 * 2^32.
        let mul = ((2u64 << 32) / 3) as u32;
        assert_eq!(scale_delta(3_000_000_000, mul, -1), 999_999_999);
        assert_eq!(scale_delta(u64::MAX, u32::MAX, 64), u64::MAX, "saturates");
        assert_eq!(scale_delta(u64::MAX, u32::MAX, i8::MIN), 0);
        assert_eq!(scale_delta(12345, 0, 5), 0);
    }

    #[test]
    fn system_time_from_the_record() {
        let info = TimeInfo { version: 2, tsc_timestamp: 1000, system_time: 5_000, tsc_to_system_mul: ONE_TO_ONE.0, tsc_shift: ONE_TO_ONE.1 };
        assert_eq!(info.system_time_at(1500), 5_500);
        assert_eq!(info.system_time_at(900), 5_000, "a TSC before the stamp does not go back");
        assert!(info.is_running());
        assert!(!TimeInfo::default().is_running());
    }

    #[test]
    fn retries_while_odd_or_changed() {
        // Version sequence: odd (retry), 2 then 4 (changed: retry), 4 and 4.
        let versions = [1u32, 2, 4, 4, 4];
        let next = Cell::new(0);
        let reads = Cell::new(0);
        let (version, value) = read_consistent(
            || {
                let version = versions[next.get()];
                next.set(next.get() + 1);
                version
            },
            || {
                reads.set(reads.get() + 1);
                reads.get()
            },
        );
        assert_eq!(version, 4);
        assert_eq!(value, 2, "the body ran for 2-then-4 and for 4-then-4");
        assert_eq!(next.get(), 5);
    }

    #[test]
    fn reads_the_shared_info_page() {
        let info = TimeInfo { version: 6, tsc_timestamp: 10_000, system_time: 1_000_000, tsc_to_system_mul: ONE_TO_ONE.0, tsc_shift: ONE_TO_ONE.1 };
        set_shared_info(Some(page(&info, (0x6000_0000, 250, 1))));
        set_timestamp_counter(Some(10_500));
        let (read, tsc) = time_info_and_tsc_at(0).unwrap();
        assert_eq!(read, info);
        assert_eq!(tsc, 10_500);
        assert_eq!(system_time_at(0), 1_000_500);
        let wall = wall_clock_at(0).unwrap();
        assert_eq!(wall, WallClock { seconds: 1 << 32 | 0x6000_0000, nanoseconds: 250 });
        assert_eq!(wall.at(2_999_999_750), (wall.seconds + 3, 0));
        set_shared_info(None);
        assert_eq!(time_info_and_tsc_at(0), None);
        assert_eq!(system_time_at(0), 0);
        set_timestamp_counter(None);
    }

    #[test]
    fn sleeping_arms_the_timer_and_blocks_until_the_deadline() {
        let info = TimeInfo { version: 2, tsc_timestamp: 0, system_time: 0, tsc_to_system_mul: ONE_TO_ONE.0, tsc_shift: ONE_TO_ONE.1 };
        set_shared_info(Some(page(&info, (0, 0, 0))));
        set_timestamp_counter(Some(1_000));
        // Each block wakes 4 ms later (an early wake-up, then the timer).
        fn responder(call: &Call) -> i64 {
            if call.number == SCHED_OP && call.arguments[0] == BLOCK {
                advance_timestamp_counter(4_000_000);
            }
            0
        }
        let (woke, calls) = with_responder(responder, || sleep_until_at(0, 10_000_000));
        assert_eq!(woke, Ok(12_001_000));
        let made: std::vec::Vec<_> = calls.iter().map(|call| (call.number, call.arguments[0])).collect();
        assert_eq!(
            made,
            [(SET_TIMER_OP, 10_000_000), (SCHED_OP, BLOCK), (SET_TIMER_OP, 10_000_000), (SCHED_OP, BLOCK), (SET_TIMER_OP, 10_000_000), (SCHED_OP, BLOCK)]
        );
        // A deadline already past: no hypercall.
        let (woke, calls) = with_responder(responder, || sleep_until_at(0, 5));
        assert_eq!(woke, Ok(12_001_000));
        assert!(calls.is_empty());
        // A refused timer ends the sleep with its error.
        let (woke, _) = with_responder(|_| -ENOSYS, || sleep_until_at(0, u64::MAX));
        assert_eq!(woke, Err(Errno::new(ENOSYS)));
        // A stopped clock: ENOSYS without a hypercall.
        set_shared_info(Some(page(&TimeInfo::default(), (0, 0, 0))));
        let (woke, calls) = with_responder(responder, || sleep_until_at(0, u64::MAX));
        assert_eq!(woke, Err(Errno::new(ENOSYS)));
        assert!(calls.is_empty());
        set_shared_info(None);
        set_timestamp_counter(None);
    }

    #[test]
    fn timer_hypercall() {
        let (result, calls) = with_responder(|_| 0, || (set_timer(77), cancel_timer()));
        assert_eq!(result, (Ok(()), Ok(())));
        assert_eq!(calls[0].number, SET_TIMER_OP);
        assert_eq!(calls[0].arguments[0], 77);
        assert_eq!(calls[1].arguments[0], 0);
    }

    #[test]
    fn no_start_info_on_the_host() {
        assert_eq!(time_info(), None);
        assert_eq!(system_time_ns(), 0);
        assert_eq!(wall_clock(), None);
        assert!(!clock_running());
        assert_eq!(sleep_ns(5), Err(Errno::new(ENOSYS)));
    }
}
