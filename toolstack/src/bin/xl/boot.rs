//! `xl boot`: builds the boot bundle of a launch directory and runs QEMU
//! with the console on the terminal and the control channel on the control
//! socket (the command line is [`toolstack::qemu::Machine`]'s).

use std::io::IsTerminal;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use toolstack::qemu::{self, Console, Machine, EXIT_FAILURE, EXIT_SUCCESS, QEMU};
use toolstack::{bundle, launch};

/// What `xl boot` was asked for.
pub(crate) struct BootOptions {
    /// The launch directory.
    pub(crate) launch_dir: PathBuf,
    /// The hypervisor image.
    pub(crate) hypervisor: PathBuf,
    /// The hypervisor's command line.
    pub(crate) command_line: String,
    /// The control socket to create.
    pub(crate) socket: PathBuf,
    /// Print the QEMU command instead of running it.
    pub(crate) dry_run: bool,
    /// The disk image for the driver domain's virtio-blk (made if missing).
    pub(crate) disk: Option<PathBuf>,
}

/// Bytes of a disk image `xl boot` makes when there is none (sparse).
const DEFAULT_DISK_BYTES: u64 = 64 << 20;

/// Removes its file when dropped.
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Makes sure nothing else listens on `socket`; removes a stale one.
fn claim_socket(socket: &Path) -> Result<(), String> {
    if !socket.exists() {
        if let Some(parent) = socket
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .map_err(|error| format!("{}: {error}", parent.display()))?;
        }
        return Ok(());
    }
    if UnixStream::connect(socket).is_ok() {
        return Err(format!(
            "a machine is already running with control socket {}: quit it (Ctrl-A X in its \
             terminal) or boot this one with another --socket",
            socket.display()
        ));
    }
    std::fs::remove_file(socket).map_err(|error| {
        format!(
            "cannot remove the stale socket {}: {error}",
            socket.display()
        )
    })
}

/// `xl boot [LAUNCH_DIR]`.
pub(crate) fn boot(options: &BootOptions) -> Result<(), String> {
    let launch = launch::load(&options.launch_dir).map_err(|error| error.to_string())?;
    let built = bundle::assemble(&launch).map_err(|error| error.to_string())?;
    if !options.hypervisor.is_file() {
        return Err(format!(
            "hypervisor image {} not found: build it with `make images`, or name one with --hypervisor",
            options.hypervisor.display()
        ));
    }
    if let Some(parent) = options
        .socket
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|error| format!("{}: {error}", parent.display()))?;
    }
    if !options.dry_run {
        claim_socket(&options.socket)?;
    }
    // Next to the socket, so one machine has one bundle file however it ends.
    let mut bundle_name = options.socket.clone().into_os_string();
    bundle_name.push(".bundle");
    let bundle_path = PathBuf::from(bundle_name);
    std::fs::write(&bundle_path, &built.bytes)
        .map_err(|error| format!("{}: {error}", bundle_path.display()))?;
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut machine = Machine::new(
        &options.hypervisor,
        Some(&bundle_path),
        if terminal {
            Console::Terminal
        } else {
            Console::Stdout
        },
    );
    machine.command_line = options.command_line.clone();
    machine.control_socket = Some(options.socket.clone());
    // A driver domain given a PCI function gets QEMU's virtio-blk there,
    // backed by a disk image (its guests' disks are extents of it).
    if let Some(function) = launch.domains.iter().flat_map(|domain| domain.pci.iter()).next() {
        if function.bus != 0 || function.function != 0 {
            return Err(format!("PCI function {function}: xl boot puts its disk at bus 0, function 0"));
        }
        let image = options.disk.clone().unwrap_or_else(|| {
            let name = options.launch_dir.file_name().map_or("machine".into(), |name| name.to_string_lossy().into_owned());
            qemu::workspace_root().join("target").join("xl").join(format!("{name}-disk.img"))
        });
        if !image.exists() {
            if let Some(parent) = image.parent() {
                std::fs::create_dir_all(parent).map_err(|error| format!("{}: {error}", parent.display()))?;
            }
            let file = std::fs::File::create(&image).map_err(|error| format!("{}: {error}", image.display()))?;
            file.set_len(DEFAULT_DISK_BYTES).map_err(|error| format!("{}: {error}", image.display()))?;
            eprintln!("xl: made a {} MiB disk image {}", DEFAULT_DISK_BYTES >> 20, image.display());
        }
        eprintln!("xl: disk {} as virtio-blk at {function}", image.display());
        machine.disk = Some((image, function.device));
    }
    if options.dry_run {
        // The bundle stays, so the printed command can be run.
        println!("{}", qemu::shell_words(QEMU, &machine.arguments()));
        return Ok(());
    }
    let _bundle_file = Removed(bundle_path.clone());
    eprintln!(
        "xl: booting {} with {} ({} domains){}",
        options.hypervisor.display(),
        options.launch_dir.display(),
        built.domains.len(),
        if terminal { "; Ctrl-A X quits" } else { "" }
    );
    eprintln!(
        "xl: control channel on {} (from another terminal: xl --socket {} list)",
        options.socket.display(),
        options.socket.display()
    );
    let _socket_file = Removed(options.socket.clone());
    let status = machine.command().status().map_err(|error| {
        format!("cannot start {QEMU}: {error} (install the Debian package qemu-system-x86)")
    })?;
    match status.code() {
        Some(EXIT_SUCCESS) => {
            eprintln!("xl: the hypervisor powered off cleanly");
            Ok(())
        }
        Some(EXIT_FAILURE) => Err("the hypervisor stopped on a panic or fatal trap".to_string()),
        Some(0) => {
            eprintln!("xl: QEMU quit");
            Ok(())
        }
        Some(code) => Err(format!("QEMU exited with status {code}")),
        None => Err("QEMU was killed by a signal".to_string()),
    }
}
