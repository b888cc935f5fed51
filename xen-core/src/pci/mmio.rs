//! Which MMIO pages of an assigned function the driver domain may map: the
//! pages wholly inside its memory BARs, minus every page that holds part of
//! the MSI-X table or PBA. I/O BARs are never mapped.

use alloc::vec::Vec;

use xen_abi::layout::PAGE_SIZE;

use super::{AssignedFunction, Bar, ConfigSpace, MsixRegion};

/// log2 of [`PAGE_SIZE`].
const PAGE_SHIFT: u32 = PAGE_SIZE.trailing_zeros();

/// A run of whole pages of bus address space inside one BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioRange {
    /// The BAR register (0..6) the pages belong to.
    pub bar_index: u8,
    /// The bus address of the first page (page-aligned).
    pub start_address: u64,
    /// How many pages.
    pub page_count: u64,
}

/// Pages `[first, end)` (page numbers, end exclusive) of one BAR.
#[derive(Clone, Copy, Debug)]
struct PageSpan {
    bar_index: u8,
    first: u64,
    end: u64,
}

impl PageSpan {
    /// The span of every page that holds any of the bytes `[address,
    /// address + size_bytes)` (rounded outward); `size_bytes` > 0 and the
    /// range must not wrap (the probe checked both for BARs).
    fn covering(bar_index: u8, address: u64, size_bytes: u64) -> Self {
        let last_byte = address.saturating_add(size_bytes - 1);
        Self { bar_index, first: address >> PAGE_SHIFT, end: (last_byte >> PAGE_SHIFT) + 1 }
    }

    /// The span of the pages wholly inside `[address, address + size_bytes)`
    /// (rounded inward; may be empty).
    fn inside(bar_index: u8, address: u64, size_bytes: u64) -> Self {
        let last_byte = address.saturating_add(size_bytes - 1);
        let end = (last_byte >> PAGE_SHIFT) + u64::from(last_byte % PAGE_SIZE == PAGE_SIZE - 1);
        Self { bar_index, first: address.div_ceil(PAGE_SIZE), end }
    }

    fn to_range(self) -> MmioRange {
        MmioRange { bar_index: self.bar_index, start_address: self.first << PAGE_SHIFT, page_count: self.end - self.first }
    }
}

impl<C: ConfigSpace> AssignedFunction<C> {
    /// The pages that must never be mapped for the driver domain: each page
    /// holding part of the MSI-X table or PBA, page-rounded outward (one
    /// range when they touch). If either lies (partly) outside its BAR, the
    /// whole BAR is forbidden.
    pub fn forbidden_mmio_pages(&self) -> Vec<MmioRange> {
        self.forbidden_spans().into_iter().map(PageSpan::to_range).collect()
    }

    /// The pages the driver domain may map: of each memory BAR that has an
    /// address, the pages wholly inside it (a BAR smaller than a page, or
    /// not page-aligned, shares a page with something else and that page is
    /// left out), minus [`AssignedFunction::forbidden_mmio_pages`].
    pub fn mappable_mmio(&self) -> Vec<MmioRange> {
        let forbidden = self.forbidden_spans();
        let mut mappable = Vec::new();
        for (index, bar) in self.bars.iter().enumerate() {
            let Bar::Memory { address, size_bytes, .. } = *bar else {
                continue;
            };
            if address == 0 {
                continue;
            }
            let mut pieces = Vec::from([PageSpan::inside(index as u8, address, size_bytes)]);
            for hole in &forbidden {
                pieces = pieces.into_iter().flat_map(|piece| subtract(piece, hole)).collect();
            }
            mappable.extend(pieces.into_iter().filter(|piece| piece.first < piece.end).map(PageSpan::to_range));
        }
        mappable
    }

    /// [`AssignedFunction::forbidden_mmio_pages`] as page spans.
    fn forbidden_spans(&self) -> Vec<PageSpan> {
        let Some(msix) = self.msix else {
            return Vec::new();
        };
        let mut spans: Vec<PageSpan> = Vec::new();
        for span in [msix.table, msix.pending_bit_array].iter().filter_map(|region| self.region_span(region)) {
            // The table and PBA often share a page: report it once.
            match spans.iter_mut().find(|known| known.bar_index == span.bar_index && known.first <= span.end && span.first <= known.end) {
                Some(known) => *known = PageSpan { first: known.first.min(span.first), end: known.end.max(span.end), ..span },
                None => spans.push(span),
            }
        }
        spans
    }

    /// The pages holding an MSI-X structure, if it is in a memory BAR.
    fn region_span(&self, region: &MsixRegion) -> Option<PageSpan> {
        let Some(&Bar::Memory { address, size_bytes, .. }) = self.bars.get(usize::from(region.bar_index)) else {
            // Not in a memory BAR: no page of it is ever mapped.
            return None;
        };
        let offset = u64::from(region.offset_bytes);
        let length = u64::from(region.size_bytes).max(1);
        if offset.checked_add(length).is_none_or(|end| end > size_bytes) {
            return Some(PageSpan::covering(region.bar_index, address, size_bytes));
        }
        Some(PageSpan::covering(region.bar_index, address + offset, length))
    }
}

/// `piece` without the pages of `hole` (zero, one or two spans).
fn subtract(piece: PageSpan, hole: &PageSpan) -> impl Iterator<Item = PageSpan> {
    let before = PageSpan { end: piece.end.min(hole.first), ..piece };
    let after = PageSpan { first: piece.first.max(hole.end), ..piece };
    [before, after].into_iter().filter(|span| span.first < span.end)
}
