//! The scheduler's policy: weighted fair sharing of one CPU, by virtual run
//! time (a domain that has run `t` ns is charged `t * DEFAULT_WEIGHT /
//! weight`; the runnable domain with the least charge runs next), with a
//! fixed time slice enforced by the one-shot timer and a wake-up boost: a
//! domain woken from `block` is placed just ahead of the queue and preempts
//! a domain that has used up its share, so a spinning neighbour never adds a
//! whole slice to an I/O domain's latency. Pure logic; the hypervisor feeds
//! it times and states and applies its decisions.

use xen_abi::domctl::{DEFAULT_WEIGHT, MAX_WEIGHT};
use xen_abi::DomId;

/// The longest a domain runs before the scheduler looks again.
pub const TIME_SLICE_NS: u64 = 10_000_000;
/// How far ahead of the least-charged runnable domain a woken domain is
/// placed (at most), in charged nanoseconds.
pub const WAKE_BOOST_NS: u64 = TIME_SLICE_NS / 2;
/// Most domains the scheduler tracks.
pub const MAX_ENTRIES: usize = 64;

/// Whether a domain can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Ready (or running).
    Runnable,
    /// Waiting for an event or its timer.
    Blocked,
    /// Stopped by the control domain.
    Paused,
    /// Shut down; never runs again.
    Dead,
}

/// One domain's scheduling state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Which domain.
    pub id: DomId,
    /// Its share: 1..=MAX_WEIGHT.
    pub weight: u32,
    /// Its charged (weighted) run time.
    pub virtual_time_ns: u64,
    /// Real run time, for `getdomaininfo`.
    pub cpu_time_ns: u64,
    /// Can it run?
    pub state: RunState,
    /// Its timer deadline (system time), if armed.
    pub timer_deadline_ns: Option<u64>,
    /// Paused while blocked: on unpause it goes back to blocked.
    pub paused_while_blocked: bool,
}

/// Why a decision was made (for tests and statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The domain to run, or `None` to idle.
    pub next: Option<DomId>,
    /// When the scheduler must look again (system time), if ever.
    pub wake_at_ns: Option<u64>,
}

/// What went wrong with a scheduler request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleError {
    /// The domain is not known.
    NoSuchDomain,
    /// The table is full.
    Full,
    /// The weight is out of range.
    BadWeight,
}

/// The run queue of one CPU.
#[derive(Debug, Default)]
pub struct Scheduler {
    entries: heapless::Vec<Entry, MAX_ENTRIES>,
    running: Option<DomId>,
    /// When `running` was last switched in (system time).
    running_since_ns: u64,
    /// Switches made so far.
    pub switches: u64,
}

impl Scheduler {
    /// An empty run queue.
    pub const fn new() -> Scheduler {
        Scheduler { entries: heapless::Vec::new(), running: None, running_since_ns: 0, switches: 0 }
    }

    fn find(&mut self, id: DomId) -> Result<&mut Entry, ScheduleError> {
        self.entries.iter_mut().find(|entry| entry.id == id).ok_or(ScheduleError::NoSuchDomain)
    }

