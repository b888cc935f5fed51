//! Host tests of the event-channel state machine: every transition, the
//! checks on who may bind, bounded tables, delivery into a fake shared-info
//! page (coalescing, masking), VIRQs and teardown.

use super::*;
use xen_abi::shared_info::{self, offset, vcpu_info};
use xen_abi::timer::{VIRQ_DOM_EXC, VIRQ_TIMER};

/// A shared-info page as bytes, with Xen's layout. Not atomic: the real
/// page is raced by its domain; in these tests nothing races.
pub(crate) struct FakeSharedInfo(pub(crate) Vec<u8>);

impl FakeSharedInfo {
    pub(crate) fn new() -> FakeSharedInfo {
        FakeSharedInfo(vec![0; shared_info::SIZE])
    }
    fn bit(&self, base: usize, port: Port) -> bool {
        self.0[base + port.0 as usize / 8] & (1 << (port.0 % 8)) != 0
    }
    fn put_bit(&mut self, base: usize, port: Port, value: bool) {
        let byte = &mut self.0[base + port.0 as usize / 8];
        if value {
            *byte |= 1 << (port.0 % 8);
        } else {
            *byte &= !(1 << (port.0 % 8));
        }
    }
    /// What the guest does to mask a port.
    pub(crate) fn mask(&mut self, port: Port) {
        self.put_bit(offset::EVTCHN_MASK, port, true);
    }
    pub(crate) fn selector(&self) -> u64 {
        u64::from_le_bytes(self.0[vcpu_info::PENDING_SEL..vcpu_info::PENDING_SEL + 8].try_into().unwrap())
    }
    pub(crate) fn upcall_pending(&self) -> bool {
        self.0[vcpu_info::UPCALL_PENDING] != 0
    }
    /// What the guest does after handling events.
    pub(crate) fn acknowledge(&mut self) {
        self.0[vcpu_info::UPCALL_PENDING] = 0;
        self.0[vcpu_info::PENDING_SEL..vcpu_info::PENDING_SEL + 8].fill(0);
        self.0[offset::EVTCHN_PENDING..offset::EVTCHN_MASK].fill(0);
    }
}

impl SharedInfoBits for FakeSharedInfo {
    fn test_and_set_pending(&mut self, port: Port) -> bool {
        let was = self.bit(offset::EVTCHN_PENDING, port);
        self.put_bit(offset::EVTCHN_PENDING, port, true);
        was
    }
    fn clear_pending(&mut self, port: Port) {
        self.put_bit(offset::EVTCHN_PENDING, port, false);
    }
    fn is_pending(&self, port: Port) -> bool {
        self.bit(offset::EVTCHN_PENDING, port)
    }
    fn is_masked(&self, port: Port) -> bool {
        self.bit(offset::EVTCHN_MASK, port)
    }
    fn test_and_clear_mask(&mut self, port: Port) -> bool {
        let was = self.bit(offset::EVTCHN_MASK, port);
        self.put_bit(offset::EVTCHN_MASK, port, false);
        was
    }
    fn set_selector_and_upcall(&mut self, word: u32) {
        let selector = self.selector() | 1 << word;
        self.0[vcpu_info::PENDING_SEL..vcpu_info::PENDING_SEL + 8].copy_from_slice(&selector.to_le_bytes());
        self.0[vcpu_info::UPCALL_PENDING] = 1;
    }
}

/// The two tables at `local` and `remote` of a slice, as the hypercall
/// layer would lock them.
pub(crate) fn pair(tables: &mut [EventChannels], local: usize, remote: usize) -> Pair<'_> {
    if local == remote {
        return Pair::Same(&mut tables[local]);
    }
    if local < remote {
        let (low, high) = tables.split_at_mut(remote);
        Pair::Two { local: &mut low[local], remote: &mut high[0] }
    } else {
        let (low, high) = tables.split_at_mut(local);
        Pair::Two { local: &mut high[0], remote: &mut low[remote] }
    }
}

