//! A machine that keeps running while a test talks to it: QEMU with the
//! serial console captured and the operator's channel (COM2) on a Unix
//! socket, and the real host `xl` binary to drive it, as an operator would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::machine::Machine;
use crate::{build_images, qemu_command_with, workspace_root, Console};

/// The host `xl`, built once per process (debug build of `toolstack`).
pub fn xl_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "-p", "toolstack", "--bin", "xl"])
            .output()
            .unwrap_or_else(|error| panic!("cannot run cargo to build xl: {error}"));
        assert!(output.status.success(), "building xl failed:\n{}", String::from_utf8_lossy(&output.stderr));
        workspace_root().join("target").join("debug").join("xl")
    })
}

/// A running machine.
pub struct Running {
    child: Child,
    log: Arc<Mutex<Vec<u8>>>,
    /// The operator channel's socket.
    pub socket: PathBuf,
    started: Instant,
}

impl Running {
    /// Builds `machine`'s bundle and starts it with an operator channel.
    pub fn start(machine: &Machine) -> Running {
        Running::start_with(machine, &[])
    }

    /// [`Running::start`] with extra QEMU arguments (e.g. `-icount`).
    pub fn start_with(machine: &Machine, extra: &[&str]) -> Running {
        let bundle = machine.bundle();
        let socket = bundle.with_file_name("control.sock");
        let _ = std::fs::remove_file(&socket);
        let mut command = qemu_command_with(build_images(), &machine.command_line, Some(&bundle), Console::Captured, extra);
        command
            .arg("-chardev")
            .arg(format!("socket,id=control,path={},server=on,wait=off", socket.display()))
            .args(["-serial", "chardev:control"]);
        let mut child = command.spawn().unwrap_or_else(|error| panic!("cannot start QEMU: {error}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = child.stdout.take() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(count) = std::io::Read::read(&mut pipe, &mut buffer) {
                    if count == 0 {
                        break;
                    }
                    if let Ok(mut bytes) = log.lock() {
                        bytes.extend_from_slice(&buffer[..count]);
                    }
                }
            });
        }
        if let Some(pipe) = child.stderr.take() {
            std::thread::spawn(move || {
                let _ = std::io::read_to_string(pipe);
            });
        }
        Running { child, log, socket, started: Instant::now() }
    }

    /// The serial console so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|bytes| String::from_utf8_lossy(&bytes).replace("\r\n", "\n")).unwrap_or_default()
    }

    /// Waits until the console shows `needle`; panics with the log's tail
    /// if it does not within `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("no \"{needle}\" within {timeout:?}\n--- serial log (tail) ---\n{}", self.tail(60));
    }

    /// How many times the console shows `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// The last `lines` lines of the console.
    pub fn tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Runs `xl --socket <this machine's> ARGS...` and returns its output.
    pub fn xl(&self, arguments: &[&str]) -> Output {
        Command::new(xl_binary())
            .arg("--socket")
            .arg(&self.socket)
            .args(arguments)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run xl: {error}"))
    }

    /// Runs `xl`, expects success, and returns its standard output.
    pub fn xl_ok(&self, arguments: &[&str]) -> String {
        let output = self.xl(arguments);
        assert!(
            output.status.success(),
            "xl {arguments:?} failed: {}\n--- serial log (tail) ---\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.tail(40)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `xl`, expects failure, and returns its standard error.
    pub fn xl_err(&self, arguments: &[&str]) -> String {
        let output = self.xl(arguments);
        assert!(!output.status.success(), "xl {arguments:?} should have failed: {}", String::from_utf8_lossy(&output.stdout));
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// The free frames the hypervisor reported after each teardown that
    /// left exactly `domains` domains, oldest first (exact, unlike `xl
    /// info`'s MiB).
    pub fn frames_free_at(&self, domains: usize) -> Vec<u64> {
        let needle = format!("{domains} domain(s) left; frames free ");
        self.log()
            .lines()
            .filter_map(|line| line.split(&needle).nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .collect()
    }

    /// How long it has run.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
