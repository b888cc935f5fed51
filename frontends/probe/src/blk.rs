//! `blk-pattern [id=51712] [check=1] [rounds=1] [persistent=1]`: the
//! guest's half of a virtual block device, over the real store, grants and
//! events, with `blkfront`:
//! finds its vbd's backend (`DevicePaths::discover_backend`), reads what
//! the backend published (`sectors`, `sector-size`, `info`) and the
//! toolstack's `mode`, handshakes as the frontend (ring page and port in
//! one transaction, with `feature-persistent` when the backend offers it,
//! Initialised, waits for Connected), then:
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
//! logs one line with the counts. With `rounds=N` it then starts again
//! (Initialising; the backend publishes again) and runs the pattern once
//! more over a fresh ring, N connections in all, first reading back and
//! checking what the previous connection wrote.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use blkfront::{Blkfront, Completion, DomId, FrontendError, GrantError, GrantPages, GrantRef};
use guest_runtime::event::{self, EventLoop, Port, PortSet};
use guest_runtime::grant::{self as runtime_grant, GrantTable};
use guest_runtime::page::Page;
use guest_runtime::time::system_time_ns;
use guest_runtime::{ShutdownReason, StartInfo};
use log::{error, info};

use crate::rings::{optional, FIRST_TEST_REF};
use crate::vbd_link::{VbdLink, STEP_NS};

