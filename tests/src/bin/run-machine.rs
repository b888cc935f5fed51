//! `make run`'s launcher: boots the machine in QEMU with the console on the
//! terminal (Ctrl-A X quits) or, without a terminal, on standard output until
//! the machine powers off or the launcher is killed.
//!
//! Usage: `run-machine [HYPERVISOR-COMMAND-LINE]`

use std::io::IsTerminal;
use std::process::ExitCode;

use xen_tests::{build_images, qemu_command, Console, EXIT_FAILURE, EXIT_SUCCESS, QEMU};

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.iter().any(|argument| argument == "--help" || argument == "-h") {
        println!("usage: run-machine [HYPERVISOR-COMMAND-LINE...]");
        println!("Boots xen-core in QEMU (q35, TCG). On a terminal, press Ctrl-A X to quit.");
        println!("Options for the hypervisor: loglvl=none|error|warning|info|debug|all, on_idle=halt|poweroff,");
        println!("  timer_test_ms=N, selftest=pagefault|write-text|exec-data|stack-overflow|ud2|panic");
        return ExitCode::SUCCESS;
    }
    let command_line = arguments.join(" ");
    let image = build_images();
    let console = if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        eprintln!("run-machine: booting {} — press Ctrl-A X to quit QEMU", image.display());
        Console::Terminal
    } else {
        eprintln!("run-machine: booting {} (no terminal: console on stdout until power-off or kill)", image.display());
        Console::Stdout
    };
    let status = match qemu_command(image, &command_line, None, console).status() {
        Ok(status) => status,
        Err(error) => {
            eprintln!("run-machine: cannot start {QEMU}: {error} (install the Debian package qemu-system-x86)");
            return ExitCode::FAILURE;
        }
    };
    match status.code() {
        Some(EXIT_SUCCESS) => {
            eprintln!("run-machine: the hypervisor powered off cleanly");
            ExitCode::SUCCESS
        }
        Some(EXIT_FAILURE) => {
            eprintln!("run-machine: the hypervisor stopped on a panic or fatal trap");
            ExitCode::FAILURE
        }
        Some(0) => {
            eprintln!("run-machine: QEMU quit");
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("run-machine: QEMU ended with {other:?}");
            ExitCode::FAILURE
        }
    }
}
