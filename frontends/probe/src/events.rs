//! Event-channel actions: `event-flood` and `event-sink` (a flood of sends
//! coalesces into few wake-ups of the receiver) and `timer-virq` (the
//! one-shot timer raises VIRQ_TIMER). Every line starts with the action's
//! name.

use guest_runtime::event::{self, EventLoop, Port, PortSet};
use guest_runtime::time::{self, system_time_ns};
use guest_runtime::{sched_block, ShutdownReason, StartInfo};
use log::{error, info, warn};
use xen_abi::timer::VIRQ_TIMER;

use crate::rings::{optional, required, retrying, DEFAULT_TRIES, MAX_DOMID, MAX_PORT};
use crate::timing::{lateness, NS_PER_MS};

/// `action=event-flood peer=<domid> port=<p> count=<N> tries=<n>`: binds to
/// the peer's unbound port (retrying while it is not there yet) and sends
/// `count` events as fast as it can.
pub fn event_flood(info: &StartInfo) -> ShutdownReason {
    let (Some(peer), Some(remote_port), Some(count), Some(tries)) = (
        required(info, "event-flood", "peer", MAX_DOMID),
        required(info, "event-flood", "port", MAX_PORT),
        optional(info, "count", 10_000, 1, 1_000_000_000),
        optional(info, "tries", DEFAULT_TRIES, 1, 1_000_000_000),
    ) else {
        return ShutdownReason::Crash;
    };
    let (peer, remote_port) = (peer as u16, Port(remote_port as u32));
    let port = match retrying(tries, || event::bind_interdomain(peer, remote_port)) {
        Ok((port, tried)) => {
            info!("event-flood: bound port {port} to d{peer} port {remote_port} (try {tried})");
            port
        }
        Err(errno) => {
            error!("event-flood: bind d{peer} port {remote_port}: result: {errno} after {tries} tries");
            return ShutdownReason::Crash;
        }
    };
    let mut failed = 0u64;
    let mut first_failure = None;
    for _ in 0..count {
        if let Err(errno) = event::send(port) {
            failed += 1;
            first_failure.get_or_insert(errno);
        }
    }
    let _ = event::close(port);
    if let Some(errno) = first_failure {
        error!("event-flood: {failed} of {count} sends failed; the first: result: {errno}");
        return ShutdownReason::Crash;
    }
    info!("event-flood: sent {count}");
    ShutdownReason::Poweroff
}

/// `action=event-sink peer=<domid> duration_ms=<ms>` (`count=` is taken as
/// the duration too): allocates a port for the peer, then for that long
/// blocks and scans, counting the wake-ups on which the port had fired.
pub fn event_sink(info: &StartInfo) -> ShutdownReason {
    let fallback = match optional(info, "count", 2000, 1, 3_600_000) {
        Some(value) => value,
        None => return ShutdownReason::Crash,
    };
    let (Some(peer), Some(duration_ms)) =
        (required(info, "event-sink", "peer", MAX_DOMID), optional(info, "duration_ms", fallback, 1, 3_600_000))
    else {
        return ShutdownReason::Crash;
    };
    if !time::clock_running() {
        error!("event-sink: no system time");
        return ShutdownReason::Crash;
    }
    let Some(mut events) = EventLoop::this_domain() else {
        error!("event-sink: no shared-info page");
        return ShutdownReason::Crash;
    };
    let port = match event::alloc_unbound(peer as u16) {
        Ok(port) => port,
        Err(errno) => {
            error!("event-sink: alloc_unbound for d{peer}: result: {errno}");
            return ShutdownReason::Crash;
        }
    };
    info!("event-sink: port {port}");
    let end = system_time_ns().saturating_add(duration_ms * NS_PER_MS);
    let interest = PortSet::of(port);
    let mut wakeups = 0u64;
    loop {
        match events.wait_until(&interest, end) {
            Ok(fired) if fired.is_empty() => break,
            Ok(_) => wakeups += 1,
            Err(errno) => {
                error!("event-sink: block or set_timer_op: result: {errno}");
                let _ = event::close(port);
                return ShutdownReason::Crash;
            }
        }
    }
    if let Err(errno) = event::close(port) {
        warn!("event-sink: close port {port}: result: {errno}");
    }
    info!("event-sink: {wakeups} wakeups for a flood");
    info!("event-sink: {} blocks in {duration_ms} ms", events.blocks());
    ShutdownReason::Poweroff
}

/// Past the deadline by this much without the port firing, `timer-virq`
/// gives up (the hypervisor woke us but raised nothing).
const VIRQ_GRACE_NS: u64 = 1_000 * NS_PER_MS;

/// `action=timer-virq ms=<N>`: binds VIRQ_TIMER, arms the timer `ms` ahead
/// and waits for that port.
pub fn timer_virq(info: &StartInfo) -> ShutdownReason {
    let Some(ms) = optional(info, "ms", 50, 0, 3_600_000) else {
        return ShutdownReason::Crash;
    };
    if !time::clock_running() {
        error!("timer-virq: no system time");
        return ShutdownReason::Crash;
    }
    let Some(mut events) = EventLoop::this_domain() else {
        error!("timer-virq: no shared-info page");
        return ShutdownReason::Crash;
    };
    let port = match event::bind_virq(VIRQ_TIMER) {
        Ok(port) => port,
        Err(errno) => {
            error!("timer-virq: bind_virq VIRQ_TIMER: result: {errno}");
            return ShutdownReason::Crash;
        }
    };
    let interest = PortSet::of(port);
    // Anything raised before the timer is armed is not this timer.
    let _ = events.take(&interest);
    let deadline = system_time_ns().saturating_add(ms * NS_PER_MS);
    if let Err(errno) = time::set_timer(deadline) {
        error!("timer-virq: set_timer_op: result: {errno}");
        return ShutdownReason::Crash;
    }
    let outcome = loop {
        if !events.take(&interest).is_empty() {
            let now = system_time_ns();
            if now < deadline {
                error!("timer-virq: fired on port {port} {} ns before the deadline", deadline - now);
                break ShutdownReason::Crash;
            }
            info!("timer-virq: fired on port {port} {} ns after the deadline", lateness(deadline, now));
            break ShutdownReason::Poweroff;
        }
        let now = system_time_ns();
        if now > deadline.saturating_add(VIRQ_GRACE_NS) {
            error!("timer-virq: {} ns past the deadline and port {port} has not fired", now - deadline);
            break ShutdownReason::Crash;
        }
        if let Err(errno) = sched_block() {
            error!("timer-virq: block: result: {errno}");
            break ShutdownReason::Crash;
        }
    };
    let _ = event::close(port);
    outcome
}
