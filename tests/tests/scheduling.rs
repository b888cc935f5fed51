//! Many domains: weighted preemptive scheduling, timers and time, and the
//! control domain's lifecycle operations.

use std::time::Duration;

use xen_tests::machine::{DomainConfig, Machine};
use xen_tests::{Boot, Outcome, DEFAULT_DEADLINE};

/// The numbers in the first log line containing `needle` (after it).
fn numbers_after(log: &str, needle: &str) -> Vec<u64> {
    let line = log.lines().find(|line| line.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in the log"));
    let rest = &line[line.find(needle).unwrap_or(0) + needle.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).filter(|word| !word.is_empty()).filter_map(|word| word.parse().ok()).collect()
}

fn counter_total(log: &str, domain: &str) -> u64 {
    let prefix = format!("({domain}) ");
    let line = log
        .lines()
        .find(|line| line.starts_with(&prefix) && line.contains("counter: done total="))
        .unwrap_or_else(|| panic!("{domain} never finished counting"));
    numbers_after(line, "total=")[0]
}

#[test]
fn shares_follow_weights_and_a_spinner_cannot_starve_anyone() {
    let machine = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("light", "action=counter duration_ms=1500").weight(256))
        .domain(DomainConfig::probe("heavy", "action=counter duration_ms=1500").weight(512))
        .domain(DomainConfig::probe("spinner", "action=spin").weight(256));
    let boot = machine.boot_until(Duration::from_secs(60), &|log| log.matches("counter: done").count() == 2);
    boot.expect_outcome(Outcome::Stopped).expect_no_log("crashed");
    let light = counter_total(&boot.log, "d1") as f64;
    let heavy = counter_total(&boot.log, "d2") as f64;
    assert!(light > 0.0 && heavy > 0.0, "both counters made progress: {light} {heavy}");
    // Stated tolerance: the heavy domain (weight 512) gets 2x the light one
    // (weight 256) within 25%, measured by the domains in system time.
    let ratio = heavy / light;
    eprintln!("weights 256:512 -> counts {light} : {heavy}, ratio {ratio:.3}");
    assert!((1.5..=2.5).contains(&ratio), "heavy/light = {ratio:.2} (counts {heavy} / {light})\n{}", boot.tail(30));
}

fn sleeper_late_ns(boot: &Boot) -> u64 {
    numbers_after(&boot.log, "sleep: woke ")[0]
}

#[test]
fn a_blocked_domain_wakes_at_its_deadline_even_beside_a_spinner() {
    let alone = Machine::new("on_idle=poweroff").domain(DomainConfig::probe("sleeper", "action=sleep ms=50")).boot(DEFAULT_DEADLINE);
    alone.expect_outcome(Outcome::PoweredOff).expect_log("sleep: woke ");
    let beside = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("spinner", "action=spin"))
        .domain(DomainConfig::probe("sleeper", "action=sleep ms=50"))
        .boot_until(DEFAULT_DEADLINE, &|log| log.contains("sleep: woke "));
    beside.expect_outcome(Outcome::Stopped);
    // The wake-up boost: a spinning neighbour adds less than a time slice
    // (10 ms) to the sleeper's latency.
    let late = sleeper_late_ns(&beside);
    eprintln!("sleeper woke {} ns late alone, {late} ns late beside a spinner", sleeper_late_ns(&alone));
    assert!(late < 10_000_000, "woke {late} ns late beside a spinner\n{}", beside.tail(20));
}

#[test]
fn system_time_is_monotonic_across_switches() {
    let boot = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("one", "action=time-monotonic count=2000"))
        .domain(DomainConfig::probe("two", "action=time-monotonic count=2000"))
        .boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff).expect_no_log("crashed");
    assert_eq!(boot.log.matches("time: monotonic over 2000 reads").count(), 2, "{}", boot.tail(20));
}

#[test]
fn vector_registers_survive_switches_between_domains() {
    let boot = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("one", "action=sse-switch value=1 count=300"))
        .domain(DomainConfig::probe("two", "action=sse-switch value=2 count=300"))
        .boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff).expect_no_log("crashed");
    assert_eq!(boot.log.matches("sse-switch: intact after 300 switches").count(), 2, "{}", boot.tail(20));
}

#[test]
fn the_control_domain_creates_pauses_unpauses_and_destroys() {
    let boot = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("control", "action=control script=lifecycle").control())
        .boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("d1: created d2 (child)")
        .expect_log("d1: paused d2")
        .expect_log("d1: unpaused d2")
        .expect_log("d1: destroying d2")
        .expect_log("d2 (child): torn down")
        .expect_log("control: destroyed d2")
        .expect_log("health: no domains left")
        .expect_no_log("LEAK");
    // While paused, the child printed nothing.
    let log = &boot.log;
    let paused = log.find("d1: paused d2").unwrap_or(0);
    let unpaused = log.find("d1: unpaused d2").unwrap_or(0);
    assert!(log[..paused].contains("(d2) tiny: tick"), "the child ran before the pause\n{}", boot.tail(40));
    assert!(!log[paused..unpaused].contains("(d2) tiny: tick"), "the child ran while paused\n{}", &log[paused..unpaused]);
    assert!(log[unpaused..].contains("(d2) tiny: tick"), "the child ran again after the unpause");
}

#[test]
fn only_a_domain_the_policy_allows_may_use_domctl() {
    let boot = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("victim", "action=spin"))
        .domain(DomainConfig::probe("intruder", "action=domctl-denied"))
        .boot_until(DEFAULT_DEADLINE, &|log| log.contains("destroy d1: result"));
    boot.expect_outcome(Outcome::Stopped)
        .expect_log("pause d1: result: EACCES")
        .expect_log("destroy d1: result: EACCES")
        .expect_log("avc:  denied  { destroy } for domid=2")
        .expect_log("avc:  denied  { pause } for domid=2 scontext=system_u:system_r:untrusted_t tcontext=system_u:system_r:untrusted_t tclass=domain")
        .expect_no_log("d2: paused")
        .expect_no_log("d2: created");
}

#[test]
fn a_hundred_create_destroy_cycles_return_every_frame_and_byte() {
    let boot = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("control", "action=control script=cycles count=100").control())
        .boot(Duration::from_secs(120));
    boot.expect_outcome(Outcome::PoweredOff).expect_log("control: 100 cycles done").expect_no_log("LEAK");
    assert_eq!(boot.log.matches("): torn down:").count(), 101, "100 children and the control domain");
    let last = boot.log.lines().rfind(|line| line.contains("health: no domains left")).unwrap_or_default();
    assert!(last.ends_with(": ok"), "{last}");
}
