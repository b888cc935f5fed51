//! `probe`: a scriptable domain kernel that does exactly one hostile or test
//! action, named by `action=` on its command line (see `action.rs` and
//! `frontends/README.md`). It logs what it is about to do first, so the
//! hypervisor's log shows it even when the action kills the domain, then
//! logs the result and powers off. On the host this builds to a stub.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)]
// reason: a binary's modules are private to it; `pub` marks what a module
// offers the rest of the binary, which this lint cannot see.
#![allow(unreachable_pub)]

extern crate alloc;

mod action;
mod bench;
mod blk;
mod blk_hostile;
mod vbd_link;
mod control;
mod events;
mod grant_self;
mod hostile;
mod measure;
mod pci_probe;
mod rings;
mod script;
mod snoop;
mod timing;
mod tiny;
mod xenbus_dummy;

use guest_runtime::command_line::find;
use guest_runtime::hypercall::{console_write_from, foreign};
use guest_runtime::{
    bare_syscall, console_write, null_hypercall, sched_yield, timestamp_counter, ShutdownReason, StartInfo,
};
use log::{error, info, warn};
use xen_abi::hypercall;
use xen_abi::layout::{pfn_to_address, RAM_BASE};

use guest_runtime::time::{self, sleep_until, system_time_ns};

use crate::action::{number, parse_count, Action};
use crate::hostile::{FLAG_ALIGNMENT_CHECK, FLAG_NESTED_TASK, FLAG_TRAP, HYPERVISOR_ADDRESS};
use crate::measure::{Hex128, Outcome, RegisterList};
use crate::timing::{lateness, MonotonicCheck, Ticker, NS_PER_MS};

guest_runtime::entry!(domain_main);

/// Reads `action=`, announces it, runs it.
fn domain_main(info: &StartInfo) -> ShutdownReason {
    let Some(name) = find(info.command_line(), "action") else {
        error!("no action= on the command line '{}'", info.command_line());
        return ShutdownReason::Crash;
    };
    let Some(action) = Action::parse(name) else {
        error!("unknown action '{name}'");
        return ShutdownReason::Crash;
    };
    info!("action {}: {} (expect: {})", action.name(), action.description(), action.expectation().describe());
    run(action, info)
}

/// The address just past this domain's RAM.
fn end_of_ram(info: &StartInfo) -> u64 {
    pfn_to_address(info.nr_pages)
}

/// Reports that an action meant to fault did not.
fn survived(action: Action) -> ShutdownReason {
    error!("UNEXPECTED: {} did not fault; the domain is still running", action.name());
    ShutdownReason::Crash
}

