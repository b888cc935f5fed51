//! The probe's actions: what `action=` on the command line may name, what
//! each does and what should happen. Pure data, tested on the host.

/// What should happen when an action runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expectation {
    /// The hypervisor kills the domain (a fault in ring 3).
    Killed,
    /// The domain logs its results and powers off.
    Poweroff,
    /// The domain shuts down as crashed by its own choice.
    Crash,
    /// The domain never stops by itself.
    RunsForever,
}

impl Expectation {
    /// How the probe says it in its log.
    pub fn describe(self) -> &'static str {
        match self {
            Expectation::Killed => "the domain is killed",
            Expectation::Poweroff => "the domain survives and powers off",
            Expectation::Crash => "the domain shuts down as crashed",
            Expectation::RunsForever => "the domain runs until destroyed",
        }
    }
}

/// One thing the probe can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Print and power off.
    Hello,
    /// Write a byte at the hypervisor's image address.
    WriteHypervisor,
    /// Read a byte at the hypervisor's image address.
    ReadHypervisor,
    /// Read the byte just past the domain's RAM.
    ReadOutside,
    /// Read address 0x1000, below RAM.
    ReadBelow,
    /// Write the start-info page (read-only to the domain).
    WriteStartInfo,
    /// Write the domain's own code (mapped read-execute).
    WriteText,
    /// Execute a `ret` written into a stack buffer (data is not executable).
    ExecuteStack,
    /// `hlt`.
    Hlt,
    /// `cli`.
    Cli,
    /// `wrmsr` IA32_LSTAR with 0.
    Wrmsr,
    /// `rdmsr` IA32_LSTAR.
    Rdmsr,
    /// `mov cr3, rax`.
    MovCr3,
    /// `lgdt`.
    Lgdt,
    /// `int3`.
    Int3,
    /// `int 0x80`.
    Int80,
    /// `out` to the isa-debug-exit port.
    PortIo,
    /// `div` by zero.
    DivideZero,
    /// Set EFLAGS.AC and NT, then make hypercalls.
    FlagsThenHypercall,
    /// Set EFLAGS.TF, then run a few instructions.
    TrapFlag,
    /// Set EFLAGS.TF, then `syscall` at once (a #DB at the hypervisor's entry).
    TrapFlagHypercall,
    /// console_io WRITE from a hypervisor address.
    BadPointerHypervisor,
    /// console_io WRITE from a non-canonical address.
    BadPointerNoncanonical,
    /// console_io WRITE with a huge count, and with a buffer running past RAM.
    BadPointerHuge,
    /// Unknown hypercall numbers.
    BadNumber,
    /// Unknown sub-operations.
    BadSubop,
    /// Vector registers survive a hypercall that clobbers them, and a yield.
    Sse,
    /// Time null hypercalls against bare `syscall` round trips.
    NullBench,
    /// Time `sched_op(yield)` round trips (run two: each yield switches).
    YieldBench,
    /// Event-channel ping-pong, the pinging side (times round trips).
    EventPing,
    /// Event-channel ping-pong, the answering side.
    EventPong,
    /// Time grant map+unmap and 4 KiB grant copies of a page granted to itself.
    GrantBench,
    /// Run a script of checked operations (`steps=`).
    Script,
    /// Print grant entries 0 and 1 (console, store), filled by the builder.
    ReservedRefs,
    /// `panic!`.
    Panic,
    /// Loop forever.
    Spin,
    /// Count as fast as possible, report every `interval_ms` of system time.
    Counter,
    /// Sleep with the one-shot timer and report how late it woke.
    Sleep,
    /// Read system time in a loop with yields; it must never go back.
    TimeMonotonic,
    /// The control domain's scripts (`script=`): lifecycle, cycles, list.
    Control,
    /// domctl from a domain that is not the control domain.
    DomctlDenied,
    /// Seeded xmm0..15 values survive `count=` yields to other domains.
    SseSwitch,
    /// A hostile blkfront: bad requests and indices against the real backend.
    BlkHostile,
    /// 4 KiB and 44 KiB reads and writes through blkfront, pipelined, timed.
    BlkBench,
    /// Grant a blkif ring page and a port to `back=`, push `count=` reads.
    RingFront,
    /// Bind `front=`'s `port=`, map its `ref=`, answer `count=` requests.
    RingBack,
    /// Try to map, bind, send and copy without an invitation; bad calls.
    Snoop,
    /// Bind `peer=`'s `port=` and send `count=` events.
    EventFlood,
    /// Offer `peer=` a port; count wake-ups for `duration_ms=`.
    EventSink,
    /// Bind VIRQ_TIMER, arm the timer `ms=` ahead, wait for the port.
    TimerVirq,
    /// Grant a page to ourselves: map, write, revoke (busy, then not), copy.
    GrantSelf,
    /// The dummy device's backend over the store handshake.
    DummyBack,
    /// The dummy device's frontend over the store handshake.
    DummyFront,
    /// Probe and flood the store.
    StoreAttack,
    /// The block frontend: write, flush, read back and check a pattern.
    BlkPattern,
    /// Try the operator's channel, log and figures.
    OperatorSteal,
    /// Examine the assigned PCI function through the hypervisor.
    PciProbe,
    /// Try the device calls without a device.
    PciSteal,
}

