//! Event channels (`event_channel_op` 32): Xen's 2-level ABI, guest side.
//!
//! - Wrappers for the sub-operations ([`alloc_unbound`], [`bind_interdomain`],
//!   [`bind_virq`], [`send`], [`close`], [`unmask`], [`status`]): each passes
//!   the address of a Xen-layout argument block on our stack, which the
//!   hypervisor reads and writes back (the block is ours alone for the call).
//! - Delivery without upcalls: a domain kernel is an event loop. It blocks in
//!   `sched_op(block)`, then [`scan`]s the shared-info page as Mini-OS's
//!   `do_hypervisor_callback` does: clear `evtchn_upcall_pending`, exchange
//!   `evtchn_pending_sel` with 0, and for each selected word clear (atomic
//!   fetch-and) the pending bits of unmasked ports, which are the ports that
//!   fired. [`EventLoop`] keeps fired ports it was not asked about, so none is
//!   lost between waits.
//!
//! The page is guest-writable memory the hypervisor writes at any time, so it
//! is only touched through atomics ([`EventBitmaps`]); the machine layer makes
//! them from the shared-info page (the only `unsafe`), the scanning here is
//! safe and tested on the host over bitmaps of our own.

use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use xen_abi::event_channel::{
    self as abi, alloc_unbound as unbound_block, bind_interdomain as interdomain_block, bind_virq as virq_block,
    port_only, status as status_block,
};
use xen_abi::hypercall::EVENT_CHANNEL_OP;
use xen_abi::shared_info::EVENT_CHANNEL_PORTS;
use xen_abi::DomId;

use crate::hypercall::{check, sched_block, Errno};
use crate::machine;

/// Words of the pending and mask bitmaps (64 × 64 ports).
pub const WORDS: usize = EVENT_CHANNEL_PORTS / 64;

/// An event-channel port of this domain (0 is never allocated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port(pub u32);

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A set of ports (a 4096-bit bitmap, like the shared-info page's).
#[derive(Clone, PartialEq, Eq)]
pub struct PortSet {
    words: [u64; WORDS],
}

impl Default for PortSet {
    fn default() -> Self {
        PortSet::new()
    }
}

impl fmt::Debug for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(|port| port.0)).finish()
    }
}

impl PortSet {
    /// The empty set.
    pub const fn new() -> PortSet {
        PortSet { words: [0; WORDS] }
    }

    /// The set of one port.
    pub fn of(port: Port) -> PortSet {
        let mut set = PortSet::new();
        set.insert(port);
        set
    }

    /// Adds `port`; returns whether it was added (false if present or not a
    /// port of the 2-level ABI).
    pub fn insert(&mut self, port: Port) -> bool {
        let Some((word, bit)) = split(port) else { return false };
        let added = self.words[word] & bit == 0;
        self.words[word] |= bit;
        added
    }

    /// Removes `port`; returns whether it was there.
    pub fn remove(&mut self, port: Port) -> bool {
        let Some((word, bit)) = split(port) else { return false };
        let present = self.words[word] & bit != 0;
        self.words[word] &= !bit;
        present
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: Port) -> bool {
        split(port).is_some_and(|(word, bit)| self.words[word] & bit != 0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&word| word == 0)
    }

    /// Ports in the set.
    pub fn len(&self) -> usize {
        self.words.iter().map(|word| word.count_ones() as usize).sum()
    }

    /// Removes every port, returning how many there were.
    pub fn clear(&mut self) -> usize {
        let count = self.len();
        self.words = [0; WORDS];
        count
    }

    /// Adds the ports of word `word` whose bits are set in `bits`.
    fn add_word(&mut self, word: usize, bits: u64) {
        self.words[word] |= bits;
    }

    /// Moves the ports that are also in `interest` out of this set.
    pub fn take(&mut self, interest: &PortSet) -> PortSet {
        let mut taken = PortSet::new();
        for ((mine, wanted), out) in self.words.iter_mut().zip(interest.words.iter()).zip(taken.words.iter_mut()) {
            *out = *mine & *wanted;
            *mine &= !*wanted;
        }
        taken
    }

