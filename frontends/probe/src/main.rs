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

mod action;
mod hostile;
mod measure;
mod tiny;

use guest_runtime::command_line::find;
use guest_runtime::hypercall::{console_write_from, foreign};
use guest_runtime::{
    bare_syscall, console_write, null_hypercall, sched_yield, timestamp_counter, ShutdownReason, StartInfo,
};
use log::{error, info, warn};
use xen_abi::hypercall;
use xen_abi::layout::{pfn_to_address, RAM_BASE};

use crate::action::{parse_count, Action};
use crate::hostile::{FLAG_ALIGNMENT_CHECK, FLAG_NESTED_TASK, FLAG_TRAP, HYPERVISOR_ADDRESS};
use crate::measure::{Outcome, RegisterList};

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
        Action::Panic => panic!("deliberate"),
        Action::Spin => loop {
            core::hint::spin_loop();
        },
    }
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

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("probe is a domain kernel: build it with --target x86_64-unknown-none and boot it under xen-core with action=<name>.");
    std::process::exit(2);
}
