//! The running domains: building them (from the boot bundle or a `domctl`),
//! scheduling them with the weighted scheduler and the one-shot timer,
//! serving their hypercalls and traps, and tearing them down in bounded
//! steps with every frame and heap byte accounted for. Safe code over the
//! arch layer.
//!
//! Locking: the table lock (`HYPERVISOR`: the domain table and the run
//! queue) is taken on every entry from a domain, with interrupts off; each
//! domain has its own lock inside it, taken in ascending domid order when an
//! operation touches two domains; the frame allocator's lock nests last.

use alloc::boxed::Box;
use core::fmt::Write;

use log::{error, info, warn};
use xen_abi::domctl::state;
use xen_abi::sched::ShutdownReason;
use xen_abi::{errno, layout, DomId, GuestAddress};
use xen_core::cmdline::IdleAction;
use xen_core::domain::{Domain, DomainSpec, HypervisorMapping, MachineMemory};
use xen_core::domctl::{self, Command, CreateRequest, DomainInfo};
use xen_core::hypercall::{self, Action, Context, DeviceRequest, OperatorRequest};
use xen_core::layout::KERNEL_VMA;
use xen_core::page_table::{flags, PAGE_4K};
use xen_core::policy::{AccessRequest, Mode, SecurityServer};
use xen_core::scheduler::{RunState, Scheduler};
use xen_abi::policy::{domain as domain_permission, security as security_permission, Class};
use xen_core::trap::{FatalReport, TrapFrame};
use xen_core::frame_allocator::Frame;
use xen_core::{bundle, time, time_info};

use crate::arch::entry::SYSCALL_VECTOR;
use crate::arch::machine::DirectMapMachine;
use crate::arch::{apic, cpu, entry, fpu, percpu, physical};
use crate::clock;
use crate::start::{FRAMES, LOGGER};

mod channels;

/// Most domains at once.
pub const MAX_DOMAINS: usize = 16;
/// Frames scrubbed and freed per teardown step.
const TEARDOWN_BUDGET_FRAMES: usize = 2048;

/// Everything the hypervisor knows about its domains.
struct Hypervisor {
    domains: heapless::Vec<Slot, MAX_DOMAINS>,
    scheduler: Scheduler,
    /// The domain whose registers are in the entry frame.
    current: Option<DomId>,
    testing: bool,
    on_idle: IdleAction,
    /// Free frames and heap bytes before the first domain was built.
    baseline: (u64, usize),
    mappings: heapless::Vec<HypervisorMapping, 64>,
    next_id: u16,
    lapic_hz: u64,
    /// Wall-clock seconds and nanoseconds at system time zero.
    wall_clock: (u64, u32),
    /// Dead granters' frames still mapped by others.
    orphans: heapless::Vec<channels::Orphan, MAX_DOMAINS>,
    /// The security server: the one policy every cross-domain operation asks.
    security: Option<SecurityServer>,
    /// `flask=disabled`: every check allows (for measuring the hook only).
    policy_disabled: bool,
    /// The access-vector cache: recent (subject, target, class) decisions,
    /// direct-mapped; emptied whenever the policy changes.
    avc: [Option<AvcEntry>; AVC_ENTRIES],
    /// Domains that finished tearing down, for the control domain
    /// (`sysctl` exits): id and reason; the oldest go when it is full.
    exits: heapless::Deque<(DomId, u32), 64>,
}

/// Entries of the access-vector cache.
const AVC_ENTRIES: usize = 64;

/// One cached decision: the permissions `subject` holds on `target` in `class`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct AvcEntry {
    subject: u16,
    target: u16,
    class: Class,
    allowed: u32,
}

/// One domain behind its own lock. Its id, label and whether it is the
/// control domain never change, so finding a domain or checking the policy
/// takes no lock.
///
/// Lock order (DESIGN, "Ready for more CPUs"): the table (`HYPERVISOR`),
/// then domains in ascending id ([`Hypervisor::lock_pair`]), then the frame
/// allocator. One CPU runs today; nothing here assumes it.
struct Slot {
    id: DomId,
    control: bool,
    /// Its label in the security server (`None`: every check on it fails).
    security_id: Option<xen_core::policy::SecurityId>,
    domain: spin::Mutex<Box<Domain>>,
}

/// A locked domain.
type DomainGuard<'a> = spin::MutexGuard<'a, Box<Domain>>;

static HYPERVISOR: spin::Mutex<Option<Hypervisor>> = spin::Mutex::new(None);

/// The pages of the hypervisor every domain's tables map (supervisor only):
/// the entry trampoline, the descriptor tables, the entry area minus guards.
fn hypervisor_mappings() -> heapless::Vec<HypervisorMapping, 64> {
    extern "C" {
        static __entry_text_start: u8;
        static __entry_text_end: u8;
        static __entry_data_start: u8;
        static __entry_data_end: u8;
        static __entry_area_start: u8;
        static __entry_area_end: u8;
    }
    let address = |symbol: *const u8| symbol as u64;
    let ranges = [
        (address(core::ptr::addr_of!(__entry_text_start)), address(core::ptr::addr_of!(__entry_text_end)), 0),
        (
            address(core::ptr::addr_of!(__entry_data_start)),
            address(core::ptr::addr_of!(__entry_data_end)),
            flags::WRITABLE | flags::NO_EXECUTE,
        ),
        (
            address(core::ptr::addr_of!(__entry_area_start)),
            address(core::ptr::addr_of!(__entry_area_end)),
            flags::WRITABLE | flags::NO_EXECUTE,
        ),
    ];
    let guards = percpu::guard_pages();
    let mut mappings = heapless::Vec::new();
    for (start, end, leaf) in ranges {
        let mut page = start;
        while page < end {
            if !guards.contains(&page) {
                let mapping = HypervisorMapping { virtual_address: page, physical_address: page - KERNEL_VMA, flags: leaf };
                if mappings.push(mapping).is_err() {
                    panic!("xpti: more than 64 entry pages");
                }
            }
            page += PAGE_4K;
        }
    }
    mappings
}

fn heap_in_use() -> usize {
    crate::arch::heap::usage().0
}

impl Hypervisor {
    /// The one security hook: may `subject` do `permissions` of `class` to
    /// `target` (a domain)? Asked before any state changes (Xen XSA-47);
    /// a denial is logged in the AVC format. `Err` holds a positive errno.
    fn check(&mut self, subject: DomId, target: DomId, class: Class, permissions: u32) -> Result<(), i64> {
        let Some(index) = self.index_of(target) else { return Err(errno::ESRCH) };
        let target_id = self.domains[index].security_id;
        self.check_sid(subject, target_id, class, permissions)
    }

