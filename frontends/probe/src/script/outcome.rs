//! What a step's operation came to, and whether that is what the step
//! expected. Pure logic, tested on the host.

use core::fmt;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use guest_runtime::grant::{Failure, GrantStatus};
use guest_runtime::Errno;
use xen_abi::errno::EACCES;
use xen_abi::grant_table::status::PERMISSION_DENIED;

use super::syntax::Expect;

/// The result of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It worked; the detail (a port, a domain id, a state) may be empty.
    Ok(String),
    /// The hypercall failed with this errno (positive).
    Errno(i64),
    /// The grant operation's element failed with this `GNTST_*` status.
    Status(i16),
    /// The runtime refused before or after the hypervisor (a local page
    /// that is not ours, an answer outside the grant window).
    Refused(&'static str),
}

impl Outcome {
    /// Success without detail.
    pub fn ok() -> Outcome {
        Outcome::Ok(String::new())
    }

    /// Success with `detail`.
    pub fn ok_with(detail: impl fmt::Display) -> Outcome {
        Outcome::Ok(detail.to_string())
    }

    /// A wrapper's result without detail.
    pub fn of_unit(result: Result<(), Errno>) -> Outcome {
        match result {
            Ok(()) => Outcome::ok(),
            Err(errno) => Outcome::from(errno),
        }
    }

    /// Whether it worked.
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    /// Whether it is what `expect` asks for.
    pub fn matches(&self, expect: Expect) -> bool {
        match (expect, self) {
            (Expect::Ok, outcome) => outcome.is_ok(),
            (Expect::Fail, outcome) => !outcome.is_ok(),
            (Expect::Deny, Outcome::Errno(code)) => *code == EACCES,
            (Expect::Deny, Outcome::Status(code)) => *code == PERMISSION_DENIED,
            (Expect::Errno(wanted), Outcome::Errno(code)) => wanted == *code,
            (Expect::Grant(wanted), Outcome::Status(code)) => wanted == *code,
            _ => false,
        }
    }
}

impl From<Errno> for Outcome {
    fn from(errno: Errno) -> Outcome {
        Outcome::Errno(errno.code())
    }
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Outcome {
        match failure {
            Failure::Call(errno) => Outcome::from(errno),
            Failure::Status(status) => Outcome::Status(status.0),
            Failure::NotOurPage => Outcome::Refused("not a page of our RAM"),
            Failure::BadAnswer => Outcome::Refused("the hypervisor's answer is outside the grant window"),
        }
    }
}

impl fmt::Display for Outcome {
    /// `ok`, `ok port 3`, `EACCES`, `GNTST_permission_denied`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(detail) if detail.is_empty() => f.write_str("ok"),
            Outcome::Ok(detail) => write!(f, "ok {detail}"),
            Outcome::Errno(code) => write!(f, "{}", Errno::new(*code)),
            Outcome::Status(code) => write!(f, "{}", GrantStatus(*code)),
            Outcome::Refused(why) => f.write_str(why),
        }
    }
}

/// A step's verdict: the result as logged and whether it passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `ok port 3`, `EACCES`, `0 of 16 mapped (16 GNTST_permission_denied)`.
    pub text: String,
    /// Whether the result is the expected one.
    pub passed: bool,
}

impl Verdict {
    /// One operation's verdict.
    pub fn single(outcome: &Outcome, expect: Expect) -> Verdict {
        Verdict { text: outcome.to_string(), passed: outcome.matches(expect) }
    }

