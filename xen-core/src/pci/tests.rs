//! Host tests of the PCI filter against a fake QEMU virtio-blk: BDF parsing,
//! probing (BAR sizes, restored config, refused bridges, hostile capability
//! lists), the guest's view and writes of BARs, command, status, interrupt
//! line and capabilities, and the MMIO pages that may be mapped.

use super::fake_device::*;
use super::*;

const SLOT_3: Bdf = match Bdf::new(0, 3, 0) {
    Ok(bdf) => bdf,
    Err(_) => panic!("a valid BDF"),
};

/// `device` probed at 00:03.0, its log of writes then emptied.
fn probed(device: FakeFunction) -> AssignedFunction<FakeFunction> {
    let mut function = AssignedFunction::probe(SLOT_3, device).unwrap();
    function.config_space_mut().writes.clear();
    function
}

fn assigned() -> AssignedFunction<FakeFunction> {
    probed(FakeFunction::virtio_blk())
}

/// Writes that reached the device since probing.
fn device_writes(function: &AssignedFunction<FakeFunction>) -> usize {
    function.config_space().writes.len()
}

/// The capability list as a guest walks it, one byte at a time, at most 64
/// steps: (offset, id) pairs.
fn guest_walk(function: &mut AssignedFunction<FakeFunction>) -> Vec<(u8, u8)> {
    let mut found = Vec::new();
    if function.read(0x06, 2).unwrap() & 0x10 == 0 {
        return found;
    }
    let mut pointer = function.read(0x34, 1).unwrap() as u8;
    while pointer != 0 && found.len() < 64 {
        found.push((pointer, function.read(u32::from(pointer), 1).unwrap() as u8));
        pointer = function.read(u32::from(pointer) + 1, 1).unwrap() as u8;
    }
    found
}

// ---- BDF ----

#[test]
fn bdf_parses_xl_syntax() {
    let bdf = Bdf::parse("00:03.0").unwrap();
    assert_eq!((bdf.bus(), bdf.device(), bdf.function()), (0, 3, 0));
    assert_eq!(bdf, SLOT_3);
    assert_eq!("0000:00:03.0".parse::<Bdf>(), Ok(SLOT_3));
    let bdf = Bdf::parse("ff:1f.7").unwrap();
    assert_eq!((bdf.bus(), bdf.device(), bdf.function()), (0xFF, 0x1F, 7));
    assert_eq!(bdf.routing_id(), 0xFFFF);
    assert_eq!(Bdf::parse("0:3.1").unwrap(), Bdf::new(0, 3, 1).unwrap());
    assert_eq!(alloc::format!("{}", Bdf::new(0x1A, 3, 2).unwrap()), "1a:03.2");
    assert_eq!(SLOT_3.ecam_offset(), 0x18000);
    assert_eq!(Bdf::from_routing_id(0x0018), SLOT_3);
}

#[test]
fn bdf_refuses_bad_text_and_ranges() {
    assert_eq!(Bdf::parse("00:20.0"), Err(BdfError::DeviceOutOfRange));
    assert_eq!(Bdf::parse("00:03.8"), Err(BdfError::FunctionOutOfRange));
    assert_eq!(Bdf::parse("0001:00:03.0"), Err(BdfError::SegmentNotZero));
    for text in ["", "00:03", "03.0", "000:03.0", "00:003.0", "00:03.00", "0g:03.0", "00:03.0 ", " 00:03.0", "+0:03.0",
        "00:03:0", "0:0:0:03.0", "00000:00:03.0", ":03.0", "00:.0", "00:03.", "00.03:0"]
    {
        assert_eq!(Bdf::parse(text), Err(BdfError::Syntax), "{text:?}");
    }
    assert_eq!(Bdf::new(0, 32, 0), Err(BdfError::DeviceOutOfRange));
    assert_eq!(Bdf::new(0, 0, 8), Err(BdfError::FunctionOutOfRange));
}

