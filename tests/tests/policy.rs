//! The security policy: every cross-domain operation asks it first; denials
//! are logged in Xen's AVC format; enforcing by default, permissive on
//! request; no policy, no domains.

use xen_tests::machine::{DomainConfig, Machine, TEST_POLICY};
use xen_tests::{Outcome, DEFAULT_DEADLINE};

fn lifecycle() -> DomainConfig {
    DomainConfig::probe("control", "action=control script=lifecycle").control()
}

/// The test policy without the control domain's right to pause.
fn policy_without_pause() -> String {
    TEST_POLICY.replace("domain { create destroy pause unpause", "domain { create destroy unpause")
}

#[test]
fn without_a_policy_no_domain_is_built() {
    let boot = Machine::new("on_idle=poweroff").policy(None).domain(DomainConfig::hello("hello")).boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff).expect_log("xsm: the bundle carries no policy; no domain built").expect_no_log("(d1)");
}

#[test]
fn the_policy_is_loaded_and_enforcing_by_default() {
    let boot = Machine::new("on_idle=poweroff").domain(DomainConfig::hello("hello")).boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff).expect_log("xsm: policy loaded").expect_log("; enforcing");
}

#[test]
fn a_denied_domctl_is_refused_before_anything_changes_and_logged_as_avc() {
    let boot = Machine::new("on_idle=poweroff").policy(Some(&policy_without_pause())).domain(lifecycle()).boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("avc:  denied  { pause } for domid=1 scontext=system_u:system_r:control_t tcontext=system_u:system_r:domU_t tclass=domain")
        .expect_log("result: EACCES")
        .expect_no_log("d1: paused d2")
        .expect_no_log("LEAK");
}

#[test]
fn permissive_mode_logs_the_denial_but_allows() {
    let boot = Machine::new("on_idle=poweroff flask=permissive")
        .policy(Some(&policy_without_pause()))
        .domain(lifecycle())
        .boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("PERMISSIVE")
        .expect_log("avc:  denied  { pause } for domid=1")
        .expect_log("d1: paused d2")
        .expect_log("control: destroyed d2");
}

