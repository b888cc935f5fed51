//! The store and the split-device handshake (issue 8): the control domain's
//! agent serves the store; a backend (driver_t) and a frontend (banking_t)
//! find each other through it, connect, close, restart and reconnect with a
//! dummy device, while a third domain (untrusted_t) is refused the pair's
//! nodes and floods the store.

use std::time::Duration;

use xen_tests::machine::{DomainConfig, Machine};
use xen_tests::Outcome;

fn store_machine(attacker: bool) -> Machine {
    let mut machine = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::agent("devices=dummy:3:2:0 until=alone"))
        .domain(DomainConfig::probe("back", "action=dummy-back front=3 rounds=2").label("driver_t"))
        .domain(DomainConfig::probe("front", "action=dummy-front rounds=2").label("banking_t"));
    if attacker {
        machine = machine.domain(DomainConfig::probe("attacker", "action=store-attack victim=3 backend=2 flood=8000"));
    }
    machine
}

/// `store: domain N gone: S requests served, B of them while ...`: (S, B).
fn served(log: &str, domain: u32) -> (u64, u64) {
    let prefix = format!("store: domain {domain} gone: ");
    let line = log.lines().find_map(|line| line.split_once(&prefix).map(|(_, rest)| rest.to_string()));
    let line = line.unwrap_or_else(|| panic!("no figures for domain {domain}"));
    let numbers: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|word| word.parse().ok()).collect();
    (numbers[0], numbers[1])
}

#[test]
fn frontend_and_backend_connect_close_restart_and_reconnect_through_the_store() {
    let boot = store_machine(false).boot(Duration::from_secs(90));
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("store: domain 2 (back) connected")
        .expect_log("store: domain 3 (front) connected")
        .expect_log("device dummy: frontend /local/domain/3/device/dummy/0 backend /local/domain/2/backend/dummy/3/0")
        .expect_log("dummy-front: backend is d2 at /local/domain/2/backend/dummy/3/0")
        .expect_log("dummy-back: round 1: connected to d3")
        .expect_log("dummy-front: round 1: pong received")
        .expect_log("dummy-front: round 1: backend is Closing; closing too")
        .expect_log("dummy-back: round 1: closed; restarting")
        .expect_log("dummy-front: backend restarted; reconnecting")
        .expect_log("dummy-back: round 2: connected to d3")
        .expect_log("dummy-front: round 2: pong received")
        .expect_log("dummy-back: frontend is closing")
        .expect_log("dummy-front: disconnected cleanly after 2 rounds")
        .expect_log("dummy-back: 2 rounds done")
        .expect_log("store: every other domain is gone; powering off")
        .expect_log(": ok")
        .expect_no_log("avc: denied")
        .expect_no_log("crashed")
        .expect_no_log("LEAK");
}

#[test]
fn a_third_domain_is_refused_the_pairs_nodes_and_its_flood_does_not_hold_them_back() {
    let boot = store_machine(true).boot(Duration::from_secs(180));
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("store-attack: read the frontend's state: refused (EACCES)")
        .expect_log("store-attack: read the backend's state: refused (EACCES)")
        .expect_log("store-attack: write the frontend's state: refused (EACCES)")
        .expect_log("store-attack: make a node in the backend's directory: refused (EACCES)")
        .expect_log("store-attack: watch the frontend's directory: refused (EACCES)")
        .expect_log("store-attack: watch the backend's directory: refused (EACCES)")
        .expect_log("store-attack: 128 watches set, 32 refused over quota")
        .expect_log("store-attack: 8000 pipelined requests: 8000 replies")
        .expect_log("store-attack: 6 of 6 probes of the pair's nodes refused")
        .expect_log("dummy-front: disconnected cleanly after 2 rounds")
        .expect_log("dummy-back: 2 rounds done")
        .expect_no_log("UNEXPECTED")
        .expect_no_log("crashed")
        .expect_no_log("LEAK");
    // The store's counters: the pair was answered while the flood waited.
    let (back, back_beside) = served(&boot.log, 2);
    let (front, front_beside) = served(&boot.log, 3);
    let (flood, _) = served(&boot.log, 4);
    eprintln!("served: back {back} ({back_beside} beside a backlog), front {front} ({front_beside}), attacker {flood}");
    assert!(flood > 8000, "the attacker's flood was served: {flood}");
    assert!(back_beside > 0 && front_beside > 0, "the pair was served while the flood was queued: {back_beside} {front_beside}");
}
