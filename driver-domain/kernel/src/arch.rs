//! The driver kernel's only `unsafe`, each block with its argument:
//!
//! - [`DriverHal`], virtio-drivers' `Hal`: DMA pages from the static pool
//!   ([`crate::dma::POOL`]), MMIO only inside a mapped BAR of an assigned
//!   function, and bus addresses for the buffers the device is given.
//! - [`PhysdevConfig`]'s `ConfigurationAccess` (its `unsafe_clone`).
//! - [`MappedRing`]: a frontend's ring page, mapped from its grant, as the
//!   `'static` page the long-lived [`BlockBackend`] serves; the type keeps
//!   the page out of every other hand and detaches it from the backend
//!   before it unmaps it.
//! - [`Blk`] and [`run_batch`]: our virtio-blk requests on virtio-drivers'
//!   `VirtQueue`, each a header, up to 11 data buffers (granted pages or
//!   our own pool pages, borrowed through [`Segment`]) and a status byte;
//!   `run_batch` submits many at once for DMA straight into or out of the
//!   pages and does not return before the device has answered every one
//!   it was given.

use alloc::boxed::Box;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use blkback::{BlockBackend, DomId, Executor, FrontendId, SetupError, VirtualDisk};
use guest_runtime::grant::{self, Failure, Mapping};
use guest_runtime::page::SharedPage;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::{InterruptStatus, Transport};
use virtio_drivers::{BufferDirection, Error, Hal, PhysAddr};
use xen_abi::layout::PAGE_SIZE;

use crate::dma;
use crate::pci::{self, PhysdevConfig};

/// virtio-drivers' view of our machine.
pub struct DriverHal;

