//! The physical disk: virtio-blk on our assigned function, driven through
//! virtio-drivers' PCI transport, interrupt-driven (the function's INTx
//! arrives as an event channel; we acknowledge the device, then EOI the
//! line), and blkback's [`Executor`] over it: each segment's grant is
//! mapped with `GNTMAP_device_map` and the device moves the data by DMA
//! straight into or out of the granted page. No bounce buffer, no copy.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use blkback::{BlockOperation, DomId, ExecuteError, Executor, SegmentTransfer};
use guest_runtime::event::{EventLoop, Port};
use guest_runtime::grant::{self, MapSpec, Mapping};
use guest_runtime::physdev::{self, DeviceInfo};
use log::{error, warn};
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::pci::bus::{Command, PciRoot};
use virtio_drivers::transport::pci::PciTransport;

use crate::arch::{self, Blk, DriverHal, PoolRun, RequestSlot, Segment};
use crate::dma;
use crate::pci::{self, PhysdevConfig};

/// virtio-blk's queue holds 16 descriptors, three per request.
const REQUESTS_IN_FLIGHT: usize = 5;

/// What the disk has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskCounters {
    /// Device interrupts taken.
    pub interrupts: u64,
    /// Segments moved by DMA.
    pub segments: u64,
    /// Operations refused because a grant did not map.
    pub grant_failures: u64,
    /// Operations the device failed.
    pub device_errors: u64,
}

