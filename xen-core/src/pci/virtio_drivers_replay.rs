//! The config-space accesses virtio-drivers 0.13 makes, replayed against
//! the filter: what the driver domain's `ConfigurationAccess` will send
//! through the hypercall. All of them are 32-bit (`read_word` /
//! `write_word` at dword offsets).
//!
//! `PciTransport::new(root, device_function)`:
//! 1. read 0x00 (vendor and device ID; 0x1af4 and a virtio device ID or it
//!    gives up);
//! 2. `PciRoot::capabilities`: read 0x04 (status: capability list bit), read
//!    0x34 (masked with 0xFC);
//! 3. for each capability: read its header dword (ID, next, and for
//!    vendor-specific ones `cap_len` and `cfg_type`); if the ID is 9 and
//!    `cap_len >= 16`: read +4 (BAR), +8 (offset), +12 (length), and for the
//!    first notify structure (`cfg_type` 2, `cap_len >= 20`) read +16
//!    (`notify_off_multiplier`). A next pointer below 0x40 or not a multiple
//!    of 4 ends the walk (with a warning);
//! 4. `PciRoot::bar_info(bar)` once for each of the common, notify, ISR and
//!    (if present) device structures, in that order: read 0x04; if I/O or
//!    memory decode is on, write 0x04 with both cleared (status half 0);
//!    read the BAR; write 0xFFFFFFFF to it; read it; if it is a 64-bit
//!    memory BAR: read the next register, write 0xFFFFFFFF to it, read it,
//!    write its original back; write the BAR's original back; if decode was
//!    changed, write 0x04 with the original command. A BAR that sizes to 0
//!    is "not allocated"; so is one at address 0.
//!
//! Nothing else: no MSI/MSI-X (it drives INTx) and no command write of its
//! own. The driver domain's bus enumeration (`enumerate_bus`: read 0x00 of
//! each of the 256 functions, and 0x08 and 0x0C of those present) and its
//! own `set_command` to turn bus mastering on (as virtio-drivers' examples
//! do) come on top.

use super::fake_device::*;
use super::*;

/// One access the guest made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Read(u8),
    Write(u8, u32),
}

/// A driver domain's `ConfigurationAccess` that goes through the filter,
/// remembering what it did.
struct Guest {
    function: AssignedFunction<FakeFunction>,
    steps: Vec<Step>,
}

impl Guest {
    fn read_word(&mut self, offset: u8) -> u32 {
        self.steps.push(Step::Read(offset));
        self.function.read(u32::from(offset), 4).unwrap()
    }

    fn write_word(&mut self, offset: u8, value: u32) {
        self.steps.push(Step::Write(offset, value));
        self.function.write(u32::from(offset), 4, value).unwrap();
    }

    /// `PciRoot::bar_info`: (address, size) of a memory BAR.
    fn bar_info(&mut self, index: u8) -> Option<(u64, u64)> {
        let command = self.read_word(0x04) as u16 & 0x07FF;
        let without_decode = command & !0b11;
        if without_decode != command {
            self.write_word(0x04, u32::from(without_decode));
        }
        let offset = 0x10 + 4 * index;
        let original = self.read_word(offset);
        self.write_word(offset, u32::MAX);
        let mut mask = u64::from(self.read_word(offset));
        let mut upper = 0;
        if original & 0b111 == 0b100 {
            upper = self.read_word(offset + 4);
            self.write_word(offset + 4, u32::MAX);
            mask |= u64::from(self.read_word(offset + 4)) << 32;
            self.write_word(offset + 4, upper);
        } else if mask != 0 {
            mask |= 0xFFFF_FFFF_0000_0000;
        }
        let size = (!(mask & !0xF)).wrapping_add(1);
        self.write_word(offset, original);
        if without_decode != command {
            self.write_word(0x04, u32::from(command));
        }
        (mask != 0 && original & 1 == 0).then_some((u64::from(upper) << 32 | u64::from(original & !0xF), size))
    }
}

/// A virtio structure: (BAR, offset, length).
type Structure = (u8, u32, u32);

