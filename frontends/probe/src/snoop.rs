//! `snoop`: a domain that tries to reach another domain's grants and event
//! channels without being invited, and to confuse `grant_table_op` with bad
//! arguments. Every attempt must be refused; each is logged as
//! `snoop: map: status <GNTST_…> (rw d1 ref 8)` or `snoop: <what>: result:
//! <errno>`; anything that succeeds is logged with `UNEXPECTED` and makes the
//! probe shut down as crashed.

use guest_runtime::event::{self, Port};
use guest_runtime::grant::{self, CopySide, CopySpec, Failure};
use guest_runtime::hypercall::foreign;
use guest_runtime::page::Page;
use guest_runtime::{ShutdownReason, StartInfo};
use log::{error, info};
use xen_abi::event_channel as evtchn;
use xen_abi::grant_table as gnttab;
use xen_abi::hypercall::{EVENT_CHANNEL_OP, GRANT_TABLE_OP};
use xen_abi::layout::GRANT_WINDOW_BASE;

use crate::hostile::HYPERVISOR_ADDRESS;
use crate::measure::Outcome;
use crate::rings::{optional, required, FIRST_TEST_REF, MAX_DOMID, MAX_PORT, MAX_REF};

/// Counts what should have been refused and was not.
#[derive(Default)]
struct Tally {
    unexpected: u32,
}

impl Tally {
    /// Logs a grant operation's failure (expected) or its success (not):
    /// `snoop: <what>: status <GNTST_…> (<detail>)`.
    fn grant(&mut self, what: &str, detail: &dyn core::fmt::Display, result: Result<(), Failure>) {
        match result {
            Ok(()) => {
                error!("snoop: {what}: status GNTST_okay ({detail}): UNEXPECTED");
                self.unexpected += 1;
            }
            Err(Failure::Status(status)) => info!("snoop: {what}: status {status} ({detail})"),
            Err(failure) => info!("snoop: {what}: result: {failure} ({detail})"),
        }
    }

    /// Logs a raw hypercall result: negative expected.
    fn raw(&mut self, what: &str, result: Option<i64>) {
        match result {
            Some(value) if value < 0 => info!("snoop: {what}: result: {}", Outcome(value)),
            Some(value) => {
                error!("snoop: {what}: UNEXPECTED: result: {}", Outcome(value));
                self.unexpected += 1;
            }
            None => error!("snoop: {what}: not made (an argument names our memory)"),
        }
    }
}

/// `action=snoop victim=<domid> ref=<r> port=<p>`.
pub fn snoop(info: &StartInfo) -> ShutdownReason {
    let (Some(victim), Some(reference), Some(port)) = (
        required(info, "snoop", "victim", MAX_DOMID),
        optional(info, "ref", FIRST_TEST_REF, 0, MAX_REF),
        optional(info, "port", 1, 1, MAX_PORT),
    ) else {
        return ShutdownReason::Crash;
    };
    let (victim, reference, port) = (victim as u16, reference as u32, Port(port as u32));
    let mut tally = Tally::default();

    // Map the victim's grant, writable and read-only.
    for (mode, readonly) in [("rw", false), ("ro", true)] {
        let result = grant::map(victim, reference, readonly).map(|mapping| {
            error!("snoop: map {mode}: mapped d{victim} ref {reference} at {:#x}", mapping.address());
            if let Err((_, failure)) = grant::unmap(mapping) {
                error!("snoop: unmap: {failure}");
            }
        });
        tally.grant("map", &format_args!("{mode} d{victim} ref {reference}"), result);
    }

    // Bind the victim's port (unbound for someone else, or connected).
    match event::bind_interdomain(victim, port) {
        Ok(local) => {
            error!("snoop: bind: UNEXPECTED: bound port {local} to d{victim} port {port}");
            tally.unexpected += 1;
            let _ = event::close(local);
        }
        Err(errno) => info!("snoop: bind: result: {errno}"),
    }

    // Send on ports we never allocated (but not those the builder gave us).
    for number in 1..=8u32 {
        if number == info.console_evtchn || number == info.store_evtchn {
            continue;
        }
        match event::send(Port(number)) {
            Ok(()) => {
                error!("snoop: send port {number}: UNEXPECTED: result: ok");
                tally.unexpected += 1;
            }
            Err(errno) => info!("snoop: send port {number}: result: {errno}"),
        }
    }

    // Copy the victim's granted page into ours, and ours into it.
    let page = Page::new();
    let victims = CopySide::Granted { domid: victim, reference, offset: 0 };
    let ours = CopySide::Local { page: page.buffer(), offset: 0 };
    let from = grant::copy(&CopySpec { source: victims, dest: ours, length: 64 });
    tally.grant("copy", &format_args!("from d{victim} ref {reference}"), from);
    let to = grant::copy(&CopySpec { source: ours, dest: victims, length: 64 });
    tally.grant("copy", &format_args!("to d{victim} ref {reference}"), to);

    // Bad calls: counts out of 1..=64, pointers to nothing of ours.
    let map = gnttab::MAP_GRANT_REF;
    tally.raw("map 65 elements", foreign(GRANT_TABLE_OP, [map, HYPERVISOR_ADDRESS, 65, 0, 0]));
    tally.raw("map 2^32+1 elements", foreign(GRANT_TABLE_OP, [map, HYPERVISOR_ADDRESS, (1 << 32) | 1, 0, 0]));
    tally.raw("map 0 elements", foreign(GRANT_TABLE_OP, [map, HYPERVISOR_ADDRESS, 0, 0, 0]));
    tally.raw("map from the hypervisor", foreign(GRANT_TABLE_OP, [map, HYPERVISOR_ADDRESS, 1, 0, 0]));
    tally.raw("map from the grant window", foreign(GRANT_TABLE_OP, [map, GRANT_WINDOW_BASE, 1, 0, 0]));
    tally.raw("map from 0x1000", foreign(GRANT_TABLE_OP, [map, 0x1000, 1, 0, 0]));
    tally.raw("copy from the hypervisor", foreign(GRANT_TABLE_OP, [gnttab::COPY, HYPERVISOR_ADDRESS, 64, 0, 0]));
    tally.raw("grant sub-op 77", foreign(GRANT_TABLE_OP, [77, 0x1000, 1, 0, 0]));
    tally.raw("send from the hypervisor", foreign(EVENT_CHANNEL_OP, [evtchn::SEND, HYPERVISOR_ADDRESS, 0, 0, 0]));
    tally.raw("event sub-op 77", foreign(EVENT_CHANNEL_OP, [77, 0x1000, 0, 0, 0]));

    if tally.unexpected > 0 {
        error!("snoop: UNEXPECTED: {} attempts succeeded", tally.unexpected);
        return ShutdownReason::Crash;
    }
    info!("snoop: every attempt refused");
    ShutdownReason::Poweroff
}
