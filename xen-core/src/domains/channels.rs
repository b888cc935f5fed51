//! `event_channel_op` and `grant_table_op`: the operations that reach two
//! domains at once. The checks and state machines are the library's
//! (`event_channel`, `grant_table`); this module finds the domains, copies
//! each argument block in once, applies the result and writes it back.


use xen_abi::event_channel as abi;
use xen_abi::grant_table::{self as gnt, status};
use xen_abi::{errno, layout, DomId, GuestAddress};
use xen_core::domain::Domain;
use xen_core::event_channel::{self, Delivery, Pair, Port};
use xen_core::frame_allocator::Frame;
use xen_core::grant_table::{self, ActiveGrants, BatchOutcome, CopyRequest, DetachedEntries, GrantHandle, GrantRef, Granter, GranterAccess, Pin};
use xen_core::page_table::{flags, PAGE_4K};
use xen_core::trap::TrapFrame;

use xen_abi::policy::{event as event_permission, grant as grant_permission, Class};

use super::Hypervisor;
use crate::arch::machine::DirectMapMachine;
use crate::arch::physical;
use crate::arch::shared::{GrantTablePage, SharedInfoPage};
use crate::start::FRAMES;

/// Frames of a dead granter that other domains still map, with its pins:
/// each is freed at its last unmap.
pub struct Orphan {
    /// The dead granter.
    pub id: DomId,
    /// Its pins.
    pub active: ActiveGrants,
    /// Its frames still mapped elsewhere.
    pub held: alloc::vec::Vec<Frame>,
}

fn shared_info(domain: &Domain) -> Option<SharedInfoPage> {
    domain.frame(layout::SHARED_INFO_PFN).map(SharedInfoPage)
}

fn grant_page(domain: &Domain) -> Option<GrantTablePage> {
    domain.frame(layout::GRANT_TABLE_PFN).map(GrantTablePage)
}

fn read_block<const N: usize>(hypervisor: &Hypervisor, caller: usize, address: u64) -> Result<[u8; N], i64> {
    let mut block = [0u8; N];
    let mut frames = FRAMES.lock();
    let machine = DirectMapMachine { frames: &mut frames };
    hypervisor.lock(caller).copy_from_guest(&machine, GuestAddress(address), &mut block).map_err(|_| errno::EFAULT)?;
    Ok(block)
}

fn write_block(hypervisor: &Hypervisor, caller: usize, address: u64, block: &[u8]) -> Result<(), i64> {
    let mut frames = FRAMES.lock();
    let mut machine = DirectMapMachine { frames: &mut frames };
    hypervisor.lock(caller).write_guest(&mut machine, address, block).map_err(|_| errno::EFAULT)
}

use xen_abi::bytes::{u16_or_zero as u16_at, u32_or_zero as u32_at, u64_or_zero as u64_at};

impl Hypervisor {
    /// Wakes `id` if it is blocked (or makes it resume runnable if it was
    /// paused while blocked).
    fn wake(&mut self, id: DomId) {
        let _ = self.scheduler.wake(id);
    }

    /// Raises `port` of `target` and wakes it if the event is deliverable.
    fn raise(&mut self, target: DomId, port: Port) {
        let Some(index) = self.index_of(target) else { return };
        let Some(mut bits) = shared_info(&self.lock(index)) else { return };
        if event_channel::raise(&mut bits, port).wakes() {
            self.wake(target);
        }
    }

    /// Raises `virq` of `target`, if it bound a port to it.
    pub(super) fn raise_virq(&mut self, target: DomId, virq: u32) {
        let port = self.lock_id(target).and_then(|domain| domain.events.virq_port(virq));
        if let Some(port) = port {
            self.raise(target, port);
        }
    }

    /// Whether `id` has an event waiting (so `block` returns at once).
    pub(super) fn has_pending_event(&self, id: DomId) -> bool {
        self.lock_id(id).and_then(|domain| shared_info(&domain)).is_some_and(|page| page.upcall_pending())
    }

