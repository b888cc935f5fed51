//! `blk-pattern [id=51712] [check=1]`: the guest's half of a virtual block
//! device, over the real store, grants and events, with `blkfront`:
//! finds its vbd's backend (`DevicePaths::discover_backend`), reads what
//! the backend published (`sectors`, `sector-size`, `info`) and the
//! toolstack's `mode`, handshakes as the frontend (ring page and port in
//! one transaction, Initialised, waits for Connected), then:
//!
//! - a read-write disk: writes a known pattern over every sector (each
//!   512-byte sector starts with its sector number, then [`TAG`], then
//!   bytes counting up from the sector number; see [`pattern`]), flushes,
//!   reads everything back and compares;
//! - a read-only disk (`mode` `r`): tries one write, which must be
//!   answered with an error status, then reads everything back and, with
//!   `check=1`, compares it with the pattern (the test wrote it there).
//!
//! Then it closes the device (Closing, revokes every grant, Closed) and
//! logs one line with the counts.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use blkfront::{Blkfront, Completion, DomId, FrontendError, GrantError, GrantPages, GrantRef};
use guest_runtime::event::{self, EventLoop, Port, PortSet};
use guest_runtime::grant::{self as runtime_grant, GrantTable};
use guest_runtime::page::Page;
use guest_runtime::store::{self, EventWait, StoreConnection, StoreError};
use guest_runtime::time::system_time_ns;
use guest_runtime::xenbus::{self, DevicePaths};
use guest_runtime::{ShutdownReason, StartInfo};
use log::{error, info};
use xenstore::checked::XenbusState;
use xenstore::XsError;

use crate::rings::{optional, FIRST_TEST_REF};

const WHAT: &str = "blk-pattern";
/// The tag in every sector of the pattern.
pub const TAG: [u8; 8] = *b"blkpat01";
/// Bytes in a sector.
const SECTOR: usize = 512;
/// Sectors per request (11 pages of 8).
const SECTORS_PER_REQUEST: u64 = 88;
/// Data pages to grant from (enough for four full requests in flight).
const DATA_PAGES: usize = 44;
/// How long one handshake step or one response may take.
const STEP_NS: u64 = 30_000_000_000;

/// Sector `sector` of the pattern.
pub fn pattern(sector: u64) -> [u8; SECTOR] {
    let mut bytes = [0u8; SECTOR];
    bytes[..8].copy_from_slice(&sector.to_le_bytes());
    bytes[8..16].copy_from_slice(&TAG);
    for (index, byte) in bytes.iter_mut().enumerate().skip(16) {
        *byte = (sector as u8).wrapping_add(index as u8);
    }
    bytes
}

/// Data pages and this domain's grant table, for `blkfront`.
struct RuntimeGrants {
    table: GrantTable<'static>,
    pages: Vec<Page>,
    free_refs: Vec<u32>,
}

impl GrantPages for RuntimeGrants {
    type Page = usize;

    fn zero(&mut self, page: usize) {
        if let Some(page) = self.pages.get_mut(page) {
            page.zero();
        }
    }

    fn write(&mut self, page: usize, offset_bytes: usize, data: &[u8]) {
        if let Some(page) = self.pages.get(page) {
            page.shared().copy_in(offset_bytes, data);
        }
    }

    fn read(&mut self, page: usize, offset_bytes: usize, data: &mut [u8]) {
        if let Some(page) = self.pages.get(page) {
            page.shared().copy_out(offset_bytes, data);
        }
    }

    fn grant(
        &mut self,
        page: usize,
        backend: DomId,
        read_only: bool,
    ) -> Result<GrantRef, GrantError> {
        let pfn = self
            .pages
            .get(page)
            .and_then(Page::pfn)
            .ok_or(GrantError::Invalid)?;
        let reference = self.free_refs.pop().ok_or(GrantError::TableFull)?;
        match self
            .table
            .grant_access(reference, backend.0, pfn, read_only)
        {
            Ok(()) => Ok(GrantRef(reference)),
            Err(_) => {
                self.free_refs.push(reference);
                Err(GrantError::Invalid)
            }
        }
    }

    fn revoke(&mut self, grant: GrantRef) -> Result<(), GrantError> {
        match self.table.end_access(grant.0) {
            Ok(()) => {
                self.free_refs.push(grant.0);
                Ok(())
            }
            Err(runtime_grant::GrantError::Busy(_)) => Err(GrantError::InUse),
            Err(_) => Err(GrantError::Invalid),
        }
    }
}