    /// The ports, ascending.
    pub fn iter(&self) -> impl Iterator<Item = Port> + '_ {
        self.words.iter().enumerate().flat_map(|(index, &word)| Bits(word).map(move |bit| Port((index * 64 + bit) as u32)))
    }
}

/// The set bits of a word, lowest first.
struct Bits(u64);

impl Iterator for Bits {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

/// `(word, bit mask)` of a port of the 2-level ABI, `None` past 4095.
fn split(port: Port) -> Option<(usize, u64)> {
    let index = port.0 as usize;
    (index < EVENT_CHANNEL_PORTS).then(|| (index / 64, 1u64 << (index % 64)))
}

/// The event fields of the shared-info page (vCPU 0), as atomics: all of
/// them are written by the hypervisor at any moment.
#[derive(Clone, Copy)]
pub struct EventBitmaps<'a> {
    /// `vcpu_info[0].evtchn_upcall_pending`.
    pub upcall_pending: &'a AtomicU8,
    /// `vcpu_info[0].evtchn_pending_sel`: bit `i` says word `i` of
    /// `pending` may have news.
    pub pending_selector: &'a AtomicU64,
    /// `evtchn_pending[64]`.
    pub pending: &'a [AtomicU64; WORDS],
    /// `evtchn_mask[64]`: a set bit keeps its port from waking us.
    pub mask: &'a [AtomicU64; WORDS],
}

impl EventBitmaps<'static> {
    /// This domain's, from the shared-info page the start-info page names;
    /// `None` before the runtime read it or if it names no such page (and
    /// always on the host).
    pub fn this_domain() -> Option<EventBitmaps<'static>> {
        machine::event_bitmaps(crate::start::start_info()?.shared_info)
    }
}

/// One scan (Mini-OS's `do_hypervisor_callback` without the upcall): clears
/// `evtchn_upcall_pending`, takes the selector (exchange with 0), and for
/// each selected word clears the pending bits of unmasked ports and adds
/// those ports to `fired`. Returns how many ports it took.
///
/// Masked pending ports are left pending (their selector bit is consumed;
/// `unmask` re-raises it, as in Xen).
pub fn scan(bitmaps: &EventBitmaps<'_>, fired: &mut PortSet) -> usize {
    // Ordering: SeqCst on all three steps. The hypervisor sets pending, then
    // the selector, then upcall_pending; clearing in the opposite order with
    // full ordering means an event raised after our clear of upcall_pending
    // either is seen by this scan or leaves upcall_pending set, so the next
    // `block` returns at once (no lost wake-up).
    bitmaps.upcall_pending.store(0, Ordering::SeqCst);
    let selector = bitmaps.pending_selector.swap(0, Ordering::SeqCst);
    let mut taken = 0;
    for word in Bits(selector) {
        let candidates = bitmaps.pending[word].load(Ordering::SeqCst) & !bitmaps.mask[word].load(Ordering::SeqCst);
        if candidates == 0 {
            continue;
        }
        // Only bits that were set and that we cleared count as fired: the
        // fetch-and returns what was there.
        let before = bitmaps.pending[word].fetch_and(!candidates, Ordering::SeqCst);
        let cleared = before & candidates;
        fired.add_word(word, cleared);
        taken += cleared.count_ones() as usize;
    }
    taken
}

/// What a domain kernel waits with: scans after every wake-up, keeps the
/// ports that fired until someone asks for them.
pub struct EventLoop<'a> {
    bitmaps: EventBitmaps<'a>,
    fired: PortSet,
    blocks: u64,
}

impl EventLoop<'static> {
    /// The event loop over this domain's shared-info page (see
    /// [`EventBitmaps::this_domain`]).
    pub fn this_domain() -> Option<EventLoop<'static>> {
        EventBitmaps::this_domain().map(EventLoop::over)
    }
}