// ---- probing ----

#[test]
fn probe_finds_bars_sizes_and_capabilities() {
    let function = assigned();
    assert_eq!((function.vendor_id(), function.device_id()), (0x1AF4, 0x1042));
    assert_eq!(function.bdf(), SLOT_3);
    assert_eq!(
        function.bars(),
        &[
            Bar::Unused,
            Bar::Memory { address: u64::from(BAR1_ADDRESS), size_bytes: 0x1000, is_64bit: false, prefetchable: false },
            Bar::Unused,
            Bar::Unused,
            Bar::Memory { address: BAR4_ADDRESS, size_bytes: 0x4000, is_64bit: true, prefetchable: true },
            Bar::Upper64,
        ]
    );
    let list: Vec<(u8, u8, bool)> = function.capabilities().iter().map(|c| (c.offset, c.id, c.hidden)).collect();
    assert_eq!(list, [(0x98, 0x11, true), (0x84, 9, false), (0x70, 9, false), (0x60, 9, false), (0x50, 9, false), (0x40, 9, false)]);
    assert_eq!(function.msi(), None);
    assert_eq!(
        function.msix(),
        Some(&MsixCapability {
            offset: 0x98,
            table_entries: 2,
            table: MsixRegion { bar_index: 1, offset_bytes: 0, size_bytes: 32 },
            pending_bit_array: MsixRegion { bar_index: 1, offset_bytes: 0x800, size_bytes: 8 },
            enabled: false,
        })
    );
    assert_eq!(function.interrupt_line(), 11);
}

#[test]
fn probe_sizes_with_decode_off_and_restores_everything() {
    let original = FakeFunction::virtio_blk();
    let function = AssignedFunction::probe(SLOT_3, original.clone()).unwrap();
    let device = function.config_space();
    for offset in (0..0x100).step_by(4) {
        assert_eq!(device.get(offset), original.get(offset), "register {offset:#x} changed");
    }
    let writes = &device.writes;
    // Decode off first, back on last, and every BAR access in between.
    assert_eq!(writes.first(), Some(&(0x04, 0x0000)));
    assert_eq!(writes.last(), Some(&(0x04, 0x0003)));
    assert!(writes[1..writes.len() - 1].iter().all(|(offset, _)| (0x10..0x28).contains(offset)));
    // Each of the six registers was sized once: all-ones, then its value.
    for index in 0..6u16 {
        let offset = 0x10 + 4 * index;
        let to_it: Vec<u32> = writes.iter().filter(|(o, _)| *o == offset).map(|(_, v)| *v).collect();
        assert_eq!(to_it, [u32::MAX, original.get(offset)], "BAR {index}");
    }
}

#[test]
fn probe_without_decode_on_leaves_command_alone() {
    let mut device = FakeFunction::virtio_blk();
    device.set(0x04, 0x0010_0000);
    let function = AssignedFunction::probe(SLOT_3, device).unwrap();
    assert!(!function.config_space().writes.is_empty());
    assert!(function.config_space().writes.iter().all(|(offset, _)| *offset != 0x04));
    assert_eq!(function.bars()[4], Bar::Memory { address: BAR4_ADDRESS, size_bytes: 0x4000, is_64bit: true, prefetchable: true });
}

#[test]
fn bridges_and_absent_functions_are_refused() {
    for (header, layout) in [(0x01, 1), (0x81, 1), (0x02, 2), (0x7F, 0x7F)] {
        let mut device = FakeFunction::virtio_blk();
        device.set(0x0C, header << 16);
        let error = AssignedFunction::probe(SLOT_3, device).err();
        assert_eq!(error, Some(ProbeError::NotAnEndpoint { header_type: layout }));
        assert!(alloc::format!("{}", error.unwrap()).contains("bridges cannot be assigned"));
    }
    // A multi-function endpoint is fine.
    let mut device = FakeFunction::virtio_blk();
    device.set(0x0C, 0x80 << 16);
    assert!(AssignedFunction::probe(SLOT_3, device).is_ok());
    for vendor in [0xFFFF_FFFF, 0x1042_0000] {
        let mut device = FakeFunction::virtio_blk();
        device.set(0x00, vendor);
        assert_eq!(AssignedFunction::probe(SLOT_3, device).err(), Some(ProbeError::NoFunction));
    }
}

