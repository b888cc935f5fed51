//! The operator's side of the hypervisor: the xl.cfg parser ([`config`]),
//! the launch-description reader ([`launch`]), the boot-bundle writer
//! ([`bundle`]), the QEMU command line ([`qemu`]) and the control channel's
//! client ([`control`]) behind the host CLI `xl`.

pub mod bundle;
pub mod config;
pub mod control;
pub mod devices;
pub mod elf;
pub mod launch;
pub mod policy;
pub mod qemu;

mod error;

pub use error::Error;

use std::io::Read as _;
use std::path::Path;

/// Reads the file at `path` if it holds at most `limit` bytes. A longer one
/// is refused after reading no more than `limit + 1` bytes, so a path to
/// `/dev/zero` or an endless pipe gets an error, not all the memory there
/// is (`std::fs::read` would take it all; a length from the metadata is 0
/// for such files).
pub fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let too_large = |what: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what}, more than the limit of {limit} bytes"),
        )
    };
    let file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    if length > limit {
        return Err(too_large(format!("is {length} bytes")));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large("goes on past the end its metadata gives".to_string()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod test_support;