// SAFETY: the implementation requirements of each method:
// - `dma_alloc` returns pages of the static pool (`dma::POOL`), page
//   aligned, zeroed, valid for reads and writes for the program's life (a
//   static), and not handed out again until `dma_dealloc` gives them back
//   (the pool's bitmap), so they alias nothing; their memory is atomics
//   (interior mutability), so the device and the driver writing it through
//   raw pointers never contradicts a Rust reference. The bus address is the
//   hypervisor's for exactly those frames, contiguous (or the allocation
//   fails with 0).
// - `mmio_phys_to_virt` returns `DEVICE_WINDOW_BASE + paddr` only if
//   `[paddr, paddr + size)` lies inside a memory BAR of a function the
//   hypervisor assigned us and says it mapped (uncached) there; no Rust
//   object lives in that window, so the pointer aliases nothing. Otherwise
//   it panics (the domain stops) rather than hand out a wild pointer.
// - `share` returns the bus address of exactly the bytes given (our RAM via
//   the hypervisor, a granted page via its mapping's bus address) or panics;
//   nothing is copied, so `unshare` has nothing to do.
unsafe impl Hal for DriverHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let failed = (0, NonNull::dangling());
        let Some(address) = dma::POOL.allocate(pages) else {
            log::error!("dma: no run of {pages} free pages in the pool");
            return failed;
        };
        let Some(pointer) = NonNull::new(address as *mut u8) else {
            return failed;
        };
        match dma::bus_address(address, pages as u64 * PAGE_SIZE) {
            Some(bus) => (bus, pointer),
            None => {
                log::error!("dma: the hypervisor gave no contiguous bus address for {pages} pages at {address:#x}");
                dma::POOL.release(address, pages);
                failed
            }
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        if dma::POOL.release(vaddr.as_ptr() as u64, pages) {
            0
        } else {
            -1
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        match pci::mmio_window(paddr, size as u64)
            .and_then(|address| NonNull::new(address as *mut u8))
        {
            Some(pointer) => pointer,
            None => panic!("virtio: MMIO {paddr:#x}+{size:#x} is not inside a mapped BAR of ours"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        let address = buffer.as_ptr().cast::<u8>() as u64;
        match dma::bus_address(address, buffer.len() as u64) {
            Some(bus) => bus,
            None => panic!(
                "virtio: no bus address for the buffer {address:#x}+{:#x}",
                buffer.len()
            ),
        }
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

impl ConfigurationAccess for PhysdevConfig {
    fn read_word(&self, device_function: DeviceFunction, register_offset: u8) -> u32 {
        PhysdevConfig::read(device_function, register_offset)
    }

    fn write_word(&mut self, device_function: DeviceFunction, register_offset: u8, data: u32) {
        PhysdevConfig::write(device_function, register_offset, data);
    }

    // SAFETY (of the declaration): `PhysdevConfig` holds no state; every
    // access is one hypercall, which the hypervisor serializes, so a clone
    // can never race another.
    unsafe fn unsafe_clone(&self) -> Self {
        PhysdevConfig
    }
}

/// A frontend's ring page mapped (writable) from its grant, served by a
/// [`BlockBackend`] that outlives it. The page is only ever handed to the
/// backend, through [`attach`](Self::attach) or
/// [`reattach`](Self::reattach), and [`release`](Self::release) detaches it
/// from the backend before unmapping it.
pub struct MappedRing {
    mapping: Mapping,
    attached: Option<FrontendId>,
}

impl MappedRing {
    /// Takes a mapping of a ring page; a read-only one (or one outside the
    /// grant window) is handed back.
    pub fn new(mapping: Mapping) -> Result<MappedRing, Mapping> {
        if mapping.readonly() || !grant::in_grant_window(mapping.address()) {
            return Err(mapping);
        }
        Ok(MappedRing {
            mapping,
            attached: None,
        })
    }

    fn page(&self) -> Option<SharedPage<'static>> {
        let base = NonNull::new(self.mapping.address() as *mut u8)?;
        // SAFETY: `SharedPage::from_raw`'s contract. (1) The address is the
        // page of the grant window the hypervisor mapped writable for this
        // grant (a `Mapping` is made only from a GNTST_okay answer; `new`
        // refused read-only ones and checked the window), page aligned. It
        // stays mapped until `release`, which first detaches the page from
        // the one holder it was given to (the backend, which then drops its
        // ring); no other copy of the page is made, so no access outlives
        // the mapping although the type says `'static`. (2) The grant window
        // holds no Rust object and this program touches the page only through
        // `SharedPage` (the backend's ring); the frontend's writes are outside
        // this program.
        Some(unsafe { SharedPage::from_raw(base) })
    }

    /// Serves the ring with a new frontend of `backend`.
    pub fn attach<E: Executor>(
        &mut self,
        backend: &mut BlockBackend<'static, E>,
        domain: DomId,
        disk: VirtualDisk,
    ) -> Result<FrontendId, SetupError> {
        let page = self.page().ok_or(SetupError::InvalidDomain)?;
        let id = backend.add_frontend(domain, page, disk)?;
        self.attached = Some(id);
        Ok(id)
    }

    /// Serves the ring as frontend `id` again (a reconnection).
    pub fn reattach<E: Executor>(
        &mut self,
        backend: &mut BlockBackend<'static, E>,
        id: FrontendId,
    ) -> bool {
        let Some(page) = self.page() else {
            return false;
        };
        let attached = backend.reattach(id, page);
        if attached {
            self.attached = Some(id);
        }
        attached
    }

    /// Detaches the page from the backend, then unmaps it. On failure the
    /// mapping is handed back (still mapped, no longer served).
    pub fn release<E: Executor>(
        self,
        backend: &mut BlockBackend<'static, E>,
    ) -> Result<(), (Mapping, Failure)> {
        if let Some(id) = self.attached {
            backend.disconnect(id);
        }
        grant::unmap(self.mapping)
    }
}

/// Descriptors in our virtio-blk queue (a 44 KiB request takes 13).
const QUEUE_SIZE: usize = 128;
/// Requests in flight at most (each takes at least 3 descriptors).
const MAX_IN_FLIGHT: usize = QUEUE_SIZE / 3;
/// Bytes in a sector.
pub const SECTOR_SIZE: usize = 512;
/// Data buffers in one request at most (blkif's segment limit).
pub const MAX_SEGMENTS: usize = 11;

bitflags::bitflags! {
    /// The virtio-blk feature bits we may negotiate (virtio 1.2 §5.2.3).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct BlkFeatures: u64 {
        /// The device is read-only.
        const RO = 1 << 5;
        /// The device has a write cache that `VIRTIO_BLK_T_FLUSH` flushes.
        const FLUSH = 1 << 9;
        /// Used-buffer notifications as the driver asks (`used_event`).
        const RING_EVENT_IDX = 1 << 29;
        /// The modern interface.
        const VERSION_1 = 1 << 32;
    }
}

/// virtio-blk request types.
const TYPE_IN: u32 = 0;
const TYPE_OUT: u32 = 1;
const TYPE_FLUSH: u32 = 4;
/// The status the device writes for success.
const STATUS_OK: u8 = 0;
/// A status value the device never writes (set before submission).
const STATUS_UNSET: u8 = 0xff;

/// What a request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceOp {
    /// Disk to the segments.
    Read,
    /// The segments to disk.
    Write,
    /// Flush the device's write cache (no segments).
    Flush,
}

impl DeviceOp {
    /// A write (`true`: the segments to disk) or a read.
    pub const fn transfer(write: bool) -> Self {
        if write {
            DeviceOp::Write
        } else {
            DeviceOp::Read
        }
    }
}

/// One data buffer of a request: `length` bytes at `address`, inside memory
/// that `'m` keeps mapped (a granted page or a run of our DMA pool). Made
/// only by [`Segment::granted`] and [`Segment::own`], which check the range.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'m> {
    address: u64,
    /// The bus address of `address` when known from a grant mapping (0:
    /// not known here; `Hal::share` finds it, and the segment joins none).
    bus: u64,
    length: u32,
    writable: bool,
    owner: PhantomData<&'m ()>,
}

