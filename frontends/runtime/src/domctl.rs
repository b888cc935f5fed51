//! `domctl` (36): the control domain's operations on other domains, as safe
//! wrappers: create, destroy, pause, unpause, get information, list. The
//! hypervisor refuses them (`EPERM`) to any domain but the control domain
//! (start-info flag `CONTROL_DOMAIN`).
//!
//! Every call passes the address of a [`domctl::SIZE`](SIZE)-byte block
//! (layout in `xen_abi::domctl`) that lives on our stack for the call; the
//! hypervisor reads it and writes it back, and only *reads* the kernel
//! image and command line it names. Encoding and decoding the block are
//! plain functions, tested on the host.

use core::fmt;

use xen_abi::bundle::{domain_flags, MAX_KERNEL_BYTES};
use xen_abi::domctl::{self, create, header, info, state, INTERFACE_VERSION, SIZE};
use xen_abi::errno::{E2BIG, EAGAIN, EINVAL, ESRCH};
use xen_abi::start_info::fill_text;

use crate::hypercall::{check, sched_yield, Errno};
use crate::machine;

/// A `domctl` argument block.
pub type Block = [u8; SIZE];

/// Bytes of a domain name, with its NUL.
pub const NAME_BYTES: usize = 32;
/// Bytes of a security label, with its NUL.
pub const SECLABEL_BYTES: usize = 64;
/// The longest command line a new domain may get.
pub const MAX_COMMAND_LINE_BYTES: usize = 1023;

use xen_abi::bytes::{put, u16_or_zero as get_u16, u32_or_zero as get_u32, u64_or_zero as get_u64};

fn get<const N: usize>(block: &Block, at: usize) -> [u8; N] {
    xen_abi::bytes::field(block, at).unwrap_or([0; N])
}

/// A block with the header filled: `cmd`, the interface version, `domain`.
pub fn encode_header(command: u32, domain: u16) -> Block {
    let mut block = [0u8; SIZE];
    put(&mut block, header::CMD, &command.to_le_bytes());
    put(&mut block, header::INTERFACE_VERSION, &INTERFACE_VERSION.to_le_bytes());
    put(&mut block, header::DOMAIN, &domain.to_le_bytes());
    block
}

/// The `domain` field of a block (the new id after a create).
pub fn decoded_domain(block: &Block) -> u16 {
    get_u16(block, header::DOMAIN)
}

/// What [`encode_create`] puts in a [`domctl::CREATE_DOMAIN`] block, with
/// the image and command line as guest addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateRequest<'a> {
    /// Guest address of the ELF image.
    pub image_address: u64,
    /// Its length in bytes.
    pub image_length: u64,
    /// RAM of the new domain in KiB.
    pub memory_kib: u64,
    /// `xen_abi::bundle::domain_flags` (the hypervisor refuses CONTROL).
    pub flags: u32,
    /// Scheduler weight (0: the default, 256).
    pub weight: u32,
    /// Guest address of the command line (0 with length 0: none).
    pub command_line_address: u64,
    /// Its length in bytes.
    pub command_line_length: u32,
    /// The name (at most 31 bytes).
    pub name: &'a str,
    /// The security label (at most 63 bytes).
    pub seclabel: &'a str,
}

/// Encodes a [`domctl::CREATE_DOMAIN`] block, refusing locally what the
/// hypervisor would refuse anyway: a name or label that does not fit with
/// its NUL, a command line over [`MAX_COMMAND_LINE_BYTES`], an empty image
/// or one over `MAX_KERNEL_BYTES` (`E2BIG`), unknown flags or a weight over
/// `MAX_WEIGHT` (`EINVAL`).
pub fn encode_create(request: &CreateRequest<'_>) -> Result<Block, Errno> {
    if request.name.len() >= NAME_BYTES || request.seclabel.len() >= SECLABEL_BYTES {
        return Err(Errno::new(EINVAL));
    }
    if request.command_line_length as usize > MAX_COMMAND_LINE_BYTES || request.image_length > MAX_KERNEL_BYTES {
        return Err(Errno::new(E2BIG));
    }
    if request.image_length == 0 || request.flags & !domain_flags::ALL != 0 || request.weight > domctl::MAX_WEIGHT {
        return Err(Errno::new(EINVAL));
    }
    let mut block = encode_header(domctl::CREATE_DOMAIN, 0);
    put(&mut block, create::IMAGE_ADDRESS, &request.image_address.to_le_bytes());
    put(&mut block, create::IMAGE_LENGTH, &request.image_length.to_le_bytes());
    put(&mut block, create::MEMORY_KIB, &request.memory_kib.to_le_bytes());
    put(&mut block, create::FLAGS, &request.flags.to_le_bytes());
    put(&mut block, create::WEIGHT, &request.weight.to_le_bytes());
    put(&mut block, create::COMMAND_LINE_ADDRESS, &request.command_line_address.to_le_bytes());
    put(&mut block, create::COMMAND_LINE_LENGTH, &request.command_line_length.to_le_bytes());
    put(&mut block, create::NAME, &fill_text::<NAME_BYTES>(request.name));
    put(&mut block, create::SECLABEL, &fill_text::<SECLABEL_BYTES>(request.seclabel));
    Ok(block)
}

