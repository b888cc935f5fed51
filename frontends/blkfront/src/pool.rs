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
    /// The grant ([`DataPage::grant`]): in persistent mode, the page's persistent grant
    /// once made; in non-persistent mode, the grant of the request in flight (never set
    /// while the page is lent). Kept as a word and a flag, not an `Option`, so a page list
    /// stays small: it is moved on every request.
    grant: u32,
    /// [`GRANTED`] and [`ZEROED`].
    flags: u8,
}

/// The page holds a grant (`DataPage::grant` is meaningful).
const GRANTED: u8 = 1;
/// The frontend zeroed the page since it joined the pool (it then holds only zeroes, this
/// device's data, or what a holder wrote into it).
const ZEROED: u8 = 2;

impl<P: Copy> DataPage<P> {
    pub(crate) const fn fresh(page: P) -> Self {
        Self {
            page,
            grant: 0,
            flags: 0,
        }
    }

    /// The page, to read or fill through the [`GrantPages`](crate::GrantPages) provider
    /// (or with [`Blkfront::read_page`](crate::Blkfront::read_page) and
    /// [`Blkfront::write_page`](crate::Blkfront::write_page)).
    pub const fn page(&self) -> P {
        self.page
    }

    /// Its grant, if it holds one.
    pub(crate) const fn grant(&self) -> Option<GrantRef> {
        if self.flags & GRANTED != 0 {
            Some(GrantRef(self.grant))
        } else {
            None
        }
    }

    /// Sets or clears its grant.
    pub(crate) fn set_grant(&mut self, grant: Option<GrantRef>) {
        match grant {
            Some(grant) => {
                self.grant = grant.0;
                self.flags |= GRANTED;
            }
            None => {
                self.grant = 0;
                self.flags &= !GRANTED;
            }
        }
    }

    /// Clears its grant, returning it.
    pub(crate) fn take_grant(&mut self) -> Option<GrantRef> {
        let grant = self.grant();
        self.set_grant(None);
        grant
    }

    /// Whether the frontend zeroed it since it joined the pool.
    pub(crate) const fn zeroed(&self) -> bool {
        self.flags & ZEROED != 0
    }

    /// Notes that the frontend zeroed it.
    pub(crate) fn set_zeroed(&mut self) {
        self.flags |= ZEROED;
    }
}

/// The pages of one request: at most [`MAX_PAGES_PER_REQUEST`], kept inline (no heap).
pub type PageList<P> = heapless::Vec<DataPage<P>, MAX_PAGES_PER_REQUEST>;
