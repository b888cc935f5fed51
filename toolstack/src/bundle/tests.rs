//! Tests of the bundle writer: round trips through the hypervisor's own
//! parser (`xen_core::bundle`), layout, and every limit it enforces.

use super::*;
use crate::launch;
use crate::test_support::{config_text, four_domains, launch_directory, write};

fn load(directory: &tempfile::TempDir) -> Launch {
    launch::load(directory.path()).unwrap()
}

/// The message of building `launch`, which must fail.
fn build_error(launch: &Launch) -> String {
    build(launch).unwrap_err().to_string()
}

#[test]
fn round_trips_through_the_hypervisor_parser() {
    let directory = four_domains();
    write(directory.path(), "policy.bin", b"compiled policy");
    let launch = load(&directory);
    let built = assemble(&launch).unwrap();
    let bundle = xen_core::bundle::parse(&built.bytes).unwrap();
    assert_eq!(bundle.domain_count(), 4);
    assert_eq!(bundle.policy(), Some(&b"compiled policy"[..]));
    for ((record, config), summary) in bundle.domains().zip(&launch.domains).zip(&built.domains) {
        assert_eq!(record.name, config.name);
        assert_eq!(Some(record.seclabel), config.seclabel.as_deref());
        assert_eq!(record.memory_kib, config.memory_mib * 1024);
        assert_eq!(record.command_line, config.command_line);
        assert_eq!(record.kernel, std::fs::read(&config.kernel).unwrap());
        let digest = xen_core::bundle::verify_kernel(&record).unwrap();
        assert_eq!(digest, summary.kernel_sha256);
        assert_eq!(
            xen_core::bundle::hex(&digest).to_string(),
            hex(&summary.kernel_sha256)
        );
        assert_eq!(summary.kernel_bytes, record.kernel.len() as u64);
    }
    let records: Vec<_> = bundle.domains().collect();
    assert!(records[0].is_control() && !records[0].is_driver());
    assert!(records[1].is_driver() && !records[1].is_control());
    assert_eq!(records[2].command_line, "disk=xvda");
    assert_eq!(built.domains[0].flags, domain_flags::CONTROL);
    assert_eq!(build(&launch).unwrap(), built.bytes);
}

#[test]
fn kernels_are_page_aligned_and_payload_follows_records() {
    let directory = four_domains();
    let built = assemble(&load(&directory)).unwrap();
    let bundle = xen_core::bundle::parse(&built.bytes).unwrap();
    let base = built.bytes.as_ptr() as usize;
    for record in bundle.domains() {
        let offset = record.kernel.as_ptr() as usize - base;
        assert_eq!(offset % KERNEL_ALIGNMENT, 0);
        assert!(offset >= HEADER_SIZE + 4 * RECORD_SIZE);
    }
    // The untrusted domain has no command line: offset and length are 0.
    let at = HEADER_SIZE + 3 * RECORD_SIZE;
    assert_eq!(
        built.bytes[at + record::COMMAND_LINE_OFFSET..at + record::FLAGS],
        [0; 12]
    );
}

#[test]
fn a_launch_without_policy_has_none() {
    let directory = four_domains();
    let bytes = build(&load(&directory)).unwrap();
    assert_eq!(xen_core::bundle::parse(&bytes).unwrap().policy(), None);
    assert_eq!(
        bytes[header::POLICY_OFFSET..header::POLICY_OFFSET + 8],
        [0; 8]
    );
}

#[test]
fn two_control_domains_are_rejected() {
    let directory = launch_directory(
        &[
            ("0.cfg", config_text("a", "control_domain = 1")),
            ("1.cfg", config_text("b", "control_domain = 1")),
        ],
        &["a", "b"],
    );
    let message = build_error(&load(&directory));
    assert!(
        message
            .ends_with("1.cfg: domain 'b': two control domains: 'a' is already the control domain"),
        "{message}"
    );
}

#[test]
fn duplicate_names_are_rejected() {
    let directory = launch_directory(
        &[
            ("0.cfg", config_text("a", "")),
            ("1.cfg", config_text("a", "")),
        ],
        &["a"],
    );
    assert!(build_error(&load(&directory)).ends_with("domain 'a': name already used by domain 0"));
}

#[test]
fn memory_must_be_in_range() {
    let directory = four_domains();
    let mut launch = load(&directory);
    launch.domains[2].memory_mib = 2048;
    let message = build_error(&launch);
    assert!(
        message
            .ends_with("domain 'banking': memory 2048 MiB is not in range: expected 1 to 1024 MiB"),
        "{message}"
    );
    launch.domains[2].memory_mib = 1024;
    assert!(build(&launch).is_ok());
}

