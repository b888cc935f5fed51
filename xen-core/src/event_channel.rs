//! Xen's 2-level event channels as a self-contained state machine: one
//! domain's port table ([`EventChannels`]), the operations of
//! `event_channel_op` over one or two tables, and delivery into the
//! shared-info page's pending and mask bitmaps through [`SharedInfoBits`].
//!
//! The hypercall layer copies arguments in, resolves `DOMID_SELF`, asks the
//! policy, takes the domains' locks (lower domid first) and calls these. An
//! operation on two domains takes a [`Pair`], which cannot alias: either one
//! table for a loopback, or two distinct tables.
//!
//! Errors follow Xen's `xen/common/event_channel.c` (bad or reserved port
//! `EINVAL`, table full `ENOSPC`, VIRQ already bound `EEXIST`, a remote port
//! not offered to the binder `EINVAL`, unknown vCPU `ENOENT`).

use alloc::vec::Vec;

use xen_abi::errno;
use xen_abi::event_channel::{status as abi_status, NR_PORTS};
use xen_abi::timer::NR_VIRQS;
use xen_abi::DomId;

mod delivery;

pub use delivery::{raise, Delivery, SharedInfoBits, PORTS_PER_WORD};

/// An event-channel port number, as a domain names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port(pub u32);

/// Ports a domain gets unless its config says otherwise.
pub const DEFAULT_MAX_PORTS: u32 = 1024;

/// What a port is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not allocated (port 0 always reads as free but is reserved).
    Free,
    /// Allocated for `remote` to bind with `bind_interdomain`.
    Unbound {
        /// The only domain that may bind it.
        remote: DomId,
    },
    /// One end of a channel; the other end is `remote_port` in `remote`.
    Interdomain {
        /// The domain at the other end (may be this one: a loopback).
        remote: DomId,
        /// The port at the other end.
        remote_port: Port,
    },
    /// Delivers this virtual IRQ.
    Virq(u32),
}

/// Why an event-channel operation was refused. Nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventError {
    /// The port is outside the table, reserved, or in the wrong state.
    InvalidPort(Port),
    /// Every port is in use.
    NoFreePort,
    /// The heap could not grow the table.
    OutOfMemory,
    /// The remote port is not unbound, or was offered to another domain.
    NotOffered {
        /// The domain named.
        remote: DomId,
        /// The port named.
        remote_port: Port,
    },
    /// The VIRQ is already bound to a port of this domain.
    VirqAlreadyBound(u32),
    /// No such VIRQ.
    InvalidVirq(u32),
    /// No such vCPU (domains have one, vCPU 0).
    NoSuchVcpu(u32),
    /// A reserved domain id where a domain was needed.
    NoSuchDomain(DomId),
    /// The caller (the hypercall layer) passed tables that do not match the
    /// port's peer: re-read [`EventChannels::peer`], lock that domain, retry.
    /// Never reported to a domain.
    WrongTables {
        /// The domain whose table is needed.
        needed: DomId,
    },
}

impl EventError {
    /// The errno a domain sees (positive; the hypercall returns its negation).
    pub fn errno(self) -> i64 {
        match self {
            EventError::InvalidPort(_) | EventError::NotOffered { .. } | EventError::InvalidVirq(_) => errno::EINVAL,
            EventError::NoFreePort => errno::ENOSPC,
            EventError::OutOfMemory => errno::ENOMEM,
            EventError::VirqAlreadyBound(_) => errno::EEXIST,
            EventError::NoSuchVcpu(_) => errno::ENOENT,
            EventError::NoSuchDomain(_) => errno::ESRCH,
            EventError::WrongTables { .. } => errno::EAGAIN,
        }
    }
}

/// What `EVTCHNOP_status` reports about a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortStatus {
    /// Free or reserved (`EVTCHNSTAT_closed`).
    Closed,
    /// `EVTCHNSTAT_unbound`: waiting for `remote` to bind.
    Unbound {
        /// The domain it was offered to.
        remote: DomId,
    },
    /// `EVTCHNSTAT_interdomain`.
    Interdomain {
        /// The other end's domain.
        remote: DomId,
        /// The other end's port.
        remote_port: Port,
    },
    /// `EVTCHNSTAT_virq`.
    Virq(u32),
}

