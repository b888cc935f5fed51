//! Tests of the compiled-policy reader: every refusal, lookups, decisions.

use alloc::vec::Vec;

use xen_abi::policy::{domain, event, grant, header, rule, Class, HEADER_SIZE, TYPE_NAME_SIZE};

use super::test_support::{build, sample, BANKING, CONTROL, DRIVER, SECURITY, UNTRUSTED};
use super::*;

mod server;

fn patch_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

fn patch_u16(bytes: &mut [u8], offset: usize, value: u16) {
    bytes[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
}

fn rule_offset(bytes: &[u8], index: usize) -> usize {
    let type_count = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    HEADER_SIZE + type_count * TYPE_NAME_SIZE + index * RULE_SIZE
}

#[test]
fn a_valid_policy_parses_and_answers() {
    let bytes = sample();
    let policy = Policy::parse(&bytes).unwrap();
    assert_eq!(policy.type_count(), 5);
    assert_eq!(policy.rule_count(), 6);
    assert_eq!(policy.type_name(TypeId(DRIVER)), Some("driver_t"));
    assert_eq!(policy.type_name(TypeId(5)), None);
    assert_eq!(policy.lookup_type("untrusted_t"), Some(TypeId(UNTRUSTED)));
    assert_eq!(policy.lookup_type("banking_t"), Some(TypeId(BANKING)));
    assert_eq!(policy.lookup_type("nobody_t"), None);
    assert_eq!(policy.lookup_type(""), None);
    assert_eq!(policy.bytes(), &bytes[..]);
    let (driver, banking) = (TypeId(DRIVER), TypeId(BANKING));
    assert!(policy.check(driver, banking, Class::Grant, grant::MAP_READ));
    assert!(policy.check(driver, banking, Class::Grant, grant::MAP_READ | grant::COPY));
    assert!(!policy.check(
        driver,
        banking,
        Class::Grant,
        grant::MAP_READ | grant::SETUP
    ));
    assert!(!policy.check(banking, driver, Class::Grant, grant::MAP_READ));
    assert!(!policy.check(driver, banking, Class::Event, event::BIND));
    assert!(!policy.check(driver, banking, Class::Grant, 0));
    assert!(!policy.check(driver, banking, Class::Grant, 1 << 31));
    assert_eq!(
        policy.allowed(TypeId(CONTROL), TypeId(SECURITY), Class::Security),
        xen_abi::policy::security::LOAD_POLICY | xen_abi::policy::security::SET_ENFORCE
    );
}

#[test]
fn rules_come_out_in_order() {
    let bytes = sample();
    let policy = Policy::parse(&bytes).unwrap();
    let rules: Vec<Rule> = policy.rules().collect();
    assert_eq!(rules.len(), 6);
    assert!(rules.windows(2).all(|pair| {
        (pair[0].source, pair[0].target, pair[0].class)
            < (pair[1].source, pair[1].target, pair[1].class)
    }));
    assert_eq!(
        rules[0],
        Rule {
            source: TypeId(BANKING),
            target: TypeId(DRIVER),
            class: Class::Event,
            permissions: event::BIND | event::SEND
        }
    );
    assert_eq!(policy.rule(6), None);
}

#[test]
fn labels_name_types_in_both_forms() {
    let bytes = sample();
    let policy = Policy::parse(&bytes).unwrap();
    assert_eq!(policy.type_id("banking_t"), Some(TypeId(BANKING)));
    assert_eq!(
        policy.type_id("system_u:system_r:banking_t"),
        Some(TypeId(BANKING))
    );
    assert_eq!(
        policy.type_id("other_u:other_r:control_t"),
        Some(TypeId(CONTROL))
    );
    assert_eq!(policy.type_id("system_u:banking_t"), None);
    assert_eq!(policy.type_id("system_u:system_r:nobody_t"), None);
}

#[test]
fn a_policy_with_no_rules_denies_everything() {
    let bytes = build(&["a_t"], &[]);
    let policy = Policy::parse(&bytes).unwrap();
    assert_eq!(policy.allowed(TypeId(0), TypeId(0), Class::Domain), 0);
    assert_eq!(policy.rules().count(), 0);
}

#[test]
fn lengths_are_checked() {
    let bytes = sample();
    for length in [0, 1, HEADER_SIZE - 1] {
        assert_eq!(
            Policy::parse(&bytes[..length]),
            Err(PolicyError::BadLength { length })
        );
    }
    let huge = alloc::vec![0u8; MAX_POLICY_BYTES as usize + 1];
    assert!(matches!(
        Policy::parse(&huge),
        Err(PolicyError::BadLength { .. })
    ));
    let short = &bytes[..bytes.len() - 1];
    assert!(matches!(
        Policy::parse(short),
        Err(PolicyError::LengthMismatch { .. })
    ));
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(
        Policy::parse(&long),
        Err(PolicyError::LengthMismatch { .. })
    ));
    let mut lying = bytes.clone();
    patch_u32(&mut lying, header::TOTAL_LENGTH, bytes.len() as u32 + 12);
    assert!(matches!(
        Policy::parse(&lying),
        Err(PolicyError::LengthMismatch { .. })
    ));
}

