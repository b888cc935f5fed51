//! The local APIC (its one-shot timer is the hypervisor's only tick source),
//! the IOAPIC (every pin masked until a driver domain is given one), and the
//! PIT, used once to calibrate the TSC and the LAPIC timer.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;
use xen_core::layout::MMIO_BASE;

/// Vector of the LAPIC timer.
pub const TIMER_VECTOR: u8 = 0x40;
/// Vector of LAPIC spurious interrupts.
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// Where the LAPIC's registers are mapped.
pub const LAPIC_VIRTUAL: u64 = MMIO_BASE;
/// Where IOAPIC `n`'s registers are mapped.
pub const fn ioapic_virtual(n: usize) -> u64 {
    MMIO_BASE + 0x1000 * (1 + n as u64)
}

mod register {
    pub const ID: u64 = 0x20;
    pub const VERSION: u64 = 0x30;
    pub const EOI: u64 = 0xb0;
    pub const SPURIOUS: u64 = 0xf0;
    pub const LVT_TIMER: u64 = 0x320;
    pub const LVT_LINT0: u64 = 0x350;
    pub const LVT_ERROR: u64 = 0x370;
    pub const TIMER_INITIAL: u64 = 0x380;
    pub const TIMER_CURRENT: u64 = 0x390;
    pub const TIMER_DIVIDE: u64 = 0x3e0;
}

const LVT_MASKED: u32 = 1 << 16;

fn lapic_read(offset: u64) -> u32 {
    // SAFETY: LAPIC_VIRTUAL maps the LAPIC's 4 KiB register page uncached
    // (set up before `init`); offsets used are architectural registers.
    unsafe { ((LAPIC_VIRTUAL + offset) as *const u32).read_volatile() }
}

fn lapic_write(offset: u64, value: u32) {
    // SAFETY: as for `lapic_read`.
    unsafe { ((LAPIC_VIRTUAL + offset) as *mut u32).write_volatile(value) }
}

/// Enables the LAPIC with the spurious vector, masks LINT0 (the PIC's
/// ExtINT line) and arms nothing. Returns (APIC id, version).
pub fn init() -> (u32, u32) {
    lapic_write(register::SPURIOUS, 0x100 | u32::from(SPURIOUS_VECTOR));
    lapic_write(register::LVT_LINT0, LVT_MASKED);
    lapic_write(register::LVT_ERROR, LVT_MASKED);
    lapic_write(register::TIMER_DIVIDE, 0x3); // divide by 16
    lapic_write(register::LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    (lapic_read(register::ID) >> 24, lapic_read(register::VERSION) & 0xff)
}

/// Signals end of interrupt to the LAPIC.
pub fn end_of_interrupt() {
    lapic_write(register::EOI, 0);
}

/// Arms the one-shot timer to fire after `ticks` LAPIC timer ticks (at the
/// divided rate); 0 stops it.
pub fn arm_one_shot(ticks: u32) {
    lapic_write(register::LVT_TIMER, u32::from(TIMER_VECTOR)); // one-shot, unmasked
    lapic_write(register::TIMER_INITIAL, ticks);
}

/// Vector of the operator channel's UART (COM2).
pub const CHANNEL_VECTOR: u8 = 0x41;
/// First vector of assigned PCI functions' lines (one per assignment slot, 8).
pub const DEVICE_VECTOR_BASE: u8 = 0x50;

/// Masks or unmasks IOAPIC `index`'s pin `pin`.
pub fn set_ioapic_pin_masked(index: usize, pin: u32, masked: bool) {
    let base = ioapic_virtual(index);
    let select = base as *mut u32;
    let window = (base + 0x10) as *mut u32;
    // SAFETY: the IOAPIC page is mapped uncached at `base`; IOREGSEL and
    // IOWIN are its architectural registers; one CPU with interrupts off
    // here, so the select-then-access pair is not interleaved.
    unsafe {
        select.write_volatile(0x10 + 2 * pin);
        let low = window.read_volatile();
        let low = if masked { low | LVT_MASKED } else { low & !LVT_MASKED };
        select.write_volatile(0x10 + 2 * pin);
        window.write_volatile(low);
    }
}

/// Routes IOAPIC pin `pin` to `vector` on the boot CPU (physical
/// destination 0, fixed delivery), edge or level triggered, active high or
/// low, unmasked.
pub fn route_ioapic_pin(index: usize, pin: u32, vector: u8, level: bool, active_low: bool) {
    let base = ioapic_virtual(index);
    let select = base as *mut u32;
    let window = (base + 0x10) as *mut u32;
    let low = u32::from(vector) | (u32::from(active_low) << 13) | (u32::from(level) << 15);
    // SAFETY: the IOAPIC page is mapped uncached at `base`; IOREGSEL and
    // IOWIN are its architectural registers; one CPU, no races. The high
    // word (destination APIC id 0) is written before the low word unmasks.
    unsafe {
        select.write_volatile(0x10 + 2 * pin + 1);
        window.write_volatile(0);
        select.write_volatile(0x10 + 2 * pin);
        window.write_volatile(low);
    }
}

/// Masks every pin of the IOAPIC mapped at `ioapic_virtual(index)`;
/// returns how many pins it has.
pub fn mask_ioapic(index: usize) -> u32 {
    let base = ioapic_virtual(index);
    let select = base as *mut u32;
    let window = (base + 0x10) as *mut u32;
    let read = |register: u32| {
        // SAFETY: the IOAPIC page is mapped uncached at `base`; IOREGSEL
        // and IOWIN are its architectural registers; one CPU, no races.
        unsafe {
            select.write_volatile(register);
            window.read_volatile()
        }
    };
    let pins = ((read(1) >> 16) & 0xff) + 1;
    for pin in 0..pins {
        let low = read(0x10 + 2 * pin);
        // SAFETY: as above; setting bit 16 of a redirection entry masks it.
        unsafe {
            select.write_volatile(0x10 + 2 * pin);
            window.write_volatile(low | LVT_MASKED);
        }
    }
    pins
}

/// The PIT's input clock.
pub const PIT_HZ: u64 = 1_193_182;

/// Stops PIT channel 0, which the firmware leaves ticking at 18.2 Hz: its
/// line is masked in the IOAPIC, but a periodic PIT is still a timer the
/// machine (or an emulator's idle skip) keeps waking for. Mode 0 with the
/// longest count fires once more, then stays quiet.
pub fn stop_pit_channel0() {
    let mut command: Port<u8> = Port::new(0x43);
    let mut channel0: Port<u8> = Port::new(0x40);
    // SAFETY: the PIT belongs to the hypervisor (the tick source is the
    // LAPIC timer); this reprograms channel 0 only: lobyte/hibyte access,
    // mode 0 (interrupt on terminal count), count 0 (65536).
    unsafe {
        command.write(0b0011_0000);
        channel0.write(0);
        channel0.write(0);
    }
}

/// What one calibration run measured over the same PIT interval.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// The interval the PIT counted, in nanoseconds.
    pub interval_ns: u64,
    /// TSC ticks over the interval.
    pub tsc_ticks: u64,
    /// LAPIC timer ticks (divided by 16) over the interval.
    pub lapic_ticks: u64,
}

