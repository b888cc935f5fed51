//! `grant_table_op` (20): Xen's v1 grant tables only (v2 and transitive
//! grants are where Xen's advisories cluster). Numbers and layouts are
//! Xen's (`xen/include/public/grant_table.h`). Call: `rdi` = sub-operation,
//! `rsi` = guest address of an array of argument blocks, `rdx` = count.

/// `GNTTABOP_map_grant_ref`.
pub const MAP_GRANT_REF: u64 = 0;
/// `GNTTABOP_unmap_grant_ref`.
pub const UNMAP_GRANT_REF: u64 = 1;
/// `GNTTABOP_setup_table`.
pub const SETUP_TABLE: u64 = 2;
/// `GNTTABOP_dump_table`.
pub const DUMP_TABLE: u64 = 3;
/// `GNTTABOP_transfer` (not offered).
pub const TRANSFER: u64 = 4;
/// `GNTTABOP_copy`.
pub const COPY: u64 = 5;
/// `GNTTABOP_query_size`.
pub const QUERY_SIZE: u64 = 6;

/// Bytes of `grant_entry_v1`: flags u16 @0, domid u16 @2, frame u32 @4.
pub const ENTRY_SIZE: usize = 8;
/// Entries per 4 KiB grant-table page.
pub const ENTRIES_PER_PAGE: usize = 512;
/// Reserved ref: the console ring page.
pub const RESERVED_CONSOLE: u32 = 0;
/// Reserved ref: the store ring page.
pub const RESERVED_XENSTORE: u32 = 1;

/// `GTF_*` flags of a v1 entry.
pub mod entry_flags {
    /// `GTF_invalid`.
    pub const INVALID: u16 = 0;
    /// `GTF_permit_access`.
    pub const PERMIT_ACCESS: u16 = 1;
    /// `GTF_accept_transfer` (not offered).
    pub const ACCEPT_TRANSFER: u16 = 2;
    /// The type bits.
    pub const TYPE_MASK: u16 = 3;
    /// `GTF_readonly`.
    pub const READONLY: u16 = 1 << 2;
    /// `GTF_reading`: set by the hypervisor while mapped or copied from.
    pub const READING: u16 = 1 << 3;
    /// `GTF_writing`: set by the hypervisor while mapped writable or copied to.
    pub const WRITING: u16 = 1 << 4;
}

/// `GNTMAP_*` flags of a map request.
pub mod map_flags {
    /// `GNTMAP_device_map`: return a bus address for DMA.
    pub const DEVICE_MAP: u32 = 1 << 0;
    /// `GNTMAP_host_map`: map into the caller's address space.
    pub const HOST_MAP: u32 = 1 << 1;
    /// `GNTMAP_readonly`.
    pub const READONLY: u32 = 1 << 2;
}

/// `struct gnttab_map_grant_ref` (32 bytes).
pub mod map_grant_ref {
    /// Bytes.
    pub const SIZE: usize = 32;
    /// `host_addr` u64: in ours, ignored on input; the hypervisor picks a
    /// slot in the caller's grant window and returns its address here.
    pub const HOST_ADDR: usize = 0;
    /// `flags` u32 (`GNTMAP_*`).
    pub const FLAGS: usize = 8;
    /// `ref` u32.
    pub const REF: usize = 12;
    /// `dom` u16: the granting domain.
    pub const DOM: usize = 16;
    /// `status` i16 (out).
    pub const STATUS: usize = 18;
    /// `handle` u32 (out).
    pub const HANDLE: usize = 20;
    /// `dev_bus_addr` u64 (out).
    pub const DEV_BUS_ADDR: usize = 24;
}

/// `struct gnttab_unmap_grant_ref` (24 bytes).
pub mod unmap_grant_ref {
    /// Bytes.
    pub const SIZE: usize = 24;
    /// `host_addr` u64.
    pub const HOST_ADDR: usize = 0;
    /// `dev_bus_addr` u64.
    pub const DEV_BUS_ADDR: usize = 8;
    /// `handle` u32.
    pub const HANDLE: usize = 16;
    /// `status` i16 (out).
    pub const STATUS: usize = 20;
}

/// `struct gnttab_copy` (40 bytes): source {ref-or-gmfn u64?} — Xen's
/// `gnttab_copy_ptr` is {union {ref u32, gmfn u64} @0, domid u16 @8,
/// offset u16 @10} padded to 16.
pub mod copy {
    /// Bytes.
    pub const SIZE: usize = 40;
    /// `source` pointer block (16 bytes).
    pub const SOURCE: usize = 0;
    /// `dest` pointer block (16 bytes).
    pub const DEST: usize = 16;
    /// `len` u16.
    pub const LEN: usize = 32;
    /// `flags` u16 (`GNTCOPY_*`).
    pub const FLAGS: usize = 34;
    /// `status` i16 (out).
    pub const STATUS: usize = 36;
    /// In a pointer block: `u.ref` u32 or `u.gmfn` u64.
    pub const POINTER_REF_OR_GMFN: usize = 0;
    /// In a pointer block: `domid` u16.
    pub const POINTER_DOMID: usize = 8;
    /// In a pointer block: `offset` u16.
    pub const POINTER_OFFSET: usize = 10;
    /// `GNTCOPY_source_gref`.
    pub const SOURCE_GREF: u16 = 1 << 0;
    /// `GNTCOPY_dest_gref`.
    pub const DEST_GREF: u16 = 1 << 1;
}

/// `struct gnttab_setup_table` (24 bytes) and `gnttab_query_size` (16 bytes).
pub mod setup_table {
    /// Bytes of `gnttab_setup_table`.
    pub const SIZE: usize = 24;
    /// Bytes of `gnttab_query_size`: dom u16 @0, nr_frames u32 @4 (out),
    /// max_nr_frames u32 @8 (out), status i16 @12 (out).
    pub const QUERY_SIZE_SIZE: usize = 16;
}

/// `GNTST_*` status codes.
pub mod status {
    /// `GNTST_okay`.
    pub const OKAY: i16 = 0;
    /// `GNTST_general_error`.
    pub const GENERAL_ERROR: i16 = -1;
    /// `GNTST_bad_domain`.
    pub const BAD_DOMAIN: i16 = -2;
    /// `GNTST_bad_gntref`.
    pub const BAD_GNTREF: i16 = -3;
    /// `GNTST_bad_handle`.
    pub const BAD_HANDLE: i16 = -4;
    /// `GNTST_bad_virt_addr`.
    pub const BAD_VIRT_ADDR: i16 = -5;
    /// `GNTST_bad_dev_addr`.
    pub const BAD_DEV_ADDR: i16 = -6;
    /// `GNTST_no_device_space`.
    pub const NO_DEVICE_SPACE: i16 = -7;
    /// `GNTST_permission_denied`.
    pub const PERMISSION_DENIED: i16 = -8;
    /// `GNTST_bad_page`.
    pub const BAD_PAGE: i16 = -9;
    /// `GNTST_bad_copy_arg`.
    pub const BAD_COPY_ARG: i16 = -10;
    /// `GNTST_address_too_big`.
    pub const ADDRESS_TOO_BIG: i16 = -11;
    /// `GNTST_eagain`.
    pub const EAGAIN: i16 = -12;
    /// `GNTST_no_space`.
    pub const NO_SPACE: i16 = -13;
}
