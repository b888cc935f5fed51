//! For tests (feature `test-utils`): a model grant table in which each domain's pages
//! are its own and reachable only through grants it made, and an [`Executor`] over an
//! in-memory physical disk that resolves grants in that model and records every physical
//! sector it touches.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use xen_abi::DomId;

use crate::disk::SECTOR_SIZE_BYTES;
use crate::executor::{BlockOperation, ExecuteError, Executor, GrantRef, SegmentTransfer};

/// Bytes in a page.
pub const PAGE_SIZE_BYTES: usize = 4096;

/// A page number in one domain's memory (the model's pseudo-physical frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageNumber(pub u64);

/// Why a grant operation on the model failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelGrantError {
    /// No such grant (never made, or revoked) or no such page.
    NoSuchGrant,
    /// The grant is for another domain.
    WrongGrantee,
    /// Write access through a read-only grant.
    ReadOnly,
    /// The grantee still maps the page: it cannot be revoked.
    InUse,
}

#[derive(Clone, Copy, Debug)]
struct GrantEntry {
    page: PageNumber,
    grantee: DomId,
    read_only: bool,
    mappings: u32,
}

/// Pages and grant tables of every domain in the model.
#[derive(Debug, Default)]
pub struct GrantTableModel {
    pages: BTreeMap<(DomId, PageNumber), Box<[u8; PAGE_SIZE_BYTES]>>,
    grants: BTreeMap<(DomId, GrantRef), GrantEntry>,
    next_page: u64,
    /// Refs 0 and 1 are reserved (console, store), as in the real grant table.
    next_reference: u32,
}

/// A model grant table shared by the frontends' and the backend's sides of a test.
pub type SharedGrantTable = Rc<RefCell<GrantTableModel>>;

impl GrantTableModel {
    /// An empty model.
    pub fn new() -> Self {
        Self {
            next_reference: 8,
            ..Self::default()
        }
    }

    /// An empty model, shared.
    pub fn shared() -> SharedGrantTable {
        Rc::new(RefCell::new(Self::new()))
    }

    /// Gives `domain` a fresh page filled with `fill`.
    pub fn new_page(&mut self, domain: DomId, fill: u8) -> PageNumber {
        let page = PageNumber(self.next_page);
        self.next_page += 1;
        self.pages
            .insert((domain, page), Box::new([fill; PAGE_SIZE_BYTES]));
        page
    }

    /// `domain`'s own page, if it has it.
    pub fn page(&self, domain: DomId, page: PageNumber) -> Option<&[u8; PAGE_SIZE_BYTES]> {
        self.pages.get(&(domain, page)).map(|page| &**page)
    }

    /// `domain`'s own page, mutably.
    pub fn page_mut(
        &mut self,
        domain: DomId,
        page: PageNumber,
    ) -> Option<&mut [u8; PAGE_SIZE_BYTES]> {
        self.pages.get_mut(&(domain, page)).map(|page| &mut **page)
    }

    /// `granter` grants its `page` to `grantee`. References are unique across the model,
    /// so a reference one domain made means nothing in another's table.
    ///
    /// # Errors
    ///
    /// [`ModelGrantError::NoSuchGrant`] if `granter` has no such page.
    pub fn grant(
        &mut self,
        granter: DomId,
        page: PageNumber,
        grantee: DomId,
        read_only: bool,
    ) -> Result<GrantRef, ModelGrantError> {
        if !self.pages.contains_key(&(granter, page)) {
            return Err(ModelGrantError::NoSuchGrant);
        }
        let reference = GrantRef(self.next_reference);
        self.next_reference = self.next_reference.wrapping_add(1).max(8);
        let entry = GrantEntry {
            page,
            grantee,
            read_only,
            mappings: 0,
        };
        self.grants.insert((granter, reference), entry);
        Ok(reference)
    }

    /// `granter` ends the grant `reference`.
    ///
    /// # Errors
    ///
    /// [`ModelGrantError::InUse`] while the grantee maps it (the grant stays);
    /// [`ModelGrantError::NoSuchGrant`] if there is no such grant.
    pub fn revoke(&mut self, granter: DomId, reference: GrantRef) -> Result<(), ModelGrantError> {
        match self.grants.get(&(granter, reference)) {
            None => Err(ModelGrantError::NoSuchGrant),
            Some(entry) if entry.mappings > 0 => Err(ModelGrantError::InUse),
            Some(_) => {
                self.grants.remove(&(granter, reference));
                Ok(())
            }
        }
    }

    /// Number of live grants `granter` has made.
    pub fn grant_count(&self, granter: DomId) -> usize {
        self.grants
            .keys()
            .filter(|(domain, _)| *domain == granter)
            .count()
    }

    /// Makes `grantee` hold (or, with `hold == false`, drop) a mapping of the grant, as a
    /// backend that does not unmap would: revocation then fails.
    ///
    /// # Errors
    ///
    /// [`ModelGrantError::NoSuchGrant`] if there is no such grant.
    pub fn hold_mapping(
        &mut self,
        granter: DomId,
        reference: GrantRef,
        hold: bool,
    ) -> Result<(), ModelGrantError> {
        let entry = self
            .grants
            .get_mut(&(granter, reference))
            .ok_or(ModelGrantError::NoSuchGrant)?;
        entry.mappings = if hold { 1 } else { 0 };
        Ok(())
    }

