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

#[cfg(test)]
mod test_support;