#[test]
fn invalid_bars_are_refused_and_decode_restored() {
    // A 64-bit BAR in the last slot has no upper half.
    let mut device = FakeFunction::virtio_blk();
    device.set_bar(5, 0xFD00_0004, 0xFFFF_F000);
    device.set(0x20, 0); // BAR 4 unused, so BAR 5 is a BAR of its own
    let error = AssignedFunction::probe(SLOT_3, device);
    assert_eq!(error.err(), Some(ProbeError::InvalidBar { index: 5, value: 0xFD00_0004 }));
    // The reserved memory type 0b11.
    let mut device = FakeFunction::virtio_blk();
    device.set_bar(0, 0xFD00_0006, 0xFFFF_F000);
    assert_eq!(AssignedFunction::probe(SLOT_3, device).err(), Some(ProbeError::InvalidBar { index: 0, value: 0xFD00_0006 }));
    // A BAR not aligned to its size (a device lying about its bits).
    let mut device = FakeFunction::virtio_blk();
    device.set_bar(0, 0xFFFF_F800, 0xFFFF_0000);
    assert!(matches!(AssignedFunction::probe(SLOT_3, device), Err(ProbeError::InvalidBar { index: 0, .. })));
}

#[test]
fn io_and_32_bit_bars_are_sized() {
    let mut device = FakeFunction::virtio_blk();
    device.set_bar(0, 0xC041, 0xFFE0); // 32 ports at 0xc040, upper 16 bits not decoded
    device.set_bar(2, 0xFEBD_2000 | 0b1000, 0xFFFF_FF00); // 256 bytes, prefetchable, 32-bit
    let mut function = probed(device);
    assert_eq!(function.bars()[0], Bar::Io { address: 0xC040, size_bytes: 32 });
    assert_eq!(function.bars()[2], Bar::Memory { address: 0xFEBD_2000, size_bytes: 256, is_64bit: false, prefetchable: true });
    function.write(0x10, 4, u32::MAX).unwrap();
    assert_eq!(function.read(0x10, 4), Ok(0xFFFF_FFE1));
    function.write(0x18, 4, u32::MAX).unwrap();
    assert_eq!(function.read(0x18, 4), Ok(0xFFFF_FF08));
    // I/O BARs are never mapped; a sub-page BAR shares its page with others.
    assert!(function.mappable_mmio().iter().all(|range| range.bar_index == 4));
}

#[test]
fn hostile_capability_lists_are_refused_quickly() {
    let cases: [(&[(u8, u8)], u8); 6] = [
        (&[(0x40, 0x50), (0x50, 0x40)], 0x40),  // a loop
        (&[(0x40, 0x40)], 0x40),                // a self-loop
        (&[(0x40, 0x20)], 0x20),                // into the header
        (&[(0x40, 0x45)], 0x45),                // misaligned
        (&[(0x40, 0x3C)], 0x3C),                // just below 0x40
        (&[(0x40, 0x50), (0x50, 0x44), (0x44, 0x50)], 0x50),
    ];
    for (chain, bad) in cases {
        let mut device = FakeFunction::virtio_blk();
        device.set(0x34, u32::from(chain[0].0));
        for &(offset, next) in chain {
            device.set_capability(offset, 0x09, next, 0x0010);
        }
        let reads_before = device.reads.get();
        let result = AssignedFunction::probe(SLOT_3, device.clone());
        assert_eq!(result.err(), Some(ProbeError::MalformedCapabilityList { pointer: bad }), "{chain:x?}");
        assert!(device.reads.get() - reads_before < 100);
    }
    for pointer in [0x01, 0x3F, 0x41, 0xFF] {
        let mut device = FakeFunction::virtio_blk();
        device.set(0x34, pointer);
        assert_eq!(AssignedFunction::probe(SLOT_3, device).err(), Some(ProbeError::MalformedCapabilityList { pointer: pointer as u8 }));
    }
    // Two MSI-X capabilities.
    let mut device = FakeFunction::virtio_blk();
    device.set_capability(0x40, 0x11, 0x50, 0);
    assert_eq!(AssignedFunction::probe(SLOT_3, device).err(), Some(ProbeError::DuplicateCapability { id: 0x11 }));
}

