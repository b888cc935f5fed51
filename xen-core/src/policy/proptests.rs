//! Hostile compiled policies: arbitrary bytes and mutations of a valid
//! policy never panic the reader, and whatever it accepts answers every
//! lookup without panicking.

use alloc::vec::Vec;

use proptest::prelude::*;
use xen_abi::policy::Class;

use super::test_support::sample;
use super::{Policy, TypeId};

fn exercise(policy: &Policy<'_>) {
    let type_count = policy.type_count();
    assert!(type_count > 0);
    for index in 0..type_count {
        let name = policy.type_name(TypeId(index)).expect("validated name");
        assert_eq!(policy.lookup_type(name), Some(TypeId(index)));
    }
    let rules: Vec<_> = policy.rules().collect();
    assert_eq!(rules.len(), policy.rule_count() as usize);
    for rule in &rules {
        assert_eq!(
            policy.allowed(rule.source, rule.target, rule.class),
            rule.permissions
        );
        assert!(policy.check(rule.source, rule.target, rule.class, rule.permissions));
    }
    for class in Class::ALL {
        let _ = policy.allowed(TypeId(type_count), TypeId(0), class);
        let _ = policy.allowed(TypeId(u16::MAX), TypeId(u16::MAX), class);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(policy) = Policy::parse(&bytes) {
            exercise(&policy);
        }
    }

    #[test]
    fn mutated_policies_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = sample();
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(policy) = Policy::parse(&bytes) {
            exercise(&policy);
        }
    }

    #[test]
    fn labels_never_panic(label in "[a-z_:0-9\\-]{0,40}") {
        let bytes = sample();
        let policy = Policy::parse(&bytes).unwrap();
        let _ = policy.type_id(&label);
    }
}
