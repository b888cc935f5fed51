//! A virtual disk: a bounded extent of the physical disk, read-only or read-write, with
//! overflow-safe translation of guest sectors to physical sectors.

/// Sector size in bytes: blkif sectors are always 512 bytes.
pub const SECTOR_SIZE_BYTES: u64 = 512;

/// Whether a virtual disk accepts writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskMode {
    /// Reads only; writes and discards are answered with an error.
    ReadOnly,
    /// Reads and writes.
    ReadWrite,
}

/// Why a virtual disk could not be made or a range could not be translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// The extent is empty.
    Empty,
    /// The extent's end does not fit in 64 bits.
    ExtentOverflow,
    /// The requested range is empty.
    EmptyRange,
    /// The requested range reaches past the end of the virtual disk (or overflows).
    OutOfRange,
}

/// A bounded extent of a physical disk: physical sectors
/// `first_sector .. first_sector + sector_count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtualDisk {
    first_sector: u64,
    sector_count: u64,
    mode: DiskMode,
}

impl VirtualDisk {
    /// A virtual disk over physical sectors `first_sector .. first_sector + sector_count`.
    ///
    /// # Errors
    ///
    /// [`DiskError::Empty`] for zero sectors, [`DiskError::ExtentOverflow`] if the end
    /// does not fit in a `u64`.
    pub const fn new(
        first_sector: u64,
        sector_count: u64,
        mode: DiskMode,
    ) -> Result<Self, DiskError> {
        if sector_count == 0 {
            return Err(DiskError::Empty);
        }
        if first_sector.checked_add(sector_count).is_none() {
            return Err(DiskError::ExtentOverflow);
        }
        Ok(Self {
            first_sector,
            sector_count,
            mode,
        })
    }

    /// The first physical sector of the extent.
    pub const fn first_sector(&self) -> u64 {
        self.first_sector
    }

    /// The size of the virtual disk in sectors (the store's `sectors`).
    pub const fn sector_count(&self) -> u64 {
        self.sector_count
    }

    /// The physical sector one past the extent (cannot overflow: checked at creation).
    pub const fn end_sector(&self) -> u64 {
        self.first_sector + self.sector_count
    }

    /// The disk's mode (the store's `mode`, `r` or `w`).
    pub const fn mode(&self) -> DiskMode {
        self.mode
    }

    /// Whether writes are refused.
    pub const fn is_read_only(&self) -> bool {
        matches!(self.mode, DiskMode::ReadOnly)
    }

    /// Translates `count` virtual sectors starting at `sector` to the first physical
    /// sector, checking that every one of them lies inside the extent.
    ///
    /// # Errors
    ///
    /// [`DiskError::EmptyRange`] for `count == 0`; [`DiskError::OutOfRange`] if
    /// `sector + count` overflows or exceeds the disk.
    pub const fn translate(&self, sector: u64, count: u64) -> Result<u64, DiskError> {
        if count == 0 {
            return Err(DiskError::EmptyRange);
        }
        match sector.checked_add(count) {
            Some(end) if end <= self.sector_count => Ok(self.first_sector + sector),
            _ => Err(DiskError::OutOfRange),
        }
    }

    /// Whether physical sector `physical` lies inside the extent.
    pub const fn contains_physical(&self, physical: u64) -> bool {
        physical >= self.first_sector && physical < self.end_sector()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_checks_the_extent() {
        assert_eq!(
            VirtualDisk::new(0, 0, DiskMode::ReadWrite),
            Err(DiskError::Empty)
        );
        assert_eq!(
            VirtualDisk::new(u64::MAX, 1, DiskMode::ReadWrite),
            Err(DiskError::ExtentOverflow)
        );
        assert!(VirtualDisk::new(u64::MAX - 1, 1, DiskMode::ReadOnly).is_ok());
    }

    #[test]
    fn translation_stays_inside() -> Result<(), DiskError> {
        let disk = VirtualDisk::new(100, 50, DiskMode::ReadWrite)?;
        assert_eq!(disk.translate(0, 50), Ok(100));
        assert_eq!(disk.translate(49, 1), Ok(149));
        assert_eq!(disk.translate(49, 2), Err(DiskError::OutOfRange));
        assert_eq!(disk.translate(50, 1), Err(DiskError::OutOfRange));
        assert_eq!(disk.translate(0, 0), Err(DiskError::EmptyRange));
        assert_eq!(disk.translate(u64::MAX, 1), Err(DiskError::OutOfRange));
        assert_eq!(disk.translate(1, u64::MAX), Err(DiskError::OutOfRange));
        assert!(disk.contains_physical(149) && !disk.contains_physical(150));
        assert!(!disk.contains_physical(99));
        Ok(())
    }

    #[test]
    fn translation_at_the_top_of_the_address_space() -> Result<(), DiskError> {
        let disk = VirtualDisk::new(u64::MAX - 8, 8, DiskMode::ReadOnly)?;
        assert_eq!(disk.translate(7, 1), Ok(u64::MAX - 1));
        assert_eq!(disk.translate(7, 2), Err(DiskError::OutOfRange));
        assert!(disk.is_read_only());
        Ok(())
    }
}
