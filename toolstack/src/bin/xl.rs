//! `xl`: the operator's command line, in the conventions Xen users know.
//! Today it builds boot bundles and checks configuration files; commands
//! that talk to a running machine (`create`, `list`, `destroy`, ...) join
//! [`Command`] as they arrive. Exit status: 0 on success, 1 on any error,
//! with the message on standard error prefixed `xl: `.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use toolstack::{bundle, config, launch, policy};

/// The toolstack's host CLI for the security-first hypervisor.
#[derive(Debug, Parser)]
#[command(
    name = "xl",
    version,
    about = "Manage the hypervisor's domains: build boot bundles, check xl.cfg files",
    after_help = "Examples:\n  xl check-config launch/00-control.cfg\n  xl bundle launch/ -o bundle.bin",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Every `xl` subcommand.
#[derive(Debug, Subcommand)]
enum Command {
    /// Build the boot bundle the hypervisor boots from a launch directory.
    ///
    /// LAUNCH_DIR holds one xl.cfg file per boot-time domain (`*.cfg`,
    /// built in file-name order: 00-control.cfg, 10-driver.cfg, ...) and
    /// optionally a compiled policy (`policy.bin` or `policy`). Prints one
    /// line per domain: name, memory, kernel path and its SHA-256.
    Bundle {
        /// The launch directory.
        launch_dir: PathBuf,
        /// Where to write the bundle.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Parse xl.cfg files and print what they configure, or the first
    /// error in each as FILE:LINE:COLUMN: message.
    CheckConfig {
        /// The configuration files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Compile or check a security policy (FLASK-like `.te` text).
    #[command(subcommand)]
    Policy(PolicyCommand),
}

/// `xl policy` subcommands.
#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Compile policy text into the binary the boot bundle carries.
    /// Errors are printed as FILE:LINE:COLUMN: message.
    Compile {
        /// The policy text.
        file: PathBuf,
        /// Where to write the compiled policy.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Check policy text (or a compiled policy) and print what it allows,
    /// attributes expanded.
    Check {
        /// The policy text, or a compiled policy.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version: print to stdout and succeed.
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error)
            if error.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            eprint!("xl: no command given\n\n{}", error.render());
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprint!("xl: {}", error.render());
            return ExitCode::FAILURE;
        }
    };
    let result = match &cli.command {
        Command::Bundle { launch_dir, output } => bundle_command(launch_dir, output),
        Command::CheckConfig { files } => check_config_command(files),
        Command::Policy(command) => policy_command(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xl: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `xl bundle LAUNCH_DIR -o OUT`.
fn bundle_command(launch_dir: &Path, output: &Path) -> Result<(), String> {
    let launch = launch::load(launch_dir).map_err(|error| error.to_string())?;
    let built = bundle::assemble(&launch).map_err(|error| error.to_string())?;
    std::fs::write(output, &built.bytes)
        .map_err(|error| format!("{}: {error}", output.display()))?;
    for domain in &built.domains {
        println!(
            "{:<16} {:>5} MiB  {}  sha256:{}",
            domain.name,
            domain.memory_mib,
            domain.kernel.display(),
            bundle::hex(&domain.kernel_sha256)
        );
    }
    let policy = launch
        .policy
        .as_ref()
        .map_or("no policy".to_string(), |policy| {
            format!(
                "policy {} ({} bytes)",
                policy.path.display(),
                policy.bytes.len()
            )
        });
    println!(
        "wrote {} ({} bytes, {} domains, {policy})",
        output.display(),
        built.bytes.len(),
        built.domains.len()
    );
    Ok(())
}

/// `xl check-config FILE...`: checks every file, reports every failure.
fn check_config_command(files: &[PathBuf]) -> Result<(), String> {
    let mut failures = 0;
    for file in files {
        match config::load(file) {
            Ok(parsed) => println!("# {}\n{parsed}\n", file.display()),
            Err(error) => {
                eprintln!("xl: {error}");
                failures += 1;
            }
        }
    }
    match failures {
        0 => Ok(()),
        _ => Err(format!(
            "{failures} of {} configuration files have errors",
            files.len()
        )),
    }
}

/// `xl policy compile FILE -o OUT` and `xl policy check FILE`.
fn policy_command(command: &PolicyCommand) -> Result<(), String> {
    match command {
        PolicyCommand::Compile { file, output } => {
            let compiled = policy::compile_file(file).map_err(|error| error.to_string())?;
            std::fs::write(output, &compiled)
                .map_err(|error| format!("{}: {error}", output.display()))?;
            println!("wrote {} ({} bytes)", output.display(), compiled.len());
            Ok(())
        }
        PolicyCommand::Check { file } => {
            let bytes =
                std::fs::read(file).map_err(|error| format!("{}: {error}", file.display()))?;
            let text = if bytes.starts_with(&xen_abi::policy::MAGIC) {
                policy::decompile(&bytes).map_err(|error| format!("{}: {error}", file.display()))?
            } else {
                policy::describe(&policy::analyze_file(file).map_err(|error| error.to_string())?)
            };
            print!("{text}");
            Ok(())
        }
    }
}
