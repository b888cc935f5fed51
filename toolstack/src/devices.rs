//! From the launch description's `disk = [...]` entries to the device list
//! the control domain's agent publishes in the store at boot (its
//! `devices=` command-line word, `toolstack/agent/src/devices.rs`):
//! `vbd:FRONTEND:BACKEND:DEVICE_ID:START+SECTORS:MODE`, one per disk.
//!
//! Our disks are extents of the driver domain's physical disk, so a disk's
//! `target` names the extent in 512-byte sectors: `target=2048+4096` is
//! 4096 sectors from sector 2048. `backend` names the driver domain (by name;
//! default: the launch's only driver domain). Domain ids follow file order
//! from 1, as the hypervisor numbers them.

use crate::config::{Access, DiskSpec, DomainConfig};

/// The most devices the agent takes on its command line
/// (`toolstack/agent/src/devices.rs`'s `MAX_DEVICES`): with more, it
/// refuses the whole `devices=` word and the control domain stops at boot.
pub const MAX_DEVICES: usize = 32;

/// Xen's device number for a `vdev`: `xvdX` → 202 << 8 | index << 4 (xvda is 51712).
pub fn device_number(vdev: &str) -> Result<u32, String> {
    let letters = vdev.strip_prefix("xvd").ok_or_else(|| format!("vdev '{vdev}': only xvd[a-z] names are served here"))?;
    match letters.as_bytes() {
        [letter @ b'a'..=b'z'] => Ok(202 << 8 | u32::from(letter - b'a') << 4),
        _ => Err(format!("vdev '{vdev}': expected xvda .. xvdz")),
    }
}

/// A disk's extent: `START+SECTORS`.
pub fn extent(target: &str) -> Result<(u64, u64), String> {
    let (start, count) = target
        .split_once('+')
        .ok_or_else(|| format!("target '{target}': expected an extent START+SECTORS of the driver domain's disk, e.g. 2048+4096"))?;
    let number = |text: &str| text.parse::<u64>().map_err(|_| format!("target '{target}': '{text}' is not a number of sectors"));
    let (start, count) = (number(start)?, number(count)?);
    if count == 0 || start.checked_add(count).is_none() {
        return Err(format!("target '{target}': an empty or overflowing extent"));
    }
    Ok((start, count))
}

