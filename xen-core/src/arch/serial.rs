//! The 16550 UARTs: COM1, the hypervisor's console, and COM2, the
//! operator's channel to the control domain.

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

/// COM2: the operator's channel (see `xen_core::operator`).
pub mod channel {
    use x86_64::instructions::port::Port;

    const COM2: u16 = 0x2f8;
    /// The ISA IRQ COM2 raises.
    pub const ISA_IRQ: u8 = 3;

    fn register(offset: u16) -> Port<u8> {
        Port::new(COM2 + offset)
    }

    /// Programs COM2 like COM1 but with the receive interrupt on (and
    /// OUT2, which gates the UART's interrupt line on PCs). Returns whether
    /// a UART answers there (QEMU gives one only for a second `-serial`).
    pub fn init() -> bool {
        let mut scratch = register(7);
        // SAFETY: COM2's registers belong to the hypervisor alone; the
        // scratch register has no effect but holding the value.
        let present = unsafe {
            scratch.write(0x5a);
            scratch.read() == 0x5a
        };
        if !present {
            return false;
        }
        let settings: [(u16, u8); 7] = [
            (1, 0x00), // interrupts off while programming
            (3, 0x80), // DLAB on
            (0, 0x01), // divisor low: 115200
            (1, 0x00), // divisor high
            (3, 0x03), // 8N1, DLAB off
            (2, 0xC7), // FIFO on, cleared, 14-byte threshold
            (4, 0x0B), // DTR, RTS, OUT2
        ];
        for (offset, value) in settings {
            // SAFETY: as above.
            unsafe { register(offset).write(value) };
        }
        set_receive_interrupt(true);
        true
    }

    /// Switches the "data received" interrupt on or off.
    pub fn set_receive_interrupt(on: bool) {
        // SAFETY: COM2's interrupt-enable register is the hypervisor's.
        unsafe { register(1).write(u8::from(on)) };
    }

    /// The next byte received, if any.
    pub fn receive() -> Option<u8> {
        // SAFETY: reading the line status has no side effect; reading the
        // data register takes the byte, which is what we want.
        unsafe { (register(5).read() & 1 != 0).then(|| register(0).read()) }
    }

    /// Sends `bytes` as they are (a binary channel: no newline changes).
    pub fn send(bytes: &[u8]) {
        for &byte in bytes {
            for _ in 0..100_000 {
                // SAFETY: reading the line status has no side effect.
                if unsafe { register(5).read() } & 0x20 != 0 {
                    break;
                }
                core::hint::spin_loop();
            }
            // SAFETY: COM2's data register belongs to the hypervisor alone.
            unsafe { register(0).write(byte) };
        }
    }
}