    fn check_sid(
        &mut self,
        subject: DomId,
        target: Option<xen_core::policy::SecurityId>,
        class: Class,
        permissions: u32,
    ) -> Result<(), i64> {
        if self.policy_disabled {
            return Ok(());
        }
        let subject_id = self.index_of(subject).and_then(|index| self.domains[index].security_id);
        let Some(security) = self.security.as_mut() else { return Err(errno::EACCES) };
        let (Some(subject_id), Some(target_id)) = (subject_id, target) else { return Err(errno::EACCES) };
        // The common case, an allowed operation, needs no clock and no log;
        // its decision usually comes from the cache.
        let slot = (usize::from(subject_id.index()) * 31 + usize::from(target_id.index()) * 7 + class as usize) % AVC_ENTRIES;
        let allowed = match self.avc[slot] {
            Some(entry) if entry.subject == subject_id.index() && entry.target == target_id.index() && entry.class == class => entry.allowed,
            _ => {
                let allowed = security.compute_av(subject_id, target_id, class);
                self.avc[slot] = Some(AvcEntry { subject: subject_id.index(), target: target_id.index(), class, allowed });
                allowed
            }
        };
        if permissions != 0 && allowed & permissions == permissions {
            return Ok(());
        }
        let request = AccessRequest { subject: subject_id, target: target_id, class, permissions, domid: subject };
        security
            .check(&request, clock::now_ns(), &mut |line| warn!("{line}"))
            .map_err(|denied| denied.errno())
    }

    fn index_of(&self, id: DomId) -> Option<usize> {
        self.domains.iter().position(|slot| slot.id == id)
    }

