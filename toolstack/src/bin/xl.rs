//! `xl`: the operator's command line, in the conventions Xen users know.
//! Offline it builds boot bundles, checks configuration files and compiles
//! policies; `xl boot` starts a machine in QEMU, and the runtime commands
//! (`create`, `list`, `destroy`, ...) drive it over the control channel
//! ([`runtime`]). Exit status: 0 on success, 1 on any error, with the
//! message on standard error prefixed `xl: `.

#[path = "xl/boot.rs"]
mod boot;
#[path = "xl/runtime.rs"]
mod runtime;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use control_proto::EnforceMode;
use toolstack::{bundle, config, launch, policy};

/// The toolstack's host CLI for the security-first hypervisor.
#[derive(Debug, Parser)]
#[command(
    name = "xl",
    version,
    about = "Manage the hypervisor's domains: boot a machine, create, list and destroy domains, \
             build boot bundles, check xl.cfg files",
    after_help = "Examples:\n  xl boot                      # the default machine, console here\n  \
                  xl list -Z                   # from another terminal\n  \
                  xl create guest.cfg\n  xl check-config launch/00-control.cfg\n  \
                  xl bundle launch/ -o bundle.bin",
    propagate_version = true
)]
struct Cli {
    /// The running machine's control socket (`xl boot` creates it; the
    /// default is $XDG_RUNTIME_DIR/xl-control.sock, or
    /// /tmp/xl-control-$USER.sock without XDG_RUNTIME_DIR).
    #[arg(long, global = true, env = "XL_SOCKET", value_name = "PATH",
          default_value_os_t = toolstack::control::default_socket())]
    socket: PathBuf,
    /// Seconds a runtime command waits for the control domain's answer.
    #[arg(long, global = true, env = "XL_TIMEOUT", value_name = "SECONDS",
          default_value_t = 10.0, value_parser = parse_seconds)]
    timeout: f64,
    #[command(subcommand)]
    command: Command,
}

/// A positive number of seconds.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 1e6 => Ok(seconds),
        _ => Err(format!(
            "'{text}' is not a number of seconds between 0 and 1000000"
        )),
    }
}

