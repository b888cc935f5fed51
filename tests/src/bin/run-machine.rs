//! `make run`'s launcher: boots the machine in QEMU with the console on the
//! terminal (Ctrl-A X quits) or, without a terminal, on standard output until
//! the machine powers off or the launcher is killed.
//!
//! Usage: `run-machine [--machine LAUNCH-DIR] [HYPERVISOR-COMMAND-LINE...]`
//!
//! The launch description (a directory of xl.cfg files) defaults to
//! `toolstack/machines/default`; the toolstack turns it into the boot bundle.

use std::io::IsTerminal;
use std::process::ExitCode;

use xen_tests::{build_images, qemu_command, workspace_root, Console, EXIT_FAILURE, EXIT_SUCCESS, QEMU};

fn main() -> ExitCode {
    let mut arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.iter().any(|argument| argument == "--help" || argument == "-h") {
        println!("usage: run-machine [--machine LAUNCH-DIR] [HYPERVISOR-COMMAND-LINE...]");
        println!("Boots xen-core in QEMU (q35, TCG) with the domains of LAUNCH-DIR");
        println!("(default toolstack/machines/default). On a terminal, press Ctrl-A X to quit.");
        println!("Options for the hypervisor: loglvl=none|error|warning|info|debug|all, on_idle=halt|poweroff,");
        println!("  timer_test_ms=N, selftest=pagefault|write-text|exec-data|stack-overflow|ud2|panic");
        return ExitCode::SUCCESS;
    }
    let machine = match arguments.iter().position(|argument| argument == "--machine") {
        Some(index) if index + 1 < arguments.len() => {
            let directory = std::path::PathBuf::from(arguments.remove(index + 1));
            arguments.remove(index);
            directory
        }
        Some(_) => {
            eprintln!("run-machine: --machine needs a directory");
            return ExitCode::FAILURE;
        }
        None => workspace_root().join("toolstack").join("machines").join("default"),
    };
    let command_line = arguments.join(" ");
    let image = build_images();
    let bundle = match toolstack::launch::load(&machine).and_then(|launch| toolstack::bundle::build(&launch)) {
        Ok(bytes) => {
            let path = workspace_root().join("target").join("images").join("bundle.bin");
            if let Err(error) = std::fs::write(&path, bytes) {
                eprintln!("run-machine: cannot write {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
            path
        }
        Err(error) => {
            eprintln!("run-machine: {}: {error}", machine.display());
            return ExitCode::FAILURE;
        }
    };
    eprintln!("run-machine: launch description {} -> {}", machine.display(), bundle.display());
    let console = if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        eprintln!("run-machine: booting {} — press Ctrl-A X to quit QEMU", image.display());
        Console::Terminal
    } else {
        eprintln!("run-machine: booting {} (no terminal: console on stdout until power-off or kill)", image.display());
        Console::Stdout
    };
    let status = match qemu_command(image, &command_line, Some(&bundle), console).status() {
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
