//! Tests of the security server: decisions by label, the AVC line, modes,
//! counters, the rate limiter and policy reload.

use alloc::borrow::Cow;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use xen_abi::policy::{domain, event, grant, security, Class};
use xen_abi::DomId;

use super::super::server::{DENIAL_COUNTER_SLOTS, MAX_LABELS};
use super::super::test_support::{build, sample};
use super::super::*;

const SECOND_NS: u64 = 1_000_000_000;

struct Machine {
    server: SecurityServer,
    control: SecurityId,
    driver: SecurityId,
    banking: SecurityId,
    untrusted: SecurityId,
    lines: Vec<String>,
}

impl Machine {
    fn new(mode: Mode) -> Self {
        let mut server = SecurityServer::new(Cow::Owned(sample()), mode).unwrap();
        let control = server.register_label("control_t").unwrap();
        let driver = server.register_label("system_u:system_r:driver_t").unwrap();
        let banking = server
            .register_label("system_u:system_r:banking_t")
            .unwrap();
        let untrusted = server.register_label("untrusted_t").unwrap();
        Machine {
            server,
            control,
            driver,
            banking,
            untrusted,
            lines: Vec::new(),
        }
    }

    fn check(
        &mut self,
        subject: SecurityId,
        target: SecurityId,
        class: Class,
        permissions: u32,
        now_ns: u64,
    ) -> Result<(), AccessDenied> {
        let request = AccessRequest {
            subject,
            target,
            class,
            permissions,
            domid: DomId(3),
        };
        let lines = &mut self.lines;
        self.server
            .check(&request, now_ns, &mut |line| lines.push(line.to_string()))
    }
}

#[test]
fn allowed_operations_pass_silently() {
    let mut machine = Machine::new(Mode::Enforcing);
    let (driver, banking) = (machine.driver, machine.banking);
    assert_eq!(
        machine.check(
            driver,
            banking,
            Class::Grant,
            grant::MAP_READ | grant::MAP_WRITE,
            0
        ),
        Ok(())
    );
    assert_eq!(
        machine.check(banking, driver, Class::Event, event::SEND, 0),
        Ok(())
    );
    assert!(machine.lines.is_empty());
    assert_eq!(machine.server.total_denials(), 0);
}

#[test]
fn a_denial_is_logged_in_xen_avc_format() {
    let mut machine = Machine::new(Mode::Enforcing);
    let (untrusted, banking) = (machine.untrusted, machine.banking);
    let result = machine.check(untrusted, banking, Class::Grant, grant::MAP_READ, 0);
    assert_eq!(result, Err(AccessDenied));
    assert_eq!(AccessDenied.errno(), xen_abi::errno::EACCES);
    assert_eq!(
        machine.lines,
        ["avc:  denied  { map_read } for domid=3 scontext=system_u:system_r:untrusted_t tcontext=system_u:system_r:banking_t tclass=grant"]
    );
    assert_eq!(machine.server.denials(untrusted, banking), 1);
    assert_eq!(machine.server.denials(banking, untrusted), 0);
}

#[test]
fn only_the_missing_permissions_are_listed() {
    let mut machine = Machine::new(Mode::Enforcing);
    let (driver, banking) = (machine.driver, machine.banking);
    let wanted = grant::MAP_READ | grant::SETUP | grant::QUERY;
    assert_eq!(
        machine.check(driver, banking, Class::Grant, wanted, 0),
        Err(AccessDenied)
    );
    assert!(
        machine.lines[0].starts_with("avc:  denied  { setup query } for domid=3 "),
        "{}",
        machine.lines[0]
    );
    assert_eq!(
        machine.check(driver, banking, Class::Grant, 1 << 20, 0),
        Err(AccessDenied)
    );
    assert!(
        machine.lines[1].starts_with("avc:  denied  { 0x100000 } "),
        "{}",
        machine.lines[1]
    );
}