/// Every action with its command-line name, expectation and description.
pub const ACTIONS: &[(Action, &str, Expectation, &str)] = &[
    (Action::Hello, "hello", Expectation::Poweroff, "print and power off"),
    (Action::WriteHypervisor, "write-hypervisor", Expectation::Killed, "write a byte at 0xffffffff80100000 (the hypervisor image)"),
    (Action::ReadHypervisor, "read-hypervisor", Expectation::Killed, "read a byte at 0xffffffff80100000 (the hypervisor image)"),
    (Action::ReadOutside, "read-outside", Expectation::Killed, "read the byte just past this domain's RAM"),
    (Action::ReadBelow, "read-below", Expectation::Killed, "read address 0x1000, below RAM"),
    (Action::WriteStartInfo, "write-start-info", Expectation::Killed, "write the start-info page (read-only) with the byte it holds"),
    (Action::WriteText, "write-text", Expectation::Killed, "write this kernel's own code (read-execute) with the byte it holds"),
    (Action::ExecuteStack, "execute-stack", Expectation::Killed, "call a `ret` written into a stack buffer (data must be no-execute)"),
    (Action::Hlt, "hlt", Expectation::Killed, "execute hlt (privileged: #GP)"),
    (Action::Cli, "cli", Expectation::Killed, "execute cli (IOPL 0: #GP)"),
    (Action::Wrmsr, "wrmsr", Expectation::Killed, "wrmsr IA32_LSTAR (0xc0000082) = 0 (privileged: #GP)"),
    (Action::Rdmsr, "rdmsr", Expectation::Killed, "rdmsr IA32_LSTAR (privileged: #GP)"),
    (Action::MovCr3, "mov-cr3", Expectation::Killed, "write cr3 (privileged: #GP)"),
    (Action::Lgdt, "lgdt", Expectation::Killed, "lgdt from a stack buffer (privileged: #GP)"),
    (Action::Int3, "int3", Expectation::Killed, "execute int3 (#BP)"),
    (Action::Int80, "int80", Expectation::Killed, "execute int 0x80 (a gate ring 3 may not use: #GP)"),
    (Action::PortIo, "port-io", Expectation::Killed, "out to port 0xf4, QEMU's isa-debug-exit (IOPL 0: #GP)"),
    (Action::DivideZero, "divide-zero", Expectation::Killed, "div by a zero register (#DE)"),
    (Action::FlagsThenHypercall, "flags-then-hypercall", Expectation::Poweroff, "set EFLAGS.AC and NT, then console_io and null hypercalls"),
    (Action::TrapFlag, "trap-flag", Expectation::Killed, "set EFLAGS.TF, then run a few instructions (#DB)"),
    (Action::TrapFlagHypercall, "trap-flag-hypercall", Expectation::Killed, "set EFLAGS.TF, then syscall at once (#DB at the hypervisor's entry, which must survive it; then #DB in the domain)"),
    (Action::BadPointerHypervisor, "bad-pointer-hypervisor", Expectation::Poweroff, "console_io write of 16 bytes from 0xffffffff80100000 (expect EFAULT)"),
    (Action::BadPointerNoncanonical, "bad-pointer-noncanonical", Expectation::Poweroff, "console_io write of 16 bytes from 0x0000800000000000 (expect EFAULT)"),
    (Action::BadPointerHuge, "bad-pointer-huge", Expectation::Poweroff, "console_io write with count u64::MAX, then with a buffer running past the end of RAM (expect errors)"),
    (Action::BadNumber, "bad-number", Expectation::Poweroff, "hypercalls 9999, 63 and 2^32+48 (expect ENOSYS)"),
    (Action::BadSubop, "bad-subop", Expectation::Poweroff, "console_io cmd 77 and sched_op cmd 77 (expect ENOSYS or EINVAL)"),
    (Action::Sse, "sse", Expectation::Poweroff, "fill xmm0..xmm15, test_op CLOBBER_VECTOR_REGISTERS and sched_yield, compare"),
    (Action::NullBench, "null-bench", Expectation::Poweroff, "time count= (default 1000) null hypercalls and bare syscalls with rdtsc"),
    (Action::YieldBench, "yield-bench", Expectation::Poweroff, "time count= (default 1000) yields with rdtsc (two of these ping-pong)"),
    (Action::EventPing, "event-ping", Expectation::Poweroff, "alloc a port for peer=, time count= event round trips"),
    (Action::EventPong, "event-pong", Expectation::Poweroff, "bind peer='s port=, answer count= events"),
    (Action::GrantBench, "grant-bench", Expectation::Poweroff, "time count= grant map+unmap and 4 KiB grant copies of a self-granted page"),
    (Action::ReservedRefs, "reserved-refs", Expectation::Poweroff, "print grant refs 0 and 1 (console, store) as the builder filled them"),
    (Action::Script, "script", Expectation::Poweroff, "run steps= (op:args:expect;...) and print one result per step"),
    (Action::Panic, "panic", Expectation::Crash, "panic!(\"deliberate\") (after after_ms= of sleep, if given)"),
    (Action::Spin, "spin", Expectation::RunsForever, "loop forever"),
    (Action::Counter, "counter", Expectation::Poweroff, "count without yielding, report every interval_ms= (100) of system time, stop after duration_ms= (2000)"),
    (Action::Sleep, "sleep", Expectation::Poweroff, "set_timer_op + block until ms= (50) of system time passed; report how late"),
    (Action::TimeMonotonic, "time-monotonic", Expectation::Poweroff, "read system time count= (10000) times, yielding every 16 reads; it must never decrease"),
    (Action::Control, "control", Expectation::Poweroff, "control-domain script= (lifecycle, cycles, list) through domctl"),
    (Action::DomctlDenied, "domctl-denied", Expectation::Poweroff, "domctl pause d1, create, destroy d1 from a non-control domain (expect EPERM)"),
    (Action::SseSwitch, "sse-switch", Expectation::Poweroff, "fill xmm0..xmm15 from seed value=, then count= (200) times yield and check them"),
    (Action::RingFront, "ring-front", Expectation::Poweroff, "grant a blkif ring ref= (8) and a port to back=, push count= (10000) reads"),
    (Action::RingBack, "ring-back", Expectation::Poweroff, "bind front='s port=, map its ref= (8), answer count= (10000) requests"),
    (Action::Snoop, "snoop", Expectation::Poweroff, "map victim='s ref= (8), bind its port= (1), send, copy, bad calls: all refused"),
    (Action::EventFlood, "event-flood", Expectation::Poweroff, "bind peer='s port=, send count= (10000) events as fast as it can"),
    (Action::EventSink, "event-sink", Expectation::Poweroff, "alloc_unbound for peer=, count wakeups for duration_ms= (2000)"),
    (Action::TimerVirq, "timer-virq", Expectation::Poweroff, "bind VIRQ_TIMER, set the timer ms= (50) ahead, wait for the port"),
    (Action::GrantSelf, "grant-self", Expectation::Poweroff, "grant ref= (8) to itself, map, write, revoke (busy while mapped), copy"),
    (Action::DummyBack, "dummy-back", Expectation::Poweroff, "serve the dummy device of front= (id= 0) over the store handshake for rounds= (2), restarting between rounds"),
    (Action::DummyFront, "dummy-front", Expectation::Poweroff, "connect the dummy device id= (0) through the store, ping, follow the backend's restarts, close after rounds= (2)"),
    (Action::PciProbe, "pci-probe", Expectation::Poweroff, "describe the assigned function, size and try to move a BAR, walk the capabilities, read a mapped BAR, try other functions"),
    (Action::PciSteal, "pci-steal", Expectation::Poweroff, "device calls without an assigned device (all refused)"),
    (Action::OperatorSteal, "operator-steal", Expectation::Poweroff, "read and write the operator's channel, read the log, physinfo and exit records (all refused)"),
    (Action::BlkPattern, "blk-pattern", Expectation::Poweroff, "vbd id= (51712) as blkfront: write a pattern, flush, read, check (read-only: writes refused, reads checked if check= (1)); rounds= (1), persistent= (1)"),
    (Action::BlkHostile, "blk-hostile", Expectation::Poweroff, "vbd id= (51712) through the store, then bad requests and ring indices: each refused or disconnected; reconnect and read"),
    (Action::BlkBench, "blk-bench", Expectation::Poweroff, "vbd id= (51712) as blkfront: time count= (64) writes, reads of 4 and 44 KiB, depth= (32) in flight, persistent= (1) grants if offered (rdtsc)"),
    (Action::StoreAttack, "store-attack", Expectation::Poweroff, "try victim='s and backend='s store nodes (all refused), then flood the store: watches, nodes, flood= (2000) requests"),
];

