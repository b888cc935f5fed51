//! One paravirtualized domain at a time: built from a boot bundle, run in
//! ring 3 in its own address space, served, and torn down with every frame
//! and heap byte back. Hostile domains die alone; the hypervisor stays healthy.

use xen_tests::machine::{DomainConfig, Machine};
use xen_tests::{Boot, Outcome, DEFAULT_DEADLINE};

const HEALTHY: &str = ": ok";

fn run_probe(action: &str) -> Boot {
    Machine::new("testing=1 on_idle=poweroff")
        .domain(DomainConfig::probe("probe", &format!("action={action}")))
        .boot(DEFAULT_DEADLINE)
}

fn expect_healthy(boot: &Boot) {
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("health: no domains left; frames free")
        .expect_log(HEALTHY)
        .expect_no_log("LEAK")
        .expect_no_log("FATAL TRAP")
        .expect_no_log("PANIC");
    // The frame and heap counts are back at their values from before the
    // domain was built.
    let line = boot.log.lines().find(|line| line.contains("health: no domains left")).unwrap_or_default();
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|word| !word.is_empty())
        .filter_map(|word| word.parse().ok())
        .collect();
    let tail = &numbers[numbers.len() - 4..];
    assert_eq!(tail[0], tail[1], "free frames differ from the baseline: {line}");
    assert_eq!(tail[2], tail[3], "heap bytes differ from the baseline: {line}");
}

#[test]
fn a_domain_prints_and_powers_off_and_everything_returns() {
    let boot = Machine::new("on_idle=poweroff").domain(DomainConfig::hello("hello")).boot(DEFAULT_DEADLINE);
    expect_healthy(&boot);
    boot.expect_log("bundle: hello kernel")
        .expect_log("sha256")
        .expect_log("d1 (hello): built:")
        .expect_log("(d1) ")
        .expect_log("hello from hello")
        .expect_log("d1 (hello): shutdown: poweroff")
        .expect_log("d1 (hello): torn down:");
}

fn expect_killed(action: &str, reason: &str) {
    let boot = run_probe(action);
    expect_healthy(&boot);
    boot.expect_log("d1 (probe) crashed: vector").expect_log(reason).expect_no_log("d1 (probe): shutdown: poweroff");
}

#[test]
fn writing_hypervisor_memory_kills_only_the_domain() {
    expect_killed("write-hypervisor", "(#PF page fault)");
}

#[test]
fn reading_outside_its_memory_kills_only_the_domain() {
    expect_killed("read-outside", "(#PF page fault)");
    expect_killed("read-below", "(#PF page fault)");
    expect_killed("read-hypervisor", "(#PF page fault)");
}

#[test]
fn a_domain_cannot_write_its_start_info_or_code_or_run_its_data() {
    expect_killed("write-start-info", "protection violation on write in user mode");
    expect_killed("write-text", "protection violation on write in user mode");
    expect_killed("execute-stack", "protection violation on instruction fetch in user mode");
}

#[test]
fn privileged_instructions_kill_only_the_domain() {
    for action in ["hlt", "cli", "wrmsr", "rdmsr", "mov-cr3", "lgdt", "int80", "port-io"] {
        expect_killed(action, "(#GP general protection)");
    }
}

#[test]
fn breakpoints_and_single_steps_kill_only_the_domain() {
    expect_killed("int3", "(#GP general protection)");
    expect_killed("trap-flag", "(#DB debug)");
    // TF set right before `syscall`: SFMASK clears it, so the hypervisor's
    // entry is not single-stepped; the #DB lands back in the domain.
    expect_killed("trap-flag-hypercall", "(#DB debug)");
}

#[test]
fn dividing_by_zero_kills_only_the_domain() {
    expect_killed("divide-zero", "(#DE divide error)");
}

#[test]
fn a_panicking_domain_shuts_down_as_crashed() {
    let boot = run_probe("panic");
    expect_healthy(&boot);
    boot.expect_log("deliberate").expect_log("d1 (probe): shutdown: crash");
}

