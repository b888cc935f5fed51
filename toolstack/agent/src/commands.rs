//! What each operator request does: name resolution, the domain lifecycle
//! through `domctl`, the policy through `xsm_op`, the machine's figures
//! through `sysctl`, and the store's listings. A refusal carries the errno
//! and, for a denial, the AVC line the hypervisor logged for it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use control_proto::{errno as wire_errno, BlockDevice, CreateSpec, DomainEntry, DomainRef, DomainState, ExitAction, HypervisorInfo, Request, Response};
use guest_runtime::domctl::{self, DomainInfo};
use guest_runtime::hypercall::Errno;
use guest_runtime::{operator, xsm};
use xen_abi::sched::ShutdownReason;

use crate::operator::mode_of;
use crate::service::Service;

/// A refused request: the errno the wire carries and what to tell the operator.
#[derive(Debug)]
pub struct Failure {
    /// Negative errno.
    pub errno: i32,
    /// The message.
    pub message: String,
}

impl Failure {
    /// A failure with this errno and message.
    pub fn new(errno: i32, message: String) -> Failure {
        Failure { errno, message }
    }

    /// A hypercall's failure while doing `what`; a denial quotes the AVC line.
    pub fn from_errno(errno: Errno, what: &str) -> Failure {
        let code = -(errno.code() as i32);
        let mut message = format!("{what}: {errno}");
        if code == wire_errno::EACCES || code == wire_errno::EPERM {
            if let Some(line) = last_denial() {
                message = format!("{what}: denied: {line}");
            }
        }
        Failure { errno: code, message }
    }
}

/// A domain created over the channel, kept for its `on_*` actions.
pub struct Created {
    /// Its id.
    pub domid: u16,
    /// How it was made.
    pub spec: CreateSpec,
    /// Its kernel, kept only if an action may rebuild it.
    pub image: Option<Vec<u8>>,
}

impl Created {
    /// Records a new domain; keeps the image if it may be restarted.
    pub fn new(domid: u16, spec: CreateSpec, image: Vec<u8>) -> Created {
        let restarts = [spec.on_crash, spec.on_poweroff, spec.on_reboot].contains(&ExitAction::Restart);
        Created { domid, spec, image: restarts.then_some(image) }
    }
}

/// The log's current end (where a console stream starts).
pub fn log_start() -> u64 {
    let mut nothing = [0u8; 0];
    operator::read_log(u64::MAX, &mut nothing).map_or(0, |(end, _)| end)
}

/// The last `avc:  denied` line among the log's newest bytes.
fn last_denial() -> Option<String> {
    let end = log_start();
    let mut buffer = [0u8; 4096];
    let (_, count) = operator::read_log(end.saturating_sub(buffer.len() as u64), &mut buffer).ok()?;
    let text = core::str::from_utf8(&buffer[..count]).ok()?;
    newest_denial(text).map(String::from)
}

/// The newest `avc:  denied` line the hypervisor itself logged in `text`:
/// one of its own lines (`(XEN) ...`), not a domain's console line
/// (`(dN) ...`), which a domain could write to look like a denial.
fn newest_denial(text: &str) -> Option<&str> {
    text.lines()
        .rev()
        .filter(|line| line.starts_with("(XEN) "))
        .find_map(|line| line.find("avc:  denied").map(|at| &line[at..]))
}

/// Finds a domain by id or name.
pub fn resolve(domain: &DomainRef) -> Result<DomainInfo, Failure> {
    let not_found = || Failure::new(wire_errno::ESRCH, format!("no domain {domain}"));
    match domain {
        DomainRef::Id(id) => {
            let id = u16::try_from(*id).map_err(|_| not_found())?;
            domctl::domain_info(id).map_err(|_| not_found())
        }
        DomainRef::Name(name) => domctl::list_domains().filter_map(Result::ok).find(|found| found.name() == name).ok_or_else(not_found),
    }
}

