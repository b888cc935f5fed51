//! The device and lifecycle keys of xl.cfg, each list item in Xen's own
//! syntax: `disk` (xl-disk-configuration: positional `target, format,
//! vdev, access` or `key=value`), `vif` (xl-network-configuration's
//! `mac=`, `bridge=`, `backend=`), `pci` (a `[DDDD:]BB:DD.F` address), and
//! the `on_crash`/`on_poweroff`/`on_reboot` actions. Each parser returns a
//! message saying what was expected; the caller adds file, line and column.

use std::fmt;

pub use control_proto::ExitAction;

/// How a guest may use a disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `r` or `ro`.
    ReadOnly,
    /// `w` or `rw` (the default for a disk).
    ReadWrite,
}

impl Access {
    fn word(self) -> &'static str {
        match self {
            Self::ReadOnly => "ro",
            Self::ReadWrite => "rw",
        }
    }
}

/// One `disk = [...]` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// `target`: the backing device or file (empty only for a cdrom).
    pub target: String,
    /// `vdev`: the guest's device name (`xvda`, `hda`, `sdb`, `d0p1`).
    pub vdev: String,
    /// `access` (or `mode`): read-only or read-write.
    pub access: Access,
    /// `format`: raw, qcow, qcow2, vhd, qed or empty (given or from a
    /// deprecated `raw:`/`phy:` prefix).
    pub format: Option<String>,
    /// `devtype=cdrom` (or the `cdrom` flag): a removable CD-ROM.
    pub cdrom: bool,
    /// `backend`: the driver domain serving it (name or id).
    pub backend: Option<String>,
    /// `backendtype`: phy, qdisk, tap or standalone.
    pub backend_type: Option<String>,
}

/// One `vif = [...]` item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VifSpec {
    /// `mac`: the guest's MAC address.
    pub mac: Option<[u8; 6]>,
    /// `backend`: the driver domain serving it (name or id).
    pub backend: Option<String>,
    /// `bridge`: the bridge the backend attaches it to.
    pub bridge: Option<String>,
}

/// One `pci = [...]` item: a PCI function's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    /// The segment (domain), 0..=0xffff.
    pub segment: u16,
    /// The bus, 0..=0xff.
    pub bus: u8,
    /// The device, 0..=0x1f.
    pub device: u8,
    /// The function, 0..=7.
    pub function: u8,
}

impl fmt::Display for PciAddress {
    /// Xen's form, `0000:00:03.0`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.segment, self.bus, self.device, self.function
        )
    }
}

const FORMATS: [&str; 6] = ["raw", "qcow", "qcow2", "vhd", "qed", "empty"];
const BACKEND_TYPES: [&str; 4] = ["phy", "qdisk", "tap", "standalone"];
/// Deprecated target prefixes and the format each implies.
const PREFIXES: [(&str, &str); 12] = [
    ("tap:aio:", "raw"),
    ("tap:qcow2:", "qcow2"),
    ("tap:qcow:", "qcow"),
    ("tap:vhd:", "vhd"),
    ("tap2:aio:", "raw"),
    ("phy:", "raw"),
    ("file:", "raw"),
    ("aio:", "raw"),
    ("raw:", "raw"),
    ("qcow2:", "qcow2"),
    ("qcow:", "qcow"),
    ("vhd:", "vhd"),
];

fn parse_access(word: &str) -> Result<Access, String> {
    match word {
        "r" | "ro" => Ok(Access::ReadOnly),
        "w" | "rw" => Ok(Access::ReadWrite),
        _ => Err(format!("invalid access '{word}': expected r, ro, w or rw")),
    }
}

/// Whether `vdev` is a name Xen accepts: `xvd`, `hd` or `sd` and one to
/// three letters, optionally a partition number; or `dN` / `dNpM`.
fn valid_vdev(vdev: &str) -> bool {
    let numbered = |text: &str| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    if let Some(rest) = vdev.strip_prefix('d') {
        let (disk, partition) = rest.split_once('p').unwrap_or((rest, "0"));
        if numbered(disk) && numbered(partition) {
            return true;
        }
    }
    for prefix in ["xvd", "hd", "sd"] {
        if let Some(rest) = vdev.strip_prefix(prefix) {
            let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            let partition = &rest[letters..];
            return (1..=3).contains(&letters) && (partition.is_empty() || numbered(partition));
        }
    }
    false
}