/// The state bits of a domain (`xen_abi::domctl::state`); `Display` names
/// them: `running`, `blocked+paused`, `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainState(pub u32);

impl DomainState {
    /// Runnable or running.
    pub fn running(self) -> bool {
        self.0 & state::RUNNING != 0
    }
    /// Blocked in `sched_op(block)`.
    pub fn blocked(self) -> bool {
        self.0 & state::BLOCKED != 0
    }
    /// Paused by the control domain.
    pub fn paused(self) -> bool {
        self.0 & state::PAUSED != 0
    }
    /// Shut down.
    pub fn shutdown(self) -> bool {
        self.0 & state::SHUTDOWN != 0
    }
}

impl fmt::Display for DomainState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 4] =
            [(state::RUNNING, "running"), (state::BLOCKED, "blocked"), (state::PAUSED, "paused"), (state::SHUTDOWN, "shutdown")];
        let mut first = true;
        for (bit, name) in NAMES {
            if self.0 & bit != 0 {
                if !core::mem::take(&mut first) {
                    f.write_str("+")?;
                }
                f.write_str(name)?;
            }
        }
        let unknown = self.0 & !(state::RUNNING | state::BLOCKED | state::PAUSED | state::SHUTDOWN);
        if unknown != 0 {
            if !core::mem::take(&mut first) {
                f.write_str("+")?;
            }
            write!(f, "{unknown:#x}")?;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// What [`domctl::GET_DOMAIN_INFO`] reports about a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainInfo {
    /// The domain described.
    pub domain: u16,
    /// Its state bits.
    pub state: DomainState,
    /// Pages of RAM it holds.
    pub total_pages: u64,
    /// Nanoseconds it has run.
    pub cpu_time_ns: u64,
    /// Why it shut down (valid with the `shutdown` state bit).
    pub shutdown_reason: u32,
    /// Scheduler weight.
    pub weight: u32,
    /// `xen_abi::bundle::domain_flags`.
    pub flags: u32,
    /// Name, NUL-padded.
    pub name: [u8; NAME_BYTES],
    /// Security label, NUL-padded.
    pub seclabel: [u8; SECLABEL_BYTES],
}

fn text(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&byte| byte == 0).unwrap_or(bytes.len());
    core::str::from_utf8(&bytes[..end]).unwrap_or("?")
}

impl DomainInfo {
    /// Decodes the payload of a block the hypervisor filled.
    pub fn decode(block: &Block) -> DomainInfo {
        DomainInfo {
            domain: get_u16(block, info::DOMAIN),
            state: DomainState(get_u32(block, info::STATE)),
            total_pages: get_u64(block, info::TOTAL_PAGES),
            cpu_time_ns: get_u64(block, info::CPU_TIME_NS),
            shutdown_reason: get_u32(block, info::SHUTDOWN_REASON),
            weight: get_u32(block, info::WEIGHT),
            flags: get_u32(block, info::FLAGS),
            name: get(block, info::NAME),
            seclabel: get(block, info::SECLABEL),
        }
    }

    /// The name as text (`?` if not UTF-8).
    pub fn name(&self) -> &str {
        text(&self.name)
    }

    /// The label as text (`?` if not UTF-8).
    pub fn seclabel(&self) -> &str {
        text(&self.seclabel)
    }
}

