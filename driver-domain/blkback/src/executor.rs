//! The boundary between validated block work and the machine: the [`Executor`] trait the
//! integration implements (grant map/copy hypercalls and virtio-blk), and the operations
//! it receives. Every operation has already been checked against the frontend's extent
//! and mode; only the grant references remain unverified, and the executor checks those
//! by using them (a reference not granted to us fails in the hypervisor).

use ring_protocol::blkif::SECTORS_PER_PAGE;
use xen_abi::DomId;

use crate::disk::SECTOR_SIZE_BYTES;

/// A grant reference, as a frontend wrote it into a request: an allegation, resolved only
/// in the granting domain's grant table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantRef(pub u32);

/// One segment of a transfer: sectors `first_sector_in_page ..= last_sector_in_page` of
/// the page the frontend granted as `grant`, to or from `sector_count()` physical sectors
/// starting at `physical_sector`.
///
/// Invariants (established by the backend before the executor sees it):
/// `first_sector_in_page <= last_sector_in_page < 8`, and every physical sector lies in
/// the frontend's extent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentTransfer {
    /// The frontend's grant of the data page.
    pub grant: GrantRef,
    /// First 512-byte sector within the page (0..=7).
    pub first_sector_in_page: u8,
    /// Last 512-byte sector within the page (inclusive, `first..=7`).
    pub last_sector_in_page: u8,
    /// The physical disk sector that `first_sector_in_page` maps to.
    pub physical_sector: u64,
}

impl SegmentTransfer {
    /// Number of sectors the segment moves (1..=8).
    pub const fn sector_count(&self) -> u64 {
        (self.last_sector_in_page - self.first_sector_in_page) as u64 + 1
    }

    /// Byte offset of the data within the granted page.
    pub const fn page_offset_bytes(&self) -> usize {
        self.first_sector_in_page as usize * SECTOR_SIZE_BYTES as usize
    }

    /// Number of bytes the segment moves.
    pub const fn length_bytes(&self) -> usize {
        self.sector_count() as usize * SECTOR_SIZE_BYTES as usize
    }

    /// Whether the in-page range is valid (`first <= last < 8`).
    pub(crate) const fn is_valid(&self) -> bool {
        self.first_sector_in_page <= self.last_sector_in_page
            && self.last_sector_in_page < SECTORS_PER_PAGE
    }
}

/// How the executor may hold a frontend's data grants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GrantPolicy {
    /// Map each segment's grant for the operation and unmap it before returning (blkif
    /// without `feature-persistent`).
    #[default]
    Transient,
    /// Both ends agreed on `feature-persistent`: the frontend grants each data page once,
    /// read-write, and reuses its reference, so the executor may keep the mapping (up to a
    /// bound of its choosing) until [`Executor::release_grants`] for that frontend.
    Persistent,
}

/// Validated work for the executor.
///
/// For transfers the executor resolves each segment's `(frontend, grant)`: it maps the
/// page (or obtains its bus address) with write access for a `Read` (disk → page) and read
/// access for a `Write` (page → disk), so virtio-blk can DMA straight into or out of the
/// granted page, and unmaps it before returning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOperation<'request> {
    /// Read the segments' physical sectors into the granted pages.
    Read {
        /// The domain that granted the pages.
        frontend: DomId,
        /// 1..=11 segments, contiguous on disk in this order.
        segments: &'request [SegmentTransfer],
        /// Whether the grants may stay mapped after the operation.
        grants: GrantPolicy,
    },
    /// Write the granted pages' contents to the segments' physical sectors.
    Write {
        /// The domain that granted the pages.
        frontend: DomId,
        /// 1..=11 segments, contiguous on disk in this order.
        segments: &'request [SegmentTransfer],
        /// Whether the grants may stay mapped after the operation.
        grants: GrantPolicy,
    },
    /// Make every write completed so far durable (virtio-blk `VIRTIO_BLK_T_FLUSH`).
    Flush,
    /// Discard (trim) physical sectors `physical_sector .. + sector_count`, all inside the
    /// frontend's extent, which is read-write.
    Discard {
        /// First physical sector.
        physical_sector: u64,
        /// Number of sectors (at least 1).
        sector_count: u64,
        /// Whether the data must become unrecoverable (`BLKIF_DISCARD_SECURE`).
        secure: bool,
    },
}

/// Why the executor could not carry out an operation; each maps to a blkif status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecuteError {
    /// A grant reference did not resolve (not granted to us, wrong access, revoked):
    /// the frontend's fault. Answered `BLKIF_RSP_ERROR`.
    Grant,
    /// The device failed. Answered `BLKIF_RSP_ERROR`.
    Io,
    /// The device cannot do this (for example discard). Answered `BLKIF_RSP_EOPNOTSUPP`.
    NotSupported,
}

/// Carries out validated block operations. Implemented by the integration on grant
/// hypercalls and virtio-blk; [`crate::memory`] (feature `test-utils`) has an in-memory
/// one.
///
/// The call is synchronous: when it returns, the operation is complete (data in the
/// pages for a read, accepted by the device for a write) and every grant it mapped is
/// unmapped again. It should map every segment's grant (with `GNTMAP_device_map`, to get
/// the page's bus address for DMA) before starting any I/O, so that a request with one
/// bad grant touches no sector. A transfer that fails part-way reports an error; the
/// frontend then sees an error status for the whole request, as in Xen.
pub trait Executor {
    /// Performs `operation` and reports its status.
    ///
    /// # Errors
    ///
    /// An [`ExecuteError`] saying why it failed; the request is answered accordingly.
    fn execute(&mut self, operation: &BlockOperation<'_>) -> Result<(), ExecuteError>;

    /// Performs every operation of `batch`, writing each one's status to the same index
    /// of `results` (which is as long as `batch`). The operations may be carried out
    /// concurrently and complete in any order, except that a [`BlockOperation::Flush`]
    /// starts only once every operation before it in the batch has completed, and the
    /// operations after it start only once it has. When this returns, every operation
    /// is complete, as for [`execute`](Self::execute).
    ///
    /// The default carries them out one by one.
    fn execute_batch(
        &mut self,
        batch: &[BlockOperation<'_>],
        results: &mut [Result<(), ExecuteError>],
    ) {
        for (operation, result) in batch.iter().zip(results.iter_mut()) {
            *result = self.execute(operation);
        }
    }

    /// `frontend`'s connection has ended: unmap every grant of its that is still kept
    /// ([`GrantPolicy::Persistent`]) before the frontend is told, so that it can end
    /// its grants. The default keeps none.
    fn release_grants(&mut self, frontend: DomId) {
        let _ = frontend;
    }
}

impl<E: Executor + ?Sized> Executor for &mut E {
    fn execute(&mut self, operation: &BlockOperation<'_>) -> Result<(), ExecuteError> {
        (**self).execute(operation)
    }

    fn execute_batch(
        &mut self,
        batch: &[BlockOperation<'_>],
        results: &mut [Result<(), ExecuteError>],
    ) {
        (**self).execute_batch(batch, results);
    }

    fn release_grants(&mut self, frontend: DomId) {
        (**self).release_grants(frontend);
    }
}