/// Refuses a name already taken (or empty, or too long).
pub fn check_new_name(name: &str) -> Result<(), Failure> {
    if name.is_empty() || name.len() >= domctl::NAME_BYTES || name.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(Failure::new(wire_errno::EINVAL, format!("'{name}' is not a usable name (1..{} bytes, not all digits)", domctl::NAME_BYTES)));
    }
    if domctl::list_domains().filter_map(Result::ok).any(|found| found.name() == name) {
        return Err(Failure::new(wire_errno::EEXIST, format!("a domain named '{name}' already exists")));
    }
    Ok(())
}

/// The wire's state flags for a domain.
fn state_of(found: &DomainInfo) -> DomainState {
    let mut flags = 0;
    if found.state.running() {
        flags |= DomainState::RUNNING;
    }
    if found.state.blocked() {
        flags |= DomainState::BLOCKED;
    }
    if found.state.paused() {
        flags |= DomainState::PAUSED;
    }
    if found.state.shutdown() {
        flags |= DomainState::SHUTDOWN;
        if found.shutdown_reason == ShutdownReason::Crash as u32 {
            flags |= DomainState::CRASHED;
        }
    }
    DomainState(flags)
}

/// Runs one of the single-answer requests.
pub fn run(service: &mut Service, request: Request) -> Result<Response, Failure> {
    match request {
        Request::List => {
            let mut entries = Vec::new();
            for found in domctl::list_domains() {
                let found = found.map_err(|errno| Failure::from_errno(errno, "list"))?;
                entries.push(DomainEntry {
                    id: u32::from(found.domain),
                    name: String::from(found.name()),
                    label: String::from(found.seclabel()),
                    memory_kib: found.total_pages * 4,
                    vcpus: 1,
                    state: state_of(&found),
                    cpu_time_ns: found.cpu_time_ns,
                });
            }
            Ok(Response::Domains(entries))
        }
        Request::Info => {
            let physical = operator::physinfo().map_err(|errno| Failure::from_errno(errno, "physinfo"))?;
            let (major, minor) = guest_runtime::xen_version().map_err(|errno| Failure::from_errno(errno, "version"))?;
            let enforcing = xsm::get_enforce().map_err(|errno| Failure::from_errno(errno, "getenforce"))?;
            Ok(Response::Info(HypervisorInfo {
                version: format!("xen-core {major}.{minor}"),
                total_memory_kib: physical.total_pages * 4,
                free_memory_kib: physical.free_pages * 4,
                domains: physical.domains,
                mode: mode_of(enforcing),
            }))
        }
        Request::Destroy { domain } => {
            let found = resolve(&domain)?;
            domctl::destroy_domain(found.domain).map_err(|errno| Failure::from_errno(errno, &format!("destroy {domain}")))?;
            service.release(found.domain);
            Ok(Response::Ok)
        }
        Request::Pause { domain } => {
            let found = resolve(&domain)?;
            domctl::pause_domain(found.domain).map_err(|errno| Failure::from_errno(errno, &format!("pause {domain}")))?;
            Ok(Response::Ok)
        }
        Request::Unpause { domain } => {
            let found = resolve(&domain)?;
            domctl::unpause_domain(found.domain).map_err(|errno| Failure::from_errno(errno, &format!("unpause {domain}")))?;
            Ok(Response::Ok)
        }
        Request::Shutdown { domain } => {
            // Xen asks a PV guest through the store (`control/shutdown`);
            // ours do not watch it, so the hypervisor shuts it down as a
            // poweroff and `on_poweroff` applies. The node is written too,
            // for guests that do.
            let found = resolve(&domain)?;
            let path = format!("/local/domain/{}/control/shutdown", found.domain);
            let _ = service.store.write(service.admin, 0, &path, b"poweroff");
            domctl::shutdown_domain(found.domain).map_err(|errno| Failure::from_errno(errno, &format!("shutdown {domain}")))?;
            Ok(Response::Ok)
        }
        Request::GetEnforce => {
            let enforcing = xsm::get_enforce().map_err(|errno| Failure::from_errno(errno, "getenforce"))?;
            Ok(Response::Enforce(mode_of(enforcing)))
        }
        Request::SetEnforce { mode } => {
            xsm::set_enforce(mode == control_proto::EnforceMode::Enforcing).map_err(|errno| Failure::from_errno(errno, "setenforce"))?;
            Ok(Response::Ok)
        }
        Request::BlockList { domain } => {
            let found = resolve(&domain)?;
            Ok(Response::Blocks(block_devices(service, found.domain)))
        }
        _ => Err(Failure::new(wire_errno::EINVAL, String::from("not a request that stands alone"))),
    }
}