impl<'a> EventLoop<'a> {
    /// An event loop over `bitmaps`.
    pub fn over(bitmaps: EventBitmaps<'a>) -> EventLoop<'a> {
        EventLoop { bitmaps, fired: PortSet::new(), blocks: 0 }
    }

    /// Scans once without blocking; returns the ports newly fired.
    pub fn poll(&mut self) -> usize {
        scan(&self.bitmaps, &mut self.fired)
    }

    /// Ports that fired and nobody has taken yet.
    pub fn fired(&self) -> &PortSet {
        &self.fired
    }

    /// Takes the fired ports that are in `interest` (scanning first).
    pub fn take(&mut self, interest: &PortSet) -> PortSet {
        self.poll();
        self.fired.take(interest)
    }

    /// `sched_op(block)` calls made so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Blocks until a port of `interest` fires; returns those that did (and
    /// forgets that they fired). Other ports that fire meanwhile are kept.
    pub fn wait_for(&mut self, interest: &PortSet) -> Result<PortSet, Errno> {
        loop {
            let got = self.take(interest);
            if !got.is_empty() {
                return Ok(got);
            }
            self.blocks += 1;
            sched_block()?;
        }
    }

    /// Records `port` as fired, as if it had: for an event whose
    /// notification a wait for something else used up (the store client's
    /// queued watch events), so the next wait for it returns at once.
    pub fn keep_fired(&mut self, port: Port) {
        self.fired.insert(port);
    }

    /// Forgets that `port` fired, without scanning for new events: for a
    /// caller that has just taken all the work the port announced.
    pub fn forget_fired(&mut self, port: Port) {
        self.fired.remove(port);
    }

    /// Blocks until `port` fires (and forgets that it did); other ports that
    /// fire meanwhile are kept. [`wait_for`](Self::wait_for) of one port
    /// without its sets: a set is 4096 bits, and making, intersecting and
    /// testing three of them cost over a thousand instructions a wait.
    pub fn wait_for_port(&mut self, port: Port) -> Result<(), Errno> {
        loop {
            self.poll();
            if self.fired.remove(port) {
                return Ok(());
            }
            self.blocks += 1;
            sched_block()?;
        }
    }

    /// Like [`wait_for`](Self::wait_for), but gives up when system time
    /// reaches `deadline_ns` (arming the one-shot timer for it): then the
    /// set returned is empty.
    pub fn wait_until(&mut self, interest: &PortSet, deadline_ns: u64) -> Result<PortSet, Errno> {
        self.wait_until_with(interest, deadline_ns, crate::time::system_time_ns)
    }

    /// [`wait_until`](Self::wait_until) with the clock `now`.
    pub fn wait_until_with(&mut self, interest: &PortSet, deadline_ns: u64, mut now: impl FnMut() -> u64) -> Result<PortSet, Errno> {
        let mut armed = false;
        loop {
            let got = self.take(interest);
            let expired = now() >= deadline_ns;
            if !got.is_empty() || expired {
                // The one-shot timer is this wait's: an event that came first
                // leaves no stale deadline behind to wake the domain later.
                if armed && !expired {
                    crate::time::cancel_timer()?;
                }
                return Ok(got);
            }
            if !armed {
                crate::time::set_timer(deadline_ns)?;
                armed = true;
            }
            self.blocks += 1;
            sched_block()?;
        }
    }
}

/// One `event_channel_op` with the argument block `block`.
fn op(sub: u64, block: &mut [u8]) -> Result<(), Errno> {
    check(machine::hypercall_buffer(EVENT_CHANNEL_OP, sub, block, 0)).map(drop)
}

use xen_abi::bytes::{put, u16_or_zero as get_u16, u32_or_zero as get_u32};

/// `EVTCHNOP_alloc_unbound`: a new port of ours that only `remote` may bind.
pub fn alloc_unbound(remote: u16) -> Result<Port, Errno> {
    let mut block = [0u8; unbound_block::SIZE];
    put(&mut block, unbound_block::DOM, &DomId::SELF.0.to_le_bytes());
    put(&mut block, unbound_block::REMOTE_DOM, &remote.to_le_bytes());
    op(abi::ALLOC_UNBOUND, &mut block)?;
    Ok(Port(get_u32(&block, unbound_block::PORT)))
}

/// `EVTCHNOP_bind_interdomain`: binds a new port of ours to `remote`'s
/// unbound port `remote_port` (which must name us).
pub fn bind_interdomain(remote: u16, remote_port: Port) -> Result<Port, Errno> {
    let mut block = [0u8; interdomain_block::SIZE];
    put(&mut block, interdomain_block::REMOTE_DOM, &remote.to_le_bytes());
    put(&mut block, interdomain_block::REMOTE_PORT, &remote_port.0.to_le_bytes());
    op(abi::BIND_INTERDOMAIN, &mut block)?;
    Ok(Port(get_u32(&block, interdomain_block::LOCAL_PORT)))
}

/// `EVTCHNOP_bind_virq` on vCPU 0 (e.g. `xen_abi::timer::VIRQ_TIMER`).
pub fn bind_virq(virq: u32) -> Result<Port, Errno> {
    let mut block = [0u8; virq_block::SIZE];
    put(&mut block, virq_block::VIRQ, &virq.to_le_bytes());
    put(&mut block, virq_block::VCPU, &0u32.to_le_bytes());
    op(abi::BIND_VIRQ, &mut block)?;
    Ok(Port(get_u32(&block, virq_block::PORT)))
}

fn port_op(sub: u64, port: Port) -> Result<(), Errno> {
    let mut block = [0u8; port_only::SIZE];
    put(&mut block, port_only::PORT, &port.0.to_le_bytes());
    op(sub, &mut block)
}

/// `EVTCHNOP_send`: raises the remote end of `port`.
pub fn send(port: Port) -> Result<(), Errno> {
    port_op(abi::SEND, port)
}

/// `EVTCHNOP_close`.
pub fn close(port: Port) -> Result<(), Errno> {
    port_op(abi::CLOSE, port)
}

/// `EVTCHNOP_unmask`: clears the port's mask bit (and re-delivers it if it
/// is pending).
pub fn unmask(port: Port) -> Result<(), Errno> {
    port_op(abi::UNMASK, port)
}

/// What `EVTCHNOP_status` says about a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelStatus {
    /// Free.
    Closed,
    /// Allocated, waiting for `remote` to bind.
    Unbound {
        /// The only domain that may bind it.
        remote: u16,
    },
    /// Connected to `remote`'s `port`.
    Interdomain {
        /// The other domain.
        remote: u16,
        /// Its port.
        port: Port,
    },
    /// Bound to a physical IRQ.
    Pirq(u32),
    /// Bound to a VIRQ.
    Virq(u32),
    /// An IPI port.
    Ipi,
    /// A status this runtime does not know.
    Other(u32),
}

