//! The physical disk: virtio-blk on our assigned function, driven through
//! virtio-drivers' PCI transport, interrupt-driven (the function's INTx
//! arrives as an event channel; we acknowledge the device, then EOI the
//! line), and blkback's [`Executor`] over it: each segment's grant is
//! mapped with `GNTMAP_device_map` and the device moves the data by DMA
//! straight into or out of the granted page. No bounce buffer, no copy.
//!
//! A batch (one round of the backend, over every frontend) goes to the
//! device at once: every grant it needs is mapped in one hypercall, the
//! requests are all queued before the first interrupt is awaited. With
//! `feature-persistent` a frontend's grants stay mapped (by reference, up
//! to [`MAX_PERSISTENT_PER_DOMAIN`] a domain and [`MAX_PERSISTENT_TOTAL`]
//! in all) until its connection ends, so a request in steady state costs no
//! grant hypercall at all. A request's segments whose pages follow each
//! other both in the grant window and in machine memory reach the device
//! as one buffer ([`Segment::join`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use blkback::{
    recycle, BlockOperation, DomId, ExecuteError, Executor, GrantPolicy, SegmentTransfer,
};
use guest_runtime::event::{EventLoop, Port};
use guest_runtime::grant::{self, MapSpec, Mapping};
use guest_runtime::physdev::{self, DeviceInfo};
use log::{error, info, warn};
use virtio_drivers::transport::pci::bus::{Command, PciRoot};
use virtio_drivers::transport::pci::PciTransport;

use crate::arch::{self, push_joined, Blk, DeviceOp, DeviceRequest, PoolRun, Segment};
use crate::dma;
use crate::pci::{self, PhysdevConfig};

/// Grants of one frontend domain kept mapped at most (Linux blkback's
/// default, 32 requests of 11 pages, is 352 too).
pub const MAX_PERSISTENT_PER_DOMAIN: usize = 352;
/// Refused grant maps logged one by one (the rest are counted in
/// [`DiskCounters::refused_maps`]).
const MAP_REFUSALS_LOGGED: u64 = 16;
/// Grants kept mapped at most over all frontends: half the grant window
/// (1024 pages), so rings and per-batch mappings always find room however
/// many frontends keep grants.
pub const MAX_PERSISTENT_TOTAL: usize = 512;
/// References at or above this are mapped per request, never kept (the
/// table of kept grants is indexed by reference).
const MAX_PERSISTENT_REFERENCE: u32 = 4096;

/// What the disk has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskCounters {
    /// Device interrupts taken.
    pub interrupts: u64,
    /// Data buffers the device moved (a request's segments whose pages
    /// follow each other in the grant window and on the bus go as one).
    pub buffers: u64,
    /// Segments joined to the buffer of the segment before them.
    pub joined: u64,
    /// Operations refused because a grant did not map.
    pub grant_failures: u64,
    /// Operations the device failed.
    pub device_errors: u64,
    /// Grant map hypercalls made (each for a whole batch).
    pub map_calls: u64,
    /// Grants mapped, kept or not.
    pub grants_mapped: u64,
    /// Grant references the hypervisor refused to map.
    pub refused_maps: u64,
    /// Instructions (`rdtsc` under `-icount`) from blocking for the
    /// device's interrupt to waking: the rest of the machine's work
    /// meanwhile, while this domain waits.
    pub waited: u64,
}

/// The grants one frontend domain agreed to have kept mapped, by reference.
struct KeptGrants {
    domain: u16,
    by_reference: Vec<Option<Mapping>>,
    count: usize,
}

impl KeptGrants {
    fn get(&self, reference: u32) -> Option<&Mapping> {
        self.by_reference.get(reference as usize)?.as_ref()
    }