const D1: DomId = DomId(1);
const D2: DomId = DomId(2);
const D3: DomId = DomId(3);

fn three() -> Vec<EventChannels> {
    vec![EventChannels::new(D1), EventChannels::new(D2), EventChannels::new(D3)]
}

/// d1 offers a port to d2 and d2 binds it: (d1's port, d2's port).
fn connect(tables: &mut [EventChannels], bits: &mut FakeSharedInfo) -> (Port, Port) {
    let offered = tables[0].alloc_unbound(D2).unwrap();
    let (bound, _) = bind_interdomain(pair(tables, 1, 0), bits, offered).unwrap();
    (offered, bound)
}

#[test]
fn a_new_table_is_empty_and_bounded() {
    let table = EventChannels::new(D1);
    assert_eq!((table.owner(), table.max_ports(), table.in_use()), (D1, DEFAULT_MAX_PORTS, 0));
    assert_eq!(table.status(Port(0)), Ok(PortStatus::Closed));
    assert_eq!(table.status(Port(1023)), Ok(PortStatus::Closed));
    assert_eq!(table.status(Port(1024)), Err(EventError::InvalidPort(Port(1024))));
    assert_eq!(table.status(Port(u32::MAX)).map_err(EventError::errno), Err(errno::EINVAL));
    for bad in [0, 1, NR_PORTS + 1, u32::MAX] {
        assert!(EventChannels::with_max_ports(D1, bad).is_err(), "{bad}");
    }
    assert_eq!(EventChannels::with_max_ports(D1, NR_PORTS).unwrap().max_ports(), NR_PORTS);
}

#[test]
fn alloc_unbound_takes_the_lowest_port_above_zero() {
    let mut table = EventChannels::new(D1);
    assert_eq!(table.alloc_unbound(D2), Ok(Port(1)));
    assert_eq!(table.alloc_unbound(DomId::SELF), Ok(Port(2)));
    assert_eq!(table.status(Port(1)), Ok(PortStatus::Unbound { remote: D2 }));
    assert_eq!(table.status(Port(2)), Ok(PortStatus::Unbound { remote: D1 }), "DOMID_SELF is the owner");
    assert_eq!(table.alloc_unbound(DomId::INVALID), Err(EventError::NoSuchDomain(DomId::INVALID)));
    assert_eq!(EventError::NoSuchDomain(DomId::IDLE).errno(), errno::ESRCH);
    assert_eq!(table.in_use(), 2);
    assert_eq!(table.state(Port(0)), PortState::Free, "port 0 is never handed out");
}

#[test]
fn only_the_named_remote_may_bind_an_unbound_port() {
    let mut tables = three();
    let mut bits = FakeSharedInfo::new();
    let offered = tables[0].alloc_unbound(D2).unwrap();
    let refused = bind_interdomain(pair(&mut tables, 2, 0), &mut bits, offered);
    assert_eq!(refused, Err(EventError::NotOffered { remote: D1, remote_port: offered }));
    assert_eq!(refused.map_err(EventError::errno), Err(errno::EINVAL), "Xen's choice");
    assert_eq!(tables[2].in_use(), 0, "a refused bind allocates nothing");
    let (bound, delivery) = bind_interdomain(pair(&mut tables, 1, 0), &mut bits, offered).unwrap();
    assert_eq!(delivery, Delivery::Wake, "Xen raises the new port in case events were lost");
    assert!(bits.is_pending(bound));
    assert_eq!(tables[1].state(bound), PortState::Interdomain { remote: D1, remote_port: offered });
    assert_eq!(tables[0].state(offered), PortState::Interdomain { remote: D2, remote_port: bound });
    assert_eq!(tables[1].peer(bound), Some(D1));
    // A bound port cannot be bound again, even by its rightful peer.
    let again = bind_interdomain(pair(&mut tables, 1, 0), &mut bits, offered);
    assert!(matches!(again, Err(EventError::NotOffered { .. })));
    // Port 0, a free port and ports past the table are not offered.
    for port in [0, 7, 1024, u32::MAX] {
        let result = bind_interdomain(pair(&mut tables, 1, 0), &mut bits, Port(port));
        assert!(matches!(result, Err(EventError::NotOffered { .. })), "{port}");
    }
    assert_eq!((tables[0].in_use(), tables[1].in_use()), (1, 1));
}

