//! The control domain's scripts (`action=control script=NAME`) and the
//! non-control domain's `domctl-denied` check: domctl through the runtime's
//! wrappers, with the tiny kernels of `tiny.rs` as children. Every line
//! starts `control:` (or `domctl-denied:`) so tests can match on it.

use core::fmt;

use guest_runtime::domctl::{self, DomainInfo};
use guest_runtime::time::{sleep_ns, system_time_ns};
use guest_runtime::{Errno, ShutdownReason, StartInfo};
use log::{error, info, warn};
use xen_abi::errno::ESRCH;
use xen_abi::start_info::flags::CONTROL_DOMAIN;

use crate::action::number;
use crate::timing::NS_PER_MS;
use crate::tiny::{self, TINY_HELLO};

/// A control script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    /// Create a `tiny-spin` child, pause it, unpause it, inspect it,
    /// destroy it, check it is gone.
    Lifecycle,
    /// `count=` times: create `tiny`, destroy it.
    Cycles,
    /// Describe every domain.
    List,
    /// After `after_ms=`, destroy domain `target=` (which may have granted
    /// pages that others still map).
    Destroy,
}

/// Every script with its `script=` name.
pub const SCRIPTS: &[(Script, &str)] =
    &[(Script::Lifecycle, "lifecycle"), (Script::Cycles, "cycles"), (Script::List, "list"), (Script::Destroy, "destroy")];

impl Script {
    /// The script `name` names, or `None`.
    pub fn parse(name: &str) -> Option<Script> {
        SCRIPTS.iter().find(|entry| entry.1 == name).map(|entry| entry.0)
    }
}

/// The label children get unless `child_label=` says otherwise.
pub const DEFAULT_CHILD_LABEL: &str = "system_u:system_r:domU_t";
/// Children's RAM unless `child_kib=` says otherwise (4 MiB).
pub const DEFAULT_CHILD_KIB: u64 = 4096;

/// What a script needs from the command line.
struct Settings<'a> {
    label: &'a str,
    kib: u64,
}

/// A wrapper's result for the log: `ok`, `ok d<N>` or the errno.
pub struct Reported<'a, T>(pub &'a Result<T, Errno>);

impl fmt::Display for Reported<'_, ()> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(()) => f.write_str("ok"),
            Err(errno) => write!(f, "{errno}"),
        }
    }
}

impl fmt::Display for Reported<'_, u16> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(domain) => write!(f, "ok d{domain}"),
            Err(errno) => write!(f, "{errno}"),
        }
    }
}

/// `state=<hex> (<names>) pages=<n> cpu_ns=<n>`.
pub struct Described<'a>(pub &'a DomainInfo);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.0;
        write!(f, "state={:#x} ({}) pages={} cpu_ns={}", info.state.0, info.state, info.total_pages, info.cpu_time_ns)
    }
}

/// A failed step: already logged; the script stops.
struct Failed;

/// Logs `control: <what>: result: <errno>` for a failure.
fn step<T>(what: fmt::Arguments<'_>, result: Result<T, Errno>) -> Result<T, Failed> {
    result.map_err(|errno| {
        error!("control: {what}: result: {errno}");
        Failed
    })
}

fn nap(ms: u64) -> Result<(), Failed> {
    step(format_args!("sleep {ms} ms"), sleep_ns(ms * NS_PER_MS)).map(drop)
}

/// Sleeps `after_ms`, then destroys `target`.
fn destroy_later(target: u16, after_ms: u64) -> Result<(), Failed> {
    nap(after_ms)?;
    step(format_args!("destroy d{target}"), domctl::destroy_domain(target))?;
    info!("control: destroyed d{target}");
    Ok(())
}