/// Parses one `disk` item.
pub fn parse_disk(spec: &str) -> Result<DiskSpec, String> {
    // The positional slots in order: target, format, vdev, access.
    let mut slots: [Option<String>; 4] = [None, None, None, None];
    let mut positional = 0;
    let mut cdrom = None;
    let mut backend = None;
    let mut backend_type = None;
    let mut rest = spec;
    loop {
        let (token, remainder) = match rest.split_once(',') {
            Some((token, remainder)) => (token, Some(remainder)),
            None => (rest, None),
        };
        let trimmed = token.trim();
        if let Some(target) = rest.trim_start().strip_prefix("target=") {
            // `target=` takes the rest of the spec, commas and all.
            if slots[0].is_some() {
                return Err("disk parameter 'target' given twice".to_string());
            }
            slots[0] = Some(target.to_string());
            break;
        }
        if let Some((key, value)) = trimmed.split_once('=') {
            let (key, value) = (key.trim(), value.trim());
            let slot = match key {
                "format" => Some(1),
                "vdev" => Some(2),
                "access" | "mode" => Some(3),
                _ => None,
            };
            let duplicate = || format!("disk parameter '{key}' given twice");
            match (slot, key) {
                (Some(index), _) => {
                    if slots[index].is_some() {
                        return Err(duplicate());
                    }
                    slots[index] = Some(value.to_string());
                }
                (None, "devtype") => {
                    if cdrom.is_some() {
                        return Err(duplicate());
                    }
                    cdrom = Some(match value {
                        "cdrom" => true,
                        "disk" => false,
                        _ => {
                            return Err(format!(
                                "invalid devtype '{value}': expected disk or cdrom"
                            ))
                        }
                    });
                }
                (None, "backend") => {
                    if backend.is_some() {
                        return Err(duplicate());
                    }
                    if value.is_empty() {
                        return Err("empty backend: expected a domain name or id".to_string());
                    }
                    backend = Some(value.to_string());
                }
                (None, "backendtype") => {
                    if backend_type.is_some() {
                        return Err(duplicate());
                    }
                    if !BACKEND_TYPES.contains(&value) {
                        return Err(format!(
                            "invalid backendtype '{value}': expected {}",
                            BACKEND_TYPES.join(", ")
                        ));
                    }
                    backend_type = Some(value.to_string());
                }
                _ => {
                    return Err(format!(
                        "unknown disk parameter '{key}': expected target, format, vdev, access, \
                         devtype, backend or backendtype"
                    ))
                }
            }
        } else if trimmed == "cdrom" {
            if cdrom.is_some() {
                return Err("disk parameter 'devtype' given twice".to_string());
            }
            cdrom = Some(true);
        } else {
            // A positional parameter fills the next slot not yet given.
            while positional < slots.len() && slots[positional].is_some() {
                positional += 1;
            }
            if positional == slots.len() {
                return Err(format!(
                    "too many positional parameters at '{trimmed}': expected at most \
                     target, format, vdev, access"
                ));
            }
            let mut value = trimmed.to_string();
            if positional == 0 {
                if let Some((prefix, format)) = PREFIXES
                    .iter()
                    .find(|(prefix, _)| value.starts_with(prefix))
                {
                    value = value[prefix.len()..].to_string();
                    if slots[1].is_none() {
                        slots[1] = Some(format.to_string());
                    }
                }
            }
            slots[positional] = Some(value);
            positional += 1;
        }
        match remainder {
            Some(remainder) => rest = remainder,
            None => break,
        }
    }
    let [target, format, vdev, access] = slots.map(|slot| slot.filter(|text| !text.is_empty()));
    let mut vdev = vdev.ok_or_else(|| {
        "no vdev: expected the guest's device name, e.g. 'xvda' or 'vdev=xvda'".to_string()
    })?;
    // The deprecated `hdc:cdrom` form.
    if let Some(name) = vdev.strip_suffix(":cdrom") {
        vdev = name.to_string();
        cdrom = cdrom.or(Some(true));
    }
    if !valid_vdev(&vdev) {
        return Err(format!(
            "invalid vdev '{vdev}': expected a name like xvda, hda, sdb or d0p1"
        ));
    }
    if let Some(format) = &format {
        if !FORMATS.contains(&format.as_str()) {
            return Err(format!(
                "invalid format '{format}': expected {}",
                FORMATS.join(", ")
            ));
        }
    }
    let cdrom = cdrom.unwrap_or(false);
    let access = match access {
        Some(word) => parse_access(&word)?,
        None if cdrom => Access::ReadOnly,
        None => Access::ReadWrite,
    };
    let target = match target {
        Some(target) => target,
        None if cdrom => String::new(),
        None => {
            return Err(
                "no target: expected the backing device or file, e.g. '/dev/vg/guest,,xvda'"
                    .to_string(),
            )
        }
    };
    Ok(DiskSpec {
        target,
        vdev,
        access,
        format,
        cdrom,
        backend,
        backend_type,
    })
}

impl fmt::Display for DiskSpec {
    /// The canonical `key=value` form, `target=` last (it takes the rest).
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "vdev={}, access={}",
            self.vdev,
            self.access.word()
        )?;
        if let Some(format) = &self.format {
            write!(formatter, ", format={format}")?;
        }
        if self.cdrom {
            write!(formatter, ", devtype=cdrom")?;
        }
        if let Some(backend) = &self.backend {
            write!(formatter, ", backend={backend}")?;
        }
        if let Some(backend_type) = &self.backend_type {
            write!(formatter, ", backendtype={backend_type}")?;
        }
        write!(formatter, ", target={}", self.target)
    }
}

