//! The toolstack's half of the split-device handshake: for each device of a
//! domain, the nodes Xen's `xl` writes before either side runs —
//! `/local/domain/F/device/KIND/ID/{backend, backend-id, state}` (owned by
//! the frontend F, readable by the backend B) and
//! `/local/domain/B/backend/KIND/F/ID/{frontend, frontend-id, state, ...}`
//! (owned by B, readable by F) — and their removal when a frontend dies.
//!
//! Devices are named on the agent's command line (`devices=`), which the
//! toolstack writes from the domains' configurations:
//! `devices=KIND:FRONT:BACK:ID[:START+SECTORS[:MODE]][,...]`.
//!
//! A `vbd` may name its extent of the backend's physical disk
//! (`START+SECTORS`, in 512-byte sectors) and its mode (`r` or `w`, default
//! `w`): the agent writes them, as Xen's toolstack does, into the backend
//! directory as `params` (`START+SECTORS`) and `mode`, nodes the control
//! domain owns and the backend and frontend may only read. The backend
//! (blkback) publishes `sectors`, `sector-size` and `info` itself.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use xenstore::checked::XenbusState;
use xenstore::{Access, ConnId, Perms, Store, XsError};

/// Devices at most on one command line.
pub const MAX_DEVICES: usize = 32;

/// One split device: which domains serve and use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The class: `vbd`, `vif`, or a test's own (letters, digits, `-`).
    pub kind: String,
    /// The frontend's domain.
    pub frontend: u32,
    /// The backend's domain.
    pub backend: u32,
    /// The device id.
    pub id: u32,
    /// A `vbd`'s extent of the physical disk, if named.
    pub extent: Option<Extent>,
}

/// A virtual disk's place on the backend's physical disk and its mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Its first physical sector.
    pub start_sector: u64,
    /// Its size in sectors (at least 1).
    pub sectors: u64,
    /// Whether it refuses writes (`mode` `r`).
    pub read_only: bool,
}

/// Parses `START+SECTORS` and an optional mode (`r` or `w`).
fn parse_extent(range: &str, mode: Option<&str>) -> Option<Extent> {
    let (start, count) = range.split_once('+')?;
    let decimal = |text: &str| (!text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse::<u64>().ok()).flatten();
    let (start_sector, sectors) = (decimal(start)?, decimal(count)?);
    if sectors == 0 || start_sector.checked_add(sectors).is_none() {
        return None;
    }
    let read_only = match mode {
        None | Some("w") => false,
        Some("r") => true,
        Some(_) => return None,
    };
    Some(Extent { start_sector, sectors, read_only })
}

/// A `devices=` value that does not parse: which entry and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSpecError {
    /// The entry, as written.
    pub entry: String,
    /// What was expected.
    pub expected: &'static str,
}

/// Parses `KIND:FRONT:BACK:ID[:START+SECTORS[:MODE]][,...]`.
///
/// # Errors
///
/// The first entry that is not of that shape, names a domain twice or
/// repeats a device.
pub fn parse(spec: &str) -> Result<Vec<Device>, DeviceSpecError> {
    let mut devices: Vec<Device> = Vec::new();
    for entry in spec.split(',').filter(|entry| !entry.is_empty()) {
        let fail = |expected| DeviceSpecError { entry: String::from(entry), expected };
        let parts: Vec<&str> = entry.split(':').collect();
        let (kind, frontend, backend, id, range, mode) = match parts[..] {
            [kind, frontend, backend, id] => (kind, frontend, backend, id, None, None),
            [kind, frontend, backend, id, range] => (kind, frontend, backend, id, Some(range), None),
            [kind, frontend, backend, id, range, mode] => (kind, frontend, backend, id, Some(range), Some(mode)),
            _ => return Err(fail("KIND:FRONTEND:BACKEND:ID[:START+SECTORS[:MODE]]")),
        };
        let kind_ok = !kind.is_empty() && kind.len() <= 16 && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !kind_ok {
            return Err(fail("a device class of letters, digits and '-'"));
        }
        let number = |text: &str| xenstore::checked::parse_u32(text.as_bytes()).ok();
        let (Some(frontend), Some(backend), Some(id)) = (number(frontend), number(backend), number(id)) else {
            return Err(fail("decimal domain ids and device id"));
        };
        if frontend == backend || frontend > u32::from(u16::MAX) || backend > u32::from(u16::MAX) {
            return Err(fail("two different domain ids below 65536"));
        }
        let extent = match range {
            None => None,
            Some(_) if kind != "vbd" => return Err(fail("an extent only for a vbd")),
            Some(range) => Some(parse_extent(range, mode).ok_or_else(|| fail("START+SECTORS (decimal, at least one sector) and mode r or w"))?),
        };
        let device = Device { kind: String::from(kind), frontend, backend, id, extent };
        if devices.iter().any(|d| d.kind == device.kind && d.frontend == frontend && d.id == id) {
            return Err(fail("each device once"));
        }
        if devices.len() == MAX_DEVICES {
            return Err(fail("at most 32 devices"));
        }
        devices.push(device);
    }
    Ok(devices)
}

