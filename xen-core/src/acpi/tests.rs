//! Host tests for the ACPI reader: synthetic QEMU q35 / SeaBIOS firmware,
//! hostile variants of it, and property tests feeding arbitrary bytes.

use super::*;
use proptest::prelude::*;
use std::vec::Vec as StdVec;

/// Physical memory made of a few byte regions; anything else is unreadable.
#[derive(Clone, Default)]
struct FakeMemory {
    regions: StdVec<(u64, StdVec<u8>)>,
}

impl PhysicalMemory for FakeMemory {
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), AcpiError> {
        let unreadable = AcpiError::Unreadable {
            address,
            length: buffer.len(),
        };
        let (base, bytes) = self
            .regions
            .iter()
            .find(|(base, bytes)| {
                address >= *base && address - base + buffer.len() as u64 <= bytes.len() as u64
            })
            .ok_or(unreadable)?;
        let start = (address - base) as usize;
        buffer.copy_from_slice(&bytes[start..start + buffer.len()]);
        Ok(())
    }
}

impl FakeMemory {
    fn add_region(&mut self, base: u64, length: usize) {
        self.regions.push((base, vec![0; length]));
    }

    fn write(&mut self, address: u64, data: &[u8]) {
        let (base, bytes) = self
            .regions
            .iter_mut()
            .find(|(base, bytes)| {
                address >= *base && address - *base + data.len() as u64 <= bytes.len() as u64
            })
            .expect("test writes inside a region");
        let start = (address - *base) as usize;
        bytes[start..start + data.len()].copy_from_slice(data);
    }

    fn read_vec(&self, address: u64, length: usize) -> StdVec<u8> {
        let mut bytes = vec![0; length];
        self.read(address, &mut bytes)
            .expect("test reads inside a region");
        bytes
    }

    /// Recomputes the checksum byte of the SDT at `address` from its length field.
    fn fix_table_checksum(&mut self, address: u64) {
        let length = u32::from_le_bytes(self.read_vec(address + 4, 4).try_into().expect("4 bytes"));
        let mut table = self.read_vec(address, length as usize);
        table[9] = 0;
        table[9] = checksum_byte(&table);
        self.write(address, &table);
    }
}

fn checksum_byte(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte)))
}

/// A system description table with a correct length and checksum.
fn sdt(signature: &[u8; 4], revision: u8, body: &[u8]) -> StdVec<u8> {
    let mut table = StdVec::new();
    table.extend_from_slice(signature);
    table.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    table.push(revision);
    table.push(0); // checksum, fixed below
    table.extend_from_slice(b"BOCHS ");
    table.extend_from_slice(b"BXPC    ");
    table.extend_from_slice(&1u32.to_le_bytes());
    table.extend_from_slice(b"BXPC");
    table.extend_from_slice(&1u32.to_le_bytes());
    table.extend_from_slice(body);
    table[9] = checksum_byte(&table);
    table
}

fn rsdp_v0(rsdt: u32) -> StdVec<u8> {
    let mut rsdp = StdVec::new();
    rsdp.extend_from_slice(b"RSD PTR ");
    rsdp.push(0);
    rsdp.extend_from_slice(b"BOCHS ");
    rsdp.push(0);
    rsdp.extend_from_slice(&rsdt.to_le_bytes());
    rsdp[8] = checksum_byte(&rsdp);
    rsdp
}

fn rsdp_v2(rsdt: u32, xsdt: u64) -> StdVec<u8> {
    let mut rsdp = rsdp_v0(rsdt);
    rsdp[15] = 2;
    rsdp[8] = 0;
    rsdp[8] = checksum_byte(&rsdp);
    rsdp.extend_from_slice(&36u32.to_le_bytes());
    rsdp.extend_from_slice(&xsdt.to_le_bytes());
    rsdp.extend_from_slice(&[0; 4]);
    rsdp[32] = checksum_byte(&rsdp);
    rsdp
}

