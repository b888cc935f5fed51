//! PCI functions assigned to driver domains, in the running hypervisor:
//! assignment at boot (probe through ECAM, the policy's `resource { use }`,
//! BARs mapped uncached at `DEVICE_WINDOW_BASE + address` minus MSI-X
//! pages, INTx routed through the IOAPIC to a VIRQ of the owner's), the
//! filtered configuration calls, the interrupt path (mask the level line,
//! raise the event; unmask on the owner's EOI), and release at teardown.
//!
//! INTx routing: without an AML interpreter we cannot read the DSDT's
//! `_PRT`, so we use QEMU q35's fixed routing (ICH9 PIRQ E..H for slot
//! devices: GSI 20 + (slot + pin) mod 4, level triggered). On another
//! chipset the line would be wrong: that is checked (the host bridge must
//! be Intel's q35, 8086:29c0) and assignment then gives no interrupt.

use core::sync::atomic::{AtomicU32, Ordering};

use log::{info, warn};
use xen_abi::physdev::{bar_flags, device_info, DEVICE_WINDOW_BASE};
use xen_abi::{errno, DomId};
use xen_core::domain::Domain;
use xen_core::page_table::{flags, PAGE_4K};
use xen_core::pci::{AssignedFunction, Bar, Bdf, ConfigSpace};

use crate::arch::apic;
use crate::arch::ecam::EcamFunction;
use crate::arch::machine::DirectMapMachine;

/// Functions assigned at most (machine-wide).
pub const MAX_ASSIGNED: usize = 8;
/// Our VIRQs for device interrupts: `VIRQ_DEVICE_BASE + slot` (Xen's
/// VIRQ_ARCH_0..7 range).
pub const VIRQ_DEVICE_BASE: u32 = 16;

/// One assigned function.
struct Assigned {
    owner: DomId,
    function: AssignedFunction<EcamFunction>,
    /// IOAPIC index and pin of its INTx line, if routed.
    line: Option<(usize, u32)>,
    /// The owner's port bound to its VIRQ.
    port: u32,
}

static DEVICES: spin::Mutex<heapless::Vec<Option<Assigned>, MAX_ASSIGNED>> = spin::Mutex::new(heapless::Vec::new());
/// Bit `slot`: the line of slot fired and is masked, the owner not yet told.
static PENDING: AtomicU32 = AtomicU32::new(0);

/// The vector of assignment slot `slot`.
pub fn vector_of(slot: usize) -> u8 {
    apic::DEVICE_VECTOR_BASE + slot as u8
}

/// `(gsi_base, pins)` per IOAPIC, in index order, as the boot code found them.
static IOAPICS: spin::Mutex<heapless::Vec<(u32, u32), 8>> = spin::Mutex::new(heapless::Vec::new());

/// Records an IOAPIC's GSI range (boot).
pub fn add_ioapic(gsi_base: u32, pins: u32) {
    let _ = IOAPICS.lock().push((gsi_base, pins));
}

/// The IOAPIC and pin of `gsi`.
fn home(gsi: u32) -> Option<(usize, u32)> {
    IOAPICS.lock().iter().enumerate().find_map(|(index, &(base, pins))| (gsi >= base && gsi - base < pins).then(|| (index, gsi - base)))
}

/// Whether the host bridge is q35's (whose INTx routing we know).
fn q35() -> bool {
    let Ok(bridge) = Bdf::new(0, 0, 0) else { return false };
    EcamFunction::new(bridge).is_some_and(|config| config.read32(0) == 0x29c0_8086)
}

