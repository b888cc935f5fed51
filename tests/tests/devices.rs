//! Device assignment (issue 9, the hypervisor's part): a driver domain is
//! given QEMU's virtio-blk at 00:03.0 by its xl.cfg (`pci = [...]`), sees it
//! only through the filtered configuration calls and the mapped BARs, and
//! nothing else; another domain gets no device call at all.

use std::time::Duration;

use xen_tests::machine::{DomainConfig, Machine};
use xen_tests::{workspace_root, Outcome};

fn disk(name: &str) -> std::path::PathBuf {
    let directory = workspace_root().join("target").join("test-disks");
    std::fs::create_dir_all(&directory).expect("disk directory");
    let path = directory.join(format!("{name}-{}.img", std::process::id()));
    std::fs::write(&path, vec![0u8; 1 << 20]).expect("disk image");
    path
}

#[test]
fn a_driver_domain_sees_its_function_through_the_filter_and_nothing_else() {
    let image = disk("assign");
    let boot = Machine::new("on_idle=poweroff")
        .virtio_disk(&image)
        .domain(DomainConfig::probe("driver", "action=pci-probe").label("driver_t").pci(&["00:03.0"]))
        .domain(DomainConfig::probe("thief", "action=pci-steal").label("untrusted_t"))
        .boot(Duration::from_secs(60));
    for line in boot.log.lines().filter(|line| line.contains("pci")) {
        eprintln!("{line}");
    }
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("pci 00:03.0: assigned to d1 (driver)")
        .expect_log("pci-probe: function 00:03.0 1af4:1042")
        .expect_log("pci-probe: vendor and device through the filter: ok")
        .expect_log("pci-probe: BAR sizing emulated: ok")
        .expect_log("pci-probe: moving a BAR is ignored: ok")
        .expect_log("pci-probe: BAR 4 mapped: first byte")
        .expect_log("pci-probe: MSI-X hidden, the rest visible: ok")
        .expect_log("pci-probe: decode bits kept: ok")
        .expect_log("pci-probe: another function (00:1f.2) out of reach: ok")
        .expect_log("pci-probe: 0 failures")
        .expect_log("pci-steal: 5 of 5 refused")
        .expect_log("pci 00:03.0: released by d1")
        .expect_no_log("UNEXPECTED")
        .expect_no_log("LEAK");
    let _ = std::fs::remove_file(image);
}

#[test]
fn a_domain_the_policy_refuses_devices_gets_none() {
    let image = disk("refused");
    // untrusted_t has no `resource { use }`: the assignment is refused at boot.
    let boot = Machine::new("on_idle=poweroff")
        .virtio_disk(&image)
        .domain(DomainConfig::probe("driver", "action=pci-steal").label("untrusted_t").pci(&["00:03.0"]))
        .boot(Duration::from_secs(60));
    boot.expect_outcome(Outcome::PoweredOff)
        .expect_log("pci 00:03.0: not assigned to d1: the policy refuses it devices")
        .expect_log("pci-steal: 5 of 5 refused")
        .expect_no_log("UNEXPECTED");
    let _ = std::fs::remove_file(image);
}
