//! The frontend's half of a vbd's XenbusState handshake over the real
//! store, shared by `blk-pattern`, `blk-hostile` and `blk-bench`: find the
//! backend, wait for InitWait, read what it published (`sectors`,
//! `sector-size`, the toolstack's `mode`, `feature-persistent`), hand over a
//! ring page and a port (Initialised, then Connected), close (Closing,
//! Closed) and start again (Initialising) so the backend reconnects.
//!
//! Persistent grants (Xen's `feature-persistent`): the backend offers them
//! with `feature-persistent = "1"` in its directory; a frontend that wants
//! them ([`VbdLink::connect_with`]) writes its own `feature-persistent =
//! "1"` in the transaction that publishes `ring-ref` and `event-channel`
//! (`"0"` when offered but not wanted). [`VbdLink::persistent`] says what
//! was agreed; the caller puts blkfront in that mode before its first
//! request, and revokes its data grants only after [`VbdLink::begin_close`]
//! (the backend unmaps every persistent mapping before it says Closing).
//!
//! What goes on the ring is the caller's: the ring page must be
//! initialized before [`VbdLink::connect`] says Initialised.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use guest_runtime::event::{self, EventLoop, Port};
use guest_runtime::grant::GrantTable;
use guest_runtime::store::{self, EventWait, StoreConnection, StoreError};
use guest_runtime::time::system_time_ns;
use guest_runtime::xenbus::{self, DevicePaths};
use guest_runtime::StartInfo;
use log::info;
use xenstore::checked::XenbusState;
use xenstore::XsError;

/// How long one handshake step may take.
pub const STEP_NS: u64 = 30_000_000_000;

/// One vbd's store connection, paths and what the backend said about it.
pub struct VbdLink {
    store: StoreConnection<'static>,
    store_port: Port,
    /// The domain's one event loop (the ring's port is waited on with it too).
    pub events: EventLoop<'static>,
    /// This domain's grant table.
    pub table: GrantTable<'static>,
    paths: DevicePaths,
    /// The backend's domain id.
    pub backend: u16,
    /// The disk's size in 512-byte sectors.
    pub sectors: u64,
    /// Whether the toolstack made it read-only (`mode` `r`).
    pub read_only: bool,
    /// Whether the backend offers persistent grants (`feature-persistent`
    /// non-zero in its directory; absent means no).
    pub persistent_offered: bool,
    /// Whether the last [`connect_with`](Self::connect_with) agreed on
    /// persistent grants (offered and asked for).
    pub persistent: bool,
}

impl VbdLink {
    fn with<T>(
        &mut self,
        body: impl FnOnce(&mut StoreConnection<'static>, &mut EventWait<'_, 'static>) -> T,
    ) -> T {
        let mut wait = EventWait {
            port: self.store_port,
            events: &mut self.events,
        };
        body(&mut self.store, &mut wait)
    }

    /// Waits until the backend's state satisfies `accept` (at most [`STEP_NS`]).
    ///
    /// # Errors
    ///
    /// The store's, or a timeout.
    pub fn await_backend(
        &mut self,
        accept: impl Fn(XenbusState) -> bool,
    ) -> Result<XenbusState, String> {
        let path = self.paths.backend_state();
        let deadline = system_time_ns().saturating_add(STEP_NS);
        self.with(|store, wait| xenbus::wait_for_state(store, wait, &path, deadline, accept))
            .map_err(|problem| format!("waiting for the backend's state: {problem}"))
    }

    /// Writes our own state.
    ///
    /// # Errors
    ///
    /// The store's.
    pub fn say(&mut self, state: XenbusState) -> Result<(), String> {
        let path = self.paths.frontend_state();
        self.with(|store, wait| store.write_state(wait, &path, state))
            .map_err(|problem| format!("saying {state:?}: {problem}"))
    }

    fn read(&mut self, path: &str) -> Result<Vec<u8>, StoreError> {
        self.with(|store, wait| store.read(wait, 0, path))
    }

    /// Opens the store, finds vbd `id`'s backend, waits for its InitWait
    /// and reads the disk's description.
    ///
    /// # Errors
    ///
    /// What failed, for the log.
    pub fn open(info: &StartInfo, id: u32) -> Result<VbdLink, String> {
        let (Ok((store, store_port)), Some(events), Some(table)) = (
            store::open(),
            EventLoop::this_domain(),
            GrantTable::this_domain(),
        ) else {
            return Err(String::from("no store, event loop or grant table"));
        };
        let mut link = VbdLink {
            store,
            store_port,
            events,
            table,
            paths: DevicePaths {
                kind: String::new(),
                device_id: id,
                frontend_id: 0,
                backend_id: 0,
            },
            backend: 0,
            sectors: 0,
            read_only: false,
            persistent_offered: false,
            persistent: false,
        };
        link.paths = link
            .with(|store, wait| {
                DevicePaths::discover_backend(store, wait, info.domid.into(), "vbd", id)
            })
            .map_err(|problem| format!("finding the backend: {problem}"))?;
        link.backend = link.paths.backend_id as u16;
        let back_state = link.paths.backend_state();
        link.with(|store, wait| store.watch(wait, &back_state, "back"))
            .map_err(|problem| format!("watching the backend: {problem}"))?;
        link.await_backend(|state| state == XenbusState::InitWait)?;
        link.describe()?;
        Ok(link)
    }

    /// Where the backend lives in the store.
    pub fn backend_path(&self) -> String {
        self.paths.backend()
    }

    /// Reads `sectors`, `sector-size`, `mode` and `feature-persistent`
    /// (optional).
    fn describe(&mut self) -> Result<(), String> {
        let base = self.paths.backend();
        let number = |bytes: Vec<u8>| {
            core::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.parse::<u64>().ok())
        };
        let described = (|| {
            Ok::<_, StoreError>((
                self.read(&format!("{base}/sectors"))?,
                self.read(&format!("{base}/sector-size"))?,
                self.read(&format!("{base}/mode"))?,
            ))
        })();
        match described {
            Ok((sectors, size, mode)) => match (number(sectors), number(size)) {
                (Some(sectors), Some(512)) if sectors > 0 => {
                    self.sectors = sectors;
                    self.read_only = mode == b"r";
                    // Absent (or unreadable, or malformed) means not offered.
                    let persistent = self.read(&format!("{base}/feature-persistent"));
                    self.persistent_offered = persistent
                        .ok()
                        .and_then(number)
                        .is_some_and(|value| value != 0);
                    Ok(())
                }
                _ => Err(String::from(
                    "the backend's sectors or sector-size malformed",
                )),
            },
            Err(problem) => Err(format!("reading sectors, sector-size and mode: {problem}")),
        }
    }