#[test]
fn two_tables_of_one_domain_are_refused() {
    let mut first = EventChannels::new(D1);
    let mut second = EventChannels::new(D1);
    let mut bits = FakeSharedInfo::new();
    let offered = second.alloc_unbound(D1).unwrap();
    let result = bind_interdomain(Pair::Two { local: &mut first, remote: &mut second }, &mut bits, offered);
    assert_eq!(result, Err(EventError::WrongTables { needed: D1 }));
    assert_eq!(second.state(offered), PortState::Unbound { remote: D1 });
}

#[test]
fn a_loopback_channel_lives_in_one_table() {
    let mut table = EventChannels::new(D1);
    let mut bits = FakeSharedInfo::new();
    let offered = table.alloc_unbound(DomId::SELF).unwrap();
    let (bound, _) = bind_interdomain(Pair::Same(&mut table), &mut bits, offered).unwrap();
    assert_ne!(offered, bound);
    assert_eq!(table.send(bound), Ok(Some((D1, offered))));
    assert_eq!(table.send(offered), Ok(Some((D1, bound))));
    assert_eq!(table.peer(bound), Some(D1));
    // Closing one end needs no second table and returns the other to unbound.
    close(Pair::Same(&mut table), &mut bits, bound).unwrap();
    assert_eq!(table.state(offered), PortState::Unbound { remote: D1 });
    assert_eq!(table.state(bound), PortState::Free);
    assert!(!bits.is_pending(bound), "close clears the freed port's pending bit");
    assert_eq!(table.in_use(), 1);
}

#[test]
fn send_names_the_far_end_or_drops() {
    let mut tables = three();
    let mut bits = FakeSharedInfo::new();
    let (offered, bound) = connect(&mut tables, &mut bits);
    assert_eq!(tables[0].send(offered), Ok(Some((D2, bound))));
    assert_eq!(tables[1].send(bound), Ok(Some((D1, offered))));
    let unbound = tables[0].alloc_unbound(D3).unwrap();
    assert_eq!(tables[0].send(unbound), Ok(None), "Xen drops sends on unbound ports");
    let virq = tables[0].bind_virq(VIRQ_TIMER, 0).unwrap();
    for port in [virq, Port(0), Port(900), Port(1024), Port(u32::MAX)] {
        assert_eq!(tables[0].send(port), Err(EventError::InvalidPort(port)), "{port:?}");
    }
}

#[test]
fn close_returns_the_other_end_to_unbound_for_the_closer() {
    let mut tables = three();
    let mut bits = FakeSharedInfo::new();
    let (offered, bound) = connect(&mut tables, &mut bits);
    // Wrong or missing tables: refused, nothing changes.
    assert_eq!(close(Pair::Same(&mut tables[1]), &mut bits, bound), Err(EventError::WrongTables { needed: D1 }));
    assert_eq!(close(pair(&mut tables, 1, 2), &mut bits, bound), Err(EventError::WrongTables { needed: D1 }));
    assert_eq!(tables[1].state(bound), PortState::Interdomain { remote: D1, remote_port: offered });
    // d2 closes: its port is free, d1's end waits for d2 to bind again.
    assert!(bits.is_pending(bound));
    close(pair(&mut tables, 1, 0), &mut bits, bound).unwrap();
    assert!(!bits.is_pending(bound));
    assert_eq!(tables[1].state(bound), PortState::Free);
    assert_eq!(tables[0].state(offered), PortState::Unbound { remote: D2 });
    assert_eq!(tables[0].send(offered), Ok(None));
    // Closing again, port 0, or past the table: EINVAL.
    for port in [bound, Port(0), Port(5000)] {
        assert_eq!(close(Pair::Same(&mut tables[1]), &mut bits, port).map_err(EventError::errno), Err(errno::EINVAL));
    }
    // d2 may bind it again.
    let (rebound, _) = bind_interdomain(pair(&mut tables, 1, 0), &mut bits, offered).unwrap();
    assert_eq!(tables[0].state(offered), PortState::Interdomain { remote: D2, remote_port: rebound });
    // An unbound port closes without a peer; extra tables are harmless.
    let lonely = tables[2].alloc_unbound(D1).unwrap();
    close(pair(&mut tables, 2, 0), &mut bits, lonely).unwrap();
    assert_eq!(tables[2].in_use(), 0);
}