#[test]
fn the_longest_list_is_48_capabilities() {
    let mut device = FakeFunction::virtio_blk();
    device.set(0x34, 0x40);
    for offset in (0x40..0x100u16).step_by(4) {
        let next = if offset == 0xFC { 0 } else { offset as u8 + 4 };
        device.set_capability(offset as u8, 0x09, next, 0);
    }
    let mut function = probed(device);
    assert_eq!(function.capabilities().len(), 48);
    assert_eq!(guest_walk(&mut function).len(), 48);
}

#[test]
fn without_the_status_bit_there_is_no_list() {
    let mut device = FakeFunction::virtio_blk();
    device.set(0x04, 0x0000_0003);
    let mut function = probed(device);
    assert!(function.capabilities().is_empty());
    assert_eq!(function.msix(), None);
    assert_eq!(function.read(0x34, 1), Ok(0));
    assert!(guest_walk(&mut function).is_empty());
}

// ---- the guest's view of BARs ----

#[test]
fn guest_sizing_never_reaches_the_device() {
    let mut function = assigned();
    // BAR 4 as virtio-drivers sizes a 64-bit BAR: low all-ones, read; high
    // all-ones, read, restore; restore low.
    let low = function.read(0x20, 4).unwrap();
    assert_eq!(low, BAR4_ADDRESS as u32 | 0b1100);
    function.write(0x20, 4, u32::MAX).unwrap();
    let low_mask = function.read(0x20, 4).unwrap();
    assert_eq!(low_mask, 0xFFFF_C00C);
    let high = function.read(0x24, 4).unwrap();
    function.write(0x24, 4, u32::MAX).unwrap();
    let high_mask = function.read(0x24, 4).unwrap();
    assert_eq!(high_mask, u32::MAX);
    function.write(0x24, 4, high).unwrap();
    function.write(0x20, 4, low).unwrap();
    let size = !((u64::from(high_mask) << 32 | u64::from(low_mask)) & !0xF) + 1;
    assert_eq!(size, 0x4000);
    assert_eq!(function.read(0x20, 4), Ok(low));
    assert_eq!(function.read(0x24, 4), Ok(high));
    // BAR 1 (32-bit) and an unused BAR.
    function.write(0x14, 4, u32::MAX).unwrap();
    assert_eq!(function.read(0x14, 4), Ok(0xFFFF_F000));
    assert_eq!(function.read(0x16, 2), Ok(0xFFFF));
    function.write(0x14, 4, BAR1_ADDRESS).unwrap();
    function.write(0x10, 4, u32::MAX).unwrap();
    assert_eq!(function.read(0x10, 4), Ok(0));
    function.write(0x10, 4, 0).unwrap();
    assert_eq!(device_writes(&function), 0);
    assert_eq!(function.counters(), &FilterCounters::default());
}

