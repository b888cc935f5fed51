//! The QEMU command that boots the hypervisor with a boot bundle: the
//! machine the test harness boots (`q35`, TCG, one CPU, 512 MiB,
//! `isa-debug-exit`), its console on the first serial port and, for
//! `xl boot`, the control channel on the second serial port as a Unix
//! socket that QEMU listens on and `xl`'s runtime commands connect to.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";
/// QEMU's exit status when the hypervisor powers off cleanly (0x10 << 1 | 1).
pub const EXIT_SUCCESS: i32 = 33;
/// QEMU's exit status when the hypervisor panics or takes a fatal trap.
pub const EXIT_FAILURE: i32 = 35;

/// The workspace's root directory (where this crate was built from).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The hypervisor image `make images` builds.
pub fn hypervisor_image() -> PathBuf {
    workspace_root()
        .join("target")
        .join("images")
        .join("x86_64-unknown-none")
        .join("release")
        .join("xen-core")
}

/// The launch description `xl boot` uses when given none.
pub fn default_launch_directory() -> PathBuf {
    workspace_root()
        .join("toolstack")
        .join("machines")
        .join("default")
}

/// Where the serial console goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    /// Captured through pipes (tests).
    Captured,
    /// The terminal, with QEMU's monitor multiplexed (Ctrl-A X quits).
    Terminal,
    /// Standard output without a terminal: printed until QEMU ends.
    Stdout,
}

/// Everything that varies between the machines QEMU boots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// The hypervisor image, booted with `-kernel`.
    pub hypervisor: PathBuf,
    /// The hypervisor's command line (`-append`).
    pub command_line: String,
    /// The boot bundle, the one multiboot module (`-initrd`).
    pub bundle: Option<PathBuf>,
    /// Where the console goes.
    pub console: Console,
    /// The control channel's Unix socket, if the machine has one.
    pub control_socket: Option<PathBuf>,
    /// More QEMU arguments, first on the command line (e.g. `-icount`).
    pub extra: Vec<String>,
    /// A raw disk image served as a virtio-blk function (modern only) at
    /// this PCI device number on bus 0, for the driver domain.
    pub disk: Option<(PathBuf, u8)>,
}

impl Machine {
    /// A machine booting `hypervisor` with `bundle`, console on `console`,
    /// nothing else.
    pub fn new(hypervisor: &Path, bundle: Option<&Path>, console: Console) -> Self {
        Self {
            hypervisor: hypervisor.to_path_buf(),
            command_line: String::new(),
            bundle: bundle.map(Path::to_path_buf),
            console,
            control_socket: None,
            extra: Vec::new(),
            disk: None,
        }
    }

    /// QEMU's arguments, in order.
    pub fn arguments(&self) -> Vec<OsString> {
        let mut arguments: Vec<OsString> = self.extra.iter().map(OsString::from).collect();
        let mut push = |words: &[&str]| arguments.extend(words.iter().map(OsString::from));
        push(&[
            "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "512M",
        ]);
        push(&["-smp", "1", "-display", "none", "-no-reboot", "-nodefaults"]);
        push(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        arguments.push("-kernel".into());
        arguments.push(self.hypervisor.clone().into_os_string());
        arguments.push("-append".into());
        arguments.push(self.command_line.clone().into());
        if let Some(bundle) = &self.bundle {
            arguments.push("-initrd".into());
            arguments.push(bundle.clone().into_os_string());
        }
        if let Some((image, device)) = &self.disk {
            let path = image.to_string_lossy().replace(',', ",,");
            arguments.push("-drive".into());
            arguments.push(format!("file={path},if=none,id=disk0,format=raw").into());
            arguments.push("-device".into());
            arguments.push(format!("virtio-blk-pci,drive=disk0,addr={device:02x}.0,disable-legacy=on").into());
        }
        let console: &[&str] = match self.console {
            Console::Captured | Console::Stdout => &["-serial", "stdio", "-monitor", "none"],
            Console::Terminal => &["-serial", "mon:stdio"],
        };
        arguments.extend(console.iter().map(OsString::from));
        if let Some(socket) = &self.control_socket {
            // QEMU's option syntax doubles a comma inside a value.
            let path = socket.to_string_lossy().replace(',', ",,");
            arguments.push("-chardev".into());
            arguments.push(format!("socket,id=control,path={path},server=on,wait=off").into());
            arguments.push("-serial".into());
            arguments.push("chardev:control".into());
        }
        arguments
    }

    /// The QEMU command, its standard streams set for the console.
    pub fn command(&self) -> Command {
        let mut command = Command::new(QEMU);
        command.args(self.arguments());
        match self.console {
            Console::Captured => {
                command
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
            }
            Console::Stdout => {
                command.stdin(Stdio::null());
            }
            Console::Terminal => {}
        }
        command
    }
}

/// The command line as a shell would show it (for `xl boot --dry-run`).
pub fn shell_words(program: &str, arguments: &[OsString]) -> String {
    let mut line = String::from(program);
    for argument in arguments {
        let text = argument.to_string_lossy();
        line.push(' ');
        let plain = !text.is_empty()
            && text.chars().all(|character| {
                character.is_ascii_alphanumeric() || "-_./:=,@+".contains(character)
            });
        if plain {
            line.push_str(&text);
        } else {
            line.push('\'');
            line.push_str(&text.replace('\'', "'\\''"));
            line.push('\'');
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(machine: &Machine) -> Vec<String> {
        machine
            .arguments()
            .iter()
            .map(|argument| argument.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_harness_machine_with_a_control_socket() {
        let mut machine = Machine::new(
            Path::new("/img/xen-core"),
            Some(Path::new("/tmp/b.bin")),
            Console::Terminal,
        );
        machine.command_line = "loglvl=debug".to_string();
        machine.control_socket = Some(PathBuf::from("/run/a,b.sock"));
        let expected = "-machine q35 -accel tcg -cpu max -m 512M -smp 1 -display none -no-reboot \
            -nodefaults -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel /img/xen-core \
            -append loglvl=debug -initrd /tmp/b.bin -serial mon:stdio \
            -chardev socket,id=control,path=/run/a,,b.sock,server=on,wait=off -serial chardev:control";
        assert_eq!(words(&machine).join(" "), expected);
    }

    #[test]
    fn captured_consoles_and_extra_arguments() {
        let mut machine = Machine::new(Path::new("/x"), None, Console::Captured);
        machine.extra = vec!["-icount".to_string(), "shift=0".to_string()];
        let words = words(&machine);
        assert_eq!(&words[..2], ["-icount", "shift=0"]);
        assert_eq!(
            &words[words.len() - 4..],
            ["-serial", "stdio", "-monitor", "none"]
        );
        assert!(!words.contains(&"-initrd".to_string()));
        assert_eq!(machine.command().get_program(), QEMU);
    }

    #[test]
    fn shell_words_quote_what_needs_it() {
        let arguments: Vec<OsString> =
            vec!["-append".into(), "a b".into(), "".into(), "it's".into()];
        assert_eq!(
            shell_words("qemu", &arguments),
            "qemu -append 'a b' '' 'it'\\''s'"
        );
    }

    #[test]
    fn default_paths_are_in_the_workspace() {
        assert!(hypervisor_image().ends_with("target/images/x86_64-unknown-none/release/xen-core"));
        assert!(default_launch_directory().join("00-control.cfg").is_file());
    }
}