/// `Enforcing`, `Permissive`, `1` or `0` (any case).
fn parse_mode(text: &str) -> Result<EnforceMode, String> {
    match text.to_ascii_lowercase().as_str() {
        "enforcing" | "1" => Ok(EnforceMode::Enforcing),
        "permissive" | "0" => Ok(EnforceMode::Permissive),
        _ => Err(format!("'{text}': expected Enforcing, Permissive, 1 or 0")),
    }
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
    /// Build the boot bundle of LAUNCH_DIR and boot it in QEMU, the console
    /// on this terminal (Ctrl-A X quits) and the control channel on the
    /// control socket (see --socket), where the other commands find it.
    #[command(
        after_help = "Examples:\n  xl boot\n  xl boot my-machine/ --append loglvl=debug\n  \
                            xl --socket /tmp/m2.sock boot --dry-run"
    )]
    Boot {
        /// The launch directory (default: the workspace's
        /// toolstack/machines/default).
        launch_dir: Option<PathBuf>,
        /// The hypervisor image (default: the workspace's
        /// target/images/x86_64-unknown-none/release/xen-core, built by
        /// `make images`).
        #[arg(long, value_name = "FILE")]
        hypervisor: Option<PathBuf>,
        /// The hypervisor's command line, e.g. `loglvl=debug`.
        #[arg(long, value_name = "TEXT", default_value = "")]
        append: String,
        /// Build the bundle and print the QEMU command instead of running it.
        #[arg(long)]
        dry_run: bool,
        /// The raw disk image behind the driver domain's virtio-blk
        /// (default: target/xl/<launch dir>-disk.img, made sparse, 64 MiB).
        #[arg(long, value_name = "FILE")]
        disk: Option<PathBuf>,
    },
    /// Create a domain from an xl.cfg file; its kernel travels over the
    /// control channel. Prints the new domain's id.
    #[command(after_help = "Example:\n  xl create guests/web.cfg")]
    Create {
        /// The domain's configuration file.
        #[arg(value_name = "CFG")]
        config: PathBuf,
    },
    /// List domains in Xen's columns: Name ID Mem VCPUs State Time(s).
    /// State letters: r running, b blocked, p paused, s shut down,
    /// c crashed, d dying.
    #[command(
        after_help = "Examples:\n  xl list\n  xl list -Z banking\n  xl list -l | jq '.[].name'"
    )]
    List {
        /// Add the security label column.
        #[arg(short = 'Z', long = "context")]
        labels: bool,
        /// Print JSON instead of the table.
        #[arg(short, long)]
        long: bool,
        /// Only these domains (names or ids).
        #[arg(value_name = "DOMAIN")]
        domains: Vec<String>,
    },
    /// Destroy a domain at once (its memory returns to the hypervisor).
    #[command(after_help = "Example:\n  xl destroy guest")]
    Destroy {
        /// The domain, by name or id.
        domain: String,
    },
    /// Ask a domain to shut down; its on_poweroff action then applies.
    #[command(after_help = "Example:\n  xl shutdown 5")]
    Shutdown {
        /// The domain, by name or id.
        domain: String,
    },
    /// Pause a domain: it stops running until unpaused.
    #[command(after_help = "Example:\n  xl pause guest")]
    Pause {
        /// The domain, by name or id.
        domain: String,
    },
    /// Unpause a paused domain.
    #[command(after_help = "Example:\n  xl unpause guest")]
    Unpause {
        /// The domain, by name or id.
        domain: String,
    },
    /// Print a domain's console output as it comes, until the domain is
    /// gone or Ctrl-C. Control characters are shown as ^X unless --raw.
    #[command(after_help = "Example:\n  xl console guest")]
    Console {
        /// The domain, by name or id.
        domain: String,
        /// Pass escape sequences through to the terminal.
        #[arg(long)]
        raw: bool,
    },
    /// Print the hypervisor's log ring.
    #[command(after_help = "Example:\n  xl dmesg | grep avc")]
    Dmesg,
    /// Print facts about the hypervisor: version, memory, domains, policy mode.
    #[command(after_help = "Example:\n  xl info")]
    Info,
    /// Print the policy's mode: Enforcing or Permissive.
    #[command(after_help = "Example:\n  xl getenforce")]
    Getenforce,
    /// Set the policy's mode.
    #[command(after_help = "Examples:\n  xl setenforce Permissive\n  xl setenforce 1")]
    Setenforce {
        /// Enforcing (1) or Permissive (0).
        #[arg(value_parser = parse_mode, value_name = "Enforcing|Permissive|1|0")]
        mode: EnforceMode,
    },
    /// Replace the running policy with FILE: a compiled policy, or policy
    /// text (`.te`), compiled first.
    #[command(after_help = "Examples:\n  xl loadpolicy policy.te\n  xl loadpolicy policy.bin")]
    Loadpolicy {
        /// The policy.
        file: PathBuf,
    },
    /// List a domain's virtual block devices in Xen's columns.
    #[command(after_help = "Example:\n  xl block-list banking")]
    BlockList {
        /// The domain, by name or id.
        domain: String,
    },
    /// List the store below PATH (default `/`), in xenstore-ls's shape.
    #[command(
        name = "xenstore-ls",
        after_help = "Example:\n  xl xenstore-ls /local/domain/3"
    )]
    XenstoreLs {
        /// The store path.
        #[arg(default_value = "/")]
        path: String,
    },
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
    let channel = runtime::Channel {
        socket: cli.socket.clone(),
        timeout: std::time::Duration::from_secs_f64(cli.timeout),
    };
    let result = match &cli.command {
        Command::Bundle { launch_dir, output } => bundle_command(launch_dir, output),
        Command::CheckConfig { files } => check_config_command(files),
        Command::Policy(command) => policy_command(command),
        Command::Boot {
            launch_dir,
            hypervisor,
            append,
            dry_run,
            disk,
        } => boot::boot(&boot::BootOptions {
            launch_dir: launch_dir
                .clone()
                .unwrap_or_else(toolstack::qemu::default_launch_directory),
            hypervisor: hypervisor
                .clone()
                .unwrap_or_else(toolstack::qemu::hypervisor_image),
            command_line: append.clone(),
            socket: cli.socket.clone(),
            dry_run: *dry_run,
            disk: disk.clone(),
        }),
        command => runtime::run(&channel, command),
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
            let bytes = toolstack::read_limited(file, policy::MAX_TEXT_BYTES)
                .map_err(|error| format!("{}: {error}", file.display()))?;
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
