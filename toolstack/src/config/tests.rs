//! Tests of the xl.cfg parser: good files, the syntax, and every error with
//! its line and column.

use super::*;

fn parse_text(text: &str) -> Result<DomainConfig, ConfigError> {
    parse(text, Path::new("/launch/10-guest.cfg"))
}

/// The error's `line:column: message`.
fn error_of(text: &str) -> String {
    let error = parse_text(text).unwrap_err();
    assert_eq!(error.path, Path::new("/launch/10-guest.cfg"));
    let position = error
        .position
        .map_or(String::new(), |position| format!("{position}: "));
    format!("{position}{}", error.message)
}

const MINIMAL: &str = "name = \"guest\"\nkernel = \"guest.elf\"\nmemory = 64\n";

#[test]
fn a_full_file_parses() {
    let text = r#"
# The banking domain.
name = "banking"          # trailing comment
type = "pv"
kernel = 'kernels/banking.elf';
memory = 128
vcpus = 1
seclabel = "system_u:system_r:banking_t"
extra = "console=hvc0 loglevel=3"
control_domain = 0
driver_domain = 1
"#;
    let config = parse_text(text).unwrap();
    assert_eq!(config.name, "banking");
    assert_eq!(config.kernel, Path::new("/launch/kernels/banking.elf"));
    assert_eq!(config.memory_mib, 128);
    assert_eq!(
        config.seclabel.as_deref(),
        Some("system_u:system_r:banking_t")
    );
    assert_eq!(config.command_line, "console=hvc0 loglevel=3");
    assert_eq!(config.vcpus, 1);
    assert!(!config.control_domain && config.driver_domain);
    assert_eq!(config.source, Path::new("/launch/10-guest.cfg"));
}

#[test]
fn defaults_and_synonyms() {
    let config = parse_text(MINIMAL).unwrap();
    assert_eq!(
        (config.seclabel, config.command_line.as_str(), config.vcpus),
        (None, "", 1)
    );
    assert!(!config.control_domain && !config.driver_domain);
    let config = parse_text(&format!("{MINIMAL}cmdline = 'quiet'\ncontrol_domain = 1")).unwrap();
    assert_eq!(config.command_line, "quiet");
    assert!(config.control_domain);
}

#[test]
fn absolute_kernel_paths_stay_absolute() {
    let config = parse_text("name='a'\nkernel='/boot/a.elf'\nmemory=0x10").unwrap();
    assert_eq!(
        (config.kernel.as_path(), config.memory_mib),
        (Path::new("/boot/a.elf"), 16)
    );
}

#[test]
fn display_is_valid_xl_cfg_that_parses_back() {
    let text =
        format!("{MINIMAL}seclabel='a_t'\nextra = \"say \\\"hi\\\"\\tnow\"\ndriver_domain=1\n");
    let config = parse_text(&text).unwrap();
    let printed = config.to_string();
    assert!(
        printed.contains("kernel = \"/launch/guest.elf\""),
        "{printed}"
    );
    assert_eq!(parse_text(&printed).unwrap(), config);
}

#[test]
fn syntax_accepts_lists_semicolons_and_escapes() {
    let settings = syntax::parse(
        "disk = [ 'phy:/dev/a,xvda,w',\n  \"b\", # comment\n 7, ]\na = 1; b = 'x'\n\n\r\nc = \"\\\\ \\n\"",
    )
    .unwrap();
    let keys: Vec<_> = settings
        .iter()
        .map(|setting| setting.key.as_str())
        .collect();
    assert_eq!(keys, ["disk", "a", "b", "c"]);
    let ValueKind::List(items) = &settings[0].value.kind else {
        panic!("a list")
    };
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0].kind,
        ValueKind::String("phy:/dev/a,xvda,w".to_string())
    );
    assert_eq!(items[2].kind, ValueKind::Integer(7));
    assert_eq!(items[2].position, Position { line: 3, column: 2 });
    assert_eq!(settings[1].position, Position { line: 4, column: 1 });
    assert_eq!(settings[2].position, Position { line: 4, column: 8 });
    assert_eq!(
        settings[3].value.kind,
        ValueKind::String("\\ \n".to_string())
    );
    assert_eq!(
        syntax::parse("empty = []").unwrap()[0].value.kind,
        ValueKind::List(vec![])
    );
    // Single quotes take backslashes literally.
    assert_eq!(
        syntax::parse(r"a = 'c:\x'").unwrap()[0].value.kind,
        ValueKind::String(r"c:\x".to_string())
    );
}

