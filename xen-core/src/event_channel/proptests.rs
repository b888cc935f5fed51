//! Proptests of event channels between three domains: random operation
//! sequences, including teardown, keep every channel's two ends matched,
//! the counts exact, VIRQ bindings consistent, and no wake lost.

use super::tests::{pair, FakeSharedInfo};
use super::*;
use proptest::prelude::*;

/// Small tables, so exhaustion happens often.
const MAX_PORTS: u32 = 8;

#[derive(Clone, Debug)]
enum Operation {
    AllocUnbound { domain: usize, remote: usize },
    Bind { domain: usize, remote: usize, port: u32 },
    /// Binds a port the remote really offered to this domain, if any.
    BindOffered { domain: usize, remote: usize, pick: prop::sample::Index },
    BindVirq { domain: usize, virq: u32 },
    Close { domain: usize, port: u32 },
    Send { domain: usize, port: u32 },
    Mask { domain: usize, port: u32 },
    Unmask { domain: usize, port: u32 },
    Acknowledge { domain: usize },
    Teardown { domain: usize },
}

fn operation() -> impl Strategy<Value = Operation> {
    let domain = 0usize..3;
    let port = 0u32..MAX_PORTS + 2;
    prop_oneof![
        3 => (domain.clone(), 0usize..3).prop_map(|(domain, remote)| Operation::AllocUnbound { domain, remote }),
        4 => (domain.clone(), 0usize..3, port.clone()).prop_map(|(domain, remote, port)| Operation::Bind { domain, remote, port }),
        4 => (domain.clone(), 0usize..3, any::<prop::sample::Index>())
            .prop_map(|(domain, remote, pick)| Operation::BindOffered { domain, remote, pick }),
        1 => (domain.clone(), 0u32..4).prop_map(|(domain, virq)| Operation::BindVirq { domain, virq }),
        3 => (domain.clone(), port.clone()).prop_map(|(domain, port)| Operation::Close { domain, port }),
        3 => (domain.clone(), port.clone()).prop_map(|(domain, port)| Operation::Send { domain, port }),
        1 => (domain.clone(), port.clone()).prop_map(|(domain, port)| Operation::Mask { domain, port }),
        1 => (domain.clone(), port).prop_map(|(domain, port)| Operation::Unmask { domain, port }),
        1 => domain.clone().prop_map(|domain| Operation::Acknowledge { domain }),
        1 => domain.prop_map(|domain| Operation::Teardown { domain }),
    ]
}

fn id(index: usize) -> DomId {
    DomId(index as u16 + 1)
}

fn index(domain: DomId) -> usize {
    domain.0 as usize - 1
}

struct World {
    tables: Vec<EventChannels>,
    pages: Vec<FakeSharedInfo>,
}

impl World {
    fn new() -> World {
        World {
            tables: (0..3).map(|domain| EventChannels::with_max_ports(id(domain), MAX_PORTS).unwrap()).collect(),
            pages: (0..3).map(|_| FakeSharedInfo::new()).collect(),
        }
    }

    /// What the hypercall layer does: find the peer, lock both, close.
    fn close(&mut self, domain: usize, port: Port) {
        let peer = self.tables[domain].peer(port).map_or(domain, index);
        let result = close(pair(&mut self.tables, domain, peer), &mut self.pages[domain], port);
        assert!(!matches!(result, Err(EventError::WrongTables { .. })), "the peer was locked");
    }

    fn apply(&mut self, operation: Operation) {
        match operation {
            Operation::AllocUnbound { domain, remote } => {
                let _ = self.tables[domain].alloc_unbound(id(remote));
            }
            Operation::Bind { domain, remote, port } => {
                let result = bind_interdomain(pair(&mut self.tables, domain, remote), &mut self.pages[domain], Port(port));
                if let Ok((local, _)) = result {
                    assert!(self.pages[domain].is_pending(local));
                }
            }
            Operation::BindOffered { domain, remote, pick } => {
                let offered: Vec<Port> = self.tables[remote]
                    .bound_ports()
                    .filter(|(_, state)| *state == PortState::Unbound { remote: id(domain) })
                    .map(|(port, _)| port)
                    .collect();
                if !offered.is_empty() {
                    let port = *pick.get(&offered);
                    let result = bind_interdomain(pair(&mut self.tables, domain, remote), &mut self.pages[domain], port);
                    assert!(matches!(result, Ok(_) | Err(EventError::NoFreePort)), "{result:?}");
                }
            }
            Operation::BindVirq { domain, virq } => {
                let _ = self.tables[domain].bind_virq(virq, 0);
            }
            Operation::Close { domain, port } => self.close(domain, Port(port)),
            Operation::Send { domain, port } => {
                if let Ok(Some((target, target_port))) = self.tables[domain].send(Port(port)) {
                    let _ = raise(&mut self.pages[index(target)], target_port);
                    assert!(self.pages[index(target)].is_pending(target_port));
                }
            }
            Operation::Mask { domain, port } => self.pages[domain].mask(Port(port)),
            Operation::Unmask { domain, port } => {
                let _ = self.tables[domain].unmask(&mut self.pages[domain], Port(port));
            }
            Operation::Acknowledge { domain } => self.pages[domain].acknowledge(),
            Operation::Teardown { domain } => {
                for (remote, port, ours) in self.tables[domain].close_all() {
                    assert!(self.tables[index(remote)].peer_closed(port, id(domain), ours));
                }
                self.pages[domain] = FakeSharedInfo::new();
            }
        }
    }

    fn check(&self) {
        for (domain, table) in self.tables.iter().enumerate() {
            let page = &self.pages[domain];
            assert_eq!(table.state(Port(0)), PortState::Free, "port 0 stays reserved");
            assert_eq!(table.in_use() as usize, table.bound_ports().count(), "count matches the table");
            for (port, state) in table.bound_ports() {
                assert!(port.0 < MAX_PORTS);
                match state {
                    PortState::Interdomain { remote, remote_port } => {
                        let expected = PortState::Interdomain { remote: id(domain), remote_port: port };
                        assert_eq!(self.tables[index(remote)].state(remote_port), expected, "{port:?} of d{domain}");
                    }
                    PortState::Virq(virq) => assert_eq!(table.virq_port(virq), Some(port)),
                    PortState::Unbound { .. } | PortState::Free => {}
                }
            }
            for virq in 0..NR_VIRQS {
                if let Some(port) = table.virq_port(virq) {
                    assert_eq!(table.state(port), PortState::Virq(virq));
                }
            }
            for port in (1..MAX_PORTS + 2).map(Port) {
                if table.state(port) == PortState::Free {
                    assert!(!page.is_pending(port), "a free port is never pending");
                }
                if page.is_pending(port) && !page.is_masked(port) {
                    assert!(page.upcall_pending(), "no lost wake for {port:?}");
                    assert_ne!(page.selector() & 1 << (port.0 / PORTS_PER_WORD), 0);
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn random_operations_keep_channels_consistent(operations in proptest::collection::vec(operation(), 1..200)) {
        let mut world = World::new();
        for operation in operations {
            world.apply(operation);
            world.check();
        }
        for domain in 0..3 {
            world.apply(Operation::Teardown { domain });
        }
        world.check();
        for table in &world.tables {
            prop_assert_eq!(table.in_use(), 0, "teardown leaks no port");
        }
    }
}