impl Action {
    /// The action `name` names, or `None`.
    pub fn parse(name: &str) -> Option<Action> {
        ACTIONS.iter().find(|entry| entry.1 == name).map(|entry| entry.0)
    }

    fn entry(self) -> &'static (Action, &'static str, Expectation, &'static str) {
        // Every action is in the table (a test checks it), so this finds one.
        ACTIONS.iter().find(|entry| entry.0 == self).unwrap_or(&ACTIONS[0])
    }

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// What should happen.
    pub fn expectation(self) -> Expectation {
        self.entry().2
    }

    /// What it does, for the log.
    pub fn description(self) -> &'static str {
        self.entry().3
    }
}

/// The default `count=` of `null-bench`.
pub const DEFAULT_BENCH_COUNT: u64 = 1000;

/// Parses `count=`: a positive decimal, at most 10^9.
pub fn parse_count(value: Option<&str>) -> Result<u64, &'static str> {
    match value {
        None => Ok(DEFAULT_BENCH_COUNT),
        Some(text) => match text.parse::<u64>() {
            Ok(count) if (1..=1_000_000_000).contains(&count) => Ok(count),
            _ => Err("count= must be a number from 1 to 1000000000"),
        },
    }
}

/// A command-line number that is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadNumber<'a> {
    /// The key.
    pub key: &'a str,
    /// The least value allowed.
    pub min: u64,
    /// The largest value allowed.
    pub max: u64,
}

