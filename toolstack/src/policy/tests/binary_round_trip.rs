//! The binary format: what the compiler writes, the toolstack's reader and
//! decompiler read back, and damaged files are refused with an offset.

use xen_abi::policy::{header, HEADER_SIZE, MAGIC, RULE_SIZE, TYPE_NAME_SIZE};

use super::super::*;
use super::default_machine;

fn default_bytes() -> Vec<u8> {
    compile_file(Path::new(default_machine::PATH)).unwrap()
}

#[test]
fn the_layout_is_the_abi_crates() {
    let text = "type b_t; type a_t;\nallow b_t a_t : grant { copy map_read };";
    let bytes = compile(text).unwrap();
    let mut expected = Vec::new();
    expected.extend_from_slice(&MAGIC);
    for value in [
        1u32,
        5,
        2,
        1,
        (HEADER_SIZE + 2 * TYPE_NAME_SIZE + RULE_SIZE) as u32,
        0,
    ] {
        expected.extend_from_slice(&value.to_le_bytes());
    }
    for name in ["a_t", "b_t"] {
        let mut slot = [0u8; TYPE_NAME_SIZE];
        slot[..3].copy_from_slice(name.as_bytes());
        expected.extend_from_slice(&slot);
    }
    // b_t (1) → a_t (0) : grant (3) { map_read (bit 0) copy (bit 5) }.
    expected.extend_from_slice(&[1, 0, 0, 0, 3, 0, 0, 0, 0b10_0001, 0, 0, 0]);
    assert_eq!(bytes, expected);
}

#[test]
fn decode_and_decompile_round_trip() {
    let bytes = default_bytes();
    let analyzed = analyze_file(Path::new(default_machine::PATH)).unwrap();
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.types, analyzed.types);
    assert_eq!(decoded.rules, analyzed.rules);
    assert!(decoded.attributes.is_empty());
    let text = decompile(&bytes).unwrap();
    assert!(
        text.starts_with("# 5 types, 29 access-vector entries\ntype banking_t;\n"),
        "{text}"
    );
    assert!(
        text.contains("\nallow driver_t banking_t : grant { map_read map_write unmap copy };\n")
    );
    assert!(text.contains("\nallow driver_t driver_t : resource use;\n"));
    assert_eq!(compile(&text).unwrap(), bytes);
    let described = describe(&analyzed);
    assert!(described.starts_with("# attribute domain_type: banking_t control_t driver_t untrusted_t\n# attribute guest_type: banking_t untrusted_t\n# 5 types"));
}

#[test]
fn the_reader_refuses_what_the_hypervisor_refuses() {
    let bytes = default_bytes();
    let rules_start = HEADER_SIZE + 5 * TYPE_NAME_SIZE;
    type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
    let mutations: Vec<(Mutation, usize, &str)> = vec![
        (
            Box::new(|bytes| bytes.truncate(10)),
            0,
            "10 bytes is not a policy's length",
        ),
        (
            Box::new(|bytes| bytes[0] = b'Y'),
            0,
            "not a compiled policy (bad magic)",
        ),
        (
            Box::new(|bytes| bytes[header::VERSION] = 2),
            8,
            "unsupported version 2",
        ),
        (
            Box::new(|bytes| bytes[header::CLASS_COUNT] = 9),
            12,
            "unknown class count 9",
        ),
        (
            Box::new(|bytes| bytes[header::TYPE_COUNT] = 0),
            16,
            "bad type count 0",
        ),
        (
            Box::new(|bytes| bytes[header::RULE_COUNT + 3] = 1),
            20,
            "bad rule count 16777245",
        ),
        (
            Box::new(|bytes| bytes[header::RESERVED] = 1),
            28,
            "reserved field is not zero",
        ),
        (
            Box::new(|bytes| bytes.push(0)),
            24,
            "541 bytes, the header implies 540",
        ),
        (
            Box::new(|bytes| bytes[HEADER_SIZE + TYPE_NAME_SIZE] = b'-'),
            64,
            "type 1: bad name",
        ),
        (
            Box::new(|bytes| bytes[HEADER_SIZE + TYPE_NAME_SIZE] = b'a'),
            64,
            "type 1: names not strictly ascending",
        ),
        (
            Box::new(move |bytes| bytes[rules_start] = 7),
            rules_start,
            "rule 0: type id out of range",
        ),
        (
            Box::new(move |bytes| bytes[rules_start + 4] = 0),
            rules_start + 4,
            "rule 0: bad class 0",
        ),
        (
            Box::new(move |bytes| bytes[rules_start + 6] = 1),
            rules_start + 6,
            "rule 0: reserved field is not zero",
        ),
        (
            Box::new(move |bytes| bytes[rules_start + 11] = 0x80),
            rules_start + 8,
            "rule 0: bad permissions 0x8000001f",
        ),
        (
            Box::new(move |bytes| bytes[rules_start + RULE_SIZE + 4] = 1),
            rules_start + RULE_SIZE,
            "rule 1: rules not strictly ascending",
        ),
    ];
    for (mutate, offset, message) in mutations {
        let mut damaged = bytes.clone();
        mutate(&mut damaged);
        let error = decode(&damaged).unwrap_err();
        assert_eq!((error.offset, error.message.as_str()), (offset, message));
        assert!(
            xen_core::policy::Policy::parse(&damaged).is_err(),
            "{message}"
        );
        assert!(decompile(&damaged)
            .unwrap_err()
            .to_string()
            .starts_with("compiled policy, byte "));
    }
}