    /// `event_channel_op`: returns 0 or a negative errno.
    pub(super) fn event_channel_op(&mut self, caller: DomId, operation: u64, address: u64) -> i64 {
        match self.event_channel_op_inner(caller, operation, address) {
            Ok(value) => value,
            Err(code) => -code,
        }
    }

    fn event_channel_op_inner(&mut self, caller: DomId, operation: u64, address: u64) -> Result<i64, i64> {
        let me = self.index_of(caller).ok_or(errno::ESRCH)?;
        let resolve = |id: u16| if DomId(id) == DomId::SELF { caller } else { DomId(id) };
        match operation {
            abi::ALLOC_UNBOUND => {
                let mut block: [u8; abi::alloc_unbound::SIZE] = read_block(self, me, address)?;
                if resolve(u16_at(&block, abi::alloc_unbound::DOM)) != caller {
                    return Err(errno::EPERM);
                }
                let remote = resolve(u16_at(&block, abi::alloc_unbound::REMOTE_DOM));
                if self.index_of(remote).is_none() {
                    return Err(errno::ESRCH);
                }
                self.check(caller, remote, Class::Event, event_permission::CREATE)?;
                let allocated = self.lock(me).events.alloc_unbound(remote);
                let port = allocated.map_err(|error| error.errno())?;
                block[abi::alloc_unbound::PORT..][..4].copy_from_slice(&port.0.to_le_bytes());
                write_block(self, me, address, &block)?;
                Ok(0)
            }
            abi::BIND_INTERDOMAIN => {
                let mut block: [u8; abi::bind_interdomain::SIZE] = read_block(self, me, address)?;
                let remote = resolve(u16_at(&block, abi::bind_interdomain::REMOTE_DOM));
                let remote_port = Port(u32_at(&block, abi::bind_interdomain::REMOTE_PORT));
                let other = self.index_of(remote).ok_or(errno::ESRCH)?;
                self.check(caller, remote, Class::Event, event_permission::BIND)?;
                let mut bits = shared_info(&self.lock(me)).ok_or(errno::EFAULT)?;
                let result = if other == me {
                    event_channel::bind_interdomain(Pair::Same(&mut self.lock(me).events), &mut bits, remote_port)
                } else {
                    let (mut local, mut remote_domain) = self.lock_pair(me, other);
                    event_channel::bind_interdomain(Pair::Two { local: &mut local.events, remote: &mut remote_domain.events }, &mut bits, remote_port)
                };
                let (port, _delivery) = result.map_err(|error| error.errno())?;
                block[abi::bind_interdomain::LOCAL_PORT..][..4].copy_from_slice(&port.0.to_le_bytes());
                write_block(self, me, address, &block)?;
                Ok(0)
            }
            abi::BIND_VIRQ => {
                let mut block: [u8; abi::bind_virq::SIZE] = read_block(self, me, address)?;
                let virq = u32_at(&block, abi::bind_virq::VIRQ);
                let vcpu = u32_at(&block, abi::bind_virq::VCPU);
                let bound = self.lock(me).events.bind_virq(virq, vcpu);
                let port = bound.map_err(|error| error.errno())?;
                block[abi::bind_virq::PORT..][..4].copy_from_slice(&port.0.to_le_bytes());
                write_block(self, me, address, &block)?;
                Ok(0)
            }
            abi::SEND => {
                let block: [u8; abi::port_only::SIZE] = read_block(self, me, address)?;
                let port = Port(u32_at(&block, abi::port_only::PORT));
                let sent = self.lock(me).events.send(port);
                if let Some((target, target_port)) = sent.map_err(|error| error.errno())? {
                    self.check(caller, target, Class::Event, event_permission::SEND)?;
                    self.raise(target, target_port);
                }
                Ok(0)
            }
            abi::CLOSE => {
                let block: [u8; abi::port_only::SIZE] = read_block(self, me, address)?;
                let port = Port(u32_at(&block, abi::port_only::PORT));
                let peer = self.lock(me).events.peer(port);
                let peer = peer.and_then(|peer| self.index_of(peer));
                let mut bits = shared_info(&self.lock(me)).ok_or(errno::EFAULT)?;
                let result = match peer {
                    Some(other) if other != me => {
                        let (mut local, mut remote) = self.lock_pair(me, other);
                        event_channel::close(Pair::Two { local: &mut local.events, remote: &mut remote.events }, &mut bits, port)
                    }
                    _ => event_channel::close(Pair::Same(&mut self.lock(me).events), &mut bits, port),
                };
                result.map_err(|error| error.errno())?;
                Ok(0)
            }
            abi::STATUS => {
                let mut block: [u8; abi::status::SIZE] = read_block(self, me, address)?;
                if resolve(u16_at(&block, abi::status::DOM)) != caller {
                    return Err(errno::EPERM);
                }
                let port = Port(u32_at(&block, abi::status::PORT));
                let found = self.lock(me).events.status(port);
                let port_status = found.map_err(|error| error.errno())?;
                port_status.encode(&mut block);
                write_block(self, me, address, &block)?;
                Ok(0)
            }
            abi::UNMASK => {
                let block: [u8; abi::port_only::SIZE] = read_block(self, me, address)?;
                let port = Port(u32_at(&block, abi::port_only::PORT));
                let mut bits = shared_info(&self.lock(me)).ok_or(errno::EFAULT)?;
                let unmasked = self.lock(me).events.unmask(&mut bits, port);
                let _: Delivery = unmasked.map_err(|error| error.errno())?;
                Ok(0)
            }
            _ => Err(errno::ENOSYS),
        }
    }

