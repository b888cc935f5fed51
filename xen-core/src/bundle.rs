//! The boot-bundle parser: the hypervisor's reading of the one multiboot
//! module that carries every boot-time domain (layout in
//! [`xen_abi::bundle`]). The bundle is untrusted input: [`parse`] checks every
//! field, offset and length before it returns anything, and
//! [`verify_kernel`] recomputes each kernel's SHA-256 (soft-only, since the
//! hypervisor never runs SSE or SHA-NI instructions).

use core::fmt;

use sha2::{Digest, Sha256};
use xen_abi::bundle::{
    self as abi, domain_flags, header, record, HEADER_SIZE, MAX_COMMAND_LINE_BYTES, MAX_DOMAINS,
    MAX_KERNEL_BYTES, MAX_POLICY_BYTES, MAX_TOTAL_BYTES, RECORD_SIZE,
};
use xen_abi::layout::{MAX_RAM_BYTES, MIN_RAM_BYTES};

mod error;
mod fuzzing;

pub use error::{BundleError, DomainProblem, Region};
pub use fuzzing::fuzz_one;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_bundle;
#[cfg(test)]
mod tests;

/// Longest domain name (the record's field is one byte longer, for the NUL).
pub const MAX_NAME_BYTES: usize = 31;
/// Width of the record's `name` field.
const NAME_FIELD_BYTES: usize = record::SECLABEL - record::NAME;
/// Width of the record's `seclabel` field.
const SECLABEL_FIELD_BYTES: usize = record::MEMORY_KIB - record::SECLABEL;

/// One boot-time domain, as the bundle describes it. Every field has been
/// checked by [`parse`]; the kernel's digest is checked by [`verify_kernel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainRecord<'a> {
    /// Position in the bundle (the build order).
    pub index: usize,
    /// The domain's name: 1..=31 bytes of `[A-Za-z0-9_.-]`.
    pub name: &'a str,
    /// The domain's security label.
    pub seclabel: &'a str,
    /// RAM in KiB: a multiple of 4 within the layout's RAM limits.
    pub memory_kib: u64,
    /// The kernel image (ELF64), not yet verified against `kernel_sha256`.
    pub kernel: &'a [u8],
    /// The kernel's command line (may be empty).
    pub command_line: &'a str,
    /// [`domain_flags`] bits.
    pub flags: u32,
    /// Scheduler weight (0: the default).
    pub weight: u32,
    /// The SHA-256 the toolstack recorded for `kernel`.
    pub kernel_sha256: [u8; 32],
    /// PCI functions assigned to it (`bus << 8 | device << 3 | function`),
    /// the first `pci_count` entries.
    pub pci: [u16; xen_abi::bundle::MAX_PCI_FUNCTIONS],
    /// How many of `pci` are used.
    pub pci_count: usize,
}

impl DomainRecord<'_> {
    /// Whether this is the control domain.
    pub fn is_control(&self) -> bool {
        self.flags & domain_flags::CONTROL != 0
    }

    /// Whether this is a driver domain.
    pub fn is_driver(&self) -> bool {
        self.flags & domain_flags::DRIVER != 0
    }

    /// The PCI functions assigned to it.
    pub fn pci_functions(&self) -> &[u16] {
        &self.pci[..self.pci_count.min(self.pci.len())]
    }

    /// RAM in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_kib * 1024
    }
}

/// A fully validated boot bundle.
#[derive(Clone, Debug)]
pub struct Bundle<'a> {
    records: heapless::Vec<DomainRecord<'a>, MAX_DOMAINS>,
    policy: Option<&'a [u8]>,
}

impl<'a> Bundle<'a> {
    /// The domains, in bundle (build) order.
    pub fn domains(&self) -> impl ExactSizeIterator<Item = DomainRecord<'a>> + '_ {
        self.records.iter().copied()
    }

    /// The domain at `index`, if there is one.
    pub fn domain(&self, index: usize) -> Option<DomainRecord<'a>> {
        self.records.get(index).copied()
    }

    /// How many domains the bundle holds (1..=[`MAX_DOMAINS`]).
    pub fn domain_count(&self) -> usize {
        self.records.len()
    }

    /// The compiled policy, if the bundle carries one.
    pub fn policy(&self) -> Option<&'a [u8]> {
        self.policy
    }
}