    /// Keeps `mapping` if there is room; gives it back otherwise.
    fn keep(&mut self, mapping: Mapping) -> Result<(), Mapping> {
        let index = mapping.reference() as usize;
        if self.count >= MAX_PERSISTENT_PER_DOMAIN
            || mapping.reference() >= MAX_PERSISTENT_REFERENCE
        {
            return Err(mapping);
        }
        if self.by_reference.len() <= index {
            self.by_reference.resize_with(index + 1, || None);
        }
        if self.by_reference[index].is_some() {
            return Err(mapping);
        }
        dma::register_grant(mapping.address(), mapping.bus_address());
        self.by_reference[index] = Some(mapping);
        self.count += 1;
        Ok(())
    }
}

/// Where a segment's page is mapped for the batch.
#[derive(Clone, Copy)]
enum Held {
    /// Not (yet) mapped, or its map failed.
    Missing,
    /// Kept for its domain: `kept[domain index]`, by reference.
    Kept(usize),
    /// Mapped for this batch only: `transient[index]`.
    Transient(usize),
}

/// The virtio-blk device and the domain's event loop (which the store
/// client and the serving loop wait with too: one loop, so no port that
/// fires is lost to another).
pub struct VirtioDisk {
    blk: Blk,
    interrupt: Port,
    events: EventLoop<'static>,
    counters: DiskCounters,
    kept: Vec<KeptGrants>,
    /// Grant mappings that would not unmap (kept, never reused).
    stuck: Vec<Mapping>,
    scratch: Scratch,
}

impl VirtioDisk {
    /// Brings up the virtio-blk function `function` (modern, vendor
    /// 0x1af4 device 0x1042), whose interrupt arrives on its event port.
    ///
    /// # Errors
    ///
    /// A description of what failed.
    pub fn open(function: &DeviceInfo, events: EventLoop<'static>) -> Result<VirtioDisk, String> {
        if function.event_port == 0 {
            return Err(String::from(
                "the function has no interrupt event channel (polling is not an option)",
            ));
        }
        let address = pci::function_of(function.bdf);
        let mut root = PciRoot::new(PhysdevConfig);
        // Decode bits are the hypervisor's to keep; bus mastering is ours to ask for.
        root.set_command(address, Command::MEMORY_SPACE | Command::BUS_MASTER);
        let transport = PciTransport::new::<arch::DriverHal, _>(&mut root, address)
            .map_err(|problem| format!("PCI transport: {problem}"))?;
        let blk = Blk::new(transport).map_err(|problem| format!("virtio-blk: {problem}"))?;
        info!(
            "disk: virtio-blk of {} sectors{}",
            blk.capacity(),
            if blk.readonly() { ", read-only" } else { "" }
        );
        Ok(VirtioDisk {
            blk,
            interrupt: guest_runtime::event::Port(function.event_port),
            events,
            counters: DiskCounters::default(),
            kept: Vec::new(),
            stuck: Vec::new(),
            scratch: Scratch::default(),
        })
    }