/// Runs `script=` from the command line.
pub fn control(info: &StartInfo) -> ShutdownReason {
    let line = info.command_line();
    if info.flags & CONTROL_DOMAIN == 0 {
        warn!("control: this is not the control domain (flags {:#x}): expect EPERM", info.flags);
    }
    let Some(script) = guest_runtime::command_line::find(line, "script").and_then(Script::parse) else {
        error!("control: script= must be one of lifecycle, cycles, list, destroy");
        return ShutdownReason::Crash;
    };
    let settings = Settings {
        label: guest_runtime::command_line::find(line, "child_label").unwrap_or(DEFAULT_CHILD_LABEL),
        kib: match number(line, "child_kib", DEFAULT_CHILD_KIB, 1024, 1 << 20) {
            Ok(kib) => kib,
            Err(problem) => {
                error!("control: {problem}");
                return ShutdownReason::Crash;
            }
        },
    };
    let outcome = match script {
        Script::Lifecycle => match number(line, "tick_cycles", u64::from(tiny::DEFAULT_TICK_CYCLES), 1, i32::MAX as u64) {
            Ok(cycles) => lifecycle(&settings, cycles as u32),
            Err(problem) => {
                error!("control: {problem}");
                Err(Failed)
            }
        },
        Script::Cycles => match number(line, "count", 100, 1, 1_000_000) {
            Ok(count) => cycles(&settings, count),
            Err(problem) => {
                error!("control: {problem}");
                Err(Failed)
            }
        },
        Script::List => list(),
        Script::Destroy => match (number(line, "target", 0, 1, 0x7fef), number(line, "after_ms", 100, 0, 60_000)) {
            (Ok(target), Ok(after_ms)) => destroy_later(target as u16, after_ms),
            (Err(problem), _) | (_, Err(problem)) => {
                error!("control: {problem}");
                Err(Failed)
            }
        },
    };
    match outcome {
        Ok(()) => ShutdownReason::Poweroff,
        Err(Failed) => ShutdownReason::Crash,
    }
}

/// Creates a child from `image`; unpauses it if the hypervisor created it
/// paused (Xen's toolstack unpauses new domains itself).
fn create_child(settings: &Settings<'_>, image: &[u8], name: &str) -> Result<u16, Failed> {
    let id = step(format_args!("create {name}"), domctl::create_domain(image, settings.kib, name, settings.label, "", 0))?;
    if let Ok(found) = domctl::domain_info(id) {
        if found.state.paused() {
            info!("control: d{id} was created paused; unpausing it");
            step(format_args!("unpause new d{id}"), domctl::unpause_domain(id))?;
        }
    }
    Ok(id)
}

fn lifecycle(settings: &Settings<'_>, tick_cycles: u32) -> Result<(), Failed> {
    let image = tiny::spin_image(tick_cycles);
    let id = create_child(settings, image.as_bytes(), "child")?;
    info!("control: created d{id} (tiny-spin, {} KiB, label {})", settings.kib, settings.label);
    let result = lifecycle_of(id);
    if result.is_err() {
        // Leave nothing behind: the child would spin for ever.
        let _ = domctl::destroy_domain(id);
    }
    result
}

fn lifecycle_of(id: u16) -> Result<(), Failed> {
    nap(200)?;
    info!("control: pausing d{id}");
    step(format_args!("pause d{id}"), domctl::pause_domain(id))?;
    let paused = step(format_args!("getdomaininfo d{id}"), domctl::domain_info(id))?;
    info!("control: d{id} {}", Described(&paused));
    nap(300)?;
    let still_paused = step(format_args!("getdomaininfo d{id}"), domctl::domain_info(id))?;
    info!("control: d{id} ran {} ns while paused", still_paused.cpu_time_ns.saturating_sub(paused.cpu_time_ns));
    info!("control: unpausing d{id}");
    step(format_args!("unpause d{id}"), domctl::unpause_domain(id))?;
    nap(200)?;
    let running = step(format_args!("getdomaininfo d{id}"), domctl::domain_info(id))?;
    info!("control: d{id} {}", Described(&running));
    step(format_args!("destroy d{id}"), domctl::destroy_domain(id))?;
    info!("control: destroyed d{id}");
    match domctl::domain_info(id) {
        Err(errno) if errno.code() == ESRCH => {
            info!("control: getdomaininfo d{id} after destroy: result: ESRCH");
            Ok(())
        }
        Ok(found) => {
            error!("control: UNEXPECTED: d{id} still exists after destroy: {}", Described(&found));
            Err(Failed)
        }
        Err(errno) => {
            error!("control: getdomaininfo d{id} after destroy: result: {errno} (expected ESRCH)");
            Err(Failed)
        }
    }
}