/// Checks everything in `bytes` and returns the bundle, or the first problem
/// found. Nothing is returned unless the whole bundle is valid.
pub fn parse(bytes: &[u8]) -> Result<Bundle<'_>, BundleError> {
    let header_bytes = bytes.get(..HEADER_SIZE).ok_or(BundleError::TooShort {
        actual: bytes.len(),
    })?;
    let magic = field::<8>(header_bytes, header::MAGIC).unwrap_or_default();
    if magic != abi::MAGIC {
        return Err(BundleError::BadMagic { found: magic });
    }
    let version = u32_at(header_bytes, header::VERSION);
    if version != abi::VERSION {
        return Err(BundleError::UnsupportedVersion { found: version });
    }
    let domain_count = u32_at(header_bytes, header::DOMAIN_COUNT);
    if domain_count == 0 || domain_count as usize > MAX_DOMAINS {
        return Err(BundleError::DomainCount {
            found: domain_count,
        });
    }
    let total_length = u64_at(header_bytes, header::TOTAL_LENGTH);
    if total_length > MAX_TOTAL_BYTES {
        return Err(BundleError::TooLarge { total_length });
    }
    let actual = bytes.len() as u64;
    if actual < total_length {
        return Err(BundleError::Truncated {
            expected: total_length,
            actual,
        });
    }
    if actual > total_length {
        return Err(BundleError::TrailingBytes {
            expected: total_length,
            actual,
        });
    }
    // domain_count <= 16, so this cannot overflow.
    let records_end = (HEADER_SIZE + domain_count as usize * RECORD_SIZE) as u64;
    if records_end > total_length {
        return Err(BundleError::RecordsOutOfRange {
            records_end,
            total_length,
        });
    }

    let mut ranges: heapless::Vec<(u64, u64, Region), { 2 * MAX_DOMAINS + 1 }> =
        heapless::Vec::new();
    let policy_offset = u64::from(u32_at(header_bytes, header::POLICY_OFFSET));
    let policy_length = u64::from(u32_at(header_bytes, header::POLICY_LENGTH));
    if policy_length > u64::from(MAX_POLICY_BYTES) {
        return Err(BundleError::PolicyTooLarge {
            length: policy_length,
        });
    }
    let policy = payload(
        bytes,
        Region::Policy,
        policy_offset,
        policy_length,
        records_end,
        &mut ranges,
    )?;

    let mut records: heapless::Vec<DomainRecord<'_>, MAX_DOMAINS> = heapless::Vec::new();
    for index in 0..domain_count as usize {
        let start = HEADER_SIZE + index * RECORD_SIZE;
        let record_bytes =
            bytes
                .get(start..start + RECORD_SIZE)
                .ok_or(BundleError::RecordsOutOfRange {
                    records_end,
                    total_length,
                })?;
        let parsed = parse_record(
            bytes,
            record_bytes,
            index,
            records_end,
            &records,
            &mut ranges,
        )?;
        // Capacity is MAX_DOMAINS and index < MAX_DOMAINS.
        records.push(parsed).map_err(|_| BundleError::DomainCount {
            found: domain_count,
        })?;
    }

    ranges.sort_unstable_by_key(|&(start, _, _)| start);
    for pair in ranges.windows(2) {
        if let [(_, first_end, first), (second_start, _, second)] = pair {
            if second_start < first_end {
                return Err(BundleError::PayloadOverlap {
                    first: *first,
                    second: *second,
                });
            }
        }
    }
    Ok(Bundle {
        records,
        policy: policy.filter(|bytes| !bytes.is_empty()),
    })
}

