//! The hypercall dispatcher: plain values in (the caller's saved registers),
//! an [`Action`] out. Every argument is copied in once and checked here; a
//! bad pointer, length, number or sub-operation becomes an errno for the
//! caller and never a fault in the hypervisor.

use alloc::boxed::Box;
use xen_abi::errno;
use xen_abi::hypercall::{self, console, sysctl, test_op, version};
use xen_abi::sched::{self, ShutdownReason};
use xen_abi::GuestAddress;


use crate::domain::{Domain, MachineMemory};
use crate::domctl::{self, Command};
use crate::trap::TrapFrame;

/// What the hypervisor must do after a hypercall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Return this value (a negative errno on failure) to the caller.
    Return(i64),
    /// Return 0 and let others run.
    Yield,
    /// Return 0 when an event is pending or the domain's timer fires.
    Block,
    /// Stop the caller for this reason.
    Shutdown(ShutdownReason),
    /// Test only: save the caller's vector registers, clobber them, restore
    /// them before it resumes; return 0.
    ClobberVectorState,
    /// Arm the caller's timer at this system time (`None`: cancel); return 0.
    SetTimer(Option<u64>),
    /// A checked `domctl` from the control domain; its block is at this
    /// guest address (written back with the results).
    /// (Boxed: the block would make every `Action` 256 bytes larger.)
    Domctl(Command, u64, Box<[u8; xen_abi::domctl::SIZE]>),
    /// `event_channel_op`: sub-operation and the guest address of its
    /// argument block (the hypervisor, which can reach both ends, acts).
    EventChannel(u64, u64),
    /// `grant_table_op`: sub-operation, guest address of the array, count.
    GrantTable(u64, u64, u64),
    /// `xsm_op`: sub-operation and its two arguments.
    Xsm(u64, u64, u64),
    /// The operator's channel or the hypervisor's log (checked by the
    /// policy, then done, by the caller).
    Operator(OperatorRequest),
    /// A driver domain's device call (checked against its assignments and
    /// the policy by the caller).
    Device(DeviceRequest),
}

/// A device call (`physdev_op`, `memory_op` bus address), arguments bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRequest {
    /// Read `size` bytes at `offset` of function `bdf`'s configuration space.
    ConfigRead {
        /// `bus << 8 | device << 3 | function`.
        bdf: u64,
        /// Below 4096.
        offset: u64,
        /// 1, 2 or 4.
        size: u64,
    },
    /// Write `value` (`size` bytes) at `offset`.
    ConfigWrite {
        /// The function.
        bdf: u64,
        /// Below 4096.
        offset: u64,
        /// 1, 2 or 4.
        size: u64,
        /// The value.
        value: u64,
    },
    /// Describe the caller's `index`th function into `buffer`.
    Info {
        /// Where to (`device_info::SIZE` bytes).
        buffer: u64,
        /// Which.
        index: u64,
    },
    /// The interrupt behind `port` was handled.
    EndOfInterrupt {
        /// The caller's port.
        port: u64,
    },
    /// The bus address of the caller's frames `pfn..pfn + count`.
    BusAddress {
        /// First frame.
        pfn: u64,
        /// Frames (1..=1024).
        count: u64,
    },
}

/// A request for the operator's channel or the hypervisor's log; buffer
/// addresses are the caller's, counts already bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatorRequest {
    /// `CONSOLEIO_read`: up to `count` bytes of operator input to `buffer`.
    Read {
        /// Where to.
        buffer: u64,
        /// At most this many (≤ `MAX_CHANNEL_BYTES`).
        count: u64,
    },
    /// `CONSOLEIO_channel_write`: `count` bytes from `buffer` to the operator.
    Write {
        /// Where from.
        buffer: u64,
        /// This many (≤ `MAX_CHANNEL_BYTES`).
        count: u64,
    },
    /// `sysctl` readconsole: the log from sequence `from`; the buffer gets
    /// the first byte's sequence (u64 LE), then the bytes.
    ReadLog {
        /// Where to.
        buffer: u64,
        /// The buffer's size (≤ `MAX_CHANNEL_BYTES` + 8).
        count: u64,
        /// The first sequence number wanted.
        from: u64,
    },
    /// `sysctl` exits: exit records to `buffer` (`count` bytes of room).
    Exits {
        /// Where to.
        buffer: u64,
        /// Its size in bytes.
        count: u64,
    },
    /// `sysctl` physinfo: the memory figures block to `buffer`.
    PhysInfo {
        /// Where to.
        buffer: u64,
    },
}