    /// Releases a pin on `granter`'s ref, whether the granter is alive or
    /// an orphan; frees an orphan's frame at its last release.
    fn release_pin(&mut self, pin: Pin) {
        let granter = pin.granter();
        if let Some(index) = self.index_of(granter) {
            let mut guard = self.lock(index);
            let domain: &mut Domain = &mut guard;
            let _ = match grant_page(domain) {
                Some(mut page) => {
                    let mut view = Granter { id: granter, entries: &mut page, active: &mut domain.active_grants, p2m: &domain.p2m };
                    grant_table::release(&mut view, pin)
                }
                None => {
                    // A dying granter whose table page teardown has freed
                    // already: its pins still count (they decide which of
                    // its frames are held back), but nothing is written.
                    let mut detached = DetachedEntries;
                    let mut view = Granter { id: granter, entries: &mut detached, active: &mut domain.active_grants, p2m: &domain.p2m };
                    grant_table::release(&mut view, pin)
                }
            };
            return;
        }
        let Some(position) = self.orphans.iter().position(|orphan| orphan.id == granter) else { return };
        let orphan = &mut self.orphans[position];
        let mut detached = DetachedEntries;
        let mut view = Granter { id: granter, entries: &mut detached, active: &mut orphan.active, p2m: &[] };
        if let Ok(released) = grant_table::release(&mut view, pin) {
            if released.frame_unpinned {
                if let Some(held) = orphan.held.iter().position(|frame| *frame == released.frame) {
                    let frame = orphan.held.swap_remove(held);
                    let mut frames = FRAMES.lock();
                    physical::zero_frame(frame);
                    let _ = frames.free(frame);
                }
            }
        }
        if self.orphans[position].held.is_empty() {
            self.orphans.swap_remove(position);
            log::info!("{granter}: the last frame it granted was unmapped and freed");
        }
    }

    /// Closes a dying domain's channels (the other ends become unbound) and
    /// releases every grant it mapped.
    pub(super) fn release_channels(&mut self, id: DomId) {
        let Some(index) = self.index_of(id) else { return };
        let closed = self.lock(index).events.close_all();
        for (remote, remote_port, our_port) in closed {
            if let Some(mut other) = self.lock_id(remote) {
                other.events.peer_closed(remote_port, id, our_port);
            }
        }
        let mapped = self.lock(index).maptrack.drain();
        for entry in mapped {
            self.release_pin(entry.pin);
        }
    }

