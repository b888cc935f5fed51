//! The CMOS real-time clock, read once at boot for the wall clock.

use x86_64::instructions::port::Port;
use xen_core::wall_clock::RtcRegisters;

fn read_register(register: u8) -> u8 {
    let mut select: Port<u8> = Port::new(0x70);
    let mut data: Port<u8> = Port::new(0x71);
    // SAFETY: ports 0x70/0x71 are the CMOS index and data registers, owned
    // by the hypervisor; bit 7 of the index keeps NMIs disabled as before.
    unsafe {
        select.write(0x80 | register);
        data.read()
    }
}

fn snapshot() -> RtcRegisters {
    RtcRegisters {
        seconds: read_register(0x00),
        minutes: read_register(0x02),
        hours: read_register(0x04),
        day: read_register(0x07),
        month: read_register(0x08),
        year: read_register(0x09),
        century: read_register(0x32),
        status_b: read_register(0x0b),
    }
}

/// Reads the RTC: waits for no update in progress (bounded), then reads
/// until two snapshots agree.
pub fn read() -> RtcRegisters {
    for _ in 0..100_000 {
        if read_register(0x0a) & 0x80 == 0 {
            break;
        }
    }
    let mut last = snapshot();
    for _ in 0..8 {
        let next = snapshot();
        if next == last {
            break;
        }
        last = next;
    }
    last
}
