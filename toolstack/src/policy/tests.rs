//! Tests of the policy compiler: every error with its position, attributes,
//! `self`, neverallow, determinism and the binary round trip.

use xen_abi::policy::{domain, event, grant, Class};

use super::*;

mod binary_round_trip;
mod default_machine;
mod proptests;

/// Compiles `text`, expecting an error; returns "LINE:COLUMN: message".
fn error_of(text: &str) -> String {
    match analyze(text) {
        Ok(policy) => panic!("compiled, expected an error:\n{}", describe(&policy)),
        Err(error) => error.to_string(),
    }
}

#[test]
fn syntax_errors_name_line_column_and_what_was_expected() {
    let cases = [
        ("type a_t;\ntype b-t;", "2:7: unexpected character '-'"),
        ("type a_t\ntype b_t;", "2:1: expected ';', found keyword 'type'"),
        (
            "allo a_t a_t : event send;",
            "1:1: expected a statement (type, attribute, typeattribute, allow or neverallow), found 'allo'",
        ),
        (
            "type a_t;\n;",
            "2:1: expected a statement (type, attribute, typeattribute, allow or neverallow), found ';'",
        ),
        ("type allow;", "1:6: expected a type name, found keyword 'allow'"),
        ("type a_t,;", "1:10: expected an attribute name, found ';'"),
        ("attribute self;", "1:11: expected an attribute name, found keyword 'self'"),
        ("typeattribute a_t;", "1:18: expected an attribute name, found ';'"),
        (
            "type a_t;\nallow a_t { a_t",
            "2:16: expected a target type, attribute or 'self' or '}', found end of input",
        ),
        (
            "type a_t;\nallow a_t { a_t\n",
            "3:1: expected a target type, attribute or 'self' or '}', found end of input",
        ),
        (
            "type a_t; allow { } a_t : event send;",
            "1:19: expected a source type or attribute, found '}'",
        ),
        (
            "type a_t; allow a_t a_t event send;",
            "1:25: expected ':' before the class, found 'event'",
        ),
        ("type a_t; allow a_t a_t : ;", "1:27: expected a class name, found ';'"),
        (
            "type a_t; allow a_t a_t : event ;",
            "1:33: expected a permission, '{' or '*', found ';'",
        ),
        ("type a_t; allow a_t a_t : event send", "1:37: expected ';', found end of input"),
        (
            "type a_t; allow a_t a_t : event send send2;",
            "1:38: expected ';', found 'send2'",
        ),
        (
            "type a_t;\n  allow a_t a_t : *;",
            "2:19: '*' for every class is only allowed in neverallow; name the class",
        ),
        ("type a_t; # fine\n\ttype b_t: # not fine", "2:10: expected ';', found ':'"),
        ("type a_t; type b_t; type c_t;\u{e9}", "1:30: unexpected character '\u{e9}'"),
    ];
    for (text, expected) in cases {
        assert_eq!(error_of(text), expected, "{text:?}");
    }
}

#[test]
fn declaration_errors() {
    let long = "t".repeat(33);
    let cases = [
        ("type 9lives;".to_string(), "1:6: '9lives' is not a valid name (a letter, then letters, digits or '_'; at most 32 bytes)".to_string()),
        (format!("type {long};"), format!("1:6: '{long}' is not a valid name (a letter, then letters, digits or '_'; at most 32 bytes)")),
        ("type _t;".to_string(), "1:6: '_t' is not a valid name (a letter, then letters, digits or '_'; at most 32 bytes)".to_string()),
        ("type a_t;\ntype a_t;".to_string(), "2:6: 'a_t' is already declared on line 1".to_string()),
        ("attribute a;\n\ntype a;".to_string(), "3:6: 'a' is already declared on line 1".to_string()),
        ("attribute a;\nattribute a;".to_string(), "2:11: 'a' is already declared on line 1".to_string()),
        ("type a_t, nope;".to_string(), "1:11: unknown attribute 'nope'".to_string()),
        ("type a_t;\ntype b_t, a_t;".to_string(), "2:11: 'a_t' is a type, expected an attribute".to_string()),
        ("type a_t;\nattribute x;\ntypeattribute nope x;".to_string(), "3:15: unknown type 'nope'".to_string()),
        ("type a_t;\nattribute x;\nattribute y;\ntypeattribute x y;".to_string(), "4:15: 'x' is an attribute, expected a type".to_string()),
        ("type a_t; attribute x; typeattribute a_t x, a_t;".to_string(), "1:45: 'a_t' is a type, expected an attribute".to_string()),
        ("".to_string(), "1:1: a policy declares at least one type".to_string()),
        ("# nothing\nattribute x;\n".to_string(), "3:1: a policy declares at least one type".to_string()),
    ];
    for (text, expected) in cases {
        assert_eq!(error_of(&text), expected, "{text:?}");
    }
}

