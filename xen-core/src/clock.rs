//! The monotonic clock: nanoseconds since boot, from the TSC and the scale
//! measured at calibration. Zero until calibrated.

use core::sync::atomic::{AtomicU64, Ordering};

use xen_core::time::TickScale;

use crate::arch::cpu::rdtsc;

static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
/// `mul << 8 | shift` of the TSC scale; 0 until calibrated.
static PACKED_SCALE: AtomicU64 = AtomicU64::new(0);

/// Records the TSC at boot: time zero.
pub fn mark_boot() {
    BOOT_TSC.store(rdtsc(), Ordering::Relaxed);
}

/// Installs the TSC scale.
pub fn set_scale(scale: TickScale) {
    let packed = (u64::from(scale.mul) << 8) | u64::from(scale.shift as u8);
    PACKED_SCALE.store(packed, Ordering::Relaxed);
}

/// The TSC scale, once calibrated.
pub fn scale() -> Option<TickScale> {
    let packed = PACKED_SCALE.load(Ordering::Relaxed);
    (packed != 0).then_some(TickScale { mul: (packed >> 8) as u32, shift: packed as u8 as i8 })
}

/// Nanoseconds since boot (0 before calibration).
pub fn now_ns() -> u64 {
    match scale() {
        Some(scale) => scale.ticks_to_ns(rdtsc().wrapping_sub(BOOT_TSC.load(Ordering::Relaxed))),
        None => 0,
    }
}

/// The TSC now and the system time (ns since boot) it stands for.
pub fn now_with_tsc() -> (u64, u64) {
    let tsc = rdtsc();
    let ns = scale().map_or(0, |scale| scale.ticks_to_ns(tsc.wrapping_sub(BOOT_TSC.load(Ordering::Relaxed))));
    (tsc, ns)
}