    /// A `guess` over refs `first..`: how many mapped, the outcomes
    /// grouped (in the order first seen), and, if one is not the expected
    /// one, the first such.
    pub fn guess(first: u32, outcomes: &[Outcome], expect: Expect) -> Verdict {
        let mut groups: Vec<(String, usize)> = Vec::new();
        for outcome in outcomes {
            // The address of each mapping would make every success a group.
            let key = if outcome.is_ok() { "ok".to_string() } else { outcome.to_string() };
            match groups.iter_mut().find(|(text, _)| *text == key) {
                Some((_, count)) => *count += 1,
                None => groups.push((key, 1)),
            }
        }
        let mapped = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        let mut text = String::new();
        let _ = fmt::write(&mut text, format_args!("{mapped} of {} mapped (", outcomes.len()));
        for (position, (what, count)) in groups.iter().enumerate() {
            let separator = if position == 0 { "" } else { ", " };
            let _ = fmt::write(&mut text, format_args!("{separator}{count} {what}"));
        }
        text.push(')');
        let odd = outcomes.iter().enumerate().find(|(_, outcome)| !outcome.matches(expect));
        if let Some((offset, outcome)) = odd {
            let reference = u64::from(first) + offset as u64;
            let _ = fmt::write(&mut text, format_args!("; ref {reference}: {outcome}"));
        }
        Verdict { text, passed: odd.is_none() }
    }
}

/// The running tally of a script.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Steps run.
    pub steps: usize,
    /// Steps that passed.
    pub passed: usize,
}

impl Tally {
    /// Counts a verdict.
    pub fn record(&mut self, verdict: &Verdict) {
        self.steps += 1;
        self.passed += usize::from(verdict.passed);
    }

    /// Steps that failed.
    pub fn failed(&self) -> usize {
        self.steps - self.passed
    }

    /// Whether every step passed.
    pub fn all_passed(&self) -> bool {
        self.passed == self.steps
    }
}

impl fmt::Display for Tally {
    /// `14 steps, 14 passed, 0 failed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} steps, {} passed, {} failed", self.steps, self.passed, self.failed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use xen_abi::errno::{EINVAL, ENOSYS, EPERM, ESRCH};
    use xen_abi::grant_table::status::{BAD_DOMAIN, BAD_GNTREF, GENERAL_ERROR};

    const DENIED: Outcome = Outcome::Errno(EACCES);
    const GRANT_DENIED: Outcome = Outcome::Status(PERMISSION_DENIED);

    #[test]
    fn ok_matches_only_success() {
        assert!(Outcome::ok().matches(Expect::Ok));
        assert!(Outcome::ok_with("port 3").matches(Expect::Ok));
        for failure in [DENIED, GRANT_DENIED, Outcome::Errno(EINVAL), Outcome::Status(BAD_GNTREF), Outcome::Refused("x")] {
            assert!(!failure.matches(Expect::Ok), "{failure}");
        }
    }

    #[test]
    fn deny_is_eacces_or_permission_denied() {
        assert!(DENIED.matches(Expect::Deny));
        assert!(GRANT_DENIED.matches(Expect::Deny));
        for other in [Outcome::ok(), Outcome::Errno(EPERM), Outcome::Errno(EINVAL), Outcome::Status(BAD_DOMAIN), Outcome::Refused("x")] {
            assert!(!other.matches(Expect::Deny), "{other}");
        }
    }

    #[test]
    fn fail_is_any_error() {
        for failure in [DENIED, GRANT_DENIED, Outcome::Errno(ENOSYS), Outcome::Status(GENERAL_ERROR), Outcome::Refused("x")] {
            assert!(failure.matches(Expect::Fail), "{failure}");
        }
        assert!(!Outcome::ok().matches(Expect::Fail));
    }

    #[test]
    fn errno_and_status_are_exact() {
        assert!(Outcome::Errno(EINVAL).matches(Expect::Errno(EINVAL)));
        assert!(!Outcome::Errno(ESRCH).matches(Expect::Errno(EINVAL)));
        assert!(!Outcome::Status(BAD_GNTREF).matches(Expect::Errno(EINVAL)));
        assert!(!Outcome::ok().matches(Expect::Errno(EINVAL)));
        assert!(DENIED.matches(Expect::Errno(EACCES)));
        assert!(!GRANT_DENIED.matches(Expect::Errno(EACCES)), "EACCES names the errno only");
        assert!(Outcome::Status(BAD_GNTREF).matches(Expect::Grant(BAD_GNTREF)));
        assert!(!Outcome::Status(BAD_DOMAIN).matches(Expect::Grant(BAD_GNTREF)));
        assert!(!Outcome::Errno(EINVAL).matches(Expect::Grant(BAD_GNTREF)));
        assert!(GRANT_DENIED.matches(Expect::Grant(PERMISSION_DENIED)));
        assert!(!DENIED.matches(Expect::Grant(PERMISSION_DENIED)));
    }

