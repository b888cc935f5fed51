//! The QEMU harness. It builds the bare-metal images (once per test
//! process), boots them on `q35` under TCG with the serial console captured
//! and `isa-debug-exit` wired up, enforces a deadline so no test can hang,
//! and turns the exit code into an [`Outcome`]. `make run` is `xl boot`,
//! whose QEMU command line (`toolstack::qemu`) is this one plus the
//! operator's channel; [`running`] starts that kind of machine for tests.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";
/// QEMU's exit status when the hypervisor powers off cleanly (0x10 << 1 | 1).
pub const EXIT_SUCCESS: i32 = 33;
/// QEMU's exit status when the hypervisor panics or takes a fatal trap.
pub const EXIT_FAILURE: i32 = 35;
/// How long a test machine may run before it is killed and the test fails.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Where the bare-metal images are built (apart from the host build, so a
/// test can build them while `cargo test` holds the host build's lock).
pub fn image_target_dir() -> PathBuf {
    workspace_root().join("target").join("images")
}

/// The hypervisor image.
pub fn hypervisor_image() -> PathBuf {
    image_target_dir().join("x86_64-unknown-none").join("release").join("xen-core")
}

/// A domain kernel built for the bare-metal target (`hello`, `probe`).
pub fn guest_image(name: &str) -> PathBuf {
    build_images();
    image_target_dir().join("x86_64-unknown-none").join("release").join(name)
}

/// Builds the images once per process; panics with cargo's output if the
/// build fails.
pub fn build_images() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--release", "-p", "xen-core", "-p", "hello-domain", "-p", "probe-domain", "-p", "control-agent", "-p", "driver-kernel"])
            .args(["--target", "x86_64-unknown-none", "--target-dir"])
            .arg(image_target_dir())
            .output()
            .unwrap_or_else(|error| panic!("cannot run cargo to build the images: {error}"));
        assert!(
            output.status.success(),
            "building the hypervisor image failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        hypervisor_image()
    })
}

/// Where the serial console goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    /// Captured through a pipe (tests).
    Captured,
    /// The terminal, with QEMU's monitor multiplexed (Ctrl-A X quits).
    Terminal,
    /// Standard output without a terminal: printed until QEMU ends.
    Stdout,
}

/// The QEMU command that boots `image` with `command_line` and, if given,
/// the boot bundle as its one multiboot module.
pub fn qemu_command(image: &Path, command_line: &str, bundle: Option<&Path>, console: Console) -> Command {
    qemu_command_with(image, command_line, bundle, console, &[])
}

