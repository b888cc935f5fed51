//! Tests of the bundle parser: a hand-built valid bundle and every
//! rejection.

use super::test_bundle::{at, build, domain, put, two_domains, Domain};
use super::*;

fn domain_problem(bytes: &[u8]) -> (usize, DomainProblem) {
    match parse(bytes) {
        Err(BundleError::Domain { index, problem, .. }) => (index, problem),
        other => panic!("expected a domain error, got {other:?}"),
    }
}

fn problem_of(domains: &[Domain]) -> (usize, DomainProblem) {
    domain_problem(&build(domains, b""))
}

#[test]
fn valid_bundle_parses_and_verifies() {
    let bytes = build(&two_domains(), b"policy bytes");
    let bundle = parse(&bytes).unwrap();
    assert_eq!(bundle.domain_count(), 2);
    assert_eq!(bundle.policy(), Some(&b"policy bytes"[..]));
    let control = bundle.domain(0).unwrap();
    assert_eq!(
        (control.name, control.index, control.memory_kib),
        ("control", 0, 4096)
    );
    assert_eq!(control.seclabel, "system_u:system_r:domU_t");
    assert_eq!(control.command_line, "console=hvc0");
    assert!(control.is_control() && !control.is_driver());
    assert_eq!(control.memory_bytes(), 4 << 20);
    let names: Vec<_> = bundle.domains().map(|domain| domain.name).collect();
    assert_eq!(names, ["control", "guest-1"]);
    for domain in bundle.domains() {
        let digest = verify_kernel(&domain).unwrap();
        assert_eq!(digest, domain.kernel_sha256);
        assert_eq!(hex(&digest).to_string().len(), 64);
    }
    assert!(bundle.domain(2).is_none());
    fuzz_one(&bytes);
}

#[test]
fn optional_parts_may_be_empty() {
    let bytes = build(
        &[Domain {
            command_line: b"",
            ..domain(b"a")
        }],
        b"",
    );
    let bundle = parse(&bytes).unwrap();
    assert_eq!(bundle.policy(), None);
    assert_eq!(bundle.domain(0).unwrap().command_line, "");
}

#[test]
fn hex_writes_lowercase_digits() {
    let mut digest = [0u8; 32];
    digest[0] = 0xab;
    digest[31] = 0x01;
    let text = hex(&digest).to_string();
    assert!(text.starts_with("ab00") && text.ends_with("0001"));
}

#[test]
fn header_is_checked() {
    let valid = build(&two_domains(), b"");
    assert_eq!(
        parse(&valid[..31]).unwrap_err(),
        BundleError::TooShort { actual: 31 }
    );
    let cases: [(usize, &[u8], BundleError); 5] = [
        (
            header::MAGIC,
            b"XCBUNDL2",
            BundleError::BadMagic {
                found: *b"XCBUNDL2",
            },
        ),
        (
            header::VERSION,
            &2u32.to_le_bytes(),
            BundleError::UnsupportedVersion { found: 2 },
        ),
        (
            header::DOMAIN_COUNT,
            &0u32.to_le_bytes(),
            BundleError::DomainCount { found: 0 },
        ),
        (
            header::DOMAIN_COUNT,
            &17u32.to_le_bytes(),
            BundleError::DomainCount { found: 17 },
        ),
        (
            header::TOTAL_LENGTH,
            &(MAX_TOTAL_BYTES + 1).to_le_bytes(),
            BundleError::TooLarge {
                total_length: MAX_TOTAL_BYTES + 1,
            },
        ),
    ];
    for (offset, value, expected) in cases {
        let mut bytes = valid.clone();
        put(&mut bytes, offset, value);
        assert_eq!(parse(&bytes).unwrap_err(), expected);
    }
}

