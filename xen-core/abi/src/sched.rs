//! `sched_op` (29): Xen's sub-operations and shutdown reasons.

/// `SCHEDOP_yield`: give up the CPU, stay runnable.
pub const YIELD: u64 = 0;
/// `SCHEDOP_block`: sleep until an event is pending (or the timer fires).
pub const BLOCK: u64 = 1;
/// `SCHEDOP_shutdown`: argument points at a [`Shutdown`].
pub const SHUTDOWN: u64 = 2;
/// `SCHEDOP_poll`.
pub const POLL: u64 = 3;
/// `SCHEDOP_remote_shutdown`.
pub const REMOTE_SHUTDOWN: u64 = 4;

/// `struct sched_shutdown`: 4 bytes, the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Shutdown {
    /// One of the `SHUTDOWN_*` reasons.
    pub reason: u32,
}

/// Bytes of `struct sched_shutdown`.
pub const SHUTDOWN_SIZE: usize = 4;

/// Why a domain stopped (Xen's `SHUTDOWN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ShutdownReason {
    /// Clean power-off.
    Poweroff = 0,
    /// Restart requested.
    Reboot = 1,
    /// Suspend (not offered).
    Suspend = 2,
    /// The domain crashed (or was killed for a fault).
    Crash = 3,
    /// A watchdog fired.
    Watchdog = 4,
}

impl ShutdownReason {
    /// Decodes a reason, `None` for an unknown value.
    pub fn from_u32(value: u32) -> Option<ShutdownReason> {
        Some(match value {
            0 => ShutdownReason::Poweroff,
            1 => ShutdownReason::Reboot,
            2 => ShutdownReason::Suspend,
            3 => ShutdownReason::Crash,
            4 => ShutdownReason::Watchdog,
            _ => return None,
        })
    }

    /// Xen's word for the reason.
    pub fn name(self) -> &'static str {
        match self {
            ShutdownReason::Poweroff => "poweroff",
            ShutdownReason::Reboot => "reboot",
            ShutdownReason::Suspend => "suspend",
            ShutdownReason::Crash => "crash",
            ShutdownReason::Watchdog => "watchdog",
        }
    }
}