fn expect_refused(action: &str, errno: &str) {
    let boot = run_probe(action);
    expect_healthy(&boot);
    boot.expect_log(&format!("result: {errno}")).expect_log("d1 (probe): shutdown: poweroff");
}

#[test]
fn hypercalls_with_hostile_arguments_get_errors() {
    expect_refused("bad-pointer-hypervisor", "EFAULT");
    expect_refused("bad-pointer-noncanonical", "EFAULT");
    expect_refused("bad-pointer-huge", "EINVAL");
    expect_refused("bad-number", "ENOSYS");
    expect_refused("bad-subop", "ENOSYS");
}

#[test]
fn flags_set_before_a_hypercall_do_not_reach_the_hypervisor() {
    let boot = run_probe("flags-then-hypercall");
    expect_healthy(&boot);
    boot.expect_log("d1 (probe): shutdown: poweroff");
}

#[test]
fn vector_registers_survive_the_hypervisor_clobbering_them() {
    let boot = run_probe("sse");
    expect_healthy(&boot);
    boot.expect_log("sse: all 16 registers intact").expect_log("d1 (probe): shutdown: poweroff");
}

#[test]
fn a_crashed_domain_does_not_stop_the_next() {
    let boot = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::probe("attacker", "action=hlt"))
        .domain(DomainConfig::hello("bystander"))
        .boot(DEFAULT_DEADLINE);
    expect_healthy(&boot);
    boot.expect_log("d1 (attacker) crashed").expect_log("hello from bystander").expect_log("d2 (bystander): shutdown: poweroff");
}

#[test]
fn a_domain_that_does_not_fit_is_refused_with_nothing_left_behind() {
    let boot = Machine::new("on_idle=poweroff")
        .domain(DomainConfig::hello("small"))
        .domain(DomainConfig::hello("huge").memory(1024))
        .boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("d2 (huge): not built: does not fit in memory")
        .expect_log("d1 (small): torn down")
        .expect_log(HEALTHY)
        .expect_no_log("hello from small");
}

#[test]
fn a_truncated_bundle_is_refused_whole() {
    let machine = Machine::new("on_idle=poweroff").domain(DomainConfig::hello("hello"));
    let bundle = machine.bundle();
    let bytes = std::fs::read(&bundle).expect("read the bundle");
    std::fs::write(&bundle, &bytes[..bytes.len() - 1000]).expect("write the damaged bundle");
    let boot = machine.boot_bundle(&bundle, DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff).expect_log("bundle: refused").expect_log("no domain built").expect_no_log("(d1)");
}

#[test]
fn a_kernel_whose_hash_does_not_match_is_refused() {
    let machine = Machine::new("on_idle=poweroff").domain(DomainConfig::hello("hello"));
    let bundle = machine.bundle();
    let mut bytes = std::fs::read(&bundle).expect("read the bundle");
    // Flip a byte in the kernel image: the last 4 KiB of the file hold it.
    let at = bytes.len() - 2000;
    bytes[at] ^= 0xff;
    std::fs::write(&bundle, &bytes).expect("write the damaged bundle");
    let boot = machine.boot_bundle(&bundle, DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff).expect_log("kernel SHA-256 mismatch").expect_log("no domain built").expect_no_log("(d1)");
}

#[test]
fn a_kernel_that_is_not_a_static_elf_is_refused() {
    let directory = xen_tests::workspace_root().join("target").join("test-machines");
    std::fs::create_dir_all(&directory).expect("create the directory");
    let junk = directory.join("not-an-elf.bin");
    std::fs::write(&junk, b"\x7fELF but not really an image at all").expect("write junk");
    let mut domain = DomainConfig::hello("junk");
    domain.kernel = junk.display().to_string();
    let boot = Machine::new("on_idle=poweroff").domain(DomainConfig::hello("good")).domain(domain).boot(DEFAULT_DEADLINE);
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("bundle: junk: kernel image refused")
        .expect_log("no domain built")
        .expect_no_log("(d1)");
}