#[test]
fn truncated_and_padded_bundles_name_both_lengths() {
    let valid = build(&two_domains(), b"");
    let expected = valid.len() as u64;
    let error = parse(&valid[..valid.len() - 1]).unwrap_err();
    assert_eq!(
        error,
        BundleError::Truncated {
            expected,
            actual: expected - 1
        }
    );
    assert!(error.to_string().contains(&format!(
        "header says {expected} bytes, module has {}",
        expected - 1
    )));
    let mut padded = valid.clone();
    padded.push(0);
    assert_eq!(
        parse(&padded).unwrap_err(),
        BundleError::TrailingBytes {
            expected,
            actual: expected + 1
        }
    );
}

#[test]
fn records_must_fit() {
    let mut bytes = build(&[domain(b"a")], b"");
    bytes.truncate(HEADER_SIZE + 100);
    let total_length = bytes.len() as u64;
    put(
        &mut bytes,
        header::TOTAL_LENGTH,
        &total_length.to_le_bytes(),
    );
    assert_eq!(
        parse(&bytes).unwrap_err(),
        BundleError::RecordsOutOfRange {
            records_end: (HEADER_SIZE + RECORD_SIZE) as u64,
            total_length: 132
        }
    );
}

#[test]
fn policy_range_and_size_are_checked() {
    let valid = build(&two_domains(), b"policy");
    let policy_at = valid.len() - 6;
    let mut too_large = valid.clone();
    put(
        &mut too_large,
        header::POLICY_LENGTH,
        &(MAX_POLICY_BYTES + 1).to_le_bytes(),
    );
    assert_eq!(
        parse(&too_large).unwrap_err(),
        BundleError::PolicyTooLarge {
            length: u64::from(MAX_POLICY_BYTES) + 1
        }
    );
    let mut past_end = valid.clone();
    put(
        &mut past_end,
        header::POLICY_OFFSET,
        &(policy_at as u32 + 1).to_le_bytes(),
    );
    assert!(matches!(
        parse(&past_end),
        Err(BundleError::PayloadOutOfRange {
            region: Region::Policy,
            ..
        })
    ));
    let mut in_records = valid.clone();
    put(
        &mut in_records,
        header::POLICY_OFFSET,
        &(HEADER_SIZE as u32).to_le_bytes(),
    );
    assert!(matches!(
        parse(&in_records),
        Err(BundleError::PayloadOutOfRange {
            region: Region::Policy,
            ..
        })
    ));
    let mut empty_with_offset = build(&two_domains(), b"");
    put(
        &mut empty_with_offset,
        header::POLICY_OFFSET,
        &1u32.to_le_bytes(),
    );
    let error = parse(&empty_with_offset).unwrap_err();
    assert!(matches!(
        error,
        BundleError::PayloadOutOfRange {
            region: Region::Policy,
            offset: 1,
            length: 0,
            ..
        }
    ));
    assert!(error
        .to_string()
        .starts_with("the policy at offset 0x1 length 0x0 is outside the payload"));
}

#[test]
fn payload_ranges_are_checked_with_overflow() {
    let valid = build(&two_domains(), b"");
    let mut overflow = valid.clone();
    put(
        &mut overflow,
        at(1, record::KERNEL_OFFSET),
        &(u64::MAX - 10).to_le_bytes(),
    );
    assert!(matches!(
        parse(&overflow),
        Err(BundleError::PayloadOutOfRange {
            region: Region::Kernel { domain: 1 },
            ..
        })
    ));
    let mut command_line = valid.clone();
    put(
        &mut command_line,
        at(0, record::COMMAND_LINE_OFFSET),
        &(valid.len() as u64).to_le_bytes(),
    );
    let error = parse(&command_line).unwrap_err();
    assert!(matches!(
        error,
        BundleError::PayloadOutOfRange {
            region: Region::CommandLine { domain: 0 },
            ..
        }
    ));
    assert!(error
        .to_string()
        .starts_with("domain 0's command line at offset"));
}