#[test]
fn seclabels_are_required_and_bounded() {
    let directory = four_domains();
    let mut launch = load(&directory);
    launch.domains[0].seclabel = None;
    assert!(build_error(&launch).contains("domain 'control': no seclabel"));
    launch.domains[0].seclabel = Some("x".repeat(64));
    assert!(build_error(&launch).contains("seclabel is 64 bytes, at most 63"));
    launch.domains[0].seclabel = Some("a\0b".to_string());
    assert!(build_error(&launch).contains("seclabel contains a NUL"));
    launch.domains[0].seclabel = Some("x".repeat(63));
    assert!(xen_core::bundle::parse(&build(&launch).unwrap()).is_ok());
}

#[test]
fn command_lines_are_bounded() {
    let directory = four_domains();
    let mut launch = load(&directory);
    launch.domains[1].command_line = "x".repeat(1024);
    assert!(
        build_error(&launch).contains("command line is 1024 bytes, more than the limit of 1023")
    );
    launch.domains[1].command_line = "a\0".to_string();
    assert!(build_error(&launch).contains("command line contains a NUL"));
    launch.domains[1].command_line = "x".repeat(1023);
    assert!(xen_core::bundle::parse(&build(&launch).unwrap()).is_ok());
}

#[test]
fn names_are_checked() {
    let directory = four_domains();
    let mut launch = load(&directory);
    launch.domains[3].name = "x".repeat(32);
    assert!(build_error(&launch).contains("is 32 bytes, at most 31"));
    launch.domains[3].name = "a/b".to_string();
    assert!(build_error(&launch).contains("has '/'"));
}

#[test]
fn kernels_must_exist_be_non_empty_and_not_too_large() {
    let directory = four_domains();
    let mut launch = load(&directory);
    std::fs::remove_file(directory.path().join("driver.elf")).unwrap();
    let message = build_error(&launch);
    assert!(
        message.starts_with(&format!(
            "{}: ",
            directory.path().join("driver.elf").display()
        )),
        "{message}"
    );
    write(directory.path(), "driver.elf", b"");
    assert!(build_error(&launch).ends_with("driver.elf is empty"));
    let large = std::fs::File::create(directory.path().join("driver.elf")).unwrap();
    large.set_len(MAX_KERNEL_BYTES + 1).unwrap();
    let message = build_error(&launch);
    assert!(
        message
            .contains("driver.elf is too large: 16777217 bytes, more than the limit of 16777216"),
        "{message}"
    );
    large.set_len(MAX_KERNEL_BYTES).unwrap();
    launch.domains.truncate(2);
    assert!(xen_core::bundle::parse(&build(&launch).unwrap()).is_ok());
}

/// A kernel path to an endless file (its metadata says 0 bytes) used to be
/// read whole: all the memory there was, then an allocation failure.
#[test]
#[cfg(target_os = "linux")]
fn an_endless_kernel_file_is_refused_at_the_limit() {
    let directory = four_domains();
    let mut launch = load(&directory);
    launch.domains[3].kernel = std::path::PathBuf::from("/dev/zero");
    let message = build_error(&launch);
    assert_eq!(
        message,
        "/dev/zero: goes on past the end its metadata gives, more than the limit of 16777216 bytes"
    );
}

#[test]
fn policy_and_total_size_are_bounded() {
    let directory = four_domains();
    write(
        directory.path(),
        "policy",
        vec![0u8; MAX_POLICY_BYTES as usize + 1],
    );
    assert!(
        build_error(&load(&directory)).contains("is 1048577 bytes, more than the limit of 1048576")
    );

    let directory = four_domains();
    let mut launch = load(&directory);
    for domain in &launch.domains {
        std::fs::File::create(&domain.kernel)
            .unwrap()
            .set_len(MAX_KERNEL_BYTES)
            .unwrap();
    }
    let mut fifth = launch.domains[3].clone();
    fifth.name = "fifth".to_string();
    launch.domains.push(fifth);
    assert!(build_error(&launch).starts_with("bundle: bundle would be over"));
}

#[test]
fn domain_count_is_bounded() {
    let directory = four_domains();
    let mut launch = load(&directory);
    let template = launch.domains[3].clone();
    for index in 4..MAX_DOMAINS {
        launch.domains.push(DomainConfig {
            name: format!("guest{index}"),
            ..template.clone()
        });
    }
    assert_eq!(
        xen_core::bundle::parse(&build(&launch).unwrap())
            .unwrap()
            .domain_count(),
        MAX_DOMAINS
    );
    launch.domains.push(DomainConfig {
        name: "one-too-many".to_string(),
        ..template
    });
    assert_eq!(
        build_error(&launch),
        "bundle: 17 domains: a bundle holds 1 to 16"
    );
    launch.domains.clear();
    assert_eq!(
        build_error(&launch),
        "bundle: 0 domains: a bundle holds 1 to 16"
    );
}

#[test]
fn hex_is_lowercase() {
    assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
}
