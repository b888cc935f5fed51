//! Host tests of the scheduling policy: shares follow weights, a spinner
//! cannot starve anyone, a woken domain runs at once, pause and timers.

use super::*;

/// Runs the scheduler for `total_ns` of simulated time in which every
/// runnable domain spins; returns each domain's CPU time.
fn simulate(scheduler: &mut Scheduler, start_ns: u64, total_ns: u64) -> u64 {
    let mut now = start_ns;
    let end = start_ns + total_ns;
    while now < end {
        scheduler.account(now);
        let decision = scheduler.decide(now);
        let next = decision.wake_at_ns.unwrap_or(end).min(end);
        now = next.max(now + 1);
    }
    scheduler.account(now);
    now
}

#[test]
fn shares_follow_weights() {
    let mut scheduler = Scheduler::new();
    scheduler.add(DomId(1), 256).unwrap();
    scheduler.add(DomId(2), 512).unwrap();
    scheduler.add(DomId(3), 256).unwrap();
    simulate(&mut scheduler, 0, 4_000_000_000);
    let time = |id| scheduler.entry(DomId(id)).unwrap().cpu_time_ns as f64;
    let total = time(1) + time(2) + time(3);
    assert!((time(2) / total - 0.5).abs() < 0.01, "{} {} {}", time(1), time(2), time(3));
    assert!((time(1) / time(3) - 1.0).abs() < 0.01);
}

#[test]
fn a_lone_domain_gets_no_slice_timer() {
    let mut scheduler = Scheduler::new();
    scheduler.add(DomId(1), 0).unwrap();
    let decision = scheduler.decide(0);
    assert_eq!(decision, Decision { next: Some(DomId(1)), wake_at_ns: None });
    assert_eq!(scheduler.entry(DomId(1)).unwrap().weight, DEFAULT_WEIGHT);
}

#[test]
fn slices_end_when_others_wait() {
    let mut scheduler = Scheduler::new();
    scheduler.add(DomId(1), 0).unwrap();
    scheduler.add(DomId(2), 0).unwrap();
    let first = scheduler.decide(0);
    assert_eq!(first.wake_at_ns, Some(TIME_SLICE_NS));
    scheduler.account(TIME_SLICE_NS);
    let second = scheduler.decide(TIME_SLICE_NS);
    assert_ne!(first.next, second.next, "the slice ended: the other domain runs");
    assert_eq!(scheduler.switches, 2);
}

#[test]
fn a_woken_domain_preempts_a_spinner_at_once() {
    let mut scheduler = Scheduler::new();
    scheduler.add(DomId(1), 0).unwrap(); // spinner
    scheduler.add(DomId(2), 0).unwrap(); // I/O domain
    scheduler.set_state(DomId(2), RunState::Blocked).unwrap();
    assert_eq!(scheduler.decide(0).next, Some(DomId(1)));
    // The spinner runs for a long time alone.
    let now = simulate(&mut scheduler, 0, 1_000_000_000);
    assert_eq!(scheduler.running(), Some(DomId(1)));
    // The I/O domain wakes: it runs at the very next decision, with no
    // banked credit from its long sleep beyond the boost.
    scheduler.set_state(DomId(2), RunState::Runnable).unwrap();
    scheduler.account(now);
    assert_eq!(scheduler.decide(now).next, Some(DomId(2)));
    let spinner = scheduler.entry(DomId(1)).unwrap().virtual_time_ns;
    let woken = scheduler.entry(DomId(2)).unwrap().virtual_time_ns;
    assert_eq!(woken, spinner - WAKE_BOOST_NS);
}

#[test]
fn timers_wake_blocked_domains_and_bound_the_idle() {
    let mut scheduler = Scheduler::new();
    scheduler.add(DomId(1), 0).unwrap();
    scheduler.set_timer(DomId(1), Some(5_000)).unwrap();
    scheduler.set_state(DomId(1), RunState::Blocked).unwrap();
    let decision = scheduler.decide(0);
    assert_eq!(decision, Decision { next: None, wake_at_ns: Some(5_000) });
    let mut fired = Vec::new();
    scheduler.expire_timers(4_999, &mut |id| fired.push(id));
    assert!(fired.is_empty());
    scheduler.expire_timers(5_000, &mut |id| fired.push(id));
    assert_eq!(fired, vec![DomId(1)]);
    assert_eq!(scheduler.entry(DomId(1)).unwrap().state, RunState::Runnable);
    assert_eq!(scheduler.decide(5_000).next, Some(DomId(1)));
}