/// The MADT body QEMU q35 builds for one CPU.
fn q35_madt_body() -> StdVec<u8> {
    let mut body = StdVec::new();
    body.extend_from_slice(&0xFEE0_0000u32.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes()); // PCAT_COMPAT
    body.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]); // CPU uid 0, apic id 0, enabled
    body.extend_from_slice(&[1, 12, 0, 0]); // I/O APIC id 0
    body.extend_from_slice(&0xFEC0_0000u32.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&madt_override(0, 2, 0));
    for irq in [5, 9, 10, 11] {
        body.extend_from_slice(&madt_override(irq, u32::from(irq), 0x000D)); // level, active high
    }
    body.extend_from_slice(&[4, 6, 0xFF, 0, 0, 1]); // NMI on LINT1 of every CPU
    body
}

fn madt_override(irq: u8, gsi: u32, flags: u16) -> StdVec<u8> {
    let mut entry = vec![2, 10, 0, irq];
    entry.extend_from_slice(&gsi.to_le_bytes());
    entry.extend_from_slice(&flags.to_le_bytes());
    entry
}

fn mcfg_body(entries: &[(u64, u16, u8, u8)]) -> StdVec<u8> {
    let mut body = vec![0; 8];
    for &(base, segment, start, end) in entries {
        body.extend_from_slice(&base.to_le_bytes());
        body.extend_from_slice(&segment.to_le_bytes());
        body.extend_from_slice(&[start, end, 0, 0, 0, 0]);
    }
    body
}

const EBDA: u64 = 0x9_FC00;
const RSDP_AT: u64 = 0xF_5A60;
const TABLES: u64 = 0x7FE_0000;
const RSDT_AT: u64 = TABLES;
const XSDT_AT: u64 = TABLES + 0x100;
const FACP_AT: u64 = TABLES + 0x1000;
const MADT_AT: u64 = TABLES + 0x2000;
const MCFG_AT: u64 = TABLES + 0x3000;
const WAET_AT: u64 = TABLES + 0x4000;

fn root_body(addresses: &[u64], wide: bool) -> StdVec<u8> {
    let mut body = StdVec::new();
    for &address in addresses {
        if wide {
            body.extend_from_slice(&address.to_le_bytes());
        } else {
            body.extend_from_slice(&(address as u32).to_le_bytes());
        }
    }
    body
}

/// QEMU q35 firmware: BDA pointing at an EBDA, RSDP in the BIOS area, and
/// FACP, APIC, MCFG, WAET tables; revision 2 adds an XSDT.
fn q35(revision: u8) -> FakeMemory {
    let mut memory = FakeMemory::default();
    memory.add_region(0, 0x10_0000);
    memory.add_region(TABLES, 0x1_0000);
    memory.write(0x40E, &((EBDA >> 4) as u16).to_le_bytes());
    let tables = [FACP_AT, MADT_AT, MCFG_AT, WAET_AT];
    memory.write(RSDT_AT, &sdt(b"RSDT", 1, &root_body(&tables, false)));
    if revision >= 2 {
        memory.write(XSDT_AT, &sdt(b"XSDT", 1, &root_body(&tables, true)));
        memory.write(RSDP_AT, &rsdp_v2(RSDT_AT as u32, XSDT_AT));
    } else {
        memory.write(RSDP_AT, &rsdp_v0(RSDT_AT as u32));
    }
    memory.write(FACP_AT, &sdt(b"FACP", 1, &[0; 80]));
    memory.write(MADT_AT, &sdt(b"APIC", 1, &q35_madt_body()));
    memory.write(
        MCFG_AT,
        &sdt(b"MCFG", 1, &mcfg_body(&[(0xB000_0000, 0, 0, 255)])),
    );
    memory.write(WAET_AT, &sdt(b"WAET", 1, &[2, 0, 0, 0]));
    memory
}

fn parse_q35(memory: &FakeMemory) -> Result<AcpiInfo, AcpiError> {
    parse(memory, find_rsdp(memory)?)
}