#[test]
fn header_fields_are_checked() {
    let bytes = sample();
    let mut damaged = bytes.clone();
    damaged[0] ^= 1;
    assert_eq!(Policy::parse(&damaged), Err(PolicyError::BadMagic));
    let mut damaged = bytes.clone();
    patch_u32(&mut damaged, header::VERSION, 2);
    assert_eq!(
        Policy::parse(&damaged),
        Err(PolicyError::UnsupportedVersion(2))
    );
    let mut damaged = bytes.clone();
    patch_u32(&mut damaged, header::RESERVED, 1);
    assert_eq!(
        Policy::parse(&damaged),
        Err(PolicyError::ReservedNotZero {
            offset: header::RESERVED
        })
    );
    for count in [0, 6, u32::MAX] {
        let mut damaged = bytes.clone();
        patch_u32(&mut damaged, header::CLASS_COUNT, count);
        assert_eq!(
            Policy::parse(&damaged),
            Err(PolicyError::BadClassCount(count))
        );
    }
    for count in [0, MAX_TYPES + 1, u32::MAX] {
        let mut damaged = bytes.clone();
        patch_u32(&mut damaged, header::TYPE_COUNT, count);
        assert_eq!(
            Policy::parse(&damaged),
            Err(PolicyError::BadTypeCount(count))
        );
    }
    let mut damaged = bytes.clone();
    patch_u32(&mut damaged, header::RULE_COUNT, MAX_RULES + 1);
    assert_eq!(
        Policy::parse(&damaged),
        Err(PolicyError::BadRuleCount(MAX_RULES + 1))
    );
    let mut damaged = bytes.clone();
    patch_u32(&mut damaged, header::RULE_COUNT, 7);
    assert!(matches!(
        Policy::parse(&damaged),
        Err(PolicyError::LengthMismatch { .. })
    ));
}

#[test]
fn type_names_are_checked() {
    let bytes = sample();
    let name_offset = |index: usize| HEADER_SIZE + index * TYPE_NAME_SIZE;
    for (byte_offset, value) in [(0, 0u8), (0, b'_'), (3, b'-'), (3, 0xff), (12, b'x')] {
        // "driver_t": a NUL at 0 empties it, `_` first, `-` inside, non-ASCII,
        // and a byte after the NUL padding.
        let mut damaged = bytes.clone();
        damaged[name_offset(2) + byte_offset] = value;
        assert_eq!(
            Policy::parse(&damaged),
            Err(PolicyError::BadTypeName { index: 2 }),
            "offset {byte_offset} value {value:#x}"
        );
    }
    let mut damaged = bytes.clone();
    damaged[name_offset(1)..name_offset(2)].copy_from_slice(&[b'a'; TYPE_NAME_SIZE]);
    // 32 letters without a NUL is a valid name, but "aaa..." < "banking_t".
    assert_eq!(
        Policy::parse(&damaged),
        Err(PolicyError::TypeNamesOutOfOrder { index: 1 })
    );
    let duplicate = build(&["a_t", "a_t"], &[]);
    assert_eq!(
        Policy::parse(&duplicate),
        Err(PolicyError::TypeNamesOutOfOrder { index: 1 })
    );
    let unsorted = build(&["b_t", "a_t"], &[]);
    assert_eq!(
        Policy::parse(&unsorted),
        Err(PolicyError::TypeNamesOutOfOrder { index: 1 })
    );
    let longest = "t".repeat(TYPE_NAME_SIZE);
    assert!(Policy::parse(&build(&[&longest], &[])).is_ok());
}