    /// Locks the domain at `index`.
    fn lock(&self, index: usize) -> DomainGuard<'_> {
        self.domains[index].domain.lock()
    }

    /// Locks domain `id`, if it exists.
    fn lock_id(&self, id: DomId) -> Option<DomainGuard<'_>> {
        self.index_of(id).map(|index| self.lock(index))
    }

    /// Locks two different domains in the fixed order (lower id first) and
    /// returns their guards in the order asked for.
    fn lock_pair(&self, first: usize, second: usize) -> (DomainGuard<'_>, DomainGuard<'_>) {
        if self.domains[first].id < self.domains[second].id {
            let low = self.lock(first);
            (low, self.lock(second))
        } else {
            let low = self.lock(second);
            (self.lock(first), low)
        }
    }

    /// The control domain, if there is one.
    /// Gives PCI function `bdf` to domain `id` (boot, from the bundle), if
    /// the policy lets it use devices (`resource { use }` on itself).
    fn assign_function(&mut self, id: DomId, bdf: xen_core::pci::Bdf) {
        if let Err(code) = self.check(id, id, Class::Resource, xen_abi::policy::resource::USE) {
            warn!("pci {bdf}: not assigned to {id}: the policy refuses it devices ({})", errno::name(code));
            return;
        }
        let Some(index) = self.index_of(id) else { return };
        let mut frames = FRAMES.lock();
        let mut machine = DirectMapMachine { frames: &mut frames };
        let mut domain = self.lock(index);
        match crate::devices::assign(&mut domain, &mut machine, bdf) {
            Ok(()) => info!("pci {bdf}: assigned to {id} ({})", domain.name),
            Err(problem) => warn!("pci {bdf}: not assigned to {id}: {problem}"),
        }
    }

    fn control_domain(&self) -> Option<DomId> {
        self.domains.iter().find(|slot| slot.control).map(|slot| slot.id)
    }

    /// Builds a domain and queues it; returns its id.
    fn build(&mut self, spec: &DomainSpec<'_>, image: &[u8], weight: u32) -> Result<DomId, xen_core::domain::BuildError> {
        // Never an id a live domain or a dead granter (an orphan) holds.
        let in_use = |id: DomId| self.index_of(id).is_some() || self.orphans.iter().any(|orphan| orphan.id == id);
        let id = xen_core::domain::free_domain_id(self.next_id, in_use).ok_or(xen_core::domain::BuildError::TooManyDomains)?;
        let (tsc, now) = clock::now_with_tsc();
        // The console and store pages are served by the control domain:
        // the builder grants them to it in the reserved refs 0 and 1.
        let control = self.control_domain();
        let mut domain = {
            let mut frames = FRAMES.lock();
            let mut machine = DirectMapMachine { frames: &mut frames };
            let domain = Domain::build(&mut machine, id, spec, image, &self.mappings, now)?;
            if let (Some(control), Some(table)) = (control, domain.frame(layout::GRANT_TABLE_PFN)) {
                use xen_abi::grant_table::{entry_flags, ENTRY_SIZE, RESERVED_CONSOLE, RESERVED_XENSTORE};
                for (reference, pfn) in [(RESERVED_CONSOLE, layout::CONSOLE_PFN), (RESERVED_XENSTORE, layout::STORE_PFN)] {
                    let mut entry = [0u8; ENTRY_SIZE];
                    entry[0..2].copy_from_slice(&entry_flags::PERMIT_ACCESS.to_le_bytes());
                    entry[2..4].copy_from_slice(&control.0.to_le_bytes());
                    entry[4..8].copy_from_slice(&(pfn as u32).to_le_bytes());
                    machine.write(table, reference as usize * ENTRY_SIZE, &entry);
                }
            }
            domain
        };
        // The store and the console reach the control domain over event
        // channels made here, as Xen's builder does (ports 1 and 2 of a
        // fresh domain), and named in its start-info.
        if let Some(control) = control.filter(|_| spec.flags & xen_abi::start_info::flags::CONTROL_DOMAIN == 0) {
            let store = domain.events.alloc_unbound(control);
            let console = domain.events.alloc_unbound(control);
            if let (Ok(store), Ok(console), Some(page)) = (store, console, domain.frame(layout::START_INFO_PFN)) {
                // The control domain binds them by these numbers.
                debug_assert_eq!((store.0, console.0), (xen_abi::event_channel::BUILDER_STORE_PORT, xen_abi::event_channel::BUILDER_CONSOLE_PORT));
                let mut frames = FRAMES.lock();
                let mut machine = DirectMapMachine { frames: &mut frames };
                machine.write(page, xen_abi::start_info::offset::STORE_EVTCHN, &store.0.to_le_bytes());
                machine.write(page, xen_abi::start_info::offset::CONSOLE_EVTCHN, &console.0.to_le_bytes());
            }
        }
        let mut domain = {
            let mut frames = FRAMES.lock();
            let mut machine = DirectMapMachine { frames: &mut frames };
            if let Some(page) = domain.frame(layout::SHARED_INFO_PFN) {
                if let Some(scale) = clock::scale() {
                    time_info::publish_time(&mut machine, page, tsc, now, scale);
                }
                time_info::publish_wall_clock(&mut machine, page, self.wall_clock.0, self.wall_clock.1);
            }
            domain
        };
        domain.weight = weight;
        let mut security_id = None;
        if let Some(security) = self.security.as_mut() {
            match security.register_label(&domain.seclabel) {
                Ok(label) => security_id = Some(label),
                Err(problem) => warn!("{id}: label {} not usable ({problem:?}): every check on it is denied", domain.seclabel),
            }
        }
        info!(
            "{id} ({}): built: {} pages at {:#x}, {} page-table frames, entry {:#x}, label {}, weight {}",
            domain.name,
            domain.nr_pages(),
            layout::RAM_BASE,
            domain.space.table_frames,
            domain.registers.rip,
            domain.seclabel,
            if weight == 0 { xen_abi::domctl::DEFAULT_WEIGHT } else { weight }
        );
        if self.domains.len() == MAX_DOMAINS || self.scheduler.add(id, weight).is_err() {
            let mut frames = FRAMES.lock();
            let mut machine = DirectMapMachine { frames: &mut frames };
            domain.destroy(&mut machine);
            return Err(xen_core::domain::BuildError::TooManyDomains);
        }
        let control = domain.flags & xen_abi::start_info::flags::CONTROL_DOMAIN != 0;
        let _ = self.domains.push(Slot { id, control, security_id, domain: spin::Mutex::new(domain) });
        self.next_id = id.0.wrapping_add(1);
        Ok(id)
    }

    /// Marks a domain dying: it never runs again; teardown follows in steps.
    fn kill(&mut self, id: DomId, reason: ShutdownReason) {
        if let Some(mut domain) = self.lock_id(id) {
            domain.shutdown.get_or_insert(reason);
        }
        let _ = self.scheduler.set_state(id, RunState::Dead);
    }

    /// One bounded step of tearing down `id`. True when it is gone.
    fn teardown_step(&mut self, id: DomId) -> bool {
        // Its devices first: bus mastering off and lines masked before any
        // grant it device-mapped is released or any frame of its is freed,
        // so in-flight DMA cannot land in memory that is about to belong to
        // someone else. (Idempotent: a later step finds nothing.)
        crate::devices::release(id);
        self.release_channels(id);
        let Some(index) = self.index_of(id) else { return true };
        let finished = {
            let mut frames = FRAMES.lock();
            let mut machine = DirectMapMachine { frames: &mut frames };
            self.lock(index).release_some(&mut machine, TEARDOWN_BUDGET_FRAMES)
        };
        if !finished {
            return false;
        }
        let mut domain = self.domains.remove(index).domain.into_inner();
        self.scheduler.remove(id);
        if self.current == Some(id) {
            self.current = None;
        }
        if domain.console.has_partial_line() {
            domain.console.flush(&mut |line| LOGGER.write_line(line));
        }
        let name = domain.name.clone();
        let reason = domain.shutdown.map_or(xen_abi::hypercall::sysctl::exit_record::DESTROYED, |reason| reason as u32);
        // Frames unmapped since they were held back go now; an orphan keeps
        // only those still mapped (it frees a frame at its last unmap).
        domain.free_unpinned_held_frames(&mut DirectMapMachine { frames: &mut FRAMES.lock() });
        self.adopt_orphan(&mut domain);
        let teardown = domain.destroy(&mut DirectMapMachine { frames: &mut FRAMES.lock() });
        info!(
            "{id} ({name}): torn down: {} RAM frames and {} page-table frames scrubbed and freed",
            teardown.ram_frames, teardown.table_frames
        );
        // Tell the control domain (VIRQ_DOM_EXC), as Xen does, and keep
        // why it stopped for it to read.
        if self.exits.is_full() {
            let _ = self.exits.pop_front();
        }
        let _ = self.exits.push_back((id, reason));
        if let Some(control) = self.control_domain() {
            self.raise_virq(control, xen_abi::timer::VIRQ_DOM_EXC);
        }
        self.report_health();
        true
    }

    /// The policy's denial counters, per source/target pair.
    fn report_denials(&self) {
        let Some(security) = self.security.as_ref() else { return };
        if security.total_denials() == 0 {
            return;
        }
        info!("xsm: {} denials since boot ({} AVC lines suppressed by the rate limit)", security.total_denials(), security.suppressed_lines());
        for (subject, target, count) in security.denial_counters() {
            info!(
                "xsm:   {count} denied: {} -> {}",
                security.context(subject).unwrap_or("?"),
                security.context(target).unwrap_or("?")
            );
        }
    }

    fn report_health(&self) {
        let free = FRAMES.lock().counts().free;
        let heap = heap_in_use();
        let (baseline_free, baseline_heap) = self.baseline;
        if self.domains.is_empty() && self.orphans.is_empty() {
            self.report_denials();
            if free == baseline_free && heap == baseline_heap {
                info!("health: no domains left; frames free {free} (baseline {baseline_free}), heap {heap} bytes in use (baseline {baseline_heap}): ok");
            } else {
                error!("health: no domains left; frames free {free} (baseline {baseline_free}), heap {heap} bytes in use (baseline {baseline_heap}): LEAK");
            }
        } else {
            info!("health: hypervisor ok; {} domain(s) left; frames free {free}, heap {heap} bytes", self.domains.len());
        }
    }

    fn arm_timer(&self, wake_at_ns: Option<u64>, now_ns: u64) {
        match wake_at_ns {
            Some(deadline) => {
                let ticks = time::ns_to_ticks(deadline.saturating_sub(now_ns), self.lapic_hz).clamp(1, u64::from(u32::MAX));
                apic::arm_one_shot(ticks as u32);
            }
            None => apic::arm_one_shot(0),
        }
    }

    /// Decides who runs next and makes `frame` hold that domain's registers.
    fn schedule(&mut self, frame: &mut TrapFrame) -> Next {
        let (tsc, now) = clock::now_with_tsc();
        self.scheduler.account(now);
        let mut fired: heapless::Vec<DomId, MAX_DOMAINS> = heapless::Vec::new();
        self.scheduler.expire_timers(now, &mut |id| {
            let _ = fired.push(id);
        });
        for id in fired {
            self.raise_virq(id, xen_abi::timer::VIRQ_TIMER);
        }
        let mut device_events: heapless::Vec<(DomId, u32), 8> = heapless::Vec::new();
        crate::devices::take_pending(|owner, virq| {
            let _ = device_events.push((owner, virq));
        });
        for (owner, virq) in device_events {
            self.raise_virq(owner, virq);
        }
        if crate::operator_channel::take_news() {
            if let Some(control) = self.control_domain() {
                self.raise_virq(control, xen_abi::timer::VIRQ_CONSOLE);
            }
        }
        // One bounded teardown step for each dying domain.
        // Dying domains are the run queue's dead ones (`kill` marks both):
        // no domain lock needed on this path.
        let dying: heapless::Vec<DomId, MAX_DOMAINS> = self
            .domains
            .iter()
            .map(|slot| slot.id)
            .filter(|id| self.scheduler.entry(*id).is_some_and(|entry| entry.state == RunState::Dead))
            .collect();
        let mut teardown_pending = false;
        for id in dying {
            teardown_pending |= !self.teardown_step(id);
        }
        let decision = self.scheduler.decide(now);
        if decision.next != self.current {
            // Save whoever was running (unless it is gone or dying).
            if let Some(current) = self.current {
                if let Some(mut domain) = self.lock_id(current) {
                    if domain.shutdown.is_none() {
                        domain.registers = *frame;
                        fpu::save(&mut domain.vector_state);
                    }
                }
            }
            self.current = decision.next;
            if let Some(next) = decision.next {
                if let Some(domain) = self.lock_id(next) {
                    *frame = domain.registers;
                    fpu::restore(&domain.vector_state);
                    percpu::set_guest_cr3(domain.space.root.address());
                    if let (Some(page), Some(scale)) = (domain.frame(layout::SHARED_INFO_PFN), clock::scale()) {
                        let mut frames = FRAMES.lock();
                        let mut machine = DirectMapMachine { frames: &mut frames };
                        time_info::publish_time(&mut machine, page, tsc, now, scale);
                    }
                }
            }
        }
        self.arm_timer(decision.wake_at_ns, now);
        match decision.next {
            Some(_) => {
                frame.rflags = hypercall::sanitize_rflags(frame.rflags);
                Next::Run(hypercall::may_sysret(frame, SYSCALL_VECTOR))
            }
            None => Next::Idle { teardown_pending, any_domains: !self.domains.is_empty() },
        }
    }
}