impl core::fmt::Display for BadNumber<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}= must be a number from {} to {}", self.key, self.min, self.max)
    }
}

/// Parses a decimal or `0x` hexadecimal number.
pub fn parse_u64(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The number `key=` gives on `line` (decimal or `0x` hex), `default` if
/// absent, an error if not a number in `min..=max`.
pub fn number<'a>(line: &str, key: &'a str, default: u64, min: u64, max: u64) -> Result<u64, BadNumber<'a>> {
    match guest_runtime::command_line::find(line, key) {
        None => Ok(default),
        Some(text) => parse_u64(text).filter(|value| (min..=max).contains(value)).ok_or(BadNumber { key, min, max }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_by_name() {
        for &(action, name, expectation, _) in ACTIONS {
            assert_eq!(Action::parse(name), Some(action));
            assert_eq!(action.name(), name);
            assert_eq!(action.expectation(), expectation);
        }
        let mut names: std::vec::Vec<_> = ACTIONS.iter().map(|entry| entry.1).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ACTIONS.len(), "names are unique");
    }

    #[test]
    fn announcements_fit_in_one_console_line() {
        // `[<name up to 31>] I action <name>: <description> (expect: ...)`
        // with its line end, within the runtime's 256-byte line buffer.
        for &(_, name, expectation, description) in ACTIONS {
            let line = std::format!("[{}] I action {name}: {description} (expect: {})", "n".repeat(31), expectation.describe());
            assert!(line.len() < guest_runtime::console::LINE_BUFFER_BYTES, "{} bytes: {line}", line.len());
        }
    }

    #[test]
    fn announcements_of_the_channel_actions_stay_under_200_bytes() {
        // With the hypervisor's `(dNN) ` in front, a line stays below 200.
        let channel_actions = [Action::RingFront, Action::RingBack, Action::Snoop, Action::EventFlood, Action::EventSink, Action::TimerVirq, Action::GrantSelf];
        for action in channel_actions {
            let line = std::format!(
                "(d99) [{}] I action {}: {} (expect: {})",
                "n".repeat(31),
                action.name(),
                action.description(),
                action.expectation().describe()
            );
            assert!(line.len() < 200, "{} bytes: {line}", line.len());
        }
    }

    #[test]
    fn unknown_names() {
        assert_eq!(Action::parse(""), None);
        assert_eq!(Action::parse("HLT"), None);
        assert_eq!(Action::parse("hlt "), None);
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count(None), Ok(DEFAULT_BENCH_COUNT));
        assert_eq!(parse_count(Some("5")), Ok(5));
        assert!(parse_count(Some("0")).is_err());
        assert!(parse_count(Some("-1")).is_err());
        assert!(parse_count(Some("many")).is_err());
        assert!(parse_count(Some("2000000000")).is_err());
    }

    #[test]
    fn numbers() {
        let line = "ms=20 value=0xdeadbeef bad=x big=99 count=0";
        assert_eq!(number(line, "ms", 50, 1, 60_000), Ok(20));
        assert_eq!(number(line, "missing", 50, 1, 60_000), Ok(50));
        assert_eq!(number(line, "value", 1, 0, u64::MAX), Ok(0xdead_beef));
        let bad = number(line, "bad", 1, 1, 10).unwrap_err();
        assert_eq!(std::format!("{bad}"), "bad= must be a number from 1 to 10");
        assert!(number(line, "big", 1, 1, 10).is_err());
        assert!(number(line, "count", 1, 1, 10).is_err());
        assert_eq!(parse_u64("0X10"), Some(16));
        assert_eq!(parse_u64("0x"), None);
        assert_eq!(parse_u64("-1"), None);
    }
}