/// A MAC address as `00:16:3e:12:34:56`.
pub fn mac_text(mac: [u8; 6]) -> String {
    let bytes: Vec<String> = mac.iter().map(|byte| format!("{byte:02x}")).collect();
    bytes.join(":")
}

/// Parses a MAC address `xx:xx:xx:xx:xx:xx` (hex, a unicast address).
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let invalid = || format!("invalid mac '{text}': expected six hex bytes like 00:16:3e:12:34:56");
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next().ok_or_else(invalid)?;
        if part.len() != 2 {
            return Err(invalid());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
    }
    if parts.next().is_some() {
        return Err(invalid());
    }
    if mac[0] & 1 != 0 {
        return Err(format!(
            "invalid mac '{text}': a multicast address (first byte odd); expected a unicast one"
        ));
    }
    Ok(mac)
}

/// Parses one `vif` item: `key=value` pairs separated by commas.
pub fn parse_vif(spec: &str) -> Result<VifSpec, String> {
    let mut vif = VifSpec::default();
    for token in spec
        .split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty())
    {
        let Some((key, value)) = token.split_once('=') else {
            return Err(format!(
                "'{token}' is not KEY=VALUE: expected mac=, bridge= or backend="
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        let duplicate = format!("vif parameter '{key}' given twice");
        match key {
            "mac" => {
                if vif.mac.is_some() {
                    return Err(duplicate);
                }
                vif.mac = Some(parse_mac(value)?);
            }
            "bridge" | "backend" => {
                let field = if key == "bridge" {
                    &mut vif.bridge
                } else {
                    &mut vif.backend
                };
                if field.is_some() {
                    return Err(duplicate);
                }
                if value.is_empty() {
                    return Err(format!("empty {key}: expected a name"));
                }
                *field = Some(value.to_string());
            }
            _ => {
                return Err(format!(
                    "unknown vif parameter '{key}': expected mac, bridge or backend"
                ))
            }
        }
    }
    Ok(vif)
}

impl fmt::Display for VifSpec {
    /// The `key=value` form.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(mac) = self.mac {
            parts.push(format!("mac={}", mac_text(mac)));
        }
        if let Some(bridge) = &self.bridge {
            parts.push(format!("bridge={bridge}"));
        }
        if let Some(backend) = &self.backend {
            parts.push(format!("backend={backend}"));
        }
        write!(formatter, "{}", parts.join(", "))
    }
}

/// Parses a `pci` item: `[DDDD:]BB:DD.F`, hexadecimal.
pub fn parse_pci(text: &str) -> Result<PciAddress, String> {
    let invalid = |why: &str| {
        format!(
            "invalid PCI address '{text}': {why}; expected [DDDD:]BB:DD.F in hex, e.g. '00:03.0'"
        )
    };
    if text.contains(',') || text.contains('@') {
        return Err(invalid("options and virtual slots are not supported"));
    }
    let hex = |part: &str, digits: usize, what: &str| {
        if part.is_empty()
            || part.len() > digits
            || !part.bytes().all(|byte| byte.is_ascii_hexdigit())
        {
            return Err(invalid(&format!("bad {what} '{part}'")));
        }
        u32::from_str_radix(part, 16).map_err(|_| invalid(&format!("bad {what} '{part}'")))
    };
    let (location, function) = text
        .rsplit_once('.')
        .ok_or_else(|| invalid("no '.' before the function"))?;
    let parts: Vec<&str> = location.split(':').collect();
    let (segment, bus, device) = match parts.as_slice() {
        [bus, device] => (0, *bus, *device),
        [segment, bus, device] => (hex(segment, 4, "segment")?, *bus, *device),
        _ => return Err(invalid("wrong number of ':'")),
    };
    let bus = hex(bus, 2, "bus")?;
    let device = hex(device, 2, "device")?;
    if device > 0x1f {
        return Err(invalid(&format!("device {device:#x} is over 0x1f")));
    }
    let function = hex(function, 1, "function")?;
    if function > 7 {
        return Err(invalid(&format!("function {function} is over 7")));
    }
    Ok(PciAddress {
        segment: segment as u16,
        bus: bus as u8,
        device: device as u8,
        function: function as u8,
    })
}

/// Parses an `on_crash`/`on_poweroff`/`on_reboot` action.
pub fn parse_action(word: &str) -> Result<ExitAction, String> {
    match word {
        "destroy" => Ok(ExitAction::Destroy),
        "restart" => Ok(ExitAction::Restart),
        "preserve" => Ok(ExitAction::Preserve),
        _ => Err(format!(
            "unsupported action \"{word}\": expected \"destroy\", \"restart\" or \"preserve\""
        )),
    }
}
