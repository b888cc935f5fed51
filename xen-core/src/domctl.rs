//! `domctl` argument blocks: decoded and checked in one place, so the
//! hypervisor acts only on a [`Command`] that is known to be well formed.
//! Who may issue them is decided elsewhere (today: only the control
//! domain; the policy takes this over).

use xen_abi::bundle::{domain_flags, MAX_COMMAND_LINE_BYTES, MAX_KERNEL_BYTES};
use xen_abi::domctl::{self, create, header, info, MAX_WEIGHT};
use xen_abi::errno;
use xen_abi::layout::{MAX_RAM_BYTES, MIN_RAM_BYTES};
use xen_abi::DomId;

/// A checked `domctl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Build a domain.
    Create(CreateRequest),
    /// Destroy a domain.
    Destroy(DomId),
    /// Pause a domain.
    Pause(DomId),
    /// Unpause a domain.
    Unpause(DomId),
    /// Describe the first domain with an id >= this.
    GetInfo(DomId),
    /// Shut a domain down (poweroff).
    Shutdown(DomId),
}

/// What `CREATE_DOMAIN` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateRequest {
    /// Guest address of the ELF image in the caller's memory.
    pub image_address: u64,
    /// Its length.
    pub image_length: u64,
    /// RAM in bytes.
    pub memory_bytes: u64,
    /// `domain_flags` bits (never CONTROL).
    pub flags: u32,
    /// Scheduler weight (0: default).
    pub weight: u32,
    /// Guest address and length of the command line.
    pub command_line: (u64, u32),
    /// The name.
    pub name: heapless::String<31>,
    /// The label.
    pub seclabel: heapless::String<63>,
}

use xen_abi::bytes::{u16_or_zero as u16_at, u32_or_zero as u32_at, u64_or_zero as u64_at};

fn text<const N: usize>(block: &[u8; domctl::SIZE], at: usize, length: usize) -> Result<heapless::String<N>, i64> {
    let field = &block[at..at + length];
    let end = field.iter().position(|&byte| byte == 0).ok_or(errno::EINVAL)?;
    if field[end..].iter().any(|&byte| byte != 0) {
        return Err(errno::EINVAL);
    }
    let value = core::str::from_utf8(&field[..end]).map_err(|_| errno::EINVAL)?;
    let mut out = heapless::String::new();
    out.push_str(value).map_err(|_| errno::EINVAL)?;
    Ok(out)
}

/// Decodes and checks a block; the error is a positive errno.
pub fn parse(block: &[u8; domctl::SIZE]) -> Result<Command, i64> {
    if u32_at(block, header::INTERFACE_VERSION) != domctl::INTERFACE_VERSION {
        return Err(errno::EINVAL);
    }
    if block[header::DOMAIN + 2..header::PAYLOAD].iter().any(|&byte| byte != 0) {
        return Err(errno::EINVAL);
    }
    let domain = DomId(u16_at(block, header::DOMAIN));
    let target = || if domain.is_domain() { Ok(domain) } else { Err(errno::ESRCH) };
    match u32_at(block, header::CMD) {
        domctl::CREATE_DOMAIN => parse_create(block).map(Command::Create),
        domctl::DESTROY_DOMAIN => target().map(Command::Destroy),
        domctl::PAUSE_DOMAIN => target().map(Command::Pause),
        domctl::UNPAUSE_DOMAIN => target().map(Command::Unpause),
        domctl::SHUTDOWN_DOMAIN => target().map(Command::Shutdown),
        domctl::GET_DOMAIN_INFO => Ok(Command::GetInfo(domain)),
        _ => Err(errno::ENOSYS),
    }
}

