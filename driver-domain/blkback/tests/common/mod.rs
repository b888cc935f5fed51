//! Shared pieces of blkback's integration tests: blkfront's page provider over the model
//! grant table, and helpers to drive a frontend against the backend.
#![allow(dead_code)] // reason: each test binary uses a different subset of the helpers

use blkback::memory::{
    GrantTableModel, MemoryExecutor, ModelGrantError, PageNumber, SharedGrantTable,
};
use blkback::{BlockBackend, DomId, Executor};
use blkfront::{Blkfront, Completion, GrantError, GrantPages, GrantRef};
use ring_protocol::SharedPage;

/// The driver domain.
pub(crate) const DRIVER: DomId = DomId(1);
/// A well-behaved guest.
pub(crate) const BANKING: DomId = DomId(2);
/// A hostile guest.
pub(crate) const UNTRUSTED: DomId = DomId(3);
/// Sectors of the physical disk in most tests.
pub(crate) const PHYSICAL_SECTORS: u64 = 4096;
/// What the physical disk is filled with before a test.
pub(crate) const DISK_FILL: u8 = 0xd5;

/// blkfront's pages and grants in the model, as domain `domain`.
pub(crate) struct ModelPages {
    pub(crate) table: SharedGrantTable,
    pub(crate) domain: DomId,
}

impl GrantPages for ModelPages {
    type Page = PageNumber;

    fn zero(&mut self, page: PageNumber) {
        if let Some(bytes) = self.table.borrow_mut().page_mut(self.domain, page) {
            bytes.fill(0);
        }
    }

    fn write(&mut self, page: PageNumber, offset_bytes: usize, data: &[u8]) {
        if let Some(bytes) = self.table.borrow_mut().page_mut(self.domain, page) {
            bytes[offset_bytes..offset_bytes + data.len()].copy_from_slice(data);
        }
    }

    fn read(&mut self, page: PageNumber, offset_bytes: usize, data: &mut [u8]) {
        if let Some(bytes) = self.table.borrow().page(self.domain, page) {
            data.copy_from_slice(&bytes[offset_bytes..offset_bytes + data.len()]);
        }
    }

    fn grant(
        &mut self,
        page: PageNumber,
        backend: DomId,
        read_only: bool,
    ) -> Result<GrantRef, GrantError> {
        self.table
            .borrow_mut()
            .grant(self.domain, page, backend, read_only)
            .map(|reference| GrantRef(reference.0))
            .map_err(|_| GrantError::Invalid)
    }

    fn revoke(&mut self, grant: GrantRef) -> Result<(), GrantError> {
        self.table
            .borrow_mut()
            .revoke(self.domain, blkback::GrantRef(grant.0))
            .map_err(|error| match error {
                ModelGrantError::InUse => GrantError::InUse,
                _ => GrantError::Invalid,
            })
    }
}

/// A fresh model and an executor over a physical disk filled with [`DISK_FILL`].
pub(crate) fn world(physical_sectors: u64) -> (SharedGrantTable, MemoryExecutor) {
    let table = GrantTableModel::shared();
    let executor = MemoryExecutor::new(physical_sectors, DISK_FILL, table.clone(), DRIVER);
    (table, executor)
}

/// `domain`'s page provider with `count` data pages (filled with junk, which the
/// frontend must zero before granting).
pub(crate) fn pages_for(
    table: &SharedGrantTable,
    domain: DomId,
    count: usize,
) -> (ModelPages, Vec<PageNumber>) {
    let pages = (0..count)
        .map(|_| table.borrow_mut().new_page(domain, 0xee))
        .collect();
    (
        ModelPages {
            table: table.clone(),
            domain,
        },
        pages,
    )
}

/// Publishes, serves rounds and polls until every request of `frontend` is complete;
/// returns the completions in order of arrival.
pub(crate) fn complete_all<E: Executor>(
    frontend: &mut Blkfront<'_, ModelPages>,
    backend: &mut BlockBackend<'_, E>,
    cap: u32,
) -> Vec<Completion> {
    let _ = frontend.publish().expect("publish");
    let mut completions = Vec::new();
    for _ in 0..1000 {
        let _ = backend.serve_round(cap);
        while let Some(completion) = frontend.poll().expect("well-behaved backend") {
            completions.push(completion);
        }
        if frontend.in_flight() == 0 {
            return completions;
        }
    }
    panic!("requests never completed");
}