/// Makes the `domctl` hypercall with `block`, which the hypervisor reads
/// and writes back.
fn call(block: &mut Block) -> Result<u64, Errno> {
    // The hypervisor writes only `block`, which we hold exclusively for
    // the call, and reads the image and command line a create block names.
    check(machine::domctl(block))
}

/// `XEN_DOMCTL_createdomain`: builds a domain from the ELF `image` with
/// `memory_kib` KiB of RAM, `name`, `seclabel`, `command_line` and
/// scheduler `weight` (0: the default). Returns the new domain's id.
pub fn create_domain(image: &[u8], memory_kib: u64, name: &str, seclabel: &str, command_line: &str, weight: u32) -> Result<u16, Errno> {
    let command_line_length = u32::try_from(command_line.len()).map_err(|_| Errno::new(E2BIG))?;
    let mut block = encode_create(&CreateRequest {
        image_address: image.as_ptr() as u64,
        image_length: image.len() as u64,
        memory_kib,
        flags: 0,
        weight,
        command_line_address: if command_line.is_empty() { 0 } else { command_line.as_ptr() as u64 },
        command_line_length,
        name,
        seclabel,
    })?;
    call(&mut block)?;
    Ok(decoded_domain(&block))
}

/// How often [`destroy_domain`] retries while the hypervisor answers
/// `EAGAIN` (teardown still in progress).
pub const DESTROY_RETRIES: u32 = 1000;

/// `XEN_DOMCTL_destroydomain`: tears `domain` down. Retries (yielding in
/// between) while the hypervisor answers `EAGAIN`, like Xen's toolstack.
pub fn destroy_domain(domain: u16) -> Result<(), Errno> {
    let mut tries = 0;
    loop {
        let mut block = encode_header(domctl::DESTROY_DOMAIN, domain);
        match call(&mut block) {
            Err(errno) if errno.code() == EAGAIN && tries < DESTROY_RETRIES => {
                tries += 1;
                let _ = sched_yield();
            }
            result => return result.map(drop),
        }
    }
}

/// `XEN_DOMCTL_pausedomain`: stops `domain` from being scheduled.
pub fn pause_domain(domain: u16) -> Result<(), Errno> {
    call(&mut encode_header(domctl::PAUSE_DOMAIN, domain)).map(drop)
}

/// Ours (`SHUTDOWN_DOMAIN`): shuts `domain` down as a poweroff.
pub fn shutdown_domain(domain: u16) -> Result<(), Errno> {
    call(&mut encode_header(domctl::SHUTDOWN_DOMAIN, domain)).map(drop)
}

/// `XEN_DOMCTL_unpausedomain`: lets a paused `domain` run again.
pub fn unpause_domain(domain: u16) -> Result<(), Errno> {
    call(&mut encode_header(domctl::UNPAUSE_DOMAIN, domain)).map(drop)
}

/// `XEN_DOMCTL_getdomaininfo` for the first domain with an id at or above
/// `domain` (how [`list_domains`] walks them).
pub fn first_domain_from(domain: u16) -> Result<DomainInfo, Errno> {
    let mut block = encode_header(domctl::GET_DOMAIN_INFO, domain);
    call(&mut block)?;
    Ok(DomainInfo::decode(&block))
}

/// `XEN_DOMCTL_getdomaininfo` for exactly `domain`: `ESRCH` if it does not
/// exist (the hypervisor may describe a later domain instead; that counts
/// as not found).
pub fn domain_info(domain: u16) -> Result<DomainInfo, Errno> {
    let found = first_domain_from(domain)?;
    if found.domain != domain {
        return Err(Errno::new(ESRCH));
    }
    Ok(found)
}

/// Every domain in ascending id order (see [`list_domains`]).
#[derive(Clone, Debug)]
pub struct Domains {
    next: Option<u16>,
}

impl Iterator for Domains {
    type Item = Result<DomainInfo, Errno>;

    /// The next domain; ends at `ESRCH` (no domain at or above the next
    /// id). Another error is returned once, then the walk ends; so does a
    /// hypervisor answer that does not advance.
    fn next(&mut self) -> Option<Self::Item> {
        let from = self.next?;
        match first_domain_from(from) {
            Ok(found) if found.domain >= from && xen_abi::DomId(found.domain).is_domain() => {
                self.next = found.domain.checked_add(1);
                Some(Ok(found))
            }
            Ok(_) => {
                self.next = None;
                None
            }
            Err(errno) => {
                self.next = None;
                (errno.code() != ESRCH).then_some(Err(errno))
            }
        }
    }
}