impl PortStatus {
    /// Writes the out fields of `struct evtchn_status` (status, vcpu, union)
    /// into its 24-byte block; `dom` and `port` (the inputs) are left alone.
    pub fn encode(self, block: &mut [u8; abi_status::SIZE]) {
        let (status, first, second): (u32, u32, u32) = match self {
            PortStatus::Closed => (abi_status::CLOSED, 0, 0),
            PortStatus::Unbound { remote } => (abi_status::UNBOUND, u32::from(remote.0), 0),
            PortStatus::Interdomain { remote, remote_port } => (abi_status::INTERDOMAIN, u32::from(remote.0), remote_port.0),
            PortStatus::Virq(virq) => (abi_status::VIRQ, virq, 0),
        };
        block[abi_status::STATUS..abi_status::STATUS + 4].copy_from_slice(&status.to_le_bytes());
        block[abi_status::VCPU..abi_status::VCPU + 4].copy_from_slice(&0u32.to_le_bytes());
        block[abi_status::UNION..abi_status::UNION + 4].copy_from_slice(&first.to_le_bytes());
        block[abi_status::UNION + 4..abi_status::UNION + 8].copy_from_slice(&second.to_le_bytes());
    }
}

/// Ends the two sides of an interdomain operation: one table when both
/// ends are in the same domain, two distinct tables otherwise (the borrow
/// checker rules out passing one table twice).
pub enum Pair<'a> {
    /// Both ends in one domain (a loopback channel).
    Same(&'a mut EventChannels),
    /// Two domains: the caller's table and the other domain's.
    Two {
        /// The calling domain's table.
        local: &'a mut EventChannels,
        /// The other domain's table.
        remote: &'a mut EventChannels,
    },
}

impl Pair<'_> {
    /// The caller's table and, if the other domain differs, its table.
    fn split(&mut self) -> (&mut EventChannels, Option<&mut EventChannels>) {
        match self {
            Pair::Same(table) => (table, None),
            Pair::Two { local, remote } => (local, Some(remote)),
        }
    }
}

/// One domain's port table: `max_ports` ports, port 0 reserved. Grows on
/// demand up to its maximum, so a domain that uses few ports costs little.
#[derive(Debug)]
pub struct EventChannels {
    owner: DomId,
    max_ports: u32,
    ports: Vec<PortState>,
    virq_ports: [Option<Port>; NR_VIRQS as usize],
    in_use: u32,
}

impl EventChannels {
    /// A table of [`DEFAULT_MAX_PORTS`] ports for domain `owner`.
    pub fn new(owner: DomId) -> EventChannels {
        EventChannels {
            owner,
            max_ports: DEFAULT_MAX_PORTS,
            ports: Vec::new(),
            virq_ports: [None; NR_VIRQS as usize],
            in_use: 0,
        }
    }

    /// A table of `max_ports` ports (2 to [`NR_PORTS`], port 0 included).
    pub fn with_max_ports(owner: DomId, max_ports: u32) -> Result<EventChannels, EventError> {
        if !(2..=NR_PORTS).contains(&max_ports) {
            return Err(EventError::InvalidPort(Port(max_ports)));
        }
        Ok(EventChannels { max_ports, ..EventChannels::new(owner) })
    }

    /// The domain that owns this table.
    pub fn owner(&self) -> DomId {
        self.owner
    }

    /// Ports in the table, port 0 included.
    pub fn max_ports(&self) -> u32 {
        self.max_ports
    }

    /// Ports allocated now (port 0 not counted).
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// The state of a port (free if outside the table).
    pub fn state(&self, port: Port) -> PortState {
        self.ports.get(port.0 as usize).copied().unwrap_or(PortState::Free)
    }

