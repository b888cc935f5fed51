//! Batches of grant operations, Xen's way: each entry succeeds or fails
//! whole and reports its own status; earlier entries stay done when a
//! later one fails; and no call does more than a budget of entries, so a
//! domain asking for a huge batch is served in slices by continuation
//! (Xen XSA-45) instead of holding the CPU.

/// Entries one call processes at most before asking to be continued.
pub const BATCH_BUDGET: u32 = 64;

/// How a slice of a batch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every entry up to `count` was processed.
    Finished,
    /// The budget ran out: re-enter the hypercall (a continuation) at entry
    /// `next`.
    Continue {
        /// The first entry not yet processed.
        next: u32,
    },
    /// Entry `index` could not even be processed (its request or status
    /// could not be copied: usually `EFAULT`); the call returns `-errno`.
    /// Entries before it stay done.
    Aborted {
        /// The entry.
        index: u32,
        /// The errno to return (positive).
        errno: i64,
    },
}

/// Runs `each` on entries `start..count`, at most `budget` of them (at
/// least one, so a call always makes progress). `each` does the whole
/// entry, writing its `GNTST_*` status back itself; it returns an errno
/// only when the entry could not be read or answered. A `start` past
/// `count` is `EINVAL`.
pub fn run_batch(start: u32, count: u32, budget: u32, mut each: impl FnMut(u32) -> Result<(), i64>) -> BatchOutcome {
    if start > count {
        return BatchOutcome::Aborted { index: start, errno: xen_abi::errno::EINVAL };
    }
    let end = start.saturating_add(budget.max(1)).min(count);
    for index in start..end {
        if let Err(errno) = each(index) {
            return BatchOutcome::Aborted { index, errno };
        }
    }
    if end < count {
        BatchOutcome::Continue { next: end }
    } else {
        BatchOutcome::Finished
    }
}