fn run(action: Action, info: &StartInfo) -> ShutdownReason {
    match action {
        Action::Hello => {
            info!("hello from the probe in {} (domain {})", info.name(), info.domid);
            ShutdownReason::Poweroff
        }
        Action::WriteHypervisor => {
            hostile::write_byte(HYPERVISOR_ADDRESS);
            survived(action)
        }
        Action::ReadHypervisor => {
            let value = hostile::read_byte(HYPERVISOR_ADDRESS);
            info!("read {value:#x}");
            survived(action)
        }
        Action::ReadOutside => {
            let address = end_of_ram(info);
            info!("reading {address:#x}");
            let value = hostile::read_byte(address);
            info!("read {value:#x}");
            survived(action)
        }
        Action::ReadBelow => {
            let value = hostile::read_byte(0x1000);
            info!("read {value:#x}");
            survived(action)
        }
        Action::WriteStartInfo => {
            hostile::rewrite_byte(RAM_BASE);
            survived(action)
        }
        Action::WriteText => {
            let address = hostile::own_code_address();
            info!("rewriting the byte at {address:#x}");
            hostile::rewrite_byte(address);
            survived(action)
        }
        Action::ExecuteStack => {
            hostile::execute_stack();
            survived(action)
        }
        Action::Hlt => {
            hostile::hlt();
            survived(action)
        }
        Action::Cli => {
            hostile::cli();
            survived(action)
        }
        Action::Wrmsr => {
            hostile::wrmsr_lstar();
            survived(action)
        }
        Action::Rdmsr => {
            let value = hostile::rdmsr_lstar();
            info!("read {value:#x}");
            survived(action)
        }
        Action::MovCr3 => {
            hostile::write_cr3();
            survived(action)
        }
        Action::Lgdt => {
            hostile::lgdt();
            survived(action)
        }
        Action::Int3 => {
            hostile::int3();
            survived(action)
        }
        Action::Int80 => {
            hostile::int80();
            survived(action)
        }
        Action::PortIo => {
            hostile::port_io();
            survived(action)
        }
        Action::DivideZero => {
            let quotient = hostile::divide_by_zero();
            info!("quotient {quotient}");
            survived(action)
        }
        Action::FlagsThenHypercall => flags_then_hypercall(),
        Action::TrapFlag => {
            hostile::trap_flag();
            warn!("survived: the single-step traps were absorbed, not fatal");
            ShutdownReason::Poweroff
        }
        Action::TrapFlagHypercall => {
            let result = hostile::trap_flag_hypercall();
            warn!("survived: null hypercall with TF set: result: {}", Outcome(result));
            ShutdownReason::Poweroff
        }
        Action::BadPointerHypervisor => {
            info!("result: {}", Outcome(console_write_from(HYPERVISOR_ADDRESS, 16)));
            ShutdownReason::Poweroff
        }
        Action::BadPointerNoncanonical => {
            info!("result: {}", Outcome(console_write_from(0x0000_8000_0000_0000, 16)));
            ShutdownReason::Poweroff
        }
        Action::BadPointerHuge => bad_pointer_huge(info),
        Action::BadNumber => {
            for number in [9999, hypercall::COUNT - 1, 1 << 32 | hypercall::NULL] {
                report_foreign(&format_args!("hypercall {number:#x}"), number, [0; 5]);
            }
            ShutdownReason::Poweroff
        }
        Action::BadSubop => {
            report_foreign(&format_args!("console_io cmd 77"), hypercall::CONSOLE_IO, [77, 0, 0, 0, 0]);
            report_foreign(&format_args!("sched_op cmd 77"), hypercall::SCHED_OP, [77, 0, 0, 0, 0]);
            ShutdownReason::Poweroff
        }
        Action::Sse => sse(),
        Action::NullBench => null_bench(info),
        Action::YieldBench => yield_bench(info),
        Action::EventPing => bench::event_ping(info),
        Action::EventPong => bench::event_pong(info),
        Action::GrantBench => bench::grant_bench(info),
        Action::Script => script::run(info),
        Action::ReservedRefs => grant_self::reserved_refs(info),
        Action::Panic => {
            if let Some(ms) = find(info.command_line(), "after_ms").and_then(|text| text.parse::<u64>().ok()) {
                let _ = time::sleep_ns(ms.saturating_mul(1_000_000));
            }
            panic!("deliberate")
        }
        Action::OperatorSteal => operator_steal(),
        Action::PciProbe => pci_probe::pci_probe(info),
        Action::PciSteal => pci_probe::pci_steal(info),
        Action::Spin => loop {
            core::hint::spin_loop();
        },
        Action::Counter => counter(info),
        Action::Sleep => sleep(info),
        Action::TimeMonotonic => time_monotonic(info),
        Action::Control => control::control(info),
        Action::DomctlDenied => control::domctl_denied(info),
        Action::SseSwitch => sse_switch(info),
        Action::RingFront => rings::ring_front(info),
        Action::RingBack => rings::ring_back(info),
        Action::DummyBack => xenbus_dummy::dummy_back(info),
        Action::DummyFront => xenbus_dummy::dummy_front(info),
        Action::StoreAttack => xenbus_dummy::store_attack(info),
        Action::BlkPattern => blk::blk_pattern(info),
        Action::BlkHostile => blk_hostile::blk_hostile(info),
        Action::BlkBench => blk::blk_bench(info),
        Action::Snoop => snoop::snoop(info),
        Action::EventFlood => events::event_flood(info),
        Action::EventSink => events::event_sink(info),
        Action::TimerVirq => events::timer_virq(info),
        Action::GrantSelf => grant_self::grant_self(info),
    }
}

