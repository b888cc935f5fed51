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
//! - [`transfer`]: submits segments of granted pages to virtio-blk for DMA
//!   straight into or out of them, and does not return before the device
//!   has answered every one it was given.

use alloc::vec;
use alloc::vec::Vec;
use core::ptr::NonNull;

use blkback::{BlockBackend, DomId, Executor, FrontendId, SetupError, VirtualDisk};
use guest_runtime::grant::{self, Failure, Mapping};
use guest_runtime::page::SharedPage;
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use virtio_drivers::transport::pci::PciTransport;
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

/// The virtio-blk driver over our PCI transport.
pub type Blk = VirtIOBlk<DriverHal, PciTransport>;

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

/// One segment of a transfer: `length` bytes at `offset` of a granted
/// page, to or from disk sectors from `sector`.
pub struct Segment<'m> {
    /// The granted page, mapped with a bus address registered in
    /// [`crate::dma`] (writable for a read from disk).
    pub mapping: &'m Mapping,
    /// Byte offset in the page (a multiple of 512).
    pub offset: usize,
    /// Bytes (a non-zero multiple of 512, within the page).
    pub length: usize,
    /// First disk sector.
    pub sector: u64,
}

impl Segment<'_> {
    fn is_valid(&self, write: bool) -> bool {
        self.length > 0
            && self.length % SECTOR_SIZE == 0
            && self.offset % SECTOR_SIZE == 0
            && self.offset + self.length <= PAGE_SIZE as usize
            && (write || !self.mapping.readonly())
            && grant::in_grant_window(self.mapping.address())
    }

    fn address(&self) -> *mut u8 {
        (self.mapping.address() + self.offset as u64) as *mut u8
    }
}

/// A request's header and status as the device reads and writes them: in
/// our RAM, 64-byte aligned so neither crosses a page.
#[repr(C, align(64))]
#[derive(Default)]
pub struct RequestSlot {
    request: BlkReq,
    response: BlkResp,
}