#[test]
fn moving_a_bar_is_ignored_and_counted() {
    let mut function = assigned();
    function.write(0x14, 4, 0xE000_0000).unwrap();
    assert_eq!(function.read(0x14, 4), Ok(BAR1_ADDRESS));
    assert_eq!(function.counters().bar_moves_ignored, 1);
    // A "restore" to somewhere else ends sizing, and is ignored.
    function.write(0x20, 4, u32::MAX).unwrap();
    function.write(0x20, 4, 0x1000_000C).unwrap();
    assert_eq!(function.read(0x20, 4), Ok(BAR4_ADDRESS as u32 | 0b1100));
    function.write(0x24, 2, 0x0001).unwrap();
    function.write(0x22, 1, 0x12).unwrap();
    assert_eq!(function.counters().bar_moves_ignored, 4);
    // Writing the type bits differently is no move.
    function.write(0x20, 1, 0x00).unwrap();
    assert_eq!(function.counters().bar_moves_ignored, 4);
    assert_eq!(device_writes(&function), 0);
    assert_eq!(function.config_space().get(0x20), BAR4_ADDRESS as u32 | 0b1100);
}

// ---- command and status ----

#[test]
fn decode_bits_stay_bus_master_and_intx_disable_go_through() {
    let mut function = assigned();
    let command = |function: &AssignedFunction<FakeFunction>| function.config_space().get(0x04) as u16;
    // virtio-drivers' bar_info: decode off, then back.
    function.write(0x04, 4, 0x0000_0000).unwrap();
    assert_eq!(command(&function), 0x0003);
    assert_eq!(device_writes(&function), 0);
    assert_eq!(function.counters().command_bits_ignored, 1);
    function.write(0x04, 2, 0x0007).unwrap();
    assert_eq!(command(&function), 0x0007);
    function.write(0x05, 1, 0x04).unwrap();
    assert_eq!(command(&function), 0x0407);
    assert_eq!(function.read(0x04, 2), Ok(0x0407));
    // Clearing decode while keeping bus master: bus master stays, decode too.
    function.write(0x04, 2, 0x0404).unwrap();
    assert_eq!(command(&function), 0x0407);
    function.write(0x04, 2, 0x0403).unwrap();
    assert_eq!(command(&function), 0x0403);
    // SERR, parity, special cycles, fast back-to-back: not the guest's.
    for bit in [3, 5, 6, 8, 9] {
        function.write(0x04, 2, 0x0403 | 1 << bit).unwrap();
        assert_eq!(command(&function), 0x0403);
    }
    // Memory-write-and-invalidate is.
    function.write(0x04, 2, 0x0413).unwrap();
    assert_eq!(command(&function), 0x0413);
    assert_eq!(function.counters().command_bits_ignored, 7);
    assert!(function.config_space().writes.iter().all(|&(offset, value)| offset == 0x04 && value & 3 == 3));
}

#[test]
fn status_is_write_one_to_clear_of_error_bits_only() {
    let mut device = FakeFunction::virtio_blk();
    device.set(0x04, 0xA110_0003); // detected parity, received master abort, master data parity
    let mut function = probed(device);
    // A command write does not clear the status.
    function.write(0x04, 2, 0x0007).unwrap();
    assert_eq!(function.config_space().get(0x04), 0xA110_0007);
    function.write(0x06, 2, 0x2000).unwrap();
    assert_eq!(function.config_space().get(0x04), 0x8110_0007);
    assert_eq!(function.config_space().writes.last(), Some(&(0x04, 0x2000_0007)));
    // All-ones clears only error bits: the capability list bit stays.
    function.write(0x04, 4, 0xFFFF_0007).unwrap();
    assert_eq!(function.config_space().get(0x04), 0x0010_0007);
    assert_eq!(function.config_space().writes.last(), Some(&(0x04, 0xF900_0007)));
    assert_eq!(function.read(0x06, 2), Ok(0x0010));
}

// ---- capabilities ----