fn assert_q35_tables(info: &AcpiInfo) {
    assert_eq!(info.oem_id, *b"BOCHS ");
    assert_eq!(
        info.tables.as_slice(),
        &[*b"FACP", *b"APIC", *b"MCFG", *b"WAET"]
    );
    let madt = info.madt.as_ref().expect("q35 has a MADT");
    assert_eq!(madt.local_apic_address, 0xFEE0_0000);
    assert!(madt.legacy_pics);
    let cpu = LocalApic {
        processor_uid: 0,
        apic_id: 0,
        enabled: true,
        online_capable: false,
        x2apic: false,
    };
    assert_eq!(madt.local_apics.as_slice(), &[cpu]);
    assert_eq!(madt.enabled_local_apics().count(), 1);
    assert_eq!(
        madt.io_apics.as_slice(),
        &[IoApic {
            id: 0,
            address: 0xFEC0_0000,
            gsi_base: 0
        }]
    );
    let timer = InterruptOverride {
        bus: 0,
        source_irq: 0,
        gsi: 2,
        polarity: Polarity::ConformsToBus,
        trigger: Trigger::ConformsToBus,
    };
    assert_eq!(madt.overrides.len(), 5);
    assert_eq!(madt.overrides[0], timer);
    for (entry, irq) in madt.overrides[1..].iter().zip([5, 9, 10, 11]) {
        let level = InterruptOverride {
            bus: 0,
            source_irq: irq,
            gsi: u32::from(irq),
            polarity: Polarity::ActiveHigh,
            trigger: Trigger::Level,
        };
        assert_eq!(*entry, level);
    }
    let nmi = LocalApicNmi {
        processor_uid: None,
        polarity: Polarity::ConformsToBus,
        trigger: Trigger::ConformsToBus,
        lint: 1,
    };
    assert_eq!(madt.nmis.as_slice(), &[nmi]);
    assert_eq!(
        madt.gsi_for_isa_irq(0),
        (2, Polarity::ActiveHigh, Trigger::Edge)
    );
    assert_eq!(
        madt.gsi_for_isa_irq(4),
        (4, Polarity::ActiveHigh, Trigger::Edge)
    );
    assert_eq!(
        madt.gsi_for_isa_irq(9),
        (9, Polarity::ActiveHigh, Trigger::Level)
    );
    assert_eq!(
        madt.gsi_for_isa_irq(11),
        (11, Polarity::ActiveHigh, Trigger::Level)
    );

    let pci = PciConfigRegion {
        base_address: 0xB000_0000,
        segment: 0,
        start_bus: 0,
        end_bus: 255,
    };
    assert_eq!(info.pci_config_regions.as_slice(), &[pci]);
    assert_eq!(pci.size_bytes(), 256 << 20);
    assert_eq!(pci.start_address(), 0xB000_0000);
    assert_eq!(pci.ecam_address(0, 0, 0), Some(0xB000_0000));
    assert_eq!(
        pci.ecam_address(1, 2, 3),
        Some(0xB000_0000 + (1 << 20) + (2 << 15) + (3 << 12))
    );
    assert_eq!(
        pci.ecam_address(255, 31, 7),
        Some(0xB000_0000 + (256 << 20) - 4096)
    );
    assert_eq!(pci.ecam_address(0, 32, 0), None);
    assert_eq!(pci.ecam_address(0, 0, 8), None);
}

#[test]
fn q35_rsdp_v0_with_rsdt() {
    let memory = q35(0);
    assert_eq!(find_rsdp(&memory), Ok(RSDP_AT));
    let info = parse_q35(&memory).expect("valid firmware parses");
    assert_eq!(info.revision, 0);
    assert_q35_tables(&info);
}

#[test]
fn q35_rsdp_v2_uses_xsdt() {
    let mut memory = q35(2);
    // Spoil the RSDT: only the XSDT may be used.
    memory.write(RSDT_AT, b"JUNK");
    let info = parse_q35(&memory).expect("valid firmware parses");
    assert_eq!(info.revision, 2);
    assert_q35_tables(&info);
}

#[test]
fn v2_with_null_xsdt_falls_back_to_rsdt() {
    let mut memory = q35(2);
    memory.write(RSDP_AT, &rsdp_v2(RSDT_AT as u32, 0));
    memory.write(XSDT_AT, b"JUNK");
    let info = parse_q35(&memory).expect("RSDT is used");
    assert_eq!(info.revision, 2);
    assert_q35_tables(&info);
}

