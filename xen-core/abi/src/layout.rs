//! Where things are in a domain's address space. The hypervisor builds
//! every domain's page tables; a domain sees its pseudo-physical frame N at
//! `RAM_BASE + N * PAGE_SIZE`, and nothing of the hypervisor but the entry
//! trampoline (supervisor-only, in the upper half).

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 4096;
/// The guest virtual address of pseudo-physical frame 0 (1 GiB). Below it
/// nothing is mapped, so null-pointer accesses fault.
pub const RAM_BASE: u64 = 0x4000_0000;
/// The most RAM a domain may have (1 GiB), so all of it stays below 2 GiB,
/// where images linked with the default code model can reach.
pub const MAX_RAM_BYTES: u64 = 1 << 30;
/// The least RAM a domain may have.
pub const MIN_RAM_BYTES: u64 = 1 << 20;

/// Frame of the start-info page (read-only to the domain).
pub const START_INFO_PFN: u64 = 0;
/// Frame of the shared-info page.
pub const SHARED_INFO_PFN: u64 = 1;
/// Frame of the console ring page (grant ref 0).
pub const CONSOLE_PFN: u64 = 2;
/// Frame of the store ring page (grant ref 1).
pub const STORE_PFN: u64 = 3;
/// First frame of the domain's grant table (v1 entries, 512 per page),
/// which the domain writes and the hypervisor reads with compare-and-swap.
pub const GRANT_TABLE_PFN: u64 = 4;
/// Pages of grant table.
pub const GRANT_TABLE_PAGES: u64 = 1;
/// Where foreign pages granted to a domain are mapped in its address space
/// (`map_grant_ref` returns an address in this window).
pub const GRANT_WINDOW_BASE: u64 = 0x8000_0000;
/// Slots (pages) in the grant window.
pub const GRANT_WINDOW_PAGES: u64 = 1024;
/// A domain kernel's loadable segments must start at or above this offset
/// into its RAM: the first MiB is the hypervisor-filled pages above and
/// room for more. Images are linked at `RAM_BASE + IMAGE_OFFSET` (see
/// `frontends/runtime/guest.ld`).
pub const IMAGE_OFFSET: u64 = 0x10_0000;
/// Bytes of stack the builder leaves free at the top of RAM (the initial
/// `rsp` is the top of RAM).
pub const STACK_BYTES: u64 = 64 * 1024;

/// The guest virtual address of pseudo-physical frame `pfn`.
pub const fn pfn_to_address(pfn: u64) -> u64 {
    RAM_BASE + pfn * PAGE_SIZE
}

/// Register state at a domain's first instruction: `rip` = the image's
/// entry point, `rsp` = top of RAM, `rdi` = address of the start-info page,
/// `rflags` = IF only. Ring 3, 64-bit.
pub const INITIAL_RFLAGS: u64 = 0x202;