fn parse_create(block: &[u8; domctl::SIZE]) -> Result<CreateRequest, i64> {
    let image_length = u64_at(block, create::IMAGE_LENGTH);
    if image_length == 0 || image_length > MAX_KERNEL_BYTES {
        return Err(errno::E2BIG);
    }
    let memory_bytes = u64_at(block, create::MEMORY_KIB).checked_mul(1024).ok_or(errno::EINVAL)?;
    if memory_bytes % 4096 != 0 || !(MIN_RAM_BYTES..=MAX_RAM_BYTES).contains(&memory_bytes) {
        return Err(errno::EINVAL);
    }
    let flags = u32_at(block, create::FLAGS);
    if flags & domain_flags::CONTROL != 0 {
        return Err(errno::EPERM);
    }
    if flags & !domain_flags::ALL != 0 {
        return Err(errno::EINVAL);
    }
    let weight = u32_at(block, create::WEIGHT);
    if weight > MAX_WEIGHT {
        return Err(errno::EINVAL);
    }
    let command_line_length = u32_at(block, create::COMMAND_LINE_LENGTH);
    if command_line_length > MAX_COMMAND_LINE_BYTES {
        return Err(errno::E2BIG);
    }
    let name: heapless::String<31> = text(block, create::NAME, 32)?;
    let valid_name = !name.is_empty()
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'));
    let seclabel: heapless::String<63> = text(block, create::SECLABEL, 64)?;
    if !valid_name || seclabel.is_empty() {
        return Err(errno::EINVAL);
    }
    Ok(CreateRequest {
        image_address: u64_at(block, create::IMAGE_ADDRESS),
        image_length,
        memory_bytes,
        flags,
        weight,
        command_line: (u64_at(block, create::COMMAND_LINE_ADDRESS), command_line_length),
        name,
        seclabel,
    })
}

/// What `GET_DOMAIN_INFO` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainInfo {
    /// The domain.
    pub domain: DomId,
    /// `domctl::state` bits.
    pub state: u32,
    /// Pages of RAM.
    pub total_pages: u64,
    /// Time it has run.
    pub cpu_time_ns: u64,
    /// Why it shut down.
    pub shutdown_reason: u32,
    /// Its weight.
    pub weight: u32,
    /// Its flags.
    pub flags: u32,
    /// Its name.
    pub name: [u8; 32],
    /// Its label.
    pub seclabel: [u8; 64],
}

/// Writes `domain` into a block (the new id after a create).
pub fn set_domain(block: &mut [u8; domctl::SIZE], domain: DomId) {
    block[header::DOMAIN..header::DOMAIN + 2].copy_from_slice(&domain.0.to_le_bytes());
}

