//! PCI configuration space through ECAM (memory-mapped, from the ACPI MCFG
//! table): bus 0's 1 MiB window, mapped uncached into the hypervisor at
//! [`ECAM_VIRTUAL`]. The filter in `xen_core::pci` is the only user; the
//! driver domain never sees this window.

use core::sync::atomic::{AtomicBool, Ordering};

use xen_core::layout::MMIO_BASE;
use xen_core::pci::{Bdf, ConfigSpace};

/// Where bus 0's configuration space is mapped (after the LAPIC and IOAPIC pages).
pub const ECAM_VIRTUAL: u64 = MMIO_BASE + 0x10_0000;
/// Bytes of the window: 32 devices × 8 functions × 4 KiB.
pub const ECAM_BUS_BYTES: u64 = 1 << 20;

static MAPPED: AtomicBool = AtomicBool::new(false);

/// Records that the window is mapped (the boot code maps it).
pub fn set_mapped() {
    MAPPED.store(true, Ordering::Release);
}

/// Whether there is a window.
pub fn mapped() -> bool {
    MAPPED.load(Ordering::Acquire)
}

/// One function's configuration space in the window.
pub struct EcamFunction {
    base: u64,
}

impl EcamFunction {
    /// The function `bdf` on bus 0, if the window is mapped.
    pub fn new(bdf: Bdf) -> Option<EcamFunction> {
        (mapped() && bdf.bus() == 0).then(|| EcamFunction { base: ECAM_VIRTUAL + bdf.ecam_offset() })
    }
}

impl ConfigSpace for EcamFunction {
    fn read32(&self, offset: u16) -> u32 {
        let offset = u64::from(offset & 0xffc);
        // SAFETY: (1) `base` is a function's 4 KiB page inside the ECAM window,
        // mapped uncached for the hypervisor's whole life once `mapped()`
        // (checked in `new`); `offset` is masked to an aligned dword inside
        // it. (2) Configuration reads have no memory side effects the Rust
        // model sees; one CPU, no concurrent writer.
        unsafe { ((self.base + offset) as *const u32).read_volatile() }
    }

    fn write32(&mut self, offset: u16, value: u32) {
        let offset = u64::from(offset & 0xffc);
        // SAFETY: as in `read32`; the write changes device state only, which
        // is what the filter above decided to do.
        unsafe { ((self.base + offset) as *mut u32).write_volatile(value) }
    }
}