/// Reads a store node as text, if it is there and is text.
fn read_text(service: &mut Service, path: &str) -> Option<String> {
    let value = service.store.read(service.admin, 0, path).ok()?;
    String::from_utf8(value).ok()
}

fn read_number(service: &mut Service, path: &str) -> u32 {
    read_text(service, path).and_then(|text| xenstore::checked::parse_u32(text.as_bytes()).ok()).unwrap_or(0)
}

/// A domain's `device/vbd/*` entries, read as data (the frontend wrote
/// some of them).
fn block_devices(service: &mut Service, domid: u16) -> Vec<BlockDevice> {
    let base = format!("/local/domain/{domid}/device/vbd");
    let names = service.store.directory(service.admin, 0, &base).unwrap_or_default();
    let mut devices = Vec::new();
    for name in names {
        let Ok(name) = String::from_utf8(name) else { continue };
        let Ok(vdev) = xenstore::checked::parse_u32(name.as_bytes()) else { continue };
        let path = format!("{base}/{name}");
        devices.push(BlockDevice {
            vdev,
            backend_id: read_number(service, &format!("{path}/backend-id")),
            handle: vdev,
            state: read_number(service, &format!("{path}/state")),
            event_channel: read_number(service, &format!("{path}/event-channel")),
            ring_ref: read_number(service, &format!("{path}/ring-ref")),
            backend_path: read_text(service, &format!("{path}/backend")).unwrap_or_default(),
        });
    }
    devices
}