#[test]
fn paused_domains_do_not_run_and_resume_as_they_were() {
    let mut scheduler = Scheduler::new();
    scheduler.add(DomId(1), 0).unwrap();
    scheduler.add(DomId(2), 0).unwrap();
    scheduler.set_state(DomId(2), RunState::Blocked).unwrap();
    scheduler.pause(DomId(1)).unwrap();
    scheduler.pause(DomId(2)).unwrap();
    assert_eq!(scheduler.decide(0).next, None);
    scheduler.unpause(DomId(1)).unwrap();
    scheduler.unpause(DomId(2)).unwrap();
    assert_eq!(scheduler.entry(DomId(1)).unwrap().state, RunState::Runnable);
    assert_eq!(scheduler.entry(DomId(2)).unwrap().state, RunState::Blocked);
    assert_eq!(scheduler.pause(DomId(9)), Err(ScheduleError::NoSuchDomain));
}

#[test]
fn an_event_while_paused_is_not_lost_on_unpause() {
    // Blocked waiting for an event, paused by the control domain, the
    // event arrives, unpaused: it must run and see the event, not go back
    // to sleep until a timer it may never have armed.
    let mut scheduler = Scheduler::new();
    scheduler.add(DomId(1), 0).unwrap();
    scheduler.add(DomId(2), 0).unwrap();
    scheduler.set_state(DomId(2), RunState::Blocked).unwrap();
    scheduler.pause(DomId(2)).unwrap();
    scheduler.wake(DomId(2)).unwrap();
    assert_eq!(scheduler.entry(DomId(2)).unwrap().state, RunState::Paused, "still paused");
    scheduler.unpause(DomId(2)).unwrap();
    assert_eq!(scheduler.entry(DomId(2)).unwrap().state, RunState::Runnable);
    // A blocked domain is woken; a runnable or dead one is left alone.
    scheduler.set_state(DomId(2), RunState::Blocked).unwrap();
    scheduler.wake(DomId(2)).unwrap();
    assert_eq!(scheduler.entry(DomId(2)).unwrap().state, RunState::Runnable);
    scheduler.set_state(DomId(1), RunState::Dead).unwrap();
    scheduler.wake(DomId(1)).unwrap();
    assert_eq!(scheduler.entry(DomId(1)).unwrap().state, RunState::Dead);
    assert_eq!(scheduler.wake(DomId(9)), Err(ScheduleError::NoSuchDomain));
}

#[test]
fn a_new_domain_starts_level_with_the_queue() {
    let mut scheduler = Scheduler::new();
    scheduler.add(DomId(1), 0).unwrap();
    let now = simulate(&mut scheduler, 0, 500_000_000);
    scheduler.add(DomId(2), 0).unwrap();
    assert_eq!(scheduler.entry(DomId(2)).unwrap().virtual_time_ns, scheduler.entry(DomId(1)).unwrap().virtual_time_ns);
    simulate(&mut scheduler, now, 1_000_000_000);
    let one = scheduler.entry(DomId(1)).unwrap().cpu_time_ns;
    let two = scheduler.entry(DomId(2)).unwrap().cpu_time_ns;
    assert!(two.abs_diff(one - 500_000_000) <= TIME_SLICE_NS, "{one} {two}");
}

#[test]
fn weights_are_bounded_and_removal_forgets() {
    let mut scheduler = Scheduler::new();
    assert_eq!(scheduler.add(DomId(1), MAX_WEIGHT + 1), Err(ScheduleError::BadWeight));
    scheduler.add(DomId(1), 0).unwrap();
    scheduler.decide(0);
    scheduler.remove(DomId(1));
    assert_eq!(scheduler.running(), None);
    assert_eq!(scheduler.decide(1).next, None);
}

#[test]
fn yield_lets_the_others_run_first() {
    let mut scheduler = Scheduler::new();
    scheduler.add(DomId(1), 0).unwrap();
    scheduler.add(DomId(2), 0).unwrap();
    scheduler.add(DomId(3), 0).unwrap();
    assert_eq!(scheduler.decide(0).next, Some(DomId(1)));
    scheduler.yield_now(DomId(1)).unwrap();
    assert_eq!(scheduler.decide(0).next, Some(DomId(2)));
    scheduler.yield_now(DomId(2)).unwrap();
    assert_eq!(scheduler.decide(0).next, Some(DomId(3)));
    // Alone, a yield changes nothing.
    let mut alone = Scheduler::new();
    alone.add(DomId(1), 0).unwrap();
    alone.yield_now(DomId(1)).unwrap();
    assert_eq!(alone.decide(0).next, Some(DomId(1)));
    assert_eq!(alone.wake_at(), None);
}