fn cycles(settings: &Settings<'_>, count: u64) -> Result<(), Failed> {
    let start = system_time_ns();
    for cycle in 1..=count {
        let id = step(
            format_args!("cycle {cycle}: create tiny"),
            domctl::create_domain(TINY_HELLO.as_bytes(), settings.kib, "tiny", settings.label, "", 0),
        )?;
        match domctl::destroy_domain(id) {
            // It may have powered off and been reaped already.
            Err(errno) if errno.code() == ESRCH => {}
            result => step(format_args!("cycle {cycle}: destroy d{id}"), result)?,
        }
        if cycle % 10 == 0 {
            info!("control: cycle {cycle}");
        }
    }
    info!("control: {count} cycles done");
    info!("control: {} ms of system time", system_time_ns().saturating_sub(start) / NS_PER_MS);
    Ok(())
}

fn list() -> Result<(), Failed> {
    let mut count = 0;
    for found in domctl::list_domains() {
        let found = step(format_args!("getdomaininfo after {count} domains"), found)?;
        info!(
            "control: d{} name={} label={} weight={} flags={:#x} {}",
            found.domain,
            found.name(),
            found.seclabel(),
            found.weight,
            found.flags,
            Described(&found)
        );
        count += 1;
    }
    info!("control: {count} domains");
    Ok(())
}

/// `domctl-denied`: pause d1, create `tiny`, destroy d1, each of which the
/// hypervisor must refuse (`EPERM`) to a domain that is not the control
/// domain. Should one succeed, it is undone where possible and the domain
/// shuts down as crashed.
pub fn domctl_denied(info: &StartInfo) -> ShutdownReason {
    if info.flags & CONTROL_DOMAIN != 0 {
        warn!("domctl-denied: this IS the control domain: the calls may succeed");
    }
    let paused = domctl::pause_domain(1);
    info!("domctl-denied: pause d1: result: {}", Reported(&paused));
    if paused.is_ok() {
        let _ = domctl::unpause_domain(1);
    }
    let created = domctl::create_domain(TINY_HELLO.as_bytes(), DEFAULT_CHILD_KIB, "denied", DEFAULT_CHILD_LABEL, "", 0);
    info!("domctl-denied: create tiny: result: {}", Reported(&created));
    if let Ok(id) = created {
        let _ = domctl::destroy_domain(id);
    }
    let destroyed = domctl::destroy_domain(1);
    info!("domctl-denied: destroy d1: result: {}", Reported(&destroyed));
    if paused.is_ok() || created.is_ok() || destroyed.is_ok() {
        error!("domctl-denied: UNEXPECTED: domctl allowed to d{}, not the control domain", info.domid);
        return ShutdownReason::Crash;
    }
    ShutdownReason::Poweroff
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn scripts_by_name() {
        for &(script, name) in SCRIPTS {
            assert_eq!(Script::parse(name), Some(script));
        }
        assert_eq!(Script::parse("Lifecycle"), None);
        assert_eq!(Script::parse(""), None);
    }

    #[test]
    fn reports() {
        let errno = Errno::new(xen_abi::errno::EPERM);
        assert_eq!(Reported::<()>(&Ok(())).to_string(), "ok");
        assert_eq!(Reported::<()>(&Err(errno)).to_string(), "EPERM");
        assert_eq!(Reported::<u16>(&Ok(5)).to_string(), "ok d5");
        assert_eq!(Reported::<u16>(&Err(errno)).to_string(), "EPERM");
    }

    #[test]
    fn without_a_hypervisor_the_scripts_fail_cleanly() {
        // On the host every hypercall is ENOSYS.
        assert!(matches!(list(), Err(Failed)));
        let settings = Settings { label: DEFAULT_CHILD_LABEL, kib: DEFAULT_CHILD_KIB };
        assert!(matches!(cycles(&settings, 3), Err(Failed)));
        assert!(matches!(lifecycle(&settings, 100), Err(Failed)));
    }
}
