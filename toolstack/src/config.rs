//! Domain configuration files in the xl.cfg syntax Xen users know, the
//! subset used today: `name`, `kernel`, `memory`, `seclabel`, `extra` (or
//! `cmdline`), `vcpus`, `type`, `cpu_weight`, `disk`, `vif`, `pci`,
//! `on_crash`/`on_poweroff`/`on_reboot`, and our
//! `control_domain`/`driver_domain` flags. [`syntax`] reads the
//! `KEY = VALUE` lines, [`devices`] the items of the device lists; this
//! module gives the keys meaning. To add a key, add a field to
//! [`DomainConfig`] and an arm to [`DomainConfig::from_settings`].

pub mod devices;
pub mod syntax;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use devices::{Access, DiskSpec, ExitAction, PciAddress, VifSpec};
pub use syntax::{Position, Setting, SyntaxError, Value, ValueKind};

/// One domain's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// The file it came from.
    pub source: PathBuf,
    /// `name`: the domain's name.
    pub name: String,
    /// `kernel`: the kernel image, resolved against the file's directory.
    pub kernel: PathBuf,
    /// `memory`: RAM in MiB.
    pub memory_mib: u64,
    /// `seclabel`: the domain's security label, if given.
    pub seclabel: Option<String>,
    /// `extra` or `cmdline`: the kernel's command line.
    pub command_line: String,
    /// `vcpus`: always 1 for now.
    pub vcpus: u64,
    /// `control_domain = 1`: this is the control domain.
    pub control_domain: bool,
    /// `driver_domain = 1`: this is a driver domain.
    pub driver_domain: bool,
    /// `cpu_weight = N`: the scheduler weight (1..=65535; default 256).
    pub cpu_weight: Option<u32>,
    /// `disk = [...]`: virtual block devices.
    pub disks: Vec<DiskSpec>,
    /// `vif = [...]`: virtual network interfaces.
    pub vifs: Vec<VifSpec>,
    /// `pci = [...]`: PCI functions passed through (to a driver domain).
    pub pci: Vec<PciAddress>,
    /// `on_crash`: what to do when it crashes (default destroy).
    pub on_crash: ExitAction,
    /// `on_poweroff`: what to do when it powers off (default destroy).
    pub on_poweroff: ExitAction,
    /// `on_reboot`: what to do when it reboots (default restart, as Xen).
    pub on_reboot: ExitAction,
}

/// A configuration error: which file, where in it, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// Where in it (`None` for problems of the whole file).
    pub position: Option<Position>,
    /// What is wrong or expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(position) => write!(
                formatter,
                "{}:{position}: {}",
                self.path.display(),
                self.message
            ),
            None => write!(formatter, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The largest configuration file read (real ones are a few hundred bytes).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads and parses the configuration file at `path`.
pub fn load(path: &Path) -> Result<DomainConfig, ConfigError> {
    let unreadable = |message: String| ConfigError {
        path: path.to_path_buf(),
        position: None,
        message: format!("cannot read: {message}"),
    };
    let bytes = crate::read_limited(path, MAX_CONFIG_BYTES)
        .map_err(|error| unreadable(error.to_string()))?;
    let text = String::from_utf8(bytes)
        .map_err(|error| unreadable(format!("not UTF-8 text: {error}")))?;
    parse(&text, path)
}

/// Parses configuration `text`, read from `path` (relative `kernel` paths
/// are resolved against its directory).
pub fn parse(text: &str, path: &Path) -> Result<DomainConfig, ConfigError> {
    let settings = syntax::parse(text).map_err(|error| ConfigError {
        path: path.to_path_buf(),
        position: Some(error.position),
        message: error.message,
    })?;
    DomainConfig::from_settings(&settings, path)
}

/// Builds a [`ConfigError`] at `position` of `path`.
fn error_at(path: &Path, position: Position, message: String) -> ConfigError {
    ConfigError {
        path: path.to_path_buf(),
        position: Some(position),
        message,
    }
}

fn expect_string<'a>(path: &Path, key: &str, value: &'a Value) -> Result<&'a str, ConfigError> {
    match &value.kind {
        ValueKind::String(text) => Ok(text),
        _ => Err(error_at(
            path,
            value.position,
            format!(
                "expected a quoted string for '{key}', found {}",
                value.describe()
            ),
        )),
    }
}

fn expect_integer(path: &Path, key: &str, value: &Value) -> Result<u64, ConfigError> {
    match value.kind {
        ValueKind::Integer(number) => Ok(number),
        _ => Err(error_at(
            path,
            value.position,
            format!(
                "expected an integer for '{key}', found {}",
                value.describe()
            ),
        )),
    }
}

