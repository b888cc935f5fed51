//! Host tests of the hypercall dispatcher: every hostile argument becomes an
//! errno for the caller, and good calls do what they say.

use super::*;
use crate::domain::tests::{build, FakeMachine};
use xen_abi::layout::RAM_BASE;

fn call(domain: &mut Domain, machine: &FakeMachine, testing: bool, registers: [u64; 6]) -> (Action, Vec<String>) {
    let frame = TrapFrame {
        rax: registers[0],
        rdi: registers[1],
        rsi: registers[2],
        rdx: registers[3],
        r10: registers[4],
        r8: registers[5],
        ..TrapFrame::default()
    };
    let mut lines = Vec::new();
    let mut sink = |line: &[u8]| lines.push(String::from_utf8_lossy(line).into_owned());
    let mut context = Context { clock: || 0, testing, console_sink: &mut sink };
    let action = dispatch(domain, machine, &frame, &mut context);
    (action, lines)
}

fn setup() -> (Box<Domain>, FakeMachine) {
    let mut machine = FakeMachine::new(1200);
    let domain = build(&mut machine);
    (domain, machine)
}

const BUFFER: u64 = RAM_BASE + 0x8000;

#[test]
fn null_version_and_unknown_numbers() {
    let (mut domain, machine) = setup();
    assert_eq!(call(&mut domain, &machine, false, [hypercall::NULL, 0, 0, 0, 0, 0]).0, Action::Return(0));
    assert_eq!(call(&mut domain, &machine, false, [hypercall::XEN_VERSION, 0, 0, 0, 0, 0]).0, Action::Return(VERSION));
    assert_eq!(call(&mut domain, &machine, false, [hypercall::XEN_VERSION, 9, 0, 0, 0, 0]).0, Action::Return(-errno::ENOSYS));
    for number in [63, 64, 9999, u64::MAX] {
        assert_eq!(call(&mut domain, &machine, false, [number, 0, 0, 0, 0, 0]).0, Action::Return(-errno::ENOSYS), "{number}");
    }
    assert_eq!(domain.hypercalls, 7);
}

#[test]
fn console_write_copies_once_and_prefixes() {
    let (mut domain, mut machine) = setup();
    domain.write_guest(&mut machine, BUFFER, b"hello\n").unwrap();
    let (action, lines) = call(&mut domain, &machine, false, [hypercall::CONSOLE_IO, console::WRITE, 6, BUFFER, 0, 0]);
    assert_eq!(action, Action::Return(6));
    assert_eq!(lines, vec!["(d3) hello"]);
    let (action, lines) = call(&mut domain, &machine, false, [hypercall::CONSOLE_IO, console::WRITE, 0, 0, 0, 0]);
    assert_eq!((action, lines.len()), (Action::Return(0), 0));
}

#[test]
fn console_write_refuses_hostile_buffers_and_lengths() {
    let (mut domain, machine) = setup();
    let ram_end = RAM_BASE + crate::domain::tests::MEMORY;
    let cases = [
        (16, 0xffff_ffff_8010_0000, errno::EFAULT), // the hypervisor's image
        (16, 0x0000_8000_0000_0000, errno::EFAULT), // non-canonical
        (16, 0x1000, errno::EFAULT),                // below RAM
        (32, ram_end - 16, errno::EFAULT),          // runs off the end of RAM
        (16, u64::MAX - 8, errno::EFAULT),          // wraps around
        (u64::MAX, BUFFER, errno::EINVAL),          // huge length
        (console::MAX_WRITE_BYTES + 1, BUFFER, errno::EINVAL),
    ];
    for (count, buffer, expected) in cases {
        let (action, lines) = call(&mut domain, &machine, false, [hypercall::CONSOLE_IO, console::WRITE, count, buffer, 0, 0]);
        assert_eq!(action, Action::Return(-expected), "count {count} buffer {buffer:#x}");
        assert!(lines.is_empty());
    }
    let (action, _) = call(&mut domain, &machine, false, [hypercall::CONSOLE_IO, 77, 1, BUFFER, 0, 0]);
    assert_eq!(action, Action::Return(-errno::ENOSYS));
}