/// `key=` from the command line as a number in `min..=max`, or `None`
/// after logging why not.
fn argument(info: &StartInfo, key: &str, default: u64, min: u64, max: u64) -> Option<u64> {
    number(info.command_line(), key, default, min, max).map_err(|problem| error!("{problem}")).ok()
}

/// Whether the hypervisor keeps `vcpu_time_info`; logs if not.
fn clock_running(what: &str) -> bool {
    let running = time::clock_running();
    if !running {
        error!("{what}: no system time: vcpu_time_info is not kept by the hypervisor");
    }
    running
}

/// Increments between two reads of the clock.
const COUNTER_BATCH: u32 = 1024;

/// Counts as fast as it can without ever yielding (so only preemption
/// shares the CPU), reporting the count every `interval_ms=` of system time
/// and stopping after `duration_ms=`.
/// Tries the operator's channel and the hypervisor's log and figures, which
/// are the control domain's: each must be refused.
fn operator_steal() -> ShutdownReason {
    use guest_runtime::operator;
    let mut buffer = [0u8; 64];
    let attempts: [(&str, bool); 5] = [
        ("read the operator's channel", operator::channel_read(&mut buffer).is_err()),
        ("write the operator's channel", operator::channel_write(b"forged").is_err()),
        ("read the hypervisor's log", operator::read_log(0, &mut buffer).is_err()),
        ("read the machine's figures", operator::physinfo().is_err()),
        ("take the exit records", operator::exits().is_err()),
    ];
    let mut refused = 0;
    for (what, was_refused) in attempts {
        if was_refused {
            refused += 1;
            info!("operator-steal: {what}: refused");
        } else {
            error!("UNEXPECTED: operator-steal: {what}: allowed");
        }
    }
    info!("operator-steal: {refused} of {} refused", attempts.len());
    if refused == attempts.len() {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    }
}

fn counter(info: &StartInfo) -> ShutdownReason {
    let (Some(interval_ms), Some(duration_ms)) =
        (argument(info, "interval_ms", 100, 1, 3_600_000), argument(info, "duration_ms", 2000, 1, 86_400_000))
    else {
        return ShutdownReason::Crash;
    };
    if !clock_running("counter") {
        return ShutdownReason::Crash;
    }
    let start = system_time_ns();
    let end = start.saturating_add(duration_ms * NS_PER_MS);
    let mut ticker = Ticker::new(start, interval_ms * NS_PER_MS);
    let mut count: u64 = 0;
    loop {
        for _ in 0..COUNTER_BATCH {
            count = core::hint::black_box(count + 1);
        }
        let now = system_time_ns();
        if now >= end {
            info!("counter: done total={count} elapsed_ns={}", now - start);
            return ShutdownReason::Poweroff;
        }
        if ticker.due(now) {
            info!("counter: n={count} t={now}");
        }
    }
}

/// Sleeps `ms=` milliseconds on the one-shot timer and reports how late it
/// woke.
fn sleep(info: &StartInfo) -> ShutdownReason {
    let Some(ms) = argument(info, "ms", 50, 0, 3_600_000) else {
        return ShutdownReason::Crash;
    };
    if !clock_running("sleep") {
        return ShutdownReason::Crash;
    }
    let before = system_time_ns();
    let deadline = before.saturating_add(ms * NS_PER_MS);
    let woke = match sleep_until(deadline) {
        Ok(woke) => woke,
        Err(errno) => {
            error!("sleep: set_timer_op or block: result: {errno}");
            return ShutdownReason::Crash;
        }
    };
    let after = system_time_ns();
    if after < before || woke < before {
        error!("sleep: time went backwards: {before} ns before, {woke} ns at waking, {after} ns after");
        return ShutdownReason::Crash;
    }
    info!("sleep: woke {} ns after the deadline (asked {ms} ms)", lateness(deadline, woke));
    ShutdownReason::Poweroff
}