/// What the dispatcher needs from its surroundings.
pub struct Context<'a> {
    /// Nanoseconds since boot, read only by the operations that need the
    /// time (not on every hypercall).
    pub clock: fn() -> u64,
    /// Whether test-only operations are allowed (`testing=1`).
    pub testing: bool,
    /// Where finished console lines go.
    pub console_sink: &'a mut dyn FnMut(&[u8]),
}

/// The version `xen_version(XENVER_version)` reports: major << 16 | minor.
pub const VERSION: i64 = 1;

fn error(code: i64) -> Action {
    Action::Return(-code)
}

/// Serves one hypercall from `domain`, whose registers are `frame`.
pub fn dispatch(domain: &mut Domain, machine: &impl MachineMemory, frame: &TrapFrame, context: &mut Context<'_>) -> Action {
    let (number, arguments) = (frame.rax, [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8]);
    domain.hypercalls += 1;
    match number {
        hypercall::NULL => Action::Return(0),
        hypercall::XEN_VERSION => match arguments[0] {
            version::VERSION => Action::Return(VERSION),
            _ => error(errno::ENOSYS),
        },
        hypercall::CONSOLE_IO => console_io(domain, machine, arguments, context),
        hypercall::PHYSDEV_OP => physdev_op(arguments),
        hypercall::MEMORY_OP => match arguments[0] {
            xen_abi::physdev::MEMORY_OP_BUS_ADDRESS if (1..=1024).contains(&arguments[2]) => {
                Action::Device(DeviceRequest::BusAddress { pfn: arguments[1], count: arguments[2] })
            }
            xen_abi::physdev::MEMORY_OP_BUS_ADDRESS => error(errno::EINVAL),
            _ => error(errno::ENOSYS),
        },
        hypercall::SYSCTL => match arguments[0] {
            sysctl::READ_CONSOLE if arguments[2] < 8 || arguments[2] > console::MAX_CHANNEL_BYTES + 8 => error(errno::EINVAL),
            sysctl::READ_CONSOLE => Action::Operator(OperatorRequest::ReadLog { buffer: arguments[1], count: arguments[2], from: arguments[3] }),
            sysctl::PHYSINFO => Action::Operator(OperatorRequest::PhysInfo { buffer: arguments[1] }),
            sysctl::EXITS if arguments[2] == 0 || arguments[2] > console::MAX_CHANNEL_BYTES => error(errno::EINVAL),
            sysctl::EXITS => Action::Operator(OperatorRequest::Exits { buffer: arguments[1], count: arguments[2] }),
            _ => error(errno::ENOSYS),
        },
        hypercall::SCHED_OP => sched_op(domain, machine, arguments),
        hypercall::SET_TIMER_OP => Action::SetTimer((arguments[0] != 0).then_some(arguments[0])),
        hypercall::EVENT_CHANNEL_OP => Action::EventChannel(arguments[0], arguments[1]),
        hypercall::XSM_OP => Action::Xsm(arguments[0], arguments[1], arguments[2]),
        hypercall::GRANT_TABLE_OP => Action::GrantTable(arguments[0], arguments[1], arguments[2]),
        hypercall::DOMCTL => {
            // Who may do what to whom is the policy's decision (class
            // `domain`), asked by the hypervisor before it acts.
            let mut block = Box::new([0u8; xen_abi::domctl::SIZE]);
            if domain.copy_from_guest(machine, GuestAddress(arguments[0]), &mut block[..]).is_err() {
                return error(errno::EFAULT);
            }
            match domctl::parse(&block) {
                Ok(command) => Action::Domctl(command, arguments[0], block),
                Err(code) => error(code),
            }
        }
        hypercall::TEST_OP => {
            if !context.testing {
                return error(errno::EPERM);
            }
            match arguments[0] {
                test_op::CLOBBER_VECTOR_REGISTERS => Action::ClobberVectorState,
                test_op::HEALTH => Action::Return(1),
                _ => error(errno::ENOSYS),
            }
        }
        _ => error(errno::ENOSYS),
    }
}

