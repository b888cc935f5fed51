//! The boot-bundle writer: turns a [`Launch`] into the bytes the hypervisor
//! parses (layout in [`xen_abi::bundle`]): the header, one record per
//! domain in build order, then the payload — kernels 4096-aligned, command
//! lines, the policy. Every limit the hypervisor enforces is checked here
//! first, with a message naming the domain and its file.

use std::fmt::Write as _;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use xen_abi::bundle::{
    domain_flags, header, record, HEADER_SIZE, MAGIC, MAX_COMMAND_LINE_BYTES, MAX_DOMAINS,
    MAX_KERNEL_BYTES, MAX_POLICY_BYTES, MAX_TOTAL_BYTES, RECORD_SIZE, VERSION,
};
use xen_abi::layout::{MAX_RAM_BYTES, MIN_RAM_BYTES};

use crate::config::DomainConfig;
use crate::launch::Launch;
use crate::Error;

/// Kernels start at offsets that are multiples of this.
pub const KERNEL_ALIGNMENT: usize = 4096;
/// Longest domain name.
pub const MAX_NAME_BYTES: usize = 31;
/// Longest seclabel (its record field is 64 bytes, NUL-terminated).
pub const MAX_SECLABEL_BYTES: usize = 63;

/// What went into the bundle for one domain, for `xl bundle` to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltDomain {
    /// The domain's name.
    pub name: String,
    /// RAM in MiB.
    pub memory_mib: u64,
    /// The kernel file.
    pub kernel: PathBuf,
    /// The kernel's size.
    pub kernel_bytes: u64,
    /// The kernel's SHA-256.
    pub kernel_sha256: [u8; 32],
    /// The record's [`domain_flags`].
    pub flags: u32,
    /// The PCI functions assigned to it.
    pub pci: Vec<crate::config::devices::PciAddress>,
}

/// A bundle and what went into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltBundle {
    /// The bundle's bytes.
    pub bytes: Vec<u8>,
    /// One entry per domain, in bundle order.
    pub domains: Vec<BuiltDomain>,
}

/// Builds the boot bundle for `launch`.
pub fn build(launch: &Launch) -> Result<Vec<u8>, Error> {
    Ok(assemble(launch)?.bytes)
}