#[test]
fn full_contexts_are_printed_as_given() {
    let mut machine = Machine::new(Mode::Enforcing);
    let operator = machine
        .server
        .register_label("operator_u:admin_r:control_t")
        .unwrap();
    assert_ne!(operator, machine.control);
    let banking = machine.banking;
    assert_eq!(
        machine.check(operator, banking, Class::Domain, domain::DESTROY, 0),
        Err(AccessDenied)
    );
    assert!(machine.lines[0].contains(" scontext=operator_u:admin_r:control_t tcontext="));
    assert!(machine.lines[0].ends_with(" tclass=domain"));
}

#[test]
fn permissive_mode_logs_and_allows() {
    let mut machine = Machine::new(Mode::Permissive);
    let (untrusted, banking) = (machine.untrusted, machine.banking);
    assert_eq!(
        machine.check(untrusted, banking, Class::Event, event::BIND, 0),
        Ok(())
    );
    assert_eq!(machine.lines.len(), 1);
    assert!(machine.lines[0].starts_with("avc:  denied  { bind } for domid=3"));
    assert_eq!(machine.server.denials(untrusted, banking), 1);
    machine.server.set_mode(Mode::Enforcing);
    assert_eq!(machine.server.mode(), Mode::Enforcing);
    assert_eq!(
        machine.check(untrusted, banking, Class::Event, event::BIND, 0),
        Err(AccessDenied)
    );
}

#[test]
fn labels_are_registered_once_and_checked() {
    let mut machine = Machine::new(Mode::Enforcing);
    assert_eq!(
        machine.server.register_label("banking_t"),
        Ok(machine.banking)
    );
    assert_eq!(
        machine
            .server
            .register_label("system_u:system_r:untrusted_t"),
        Ok(machine.untrusted)
    );
    assert_eq!(
        machine.server.register_label("nobody_t"),
        Err(LabelError::UnknownType)
    );
    assert_eq!(
        machine.server.register_label("a:b"),
        Err(LabelError::Malformed)
    );
    assert_eq!(
        machine.server.context(machine.control),
        Some("system_u:system_r:control_t")
    );
    assert_eq!(
        machine.server.type_of(machine.driver),
        machine.server.policy().lookup_type("driver_t")
    );
    let security = machine.server.security_server_id();
    assert_eq!(
        machine.server.context(security),
        Some("system_u:system_r:security_t")
    );
    let mut server = SecurityServer::new(Cow::Owned(sample()), Mode::Enforcing).unwrap();
    let mut registered = 1;
    for user in 0..MAX_LABELS {
        let label = alloc::format!("user{user}:system_r:banking_t");
        match server.register_label(&label) {
            Ok(_) => registered += 1,
            Err(error) => {
                assert_eq!(error, LabelError::TableFull);
                break;
            }
        }
    }
    assert_eq!(registered, MAX_LABELS);
}

#[test]
fn a_refused_create_cannot_fill_the_label_table() {
    // An untrusted domain names a fresh `userN:role:type` label in a
    // create the policy refuses it, again and again: none is registered,
    // so the control domain can still create a domain with a new label.
    let mut machine = Machine::new(Mode::Enforcing);
    for user in 0..MAX_LABELS {
        let label = alloc::format!("user{user}:system_r:untrusted_t");
        assert_eq!(
            machine.server.register_label_for(
                Some(machine.untrusted),
                &label,
                Class::Domain,
                domain::CREATE
            ),
            Err(LabelError::NotPermitted),
            "{label}"
        );
    }
    let fresh = machine
        .server
        .register_label_for(
            Some(machine.control),
            "operator_u:system_r:untrusted_t",
            Class::Domain,
            domain::CREATE,
        )
        .unwrap();
    assert_eq!(
        machine.server.context(fresh),
        Some("operator_u:system_r:untrusted_t")
    );
    // The next free id: none of the refused labels took one.
    assert_eq!(fresh.index(), 5);
    // A label registered already is returned whoever asks (the check decides).
    assert_eq!(
        machine.server.register_label_for(
            Some(machine.untrusted),
            "untrusted_t",
            Class::Domain,
            domain::CREATE
        ),
        Ok(machine.untrusted)
    );
    assert_eq!(
        machine
            .server
            .register_label_for(None, "nobody_t", Class::Domain, domain::CREATE),
        Err(LabelError::UnknownType)
    );
    // Permissive: refusals are only logged, so the label is registered.
    let mut permissive = Machine::new(Mode::Permissive);
    assert!(permissive
        .server
        .register_label_for(
            Some(permissive.untrusted),
            "user0:system_r:banking_t",
            Class::Domain,
            domain::CREATE
        )
        .is_ok());
}

