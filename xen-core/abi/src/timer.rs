//! Time for domains: `set_timer_op` (15) arms an absolute deadline in
//! system time (nanoseconds since boot, as `vcpu_time_info` gives it); when
//! it passes the domain gets `VIRQ_TIMER` (and is woken from `block`).
//! A deadline of 0 cancels. System time is read without a hypercall from
//! `vcpu_time_info` in the shared-info page (see [`crate::shared_info`]).

/// `VIRQ_TIMER`: the domain's one-shot timer fired.
pub const VIRQ_TIMER: u32 = 0;
/// `VIRQ_DEBUG`.
pub const VIRQ_DEBUG: u32 = 1;
/// `VIRQ_CONSOLE`.
pub const VIRQ_CONSOLE: u32 = 2;
/// `VIRQ_DOM_EXC`: a domain died (delivered to the control domain).
pub const VIRQ_DOM_EXC: u32 = 3;
/// VIRQs are below this.
pub const NR_VIRQS: u32 = 24;