// Three words: a request's eleven are copied often enough to count.
const _: () = assert!(core::mem::size_of::<Segment<'static>>() == 24);

impl<'m> Segment<'m> {
    /// `length` bytes at `offset` of a granted page mapped in the grant
    /// window; `None` unless whole sectors inside the page.
    pub fn granted(mapping: &'m Mapping, offset: usize, length: usize) -> Option<Segment<'m>> {
        let fits = length > 0
            && length % SECTOR_SIZE == 0
            && offset % SECTOR_SIZE == 0
            && offset + length <= PAGE_SIZE as usize
            && grant::in_grant_window(mapping.address());
        fits.then(|| Segment {
            address: mapping.address() + offset as u64,
            // At most a page (checked above).
            length: length as u32,
            writable: !mapping.readonly(),
            bus: match mapping.bus_address() {
                0 => 0,
                bus => bus + offset as u64,
            },
            owner: PhantomData,
        })
    }

    /// `length` bytes at the start of a run of our pool pages; `None`
    /// unless whole sectors inside the run.
    pub fn own(run: &'m PoolRun, length: usize) -> Option<Segment<'m>> {
        let fits = length > 0 && length % SECTOR_SIZE == 0 && length <= run.length();
        let length = u32::try_from(length).ok().filter(|_| fits)?;
        Some(Segment {
            address: run.address,
            length,
            writable: true,
            bus: 0,
            owner: PhantomData,
        })
    }

    /// Extends this segment by `next` when `next` starts where it ends
    /// both in our address space and on the bus, with the same access (two
    /// granted pages that happen to be neighbours in the grant window and
    /// in machine memory): the device then moves both with one buffer.
    /// Returns whether it did. The joined range is one memory range `'m`
    /// keeps mapped, since each part was.
    pub fn join(&mut self, next: &Segment<'m>) -> bool {
        let follows = self.bus != 0
            && next.bus == self.bus + u64::from(self.length)
            && next.address == self.address + u64::from(self.length)
            && next.writable == self.writable;
        match self.length.checked_add(next.length) {
            Some(length) if follows => {
                self.length = length;
                true
            }
            _ => false,
        }
    }
}

/// Appends `segment` to a request's buffers, joining it to the last one
/// when they follow each other (see [`Segment::join`]). Returns `false`
/// only when it had to be pushed and there was no room.
pub fn push_joined<'m>(
    buffers: &mut heapless::Vec<Segment<'m>, MAX_SEGMENTS>,
    segment: Segment<'m>,
) -> bool {
    if let Some(last) = buffers.last_mut() {
        if last.join(&segment) {
            return true;
        }
    }
    buffers.push(segment).is_ok()
}

/// One virtio-blk request of a batch.
///
/// `repr(C)` keeps `op` away from the segment list's uninitialized room:
/// next to it, LLVM stored the two with one `memset` of the whole list
/// (265 bytes, about 35 instructions a request under `-icount`).
#[derive(Clone, Debug)]
#[repr(C)]
pub struct DeviceRequest<'m> {
    /// What it does.
    pub op: DeviceOp,
    /// The first disk sector (ignored for a flush).
    pub sector: u64,
    /// Its data buffers in disk order (none for a flush, 1..=11 otherwise).
    pub segments: heapless::Vec<Segment<'m>, MAX_SEGMENTS>,
}

impl DeviceRequest<'_> {
    /// A flush of the device's write cache.
    pub fn flush() -> Self {
        DeviceRequest {
            op: DeviceOp::Flush,
            sector: 0,
            segments: heapless::Vec::new(),
        }
    }
}