/// Moves every segment between disk and its granted page by DMA (`write`:
/// page to disk), at most `slots.len()` requests in flight, calling
/// `wait` when none has completed (it blocks until the device's interrupt
/// and acknowledges it). Returns only when the device has answered every
/// request it was given; the first error stops further submissions.
///
/// # Errors
///
/// The device's error, or `InvalidParam` for a segment that does not fit
/// its page (nothing is submitted then).
pub fn transfer(
    blk: &mut Blk,
    write: bool,
    segments: &[Segment<'_>],
    slots: &mut [RequestSlot],
    mut wait: impl FnMut(&mut Blk),
) -> Result<(), Error> {
    if slots.is_empty() || segments.iter().any(|segment| !segment.is_valid(write)) {
        return Err(Error::InvalidParam);
    }
    let mut in_flight: Vec<Option<(u16, usize)>> = vec![None; slots.len()];
    let (mut next, mut outstanding, mut result) = (0, 0usize, Ok(()));
    loop {
        while result.is_ok() && next < segments.len() {
            let Some(free) = in_flight.iter().position(Option::is_none) else {
                break;
            };
            let segment = &segments[next];
            let slot = &mut slots[free];
            let submitted = if write {
                // SAFETY: (1) the bytes are `segment.length` bytes inside one
                // page of the grant window that `segment.mapping` keeps mapped
                // (checked by `is_valid`), and the mapping, like `slots`, is
                // borrowed until this function returns, which it does only
                // after the device completed this request; (2) the CPU never
                // reads them through this slice: only its address and length
                // go to the device (our `share` copies nothing), so the
                // frontend writing the page meanwhile changes only what the
                // device reads; (3) `slot` is not touched until its
                // completion below (read_blocks_nb's contract).
                unsafe {
                    let bytes =
                        core::slice::from_raw_parts(segment.address().cast_const(), segment.length);
                    blk.write_blocks_nb(
                        segment.sector as usize,
                        &mut slot.request,
                        bytes,
                        &mut slot.response,
                    )
                }
            } else {
                // SAFETY: as for the write, and the mapping is writable
                // (`is_valid`); the slice is only the device's target, never
                // read or written by the CPU, so no Rust access races the
                // frontend's or the device's writes.
                unsafe {
                    let bytes = core::slice::from_raw_parts_mut(segment.address(), segment.length);
                    blk.read_blocks_nb(
                        segment.sector as usize,
                        &mut slot.request,
                        bytes,
                        &mut slot.response,
                    )
                }
            };
            match submitted {
                Ok(token) => {
                    in_flight[free] = Some((token, next));
                    next += 1;
                    outstanding += 1;
                }
                Err(Error::QueueFull) if outstanding > 0 => break,
                Err(error) => result = Err(error),
            }
        }
        if outstanding == 0 {
            return result;
        }
        let mut progress = false;
        while let Some(token) = blk.peek_used() {
            let Some(index) = in_flight
                .iter()
                .position(|entry| matches!(entry, Some((known, _)) if *known == token))
            else {
                // Completing it is impossible and leaving it would wedge the
                // queue: stop the domain (the device is broken).
                panic!("virtio-blk: the device completed token {token}, which is not in flight");
            };
            let Some((_, segment_index)) = in_flight[index].take() else {
                continue;
            };
            let segment = &segments[segment_index];
            let slot = &mut slots[index];
            let completed = if write {
                // SAFETY: the same request, slice and slot as submitted
                // (complete_write_blocks' contract); see the submission.
                unsafe {
                    let bytes =
                        core::slice::from_raw_parts(segment.address().cast_const(), segment.length);
                    blk.complete_write_blocks(token, &slot.request, bytes, &mut slot.response)
                }
            } else {
                // SAFETY: as above for complete_read_blocks.
                unsafe {
                    let bytes = core::slice::from_raw_parts_mut(segment.address(), segment.length);
                    blk.complete_read_blocks(token, &slot.request, bytes, &mut slot.response)
                }
            };
            outstanding -= 1;
            progress = true;
            if let (Err(error), Ok(())) = (completed, &result) {
                result = Err(error);
            }
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
    /// Takes `pages` contiguous pages of the pool; `None` if no run is free
    /// or they have no contiguous bus address (the device needs one).
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

/// One virtio-blk request of `length` bytes between the disk at `sector`
/// and the start of `run` (`write`: run to disk), blocking in `wait` until
/// the device has answered: the driver domain using its device directly,
/// the baseline of `make bench`.
///
/// # Errors
///
/// The device's error, or `InvalidParam` if `length` is not a non-zero
/// multiple of 512 within the run.
pub fn transfer_own(
    blk: &mut Blk,
    write: bool,
    sector: u64,
    run: &PoolRun,
    length: usize,
    slot: &mut RequestSlot,
    mut wait: impl FnMut(&mut Blk),
) -> Result<(), Error> {
    if length == 0 || length % 512 != 0 || length > run.length() {
        return Err(Error::InvalidParam);
    }
    let address = run.address as *mut u8;
    let token = if write {
        // SAFETY: (1) `length` bytes from the start of `run` are pool pages
        // that `run` holds until it is dropped, which the borrow keeps from
        // happening before this function returns, after the device
        // answered; (2) the CPU never reads them through this slice: only
        // its address and length go to the device; (3) `slot` is not
        // touched until the completion below (write_blocks_nb's contract).
        unsafe {
            let bytes = core::slice::from_raw_parts(address.cast_const(), length);
            blk.write_blocks_nb(
                sector as usize,
                &mut slot.request,
                bytes,
                &mut slot.response,
            )?
        }
    } else {
        // SAFETY: as for the write; the slice is only the device's target,
        // never read or written by the CPU meanwhile.
        unsafe {
            let bytes = core::slice::from_raw_parts_mut(address, length);
            blk.read_blocks_nb(
                sector as usize,
                &mut slot.request,
                bytes,
                &mut slot.response,
            )?
        }
    };
    loop {
        match blk.peek_used() {
            Some(used) if used == token => break,
            // Nothing else is in flight: the device completed what it was
            // never given.
            Some(other) => {
                panic!("virtio-blk: the device completed token {other}, which is not in flight")
            }
            None => wait(blk),
        }
    }
    if write {
        // SAFETY: the same request, slice and slot as submitted
        // (complete_write_blocks' contract).
        unsafe {
            let bytes = core::slice::from_raw_parts(address.cast_const(), length);
            blk.complete_write_blocks(token, &slot.request, bytes, &mut slot.response)
        }
    } else {
        // SAFETY: as above for complete_read_blocks.
        unsafe {
            let bytes = core::slice::from_raw_parts_mut(address, length);
            blk.complete_read_blocks(token, &slot.request, bytes, &mut slot.response)
        }
    }
}
