//! The running domains: building them from the boot bundle, serving their
//! hypercalls and traps, switching between them, and tearing them down with
//! every frame and heap byte accounted for. Safe code over the arch layer.

use alloc::boxed::Box;
use core::fmt::Write;

use log::{error, info, warn};
use xen_abi::sched::ShutdownReason;
use xen_abi::DomId;
use xen_core::bundle;
use xen_core::cmdline::IdleAction;
use xen_core::domain::{Domain, DomainSpec, DomainState, HypervisorMapping};
use xen_core::hypercall::{self, Action, Context};
use xen_core::layout::KERNEL_VMA;
use xen_core::page_table::{flags, PAGE_4K};
use xen_core::trap::{FatalReport, TrapFrame};

use crate::arch::entry::SYSCALL_VECTOR;
use crate::arch::machine::DirectMapMachine;
use crate::arch::{apic, cpu, entry, fpu, percpu};
use crate::clock;
use crate::start::{FRAMES, LOGGER};

/// Most domains at once.
pub const MAX_DOMAINS: usize = 16;

/// Everything the hypervisor knows about its domains.
struct Hypervisor {
    domains: heapless::Vec<Box<Domain>, MAX_DOMAINS>,
    /// Index into `domains` of the one running (or last run).
    current: Option<usize>,
    testing: bool,
    on_idle: IdleAction,
    /// Free frames and heap bytes before the first domain was built.
    baseline: (u64, usize),
    mappings: heapless::Vec<HypervisorMapping, 64>,
    next_id: u16,
}

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

