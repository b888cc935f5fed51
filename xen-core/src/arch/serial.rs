//! The 16550 UART on COM1: the hypervisor's console.

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;

/// Programs COM1 for 115200 baud, 8N1, FIFOs on, interrupts off.
pub fn init() {
    let settings: [(u16, u8); 7] = [
        (1, 0x00), // interrupts off
        (3, 0x80), // DLAB on
        (0, 0x01), // divisor low: 115200
        (1, 0x00), // divisor high
        (3, 0x03), // 8N1, DLAB off
        (2, 0xC7), // FIFO on, cleared, 14-byte threshold
        (4, 0x03), // DTR, RTS
    ];
    for (offset, value) in settings {
        let mut port: Port<u8> = Port::new(COM1 + offset);
        // SAFETY: COM1's registers belong to the hypervisor alone.
        unsafe { port.write(value) };
    }
}

/// Writes bytes to COM1, turning `\n` into `\r\n`.
pub fn write_bytes(bytes: &[u8]) {
    for &byte in bytes {
        if byte == b'\n' {
            write_byte(b'\r');
        }
        write_byte(byte);
    }
}

fn write_byte(byte: u8) {
    let mut line_status: Port<u8> = Port::new(COM1 + 5);
    let mut data: Port<u8> = Port::new(COM1);
    // Bounded wait: a missing UART must not hang the hypervisor.
    for _ in 0..100_000 {
        // SAFETY: reading the line status register has no side effects.
        if unsafe { line_status.read() } & 0x20 != 0 {
            break;
        }
        core::hint::spin_loop();
    }
    // SAFETY: COM1's data register belongs to the hypervisor alone.
    unsafe { data.write(byte) };
}