/// Decodes and checks one record; `earlier` are the records before it.
fn parse_record<'a>(
    bytes: &'a [u8],
    record_bytes: &'a [u8],
    index: usize,
    records_end: u64,
    earlier: &[DomainRecord<'a>],
    ranges: &mut heapless::Vec<(u64, u64, Region), { 2 * MAX_DOMAINS + 1 }>,
) -> Result<DomainRecord<'a>, BundleError> {
    let name_field = record_bytes
        .get(record::NAME..record::NAME + NAME_FIELD_BYTES)
        .unwrap_or_default();
    let unnamed = |problem| BundleError::Domain {
        index,
        name: heapless::String::new(),
        problem,
    };
    let name_bytes = padded(name_field).map_err(|problem| unnamed(problem.for_name()))?;
    check_name(name_bytes).map_err(unnamed)?;
    // ASCII by check_name, so always UTF-8.
    let name = core::str::from_utf8(name_bytes)
        .map_err(|_| unnamed(DomainProblem::NameCharacter { position: 0 }))?;
    let mut owned_name = heapless::String::new();
    // The name is at most 31 bytes, the capacity.
    owned_name
        .push_str(name)
        .map_err(|()| unnamed(DomainProblem::NameTooLong))?;
    let fail = |problem| BundleError::Domain {
        index,
        name: owned_name.clone(),
        problem,
    };

    if let Some(first) = earlier.iter().find(|other| other.name == name) {
        return Err(fail(DomainProblem::DuplicateName {
            first_index: first.index,
        }));
    }
    let seclabel_field = record_bytes
        .get(record::SECLABEL..record::SECLABEL + SECLABEL_FIELD_BYTES)
        .unwrap_or_default();
    let seclabel_bytes = padded(seclabel_field).map_err(|problem| fail(problem.for_seclabel()))?;
    let seclabel =
        core::str::from_utf8(seclabel_bytes).map_err(|_| fail(DomainProblem::SeclabelNotUtf8))?;
    if seclabel.is_empty() {
        return Err(fail(DomainProblem::SeclabelEmpty));
    }

    let memory_kib = u64_at(record_bytes, record::MEMORY_KIB);
    if memory_kib % 4 != 0 {
        return Err(fail(DomainProblem::MemoryNotPageMultiple { memory_kib }));
    }
    let memory_bytes = memory_kib.saturating_mul(1024);
    if !(MIN_RAM_BYTES..=MAX_RAM_BYTES).contains(&memory_bytes) {
        return Err(fail(DomainProblem::MemoryOutOfRange { memory_kib }));
    }

    let flags = u32_at(record_bytes, record::FLAGS);
    if flags & !domain_flags::ALL != 0 {
        return Err(fail(DomainProblem::UnknownFlags { flags }));
    }
    if flags & domain_flags::CONTROL != 0 {
        if let Some(first) = earlier.iter().find(|other| other.is_control()) {
            return Err(fail(DomainProblem::SecondControlDomain {
                first_index: first.index,
            }));
        }
    }
    let weight = u32_at(record_bytes, record::WEIGHT);
    if weight > xen_abi::domctl::MAX_WEIGHT {
        return Err(fail(DomainProblem::WeightOutOfRange { weight }));
    }
    let pci_count = u32_at(record_bytes, record::PCI_COUNT);
    if pci_count as usize > xen_abi::bundle::MAX_PCI_FUNCTIONS {
        return Err(fail(DomainProblem::PciCount { count: pci_count }));
    }
    if pci_count > 0 && flags & domain_flags::DRIVER == 0 {
        return Err(fail(DomainProblem::PciWithoutDriverDomain));
    }
    let mut pci = [0u16; xen_abi::bundle::MAX_PCI_FUNCTIONS];
    for slot in 0..xen_abi::bundle::MAX_PCI_FUNCTIONS {
        let value = u32_at(record_bytes, record::PCI + 4 * slot);
        if slot >= pci_count as usize {
            if value != 0 {
                return Err(fail(DomainProblem::ReservedNotZero { offset: record::PCI + 4 * slot }));
            }
            continue;
        }
        let Ok(function) = u16::try_from(value) else {
            return Err(fail(DomainProblem::PciFunction { value }));
        };
        let taken = pci[..slot].contains(&function) || earlier.iter().any(|other| other.pci_functions().contains(&function));
        if taken {
            return Err(fail(DomainProblem::PciTwice { value }));
        }
        pci[slot] = function;
    }
    if let Some(offset) = record_bytes
        .iter()
        .skip(record::RESERVED)
        .position(|&byte| byte != 0)
    {
        return Err(fail(DomainProblem::ReservedNotZero {
            offset: record::RESERVED + offset,
        }));
    }

    let kernel_offset = u64_at(record_bytes, record::KERNEL_OFFSET);
    let kernel_length = u64_at(record_bytes, record::KERNEL_LENGTH);
    if kernel_length == 0 {
        return Err(fail(DomainProblem::KernelEmpty));
    }
    if kernel_length > MAX_KERNEL_BYTES {
        return Err(fail(DomainProblem::KernelTooLarge {
            length: kernel_length,
        }));
    }
    let kernel = payload(
        bytes,
        Region::Kernel { domain: index },
        kernel_offset,
        kernel_length,
        records_end,
        ranges,
    )?
    .unwrap_or_default();

    let command_line_offset = u64_at(record_bytes, record::COMMAND_LINE_OFFSET);
    let command_line_length = u32_at(record_bytes, record::COMMAND_LINE_LENGTH);
    if command_line_length > MAX_COMMAND_LINE_BYTES {
        return Err(fail(DomainProblem::CommandLineTooLong {
            length: command_line_length,
        }));
    }
    let region = Region::CommandLine { domain: index };
    let command_line_bytes = payload(
        bytes,
        region,
        command_line_offset,
        u64::from(command_line_length),
        records_end,
        ranges,
    )?
    .unwrap_or_default();
    if command_line_bytes.contains(&0) {
        return Err(fail(DomainProblem::CommandLineNul));
    }
    let command_line = core::str::from_utf8(command_line_bytes)
        .map_err(|_| fail(DomainProblem::CommandLineNotUtf8))?;

    Ok(DomainRecord {
        index,
        name,
        seclabel,
        memory_kib,
        kernel,
        command_line,
        flags,
        weight,
        kernel_sha256: field::<32>(record_bytes, record::KERNEL_SHA256).unwrap_or([0; 32]),
        pci,
        pci_count: pci_count as usize,
    })
}

