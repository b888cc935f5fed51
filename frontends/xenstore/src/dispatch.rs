//! Turns one request message into its reply: argument parsing (NUL-separated, as
//! xenstored reads them), path checks, and the operation. Anything malformed gets an
//! ERROR reply under the request's id; nothing here panics on a guest's bytes.

use alloc::format;
use alloc::vec::Vec;

use crate::checked::{parse_domid, parse_u32};
use crate::error::XsError;
use crate::ops;
use crate::path::{self, canonicalize, canonicalize_watch};
use crate::store::{ConnId, Introduction, Store};
use crate::tree::Transaction;
use crate::watch::Watch;
use crate::wire::{
    reply_data, reply_error, split_args, split_first, watch_event, Message, MsgType,
};

/// Most introductions held for the transport before further ones are refused.
const MAX_PENDING_INTRODUCTIONS: usize = 64;

impl Store {
    /// Answers one request from `conn` at once (watch events it raises are queued).
    pub fn process(&mut self, conn: ConnId, request: &Message) -> Message {
        match self.execute(conn, request) {
            Ok(payload) => reply_data(request, payload),
            Err(error) => reply_error(request, error),
        }
    }

    fn execute(&mut self, conn: ConnId, request: &Message) -> Result<Vec<u8>, XsError> {
        let domid = self.conns.get(&conn.0).ok_or(XsError::Noent)?.domid;
        let privileged = domid == self.config.privileged;
        let kind = request.msg_type().ok_or(XsError::Nosys)?;
        let tx = request.tx_id;
        let payload = request.payload.as_slice();
        let ok = || Ok(b"OK\0".to_vec());
        match kind {
            MsgType::Read | MsgType::Directory | MsgType::GetPerms => {
                let [raw] = split_args::<1>(payload)?;
                let p = canonicalize(domid, raw)?.path;
                self.with_view(conn, tx, |view, caller| {
                    let out = match kind {
                        MsgType::Read => ops::read(view, caller, &p),
                        MsgType::Directory => ops::directory(view, caller, &p),
                        _ => ops::get_perms(view, caller, &p),
                    }?;
                    Ok((out, None))
                })
            }
            MsgType::Write => {
                let (raw, value) = split_first(payload)?;
                let p = canonicalize(domid, raw)?.path;
                self.with_view(conn, tx, |view, caller| {
                    Ok(((), Some(ops::write(view, caller, &p, value)?)))
                })?;
                ok()
            }
            MsgType::Mkdir | MsgType::Rm => {
                let [raw] = split_args::<1>(payload)?;
                let p = canonicalize(domid, raw)?.path;
                self.with_view(conn, tx, |view, caller| {
                    let change = if kind == MsgType::Mkdir {
                        ops::mkdir(view, caller, &p)
                    } else {
                        ops::rm(view, caller, &p)
                    }?;
                    Ok(((), change))
                })?;
                ok()
            }
            MsgType::SetPerms => {
                let body = payload.strip_suffix(&[0]).ok_or(XsError::Inval)?;
                let mut args = body.split(|&b| b == 0);
                let raw = args.next().ok_or(XsError::Inval)?;
                let entries: Vec<&[u8]> = args.collect();
                let p = canonicalize(domid, raw)?.path;
                self.with_view(conn, tx, |view, caller| {
                    Ok(((), Some(ops::set_perms(view, caller, &p, &entries)?)))
                })?;
                ok()
            }
            MsgType::Watch => {
                self.add_watch(conn, payload)?;
                ok()
            }
            MsgType::Unwatch => {
                let [raw, token] = split_args::<2>(payload)?;
                let p = canonicalize_watch(domid, raw)?.path;
                let c = self.conns.get_mut(&conn.0).ok_or(XsError::Noent)?;
                let at = c
                    .watches
                    .iter()
                    .position(|w| w.path == p && w.token == token)
                    .ok_or(XsError::Noent)?;
                c.watches.remove(at);
                ok()
            }
            MsgType::ResetWatches => {
                self.conns
                    .get_mut(&conn.0)
                    .ok_or(XsError::Noent)?
                    .watches
                    .clear();
                ok()
            }
            MsgType::TransactionStart => {
                if tx != 0 {
                    return Err(XsError::Busy);
                }
                let id = self.start_transaction(conn)?;
                Ok(format!("{id}\0").into_bytes())
            }
            MsgType::TransactionEnd => {
                let [flag] = split_args::<1>(payload)?;
                let commit = match flag {
                    b"T" => true,
                    b"F" => false,
                    _ => return Err(XsError::Inval),
                };
                self.end_transaction(conn, tx, commit)?;
                ok()
            }
            MsgType::GetDomainPath => {
                let [raw] = split_args::<1>(payload)?;
                Ok(format!("{}\0", path::domain_path(parse_domid(raw)?)).into_bytes())
            }
            MsgType::IsDomainIntroduced | MsgType::Introduce | MsgType::Release if !privileged => {
                Err(XsError::Acces)
            }
            MsgType::IsDomainIntroduced => {
                let [raw] = split_args::<1>(payload)?;
                let target = parse_domid(raw)?;
                let known = self.conns.values().any(|c| c.domid == target);
                Ok(if known {
                    b"T\0".to_vec()
                } else {
                    b"F\0".to_vec()
                })
            }
            MsgType::Introduce => {
                let [raw_dom, raw_mfn, raw_port] = split_args::<3>(payload)?;
                let (target, port) = (parse_domid(raw_dom)?, parse_u32(raw_port)?);
                let mfn = parse_u64(raw_mfn)?;
                if self.conns.values().any(|c| c.domid == target) {
                    return Err(XsError::Exist);
                }
                if self.introductions.len() >= MAX_PENDING_INTRODUCTIONS {
                    return Err(XsError::Busy);
                }
                let new = self.introduce_domain(target);
                self.introductions.push_back(Introduction {
                    domid: target,
                    mfn,
                    port,
                    conn: new,
                });
                ok()
            }
            MsgType::Release => {
                let [raw] = split_args::<1>(payload)?;
                let target = parse_domid(raw)?;
                if !self.conns.values().any(|c| c.domid == target) {
                    return Err(XsError::Noent);
                }
                self.release_domain(target);
                ok()
            }
            _ => Err(XsError::Nosys),
        }
    }