#[test]
fn msix_is_hidden_and_virtio_capabilities_stay_reachable() {
    let mut function = assigned();
    assert_eq!(guest_walk(&mut function), [(0x84, 9), (0x70, 9), (0x60, 9), (0x50, 9), (0x40, 9)]);
    // Through the hidden capability by offset: zeros.
    for offset in [0x98, 0x9C, 0xA0] {
        assert_eq!(function.read(offset, 4), Ok(0));
    }
    // The virtio structures' fields read as they are.
    for &(offset, cfg_type, length, bar_offset, bar_length) in &VIRTIO_CAPABILITIES {
        let offset = u32::from(offset);
        assert_eq!(function.read(offset + 2, 1), Ok(u32::from(length)));
        assert_eq!(function.read(offset + 3, 1), Ok(u32::from(cfg_type)));
        assert_eq!(function.read(offset + 8, 4), Ok(bar_offset));
        assert_eq!(function.read(offset + 12, 4), Ok(bar_length));
    }
    assert_eq!(function.read(0x70 + 16, 4), Ok(4));
    // MSI-X cannot be touched.
    for (offset, size, value) in [(0x9A, 2, 0x8000), (0x98, 4, 0x8000_0000), (0x9C, 4, 0), (0xA3, 1, 0)] {
        assert_eq!(function.write(offset, size, value), Err(FilterError::MsiOwnedByHypervisor));
    }
    assert_eq!(FilterError::MsiOwnedByHypervisor.errno(), xen_abi::errno::EPERM);
    assert_eq!(function.counters().msi_writes_refused, 4);
    // Other capability writes are dropped (the PCI config window included).
    function.write(0x84 + 4, 1, 1).unwrap();
    function.write(0x84 + 16, 4, 0xDEAD_BEEF).unwrap();
    function.write(0x41, 1, 0).unwrap();
    assert_eq!(function.counters().read_only_writes_dropped, 3);
    assert_eq!(device_writes(&function), 0);
}

/// A list with MSI (64-bit, masking) first and in the middle of vendor
/// capabilities.
fn device_with_msi(msi_at: u8, list: &[(u8, u8)]) -> FakeFunction {
    let mut device = FakeFunction::virtio_blk();
    device.set(0x34, u32::from(list[0].0));
    for (position, &(offset, id)) in list.iter().enumerate() {
        let next = list.get(position + 1).map_or(0, |&(next, _)| next);
        let rest = if offset == msi_at { 0x0181 } else { 0x0010 };
        device.set_capability(offset, id, next, rest);
    }
    device
}

#[test]
fn msi_is_hidden_wherever_it_is() {
    let device = device_with_msi(0x40, &[(0x40, 5), (0x60, 9), (0x70, 1), (0x80, 9)]);
    let mut function = probed(device);
    assert_eq!(function.msi().map(|msi| (msi.offset, msi.length_bytes, msi.enabled)), Some((0x40, 24, true)));
    assert_eq!(function.read(0x34, 1), Ok(0x60));
    assert_eq!(guest_walk(&mut function), [(0x60, 9), (0x70, 1), (0x80, 9)]);
    for offset in (0x40..0x58).step_by(4) {
        assert_eq!(function.read(offset, 4), Ok(0));
        assert_eq!(function.write(offset, 4, 0), Err(FilterError::MsiOwnedByHypervisor));
    }
    assert_eq!(function.read(0x58, 4), Ok(0x1000));
    function.write(0x58, 4, 0).unwrap();

    let device = device_with_msi(0x60, &[(0x40, 9), (0x60, 5), (0x70, 0x11), (0x80, 9)]);
    let mut function = probed(device);
    assert_eq!(guest_walk(&mut function), [(0x40, 9), (0x80, 9)]);
    assert_eq!(function.read(0x41, 1), Ok(0x80));
    assert_eq!(function.read(0x40, 4).map(|header| header >> 8 & 0xFF), Ok(0x80));
}

#[test]
fn a_list_of_only_msi_reads_as_no_list() {
    let device = device_with_msi(0x40, &[(0x40, 5), (0x60, 0x11)]);
    let mut function = probed(device);
    assert_eq!(function.read(0x34, 1), Ok(0));
    assert_eq!(function.read(0x06, 2), Ok(0));
    assert!(guest_walk(&mut function).is_empty());
}

