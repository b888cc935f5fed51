//! The security server (Xen's FLASK `ss` plus its AVC): the active policy,
//! enforcing or permissive mode, the table of labels domains carry
//! (security ids, which survive a policy reload), per-(subject, target)
//! denial counters and the rate-limited AVC log.
//!
//! A decision is [`SecurityServer::check`]; the hypercall layer asks it
//! before changing any state (Xen XSA-47). Time comes in as `now_ns` and
//! lines go out through a callback, so all of this runs on the host too.

use alloc::borrow::Cow;
use core::fmt;

use heapless::{String, Vec};
use xen_abi::policy::{Class, SECURITY_SERVER_TYPE};
use xen_abi::{errno, DomId};

use super::label::Label;
use super::rate_limit::{RateLimit, RateLimiter};
use super::{Policy, PolicyError, TypeId};

/// Most distinct labels the server tracks.
pub const MAX_LABELS: usize = 64;
/// Longest label, in bytes (a bundle record's `seclabel` field).
pub const MAX_LABEL_BYTES: usize = 63;
/// Most (subject, target) pairs with their own denial counter; denials of
/// further pairs are counted together.
pub const DENIAL_COUNTER_SLOTS: usize = 64;

/// A security id: the index of a registered label. Domains store this,
/// not a type id, so a policy reload cannot leave them pointing at the
/// wrong type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecurityId(u16);

impl SecurityId {
    /// The id as a number (for logs and tests).
    pub fn index(self) -> u16 {
        self.0
    }
}

/// Whether denials are enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Denials are refused and logged (the default).
    Enforcing,
    /// Denials are logged and then allowed (development only).
    Permissive,
}

/// One question to the security server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessRequest {
    /// The label of the domain acting.
    pub subject: SecurityId,
    /// The label of what it acts on.
    pub target: SecurityId,
    /// The class of the operation.
    pub class: Class,
    /// The permission bits of `class` the operation needs (all of them).
    pub permissions: u32,
    /// The domain acting, for the log line.
    pub domid: DomId,
}

/// The policy refused an operation. Nothing may have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessDenied;

impl AccessDenied {
    /// The errno Xen's FLASK returns for a denial.
    pub fn errno(self) -> i64 {
        errno::EACCES
    }
}

/// Why a label could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelError {
    /// Not `type` or `user:role:type`, or longer than [`MAX_LABEL_BYTES`].
    Malformed,
    /// The active policy declares no such type.
    UnknownType,
    /// [`MAX_LABELS`] distinct labels are registered already.
    TableFull,
    /// A new label named by a request the policy refuses: not registered
    /// ([`SecurityServer::register_label_for`]).
    NotPermitted,
}

#[derive(Clone, Debug)]
struct LabelEntry {
    /// The full `user:role:type` context.
    context: String<MAX_LABEL_BYTES>,
    /// Its type in the active policy; `None` if the policy dropped it.
    type_id: Option<TypeId>,
}

#[derive(Clone, Copy, Debug)]
struct DenialCounter {
    subject: SecurityId,
    target: SecurityId,
    count: u64,
}

/// The active policy and everything that decides and records with it.
pub struct SecurityServer {
    bytes: Cow<'static, [u8]>,
    type_count: u16,
    rule_count: u32,
    mode: Mode,
    labels: Vec<LabelEntry, MAX_LABELS>,
    counters: Vec<DenialCounter, DENIAL_COUNTER_SLOTS>,
    untracked_denials: u64,
    total_denials: u64,
    limiter: RateLimiter,
}

/// The context printed for a security id the server never issued.
const UNLABELED_CONTEXT: &str = "system_u:object_r:unlabeled_t";

fn full_context(label: &Label<'_>) -> Option<String<MAX_LABEL_BYTES>> {
    let mut context = String::new();
    fmt::write(&mut context, format_args!("{label}")).ok()?;
    Some(context)
}

/// The permission names in `bits` of `class`, each preceded by a space;
/// a bit the class does not define prints as hex.
struct PermissionList {
    class: Class,
    bits: u32,
}

impl fmt::Display for PermissionList {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut remaining = self.bits;
        while remaining != 0 {
            let bit = remaining & remaining.wrapping_neg();
            remaining &= !bit;
            match self.class.permission_name(bit) {
                Some(name) => write!(formatter, " {name}")?,
                None => write!(formatter, " {bit:#x}")?,
            }
        }
        Ok(())
    }
}

