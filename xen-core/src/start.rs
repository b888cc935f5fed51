//! The boot flow, from the first Rust instruction to the idle loop, and the
//! handlers every trap and panic end up in. Safe code: the arch layer does
//! the privileged work.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use log::{error, info, warn};
use xen_core::cmdline::{self, BootOptions, IdleAction};
use xen_core::frame_allocator::{FrameAllocator, FRAME_SIZE};
use xen_core::layout::{direct_map, FRAME_BITMAP_WORDS, HEAP_BYTES};
use xen_core::logger::{LogSink, Logger};
use xen_core::multiboot::{self, MemoryRegion, RegionKind};
use xen_core::time::{self, TickScale};
use xen_core::trap::{FatalReport, TrapFrame};

use crate::arch::{self, apic, cpu, gdt, paging, percpu, physical};
use crate::clock;

/// The hypervisor's log: COM1 and the in-memory ring.
pub static LOGGER: Logger = Logger::new(LogSink { console: arch::serial::write_bytes, now_ns: clock::now_ns });

/// Every frame of RAM the hypervisor manages.
pub static FRAMES: spin::Mutex<FrameAllocator<FRAME_BITMAP_WORDS>> = spin::Mutex::new(FrameAllocator::new());

/// PIT ticks to calibrate over (10 ms).
const CALIBRATION_PIT_TICKS: u16 = 11_932;

/// Most memory-map regions kept.
const MAX_REGIONS: usize = 64;

