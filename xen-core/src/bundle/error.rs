//! What can be wrong with a boot bundle, said so that the operator can find
//! the byte: which domain (index and name), which field, which offsets.

use core::fmt;

use super::{Hex, MAX_NAME_BYTES};
use xen_abi::bundle::{
    MAX_COMMAND_LINE_BYTES, MAX_DOMAINS, MAX_KERNEL_BYTES, MAX_POLICY_BYTES, MAX_TOTAL_BYTES,
};
use xen_abi::layout::{MAX_RAM_BYTES, MIN_RAM_BYTES};

/// A payload region of the bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// The kernel image of the domain at this index.
    Kernel {
        /// The domain's index.
        domain: usize,
    },
    /// The command line of the domain at this index.
    CommandLine {
        /// The domain's index.
        domain: usize,
    },
    /// The compiled policy.
    Policy,
}

impl fmt::Display for Region {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kernel { domain } => write!(formatter, "domain {domain}'s kernel"),
            Self::CommandLine { domain } => write!(formatter, "domain {domain}'s command line"),
            Self::Policy => formatter.write_str("the policy"),
        }
    }
}

/// Why a bundle was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// Shorter than the header.
    TooShort {
        /// Bytes present.
        actual: usize,
    },
    /// The magic is not `XCBUNDL1`.
    BadMagic {
        /// The magic found.
        found: [u8; 8],
    },
    /// A format version this hypervisor does not read.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
    /// `domain_count` is 0 or more than [`MAX_DOMAINS`].
    DomainCount {
        /// The count found.
        found: u32,
    },
    /// `total_length` is more than [`MAX_TOTAL_BYTES`].
    TooLarge {
        /// The header's `total_length`.
        total_length: u64,
    },
    /// Fewer bytes than the header's `total_length`.
    Truncated {
        /// The header's `total_length`.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// More bytes than the header's `total_length`.
    TrailingBytes {
        /// The header's `total_length`.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// The records run past the end of the bundle.
    RecordsOutOfRange {
        /// Where the records end.
        records_end: u64,
        /// The bundle's length.
        total_length: u64,
    },
    /// The policy is longer than [`MAX_POLICY_BYTES`].
    PolicyTooLarge {
        /// The header's `policy_length`.
        length: u64,
    },
    /// A payload region is not within `[records_end, total_length)`, its end
    /// overflows, or it is empty with a non-zero offset.
    PayloadOutOfRange {
        /// Which region.
        region: Region,
        /// Its offset.
        offset: u64,
        /// Its length.
        length: u64,
        /// Where the records end (payload starts here at the earliest).
        records_end: u64,
        /// The bundle's length.
        total_length: u64,
    },
    /// Two payload regions share bytes.
    PayloadOverlap {
        /// The region that starts first.
        first: Region,
        /// The region that starts inside it.
        second: Region,
    },
    /// Something is wrong with one domain's record.
    Domain {
        /// The record's index.
        index: usize,
        /// The domain's name, or empty if the name itself is what is wrong.
        name: heapless::String<MAX_NAME_BYTES>,
        /// What is wrong.
        problem: DomainProblem,
    },
}

/// What is wrong with one domain's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainProblem {
    /// The name is empty.
    NameEmpty,
    /// The name is longer than 31 bytes.
    NameTooLong,
    /// The name has a byte outside `[A-Za-z0-9_.-]`.
    NameCharacter {
        /// Position of the first such byte.
        position: usize,
    },
    /// A non-zero byte after the name's NUL terminator.
    NamePadding,
    /// Another domain has the same name.
    DuplicateName {
        /// Index of the earlier domain with this name.
        first_index: usize,
    },
    /// The seclabel is empty.
    SeclabelEmpty,
    /// The seclabel fills its field with no NUL terminator.
    SeclabelTooLong,
    /// The seclabel is not UTF-8.
    SeclabelNotUtf8,
    /// A non-zero byte after the seclabel's NUL terminator.
    SeclabelPadding,
    /// `memory_kib` is not a multiple of 4 (a whole number of pages).
    MemoryNotPageMultiple {
        /// The value found.
        memory_kib: u64,
    },
    /// `memory_kib` is outside the layout's RAM limits.
    MemoryOutOfRange {
        /// The value found.
        memory_kib: u64,
    },
    /// The scheduler weight is above `MAX_WEIGHT`.
    WeightOutOfRange {
        /// The weight.
        weight: u32,
    },
    /// Flag bits this hypervisor does not know.
    UnknownFlags {
        /// The flags found.
        flags: u32,
    },
    /// A second domain flagged CONTROL.
    SecondControlDomain {
        /// Index of the first control domain.
        first_index: usize,
    },
    /// A reserved byte is not zero.
    ReservedNotZero {
        /// Offset of the byte within the record.
        offset: usize,
    },
    /// More PCI functions than a record holds.
    PciCount {
        /// The count found.
        count: u32,
    },
    /// PCI functions for a domain that is not a driver domain.
    PciWithoutDriverDomain,
    /// A PCI function value that is no bus/device/function.
    PciFunction {
        /// The value found.
        value: u32,
    },
    /// A PCI function assigned twice (to this or an earlier domain).
    PciTwice {
        /// The function.
        value: u32,
    },
    /// The kernel is empty.
    KernelEmpty,
    /// The kernel is longer than [`MAX_KERNEL_BYTES`].
    KernelTooLarge {
        /// The length found.
        length: u64,
    },
    /// The command line is longer than [`MAX_COMMAND_LINE_BYTES`].
    CommandLineTooLong {
        /// The length found.
        length: u32,
    },
    /// The command line is not UTF-8.
    CommandLineNotUtf8,
    /// The command line contains a NUL byte.
    CommandLineNul,
    /// The kernel's SHA-256 is not the one the bundle recorded.
    KernelDigestMismatch {
        /// The digest the bundle recorded.
        expected: [u8; 32],
        /// The digest of the kernel bytes.
        actual: [u8; 32],
    },
}