/// Builds the boot-time domains from the bundle and runs the first. Returns
/// only if there is nothing to run.
pub fn start(bundle_bytes: Option<&'static [u8]>, testing: bool, on_idle: IdleAction) {
    let mappings = hypervisor_mappings();
    let baseline = (FRAMES.lock().counts().free, heap_in_use());
    *HYPERVISOR.lock() = Some(Hypervisor {
        domains: heapless::Vec::new(),
        current: None,
        testing,
        on_idle,
        baseline,
        mappings,
        next_id: 1,
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
        let id = DomId(hypervisor.next_id);
        let built = {
            let mut frames = FRAMES.lock();
            let mut machine = DirectMapMachine { frames: &mut frames };
            Domain::build(&mut machine, id, &spec, record.kernel, &hypervisor.mappings, clock::now_ns())
        };
        match built {
            Ok(domain) => {
                info!(
                    "{id} ({}): built: {} pages at {:#x}, {} page-table frames, entry {:#x}, label {}",
                    domain.name,
                    domain.nr_pages(),
                    xen_abi::layout::RAM_BASE,
                    domain.space.table_frames,
                    domain.registers.rip,
                    domain.seclabel
                );
                hypervisor.next_id += 1;
                if hypervisor.domains.push(domain).is_err() {
                    error!("domains: more than {MAX_DOMAINS}");
                }
            }
            Err(problem) => {
                error!("{id} ({}): not built: {problem}; tearing down the domains built so far", record.name);
                while let Some(domain) = hypervisor.domains.pop() {
                    destroy(domain);
                }
                report_health(hypervisor);
                return;
            }
        }
    }
    let Some(first) = next_runnable(hypervisor, None) else { return };
    hypervisor.current = Some(first);
    let domain = &hypervisor.domains[first];
    percpu::set_guest_cr3(domain.space.root.address());
    fpu::restore(&domain.vector_state);
    let registers = domain.registers;
    info!("{} ({}): running", domain.id, domain.name);
    drop(guard);
    entry::run_domain_first(&registers)
}

/// The next runnable domain after `after`, round-robin.
fn next_runnable(hypervisor: &Hypervisor, after: Option<usize>) -> Option<usize> {
    let count = hypervisor.domains.len();
    let start = after.map_or(0, |index| index + 1);
    (0..count).map(|step| (start + step) % count).find(|&index| hypervisor.domains[index].state == DomainState::Runnable)
}

fn destroy(domain: Box<Domain>) {
    let (id, name) = (domain.id, domain.name.clone());
    let mut domain = domain;
    if domain.console.has_partial_line() {
        domain.console.flush(&mut |line| LOGGER.write_line(line));
    }
    let teardown = {
        let mut frames = FRAMES.lock();
        let mut machine = DirectMapMachine { frames: &mut frames };
        domain.destroy(&mut machine)
    };
    info!(
        "{id} ({name}): torn down: {} RAM frames and {} page-table frames scrubbed and freed",
        teardown.ram_frames, teardown.table_frames
    );
}

fn report_health(hypervisor: &Hypervisor) {
    let free = FRAMES.lock().counts().free;
    let heap = heap_in_use();
    let (baseline_free, baseline_heap) = hypervisor.baseline;
    if hypervisor.domains.is_empty() {
        let verdict = if free == baseline_free && heap == baseline_heap { "ok" } else { "LEAK" };
        info!(
            "health: no domains left; frames free {free} (baseline {baseline_free}), heap {heap} bytes in use (baseline {baseline_heap}): {verdict}"
        );
    } else {
        info!("health: hypervisor ok; {} domain(s) left; frames free {free}, heap {heap} bytes", hypervisor.domains.len());
    }
}

/// Makes `frame` (the interrupted domain's registers, on the entry stack)
/// hold the next domain to run. Returns whether `sysret` may be used, or
/// `None` when no domain is left to run (the caller releases its locks and
/// goes idle).
fn schedule(hypervisor: &mut Hypervisor, frame: &mut TrapFrame, keep_current: bool) -> Option<bool> {
    let current = hypervisor.current;
    if keep_current {
        frame.rflags = hypercall::sanitize_rflags(frame.rflags);
        return Some(hypercall::may_sysret(frame, SYSCALL_VECTOR));
    }
    if let Some(index) = current {
        if let Some(domain) = hypervisor.domains.get_mut(index) {
            domain.registers = *frame;
            fpu::save(&mut domain.vector_state);
        }
    }
    // Tear down whoever is dying.
    let mut index = 0;
    while index < hypervisor.domains.len() {
        if matches!(hypervisor.domains[index].state, DomainState::Dying(_)) {
            let domain = hypervisor.domains.remove(index);
            destroy(domain);
            report_health(hypervisor);
            if let Some(current) = hypervisor.current {
                if current >= index {
                    hypervisor.current = current.checked_sub(1);
                }
            }
        } else {
            index += 1;
        }
    }
    match next_runnable(hypervisor, hypervisor.current) {
        Some(next) => {
            hypervisor.current = Some(next);
            let domain = &hypervisor.domains[next];
            *frame = domain.registers;
            frame.rflags = hypercall::sanitize_rflags(frame.rflags);
            fpu::restore(&domain.vector_state);
            percpu::set_guest_cr3(domain.space.root.address());
            Some(hypercall::may_sysret(frame, SYSCALL_VECTOR))
        }
        None => {
            hypervisor.current = None;
            info!("domains: none runnable; idle");
            None
        }
    }
}

/// Leaves the hypervisor for the domain in `frame`, or idles for good.
fn resume_or_idle(decision: Option<bool>, on_idle: IdleAction) -> bool {
    match decision {
        Some(sysret) => sysret,
        None => crate::start::idle_forever(on_idle),
    }
}

/// A hypercall from the running domain; `frame` holds its registers.
pub fn on_hypercall(frame: &mut TrapFrame) -> bool {
    let mut guard = HYPERVISOR.lock();
    let Some(hypervisor) = guard.as_mut() else { cpu::exit(cpu::ExitCode::Failure) };
    let Some(index) = hypervisor.current else { cpu::exit(cpu::ExitCode::Failure) };
    let testing = hypervisor.testing;
    let action = {
        let domain = &mut hypervisor.domains[index];
        let mut frames = FRAMES.lock();
        let machine = DirectMapMachine { frames: &mut frames };
        let mut sink = |line: &[u8]| LOGGER.write_line(line);
        let mut context = Context { now_ns: clock::now_ns(), testing, console_sink: &mut sink };
        hypercall::dispatch(domain, &machine, frame, &mut context)
    };
    let keep = match action {
        Action::Return(value) => {
            frame.rax = value as u64;
            true
        }
        Action::Yield | Action::Block => {
            frame.rax = 0;
            false
        }
        Action::ClobberVectorState => {
            let domain = &mut hypervisor.domains[index];
            fpu::save(&mut domain.vector_state);
            fpu::clobber();
            fpu::restore(&domain.vector_state);
            frame.rax = 0;
            true
        }
        Action::Shutdown(reason) => {
            let domain = &mut hypervisor.domains[index];
            info!("{} ({}): shutdown: {}", domain.id, domain.name, reason.name());
            domain.state = DomainState::Dying(reason);
            false
        }
    };
    let on_idle = hypervisor.on_idle;
    let decision = schedule(hypervisor, frame, keep);
    drop(guard);
    resume_or_idle(decision, on_idle)
}

/// An interrupt or exception while a domain ran.
pub fn on_trap_from_domain(frame: &mut TrapFrame) -> bool {
    let vector = frame.vector;
    if vector == u64::from(apic::TIMER_VECTOR) {
        apic::on_timer_interrupt();
        return false;
    }
    if vector == u64::from(apic::SPURIOUS_VECTOR) {
        return false;
    }
    if vector == 2 {
        warn!("nmi while a domain ran; carrying on");
        return false;
    }
    if vector >= 32 {
        warn!("interrupt: unexpected vector {vector:#x} from a domain");
        apic::end_of_interrupt();
        return false;
    }
    let mut guard = HYPERVISOR.lock();
    let Some(hypervisor) = guard.as_mut() else { cpu::exit(cpu::ExitCode::Failure) };
    let Some(index) = hypervisor.current else { cpu::exit(cpu::ExitCode::Failure) };
    let domain = &mut hypervisor.domains[index];
    let mut subject: heapless::String<64> = heapless::String::new();
    let _ = write!(subject, "{} ({}) crashed", domain.id, domain.name);
    let mut text: heapless::String<2048> = heapless::String::new();
    let _ = write!(text, "{}", FatalReport { subject: &subject, frame, cr2: cpu::cr2() });
    for line in text.lines() {
        error!("{line}");
    }
    domain.state = DomainState::Dying(ShutdownReason::Crash);
    let on_idle = hypervisor.on_idle;
    let decision = schedule(hypervisor, frame, false);
    drop(guard);
    resume_or_idle(decision, on_idle)
}