/// The first Rust code: called by `arch/boot.rs` on the boot stack with the
/// multiboot magic and information address.
pub extern "C" fn kernel_entry(magic: u32, info_address: u32) -> ! {
    clock::mark_boot();
    arch::serial::init();
    // Only fails if a logger is already set, which nothing else does.
    let _ = log::set_logger(&LOGGER);
    LOGGER.set_level(log::LevelFilter::Info);
    info!("xen-core {}: a security-first paravirtualizing hypervisor", env!("CARGO_PKG_VERSION"));

    let mut info_bytes = [0u8; multiboot::INFO_SIZE];
    physical::read_bytes(u64::from(info_address), &mut info_bytes);
    let info = multiboot::Info::parse(magic, &info_bytes).unwrap_or_else(|error| panic!("boot: {error}"));

    let mut command_line_bytes = [0u8; 1024];
    let command_line = match info.command_line {
        Some(address) => {
            physical::read_bytes(u64::from(address), &mut command_line_bytes);
            multiboot::c_string(&command_line_bytes).unwrap_or("")
        }
        None => "",
    };
    let options = cmdline::parse(command_line);
    LOGGER.set_level(options.log_level);
    info!("command line: \"{command_line}\"");
    for word in &options.unknown {
        warn!("command line: ignoring \"{word}\" (unknown option or bad value)");
    }

    let features = cpu::Features::detect();
    if !features.nx {
        panic!("this CPU has no NX bit: refusing to run without W^X");
    }
    cpu::enable_nx();
    cpu::enable_write_protect();
    gdt::init();
    arch::traps::init();
    arch::pic::remap_and_mask();
    info!(
        "cpu: NX on, SMEP {}, SMAP {}, 1 GiB pages {}, TSC-deadline {}, invariant TSC {}; GDT/TSS/IDT loaded, IST stacks for NMI #DF #MC #DB; 8259 PICs masked",
        yes_no(features.smep),
        yes_no(features.smap),
        yes_no(features.huge_pages),
        yes_no(features.tsc_deadline),
        yes_no(features.invariant_tsc)
    );

    let regions = read_memory_map(&info);
    let (reserved, bundle_range) = reserved_ranges(&info, info_address, command_line_bytes.len());
    let mut frames = FRAMES.lock();
    frames.add_memory_map(regions.iter().copied(), &reserved);
    let counts = frames.counts();
    info!(
        "memory: {} MiB of RAM managed: {} frames free, {} used (firmware, image, modules); {} frames beyond 16 GiB ignored",
        (counts.managed * FRAME_SIZE) >> 20,
        counts.free,
        counts.used,
        counts.ignored
    );

    let firmware = physical::BootFirmwareMemory;
    let acpi = xen_core::acpi::find_rsdp(&firmware)
        .and_then(|rsdp| xen_core::acpi::parse(&firmware, rsdp))
        .unwrap_or_else(|error| panic!("{error}"));
    let madt = acpi.madt.as_ref().unwrap_or_else(|| panic!("ACPI: no MADT: cannot find the interrupt controllers"));
    let mut signatures: heapless::String<160> = heapless::String::new();
    for signature in &acpi.tables {
        let _ = write!(signatures, " {}", core::str::from_utf8(signature).unwrap_or("????"));
    }
    info!("acpi: revision {}, tables:{signatures}", acpi.revision);
    info!(
        "acpi: {} CPU(s), LAPIC at {:#x}, {} IOAPIC(s), {} interrupt override(s), legacy PICs {}",
        madt.enabled_local_apics().count(),
        madt.local_apic_address,
        madt.io_apics.len(),
        madt.overrides.len(),
        if madt.legacy_pics { "present (masked)" } else { "absent" }
    );
    for region in &acpi.pci_config_regions {
        info!(
            "acpi: PCI config space (ECAM) segment {} buses {}..={} at {:#x}",
            region.segment,
            region.start_bus,
            region.end_bus,
            region.start_address()
        );
    }

    let guards = guard_pages();
    let ram = regions
        .iter()
        .filter(|region| region.kind == RegionKind::Available)
        .map(|region| (region.start, region.end().min(xen_core::layout::DIRECT_MAP_MAX_BYTES)));
    let mut space = paging::build(&mut frames, ram, &guards).unwrap_or_else(|error| panic!("paging: {error}"));
    {
        let mut tables = paging::DirectMapTables { frames: &mut frames };
        paging::map_mmio(&mut space, &mut tables, apic::LAPIC_VIRTUAL, madt.local_apic_address)
            .unwrap_or_else(|error| panic!("paging: LAPIC: {error}"));
        for (index, ioapic) in madt.io_apics.iter().enumerate() {
            paging::map_mmio(&mut space, &mut tables, apic::ioapic_virtual(index), u64::from(ioapic.address))
                .unwrap_or_else(|error| panic!("paging: IOAPIC {index}: {error}"));
        }
        // Bus 0's configuration space, for the functions driver domains are given.
        if let Some(region) = acpi.pci_config_regions.iter().find(|region| region.segment == 0 && region.start_bus == 0) {
            let mut mapped = true;
            for page in 0..arch::ecam::ECAM_BUS_BYTES / FRAME_SIZE {
                let offset = page * FRAME_SIZE;
                mapped &= paging::map_mmio(&mut space, &mut tables, arch::ecam::ECAM_VIRTUAL + offset, region.start_address() + offset).is_ok();
            }
            if mapped {
                arch::ecam::set_mapped();
            }
        }
    }
    paging::activate(&space);
    let (smep, smap) = cpu::enable_smep_smap(&features);
    percpu::init(space.root.address());
    arch::entry::init();
    arch::fpu::init();
    info!(
        "paging: own tables at {:#x} ({} table frames); text RX, rodata R+NX, data RW+NX; {} stack guard pages unmapped; no identity map; SMEP {}, SMAP {}",
        space.root.address(),
        space.table_frames,
        guards.len(),
        on_off(smep),
        on_off(smap)
    );

    let heap_frames = frames
        .allocate_contiguous(HEAP_BYTES / FRAME_SIZE, 1)
        .unwrap_or_else(|| panic!("memory: no {} KiB for the heap", HEAP_BYTES >> 10));
    arch::heap::init(heap_frames, HEAP_BYTES as usize);
    check_heap(heap_frames.address());
    drop(frames);

    let (apic_id, apic_version) = apic::init();
    let mut ioapic_pins = [0u32; 8];
    for index in 0..madt.io_apics.len() {
        let pins = apic::mask_ioapic(index);
        if let Some(slot) = ioapic_pins.get_mut(index) {
            *slot = pins;
        }
        crate::devices::add_ioapic(madt.io_apics[index].gsi_base, pins);
        info!("ioapic {index}: {pins} pins, all masked");
    }
    if arch::serial::channel::init() {
        use xen_core::acpi::{Polarity, Trigger};
        let (gsi, polarity, trigger) = madt.gsi_for_isa_irq(arch::serial::channel::ISA_IRQ);
        let home = madt.io_apics.iter().enumerate().find(|(index, ioapic)| {
            gsi >= ioapic.gsi_base && gsi - ioapic.gsi_base < ioapic_pins.get(*index).copied().unwrap_or(0)
        });
        match home {
            Some((index, ioapic)) => {
                let pin = gsi - ioapic.gsi_base;
                apic::route_ioapic_pin(index, pin, apic::CHANNEL_VECTOR, trigger == Trigger::Level, polarity == Polarity::ActiveLow);
                crate::operator_channel::set_present();
                info!("operator channel: COM2 on GSI {gsi} (IOAPIC {index} pin {pin}), for the control domain");
            }
            None => warn!("operator channel: COM2's GSI {gsi} is on no IOAPIC; no channel"),
        }
    } else {
        info!("operator channel: no COM2 (a second -serial gives one)");
    }
    let calibration = apic::calibrate(CALIBRATION_PIT_TICKS)
        .unwrap_or_else(|| panic!("time: the PIT never counted down: cannot calibrate the clocks"));
    apic::stop_pit_channel0();
    let tsc_hz = time::frequency_from(calibration.tsc_ticks, calibration.interval_ns);
    let lapic_hz = time::frequency_from(calibration.lapic_ticks, calibration.interval_ns);
    let scale = TickScale::from_frequency(tsc_hz).unwrap_or_else(|| panic!("time: the TSC did not advance"));
    clock::set_scale(scale);
    if lapic_hz == 0 {
        panic!("time: the LAPIC timer did not count");
    }
    info!(
        "time: TSC {}.{:03} MHz (mul {:#x} shift {}), LAPIC {apic_id} v{apic_version:#x} timer {}.{:03} MHz, measured over {} us of PIT",
        tsc_hz / 1_000_000,
        tsc_hz / 1_000 % 1_000,
        scale.mul,
        scale.shift,
        lapic_hz / 1_000_000,
        lapic_hz / 1_000 % 1_000,
        calibration.interval_ns / 1_000
    );

    if let Some(test) = options.selftest {
        warn!("selftest: provoking {test:?}");
        arch::selftest::provoke(test);
        error!("selftest: {test:?} did not trip its protection");
        cpu::exit(cpu::ExitCode::Failure);
    }

    let bundle = bundle_range.map(|(start, end)| physical::module_bytes(start, end));
    crate::domains::start(bundle, options.testing, (options.permissive, options.policy_disabled), options.on_idle, lapic_hz);

    idle(&options, lapic_hz)
}