#[test]
fn tables_are_bounded_and_reuse_the_lowest_port() {
    let mut small = EventChannels::with_max_ports(D1, 8).unwrap();
    for expected in 1..8 {
        assert_eq!(small.alloc_unbound(D2), Ok(Port(expected)));
    }
    assert_eq!(small.alloc_unbound(D2), Err(EventError::NoFreePort));
    assert_eq!(small.bind_virq(VIRQ_TIMER, 0).map_err(EventError::errno), Err(errno::ENOSPC));
    close(Pair::Same(&mut small), &mut FakeSharedInfo::new(), Port(3)).unwrap();
    assert_eq!(small.alloc_unbound(D2), Ok(Port(3)));
    let mut full = EventChannels::new(D1);
    for _ in 1..DEFAULT_MAX_PORTS {
        full.alloc_unbound(D2).unwrap();
    }
    assert_eq!(full.in_use(), DEFAULT_MAX_PORTS - 1);
    assert_eq!(full.alloc_unbound(D2), Err(EventError::NoFreePort));
}

#[test]
fn a_flood_of_sends_coalesces_into_one_wake() {
    let mut bits = FakeSharedInfo::new();
    let port = Port(130);
    assert_eq!(raise(&mut bits, port), Delivery::Wake);
    assert_eq!(bits.selector(), 1 << 2);
    assert!(bits.upcall_pending());
    for _ in 0..10_000 {
        assert_eq!(raise(&mut bits, port), Delivery::Coalesced);
    }
    bits.acknowledge();
    assert_eq!(raise(&mut bits, port), Delivery::Wake, "after the guest acknowledges, the next send wakes");
    assert_eq!(raise(&mut bits, Port(NR_PORTS)), Delivery::Nothing);
    assert!(!Delivery::Coalesced.wakes() && Delivery::Wake.wakes());
}

#[test]
fn masked_events_wait_for_unmask() {
    let table = EventChannels::new(D1);
    let mut bits = FakeSharedInfo::new();
    let port = Port(70);
    bits.mask(port);
    assert_eq!(raise(&mut bits, port), Delivery::Masked);
    assert!(bits.is_pending(port));
    assert_eq!((bits.selector(), bits.upcall_pending()), (0, false));
    assert_eq!(table.unmask(&mut bits, port), Ok(Delivery::Wake));
    assert_eq!((bits.selector(), bits.upcall_pending()), (1 << 1, true));
    assert!(!bits.is_masked(port));
    assert_eq!(table.unmask(&mut bits, port), Ok(Delivery::Nothing), "not masked any more");
    bits.mask(Port(5));
    assert_eq!(table.unmask(&mut bits, Port(5)), Ok(Delivery::Nothing), "masked but not pending");
    assert_eq!(table.unmask(&mut bits, Port(1024)), Err(EventError::InvalidPort(Port(1024))));
}