    /// Its size in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.blk.capacity()
    }

    /// Whether the device itself refuses writes.
    pub fn readonly(&self) -> bool {
        self.blk.readonly()
    }

    /// The event port of its interrupt.
    pub fn interrupt_port(&self) -> Port {
        self.interrupt
    }

    /// The domain's event loop.
    pub fn events(&mut self) -> &mut EventLoop<'static> {
        &mut self.events
    }

    /// What it has done.
    pub fn counters(&self) -> DiskCounters {
        self.counters
    }

    /// Times the domain blocked.
    pub fn events_blocks(&self) -> u64 {
        self.events.blocks()
    }

    /// Grants kept mapped now, over every frontend domain.
    pub fn kept_grants(&self) -> usize {
        self.kept.iter().map(|kept| kept.count).sum()
    }

    /// Carries out `requests` on the device, blocking on its interrupt
    /// while it works.
    fn run(
        &mut self,
        requests: &[DeviceRequest<'_>],
        results: &mut [Result<(), virtio_drivers::Error>],
    ) {
        run_on(
            &mut self.blk,
            self.interrupt,
            &mut self.events,
            &mut self.counters,
            requests,
            results,
        );
    }

    /// `count` requests of `size_sectors` sectors from sector `first`
    /// onwards, all queued at once, between the disk and the start of our
    /// own pool pages `run` (each request reuses the same pages), blocking
    /// on the interrupt while the device works (`bench-direct=`).
    ///
    /// # Errors
    ///
    /// What failed.
    pub fn direct(
        &mut self,
        write: bool,
        first: u64,
        size_sectors: u64,
        count: usize,
        run: &PoolRun,
    ) -> Result<(), String> {
        let length = size_sectors as usize * arch::SECTOR_SIZE;
        let segment = Segment::own(run, length).ok_or("the run is too small")?;
        // The split path's vectors live from batch to batch; so do these,
        // or the baseline would pay the allocator per batch.
        let mut requests = recycle(core::mem::take(&mut self.scratch.requests));
        requests.extend((0..count as u64).map(|index| DeviceRequest {
            op: DeviceOp::transfer(write),
            sector: first + index * size_sectors,
            segments: core::iter::once(segment).collect(),
        }));
        let mut results = core::mem::take(&mut self.scratch.results);
        results.clear();
        results.resize(count, Ok(()));
        self.run(&requests, &mut results);
        let outcome = match results.iter().find(|result| result.is_err()) {
            Some(Err(problem)) => Err(format!("{problem}")),
            _ => Ok(()),
        };
        self.scratch.requests = recycle(requests);
        self.scratch.results = results;
        outcome
    }

    /// Unmaps `mappings`, keeping any that will not go.
    fn unmap_all(stuck: &mut Vec<Mapping>, mappings: Vec<Mapping>) {
        for mapping in &mappings {
            dma::remove_grant(mapping.address());
        }
        for (mapping, failure) in grant::unmap_batch(mappings) {
            error!(
                "disk: unmap of d{} ref {}: {failure}; the page stays mapped",
                mapping.granter(),
                mapping.reference()
            );
            stuck.push(mapping);
        }
    }

    /// Which of `kept` holds `domain`'s grants (a new, empty entry if none
    /// does yet).
    fn kept_index(kept: &mut Vec<KeptGrants>, domain: u16) -> usize {
        if let Some(index) = kept.iter().position(|entry| entry.domain == domain) {
            return index;
        }
        kept.push(KeptGrants {
            domain,
            by_reference: Vec::new(),
            count: 0,
        });
        kept.len() - 1
    }
}

/// Runs `requests` on the device, waiting for its interrupt when none has
/// completed: wait for the event, acknowledge the device, then EOI the line.
fn run_on(
    blk: &mut Blk,
    port: Port,
    events: &mut EventLoop<'static>,
    counters: &mut DiskCounters,
    requests: &[DeviceRequest<'_>],
    results: &mut [Result<(), virtio_drivers::Error>],
) {
    arch::run_batch(blk, requests, results, |blk| {
        let blocked = guest_runtime::timestamp_counter();
        if let Err(errno) = events.wait_for_port(port) {
            error!("disk: waiting for the interrupt on port {port}: {errno}");
        }
        counters.waited += guest_runtime::timestamp_counter().wrapping_sub(blocked);
        let _ = blk.ack_interrupt();
        if let Err(errno) = physdev::eoi(port.0) {
            warn!("disk: EOI of port {port}: {errno}");
        }
        counters.interrupts += 1;
    });
}

/// A transfer of the batch, its segments resolved to mappings.
struct Transfer<'op> {
    /// Index in the batch.
    index: usize,
    write: bool,
    segments: &'op [SegmentTransfer],
    /// Where each segment's page is mapped.
    held: heapless::Vec<Held, { arch::MAX_SEGMENTS }>,
    /// The kept-grants entry of its domain, when persistent.
    kept: Option<usize>,
}