/// The store below `path` in xenstore-ls's shape: one space of indent per
/// level, `name = "value"`, non-printing bytes escaped.
pub fn store_listing(service: &mut Service, path: &str) -> Result<String, Failure> {
    let root = if path.is_empty() { "/" } else { path };
    service
        .store
        .directory(service.admin, 0, root)
        .map_err(|error| Failure::new(wire_errno::ENOENT, format!("{root}: {}", error.name())))?;
    let mut out = String::new();
    let mut stack: Vec<(String, usize)> = Vec::new();
    let children = |service: &mut Service, at: &str| -> Vec<String> {
        let mut names: Vec<String> = service.store.directory(service.admin, 0, at).unwrap_or_default().into_iter().filter_map(|name| String::from_utf8(name).ok()).collect();
        names.sort();
        names
    };
    for name in children(service, root).into_iter().rev() {
        stack.push((join(root, &name), 0));
    }
    let mut nodes = 0;
    while let Some((node, depth)) = stack.pop() {
        nodes += 1;
        if nodes > 20_000 {
            out.push_str("... (listing cut at 20000 nodes)\n");
            break;
        }
        let value = service.store.read(service.admin, 0, &node).unwrap_or_default();
        let name = node.rsplit('/').next().unwrap_or("");
        let _ = write!(out, "{:depth$}{name} = \"", "");
        for &byte in &value {
            match byte {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                0x20..=0x7e => out.push(char::from(byte)),
                other => {
                    let _ = write!(out, "\\x{other:02x}");
                }
            }
        }
        out.push_str("\"\n");
        for child in children(service, &node).into_iter().rev() {
            stack.push((join(&node, &child), depth + 1));
        }
    }
    Ok(out)
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Loads a policy the operator uploaded.
pub fn load_policy(bytes: &[u8]) -> Result<(), Failure> {
    xsm::load_policy(bytes).map_err(|errno| Failure::from_errno(errno, "loadpolicy"))
}

/// Refuses, before its kernel is uploaded, a create the hypervisor would
/// refuse for its size or memory (an upload over the serial channel takes
/// minutes; the hypervisor's answer would be a bare errno).
pub fn check_create(spec: &CreateSpec) -> Result<(), Failure> {
    let most = xen_abi::bundle::MAX_KERNEL_BYTES;
    if spec.kernel_bytes == 0 || u64::from(spec.kernel_bytes) > most {
        return Err(Failure::new(wire_errno::EFBIG, format!("a kernel of {} bytes (1..={most})", spec.kernel_bytes)));
    }
    let (least_mib, most_mib) = (xen_abi::layout::MIN_RAM_BYTES >> 20, xen_abi::layout::MAX_RAM_BYTES >> 20);
    if !(least_mib..=most_mib).contains(&spec.memory_mib) {
        return Err(Failure::new(wire_errno::EINVAL, format!("memory {} MiB is not in range: expected {least_mib} to {most_mib} MiB", spec.memory_mib)));
    }
    check_new_name(&spec.name)
}

/// Builds a domain from an uploaded kernel and connects it to the store.
pub fn create(service: &mut Service, spec: &CreateSpec, image: &[u8]) -> Result<u16, Failure> {
    check_new_name(&spec.name)?;
    let Some(label) = spec.seclabel.as_deref() else {
        return Err(Failure::new(wire_errno::EINVAL, String::from("no seclabel: every domain needs a label for the policy")));
    };
    let memory_kib = spec.memory_mib.checked_mul(1024).ok_or_else(|| Failure::new(wire_errno::EINVAL, String::from("memory too large")))?;
    let domid = domctl::create_domain(image, memory_kib, &spec.name, label, &spec.command_line, spec.cpu_weight.unwrap_or(0))
        .map_err(|errno| Failure::from_errno(errno, &format!("create {}", spec.name)))?;
    if let Err(why) = service.introduce(domid, &spec.name) {
        log::warn!("store: new domain {domid} not served: {why}");
    }
    Ok(domid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_is_quoted_only_from_the_hypervisors_own_lines() {
        let log = "(XEN) [    1.000000] W avc:  denied  { create } for domid=0 scontext=a tcontext=b tclass=domain\n\
                   (d3) avc:  denied  { nothing } forged by a guest\n\
                   (d3) (XEN) [    2.000000] W avc:  denied  { forged } too\n";
        assert_eq!(newest_denial(log), Some("avc:  denied  { create } for domid=0 scontext=a tcontext=b tclass=domain"));
        assert_eq!(newest_denial("(d3) avc:  denied  { nothing }\n"), None);
    }

    fn spec(kernel_bytes: u32, memory_mib: u64) -> CreateSpec {
        CreateSpec {
            name: String::from("guest"),
            memory_mib,
            seclabel: Some(String::from("guest_t")),
            command_line: String::new(),
            cpu_weight: None,
            on_crash: ExitAction::Destroy,
            on_poweroff: ExitAction::Destroy,
            on_reboot: ExitAction::Destroy,
            kernel_bytes,
            kernel_sha256: [0; 32],
        }
    }

    #[test]
    fn a_create_the_hypervisor_would_refuse_is_refused_before_the_upload() {
        let refused = |spec: &CreateSpec| check_create(spec).err().map(|failure| (failure.errno, failure.message));
        let most = xen_abi::bundle::MAX_KERNEL_BYTES as u32;
        assert_eq!(refused(&spec(most + 1, 8)), Some((wire_errno::EFBIG, format!("a kernel of {} bytes (1..={most})", most + 1))));
        assert_eq!(refused(&spec(0, 8)).map(|(errno, _)| errno), Some(wire_errno::EFBIG));
        for memory in [0, 1025, u64::MAX] {
            assert_eq!(refused(&spec(4096, memory)).map(|(errno, _)| errno), Some(wire_errno::EINVAL), "{memory}");
        }
    }
}