/// The strings of a list value, each with its position.
fn expect_string_list<'a>(
    path: &Path,
    key: &str,
    value: &'a Value,
) -> Result<Vec<(&'a str, Position)>, ConfigError> {
    let ValueKind::List(items) = &value.kind else {
        return Err(error_at(
            path,
            value.position,
            format!(
                "expected a list of quoted strings for '{key}' (like {key} = [ '...' ]), found {}",
                value.describe()
            ),
        ));
    };
    items
        .iter()
        .map(|item| match &item.kind {
            ValueKind::String(text) => Ok((text.as_str(), item.position)),
            _ => Err(error_at(
                path,
                item.position,
                format!(
                    "expected a quoted string in '{key}', found {}",
                    item.describe()
                ),
            )),
        })
        .collect()
}

/// Parses every item of the list `value` with `parse`, refusing two items
/// with the same `identity`.
fn parse_list<T, K: PartialEq + fmt::Display>(
    path: &Path,
    key: &str,
    value: &Value,
    parse: impl Fn(&str) -> Result<T, String>,
    identity: impl Fn(&T) -> Option<K>,
) -> Result<Vec<T>, ConfigError> {
    let mut parsed: Vec<(T, Position)> = Vec::new();
    for (text, position) in expect_string_list(path, key, value)? {
        let item = parse(text)
            .map_err(|message| error_at(path, position, format!("{key} '{text}': {message}")))?;
        if let Some(id) = identity(&item) {
            if let Some((_, first)) = parsed
                .iter()
                .find(|(other, _)| identity(other).as_ref() == Some(&id))
            {
                let message = format!(
                    "{key} '{text}': {id} is already given at line {}, column {}",
                    first.line, first.column
                );
                return Err(error_at(path, position, message));
            }
        }
        parsed.push((item, position));
    }
    Ok(parsed.into_iter().map(|(item, _)| item).collect())
}

fn expect_flag(path: &Path, key: &str, value: &Value) -> Result<bool, ConfigError> {
    match expect_integer(path, key, value)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(error_at(
            path,
            value.position,
            format!("expected 0 or 1 for '{key}', found {other}"),
        )),
    }
}

impl DomainConfig {
    /// Gives meaning to parsed `settings` from the file at `path`.
    pub fn from_settings(settings: &[Setting], path: &Path) -> Result<Self, ConfigError> {
        let mut seen: HashMap<&str, Position> = HashMap::new();
        let mut name = None;
        let mut kernel = None;
        let mut memory_mib = None;
        let mut config = DomainConfig {
            source: path.to_path_buf(),
            name: String::new(),
            kernel: PathBuf::new(),
            memory_mib: 0,
            seclabel: None,
            command_line: String::new(),
            vcpus: 1,
            control_domain: false,
            driver_domain: false,
            cpu_weight: None,
            disks: Vec::new(),
            vifs: Vec::new(),
            pci: Vec::new(),
            on_crash: ExitAction::Destroy,
            on_poweroff: ExitAction::Destroy,
            on_reboot: ExitAction::Restart,
        };
        for setting in settings {
            let key = setting.key.as_str();
            // `cmdline` is a synonym of `extra`: setting both is a duplicate.
            let canonical = if key == "cmdline" { "extra" } else { key };
            if let Some(first) = seen.get(canonical) {
                let message = if canonical == key {
                    format!("duplicate key '{key}' (first set at line {})", first.line)
                } else {
                    format!(
                        "duplicate key '{key}' (a synonym of '{canonical}', set at line {})",
                        first.line
                    )
                };
                return Err(error_at(path, setting.position, message));
            }
            let value = &setting.value;
            match canonical {
                "name" => {
                    let text = expect_string(path, key, value)?;
                    crate::bundle::check_domain_name(text)
                        .map_err(|message| error_at(path, value.position, message))?;
                    name = Some(text.to_string());
                }
                "kernel" => {
                    let text = expect_string(path, key, value)?;
                    if text.is_empty() {
                        return Err(error_at(
                            path,
                            value.position,
                            "'kernel' is empty: expected a file path".to_string(),
                        ));
                    }
                    let directory = path.parent().unwrap_or(Path::new(""));
                    kernel = Some(directory.join(text));
                }
                "memory" => {
                    let mib = expect_integer(path, key, value)?;
                    if mib == 0 {
                        return Err(error_at(
                            path,
                            value.position,
                            "'memory' is 0: expected MiB of RAM".to_string(),
                        ));
                    }
                    memory_mib = Some(mib);
                }
                "seclabel" => config.seclabel = Some(expect_string(path, key, value)?.to_string()),
                "extra" => config.command_line = expect_string(path, key, value)?.to_string(),
                "vcpus" => {
                    config.vcpus = expect_integer(path, key, value)?;
                    if config.vcpus != 1 {
                        let message = format!(
                            "vcpus = {} is not supported: expected 1 (one vCPU per domain for now)",
                            config.vcpus
                        );
                        return Err(error_at(path, value.position, message));
                    }
                }
                "type" => {
                    let text = expect_string(path, key, value)?;
                    if text != "pv" {
                        return Err(error_at(
                            path,
                            value.position,
                            format!("type \"{text}\" is not supported: expected \"pv\""),
                        ));
                    }
                }
                "control_domain" => config.control_domain = expect_flag(path, key, value)?,
                "driver_domain" => config.driver_domain = expect_flag(path, key, value)?,
                "cpu_weight" => {
                    let weight = expect_integer(path, key, value)?;
                    if !(1..=u64::from(xen_abi::domctl::MAX_WEIGHT)).contains(&weight) {
                        let message = format!(
                            "cpu_weight = {weight} is out of range: expected 1..={}",
                            xen_abi::domctl::MAX_WEIGHT
                        );
                        return Err(error_at(path, value.position, message));
                    }
                    config.cpu_weight = Some(weight as u32);
                }
                "disk" => {
                    config.disks = parse_list(path, key, value, devices::parse_disk, |disk| {
                        Some(format!("vdev {}", disk.vdev))
                    })?;
                }
                "vif" => {
                    config.vifs = parse_list(path, key, value, devices::parse_vif, |vif| {
                        vif.mac.map(|mac| format!("mac {}", devices::mac_text(mac)))
                    })?;
                }
                "pci" => {
                    config.pci = parse_list(path, key, value, devices::parse_pci, |address| {
                        Some(format!("device {address}"))
                    })?;
                }
                "on_crash" | "on_poweroff" | "on_reboot" => {
                    let text = expect_string(path, key, value)?;
                    let action = devices::parse_action(text).map_err(|message| {
                        error_at(path, value.position, format!("{key}: {message}"))
                    })?;
                    match key {
                        "on_crash" => config.on_crash = action,
                        "on_poweroff" => config.on_poweroff = action,
                        _ => config.on_reboot = action,
                    }
                }
                _ => {
                    return Err(error_at(
                        path,
                        setting.position,
                        format!("unknown key '{key}'"),
                    ))
                }
            }
            seen.insert(canonical, setting.position);
        }
        let missing = |key: &str| ConfigError {
            path: path.to_path_buf(),
            position: None,
            message: format!("missing required key '{key}'"),
        };
        config.name = name.ok_or_else(|| missing("name"))?;
        config.kernel = kernel.ok_or_else(|| missing("kernel"))?;
        config.memory_mib = memory_mib.ok_or_else(|| missing("memory"))?;
        Ok(config)
    }
}