#[test]
fn rsdp_in_ebda_is_found_first() {
    let mut memory = q35(0);
    memory.write(EBDA + 0x40, &rsdp_v0(RSDT_AT as u32));
    assert_eq!(find_rsdp(&memory), Ok(EBDA + 0x40));
    // Misaligned copies are not found.
    let mut memory = q35(0);
    memory.write(RSDP_AT, &[0; 20]);
    memory.write(EBDA + 0x48, &rsdp_v0(RSDT_AT as u32));
    assert_eq!(find_rsdp(&memory), Err(AcpiError::RsdpNotFound));
}

#[test]
fn implausible_or_missing_ebda_is_skipped() {
    for segment in [0u16, 0xFFFF, 0x0010] {
        let mut memory = q35(0);
        memory.write(0x40E, &segment.to_le_bytes());
        assert_eq!(find_rsdp(&memory), Ok(RSDP_AT), "segment {segment:#x}");
    }
    let mut memory = q35(0);
    memory.regions[0].1.truncate(0x400); // BDA unreadable, BIOS area too
    memory.add_region(0xE_0000, 0x2_0000);
    memory.write(RSDP_AT, &rsdp_v0(RSDT_AT as u32));
    assert_eq!(find_rsdp(&memory), Ok(RSDP_AT));
}

#[test]
fn no_rsdp_is_an_error() {
    let mut memory = q35(0);
    memory.write(RSDP_AT, &[0; 20]);
    assert_eq!(find_rsdp(&memory), Err(AcpiError::RsdpNotFound));
    assert_eq!(
        find_rsdp(&FakeMemory::default()),
        Err(AcpiError::RsdpNotFound)
    );
    assert_eq!(
        parse(&memory, RSDP_AT).err(),
        Some(AcpiError::RsdpSignature { address: RSDP_AT })
    );
}

#[test]
fn bad_rsdp_checksums() {
    let mut memory = q35(0);
    memory.write(RSDP_AT + 9, b"X");
    let expected = AcpiError::RsdpChecksum {
        address: RSDP_AT,
        extended: false,
    };
    assert_eq!(find_rsdp(&memory), Err(expected));
    assert_eq!(parse(&memory, RSDP_AT).err(), Some(expected));
    // A bad candidate does not hide a good one further on.
    memory.write(RSDP_AT + 0x100, &rsdp_v0(RSDT_AT as u32));
    assert_eq!(find_rsdp(&memory), Ok(RSDP_AT + 0x100));

    let mut memory = q35(2);
    memory.write(RSDP_AT + 33, &[0x55]);
    assert_eq!(
        find_rsdp(&memory),
        Err(AcpiError::RsdpChecksum {
            address: RSDP_AT,
            extended: true
        })
    );
}

#[test]
fn rsdp_length_is_bounded() {
    for length in [0u32, 20, 35, 4097, u32::MAX] {
        let mut memory = q35(2);
        let mut rsdp = rsdp_v2(RSDT_AT as u32, XSDT_AT);
        rsdp[20..24].copy_from_slice(&length.to_le_bytes());
        rsdp[32] = 0;
        rsdp[32] = checksum_byte(&rsdp);
        memory.write(RSDP_AT, &rsdp);
        assert_eq!(
            find_rsdp(&memory),
            Err(AcpiError::RsdpLength {
                address: RSDP_AT,
                length
            })
        );
    }
}

#[test]
fn bad_root_tables() {
    let mut memory = q35(0);
    memory.write(RSDT_AT + 20, b"Z");
    assert_eq!(
        parse_q35(&memory).err(),
        Some(AcpiError::TableChecksum {
            signature: *b"RSDT",
            address: RSDT_AT
        })
    );

    for length in [0u32, 35, 64 * 1024 + 1, u32::MAX] {
        let mut memory = q35(0);
        memory.write(RSDT_AT + 4, &length.to_le_bytes());
        let expected = AcpiError::TableLength {
            signature: *b"RSDT",
            address: RSDT_AT,
            length,
        };
        assert_eq!(parse_q35(&memory).err(), Some(expected));
    }

    // Within bounds but running off the end of readable memory.
    let mut memory = q35(0);
    let late_rsdt = TABLES + 0xF000;
    let mut rsdt = sdt(b"RSDT", 1, &root_body(&[MADT_AT], false));
    rsdt[4..8].copy_from_slice(&(60 * 1024u32).to_le_bytes());
    memory.write(late_rsdt, &rsdt);
    memory.write(RSDP_AT, &rsdp_v0(late_rsdt as u32));
    assert!(matches!(
        parse_q35(&memory),
        Err(AcpiError::Unreadable { .. })
    ));

    let mut memory = q35(0);
    memory.write(RSDT_AT, b"XSDT");
    memory.fix_table_checksum(RSDT_AT);
    let expected = AcpiError::SignatureMismatch {
        address: RSDT_AT,
        expected: *b"RSDT",
        found: *b"XSDT",
    };
    assert_eq!(parse_q35(&memory).err(), Some(expected));

    let mut memory = q35(2);
    memory.write(RSDP_AT, &rsdp_v2(0, u64::MAX - 8));
    assert!(matches!(
        parse_q35(&memory),
        Err(AcpiError::Unreadable { .. })
    ));
}