/// [`qemu_command`] with extra QEMU arguments (e.g. `-icount` for benchmarks).
pub fn qemu_command_with(image: &Path, command_line: &str, bundle: Option<&Path>, console: Console, extra: &[&str]) -> Command {
    let mut command = Command::new(QEMU);
    command.args(extra);
    // QEMU_EXTRA: more arguments for every boot, split at spaces (e.g. a TCG
    // plugin to profile a benchmark: see BENCHMARKS.md).
    if let Some(more) = std::env::var_os("QEMU_EXTRA") {
        command.args(more.to_string_lossy().split_whitespace());
    }
    command
        .args(["-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "512M", "-smp", "1"])
        .args(["-display", "none", "-no-reboot", "-nodefaults"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-kernel")
        .arg(image)
        .args(["-append", command_line]);
    if let Some(bundle) = bundle {
        command.arg("-initrd").arg(bundle);
    }
    match console {
        Console::Captured => {
            command.args(["-serial", "stdio", "-monitor", "none"]);
            command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Console::Terminal => {
            command.args(["-serial", "mon:stdio"]);
        }
        Console::Stdout => {
            command.args(["-serial", "stdio", "-monitor", "none"]);
            command.stdin(Stdio::null());
        }
    }
    command
}

/// How a boot ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The hypervisor powered off cleanly.
    PoweredOff,
    /// The hypervisor reported a panic or fatal trap.
    Failed,
    /// QEMU ended some other way (a triple fault ends with status 0 under
    /// `-no-reboot`), with this status or signal.
    Crashed(Option<i32>),
    /// The deadline passed; the machine was killed.
    TimedOut,
    /// The test saw what it waited for and stopped the machine.
    Stopped,
}

/// A finished boot: how it ended, what it printed, how long it took.
#[derive(Debug)]
pub struct Boot {
    /// How it ended.
    pub outcome: Outcome,
    /// The serial console, as text.
    pub log: String,
    /// QEMU's own standard error.
    pub qemu_errors: String,
    /// Wall-clock time from start to end.
    pub elapsed: Duration,
}

impl Boot {
    /// The last `lines` lines of the log, for failure messages.
    pub fn tail(&self, lines: usize) -> String {
        let all: Vec<&str> = self.log.lines().collect();
        let start = all.len().saturating_sub(lines);
        all[start..].join("\n")
    }

    /// Panics, showing the log tail, unless the boot ended as expected.
    pub fn expect_outcome(&self, expected: Outcome) -> &Self {
        assert_eq!(
            self.outcome, expected,
            "unexpected end of boot after {:?}\n--- serial log (tail) ---\n{}\n--- qemu stderr ---\n{}",
            self.elapsed,
            self.tail(40),
            self.qemu_errors
        );
        self
    }

    /// Panics, showing the log tail, unless the log contains `needle`.
    pub fn expect_log(&self, needle: &str) -> &Self {
        assert!(self.log.contains(needle), "the serial log lacks {needle:?}\n--- serial log (tail) ---\n{}", self.tail(40));
        self
    }

    /// Panics, showing the log tail, if the log contains `needle`.
    pub fn expect_no_log(&self, needle: &str) -> &Self {
        assert!(!self.log.contains(needle), "the serial log has {needle:?}\n--- serial log (tail) ---\n{}", self.tail(40));
        self
    }
}

/// Boots the hypervisor with `command_line` and waits, at most `deadline`.
pub fn boot(command_line: &str, deadline: Duration) -> Boot {
    let image = build_images();
    boot_image(image, command_line, None, deadline)
}

/// Boots a given image, with an optional bundle; see [`boot`].
pub fn boot_image(image: &Path, command_line: &str, bundle: Option<&Path>, deadline: Duration) -> Boot {
    boot_image_with(image, command_line, bundle, deadline, &[])
}

/// [`boot_image`] with extra QEMU arguments.
pub fn boot_image_with(image: &Path, command_line: &str, bundle: Option<&Path>, deadline: Duration, extra: &[&str]) -> Boot {
    boot_image_until(image, command_line, bundle, deadline, extra, &|_| false)
}

/// Boots and stops the machine as soon as `done(log so far)` holds
/// ([`Outcome::Stopped`]), or at the deadline.
pub fn boot_image_until(
    image: &Path,
    command_line: &str,
    bundle: Option<&Path>,
    deadline: Duration,
    extra: &[&str],
    done: &dyn Fn(&str) -> bool,
) -> Boot {
    let started = Instant::now();
    let mut child = qemu_command_with(image, command_line, bundle, Console::Captured, extra).spawn().unwrap_or_else(|error| {
        panic!("cannot start {QEMU}: {error}; `make test` installs it (Debian package qemu-system-x86)")
    });
    let shared = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let mut stdout = child.stdout.take().map(|pipe| {
        let shared = std::sync::Arc::clone(&shared);
        std::thread::spawn(move || copy_into(pipe, &shared))
    });
    let mut stderr = child.stderr.take().map(|pipe| std::thread::spawn(move || read_all(pipe)));
    let mut stopped = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => {
                let so_far = shared.lock().map(|bytes| String::from_utf8_lossy(&bytes).replace("\r\n", "\n")).unwrap_or_default();
                if done(&so_far) {
                    stopped = true;
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("waiting for QEMU failed: {error}"),
        }
    };
    let elapsed = started.elapsed();
    if let Some(thread) = stdout.take() {
        let _ = thread.join();
    }
    let log = shared.lock().map(|bytes| String::from_utf8_lossy(&bytes).replace("\r\n", "\n")).unwrap_or_default();
    let qemu_errors = stderr.take().and_then(|thread| thread.join().ok()).unwrap_or_default();
    let outcome = match status.map(|status| status.code()) {
        None if stopped => Outcome::Stopped,
        None => Outcome::TimedOut,
        Some(Some(EXIT_SUCCESS)) => Outcome::PoweredOff,
        Some(Some(EXIT_FAILURE)) => Outcome::Failed,
        Some(code) => Outcome::Crashed(code),
    };
    Boot { outcome, log, qemu_errors, elapsed }
}

fn copy_into(mut pipe: impl Read, shared: &std::sync::Mutex<Vec<u8>>) {
    let mut buffer = [0u8; 4096];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(count) => {
                if let Ok(mut bytes) = shared.lock() {
                    bytes.extend_from_slice(&buffer[..count]);
                }
            }
        }
    }
}

fn read_all(mut pipe: impl Read) -> String {
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
}

pub mod elf;
pub mod machine;
pub mod running;