/// Builds the boot bundle for `launch` and says what went into it.
pub fn assemble(launch: &Launch) -> Result<BuiltBundle, Error> {
    let count = launch.domains.len();
    if count == 0 || count > MAX_DOMAINS {
        return Err(Error::Bundle {
            message: format!("{count} domains: a bundle holds 1 to {MAX_DOMAINS}"),
        });
    }
    // The disks the domains are given become the control domain's
    // `devices=` word: its agent publishes them in the store at boot.
    let device_word = crate::devices::device_word(&launch.domains).map_err(|(name, message)| Error::Domain {
        name: name.clone(),
        source: launch.domains.iter().find(|domain| domain.name == name).map(|domain| domain.source.clone()).unwrap_or_default(),
        message,
    })?;
    let with_devices = match device_word {
        Some(word) => {
            let mut copy = launch.clone();
            let Some(control) = copy.domains.iter_mut().find(|domain| domain.control_domain) else {
                return Err(Error::Bundle { message: "disks need a control domain to publish them in the store".to_string() });
            };
            control.command_line = format!("{} devices={word}", control.command_line).trim_start().to_string();
            Some(copy)
        }
        None => None,
    };
    let launch = with_devices.as_ref().unwrap_or(launch);
    let records_end = HEADER_SIZE + count * RECORD_SIZE;
    let mut bytes = vec![0u8; records_end];
    let mut domains: Vec<BuiltDomain> = Vec::with_capacity(count);
    let mut command_lines = Vec::with_capacity(count);
    for (index, config) in launch.domains.iter().enumerate() {
        let fail = |message: String| Error::Domain {
            name: config.name.clone(),
            source: config.source.clone(),
            message,
        };
        check_record(config, &domains).map_err(fail)?;
        let kernel = read_kernel(config)?;
        let kernel_sha256: [u8; 32] = Sha256::digest(&kernel).into();
        let kernel_offset = bytes.len().next_multiple_of(KERNEL_ALIGNMENT);
        bytes.resize(kernel_offset, 0);
        bytes.extend_from_slice(&kernel);
        check_total(bytes.len())?;

        let at = HEADER_SIZE + index * RECORD_SIZE;
        let flags = flags_of(config);
        let record_bytes = &mut bytes[at..at + RECORD_SIZE];
        put(record_bytes, record::NAME, config.name.as_bytes());
        put(
            record_bytes,
            record::SECLABEL,
            config.seclabel.as_deref().unwrap_or_default().as_bytes(),
        );
        put(
            record_bytes,
            record::MEMORY_KIB,
            &(config.memory_mib * 1024).to_le_bytes(),
        );
        put(
            record_bytes,
            record::KERNEL_OFFSET,
            &(kernel_offset as u64).to_le_bytes(),
        );
        put(
            record_bytes,
            record::KERNEL_LENGTH,
            &(kernel.len() as u64).to_le_bytes(),
        );
        put(record_bytes, record::FLAGS, &flags.to_le_bytes());
        put(record_bytes, record::KERNEL_SHA256, &kernel_sha256);
        put(record_bytes, record::PCI_COUNT, &(config.pci.len() as u32).to_le_bytes());
        for (slot, address) in config.pci.iter().enumerate() {
            let function = u32::from(address.bus) << 8 | u32::from(address.device) << 3 | u32::from(address.function);
            put(record_bytes, record::PCI + 4 * slot, &function.to_le_bytes());
        }
        put(
            record_bytes,
            record::WEIGHT,
            &config.cpu_weight.unwrap_or(0).to_le_bytes(),
        );
        command_lines.push(config.command_line.as_bytes());
        domains.push(BuiltDomain {
            name: config.name.clone(),
            memory_mib: config.memory_mib,
            kernel: config.kernel.clone(),
            kernel_bytes: kernel.len() as u64,
            kernel_sha256,
            flags,
            pci: config.pci.clone(),
        });
    }
    for (index, command_line) in command_lines.iter().enumerate() {
        // Empty command lines are offset 0, length 0.
        let offset = if command_line.is_empty() {
            0
        } else {
            bytes.len()
        };
        bytes.extend_from_slice(command_line);
        let at = HEADER_SIZE + index * RECORD_SIZE;
        put(
            &mut bytes,
            at + record::COMMAND_LINE_OFFSET,
            &(offset as u64).to_le_bytes(),
        );
        put(
            &mut bytes,
            at + record::COMMAND_LINE_LENGTH,
            &(command_line.len() as u32).to_le_bytes(),
        );
    }
    let (policy_offset, policy_length) = match &launch.policy {
        Some(policy) if !policy.bytes.is_empty() => {
            if policy.bytes.len() > MAX_POLICY_BYTES as usize {
                return Err(Error::Bundle {
                    message: format!(
                        "policy {} is {} bytes, more than the limit of {MAX_POLICY_BYTES}",
                        policy.path.display(),
                        policy.bytes.len()
                    ),
                });
            }
            let offset = bytes.len();
            bytes.extend_from_slice(&policy.bytes);
            (offset, policy.bytes.len())
        }
        _ => (0, 0),
    };
    check_total(bytes.len())?;
    let total_length = bytes.len() as u64;
    put(&mut bytes, header::MAGIC, &MAGIC);
    put(&mut bytes, header::VERSION, &VERSION.to_le_bytes());
    put(
        &mut bytes,
        header::DOMAIN_COUNT,
        &(count as u32).to_le_bytes(),
    );
    put(
        &mut bytes,
        header::TOTAL_LENGTH,
        &total_length.to_le_bytes(),
    );
    // Both fit in u32: the bundle is at most MAX_TOTAL_BYTES (64 MiB).
    put(
        &mut bytes,
        header::POLICY_OFFSET,
        &(policy_offset as u32).to_le_bytes(),
    );
    put(
        &mut bytes,
        header::POLICY_LENGTH,
        &(policy_length as u32).to_le_bytes(),
    );
    Ok(BuiltBundle { bytes, domains })
}

/// Checks a domain's record fields against the bundle's limits and the
/// domains before it.
fn check_record(config: &DomainConfig, earlier: &[BuiltDomain]) -> Result<(), String> {
    check_domain_name(&config.name)?;
    if let Some(first) = earlier.iter().position(|domain| domain.name == config.name) {
        return Err(format!("name already used by domain {first}"));
    }
    check_limits(config)?;
    if !config.pci.is_empty() {
        if !config.driver_domain {
            return Err("pci = [...] needs driver_domain = 1: only a driver domain is given devices".to_string());
        }
        if config.pci.len() > xen_abi::bundle::MAX_PCI_FUNCTIONS {
            return Err(format!("{} PCI functions, at most {}", config.pci.len(), xen_abi::bundle::MAX_PCI_FUNCTIONS));
        }
        if let Some(address) = config.pci.iter().find(|address| address.segment != 0) {
            return Err(format!("PCI function {address}: only segment 0 exists here"));
        }
        for (index, address) in config.pci.iter().enumerate() {
            if config.pci[..index].contains(address) || earlier.iter().any(|domain| domain.pci.contains(address)) {
                return Err(format!("PCI function {address} is assigned twice"));
            }
        }
    }
    if config.control_domain {
        if let Some(first) = earlier
            .iter()
            .find(|domain| domain.flags & domain_flags::CONTROL != 0)
        {
            return Err(format!(
                "two control domains: '{}' is already the control domain",
                first.name
            ));
        }
    }
    Ok(())
}