#[test]
fn null_and_excess_root_entries() {
    let mut memory = q35(0);
    let mut entries = vec![0, MADT_AT];
    entries.extend(std::iter::repeat_n(WAET_AT, 100));
    memory.write(RSDT_AT, &sdt(b"RSDT", 1, &root_body(&entries, false)));
    let info = parse_q35(&memory).expect("parses");
    assert_eq!(info.tables.len(), 32);
    assert_eq!(info.tables[0], *b"APIC");
    assert!(info.madt.is_some());
}

#[test]
fn unused_table_with_bad_checksum_is_skipped() {
    let mut memory = q35(0);
    memory.write(WAET_AT + 36, &[9]);
    let info = parse_q35(&memory).expect("WAET is not needed");
    assert_eq!(info.tables.as_slice(), &[*b"FACP", *b"APIC", *b"MCFG"]);
}

#[test]
fn bad_madt_checksum() {
    let mut memory = q35(0);
    memory.write(MADT_AT + 40, &[0]);
    let expected = AcpiError::TableChecksum {
        signature: *b"APIC",
        address: MADT_AT,
    };
    assert_eq!(parse_q35(&memory).err(), Some(expected));
    assert_eq!(
        expected.to_string(),
        "ACPI: bad checksum of APIC at 0x7fe2000"
    );
}

/// The q35 MADT with one more entry appended (checksum fixed).
fn madt_with(extra: &[u8]) -> FakeMemory {
    let mut memory = q35(0);
    let mut body = q35_madt_body();
    body.extend_from_slice(extra);
    memory.write(MADT_AT, &sdt(b"APIC", 1, &body));
    memory
}

#[test]
fn malformed_madt_entries() {
    let offset = 36 + q35_madt_body().len();
    let cases: [(&[u8], usize); 5] = [
        (&[0, 0, 0, 0], 0),       // length 0
        (&[0, 1, 0, 0], 1),       // length 1
        (&[0, 9, 0, 0, 1, 0], 9), // runs past the end
        (&[1, 4, 0, 0], 4),       // I/O APIC too short for its fields
        (&[0x7F], 1),             // a lone type byte at the very end
    ];
    for (extra, length) in cases {
        let memory = madt_with(extra);
        let expected = AcpiError::MalformedEntry {
            signature: *b"APIC",
            address: MADT_AT,
            offset,
            length,
        };
        assert_eq!(parse_q35(&memory).err(), Some(expected), "entry {extra:?}");
    }
    let memory = madt_with(&[4, 6, 0xFF, 0, 0, 2]);
    assert!(
        matches!(parse_q35(&memory), Err(AcpiError::InvalidField { offset: o, .. }) if o == offset)
    );

    let mut memory = q35(0);
    memory.write(MADT_AT, &sdt(b"APIC", 1, &[0; 4]));
    let expected = AcpiError::TableLength {
        signature: *b"APIC",
        address: MADT_AT,
        length: 40,
    };
    assert_eq!(parse_q35(&memory).err(), Some(expected));
}

