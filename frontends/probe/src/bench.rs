//! Measurements for `make bench` (run under `-icount shift=0,sleep=off`,
//! where `rdtsc` counts instructions): an event-channel ping-pong between
//! two domains, and grant map+unmap and 4 KiB grant copies. Each prints one
//! `bench:` line with integers.

use guest_runtime::event::{self, EventLoop, Port};
use guest_runtime::grant::{self, CopySide, CopySpec, GrantTable};
use guest_runtime::page::Page;
use guest_runtime::{timestamp_counter, ShutdownReason, StartInfo};
use log::{error, info};

use crate::measure;
use crate::rings::{optional, required, retrying, DEFAULT_TRIES, FIRST_TEST_REF, MAX_DOMID, MAX_PORT};

fn loop_of(info: &StartInfo, what: &str) -> Option<EventLoop<'static>> {
    let events = EventLoop::this_domain();
    if events.is_none() {
        error!("{what}: no shared-info page");
    }
    let _ = info;
    events
}

/// `action=event-ping peer=<domid> count=<N>`: allocates a port for the
/// peer, then `count` times sends and waits for the answer; prints the
/// instructions (under icount) per round trip: send, block, switch, wake,
/// reply, and back.
pub fn event_ping(info: &StartInfo) -> ShutdownReason {
    let (Some(peer), Some(count)) = (required(info, "event-ping", "peer", MAX_DOMID), optional(info, "count", 1000, 1, 10_000_000)) else {
        return ShutdownReason::Crash;
    };
    let Some(mut events) = loop_of(info, "event-ping") else { return ShutdownReason::Crash };
    let port = match event::alloc_unbound(peer as u16) {
        Ok(port) => port,
        Err(errno) => {
            error!("event-ping: alloc_unbound for d{peer}: result: {errno}");
            return ShutdownReason::Crash;
        }
    };
    info!("event-ping: port {port} for d{peer}");
    // The pong says hello once it has bound.
    if let Err(errno) = events.wait_for_port(port) {
        error!("event-ping: waiting for d{peer}: result: {errno}");
        return ShutdownReason::Crash;
    }
    let start = timestamp_counter();
    for _ in 0..count {
        if event::send(port).is_err() || events.wait_for_port(port).is_err() {
            error!("event-ping: the ping-pong broke");
            return ShutdownReason::Crash;
        }
    }
    let cycles = measure::cycles_per_call(start, timestamp_counter(), count);
    info!("bench: event ping-pong {cycles} cycles per round trip; n={count}");
    let _ = event::close(port);
    ShutdownReason::Poweroff
}

/// `action=event-pong peer=<domid> port=<p> count=<N>`: binds the peer's
/// port and answers `count` events.
pub fn event_pong(info: &StartInfo) -> ShutdownReason {
    let (Some(peer), Some(remote), Some(count)) = (
        required(info, "event-pong", "peer", MAX_DOMID),
        required(info, "event-pong", "port", MAX_PORT),
        optional(info, "count", 1000, 1, 10_000_000),
    ) else {
        return ShutdownReason::Crash;
    };
    let Some(mut events) = loop_of(info, "event-pong") else { return ShutdownReason::Crash };
    let port = match retrying(DEFAULT_TRIES, || event::bind_interdomain(peer as u16, Port(remote as u32))) {
        Ok((port, _)) => port,
        Err(errno) => {
            error!("event-pong: bind d{peer} port {remote}: result: {errno}");
            return ShutdownReason::Crash;
        }
    };
    // Binding raised our new port once (Xen does): consume that, then say
    // hello so the ping starts timing.
    if events.wait_for_port(port).is_err() || event::send(port).is_err() {
        error!("event-pong: hello to d{peer} failed");
        return ShutdownReason::Crash;
    }
    for _ in 0..count {
        if events.wait_for_port(port).is_err() || event::send(port).is_err() {
            error!("event-pong: the ping-pong broke");
            return ShutdownReason::Crash;
        }
    }
    info!("event-pong: answered {count}");
    ShutdownReason::Poweroff
}

/// `action=grant-bench count=<N>`: grants a page to itself, then times
/// `count` map+unmap pairs and `count` 4 KiB copies through the grant.
pub fn grant_bench(info: &StartInfo) -> ShutdownReason {
    let Some(count) = optional(info, "count", 1000, 1, 10_000_000) else { return ShutdownReason::Crash };
    let reference = FIRST_TEST_REF as u32;
    let me = info.domid;
    let Some(grants) = GrantTable::this_domain() else {
        error!("grant-bench: no grant table page");
        return ShutdownReason::Crash;
    };
    let (page, target) = (Page::new(), Page::new());
    let Some(pfn) = page.pfn() else {
        error!("grant-bench: the page is not a frame of our RAM");
        return ShutdownReason::Crash;
    };
    if let Err(problem) = grants.grant_access(reference, me, pfn, false) {
        error!("grant-bench: grant ref {reference}: {problem}");
        return ShutdownReason::Crash;
    }
    let start = timestamp_counter();
    for _ in 0..count {
        match grant::map(me, reference, false) {
            Ok(mapping) => {
                if grant::unmap(mapping).is_err() {
                    error!("grant-bench: unmap failed");
                    return ShutdownReason::Crash;
                }
            }
            Err(failure) => {
                error!("grant-bench: map: {failure}");
                return ShutdownReason::Crash;
            }
        }
    }
    let map_cycles = measure::cycles_per_call(start, timestamp_counter(), count);
    let spec = CopySpec {
        source: CopySide::Granted { domid: me, reference, offset: 0 },
        dest: CopySide::Local { page: target.buffer(), offset: 0 },
        length: 4096,
    };
    let start = timestamp_counter();
    for _ in 0..count {
        if let Err(failure) = grant::copy(&spec) {
            error!("grant-bench: copy: {failure}");
            return ShutdownReason::Crash;
        }
    }
    let copy_cycles = measure::cycles_per_call(start, timestamp_counter(), count);
    let _ = grants.end_access(reference);
    info!("bench: grant map+unmap {map_cycles} cycles; grant copy 4096 bytes {copy_cycles} cycles; n={count}");
    ShutdownReason::Poweroff
}
