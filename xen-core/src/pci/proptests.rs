//! Proptests of the PCI filter: any sequence of guest reads and writes, of
//! any offset, size and value, never panics, never writes a BAR or the
//! decode bits of the real device, and never lets MSI-X be seen; and any
//! capability area a device may present is probed without a hang or panic.

use proptest::prelude::*;

use super::fake_device::*;
use super::*;

#[derive(Clone, Debug)]
enum Operation {
    Read { offset: u32, size: u32 },
    Write { offset: u32, size: u32, value: u32 },
}

/// Offsets mostly in the header and capabilities, sometimes anywhere.
fn offset() -> impl Strategy<Value = u32> {
    prop_oneof![6 => 0u32..0x100, 2 => 0u32..0x1100, 1 => any::<u32>()]
}

/// Mostly valid sizes.
fn size() -> impl Strategy<Value = u32> {
    prop_oneof![8 => prop::sample::select(vec![1u32, 2, 4]), 1 => any::<u32>()]
}

/// Values that matter to BARs and the command register, and anything.
fn value() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => prop::sample::select(vec![u32::MAX, 0, 0xFF, 0xFFFF, 0x0007, 0x0400, BAR1_ADDRESS, BAR4_ADDRESS as u32 | 0xC]),
        3 => any::<u32>(),
    ]
}

/// A next pointer: mostly the end or a well-formed one, sometimes anything.
fn next_pointer() -> impl Strategy<Value = u8> {
    prop_oneof![2 => Just(0u8), 3 => (0u8..48).prop_map(|slot| 0x40 + 4 * slot), 1 => any::<u8>()]
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        1 => (offset(), size()).prop_map(|(offset, size)| Operation::Read { offset, size }),
        2 => (offset(), size(), value()).prop_map(|(offset, size, value)| Operation::Write { offset, size, value }),
    ]
}

/// Runs the operations, then checks what reached the device.
fn run(function: &mut AssignedFunction<FakeFunction>, operations: &[Operation]) {
    for operation in operations {
        match *operation {
            Operation::Read { offset, size } => {
                if let Ok(value) = function.read(offset, size) {
                    assert!(size == 4 || value >> (8 * size) == 0);
                }
            }
            Operation::Write { offset, size, value } => {
                let _ = function.write(offset, size, value);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn guest_accesses_never_move_bars_or_decode(operations in prop::collection::vec(operation(), 0..64)) {
        let original = FakeFunction::virtio_blk();
        let mut function = AssignedFunction::probe(Bdf::new(0, 3, 0).unwrap(), original.clone()).unwrap();
        function.config_space_mut().writes.clear();
        run(&mut function, &operations);
        let device = function.config_space();
        prop_assert!(device.bar_writes().is_empty(), "BAR written: {:x?}", device.bar_writes());
        for &(offset, value) in &device.writes {
            prop_assert_eq!(offset, 0x04, "only the command/status register is ever written");
            prop_assert_eq!(value & 0b11, 0b11, "decode bits kept");
            prop_assert_eq!(value & 0x03E8, 0, "only bus master, MWI, INTx disable change");
        }
        for offset in (0x10..0x28).step_by(4) {
            prop_assert_eq!(device.get(offset), original.get(offset));
        }
        prop_assert_eq!(device.get(0x04) & 0b11, 0b11);
        // BARs read as the real placement, or as the size mask while sized.
        for index in 0..6u32 {
            let value = function.read(0x10 + 4 * index, 4).unwrap();
            let real = original.get(0x10 + 4 * index as u16);
            let sizing = [0, 0xFFFF_F000, 0, 0, 0xFFFF_C00C, u32::MAX][index as usize];
            prop_assert!(value == real || value == sizing, "BAR {} reads {:#x}", index, value);
        }
        // The guest's walk never meets MSI-X, and ends.
        let mut pointer = function.read(0x34, 1).unwrap();
        for _ in 0..6 {
            if pointer == 0 { break; }
            prop_assert_ne!(function.read(pointer, 1).unwrap(), 0x11);
            pointer = function.read(pointer + 1, 1).unwrap();
        }
        prop_assert_eq!(pointer, 0);
    }

    #[test]
    fn any_capability_area_probes_without_hang_or_panic(
        area in prop::collection::vec((any::<u32>(), next_pointer()), 48),
        pointer in prop_oneof![any::<u8>(), (0u8..48).prop_map(|slot| 0x40 + 4 * slot)],
        links in prop::collection::vec((0u8..48, 0u8..49, prop::sample::select(vec![5u8, 9, 0x11, 0x10, 1])), 0..12),
        operations in prop::collection::vec(operation(), 0..32),
    ) {
        let mut device = FakeFunction::virtio_blk();
        for (slot, &(dword, next)) in area.iter().enumerate() {
            device.set(0x40 + 4 * slot as u16, (dword & !0xFF00) | u32::from(next) << 8);
        }
        // Some well-formed links among the noise, so lists get long.
        // (`to` 48 ends the list.)
        for &(from, to, id) in &links {
            let next = if to == 48 { 0 } else { 0x40 + 4 * to };
            device.set_capability(0x40 + 4 * from, id, next, 0x0181);
        }
        device.set(0x34, u32::from(pointer));
        let reads_before = device.reads.get();
        let probed = AssignedFunction::probe(Bdf::new(0, 3, 0).unwrap(), device);
        if let Ok(mut function) = probed {
            prop_assert!(function.config_space().reads.get() - reads_before < 200);
            prop_assert!(function.capabilities().len() <= 48);
            let mut pointer = function.read(0x34, 1).unwrap();
            let mut steps = 0;
            while pointer != 0 {
                prop_assert!(steps < 48, "guest walk does not end");
                prop_assert!(pointer >= 0x40 && pointer % 4 == 0);
                let id = function.read(pointer, 1).unwrap();
                prop_assert!(id != 5 && id != 0x11, "the guest meets MSI or MSI-X at {:#x}", pointer);
                pointer = function.read(pointer + 1, 1).unwrap();
                steps += 1;
            }
            function.config_space_mut().writes.clear();
            run(&mut function, &operations);
            prop_assert!(function.config_space().bar_writes().is_empty());
            let _ = (function.forbidden_mmio_pages(), function.mappable_mmio());
        }
    }
}
