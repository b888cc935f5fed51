//! A fake guest memory and grant table for blkfront's tests: pages start full of junk,
//! every grant records a snapshot of its page, and the test can make the backend "hold"
//! a grant so revocation fails.
#![allow(dead_code)] // reason: each test binary uses a different subset of the helpers

use blkfront::{DomId, GrantError, GrantPages, GrantRef};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// The backend's domain.
pub(crate) const BACKEND: DomId = DomId(1);

/// A live grant.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub(crate) page: usize,
    pub(crate) backend: DomId,
    pub(crate) read_only: bool,
    /// The page's contents when it was granted.
    pub(crate) snapshot: Vec<u8>,
}

/// The guest's pages and grant table; the test keeps a handle to play the backend.
pub(crate) type Shared = Rc<RefCell<FakeState>>;

/// The provider blkfront uses: a handle on the shared state.
#[derive(Debug)]
pub(crate) struct FakeGrants(pub(crate) Shared);

/// Pages are indices into `pages`.
#[derive(Debug, Default)]
pub(crate) struct FakeState {
    pub(crate) pages: Vec<Vec<u8>>,
    pub(crate) grants: BTreeMap<u32, Grant>,
    pub(crate) held: BTreeSet<u32>,
    pub(crate) refuse_grants_after: Option<usize>,
    pub(crate) granted_ever: usize,
    next: u32,
}

impl FakeGrants {
    /// `count` junk-filled pages; returns the provider, a handle on its state and the
    /// page list.
    pub(crate) fn with_pages(count: usize) -> (Self, Shared, Vec<usize>) {
        let state = FakeState {
            pages: vec![vec![0xee; 4096]; count],
            next: 8,
            ..FakeState::default()
        };
        let shared = Rc::new(RefCell::new(state));
        (Self(shared.clone()), shared, (0..count).collect())
    }
}

impl FakeState {
    /// The page behind a live grant (what the backend would see).
    pub(crate) fn granted_page(&mut self, reference: u32) -> Option<&mut Vec<u8>> {
        let page = self.grants.get(&reference)?.page;
        self.pages.get_mut(page)
    }
}

impl GrantPages for FakeGrants {
    type Page = usize;

    fn zero(&mut self, page: usize) {
        self.0.borrow_mut().pages[page].fill(0);
    }

    fn write(&mut self, page: usize, offset_bytes: usize, data: &[u8]) {
        self.0.borrow_mut().pages[page][offset_bytes..offset_bytes + data.len()]
            .copy_from_slice(data);
    }

    fn read(&mut self, page: usize, offset_bytes: usize, data: &mut [u8]) {
        data.copy_from_slice(&self.0.borrow().pages[page][offset_bytes..offset_bytes + data.len()]);
    }

    fn grant(
        &mut self,
        page: usize,
        backend: DomId,
        read_only: bool,
    ) -> Result<GrantRef, GrantError> {
        let mut state = self.0.borrow_mut();
        let state = &mut *state;
        if state
            .refuse_grants_after
            .is_some_and(|limit| state.granted_ever >= limit)
        {
            return Err(GrantError::TableFull);
        }
        state.granted_ever += 1;
        let reference = state.next;
        state.next += 1;
        let snapshot = state.pages[page].clone();
        state.grants.insert(
            reference,
            Grant {
                page,
                backend,
                read_only,
                snapshot,
            },
        );
        Ok(GrantRef(reference))
    }

    fn revoke(&mut self, grant: GrantRef) -> Result<(), GrantError> {
        let mut state = self.0.borrow_mut();
        if state.held.contains(&grant.0) {
            return Err(GrantError::InUse);
        }
        state
            .grants
            .remove(&grant.0)
            .map(|_| ())
            .ok_or(GrantError::Invalid)
    }
}
