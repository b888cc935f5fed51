//! The frontend's data pages: what it knows of each (its persistent grant, if any, and
//! whether it zeroed the page since it joined the pool), the handle on a run of pages
//! lent to the caller ([`LentPages`]) and the view of one lent page ([`DataPage`]), and
//! the pool of free pages.

use alloc::vec::Vec;
use ring_protocol::blkif::MAX_SEGMENTS_PER_REQUEST;

use crate::grants::GrantRef;

/// The most data pages one request carries (`BLKIF_MAX_SEGMENTS_PER_REQUEST`).
pub const MAX_PAGES_PER_REQUEST: usize = MAX_SEGMENTS_PER_REQUEST;

/// A run of 1..=11 pool pages lent to the caller by
/// [`take_pages`](crate::Blkfront::take_pages) or by an in-place read's completion
/// ([`PagedCompletion::pages`](crate::PagedCompletion::pages)).
///
/// It is a handle (two `u32`s), not the pages: they stay in the frontend's list that holds
/// them from the moment they leave the pool until they return to it (a request's pages
/// are never moved between submit, completion and give-back; moving a list of 11 pages
/// cost a `rep movs` of 96 bytes each time). See them with
/// [`Blkfront::lent_pages`](crate::Blkfront::lent_pages), fill and read them with
/// [`write_page`](crate::Blkfront::write_page) and [`read_page`](crate::Blkfront::read_page).
///
/// It cannot be made or copied outside this crate, so a run is either in the pool, in a
/// request in flight, or with exactly one holder. Give it back with
/// [`give_back`](crate::Blkfront::give_back) or spend it in
/// [`submit_write_pages`](crate::Blkfront::submit_write_pages). A handle dropped instead
/// loses its pages to the pool (their persistent grants, if any, are still revoked at
/// [`disconnect`](crate::Blkfront::disconnect)). It names the frontend that lent it: another
/// frontend refuses it.
///
/// Whatever the holder writes into the pages may later be granted to this device's
/// backend: write only data meant for this device.
#[must_use = "pages not given back are lost to the pool"]
#[derive(Debug, PartialEq, Eq)]
pub struct LentPages {
    /// The frontend that lent them (its identity, unique per frontend made).
    pub(crate) owner: u32,
    /// Their list in that frontend's table of page lists.
    pub(crate) list: u32,
}

/// One data page of a [`Blkfront`](crate::Blkfront)'s pool, as
/// [`Blkfront::lent_pages`](crate::Blkfront::lent_pages) shows a lent one: the page, to
/// reach through the [`GrantPages`](crate::GrantPages) provider ([`page`](Self::page)),
/// and what the frontend knows of it (its grant, whether it zeroed it). It is a plain
/// value (`Copy`, a word for a 16-bit page), so moving pages in and out of the pool is a
/// copy of a word; it is no claim on the page (a run is held through its [`LentPages`]
/// handle, and nothing takes a `DataPage` back), and only this crate makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataPage<P> {
    pub(crate) page: P,
    /// The grant ([`DataPage::grant`]): in persistent mode, the page's persistent grant
    /// once made; in non-persistent mode, the grant of the request in flight (never set
    /// while the page is lent). Kept as a word and a flag, not an `Option`, so the state
    /// stays small.
    grant: u32,
    /// [`GRANTED`] and [`ZEROED`]. Two bytes, not one, so that with a 16-bit page the
    /// value has no padding byte: a copy is then one load and one store of the word
    /// (with a padding byte the compiler copies it field by field, 9 instructions).
    flags: u16,
}

impl<P: Copy> DataPage<P> {
    /// The page, to read or fill through the [`GrantPages`](crate::GrantPages) provider
    /// ([`Blkfront::pages_mut`](crate::Blkfront::pages_mut)), or use
    /// [`Blkfront::read_page`](crate::Blkfront::read_page) and
    /// [`Blkfront::write_page`](crate::Blkfront::write_page).
    pub const fn page(&self) -> P {
        self.page
    }
}

// A 16-bit page (the guest runtime's) is one word with no padding: moved with one load and
// one store.
const _: () = assert!(core::mem::size_of::<DataPage<u16>>() == 8);

/// The page holds a grant (`DataPage::grant` is meaningful).
const GRANTED: u16 = 1;
/// The frontend zeroed the page since it joined the pool (it then holds only zeroes, this
/// device's data, or what a holder wrote into it).
const ZEROED: u16 = 2;

