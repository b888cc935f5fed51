//! Event channels and grant tables: two domains share a ring through a
//! granted page and an event channel; a third cannot get in.

use std::time::Duration;

use xen_tests::machine::{DomainConfig, Machine};
use xen_tests::{Outcome, DEFAULT_DEADLINE};

fn ring_pair(count: u32) -> Machine {
    Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("front", &format!("action=ring-front back=2 count={count} ref=8")))
        .domain(DomainConfig::probe("back", &format!("action=ring-back front=1 port=1 ref=8 count={count}")))
}

#[test]
fn two_domains_share_a_ring_through_a_grant_and_an_event_channel() {
    let boot = ring_pair(10_000).boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("ring-front: port 1 ref 8 granted to d2")
        .expect_log("ring-front: 10000 round trips")
        .expect_log("ring-back: served 10000 requests")
        .expect_log("ring-front: revoked ref 8")
        .expect_log("d1 (front): shutdown: poweroff")
        .expect_log("d2 (back): shutdown: poweroff")
        .expect_log(": ok")
        .expect_no_log("crashed")
        .expect_no_log("LEAK");
    // Notification suppression: far fewer events than requests.
    let line = boot.log.lines().find(|line| line.contains("ring-front: 10000 round trips")).unwrap_or_default();
    let sent: u64 = line
        .split("round trips, ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(sent < 10_000, "{line}");
    eprintln!("{line}");
}

#[test]
fn a_third_domain_cannot_map_bind_or_send() {
    let boot = ring_pair(2_000)
        .domain(DomainConfig::probe("snoop", "action=snoop victim=1 ref=8 port=1"))
        .boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("ring-front: 2000 round trips")
        .expect_log("snoop: map: status")
        .expect_log("snoop: bind: result: E")
        .expect_no_log("snoop: map: status okay")
        .expect_no_log("snoop: bind: result: ok")
        .expect_no_log("UNEXPECTED")
        .expect_no_log("crashed")
        .expect_no_log("LEAK");
}

#[test]
fn a_flood_of_events_coalesces_and_starves_no_one() {
    let machine = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("sink", "action=event-sink peer=2 count=500"))
        .domain(DomainConfig::probe("flood", "action=event-flood peer=1 port=1 count=200000"))
        .domain(DomainConfig::probe("worker", "action=counter duration_ms=500"));
    let boot = machine.boot(Duration::from_secs(60));
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("event-flood: sent 200000")
        .expect_log("counter: done")
        .expect_no_log("crashed")
        .expect_no_log("LEAK");
    let line = boot.log.lines().find(|line| line.contains("wakeups for a flood")).unwrap_or_default();
    let wakeups: u64 = line
        .split("event-sink: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(u64::MAX);
    // Sends to a pending port coalesce: far fewer wakeups than events.
    assert!(wakeups < 200_000 / 4, "{line}");
    eprintln!("{line}");
}

#[test]
fn the_timer_virq_fires_on_its_port() {
    let boot = Machine::new("on_idle=poweroff").domain(DomainConfig::probe("timer", "action=timer-virq ms=20")).boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff).expect_log("timer-virq: fired on port").expect_no_log("crashed");
}

#[test]
fn a_granter_destroyed_while_mapped_keeps_its_frame_until_the_last_unmap() {
    let boot = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("control", "action=control script=destroy target=2 after_ms=200").control())
        .domain(DomainConfig::probe("front", "action=ring-front back=3 count=100000000 timeout_ms=60000"))
        // With a control domain, ports 1 and 2 of every other domain are its
        // store and console channels: the ring's port is 3.
        .domain(DomainConfig::probe("back", "action=ring-back front=2 port=3 ref=8 count=100000000 timeout_ms=300"))
        .boot(Duration::from_secs(60));
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("d1: destroying d2")
        .expect_log("d2: 1 granted frame(s) still mapped elsewhere: kept until unmapped")
        .expect_log("d2 (front): torn down")
        .expect_log("d2: the last frame it granted was unmapped and freed")
        .expect_log("control: destroyed d2")
        .expect_no_log("LEAK");
    let last = boot.log.lines().rfind(|line| line.contains("health: no domains left")).unwrap_or_default();
    assert!(last.ends_with(": ok"), "{last}\n{}", boot.tail(30));
    // The orphaned frame was freed after the granter's teardown, not before.
    let torn = boot.log.find("d2 (front): torn down").unwrap_or(usize::MAX);
    let freed = boot.log.find("d2: the last frame it granted").unwrap_or(0);
    assert!(freed > torn);
}

#[test]
fn the_builder_gives_the_control_domain_the_console_and_store_pages_and_ports() {
    let boot = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("control", "action=hello").control())
        .domain(DomainConfig::probe("guest", "action=reserved-refs"))
        .boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("reserved-refs: ref 0 (console) flags 0x1 domid 1 frame 2")
        .expect_log("reserved-refs: ref 1 (store) flags 0x1 domid 1 frame 3")
        .expect_log("reserved-refs: start-info: store port 1 console port 2");
}

#[test]
fn a_domain_grants_maps_revokes_and_copies_its_own_page() {
    let boot = Machine::new("on_idle=poweroff").domain(DomainConfig::probe("self", "action=grant-self")).boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("grant-self: revoke while mapped: busy")
        .expect_log("grant-self: revoked after the unmap")
        .expect_log("grant-self: copy: status GNTST_okay")
        .expect_log("grant-self: done")
        .expect_no_log("LEAK");
}