/// Writes `text` as a double-quoted xl.cfg string.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for character in text.chars() {
        match character {
            '"' | '\\' => {
                out.push('\\');
                out.push(character);
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            _ => out.push(character),
        }
    }
    out.push('"');
    out
}

impl fmt::Display for DomainConfig {
    /// The configuration in xl.cfg syntax (with the kernel path resolved).
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "name = {}", quoted(&self.name))?;
        writeln!(formatter, "type = \"pv\"")?;
        writeln!(
            formatter,
            "kernel = {}",
            quoted(&self.kernel.to_string_lossy())
        )?;
        writeln!(formatter, "memory = {}", self.memory_mib)?;
        writeln!(formatter, "vcpus = {}", self.vcpus)?;
        if let Some(seclabel) = &self.seclabel {
            writeln!(formatter, "seclabel = {}", quoted(seclabel))?;
        }
        if !self.command_line.is_empty() {
            writeln!(formatter, "extra = {}", quoted(&self.command_line))?;
        }
        writeln!(
            formatter,
            "control_domain = {}",
            u8::from(self.control_domain)
        )?;
        write!(
            formatter,
            "driver_domain = {}",
            u8::from(self.driver_domain)
        )?;
        if let Some(weight) = self.cpu_weight {
            write!(formatter, "\ncpu_weight = {weight}")?;
        }
        let list = |items: Vec<String>| {
            let quoted: Vec<String> = items.iter().map(|item| quoted(item)).collect();
            format!("[ {} ]", quoted.join(", "))
        };
        if !self.disks.is_empty() {
            let items = self.disks.iter().map(ToString::to_string).collect();
            write!(formatter, "\ndisk = {}", list(items))?;
        }
        if !self.vifs.is_empty() {
            let items = self.vifs.iter().map(ToString::to_string).collect();
            write!(formatter, "\nvif = {}", list(items))?;
        }
        if !self.pci.is_empty() {
            let items = self.pci.iter().map(ToString::to_string).collect();
            write!(formatter, "\npci = {}", list(items))?;
        }
        write!(
            formatter,
            "\non_crash = \"{}\"\non_poweroff = \"{}\"\non_reboot = \"{}\"",
            self.on_crash.name(),
            self.on_poweroff.name(),
            self.on_reboot.name()
        )
    }
}

#[cfg(test)]
mod tests;