/// Reads between two yields in `time-monotonic`.
const READS_PER_YIELD: u64 = 16;

/// Reads system time `count=` times, yielding every few reads, and checks
/// it never decreases.
fn time_monotonic(info: &StartInfo) -> ShutdownReason {
    let Some(count) = argument(info, "count", 10_000, 1, 1_000_000_000) else {
        return ShutdownReason::Crash;
    };
    if !clock_running("time") {
        return ShutdownReason::Crash;
    }
    if let Some(wall) = time::wall_clock() {
        let (seconds, nanoseconds) = wall.at(system_time_ns());
        info!("time: wall clock {seconds}.{nanoseconds:09} s since the epoch (at boot {}.{:09})", wall.seconds, wall.nanoseconds);
    }
    let mut check = MonotonicCheck::default();
    let first = system_time_ns();
    for read in 1..=count {
        let now = system_time_ns();
        if let Err((previous, now)) = check.record(now) {
            error!("time: went backwards at read {read}: {previous} ns, then {now} ns");
            return ShutdownReason::Crash;
        }
        if read % READS_PER_YIELD == 0 {
            let _ = sched_yield();
        }
    }
    info!("time: monotonic over {} reads", check.reads());
    info!("time: {} ns of system time passed", system_time_ns().saturating_sub(first));
    ShutdownReason::Poweroff
}

/// Fills xmm0..15 with values derived from `value=`, then `count=` times
/// yields to whoever else runs and checks them.
fn sse_switch(info: &StartInfo) -> ShutdownReason {
    let (Some(seed), Some(count)) = (argument(info, "value", 1, 0, u64::MAX), argument(info, "count", 200, 1, 1_000_000_000)) else {
        return ShutdownReason::Crash;
    };
    let patterns = measure::seeded_patterns(seed);
    let mut found = [[0u8; 16]; 16];
    let mut refused = None;
    info!("sse-switch: seed {seed:#x}, xmm0 = {}", Hex128(&patterns[0]));
    // From here to the last check nothing but the hypervisor may touch the
    // vector registers (the kernel is soft-float).
    hostile::load_vector_registers(&patterns);
    for switch in 1..=count {
        let result = hostile::yield_and_store_vector_registers(&mut found);
        if result < 0 && refused.is_none() {
            refused = Some(result);
        }
        let mask = measure::differing_registers(&patterns, &found);
        if mask != 0 {
            error!("sse-switch: registers differ after {switch} switches: {}", RegisterList(mask));
            let first = mask.trailing_zeros() as usize;
            error!("sse-switch: xmm{first} expected {} found {}", Hex128(&patterns[first]), Hex128(&found[first]));
            return ShutdownReason::Crash;
        }
    }
    if let Some(result) = refused {
        warn!("sse-switch: sched_yield: result: {}", Outcome(result));
    }
    info!("sse-switch: intact after {count} switches");
    ShutdownReason::Poweroff
}

/// Makes a hypercall whose arguments name none of our memory and logs
/// `<what>: result: <errno>`.
fn report_foreign(what: &dyn core::fmt::Display, number: u64, arguments: [u64; 5]) {
    match foreign(number, arguments) {
        Some(result) => info!("{what}: result: {}", Outcome(result)),
        None => error!("{what}: not made (an argument names our memory)"),
    }
}

const MESSAGE: &[u8] = b"probe: console_io with EFLAGS.AC and EFLAGS.NT set\n";