    fn add_watch(&mut self, conn: ConnId, payload: &[u8]) -> Result<(), XsError> {
        let [raw, token] = split_args::<2>(payload)?;
        let c = self.conns.get_mut(&conn.0).ok_or(XsError::Noent)?;
        let domid = c.domid;
        let privileged = domid == self.config.privileged;
        let canonical = canonicalize_watch(domid, raw)?;
        if canonical.path.starts_with('@') {
            if !privileged {
                return Err(XsError::Acces);
            }
        } else {
            let caller = ops::Caller {
                domid,
                privileged,
                quotas: &self.config.quotas,
            };
            ops::may_watch(&mut self.tree, &caller, &canonical.path)?;
        }
        let c = self.conns.get_mut(&conn.0).ok_or(XsError::Noent)?;
        if c.watches
            .iter()
            .any(|w| w.path == canonical.path && w.token == token)
        {
            return Err(XsError::Exist);
        }
        if c.watches.len() >= self.config.quotas.max_watches {
            return Err(XsError::TooBig);
        }
        c.watches.push(Watch {
            path: canonical.path,
            token: token.to_vec(),
            relative: canonical.relative,
        });
        c.events.push(
            watch_event(raw, token),
            self.config.quotas.max_pending_events,
        );
        Ok(())
    }

    fn start_transaction(&mut self, conn: ConnId) -> Result<u32, XsError> {
        let limit = self.config.quotas.max_transactions;
        let c = self.conns.get_mut(&conn.0).ok_or(XsError::Noent)?;
        if c.transactions.len() >= limit {
            return Err(XsError::Nospc);
        }
        loop {
            self.next_tx = self.next_tx.wrapping_add(1);
            if self.next_tx != 0 && !c.transactions.contains_key(&self.next_tx) {
                break;
            }
        }
        c.transactions.insert(self.next_tx, Transaction::default());
        Ok(self.next_tx)
    }

    fn end_transaction(&mut self, conn: ConnId, tx: u32, commit: bool) -> Result<(), XsError> {
        let c = self.conns.get_mut(&conn.0).ok_or(XsError::Noent)?;
        let domid = c.domid;
        let transaction = c.transactions.remove(&tx).ok_or(XsError::Noent)?;
        if !commit {
            return Ok(());
        }
        if transaction.overflowed {
            return Err(XsError::Nospc);
        }
        if !transaction.still_valid(&self.tree) {
            return Err(XsError::Again);
        }
        if domid != self.config.privileged
            && transaction
                .owned_after(&self.tree)
                .iter()
                .any(|&(d, usage)| {
                    d == domid
                        && (usage.nodes > self.config.quotas.max_nodes
                            || usage.bytes > self.config.quotas.max_node_bytes)
                })
        {
            return Err(XsError::Nospc);
        }
        let changes = transaction.apply(&mut self.tree);
        self.fire(&changes);
        Ok(())
    }
}

fn parse_u64(value: &[u8]) -> Result<u64, XsError> {
    if value.is_empty() || value.len() > 20 || (value.len() > 1 && value[0] == b'0') {
        return Err(XsError::Inval);
    }
    value.iter().try_fold(0u64, |n, &c| {
        if !c.is_ascii_digit() {
            return Err(XsError::Inval);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .ok_or(XsError::Inval)
    })
}