    /// [`connect_with`](Self::connect_with) without persistent grants.
    ///
    /// # Errors
    ///
    /// What failed, for the log.
    pub fn connect(&mut self, ring_ref: u32, ring_pfn: u64) -> Result<Port, String> {
        self.connect_with(ring_ref, ring_pfn, false)
    }

    /// Grants the (initialized) ring page `ring_pfn` as `ring_ref`,
    /// allocates the port, publishes both in one transaction (with
    /// `feature-persistent` when the backend offers it: `"1"` if
    /// `want_persistent`, else `"0"`), says Initialised, waits for Connected
    /// and says Connected. Sets [`persistent`](Self::persistent) and logs
    /// whether persistent grants are in use. Returns the port.
    ///
    /// # Errors
    ///
    /// What failed, for the log.
    pub fn connect_with(
        &mut self,
        ring_ref: u32,
        ring_pfn: u64,
        want_persistent: bool,
    ) -> Result<Port, String> {
        self.persistent = false;
        self.table
            .grant_access(ring_ref, self.backend, ring_pfn, false)
            .map_err(|problem| format!("granting the ring: {problem}"))?;
        let channel = event::alloc_unbound(self.backend)
            .map_err(|errno| format!("alloc_unbound: {errno}"))?;
        let front_dir = self.paths.frontend();
        let offered = self.persistent_offered;
        let persistent = offered && want_persistent;
        let published = self.with(|store, wait| loop {
            let tx = store.transaction_start(wait)?;
            store.write(
                wait,
                tx,
                &format!("{front_dir}/ring-ref"),
                format!("{ring_ref}").as_bytes(),
            )?;
            store.write(
                wait,
                tx,
                &format!("{front_dir}/event-channel"),
                format!("{}", channel.0).as_bytes(),
            )?;
            if offered {
                store.write(
                    wait,
                    tx,
                    &format!("{front_dir}/feature-persistent"),
                    if persistent { b"1" } else { b"0" },
                )?;
            }
            match store.transaction_end(wait, tx, true) {
                Err(StoreError::Store(XsError::Again)) => continue,
                other => break other,
            }
        });
        published.map_err(|problem| format!("publishing the ring: {problem}"))?;
        self.persistent = persistent;
        info!(
            "vbd {}: persistent grants {}",
            self.paths.device_id,
            match (offered, want_persistent) {
                (true, true) => "in use",
                (true, false) => "not in use (offered, not asked for)",
                (false, _) => "not in use (the backend does not offer them)",
            }
        );
        self.say(XenbusState::Initialised)?;
        self.await_backend(|state| state == XenbusState::Connected)?;
        self.say(XenbusState::Connected)?;
        Ok(channel)
    }

    /// Says Closing and waits for the backend to let go (Closing or Closed).
    ///
    /// # Errors
    ///
    /// What failed, for the log.
    pub fn begin_close(&mut self) -> Result<(), String> {
        self.say(XenbusState::Closing)?;
        self.await_backend(|state| state >= XenbusState::Closing)
            .map(drop)
    }

    /// After the caller revoked its data grants: revokes the ring, closes
    /// the port, says Closed and waits for the backend's Closed. Returns
    /// whether the ring's grant ended (not still mapped).
    ///
    /// # Errors
    ///
    /// What failed, for the log.
    pub fn finish_close(&mut self, ring_ref: u32, channel: Port) -> Result<bool, String> {
        let ring_revoked = self.table.end_access(ring_ref).is_ok();
        let _ = event::close(channel);
        self.say(XenbusState::Closed)?;
        self.await_backend(|state| state == XenbusState::Closed)?;
        Ok(ring_revoked)
    }

    /// After a close: says Initialising, waits for the backend's InitWait
    /// and reads the disk's description again.
    ///
    /// # Errors
    ///
    /// What failed, for the log.
    pub fn restart(&mut self) -> Result<(), String> {
        self.say(XenbusState::Initialising)?;
        self.await_backend(|state| state == XenbusState::InitWait)?;
        self.describe()
    }
}