#[test]
fn each_virq_binds_once() {
    let mut table = EventChannels::new(D1);
    let port = table.bind_virq(VIRQ_TIMER, 0).unwrap();
    assert_eq!(table.virq_port(VIRQ_TIMER), Some(port));
    assert_eq!(table.status(port), Ok(PortStatus::Virq(VIRQ_TIMER)));
    assert_eq!(table.bind_virq(VIRQ_TIMER, 0), Err(EventError::VirqAlreadyBound(VIRQ_TIMER)));
    assert_eq!(EventError::VirqAlreadyBound(0).errno(), errno::EEXIST);
    assert_eq!(table.bind_virq(NR_VIRQS, 0), Err(EventError::InvalidVirq(NR_VIRQS)));
    assert_eq!(table.bind_virq(u32::MAX, 0).map_err(EventError::errno), Err(errno::EINVAL));
    assert_eq!(table.bind_virq(VIRQ_DOM_EXC, 1).map_err(EventError::errno), Err(errno::ENOENT));
    assert_eq!(table.virq_port(u32::MAX), None);
    close(Pair::Same(&mut table), &mut FakeSharedInfo::new(), port).unwrap();
    assert_eq!(table.virq_port(VIRQ_TIMER), None);
    assert_eq!(table.bind_virq(VIRQ_TIMER, 0), Ok(port));
}

#[test]
fn teardown_frees_everything_and_names_the_far_ends() {
    let mut tables = three();
    let mut bits = FakeSharedInfo::new();
    let (to_d2, d2_end) = connect(&mut tables, &mut bits);
    let offered_by_d3 = tables[2].alloc_unbound(D1).unwrap();
    let (to_d3, _) = bind_interdomain(pair(&mut tables, 0, 2), &mut bits, offered_by_d3).unwrap();
    let loop_offer = tables[0].alloc_unbound(DomId::SELF).unwrap();
    let _ = bind_interdomain(Pair::Same(&mut tables[0]), &mut bits, loop_offer).unwrap();
    tables[0].bind_virq(VIRQ_TIMER, 0).unwrap();
    tables[0].alloc_unbound(D3).unwrap();
    let mut far_ends = tables[0].close_all();
    far_ends.sort();
    assert_eq!(far_ends, vec![(D2, d2_end, to_d2), (D3, offered_by_d3, to_d3)]);
    assert_eq!(tables[0].in_use(), 0);
    assert_eq!(tables[0].bound_ports().count(), 0);
    assert_eq!(tables[0].virq_port(VIRQ_TIMER), None);
    for (domain, port, ours) in far_ends {
        let table = &mut tables[domain.0 as usize - 1];
        assert!(table.peer_closed(port, D1, ours));
        assert_eq!(table.state(port), PortState::Unbound { remote: D1 });
        assert!(!table.peer_closed(port, D1, ours), "a stale report changes nothing");
    }
}

#[test]
fn status_encodes_xen_layout() {
    let mut block = [0xeeu8; abi_status::SIZE];
    PortStatus::Interdomain { remote: D3, remote_port: Port(0x1234) }.encode(&mut block);
    assert_eq!(&block[..8], &[0xee; 8], "inputs untouched");
    assert_eq!(u32::from_le_bytes(block[8..12].try_into().unwrap()), abi_status::INTERDOMAIN);
    assert_eq!(u32::from_le_bytes(block[12..16].try_into().unwrap()), 0);
    assert_eq!(u16::from_le_bytes(block[16..18].try_into().unwrap()), 3);
    assert_eq!(u32::from_le_bytes(block[20..24].try_into().unwrap()), 0x1234);
    PortStatus::Virq(VIRQ_DOM_EXC).encode(&mut block);
    assert_eq!(u32::from_le_bytes(block[8..12].try_into().unwrap()), abi_status::VIRQ);
    assert_eq!(u32::from_le_bytes(block[16..20].try_into().unwrap()), VIRQ_DOM_EXC);
    PortStatus::Closed.encode(&mut block);
    assert_eq!(u32::from_le_bytes(block[8..12].try_into().unwrap()), abi_status::CLOSED);
}
