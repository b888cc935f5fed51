//! The guest-facing filter: the driver domain's config-space reads and
//! writes of one assigned function, register by register.
//!
//! | registers | guest reads | guest writes |
//! |---|---|---|
//! | IDs, class, header type, subsystem, CardBus CIS | real | dropped |
//! | command (0x04) | real | bus master, MWI, INTx disable only |
//! | status (0x06) | real | write-1-to-clear of the error bits only |
//! | BARs (0x10..0x28) | the real placement, or the size mask while the guest sizes | all-ones starts sizing; nothing reaches the device |
//! | expansion ROM (0x30) | 0 (no ROM: it is never mapped) | dropped |
//! | capability pointer (0x34), `next` bytes | the list without MSI/MSI-X | dropped |
//! | interrupt line (0x3C) | the hypervisor's value | ignored |
//! | MSI, MSI-X capabilities | 0 | refused ([`FilterError::MsiOwnedByHypervisor`]) |
//! | other capabilities, device-specific 0x40..0x100 | real | dropped |
//! | PCIe extended space (0x100..0x1000) | 0 (no extended capabilities) | dropped |
//!
//! Writes to capabilities are dropped, not passed through: virtio's
//! `VIRTIO_PCI_CAP_PCI_CFG` is a window into the BARs (it could reach the
//! MSI-X table), power management could put the function in D3hot and lose
//! its BARs, and the PCIe capability could change payload sizes or start a
//! function-level reset. virtio-drivers writes none of them.

use super::probe::capability_slot;
use super::register::*;
use super::{AssignedFunction, ConfigSpace, FilterError, CONFIG_SPACE_SIZE};

/// The command bits the guest may change.
const COMMAND_GUEST_WRITABLE: u16 = COMMAND_BUS_MASTER | COMMAND_MEMORY_WRITE_INVALIDATE | COMMAND_INTX_DISABLE;

/// Writes the filter refused or ignored, per function, for the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilterCounters {
    /// Writes that would have moved a BAR (ignored: placement is the
    /// hypervisor's).
    pub bar_moves_ignored: u64,
    /// Command writes that tried to change a bit the guest does not own
    /// (decode, SERR, parity...); its other bits were applied.
    pub command_bits_ignored: u64,
    /// Writes into the MSI or MSI-X capability (refused with an error).
    pub msi_writes_refused: u64,
    /// Writes to the interrupt line register (ignored).
    pub interrupt_line_writes_ignored: u64,
    /// Writes to read-only or unknown registers: IDs, header, expansion ROM,
    /// capabilities, device-specific and extended space (dropped).
    pub read_only_writes_dropped: u64,
    /// Accesses with a bad offset, size, alignment or value (refused with an
    /// error).
    pub malformed_accesses: u64,
}

impl FilterCounters {
    /// Every write refused or ignored, and every malformed access.
    pub fn total(&self) -> u64 {
        self.bar_moves_ignored
            .saturating_add(self.command_bits_ignored)
            .saturating_add(self.msi_writes_refused)
            .saturating_add(self.interrupt_line_writes_ignored)
            .saturating_add(self.read_only_writes_dropped)
            .saturating_add(self.malformed_accesses)
    }
}

/// Adds one to a counter, without ever overflowing.
fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

/// A checked access: which dword, and which bytes of it.
#[derive(Clone, Copy)]
struct Access {
    /// The dword-aligned offset.
    dword: u16,
    /// Bit position of the access in the dword.
    shift: u32,
    /// The accessed bits of the dword.
    mask: u32,
}

/// Checks `offset` and `size` and places the access in its dword.
fn check_access(offset: u32, size: u32) -> Result<Access, FilterError> {
    if offset >= CONFIG_SPACE_SIZE {
        return Err(FilterError::OffsetOutOfRange);
    }
    let width_mask = match size {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => u32::MAX,
        _ => return Err(FilterError::BadSize),
    };
    if offset % size != 0 {
        return Err(FilterError::Misaligned);
    }
    let shift = (offset % 4) * 8;
    Ok(Access { dword: (offset & !3) as u16, shift, mask: width_mask << shift })
}

impl<C: ConfigSpace> AssignedFunction<C> {
    /// The guest reads `size` (1, 2 or 4) bytes at `offset` (a multiple of
    /// `size`, below 4096): what it is allowed to see, in the low bits.
    pub fn read(&mut self, offset: u32, size: u32) -> Result<u32, FilterError> {
        let access = self.checked(offset, size)?;
        Ok((self.guest_view(access.dword) & access.mask) >> access.shift)
    }