#[test]
fn a_policy_that_breaks_a_neverallow_does_not_compile() {
    let bad = format!("{TEST_POLICY}\nallow untrusted_t banking_t : event send;\n");
    let directory = xen_tests::workspace_root().join("target").join("test-machines").join(format!("neverallow-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("create the directory");
    std::fs::write(directory.join("policy.te"), bad).expect("write the policy");
    let error = toolstack::policy::compile_file(&directory.join("policy.te")).expect_err("the neverallow must refuse it");
    let message = error.to_string();
    assert!(message.contains("neverallow"), "{message}");
}

/// The default machine (`make run`): the untrusted domain's attack script
/// is refused step by step, each policy denial logged as an AVC line, while
/// banking writes and checks its disk through the driver domain. Its control domain's
/// agent is told to power off once the others are gone (`until=alone`), so
/// the run ends.
fn default_machine_bundle(tag: &str) -> std::path::PathBuf {
    let directory = xen_tests::workspace_root().join("toolstack").join("machines").join("default");
    let mut launch = toolstack::launch::load(&directory).expect("the default launch description");
    let control = launch.domains.iter_mut().find(|domain| domain.control_domain).expect("a control domain");
    control.command_line = "until=alone".into();
    // The driver domain stops once banking's disk has come and gone.
    let driver = launch.domains.iter_mut().find(|domain| domain.driver_domain).expect("a driver domain");
    driver.command_line = "exit-after=1".into();
    let bytes = toolstack::bundle::build(&launch).expect("the default bundle");
    let bundle = xen_tests::workspace_root().join("target").join("test-machines").join(format!("default-{tag}-{}.bin", std::process::id()));
    std::fs::create_dir_all(bundle.parent().expect("a parent")).expect("create the directory");
    std::fs::write(&bundle, bytes).expect("write the bundle");
    bundle
}

/// Boots the default machine's bundle with its disk (a fresh image), as `xl boot` would.
fn boot_default(bundle: &std::path::Path, command_line: &str, tag: &str) -> xen_tests::Boot {
    let image = bundle.with_file_name(format!("default-{tag}-{}.img", std::process::id()));
    std::fs::write(&image, vec![0u8; 8 << 20]).expect("disk image");
    let drive = format!("file={},if=none,id=disk0,format=raw", image.display());
    let extra = ["-drive", &drive, "-device", "virtio-blk-pci,drive=disk0,addr=03.0,disable-legacy=on"];
    let boot = xen_tests::boot_image_with(xen_tests::build_images(), command_line, Some(bundle), std::time::Duration::from_secs(240), &extra);
    let _ = std::fs::remove_file(image);
    boot
}

#[test]
fn in_permissive_mode_the_same_attacks_are_logged_and_let_through() {
    let bundle = default_machine_bundle("permissive");
    let boot = boot_default(&bundle, "on_idle=poweroff flask=permissive", "permissive");
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("PERMISSIVE")
        .expect_log("avc:  denied  { pause } for domid=4 scontext=system_u:system_r:untrusted_t tcontext=system_u:system_r:banking_t tclass=domain")
        .expect_log("d4: paused d3")
        .expect_log("d4: destroying d3")
        .expect_log("(expected deny): FAIL");
}

#[test]
fn the_default_machine_refuses_every_attack_and_banking_carries_on() {
    let bundle = default_machine_bundle("enforcing");
    let boot = boot_default(&bundle, "on_idle=poweroff", "enforcing");
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("store: domain 4 (untrusted) connected")
        .expect_log("store: every other domain is gone; powering off")
        .expect_log("script: 21 steps, 21 passed, 0 failed")
        .expect_log("denied: system_u:system_r:untrusted_t -> system_u:system_r:banking_t")
        .expect_log("avc:  denied  { map_read map_write } for domid=4 scontext=system_u:system_r:untrusted_t tcontext=system_u:system_r:banking_t tclass=grant")
        .expect_log("pci 00:03.0: assigned to d2 (driver)")
        .expect_log("blk-pattern: wrote 4096 sectors")
        .expect_log("flushed (0 errors), read back 4096 sectors (0 errors): 0 mismatches")
        .expect_log("blk-pattern: holding the device for 5000 ms")
        .expect_log("blk-pattern: ok")
        .expect_no_log(": FAIL")
        .expect_no_log("shutdown: crash")
        .expect_no_log("LEAK");
    assert!(boot.log.matches("avc:  denied").count() >= 25, "{}", boot.tail(40));
    let last = boot.log.lines().rfind(|line| line.contains("health: no domains left")).unwrap_or_default();
    assert!(last.ends_with(": ok"), "{last}");
}

/// The control domain replaces the policy at run time with one that allows
/// one more pair (untrusted may describe the control domain); before the
/// load that is denied, after it, allowed. A domain without
/// `security { load_policy }` cannot do the same.
#[test]
fn the_control_domain_loads_a_policy_that_allows_one_more_pair() {
    let base = "type control_t; type untrusted_t; type security_t;\n\
                allow control_t untrusted_t : domain { getdomaininfo pause unpause destroy };\n\
                allow control_t self : domain getdomaininfo;\n\
                allow control_t security_t : security { load_policy setenforce };\n\
                neverallow untrusted_t security_t : security *;\n";
    let extended = format!("{base}allow untrusted_t control_t : domain getdomaininfo;\n");
    let compiled = toolstack::policy::compile(&extended).expect("the extended policy compiles");
    let hex: String = compiled.iter().map(|byte| format!("{byte:02x}")).collect();
    assert!(hex.len() < 900, "the policy must fit a command line: {} hex digits", hex.len());
    let boot = Machine::new("on_idle=poweroff")
        .policy(Some(base))
        .domain(DomainConfig::probe("control", &format!("action=script steps=sleep:100=ok;loadpolicy:{hex}=ok;sleep:1000=ok")).control())
        .domain(DomainConfig::probe("guest", &format!("action=script steps=info:1=deny;loadpolicy:{hex}=deny;sleep:400=ok;info:1=ok")))
        .boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("avc:  denied  { getdomaininfo } for domid=2 scontext=system_u:system_r:untrusted_t tcontext=system_u:system_r:control_t tclass=domain")
        .expect_log("avc:  denied  { load_policy } for domid=2")
        .expect_log("xsm: d1 loaded a new policy")
        .expect_log("script: 3 steps, 3 passed, 0 failed")
        .expect_log("script: 4 steps, 4 passed, 0 failed");
}
