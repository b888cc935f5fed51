//! The split-device handshake over the store, one implementation for every
//! frontend and backend: where a device's nodes live (Xen's
//! `/local/domain/F/device/KIND/ID` and `/local/domain/B/backend/KIND/F/ID`),
//! reading the other side's location strictly (a path or id the other
//! domain wrote is data until it matches what it must be: XSA-175/178),
//! and waiting for the other side's XenbusState.
//!
//! Waiting is level-triggered: after any watch event the `state` node is
//! read again, so a missed or coalesced event loses nothing.

use alloc::format;
use alloc::string::String;

use xenstore::checked::{self, XenbusState};
use xenstore::XsError;

use crate::store::{StoreConnection, StoreError, Wait};

/// Where one device's two halves live in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePaths {
    /// The device class (`vbd`, `vif`, or a test's own).
    pub kind: String,
    /// The device id (Xen's `devid`, e.g. 51712 for xvda).
    pub device_id: u32,
    /// The frontend's domain.
    pub frontend_id: u32,
    /// The backend's domain.
    pub backend_id: u32,
}

impl DevicePaths {
    /// `/local/domain/F/device/KIND/ID`.
    pub fn frontend(&self) -> String {
        format!("/local/domain/{}/device/{}/{}", self.frontend_id, self.kind, self.device_id)
    }

    /// `/local/domain/B/backend/KIND/F/ID`.
    pub fn backend(&self) -> String {
        format!("/local/domain/{}/backend/{}/{}/{}", self.backend_id, self.kind, self.frontend_id, self.device_id)
    }

    /// The frontend's `state` node.
    pub fn frontend_state(&self) -> String {
        format!("{}/state", self.frontend())
    }

    /// The backend's `state` node.
    pub fn backend_state(&self) -> String {
        format!("{}/state", self.backend())
    }

    /// A frontend's view: reads `backend-id` and `backend` under its device
    /// directory and accepts them only if `backend` is exactly the path the
    /// id implies.
    ///
    /// # Errors
    ///
    /// `Store(Inval)` for a malformed or inconsistent entry, or the store's
    /// error reading it.
    pub fn discover_backend(
        store: &mut StoreConnection<'_>,
        wait: &mut impl Wait,
        own_id: u32,
        kind: &str,
        device_id: u32,
    ) -> Result<DevicePaths, StoreError> {
        let base = format!("/local/domain/{own_id}/device/{kind}/{device_id}");
        let backend_id = checked::parse_domid(&store.read(wait, 0, &format!("{base}/backend-id"))?)?;
        let paths = DevicePaths { kind: String::from(kind), device_id, frontend_id: own_id, backend_id };
        let named = store.read(wait, 0, &format!("{base}/backend"))?;
        if named != paths.backend().as_bytes() {
            return Err(StoreError::Store(XsError::Inval));
        }
        Ok(paths)
    }

    /// A backend's view of the device directory `/local/domain/B/backend/KIND/F/ID`
    /// it found: `frontend-id` must be F and `frontend` exactly F's device path.
    ///
    /// # Errors
    ///
    /// `Store(Inval)` for a malformed or inconsistent entry, or the store's
    /// error reading it.
    pub fn check_frontend(store: &mut StoreConnection<'_>, wait: &mut impl Wait, paths: &DevicePaths) -> Result<(), StoreError> {
        let base = paths.backend();
        let frontend_id = checked::parse_domid(&store.read(wait, 0, &format!("{base}/frontend-id"))?)?;
        let named = store.read(wait, 0, &format!("{base}/frontend"))?;
        if frontend_id != paths.frontend_id || named != paths.frontend().as_bytes() {
            return Err(StoreError::Store(XsError::Inval));
        }
        Ok(())
    }
}

/// Reads a `state` node; a missing node reads as `Unknown` (the other side
/// is gone or not yet there), anything malformed is an error.
///
/// # Errors
///
/// The store's error, or `Store(Inval)` for a value that is no XenbusState.
pub fn read_state(store: &mut StoreConnection<'_>, wait: &mut impl Wait, path: &str) -> Result<XenbusState, StoreError> {
    match store.read_state(wait, path) {
        Err(StoreError::Store(XsError::Noent)) => Ok(XenbusState::Unknown),
        other => other,
    }
}

/// Waits until the state node `path` (which the caller watches) holds a
/// state `accept` takes, or `deadline_ns` passes (`Timeout`). Watch events
/// taken while waiting are consumed: the state is read again after each.
///
/// # Errors
///
/// `Timeout`, or a store or transport error.
pub fn wait_for_state(
    store: &mut StoreConnection<'_>,
    wait: &mut impl Wait,
    path: &str,
    deadline_ns: u64,
    accept: impl Fn(XenbusState) -> bool,
) -> Result<XenbusState, StoreError> {
    loop {
        let state = read_state(store, wait, path)?;
        if accept(state) {
            return Ok(state);
        }
        if store.next_event(wait, deadline_ns)?.is_none() {
            return Err(StoreError::Timeout);
        }
    }
}
