//! Publishing time into a domain's shared-info page with Xen's protocol:
//! `vcpu_time_info` is written between two `version` bumps (odd while it is
//! being changed), so a reader that sees an odd or changed version retries.
//! The wall clock (`wc_*`) uses `wc_version` the same way.

use xen_abi::shared_info::{offset, vcpu_info, vcpu_time_info};

use crate::domain::MachineMemory;
use crate::frame_allocator::Frame;
use crate::time::TickScale;

const TIME: usize = offset::VCPU_INFO + vcpu_info::TIME;

fn read_u32(machine: &impl MachineMemory, page: Frame, at: usize) -> u32 {
    let mut bytes = [0u8; 4];
    machine.read(page, at, &mut bytes);
    u32::from_le_bytes(bytes)
}

/// Writes vCPU 0's time record: at TSC `tsc`, system time was `system_ns`.
pub fn publish_time(machine: &mut impl MachineMemory, page: Frame, tsc: u64, system_ns: u64, scale: TickScale) {
    let version = read_u32(machine, page, TIME + vcpu_time_info::VERSION);
    // An odd version tells readers an update is in progress.
    let begin = (version | 1).wrapping_add(if version & 1 == 1 { 2 } else { 0 });
    machine.write(page, TIME + vcpu_time_info::VERSION, &begin.to_le_bytes());
    machine.write(page, TIME + vcpu_time_info::TSC_TIMESTAMP, &tsc.to_le_bytes());
    machine.write(page, TIME + vcpu_time_info::SYSTEM_TIME, &system_ns.to_le_bytes());
    machine.write(page, TIME + vcpu_time_info::TSC_TO_SYSTEM_MUL, &scale.mul.to_le_bytes());
    machine.write(page, TIME + vcpu_time_info::TSC_SHIFT, &[scale.shift as u8, 0]);
    machine.write(page, TIME + vcpu_time_info::VERSION, &begin.wrapping_add(1).to_le_bytes());
}

/// Writes the wall clock: the wall time at system time zero.
pub fn publish_wall_clock(machine: &mut impl MachineMemory, page: Frame, seconds: u64, nanoseconds: u32) {
    let version = read_u32(machine, page, offset::WC_VERSION);
    let begin = (version | 1).wrapping_add(if version & 1 == 1 { 2 } else { 0 });
    machine.write(page, offset::WC_VERSION, &begin.to_le_bytes());
    machine.write(page, offset::WC_SEC, &(seconds as u32).to_le_bytes());
    machine.write(page, offset::WC_NSEC, &nanoseconds.to_le_bytes());
    machine.write(page, offset::WC_SEC_HI, &((seconds >> 32) as u32).to_le_bytes());
    machine.write(page, offset::WC_VERSION, &begin.wrapping_add(1).to_le_bytes());
}

/// What a domain computes from its record (for tests; the guest runtime
/// has its own copy).
pub fn read_time(machine: &impl MachineMemory, page: Frame, tsc: u64) -> Option<u64> {
    let version = read_u32(machine, page, TIME + vcpu_time_info::VERSION);
    if version & 1 == 1 {
        return None;
    }
    let mut bytes = [0u8; 32];
    machine.read(page, TIME, &mut bytes);
    let field = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
    let mul = u32::from_le_bytes(bytes[24..28].try_into().unwrap_or([0; 4]));
    let scale = TickScale { mul, shift: bytes[28] as i8 };
    Some(field(vcpu_time_info::SYSTEM_TIME) + scale.ticks_to_ns(tsc.wrapping_sub(field(vcpu_time_info::TSC_TIMESTAMP))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::FakeMachine;

    #[test]
    fn versions_are_even_after_and_time_extrapolates() {
        let mut machine = FakeMachine::new(4);
        let page = machine.allocate_frame().unwrap();
        let scale = TickScale::from_frequency(2_000_000_000).unwrap();
        publish_time(&mut machine, page, 1_000, 500, scale);
        assert_eq!(read_u32(&machine, page, TIME), 2);
        // 2000 ticks later at 2 GHz: one microsecond later.
        assert_eq!(read_time(&machine, page, 3_000), Some(1_500));
        publish_time(&mut machine, page, 5_000, 2_500, scale);
        assert_eq!(read_u32(&machine, page, TIME), 4);
        // A torn (odd) version is refused by readers.
        machine.write(page, TIME, &5u32.to_le_bytes());
        assert_eq!(read_time(&machine, page, 0), None);
        publish_time(&mut machine, page, 5_000, 2_500, scale);
        assert_eq!(read_u32(&machine, page, TIME) % 2, 0);
    }

    #[test]
    fn wall_clock_fields() {
        let mut machine = FakeMachine::new(4);
        let page = machine.allocate_frame().unwrap();
        publish_wall_clock(&mut machine, page, 0x1_0000_0005, 7);
        assert_eq!(read_u32(&machine, page, offset::WC_VERSION), 2);
        assert_eq!(read_u32(&machine, page, offset::WC_SEC), 5);
        assert_eq!(read_u32(&machine, page, offset::WC_SEC_HI), 1);
        assert_eq!(read_u32(&machine, page, offset::WC_NSEC), 7);
    }
}