    /// The page behind a grant, checked as the hypervisor would check a map or copy by
    /// `grantee` (the grant exists in `granter`'s table, names `grantee`, and allows
    /// writing if `write`).
    ///
    /// # Errors
    ///
    /// Which check failed.
    pub fn resolve(
        &mut self,
        granter: DomId,
        reference: GrantRef,
        grantee: DomId,
        write: bool,
    ) -> Result<&mut [u8; PAGE_SIZE_BYTES], ModelGrantError> {
        let entry = *self
            .grants
            .get(&(granter, reference))
            .ok_or(ModelGrantError::NoSuchGrant)?;
        if entry.grantee != grantee {
            return Err(ModelGrantError::WrongGrantee);
        }
        if write && entry.read_only {
            return Err(ModelGrantError::ReadOnly);
        }
        self.page_mut(granter, entry.page)
            .ok_or(ModelGrantError::NoSuchGrant)
    }
}

/// An [`Executor`] over an in-memory physical disk, resolving grants in a shared model
/// as the backend domain `backend`.
#[derive(Debug)]
pub struct MemoryExecutor {
    disk: Vec<u8>,
    grants: SharedGrantTable,
    backend: DomId,
    touched: Vec<u64>,
    flushes: u64,
}

impl MemoryExecutor {
    /// A disk of `sector_count` sectors filled with `fill`.
    pub fn new(sector_count: u64, fill: u8, grants: SharedGrantTable, backend: DomId) -> Self {
        Self {
            disk: vec![fill; (sector_count * SECTOR_SIZE_BYTES) as usize],
            grants,
            backend,
            touched: Vec::new(),
            flushes: 0,
        }
    }

    /// The whole physical disk.
    pub fn disk(&self) -> &[u8] {
        &self.disk
    }

    /// Every physical sector read, written or discarded, in order.
    pub fn touched_sectors(&self) -> &[u64] {
        &self.touched
    }

    /// Number of flushes carried out.
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    fn sector_bytes(&self, segment: &SegmentTransfer) -> Result<(usize, usize), ExecuteError> {
        let start = segment
            .physical_sector
            .checked_mul(SECTOR_SIZE_BYTES)
            .ok_or(ExecuteError::Io)? as usize;
        let end = start + segment.length_bytes();
        if end > self.disk.len() {
            return Err(ExecuteError::Io);
        }
        Ok((start, end))
    }

    fn transfer(
        &mut self,
        frontend: DomId,
        segments: &[SegmentTransfer],
        to_disk: bool,
    ) -> Result<(), ExecuteError> {
        // Resolve every grant and disk range first, as a real executor maps every page
        // before starting I/O: a request with one bad grant touches no sector.
        for segment in segments {
            self.sector_bytes(segment)?;
            self.grants
                .borrow_mut()
                .resolve(frontend, segment.grant, self.backend, !to_disk)
                .map_err(|_| ExecuteError::Grant)?;
        }
        for segment in segments {
            let (start, end) = self.sector_bytes(segment)?;
            let mut grants = self.grants.borrow_mut();
            let page = grants
                .resolve(frontend, segment.grant, self.backend, !to_disk)
                .map_err(|_| ExecuteError::Grant)?;
            let in_page =
                segment.page_offset_bytes()..segment.page_offset_bytes() + segment.length_bytes();
            if to_disk {
                self.disk[start..end].copy_from_slice(&page[in_page]);
            } else {
                page[in_page].copy_from_slice(&self.disk[start..end]);
            }
            self.touched
                .extend(segment.physical_sector..segment.physical_sector + segment.sector_count());
        }
        Ok(())
    }
}

impl Executor for MemoryExecutor {
    fn execute(&mut self, operation: &BlockOperation<'_>) -> Result<(), ExecuteError> {
        match *operation {
            BlockOperation::Read {
                frontend, segments, ..
            } => self.transfer(frontend, segments, false),
            BlockOperation::Write {
                frontend, segments, ..
            } => self.transfer(frontend, segments, true),
            BlockOperation::Flush => {
                self.flushes += 1;
                Ok(())
            }
            BlockOperation::Discard {
                physical_sector,
                sector_count,
                ..
            } => {
                let start = physical_sector.checked_mul(SECTOR_SIZE_BYTES);
                let length = sector_count.checked_mul(SECTOR_SIZE_BYTES);
                let (Some(start), Some(length)) = (start, length) else {
                    return Err(ExecuteError::Io);
                };
                let end = start.checked_add(length).ok_or(ExecuteError::Io)?;
                if end > self.disk.len() as u64 {
                    return Err(ExecuteError::Io);
                }
                self.disk[start as usize..end as usize].fill(0);
                self.touched
                    .extend(physical_sector..physical_sector + sector_count);
                Ok(())
            }
        }
    }
}