/// Decodes an `evtchn_status` block the hypervisor filled in.
pub fn decode_status(block: &[u8; status_block::SIZE]) -> ChannelStatus {
    let union = status_block::UNION;
    match get_u32(block, status_block::STATUS) {
        status_block::CLOSED => ChannelStatus::Closed,
        status_block::UNBOUND => ChannelStatus::Unbound { remote: get_u16(block, union) },
        status_block::INTERDOMAIN => ChannelStatus::Interdomain { remote: get_u16(block, union), port: Port(get_u32(block, union + 4)) },
        status_block::PIRQ => ChannelStatus::Pirq(get_u32(block, union)),
        status_block::VIRQ => ChannelStatus::Virq(get_u32(block, union)),
        status_block::IPI => ChannelStatus::Ipi,
        other => ChannelStatus::Other(other),
    }
}

/// `EVTCHNOP_status` of our own `port`.
pub fn status(port: Port) -> Result<ChannelStatus, Errno> {
    let mut block = [0u8; status_block::SIZE];
    put(&mut block, status_block::DOM, &DomId::SELF.0.to_le_bytes());
    put(&mut block, status_block::PORT, &port.0.to_le_bytes());
    op(abi::STATUS, &mut block)?;
    Ok(decode_status(&block))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{with_buffer_responder, Call};
    use xen_abi::errno::{EINVAL, ESRCH};
    use xen_abi::hypercall::{SCHED_OP, SET_TIMER_OP};
    use xen_abi::sched::BLOCK;

    /// Bitmaps of our own standing in for the shared-info page.
    struct Page {
        upcall_pending: AtomicU8,
        pending_selector: AtomicU64,
        pending: [AtomicU64; WORDS],
        mask: [AtomicU64; WORDS],
    }

    impl Page {
        fn new() -> Page {
            Page {
                upcall_pending: AtomicU8::new(0),
                pending_selector: AtomicU64::new(0),
                pending: [const { AtomicU64::new(0) }; WORDS],
                mask: [const { AtomicU64::new(0) }; WORDS],
            }
        }

        fn bitmaps(&self) -> EventBitmaps<'_> {
            EventBitmaps { upcall_pending: &self.upcall_pending, pending_selector: &self.pending_selector, pending: &self.pending, mask: &self.mask }
        }

        /// What the hypervisor does to raise `port`.
        fn raise(&self, port: u32) {
            let (word, bit) = (port as usize / 64, 1u64 << (port % 64));
            let was = self.pending[word].fetch_or(bit, Ordering::SeqCst);
            if was & bit == 0 && self.mask[word].load(Ordering::SeqCst) & bit == 0 {
                self.pending_selector.fetch_or(1 << word, Ordering::SeqCst);
                self.upcall_pending.store(1, Ordering::SeqCst);
            }
        }

        fn mask(&self, port: u32) {
            self.mask[port as usize / 64].fetch_or(1 << (port % 64), Ordering::SeqCst);
        }
    }

    fn ports(set: &PortSet) -> std::vec::Vec<u32> {
        set.iter().map(|port| port.0).collect()
    }

    #[test]
    fn port_sets() {
        let mut set = PortSet::new();
        assert!(set.is_empty());
        assert!(set.insert(Port(1)));
        assert!(!set.insert(Port(1)));
        assert!(set.insert(Port(64)));
        assert!(set.insert(Port(4095)));
        assert!(!set.insert(Port(4096)), "not a 2-level port");
        assert!(!set.contains(Port(4096)));
        assert_eq!(ports(&set), [1, 64, 4095]);
        assert_eq!(set.len(), 3);
        let taken = set.take(&PortSet::of(Port(64)));
        assert_eq!(ports(&taken), [64]);
        assert_eq!(ports(&set), [1, 4095]);
        assert!(set.remove(Port(1)));
        assert!(!set.remove(Port(1)));
        assert_eq!(set.clear(), 1);
        assert!(set.is_empty());
        assert_eq!(std::format!("{:?}", PortSet::of(Port(7))), "{7}");
    }

    #[test]
    fn scan_takes_unmasked_pending_ports_and_clears_them() {
        let page = Page::new();
        page.raise(3);
        page.raise(70);
        page.raise(4095);
        page.mask(9);
        page.raise(9);
        let mut fired = PortSet::new();
        assert_eq!(scan(&page.bitmaps(), &mut fired), 3);
        assert_eq!(ports(&fired), [3, 70, 4095]);
        assert_eq!(page.upcall_pending.load(Ordering::SeqCst), 0);
        assert_eq!(page.pending_selector.load(Ordering::SeqCst), 0);
        assert_eq!(page.pending[0].load(Ordering::SeqCst), 1 << 9, "the masked port stays pending");
        assert_eq!(page.pending[1].load(Ordering::SeqCst), 0);
        // Nothing new: nothing taken.
        assert_eq!(scan(&page.bitmaps(), &mut fired), 0);
        // A port raised twice before a scan fires once (coalescing).
        page.raise(5);
        page.raise(5);
        let mut again = PortSet::new();
        assert_eq!(scan(&page.bitmaps(), &mut again), 1);
        assert_eq!(ports(&again), [5]);
    }

    #[test]
    fn a_selector_bit_without_pending_bits_is_harmless() {
        let page = Page::new();
        page.pending_selector.store(u64::MAX, Ordering::SeqCst);
        let mut fired = PortSet::new();
        assert_eq!(scan(&page.bitmaps(), &mut fired), 0);
        assert!(fired.is_empty());
    }

    #[test]
    fn the_loop_keeps_ports_it_was_not_asked_about() {
        let page = Page::new();
        let mut events = EventLoop::over(page.bitmaps());
        page.raise(2);
        page.raise(4);
        let (got, calls) = with_buffer_responder(|_, _| 0, || events.wait_for(&PortSet::of(Port(4))));
        assert_eq!(ports(&got.unwrap()), [4]);
        assert!(calls.is_empty(), "no block: the port had fired");
        assert_eq!(ports(events.fired()), [2]);
        let got = events.wait_for(&PortSet::of(Port(2))).unwrap();
        assert_eq!(ports(&got), [2]);
        assert!(events.fired().is_empty());
    }

    std::thread_local! {
        static PAGE: &'static Page = std::boxed::Box::leak(std::boxed::Box::new(Page::new()));
        static NOW: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
    }

    /// `block` raises port 7 (as a peer would) and advances the clock 1 ms;
    /// everything else succeeds.
    fn block_raises_seven(call: &Call, _: &mut [u8]) -> i64 {
        if call.number == SCHED_OP && call.arguments[0] == BLOCK {
            PAGE.with(|page| page.raise(7));
            NOW.with(|now| now.set(now.get() + 1_000_000));
        }
        0
    }

    #[test]
    fn waiting_blocks_until_the_port_fires() {
        let page: &'static Page = PAGE.with(|page| *page);
        let mut events = EventLoop::over(page.bitmaps());
        let (got, calls) = with_buffer_responder(block_raises_seven, || events.wait_for(&PortSet::of(Port(7))));
        assert_eq!(ports(&got.unwrap()), [7]);
        assert_eq!(calls.iter().map(|call| (call.number, call.arguments[0])).collect::<std::vec::Vec<_>>(), [(SCHED_OP, BLOCK)]);
        assert_eq!(events.blocks(), 1);

        // With a deadline: port 8 never fires; the clock reaches it.
        NOW.with(|now| now.set(0));
        let (got, calls) = with_buffer_responder(block_raises_seven, || {
            events.wait_until_with(&PortSet::of(Port(8)), 3_000_000, || NOW.with(|now| now.get()))
        });
        assert!(got.unwrap().is_empty());
        let made: std::vec::Vec<_> = calls.iter().map(|call| (call.number, call.arguments[0])).collect();
        assert_eq!(made, [(SET_TIMER_OP, 3_000_000), (SCHED_OP, BLOCK), (SCHED_OP, BLOCK), (SCHED_OP, BLOCK)]);
        assert!(events.fired().contains(Port(7)), "port 7 kept for later");

        // A failing block ends the wait with its error.
        let (got, _) = with_buffer_responder(|_, _| -EINVAL, || events.wait_for(&PortSet::of(Port(9))));
        assert_eq!(got, Err(Errno::new(EINVAL)));
    }

    #[test]
    fn waiting_for_one_port_keeps_the_others() {
        let page: &'static Page = PAGE.with(|page| *page);
        let mut events = EventLoop::over(page.bitmaps());
        page.raise(3);
        let (got, calls) = with_buffer_responder(block_raises_seven, || events.wait_for_port(Port(7)));
        assert_eq!(got, Ok(()));
        assert_eq!(calls.iter().map(|call| (call.number, call.arguments[0])).collect::<std::vec::Vec<_>>(), [(SCHED_OP, BLOCK)]);
        assert!(!events.fired().contains(Port(7)), "port 7 taken");
        assert!(events.fired().contains(Port(3)), "port 3 kept for later");
        // Already fired: no block at all.
        page.raise(7);
        let (got, calls) = with_buffer_responder(block_raises_seven, || events.wait_for_port(Port(7)));
        assert_eq!((got, calls.len()), (Ok(()), 0));
        let (got, _) = with_buffer_responder(|_, _| -EINVAL, || events.wait_for_port(Port(9)));
        assert_eq!(got, Err(Errno::new(EINVAL)));
        // A port kept fired by hand: taken without blocking.
        events.keep_fired(Port(9));
        let (got, calls) = with_buffer_responder(block_raises_seven, || events.wait_for_port(Port(9)));
        assert_eq!((got, calls.len()), (Ok(()), 0));
        // Forgotten again: waiting blocks (until 7 fires, here).
        events.keep_fired(Port(7));
        events.forget_fired(Port(7));
        let (got, calls) = with_buffer_responder(block_raises_seven, || events.wait_for_port(Port(7)));
        assert_eq!((got, calls.len()), (Ok(()), 1));
    }

    #[test]
    fn operations_encode_xen_blocks_and_decode_outputs() {
        fn responder(call: &Call, block: &mut [u8]) -> i64 {
            assert_eq!(call.number, EVENT_CHANNEL_OP);
            match call.arguments[0] {
                abi::ALLOC_UNBOUND => {
                    assert_eq!(block.len(), 8);
                    assert_eq!(&block[..4], &[0xf0, 0x7f, 2, 0], "DOMID_SELF, remote 2");
                    block[4..8].copy_from_slice(&5u32.to_le_bytes());
                    0
                }
                abi::BIND_INTERDOMAIN => {
                    assert_eq!(block.len(), 12);
                    assert_eq!(&block[..8], &[1, 0, 0, 0, 9, 0, 0, 0]);
                    block[8..12].copy_from_slice(&3u32.to_le_bytes());
                    0
                }
                abi::BIND_VIRQ => {
                    assert_eq!(&block[..8], &[0; 8], "VIRQ_TIMER on vCPU 0");
                    block[8..12].copy_from_slice(&4u32.to_le_bytes());
                    0
                }
                abi::SEND | abi::CLOSE | abi::UNMASK => {
                    assert_eq!(block, &6u32.to_le_bytes());
                    -ESRCH
                }
                abi::STATUS => {
                    assert_eq!(block.len(), 24);
                    block[8..12].copy_from_slice(&status_block::INTERDOMAIN.to_le_bytes());
                    block[16..18].copy_from_slice(&2u16.to_le_bytes());
                    block[20..24].copy_from_slice(&11u32.to_le_bytes());
                    0
                }
                _ => -EINVAL,
            }
        }
        let (results, calls) = with_buffer_responder(responder, || {
            (alloc_unbound(2), bind_interdomain(1, Port(9)), bind_virq(xen_abi::timer::VIRQ_TIMER), send(Port(6)), close(Port(6)), unmask(Port(6)), status(Port(6)))
        });
        assert_eq!(results.0, Ok(Port(5)));
        assert_eq!(results.1, Ok(Port(3)));
        assert_eq!(results.2, Ok(Port(4)));
        assert_eq!(results.3, Err(Errno::new(ESRCH)));
        assert_eq!(results.4, Err(Errno::new(ESRCH)));
        assert_eq!(results.5, Err(Errno::new(ESRCH)));
        assert_eq!(results.6, Ok(ChannelStatus::Interdomain { remote: 2, port: Port(11) }));
        assert_eq!(calls.len(), 7);
    }

    #[test]
    fn statuses() {
        let mut block = [0u8; status_block::SIZE];
        assert_eq!(decode_status(&block), ChannelStatus::Closed);
        block[8] = status_block::UNBOUND as u8;
        block[16] = 3;
        assert_eq!(decode_status(&block), ChannelStatus::Unbound { remote: 3 });
        block[8] = status_block::VIRQ as u8;
        assert_eq!(decode_status(&block), ChannelStatus::Virq(3));
        block[8] = 77;
        assert_eq!(decode_status(&block), ChannelStatus::Other(77));
    }
}
