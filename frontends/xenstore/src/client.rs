//! A typed face on [`Store::process`] for code that runs beside the store (the
//! toolstack in the control domain, tests): each call builds the wire request, runs
//! it as the given connection and unpacks the reply. Values come back as bytes;
//! the `read_*` helpers parse them strictly.

use alloc::vec::Vec;

use crate::checked::{self, XenbusState};
use crate::error::XsError;
use crate::perms::{PermEntry, Perms};
use crate::store::{ConnId, Store};
use crate::wire::{Message, MsgType};

fn ok(reply: Vec<u8>) -> Result<(), XsError> {
    if reply == b"OK\0" {
        Ok(())
    } else {
        Err(XsError::Io)
    }
}

fn strings(payload: &[u8]) -> Vec<Vec<u8>> {
    let body = payload.strip_suffix(&[0]).unwrap_or(payload);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

impl Store {
    /// Runs one request as `conn` and returns its reply payload.
    ///
    /// # Errors
    ///
    /// The error the store replied with.
    pub fn call(
        &mut self,
        conn: ConnId,
        kind: MsgType,
        tx_id: u32,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, XsError> {
        let reply = self.process(conn, &Message::new(kind, 0, tx_id, payload));
        match reply.error() {
            Some(error) => Err(error),
            None if reply.msg_type() == Some(MsgType::Error) => Err(XsError::Io),
            None => Ok(reply.payload),
        }
    }

    fn call_args(
        &mut self,
        conn: ConnId,
        kind: MsgType,
        tx_id: u32,
        args: &[&[u8]],
    ) -> Result<Vec<u8>, XsError> {
        self.call(
            conn,
            kind,
            tx_id,
            Message::with_args(kind, 0, tx_id, args).payload,
        )
    }

    /// Reads a node's value.
    ///
    /// # Errors
    ///
    /// `ENOENT`, `EACCES`, `EINVAL` as the store replies.
    pub fn read(&mut self, conn: ConnId, tx_id: u32, path: &str) -> Result<Vec<u8>, XsError> {
        self.call_args(conn, MsgType::Read, tx_id, &[path.as_bytes()])
    }

    /// Reads a node holding a decimal u32, strictly.
    ///
    /// # Errors
    ///
    /// As [`Store::read`], or `EINVAL` if the value is not a plain decimal.
    pub fn read_u32(&mut self, conn: ConnId, tx_id: u32, path: &str) -> Result<u32, XsError> {
        checked::parse_u32(&self.read(conn, tx_id, path)?)
    }

    /// Reads a `state` node, strictly.
    ///
    /// # Errors
    ///
    /// As [`Store::read`], or `EINVAL` if the value is not a XenbusState.
    pub fn read_state(
        &mut self,
        conn: ConnId,
        tx_id: u32,
        path: &str,
    ) -> Result<XenbusState, XsError> {
        checked::parse_state(&self.read(conn, tx_id, path)?)
    }

    /// Writes a node, creating it and its parents as needed.
    ///
    /// # Errors
    ///
    /// `EACCES`, `E2BIG`, `ENOSPC`, `EINVAL` as the store replies.
    pub fn write(
        &mut self,
        conn: ConnId,
        tx_id: u32,
        path: &str,
        value: &[u8],
    ) -> Result<(), XsError> {
        let mut payload = Vec::with_capacity(path.len() + 1 + value.len());
        payload.extend_from_slice(path.as_bytes());
        payload.push(0);
        payload.extend_from_slice(value);
        ok(self.call(conn, MsgType::Write, tx_id, payload)?)
    }

    /// Creates a node (no-op if it exists).
    ///
    /// # Errors
    ///
    /// As [`Store::write`].
    pub fn mkdir(&mut self, conn: ConnId, tx_id: u32, path: &str) -> Result<(), XsError> {
        ok(self.call_args(conn, MsgType::Mkdir, tx_id, &[path.as_bytes()])?)
    }

    /// Removes a node and everything below it.
    ///
    /// # Errors
    ///
    /// `EACCES`, `ENOENT`, `EINVAL` as the store replies.
    pub fn rm(&mut self, conn: ConnId, tx_id: u32, path: &str) -> Result<(), XsError> {
        ok(self.call_args(conn, MsgType::Rm, tx_id, &[path.as_bytes()])?)
    }

    /// A node's children's names.
    ///
    /// # Errors
    ///
    /// As [`Store::read`].
    pub fn directory(
        &mut self,
        conn: ConnId,
        tx_id: u32,
        path: &str,
    ) -> Result<Vec<Vec<u8>>, XsError> {
        Ok(strings(&self.call_args(
            conn,
            MsgType::Directory,
            tx_id,
            &[path.as_bytes()],
        )?))
    }

    /// A node's permissions.
    ///
    /// # Errors
    ///
    /// As [`Store::read`]; `EIO` if the reply does not parse.
    pub fn get_perms(&mut self, conn: ConnId, tx_id: u32, path: &str) -> Result<Perms, XsError> {
        let reply = self.call_args(conn, MsgType::GetPerms, tx_id, &[path.as_bytes()])?;
        let entries = strings(&reply)
            .iter()
            .map(|e| PermEntry::parse(e))
            .collect::<Result<Vec<_>, _>>();
        Perms::from_entries(entries.map_err(|_| XsError::Io)?).map_err(|_| XsError::Io)
    }

    /// Sets a node's permissions (owner or privileged only).
    ///
    /// # Errors
    ///
    /// `EACCES`, `EPERM`, `ENOSPC`, `ENOENT` as the store replies.
    pub fn set_perms(
        &mut self,
        conn: ConnId,
        tx_id: u32,
        path: &str,
        perms: &Perms,
    ) -> Result<(), XsError> {
        let mut payload = Vec::from(path.as_bytes());
        payload.push(0);
        payload.extend_from_slice(&perms.to_wire());
        ok(self.call(conn, MsgType::SetPerms, tx_id, payload)?)
    }

    /// Registers a watch; its first event is queued at once.
    ///
    /// # Errors
    ///
    /// `EACCES`, `EEXIST`, `E2BIG`, `EINVAL` as the store replies.
    pub fn watch(&mut self, conn: ConnId, path: &str, token: &str) -> Result<(), XsError> {
        ok(self.call_args(
            conn,
            MsgType::Watch,
            0,
            &[path.as_bytes(), token.as_bytes()],
        )?)
    }

    /// Removes a watch.
    ///
    /// # Errors
    ///
    /// `ENOENT` if there is no such watch.
    pub fn unwatch(&mut self, conn: ConnId, path: &str, token: &str) -> Result<(), XsError> {
        ok(self.call_args(
            conn,
            MsgType::Unwatch,
            0,
            &[path.as_bytes(), token.as_bytes()],
        )?)
    }

    /// Starts a transaction and returns its id.
    ///
    /// # Errors
    ///
    /// `ENOSPC` over the transaction quota.
    pub fn transaction_start(&mut self, conn: ConnId) -> Result<u32, XsError> {
        let reply = self.call_args(conn, MsgType::TransactionStart, 0, &[])?;
        checked::parse_u32(reply.strip_suffix(&[0]).unwrap_or(&reply)).map_err(|_| XsError::Io)
    }

    /// Commits (`commit`) or aborts a transaction.
    ///
    /// # Errors
    ///
    /// `EAGAIN` if a conflicting change committed meanwhile; `ENOENT` for an unknown id.
    pub fn transaction_end(
        &mut self,
        conn: ConnId,
        tx_id: u32,
        commit: bool,
    ) -> Result<(), XsError> {
        let flag: &[u8] = if commit { b"T" } else { b"F" };
        ok(self.call_args(conn, MsgType::TransactionEnd, tx_id, &[flag])?)
    }
}