impl Device {
    /// `/local/domain/F/device/KIND/ID`.
    pub fn frontend_path(&self) -> String {
        format!("/local/domain/{}/device/{}/{}", self.frontend, self.kind, self.id)
    }

    /// `/local/domain/B/backend/KIND/F/ID`.
    pub fn backend_path(&self) -> String {
        format!("/local/domain/{}/backend/{}/{}/{}", self.backend, self.kind, self.frontend, self.id)
    }

    /// Writes both halves' nodes, each with its owner and the one reader
    /// the other side needs, both states `Initialising`.
    ///
    /// # Errors
    ///
    /// The store's error (the nodes written so far stay).
    pub fn publish(&self, store: &mut Store, admin: ConnId) -> Result<(), XsError> {
        let front = self.frontend_path();
        let back = self.backend_path();
        let front_perms = Perms::new(self.frontend, Access::None).with(self.backend, Access::Read);
        let back_perms = Perms::new(self.backend, Access::None).with(self.frontend, Access::Read);
        let state = XenbusState::Initialising.to_value();
        // The directories above: each domain owns its own.
        let above = [
            (format!("/local/domain/{}/device", self.frontend), Perms::new(self.frontend, Access::None)),
            (format!("/local/domain/{}/device/{}", self.frontend, self.kind), Perms::new(self.frontend, Access::None)),
            (format!("/local/domain/{}/backend", self.backend), Perms::new(self.backend, Access::None)),
            (format!("/local/domain/{}/backend/{}", self.backend, self.kind), Perms::new(self.backend, Access::None)),
            (
                format!("/local/domain/{}/backend/{}/{}", self.backend, self.kind, self.frontend),
                Perms::new(self.backend, Access::None),
            ),
        ];
        for (path, perms) in &above {
            store.mkdir(admin, 0, path)?;
            store.set_perms(admin, 0, path, perms)?;
        }
        let nodes: [(String, Vec<u8>, &Perms); 8] = [
            (front.clone(), Vec::new(), &front_perms),
            (format!("{front}/backend"), back.clone().into_bytes(), &front_perms),
            (format!("{front}/backend-id"), format!("{}", self.backend).into_bytes(), &front_perms),
            (format!("{front}/state"), state.clone(), &front_perms),
            (back.clone(), Vec::new(), &back_perms),
            (format!("{back}/frontend"), front.clone().into_bytes(), &back_perms),
            (format!("{back}/frontend-id"), format!("{}", self.frontend).into_bytes(), &back_perms),
            (format!("{back}/state"), state, &back_perms),
        ];
        for (path, value, perms) in &nodes {
            if value.is_empty() {
                store.mkdir(admin, 0, path)?;
            } else {
                store.write(admin, 0, path, value)?;
            }
            store.set_perms(admin, 0, path, perms)?;
        }
        if let Some(extent) = &self.extent {
            // The toolstack's own nodes: the backend and the frontend may read
            // them, neither may change them.
            let toolstack = Perms::new(admin_domid(), Access::None).with(self.backend, Access::Read).with(self.frontend, Access::Read);
            let mode: &[u8] = if extent.read_only { b"r" } else { b"w" };
            let params = format!("{}+{}", extent.start_sector, extent.sectors);
            for (name, value) in [("params", params.as_bytes()), ("mode", mode)] {
                let path = format!("{back}/{name}");
                store.write(admin, 0, &path, value)?;
                store.set_perms(admin, 0, &path, &toolstack)?;
            }
        }
        Ok(())
    }

    /// Removes the backend's half (the frontend's went with its domain),
    /// so the backend sees the device go.
    pub fn withdraw(&self, store: &mut Store, admin: ConnId) {
        let _ = store.rm(admin, 0, &self.backend_path());
        let _ = store.rm(admin, 0, &self.frontend_path());
    }
}

