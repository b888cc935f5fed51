//! Hypercall numbers and the calling convention.
//!
//! A domain enters with `syscall` (Xen PV x86_64 style): number in `rax`,
//! arguments in `rdi rsi rdx r10 r8`, result in `rax` (negative errno on
//! failure). `rcx` and `r11` are clobbered by the instruction itself; every
//! other register is preserved.

/// `set_callbacks` (not offered yet).
pub const SET_CALLBACKS: u64 = 4;
/// `memory_op`.
pub const MEMORY_OP: u64 = 12;
/// `set_timer_op`: arm an absolute deadline (ns of system time).
pub const SET_TIMER_OP: u64 = 15;
/// `xen_version`.
pub const XEN_VERSION: u64 = 17;
/// `console_io`: see [`console`].
pub const CONSOLE_IO: u64 = 18;
/// `grant_table_op`.
pub const GRANT_TABLE_OP: u64 = 20;
/// `vm_assist`.
pub const VM_ASSIST: u64 = 21;
/// `xsm_op`.
pub const XSM_OP: u64 = 27;
/// `sched_op`: see [`crate::sched`].
pub const SCHED_OP: u64 = 29;
/// `event_channel_op`.
pub const EVENT_CHANNEL_OP: u64 = 32;
/// `physdev_op`.
pub const PHYSDEV_OP: u64 = 33;
/// `sysctl`.
pub const SYSCTL: u64 = 35;
/// `domctl`.
pub const DOMCTL: u64 = 36;
/// Ours, in Xen's architecture-specific range (48..56): does nothing and
/// returns 0, for measuring the cost of a round trip.
pub const NULL: u64 = 48;
/// Ours: a test-only operation family (see [`test_op`]), refused unless the
/// hypervisor was booted with `testing=1`.
pub const TEST_OP: u64 = 49;
/// Hypercall numbers are below this.
pub const COUNT: u64 = 64;

/// Not a hypercall: a number the entry code answers with an immediate
/// `sysret`, without saving state, switching page tables or dispatching.
/// It exists only so benchmarks can measure a bare `syscall`/`sysret` pair
/// next to a real hypercall in the same run. Returns its own number.
pub const BARE_SYSCALL_FOR_BENCHMARK: u64 = 0x7fff_ffff;

/// `console_io` sub-operations and limits.
pub mod console {
    /// `CONSOLEIO_write`: (cmd, count, buffer) → bytes written.
    pub const WRITE: u64 = 0;
    /// `CONSOLEIO_read`: (cmd, count, buffer) → bytes read from the
    /// operator's channel (the second serial port), as Xen's dom0 reads
    /// the serial console's input; `VIRQ_CONSOLE` says there are some.
    /// Policy: `security { readconsole }`.
    pub const READ: u64 = 1;
    /// Ours (Xen has no such call): (cmd, count, buffer) → bytes written to
    /// the operator's channel, the control domain's answers. Policy:
    /// `security { writeconsole }`.
    pub const CHANNEL_WRITE: u64 = 0x80;
    /// Most bytes one `WRITE` takes; callers loop for more.
    pub const MAX_WRITE_BYTES: u64 = 1024;
    /// Most bytes one `READ` or `CHANNEL_WRITE` moves; callers loop.
    pub const MAX_CHANNEL_BYTES: u64 = 4096;
}

/// `sysctl` sub-operations (Xen's numbers, our own argument registers).
pub mod sysctl {
    /// `XEN_SYSCTL_readconsole`: (cmd, buffer, count, from) → bytes of the
    /// hypervisor's log copied, starting at byte `from` of the log's whole
    /// history (older bytes are gone: the copy starts at the oldest kept);
    /// the log's end offset is returned in the buffer's stead when `count`
    /// is 0. Policy: `security { readconsole }`.
    pub const READ_CONSOLE: u64 = 1;
    /// `XEN_SYSCTL_physinfo`: (cmd, buffer) → 0; the buffer gets
    /// [`physinfo`]'s block. Policy: `security { physinfo }`.
    pub const PHYSINFO: u64 = 3;

    /// Ours: (cmd, buffer, count) → records of domains that finished
    /// tearing down since the last call, oldest first, each
    /// [`exit_record::SIZE`] bytes, taken as read; how many. This is how the
    /// control domain applies `on_crash`/`on_poweroff` after `VIRQ_DOM_EXC`
    /// (the domain itself is gone by then). Policy: `security { readconsole }`.
    pub const EXITS: u64 = 0x80;

    /// One exit record.
    pub mod exit_record {
        /// Its size.
        pub const SIZE: usize = 8;
        /// `domid` u16.
        pub const DOMID: usize = 0;
        /// `reason` u32: a `SHUTDOWN_*` reason, or [`DESTROYED`].
        pub const REASON: usize = 4;
        /// Destroyed by `domctl` without shutting down.
        pub const DESTROYED: u32 = 0xffff;
    }

    /// The physinfo block (ours; Xen's is larger).
    pub mod physinfo {
        /// Its size.
        pub const SIZE: usize = 32;
        /// `total_pages` u64: frames of RAM the hypervisor manages.
        pub const TOTAL_PAGES: usize = 0;
        /// `free_pages` u64: frames free now.
        pub const FREE_PAGES: usize = 8;
        /// `domains` u32: domains that exist (dying ones included).
        pub const DOMAINS: usize = 16;
        /// `cpus` u32.
        pub const CPUS: usize = 20;
    }
}

/// `xen_version` sub-operations.
pub mod version {
    /// `XENVER_version`: returns `major << 16 | minor`.
    pub const VERSION: u64 = 0;
}

/// Test-only operations behind [`TEST_OP`].
pub mod test_op {
    /// Clobber every vector register in the hypervisor (after the caller's
    /// state was saved), as a switch to another domain would: the caller
    /// must find its own values when it resumes.
    pub const CLOBBER_VECTOR_REGISTERS: u64 = 1;
    /// Report hypervisor health: returns 1 if no invariant is broken.
    pub const HEALTH: u64 = 2;
}

/// `xsm_op` (27) sub-operations, numbered as Xen's FLASK ops:
/// `rdi` = sub-operation, then its arguments.
pub mod xsm {
    /// `FLASK_LOAD`: `rsi` = guest address of a compiled policy, `rdx` = its
    /// length. Needs `security { load_policy }`.
    pub const LOAD: u64 = 1;
    /// `FLASK_GETENFORCE`: returns 1 when enforcing, 0 when permissive.
    pub const GET_ENFORCE: u64 = 2;
    /// `FLASK_SETENFORCE`: `rsi` = 1 enforcing, 0 permissive. Needs
    /// `security { setenforce }`.
    pub const SET_ENFORCE: u64 = 3;
}
