//! The shared-info page: Xen's x86_64 layout exactly, so event channels and
//! time use it without a layout change. The hypervisor writes it; the
//! domain reads it (and writes its mask bits and `evtchn_upcall_mask`).

/// Bytes of `struct shared_info`.
pub const SIZE: usize = 3136;
/// vCPUs in the page (`XEN_LEGACY_MAX_VCPUS`).
pub const MAX_VCPUS: usize = 32;
/// Bytes of `struct vcpu_info`.
pub const VCPU_INFO_SIZE: usize = 64;
/// Bytes of `struct vcpu_time_info`.
pub const VCPU_TIME_INFO_SIZE: usize = 32;
/// Event-channel ports in the 2-level ABI (64 × 64).
pub const EVENT_CHANNEL_PORTS: usize = 4096;

/// Offsets in `struct shared_info`.
pub mod offset {
    /// `vcpu_info[32]`.
    pub const VCPU_INFO: usize = 0;
    /// `evtchn_pending[64]` (u64 each).
    pub const EVTCHN_PENDING: usize = 2048;
    /// `evtchn_mask[64]`.
    pub const EVTCHN_MASK: usize = 2560;
    /// `wc_version` u32.
    pub const WC_VERSION: usize = 3072;
    /// `wc_sec` u32.
    pub const WC_SEC: usize = 3076;
    /// `wc_nsec` u32.
    pub const WC_NSEC: usize = 3080;
    /// `wc_sec_hi` u32.
    pub const WC_SEC_HI: usize = 3084;
    /// `arch_shared_info` (48 bytes).
    pub const ARCH: usize = 3088;
}

/// Offsets in `struct vcpu_info`.
pub mod vcpu_info {
    /// `evtchn_upcall_pending` u8.
    pub const UPCALL_PENDING: usize = 0;
    /// `evtchn_upcall_mask` u8.
    pub const UPCALL_MASK: usize = 1;
    /// `evtchn_pending_sel` u64.
    pub const PENDING_SEL: usize = 8;
    /// `arch_vcpu_info` (cr2, pad: 16 bytes).
    pub const ARCH: usize = 16;
    /// `vcpu_time_info`.
    pub const TIME: usize = 32;
}

/// Offsets in `struct vcpu_time_info`. Readers retry while `version` is odd
/// or changed: `ns = system_time + ((tsc - tsc_timestamp) << shift) * mul >> 32`.
pub mod vcpu_time_info {
    /// `version` u32.
    pub const VERSION: usize = 0;
    /// `tsc_timestamp` u64.
    pub const TSC_TIMESTAMP: usize = 8;
    /// `system_time` u64 (ns).
    pub const SYSTEM_TIME: usize = 16;
    /// `tsc_to_system_mul` u32.
    pub const TSC_TO_SYSTEM_MUL: usize = 24;
    /// `tsc_shift` i8.
    pub const TSC_SHIFT: usize = 28;
    /// `flags` u8.
    pub const FLAGS: usize = 29;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xen_sizes() {
        assert_eq!(VCPU_INFO_SIZE * MAX_VCPUS, offset::EVTCHN_PENDING);
        assert_eq!(offset::EVTCHN_PENDING + 64 * 8, offset::EVTCHN_MASK);
        assert_eq!(offset::EVTCHN_MASK + 64 * 8, offset::WC_VERSION);
        assert_eq!(offset::ARCH + 48, SIZE);
        assert_eq!(vcpu_info::TIME + VCPU_TIME_INFO_SIZE, VCPU_INFO_SIZE);
        assert_eq!(EVENT_CHANNEL_PORTS, 64 * 64);
    }
}