/// A request's header and status as the device reads and writes them: in
/// our RAM, 32-byte aligned so neither crosses a page.
#[repr(C, align(32))]
struct DmaSlot {
    header: [u8; 16],
    status: [u8; 1],
}

/// The virtio-blk device: our requests on virtio-drivers' queue.
pub struct Blk {
    transport: PciTransport,
    queue: VirtQueue<DriverHal, QUEUE_SIZE>,
    capacity: u64,
    features: BlkFeatures,
    /// Headers and statuses of requests in flight, by slot.
    slots: Box<[DmaSlot; MAX_IN_FLIGHT]>,
    /// Per slot: the batch index of the request in it, and its token.
    busy: [Option<(usize, u16)>; MAX_IN_FLIGHT],
}

impl Blk {
    /// Negotiates with the device (read-only, flush, event index, modern),
    /// sets up queue 0 and enables its interrupts.
    ///
    /// # Errors
    ///
    /// The transport's, or `Unsupported` if the device is not modern.
    pub fn new(mut transport: PciTransport) -> Result<Blk, Error> {
        let wanted = BlkFeatures::RO
            | BlkFeatures::FLUSH
            | BlkFeatures::RING_EVENT_IDX
            | BlkFeatures::VERSION_1;
        let features = transport.begin_init(wanted);
        if !features.contains(BlkFeatures::VERSION_1) {
            return Err(Error::Unsupported);
        }
        let capacity = transport.read_consistent(|| {
            let low: u32 = transport.read_config_space(0)?;
            let high: u32 = transport.read_config_space(4)?;
            Ok(u64::from(low) | (u64::from(high) << 32))
        })?;
        let mut queue = VirtQueue::new(
            &mut transport,
            0,
            false,
            features.contains(BlkFeatures::RING_EVENT_IDX),
        )?;
        transport.finish_init();
        queue.set_dev_notify(true);
        Ok(Blk {
            transport,
            queue,
            capacity,
            features,
            slots: Box::new(
                [const {
                    DmaSlot {
                        header: [0; 16],
                        status: [STATUS_UNSET],
                    }
                }; MAX_IN_FLIGHT],
            ),
            busy: [None; MAX_IN_FLIGHT],
        })
    }

    /// Its size in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether the device refuses writes.
    pub fn readonly(&self) -> bool {
        self.features.contains(BlkFeatures::RO)
    }

    /// Acknowledges the device's interrupt.
    pub fn ack_interrupt(&mut self) -> InterruptStatus {
        self.transport.ack_interrupt()
    }