/// Lists every domain: `getdomaininfo` from id 0 upwards, each answer's id
/// plus one being the next question.
pub fn list_domains() -> Domains {
    Domains { next: Some(0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::with_domctl_responder;
    use xen_abi::errno::{ENOSYS, EPERM};

    #[test]
    fn create_block_layout() {
        let request = CreateRequest {
            image_address: 0x4020_0000,
            image_length: 183,
            memory_kib: 4096,
            flags: 0,
            weight: 512,
            command_line_address: 0x4030_0000,
            command_line_length: 12,
            name: "child",
            seclabel: "system_u:system_r:domU_t",
        };
        let block = encode_create(&request).unwrap();
        assert_eq!(get_u32(&block, header::CMD), domctl::CREATE_DOMAIN);
        assert_eq!(get_u32(&block, header::INTERFACE_VERSION), INTERFACE_VERSION);
        assert_eq!(get_u64(&block, create::IMAGE_ADDRESS), 0x4020_0000);
        assert_eq!(get_u64(&block, create::IMAGE_LENGTH), 183);
        assert_eq!(get_u64(&block, create::MEMORY_KIB), 4096);
        assert_eq!(get_u32(&block, create::WEIGHT), 512);
        assert_eq!(get_u64(&block, create::COMMAND_LINE_ADDRESS), 0x4030_0000);
        assert_eq!(get_u32(&block, create::COMMAND_LINE_LENGTH), 12);
        assert_eq!(&block[create::NAME..create::NAME + 6], b"child\0");
        assert_eq!(text(&block[create::SECLABEL..create::SECLABEL + 64]), "system_u:system_r:domU_t");
        assert!(block[create::SECLABEL + 64..].iter().all(|&byte| byte == 0));

        let refused = |change: fn(&mut CreateRequest<'_>)| {
            let mut bad = request;
            change(&mut bad);
            encode_create(&bad).unwrap_err().code()
        };
        assert_eq!(refused(|r| r.name = "a-name-of-thirty-two-bytes-long!"), EINVAL);
        assert_eq!(refused(|r| r.image_length = 0), EINVAL);
        assert_eq!(refused(|r| r.image_length = MAX_KERNEL_BYTES + 1), E2BIG);
        assert_eq!(refused(|r| r.command_line_length = 1024), E2BIG);
        assert_eq!(refused(|r| r.flags = 1 << 7), EINVAL);
        assert_eq!(refused(|r| r.weight = domctl::MAX_WEIGHT + 1), EINVAL);
        let mut fits = request;
        fits.name = "a-name-of-thirty-one-bytes-long";
        assert!(encode_create(&fits).is_ok());
    }

    fn filled_info(domain: u16) -> Block {
        let mut block = encode_header(domctl::GET_DOMAIN_INFO, domain);
        put(&mut block, info::DOMAIN, &domain.to_le_bytes());
        put(&mut block, info::STATE, &(state::RUNNING | state::PAUSED).to_le_bytes());
        put(&mut block, info::TOTAL_PAGES, &1024u64.to_le_bytes());
        put(&mut block, info::CPU_TIME_NS, &5_000_000u64.to_le_bytes());
        put(&mut block, info::SHUTDOWN_REASON, &3u32.to_le_bytes());
        put(&mut block, info::WEIGHT, &256u32.to_le_bytes());
        put(&mut block, info::FLAGS, &domain_flags::DRIVER.to_le_bytes());
        put(&mut block, info::NAME, &fill_text::<32>("child"));
        put(&mut block, info::SECLABEL, &fill_text::<64>("system_u:system_r:domU_t"));
        block
    }

    #[test]
    fn info_decoding() {
        let decoded = DomainInfo::decode(&filled_info(7));
        assert_eq!(decoded.domain, 7);
        assert!(decoded.state.running() && decoded.state.paused());
        assert!(!decoded.state.blocked() && !decoded.state.shutdown());
        assert_eq!(decoded.total_pages, 1024);
        assert_eq!(decoded.cpu_time_ns, 5_000_000);
        assert_eq!(decoded.shutdown_reason, 3);
        assert_eq!(decoded.weight, 256);
        assert_eq!(decoded.flags, domain_flags::DRIVER);
        assert_eq!(decoded.name(), "child");
        assert_eq!(decoded.seclabel(), "system_u:system_r:domU_t");
    }

    #[test]
    fn state_names() {
        assert_eq!(std::format!("{}", DomainState(state::RUNNING)), "running");
        assert_eq!(std::format!("{}", DomainState(state::BLOCKED | state::PAUSED)), "blocked+paused");
        assert_eq!(std::format!("{}", DomainState(0)), "none");
        assert_eq!(std::format!("{}", DomainState(state::SHUTDOWN | 1 << 9)), "shutdown+0x200");
    }

    /// The hypervisor under test: domains 0, 2 and 5 exist; a created
    /// domain gets id 9; anything else succeeds.
    fn hypervisor(block: &mut Block) -> i64 {
        let command = get_u32(block, header::CMD);
        let domain = get_u16(block, header::DOMAIN);
        assert_eq!(get_u32(block, header::INTERFACE_VERSION), INTERFACE_VERSION);
        match command {
            domctl::GET_DOMAIN_INFO => match [0u16, 2, 5].into_iter().find(|&id| id >= domain) {
                Some(found) => {
                    *block = filled_info(found);
                    0
                }
                None => -ESRCH,
            },
            domctl::CREATE_DOMAIN => {
                assert_eq!(get_u64(block, create::IMAGE_LENGTH), 4);
                assert_eq!(get_u32(block, create::COMMAND_LINE_LENGTH), 3);
                put(block, header::DOMAIN, &9u16.to_le_bytes());
                0
            }
            _ => 0,
        }
    }

    #[test]
    fn wrappers_talk_to_the_hypervisor() {
        let (listed, calls) = with_domctl_responder(hypervisor, || list_domains().map(|found| found.map(|info| info.domain)).collect::<std::vec::Vec<_>>());
        assert_eq!(listed, [Ok(0), Ok(2), Ok(5)]);
        assert_eq!(calls.len(), 4, "0, 1 (→2), 3 (→5), 6 (ESRCH)");
        let (found, _) = with_domctl_responder(hypervisor, || (domain_info(2), domain_info(3), domain_info(6)));
        assert_eq!(found.0.map(|info| info.domain), Ok(2));
        assert_eq!(found.1, Err(Errno::new(ESRCH)), "3 is not there though 5 is");
        assert_eq!(found.2, Err(Errno::new(ESRCH)));
        let (created, calls) = with_domctl_responder(hypervisor, || create_domain(b"\x7fELF", 4096, "child", "l", "x=1", 0));
        assert_eq!(created, Ok(9));
        assert_eq!(calls.len(), 1);
        let (results, calls) = with_domctl_responder(|_| -EPERM, || (pause_domain(1), unpause_domain(1), destroy_domain(1)));
        assert_eq!(results, (Err(Errno::new(EPERM)), Err(Errno::new(EPERM)), Err(Errno::new(EPERM))));
        assert_eq!(calls.len(), 3);
        assert!(calls.iter().all(|call| call.number == xen_abi::hypercall::DOMCTL && call.arguments[0] != 0));
    }

    #[test]
    fn destroy_retries_on_eagain_and_listing_stops_on_errors() {
        let (result, calls) = with_domctl_responder(|_| -EAGAIN, || destroy_domain(4));
        assert_eq!(result, Err(Errno::new(EAGAIN)));
        // Each try is a domctl followed by a yield; the last has no yield.
        assert_eq!(calls.len(), 2 * DESTROY_RETRIES as usize + 1);
        let (listed, calls) = with_domctl_responder(|_| -ENOSYS, || list_domains().collect::<std::vec::Vec<_>>());
        assert_eq!(listed, [Err(Errno::new(ENOSYS))]);
        assert_eq!(calls.len(), 1);
        // A hypervisor that answers 0 without filling the block describes
        // domain 0 over and over: the walk still ends.
        let (listed, _) = with_domctl_responder(|_| 0, || list_domains().count());
        assert!(listed <= 2);
    }
}