/// Checks one payload region and records it for the overlap check. A
/// zero-length region must have offset 0 and yields `None`.
fn payload<'a>(
    bytes: &'a [u8],
    region: Region,
    offset: u64,
    length: u64,
    records_end: u64,
    ranges: &mut heapless::Vec<(u64, u64, Region), { 2 * MAX_DOMAINS + 1 }>,
) -> Result<Option<&'a [u8]>, BundleError> {
    let total_length = bytes.len() as u64;
    let out_of_range = || BundleError::PayloadOutOfRange {
        region,
        offset,
        length,
        records_end,
        total_length,
    };
    if length == 0 {
        return if offset == 0 {
            Ok(None)
        } else {
            Err(out_of_range())
        };
    }
    let end = offset.checked_add(length).ok_or_else(out_of_range)?;
    if offset < records_end || end > total_length {
        return Err(out_of_range());
    }
    // The capacity covers one policy plus two regions per domain.
    ranges
        .push((offset, end, region))
        .map_err(|_| out_of_range())?;
    // In range of `bytes`, which is at most MAX_TOTAL_BYTES long.
    Ok(bytes.get(offset as usize..end as usize))
}

/// Whether `name` is 1..=31 bytes of `[A-Za-z0-9_.-]`.
fn check_name(name: &[u8]) -> Result<(), DomainProblem> {
    if name.is_empty() {
        return Err(DomainProblem::NameEmpty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(DomainProblem::NameTooLong);
    }
    match name
        .iter()
        .position(|&byte| !(byte.is_ascii_alphanumeric() || b"_.-".contains(&byte)))
    {
        Some(position) => Err(DomainProblem::NameCharacter { position }),
        None => Ok(()),
    }
}

/// How a NUL-padded text field is malformed.
#[derive(Clone, Copy)]
enum PaddedProblem {
    /// No NUL terminator in the field.
    Unterminated,
    /// A non-zero byte after the first NUL.
    Padding,
}

impl PaddedProblem {
    fn for_name(self) -> DomainProblem {
        match self {
            Self::Unterminated => DomainProblem::NameTooLong,
            Self::Padding => DomainProblem::NamePadding,
        }
    }

    fn for_seclabel(self) -> DomainProblem {
        match self {
            Self::Unterminated => DomainProblem::SeclabelTooLong,
            Self::Padding => DomainProblem::SeclabelPadding,
        }
    }
}

/// The bytes before the first NUL of a NUL-padded field; everything after
/// it must be NUL too, and the field must hold at least one NUL.
fn padded(field: &[u8]) -> Result<&[u8], PaddedProblem> {
    let end = field
        .iter()
        .position(|&byte| byte == 0)
        .ok_or(PaddedProblem::Unterminated)?;
    let (text, padding) = field.split_at(end);
    if padding.iter().any(|&byte| byte != 0) {
        return Err(PaddedProblem::Padding);
    }
    Ok(text)
}

/// Recomputes the SHA-256 of `record.kernel` and compares it with the digest
/// the bundle recorded; returns the digest (the domain's measurement).
pub fn verify_kernel(record: &DomainRecord<'_>) -> Result<[u8; 32], BundleError> {
    let actual: [u8; 32] = Sha256::digest(record.kernel).into();
    if actual != record.kernel_sha256 {
        let mut name = heapless::String::new();
        // Parsed names fit; a hand-built record with a longer name is reported unnamed.
        let _ = name.push_str(record.name);
        return Err(BundleError::Domain {
            index: record.index,
            name,
            problem: DomainProblem::KernelDigestMismatch {
                expected: record.kernel_sha256,
                actual,
            },
        });
    }
    Ok(actual)
}

/// A digest written as lowercase hex, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0
            .iter()
            .try_for_each(|byte| write!(formatter, "{byte:02x}"))
    }
}

/// `digest` as lowercase hex, for logs: `log::info!("sha256 {}", hex(&digest))`.
pub fn hex(digest: &[u8; 32]) -> Hex<'_> {
    Hex(digest)
}

/// `N` bytes at `offset` of `block` (zeros where `block` is too short; every
/// caller passes a block already checked to be long enough).
use xen_abi::bytes::{field, u32_or_zero as u32_at, u64_or_zero as u64_at};