/// Counts the TSC and the LAPIC timer over `pit_ticks` of PIT channel 2 (the
/// speaker gate: no interrupt needed). `None` if the PIT never finished.
pub fn calibrate(pit_ticks: u16) -> Option<Calibration> {
    let mut gate: Port<u8> = Port::new(0x61);
    let mut command: Port<u8> = Port::new(0x43);
    let mut channel2: Port<u8> = Port::new(0x42);
    // SAFETY: the PIT and port 0x61 belong to the hypervisor; this programs
    // channel 2 in mode 0 (interrupt on terminal count) with the speaker off.
    let start = unsafe {
        let value = (gate.read() & !0x02) | 0x01;
        gate.write(value & !0x01);
        command.write(0b1011_0000);
        channel2.write(pit_ticks as u8);
        channel2.write((pit_ticks >> 8) as u8);
        lapic_write(register::LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
        lapic_write(register::TIMER_INITIAL, u32::MAX);
        gate.write(value); // rising edge starts the count
        (super::cpu::rdtsc(), lapic_read(register::TIMER_CURRENT))
    };
    let mut finished = false;
    for _ in 0..50_000_000u32 {
        // SAFETY: reading port 0x61 has no side effects; bit 5 is OUT2.
        if unsafe { gate.read() } & 0x20 != 0 {
            finished = true;
            break;
        }
    }
    let end = (super::cpu::rdtsc(), lapic_read(register::TIMER_CURRENT));
    lapic_write(register::TIMER_INITIAL, 0);
    finished.then(|| Calibration {
        interval_ns: u64::from(pit_ticks) * 1_000_000_000 / PIT_HZ,
        tsc_ticks: end.0.wrapping_sub(start.0),
        lapic_ticks: u64::from(start.1.wrapping_sub(end.1)),
    })
}

/// Timer interrupts taken since boot.
pub static TIMER_INTERRUPTS: AtomicU64 = AtomicU64::new(0);

/// Handles the timer vector: count it and acknowledge it.
pub fn on_timer_interrupt() {
    TIMER_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    end_of_interrupt();
}