#[test]
fn syntax_errors_name_line_and_column() {
    let cases = [
        (
            "name \"x\"",
            "1:6: expected '=' after key 'name', found '\"'",
        ),
        (
            "\n  = 3",
            "2:3: expected a key (a name like 'memory'), found '='",
        ),
        (
            "memory = ",
            "1:10: expected a value (a quoted string, an integer or a list), found end of file",
        ),
        (
            "memory =\n64",
            "1:9: expected a value (a quoted string, an integer or a list), found end of line",
        ),
        (
            "name = \"guest",
            "1:8: unterminated string: expected a closing \" on the same line",
        ),
        (
            "name = 'a\nb'",
            "1:8: unterminated string: expected a closing ' on the same line",
        ),
        (
            "memory = 64 128",
            "1:13: expected end of line or ';' after the value of 'memory', found '1'",
        ),
        (
            "memory = 12ab",
            "1:10: expected an integer (decimal or 0x hex), found '12ab'",
        ),
        (
            "memory = 99999999999999999999",
            "1:10: integer '99999999999999999999' is too large",
        ),
        (
            "memory = -1",
            "1:10: expected a value (a quoted string, an integer or a list), found '-'",
        ),
        (
            "name = \"a\\qb\"",
            "1:11: unknown escape '\\q': expected \\\\, \\\", \\', \\n or \\t",
        ),
        (
            "disk = [ 'a' 'b' ]",
            "1:14: expected ',' or ']' in list, found '''",
        ),
        (
            "disk = [ 'a',\n",
            "2:1: expected a string or an integer, found end of file",
        ),
        (
            "disk = [ ['a'] ]",
            "1:10: expected a string or an integer; lists cannot be nested",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error_of(text), expected, "for {text:?}");
    }
}

#[test]
fn meaning_errors_name_line_and_column() {
    let cases = [
        ("foo = 1", "1:1: unknown key 'foo'"),
        (
            "name = 'a'\nname = 'b'",
            "2:1: duplicate key 'name' (first set at line 1)",
        ),
        (
            "extra = 'a'\n cmdline = 'b'",
            "2:2: duplicate key 'cmdline' (a synonym of 'extra', set at line 1)",
        ),
        (
            "name = 5",
            "1:8: expected a quoted string for 'name', found an integer",
        ),
        (
            "name = 'bad name'",
            "1:8: domain name 'bad name' has ' ': expected letters, digits, '_', '.' or '-'",
        ),
        ("name = ''", "1:8: domain name is empty"),
        (
            "memory = '64'",
            "1:10: expected an integer for 'memory', found a string",
        ),
        (
            "memory = [64]",
            "1:10: expected an integer for 'memory', found a list",
        ),
        ("memory = 0", "1:10: 'memory' is 0: expected MiB of RAM"),
        (
            "kernel = ''",
            "1:10: 'kernel' is empty: expected a file path",
        ),
        (
            "vcpus = 2",
            "1:9: vcpus = 2 is not supported: expected 1 (one vCPU per domain for now)",
        ),
        (
            "type = 'hvm'",
            "1:8: type \"hvm\" is not supported: expected \"pv\"",
        ),
        (
            "control_domain = 2",
            "1:18: expected 0 or 1 for 'control_domain', found 2",
        ),
        (
            "driver_domain = 'yes'",
            "1:17: expected an integer for 'driver_domain', found a string",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(error_of(text), expected, "for {text:?}");
    }
}

#[test]
fn required_keys_are_required() {
    assert_eq!(
        error_of("kernel = 'k'\nmemory = 1"),
        "missing required key 'name'"
    );
    assert_eq!(
        error_of("name = 'a'\nmemory = 1"),
        "missing required key 'kernel'"
    );
    assert_eq!(
        error_of("name = 'a'\nkernel = 'k'"),
        "missing required key 'memory'"
    );
    assert_eq!(error_of("# nothing\n"), "missing required key 'name'");
}

#[test]
fn errors_display_as_file_line_column() {
    let error = parse_text("foo = 1").unwrap_err();
    assert_eq!(
        error.to_string(),
        "/launch/10-guest.cfg:1:1: unknown key 'foo'"
    );
    let error = parse_text("").unwrap_err();
    assert_eq!(
        error.to_string(),
        "/launch/10-guest.cfg: missing required key 'name'"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_eq!(
        error_of("extra = 'é' x"),
        "1:13: expected end of line or ';' after the value of 'extra', found 'x'"
    );
}

#[test]
fn load_reports_unreadable_files() {
    let error = load(Path::new("/nonexistent/x.cfg")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/x.cfg: cannot read: "),
        "{error}"
    );
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        let _ = parse_text(&text);
    }

    #[test]
    fn config_like_text_never_panics(text in "([a-z_]{1,8} ?= ?([0-9x]{1,4}|'[^'\n]{0,6}'|\"[^\"\n]{0,6}\"|\\[[ ,'a0-9\n]{0,8}\\]) ?[;#]?\n?){0,6}") {
        let _ = parse_text(&text);
    }
}