fn console_io(domain: &mut Domain, machine: &impl MachineMemory, arguments: [u64; 5], context: &mut Context<'_>) -> Action {
    let [command, count, buffer, ..] = arguments;
    match command {
        console::WRITE => {
            if count > console::MAX_WRITE_BYTES {
                return error(errno::EINVAL);
            }
            let mut bytes = [0u8; console::MAX_WRITE_BYTES as usize];
            let bytes = &mut bytes[..count as usize];
            if domain.copy_from_guest(machine, GuestAddress(buffer), bytes).is_err() {
                return error(errno::EFAULT);
            }
            domain.console.write(bytes, (context.clock)(), context.console_sink);
            Action::Return(count as i64)
        }
        console::READ | console::CHANNEL_WRITE if count > console::MAX_CHANNEL_BYTES => error(errno::EINVAL),
        console::READ => Action::Operator(OperatorRequest::Read { buffer, count }),
        console::CHANNEL_WRITE => Action::Operator(OperatorRequest::Write { buffer, count }),
        _ => error(errno::ENOSYS),
    }
}

fn physdev_op(arguments: [u64; 5]) -> Action {
    use xen_abi::physdev;
    let [command, first, second, third, fourth] = arguments;
    let config_ok = |offset: u64, size: u64| offset < 4096 && matches!(size, 1 | 2 | 4) && offset % size == 0;
    match command {
        physdev::PCI_CONFIG_READ if config_ok(second, third) => Action::Device(DeviceRequest::ConfigRead { bdf: first, offset: second, size: third }),
        physdev::PCI_CONFIG_WRITE if config_ok(second, third) => {
            Action::Device(DeviceRequest::ConfigWrite { bdf: first, offset: second, size: third, value: fourth })
        }
        physdev::PCI_CONFIG_READ | physdev::PCI_CONFIG_WRITE => error(errno::EINVAL),
        physdev::DEVICE_INFO if second < physdev::device_info::SIZE as u64 => error(errno::EINVAL),
        physdev::DEVICE_INFO => Action::Device(DeviceRequest::Info { buffer: first, index: third }),
        physdev::EOI => Action::Device(DeviceRequest::EndOfInterrupt { port: first }),
        _ => error(errno::ENOSYS),
    }
}

fn sched_op(domain: &mut Domain, machine: &impl MachineMemory, arguments: [u64; 5]) -> Action {
    match arguments[0] {
        sched::YIELD => Action::Yield,
        sched::BLOCK => Action::Block,
        sched::SHUTDOWN => {
            let mut bytes = [0u8; sched::SHUTDOWN_SIZE];
            if domain.copy_from_guest(machine, GuestAddress(arguments[1]), &mut bytes).is_err() {
                return error(errno::EFAULT);
            }
            match ShutdownReason::from_u32(u32::from_le_bytes(bytes)) {
                Some(reason) => Action::Shutdown(reason),
                None => error(errno::EINVAL),
            }
        }
        _ => error(errno::ENOSYS),
    }
}

/// Whether a frame saved by the `syscall` entry may go back with `sysret`:
/// only to a canonical lower-half RIP with the ring-3 selectors. Anything
/// else returns with `iretq` (a `sysret` to a non-canonical RIP faults in
/// ring 0 on Intel CPUs, with the domain's stack live).
pub fn may_sysret(frame: &TrapFrame, syscall_vector: u64) -> bool {
    frame.vector == syscall_vector
        && frame.rip < 0x0000_8000_0000_0000
        && frame.cs == crate::domain::USER_CODE_SELECTOR
        && frame.ss == crate::domain::USER_DATA_SELECTOR
}

/// RFLAGS bits a domain may hold: the arithmetic flags, TF, DF, AC and ID.
/// IF is always set; IOPL, NT, RF and VM always clear.
pub fn sanitize_rflags(rflags: u64) -> u64 {
    const ALLOWED: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x4_0000 | 0x20_0000;
    (rflags & ALLOWED) | 0x202
}

#[cfg(test)]
mod tests;