/// The control domain's id, which owns the toolstack's nodes.
fn admin_domid() -> u32 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use xenstore::Config;

    #[test]
    fn specs_parse_and_bad_ones_say_why() {
        let devices = parse("vbd:2:1:51712,dummy:3:1:0").unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].backend_path(), "/local/domain/1/backend/vbd/2/51712");
        assert_eq!(devices[1].frontend_path(), "/local/domain/3/device/dummy/0");
        assert_eq!(parse("").unwrap(), []);
        for (bad, expected) in [
            ("vbd:2:1", "KIND:FRONTEND:BACKEND:ID[:START+SECTORS[:MODE]]"),
            ("vbd:2:1:0:1+2:r:x", "KIND:FRONTEND:BACKEND:ID[:START+SECTORS[:MODE]]"),
            ("dummy:2:1:0:1+2", "an extent only for a vbd"),
            ("vbd:2:1:0:1+0", "START+SECTORS (decimal, at least one sector) and mode r or w"),
            ("vbd:2:1:0:+5", "START+SECTORS (decimal, at least one sector) and mode r or w"),
            ("vbd:2:1:0:18446744073709551615+1", "START+SECTORS (decimal, at least one sector) and mode r or w"),
            ("vbd:2:1:0:1+5:x", "START+SECTORS (decimal, at least one sector) and mode r or w"),
            ("v/d:2:1:0", "a device class of letters, digits and '-'"),
            ("vbd:02:1:0", "decimal domain ids and device id"),
            ("vbd:2:2:0", "two different domain ids below 65536"),
            ("vbd:70000:1:0", "two different domain ids below 65536"),
            ("vbd:2:1:0,vbd:2:1:0", "each device once"),
        ] {
            assert_eq!(parse(bad).unwrap_err().expected, expected, "{bad}");
        }
    }

    #[test]
    fn published_nodes_are_readable_by_the_other_side_only() {
        let mut store = Store::new(Config::default());
        let admin = store.connect(0);
        for domid in [1, 2, 3] {
            let home = format!("/local/domain/{domid}");
            store.mkdir(admin, 0, &home).unwrap();
            store.set_perms(admin, 0, &home, &Perms::new(domid, Access::None)).unwrap();
        }
        let device = parse("dummy:2:1:0").unwrap().remove(0);
        device.publish(&mut store, admin).unwrap();
        let (front, back, other) = (store.connect(2), store.connect(1), store.connect(3));
        let front_state = "/local/domain/2/device/dummy/0/state";
        let back_state = "/local/domain/1/backend/dummy/2/0/state";
        assert_eq!(store.read(back, 0, front_state).unwrap(), b"1");
        assert_eq!(store.read(front, 0, back_state).unwrap(), b"1");
        assert_eq!(store.read(front, 0, "/local/domain/2/device/dummy/0/backend").unwrap(), b"/local/domain/1/backend/dummy/2/0");
        // Each writes its own state, not the other's.
        store.write(front, 0, front_state, b"3").unwrap();
        assert_eq!(store.write(back, 0, front_state, b"6"), Err(XsError::Acces));
        store.write(back, 0, back_state, b"2").unwrap();
        assert_eq!(store.write(front, 0, back_state, b"6"), Err(XsError::Acces));
        // A third domain sees neither.
        assert_eq!(store.read(other, 0, front_state), Err(XsError::Acces));
        assert_eq!(store.read(other, 0, back_state), Err(XsError::Acces));
        device.withdraw(&mut store, admin);
        assert_eq!(store.read(back, 0, back_state), Err(XsError::Noent));
    }

    #[test]
    fn a_vbd_extent_is_the_toolstacks_and_readable_by_both_halves_only() {
        let devices = parse("vbd:3:2:51712:2048+4096:r,vbd:4:2:51712:0+8").unwrap();
        assert_eq!(devices[0].extent, Some(Extent { start_sector: 2048, sectors: 4096, read_only: true }));
        assert_eq!(devices[1].extent, Some(Extent { start_sector: 0, sectors: 8, read_only: false }));
        let mut store = Store::new(Config::default());
        let admin = store.connect(0);
        for domid in [2, 3, 5] {
            let home = format!("/local/domain/{domid}");
            store.mkdir(admin, 0, &home).unwrap();
            store.set_perms(admin, 0, &home, &Perms::new(domid, Access::None)).unwrap();
        }
        devices[0].publish(&mut store, admin).unwrap();
        let (front, back, other) = (store.connect(3), store.connect(2), store.connect(5));
        let params = "/local/domain/2/backend/vbd/3/51712/params";
        let mode = "/local/domain/2/backend/vbd/3/51712/mode";
        assert_eq!(store.read(back, 0, params).unwrap(), b"2048+4096");
        assert_eq!(store.read(front, 0, mode).unwrap(), b"r");
        assert_eq!(store.write(back, 0, params, b"0+999999"), Err(XsError::Acces), "the backend cannot widen its extent");
        assert_eq!(store.write(back, 0, mode, b"w"), Err(XsError::Acces));
        // Nor by removing its device directory, which it owns, and making
        // the nodes again: a removal needs every node of the subtree.
        assert_eq!(store.rm(back, 0, "/local/domain/2/backend/vbd/3/51712"), Err(XsError::Acces));
        assert_eq!(store.rm(back, 0, "/local/domain/2/backend"), Err(XsError::Acces));
        assert_eq!(store.read(back, 0, params).unwrap(), b"2048+4096", "still there");
        assert_eq!(store.read(other, 0, params), Err(XsError::Acces));
        // What the backend publishes for the frontend, it may write.
        store.write(back, 0, "/local/domain/2/backend/vbd/3/51712/sectors", b"4096").unwrap();
        assert_eq!(store.read(front, 0, "/local/domain/2/backend/vbd/3/51712/sectors").unwrap(), b"4096");
    }
}