const WHAT: &str = "blk-pattern";
/// The tag in every sector of the pattern.
pub const TAG: [u8; 8] = *b"blkpat01";
/// Bytes in a sector.
const SECTOR: usize = 512;
/// Sectors per request (11 pages of 8).
const SECTORS_PER_REQUEST: u64 = 88;
/// Data pages to grant from (enough for four full requests in flight).
const DATA_PAGES: usize = 44;

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
    // A small index: page lists are moved on every request.
    type Page = u16;

    fn zero(&mut self, page: u16) {
        if let Some(page) = self.pages.get_mut(usize::from(page)) {
            page.zero();
        }
    }

    fn write(&mut self, page: u16, offset_bytes: usize, data: &[u8]) {
        if let Some(page) = self.pages.get(usize::from(page)) {
            page.shared().copy_in(offset_bytes, data);
        }
    }

    fn read(&mut self, page: u16, offset_bytes: usize, data: &mut [u8]) {
        if let Some(page) = self.pages.get(usize::from(page)) {
            page.shared().copy_out(offset_bytes, data);
        }
    }

    fn grant(
        &mut self,
        page: u16,
        backend: DomId,
        read_only: bool,
    ) -> Result<GrantRef, GrantError> {
        let pfn = self
            .pages
            .get(usize::from(page))
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

/// `action=blk-pattern [id=] [check=] [rounds=] [persistent=]`
/// (`persistent=0`: grants per request even if the backend offers
/// persistent ones).
pub fn blk_pattern(info: &StartInfo) -> ShutdownReason {
    let (Some(id), Some(check), Some(rounds), Some(persistent)) = (
        optional(info, "id", 51712, 0, 0xffff_ffff),
        optional(info, "check", 1, 0, 1),
        optional(info, "rounds", 1, 1, 16),
        optional(info, "persistent", 1, 0, 1),
    ) else {
        return ShutdownReason::Crash;
    };
    let mut link = match VbdLink::open(info, id as u32) {
        Ok(link) => link,
        Err(problem) => return fail("setup", problem),
    };
    info!(
        "{WHAT}: vbd {id}: backend is d{} at {}",
        link.backend,
        link.backend_path()
    );
    info!(
        "{WHAT}: disk of {} sectors, {}",
        link.sectors,
        if link.read_only {
            "read-only"
        } else {
            "read-write"
        }
    );
    let mut pages: Vec<Page> = (0..DATA_PAGES).map(|_| Page::new()).collect();
    let mut outcome = true;
    for round in 1..=rounds {
        if round > 1 {
            if let Err(problem) = link.restart() {
                return fail("reconnecting", problem);
            }
            info!("{WHAT}: round {round} of {rounds}: the backend is back (InitWait)");
        }
        match one_round(
            &mut link,
            id as u16,
            pages,
            check == 1,
            round > 1,
            persistent == 1,
        ) {
            Ok((ok, returned)) => {
                outcome &= ok;
                pages = returned;
            }
            Err(problem) => return fail("connection", problem),
        }
    }
    if outcome {
        info!("{WHAT}: ok");
        ShutdownReason::Poweroff
    } else {
        error!("{WHAT}: FAILED");
        ShutdownReason::Crash
    }
}

/// One connection: the ring, the pattern (or the read-only checks), the
/// close. With `verify_first` (a reconnection), first reads the disk back
/// and checks the pattern the previous connection left. Returns whether
/// every check passed, and the data pages for the next round. With
/// `want_persistent`, asks for persistent grants if the backend offers them.
fn one_round(
    link: &mut VbdLink,
    handle: u16,
    pages: Vec<Page>,
    check: bool,
    verify_first: bool,
    want_persistent: bool,
) -> Result<(bool, Vec<Page>), String> {
    let (sectors, read_only, back) = (link.sectors, link.read_only, link.backend);
    // The ring: a zeroed page of ours, granted, initialized by blkfront
    // before the backend may look (Initialised comes after).
    let ring_ref = FIRST_TEST_REF as u32;
    let mut ring_page = Page::new();
    ring_page.zero();
    let ring_pfn = ring_page.pfn().ok_or("ring page outside RAM")?;
    let data_refs = (ring_ref + 1..ring_ref + 1 + DATA_PAGES as u32)
        .rev()
        .collect();
    let grants = RuntimeGrants {
        table: link.table,
        pages,
        free_refs: data_refs,
    };
    let mut front = Blkfront::new(
        ring_page.shared(),
        grants,
        (0..DATA_PAGES as u16).collect(),
        DomId(back),
        handle,
    );
    let channel = link.connect_with(ring_ref, ring_pfn, want_persistent)?;
    front
        .set_persistent(link.persistent)
        .map_err(|problem| format!("persistent grants: {problem:?}"))?;
    info!("{WHAT}: connected to d{back} (ring ref {ring_ref}, port {channel})");
    let events = &mut link.events;
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
            let refused = pump(&mut front, events, channel, 1, false, write_chunk)?;
            let status = refused.first_status.unwrap_or(0);
            if refused.errors == 1 {
                info!("{WHAT}: write to the read-only disk refused with status {status}");
            } else {
                error!("{WHAT}: UNEXPECTED: a write to the read-only disk was accepted");
                outcome = false;
            }
            let read = pump(&mut front, events, channel, requests, check, read_chunk)?;
            info!(
                "{WHAT}: read {} sectors of the read-only disk in {} requests ({} errors): {} mismatches{}",
                read.sectors,
                read.requests,
                read.errors,
                read.mismatches,
                if check { "" } else { " (not checked)" }
            );
            outcome &= read.errors == 0 && read.mismatches == 0 && read.sectors == sectors;
            Ok::<(), String>(())
        })()
    } else {
        (|| {
            if verify_first {
                let kept = pump(&mut front, events, channel, requests, true, read_chunk)?;
                info!(
                    "{WHAT}: after reconnecting, read {} sectors ({} errors): {} mismatches with what the last connection wrote",
                    kept.sectors, kept.errors, kept.mismatches
                );
                outcome &= kept.errors == 0 && kept.mismatches == 0 && kept.sectors == sectors;
            }
            let written = pump(&mut front, events, channel, requests, false, write_chunk)?;
            let flushed = pump(&mut front, events, channel, 1, false, |front, _| {
                front.submit_flush()
            })?;
            let read = pump(&mut front, events, channel, requests, true, read_chunk)?;
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
    // `hold_ms=`: stay connected a while first (the default machine keeps
    // banking's disk up while the untrusted domain attacks).
    let hold_ms = guest_runtime::start_info()
        .and_then(|info| guest_runtime::command_line::find(info.command_line(), "hold_ms"))
        .and_then(|text| text.parse::<u64>().ok());
    if let Some(ms) = hold_ms {
        info!("{WHAT}: holding the device for {ms} ms");
        let _ = guest_runtime::time::sleep_ns(ms.saturating_mul(1_000_000));
    }
    // Close: say Closing, let the backend let go (it unmaps every
    // persistent mapping before it says Closing), revoke everything, Closed.
    link.begin_close()?;
    let report = front.disconnect();
    let (grants, _) = front.into_parts();
    let ring_revoked = link.finish_close(ring_ref, channel)?;
    info!(
        "{WHAT}: disconnected: {} grants revoked, {} still mapped, ring {}",
        report.revoked,
        report.still_mapped,
        if ring_revoked {
            "revoked"
        } else {
            "STILL MAPPED"
        }
    );
    drop(ring_page);
    Ok((
        outcome && report.still_mapped == 0 && ring_revoked,
        grants.pages,
    ))
}

/// Request sizes of `blk-bench`, in sectors (4 KiB and 44 KiB).
pub const BENCH_SIZES_SECTORS: [u64; 2] = [8, 88];

/// Requests `blk-bench` keeps in flight by default, and at most: the ring's
/// 32 slots.
const BENCH_MAX_DEPTH: u64 = 32;

/// Pages of the largest request of [`BENCH_SIZES_SECTORS`].
const BENCH_PAGES_PER_REQUEST: usize = 11;

/// System time to sleep before timing: every deadline that the handshake's
/// store calls armed (here and in the driver domain) passes first, so no
/// timer is pending while the benchmark runs and `-icount sleep=off` has
/// nothing to skip ahead to while the machine waits for the disk.
const SETTLE_NS: u64 = 40_000_000_000;

/// `action=blk-bench [id=] [count=] [depth=] [persistent=] [repeat=]`: connects like
/// `blk-pattern` (persistent grants when the backend offers them, unless
/// `persistent=0`), zeroes (and in persistent mode grants) its data pages,
/// lets every pending deadline pass, then for each size of [`BENCH_SIZES_SECTORS`] writes and then
/// reads `count` requests, keeping up to `depth` (32) in flight, and logs
/// the instructions each pass took (`rdtsc` under
/// `-icount shift=0,sleep=off`) and how often it blocked; all of that
/// `repeat` times (1), for a median: when the device finishes, and so
/// how often a domain blocks, depends on the host.
///
/// It uses blkfront's zero-copy API, like the driver's own benchmark uses
/// its DMA pages: a write sends pool pages as they are (not filled per
/// request), a read's pages are given back unread. The backend is notified
/// only when `publish` says so; the guest blocks on the ring's port only
/// when no response is ready (the response event armed).
pub fn blk_bench(info: &StartInfo) -> ShutdownReason {
    const WHAT: &str = "blk-bench";
    let (Some(id), Some(count), Some(depth), Some(want_persistent), Some(repeat)) = (
        optional(info, "id", 51712, 0, 0xffff_ffff),
        optional(info, "count", 64, 1, 1_000_000),
        optional(info, "depth", BENCH_MAX_DEPTH, 1, BENCH_MAX_DEPTH),
        optional(info, "persistent", 1, 0, 1),
        optional(info, "repeat", 1, 1, 20),
    ) else {
        return ShutdownReason::Crash;
    };
    let depth = depth as usize;
    let mut link = match VbdLink::open(info, id as u32) {
        Ok(link) => link,
        Err(problem) => return fail("setup", problem),
    };
    let ring_ref = FIRST_TEST_REF as u32;
    let mut ring_page = Page::new();
    ring_page.zero();
    let Some(ring_pfn) = ring_page.pfn() else {
        return fail("ring", "page outside RAM");
    };
    // Enough pages for `depth` requests of the largest size (refs 9..=360
    // at most, inside the one-page grant table).
    let data_pages = depth * BENCH_PAGES_PER_REQUEST;
    let grants = RuntimeGrants {
        table: link.table,
        pages: (0..data_pages).map(|_| Page::new()).collect(),
        free_refs: (ring_ref + 1..ring_ref + 1 + data_pages as u32)
            .rev()
            .collect(),
    };
    let mut front = Blkfront::new(
        ring_page.shared(),
        grants,
        (0..data_pages as u16).collect(),
        DomId(link.backend),
        id as u16,
    );
    let channel = match link.connect_with(ring_ref, ring_pfn, want_persistent == 1) {
        Ok(port) => port,
        Err(problem) => return fail("connecting", problem),
    };
    if let Err(problem) = front.set_persistent(link.persistent) {
        return fail("persistent grants", format!("{problem:?}"));
    }
    // Zeroing (and persistent grants) once, before timing.
    if let Err(problem) = front.prepare_pool() {
        return fail("preparing the pages", format!("{problem:?}"));
    }
    let largest = BENCH_SIZES_SECTORS[1];
    if link.sectors < count * largest {
        return fail("disk", "smaller than count= requests of 44 KiB");
    }
    let persistent = if front.is_persistent() { "yes" } else { "no" };
    // Warm-up, not timed: `depth` reads of 44 KiB use every pool page once,
    // so with persistent grants the backend maps each now (its one-time
    // cost, logged) and the timed passes see the steady state.
    let started = guest_runtime::timestamp_counter();
    let mut warmed = 0u64;
    for index in 0..depth as u64 {
        if let Err(problem) = front.submit_read_in_place(index * largest, largest as u32) {
            return fail("warming up", format!("{problem:?}"));
        }
    }
    if matches!(front.publish(), Ok(notification) if notification.is_required()) {
        let _ = event::send(channel);
    }
    while warmed < depth as u64 {
        match front.poll_in_place() {
            Ok(Some(done)) => {
                if let Some(pages) = done.pages {
                    front.give_back(pages);
                }
                warmed += 1;
            }
            Ok(None) => {
                if let Err(errno) = link.events.wait_for_port(channel) {
                    return fail("warming up", errno);
                }
            }
            Err(problem) => return fail("warming up", format!("{problem:?}")),
        }
    }
    info!(
        "{WHAT}: warm-up: {warmed} reads of 44 KiB over the whole pool in {} instructions",
        guest_runtime::timestamp_counter().wrapping_sub(started)
    );
    let _ = guest_runtime::time::sleep_ns(SETTLE_NS);
    let _ = guest_runtime::time::cancel_timer();
    let mut outcome = true;
    for size in (0..repeat).flat_map(|_| BENCH_SIZES_SECTORS) {
        let pages_per_request = (size as usize).div_ceil(8);
        for write in [true, false] {
            let started = guest_runtime::timestamp_counter();
            let (mut submitted, mut completed, mut errors, mut waits) = (0u64, 0u64, 0u64, 0u64);
            let mut waited = 0u64;
            let mut sends = 0u64;
            while completed < count {
                while submitted < count && front.in_flight() < depth {
                    let sector = submitted * size;
                    let result = if write {
                        front
                            .take_pages(pages_per_request)
                            .and_then(|pages| front.submit_write_pages(sector, size as u32, pages))
                    } else {
                        front.submit_read_in_place(sector, size as u32)
                    };
                    if let Err(problem) = result {
                        return fail("submitting", format!("{problem:?}"));
                    }
                    submitted += 1;
                }
                match front.publish() {
                    Ok(notification) if notification.is_required() => {
                        sends += 1;
                        let _ = event::send(channel);
                    }
                    Ok(_) => {}
                    Err(problem) => return fail("publishing", format!("{problem:?}")),
                }
                // Every response ready; `None` arms the response event.
                let mut progressed = false;
                loop {
                    match front.poll_in_place() {
                        Ok(Some(done)) => {
                            errors += u64::from(!done.completion.is_ok());
                            if let Some(pages) = done.pages {
                                front.give_back(pages);
                            }
                            completed += 1;
                            progressed = true;
                        }
                        Ok(None) => break,
                        Err(problem) => return fail("response", format!("{problem:?}")),
                    }
                }
                if !progressed {
                    waits += 1;
                    // No deadline: nothing may be armed while timing.
                    let blocked = guest_runtime::timestamp_counter();
                    if let Err(errno) = link.events.wait_for_port(channel) {
                        return fail("waiting", errno);
                    }
                    waited += guest_runtime::timestamp_counter().wrapping_sub(blocked);
                }
            }
            let instructions = guest_runtime::timestamp_counter().wrapping_sub(started);
            info!(
                "bench: blk split {} {} B: {instructions} instructions for {count} requests ({errors} errors)",
                if write { "write" } else { "read" },
                size as usize * SECTOR,
            );
            info!(
                "{WHAT}: depth {depth}, persistent {persistent}, {waits} waits and {sends} notifications for {count} requests; {} instructions here, {waited} while waiting (the other domains' work and the hypervisor's)",
                instructions - waited
            );
            outcome &= errors == 0;
        }
    }
    // The backend unmaps every persistent mapping before it says Closing:
    // only then are the data grants revoked.
    if let Err(problem) = link.begin_close() {
        return fail("closing", problem);
    }
    let report = front.disconnect();
    drop(front);
    match link.finish_close(ring_ref, channel) {
        Ok(true) if outcome && report.still_mapped == 0 => {
            info!("{WHAT}: ok");
            ShutdownReason::Poweroff
        }
        Ok(_) => fail("closing", "grants still mapped or errors"),
        Err(problem) => fail("closing", problem),
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