    /// Every allocated port and its state, lowest first.
    pub fn bound_ports(&self) -> impl Iterator<Item = (Port, PortState)> + '_ {
        self.ports
            .iter()
            .enumerate()
            .filter(|(_, state)| **state != PortState::Free)
            .map(|(index, state)| (Port(index as u32), *state))
    }

    /// The domain at the other end of an interdomain port: the table the
    /// hypercall layer must lock too before [`close`].
    pub fn peer(&self, port: Port) -> Option<DomId> {
        match self.state(port) {
            PortState::Interdomain { remote, .. } => Some(remote),
            _ => None,
        }
    }

    /// The port `virq` is bound to, if any (to deliver a timer or
    /// domain-exit VIRQ: [`raise`] it in this domain's shared info).
    pub fn virq_port(&self, virq: u32) -> Option<Port> {
        self.virq_ports.get(virq as usize).copied().flatten()
    }

    fn is_valid(&self, port: Port) -> bool {
        port.0 < self.max_ports
    }

    fn set(&mut self, port: Port, state: PortState) {
        let was_free = self.state(port) == PortState::Free;
        if let Some(slot) = self.ports.get_mut(port.0 as usize) {
            *slot = state;
        }
        match (was_free, state == PortState::Free) {
            (true, false) => self.in_use += 1,
            (false, true) => self.in_use -= 1,
            _ => {}
        }
    }

    /// The lowest free port, growing the table if need be (Xen's
    /// `get_free_port`). The port stays free until [`Self::set`].
    fn free_port(&mut self) -> Result<Port, EventError> {
        if let Some(index) = self.ports.iter().skip(1).position(|state| *state == PortState::Free) {
            return Ok(Port(index as u32 + 1));
        }
        let next = (self.ports.len() as u32).max(1);
        if next >= self.max_ports {
            return Err(EventError::NoFreePort);
        }
        let grow = (next + 1 - self.ports.len() as u32) as usize;
        self.ports.try_reserve(grow).map_err(|_| EventError::OutOfMemory)?;
        self.ports.resize(next as usize + 1, PortState::Free);
        Ok(Port(next))
    }

    /// `EVTCHNOP_alloc_unbound`: a new port that only `remote` may bind
    /// (`DOMID_SELF` means this domain).
    pub fn alloc_unbound(&mut self, remote: DomId) -> Result<Port, EventError> {
        let remote = if remote == DomId::SELF { self.owner } else { remote };
        if !remote.is_domain() {
            return Err(EventError::NoSuchDomain(remote));
        }
        let port = self.free_port()?;
        self.set(port, PortState::Unbound { remote });
        Ok(port)
    }

    /// `EVTCHNOP_bind_virq`: a new port delivering `virq` on `vcpu` (only
    /// vCPU 0 exists). One port per VIRQ.
    pub fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<Port, EventError> {
        if virq >= NR_VIRQS {
            return Err(EventError::InvalidVirq(virq));
        }
        if vcpu != 0 {
            return Err(EventError::NoSuchVcpu(vcpu));
        }
        if self.virq_port(virq).is_some() {
            return Err(EventError::VirqAlreadyBound(virq));
        }
        let port = self.free_port()?;
        self.set(port, PortState::Virq(virq));
        self.virq_ports[virq as usize] = Some(port);
        Ok(port)
    }

    /// `EVTCHNOP_status`.
    pub fn status(&self, port: Port) -> Result<PortStatus, EventError> {
        if !self.is_valid(port) {
            return Err(EventError::InvalidPort(port));
        }
        Ok(match self.state(port) {
            PortState::Free => PortStatus::Closed,
            PortState::Unbound { remote } => PortStatus::Unbound { remote },
            PortState::Interdomain { remote, remote_port } => PortStatus::Interdomain { remote, remote_port },
            PortState::Virq(virq) => PortStatus::Virq(virq),
        })
    }

    /// `EVTCHNOP_send`: where the event goes, as (domain, port) to
    /// [`raise`] in that domain's shared info while this table is still
    /// locked (so the far end cannot be closed and reused meanwhile).
    /// `None` for an unbound port: Xen drops the event silently.
    pub fn send(&self, port: Port) -> Result<Option<(DomId, Port)>, EventError> {
        if port.0 == 0 || !self.is_valid(port) {
            return Err(EventError::InvalidPort(port));
        }
        match self.state(port) {
            PortState::Interdomain { remote, remote_port } => Ok(Some((remote, remote_port))),
            PortState::Unbound { .. } => Ok(None),
            PortState::Free | PortState::Virq(_) => Err(EventError::InvalidPort(port)),
        }
    }

    /// `EVTCHNOP_unmask` (Xen's `evtchn_2l_unmask`): clears the mask bit and,
    /// if the port was masked and is pending, delivers it now.
    pub fn unmask(&self, bits: &mut impl SharedInfoBits, port: Port) -> Result<Delivery, EventError> {
        if !self.is_valid(port) {
            return Err(EventError::InvalidPort(port));
        }
        if bits.test_and_clear_mask(port) && bits.is_pending(port) {
            bits.set_selector_and_upcall(port.0 / PORTS_PER_WORD);
            return Ok(Delivery::Wake);
        }
        Ok(Delivery::Nothing)
    }

    /// Frees a port this table holds, forgetting its VIRQ binding.
    fn free(&mut self, port: Port) {
        if let PortState::Virq(virq) = self.state(port) {
            if let Some(slot) = self.virq_ports.get_mut(virq as usize) {
                *slot = None;
            }
        }
        self.set(port, PortState::Free);
    }

    /// Turns the far end of a channel whose other end `closer:closer_port`
    /// went away back into an unbound port offered to `closer` (Xen's
    /// `evtchn_close`, `ECS_INTERDOMAIN` case). Does nothing unless `port`
    /// really is that far end, so a stale report cannot disturb a port
    /// reused since. Returns whether it changed the port.
    pub fn peer_closed(&mut self, port: Port, closer: DomId, closer_port: Port) -> bool {
        if self.state(port) != (PortState::Interdomain { remote: closer, remote_port: closer_port }) {
            return false;
        }
        self.set(port, PortState::Unbound { remote: closer });
        true
    }

    /// Domain teardown: frees every port and returns the far ends in other
    /// domains, as (domain, port, our port), each to be passed to that
    /// domain's [`EventChannels::peer_closed`] with this table's owner.
    /// Loopback channels are closed here. Bounded by the table size
    /// ([`NR_PORTS`] at most).
    pub fn close_all(&mut self) -> Vec<(DomId, Port, Port)> {
        let mut far_ends = Vec::new();
        for index in 1..self.ports.len() {
            let port = Port(index as u32);
            if let PortState::Interdomain { remote, remote_port } = self.state(port) {
                if remote != self.owner {
                    far_ends.push((remote, remote_port, port));
                }
            }
            self.free(port);
        }
        self.ports = Vec::new();
        far_ends
    }
}