    /// Keeps a dead granter's still-mapped frames until their last unmap.
    pub(super) fn adopt_orphan(&mut self, domain: &mut Domain) {
        if domain.held_frames.is_empty() {
            return;
        }
        let Some(empty) = ActiveGrants::new(1) else { return };
        let held = core::mem::take(&mut domain.held_frames);
        let active = core::mem::replace(&mut domain.active_grants, empty);
        log::info!("{}: {} granted frame(s) still mapped elsewhere: kept until unmapped", domain.id, held.len());
        if self.orphans.push(Orphan { id: domain.id, active, held }).is_err() {
            log::error!("{}: too many orphans; its still-mapped frames leak", domain.id);
        }
    }

    /// `grant_table_op`: processes a batch (each entry reports its own
    /// status); `Err(())` asks for a continuation.
    pub(super) fn grant_table_op(&mut self, caller: DomId, frame: &mut TrapFrame, operation: u64, address: u64, count: u64) -> Result<i64, ()> {
        let Some(me) = self.index_of(caller) else { return Ok(-errno::ESRCH) };
        let size = match operation {
            gnt::MAP_GRANT_REF => gnt::map_grant_ref::SIZE,
            gnt::UNMAP_GRANT_REF => gnt::unmap_grant_ref::SIZE,
            gnt::COPY => gnt::copy::SIZE,
            gnt::SETUP_TABLE => {
                // Our table is fixed: one page at GRANT_TABLE_PFN. Report it
                // (Xen's layout: dom u16 @0, nr_frames u32 @4, status i16 @8
                // out, frame_list handle u64 @16: the pfns are written there).
                let mut block: [u8; gnt::setup_table::SIZE] = match read_block(self, me, address) {
                    Ok(block) => block,
                    Err(code) => return Ok(-code),
                };
                let code = if u32_at(&block, 4) == 0 || u32_at(&block, 4) as u64 > layout::GRANT_TABLE_PAGES {
                    status::GENERAL_ERROR
                } else {
                    let list = u64_at(&block, 16);
                    match write_block(self, me, list, &layout::GRANT_TABLE_PFN.to_le_bytes()) {
                        Ok(()) => status::OKAY,
                        Err(_) => status::BAD_VIRT_ADDR,
                    }
                };
                block[8..10].copy_from_slice(&code.to_le_bytes());
                return Ok(write_block(self, me, address, &block).map_or(-errno::EFAULT, |()| 0));
            }
            gnt::QUERY_SIZE => {
                let mut block: [u8; gnt::setup_table::QUERY_SIZE_SIZE] = match read_block(self, me, address) {
                    Ok(block) => block,
                    Err(code) => return Ok(-code),
                };
                block[4..8].copy_from_slice(&(layout::GRANT_TABLE_PAGES as u32).to_le_bytes());
                block[8..12].copy_from_slice(&(layout::GRANT_TABLE_PAGES as u32).to_le_bytes());
                block[12..14].copy_from_slice(&status::OKAY.to_le_bytes());
                return Ok(write_block(self, me, address, &block).map_or(-errno::EFAULT, |()| 0));
            }
            _ => return Ok(-errno::ENOSYS),
        };
        if count == 0 || count > u64::from(u32::MAX) {
            return Ok(-errno::EINVAL);
        }
        let outcome = grant_table::run_batch(0, count as u32, grant_table::BATCH_BUDGET, |index| {
            let at = address.checked_add(u64::from(index) * size as u64).ok_or(errno::EFAULT)?;
            match operation {
                gnt::MAP_GRANT_REF => self.map_one(caller, at),
                gnt::UNMAP_GRANT_REF => self.unmap_one(caller, at),
                _ => self.copy_one(caller, at),
            }
        });
        match outcome {
            BatchOutcome::Finished => Ok(0),
            BatchOutcome::Aborted { errno: code, .. } => Ok(-code),
            BatchOutcome::Continue { next } => {
                // Xen's continuation: re-execute with the rest of the batch.
                frame.rsi = address + u64::from(next) * size as u64;
                frame.rdx = count - u64::from(next);
                frame.rip -= 2;
                Err(())
            }
        }
    }

