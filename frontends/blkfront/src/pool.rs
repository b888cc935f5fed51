//! The frontend's data pages as the zero-copy API lends them: an opaque token per page
//! that remembers the page's persistent grant, if any, and whether the frontend has
//! zeroed it since it joined the pool.

use ring_protocol::blkif::MAX_SEGMENTS_PER_REQUEST;

use crate::grants::GrantRef;

/// The most data pages one request carries (`BLKIF_MAX_SEGMENTS_PER_REQUEST`).
pub const MAX_PAGES_PER_REQUEST: usize = MAX_SEGMENTS_PER_REQUEST;

/// One data page of a [`Blkfront`](crate::Blkfront)'s pool, lent to the caller by
/// [`take_pages`](crate::Blkfront::take_pages) or by an in-place read's completion.
///
/// It is a token: it cannot be made or copied outside this crate, so a page is either in
/// the pool, in a request in flight, or with exactly one holder. Give it back with
/// [`give_back`](crate::Blkfront::give_back) or spend it in
/// [`submit_write_pages`](crate::Blkfront::submit_write_pages). A token dropped instead is
/// lost to the pool (its persistent grant, if any, is still revoked at
/// [`disconnect`](crate::Blkfront::disconnect)).
///
/// Whatever the holder writes into the page may later be granted to this device's backend:
/// write only data meant for this device.
#[derive(Debug, PartialEq, Eq)]
pub struct DataPage<P> {
    pub(crate) page: P,
    /// In persistent mode, the page's persistent grant once made; in non-persistent mode,
    /// the grant of the request in flight (never set while the page is lent).
    pub(crate) grant: Option<GrantRef>,
    /// Whether the frontend zeroed the page since it joined the pool (it then holds only
    /// zeroes, this device's data, or what a holder wrote into it).
    pub(crate) zeroed: bool,
}

impl<P: Copy> DataPage<P> {
    pub(crate) const fn fresh(page: P) -> Self {
        Self {
            page,
            grant: None,
            zeroed: false,
        }
    }

    /// The page, to read or fill through the [`GrantPages`](crate::GrantPages) provider
    /// (or with [`Blkfront::read_page`](crate::Blkfront::read_page) and
    /// [`Blkfront::write_page`](crate::Blkfront::write_page)).
    pub const fn page(&self) -> P {
        self.page
    }
}

/// The pages of one request: at most [`MAX_PAGES_PER_REQUEST`], kept inline (no heap).
pub type PageList<P> = heapless::Vec<DataPage<P>, MAX_PAGES_PER_REQUEST>;