/// Assigns `bdf` to `domain` (already built): probes it, maps its BARs into
/// the domain, routes its interrupt to a VIRQ port bound in the domain.
/// The caller has asked the policy.
pub fn assign(domain: &mut Domain, machine: &mut DirectMapMachine<'_, { xen_core::layout::FRAME_BITMAP_WORDS }>, bdf: Bdf) -> Result<(), &'static str> {
    let config = EcamFunction::new(bdf).ok_or("no ECAM window for its bus")?;
    let mut devices = DEVICES.lock();
    if devices.iter().flatten().any(|device| device.function.bdf() == bdf) {
        return Err("already assigned");
    }
    let slot = match devices.iter().position(Option::is_none) {
        Some(slot) => slot,
        None => {
            devices.push(None).map_err(|_| "too many assigned functions")?;
            devices.len() - 1
        }
    };
    let mut function = AssignedFunction::probe(bdf, config).map_err(|problem| {
        warn!("pci {bdf}: not assignable: {problem:?}");
        "probe refused it"
    })?;
    for range in function.mappable_mmio() {
        for page in 0..range.page_count {
            let physical = range.start_address + page * PAGE_4K;
            let leaf = flags::USER | flags::WRITABLE | flags::NO_EXECUTE | flags::NO_CACHE | flags::WRITE_THROUGH;
            domain.space.map(machine, DEVICE_WINDOW_BASE + physical, physical, PAGE_4K, leaf).map_err(|_| "cannot map a BAR page")?;
        }
        info!("pci {bdf}: BAR {} {:#x} (+{} pages) mapped for {} at {:#x}", range.bar_index, range.start_address, range.page_count, domain.id, DEVICE_WINDOW_BASE + range.start_address);
    }
    let virq = VIRQ_DEVICE_BASE + slot as u32;
    let port = domain.events.bind_virq(virq, 0).map_err(|_| "cannot bind its interrupt's VIRQ")?.0;
    let pin = function.read(0x3d, 1).unwrap_or(0);
    let line = if (1..=4).contains(&pin) && q35() {
        let gsi = 20 + (u32::from(bdf.device()) + pin - 1) % 4;
        match home(gsi) {
            Some((index, ioapic_pin)) => {
                apic::route_ioapic_pin(index, ioapic_pin, vector_of(slot), true, false);
                info!("pci {bdf}: INT{} on GSI {gsi} (level), to {} as VIRQ {virq} on port {port}", char::from(b'A' + pin as u8 - 1), domain.id);
                Some((index, ioapic_pin))
            }
            None => None,
        }
    } else {
        warn!("pci {bdf}: no interrupt routed (pin {pin}; q35 routing known only)");
        None
    };
    function.set_interrupt_line(line.map_or(0xff, |(_, pin)| pin as u8));
    devices[slot] = Some(Assigned { owner: domain.id, function, line, port });
    Ok(())
}

/// A device interrupt (vector `vector`): mask its line, note it, EOI.
pub fn on_interrupt(vector: u8) {
    let slot = usize::from(vector - apic::DEVICE_VECTOR_BASE);
    if let Some(Some(device)) = DEVICES.lock().get(slot) {
        if let Some((index, pin)) = device.line {
            apic::set_ioapic_pin_masked(index, pin, true);
        }
        PENDING.fetch_or(1 << slot, Ordering::AcqRel);
    }
    apic::end_of_interrupt();
}

/// Takes the slots whose interrupts fired: `(owner, virq)` for each.
pub fn take_pending(mut deliver: impl FnMut(DomId, u32)) {
    let pending = PENDING.swap(0, Ordering::AcqRel);
    if pending == 0 {
        return;
    }
    let devices = DEVICES.lock();
    for (slot, device) in devices.iter().enumerate() {
        if pending & (1 << slot) != 0 {
            if let Some(device) = device {
                deliver(device.owner, VIRQ_DEVICE_BASE + slot as u32);
            }
        }
    }
}

/// Whether `id` owns any function.
pub fn owns_devices(id: DomId) -> bool {
    DEVICES.lock().iter().flatten().any(|device| device.owner == id)
}

fn with_function<T>(caller: DomId, bdf: u64, body: impl FnOnce(&mut Assigned) -> Result<T, i64>) -> Result<T, i64> {
    let bdf = u16::try_from(bdf).map(Bdf::from_routing_id).map_err(|_| errno::EINVAL)?;
    let mut devices = DEVICES.lock();
    // Not the caller's: as if there were no device there.
    let device = devices.iter_mut().flatten().find(|device| device.owner == caller && device.function.bdf() == bdf).ok_or(errno::ENODEV)?;
    body(device)
}

/// `PCI_CONFIG_READ` by `caller`.
pub fn config_read(caller: DomId, bdf: u64, offset: u64, size: u64) -> Result<u32, i64> {
    with_function(caller, bdf, |device| {
        let (offset, size) = (u32::try_from(offset).map_err(|_| errno::EINVAL)?, u32::try_from(size).map_err(|_| errno::EINVAL)?);
        device.function.read(offset, size).map_err(|problem| problem.errno())
    })
}

/// `PCI_CONFIG_WRITE` by `caller`.
pub fn config_write(caller: DomId, bdf: u64, offset: u64, size: u64, value: u64) -> Result<(), i64> {
    with_function(caller, bdf, |device| {
        let (offset, size, value) = (
            u32::try_from(offset).map_err(|_| errno::EINVAL)?,
            u32::try_from(size).map_err(|_| errno::EINVAL)?,
            u32::try_from(value).map_err(|_| errno::EINVAL)?,
        );
        device.function.write(offset, size, value).map_err(|problem| problem.errno())
    })
}

/// `DEVICE_INFO` by `caller`: its `index`th function's description.
pub fn describe(caller: DomId, index: u64) -> Result<[u8; device_info::SIZE], i64> {
    let devices = DEVICES.lock();
    let device = devices.iter().flatten().filter(|device| device.owner == caller).nth(usize::try_from(index).map_err(|_| errno::ENOENT)?).ok_or(errno::ENOENT)?;
    let mut block = [0u8; device_info::SIZE];
    block[device_info::BDF..][..4].copy_from_slice(&u32::from(device.function.bdf().routing_id()).to_le_bytes());
    block[device_info::VENDOR..][..2].copy_from_slice(&device.function.vendor_id().to_le_bytes());
    block[device_info::DEVICE..][..2].copy_from_slice(&device.function.device_id().to_le_bytes());
    let port = if device.line.is_some() { device.port } else { 0 };
    block[device_info::EVENT_PORT..][..4].copy_from_slice(&port.to_le_bytes());
    let mappable = device.function.mappable_mmio();
    let mut count = 0;
    for (index, bar) in device.function.bars().iter().enumerate() {
        let (flags_value, physical, size) = match *bar {
            Bar::Memory { address, size_bytes, is_64bit, prefetchable } => {
                let mut value = bar_flags::MEMORY;
                if is_64bit {
                    value |= bar_flags::WIDE;
                }
                if prefetchable {
                    value |= bar_flags::PREFETCHABLE;
                }
                if mappable.iter().any(|range| usize::from(range.bar_index) == index) {
                    value |= bar_flags::MAPPED;
                }
                (value, address, size_bytes)
            }
            Bar::Io { address, size_bytes } => (0, u64::from(address), u64::from(size_bytes)),
            Bar::Unused | Bar::Upper64 => continue,
        };
        if count == device_info::MAX_BARS {
            break;
        }
        let at = device_info::BARS + count * device_info::BAR_ENTRY_SIZE;
        block[at..][..4].copy_from_slice(&(index as u32).to_le_bytes());
        block[at + 4..][..4].copy_from_slice(&flags_value.to_le_bytes());
        block[at + 8..][..8].copy_from_slice(&physical.to_le_bytes());
        block[at + 16..][..8].copy_from_slice(&size.to_le_bytes());
        count += 1;
    }
    block[device_info::BAR_COUNT..][..4].copy_from_slice(&(count as u32).to_le_bytes());
    Ok(block)
}

/// `EOI` by `caller` for `port`: unmask the line behind it.
pub fn end_of_interrupt(caller: DomId, port: u64) -> Result<(), i64> {
    let devices = DEVICES.lock();
    let device = devices.iter().flatten().find(|device| device.owner == caller && u64::from(device.port) == port).ok_or(errno::EINVAL)?;
    if let Some((index, pin)) = device.line {
        apic::set_ioapic_pin_masked(index, pin, false);
    }
    Ok(())
}

/// `id` is gone: mask its lines, stop its functions' DMA and decoding, and
/// forget them.
pub fn release(id: DomId) {
    let mut devices = DEVICES.lock();
    for slot in devices.iter_mut() {
        if slot.as_ref().is_some_and(|device| device.owner == id) {
            if let Some(mut device) = slot.take() {
                if let Some((index, pin)) = device.line {
                    apic::set_ioapic_pin_masked(index, pin, true);
                }
                let bdf = device.function.bdf();
                let config = device.function.config_space_mut();
                // Bus master off (no more DMA into frames about to be reused).
                let command = config.read32(4);
                config.write32(4, command & 0xffff & !0x4);
                info!("pci {bdf}: released by {id} ({} refused or ignored accesses while assigned)", device.function.counters().total());
            }
        }
    }
}
