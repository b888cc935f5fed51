//! What the frontend needs from the guest runtime: data pages it can fill and read, and
//! the grant table to lend them to the backend and take them back.

use xen_abi::DomId;

/// A grant reference this domain made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GrantRef(pub u32);

/// Why a grant could not be made or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// No free grant entry.
    TableFull,
    /// The backend still maps the page (the entry's reading/writing flags are set): the
    /// grant stays, and the page must not be reused.
    InUse,
    /// No such grant, or the page is not ours.
    Invalid,
}

/// Data pages and the grant table, as the guest runtime provides them (the real one
/// writes v1 grant entries in the shared grant table with compare-and-swap on revoke).
///
/// A page is the guest's own memory; only the frontend's calls here touch it.
pub trait GrantPages {
    /// A guest page the frontend may use for data (for example a pseudo-physical frame).
    type Page: Copy;

    /// Fills the whole page with zeroes.
    fn zero(&mut self, page: Self::Page);

    /// Copies `data` into the page at `offset_bytes` (`offset_bytes + data.len() <= 4096`).
    fn write(&mut self, page: Self::Page, offset_bytes: usize, data: &[u8]);

    /// Copies from the page at `offset_bytes` into `data`.
    fn read(&mut self, page: Self::Page, offset_bytes: usize, data: &mut [u8]);

    /// Grants `backend` access to the page, read-only if `read_only`.
    ///
    /// # Errors
    ///
    /// A [`GrantError`] if no grant was made.
    fn grant(
        &mut self,
        page: Self::Page,
        backend: DomId,
        read_only: bool,
    ) -> Result<GrantRef, GrantError>;

    /// Ends a grant (Xen's `gnttab_end_foreign_access_ref`): succeeds only if the backend
    /// no longer maps the page.
    ///
    /// # Errors
    ///
    /// [`GrantError::InUse`] if the backend still maps it (the grant stays).
    fn revoke(&mut self, grant: GrantRef) -> Result<(), GrantError>;
}