/// The vectors of a batch, kept from one batch to the next: the allocator
/// (a linked list of holes) costs a few hundred instructions a call, a
/// round makes several, and their sizes barely change.
#[derive(Default)]
struct Scratch {
    /// Empty between batches; see [`recycle`].
    requests: Vec<DeviceRequest<'static>>,
    origin: Vec<usize>,
    results: Vec<Result<(), virtio_drivers::Error>>,
}

/// Fills `requests` with the device requests of `batch` (and `origin` with
/// the batch index of each) when every transfer's pages are kept mapped
/// already; `false` if anything must be mapped (or refused) first.
fn requests_from_kept<'k>(
    kept: &'k [KeptGrants],
    batch: &[BlockOperation<'_>],
    joined: &mut u64,
    requests: &mut Vec<DeviceRequest<'k>>,
    origin: &mut Vec<usize>,
) -> bool {
    requests.clear();
    origin.clear();
    let mut joins = 0;
    // The entry of the last frontend looked up (a round is mostly one or
    // two frontends, one after the other).
    let mut last: Option<&KeptGrants> = None;
    for (index, operation) in batch.iter().enumerate() {
        let (frontend, segments, write) = match *operation {
            BlockOperation::Read {
                frontend,
                segments,
                grants: GrantPolicy::Persistent,
            } => (frontend, segments, false),
            BlockOperation::Write {
                frontend,
                segments,
                grants: GrantPolicy::Persistent,
            } => (frontend, segments, true),
            BlockOperation::Flush => {
                requests.push(DeviceRequest::flush());
                origin.push(index);
                continue;
            }
            _ => return false,
        };
        let entry = match last {
            Some(entry) if entry.domain == frontend.0 => entry,
            _ => match kept.iter().find(|entry| entry.domain == frontend.0) {
                Some(entry) => entry,
                None => return false,
            },
        };
        last = Some(entry);
        let Some(first) = segments.first() else {
            return false;
        };
        // Built where it stays: a request is a few hundred bytes, and
        // under `-icount` a copy costs an instruction per word.
        requests.push(DeviceRequest {
            op: DeviceOp::transfer(write),
            sector: first.physical_sector,
            segments: heapless::Vec::new(),
        });
        let Some(request) = requests.last_mut() else {
            return false;
        };
        for segment in segments {
            let piece = entry.get(segment.grant.0).and_then(|mapping| {
                Segment::granted(mapping, segment.page_offset_bytes(), segment.length_bytes())
            });
            match piece {
                Some(piece) if push_joined(&mut request.segments, piece) => {}
                _ => return false,
            }
        }
        joins += (segments.len() - request.segments.len()) as u64;
        origin.push(index);
    }
    *joined += joins;
    true
}