    /// A domain's entry.
    pub fn entry(&self, id: DomId) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.id == id)
    }

    /// The domain running now.
    pub fn running(&self) -> Option<DomId> {
        self.running
    }

    fn least_virtual_time(&self) -> Option<u64> {
        self.entries.iter().filter(|entry| entry.state == RunState::Runnable).map(|entry| entry.virtual_time_ns).min()
    }

    /// Adds a runnable domain (weight 0 means the default). It starts level
    /// with the least-charged runnable domain, so it neither starves nor
    /// gets a windfall.
    pub fn add(&mut self, id: DomId, weight: u32) -> Result<(), ScheduleError> {
        let weight = if weight == 0 { DEFAULT_WEIGHT } else { weight };
        if weight > MAX_WEIGHT {
            return Err(ScheduleError::BadWeight);
        }
        let start = self.least_virtual_time().unwrap_or(0);
        let entry = Entry {
            id,
            weight,
            virtual_time_ns: start,
            cpu_time_ns: 0,
            state: RunState::Runnable,
            timer_deadline_ns: None,
            paused_while_blocked: false,
        };
        self.entries.push(entry).map_err(|_| ScheduleError::Full)
    }

    /// Forgets a domain.
    pub fn remove(&mut self, id: DomId) {
        if self.running == Some(id) {
            self.running = None;
        }
        self.entries.retain(|entry| entry.id != id);
    }

    /// Charges the running domain for the time since it was switched in.
    pub fn account(&mut self, now_ns: u64) {
        let Some(id) = self.running else { return };
        let ran = now_ns.saturating_sub(self.running_since_ns);
        self.running_since_ns = now_ns;
        if let Ok(entry) = self.find(id) {
            entry.cpu_time_ns += ran;
            let charge = u128::from(ran) * u128::from(DEFAULT_WEIGHT) / u128::from(entry.weight);
            entry.virtual_time_ns = entry.virtual_time_ns.saturating_add(u64::try_from(charge).unwrap_or(u64::MAX));
        }
    }

    /// Sets a domain's state. Waking a blocked domain gives it the wake-up
    /// boost.
    pub fn set_state(&mut self, id: DomId, state: RunState) -> Result<(), ScheduleError> {
        let floor = self.least_virtual_time();
        let entry = self.find(id)?;
        let waking = entry.state == RunState::Blocked && state == RunState::Runnable;
        entry.state = state;
        if waking {
            // Boost: no further back than slightly ahead of the queue, so a
            // long sleep is not banked as credit, and not behind it either.
            if let Some(floor) = floor {
                entry.virtual_time_ns = entry.virtual_time_ns.max(floor.saturating_sub(WAKE_BOOST_NS));
            }
        }
        if state != RunState::Runnable && self.running == Some(id) {
            self.running = None;
        }
        Ok(())
    }

    /// Pauses a domain (remembering whether it was blocked).
    pub fn pause(&mut self, id: DomId) -> Result<(), ScheduleError> {
        let entry = self.find(id)?;
        if entry.state == RunState::Dead {
            return Ok(());
        }
        entry.paused_while_blocked = entry.state == RunState::Blocked;
        entry.state = RunState::Paused;
        if self.running == Some(id) {
            self.running = None;
        }
        Ok(())
    }

    /// Undoes [`Scheduler::pause`].
    pub fn unpause(&mut self, id: DomId) -> Result<(), ScheduleError> {
        let floor = self.least_virtual_time();
        let entry = self.find(id)?;
        if entry.state == RunState::Paused {
            entry.state = if entry.paused_while_blocked { RunState::Blocked } else { RunState::Runnable };
            if let (RunState::Runnable, Some(floor)) = (entry.state, floor) {
                entry.virtual_time_ns = entry.virtual_time_ns.max(floor);
            }
        }
        Ok(())
    }

    /// An event arrived for a domain: if it is blocked it becomes runnable
    /// (with the wake-up boost); if it was paused while blocked, it resumes
    /// runnable rather than blocked, so that an event delivered while it
    /// was paused is not lost until its next timer.
    pub fn wake(&mut self, id: DomId) -> Result<(), ScheduleError> {
        let entry = self.find(id)?;
        match entry.state {
            RunState::Blocked => self.set_state(id, RunState::Runnable),
            RunState::Paused => {
                entry.paused_while_blocked = false;
                Ok(())
            }
            RunState::Runnable | RunState::Dead => Ok(()),
        }
    }

    /// Arms (or with `None` cancels) a domain's timer.
    pub fn set_timer(&mut self, id: DomId, deadline_ns: Option<u64>) -> Result<(), ScheduleError> {
        self.find(id)?.timer_deadline_ns = deadline_ns;
        Ok(())
    }

    /// Fires every timer whose deadline has passed: the domain is woken if
    /// blocked. Calls `fired` with each domain whose timer fired.
    pub fn expire_timers(&mut self, now_ns: u64, fired: &mut dyn FnMut(DomId)) {
        let mut woken: heapless::Vec<DomId, MAX_ENTRIES> = heapless::Vec::new();
        for entry in self.entries.iter_mut() {
            if entry.timer_deadline_ns.is_some_and(|deadline| deadline <= now_ns) {
                entry.timer_deadline_ns = None;
                fired(entry.id);
                if entry.state == RunState::Blocked {
                    let _ = woken.push(entry.id);
                } else if entry.state == RunState::Paused {
                    entry.paused_while_blocked = false;
                }
            }
        }
        for id in woken {
            let _ = self.set_state(id, RunState::Runnable);
        }
    }

    /// `sched_op(yield)`: the domain goes behind every other runnable
    /// domain (if any), so the next decision picks someone else.
    pub fn yield_now(&mut self, id: DomId) -> Result<(), ScheduleError> {
        let latest_other = self
            .entries
            .iter()
            .filter(|entry| entry.state == RunState::Runnable && entry.id != id)
            .map(|entry| entry.virtual_time_ns)
            .max();
        let entry = self.find(id)?;
        if let Some(latest) = latest_other {
            entry.virtual_time_ns = entry.virtual_time_ns.max(latest.saturating_add(1));
        }
        Ok(())
    }

    /// When the scheduler must look again without deciding anything now:
    /// the earliest timer, or the running domain's slice end if others wait.
    pub fn wake_at(&self) -> Option<u64> {
        let timers = self.entries.iter().filter_map(|entry| entry.timer_deadline_ns).min();
        let waiting = self.entries.iter().filter(|entry| entry.state == RunState::Runnable).count() > 1;
        let slice_end = (self.running.is_some() && waiting).then_some(self.running_since_ns + TIME_SLICE_NS);
        match (timers, slice_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Picks the domain to run now and when to look again. `running` must be
    /// accounted first ([`Scheduler::account`]).
    pub fn decide(&mut self, now_ns: u64) -> Decision {
        let next = self
            .entries
            .iter()
            .filter(|entry| entry.state == RunState::Runnable)
            .min_by_key(|entry| (entry.virtual_time_ns, entry.id.0))
            .map(|entry| entry.id);
        if next != self.running {
            self.switches += 1;
            self.running = next;
        }
        self.running_since_ns = now_ns;
        let timers = self.entries.iter().filter_map(|entry| entry.timer_deadline_ns).min();
        let slice_end = next.and_then(|_| {
            // Only a slice if someone else is waiting to run.
            let others = self.entries.iter().filter(|entry| entry.state == RunState::Runnable).count() > 1;
            others.then_some(now_ns + TIME_SLICE_NS)
        });
        let wake_at_ns = match (timers, slice_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Decision { next, wake_at_ns }
    }
}

#[cfg(test)]
mod tests;