#[test]
fn madt_optional_entries() {
    let mut extra = vec![0x7F, 5, 1, 2, 3]; // unknown type, skipped by length
    extra.extend_from_slice(&[5, 12, 0, 0]);
    extra.extend_from_slice(&0x1_FEE0_0000u64.to_le_bytes());
    extra.extend_from_slice(&[9, 16, 0, 0]);
    extra.extend_from_slice(&300u32.to_le_bytes());
    extra.extend_from_slice(&2u32.to_le_bytes()); // online capable, disabled
    extra.extend_from_slice(&7u32.to_le_bytes());
    extra.extend_from_slice(&[0x0A, 12, 0x0F, 0]); // level, active low
    extra.extend_from_slice(&7u32.to_le_bytes());
    extra.extend_from_slice(&[0, 0, 0, 0]);
    extra.extend_from_slice(&madt_override(3, 19, 0x0003)); // active low, bus trigger
    let madt = parse_q35(&madt_with(&extra))
        .expect("parses")
        .madt
        .expect("has MADT");
    assert_eq!(madt.local_apic_address, 0x1_FEE0_0000);
    let x2apic = LocalApic {
        processor_uid: 7,
        apic_id: 300,
        enabled: false,
        online_capable: true,
        x2apic: true,
    };
    assert_eq!(madt.local_apics.last(), Some(&x2apic));
    assert_eq!(madt.enabled_local_apics().count(), 1);
    let nmi = LocalApicNmi {
        processor_uid: Some(7),
        polarity: Polarity::ActiveLow,
        trigger: Trigger::Level,
        lint: 0,
    };
    assert_eq!(madt.nmis.last(), Some(&nmi));
    assert_eq!(
        madt.gsi_for_isa_irq(3),
        (19, Polarity::ActiveLow, Trigger::Edge)
    );
}

#[test]
fn madt_capacity_overflow_is_not_an_error() {
    let mut extra = StdVec::new();
    for id in 1..=100u8 {
        extra.extend_from_slice(&[0, 8, id, id, 1, 0, 0, 0]);
    }
    for irq in 0..30u8 {
        extra.extend_from_slice(&madt_override(irq, 0, 0));
    }
    let madt = parse_q35(&madt_with(&extra))
        .expect("parses")
        .madt
        .expect("has MADT");
    assert_eq!(madt.local_apics.len(), 64);
    assert_eq!(madt.overrides.len(), 24);
    assert_eq!(madt.local_apics[63].apic_id, 63);
}

#[test]
fn malformed_mcfg() {
    let mut memory = q35(0);
    let mut body = mcfg_body(&[(0xB000_0000, 0, 0, 255)]);
    body.extend_from_slice(&[0; 7]);
    memory.write(MCFG_AT, &sdt(b"MCFG", 1, &body));
    let expected = AcpiError::MalformedEntry {
        signature: *b"MCFG",
        address: MCFG_AT,
        offset: 60,
        length: 7,
    };
    assert_eq!(parse_q35(&memory).err(), Some(expected));

    let mut memory = q35(0);
    memory.write(
        MCFG_AT,
        &sdt(b"MCFG", 1, &mcfg_body(&[(0xB000_0000, 0, 10, 9)])),
    );
    assert!(matches!(
        parse_q35(&memory),
        Err(AcpiError::InvalidField { offset: 44, .. })
    ));

    let mut memory = q35(0);
    memory.write(
        MCFG_AT,
        &sdt(b"MCFG", 1, &mcfg_body(&[(u64::MAX - 0xFFFF, 0, 0, 0)])),
    );
    assert!(matches!(
        parse_q35(&memory),
        Err(AcpiError::InvalidField { .. })
    ));

    let mut memory = q35(0);
    memory.write(MCFG_AT, &sdt(b"MCFG", 1, &[0; 4]));
    assert!(matches!(
        parse_q35(&memory),
        Err(AcpiError::TableLength { length: 40, .. })
    ));
}

#[test]
fn pci_region_not_starting_at_bus_zero() {
    let region = PciConfigRegion {
        base_address: 0xE000_0000,
        segment: 1,
        start_bus: 0x10,
        end_bus: 0x1F,
    };
    assert_eq!(region.size_bytes(), 16 << 20);
    assert_eq!(region.start_address(), 0xE100_0000);
    assert_eq!(region.ecam_address(0x10, 0, 0), Some(0xE100_0000));
    assert_eq!(region.ecam_address(0x0F, 0, 0), None);
    assert_eq!(region.ecam_address(0x20, 0, 0), None);
}