impl fmt::Display for BundleError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { actual } => write!(formatter, "bundle is {actual} bytes, shorter than its 32-byte header"),
            Self::BadMagic { found } => write!(formatter, "bad bundle magic {} (expected \"XCBUNDL1\")", Hex(found)),
            Self::UnsupportedVersion { found } => write!(formatter, "unsupported bundle version {found} (this hypervisor reads 1)"),
            Self::DomainCount { found } => write!(formatter, "bundle has {found} domains (expected 1..={MAX_DOMAINS})"),
            Self::TooLarge { total_length } => {
                write!(formatter, "bundle total_length {total_length} exceeds the limit of {MAX_TOTAL_BYTES} bytes")
            }
            Self::Truncated { expected, actual } => {
                write!(formatter, "bundle truncated: header says {expected} bytes, module has {actual}")
            }
            Self::TrailingBytes { expected, actual } => {
                write!(formatter, "bundle has trailing bytes: header says {expected} bytes, module has {actual}")
            }
            Self::RecordsOutOfRange { records_end, total_length } => {
                write!(formatter, "domain records end at {records_end:#x}, past the bundle's end {total_length:#x}")
            }
            Self::PolicyTooLarge { length } => {
                write!(formatter, "policy is {length} bytes, more than the limit of {MAX_POLICY_BYTES}")
            }
            Self::PayloadOutOfRange { region, offset, length, records_end, total_length } => write!(
                formatter,
                "{region} at offset {offset:#x} length {length:#x} is outside the payload [{records_end:#x}, {total_length:#x}) \
                 (an empty region must have offset 0)"
            ),
            Self::PayloadOverlap { first, second } => write!(formatter, "{second} overlaps {first}"),
            Self::Domain { index, name, problem } if name.is_empty() => write!(formatter, "domain {index}: {problem}"),
            Self::Domain { index, name, problem } => write!(formatter, "domain {index} '{name}': {problem}"),
        }
    }
}

impl fmt::Display for DomainProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameEmpty => formatter.write_str("name is empty"),
            Self::NameTooLong => write!(formatter, "name is longer than {MAX_NAME_BYTES} bytes"),
            Self::NameCharacter { position } => {
                write!(
                    formatter,
                    "name byte {position} is not one of [A-Za-z0-9_.-]"
                )
            }
            Self::NamePadding => {
                formatter.write_str("name field has non-zero bytes after its terminator")
            }
            Self::DuplicateName { first_index } => {
                write!(formatter, "name already used by domain {first_index}")
            }
            Self::SeclabelEmpty => formatter.write_str("seclabel is empty"),
            Self::SeclabelTooLong => formatter.write_str("seclabel is longer than 63 bytes"),
            Self::SeclabelNotUtf8 => formatter.write_str("seclabel is not UTF-8"),
            Self::SeclabelPadding => {
                formatter.write_str("seclabel field has non-zero bytes after its terminator")
            }
            Self::MemoryNotPageMultiple { memory_kib } => {
                write!(
                    formatter,
                    "memory_kib {memory_kib} is not a multiple of 4 KiB pages"
                )
            }
            Self::MemoryOutOfRange { memory_kib } => write!(
                formatter,
                "memory_kib {memory_kib} is outside [{}, {}] KiB",
                MIN_RAM_BYTES / 1024,
                MAX_RAM_BYTES / 1024
            ),
            Self::UnknownFlags { flags } => write!(formatter, "unknown flag bits in {flags:#x}"),
            Self::WeightOutOfRange { weight } => write!(
                formatter,
                "weight {weight} is above the maximum {}",
                xen_abi::domctl::MAX_WEIGHT
            ),
            Self::SecondControlDomain { first_index } => {
                write!(
                    formatter,
                    "second control domain (domain {first_index} is already the control domain)"
                )
            }
            Self::ReservedNotZero { offset } => write!(
                formatter,
                "reserved byte at record offset {offset} is not zero"
            ),
            Self::PciCount { count } => write!(formatter, "{count} PCI functions (at most {})", xen_abi::bundle::MAX_PCI_FUNCTIONS),
            Self::PciWithoutDriverDomain => formatter.write_str("PCI functions for a domain that is not a driver domain"),
            Self::PciFunction { value } => write!(formatter, "PCI function {value:#x} is not bus << 8 | device << 3 | function"),
            Self::PciTwice { value } => write!(formatter, "PCI function {:02x}:{:02x}.{} assigned twice", value >> 8, (value >> 3) & 0x1f, value & 7),
            Self::KernelEmpty => formatter.write_str("kernel is empty"),
            Self::KernelTooLarge { length } => {
                write!(
                    formatter,
                    "kernel is {length} bytes, more than the limit of {MAX_KERNEL_BYTES}"
                )
            }
            Self::CommandLineTooLong { length } => {
                write!(formatter, "command line is {length} bytes, more than the limit of {MAX_COMMAND_LINE_BYTES}")
            }
            Self::CommandLineNotUtf8 => formatter.write_str("command line is not UTF-8"),
            Self::CommandLineNul => formatter.write_str("command line contains a NUL byte"),
            Self::KernelDigestMismatch { expected, actual } => write!(
                formatter,
                "kernel SHA-256 mismatch: bundle records {}, kernel hashes to {}",
                Hex(expected),
                Hex(actual)
            ),
        }
    }
}
