//! Builds boot bundles by hand for the parser's tests: header, records,
//! then kernels, command lines and policy back to back, with correct
//! digests, so a test can break exactly one thing.

use super::*;

/// A domain for [`build`].
#[derive(Clone)]
pub(super) struct Domain {
    pub(super) name: &'static [u8],
    pub(super) seclabel: &'static [u8],
    pub(super) memory_kib: u64,
    pub(super) kernel: Vec<u8>,
    pub(super) command_line: &'static [u8],
    pub(super) flags: u32,
}

pub(super) fn domain(name: &'static [u8]) -> Domain {
    Domain {
        name,
        seclabel: b"system_u:system_r:domU_t",
        memory_kib: 4096,
        kernel: name.iter().cycle().take(100).copied().collect(),
        command_line: b"console=hvc0",
        flags: 0,
    }
}

pub(super) fn two_domains() -> Vec<Domain> {
    vec![
        Domain {
            flags: domain_flags::CONTROL,
            ..domain(b"control")
        },
        domain(b"guest-1"),
    ]
}

/// Bundle bytes: header, records, then kernels, command lines and policy
/// back to back, with correct digests.
pub(super) fn build(domains: &[Domain], policy: &[u8]) -> Vec<u8> {
    let records_end = HEADER_SIZE + domains.len() * RECORD_SIZE;
    let mut bytes = vec![0u8; records_end];
    for (index, domain) in domains.iter().enumerate() {
        let at = HEADER_SIZE + index * RECORD_SIZE;
        let kernel_offset = bytes.len() as u64;
        bytes.extend_from_slice(&domain.kernel);
        let command_line_offset = if domain.command_line.is_empty() {
            0
        } else {
            bytes.len() as u64
        };
        bytes.extend_from_slice(domain.command_line);
        let record = &mut bytes[at..at + RECORD_SIZE];
        record[..domain.name.len()].copy_from_slice(domain.name);
        record[record::SECLABEL..record::SECLABEL + domain.seclabel.len()]
            .copy_from_slice(domain.seclabel);
        put(record, record::MEMORY_KIB, &domain.memory_kib.to_le_bytes());
        put(record, record::KERNEL_OFFSET, &kernel_offset.to_le_bytes());
        put(
            record,
            record::KERNEL_LENGTH,
            &(domain.kernel.len() as u64).to_le_bytes(),
        );
        put(
            record,
            record::COMMAND_LINE_OFFSET,
            &command_line_offset.to_le_bytes(),
        );
        put(
            record,
            record::COMMAND_LINE_LENGTH,
            &(domain.command_line.len() as u32).to_le_bytes(),
        );
        put(record, record::FLAGS, &domain.flags.to_le_bytes());
        let digest: [u8; 32] = Sha256::digest(&domain.kernel).into();
        put(record, record::KERNEL_SHA256, &digest);
    }
    let policy_offset = if policy.is_empty() {
        0
    } else {
        bytes.len() as u32
    };
    bytes.extend_from_slice(policy);
    let total_length = bytes.len() as u64;
    put(&mut bytes, header::MAGIC, &abi::MAGIC);
    put(&mut bytes, header::VERSION, &abi::VERSION.to_le_bytes());
    put(
        &mut bytes,
        header::DOMAIN_COUNT,
        &(domains.len() as u32).to_le_bytes(),
    );
    put(
        &mut bytes,
        header::TOTAL_LENGTH,
        &total_length.to_le_bytes(),
    );
    put(
        &mut bytes,
        header::POLICY_OFFSET,
        &policy_offset.to_le_bytes(),
    );
    put(
        &mut bytes,
        header::POLICY_LENGTH,
        &(policy.len() as u32).to_le_bytes(),
    );
    bytes
}

pub(super) fn put(bytes: &mut [u8], offset: usize, value: &[u8]) {
    bytes[offset..offset + value.len()].copy_from_slice(value);
}

/// Offset of field `field` of record `index`.
pub(super) fn at(index: usize, field: usize) -> usize {
    HEADER_SIZE + index * RECORD_SIZE + field
}