    #[test]
    fn conversions_and_display() {
        assert_eq!(Outcome::from(Errno::new(-EACCES)), DENIED);
        assert_eq!(Outcome::from(Failure::Call(Errno::new(EINVAL))), Outcome::Errno(EINVAL));
        assert_eq!(Outcome::from(Failure::Status(GrantStatus(BAD_GNTREF))), Outcome::Status(BAD_GNTREF));
        assert!(matches!(Outcome::from(Failure::NotOurPage), Outcome::Refused(_)));
        assert!(matches!(Outcome::from(Failure::BadAnswer), Outcome::Refused(_)));
        assert_eq!(Outcome::of_unit(Ok(())), Outcome::ok());
        assert_eq!(Outcome::of_unit(Err(Errno::new(EPERM))), Outcome::Errno(EPERM));
        assert_eq!(Outcome::ok().to_string(), "ok");
        assert_eq!(Outcome::ok_with(format_args!("port {}", 3)).to_string(), "ok port 3");
        assert_eq!(DENIED.to_string(), "EACCES");
        assert_eq!(GRANT_DENIED.to_string(), "GNTST_permission_denied");
        assert_eq!(Outcome::Refused("not a page of our RAM").to_string(), "not a page of our RAM");
    }

    #[test]
    fn single_verdicts() {
        assert_eq!(Verdict::single(&DENIED, Expect::Deny), Verdict { text: "EACCES".to_string(), passed: true });
        assert_eq!(Verdict::single(&Outcome::ok_with("port 1"), Expect::Deny), Verdict { text: "ok port 1".to_string(), passed: false });
    }

    #[test]
    fn guess_verdicts() {
        let all_denied = vec![GRANT_DENIED; 16];
        assert_eq!(
            Verdict::guess(0, &all_denied, Expect::Deny),
            Verdict { text: "0 of 16 mapped (16 GNTST_permission_denied)".to_string(), passed: true }
        );
        let mixed = vec![Outcome::Status(BAD_GNTREF), Outcome::ok_with("at 0x1000"), Outcome::Status(BAD_GNTREF), Outcome::ok_with("at 0x2000")];
        assert_eq!(
            Verdict::guess(6, &mixed, Expect::Grant(BAD_GNTREF)),
            Verdict { text: "2 of 4 mapped (2 GNTST_bad_gntref, 2 ok); ref 7: ok at 0x1000".to_string(), passed: false }
        );
        assert_eq!(Verdict::guess(6, &mixed, Expect::Fail).text, "2 of 4 mapped (2 GNTST_bad_gntref, 2 ok); ref 7: ok at 0x1000");
        let mapped = vec![Outcome::ok_with("at 0x1000"); 3];
        assert_eq!(Verdict::guess(8, &mapped, Expect::Ok), Verdict { text: "3 of 3 mapped (3 ok)".to_string(), passed: true });
    }

    #[test]
    fn tally() {
        let mut tally = Tally::default();
        assert!(tally.all_passed());
        tally.record(&Verdict { text: String::new(), passed: true });
        tally.record(&Verdict { text: String::new(), passed: true });
        assert!(tally.all_passed());
        assert_eq!(tally.to_string(), "2 steps, 2 passed, 0 failed");
        tally.record(&Verdict { text: String::new(), passed: false });
        assert!(!tally.all_passed());
        assert_eq!(tally.failed(), 1);
        assert_eq!(tally.to_string(), "3 steps, 2 passed, 1 failed");
    }
}