/// The store connection and the domain's one event loop.
struct Bus {
    store: StoreConnection<'static>,
    port: Port,
    events: EventLoop<'static>,
}

impl Bus {
    fn with<T>(
        &mut self,
        body: impl FnOnce(&mut StoreConnection<'static>, &mut EventWait<'_, 'static>) -> T,
    ) -> T {
        let mut wait = EventWait {
            port: self.port,
            events: &mut self.events,
        };
        body(&mut self.store, &mut wait)
    }

    fn await_state(
        &mut self,
        path: &str,
        accept: impl Fn(XenbusState) -> bool,
    ) -> Result<XenbusState, StoreError> {
        let deadline = system_time_ns().saturating_add(STEP_NS);
        self.with(|store, wait| xenbus::wait_for_state(store, wait, path, deadline, accept))
    }

    fn set_state(&mut self, path: &str, state: XenbusState) -> Result<(), StoreError> {
        self.with(|store, wait| store.write_state(wait, path, state))
    }

    fn read(&mut self, path: &str) -> Result<Vec<u8>, StoreError> {
        self.with(|store, wait| store.read(wait, 0, path))
    }
}

/// What one pass over the disk saw.
#[derive(Default)]
struct Tally {
    requests: u64,
    sectors: u64,
    errors: u64,
    first_status: Option<i16>,
    mismatches: u64,
}

impl Tally {
    fn note(&mut self, completion: &Completion, check: bool) {
        self.requests += 1;
        if !completion.is_ok() {
            self.errors += 1;
            self.first_status.get_or_insert(completion.status);
            return;
        }
        self.sectors += u64::from(completion.sector_count);
        if check {
            for (index, sector) in completion.data.chunks(SECTOR).enumerate() {
                if sector != pattern(completion.sector + index as u64) {
                    self.mismatches += 1;
                }
            }
        }
    }
}

/// Runs requests `0..count` (each made by `submit`) with as many in flight
/// as the ring and the pages allow, noting each completion.
fn pump(
    front: &mut Blkfront<'_, RuntimeGrants>,
    events: &mut EventLoop<'static>,
    port: Port,
    count: u64,
    check: bool,
    mut submit: impl FnMut(&mut Blkfront<'_, RuntimeGrants>, u64) -> Result<u64, FrontendError>,
) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let (mut next, mut outstanding) = (0, 0u64);
    loop {
        while next < count {
            match submit(front, next) {
                Ok(_) => {
                    next += 1;
                    outstanding += 1;
                }
                Err(FrontendError::RingFull | FrontendError::NoFreePages) if outstanding > 0 => {
                    break
                }
                Err(problem) => return Err(format!("submitting request {next}: {problem:?}")),
            }
        }
        if front
            .publish()
            .map_err(|problem| format!("publish: {problem:?}"))?
            .is_required()
        {
            let _ = event::send(port);
        }
        if outstanding == 0 {
            return Ok(tally);
        }
        match front
            .poll()
            .map_err(|problem| format!("response: {problem:?}"))?
        {
            Some(completion) => {
                outstanding -= 1;
                tally.note(&completion, check);
            }
            None => {
                let deadline = system_time_ns().saturating_add(STEP_NS);
                match events.wait_until(&PortSet::of(port), deadline) {
                    Ok(fired) if !fired.is_empty() => {}
                    _ => {
                        return Err(format!(
                            "no response within {} s ({outstanding} outstanding)",
                            STEP_NS / 1_000_000_000
                        ))
                    }
                }
            }
        }
    }
}

fn fail(step: &str, problem: impl core::fmt::Display) -> ShutdownReason {
    error!("{WHAT}: {step}: {problem}");
    ShutdownReason::Crash
}

/// `action=blk-pattern`.
pub fn blk_pattern(info: &StartInfo) -> ShutdownReason {
    let (Some(id), Some(check)) = (
        optional(info, "id", 51712, 0, 0xffff_ffff),
        optional(info, "check", 1, 0, 1),
    ) else {
        return ShutdownReason::Crash;
    };
    let (Ok((store, port)), Some(events), Some(table)) = (
        store::open(),
        EventLoop::this_domain(),
        GrantTable::this_domain(),
    ) else {
        return fail("setup", "no store, event loop or grant table");
    };
    let mut bus = Bus {
        store,
        port,
        events,
    };
    let paths = match bus.with(|store, wait| {
        DevicePaths::discover_backend(store, wait, info.domid.into(), "vbd", id as u32)
    }) {
        Ok(paths) => paths,
        Err(problem) => return fail("finding the backend", problem),
    };
    let back = paths.backend_id as u16;
    let (own_state, back_state) = (paths.frontend_state(), paths.backend_state());
    info!(
        "{WHAT}: vbd {id}: backend is d{back} at {}",
        paths.backend()
    );
    if let Err(problem) = bus.with(|store, wait| store.watch(wait, &back_state, "back")) {
        return fail("watching the backend", problem);
    }
    if let Err(problem) = bus.await_state(&back_state, |state| state == XenbusState::InitWait) {
        return fail("waiting for InitWait", problem);
    }
    let base = paths.backend();
    let number = |bytes: Vec<u8>| {
        core::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
    };
    let described = (|| {
        Ok::<_, StoreError>((
            bus.read(&format!("{base}/sectors"))?,
            bus.read(&format!("{base}/sector-size"))?,
            bus.read(&format!("{base}/mode"))?,
        ))
    })();
    let (sectors, read_only) = match described {
        Ok((sectors, size, mode)) => match (number(sectors), number(size)) {
            (Some(sectors), Some(512)) if sectors > 0 => (sectors, mode == b"r"),
            _ => return fail("the backend's disk", "sectors or sector-size malformed"),
        },
        Err(problem) => return fail("reading sectors, sector-size and mode", problem),
    };
    info!(
        "{WHAT}: disk of {sectors} sectors, {}",
        if read_only { "read-only" } else { "read-write" }
    );
    // The ring: a zeroed page of ours, granted, initialized by blkfront
    // before the backend may look (Initialised comes after).
    let ring_ref = FIRST_TEST_REF as u32;
    let mut ring_page = Page::new();
    ring_page.zero();
    let Some(ring_pfn) = ring_page.pfn() else {
        return fail("ring", "page outside RAM");
    };
    if let Err(problem) = table.grant_access(ring_ref, back, ring_pfn, false) {
        return fail("granting the ring", problem);
    }
    let channel = match event::alloc_unbound(back) {
        Ok(port) => port,
        Err(errno) => return fail("alloc_unbound", errno),
    };
    let data_refs = (ring_ref + 1..ring_ref + 1 + DATA_PAGES as u32)
        .rev()
        .collect();
    let grants = RuntimeGrants {
        table,
        pages: (0..DATA_PAGES).map(|_| Page::new()).collect(),
        free_refs: data_refs,
    };
    let mut front = Blkfront::new(
        ring_page.shared(),
        grants,
        (0..DATA_PAGES).collect(),
        DomId(back),
        id as u16,
    );
    let front_dir = paths.frontend();
    let published = bus.with(|store, wait| loop {
        let tx = store.transaction_start(wait)?;
        store.write(
            wait,
            tx,
            &format!("{front_dir}/ring-ref"),
            format!("{ring_ref}").as_bytes(),
        )?;
        store.write(
            wait,
            tx,
            &format!("{front_dir}/event-channel"),
            format!("{}", channel.0).as_bytes(),
        )?;
        match store.transaction_end(wait, tx, true) {
            Err(StoreError::Store(XsError::Again)) => continue,
            other => break other,
        }
    });
    if let Err(problem) =
        published.and_then(|()| bus.set_state(&own_state, XenbusState::Initialised))
    {
        return fail("publishing the ring", problem);
    }
    if let Err(problem) = bus.await_state(&back_state, |state| state == XenbusState::Connected) {
        return fail("waiting for Connected", problem);
    }
    if let Err(problem) = bus.set_state(&own_state, XenbusState::Connected) {
        return fail("Connected", problem);
    }
    info!("{WHAT}: connected to d{back} (ring ref {ring_ref}, port {channel})");
    let requests = sectors.div_ceil(SECTORS_PER_REQUEST);
    let chunk = |index: u64| {
        (
            index * SECTORS_PER_REQUEST,
            SECTORS_PER_REQUEST.min(sectors - index * SECTORS_PER_REQUEST),
        )
    };
    let write_chunk = |front: &mut Blkfront<'_, RuntimeGrants>, index: u64| {
        let (first, count) = chunk(index);
        let data: Vec<u8> = (first..first + count).flat_map(pattern).collect();
        front.submit_write(first, &data)
    };
    let read_chunk = |front: &mut Blkfront<'_, RuntimeGrants>, index: u64| {
        let (first, count) = chunk(index);
        front.submit_read(first, count as u32)
    };
    let mut outcome = true;
    let result = if read_only {
        (|| {
            let refused = pump(&mut front, &mut bus.events, channel, 1, false, write_chunk)?;
            let status = refused.first_status.unwrap_or(0);
            if refused.errors == 1 {
                info!("{WHAT}: write to the read-only disk refused with status {status}");
            } else {
                error!("{WHAT}: UNEXPECTED: a write to the read-only disk was accepted");
                outcome = false;
            }
            let read = pump(
                &mut front,
                &mut bus.events,
                channel,
                requests,
                check == 1,
                read_chunk,
            )?;
            info!(
                "{WHAT}: read {} sectors of the read-only disk in {} requests ({} errors): {} mismatches{}",
                read.sectors,
                read.requests,
                read.errors,
                read.mismatches,
                if check == 1 { "" } else { " (not checked)" }
            );
            outcome &= read.errors == 0 && read.mismatches == 0 && read.sectors == sectors;
            Ok::<(), String>(())
        })()
    } else {
        (|| {
            let written = pump(
                &mut front,
                &mut bus.events,
                channel,
                requests,
                false,
                write_chunk,
            )?;
            let flushed = pump(
                &mut front,
                &mut bus.events,
                channel,
                1,
                false,
                |front, _| front.submit_flush(),
            )?;
            let read = pump(
                &mut front,
                &mut bus.events,
                channel,
                requests,
                true,
                read_chunk,
            )?;
            info!(
                "{WHAT}: wrote {} sectors in {} requests ({} errors), flushed ({} errors), read back {} sectors ({} errors): {} mismatches",
                written.sectors, written.requests, written.errors, flushed.errors, read.sectors, read.errors, read.mismatches
            );
            outcome &= written.errors == 0
                && flushed.errors == 0
                && read.errors == 0
                && read.mismatches == 0
                && read.sectors == sectors;
            Ok::<(), String>(())
        })()
    };
    if let Err(problem) = result {
        error!("{WHAT}: {problem}");
        outcome = false;
    }
    // `hold_ms=`: stay connected a while (the default machine keeps banking
    // up while the untrusted domain attacks it).
    if let Some(ms) = guest_runtime::command_line::find(info.command_line(), "hold_ms").and_then(|text| text.parse::<u64>().ok()) {
        info!("{WHAT}: holding the device for {ms} ms");
        let _ = guest_runtime::time::sleep_ns(ms.saturating_mul(1_000_000));
    }
    // Close: say Closing, let the backend let go, revoke everything, Closed.
    if let Err(problem) = bus.set_state(&own_state, XenbusState::Closing) {
        return fail("Closing", problem);
    }
    if let Err(problem) = bus.await_state(&back_state, |state| state >= XenbusState::Closing) {
        return fail("waiting for the backend to close", problem);
    }
    let report = front.disconnect();
    drop(front);
    let ring_revoked = table.end_access(ring_ref);
    let _ = event::close(channel);
    if let Err(problem) = bus.set_state(&own_state, XenbusState::Closed) {
        return fail("Closed", problem);
    }
    let _ = bus.await_state(&back_state, |state| state == XenbusState::Closed);
    info!(
        "{WHAT}: disconnected: {} grants revoked, {} still mapped, ring {}",
        report.revoked,
        report.still_mapped,
        if ring_revoked.is_ok() {
            "revoked"
        } else {
            "STILL MAPPED"
        }
    );
    if outcome && report.still_mapped == 0 && ring_revoked.is_ok() {
        info!("{WHAT}: ok");
        ShutdownReason::Poweroff
    } else {
        error!("{WHAT}: FAILED");
        ShutdownReason::Crash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sector_of_the_pattern_names_itself() {
        let sector = pattern(0x0102);
        assert_eq!(&sector[..8], &0x0102u64.to_le_bytes());
        assert_eq!(&sector[8..16], b"blkpat01");
        assert_eq!(sector[16], 0x02u8.wrapping_add(16));
        assert_ne!(pattern(1), pattern(2));
    }
}
