//! [`AcpiError`]: what was wrong with the firmware's ACPI tables, and where.

use core::fmt;

/// What was wrong with the firmware's ACPI tables, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    /// `length` bytes at `address` are not readable (or the range wraps around the address space).
    Unreadable {
        /// First byte of the range.
        address: u64,
        /// Bytes requested.
        length: usize,
    },
    /// Neither the EBDA nor the BIOS area 0xE0000..0x100000 holds a valid RSDP.
    RsdpNotFound,
    /// The structure at `address` does not start with `"RSD PTR "`.
    RsdpSignature {
        /// Where the RSDP was expected.
        address: u64,
    },
    /// The RSDP's checksum (first 20 bytes) or extended checksum (`length` bytes) is wrong.
    RsdpChecksum {
        /// Address of the RSDP.
        address: u64,
        /// Whether it was the ACPI 2.0+ extended checksum that failed.
        extended: bool,
    },
    /// An ACPI 2.0+ RSDP declares a length outside 36..=4096.
    RsdpLength {
        /// Address of the RSDP.
        address: u64,
        /// The declared length.
        length: u32,
    },
    /// The table at `address` has signature `found` where `expected` was required.
    SignatureMismatch {
        /// Address of the table.
        address: u64,
        /// The signature the pointer promised (`RSDT` or `XSDT`).
        expected: [u8; 4],
        /// The signature actually there.
        found: [u8; 4],
    },
    /// A table's length is shorter than its fixed fields or longer than 64 KiB.
    TableLength {
        /// Signature of the table.
        signature: [u8; 4],
        /// Address of the table.
        address: u64,
        /// The declared length.
        length: u32,
    },
    /// A table's bytes do not sum to zero.
    TableChecksum {
        /// Signature of the table.
        signature: [u8; 4],
        /// Address of the table.
        address: u64,
    },
    /// A table entry is malformed: its length is below 2, it runs past the end
    /// of the table, or it is too short for the fields its type requires.
    MalformedEntry {
        /// Signature of the table holding the entry.
        signature: [u8; 4],
        /// Address of the table.
        address: u64,
        /// Byte offset of the entry inside the table.
        offset: usize,
        /// The entry's declared (or available) length in bytes.
        length: usize,
    },
    /// A well-formed entry carries a value the specification forbids.
    InvalidField {
        /// Signature of the table holding the entry.
        signature: [u8; 4],
        /// Address of the table.
        address: u64,
        /// Byte offset of the entry inside the table.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Shows a 4-byte signature as text, with `?` for anything not printable ASCII.
struct SignatureText<'a>(&'a [u8]);

impl fmt::Display for SignatureText<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &byte in self.0 {
            let shown = if byte.is_ascii_graphic() || byte == b' ' {
                byte as char
            } else {
                '?'
            };
            fmt::Write::write_char(formatter, shown)?;
        }
        Ok(())
    }
}

impl fmt::Display for AcpiError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Unreadable { address, length } => {
                write!(
                    formatter,
                    "ACPI: {length} bytes at {address:#x} are not readable"
                )
            }
            Self::RsdpNotFound => {
                write!(formatter, "ACPI: no RSDP in the EBDA or 0xe0000..0x100000")
            }
            Self::RsdpSignature { address } => {
                write!(formatter, "ACPI: no \"RSD PTR \" signature at {address:#x}")
            }
            Self::RsdpChecksum { address, extended } => {
                let which = if extended {
                    "extended checksum"
                } else {
                    "checksum"
                };
                write!(formatter, "ACPI: bad RSDP {which} at {address:#x}")
            }
            Self::RsdpLength { address, length } => {
                write!(
                    formatter,
                    "ACPI: RSDP at {address:#x} has length {length} outside 36..=4096"
                )
            }
            Self::SignatureMismatch {
                address,
                expected,
                found,
            } => write!(
                formatter,
                "ACPI: expected {} at {address:#x}, found \"{}\"",
                SignatureText(&expected),
                SignatureText(&found)
            ),
            Self::TableLength {
                signature,
                address,
                length,
            } => write!(
                formatter,
                "ACPI: {} at {address:#x} has length {length} out of bounds",
                SignatureText(&signature)
            ),
            Self::TableChecksum { signature, address } => write!(
                formatter,
                "ACPI: bad checksum of {} at {address:#x}",
                SignatureText(&signature)
            ),
            Self::MalformedEntry {
                signature,
                address,
                offset,
                length,
            } => write!(
                formatter,
                "ACPI: malformed entry of length {length} at offset {offset} of {} at {address:#x}",
                SignatureText(&signature)
            ),
            Self::InvalidField {
                signature,
                address,
                offset,
                reason,
            } => write!(
                formatter,
                "ACPI: invalid entry at offset {offset} of {} at {address:#x}: {reason}",
                SignatureText(&signature)
            ),
        }
    }
}