#[test]
fn rule_errors() {
    let cases = [
        ("type a_t;\nallow a_t b_t : event send;", "2:11: unknown type or attribute 'b_t'"),
        ("type a_t;\nallow { a_t self } a_t : event send;", "2:13: 'self' may only be a target"),
        (
            "type a_t;\nallow a_t a_t : file read;",
            "2:17: unknown class 'file' (expected one of domain, event, grant, resource, security)",
        ),
        (
            "type a_t;\nallow a_t a_t : event { send map_read };",
            "2:30: unknown permission 'map_read' for class event (expected one of bind send status create reset)",
        ),
        (
            "type a_t;\nallow a_t a_t : { event grant } send;",
            "2:33: unknown permission 'send' for class grant (expected one of map_read map_write unmap transfer setup copy query map_reserved)",
        ),
        (
            "type a_t;\nneverallow a_t a_t : grant bind;",
            "2:28: unknown permission 'bind' for class grant (expected one of map_read map_write unmap transfer setup copy query map_reserved)",
        ),
        ("type a_t;\nneverallow a_t nope : *;", "2:16: unknown type or attribute 'nope'"),
    ];
    for (text, expected) in cases {
        assert_eq!(error_of(text), expected, "{text:?}");
    }
}

#[test]
fn an_allow_that_a_neverallow_forbids_names_both_lines() {
    let text = "\
type a_t;
type b_t;
allow a_t b_t : event send;
allow a_t b_t : grant { map_read unmap copy };
  neverallow a_t b_t : grant { copy map_read };
";
    assert_eq!(
        error_of(text),
        "4:1: this allow grants a_t b_t : grant { map_read copy }, which the neverallow on line 5 forbids"
    );
    // `*` forbids every class; the earliest offending allow is reported.
    let text = "type a_t; type b_t;\nallow a_t b_t : grant query;\nallow a_t b_t : event send;\nneverallow a_t b_t : *;";
    assert_eq!(
        error_of(text),
        "2:1: this allow grants a_t b_t : grant query, which the neverallow on line 4 forbids"
    );
    // Through attributes and self.
    let text = "attribute g; type a_t, g; type b_t, g;\nallow g self : grant map_read;\nneverallow b_t b_t : grant *;";
    assert_eq!(
        error_of(text),
        "2:1: this allow grants b_t b_t : grant map_read, which the neverallow on line 3 forbids"
    );
    // A neverallow before the allow it forbids: order does not matter.
    let text =
        "type a_t;\nneverallow a_t self : domain pause;\nallow a_t a_t : domain { pause unpause };";
    assert_eq!(
        error_of(text),
        "3:1: this allow grants a_t a_t : domain pause, which the neverallow on line 2 forbids"
    );
}