/// What `PciTransport::new` learns: common, notify (+ multiplier), ISR,
/// device.
#[derive(Debug, Default, PartialEq, Eq)]
struct Found {
    common: Option<Structure>,
    notify: Option<Structure>,
    notify_off_multiplier: u32,
    isr: Option<Structure>,
    device: Option<Structure>,
}

/// `PciTransport::new`'s accesses, in order.
fn transport_new(guest: &mut Guest) -> (Found, Vec<Option<(u64, u64)>>) {
    let identity = guest.read_word(0x00);
    assert_eq!(identity, 0x1042_1AF4);
    let mut found = Found::default();
    let status = guest.read_word(0x04) >> 16;
    let mut pointer = if status & 0x10 != 0 { guest.read_word(0x34) as u8 & 0xFC } else { 0 };
    while pointer != 0 {
        let header = guest.read_word(pointer);
        let (id, next, length, cfg_type) = (header as u8, (header >> 8) as u8, (header >> 16) as u8, (header >> 24) as u8);
        if id == 9 && length >= 16 {
            let structure = (guest.read_word(pointer + 4) as u8, guest.read_word(pointer + 8), guest.read_word(pointer + 12));
            match cfg_type {
                1 if found.common.is_none() => found.common = Some(structure),
                2 if length >= 20 && found.notify.is_none() => {
                    found.notify = Some(structure);
                    found.notify_off_multiplier = guest.read_word(pointer + 16);
                }
                3 if found.isr.is_none() => found.isr = Some(structure),
                4 if found.device.is_none() => found.device = Some(structure),
                _ => {}
            }
        }
        pointer = if next < 0x40 || next % 4 != 0 { 0 } else { next };
    }
    let structures = [found.common, found.notify, found.isr, found.device];
    let bars = structures.iter().flatten().map(|&(bar, _, _)| guest.bar_info(bar)).collect();
    (found, bars)
}

#[test]
fn virtio_drivers_transport_new_works_through_the_filter() {
    let mut function = AssignedFunction::probe(Bdf::new(0, 3, 0).unwrap(), FakeFunction::virtio_blk()).unwrap();
    function.config_space_mut().writes.clear();
    let mut guest = Guest { function, steps: Vec::new() };
    let (found, bars) = transport_new(&mut guest);
    assert_eq!(
        found,
        Found {
            common: Some((4, 0x0000, 0x1000)),
            notify: Some((4, 0x3000, 0x1000)),
            notify_off_multiplier: 4,
            isr: Some((4, 0x1000, 0x1000)),
            device: Some((4, 0x2000, 0x1000)),
        }
    );
    assert_eq!(bars, [Some((BAR4_ADDRESS, 0x4000)); 4]);

    // The exact sequence: the MSI-X capability (0x98) is never seen.
    let mut expected = Vec::from([Step::Read(0x00), Step::Read(0x04), Step::Read(0x34)]);
    for (offset, reads) in [(0x84u8, 4u8), (0x70, 5), (0x60, 4), (0x50, 4), (0x40, 4)] {
        expected.extend((0..reads).map(|index| Step::Read(offset + 4 * index)));
    }
    let low = BAR4_ADDRESS as u32 | 0xC;
    for _ in 0..4 {
        expected.extend([
            Step::Read(0x04),
            Step::Write(0x04, 0x0000),
            Step::Read(0x20),
            Step::Write(0x20, u32::MAX),
            Step::Read(0x20),
            Step::Read(0x24),
            Step::Write(0x24, u32::MAX),
            Step::Read(0x24),
            Step::Write(0x24, 0),
            Step::Write(0x20, low),
            Step::Write(0x04, 0x0003),
        ]);
    }
    assert_eq!(guest.steps, expected);

    // None of it reached the device; the decode-off writes were ignored.
    assert!(guest.function.config_space().writes.is_empty());
    let counters = *guest.function.counters();
    assert_eq!(counters, FilterCounters { command_bits_ignored: 4, ..FilterCounters::default() });

    // The driver domain then turns bus mastering on (set_command).
    guest.write_word(0x04, 0x0007);
    assert_eq!(guest.function.config_space().get(0x04), 0x0010_0007);
    assert_eq!(guest.function.config_space().writes, [(0x04, 0x0007)]);
}