/// Runs `requests` on the device and records each one's outcome at its
/// batch index (`origin`) in `results`.
#[allow(clippy::too_many_arguments)] // reason: the disk's fields, split so `requests` may borrow its kept grants
fn device_work(
    blk: &mut Blk,
    interrupt: Port,
    events: &mut EventLoop<'static>,
    counters: &mut DiskCounters,
    requests: &[DeviceRequest<'_>],
    origin: &[usize],
    device_results: &mut Vec<Result<(), virtio_drivers::Error>>,
    results: &mut [Result<(), ExecuteError>],
) {
    device_results.clear();
    device_results.resize(requests.len(), Ok(()));
    if !requests.is_empty() {
        run_on(blk, interrupt, events, counters, requests, device_results);
    }
    for ((request, result), index) in requests.iter().zip(device_results.drain(..)).zip(origin) {
        match result {
            Ok(()) => counters.buffers += request.segments.len() as u64,
            Err(problem) => {
                error!(
                    "disk: virtio-blk {:?} at sector {}: {problem}",
                    request.op, request.sector
                );
                counters.device_errors += 1;
                results[*index] = Err(ExecuteError::Io);
            }
        }
    }
}

impl Executor for VirtioDisk {
    fn execute(&mut self, operation: &BlockOperation<'_>) -> Result<(), ExecuteError> {
        let mut result = [Ok(())];
        self.execute_batch(core::slice::from_ref(operation), &mut result);
        result[0]
    }

    fn execute_batch(
        &mut self,
        batch: &[BlockOperation<'_>],
        results: &mut [Result<(), ExecuteError>],
    ) {
        let VirtioDisk {
            blk,
            interrupt,
            events,
            counters,
            kept,
            stuck,
            scratch,
        } = self;
        // Steady state: every page already kept mapped, nothing to map.
        let mut requests = recycle(core::mem::take(&mut scratch.requests));
        let steady = requests_from_kept(
            kept,
            batch,
            &mut counters.joined,
            &mut requests,
            &mut scratch.origin,
        );
        if steady {
            device_work(
                blk,
                *interrupt,
                events,
                counters,
                &requests,
                &scratch.origin,
                &mut scratch.results,
                results,
            );
        }
        scratch.requests = recycle(requests);
        if steady {
            return;
        }
        // 1. Which pages each transfer needs mapped; one hypercall maps all.
        let mut transfers: Vec<Transfer<'_>> = Vec::new();
        let mut specs: Vec<MapSpec> = Vec::new();
        let mut wanted: Vec<(usize, usize)> = Vec::new();
        for (index, operation) in batch.iter().enumerate() {
            let (frontend, segments, grants, write) = match *operation {
                BlockOperation::Read {
                    frontend,
                    segments,
                    grants,
                } => (frontend, segments, grants, false),
                BlockOperation::Write {
                    frontend,
                    segments,
                    grants,
                } => (frontend, segments, grants, true),
                BlockOperation::Flush => continue,
                BlockOperation::Discard { .. } => {
                    results[index] = Err(ExecuteError::NotSupported);
                    continue;
                }
            };
            let persistent = grants == GrantPolicy::Persistent;
            let kept_at = if persistent {
                Some(VirtioDisk::kept_index(kept, frontend.0))
            } else {
                None
            };
            let mut held = heapless::Vec::new();
            for (number, segment) in segments.iter().enumerate() {
                let hit = kept_at.and_then(|at| kept[at].get(segment.grant.0).map(|_| at));
                let _ = held.push(match hit {
                    Some(at) => Held::Kept(at),
                    None => {
                        specs.push(MapSpec {
                            granter: frontend.0,
                            reference: segment.grant.0,
                            // Kept grants serve reads and writes alike.
                            readonly: write && !persistent,
                            device: true,
                        });
                        wanted.push((transfers.len(), number));
                        Held::Missing
                    }
                });
            }
            transfers.push(Transfer {
                index,
                write,
                segments,
                held,
                kept: kept_at,
            });
        }
        let mut transient: Vec<Mapping> = Vec::new();
        if !specs.is_empty() {
            counters.map_calls += 1;
            match grant::map_batch(&specs) {
                Ok(mapped) => {
                    for ((spec, result), (transfer, number)) in
                        specs.iter().zip(mapped).zip(&wanted)
                    {
                        let transfer = &mut transfers[*transfer];
                        let mapping = match result {
                            Ok(mapping) if mapping.bus_address() != 0 => mapping,
                            Ok(mapping) => {
                                warn!(
                                    "disk: d{} ref {} mapped without a bus address",
                                    spec.granter, spec.reference
                                );
                                transient.push(mapping);
                                continue;
                            }
                            Err(problem) => {
                                // A frontend's bad refs cannot flood the log:
                                // the first few are named, the rest counted.
                                counters.refused_maps += 1;
                                if counters.refused_maps <= MAP_REFUSALS_LOGGED {
                                    warn!(
                                        "disk: d{} ref {}: {problem}: request refused",
                                        spec.granter, spec.reference
                                    );
                                }
                                continue;
                            }
                        };
                        counters.grants_mapped += 1;
                        let room = kept.iter().map(|entry| entry.count).sum::<usize>()
                            < MAX_PERSISTENT_TOTAL;
                        let mapping = match transfer.kept.filter(|_| room) {
                            Some(at) => match kept[at].keep(mapping) {
                                Ok(()) => {
                                    transfer.held[*number] = Held::Kept(at);
                                    continue;
                                }
                                Err(mapping) => mapping,
                            },
                            None => mapping,
                        };
                        dma::register_grant(mapping.address(), mapping.bus_address());
                        transfer.held[*number] = Held::Transient(transient.len());
                        transient.push(mapping);
                    }
                }
                Err(refused) => {
                    warn!("disk: grant map call refused: {}", refused.errno);
                    transient.extend(refused.mapped);
                }
            }
        }
        // 2. The device requests, in batch order (a flush keeps its place).
        let mut requests: Vec<DeviceRequest<'_>> = Vec::with_capacity(batch.len());
        let mut origin: Vec<usize> = Vec::with_capacity(batch.len());
        let mut transfers_iter = transfers.iter().peekable();
        for (index, operation) in batch.iter().enumerate() {
            if matches!(operation, BlockOperation::Flush) {
                requests.push(DeviceRequest::flush());
                origin.push(index);
                continue;
            }
            let Some(transfer) = transfers_iter.next_if(|transfer| transfer.index == index) else {
                continue;
            };
            let mut segments = heapless::Vec::new();
            let mut complete = true;
            for (segment, held) in transfer.segments.iter().zip(&transfer.held) {
                let mapping = match *held {
                    Held::Kept(at) => kept[at].get(segment.grant.0),
                    Held::Transient(at) => transient.get(at),
                    Held::Missing => None,
                };
                let piece = mapping.and_then(|mapping| {
                    Segment::granted(mapping, segment.page_offset_bytes(), segment.length_bytes())
                });
                match piece {
                    Some(piece) => {
                        let _ = push_joined(&mut segments, piece);
                    }
                    None => complete = false,
                }
            }
            if !complete {
                counters.grant_failures += 1;
                results[index] = Err(ExecuteError::Grant);
                continue;
            }
            counters.joined += (transfer.segments.len() - segments.len()) as u64;
            requests.push(DeviceRequest {
                op: DeviceOp::transfer(transfer.write),
                sector: transfer
                    .segments
                    .first()
                    .map_or(0, |segment| segment.physical_sector),
                segments,
            });
            origin.push(index);
        }
        // 3. All at once to the device.
        device_work(
            blk,
            *interrupt,
            events,
            counters,
            &requests,
            &origin,
            &mut scratch.results,
            results,
        );
        drop(requests);
        VirtioDisk::unmap_all(stuck, transient);
    }

    fn release_grants(&mut self, frontend: DomId) {
        let Some(index) = self
            .kept
            .iter()
            .position(|entry| entry.domain == frontend.0)
        else {
            return;
        };
        let entry = self.kept.swap_remove(index);
        let mappings: Vec<Mapping> = entry.by_reference.into_iter().flatten().collect();
        let count = mappings.len();
        VirtioDisk::unmap_all(&mut self.stuck, mappings);
        if count > 0 {
            info!("disk: d{}: {count} kept grants unmapped", frontend.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycling_keeps_the_allocation() {
        let mut requests: Vec<DeviceRequest<'static>> = Vec::with_capacity(16);
        requests.push(DeviceRequest::flush());
        let (pointer, capacity) = (requests.as_ptr() as usize, requests.capacity());
        let mut again: Vec<DeviceRequest<'_>> = recycle(requests);
        assert!(again.is_empty());
        assert_eq!(
            (again.as_ptr() as usize, again.capacity()),
            (pointer, capacity)
        );
        again.push(DeviceRequest::flush());
        let back: Vec<DeviceRequest<'static>> = recycle(again);
        assert_eq!(
            (back.as_ptr() as usize, back.capacity()),
            (pointer, capacity)
        );
    }
}