#[test]
fn unknown_security_ids_are_denied() {
    let mut machine = Machine::new(Mode::Enforcing);
    let mut other = SecurityServer::new(Cow::Owned(sample()), Mode::Enforcing).unwrap();
    for label in [
        "a_u:r:banking_t",
        "b_u:r:banking_t",
        "c_u:r:banking_t",
        "d_u:r:banking_t",
        "e_u:r:banking_t",
        "f_u:r:banking_t",
    ] {
        other.register_label(label).unwrap();
    }
    let stranger = other.register_label("g_u:r:banking_t").unwrap();
    let driver = machine.driver;
    assert_eq!(
        machine.check(driver, stranger, Class::Event, event::SEND, 0),
        Err(AccessDenied)
    );
    assert!(machine.lines[0].contains("tcontext=system_u:object_r:unlabeled_t "));
}

#[test]
fn the_rate_limiter_holds_back_a_flood_and_reports_it() {
    let mut machine = Machine::new(Mode::Enforcing);
    machine.server.set_rate_limit(RateLimit {
        lines_per_window: 3,
        window_ns: SECOND_NS,
    });
    let (untrusted, banking) = (machine.untrusted, machine.banking);
    for step in 0..10u64 {
        let _ = machine.check(
            untrusted,
            banking,
            Class::Grant,
            grant::COPY,
            5 * SECOND_NS + step,
        );
    }
    assert_eq!(machine.lines.len(), 3);
    assert_eq!(machine.server.suppressed_lines(), 7);
    assert_eq!(machine.server.denials(untrusted, banking), 10);
    // Still inside the window: nothing to report yet.
    machine
        .server
        .report_suppressed(5 * SECOND_NS + 100, &mut |line| {
            machine.lines.push(line.to_string())
        });
    assert_eq!(machine.lines.len(), 3);
    let _ = machine.check(untrusted, banking, Class::Grant, grant::COPY, 6 * SECOND_NS);
    assert_eq!(machine.lines[3], "avc:  7 denials suppressed");
    assert!(machine.lines[4].starts_with("avc:  denied  { copy }"));
    assert_eq!(machine.lines.len(), 5);
    // A quiet window reports nothing; report_suppressed flushes a pending count.
    for step in 0..5u64 {
        let _ = machine.check(
            untrusted,
            banking,
            Class::Grant,
            grant::COPY,
            8 * SECOND_NS + step,
        );
    }
    let lines = &mut machine.lines;
    machine
        .server
        .report_suppressed(10 * SECOND_NS, &mut |line| lines.push(line.to_string()));
    assert_eq!(machine.lines.last().unwrap(), "avc:  2 denials suppressed");
    assert_eq!(machine.server.suppressed_lines(), 9);
    // Time going backwards opens a new window rather than silencing the log.
    let _ = machine.check(untrusted, banking, Class::Grant, grant::COPY, SECOND_NS);
    assert!(machine.lines.last().unwrap().starts_with("avc:  denied"));
    assert_eq!(machine.server.rate_limit().lines_per_window, 3);
}

