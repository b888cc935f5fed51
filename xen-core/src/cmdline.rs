//! The hypervisor's boot command line (`loglvl=debug selftest=pagefault`),
//! parsed into [`BootOptions`]. Unknown words are kept so they can be
//! reported once the log is up, never silently dropped.

use log::LevelFilter;

/// A deliberate failure the hypervisor provokes at boot, so tests can see
/// that faults and panics are reported and fail the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// Read an unmapped address ([`SELFTEST_FAULT_ADDRESS`]): a #PF.
    PageFault,
    /// Write to the hypervisor's own code: W^X must turn it into a #PF.
    WriteText,
    /// Jump into the hypervisor's data: NX must turn it into a #PF.
    ExecuteData,
    /// Overflow the boot stack into its guard page: a #PF, reported from the
    /// double-fault IST stack if the fault handler itself cannot run.
    StackOverflow,
    /// `panic!` at boot.
    Panic,
    /// Execute `ud2`: an invalid-opcode exception.
    InvalidOpcode,
}

/// The unmapped address `selftest=pagefault` reads.
pub const SELFTEST_FAULT_ADDRESS: u64 = 0xffff_f000_dead_0000;

/// What the hypervisor does once it reaches the idle loop with nothing to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleAction {
    /// Halt until the next interrupt, forever (the default).
    Halt,
    /// Power off cleanly (tests use this).
    PowerOff,
}

/// The maximum number of unrecognised words remembered for the warning.
pub const MAX_UNKNOWN: usize = 8;

/// Everything the boot command line can set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootOptions<'a> {
    /// `loglvl=`: none, error, warning, info (default), debug, all.
    pub log_level: LevelFilter,
    /// `selftest=`: a deliberate failure.
    pub selftest: Option<SelfTest>,
    /// `on_idle=`: halt (default) or poweroff.
    pub on_idle: IdleAction,
    /// `timer_test_ms=`: arm a one-shot timer this far ahead at boot and
    /// report when it fires (default 10).
    pub timer_test_ms: u64,
    /// `testing=1`: allow the test-only hypercalls (`TEST_OP`).
    pub testing: bool,
    /// `flask=permissive`: log policy denials but allow (default enforcing).
    pub permissive: bool,
    /// `flask=disabled`: no policy checks at all (Xen's dummy XSM), for
    /// measuring the hook's cost only; logged loudly at boot.
    pub policy_disabled: bool,
    /// Words that were not understood, or had a bad value.
    pub unknown: heapless::Vec<&'a str, MAX_UNKNOWN>,
}

impl Default for BootOptions<'_> {
    fn default() -> Self {
        BootOptions {
            log_level: LevelFilter::Info,
            selftest: None,
            on_idle: IdleAction::Halt,
            timer_test_ms: 10,
            testing: false,
            permissive: false,
            policy_disabled: false,
            unknown: heapless::Vec::new(),
        }
    }
}

/// Parses a log level in Xen's words (`warning`, `all`) or the `log`
/// crate's (`warn`, `trace`).
pub fn parse_log_level(value: &str) -> Option<LevelFilter> {
    Some(match value {
        "none" | "off" => LevelFilter::Off,
        "error" | "err" => LevelFilter::Error,
        "warning" | "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "all" | "trace" => LevelFilter::Trace,
        _ => return None,
    })
}

fn parse_selftest(value: &str) -> Option<SelfTest> {
    Some(match value {
        "pagefault" => SelfTest::PageFault,
        "write-text" => SelfTest::WriteText,
        "exec-data" => SelfTest::ExecuteData,
        "stack-overflow" => SelfTest::StackOverflow,
        "panic" => SelfTest::Panic,
        "ud2" => SelfTest::InvalidOpcode,
        _ => return None,
    })
}

/// Parses the command line. The first word is skipped when it looks like the
/// image's path (multiboot loaders put it there).
pub fn parse(line: &str) -> BootOptions<'_> {
    let mut options = BootOptions::default();
    for (index, word) in line.split_ascii_whitespace().enumerate() {
        if index == 0 && !word.contains('=') && word.contains('/') {
            continue;
        }
        let (key, value) = word.split_once('=').unwrap_or((word, ""));
        let understood = match key {
            "loglvl" => parse_log_level(value).map(|level| options.log_level = level),
            "selftest" => parse_selftest(value).map(|test| options.selftest = Some(test)),
            "on_idle" => match value {
                "halt" => Some(IdleAction::Halt),
                "poweroff" => Some(IdleAction::PowerOff),
                _ => None,
            }
            .map(|action| options.on_idle = action),
            "flask" => match value {
                "enforcing" => Some((false, false)),
                "permissive" => Some((true, false)),
                "disabled" => Some((false, true)),
                _ => None,
            }
            .map(|(permissive, disabled)| {
                options.permissive = permissive;
                options.policy_disabled = disabled;
            }),
            "testing" => match value {
                "1" => Some(true),
                "0" => Some(false),
                _ => None,
            }
            .map(|testing| options.testing = testing),
            "timer_test_ms" => value
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= 60_000)
                .map(|ms| options.timer_test_ms = ms),
            _ => None,
        };
        if understood.is_none() {
            // Beyond MAX_UNKNOWN the rest are dropped; the count says so.
            let _ = options.unknown.push(word);
        }
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_empty() {
        assert_eq!(parse(""), BootOptions::default());
        assert_eq!(parse("   "), BootOptions::default());
    }

    #[test]
    fn every_option() {
        let options = parse("loglvl=debug selftest=pagefault on_idle=poweroff timer_test_ms=25 testing=1 flask=permissive");
        assert!(options.testing);
        assert!(options.permissive);
        assert!(!parse("flask=enforcing").permissive);
        assert!(parse("flask=disabled").policy_disabled);
        assert_eq!(parse("flask=off").unknown.len(), 1);
        assert_eq!(options.log_level, LevelFilter::Debug);
        assert_eq!(options.selftest, Some(SelfTest::PageFault));
        assert_eq!(options.on_idle, IdleAction::PowerOff);
        assert_eq!(options.timer_test_ms, 25);
        assert!(options.unknown.is_empty());
    }

    #[test]
    fn xen_level_words() {
        assert_eq!(parse_log_level("warning"), Some(LevelFilter::Warn));
        assert_eq!(parse_log_level("all"), Some(LevelFilter::Trace));
        assert_eq!(parse_log_level("none"), Some(LevelFilter::Off));
        assert_eq!(parse_log_level("loud"), None);
    }

    #[test]
    fn image_path_is_skipped_only_first() {
        let options = parse("/boot/xen-core loglvl=error");
        assert_eq!(options.log_level, LevelFilter::Error);
        assert!(options.unknown.is_empty());
        let options = parse("loglvl=error /boot/xen-core");
        assert_eq!(options.unknown.as_slice(), &["/boot/xen-core"]);
    }

    #[test]
    fn bad_values_are_reported_not_applied() {
        let options = parse("loglvl=loud selftest=boom on_idle=dance timer_test_ms=x timer_test_ms=99999999 frob");
        assert_eq!(options.log_level, LevelFilter::Info);
        assert_eq!(options.selftest, None);
        assert_eq!(options.on_idle, IdleAction::Halt);
        assert_eq!(options.timer_test_ms, 10);
        assert_eq!(options.unknown.len(), 6);
    }

    #[test]
    fn too_many_unknown_words_do_not_overflow() {
        let options = parse("a b c d e f g h i j k l");
        assert_eq!(options.unknown.len(), MAX_UNKNOWN);
    }
}