/// `EVTCHNOP_bind_interdomain`: binds a new local port to `remote_port` of
/// the other table, which must be unbound and offered to the caller. With
/// [`Pair::Same`] (remote domain = caller) this makes a loopback channel.
/// Like Xen, it then raises the new local port in the caller's shared info
/// (`local_bits`): the peer may have sent while the port was unbound, and
/// those events were dropped.
pub fn bind_interdomain(
    mut tables: Pair<'_>,
    local_bits: &mut impl SharedInfoBits,
    remote_port: Port,
) -> Result<(Port, Delivery), EventError> {
    let (local, remote) = tables.split();
    let local_id = local.owner;
    let remote_id = remote.as_ref().map_or(local_id, |table| table.owner);
    let offered = {
        let remote_table: &EventChannels = remote.as_deref().unwrap_or(&*local);
        remote_port.0 != 0 && remote_table.is_valid(remote_port) && remote_table.state(remote_port) == (PortState::Unbound { remote: local_id })
    };
    if remote_id == local_id && remote.is_some() {
        return Err(EventError::WrongTables { needed: local_id });
    }
    if !offered {
        return Err(EventError::NotOffered { remote: remote_id, remote_port });
    }
    let local_port = local.free_port()?;
    local.set(local_port, PortState::Interdomain { remote: remote_id, remote_port });
    let remote_table: &mut EventChannels = match remote {
        Some(table) => table,
        None => local,
    };
    remote_table.set(remote_port, PortState::Interdomain { remote: local_id, remote_port: local_port });
    Ok((local_port, raise(local_bits, local_port)))
}

/// `EVTCHNOP_close`: frees `port` of the caller's table and clears its
/// pending bit (Xen clears it so a later bind starts clean). If it was one
/// end of an interdomain channel, the other end becomes unbound, offered to
/// the caller again. The tables must be the caller's and the port's
/// [`EventChannels::peer`] (a [`Pair::Same`] for a loopback or a port with
/// no peer), else [`EventError::WrongTables`] and nothing changes.
pub fn close(mut tables: Pair<'_>, bits: &mut impl SharedInfoBits, port: Port) -> Result<(), EventError> {
    let (local, remote) = tables.split();
    let local_id = local.owner;
    if port.0 == 0 || !local.is_valid(port) {
        return Err(EventError::InvalidPort(port));
    }
    let state = local.state(port);
    if state == PortState::Free {
        return Err(EventError::InvalidPort(port));
    }
    let given_remote = remote.as_ref().map(|table| table.owner);
    if given_remote == Some(local_id) {
        return Err(EventError::WrongTables { needed: local_id });
    }
    if let PortState::Interdomain { remote: peer, remote_port } = state {
        let expected = if peer == local_id { None } else { Some(peer) };
        if given_remote != expected {
            return Err(EventError::WrongTables { needed: peer });
        }
        local.free(port);
        match remote {
            Some(table) => {
                table.peer_closed(remote_port, local_id, port);
            }
            None => {
                local.peer_closed(remote_port, local_id, port);
            }
        }
    } else {
        local.free(port);
    }
    bits.clear_pending(port);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod proptests;
