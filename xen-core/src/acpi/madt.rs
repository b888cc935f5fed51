//! The MADT ("APIC" table): local APICs, I/O APICs, interrupt source
//! overrides and NMI wiring.

use heapless::Vec;

use super::{
    push_counting, warn_dropped, AcpiError, Entry, PhysicalMemory, Table, SDT_HEADER_LENGTH,
};

/// Interrupt signal polarity, from MPS INTI flags bits 0..2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// The bus's default (active high for ISA). Also used for the reserved encoding.
    ConformsToBus,
    /// Asserted when high.
    ActiveHigh,
    /// Asserted when low.
    ActiveLow,
}

/// Interrupt trigger mode, from MPS INTI flags bits 2..4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The bus's default (edge for ISA). Also used for the reserved encoding.
    ConformsToBus,
    /// Edge triggered.
    Edge,
    /// Level triggered.
    Level,
}

fn decode_inti_flags(flags: u16) -> (Polarity, Trigger) {
    let polarity = match flags & 0b11 {
        0b01 => Polarity::ActiveHigh,
        0b11 => Polarity::ActiveLow,
        0b00 => Polarity::ConformsToBus,
        _ => {
            log::warn!("ACPI: reserved interrupt polarity in flags {flags:#x}; using bus default");
            Polarity::ConformsToBus
        }
    };
    let trigger = match (flags >> 2) & 0b11 {
        0b01 => Trigger::Edge,
        0b11 => Trigger::Level,
        0b00 => Trigger::ConformsToBus,
        _ => {
            log::warn!("ACPI: reserved trigger mode in flags {flags:#x}; using bus default");
            Trigger::ConformsToBus
        }
    };
    (polarity, trigger)
}

/// A processor's local APIC (MADT entry type 0, or type 9 for x2APIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalApic {
    /// The ACPI processor UID (matches the namespace's processor objects).
    pub processor_uid: u32,
    /// The (x2)APIC id.
    pub apic_id: u32,
    /// The processor is usable now (flags bit 0).
    pub enabled: bool,
    /// A disabled processor can be brought online at run time (flags bit 1).
    pub online_capable: bool,
    /// The entry was an x2APIC entry (type 9), so `apic_id` may exceed 255.
    pub x2apic: bool,
}

/// An I/O APIC (MADT entry type 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoApic {
    /// The I/O APIC id.
    pub id: u8,
    /// Physical address of its register window.
    pub address: u32,
    /// The first global system interrupt it serves.
    pub gsi_base: u32,
}

/// An interrupt source override (MADT entry type 2): an ISA IRQ routed to a
/// different GSI or with non-default polarity/trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterruptOverride {
    /// The source bus; 0 means ISA.
    pub bus: u8,
    /// The bus-relative IRQ.
    pub source_irq: u8,
    /// The global system interrupt it arrives on.
    pub gsi: u32,
    /// Signal polarity.
    pub polarity: Polarity,
    /// Trigger mode.
    pub trigger: Trigger,
}

/// A local APIC LINT pin wired to NMI (MADT entry type 4, or 0x0A for x2APIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalApicNmi {
    /// The processor it applies to; `None` means every processor.
    pub processor_uid: Option<u32>,
    /// Signal polarity.
    pub polarity: Polarity,
    /// Trigger mode.
    pub trigger: Trigger,
    /// The LINT pin: 0 or 1.
    pub lint: u8,
}

/// What the MADT ("APIC" table) says about the interrupt controllers and CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Madt {
    /// Physical address of the local APICs (the type 5 override wins over the 32-bit field).
    pub local_apic_address: u64,
    /// PCAT_COMPAT: the legacy dual 8259 PICs are present (and must be masked).
    pub legacy_pics: bool,
    /// Every processor entry, enabled or not.
    pub local_apics: Vec<LocalApic, 64>,
    /// The I/O APICs.
    pub io_apics: Vec<IoApic, 8>,
    /// Interrupt source overrides.
    pub overrides: Vec<InterruptOverride, 24>,
    /// Local APIC NMI wiring.
    pub nmis: Vec<LocalApicNmi, 8>,
}

impl Madt {
    /// Where ISA IRQ `irq` arrives: its GSI, polarity and trigger, with bus
    /// defaults resolved (ISA is active high, edge triggered). Without an
    /// override the mapping is the identity.
    pub fn gsi_for_isa_irq(&self, irq: u8) -> (u32, Polarity, Trigger) {
        let (gsi, polarity, trigger) = self
            .overrides
            .iter()
            .find(|entry| entry.bus == 0 && entry.source_irq == irq)
            .map_or(
                (
                    u32::from(irq),
                    Polarity::ConformsToBus,
                    Trigger::ConformsToBus,
                ),
                |entry| (entry.gsi, entry.polarity, entry.trigger),
            );
        let polarity = match polarity {
            Polarity::ConformsToBus => Polarity::ActiveHigh,
            other => other,
        };
        let trigger = match trigger {
            Trigger::ConformsToBus => Trigger::Edge,
            other => other,
        };
        (gsi, polarity, trigger)
    }

    /// The processors that are enabled now.
    pub fn enabled_local_apics(&self) -> impl Iterator<Item = &LocalApic> {
        self.local_apics.iter().filter(|apic| apic.enabled)
    }
}

/// Fixed fields of the MADT after the header: local APIC address, flags.
const ENTRIES_OFFSET: usize = SDT_HEADER_LENGTH + 8;
/// The largest entry: its length field is one byte.
const MAX_ENTRY_LENGTH: usize = u8::MAX as usize;