/// What the CPU does after the hypervisor.
enum Next {
    /// Return to the domain in the frame (`true`: `sysret` is safe).
    Run(bool),
    /// No domain can run.
    Idle {
        /// A teardown has steps left: do not halt.
        teardown_pending: bool,
        /// Whether any domain exists at all.
        any_domains: bool,
    },
}

/// Builds the boot-time domains from the bundle and runs the first. Returns
/// only if there is nothing to run.
pub fn start(
    bundle_bytes: Option<&'static [u8]>,
    testing: bool,
    (permissive, policy_disabled): (bool, bool),
    on_idle: IdleAction,
    lapic_hz: u64,
) {
    let mappings = hypervisor_mappings();
    let baseline = (FRAMES.lock().counts().free, heap_in_use());
    let (_, now) = clock::now_with_tsc();
    let rtc = crate::arch::cmos::read();
    let wall_clock = match xen_core::wall_clock::unix_seconds(&rtc) {
        Some(seconds) => {
            info!("time: RTC says {seconds} s since the epoch");
            let at_zero = u128::from(seconds) * 1_000_000_000 - u128::from(now);
            ((at_zero / 1_000_000_000) as u64, (at_zero % 1_000_000_000) as u32)
        }
        None => {
            warn!("time: the RTC holds no valid date ({rtc:?}); wall clock starts at the epoch");
            (0, 0)
        }
    };
    *HYPERVISOR.lock() = Some(Hypervisor {
        domains: heapless::Vec::new(),
        scheduler: Scheduler::new(),
        current: None,
        testing,
        on_idle,
        baseline,
        mappings,
        next_id: 1,
        lapic_hz,
        wall_clock,
        orphans: heapless::Vec::new(),
        security: None,
        policy_disabled,
        avc: [None; AVC_ENTRIES],
        exits: heapless::Deque::new(),
    });
    let Some(bytes) = bundle_bytes else {
        info!("domains: no boot bundle (no multiboot module): nothing to build");
        return;
    };
    let parsed = match bundle::parse(bytes) {
        Ok(parsed) => parsed,
        Err(problem) => {
            error!("bundle: refused: {problem}; no domain built");
            return;
        }
    };
    // The policy first: without one, nothing is built (security first).
    let Some(policy_bytes) = parsed.policy() else {
        error!("xsm: the bundle carries no policy; no domain built (add policy.te to the launch description)");
        return;
    };
    let mode = if permissive { Mode::Permissive } else { Mode::Enforcing };
    let security = match SecurityServer::new(alloc::borrow::Cow::Borrowed(policy_bytes), mode) {
        Ok(security) => security,
        Err(problem) => {
            error!("xsm: policy refused: {problem}; no domain built");
            return;
        }
    };
    {
        let policy = security.policy();
        info!(
            "xsm: policy loaded ({} bytes, {} types, {} rules); {}",
            policy_bytes.len(),
            policy.type_count(),
            policy.rule_count(),
            if permissive { "PERMISSIVE: denials are logged, not enforced" } else { "enforcing" }
        );
    }
    if policy_disabled {
        warn!("xsm: flask=disabled: NO POLICY CHECKS (every cross-domain operation the structural checks allow goes through); for measurement only");
    }
    if let Some(hypervisor) = HYPERVISOR.lock().as_mut() {
        hypervisor.security = Some(security);
    }
    // Check every measurement and every image before building anything.
    for record in parsed.domains() {
        match bundle::verify_kernel(&record) {
            Ok(digest) => info!(
                "bundle: {} kernel {} bytes sha256 {} ok; label {}, {} MiB",
                record.name,
                record.kernel.len(),
                bundle::hex(&digest),
                record.seclabel,
                record.memory_kib >> 10
            ),
            Err(problem) => {
                error!("bundle: {problem}; no domain built");
                return;
            }
        }
        if let Err(problem) = xen_core::elf_loader::plan(record.kernel, record.memory_kib * 1024) {
            error!("bundle: {}: kernel image refused: {problem}; no domain built", record.name);
            return;
        }
    }
    let mut guard = HYPERVISOR.lock();
    let Some(hypervisor) = guard.as_mut() else { return };
    for record in parsed.domains() {
        let spec = DomainSpec {
            name: record.name,
            seclabel: record.seclabel,
            memory_bytes: record.memory_kib * 1024,
            flags: record.flags,
            command_line: record.command_line,
        };
        let built = hypervisor.build(&spec, record.kernel, record.weight);
        if let Ok(id) = built {
            for &function in record.pci_functions() {
                hypervisor.assign_function(id, xen_core::pci::Bdf::from_routing_id(function));
            }
        }
        if let Err(problem) = built {
            error!("d{} ({}): not built: {problem}; tearing down the domains built so far", hypervisor.next_id, record.name);
            let built: heapless::Vec<DomId, MAX_DOMAINS> = hypervisor.domains.iter().map(|slot| slot.id).collect();
            for id in built {
                hypervisor.kill(id, ShutdownReason::Poweroff);
                while !hypervisor.teardown_step(id) {}
            }
            return;
        }
    }
    let mut frame = TrapFrame::default();
    match hypervisor.schedule(&mut frame) {
        Next::Run(_) => {
            if let Some(current) = hypervisor.current {
                if let Some(domain) = hypervisor.lock_id(current) {
                    info!("{} ({}): running first", domain.id, domain.name);
                }
            }
            drop(guard);
            entry::run_domain_first(&frame)
        }
        Next::Idle { .. } => {}
    }
}

