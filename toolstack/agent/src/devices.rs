//! The toolstack's half of the split-device handshake: for each device of a
//! domain, the nodes Xen's `xl` writes before either side runs —
//! `/local/domain/F/device/KIND/ID/{backend, backend-id, state}` (owned by
//! the frontend F, readable by the backend B) and
//! `/local/domain/B/backend/KIND/F/ID/{frontend, frontend-id, state, ...}`
//! (owned by B, readable by F) — and their removal when a frontend dies.
//!
//! Devices are named on the agent's command line (`devices=`), which the
//! toolstack writes from the domains' configurations:
//! `devices=KIND:FRONT:BACK:ID[,KIND:FRONT:BACK:ID...]`.

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
}

/// A `devices=` value that does not parse: which entry and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSpecError {
    /// The entry, as written.
    pub entry: String,
    /// What was expected.
    pub expected: &'static str,
}

/// Parses `KIND:FRONT:BACK:ID[,...]`.
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
        let [kind, frontend, backend, id] = parts[..] else {
            return Err(fail("KIND:FRONTEND:BACKEND:ID"));
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
        let device = Device { kind: String::from(kind), frontend, backend, id };
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
        Ok(())
    }

    /// Removes the backend's half (the frontend's went with its domain),
    /// so the backend sees the device go.
    pub fn withdraw(&self, store: &mut Store, admin: ConnId) {
        let _ = store.rm(admin, 0, &self.backend_path());
        let _ = store.rm(admin, 0, &self.frontend_path());
    }
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
            ("vbd:2:1", "KIND:FRONTEND:BACKEND:ID"),
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
}
