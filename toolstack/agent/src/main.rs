//! `agent`: the control domain's kernel. It serves the store (Xen's
//! xenstored) to every other domain over the ring each one's builder-made
//! store page carries, writes the device nodes the toolstack names on its
//! command line so frontends and backends can find each other, and cleans
//! up after a domain dies (`VIRQ_DOM_EXC`).
//!
//! Command line: `devices=KIND:FRONT:BACK:ID,...` (see `devices.rs`);
//! `until=alone` powers off once every other domain is gone (tests and
//! scripted machines), otherwise it serves for ever.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]
// reason: a binary's modules are private to it; `pub` marks what a module
// offers the rest of the binary, which this lint cannot see.
#![allow(unreachable_pub)]

extern crate alloc;

mod commands;
mod devices;
mod operator;
mod service;

use alloc::vec::Vec;

use guest_runtime::command_line::find;
use guest_runtime::domctl;
use guest_runtime::event::{self, EventLoop};
use guest_runtime::{ShutdownReason, StartInfo};
use log::{error, info, warn};
use xen_abi::timer::{VIRQ_CONSOLE, VIRQ_DOM_EXC};

use crate::devices::Device;
use crate::operator::Operator;
use crate::service::Service;

/// How often a console stream is fed while open.
const CONSOLE_POLL_NS: u64 = 100_000_000;

guest_runtime::entry!(domain_main);

fn domain_main(info: &StartInfo) -> ShutdownReason {
    let devices = match devices::parse(find(info.command_line(), "devices").unwrap_or("")) {
        Ok(devices) => devices,
        Err(problem) => {
            error!("devices=: entry '{}': expected {}", problem.entry, problem.expected);
            return ShutdownReason::Crash;
        }
    };
    let until_alone = find(info.command_line(), "until") == Some("alone");
    let Some(mut events) = EventLoop::this_domain() else {
        error!("no shared-info page: cannot wait for events");
        return ShutdownReason::Crash;
    };
    let exits = match event::bind_virq(VIRQ_DOM_EXC) {
        Ok(port) => port,
        Err(errno) => {
            error!("cannot bind VIRQ_DOM_EXC: {errno:?}");
            return ShutdownReason::Crash;
        }
    };
    let own = info.domid;
    let mut service = Service::new(own);
    for domain in domctl::list_domains() {
        match domain {
            Ok(found) if found.domain != own => {
                if let Err(why) = service.introduce(found.domain, found.name()) {
                    warn!("store: domain {} ({}) not served: {why}", found.domain, found.name());
                }
            }
            Ok(_) => {}
            Err(errno) => warn!("listing domains: {errno:?}"),
        }
    }
    for device in &devices {
        match device.publish(&mut service.store, service.admin) {
            Ok(()) => info!("device {}: frontend {} backend {}", device.kind, device.frontend_path(), device.backend_path()),
            Err(error) => warn!("device {}:{}:{}:{}: {}", device.kind, device.frontend, device.backend, device.id, error.name()),
        }
    }
    info!("store: serving {} domains; {} devices", service.domains().count(), devices.len());
    // The operator's channel, if the policy gives it to us.
    let console = match event::bind_virq(VIRQ_CONSOLE) {
        Ok(port) => {
            info!("operator: channel ready (VIRQ_CONSOLE on port {})", port.0);
            Some(port)
        }
        Err(errno) => {
            warn!("operator: no channel: VIRQ_CONSOLE: {errno:?}");
            None
        }
    };
    let mut operator = Operator::new();
    if console.is_some() {
        // Bytes may have come before we bound the VIRQ.
        operator.on_input(&mut service);
    }
    loop {
        let (gone, more) = service.run();
        // A domain that broke its ring was released after the run's last
        // round, and its devices go now: both change the store (its home
        // and device nodes go, `@releaseDomain` fires), and the watch
        // events that queues wait in the store until a run delivers them.
        // Run again before blocking, or they wait for an unrelated wake-up.
        let more = more || !gone.is_empty();
        for domid in gone {
            withdraw_devices(&mut service, &devices, domid);
        }
        let mut interest = service.ports();
        interest.insert(exits);
        if let Some(port) = console {
            interest.insert(port);
        }
        let waited = if more {
            // The store still has work: look at the other events without blocking.
            Ok(events.take(&interest))
        } else if operator.streaming() {
            events.wait_until(&interest, guest_runtime::time::system_time_ns().saturating_add(CONSOLE_POLL_NS))
        } else {
            events.wait_for(&interest)
        };
        let fired = match waited {
            Ok(fired) => fired,
            Err(errno) => {
                error!("waiting for events: {errno:?}");
                return ShutdownReason::Crash;
            }
        };
        if console.is_some_and(|port| fired.contains(port)) {
            operator.on_input(&mut service);
        }
        operator.poll();
        if fired.contains(exits) {
            reap(&mut service, &devices);
            operator.apply_exit_actions(&mut service);
            if until_alone && service.domains().next().is_none() {
                info!("store: every other domain is gone; powering off");
                return ShutdownReason::Poweroff;
            }
        }
    }
}

/// Releases the connections of domains that died or shut down.
fn reap(service: &mut Service, devices: &[Device]) {
    let gone: Vec<u16> = service
        .domains()
        .filter(|&domid| match domctl::domain_info(domid) {
            Ok(found) => found.state.shutdown(),
            Err(_) => true,
        })
        .collect();
    for domid in gone {
        withdraw_devices(service, devices, domid);
    }
}

/// Logs a domain's store figures, releases it and withdraws its devices.
fn withdraw_devices(service: &mut Service, devices: &[Device], domid: u16) {
    if let Some(figures) = service.release(domid) {
        info!(
            "store: domain {} gone: {} requests served, {} of them while another domain's requests were queued; peak backlog {}; {} watch events dropped",
            figures.domid, figures.served, figures.served_beside_backlog, figures.peak_backlog, figures.dropped_events
        );
    }
    for device in devices.iter().filter(|device| u16::try_from(device.frontend) == Ok(domid)) {
        device.withdraw(&mut service.store, service.admin);
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("agent is a domain kernel: build it with --target x86_64-unknown-none and boot it under xen-core.");
    std::process::exit(2);
}