/// Leaves the hypervisor for the domain in `frame`; when none can run,
/// idles (halting until the next deadline) until one can.
fn resume(next: Next, frame: &mut TrapFrame, on_idle: IdleAction) -> bool {
    let mut next = next;
    loop {
        match next {
            Next::Run(sysret) => return sysret,
            Next::Idle { any_domains: false, teardown_pending: false } => {
                info!("domains: none left; idle");
                crate::start::idle_forever(on_idle)
            }
            Next::Idle { teardown_pending, .. } => {
                if !teardown_pending {
                    cpu::wait_for_interrupt();
                }
                let mut guard = HYPERVISOR.lock();
                let Some(hypervisor) = guard.as_mut() else { cpu::exit(cpu::ExitCode::Failure) };
                next = hypervisor.schedule(frame);
            }
        }
    }
}

/// Copies a kernel image out of the caller's memory into frames of its own
/// and builds a domain from it with the same loader as at boot.
fn create_domain(hypervisor: &mut Hypervisor, caller: DomId, request: &CreateRequest) -> Result<DomId, i64> {
    let length = request.image_length as usize;
    let pages = request.image_length.div_ceil(PAGE_4K);
    let Some(first) = FRAMES.lock().allocate_contiguous(pages, 1) else { return Err(errno::ENOMEM) };
    let mut command_line = [0u8; 1024];
    let (address, command_line_length) = request.command_line;
    let command_line = &mut command_line[..command_line_length as usize];
    let copied = match hypervisor.lock_id(caller) {
        None => Err(errno::ESRCH),
        Some(domain) => {
            let mut frames = FRAMES.lock();
            let machine = DirectMapMachine { frames: &mut frames };
            copy_image(&domain, &machine, request, first, command_line, address)
        }
    };
    let outcome = copied.and_then(|()| {
        let command_line = core::str::from_utf8(command_line).map_err(|_| errno::EINVAL)?;
        let image = physical::owned_frames_bytes(first, length);
        let spec = DomainSpec {
            name: &request.name,
            seclabel: &request.seclabel,
            memory_bytes: request.memory_bytes,
            flags: request.flags,
            command_line,
        };
        hypervisor.build(&spec, image, request.weight).map_err(|problem| {
            warn!("{caller}: create {} refused: {problem}", request.name);
            match problem {
                xen_core::domain::BuildError::OutOfMemory { .. } => errno::ENOMEM,
                xen_core::domain::BuildError::TooManyDomains => errno::ENOSPC,
                _ => errno::EINVAL,
            }
        })
    });
    let mut frames = FRAMES.lock();
    for page in 0..pages {
        let frame = Frame(first.0 + page);
        physical::zero_frame(frame);
        let _ = frames.free(frame);
    }
    outcome
}

/// Copies the command line and the image (page by page, through the
/// caller's pseudo-physical-to-machine map) into `first`.. frames.
fn copy_image<const WORDS: usize>(
    domain: &Domain,
    machine: &DirectMapMachine<'_, WORDS>,
    request: &CreateRequest,
    first: Frame,
    command_line: &mut [u8],
    command_line_address: u64,
) -> Result<(), i64> {
    domain.copy_from_guest(machine, GuestAddress(command_line_address), command_line).map_err(|_| errno::EFAULT)?;
    let mut chunk = [0u8; 4096];
    let pages = request.image_length.div_ceil(PAGE_4K);
    for page in 0..pages {
        let offset = page * PAGE_4K;
        let size = (request.image_length - offset).min(PAGE_4K) as usize;
        let source = request.image_address.checked_add(offset).ok_or(errno::EFAULT)?;
        domain.copy_from_guest(machine, GuestAddress(source), &mut chunk[..size]).map_err(|_| errno::EFAULT)?;
        physical::write_frame(Frame(first.0 + page), 0, &chunk[..size]);
    }
    Ok(())
}

/// What a `domctl` came to.
enum DomctlResult {
    /// Done: return this (0 or a negative errno), writing the block back
    /// if it changed.
    Done(i64, bool),
    /// Not finished: re-execute the hypercall after others have run
    /// (Xen's continuation, XSA-45).
    Continue,
}