#[test]
fn counters_are_per_pair_and_bounded() {
    let mut machine = Machine::new(Mode::Enforcing);
    machine.server.set_rate_limit(RateLimit {
        lines_per_window: 0,
        window_ns: SECOND_NS,
    });
    let (untrusted, banking, driver) = (machine.untrusted, machine.banking, machine.driver);
    let _ = machine.check(untrusted, banking, Class::Domain, domain::PAUSE, 0);
    let _ = machine.check(untrusted, banking, Class::Domain, domain::PAUSE, 0);
    let _ = machine.check(untrusted, driver, Class::Domain, domain::PAUSE, 0);
    assert!(machine.lines.is_empty());
    let counters: Vec<_> = machine.server.denial_counters().collect();
    assert_eq!(counters, [(untrusted, banking, 2), (untrusted, driver, 1)]);
    let mut labels = Vec::new();
    for user in 0..DENIAL_COUNTER_SLOTS / 2 + 1 {
        let label = alloc::format!("user{user}:system_r:untrusted_t");
        labels.push(machine.server.register_label(&label).unwrap());
    }
    for subject in &labels {
        let _ = machine.check(*subject, banking, Class::Domain, domain::PAUSE, 0);
        let _ = machine.check(*subject, driver, Class::Domain, domain::PAUSE, 0);
    }
    assert_eq!(
        machine.server.denial_counters().count(),
        DENIAL_COUNTER_SLOTS
    );
    assert_eq!(machine.server.total_denials(), 3 + 2 * labels.len() as u64);
    assert_eq!(
        machine.server.untracked_denials(),
        2 * labels.len() as u64 + 2 - DENIAL_COUNTER_SLOTS as u64
    );
}

#[test]
fn reloading_swaps_the_whole_policy_or_nothing() {
    let mut machine = Machine::new(Mode::Enforcing);
    let (untrusted, banking, control) = (machine.untrusted, machine.banking, machine.control);
    let before = machine.server.policy().bytes().to_vec();
    let mut damaged = sample();
    let last = damaged.len() - 1;
    damaged[last] = 0x80;
    assert!(machine.server.load_policy(Cow::Owned(damaged)).is_err());
    assert_eq!(machine.server.policy().bytes(), &before[..]);
    assert_eq!(
        machine.check(untrusted, banking, Class::Event, event::SEND, 0),
        Err(AccessDenied)
    );
    // A new policy with one more pair, and types in a new order.
    let extended = build(
        &[
            "aardvark_t",
            "banking_t",
            "control_t",
            "driver_t",
            "untrusted_t",
        ],
        &[(4, 1, Class::Event, event::SEND)],
    );
    assert_eq!(machine.server.load_policy(Cow::Owned(extended)), Ok(0));
    assert_eq!(
        machine.check(untrusted, banking, Class::Event, event::SEND, 0),
        Ok(())
    );
    assert_eq!(
        machine.server.type_of(banking),
        machine.server.policy().lookup_type("banking_t")
    );
    // security_t is gone: its checks fail closed, but it is not a domain's label.
    let security = machine.server.security_server_id();
    assert_eq!(machine.server.type_of(security), None);
    assert_eq!(
        machine.check(control, security, Class::Security, security::LOAD_POLICY, 0),
        Err(AccessDenied)
    );
    // A policy that drops a registered domain's type: reported, and denied.
    let shrunk = build(&["banking_t", "control_t", "driver_t", "security_t"], &[]);
    assert_eq!(machine.server.load_policy(Cow::Owned(shrunk)), Ok(1));
    assert_eq!(machine.server.type_of(untrusted), None);
    assert_eq!(
        machine.server.compute_av(untrusted, banking, Class::Event),
        0
    );
    assert_eq!(
        machine.check(untrusted, banking, Class::Event, event::SEND, 0),
        Err(AccessDenied)
    );
    assert!(machine
        .lines
        .last()
        .unwrap()
        .contains("scontext=system_u:system_r:untrusted_t "));
    assert!(machine.server.type_of(security).is_some());
}

#[test]
fn a_boot_policy_can_be_borrowed() {
    static BOOT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let bytes: &'static [u8] = BOOT.get_or_init(sample);
    let server = SecurityServer::new(Cow::Borrowed(bytes), Mode::Enforcing).unwrap();
    assert!(core::ptr::eq(server.policy().bytes(), bytes));
    assert!(SecurityServer::new(Cow::Borrowed(&[0u8; 8]), Mode::Enforcing).is_err());
}