    /// Submits `request` (batch index `index`) in a free slot.
    fn submit(&mut self, index: usize, request: &DeviceRequest<'_>) -> Result<(), Error> {
        let data = request.segments.len();
        let shape_ok = match request.op {
            DeviceOp::Flush => data == 0,
            DeviceOp::Read => {
                (1..=MAX_SEGMENTS).contains(&data)
                    && request.segments.iter().all(|segment| segment.writable)
            }
            DeviceOp::Write => (1..=MAX_SEGMENTS).contains(&data),
        };
        if !shape_ok {
            return Err(Error::InvalidParam);
        }
        let Some(slot) = self.busy.iter().position(Option::is_none) else {
            return Err(Error::QueueFull);
        };
        let kind = match request.op {
            DeviceOp::Read => TYPE_IN,
            DeviceOp::Write => TYPE_OUT,
            DeviceOp::Flush => TYPE_FLUSH,
        };
        let sector = if request.op == DeviceOp::Flush {
            0
        } else {
            request.sector
        };
        let Blk { queue, slots, .. } = self;
        let dma = &mut slots[slot];
        dma.header[..4].copy_from_slice(&kind.to_le_bytes());
        dma.header[4..8].fill(0);
        dma.header[8..].copy_from_slice(&sector.to_le_bytes());
        dma.status[0] = STATUS_UNSET;
        let token = with_buffers(dma, request, |inputs, outputs| {
            // SAFETY: `add`'s contract: the buffers stay valid and untouched
            // until `pop_used` returns this token. The header and status are
            // this slot's, which stays busy (never rewritten) until then; the
            // segments' memory is borrowed for `'m` by the batch, and
            // `run_batch` does not return while a request is in flight.
            unsafe { queue.add(inputs, outputs) }
        })?;
        self.busy[slot] = Some((index, token));
        Ok(())
    }

    /// Pops the next completed request: its batch index and status.
    fn complete(&mut self, requests: &[DeviceRequest<'_>]) -> Option<(usize, Result<(), Error>)> {
        let token = self.queue.peek_used()?;
        let Some(slot) = self
            .busy
            .iter()
            .position(|entry| matches!(entry, Some((_, known)) if *known == token))
        else {
            panic!("virtio-blk: the device completed token {token}, which is not in flight");
        };
        let (index, _) = self.busy[slot]?;
        let request = &requests[index];
        let Blk { queue, slots, .. } = self;
        let dma = &mut slots[slot];
        let popped = with_buffers(dma, request, |inputs, outputs| {
            // SAFETY: the buffers this token was added with (rebuilt from
            // the same request and slot), as `pop_used` requires.
            unsafe { queue.pop_used(token, inputs, outputs) }
        });
        let status = dma.status[0];
        self.busy[slot] = None;
        let result = popped.and(match status {
            STATUS_OK => Ok(()),
            2 => Err(Error::Unsupported),
            _ => Err(Error::IoError),
        });
        Some((index, result))
    }

    /// Tells the device about new requests, unless it said it needs no
    /// notification.
    fn kick(&mut self) {
        if self.queue.should_notify() {
            self.transport.notify(0);
        }
    }
}

/// A list of buffers `VirtQueue::add` takes: a header or status and up to
/// eleven data buffers.
type Buffers<T> = heapless::Vec<T, { MAX_SEGMENTS + 1 }>;

/// Calls `f` with the input (device-readable) and output (device-writable)
/// buffers of `request` in slot `dma`, as `VirtQueue::add` and `pop_used`
/// take them. A request of at most one data buffer (the usual case, a
/// request's neighbouring pages being joined) passes arrays of just its
/// buffers; a longer one, lists of up to twelve. Under `-icount` each
/// copy or zeroing of a list costs an instruction per word: returning two
/// lists cost six copies of 200 bytes a request, building them in place
/// four zeroings.
fn with_buffers<R>(
    dma: &mut DmaSlot,
    request: &DeviceRequest<'_>,
    f: impl for<'a> FnOnce(&'a [&'a [u8]], &'a mut [&'a mut [u8]]) -> R,
) -> R {
    match request.segments.as_slice() {
        [] => f(&[&dma.header[..]], &mut [&mut dma.status[..]]),
        [segment] if request.op == DeviceOp::Write => f(
            &[&dma.header[..], device_reads(segment)],
            &mut [&mut dma.status[..]],
        ),
        [segment] => f(
            &[&dma.header[..]],
            &mut [device_writes(segment), &mut dma.status[..]],
        ),
        _ => {
            // `pop_used` ties the lists' borrow to their elements' lifetime:
            // lists with no drop glue let that borrow last (nothing is
            // leaked, they hold references only).
            let mut inputs = ManuallyDrop::new(Buffers::new());
            let mut outputs = ManuallyDrop::new(Buffers::new());
            buffers(dma, request, &mut inputs, &mut outputs);
            f(&inputs, &mut outputs)
        }
    }
}

/// Fills `inputs` (device-readable) and `outputs` (device-writable), both
/// empty, with the buffers of `request` in slot `dma`.
fn buffers<'s>(
    dma: &'s mut DmaSlot,
    request: &DeviceRequest<'s>,
    inputs: &mut Buffers<&'s [u8]>,
    outputs: &mut Buffers<&'s mut [u8]>,
) {
    let DmaSlot { header, status } = dma;
    let _ = inputs.push(&header[..]);
    for segment in &request.segments {
        if request.op == DeviceOp::Write {
            let _ = inputs.push(device_reads(segment));
        } else {
            let _ = outputs.push(device_writes(segment));
        }
    }
    let _ = outputs.push(&mut status[..]);
}

/// The bytes of `segment`, for the device to read.
fn device_reads<'m>(segment: &Segment<'m>) -> &'m [u8] {
    // SAFETY: a `Segment` is a checked range of memory its `'m` borrow
    // keeps mapped (a joined one: neighbouring pages, each checked and kept
    // mapped so); the device reads it and the CPU does not touch it while
    // the request is in flight.
    unsafe { core::slice::from_raw_parts(segment.address as *const u8, segment.length as usize) }
}