#[test]
fn operator_channel_and_log_requests_are_bounded_then_passed_on() {
    let (mut domain, machine) = setup();
    let max = console::MAX_CHANNEL_BYTES;
    let (action, _) = call(&mut domain, &machine, false, [hypercall::CONSOLE_IO, console::READ, max, BUFFER, 0, 0]);
    assert_eq!(action, Action::Operator(OperatorRequest::Read { buffer: BUFFER, count: max }));
    let (action, _) = call(&mut domain, &machine, false, [hypercall::CONSOLE_IO, console::CHANNEL_WRITE, 5, BUFFER, 0, 0]);
    assert_eq!(action, Action::Operator(OperatorRequest::Write { buffer: BUFFER, count: 5 }));
    for command in [console::READ, console::CHANNEL_WRITE] {
        let (action, _) = call(&mut domain, &machine, false, [hypercall::CONSOLE_IO, command, max + 1, BUFFER, 0, 0]);
        assert_eq!(action, Action::Return(-errno::EINVAL));
    }
    let read_log = |count, from| [hypercall::SYSCTL, sysctl::READ_CONSOLE, BUFFER, count, from, 0];
    let (action, _) = call(&mut domain, &machine, false, read_log(64, 7));
    assert_eq!(action, Action::Operator(OperatorRequest::ReadLog { buffer: BUFFER, count: 64, from: 7 }));
    for count in [0, 7, max + 9, u64::MAX] {
        assert_eq!(call(&mut domain, &machine, false, read_log(count, 0)).0, Action::Return(-errno::EINVAL), "{count}");
    }
    let (action, _) = call(&mut domain, &machine, false, [hypercall::SYSCTL, sysctl::PHYSINFO, BUFFER, 0, 0, 0]);
    assert_eq!(action, Action::Operator(OperatorRequest::PhysInfo { buffer: BUFFER }));
    assert_eq!(call(&mut domain, &machine, false, [hypercall::SYSCTL, 99, 0, 0, 0, 0]).0, Action::Return(-errno::ENOSYS));
}

#[test]
fn sched_op_yield_block_and_shutdown() {
    let (mut domain, mut machine) = setup();
    assert_eq!(call(&mut domain, &machine, false, [hypercall::SCHED_OP, sched::YIELD, 0, 0, 0, 0]).0, Action::Yield);
    assert_eq!(call(&mut domain, &machine, false, [hypercall::SCHED_OP, sched::BLOCK, 0, 0, 0, 0]).0, Action::Block);
    for reason in [ShutdownReason::Poweroff, ShutdownReason::Reboot, ShutdownReason::Crash] {
        domain.write_guest(&mut machine, BUFFER, &(reason as u32).to_le_bytes()).unwrap();
        let (action, _) = call(&mut domain, &machine, false, [hypercall::SCHED_OP, sched::SHUTDOWN, BUFFER, 0, 0, 0]);
        assert_eq!(action, Action::Shutdown(reason));
    }
    domain.write_guest(&mut machine, BUFFER, &99u32.to_le_bytes()).unwrap();
    let (action, _) = call(&mut domain, &machine, false, [hypercall::SCHED_OP, sched::SHUTDOWN, BUFFER, 0, 0, 0]);
    assert_eq!(action, Action::Return(-errno::EINVAL));
    let (action, _) = call(&mut domain, &machine, false, [hypercall::SCHED_OP, sched::SHUTDOWN, 0xffff_8000_0000_0000, 0, 0, 0]);
    assert_eq!(action, Action::Return(-errno::EFAULT));
    let (action, _) = call(&mut domain, &machine, false, [hypercall::SCHED_OP, 42, 0, 0, 0, 0]);
    assert_eq!(action, Action::Return(-errno::ENOSYS));
}

#[test]
fn test_operations_need_testing_mode() {
    let (mut domain, machine) = setup();
    let registers = [hypercall::TEST_OP, test_op::CLOBBER_VECTOR_REGISTERS, 0, 0, 0, 0];
    assert_eq!(call(&mut domain, &machine, false, registers).0, Action::Return(-errno::EPERM));
    assert_eq!(call(&mut domain, &machine, true, registers).0, Action::ClobberVectorState);
    assert_eq!(call(&mut domain, &machine, true, [hypercall::TEST_OP, test_op::HEALTH, 0, 0, 0, 0]).0, Action::Return(1));
}

#[test]
fn sysret_only_to_canonical_ring_3() {
    let syscall = 0x100;
    let good = TrapFrame {
        vector: syscall,
        rip: RAM_BASE + 0x1000,
        cs: crate::domain::USER_CODE_SELECTOR,
        ss: crate::domain::USER_DATA_SELECTOR,
        ..TrapFrame::default()
    };
    assert!(may_sysret(&good, syscall));
    assert!(!may_sysret(&TrapFrame { rip: 0x0000_8000_0000_0000, ..good }, syscall));
    assert!(!may_sysret(&TrapFrame { rip: 0xffff_8000_0000_0000, ..good }, syscall));
    assert!(!may_sysret(&TrapFrame { vector: 14, ..good }, syscall), "a trap frame returns with iretq");
    assert!(!may_sysret(&TrapFrame { cs: 0x08, ..good }, syscall));
}