// ---- other registers ----

#[test]
fn interrupt_line_is_the_hypervisors_and_pin_is_read_only() {
    let mut function = assigned();
    assert_eq!(function.read(0x3C, 1), Ok(11));
    function.set_interrupt_line(5);
    assert_eq!(function.read(0x3C, 1), Ok(5));
    assert_eq!(function.read(0x3C, 2), Ok(0x0105));
    assert_eq!(function.read(0x3D, 1), Ok(1));
    function.write(0x3C, 1, 9).unwrap();
    function.write(0x3C, 4, 0xFFFF_FFFF).unwrap();
    function.write(0x3D, 1, 2).unwrap();
    assert_eq!(function.read(0x3C, 4), Ok(0x0000_0105));
    assert_eq!(function.counters().interrupt_line_writes_ignored, 2);
    assert_eq!(function.counters().read_only_writes_dropped, 1);
    assert_eq!(device_writes(&function), 0);
}

#[test]
fn rom_header_and_extended_space_are_read_only() {
    let mut device = FakeFunction::virtio_blk();
    device.set(0x30, 0xFEB8_0001);
    device.set(0x100, 0x0001_0001); // an extended capability (AER)
    device.set(0x200, 0x1234_5678);
    let mut function = probed(device);
    assert_eq!(function.read(0x30, 4), Ok(0));
    assert_eq!(function.read(0x100, 4), Ok(0));
    assert_eq!(function.read(0xFFC, 4), Ok(0));
    assert_eq!(function.read(0x00, 4), Ok(0x1042_1AF4));
    assert_eq!(function.read(0x02, 2), Ok(0x1042));
    assert_eq!(function.read(0x08, 4), Ok(0x0100_0001));
    assert_eq!(function.read(0x2E, 2), Ok(0x1100));
    for (offset, size, value) in [(0x30, 4, u32::MAX), (0x00, 4, 0), (0x0C, 1, 0x10), (0x0F, 1, 0x40), (0x100, 4, 0), (0xFFF, 1, 0), (0x28, 4, 1), (0x34, 1, 0x40)] {
        function.write(offset, size, value).unwrap();
    }
    assert_eq!(function.counters().read_only_writes_dropped, 8);
    assert_eq!(device_writes(&function), 0);
}

#[test]
fn malformed_accesses_are_errors() {
    let mut function = assigned();
    assert_eq!(function.read(0x1000, 1), Err(FilterError::OffsetOutOfRange));
    assert_eq!(function.read(u32::MAX, 4), Err(FilterError::OffsetOutOfRange));
    assert_eq!(function.write(0x1000, 4, 0), Err(FilterError::OffsetOutOfRange));
    for size in [0, 3, 5, 8, u32::MAX] {
        assert_eq!(function.read(0, size), Err(FilterError::BadSize));
    }
    assert_eq!(function.read(0x02, 4), Err(FilterError::Misaligned));
    assert_eq!(function.read(0x01, 2), Err(FilterError::Misaligned));
    assert_eq!(function.read(0xFFE, 4), Err(FilterError::Misaligned));
    assert_eq!(function.write(0x04, 1, 0x100), Err(FilterError::ValueTooWide));
    assert_eq!(function.write(0x04, 2, 0x1_0000), Err(FilterError::ValueTooWide));
    assert_eq!(FilterError::Misaligned.errno(), xen_abi::errno::EINVAL);
    assert_eq!(function.counters().malformed_accesses, 13);
    assert_eq!(function.counters().total(), 13);
    assert_eq!(device_writes(&function), 0);
}

// ---- MMIO pages ----

#[test]
fn msix_pages_are_never_mappable() {
    let function = assigned();
    let msix_page = MmioRange { bar_index: 1, start_address: u64::from(BAR1_ADDRESS), page_count: 1 };
    assert_eq!(function.forbidden_mmio_pages(), [msix_page]);
    assert_eq!(function.mappable_mmio(), [MmioRange { bar_index: 4, start_address: BAR4_ADDRESS, page_count: 4 }]);
}

