//! The operator's side of the hypervisor: the xl.cfg parser ([`config`]),
//! the launch-description reader ([`launch`]) and the boot-bundle writer
//! ([`bundle`]) behind the host CLI `xl`.

pub mod bundle;
pub mod config;
pub mod launch;
pub mod policy;

mod error;

pub use error::Error;

#[cfg(test)]
mod test_support;