#[test]
fn rflags_are_sanitized() {
    // IOPL 3, NT, RF, VM set by a hostile frame: all cleared; IF forced on.
    let hostile = 0x3000 | 0x4000 | 0x1_0000 | 0x2_0000;
    assert_eq!(sanitize_rflags(hostile), 0x202);
    // Arithmetic flags, DF, AC survive.
    assert_eq!(sanitize_rflags(0x4_0cd5), 0x4_0cd5 | 0x202);
}

#[test]
fn domctl_blocks_are_copied_in_and_checked() {
    let (mut domain, mut machine) = setup();
    let mut block = [0u8; xen_abi::domctl::SIZE];
    block[0..4].copy_from_slice(&xen_abi::domctl::PAUSE_DOMAIN.to_le_bytes());
    block[4..8].copy_from_slice(&xen_abi::domctl::INTERFACE_VERSION.to_le_bytes());
    block[8..10].copy_from_slice(&5u16.to_le_bytes());
    domain.write_guest(&mut machine, BUFFER, &block).unwrap();
    let registers = [hypercall::DOMCTL, BUFFER, 0, 0, 0, 0];
    match call(&mut domain, &machine, false, registers).0 {
        Action::Domctl(Command::Pause(target), address, _) => assert_eq!((target, address), (xen_abi::DomId(5), BUFFER)),
        other => panic!("{other:?}"),
    }
    assert_eq!(call(&mut domain, &machine, false, [hypercall::DOMCTL, 0x10, 0, 0, 0, 0]).0, Action::Return(-errno::EFAULT));
}

#[test]
fn set_timer_op_arms_and_cancels() {
    let (mut domain, machine) = setup();
    assert_eq!(call(&mut domain, &machine, false, [hypercall::SET_TIMER_OP, 123, 0, 0, 0, 0]).0, Action::SetTimer(Some(123)));
    assert_eq!(call(&mut domain, &machine, false, [hypercall::SET_TIMER_OP, 0, 0, 0, 0, 0]).0, Action::SetTimer(None));
}

#[test]
fn device_calls_are_bounded_then_passed_on() {
    use xen_abi::physdev;
    let (mut domain, machine) = setup();
    let mut physdev_call = |arguments: [u64; 5]| call(&mut domain, &machine, false, [hypercall::PHYSDEV_OP, arguments[0], arguments[1], arguments[2], arguments[3], arguments[4]]).0;
    assert_eq!(physdev_call([physdev::PCI_CONFIG_READ, 0x18, 0x10, 4, 0]), Action::Device(DeviceRequest::ConfigRead { bdf: 0x18, offset: 0x10, size: 4 }));
    assert_eq!(
        physdev_call([physdev::PCI_CONFIG_WRITE, 0x18, 0x04, 2, 0x6]),
        Action::Device(DeviceRequest::ConfigWrite { bdf: 0x18, offset: 4, size: 2, value: 6 })
    );
    for (offset, size) in [(4096, 4), (0x11, 4), (0x12, 4), (0x10, 3), (0x10, 8), (u64::MAX, 1)] {
        assert_eq!(physdev_call([physdev::PCI_CONFIG_READ, 0x18, offset, size, 0]), Action::Return(-errno::EINVAL), "{offset} {size}");
    }
    assert_eq!(physdev_call([physdev::DEVICE_INFO, BUFFER, 8, 0, 0]), Action::Return(-errno::EINVAL));
    assert_eq!(physdev_call([physdev::DEVICE_INFO, BUFFER, 128, 1, 0]), Action::Device(DeviceRequest::Info { buffer: BUFFER, index: 1 }));
    assert_eq!(physdev_call([physdev::EOI, 5, 0, 0, 0]), Action::Device(DeviceRequest::EndOfInterrupt { port: 5 }));
    assert_eq!(physdev_call([77, 0, 0, 0, 0]), Action::Return(-errno::ENOSYS));
    let mut bus = |pfn, count| call(&mut domain, &machine, false, [hypercall::MEMORY_OP, physdev::MEMORY_OP_BUS_ADDRESS, pfn, count, 0, 0]).0;
    assert_eq!(bus(300, 2), Action::Device(DeviceRequest::BusAddress { pfn: 300, count: 2 }));
    assert_eq!(bus(300, 0), Action::Return(-errno::EINVAL));
    assert_eq!(bus(300, 1025), Action::Return(-errno::EINVAL));
}