fn run_domctl(hypervisor: &mut Hypervisor, caller: DomId, command: &Command, block: &mut [u8; xen_abi::domctl::SIZE]) -> DomctlResult {
    let target_ok = |hypervisor: &Hypervisor, target: DomId| -> Result<(), i64> {
        if target == caller {
            return Err(errno::EINVAL);
        }
        match hypervisor.index_of(target) {
            Some(_) => Ok(()),
            None => Err(errno::ESRCH),
        }
    };
    // The policy decides first, before anything changes.
    let decision = match command {
        Command::Create(request) => {
            // A new label is registered only for a caller the policy lets
            // create domains of its type: the table is small and never
            // shrinks, so a refused caller must not fill it.
            let subject = hypervisor.index_of(caller).and_then(|index| hypervisor.domains[index].security_id);
            let policy_disabled = hypervisor.policy_disabled;
            let label = hypervisor.security.as_mut().and_then(|security| {
                let registered = if policy_disabled {
                    security.register_label(&request.seclabel)
                } else {
                    security.register_label_for(subject, &request.seclabel, Class::Domain, domain_permission::CREATE)
                };
                registered.ok()
            });
            hypervisor.check_sid(caller, label, Class::Domain, domain_permission::CREATE)
        }
        Command::Destroy(target) => hypervisor.check(caller, *target, Class::Domain, domain_permission::DESTROY),
        Command::Pause(target) => hypervisor.check(caller, *target, Class::Domain, domain_permission::PAUSE),
        Command::Unpause(target) => hypervisor.check(caller, *target, Class::Domain, domain_permission::UNPAUSE),
        Command::Shutdown(target) => hypervisor.check(caller, *target, Class::Domain, domain_permission::SHUTDOWN),
        Command::GetInfo(from) => {
            match hypervisor.domains.iter().filter(|slot| slot.id >= *from).min_by_key(|slot| slot.id).map(|slot| slot.id) {
                Some(found) => hypervisor.check(caller, found, Class::Domain, domain_permission::GET_DOMAIN_INFO),
                None => Ok(()),
            }
        }
    };
    if let Err(code) = decision {
        return DomctlResult::Done(-code, false);
    }
    match command {
        Command::Create(request) => match create_domain(hypervisor, caller, request) {
            Ok(id) => {
                info!("{caller}: created {id} ({})", request.name);
                domctl::set_domain(block, id);
                DomctlResult::Done(0, true)
            }
            Err(code) => DomctlResult::Done(-code, false),
        },
        Command::Destroy(target) => {
            if let Err(code) = target_ok(hypervisor, *target) {
                return DomctlResult::Done(-code, false);
            }
            let dying = hypervisor.lock_id(*target).is_some_and(|domain| domain.shutdown.is_some());
            if !dying {
                info!("{caller}: destroying {target}");
                hypervisor.kill(*target, ShutdownReason::Poweroff);
            }
            if hypervisor.teardown_step(*target) {
                DomctlResult::Done(0, false)
            } else {
                DomctlResult::Continue
            }
        }
        Command::Pause(target) | Command::Unpause(target) => {
            if let Err(code) = target_ok(hypervisor, *target) {
                return DomctlResult::Done(-code, false);
            }
            let pause = matches!(command, Command::Pause(_));
            let result = if pause { hypervisor.scheduler.pause(*target) } else { hypervisor.scheduler.unpause(*target) };
            info!("{caller}: {} {target}", if pause { "paused" } else { "unpaused" });
            DomctlResult::Done(if result.is_ok() { 0 } else { -errno::ESRCH }, false)
        }
        Command::Shutdown(target) => {
            if let Err(code) = target_ok(hypervisor, *target) {
                return DomctlResult::Done(-code, false);
            }
            info!("{caller}: shut {target} down (poweroff)");
            hypervisor.kill(*target, ShutdownReason::Poweroff);
            DomctlResult::Done(0, false)
        }
        Command::GetInfo(from) => {
            let found = hypervisor.domains.iter().filter(|slot| slot.id >= *from).min_by_key(|slot| slot.id).map(|slot| slot.id);
            let Some(domain) = found.and_then(|id| hypervisor.lock_id(id)) else { return DomctlResult::Done(-errno::ESRCH, false) };
            let entry = hypervisor.scheduler.entry(domain.id);
            let mut bits = match entry.map(|entry| entry.state) {
                Some(RunState::Runnable) => state::RUNNING,
                Some(RunState::Blocked) => state::BLOCKED,
                Some(RunState::Paused) => state::PAUSED,
                Some(RunState::Dead) | None => 0,
            };
            let mut shutdown_reason = 0;
            if let Some(reason) = domain.shutdown {
                bits |= state::SHUTDOWN;
                shutdown_reason = reason as u32;
            }
            let value = DomainInfo {
                domain: domain.id,
                state: bits,
                total_pages: domain.nr_pages(),
                cpu_time_ns: entry.map_or(0, |entry| entry.cpu_time_ns),
                shutdown_reason,
                weight: entry.map_or(0, |entry| entry.weight),
                flags: domain.flags,
                name: xen_abi::start_info::fill_text(&domain.name),
                seclabel: xen_abi::start_info::fill_text(&domain.seclabel),
            };
            domctl::encode_info(block, &value);
            DomctlResult::Done(0, true)
        }
    }
}

/// The operator's channel and the hypervisor's log: the policy decides
/// (`security { readconsole writeconsole }`); with the policy disabled, the
/// control domain alone.
fn operator_op(hypervisor: &mut Hypervisor, caller: DomId, request: OperatorRequest) -> i64 {
    let permission = match request {
        OperatorRequest::Write { .. } => security_permission::WRITE_CONSOLE,
        OperatorRequest::Read { .. } | OperatorRequest::ReadLog { .. } | OperatorRequest::Exits { .. } => security_permission::READ_CONSOLE,
        OperatorRequest::PhysInfo { .. } => security_permission::PHYSINFO,
    };
    let allowed = if hypervisor.policy_disabled {
        hypervisor.control_domain() == Some(caller)
    } else {
        let server = hypervisor.security.as_ref().map(SecurityServer::security_server_id);
        hypervisor.check_sid(caller, server, Class::Security, permission).is_ok()
    };
    if !allowed {
        return -errno::EPERM;
    }
    let Some(index) = hypervisor.index_of(caller) else { return -errno::ESRCH };
    let domain_count = hypervisor.domains.len() as u32;
    if let OperatorRequest::Exits { buffer, count } = request {
        // Records leave the queue only once the caller has them.
        use xen_abi::hypercall::sysctl::exit_record;
        let mut block = [0u8; xen_abi::hypercall::console::MAX_CHANNEL_BYTES as usize];
        let room = (count as usize / exit_record::SIZE).min(block.len() / exit_record::SIZE);
        let mut taken = 0;
        for (id, reason) in hypervisor.exits.iter().take(room) {
            let record = &mut block[taken * exit_record::SIZE..][..exit_record::SIZE];
            record[exit_record::DOMID..][..2].copy_from_slice(&id.0.to_le_bytes());
            record[exit_record::REASON..][..4].copy_from_slice(&reason.to_le_bytes());
            taken += 1;
        }
        let written = {
            let mut frames = FRAMES.lock();
            let mut machine = DirectMapMachine { frames: &mut frames };
            hypervisor.lock(index).write_guest(&mut machine, buffer, &block[..taken * exit_record::SIZE])
        };
        if written.is_err() {
            return -errno::EFAULT;
        }
        for _ in 0..taken {
            let _ = hypervisor.exits.pop_front();
        }
        return taken as i64;
    }
    let mut bytes = [0u8; xen_abi::hypercall::console::MAX_CHANNEL_BYTES as usize + 8];
    let mut frames = FRAMES.lock();
    let mut machine = DirectMapMachine { frames: &mut frames };
    let domain = hypervisor.lock(index);
    match request {
        OperatorRequest::Read { buffer, count } => {
            let count = crate::operator_channel::read(&mut bytes[..count as usize]);
            match domain.write_guest(&mut machine, buffer, &bytes[..count]) {
                Ok(()) => count as i64,
                // The bytes are gone from the buffer: say so loudly.
                Err(_) => {
                    warn!("{caller}: operator channel: {count} bytes lost to a bad buffer {buffer:#x}");
                    -errno::EFAULT
                }
            }
        }
        OperatorRequest::Write { buffer, count } => {
            let bytes = &mut bytes[..count as usize];
            if domain.copy_from_guest(&machine, GuestAddress(buffer), bytes).is_err() {
                return -errno::EFAULT;
            }
            if !crate::operator_channel::present() {
                return -errno::ENODEV;
            }
            crate::operator_channel::write(bytes);
            count as i64
        }
        OperatorRequest::Exits { .. } => -errno::EINVAL, // handled above
        OperatorRequest::PhysInfo { buffer } => {
            use xen_abi::hypercall::sysctl::physinfo;
            let counts = machine.frames.counts();
            let block = &mut bytes[..physinfo::SIZE];
            block[physinfo::TOTAL_PAGES..][..8].copy_from_slice(&counts.managed.to_le_bytes());
            block[physinfo::FREE_PAGES..][..8].copy_from_slice(&counts.free.to_le_bytes());
            block[physinfo::DOMAINS..][..4].copy_from_slice(&domain_count.to_le_bytes());
            block[physinfo::CPUS..][..4].copy_from_slice(&1u32.to_le_bytes());
            match domain.write_guest(&mut machine, buffer, block) {
                Ok(()) => 0,
                Err(_) => -errno::EFAULT,
            }
        }
        OperatorRequest::ReadLog { buffer, count, from } => {
            let (start, copied) = LOGGER.read(from, &mut bytes[8..count as usize]);
            bytes[..8].copy_from_slice(&start.to_le_bytes());
            match domain.write_guest(&mut machine, buffer, &bytes[..8 + copied]) {
                Ok(()) => copied as i64,
                Err(_) => -errno::EFAULT,
            }
        }
    }
}