/// Writes the info payload into a block.
pub fn encode_info(block: &mut [u8; domctl::SIZE], value: &DomainInfo) {
    set_domain(block, value.domain);
    block[info::DOMAIN..info::DOMAIN + 2].copy_from_slice(&value.domain.0.to_le_bytes());
    block[info::STATE..info::STATE + 4].copy_from_slice(&value.state.to_le_bytes());
    block[info::TOTAL_PAGES..info::TOTAL_PAGES + 8].copy_from_slice(&value.total_pages.to_le_bytes());
    block[info::CPU_TIME_NS..info::CPU_TIME_NS + 8].copy_from_slice(&value.cpu_time_ns.to_le_bytes());
    block[info::SHUTDOWN_REASON..info::SHUTDOWN_REASON + 4].copy_from_slice(&value.shutdown_reason.to_le_bytes());
    block[info::WEIGHT..info::WEIGHT + 4].copy_from_slice(&value.weight.to_le_bytes());
    block[info::FLAGS..info::FLAGS + 4].copy_from_slice(&value.flags.to_le_bytes());
    block[info::NAME..info::NAME + 32].copy_from_slice(&value.name);
    block[info::SECLABEL..info::SECLABEL + 64].copy_from_slice(&value.seclabel);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(cmd: u32, domain: u16) -> [u8; domctl::SIZE] {
        let mut block = [0u8; domctl::SIZE];
        block[0..4].copy_from_slice(&cmd.to_le_bytes());
        block[4..8].copy_from_slice(&domctl::INTERFACE_VERSION.to_le_bytes());
        block[8..10].copy_from_slice(&domain.to_le_bytes());
        block
    }

    fn create_block() -> [u8; domctl::SIZE] {
        let mut block = block(domctl::CREATE_DOMAIN, 0);
        block[create::IMAGE_ADDRESS..][..8].copy_from_slice(&0x4020_0000u64.to_le_bytes());
        block[create::IMAGE_LENGTH..][..8].copy_from_slice(&4096u64.to_le_bytes());
        block[create::MEMORY_KIB..][..8].copy_from_slice(&4096u64.to_le_bytes());
        block[create::NAME..][..5].copy_from_slice(b"child");
        block[create::SECLABEL..][..11].copy_from_slice(b"untrusted_t");
        block
    }

    #[test]
    fn simple_commands() {
        assert_eq!(parse(&block(domctl::PAUSE_DOMAIN, 3)), Ok(Command::Pause(DomId(3))));
        assert_eq!(parse(&block(domctl::UNPAUSE_DOMAIN, 3)), Ok(Command::Unpause(DomId(3))));
        assert_eq!(parse(&block(domctl::SHUTDOWN_DOMAIN, 3)), Ok(Command::Shutdown(DomId(3))));
        assert_eq!(parse(&block(domctl::DESTROY_DOMAIN, 3)), Ok(Command::Destroy(DomId(3))));
        assert_eq!(parse(&block(domctl::GET_DOMAIN_INFO, 0)), Ok(Command::GetInfo(DomId(0))));
        assert_eq!(parse(&block(domctl::PAUSE_DOMAIN, 0x7ff0)), Err(errno::ESRCH));
        assert_eq!(parse(&block(99, 3)), Err(errno::ENOSYS));
        let mut wrong_version = block(domctl::PAUSE_DOMAIN, 3);
        wrong_version[4] = 9;
        assert_eq!(parse(&wrong_version), Err(errno::EINVAL));
        let mut dirty = block(domctl::PAUSE_DOMAIN, 3);
        dirty[12] = 1;
        assert_eq!(parse(&dirty), Err(errno::EINVAL));
    }

    #[test]
    fn create_is_checked() {
        let Ok(Command::Create(request)) = parse(&create_block()) else { panic!("create refused") };
        assert_eq!((request.image_length, request.memory_bytes, request.name.as_str()), (4096, 4 << 20, "child"));
        let mut control = create_block();
        control[create::FLAGS] = domain_flags::CONTROL as u8;
        assert_eq!(parse(&control), Err(errno::EPERM));
        let mut huge = create_block();
        huge[create::IMAGE_LENGTH..][..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse(&huge), Err(errno::E2BIG));
        let mut memory = create_block();
        memory[create::MEMORY_KIB..][..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse(&memory), Err(errno::EINVAL));
        let mut name = create_block();
        name[create::NAME..][..5].copy_from_slice(b"ch/ld");
        assert_eq!(parse(&name), Err(errno::EINVAL));
        let mut unterminated = create_block();
        unterminated[create::NAME..create::NAME + 32].fill(b'a');
        assert_eq!(parse(&unterminated), Err(errno::EINVAL));
        let mut label = create_block();
        label[create::SECLABEL..create::SECLABEL + 64].fill(0);
        assert_eq!(parse(&label), Err(errno::EINVAL));
    }

    #[test]
    fn info_round_trip() {
        let mut block = [0u8; domctl::SIZE];
        let value = DomainInfo {
            domain: DomId(4),
            state: xen_abi::domctl::state::PAUSED,
            total_pages: 1024,
            cpu_time_ns: 77,
            shutdown_reason: 0,
            weight: 256,
            flags: 0,
            name: xen_abi::start_info::fill_text("child"),
            seclabel: xen_abi::start_info::fill_text("untrusted_t"),
        };
        encode_info(&mut block, &value);
        assert_eq!(u16_at(&block, header::DOMAIN), 4);
        assert_eq!(u64_at(&block, info::TOTAL_PAGES), 1024);
        assert_eq!(&block[info::NAME..info::NAME + 6], b"child\0");
    }
}