impl SecurityServer {
    /// A server enforcing (or not) the compiled policy in `bytes`, which
    /// are validated first. The security server's own label
    /// ([`SECURITY_SERVER_TYPE`]) is registered as [`Self::security_server_id`].
    pub fn new(bytes: Cow<'static, [u8]>, mode: Mode) -> Result<Self, PolicyError> {
        let policy = Policy::parse(&bytes)?;
        let (type_count, rule_count) = (policy.type_count, policy.rule_count);
        let mut server = SecurityServer {
            bytes,
            type_count,
            rule_count,
            mode,
            labels: Vec::new(),
            counters: Vec::new(),
            untracked_denials: 0,
            total_denials: 0,
            limiter: RateLimiter::new(RateLimit::default()),
        };
        // The table is empty and the label well formed: this cannot fail.
        let _ = server.intern(SECURITY_SERVER_TYPE, false, |_, _| true);
        Ok(server)
    }

    /// The active policy.
    pub fn policy(&self) -> Policy<'_> {
        Policy {
            bytes: &self.bytes,
            type_count: self.type_count,
            rule_count: self.rule_count,
        }
    }

    /// Enforcing or permissive.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Switches mode (after the caller passed `security { setenforce }`).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// The AVC log's rate limit.
    pub fn rate_limit(&self) -> RateLimit {
        self.limiter.limit()
    }

    /// Changes the AVC log's rate limit.
    pub fn set_rate_limit(&mut self, limit: RateLimit) {
        self.limiter.set_limit(limit);
    }

    /// The label the `security` class is checked against.
    pub fn security_server_id(&self) -> SecurityId {
        SecurityId(0)
    }

    /// The security id of `label` (`type` or `user:role:type`), registering
    /// it on first use (Xen's `security_context_to_sid`). The active policy
    /// must declare its type.
    pub fn register_label(&mut self, label: &str) -> Result<SecurityId, LabelError> {
        self.intern(label, true, |_, _| true)
    }

    /// The security id of `label` for a domain that `subject` asks to
    /// create with `permissions` of `class`. A label registered already is
    /// returned as it is (the caller's check decides); a new one is
    /// registered only if `subject` holds those permissions on its type, or
    /// the server is permissive. Labels are never forgotten and the table
    /// is small ([`MAX_LABELS`]): registering whatever a refused request
    /// names would let any domain fill it with `userN:role:type` variants,
    /// after which no domain with a new label could be created.
    pub fn register_label_for(
        &mut self,
        subject: Option<SecurityId>,
        label: &str,
        class: Class,
        permissions: u32,
    ) -> Result<SecurityId, LabelError> {
        self.intern(label, true, |server, type_id| {
            if server.mode != Mode::Enforcing {
                return true;
            }
            let source = subject.and_then(|subject| server.type_of(subject));
            match (source, type_id) {
                (Some(source), Some(target)) => {
                    permissions != 0
                        && server.policy().allowed(source, target, class) & permissions
                            == permissions
                }
                _ => false,
            }
        })
    }

    /// The id of `label`, registering it if new and `admit` (asked with its
    /// type) agrees; [`LabelError::NotPermitted`] if it does not.
    fn intern(
        &mut self,
        label: &str,
        require_type: bool,
        admit: impl FnOnce(&Self, Option<TypeId>) -> bool,
    ) -> Result<SecurityId, LabelError> {
        let parsed = Label::parse(label).ok_or(LabelError::Malformed)?;
        let context = full_context(&parsed).ok_or(LabelError::Malformed)?;
        let type_id = self.policy().lookup_type(parsed.type_name());
        if require_type && type_id.is_none() {
            return Err(LabelError::UnknownType);
        }
        if let Some(index) = self
            .labels
            .iter()
            .position(|entry| entry.context == context)
        {
            return Ok(SecurityId(index as u16));
        }
        if !admit(self, type_id) {
            return Err(LabelError::NotPermitted);
        }
        let index = self.labels.len() as u16;
        self.labels
            .push(LabelEntry { context, type_id })
            .map_err(|_| LabelError::TableFull)?;
        Ok(SecurityId(index))
    }

    /// The full context of a security id.
    pub fn context(&self, id: SecurityId) -> Option<&str> {
        self.labels
            .get(usize::from(id.0))
            .map(|entry| entry.context.as_str())
    }

    /// The type a security id has in the active policy.
    pub fn type_of(&self, id: SecurityId) -> Option<TypeId> {
        self.labels.get(usize::from(id.0))?.type_id
    }

    /// Replaces the policy. `bytes` are validated in full first; on any
    /// error nothing changes. Registered labels are mapped to the new
    /// policy's types; returns how many it does not declare (every check
    /// involving those is denied until a policy declares them again).
    pub fn load_policy(&mut self, bytes: Cow<'static, [u8]>) -> Result<usize, PolicyError> {
        let policy = Policy::parse(&bytes)?;
        let (type_count, rule_count) = (policy.type_count, policy.rule_count);
        let mut type_ids = [None; MAX_LABELS];
        for (slot, entry) in type_ids.iter_mut().zip(self.labels.iter()) {
            *slot = Label::parse(&entry.context)
                .and_then(|label| policy.lookup_type(label.type_name()));
        }
        let mut unknown = 0;
        for (entry, type_id) in self.labels.iter_mut().zip(type_ids) {
            entry.type_id = type_id;
            unknown += usize::from(type_id.is_none());
        }
        self.bytes = bytes;
        self.type_count = type_count;
        self.rule_count = rule_count;
        // The security server's own label may be undeclared; it is not a domain's.
        Ok(unknown - usize::from(self.type_of(self.security_server_id()).is_none()))
    }

    /// The permissions of `class` that `subject` holds on `target`.
    pub fn compute_av(&self, subject: SecurityId, target: SecurityId, class: Class) -> u32 {
        match (self.type_of(subject), self.type_of(target)) {
            (Some(source), Some(target)) => self.policy().allowed(source, target, class),
            _ => 0,
        }
    }

    /// Decides `request`: `Ok` to go ahead. A denial is counted and logged
    /// (rate-limited) in Xen's AVC format through `log`, one line per call
    /// without a newline; in permissive mode it is logged and then allowed.
    pub fn check(
        &mut self,
        request: &AccessRequest,
        now_ns: u64,
        log: &mut dyn FnMut(fmt::Arguments<'_>),
    ) -> Result<(), AccessDenied> {
        let allowed = self.compute_av(request.subject, request.target, request.class);
        let denied = request.permissions & !allowed;
        if denied == 0 && request.permissions != 0 {
            return Ok(());
        }
        self.count_denial(request.subject, request.target);
        if self.limiter.admit(now_ns, log) {
            log(format_args!(
                "avc:  denied  {{{} }} for domid={} scontext={} tcontext={} tclass={}",
                PermissionList {
                    class: request.class,
                    bits: denied,
                },
                request.domid.0,
                self.context(request.subject).unwrap_or(UNLABELED_CONTEXT),
                self.context(request.target).unwrap_or(UNLABELED_CONTEXT),
                request.class.name()
            ));
        }
        match self.mode {
            Mode::Enforcing => Err(AccessDenied),
            Mode::Permissive => Ok(()),
        }
    }

    /// Logs how many lines the rate limiter held back, if its window is
    /// over (otherwise that happens with the next denial).
    pub fn report_suppressed(&mut self, now_ns: u64, log: &mut dyn FnMut(fmt::Arguments<'_>)) {
        self.limiter.roll(now_ns, log);
    }

    fn count_denial(&mut self, subject: SecurityId, target: SecurityId) {
        self.total_denials = self.total_denials.saturating_add(1);
        if let Some(counter) = self
            .counters
            .iter_mut()
            .find(|counter| counter.subject == subject && counter.target == target)
        {
            counter.count = counter.count.saturating_add(1);
        } else if self
            .counters
            .push(DenialCounter {
                subject,
                target,
                count: 1,
            })
            .is_err()
        {
            self.untracked_denials = self.untracked_denials.saturating_add(1);
        }
    }

    /// Denials of `subject` acting on `target` (0 if the pair has no
    /// counter of its own).
    pub fn denials(&self, subject: SecurityId, target: SecurityId) -> u64 {
        self.counters
            .iter()
            .find(|counter| counter.subject == subject && counter.target == target)
            .map_or(0, |counter| counter.count)
    }

    /// Every per-pair counter: `(subject, target, denials)`, in first-denial order.
    pub fn denial_counters(&self) -> impl Iterator<Item = (SecurityId, SecurityId, u64)> + '_ {
        self.counters
            .iter()
            .map(|counter| (counter.subject, counter.target, counter.count))
    }

    /// Every denial since boot (permissive ones included).
    pub fn total_denials(&self) -> u64 {
        self.total_denials
    }

    /// Denials of pairs that found no free counter.
    pub fn untracked_denials(&self) -> u64 {
        self.untracked_denials
    }

    /// AVC lines the rate limiter held back since boot.
    pub fn suppressed_lines(&self) -> u64 {
        self.limiter.suppressed_total()
    }
}