/// A driver domain's device call: only a domain with assigned functions
/// that the policy lets use devices; another gets `EPERM` (its first
/// refusal is logged, not every one: the log line goes out on the serial
/// port with interrupts off, and any domain could repeat the call at will).
fn device_op(hypervisor: &mut Hypervisor, caller: DomId, request: DeviceRequest) -> i64 {
    use crate::devices;
    if !devices::owns_devices(caller) {
        if let Some(mut domain) = hypervisor.lock_id(caller) {
            domain.device_calls_refused = domain.device_calls_refused.saturating_add(1);
            if domain.device_calls_refused == 1 {
                warn!("{caller}: device call refused: no device is assigned to it (further refusals are not logged)");
            }
        }
        return -errno::EPERM;
    }
    if let Err(code) = hypervisor.check(caller, caller, Class::Resource, xen_abi::policy::resource::USE) {
        return -code;
    }
    let result = match request {
        DeviceRequest::ConfigRead { bdf, offset, size } => devices::config_read(caller, bdf, offset, size).map(i64::from),
        DeviceRequest::ConfigWrite { bdf, offset, size, value } => devices::config_write(caller, bdf, offset, size, value).map(|()| 0),
        DeviceRequest::EndOfInterrupt { port } => devices::end_of_interrupt(caller, port).map(|()| 0),
        DeviceRequest::Info { buffer, index } => devices::describe(caller, index).and_then(|block| {
            let index = hypervisor.index_of(caller).ok_or(errno::ESRCH)?;
            let mut frames = FRAMES.lock();
            let mut machine = DirectMapMachine { frames: &mut frames };
            hypervisor.lock(index).write_guest(&mut machine, buffer, &block).map(|()| 0).map_err(|_| errno::EFAULT)
        }),
        DeviceRequest::BusAddress { pfn, count } => {
            let index = hypervisor.index_of(caller).ok_or(errno::ESRCH);
            index.and_then(|index| {
                let domain = hypervisor.lock(index);
                let frames = usize::try_from(pfn).ok().and_then(|first| domain.p2m.get(first..first.checked_add(count as usize)?));
                let frames = frames.ok_or(errno::EINVAL)?;
                let contiguous = frames.windows(2).all(|pair| pair[1].0 == pair[0].0 + 1);
                if !contiguous {
                    return Err(errno::EINVAL);
                }
                // Bus addresses are machine addresses until an IOMMU translates them.
                Ok(frames[0].address() as i64)
            })
        }
    };
    result.unwrap_or_else(|code| -code)
}

/// `xsm_op`: the security server's own operations.
fn xsm_op(hypervisor: &mut Hypervisor, caller: DomId, operation: u64, first: u64, second: u64) -> i64 {
    use xen_abi::hypercall::xsm;
    let server = hypervisor.security.as_ref().map(SecurityServer::security_server_id);
    match operation {
        xsm::GET_ENFORCE => match hypervisor.security.as_ref().map(SecurityServer::mode) {
            Some(Mode::Enforcing) => 1,
            Some(Mode::Permissive) => 0,
            None => -errno::ENOSYS,
        },
        xsm::SET_ENFORCE => {
            if let Err(code) = hypervisor.check_sid(caller, server, Class::Security, security_permission::SET_ENFORCE) {
                return -code;
            }
            let mode = match first {
                0 => Mode::Permissive,
                1 => Mode::Enforcing,
                _ => return -errno::EINVAL,
            };
            if let Some(security) = hypervisor.security.as_mut() {
                security.set_mode(mode);
            }
            warn!("xsm: {caller} set the policy {}", if first == 1 { "enforcing" } else { "permissive" });
            0
        }
        xsm::LOAD => {
            if let Err(code) = hypervisor.check_sid(caller, server, Class::Security, security_permission::LOAD_POLICY) {
                return -code;
            }
            if second == 0 || second > u64::from(xen_abi::bundle::MAX_POLICY_BYTES) {
                return -errno::E2BIG;
            }
            let mut bytes = alloc::vec![0u8; second as usize];
            let copied = match hypervisor.index_of(caller) {
                Some(index) => {
                    let mut frames = FRAMES.lock();
                    let machine = DirectMapMachine { frames: &mut frames };
                    hypervisor.lock(index).copy_from_guest(&machine, GuestAddress(first), &mut bytes).is_ok()
                }
                None => false,
            };
            if !copied {
                return -errno::EFAULT;
            }
            let loaded = hypervisor.security.as_mut().map(|security| security.load_policy(alloc::borrow::Cow::Owned(bytes)));
            // Every cached decision belongs to the old policy.
            hypervisor.avc = [None; AVC_ENTRIES];
            match loaded {
                Some(Ok(unknown)) => {
                    warn!("xsm: {caller} loaded a new policy ({second} bytes; {unknown} label(s) in use it does not declare)");
                    0
                }
                Some(Err(problem)) => {
                    warn!("xsm: {caller}'s policy refused: {problem}");
                    -errno::EINVAL
                }
                None => -errno::ENOSYS,
            }
        }
        _ => -errno::ENOSYS,
    }
}