#[test]
fn rules_are_checked() {
    let bytes = sample();
    let last = rule_offset(&bytes, 5);
    let mut damaged = bytes.clone();
    patch_u16(&mut damaged, last + rule::SOURCE, 5);
    assert_eq!(
        Policy::parse(&damaged),
        Err(PolicyError::RuleTypeOutOfRange { index: 5 })
    );
    let mut damaged = bytes.clone();
    patch_u16(&mut damaged, last + rule::TARGET, u16::MAX);
    assert_eq!(
        Policy::parse(&damaged),
        Err(PolicyError::RuleTypeOutOfRange { index: 5 })
    );
    for class in [0, 6, u16::MAX] {
        let mut damaged = bytes.clone();
        patch_u16(&mut damaged, last + rule::CLASS, class);
        assert_eq!(
            Policy::parse(&damaged),
            Err(PolicyError::RuleBadClass { index: 5 })
        );
    }
    let mut damaged = bytes.clone();
    patch_u16(&mut damaged, last + rule::RESERVED, 1);
    assert_eq!(
        Policy::parse(&damaged),
        Err(PolicyError::ReservedNotZero {
            offset: last + rule::RESERVED
        })
    );
    // The last rule is untrusted_t → untrusted_t : event.
    for permissions in [0, 1 << 31, 1 << Class::Event.permission_names().len()] {
        let mut damaged = bytes.clone();
        patch_u32(&mut damaged, last + rule::PERMISSIONS, permissions);
        assert_eq!(
            Policy::parse(&damaged),
            Err(PolicyError::RuleBadPermissions { index: 5 })
        );
    }
    // The first rule moved after the second: out of order.
    let mut damaged = bytes.clone();
    let (first, second) = (rule_offset(&bytes, 0), rule_offset(&bytes, 1));
    damaged[first..second].copy_from_slice(&bytes[second..second + RULE_SIZE]);
    damaged[second..second + RULE_SIZE].copy_from_slice(&bytes[first..second]);
    assert_eq!(
        Policy::parse(&damaged),
        Err(PolicyError::RulesOutOfOrder { index: 1 })
    );
    // A repeated triple.
    let mut damaged = bytes.clone();
    damaged[second..second + RULE_SIZE].copy_from_slice(&bytes[first..second]);
    assert_eq!(
        Policy::parse(&damaged),
        Err(PolicyError::RulesOutOfOrder { index: 1 })
    );
}

#[test]
fn a_policy_compiled_for_fewer_classes_refuses_newer_ones() {
    let mut bytes = build(&["a_t"], &[(0, 0, Class::Security, 1)]);
    patch_u32(&mut bytes, header::CLASS_COUNT, 4);
    assert_eq!(
        Policy::parse(&bytes),
        Err(PolicyError::RuleBadClass { index: 0 })
    );
    let mut bytes = build(&["a_t"], &[(0, 0, Class::Domain, domain::CREATE)]);
    patch_u32(&mut bytes, header::CLASS_COUNT, 1);
    assert!(Policy::parse(&bytes).is_ok());
}

#[test]
fn every_error_has_a_message() {
    use alloc::string::ToString;
    let errors = [
        PolicyError::BadLength { length: 3 },
        PolicyError::BadMagic,
        PolicyError::UnsupportedVersion(9),
        PolicyError::LengthMismatch {
            expected: 1,
            actual: 2,
        },
        PolicyError::ReservedNotZero { offset: 28 },
        PolicyError::BadClassCount(0),
        PolicyError::BadTypeCount(0),
        PolicyError::BadRuleCount(0),
        PolicyError::BadTypeName { index: 1 },
        PolicyError::TypeNamesOutOfOrder { index: 1 },
        PolicyError::RuleTypeOutOfRange { index: 1 },
        PolicyError::RuleBadClass { index: 1 },
        PolicyError::RuleBadPermissions { index: 1 },
        PolicyError::RulesOutOfOrder { index: 1 },
    ];
    for error in errors {
        assert!(error.to_string().starts_with("policy: "), "{error:?}");
    }
}
