//! The public ABI of `xen-core`, like Xen's `xen/include/public`: the one
//! crate the hypervisor, every domain kernel and the toolstack share, so the
//! two sides of every interface read the same numbers. No dependencies, no
//! `unsafe`, builds everywhere.
//!
//! Where an operation exists in Xen, its number and layout are Xen's
//! (interface version 0x00040e00, x86_64). Where we differ, the item says so:
//! domains here never manage page tables (no `mmu_update`), so our
//! start-info is our own.
#![no_std]
#![forbid(unsafe_code)]

pub mod bundle;
pub mod domctl;
pub mod event_channel;
pub mod grant_table;
pub mod errno;
pub mod hypercall;
pub mod layout;
pub mod physdev;
pub mod policy;
pub mod sched;
pub mod shared_info;
pub mod timer;
pub mod start_info;

pub mod bytes;

/// A domain identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomId(pub u16);

impl DomId {
    /// Xen's `DOMID_FIRST_RESERVED`: ids from here on are not domains.
    pub const FIRST_RESERVED: DomId = DomId(0x7ff0);
    /// `DOMID_SELF`: the calling domain.
    pub const SELF: DomId = DomId(0x7ff0);
    /// `DOMID_INVALID`.
    pub const INVALID: DomId = DomId(0x7ff4);
    /// `DOMID_IDLE`.
    pub const IDLE: DomId = DomId(0x7fff);

    /// Whether this names a real domain (not a reserved id).
    pub fn is_domain(self) -> bool {
        self.0 < Self::FIRST_RESERVED.0
    }
}

impl core::fmt::Display for DomId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "d{}", self.0)
    }
}

/// A pseudo-physical frame number inside a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pfn(pub u64);

/// An address in a domain's address space, as the domain handed it in: an
/// allegation to be checked, never dereferenced by the hypervisor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestAddress(pub u64);