/// A hypercall from the running domain; `frame` holds its registers.
pub fn on_hypercall(frame: &mut TrapFrame) -> bool {
    let mut guard = HYPERVISOR.lock();
    let Some(hypervisor) = guard.as_mut() else { cpu::exit(cpu::ExitCode::Failure) };
    let Some(caller) = hypervisor.current else { cpu::exit(cpu::ExitCode::Failure) };
    let testing = hypervisor.testing;
    let on_idle = hypervisor.on_idle;
    let Some(index) = hypervisor.index_of(caller) else { cpu::exit(cpu::ExitCode::Failure) };
    let number = frame.rax;
    let action = {
        let mut domain = hypervisor.lock(index);
        let mut frames = FRAMES.lock();
        let machine = DirectMapMachine { frames: &mut frames };
        let mut sink = |line: &[u8]| LOGGER.write_line(line);
        let mut context = Context { clock: clock::now_ns, testing, console_sink: &mut sink };
        hypercall::dispatch(&mut domain, &machine, frame, &mut context)
    };
    let first_output = number == xen_abi::hypercall::CONSOLE_IO && !hypervisor.lock(index).has_written;
    if first_output {
        let mut domain = hypervisor.lock(index);
        domain.has_written = true;
        let after_ns = clock::now_ns().saturating_sub(domain.created_ns);
        info!("{caller} ({}): first console output {after_ns} ns after its build began", domain.name);
    }
    let reschedule = match action {
        Action::Return(value) => {
            frame.rax = value as u64;
            false
        }
        Action::Yield => {
            frame.rax = 0;
            let _ = hypervisor.scheduler.yield_now(caller);
            true
        }
        Action::Block => {
            frame.rax = 0;
            // Xen's rule: block returns at once if an event is already waiting.
            if hypervisor.has_pending_event(caller) {
                false
            } else {
                let _ = hypervisor.scheduler.set_state(caller, RunState::Blocked);
                true
            }
        }
        Action::EventChannel(operation, address) => {
            frame.rax = hypervisor.event_channel_op(caller, operation, address) as u64;
            // A send may have woken a domain that should run first.
            true
        }
        Action::Xsm(operation, first, second) => {
            frame.rax = xsm_op(hypervisor, caller, operation, first, second) as u64;
            false
        }
        Action::Operator(request) => {
            frame.rax = operator_op(hypervisor, caller, request) as u64;
            false
        }
        Action::Device(request) => {
            frame.rax = device_op(hypervisor, caller, request) as u64;
            false
        }
        Action::GrantTable(operation, address, count) => match hypervisor.grant_table_op(caller, frame, operation, address, count) {
            Ok(value) => {
                frame.rax = value as u64;
                false
            }
            Err(()) => {
                let _ = hypervisor.scheduler.yield_now(caller);
                true
            }
        },
        Action::ClobberVectorState => {
            let mut domain = hypervisor.lock(index);
            fpu::save(&mut domain.vector_state);
            fpu::clobber();
            fpu::restore(&domain.vector_state);
            frame.rax = 0;
            false
        }
        Action::SetTimer(deadline) => {
            frame.rax = 0;
            let _ = hypervisor.scheduler.set_timer(caller, deadline);
            let (_, now) = clock::now_with_tsc();
            hypervisor.arm_timer(hypervisor.scheduler.wake_at(), now);
            false
        }
        Action::Shutdown(reason) => {
            {
                let domain = hypervisor.lock(index);
                info!("{} ({}): shutdown: {}", domain.id, domain.name, reason.name());
            }
            hypervisor.kill(caller, reason);
            true
        }
        Action::Domctl(command, address, mut block) => match run_domctl(hypervisor, caller, &command, &mut block) {
            DomctlResult::Done(value, write_back) => {
                if write_back {
                    let result = match hypervisor.index_of(caller) {
                        Some(index) => {
                            let mut frames = FRAMES.lock();
                            let mut machine = DirectMapMachine { frames: &mut frames };
                            hypervisor.lock(index).write_guest(&mut machine, address, &block[..])
                        }
                        None => Ok(()),
                    };
                    frame.rax = if result.is_ok() { value as u64 } else { (-errno::EFAULT) as u64 };
                } else {
                    frame.rax = value as u64;
                }
                // A create or unpause may have made a domain runnable.
                true
            }
            DomctlResult::Continue => {
                // Re-execute the `syscall` (2 bytes) with the same registers
                // once others have had the CPU.
                frame.rip -= 2;
                let _ = hypervisor.scheduler.yield_now(caller);
                true
            }
        },
    };
    let next = if reschedule {
        hypervisor.schedule(frame)
    } else {
        frame.rflags = hypercall::sanitize_rflags(frame.rflags);
        Next::Run(hypercall::may_sysret(frame, SYSCALL_VECTOR))
    };
    drop(guard);
    resume(next, frame, on_idle)
}

/// An interrupt or exception while a domain ran.
pub fn on_trap_from_domain(frame: &mut TrapFrame) -> bool {
    let vector = frame.vector;
    if vector == u64::from(apic::SPURIOUS_VECTOR) {
        return false;
    }
    if vector == 2 {
        warn!("nmi while a domain ran; carrying on");
        return false;
    }
    let device_vectors = u64::from(apic::DEVICE_VECTOR_BASE)..u64::from(apic::DEVICE_VECTOR_BASE) + 8;
    if vector == u64::from(apic::CHANNEL_VECTOR) {
        crate::operator_channel::on_interrupt();
    } else if device_vectors.contains(&vector) {
        crate::devices::on_interrupt(vector as u8);
    } else if vector >= 32 && vector != u64::from(apic::TIMER_VECTOR) {
        warn!("interrupt: unexpected vector {vector:#x} from a domain");
        apic::end_of_interrupt();
        return false;
    }
    let mut guard = HYPERVISOR.lock();
    let Some(hypervisor) = guard.as_mut() else { cpu::exit(cpu::ExitCode::Failure) };
    let on_idle = hypervisor.on_idle;
    if vector == u64::from(apic::TIMER_VECTOR) {
        apic::on_timer_interrupt();
    } else if vector == u64::from(apic::CHANNEL_VECTOR) || device_vectors.contains(&vector) {
        // Taken above; the scheduling pass below tells the domain concerned.
    } else if let Some(current) = hypervisor.current {
        if let Some(domain) = hypervisor.lock_id(current) {
            let mut subject: heapless::String<64> = heapless::String::new();
            let _ = write!(subject, "{} ({}) crashed", domain.id, domain.name);
            let mut text: heapless::String<2048> = heapless::String::new();
            let _ = write!(text, "{}", FatalReport { subject: &subject, frame, cr2: cpu::cr2() });
            for line in text.lines() {
                error!("{line}");
            }
        }
        hypervisor.kill(current, ShutdownReason::Crash);
    }
    let next = hypervisor.schedule(frame);
    drop(guard);
    resume(next, frame, on_idle)
}