/// The idle loop: nothing to run, so halt until the next deadline. The boot
/// timer test arms one one-shot deadline and checks it fires, not early.
fn idle(options: &BootOptions<'_>, lapic_hz: u64) -> ! {
    let armed_at_ns = clock::now_ns();
    let deadline_ns = armed_at_ns + options.timer_test_ms * 1_000_000;
    let ticks = time::ns_to_ticks(deadline_ns - armed_at_ns, lapic_hz).clamp(1, u64::from(u32::MAX));
    apic::arm_one_shot(ticks as u32);
    info!("idle: nothing to run; one-shot timer armed for +{} ms; halting", options.timer_test_ms);
    let mut reported = false;
    loop {
        cpu::wait_for_interrupt();
        if !reported && apic::TIMER_INTERRUPTS.load(Ordering::Relaxed) > 0 {
            reported = true;
            let now_ns = clock::now_ns();
            if now_ns < deadline_ns {
                error!("timer: fired {} ns before its deadline", deadline_ns - now_ns);
                cpu::exit(cpu::ExitCode::Failure);
            }
            info!(
                "timer: one-shot fired {} us after arming ({} us late); no periodic tick",
                (now_ns - armed_at_ns) / 1_000,
                (now_ns - deadline_ns) / 1_000
            );
            if options.on_idle == IdleAction::PowerOff {
                power_off();
            }
        }
    }
}

