//! Raw access to physical memory through the direct map: the one place the
//! hypervisor turns a physical address into a pointer.
//!
//! Soundness rests on one invariant: only frames the hypervisor owns (page
//! tables, the heap) or firmware tables are read or written here, and the
//! direct map covers them (the boot map covers the first 4 GiB; the final
//! map covers all managed RAM).

use xen_core::acpi::{AcpiError, PhysicalMemory};
use xen_core::frame_allocator::{Frame, FRAME_SIZE};
use xen_core::layout::direct_map;

/// The highest physical address the boot page tables reach (4 GiB).
pub const BOOT_MAP_LIMIT: u64 = 4 << 30;

/// Copies `buffer.len()` bytes from physical `address` (below the limit the
/// current map covers).
pub fn read_bytes(address: u64, buffer: &mut [u8]) {
    let source = direct_map(address) as *const u8;
    // SAFETY: the caller reads firmware- or loader-provided data below
    // BOOT_MAP_LIMIT while the boot map is live (or owned RAM afterwards);
    // the direct map maps it readable; byte copies need no alignment;
    // `buffer` is a distinct, writable Rust slice.
    unsafe { core::ptr::copy_nonoverlapping(source, buffer.as_mut_ptr(), buffer.len()) };
}

/// Reads one 64-bit word of a frame the hypervisor owns.
pub fn read_u64(frame: Frame, index: usize) -> u64 {
    assert!(index < 512);
    let pointer = (direct_map(frame.address()) as *const u64).wrapping_add(index);
    // SAFETY: `frame` is a page-table frame owned by the hypervisor and
    // mapped by the direct map; `index < 512` keeps the read inside it.
    unsafe { pointer.read_volatile() }
}

/// Writes one 64-bit word of a frame the hypervisor owns.
pub fn write_u64(frame: Frame, index: usize, value: u64) {
    assert!(index < 512);
    let pointer = (direct_map(frame.address()) as *mut u64).wrapping_add(index);
    // SAFETY: as for `read_u64`; no Rust reference to this frame exists.
    unsafe { pointer.write_volatile(value) };
}

/// Zeroes a frame the hypervisor owns.
pub fn zero_frame(frame: Frame) {
    let pointer = direct_map(frame.address()) as *mut u8;
    // SAFETY: the frame was just taken from the allocator, so nothing else
    // uses it; the direct map maps all of it writable.
    unsafe { core::ptr::write_bytes(pointer, 0, FRAME_SIZE as usize) };
}

/// Firmware memory for the ACPI parser, readable while the boot map is live.
pub struct BootFirmwareMemory;

impl PhysicalMemory for BootFirmwareMemory {
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), AcpiError> {
        let end = address.checked_add(buffer.len() as u64);
        match end {
            Some(end) if end <= BOOT_MAP_LIMIT => {
                read_bytes(address, buffer);
                Ok(())
            }
            _ => Err(AcpiError::Unreadable { address, length: buffer.len() }),
        }
    }
}

/// Copies bytes out of a frame the hypervisor manages (a domain's or its own).
pub fn read_frame(frame: Frame, offset: usize, out: &mut [u8]) {
    assert!(offset.checked_add(out.len()).is_some_and(|end| end <= FRAME_SIZE as usize));
    let source = (direct_map(frame.address()) as *const u8).wrapping_add(offset);
    // SAFETY: the range lies inside one managed frame (asserted above),
    // mapped by the direct map; a domain may change the bytes concurrently
    // on another CPU, which yields stale data, never unsoundness, because
    // only plain bytes are copied into a buffer the hypervisor owns.
    unsafe { core::ptr::copy_nonoverlapping(source, out.as_mut_ptr(), out.len()) };
}

/// Copies bytes into a frame the hypervisor manages.
pub fn write_frame(frame: Frame, offset: usize, data: &[u8]) {
    assert!(offset.checked_add(data.len()).is_some_and(|end| end <= FRAME_SIZE as usize));
    let target = (direct_map(frame.address()) as *mut u8).wrapping_add(offset);
    // SAFETY: as for `read_frame`; no Rust reference into the frame exists.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), target, data.len()) };
}

/// The bytes of a boot module: reserved frames nothing ever writes.
pub fn module_bytes(start: u64, end: u64) -> &'static [u8] {
    assert!(start <= end);
    let pointer = direct_map(start) as *const u8;
    // SAFETY: the module's frames were reserved in the frame allocator at
    // boot (never handed out, never written) and lie in RAM the direct map
    // covers, for the hypervisor's whole life.
    unsafe { core::slice::from_raw_parts(pointer, (end - start) as usize) }
}

/// The bytes of `count` contiguous frames from `first` that the caller
/// allocated for itself and filled (a kernel image on its way to the
/// loader). The slice must be dropped before the frames are freed.
pub fn owned_frames_bytes(first: Frame, length: usize) -> &'static [u8] {
    let pointer = direct_map(first.address()) as *const u8;
    // SAFETY: the caller took these frames from the allocator for this use
    // alone, so nothing else writes them while the slice lives; the direct
    // map covers them; the caller drops the slice before freeing them.
    unsafe { core::slice::from_raw_parts(pointer, length) }
}
