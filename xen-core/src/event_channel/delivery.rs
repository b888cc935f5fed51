//! Delivery of events into a domain's shared-info page (Xen's 2-level
//! `evtchn_2l_set_pending` and unmask): the pending, mask and selector
//! bits, reached through [`SharedInfoBits`] because the page is the
//! domain's memory and the domain races with us.

use xen_abi::event_channel::NR_PORTS;

use super::Port;

/// Bits per word of the pending and mask bitmaps (and ports per selector bit).
pub const PORTS_PER_WORD: u32 = 64;

/// The event bits of a domain's shared-info page (Xen's layout:
/// `evtchn_pending[64]` at 2048, `evtchn_mask[64]` at 2560, vCPU 0's
/// `evtchn_pending_sel` at 8 and `evtchn_upcall_pending` at 0). The page is
/// the domain's memory and it races with us: the hypervisor implements each
/// method as one atomic operation on the page (`lock bts`, `lock btr`, ...),
/// never through a reference into it. Ports handed in are below
/// [`NR_PORTS`].
pub trait SharedInfoBits {
    /// Sets the port's pending bit; returns whether it was already set.
    fn test_and_set_pending(&mut self, port: Port) -> bool;
    /// Clears the port's pending bit.
    fn clear_pending(&mut self, port: Port);
    /// Whether the port's pending bit is set.
    fn is_pending(&self, port: Port) -> bool;
    /// Whether the port's mask bit is set.
    fn is_masked(&self, port: Port) -> bool;
    /// Clears the port's mask bit; returns whether it was set.
    fn test_and_clear_mask(&mut self, port: Port) -> bool;
    /// Sets bit `word` of vCPU 0's `evtchn_pending_sel`, then its
    /// `evtchn_upcall_pending` byte.
    fn set_selector_and_upcall(&mut self, word: u32);
}

/// What raising or unmasking a port did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a Wake must wake the domain if it is blocked"]
pub enum Delivery {
    /// The port became pending and unmasked: wake the domain if it blocks.
    Wake,
    /// It was already pending: the event merged with the earlier one.
    Coalesced,
    /// It is now pending but masked: the domain sees it when it unmasks.
    Masked,
    /// Nothing to deliver.
    Nothing,
}

impl Delivery {
    /// Whether a blocked domain must be woken.
    pub fn wakes(self) -> bool {
        self == Delivery::Wake
    }
}

/// Marks `port` pending in a domain's shared info (Xen's
/// `evtchn_2l_set_pending`): if it was not pending already and is not
/// masked, sets the selector bit and the upcall flag and asks for a wake.
pub fn raise(bits: &mut impl SharedInfoBits, port: Port) -> Delivery {
    if port.0 >= NR_PORTS {
        return Delivery::Nothing;
    }
    if bits.test_and_set_pending(port) {
        return Delivery::Coalesced;
    }
    if bits.is_masked(port) {
        return Delivery::Masked;
    }
    bits.set_selector_and_upcall(port.0 / PORTS_PER_WORD);
    Delivery::Wake
}
