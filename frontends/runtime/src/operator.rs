//! The control domain's side of the operator's channel and of the
//! hypervisor's facts: bytes from the host's `xl` (`CONSOLEIO_read`, after
//! `VIRQ_CONSOLE`), answers back (`CONSOLEIO_channel_write`), the
//! hypervisor's log (`sysctl` readconsole) and its memory figures (`sysctl`
//! physinfo). Each is the policy's to allow (`security { readconsole
//! writeconsole physinfo }`); others get `EACCES`/`EPERM`.

use xen_abi::bytes::{u32_or_zero, u64_or_zero};
use xen_abi::hypercall::{console, sysctl, CONSOLE_IO, SYSCTL};

use crate::hypercall::{check, Errno};
use crate::machine;

/// Takes up to `buffer.len()` (at most `MAX_CHANNEL_BYTES`) bytes the
/// operator sent; 0 when none are waiting.
pub fn channel_read(buffer: &mut [u8]) -> Result<usize, Errno> {
    let length = buffer.len().min(console::MAX_CHANNEL_BYTES as usize);
    check(machine::hypercall_fill(CONSOLE_IO, console::READ, &mut buffer[..length], false, 0)).map(|count| (count as usize).min(length))
}

/// Sends all of `bytes` to the operator, in chunks.
pub fn channel_write(bytes: &[u8]) -> Result<(), Errno> {
    for chunk in bytes.chunks(console::MAX_CHANNEL_BYTES as usize) {
        // The hypervisor only reads the chunk.
        check(machine::hypercall3(CONSOLE_IO, console::CHANNEL_WRITE, chunk.len() as u64, chunk.as_ptr() as u64))?;
    }
    Ok(())
}

/// Bytes of the hypervisor's log from sequence number `from` into
/// `buffer`; returns the sequence number of the first byte given (later
/// than `from` if older bytes are gone) and how many.
pub fn read_log(from: u64, buffer: &mut [u8]) -> Result<(u64, usize), Errno> {
    let mut block = [0u8; console::MAX_CHANNEL_BYTES as usize + 8];
    let length = (buffer.len().min(console::MAX_CHANNEL_BYTES as usize)) + 8;
    let count = check(machine::hypercall_fill(SYSCTL, sysctl::READ_CONSOLE, &mut block[..length], true, from))? as usize;
    let count = count.min(length - 8);
    buffer[..count].copy_from_slice(&block[8..8 + count]);
    Ok((u64_or_zero(&block, 0), count))
}

/// The hypervisor's memory figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysInfo {
    /// Frames of RAM it manages.
    pub total_pages: u64,
    /// Frames free now.
    pub free_pages: u64,
    /// Domains that exist.
    pub domains: u32,
    /// CPUs.
    pub cpus: u32,
}

/// `sysctl` physinfo.
pub fn physinfo() -> Result<PhysInfo, Errno> {
    use sysctl::physinfo as layout;
    let mut block = [0u8; layout::SIZE];
    check(machine::hypercall_fill(SYSCTL, sysctl::PHYSINFO, &mut block, true, 0))?;
    Ok(PhysInfo {
        total_pages: u64_or_zero(&block, layout::TOTAL_PAGES),
        free_pages: u64_or_zero(&block, layout::FREE_PAGES),
        domains: u32_or_zero(&block, layout::DOMAINS),
        cpus: u32_or_zero(&block, layout::CPUS),
    })
}

/// Why a domain stopped, from an exit record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// The domain (gone now).
    pub domid: u16,
    /// Its `SHUTDOWN_*` reason, or `exit_record::DESTROYED`.
    pub reason: u32,
}

/// `sysctl` exits: domains that finished tearing down since the last call,
/// oldest first (at most 64 are kept; older ones are dropped).
pub fn exits() -> Result<alloc::vec::Vec<Exit>, Errno> {
    use sysctl::exit_record as layout;
    let mut block = [0u8; 64 * layout::SIZE];
    let count = check(machine::hypercall_fill(SYSCTL, sysctl::EXITS, &mut block, true, 0))? as usize;
    Ok(block
        .chunks(layout::SIZE)
        .take(count.min(64))
        .map(|record| Exit {
            domid: xen_abi::bytes::u16_or_zero(record, layout::DOMID),
            reason: u32_or_zero(record, layout::REASON),
        })
        .collect())
}
