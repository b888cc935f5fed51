//! The toolstack end to end (issue 10): the real host `xl` drives a running
//! machine over the operator's channel (COM2 on a Unix socket) to the
//! control domain's agent: list, create, pause, unpause, console, destroy,
//! on_crash=restart, a refused duplicate name, the policy's mode, the
//! store's listing, the log; and a guest cannot reach the channel.

use std::path::PathBuf;
use std::time::Duration;

use xen_tests::guest_image;
use xen_tests::machine::{DomainConfig, Machine};
use xen_tests::running::Running;

const STEP: Duration = Duration::from_secs(60);

fn machine() -> Machine {
    Machine::new("on_idle=halt")
        .domain(DomainConfig::agent("").memory(64))
        .domain(DomainConfig::probe("thief", "action=operator-steal").label("untrusted_t"))
        .domain(DomainConfig::probe("meddler", "action=domctl-denied").label("untrusted_t"))
}

/// Writes an xl.cfg for a probe domain next to the machine's files.
fn probe_cfg(running: &Running, name: &str, extra: &str, more: &str) -> PathBuf {
    let path = running.socket.with_file_name(format!("{name}.cfg"));
    let text = format!(
        "name = \"{name}\"\nkernel = \"{}\"\nmemory = 8\nseclabel = \"system_u:system_r:domU_t\"\nextra = \"{extra}\"\n{more}",
        guest_image("probe").display()
    );
    std::fs::write(&path, text).expect("write cfg");
    path
}

fn free_mib(running: &Running) -> u64 {
    let info = running.xl_ok(&["info"]);
    let line = info.lines().find(|line| line.starts_with("free_memory")).unwrap_or_else(|| panic!("no free_memory in:\n{info}"));
    line.split(':').nth(1).and_then(|value| value.trim().split(' ').next()).and_then(|number| number.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

#[test]
fn xl_drives_the_running_machine() {
    let running = Running::start(&machine());
    running.wait_for("operator: channel ready", STEP);
    running.wait_for("operator-steal: 5 of 5 refused", STEP);

    let list = running.xl_ok(&["list"]);
    assert!(list.lines().next().is_some_and(|header| header.split_whitespace().collect::<Vec<_>>() == ["Name", "ID", "Mem", "VCPUs", "State", "Time(s)"]), "{list}");
    assert!(list.lines().any(|line| line.starts_with("control ") && line.split_whitespace().nth(1) == Some("1")), "{list}");
    assert_eq!(running.xl_ok(&["getenforce"]).trim(), "Enforcing");
    running.xl_ok(&["setenforce", "Permissive"]);
    assert_eq!(running.xl_ok(&["getenforce"]).trim(), "Permissive");
    running.xl_ok(&["setenforce", "Enforcing"]);
    // The machine's own policy again, compiled by xl from its source and
    // uploaded over the channel.
    let policy = running.socket.with_file_name("policy.te");
    running.xl_ok(&["loadpolicy", policy.to_str().expect("path")]);
    running.wait_for("loaded a new policy", STEP);
    assert!(running.xl_ok(&["dmesg"]).contains("operator channel: COM2"));
    running.wait_for("1 domain(s) left; frames free", STEP);
    let before = free_mib(&running);

    // create: the kernel travels over the channel to the hypervisor's builder.
    let ticker = probe_cfg(&running, "ticker", "action=counter interval_ms=100 duration_ms=600000", "");
    let started = running.elapsed();
    let created = running.xl_ok(&["create", ticker.to_str().expect("path")]);
    eprintln!("xl create took {:?}: {created}", running.elapsed() - started);
    running.wait_for("[ticker] I count", STEP);
    let labelled = running.xl_ok(&["list", "-Z"]);
    assert!(labelled.lines().any(|line| line.starts_with("ticker ") && line.contains("domU_t")), "{labelled}");
    let again = running.xl_err(&["create", ticker.to_str().expect("path")]);
    assert!(again.contains("already exists"), "{again}");

    // pause stops its output; unpause resumes it.
    running.xl_ok(&["pause", "ticker"]);
    std::thread::sleep(Duration::from_millis(300));
    let paused_at = running.count("[ticker] I count");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(running.count("[ticker] I count"), paused_at, "output while paused");
    assert!(running.xl_ok(&["list", "ticker"]).lines().any(|line| line.contains("--p---") || line.contains("-bp---") || line.contains("r-p---")));
    running.xl_ok(&["unpause", "ticker"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(running.count("[ticker] I count") > paused_at, "no output after unpause");

    // console streams its output live.
    let mut console = std::process::Command::new(xen_tests::running::xl_binary())
        .args(["--socket", running.socket.to_str().expect("path"), "console", "ticker"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("xl console");
    std::thread::sleep(Duration::from_millis(1500));
    let _ = console.kill();
    let streamed = console.wait_with_output().expect("xl console output");
    let streamed = String::from_utf8_lossy(&streamed.stdout);
    assert!(streamed.contains("[ticker] I count"), "xl console showed: {streamed}");

    // The store knows it; destroy removes it and its memory comes back.
    let listing = running.xl_ok(&["xenstore-ls", "/local/domain"]);
    assert!(listing.contains("name = \"ticker\""), "{listing}");
    running.xl_ok(&["destroy", "ticker"]);
    running.wait_for("(ticker): torn down", STEP);
    assert!(!running.xl_ok(&["list"]).contains("ticker"));
    assert_eq!(free_mib(&running), before, "xl info: memory back to where it was");
    let after_ticker = *running.frames_free_at(1).last().expect("a health line");
    let gone = running.xl_err(&["destroy", "ticker"]);
    assert!(gone.contains("ticker"), "{gone}");

    // shutdown powers a domain off; on_poweroff=destroy lets it go.
    let sleeper = probe_cfg(&running, "sleeper", "action=sleep ms=600000", "");
    running.xl_ok(&["create", sleeper.to_str().expect("path")]);
    running.xl_ok(&["shutdown", "sleeper"]);
    running.wait_for("(sleeper): torn down", STEP);
    running.wait_for("(sleeper) powered off; on_* action: destroy", STEP);
    // The same-sized domain torn down the same way leaves the same free
    // frames: nothing of either stayed behind (the hypervisor's exact count).
    assert_eq!(running.frames_free_at(1).last(), Some(&after_ticker), "every frame back");

    // on_crash=restart brings a crashing domain back.
    let crasher = probe_cfg(&running, "crasher", "action=panic after_ms=300", "on_crash = \"restart\"\n");
    running.xl_ok(&["create", crasher.to_str().expect("path")]);
    running.wait_for("crasher restarted as", STEP);
    running.xl_ok(&["destroy", "crasher"]);

    // A denied operation quotes the policy's denial.
    let denied = running.xl_err(&["destroy", "control"]);
    assert!(denied.contains("avc:  denied  { destroy }") && denied.contains("EACCES"), "{denied}");

    // The guests could do none of it.
    let log = running.log();
    assert!(log.contains("operator-steal: 5 of 5 refused"), "{}", running.tail(40));
    assert!(!log.contains("UNEXPECTED"), "{}", running.tail(40));
    assert!(log.contains("avc:  denied  { pause } for domid=3 scontext=system_u:system_r:untrusted_t"), "{}", running.tail(40));
}
