//! A machine to boot: the hypervisor's command line and the domains of its
//! launch description, written as xl.cfg files, turned into a boot bundle by
//! the toolstack and booted in QEMU.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{boot_image, build_images, guest_image, workspace_root, Boot};

/// One domain of a test machine.
#[derive(Clone, Debug)]
pub struct DomainConfig {
    /// Its name.
    pub name: String,
    /// Which kernel: `hello` or `probe` from the image build, or a path.
    pub kernel: String,
    /// RAM in MiB.
    pub memory_mib: u64,
    /// Its label.
    pub seclabel: String,
    /// Its command line (`extra`).
    pub extra: String,
    /// Whether it is the control domain.
    pub control: bool,
    /// Its scheduler weight (`cpu_weight`), if not the default.
    pub weight: Option<u32>,
    /// PCI functions given to it (`pci = [...]`; makes it a driver domain).
    pub pci: Vec<String>,
}

impl DomainConfig {
    /// A probe domain doing `action` (plus any further words).
    pub fn probe(name: &str, extra: &str) -> DomainConfig {
        DomainConfig {
            name: name.into(),
            kernel: "probe".into(),
            memory_mib: 8,
            seclabel: "system_u:system_r:untrusted_t".into(),
            extra: extra.into(),
            control: false,
            weight: None,
            pci: Vec::new(),
        }
    }

    /// The same, as the control domain.
    pub fn control(mut self) -> DomainConfig {
        self.control = true;
        self.seclabel = "system_u:system_r:control_t".into();
        self
    }

    /// The same with this scheduler weight.
    pub fn weight(mut self, weight: u32) -> DomainConfig {
        self.weight = Some(weight);
        self
    }

    /// The control domain's agent (the store), with this command line.
    pub fn agent(extra: &str) -> DomainConfig {
        DomainConfig { kernel: "agent".into(), memory_mib: 16, ..DomainConfig::probe("control", extra) }.control()
    }

    /// The same with this label (`system_u:system_r:` is added).
    pub fn label(mut self, type_name: &str) -> DomainConfig {
        self.seclabel = format!("system_u:system_r:{type_name}");
        self
    }

    /// The same as a driver domain given these PCI functions (`00:03.0`).
    pub fn pci(mut self, functions: &[&str]) -> DomainConfig {
        self.pci = functions.iter().map(|function| (*function).to_string()).collect();
        self
    }

    /// A hello domain.
    pub fn hello(name: &str) -> DomainConfig {
        DomainConfig { kernel: "hello".into(), extra: String::new(), ..DomainConfig::probe(name, "") }
    }

    /// The same with this much RAM.
    pub fn memory(mut self, memory_mib: u64) -> DomainConfig {
        self.memory_mib = memory_mib;
        self
    }

    fn kernel_path(&self) -> PathBuf {
        if self.kernel.contains('/') {
            PathBuf::from(&self.kernel)
        } else {
            guest_image(&self.kernel)
        }
    }

    fn to_cfg(&self) -> String {
        let mut text = format!(
            "name = \"{}\"\nkernel = \"{}\"\nmemory = {}\nseclabel = \"{}\"\nextra = \"{}\"\n",
            self.name,
            self.kernel_path().display(),
            self.memory_mib,
            self.seclabel,
            self.extra
        );
        if self.control {
            text.push_str("control_domain = 1\n");
        }
        if let Some(weight) = self.weight {
            text.push_str(&format!("cpu_weight = {weight}\n"));
        }
        if !self.pci.is_empty() {
            let list: Vec<String> = self.pci.iter().map(|function| format!("'{function}'")).collect();
            text.push_str(&format!("driver_domain = 1\npci = [ {} ]\n", list.join(", ")));
        }
        text
    }
}

/// The policy test machines boot with unless a test sets its own.
pub const TEST_POLICY: &str = include_str!("test-policy.te");

/// A machine: hypervisor options, domains in build order, and a policy.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// The hypervisor's command line.
    pub command_line: String,
    /// The domains, in build order.
    pub domains: Vec<DomainConfig>,
    /// The policy source (`None`: no policy at all).
    pub policy: Option<String>,
    /// Extra QEMU arguments (devices, drives).
    pub qemu: Vec<String>,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl Machine {
    /// A machine with this hypervisor command line and no domains.
    pub fn new(command_line: &str) -> Machine {
        Machine { command_line: command_line.into(), domains: Vec::new(), policy: Some(TEST_POLICY.into()), qemu: Vec::new() }
    }

    /// Boots with this policy source instead (`None`: no policy).
    pub fn policy(mut self, policy: Option<&str>) -> Machine {
        self.policy = policy.map(String::from);
        self
    }

    /// Adds QEMU arguments.
    pub fn qemu(mut self, arguments: &[&str]) -> Machine {
        self.qemu.extend(arguments.iter().map(|argument| (*argument).to_string()));
        self
    }

    /// A raw disk image of `bytes` zero bytes at `path`, as a virtio-blk
    /// function (modern only) at 00:03.0.
    pub fn virtio_disk(self, path: &std::path::Path) -> Machine {
        let drive = format!("file={},if=none,id=disk0,format=raw", path.display());
        self.qemu(&["-drive", &drive, "-device", "virtio-blk-pci,drive=disk0,addr=03.0,disable-legacy=on"])
    }

    /// Adds a domain.
    pub fn domain(mut self, domain: DomainConfig) -> Machine {
        self.domains.push(domain);
        self
    }

    /// Writes the launch description and builds the bundle; returns its path.
    pub fn bundle(&self) -> PathBuf {
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let directory = workspace_root()
            .join("target")
            .join("test-machines")
            .join(format!("{}-{unique}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap_or_else(|error| panic!("create {}: {error}", directory.display()));
        for (index, domain) in self.domains.iter().enumerate() {
            let path = directory.join(format!("{index:02}-{}.cfg", domain.name));
            std::fs::write(&path, domain.to_cfg()).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
        }
        if let Some(policy) = &self.policy {
            let path = directory.join("policy.te");
            std::fs::write(&path, policy).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
        }
        let launch = toolstack::launch::load(&directory).unwrap_or_else(|error| panic!("launch description: {error}"));
        let bytes = toolstack::bundle::build(&launch).unwrap_or_else(|error| panic!("bundle: {error}"));
        let path = directory.join("bundle.bin");
        std::fs::write(&path, bytes).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
        path
    }

    /// Builds the bundle and boots the machine, waiting at most `deadline`.
    pub fn boot(&self, deadline: Duration) -> Boot {
        let bundle = self.bundle();
        let extra: Vec<&str> = self.qemu.iter().map(String::as_str).collect();
        crate::boot_image_with(build_images(), &self.command_line, Some(&bundle), deadline, &extra)
    }

    /// Boots and stops as soon as `done(log so far)` holds.
    pub fn boot_until(&self, deadline: Duration, done: &dyn Fn(&str) -> bool) -> Boot {
        let bundle = self.bundle();
        let extra: Vec<&str> = self.qemu.iter().map(String::as_str).collect();
        crate::boot_image_until(build_images(), &self.command_line, Some(&bundle), deadline, &extra, done)
    }

    /// Boots the hypervisor with a given bundle file (a test may damage it).
    pub fn boot_bundle(&self, bundle: &std::path::Path, deadline: Duration) -> Boot {
        boot_image(build_images(), &self.command_line, Some(bundle), deadline)
    }
}