    /// The guest writes the low `size` (1, 2 or 4) bytes of `value` at
    /// `offset` (a multiple of `size`, below 4096). `Ok` means the write was
    /// applied, emulated or (counted and) ignored; an error means it was
    /// refused.
    pub fn write(&mut self, offset: u32, size: u32, value: u32) -> Result<(), FilterError> {
        let access = self.checked(offset, size)?;
        if value & !(access.mask >> access.shift) != 0 {
            bump(&mut self.counters.malformed_accesses);
            return Err(FilterError::ValueTooWide);
        }
        let bits = value << access.shift;
        match access.dword {
            COMMAND_STATUS => self.write_command_status(access.mask, bits),
            BAR0..BAR_END => self.write_bar(usize::from((access.dword - BAR0) / 4), access.mask, bits),
            INTERRUPT if access.mask & 0xFF != 0 => bump(&mut self.counters.interrupt_line_writes_ignored),
            dword if self.is_hidden(dword) => {
                bump(&mut self.counters.msi_writes_refused);
                // The first only: the owner can repeat it at will, and a log
                // line goes out on the serial port with interrupts off. The
                // counters carry the rest (logged when the device is released).
                if self.counters.msi_writes_refused == 1 {
                    log::warn!("PCI {}: write to MSI/MSI-X at {offset:#x} refused (further ones are counted, not logged)", self.bdf);
                }
                return Err(FilterError::MsiOwnedByHypervisor);
            }
            _ => bump(&mut self.counters.read_only_writes_dropped),
        }
        Ok(())
    }

    /// [`check_access`], counting a refusal.
    fn checked(&mut self, offset: u32, size: u32) -> Result<Access, FilterError> {
        check_access(offset, size).inspect_err(|_| bump(&mut self.counters.malformed_accesses))
    }

    /// Whether the dword at `dword` belongs to MSI or MSI-X.
    fn is_hidden(&self, dword: u16) -> bool {
        capability_slot(dword).is_some_and(|slot| self.hidden_dwords & (1 << slot) != 0)
    }

    /// The offset of the first capability the guest may see at or after
    /// list position `from`, or 0 (end of list).
    fn next_visible(&self, from: usize) -> u8 {
        self.capabilities.iter().skip(from).find(|capability| !capability.hidden).map_or(0, |capability| capability.offset)
    }

    /// The whole dword at `dword` as the guest sees it.
    fn guest_view(&self, dword: u16) -> u32 {
        match dword {
            COMMAND_STATUS => {
                let real = self.config.read32(COMMAND_STATUS);
                if self.next_visible(0) == 0 {
                    real & !(u32::from(STATUS_CAPABILITIES_LIST) << 16)
                } else {
                    real
                }
            }
            BAR0..BAR_END => {
                let index = usize::from((dword - BAR0) / 4);
                if self.bar_sizing[index] {
                    self.bar_size_masks[index]
                } else {
                    self.bar_values[index]
                }
            }
            EXPANSION_ROM => 0,
            CAPABILITIES_POINTER => u32::from(self.next_visible(0)),
            INTERRUPT => (self.config.read32(INTERRUPT) & !0xFF) | u32::from(self.interrupt_line),
            EXTENDED_START.. => 0,
            dword if self.is_hidden(dword) => 0,
            dword => {
                let real = self.config.read32(dword);
                match self.capabilities.iter().position(|capability| u16::from(capability.offset) == dword) {
                    // A capability header: its `next` byte skips hidden ones.
                    Some(position) => (real & !0xFF00) | u32::from(self.next_visible(position + 1)) << 8,
                    None => real,
                }
            }
        }
    }

    /// A write to the command/status dword: the guest's command bits go
    /// through, the rest stay as they are; status error bits it writes as 1
    /// are cleared.
    fn write_command_status(&mut self, mask: u32, bits: u32) {
        let real = self.config.read32(COMMAND_STATUS);
        let real_command = real as u16;
        let mut command = real_command;
        if mask & 0xFFFF != 0 {
            let requested = ((real & !mask) | bits) as u16;
            command = (real_command & !COMMAND_GUEST_WRITABLE) | (requested & COMMAND_GUEST_WRITABLE);
            if (requested ^ real_command) & !COMMAND_GUEST_WRITABLE & COMMAND_DEFINED != 0 {
                bump(&mut self.counters.command_bits_ignored);
            }
        }
        let status_clear = (bits >> 16) as u16 & STATUS_ERROR_BITS;
        if command != real_command || status_clear != 0 {
            // Zeroes in the status half leave its write-1-to-clear bits be.
            self.config.write32(COMMAND_STATUS, u32::from(command) | u32::from(status_clear) << 16);
        }
    }

    /// A write to BAR register `index`: all-ones (in its address bits)
    /// starts the guest's sizing; anything else ends it, and is ignored (and
    /// counted) if it is not the real placement. The device never sees it.
    fn write_bar(&mut self, index: usize, mask: u32, bits: u32) {
        let Some(&bar) = self.bars.get(index) else {
            return;
        };
        let current = self.guest_view(BAR0 + 4 * index as u16);
        let written = (current & !mask) | bits;
        let flags = bar.flag_bits();
        if written | flags == u32::MAX {
            self.bar_sizing[index] = true;
            return;
        }
        self.bar_sizing[index] = false;
        if (written ^ self.bar_values[index]) & !flags != 0 {
            bump(&mut self.counters.bar_moves_ignored);
            // The first only, as for MSI writes.
            if self.counters.bar_moves_ignored == 1 {
                log::warn!("PCI {}: BAR {index} move to {written:#010x} ignored (further ones are counted, not logged)", self.bdf);
            }
        }
    }
}