/// Writes `data` at `sector` through `frontend` (in several requests if needed) and
/// returns each request's status.
pub(crate) fn write<E: Executor>(
    frontend: &mut Blkfront<'_, ModelPages>,
    backend: &mut BlockBackend<'_, E>,
    sector: u64,
    data: &[u8],
) -> Vec<i16> {
    let chunks = blkfront::split_range(sector * 512, data.len(), u64::MAX / 512).expect("split");
    let mut statuses = Vec::new();
    for chunk in chunks {
        let bytes = &data[chunk.buffer_offset..chunk.buffer_offset + chunk.length_bytes];
        frontend
            .submit_write(chunk.sector, bytes)
            .expect("submit write");
        statuses.extend(complete_all(frontend, backend, 8).iter().map(|c| c.status));
    }
    statuses
}

/// Reads `sector_count` sectors at `sector`; the data, or the first error status.
pub(crate) fn read<E: Executor>(
    frontend: &mut Blkfront<'_, ModelPages>,
    backend: &mut BlockBackend<'_, E>,
    sector: u64,
    sector_count: usize,
) -> Result<Vec<u8>, i16> {
    let chunks =
        blkfront::split_range(sector * 512, sector_count * 512, u64::MAX / 512).expect("split");
    let mut data = Vec::new();
    for chunk in chunks {
        frontend
            .submit_read(chunk.sector, chunk.sector_count)
            .expect("submit read");
        for completion in complete_all(frontend, backend, 8) {
            if !completion.is_ok() {
                return Err(completion.status);
            }
            data.extend_from_slice(&completion.data);
        }
    }
    Ok(data)
}

/// A recognizable pattern of `length` bytes.
pub(crate) fn pattern(length: usize, seed: u8) -> Vec<u8> {
    (0..length)
        .map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed) ^ (index >> 9) as u8)
        .collect()
}

/// A blkif request as raw bytes, so a test can write what no encoder would:
/// `segments` are `(grant, first_sect, last_sect)`, `nr_segments` is written as given.
pub(crate) fn raw_request(
    operation: u8,
    nr_segments: u8,
    id: u64,
    sector: u64,
    segments: &[(u32, u8, u8)],
) -> [u8; 112] {
    let mut bytes = [0u8; 112];
    bytes[0] = operation;
    bytes[1] = nr_segments;
    bytes[8..16].copy_from_slice(&id.to_le_bytes());
    bytes[16..24].copy_from_slice(&sector.to_le_bytes());
    for (index, (grant, first, last)) in segments.iter().take(11).enumerate() {
        let start = 24 + 8 * index;
        bytes[start..start + 4].copy_from_slice(&grant.to_le_bytes());
        bytes[start + 4] = *first;
        bytes[start + 5] = *last;
    }
    bytes
}

/// The response in ring slot `index`: `(id, operation, status)`.
pub(crate) fn response_at(page: &SharedPage<'_>, index: u32) -> (u64, u8, i16) {
    let mut bytes = [0u8; 16];
    let offset = 64 + (index % 32) as usize * 112;
    ring_protocol::test_utils::read_page_words(page, offset, &mut bytes);
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[..8]);
    (
        u64::from_le_bytes(id),
        bytes[8],
        i16::from_le_bytes([bytes[10], bytes[11]]),
    )
}

/// A page of `domain` filled with `fill`, granted to the driver domain.
pub(crate) fn granted_page(
    table: &SharedGrantTable,
    domain: DomId,
    fill: u8,
    read_only: bool,
) -> (PageNumber, blkback::GrantRef) {
    let mut table = table.borrow_mut();
    let page = table.new_page(domain, fill);
    let grant = table
        .grant(domain, page, DRIVER, read_only)
        .expect("grant own page");
    (page, grant)
}

/// Checks that `frontend` is still fully served: writes, reads back and compares.
pub(crate) fn assert_served<E: Executor>(
    frontend: &mut Blkfront<'_, ModelPages>,
    backend: &mut BlockBackend<'_, E>,
    seed: u8,
) {
    let data = pattern(20 * 512, seed);
    let statuses = write(frontend, backend, 3, &data);
    assert!(statuses.iter().all(|status| *status == 0), "write refused");
    assert!(
        read(frontend, backend, 3, 20).expect("read") == data,
        "read back differs"
    );
}