impl<P: Copy> DataPage<P> {
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

/// The pages of one request or lent run: at most [`MAX_PAGES_PER_REQUEST`], kept inline
/// (no heap) in the frontend's table of page lists.
pub(crate) type PageList<P> = heapless::Vec<DataPage<P>, MAX_PAGES_PER_REQUEST>;

/// The free pages: a stack whose top is at its low end, so that the top `k` pages, as they
/// lie, are a run in ascending pool order, and a run put back as it came out lies as it
/// was: the next request of the same size gets the same ascending run again. Taking a run
/// and putting it back are each one forward copy (a stack topped at the high end hands a
/// run out, and takes it back, in reverse, one page at a time).
///
/// `pages[top..]` are the free pages, top first. The entries below `top` are stale copies
/// of pages now in flight or lent: the vector keeps its length, so putting pages back is
/// a copy into them, not an insertion (it grows only if more pages come back than it ever
/// held).
pub(crate) struct Pool<P> {
    pages: Vec<DataPage<P>>,
    top: usize,
}

impl<P: Copy> Pool<P> {
    /// A pool handing out `pages` in the order given.
    pub(crate) fn new(pages: Vec<P>) -> Self {
        Self {
            pages: pages.into_iter().map(DataPage::fresh).collect(),
            top: 0,
        }
    }

    /// Free pages.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.pages.len() - self.top
    }

    /// The free pages, top first (in the order they are handed out).
    pub(crate) fn free(&self) -> &[DataPage<P>] {
        self.pages.get(self.top..).unwrap_or_default()
    }

    /// The free pages, top first, to update.
    pub(crate) fn free_mut(&mut self) -> &mut [DataPage<P>] {
        self.pages.get_mut(self.top..).unwrap_or_default()
    }

    /// Takes the top `count` free pages (all of them if fewer) off the pool and returns
    /// them in ascending pool order. They may be updated there before they are copied out
    /// (their entries are stale now).
    #[inline]
    pub(crate) fn take(&mut self, count: usize) -> &mut [DataPage<P>] {
        let start = self.top;
        self.top = start.saturating_add(count).min(self.pages.len());
        self.pages.get_mut(start..self.top).unwrap_or_default()
    }

    /// Puts a page on top.
    #[inline]
    pub(crate) fn push(&mut self, page: DataPage<P>) {
        match self.top.checked_sub(1) {
            Some(top) => {
                self.top = top;
                if let Some(entry) = self.pages.get_mut(top) {
                    *entry = page;
                }
            }
            None => self.push_growing(page),
        }
    }

    /// [`push`](Self::push) onto a pool holding every page it ever held (not expected):
    /// the vector grows.
    #[cold]
    fn push_growing(&mut self, page: DataPage<P>) {
        self.pages.insert(0, page);
    }

    /// Puts a run back on top as it lies (its first page on top), as
    /// [`take`](Self::take) handed it out.
    #[inline]
    pub(crate) fn put_back(&mut self, run: &[DataPage<P>]) {
        let room = self
            .top
            .checked_sub(run.len())
            .and_then(|start| Some(start).zip(self.pages.get_mut(start..self.top)));
        match room {
            Some((start, room)) => {
                copy_run(room, run);
                self.top = start;
            }
            None => self.put_back_growing(run),
        }
    }

    /// [`put_back`](Self::put_back) when more pages come back than the pool ever held (not
    /// expected): the vector grows.
    #[cold]
    fn put_back_growing(&mut self, run: &[DataPage<P>]) {
        for page in run.iter().rev() {
            self.push(*page);
        }
    }

    /// Keeps the free pages `keep` says to keep, in order (the stale entries go too).
    pub(crate) fn retain(&mut self, keep: impl FnMut(&DataPage<P>) -> bool) {
        self.pages.drain(..self.top);
        self.pages.retain(keep);
        self.top = 0;
    }
}

/// Copies a run of pages into `to` (as long as `run`). A run of one page (a 4 KiB
/// request's) is one load and one store; a longer one goes through `copy_from_slice`, a
/// `memcpy` call that costs about 17 instructions before it copies anything.
#[inline]
fn copy_run<P: Copy>(to: &mut [DataPage<P>], run: &[DataPage<P>]) {
    match (to, run) {
        ([to], [page]) => *to = *page,
        (to, run) => to.copy_from_slice(run),
    }
}

/// Appends a run of pages to a list with room for it (a vacant list, and at most
/// [`MAX_PAGES_PER_REQUEST`] pages), as [`copy_run`] copies them.
#[inline]
pub(crate) fn append_run<P: Copy>(list: &mut PageList<P>, run: &[DataPage<P>]) {
    let _ = match run {
        [page] => list.push(*page).map_err(drop),
        run => list.extend_from_slice(run),
    };
}
