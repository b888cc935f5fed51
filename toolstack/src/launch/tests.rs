//! Tests of the launch-directory reader: ordering, policy files, errors.

use super::*;
use crate::test_support::{config_text, four_domains, launch_directory, write};

#[test]
fn configs_are_read_in_file_name_order() {
    let directory = launch_directory(
        &[
            ("20-b.cfg", config_text("b", "")),
            ("03-c.cfg", config_text("c", "")),
            ("10-a.cfg", config_text("a", "")),
        ],
        &[],
    );
    write(directory.path(), "README", "not a config");
    write(directory.path(), "notes.cfg.orig", "not a config either");
    std::fs::create_dir(directory.path().join("sub.cfg")).unwrap();
    let launch = load(directory.path()).unwrap();
    let names: Vec<_> = launch
        .domains
        .iter()
        .map(|domain| domain.name.as_str())
        .collect();
    assert_eq!(names, ["c", "a", "b"]);
    assert_eq!(launch.policy, None);
    assert_eq!(launch.directory, directory.path());
    assert_eq!(launch.domains[1].kernel, directory.path().join("a.elf"));
}

#[test]
fn a_policy_file_is_passed_through() {
    for file_name in POLICY_FILE_NAMES {
        let directory = four_domains();
        write(directory.path(), file_name, b"\x00compiled\xff");
        let launch = load(directory.path()).unwrap();
        let policy = launch.policy.unwrap();
        assert_eq!(policy.bytes, b"\x00compiled\xff");
        assert_eq!(policy.path, directory.path().join(file_name));
        assert_eq!(launch.domains.len(), 4);
    }
}

#[test]
fn two_policy_files_are_an_error() {
    let directory = four_domains();
    write(directory.path(), "policy", b"a");
    write(directory.path(), "policy.bin", b"b");
    let error = load(directory.path()).unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with(": both policy.bin and policy exist: keep one"),
        "{error}"
    );
}

#[test]
fn an_empty_directory_is_an_error() {
    let directory = launch_directory(&[], &[]);
    let error = load(directory.path()).unwrap_err();
    assert!(error.to_string().contains("no *.cfg files"), "{error}");
}

#[test]
fn a_missing_directory_is_an_error() {
    let error = load(Path::new("/nonexistent/launch")).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error}");
    assert!(
        error.to_string().starts_with("/nonexistent/launch: "),
        "{error}"
    );
}

#[test]
fn a_bad_config_names_its_file_line_and_column() {
    let directory = launch_directory(
        &[
            ("00-a.cfg", config_text("a", "")),
            ("10-b.cfg", "name = 'b'\nbogus = 1\n".to_string()),
        ],
        &[],
    );
    let error = load(directory.path()).unwrap_err();
    let expected = format!(
        "{}:2:1: unknown key 'bogus'",
        directory.path().join("10-b.cfg").display()
    );
    assert_eq!(error.to_string(), expected);
}