/// The virtio-blk device and the domain's event loop (which the store
/// client and the serving loop wait with too: one loop, so no port that
/// fires is lost to another).
pub struct VirtioDisk {
    blk: Blk,
    interrupt: Port,
    events: EventLoop<'static>,
    slots: Vec<RequestSlot>,
    counters: DiskCounters,
    /// Grant mappings that would not unmap (kept, never reused).
    stuck: Vec<Mapping>,
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
        let transport = PciTransport::new::<DriverHal, _>(&mut root, address)
            .map_err(|problem| format!("PCI transport: {problem}"))?;
        let mut blk: Blk =
            VirtIOBlk::new(transport).map_err(|problem| format!("virtio-blk: {problem}"))?;
        blk.enable_interrupts();
        let slots = (0..REQUESTS_IN_FLIGHT)
            .map(|_| RequestSlot::default())
            .collect();
        Ok(VirtioDisk {
            blk,
            interrupt: guest_runtime::event::Port(function.event_port),
            events,
            slots,
            counters: DiskCounters::default(),
            stuck: Vec::new(),
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

    /// Moves `segments` by DMA, blocking on the interrupt while the device works.
    fn transfer(
        &mut self,
        write: bool,
        segments: &[Segment<'_>],
    ) -> Result<(), virtio_drivers::Error> {
        let VirtioDisk {
            blk,
            interrupt,
            events,
            slots,
            counters,
            ..
        } = self;
        let port = *interrupt;
        let result = arch::transfer(blk, write, segments, slots, |blk| {
            if let Err(errno) = events.wait_for_port(port) {
                error!("disk: waiting for the interrupt on port {port}: {errno}");
            }
            let _ = blk.ack_interrupt();
            if let Err(errno) = physdev::eoi(port.0) {
                warn!("disk: EOI of port {port}: {errno}");
            }
            counters.interrupts += 1;
        });
        if result.is_ok() {
            counters.segments += segments.len() as u64;
        }
        result
    }

    /// One request between the disk and our own pool pages `run`, blocking
    /// on the interrupt while the device works (`bench-direct=`).
    ///
    /// # Errors
    ///
    /// The device's.
    pub fn direct(
        &mut self,
        write: bool,
        sector: u64,
        run: &PoolRun,
        length: usize,
    ) -> Result<(), virtio_drivers::Error> {
        let VirtioDisk {
            blk,
            interrupt,
            events,
            slots,
            counters,
            ..
        } = self;
        let port = *interrupt;
        let slot = slots
            .first_mut()
            .ok_or(virtio_drivers::Error::InvalidParam)?;
        arch::transfer_own(blk, write, sector, run, length, slot, |blk| {
            if let Err(errno) = events.wait_for_port(port) {
                error!("disk: waiting for the interrupt on port {port}: {errno}");
            }
            let _ = blk.ack_interrupt();
            if let Err(errno) = physdev::eoi(port.0) {
                warn!("disk: EOI of port {port}: {errno}");
            }
            counters.interrupts += 1;
        })
    }

    /// Unmaps `mappings`, keeping any that will not go.
    fn unmap_all(&mut self, mappings: Vec<Mapping>) {
        for (mapping, failure) in grant::unmap_batch(mappings) {
            error!(
                "disk: unmap of d{} ref {}: {failure}; the page stays mapped",
                mapping.granter(),
                mapping.reference()
            );
            self.stuck.push(mapping);
        }
    }

    /// Maps every segment's grant for DMA, moves the data, unmaps.
    fn move_segments(
        &mut self,
        frontend: DomId,
        segments: &[SegmentTransfer],
        write: bool,
    ) -> Result<(), ExecuteError> {
        // A write to disk only reads the page: map it read-only.
        let specs: Vec<MapSpec> = segments
            .iter()
            .map(|segment| MapSpec {
                granter: frontend.0,
                reference: segment.grant.0,
                readonly: write,
                device: true,
            })
            .collect();
        let results = match grant::map_batch(&specs) {
            Ok(results) => results,
            Err(refused) => {
                warn!(
                    "disk: grant map call for d{} refused: {}",
                    frontend.0, refused.errno
                );
                self.unmap_all(refused.mapped);
                self.counters.grant_failures += 1;
                return Err(ExecuteError::Grant);
            }
        };
        let mut mappings = Vec::with_capacity(results.len());
        let mut failure = None;
        for (spec, result) in specs.iter().zip(results) {
            match result {
                Ok(mapping) if mapping.bus_address() != 0 => mappings.push(mapping),
                Ok(mapping) => {
                    failure = Some(format!(
                        "ref {} mapped without a bus address",
                        spec.reference
                    ));
                    mappings.push(mapping);
                }
                Err(problem) => failure = Some(format!("ref {}: {problem}", spec.reference)),
            }
        }
        if let Some(problem) = failure {
            warn!("disk: d{}: {problem}: request refused", frontend.0);
            self.unmap_all(mappings);
            self.counters.grant_failures += 1;
            return Err(ExecuteError::Grant);
        }
        for mapping in &mappings {
            dma::register_grant(mapping.address(), mapping.bus_address());
        }
        let list: Vec<Segment<'_>> = segments
            .iter()
            .zip(&mappings)
            .map(|(segment, mapping)| Segment {
                mapping,
                offset: segment.page_offset_bytes(),
                length: segment.length_bytes(),
                sector: segment.physical_sector,
            })
            .collect();
        let result = self.transfer(write, &list);
        drop(list);
        dma::clear_grants();
        self.unmap_all(mappings);
        result.map_err(|problem| {
            error!(
                "disk: virtio-blk {}: {problem}",
                if write { "write" } else { "read" }
            );
            self.counters.device_errors += 1;
            ExecuteError::Io
        })
    }
}

impl Executor for VirtioDisk {
    fn execute(&mut self, operation: &BlockOperation<'_>) -> Result<(), ExecuteError> {
        match *operation {
            BlockOperation::Read { frontend, segments } => {
                self.move_segments(frontend, segments, false)
            }
            BlockOperation::Write { frontend, segments } => {
                self.move_segments(frontend, segments, true)
            }
            // virtio-drivers 0.13 offers flush only as a synchronous call,
            // which waits for the device by polling its used ring: the one
            // place the driver spins, for as long as the device takes to
            // flush.
            BlockOperation::Flush => self.blk.flush().map_err(|problem| {
                error!("disk: flush: {problem}");
                self.counters.device_errors += 1;
                ExecuteError::Io
            }),
            BlockOperation::Discard { .. } => Err(ExecuteError::NotSupported),
        }
    }
}