/// Entries dropped because a list was full, logged once at the end.
#[derive(Default)]
struct Dropped {
    local_apics: usize,
    io_apics: usize,
    overrides: usize,
    nmis: usize,
}

/// Parses a validated MADT.
pub(super) fn parse(memory: &impl PhysicalMemory, table: &Table) -> Result<Madt, AcpiError> {
    table.require_length(ENTRIES_OFFSET)?;
    let mut fixed = [0u8; 8];
    table.read(memory, SDT_HEADER_LENGTH, &mut fixed)?;
    let fixed = Entry {
        bytes: &fixed,
        table,
        offset: SDT_HEADER_LENGTH,
    };
    let mut madt = Madt {
        local_apic_address: u64::from(fixed.u32(0)?),
        legacy_pics: fixed.u32(4)? & 1 != 0,
        local_apics: Vec::new(),
        io_apics: Vec::new(),
        overrides: Vec::new(),
        nmis: Vec::new(),
    };
    let mut dropped = Dropped::default();
    let mut buffer = [0u8; MAX_ENTRY_LENGTH];
    let mut offset = ENTRIES_OFFSET;
    // Each pass advances by at least 2 bytes of a table capped at 64 KiB.
    while offset < table.length {
        let mut header = [0u8; 2];
        if table.length - offset < header.len() {
            return Err(table.malformed(offset, table.length - offset));
        }
        table.read(memory, offset, &mut header)?;
        let [kind, length] = header;
        let length = usize::from(length);
        if length < 2 || offset + length > table.length {
            return Err(table.malformed(offset, length));
        }
        let bytes = buffer
            .get_mut(..length)
            .ok_or(table.malformed(offset, length))?;
        table.read(memory, offset, bytes)?;
        parse_entry(
            &mut madt,
            &mut dropped,
            kind,
            &Entry {
                bytes,
                table,
                offset,
            },
        )?;
        offset += length;
    }
    warn_dropped(
        dropped.local_apics,
        madt.local_apics.capacity(),
        "local APICs",
    );
    warn_dropped(dropped.io_apics, madt.io_apics.capacity(), "I/O APICs");
    warn_dropped(
        dropped.overrides,
        madt.overrides.capacity(),
        "interrupt source overrides",
    );
    warn_dropped(dropped.nmis, madt.nmis.capacity(), "local APIC NMI entries");
    Ok(madt)
}

fn parse_entry(
    madt: &mut Madt,
    dropped: &mut Dropped,
    kind: u8,
    entry: &Entry<'_>,
) -> Result<(), AcpiError> {
    match kind {
        0 => {
            let flags = entry.u32(4)?;
            let apic = LocalApic {
                processor_uid: u32::from(entry.u8(2)?),
                apic_id: u32::from(entry.u8(3)?),
                enabled: flags & 1 != 0,
                online_capable: flags & 2 != 0,
                x2apic: false,
            };
            push_counting(&mut madt.local_apics, apic, &mut dropped.local_apics);
        }
        1 => {
            let io_apic = IoApic {
                id: entry.u8(2)?,
                address: entry.u32(4)?,
                gsi_base: entry.u32(8)?,
            };
            push_counting(&mut madt.io_apics, io_apic, &mut dropped.io_apics);
        }
        2 => {
            let (polarity, trigger) = decode_inti_flags(entry.u16(8)?);
            let (bus, source_irq, gsi) = (entry.u8(2)?, entry.u8(3)?, entry.u32(4)?);
            let source_override = InterruptOverride {
                bus,
                source_irq,
                gsi,
                polarity,
                trigger,
            };
            push_counting(&mut madt.overrides, source_override, &mut dropped.overrides);
        }
        4 => {
            let (polarity, trigger) = decode_inti_flags(entry.u16(3)?);
            let uid = entry.u8(2)?;
            let processor_uid = (uid != u8::MAX).then_some(u32::from(uid));
            let nmi = LocalApicNmi {
                processor_uid,
                polarity,
                trigger,
                lint: entry.u8(5)?,
            };
            push_nmi(madt, dropped, nmi, entry)?;
        }
        5 => madt.local_apic_address = entry.u64(4)?,
        9 => {
            let flags = entry.u32(8)?;
            let apic = LocalApic {
                processor_uid: entry.u32(12)?,
                apic_id: entry.u32(4)?,
                enabled: flags & 1 != 0,
                online_capable: flags & 2 != 0,
                x2apic: true,
            };
            push_counting(&mut madt.local_apics, apic, &mut dropped.local_apics);
        }
        0x0A => {
            let (polarity, trigger) = decode_inti_flags(entry.u16(2)?);
            let uid = entry.u32(4)?;
            let processor_uid = (uid != u32::MAX).then_some(uid);
            let nmi = LocalApicNmi {
                processor_uid,
                polarity,
                trigger,
                lint: entry.u8(8)?,
            };
            push_nmi(madt, dropped, nmi, entry)?;
        }
        // Other types (NMI sources, GIC structures, ...) are not ours: skipped by length.
        _ => {}
    }
    Ok(())
}

fn push_nmi(
    madt: &mut Madt,
    dropped: &mut Dropped,
    nmi: LocalApicNmi,
    entry: &Entry<'_>,
) -> Result<(), AcpiError> {
    if nmi.lint > 1 {
        return Err(entry.table.invalid(
            entry.offset,
            "local APIC NMI on a LINT pin other than 0 or 1",
        ));
    }
    push_counting(&mut madt.nmis, nmi, &mut dropped.nmis);
    Ok(())
}
