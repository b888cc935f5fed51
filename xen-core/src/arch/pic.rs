//! The legacy 8259 PICs: remapped away from the exception vectors (SeaBIOS
//! leaves the timer on vector 8, which would look like a double fault) and
//! then masked for good. The hypervisor uses the LAPIC and IOAPIC.

use x86_64::instructions::port::Port;

/// Vector the master PIC's spurious IRQ 7 would arrive on after remapping.
pub const MASTER_BASE: u8 = 0x20;
/// Vector base of the slave PIC after remapping.
pub const SLAVE_BASE: u8 = 0x28;

/// Remaps both PICs to 0x20..0x30 and masks every line.
pub fn remap_and_mask() {
    let writes: [(u16, u8); 10] = [
        (0x20, 0x11), // ICW1: init, ICW4 follows
        (0xa0, 0x11),
        (0x21, MASTER_BASE), // ICW2: vector base
        (0xa1, SLAVE_BASE),
        (0x21, 0x04), // ICW3: slave on IRQ 2
        (0xa1, 0x02),
        (0x21, 0x01), // ICW4: 8086 mode
        (0xa1, 0x01),
        (0x21, 0xff), // OCW1: mask everything
        (0xa1, 0xff),
    ];
    for (port, value) in writes {
        let mut port: Port<u8> = Port::new(port);
        // SAFETY: the PICs' ports belong to the hypervisor; this sequence is
        // the documented initialisation and leaves every line masked.
        unsafe { port.write(value) };
    }
}