    fn map_one(&mut self, caller: DomId, at: u64) -> Result<(), i64> {
        let me = self.index_of(caller).ok_or(errno::ESRCH)?;
        let mut block: [u8; gnt::map_grant_ref::SIZE] = read_block(self, me, at)?;
        let map_flags = u32_at(&block, gnt::map_grant_ref::FLAGS);
        let reference = GrantRef(u32_at(&block, gnt::map_grant_ref::REF));
        let dom = u16_at(&block, gnt::map_grant_ref::DOM);
        let granter = if DomId(dom) == DomId::SELF { caller } else { DomId(dom) };
        let wanted = if reference.0 <= gnt::RESERVED_XENSTORE && granter != caller {
            // The console and store rings the builder granted to the control
            // domain: a permission of their own, so that serving them needs
            // no right to map anything else of the granter's.
            grant_permission::MAP_RESERVED
        } else {
            grant_permission::MAP_READ | if map_flags & gnt::map_flags::READONLY == 0 { grant_permission::MAP_WRITE } else { 0 }
        };
        let allowed = self.index_of(granter).is_none() || self.check(caller, granter, Class::Grant, wanted).is_ok();
        let result = match self.index_of(granter) {
            _ if !allowed => Err(status::PERMISSION_DENIED),
            None => Err(status::BAD_DOMAIN),
            Some(other) if other == me => {
                let mut guard = self.lock(me);
                let domain: &mut Domain = &mut guard;
                match grant_page(domain) {
                    Some(mut page) => {
                        let mut view = Granter { id: granter, entries: &mut page, active: &mut domain.active_grants, p2m: &domain.p2m };
                        grant_table::map(caller, &mut domain.maptrack, &mut view, reference, map_flags)
                    }
                    None => Err(status::GENERAL_ERROR),
                }
            }
            Some(other) => {
                let (mut mapper, mut owner_guard) = self.lock_pair(me, other);
                let owner: &mut Domain = &mut owner_guard;
                match grant_page(owner) {
                    Some(mut page) => {
                        let mut view = Granter { id: granter, entries: &mut page, active: &mut owner.active_grants, p2m: &owner.p2m };
                        grant_table::map(caller, &mut mapper.maptrack, &mut view, reference, map_flags)
                    }
                    None => Err(status::GENERAL_ERROR),
                }
            }
        };
        let (code, host_address, handle, bus_address) = match result {
            Ok(mapping) => {
                let mut code = status::OKAY;
                if let Some(address) = mapping.guest_address {
                    let leaf = flags::USER | flags::NO_EXECUTE | if mapping.readonly { 0 } else { flags::WRITABLE };
                    let installed = {
                        let mut frames = FRAMES.lock();
                        let mut machine = DirectMapMachine { frames: &mut frames };
                        let mut domain = self.lock(me);
                        domain.space.map(&mut machine, address, mapping.frame.address(), PAGE_4K, leaf)
                    };
                    if installed.is_err() {
                        // Undo: nothing stays pinned for a mapping that failed.
                        let removed = self.lock(me).maptrack.remove(mapping.handle, address);
                        if let Ok(entry) = removed {
                            self.release_pin(entry.pin);
                        }
                        code = status::GENERAL_ERROR;
                    }
                }
                if code == status::OKAY {
                    (code, mapping.guest_address.unwrap_or(0), mapping.handle.0, mapping.bus_address.unwrap_or(0))
                } else {
                    (code, 0, 0, 0)
                }
            }
            Err(code) => (code, 0, 0, 0),
        };
        block[gnt::map_grant_ref::HOST_ADDR..][..8].copy_from_slice(&host_address.to_le_bytes());
        block[gnt::map_grant_ref::STATUS..][..2].copy_from_slice(&code.to_le_bytes());
        block[gnt::map_grant_ref::HANDLE..][..4].copy_from_slice(&handle.to_le_bytes());
        block[gnt::map_grant_ref::DEV_BUS_ADDR..][..8].copy_from_slice(&bus_address.to_le_bytes());
        write_block(self, me, at, &block)
    }