fn flags_then_hypercall() -> ShutdownReason {
    let both = FLAG_ALIGNMENT_CHECK | FLAG_NESTED_TASK;
    hostile::change_flags(both, 0);
    let written = console_write(MESSAGE);
    let null = null_hypercall();
    let after = hostile::flags();
    hostile::change_flags(0, both);
    match written {
        Ok(count) => info!("console_io with AC+NT: result: ok {count}"),
        Err(errno) => info!("console_io with AC+NT: result: {errno}"),
    }
    info!("null hypercall with AC+NT: result: {}", Outcome(null));
    info!(
        "flags after the hypercalls: AC {} NT {} TF {}; survived",
        u8::from(after & FLAG_ALIGNMENT_CHECK != 0),
        u8::from(after & FLAG_NESTED_TASK != 0),
        u8::from(after & FLAG_TRAP != 0),
    );
    ShutdownReason::Poweroff
}

fn bad_pointer_huge(info: &StartInfo) -> ShutdownReason {
    let valid = MESSAGE.as_ptr() as u64;
    info!("count u64::MAX from a valid buffer: result: {}", Outcome(console_write_from(valid, u64::MAX)));
    let near_end = end_of_ram(info) - 8;
    info!("64 bytes from {near_end:#x}, 8 before the end of RAM: result: {}", Outcome(console_write_from(near_end, 64)));
    ShutdownReason::Poweroff
}

fn sse() -> ShutdownReason {
    let patterns = measure::vector_patterns();
    let mut found = [[0u8; 16]; 16];
    let (clobber, yielded) = hostile::vector_registers_across_hypercalls(&patterns, &mut found);
    info!("test_op CLOBBER_VECTOR_REGISTERS: result: {}; sched_yield: result: {}", Outcome(clobber), Outcome(yielded));
    if clobber < 0 {
        warn!("the hypervisor did not clobber its vector registers (boot it with testing=1): a weaker check");
    }
    match measure::differing_registers(&patterns, &found) {
        0 => {
            info!("sse: all 16 registers intact");
            ShutdownReason::Poweroff
        }
        mask => {
            error!("sse: registers differ: {}", RegisterList(mask));
            ShutdownReason::Crash
        }
    }
}

fn null_bench(info: &StartInfo) -> ShutdownReason {
    let count = match parse_count(find(info.command_line(), "count")) {
        Ok(count) => count,
        Err(problem) => {
            error!("{problem}");
            return ShutdownReason::Crash;
        }
    };
    let first = null_hypercall();
    if first != 0 {
        warn!("null hypercall: result: {}", Outcome(first));
    }
    let bare = bare_syscall();
    if bare != hypercall::BARE_SYSCALL_FOR_BENCHMARK as i64 {
        warn!("bare syscall: result: {} (expected its own number)", Outcome(bare));
    }
    let _ = sched_yield();
    let start = timestamp_counter();
    for _ in 0..count {
        null_hypercall();
    }
    let null_cycles = measure::cycles_per_call(start, timestamp_counter(), count);
    let start = timestamp_counter();
    for _ in 0..count {
        bare_syscall();
    }
    let bare_cycles = measure::cycles_per_call(start, timestamp_counter(), count);
    info!("bench: null hypercall {null_cycles} cycles/call; bare syscall {bare_cycles} cycles/call; n={count}");
    ShutdownReason::Poweroff
}

fn yield_bench(info: &StartInfo) -> ShutdownReason {
    let count = match parse_count(find(info.command_line(), "count")) {
        Ok(count) => count,
        Err(problem) => {
            error!("{problem}");
            return ShutdownReason::Crash;
        }
    };
    // Warm up, and let the partner reach its loop too.
    for _ in 0..4 {
        let _ = sched_yield();
    }
    let start = timestamp_counter();
    for _ in 0..count {
        let _ = sched_yield();
    }
    let cycles = measure::cycles_per_call(start, timestamp_counter(), count);
    info!("bench: yield round trip {cycles} cycles; n={count}");
    ShutdownReason::Poweroff
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("probe is a domain kernel: build it with --target x86_64-unknown-none and boot it under xen-core with action=<name>.");
    std::process::exit(2);
}