/// Checks what the hypervisor requires of every domain, built at boot or
/// by `xl create`: its name, a seclabel that fits, RAM within the layout's
/// limits and a command line that fits. The error says what is wrong.
pub fn check_limits(config: &DomainConfig) -> Result<(), String> {
    check_domain_name(&config.name)?;
    match config.seclabel.as_deref() {
        None | Some("") => {
            return Err(
                "no seclabel: every domain needs a label (seclabel = \"...\")"
                    .to_string(),
            )
        }
        Some(seclabel) if seclabel.len() > MAX_SECLABEL_BYTES => {
            return Err(format!(
                "seclabel is {} bytes, at most {MAX_SECLABEL_BYTES}",
                seclabel.len()
            ))
        }
        Some(seclabel) if seclabel.contains('\0') => {
            return Err("seclabel contains a NUL character".to_string())
        }
        Some(_) => {}
    }
    let (least_mib, most_mib) = (MIN_RAM_BYTES >> 20, MAX_RAM_BYTES >> 20);
    if !(least_mib..=most_mib).contains(&config.memory_mib) {
        return Err(format!(
            "memory {} MiB is not in range: expected {least_mib} to {most_mib} MiB",
            config.memory_mib
        ));
    }
    if config.command_line.len() > MAX_COMMAND_LINE_BYTES as usize {
        return Err(format!(
            "command line is {} bytes, more than the limit of {MAX_COMMAND_LINE_BYTES}",
            config.command_line.len()
        ));
    }
    if config.command_line.contains('\0') {
        return Err("command line contains a NUL character".to_string());
    }
    Ok(())
}

/// Reads a domain's kernel, checking its size before and after.
fn read_kernel(config: &DomainConfig) -> Result<Vec<u8>, Error> {
    let io_error = |source| Error::Io {
        path: config.kernel.clone(),
        source,
    };
    let fail = |message: String| Error::Domain {
        name: config.name.clone(),
        source: config.source.clone(),
        message,
    };
    let too_large = |length: u64| {
        fail(format!(
            "kernel {} is too large: {length} bytes, more than the limit of {MAX_KERNEL_BYTES}",
            config.kernel.display()
        ))
    };
    let length = std::fs::metadata(&config.kernel).map_err(io_error)?.len();
    if length > MAX_KERNEL_BYTES {
        return Err(too_large(length));
    }
    let kernel = crate::read_limited(&config.kernel, MAX_KERNEL_BYTES).map_err(io_error)?;
    if kernel.len() as u64 > MAX_KERNEL_BYTES {
        return Err(too_large(kernel.len() as u64));
    }
    if kernel.is_empty() {
        return Err(fail(format!("kernel {} is empty", config.kernel.display())));
    }
    // What the hypervisor loads, hashes at every boot and copies: the
    // loadable segments only, as `xl create` sends (a debug-info build is
    // about 9 MB, nearly all of it sections the loader skips). An image its
    // loader would refuse goes as it is, so that the boot names the reason.
    let ram_bytes = config.memory_mib.saturating_mul(1 << 20);
    Ok(crate::elf::loadable_image(&kernel, ram_bytes).unwrap_or(kernel))
}

fn check_total(length: usize) -> Result<(), Error> {
    if length as u64 > MAX_TOTAL_BYTES {
        return Err(Error::Bundle {
            message: format!(
                "bundle would be over {length} bytes, more than the limit of {MAX_TOTAL_BYTES}"
            ),
        });
    }
    Ok(())
}

fn flags_of(config: &DomainConfig) -> u32 {
    let mut flags = 0;
    if config.control_domain {
        flags |= domain_flags::CONTROL;
    }
    if config.driver_domain {
        flags |= domain_flags::DRIVER;
    }
    flags
}

/// Whether `name` is a valid domain name: 1 to 31 characters of
/// `[A-Za-z0-9_.-]`. The error says what is wrong.
pub fn check_domain_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("domain name is empty".to_string());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "domain name '{name}' is {} bytes, at most {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|&character| !(character.is_ascii_alphanumeric() || "_.-".contains(character)))
    {
        return Err(format!(
            "domain name '{name}' has '{bad}': expected letters, digits, '_', '.' or '-'"
        ));
    }
    Ok(())
}

/// `digest` as lowercase hex.
pub fn hex(digest: &[u8]) -> String {
    digest
        .iter()
        .fold(String::with_capacity(digest.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

use xen_abi::bytes::put;

#[cfg(test)]
mod tests;