#[test]
fn errors_display_what_and_where() {
    let error = AcpiError::MalformedEntry {
        signature: *b"AP\x00C",
        address: 0x1000,
        offset: 44,
        length: 0,
    };
    assert_eq!(
        error.to_string(),
        "ACPI: malformed entry of length 0 at offset 44 of AP?C at 0x1000"
    );
    assert_eq!(
        AcpiError::RsdpNotFound.to_string(),
        "ACPI: no RSDP in the EBDA or 0xe0000..0x100000"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary bytes as the root table: never a panic.
    #[test]
    fn arbitrary_root_table(bytes in proptest::collection::vec(any::<u8>(), 0..2048), fix in any::<bool>()) {
        let mut memory = q35(0);
        memory.write(RSDT_AT, &bytes);
        if fix && bytes.len() >= 36 {
            let length = (bytes.len() as u32).min(0x1_0000);
            memory.write(RSDT_AT + 4, &length.to_le_bytes());
            memory.fix_table_checksum(RSDT_AT);
        }
        let _ = parse(&memory, RSDP_AT);
    }

    /// Arbitrary MADT and MCFG bodies behind valid headers: never a panic.
    #[test]
    fn arbitrary_madt_and_mcfg(madt in proptest::collection::vec(any::<u8>(), 0..1024),
                               mcfg in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut memory = q35(2);
        memory.write(MADT_AT, &sdt(b"APIC", 1, &madt));
        memory.write(MCFG_AT, &sdt(b"MCFG", 1, &mcfg));
        if let Ok(info) = parse(&memory, RSDP_AT) {
            let madt = info.madt.expect("a valid MADT is returned");
            for irq in 0..16 {
                let _ = madt.gsi_for_isa_irq(irq);
            }
        }
    }

    /// MADTs built of plausible entries (known types, lengths near the right
    /// ones, random contents): exercises every entry decoder.
    #[test]
    fn structured_madt(entries in proptest::collection::vec(
        (prop_oneof![0u8..=10, any::<u8>()], 0u8..20, proptest::collection::vec(any::<u8>(), 18)), 0..40)) {
        let mut body = q35_madt_body();
        body.truncate(8);
        for (kind, length, contents) in entries {
            body.push(kind);
            body.push(length);
            body.extend_from_slice(&contents[..usize::from(length.saturating_sub(2))]);
        }
        let mut memory = q35(0);
        memory.write(MADT_AT, &sdt(b"APIC", 1, &body));
        let _ = parse(&memory, RSDP_AT);
    }

    /// Random byte flips in valid firmware, with checksums re-fixed or not.
    #[test]
    fn mutated_firmware(flips in proptest::collection::vec((0u64..0x4100, any::<u8>()), 1..16), fix in any::<bool>()) {
        let mut memory = q35(2);
        for (offset, value) in flips {
            memory.write(TABLES + offset, &[value]);
        }
        if fix {
            for table in [RSDT_AT, XSDT_AT, MADT_AT, MCFG_AT] {
                let length = u32::from_le_bytes(memory.read_vec(table + 4, 4).try_into().expect("4 bytes"));
                if (36..=0x1000).contains(&length) {
                    memory.fix_table_checksum(table);
                }
            }
        }
        let _ = parse(&memory, RSDP_AT);
    }

    /// Arbitrary bytes where the RSDP should be, found or not, parsed or not.
    #[test]
    fn arbitrary_rsdp(bytes in proptest::collection::vec(any::<u8>(), 36), revision in 0u8..4, fix in any::<bool>()) {
        let mut rsdp = bytes;
        rsdp[..8].copy_from_slice(b"RSD PTR ");
        rsdp[15] = revision;
        if fix {
            rsdp[8] = 0;
            rsdp[8] = checksum_byte(&rsdp[..20]);
        }
        let mut memory = q35(0);
        memory.write(RSDP_AT, &rsdp);
        if let Ok(address) = find_rsdp(&memory) {
            let _ = parse(&memory, address);
        }
        let _ = parse(&memory, RSDP_AT);
    }
}