    fn unmap_one(&mut self, caller: DomId, at: u64) -> Result<(), i64> {
        let me = self.index_of(caller).ok_or(errno::ESRCH)?;
        let mut block: [u8; gnt::unmap_grant_ref::SIZE] = read_block(self, me, at)?;
        let host_address = u64_at(&block, gnt::unmap_grant_ref::HOST_ADDR);
        let handle = GrantHandle(u32_at(&block, gnt::unmap_grant_ref::HANDLE));
        let granter = self.lock(me).maptrack.lookup(handle).map(|entry| entry.pin.granter());
        if let Some(granter) = granter {
            if self.index_of(granter).is_some() && self.check(caller, granter, Class::Grant, grant_permission::UNMAP).is_err() {
                block[gnt::unmap_grant_ref::STATUS..][..2].copy_from_slice(&status::PERMISSION_DENIED.to_le_bytes());
                return write_block(self, me, at, &block);
            }
        }
        let removed = self.lock(me).maptrack.remove(handle, host_address);
        let code = match removed {
            Ok(entry) => {
                if entry.host_map {
                    let mut frames = FRAMES.lock();
                    let mut machine = DirectMapMachine { frames: &mut frames };
                    // The domain is not running while we are here, and its
                    // next run reloads CR3 (no PCID): its TLB holds nothing.
                    let _ = self.lock(me).space.unmap(&mut machine, entry.guest_address);
                }
                self.release_pin(entry.pin);
                status::OKAY
            }
            Err(code) => code,
        };
        block[gnt::unmap_grant_ref::STATUS..][..2].copy_from_slice(&code.to_le_bytes());
        write_block(self, me, at, &block)
    }

    fn copy_one(&mut self, caller: DomId, at: u64) -> Result<(), i64> {
        let me = self.index_of(caller).ok_or(errno::ESRCH)?;
        let mut block: [u8; gnt::copy::SIZE] = read_block(self, me, at)?;
        let request = CopyRequest::decode(&block);
        let flags_word = u16_at(&block, gnt::copy::FLAGS);
        for (pointer_at, gref_flag) in [(gnt::copy::SOURCE, gnt::copy::SOURCE_GREF), (gnt::copy::DEST, gnt::copy::DEST_GREF)] {
            let domid = u16_at(&block, pointer_at + gnt::copy::POINTER_DOMID);
            let other = if DomId(domid) == DomId::SELF { caller } else { DomId(domid) };
            if flags_word & gref_flag != 0 && self.index_of(other).is_some() && self.check(caller, other, Class::Grant, grant_permission::COPY).is_err() {
                block[gnt::copy::STATUS..][..2].copy_from_slice(&status::PERMISSION_DENIED.to_le_bytes());
                return write_block(self, me, at, &block);
            }
        }
        let mut access = TableAccess { hypervisor: self, guard: None, page: None };
        let result = grant_table::copy(&mut access, caller, &request, |plan| {
            let mut buffer = [0u8; 4096];
            let length = usize::from(plan.length);
            physical::read_frame(plan.source.frame, usize::from(plan.source.offset), &mut buffer[..length]);
            physical::write_frame(plan.dest.frame, usize::from(plan.dest.offset), &buffer[..length]);
        });
        // Release the last granter's lock before touching the caller again.
        drop(access);
        let code = match result {
            Ok(()) => status::OKAY,
            Err(code) => code,
        };
        block[gnt::copy::STATUS..][..2].copy_from_slice(&code.to_le_bytes());
        write_block(self, me, at, &block)
    }
}

/// The live domains, as granters for a copy: one locked at a time (the
/// previous one's lock is released before the next is taken).
struct TableAccess<'a> {
    hypervisor: &'a Hypervisor,
    guard: Option<super::DomainGuard<'a>>,
    page: Option<GrantTablePage>,
}

impl GranterAccess for TableAccess<'_> {
    fn granter(&mut self, id: DomId) -> Option<Granter<'_>> {
        self.guard = None;
        self.guard = Some(self.hypervisor.lock_id(id)?);
        let domain: &mut Domain = self.guard.as_mut()?;
        self.page = Some(grant_page(domain)?);
        let page = self.page.as_mut()?;
        Some(Granter { id, entries: page, active: &mut domain.active_grants, p2m: &domain.p2m })
    }
}