#[test]
fn payload_regions_may_not_overlap() {
    let valid = build(&two_domains(), b"");
    let mut shared_kernel = valid.clone();
    let first_kernel = &valid[at(0, record::KERNEL_OFFSET)..at(0, record::KERNEL_OFFSET) + 8];
    put(
        &mut shared_kernel,
        at(1, record::KERNEL_OFFSET),
        first_kernel,
    );
    let error = parse(&shared_kernel).unwrap_err();
    assert!(
        matches!(error, BundleError::PayloadOverlap { .. }),
        "{error}"
    );
    let mut into_kernel = valid.clone();
    let kernel_offset = u64::from_le_bytes(first_kernel.try_into().unwrap());
    put(
        &mut into_kernel,
        at(0, record::COMMAND_LINE_OFFSET),
        &(kernel_offset + 50).to_le_bytes(),
    );
    assert_eq!(
        parse(&into_kernel).unwrap_err(),
        BundleError::PayloadOverlap {
            first: Region::Kernel { domain: 0 },
            second: Region::CommandLine { domain: 0 }
        }
    );
    assert_eq!(
        parse(&into_kernel).unwrap_err().to_string(),
        "domain 0's command line overlaps domain 0's kernel"
    );
}

#[test]
fn names_are_checked() {
    assert_eq!(problem_of(&[domain(b"")]), (0, DomainProblem::NameEmpty));
    assert_eq!(
        problem_of(&[domain(b"a"), domain(b"bad name")]),
        (1, DomainProblem::NameCharacter { position: 3 })
    );
    assert_eq!(
        problem_of(&[domain(b"caf\xc3\xa9")]),
        (0, DomainProblem::NameCharacter { position: 3 })
    );
    assert_eq!(
        problem_of(&[domain(&[b'x'; 32])]),
        (0, DomainProblem::NameTooLong)
    );
    assert!(parse(&build(&[domain(&[b'x'; 31])], b"")).is_ok());
    let mut padding = build(&[domain(b"ab")], b"");
    padding[at(0, 5)] = b'z';
    assert_eq!(domain_problem(&padding), (0, DomainProblem::NamePadding));
    let error = parse(&build(
        &[domain(b"same"), domain(b"other"), domain(b"same")],
        b"",
    ))
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "domain 2 'same': name already used by domain 0"
    );
}

#[test]
fn seclabels_are_checked() {
    let with_label = |seclabel| {
        problem_of(&[Domain {
            seclabel,
            ..domain(b"a")
        }])
    };
    assert_eq!(with_label(b""), (0, DomainProblem::SeclabelEmpty));
    assert_eq!(with_label(b"\xff\xfe"), (0, DomainProblem::SeclabelNotUtf8));
    assert_eq!(with_label(&[b'l'; 64]), (0, DomainProblem::SeclabelTooLong));
    let mut padding = build(&[domain(b"a")], b"");
    padding[at(0, record::SECLABEL + 63)] = 1;
    assert_eq!(
        domain_problem(&padding),
        (0, DomainProblem::SeclabelPadding)
    );
}

#[test]
fn memory_is_checked() {
    let with_memory = |memory_kib| {
        problem_of(&[Domain {
            memory_kib,
            ..domain(b"a")
        }])
    };
    assert_eq!(
        with_memory(4097),
        (0, DomainProblem::MemoryNotPageMultiple { memory_kib: 4097 })
    );
    for memory_kib in [0, 1020, (1 << 20) + 4, u64::MAX - 3] {
        assert_eq!(
            with_memory(memory_kib),
            (0, DomainProblem::MemoryOutOfRange { memory_kib })
        );
    }
    for memory_kib in [1024, 1 << 20] {
        assert!(parse(&build(
            &[Domain {
                memory_kib,
                ..domain(b"a")
            }],
            b""
        ))
        .is_ok());
    }
}