/// A neverallow over an attribute of every type stands for millions of
/// (source, target, class) triples; the compiler used to keep each one's
/// expansion until the end (~60 MB per line, 1.2 GB and 6 s for 20 lines).
/// Now each is checked against the allows on its own, without multiplying
/// it out, so thirty of them take moments.
#[test]
fn broad_neverallows_are_checked_without_multiplying_them_out() {
    let mut text = String::from("attribute all_t;\n");
    for index in 0..xen_abi::policy::MAX_TYPES {
        text.push_str(&format!("type t{index}, all_t;\n"));
    }
    for _ in 0..30 {
        text.push_str("neverallow all_t all_t : *;\n");
    }
    text.push_str("allow t1 t2 : domain pause;\n");
    // The work is bounded by the table, not by what the rules multiply out to
    // (30 neverallows of 1024 x 1024 types x every class: 150 million triples,
    // kept as gigabytes before); counted, not timed.
    let steps = || super::resolve::NEVERALLOW_STEPS.with(core::cell::Cell::get);
    let before = steps();
    let error = error_of(&text);
    assert_eq!(
        error,
        "1056:1: this allow grants t1 t2 : domain pause, which the neverallow on line 1026 forbids"
    );
    let bound = 30 * xen_abi::policy::MAX_RULES as usize;
    assert!(steps() - before <= bound, "{} steps", steps() - before);
    // The same with allows that fill the table: 256 types, every pair.
    let mut text = String::from("attribute all_t;\n");
    for index in 0..256 {
        text.push_str(&format!("type t{index}, all_t;\n"));
    }
    text.push_str("allow all_t all_t : domain pause;\n");
    for _ in 0..30 {
        text.push_str("neverallow t3 all_t : event *;\nneverallow all_t self : grant *;\n");
    }
    text.push_str("neverallow all_t t7 : domain unpause;\nneverallow all_t all_t : *;\n");
    let before = steps();
    let error = error_of(&text);
    assert_eq!(
        error,
        "258:1: this allow grants t0 t0 : domain pause, which the neverallow on line 320 forbids"
    );
    assert!(steps() - before <= 62 * bound / 30, "{} steps", steps() - before);
}

#[test]
fn a_neverallow_that_nothing_violates_is_fine() {
    let text = "type a_t; type b_t;\nallow a_t b_t : grant { map_read unmap };\nneverallow a_t b_t : grant { copy map_write };\nneverallow b_t a_t : *;";
    let policy = analyze(text).unwrap();
    assert_eq!(
        policy.allowed("a_t", "b_t", Class::Grant),
        grant::MAP_READ | grant::UNMAP
    );
}

#[test]
fn attributes_expand_in_any_declaration_order() {
    let text = "\
allow guest driver_t : event { bind send };
allow driver_t guest : grant { map_read };
allow driver_t guest : grant unmap;   # unions with the line above
type driver_t;
type banking_t, guest;
type untrusted_t;
typeattribute untrusted_t guest, other;
attribute guest;
attribute empty;
attribute other;
allow empty driver_t : domain *;
";
    let policy = analyze(text).unwrap();
    assert_eq!(policy.types, ["banking_t", "driver_t", "untrusted_t"]);
    for guest in ["banking_t", "untrusted_t"] {
        assert_eq!(
            policy.allowed(guest, "driver_t", Class::Event),
            event::BIND | event::SEND
        );
        assert_eq!(
            policy.allowed("driver_t", guest, Class::Grant),
            grant::MAP_READ | grant::UNMAP
        );
        assert_eq!(policy.allowed(guest, "driver_t", Class::Domain), 0);
    }
    assert_eq!(policy.allowed("banking_t", "untrusted_t", Class::Event), 0);
    assert_eq!(policy.rules.len(), 4);
    assert_eq!(policy.attributes["guest"], [0, 2]);
    assert!(policy.attributes["empty"].is_empty());
    assert_eq!(policy.attributes["other"], [2]);
    assert_eq!(policy.type_id("driver_t"), Some(1));
    assert_eq!(policy.allowed("nobody_t", "driver_t", Class::Event), 0);
}

#[test]
fn self_means_each_source_on_itself() {
    let text = "attribute g; type a_t, g; type b_t, g; type c_t;\nallow g self : event send;\nallow c_t { self a_t } : grant *;";
    let policy = analyze(text).unwrap();
    assert_eq!(policy.allowed("a_t", "a_t", Class::Event), event::SEND);
    assert_eq!(policy.allowed("b_t", "b_t", Class::Event), event::SEND);
    assert_eq!(policy.allowed("a_t", "b_t", Class::Event), 0);
    assert_eq!(
        policy.allowed("c_t", "c_t", Class::Grant),
        Class::Grant.valid_permissions()
    );
    assert_eq!(
        policy.allowed("c_t", "a_t", Class::Grant),
        Class::Grant.valid_permissions()
    );
    assert_eq!(policy.allowed("c_t", "b_t", Class::Grant), 0);
    assert_eq!(policy.rules.len(), 4);
}