/// The bytes of `segment`, for the device to write. Only for a request the
/// submission checked to have writable segments (a read).
fn device_writes<'m>(segment: &Segment<'m>) -> &'m mut [u8] {
    // SAFETY: as in `device_reads`, and mapped writable (checked at
    // submission); the device writes it, nothing else reads or writes it
    // meanwhile. The slice is only handed to the queue, never dereferenced
    // by the CPU, so rebuilding it at completion aliases nothing we touch.
    unsafe { core::slice::from_raw_parts_mut(segment.address as *mut u8, segment.length as usize) }
}

/// Carries out every request of `requests` (as many in flight as the queue
/// holds), writing each one's result to the same index of `results`, and
/// calls `wait` when none has completed (it blocks until the device's
/// interrupt and acknowledges it). A flush starts once every request before
/// it has completed, and the requests after it once it has. Returns only
/// when the device has answered every request it was given.
pub fn run_batch(
    blk: &mut Blk,
    requests: &[DeviceRequest<'_>],
    results: &mut [Result<(), Error>],
    mut wait: impl FnMut(&mut Blk),
) {
    let (mut next, mut outstanding, mut barrier) = (0, 0usize, false);
    loop {
        let mut submitted = false;
        while next < requests.len() && !barrier {
            let request = &requests[next];
            if request.op == DeviceOp::Flush && outstanding > 0 {
                break;
            }
            match blk.submit(next, request) {
                Ok(()) => {
                    outstanding += 1;
                    submitted = true;
                    barrier = request.op == DeviceOp::Flush;
                }
                Err(Error::QueueFull) if outstanding > 0 => break,
                Err(error) => {
                    if let Some(result) = results.get_mut(next) {
                        *result = Err(error);
                    }
                }
            }
            next += 1;
            if barrier {
                break;
            }
        }
        if submitted {
            blk.kick();
        }
        if outstanding == 0 {
            if next >= requests.len() {
                return;
            }
            continue;
        }
        let mut progress = false;
        while let Some((index, result)) = blk.complete(requests) {
            if let Some(slot) = results.get_mut(index) {
                *slot = result;
            }
            if requests[index].op == DeviceOp::Flush {
                barrier = false;
            }
            outstanding -= 1;
            progress = true;
        }
        if !progress {
            wait(blk);
        }
    }
}

/// A run of our own DMA pool pages ([`dma::POOL`]), for `bench-direct=`:
/// the device reads and writes it, the CPU never touches it through a
/// reference (its pages are `PageBuffer` atomics).
pub struct PoolRun {
    address: u64,
    pages: usize,
}

impl PoolRun {
    /// Takes `pages` contiguous pool pages with a contiguous bus address.
    pub fn take(pages: usize) -> Option<PoolRun> {
        let address = dma::POOL.allocate(pages)?;
        let run = PoolRun { address, pages };
        dma::bus_address(address, pages as u64 * PAGE_SIZE).map(|_| run)
    }

    /// Its length in bytes.
    pub fn length(&self) -> usize {
        self.pages * PAGE_SIZE as usize
    }
}

impl Drop for PoolRun {
    fn drop(&mut self) {
        let _ = dma::POOL.release(self.address, self.pages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(address: u64, length: u32, bus: u64, writable: bool) -> Segment<'static> {
        Segment {
            address,
            length,
            writable,
            bus,
            owner: PhantomData,
        }
    }

    const PAGE: u64 = PAGE_SIZE;

    #[test]
    fn pages_next_to_each_other_in_the_window_and_on_the_bus_become_one_buffer() {
        let mut buffers = heapless::Vec::new();
        for page in 0..3 {
            let segment = granted(
                0x8000_1000 + page * PAGE,
                PAGE as u32,
                0x041a_0000 + page * PAGE,
                true,
            );
            assert!(push_joined(&mut buffers, segment));
        }
        assert_eq!(buffers.len(), 1);
        assert_eq!(buffers[0].address, 0x8000_1000);
        assert_eq!(buffers[0].length, 3 * PAGE as u32);
    }

    #[test]
    fn anything_else_stays_a_buffer_of_its_own() {
        let first = granted(0x8000_1000, PAGE as u32, 0x041a_0000, true);
        let cases = [
            (
                "next in the window, before on the bus",
                granted(0x8000_2000, PAGE as u32, 0x0419_f000, true),
            ),
            (
                "next on the bus, elsewhere in the window",
                granted(0x8000_4000, PAGE as u32, 0x041a_1000, true),
            ),
            (
                "a gap inside the page",
                granted(0x8000_2200, 512, 0x041a_1200, true),
            ),
            (
                "read-only after writable",
                granted(0x8000_2000, PAGE as u32, 0x041a_1000, false),
            ),
            (
                "no bus address known",
                granted(0x8000_2000, PAGE as u32, 0, true),
            ),
        ];
        for (what, next) in cases {
            let mut joined = first;
            assert!(!joined.join(&next), "{what}");
            assert_eq!(joined.length, PAGE as u32, "{what}");
        }
        let mut own = granted(0x8000_1000, PAGE as u32, 0, true);
        assert!(
            !own.join(&granted(0x8000_2000, PAGE as u32, PAGE, true)),
            "a segment without a known bus address joins nothing"
        );
    }

    #[test]
    fn sectors_of_one_page_join_too_and_a_full_list_refuses() {
        let mut buffers = heapless::Vec::new();
        assert!(push_joined(
            &mut buffers,
            granted(0x8000_1000, 1024, 0x5000, true)
        ));
        assert!(push_joined(
            &mut buffers,
            granted(0x8000_1400, 512, 0x5400, true)
        ));
        assert_eq!((buffers.len(), buffers[0].length), (1, 1536));
        let mut full = heapless::Vec::new();
        for page in 0..MAX_SEGMENTS as u64 {
            assert!(push_joined(
                &mut full,
                granted(
                    0x8000_1000 + 2 * page * PAGE,
                    512,
                    0x9000 + 2 * page * PAGE,
                    true
                )
            ));
        }
        assert!(!push_joined(
            &mut full,
            granted(0x9000_0000, 512, 0x1_0000_0000, true)
        ));
        assert_eq!(full.len(), MAX_SEGMENTS);
    }
}
