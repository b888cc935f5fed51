//! `grant-self`: the grant mechanism against ourselves, no peer needed. A
//! page granted to this very domain is mapped, written through the mapping
//! and read back through the page; revocation must fail while it is mapped
//! (the hypervisor sets GTF_writing) and succeed after the unmap; a grant
//! copy from it must work. Lines start `grant-self:`.

use guest_runtime::grant::{self, CopySide, CopySpec, GrantError, GrantTable};
use guest_runtime::page::Page;
use guest_runtime::{ShutdownReason, StartInfo};
use log::{error, info};
use ring_protocol::blkif::Blkif;
use ring_protocol::{Backend, Frontend};

use crate::rings::{optional, read_request, FIRST_TEST_REF, MAX_REF};

/// The id of the request written through the mapping.
const MARK: u64 = 0x5e1f;

/// `action=grant-self ref=<r>`.
pub fn grant_self(info: &StartInfo) -> ShutdownReason {
    let Some(reference) = optional(info, "ref", FIRST_TEST_REF, 2, MAX_REF) else {
        return ShutdownReason::Crash;
    };
    let reference = reference as u32;
    let me = info.domid;
    let Some(grants) = GrantTable::this_domain() else {
        error!("grant-self: no grant table page");
        return ShutdownReason::Crash;
    };
    let page = Page::new();
    let Some(pfn) = page.pfn() else {
        error!("grant-self: the page is not a frame of our RAM");
        return ShutdownReason::Crash;
    };
    if let Err(problem) = grants.grant_access(reference, me, pfn, false) {
        error!("grant-self: grant ref {reference}: {problem}");
        return ShutdownReason::Crash;
    }
    let mapping = match grant::map(me, reference, false) {
        Ok(mapping) => mapping,
        Err(failure) => {
            error!("grant-self: map d{me} ref {reference}: {failure}");
            let _ = grants.end_access(reference);
            return ShutdownReason::Crash;
        }
    };
    // Write a request through the mapping, read it through our own page.
    let seen = mapping.page().map(|mapped| {
        let mut front = Frontend::<Blkif>::initialize(mapped);
        let pushed = front.push_request(&read_request(MARK, reference)).and_then(|()| front.publish_requests());
        let mut back = Backend::<Blkif>::attach(page.shared());
        (pushed.map(drop), back.next_request())
    });
    let mut failed = false;
    match seen {
        Some((Ok(()), Ok(Some(request)))) if request.id() == MARK => {
            info!("grant-self: mapped ref {reference} at {:#x}; a request written there reads back from pfn {pfn}", mapping.address());
        }
        other => {
            let address = mapping.address();
            match other {
                None => error!("grant-self: the mapping at {address:#x} is not a writable page of the grant window"),
                Some((Err(ring), _) | (_, Err(ring))) => error!("grant-self: ring through the mapping at {address:#x}: {ring}"),
                Some((Ok(()), Ok(_))) => error!("grant-self: the request written at {address:#x} is not in pfn {pfn}"),
            }
            failed = true;
        }
    }
    match grants.end_access(reference) {
        Err(GrantError::Busy(flags)) => info!("grant-self: revoke while mapped: busy (flags {flags:#x})"),
        other => {
            error!("grant-self: revoke while mapped: UNEXPECTED: {other:?}");
            failed = true;
        }
    }
    if let Err((mapping, failure)) = grant::unmap(mapping) {
        error!("grant-self: unmap {:#x}: {failure}", mapping.address());
        core::mem::forget(page);
        return ShutdownReason::Crash;
    }
    match grants.end_access(reference) {
        Ok(()) => info!("grant-self: revoked after the unmap"),
        Err(problem) => {
            error!("grant-self: revoke after the unmap: {problem}");
            core::mem::forget(page);
            return ShutdownReason::Crash;
        }
    }
    // A copy out of our own grant (read-only this time) into another page.
    let target = Page::new();
    let copied = grants.grant_access(reference, me, pfn, true).map(|()| {
        let source = CopySide::Granted { domid: me, reference, offset: 0 };
        grant::copy(&CopySpec { source, dest: CopySide::Local { page: target.buffer(), offset: 0 }, length: 64 })
    });
    match copied {
        Ok(Ok(())) => info!("grant-self: copy: status GNTST_okay"),
        Ok(Err(failure)) => {
            error!("grant-self: copy: {failure}");
            failed = true;
        }
        Err(problem) => {
            error!("grant-self: grant ref {reference} read-only: {problem}");
            failed = true;
        }
    }
    if let Err(problem) = grants.end_access(reference) {
        error!("grant-self: revoke after the copy: {problem}");
        core::mem::forget(page);
        return ShutdownReason::Crash;
    }
    if failed {
        ShutdownReason::Crash
    } else {
        info!("grant-self: done");
        ShutdownReason::Poweroff
    }
}

/// `action=reserved-refs`: prints this domain's grant entries 0 and 1, which
/// the domain builder fills for the console and store pages.
pub fn reserved_refs(info: &StartInfo) -> ShutdownReason {
    info!("reserved-refs: start-info: store port {} console port {}", info.store_evtchn, info.console_evtchn);
    let Some(grants) = GrantTable::this_domain() else {
        error!("reserved-refs: no grant table page");
        return ShutdownReason::Crash;
    };
    for (reference, what) in [(0u32, "console"), (1, "store")] {
        match grants.get(reference) {
            Some(entry) => info!(
                "reserved-refs: ref {reference} ({what}) flags {:#x} domid {} frame {}",
                entry.flags(),
                entry.domid(),
                entry.frame()
            ),
            None => {
                error!("reserved-refs: ref {reference} is not in the table");
                return ShutdownReason::Crash;
            }
        }
    }
    ShutdownReason::Poweroff
}
