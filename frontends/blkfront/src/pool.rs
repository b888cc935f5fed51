//! The frontend's data pages: the opaque token per page the zero-copy API lends
//! ([`DataPage`]), which remembers the page's persistent grant, if any, and whether the
//! frontend has zeroed it since it joined the pool; and the pool of free pages.

use alloc::vec::Vec;
use core::fmt;
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
#[derive(PartialEq, Eq)]
pub struct DataPage<P> {
    pub(crate) state: PageState<P>,
}

impl<P: fmt::Debug> fmt::Debug for DataPage<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataPage")
            .field("page", &self.state.page)
            .field("grant", &self.state.grant)
            .field("flags", &self.state.flags)
            .finish()
    }
}

impl<P: Copy> DataPage<P> {
    /// The page, to read or fill through the [`GrantPages`](crate::GrantPages) provider
    /// (or with [`Blkfront::read_page`](crate::Blkfront::read_page) and
    /// [`Blkfront::write_page`](crate::Blkfront::write_page)).
    pub const fn page(&self) -> P {
        self.state.page
    }
}

/// What the frontend knows of one data page: the page, its grant and whether it was
/// zeroed. A [`DataPage`] token carries one; the pool keeps them as plain values (`Copy`,
/// a word for a 16-bit page), so moving pages in and out of it is a copy of a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PageState<P> {
    pub(crate) page: P,
    /// The grant ([`PageState::grant`]): in persistent mode, the page's persistent grant
    /// once made; in non-persistent mode, the grant of the request in flight (never set
    /// while the page is lent). Kept as a word and a flag, not an `Option`, so the state
    /// stays small.
    grant: u32,
    /// [`GRANTED`] and [`ZEROED`].
    flags: u8,
}

// A token for a 16-bit page (the guest runtime's) is one word: moved with one load and
// one store.
const _: () = assert!(core::mem::size_of::<DataPage<u16>>() == 8);

/// The page holds a grant (`PageState::grant` is meaningful).
const GRANTED: u8 = 1;
/// The frontend zeroed the page since it joined the pool (it then holds only zeroes, this
/// device's data, or what a holder wrote into it).
const ZEROED: u8 = 2;

impl<P: Copy> PageState<P> {
    pub(crate) const fn fresh(page: P) -> Self {
        Self {
            page,
            grant: 0,
            flags: 0,
        }
    }

    /// Its grant, if it holds one.
    #[inline]
    pub(crate) const fn grant(&self) -> Option<GrantRef> {
        if self.flags & GRANTED != 0 {
            Some(GrantRef(self.grant))
        } else {
            None
        }
    }

    /// Its grant reference as a segment carries it (0 if it holds none).
    #[inline]
    pub(crate) const fn grant_word(&self) -> u32 {
        self.grant
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
    #[inline]
    pub(crate) const fn zeroed(&self) -> bool {
        self.flags & ZEROED != 0
    }

    /// Notes that the frontend zeroed it.
    pub(crate) fn set_zeroed(&mut self) {
        self.flags |= ZEROED;
    }

    /// Zeroed and granted: a persistent page ready to go out as it is (one test instead
    /// of two on the hot path).
    #[inline]
    pub(crate) const fn ready(&self) -> bool {
        self.flags == GRANTED | ZEROED
    }
}

/// The pages of one request: at most [`MAX_PAGES_PER_REQUEST`], kept inline (no heap).
pub type PageList<P> = heapless::Vec<DataPage<P>, MAX_PAGES_PER_REQUEST>;

/// The free pages: a stack kept in reverse, so that pages come out in ascending pool
/// order. Its top is the lowest page of a run: taking `k` pages reads the top `k` from the
/// top down, and a request's pages go back last first (its first page on top), so the
/// next request of the same size gets the same ascending run again.
///
/// `states[..free]` are the free pages, bottom to top. The entries above `free` are stale
/// copies of pages now in flight or lent: the vector keeps its length, so putting a page
/// back is a store, not a push that may grow it (it grows only if more pages come back
/// than it ever held).
pub(crate) struct Pool<P> {
    states: Vec<PageState<P>>,
    free: usize,
}

impl<P: Copy> Pool<P> {
    /// A pool handing out `pages` in the order given.
    pub(crate) fn new(pages: Vec<P>) -> Self {
        let states: Vec<_> = pages.into_iter().rev().map(PageState::fresh).collect();
        Self {
            free: states.len(),
            states,
        }
    }

    /// Free pages.
    #[inline]
    pub(crate) const fn len(&self) -> usize {
        self.free
    }

    /// The free pages, bottom to top (the last is handed out first).
    pub(crate) fn free(&self) -> &[PageState<P>] {
        self.states.get(..self.free).unwrap_or_default()
    }

    /// The free pages, bottom to top, to update.
    pub(crate) fn free_mut(&mut self) -> &mut [PageState<P>] {
        self.states.get_mut(..self.free).unwrap_or_default()
    }

    /// Takes the top `count` free pages (all of them if fewer) off the pool and returns
    /// them bottom to top: read it from the end to get them in ascending pool order. They
    /// may be updated there before they are copied out (their entries are stale now).
    #[inline]
    pub(crate) fn take(&mut self, count: usize) -> &mut [PageState<P>] {
        let top = self.free;
        self.free = top.saturating_sub(count);
        self.states.get_mut(self.free..top).unwrap_or_default()
    }

    /// Puts a page on top.
    #[inline]
    pub(crate) fn push(&mut self, state: PageState<P>) {
        match self.states.get_mut(self.free) {
            Some(slot) => *slot = state,
            None => self.states.push(state),
        }
        self.free += 1;
    }

    /// Puts pages on top, in the order given; returns how many. (The pool's length and
    /// top are kept in locals while storing, so the stores need no reloads.)
    #[inline]
    pub(crate) fn extend(&mut self, states: impl Iterator<Item = PageState<P>>) -> usize {
        let mut states = states;
        let start = self.free;
        let mut free = start;
        if let Some(room) = self.states.get_mut(start..) {
            for slot in room {
                let Some(state) = states.next() else {
                    break;
                };
                *slot = state;
                free += 1;
            }
        }
        self.free = free;
        // More than the pool ever held (not expected): the vector grows.
        for state in states {
            self.push(state);
        }
        self.free - start
    }

    /// Reverses the free pages from `start` to the top: a run put back first page first
    /// then has its first page on top.
    #[inline]
    pub(crate) fn reverse_from(&mut self, start: usize) {
        if let Some(run) = self.states.get_mut(start..self.free) {
            run.reverse();
        }
    }

    /// Keeps the free pages `keep` says to keep, in order (the stale entries go too).
    pub(crate) fn retain(&mut self, keep: impl FnMut(&PageState<P>) -> bool) {
        self.states.truncate(self.free);
        self.states.retain(keep);
        self.free = self.states.len();
    }
}