/// Idles for good once every domain has stopped: halts (tickless), or
/// powers off if `on_idle=poweroff`.
pub fn idle_forever(on_idle: IdleAction) -> ! {
    if on_idle == IdleAction::PowerOff {
        power_off();
    }
    loop {
        cpu::wait_for_interrupt();
    }
}

/// A clean power-off: report the accounting and leave with success.
fn power_off() -> ! {
    let counts = FRAMES.lock().counts();
    let (heap_in_use, heap_peak, _) = arch::heap::usage();
    info!(
        "power off: {} frames free, {} used; heap {} bytes in use (peak {})",
        counts.free, counts.used, heap_in_use, heap_peak
    );
    cpu::exit(cpu::ExitCode::Success)
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

fn on_off(value: bool) -> &'static str {
    if value {
        "on"
    } else {
        "off (CPU lacks it)"
    }
}

fn read_memory_map(info: &multiboot::Info) -> heapless::Vec<MemoryRegion, MAX_REGIONS> {
    let (address, length) = info.memory_map;
    let mut bytes = [0u8; multiboot::MAX_MEMORY_MAP_BYTES];
    let length = (length as usize).min(bytes.len());
    physical::read_bytes(u64::from(address), &mut bytes[..length]);
    let mut regions = heapless::Vec::new();
    for entry in multiboot::memory_map(&bytes[..length]) {
        match entry {
            Ok(region) => {
                info!("  e820 [{:#014x}, {:#014x}) {:?}", region.start, region.end(), region.kind);
                if regions.push(region).is_err() {
                    warn!("memory map: more than {MAX_REGIONS} regions; ignoring the rest");
                    break;
                }
            }
            Err(error) => warn!("memory map: {error}"),
        }
    }
    regions
}

/// Physical ranges that are RAM but not free: low memory (BIOS data, EBDA),
/// the image, the loader's information and the modules.
/// Physical `[start, end)` ranges kept out of the frame allocator.
type ReservedRanges = heapless::Vec<(u64, u64), 24>;

/// Also returns the first module's range: the boot bundle.
fn reserved_ranges(
    info: &multiboot::Info,
    info_address: u32,
    command_line_bytes: usize,
) -> (ReservedRanges, Option<(u64, u64)>) {
    let mut bundle = None;
    let mut reserved = ReservedRanges::new();
    let (image_start, image_end) = paging::image_physical_range();
    let info_start = u64::from(info_address);
    let (map_address, map_length) = info.memory_map;
    let _ = reserved.push((0, 0x10_0000));
    let _ = reserved.push((image_start, image_end));
    let _ = reserved.push((info_start, info_start + multiboot::INFO_SIZE as u64));
    let _ = reserved.push((u64::from(map_address), u64::from(map_address) + u64::from(map_length)));
    if let Some(address) = info.command_line {
        let _ = reserved.push((u64::from(address), u64::from(address) + command_line_bytes as u64));
    }
    if let Some((address, count)) = info.modules {
        let count = (count as usize).min(multiboot::MAX_MODULES);
        let mut bytes = [0u8; multiboot::MAX_MODULES * multiboot::MODULE_ENTRY_SIZE];
        let length = count * multiboot::MODULE_ENTRY_SIZE;
        physical::read_bytes(u64::from(address), &mut bytes[..length]);
        let _ = reserved.push((u64::from(address), u64::from(address) + length as u64));
        for (index, module) in multiboot::modules(&bytes[..length]).enumerate() {
            match module {
                Ok(module) => {
                    info!("module {index}: [{:#x}, {:#x}) {} bytes", module.start, module.end, module.end - module.start);
                    if index == 0 {
                        bundle = Some((u64::from(module.start), u64::from(module.end)));
                    }
                    if reserved.push((u64::from(module.start), u64::from(module.end))).is_err() {
                        warn!("module {index}: too many reserved ranges; its memory is not protected");
                    }
                }
                Err(error) => warn!("boot: {error}"),
            }
        }
    }
    (reserved, bundle)
}

