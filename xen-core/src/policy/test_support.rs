//! Hand-built compiled policies for the hypervisor side's tests (the
//! compiler lives in the toolstack, which this crate cannot use).

use alloc::vec::Vec;

use xen_abi::policy::{
    domain, event, grant, header, security, Class, CLASS_COUNT, HEADER_SIZE, MAGIC, RULE_SIZE,
    TYPE_NAME_SIZE, VERSION,
};

/// Encodes `types` (given sorted) and `rules` (sorted here) as a policy.
pub(super) fn build(types: &[&str], rules: &[(u16, u16, Class, u32)]) -> Vec<u8> {
    let mut rules = rules.to_vec();
    rules.sort_by_key(|(source, target, class, _)| (*source, *target, class.id()));
    let total = HEADER_SIZE + types.len() * TYPE_NAME_SIZE + rules.len() * RULE_SIZE;
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(&MAGIC);
    for value in [
        VERSION,
        CLASS_COUNT,
        types.len() as u32,
        rules.len() as u32,
        total as u32,
        0,
    ] {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    assert_eq!(bytes.len(), HEADER_SIZE);
    assert_eq!(header::RESERVED + 4, HEADER_SIZE);
    for name in types {
        let mut slot = [0u8; TYPE_NAME_SIZE];
        slot[..name.len()].copy_from_slice(name.as_bytes());
        bytes.extend_from_slice(&slot);
    }
    for (source, target, class, permissions) in rules {
        bytes.extend_from_slice(&source.to_le_bytes());
        bytes.extend_from_slice(&target.to_le_bytes());
        bytes.extend_from_slice(&class.id().to_le_bytes());
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&permissions.to_le_bytes());
    }
    bytes
}

/// Type ids of [`sample`].
pub(super) const BANKING: u16 = 0;
pub(super) const CONTROL: u16 = 1;
pub(super) const DRIVER: u16 = 2;
pub(super) const SECURITY: u16 = 3;
pub(super) const UNTRUSTED: u16 = 4;

/// A small policy in the shape of the default machine's.
pub(super) fn sample() -> Vec<u8> {
    build(
        &[
            "banking_t",
            "control_t",
            "driver_t",
            "security_t",
            "untrusted_t",
        ],
        &[
            (
                CONTROL,
                BANKING,
                Class::Domain,
                domain::CREATE | domain::PAUSE,
            ),
            (
                CONTROL,
                UNTRUSTED,
                Class::Domain,
                domain::CREATE | domain::DESTROY,
            ),
            (
                DRIVER,
                BANKING,
                Class::Grant,
                grant::MAP_READ | grant::MAP_WRITE | grant::UNMAP | grant::COPY,
            ),
            (BANKING, DRIVER, Class::Event, event::BIND | event::SEND),
            (UNTRUSTED, UNTRUSTED, Class::Event, event::SEND),
            (
                CONTROL,
                SECURITY,
                Class::Security,
                security::LOAD_POLICY | security::SET_ENFORCE,
            ),
        ],
    )
}
