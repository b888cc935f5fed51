//! Generated policies: whatever text comes in, the compiler does not panic;
//! random valid policies compile to bytes the hypervisor accepts and that
//! decide exactly as the rules say.

use std::collections::BTreeMap;

use proptest::prelude::*;
use xen_abi::policy::Class;

use super::super::*;

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "type",
        "attribute",
        "typeattribute",
        "allow",
        "neverallow",
        "self",
        "a_t",
        "b_t",
        "g",
        "event",
        "grant",
        "send",
        "map_read",
        "*",
        "{",
        "}",
        ";",
        ":",
        ",",
        "#",
        "\n",
        "-",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn any_text_compiles_or_fails_cleanly(text in "\\PC{0,120}") {
        let _ = analyze(&text);
    }

    #[test]
    fn token_soup_compiles_or_fails_cleanly(tokens in prop::collection::vec(token(), 0..40)) {
        let text = tokens.join(" ");
        if let Ok(bytes) = compile(&text) {
            prop_assert!(xen_core::policy::Policy::parse(&bytes).is_ok());
        } else {
            let error = analyze(&text).unwrap_err();
            prop_assert!(error.position.line >= 1 && error.position.column >= 1);
        }
    }

    #[test]
    fn random_policies_decide_as_written(
        type_count in 1usize..6,
        rules in prop::collection::vec((0usize..6, 0usize..6, 0usize..5, 1u32..512), 0..20),
    ) {
        let mut text = String::new();
        for index in 0..type_count {
            text.push_str(&format!("type t{index};\n"));
        }
        let mut expected: BTreeMap<(usize, usize, Class), u32> = BTreeMap::new();
        for (source, target, class, bits) in rules {
            let (source, target) = (source % type_count, target % type_count);
            let class = Class::ALL[class];
            let bits = bits & class.valid_permissions();
            if bits == 0 {
                continue;
            }
            *expected.entry((source, target, class)).or_default() |= bits;
            text.push_str(&format!("allow t{source} t{target} : {} {};\n", class.name(), permission_list(class, bits)));
        }
        let bytes = compile(&text).unwrap();
        let policy = xen_core::policy::Policy::parse(&bytes).unwrap();
        prop_assert_eq!(policy.rule_count() as usize, expected.len());
        for source in 0..type_count {
            for target in 0..type_count {
                let (source_id, target_id) = (
                    policy.type_id(&format!("t{source}")).unwrap(),
                    policy.type_id(&format!("t{target}")).unwrap(),
                );
                for class in Class::ALL {
                    let want = expected.get(&(source, target, class)).copied().unwrap_or(0);
                    prop_assert_eq!(policy.allowed(source_id, target_id, class), want);
                }
            }
        }
        prop_assert_eq!(compile(&decompile(&bytes).unwrap()).unwrap(), bytes);
    }
}