#[test]
fn msix_in_the_middle_of_a_bar_splits_it() {
    let mut device = FakeFunction::virtio_blk();
    // Table: 64 entries (1 KiB) at 0x2800 of BAR 4; PBA at 0x3FF8, the last
    // 8 bytes (adjacent pages: one range).
    device.set_capability(MSIX_CAPABILITY, 0x11, 0x84, 63);
    device.set(u16::from(MSIX_CAPABILITY) + 4, 0x2800 | 4);
    device.set(u16::from(MSIX_CAPABILITY) + 8, 0x3FF8 | 4);
    let function = probed(device);
    assert_eq!(
        function.forbidden_mmio_pages(),
        [MmioRange { bar_index: 4, start_address: BAR4_ADDRESS + 0x2000, page_count: 2 }]
    );
    assert_eq!(
        function.mappable_mmio(),
        [
            MmioRange { bar_index: 1, start_address: u64::from(BAR1_ADDRESS), page_count: 1 },
            MmioRange { bar_index: 4, start_address: BAR4_ADDRESS, page_count: 2 },
        ]
    );
}

#[test]
fn msix_outside_its_bar_forbids_the_whole_bar() {
    let mut device = FakeFunction::virtio_blk();
    device.set(u16::from(MSIX_CAPABILITY) + 4, 0x3FF0 | 4); // 32 bytes from 0x3ff0: past the end
    device.set(u16::from(MSIX_CAPABILITY) + 8, 0xFFFF_FFF8 | 4);
    let function = probed(device);
    let whole = MmioRange { bar_index: 4, start_address: BAR4_ADDRESS, page_count: 4 };
    assert_eq!(function.forbidden_mmio_pages(), [whole]);
    assert_eq!(function.mappable_mmio(), [MmioRange { bar_index: 1, start_address: u64::from(BAR1_ADDRESS), page_count: 1 }]);
    // A table in an I/O, unused or nonexistent BAR forbids no page.
    let mut device = FakeFunction::virtio_blk();
    device.set(u16::from(MSIX_CAPABILITY) + 4, 5);
    device.set(u16::from(MSIX_CAPABILITY) + 8, 7);
    let function = probed(device);
    assert!(function.forbidden_mmio_pages().is_empty());
    assert_eq!(function.mappable_mmio().len(), 2);
}

#[test]
fn unaligned_and_unplaced_bars_map_only_whole_pages() {
    let mut device = FakeFunction::virtio_blk();
    device.set_bar(0, 0x0000_0000, 0xFFFF_0000); // 64 KiB, never placed
    device.set_bar(2, 0xFEBD_2800, 0xFFFF_F800); // 2 KiB at an odd half page
    let function = probed(device);
    assert_eq!(function.bars()[0], Bar::Memory { address: 0, size_bytes: 0x1_0000, is_64bit: false, prefetchable: false });
    assert!(function.mappable_mmio().iter().all(|range| range.bar_index == 4));
}

#[test]
fn table_and_pba_apart_leave_holes_between() {
    let mut device = FakeFunction::virtio_blk();
    device.set(u16::from(MSIX_CAPABILITY) + 4, 0x1000 | 4);
    device.set(u16::from(MSIX_CAPABILITY) + 8, 0x3000 | 4);
    let function = probed(device);
    let page = |offset: u64| MmioRange { bar_index: 4, start_address: BAR4_ADDRESS + offset, page_count: 1 };
    assert_eq!(function.forbidden_mmio_pages(), [page(0x1000), page(0x3000)]);
    let bar1 = MmioRange { bar_index: 1, start_address: u64::from(BAR1_ADDRESS), page_count: 1 };
    assert_eq!(function.mappable_mmio(), [bar1, page(0x0000), page(0x2000)]);
}