/// The agent's `devices=` value for `domains` (in build order), or `None`
/// without disks. Errors name the domain and say what is wrong.
pub fn device_word(domains: &[DomainConfig]) -> Result<Option<String>, (String, String)> {
    let drivers: Vec<(usize, &DomainConfig)> = domains.iter().enumerate().filter(|(_, domain)| domain.driver_domain).collect();
    let mut entries = Vec::new();
    let mut extents: Vec<(u64, u64, String)> = Vec::new();
    for (index, domain) in domains.iter().enumerate() {
        let fail = |message: String| (domain.name.clone(), message);
        for disk in &domain.disks {
            let DiskSpec { target, vdev, access, backend, .. } = disk;
            let backend_index = match backend {
                Some(name) => drivers
                    .iter()
                    .find(|(_, driver)| &driver.name == name)
                    .map(|(position, _)| *position)
                    .ok_or_else(|| fail(format!("disk {vdev}: backend '{name}' is not a driver domain of this launch")))?,
                None => match drivers.as_slice() {
                    [(position, _)] => *position,
                    [] => return Err(fail(format!("disk {vdev}: no driver domain in this launch to serve it"))),
                    _ => return Err(fail(format!("disk {vdev}: several driver domains: name one with backend="))),
                },
            };
            if backend_index == index {
                return Err(fail(format!("disk {vdev}: a domain cannot serve its own disk")));
            }
            let number = device_number(vdev).map_err(fail)?;
            let (start, count) = extent(target).map_err(fail)?;
            if let Some((_, _, other)) = extents.iter().find(|(other_start, other_count, _)| start < other_start + other_count && *other_start < start + count) {
                return Err(fail(format!("disk {vdev}: extent {start}+{count} overlaps {other}'s")));
            }
            if entries.len() == MAX_DEVICES {
                return Err(fail(format!("disk {vdev}: more than {MAX_DEVICES} disks in the launch, the most the control domain serves")));
            }
            extents.push((start, count, domain.name.clone()));
            let mode = if *access == Access::ReadOnly { "r" } else { "w" };
            entries.push(format!("vbd:{}:{}:{number}:{start}+{count}:{mode}", index + 1, backend_index + 1));
        }
    }
    Ok((!entries.is_empty()).then(|| entries.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> DomainConfig {
        crate::config::parse(text, Path::new("/machine/x.cfg")).unwrap()
    }

    #[test]
    fn disks_become_the_agents_device_list() {
        let control = config("name='control'\nkernel='k'\nmemory=8\nseclabel='control_t'\ncontrol_domain=1\n");
        let driver = config("name='driver'\nkernel='k'\nmemory=8\nseclabel='driver_t'\ndriver_domain=1\npci=['00:03.0']\n");
        let banking = config("name='banking'\nkernel='k'\nmemory=8\nseclabel='banking_t'\ndisk=['vdev=xvda, access=rw, target=2048+4096']\n");
        let untrusted = config("name='untrusted'\nkernel='k'\nmemory=8\nseclabel='untrusted_t'\ndisk=['vdev=xvda, access=ro, backend=driver, target=8192+1024']\n");
        let word = device_word(&[control, driver, banking, untrusted]).unwrap();
        assert_eq!(word.as_deref(), Some("vbd:3:2:51712:2048+4096:w,vbd:4:2:51712:8192+1024:r"));
    }

    #[test]
    fn bad_disks_say_what_is_wrong() {
        let driver = config("name='driver'\nkernel='k'\nmemory=8\nseclabel='driver_t'\ndriver_domain=1\n");
        let guest = |disk: &str| config(&format!("name='g'\nkernel='k'\nmemory=8\nseclabel='g_t'\ndisk=['{disk}']\n"));
        for (disk, expected) in [
            ("vdev=hda, target=0+8", "only xvd[a-z] names"),
            ("vdev=xvda, target=/dev/sda", "expected an extent"),
            ("vdev=xvda, target=0+0", "empty or overflowing"),
            ("vdev=xvda, backend=nobody, target=0+8", "not a driver domain"),
        ] {
            let (name, message) = device_word(&[driver.clone(), guest(disk)]).unwrap_err();
            assert_eq!(name, "g");
            assert!(message.contains(expected), "{disk}: {message}");
        }
        let two = [driver.clone(), guest("vdev=xvda, target=0+8"), config("name='h'\nkernel='k'\nmemory=8\nseclabel='h_t'\ndisk=['vdev=xvda, target=4+8']\n")];
        assert!(device_word(&two).unwrap_err().1.contains("overlaps g's"));
        assert!(device_word(&[guest("vdev=xvda, target=0+8")]).unwrap_err().1.contains("no driver domain"));
        assert_eq!(device_word(&[driver]).unwrap(), None);
        assert_eq!(device_number("xvdb").unwrap(), 51728);
    }

    /// The agent refuses a `devices=` word of more than 32 entries (and
    /// the control domain stops at boot); the bundle used to be built anyway.
    #[test]
    fn more_disks_than_the_agent_serves_are_refused() {
        let driver = config("name='driver'\nkernel='k'\nmemory=8\nseclabel='driver_t'\ndriver_domain=1\n");
        let guest = |name: &str, first: u64, count: u8| {
            let disks: Vec<String> = (0..count).map(|index| format!("'vdev=xvd{}, target={}+8'", char::from(b'a' + index), first + u64::from(index) * 8)).collect();
            config(&format!("name='{name}'\nkernel='k'\nmemory=8\nseclabel='g_t'\ndisk=[{}]\n", disks.join(", ")))
        };
        let word = device_word(&[driver.clone(), guest("g", 0, 26), guest("h", 1000, 6)]).unwrap().unwrap();
        assert_eq!(word.split(',').count(), MAX_DEVICES);
        let (name, message) = device_word(&[driver, guest("g", 0, 26), guest("h", 1000, 7)]).unwrap_err();
        assert_eq!((name.as_str(), message.as_str()), ("h", "disk xvdg: more than 32 disks in the launch, the most the control domain serves"));
    }
}
