//! `event_channel_op` (32): Xen's 2-level event channels. Sub-operation
//! numbers and argument layouts are Xen's (`xen/include/public/event_channel.h`).
//! Call: `rdi` = sub-operation, `rsi` = guest address of its argument block.

/// `EVTCHNOP_bind_interdomain`.
pub const BIND_INTERDOMAIN: u64 = 0;
/// `EVTCHNOP_bind_virq`.
pub const BIND_VIRQ: u64 = 1;
/// `EVTCHNOP_bind_pirq`.
pub const BIND_PIRQ: u64 = 2;
/// `EVTCHNOP_close`.
pub const CLOSE: u64 = 3;
/// `EVTCHNOP_send`.
pub const SEND: u64 = 4;
/// `EVTCHNOP_status`.
pub const STATUS: u64 = 5;
/// `EVTCHNOP_alloc_unbound`.
pub const ALLOC_UNBOUND: u64 = 6;
/// `EVTCHNOP_bind_ipi`.
pub const BIND_IPI: u64 = 7;
/// `EVTCHNOP_bind_vcpu`.
pub const BIND_VCPU: u64 = 8;
/// `EVTCHNOP_unmask`.
pub const UNMASK: u64 = 9;
/// `EVTCHNOP_reset`.
pub const RESET: u64 = 10;

/// Ports in the 2-level ABI on x86_64.
pub const NR_PORTS: u32 = 4096;

/// The port the domain builder gives a new domain's store channel (its
/// first allocation, as in Xen), unbound until the control domain binds it.
pub const BUILDER_STORE_PORT: u32 = 1;
/// The port the domain builder gives a new domain's console channel.
pub const BUILDER_CONSOLE_PORT: u32 = 2;

/// `struct evtchn_alloc_unbound` (8 bytes): dom u16 @0, remote_dom u16 @2,
/// port u32 @4 (out).
pub mod alloc_unbound {
    /// Bytes.
    pub const SIZE: usize = 8;
    /// `dom`: the domain allocating (DOMID_SELF).
    pub const DOM: usize = 0;
    /// `remote_dom`: the only domain that may bind it.
    pub const REMOTE_DOM: usize = 2;
    /// `port` (out).
    pub const PORT: usize = 4;
}

/// `struct evtchn_bind_interdomain` (12 bytes): remote_dom u16 @0,
/// remote_port u32 @4, local_port u32 @8 (out).
pub mod bind_interdomain {
    /// Bytes.
    pub const SIZE: usize = 12;
    /// `remote_dom`.
    pub const REMOTE_DOM: usize = 0;
    /// `remote_port`.
    pub const REMOTE_PORT: usize = 4;
    /// `local_port` (out).
    pub const LOCAL_PORT: usize = 8;
}

/// `struct evtchn_bind_virq` (12 bytes): virq u32 @0, vcpu u32 @4, port u32 @8 (out).
pub mod bind_virq {
    /// Bytes.
    pub const SIZE: usize = 12;
    /// `virq`.
    pub const VIRQ: usize = 0;
    /// `vcpu`.
    pub const VCPU: usize = 4;
    /// `port` (out).
    pub const PORT: usize = 8;
}

/// `struct evtchn_send`, `evtchn_close`, `evtchn_unmask` (4 bytes): port u32 @0.
pub mod port_only {
    /// Bytes.
    pub const SIZE: usize = 4;
    /// `port`.
    pub const PORT: usize = 0;
}

/// `struct evtchn_status` (24 bytes): dom u16 @0, port u32 @4, status u32 @8
/// (out), vcpu u32 @12 (out), union @16 (out): unbound {dom u16},
/// interdomain {dom u16 @16, port u32 @20}, virq u32 @16.
pub mod status {
    /// Bytes.
    pub const SIZE: usize = 24;
    /// `dom`.
    pub const DOM: usize = 0;
    /// `port`.
    pub const PORT: usize = 4;
    /// `status` (out): one of the `EVTCHNSTAT_*` below.
    pub const STATUS: usize = 8;
    /// `vcpu` (out).
    pub const VCPU: usize = 12;
    /// Union (out).
    pub const UNION: usize = 16;
    /// `EVTCHNSTAT_closed`.
    pub const CLOSED: u32 = 0;
    /// `EVTCHNSTAT_unbound`.
    pub const UNBOUND: u32 = 1;
    /// `EVTCHNSTAT_interdomain`.
    pub const INTERDOMAIN: u32 = 2;
    /// `EVTCHNSTAT_pirq`.
    pub const PIRQ: u32 = 3;
    /// `EVTCHNSTAT_virq`.
    pub const VIRQ: u32 = 4;
    /// `EVTCHNSTAT_ipi`.
    pub const IPI: u32 = 5;
}