#[test]
fn flags_are_checked() {
    let with_flags = |flags| {
        problem_of(&[Domain {
            flags,
            ..domain(b"a")
        }])
    };
    assert_eq!(with_flags(4), (0, DomainProblem::UnknownFlags { flags: 4 }));
    assert!(parse(&build(
        &[Domain {
            flags: domain_flags::ALL,
            ..domain(b"a")
        }],
        b""
    ))
    .is_ok());
    let mut domains = two_domains();
    domains[1].flags = domain_flags::CONTROL;
    let error = parse(&build(&domains, b"")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "domain 1 'guest-1': second control domain (domain 0 is already the control domain)"
    );
}

#[test]
fn reserved_bytes_must_be_zero() {
    for offset in [record::RESERVED, RECORD_SIZE - 1] {
        let mut bytes = build(&two_domains(), b"");
        bytes[at(1, offset)] = 1;
        assert_eq!(
            domain_problem(&bytes),
            (1, DomainProblem::ReservedNotZero { offset })
        );
    }
}

#[test]
fn kernels_are_checked() {
    assert_eq!(
        problem_of(&[Domain {
            kernel: vec![],
            ..domain(b"a")
        }]),
        (0, DomainProblem::KernelEmpty)
    );
    let mut bytes = build(&[domain(b"a")], b"");
    put(
        &mut bytes,
        at(0, record::KERNEL_LENGTH),
        &(MAX_KERNEL_BYTES + 1).to_le_bytes(),
    );
    assert_eq!(
        domain_problem(&bytes),
        (
            0,
            DomainProblem::KernelTooLarge {
                length: MAX_KERNEL_BYTES + 1
            }
        )
    );
}

#[test]
fn command_lines_are_checked() {
    let with_command_line = |command_line| {
        problem_of(&[Domain {
            command_line,
            ..domain(b"a")
        }])
    };
    assert_eq!(
        with_command_line(b"a\0b"),
        (0, DomainProblem::CommandLineNul)
    );
    assert_eq!(
        with_command_line(b"\xc3"),
        (0, DomainProblem::CommandLineNotUtf8)
    );
    let long: &'static [u8] = vec![b'x'; 1024].leak();
    assert_eq!(
        with_command_line(long),
        (0, DomainProblem::CommandLineTooLong { length: 1024 })
    );
    assert!(parse(&build(
        &[Domain {
            command_line: &long[..1023],
            ..domain(b"a")
        }],
        b""
    ))
    .is_ok());
}

#[test]
fn a_changed_kernel_fails_verification() {
    let mut bytes = build(&two_domains(), b"");
    let kernel_offset = u64::from_le_bytes(
        bytes[at(1, record::KERNEL_OFFSET)..][..8]
            .try_into()
            .unwrap(),
    );
    bytes[kernel_offset as usize + 7] ^= 1;
    let bundle = parse(&bytes).unwrap();
    assert!(verify_kernel(&bundle.domain(0).unwrap()).is_ok());
    let error = verify_kernel(&bundle.domain(1).unwrap()).unwrap_err();
    assert!(matches!(
        error,
        BundleError::Domain {
            index: 1,
            problem: DomainProblem::KernelDigestMismatch { .. },
            ..
        }
    ));
    assert!(error
        .to_string()
        .starts_with("domain 1 'guest-1': kernel SHA-256 mismatch: bundle records "));
}

#[test]
fn verify_kernel_matches_a_known_digest() {
    let record = DomainRecord {
        index: 0,
        name: "a",
        seclabel: "a_t",
        memory_kib: 1024,
        kernel: b"abc",
        command_line: "",
        flags: 0,
        weight: 0,
        kernel_sha256: [0; 32],
        pci: [0; xen_abi::bundle::MAX_PCI_FUNCTIONS],
        pci_count: 0,
    };
    let Err(BundleError::Domain {
        problem: DomainProblem::KernelDigestMismatch { actual, .. },
        ..
    }) = verify_kernel(&record)
    else {
        panic!("an all-zero digest must not match");
    };
    assert_eq!(
        hex(&actual).to_string(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