/// The stack guard pages the hypervisor's tables leave unmapped.
fn guard_pages() -> [u64; 6] {
    extern "C" {
        static __guard_boot_stack: u8;
    }
    let entry_area = percpu::guard_pages();
    [
        core::ptr::addr_of!(__guard_boot_stack) as u64,
        entry_area[0],
        entry_area[1],
        entry_area[2],
        entry_area[3],
        entry_area[4],
    ]
}

/// Proves the heap's accounting: a vector's bytes show up, then go away.
fn check_heap(physical_start: u64) {
    let (before, _, size) = arch::heap::usage();
    let numbers: alloc::vec::Vec<u64> = (0..1000).collect();
    let (during, _, _) = arch::heap::usage();
    let sum: u64 = numbers.iter().sum();
    drop(numbers);
    let (after, _, _) = arch::heap::usage();
    if during < before + 8000 || after != before || sum != 499_500 {
        panic!("heap: accounting is off ({before} -> {during} -> {after} bytes)");
    }
    info!("heap: {} KiB at {:#x} (physical {physical_start:#x}), {after} bytes in use", size >> 10, direct_map(physical_start));
}

/// Called for every trap with the saved frame.
pub fn trap_dispatch(frame: &mut TrapFrame) {
    match frame.vector {
        vector if vector == u64::from(apic::TIMER_VECTOR) => apic::on_timer_interrupt(),
        vector if vector == u64::from(apic::SPURIOUS_VECTOR) => {}
        vector if vector == u64::from(apic::CHANNEL_VECTOR) => crate::operator_channel::on_interrupt(),
        vector if (u64::from(apic::DEVICE_VECTOR_BASE)..u64::from(apic::DEVICE_VECTOR_BASE) + 8).contains(&vector) => {
            crate::devices::on_interrupt(vector as u8);
        }
        0..=31 => fatal_trap(frame),
        vector => {
            warn!("interrupt: unexpected vector {vector:#x}");
            apic::end_of_interrupt();
        }
    }
}

fn fatal_trap(frame: &TrapFrame) -> ! {
    let mut text: heapless::String<2048> = heapless::String::new();
    let _ = write!(text, "{}", FatalReport { subject: "FATAL TRAP", frame, cr2: cpu::cr2() });
    LOGGER.emergency_write(text.as_bytes());
    cpu::exit(cpu::ExitCode::Failure)
}

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(panic: &core::panic::PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    if PANICKING.swap(true, Ordering::Relaxed) {
        cpu::exit(cpu::ExitCode::Failure);
    }
    let mut text: heapless::String<1024> = heapless::String::new();
    match panic.location() {
        Some(location) => {
            let _ = writeln!(text, "PANIC at {}:{}: {}", location.file(), location.line(), panic.message());
        }
        None => {
            let _ = writeln!(text, "PANIC: {}", panic.message());
        }
    }
    LOGGER.emergency_write(text.as_bytes());
    cpu::exit(cpu::ExitCode::Failure)
}