#[test]
fn class_sets_apply_the_permissions_to_each_class() {
    let text =
        "type a_t;\nallow a_t a_t : { domain grant } *;\nallow a_t a_t : { event security } { };";
    assert_eq!(
        error_of(text),
        "3:38: expected a permission, '{' or '*', found '}'"
    );
    let text = "type a_t;\nallow a_t a_t : { domain grant } *;";
    let policy = analyze(text).unwrap();
    assert_eq!(
        policy.allowed("a_t", "a_t", Class::Domain),
        Class::Domain.valid_permissions()
    );
    assert_eq!(
        policy.allowed("a_t", "a_t", Class::Grant),
        Class::Grant.valid_permissions()
    );
    assert_eq!(policy.allowed("a_t", "a_t", Class::Event), 0);
}

#[test]
fn limits_are_errors_with_positions() {
    let mut text = String::new();
    for index in 0..=xen_abi::policy::MAX_TYPES {
        text.push_str(&format!("type t{index};\n"));
    }
    assert_eq!(
        error_of(&text),
        format!(
            "{}:6: too many types (at most 1024)",
            xen_abi::policy::MAX_TYPES + 1
        )
    );
    let mut text = String::from("attribute all;\n");
    for index in 0..300 {
        text.push_str(&format!("type t{index}, all;\n"));
    }
    text.push_str("allow all all : domain create;\n");
    assert_eq!(
        error_of(&text),
        "302:1: the rules expand to more than 65536 (source, target, class) entries"
    );
}

#[test]
fn the_same_policy_compiles_to_the_same_bytes() {
    let text = std::fs::read_to_string(default_machine::PATH).unwrap();
    let first = compile(&text).unwrap();
    assert_eq!(compile(&text).unwrap(), first);
    // Declaration and rule order, comments and layout do not matter either.
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .collect();
    lines.reverse();
    assert_eq!(compile(&lines.join("\n    ")).unwrap(), first);
}

#[test]
fn compiled_policies_load_in_the_hypervisor_and_agree() {
    let text = "attribute g; type a_t, g; type b_t, g; type c_t;\nallow g c_t : event { bind send };\nallow c_t g : domain { pause unpause };\nallow a_t self : grant setup;";
    let policy = analyze(text).unwrap();
    let bytes = compile(text).unwrap();
    let loaded = xen_core::policy::Policy::parse(&bytes).unwrap();
    assert_eq!(usize::from(loaded.type_count()), policy.types.len());
    assert_eq!(loaded.rule_count() as usize, policy.rules.len());
    for source in &policy.types {
        for target in &policy.types {
            let (source_id, target_id) = (
                loaded.type_id(source).unwrap(),
                loaded.type_id(target).unwrap(),
            );
            for class in Class::ALL {
                assert_eq!(
                    loaded.allowed(source_id, target_id, class),
                    policy.allowed(source, target, class)
                );
            }
        }
    }
    let (a, c) = (
        loaded.type_id("system_u:system_r:a_t").unwrap(),
        loaded.type_id("c_t").unwrap(),
    );
    assert!(loaded.check(a, c, Class::Event, event::SEND));
    assert!(loaded.check(c, a, Class::Domain, domain::PAUSE | domain::UNPAUSE));
    assert!(!loaded.check(c, a, Class::Domain, domain::DESTROY));
}

#[test]
fn file_errors_name_the_file() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("broken.te");
    std::fs::write(&path, "type a_t;\nallow a_t a_t : event sned;\n").unwrap();
    let error = compile_file(&path).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}:2:23: unknown permission 'sned' for class event (expected one of bind send status create reset)",
            path.display()
        )
    );
    let missing = directory.path().join("missing.te");
    let error = compile_file(&missing).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{error}"
    );
    assert!(error.io.is_some() && error.error.is_none());
    std::fs::write(&path, "type a_t;").unwrap();
    assert_eq!(compile_file(&path).unwrap(), compile("type a_t;").unwrap());
    // An endless file is refused at the limit, not read until memory runs out.
    #[cfg(target_os = "linux")]
    assert_eq!(
        compile_file(Path::new("/dev/zero")).unwrap_err().to_string(),
        "/dev/zero: goes on past the end its metadata gives, more than the limit of 16777216 bytes"
    );
}
