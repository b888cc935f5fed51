//! Runs the `xl` binary: its output, its messages and its exit codes.

use std::path::Path;
use std::process::{Command, Output};

fn xl(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xl"))
        .args(arguments)
        .output()
        .expect("xl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_domain(directory: &Path, file_name: &str, name: &str, extra_lines: &str) {
    let config = format!("name = \"{name}\"\nkernel = \"{name}.elf\"\nmemory = 32\nseclabel = \"{name}_t\"\n{extra_lines}");
    std::fs::write(directory.join(file_name), config).expect("config written");
    std::fs::write(directory.join(format!("{name}.elf")), name.repeat(50)).expect("kernel written");
}

#[test]
fn help_lists_the_commands() {
    let output = xl(&["--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    assert!(
        help.contains("bundle") && help.contains("check-config"),
        "{help}"
    );
    assert!(text(&xl(&["bundle", "--help"]).stdout).contains("file-name order"));
}

#[test]
fn usage_errors_exit_1_with_the_prefix() {
    for arguments in [&[][..], &["frobnicate"], &["bundle"]] {
        let output = xl(arguments);
        assert_eq!(output.status.code(), Some(1), "{arguments:?}");
        assert!(
            text(&output.stderr).starts_with("xl: "),
            "{}",
            text(&output.stderr)
        );
    }
}

#[test]
fn bundle_writes_a_bundle_and_lists_the_domains() {
    let directory = tempfile::tempdir().unwrap();
    write_domain(
        directory.path(),
        "00-control.cfg",
        "control",
        "control_domain = 1\n",
    );
    write_domain(
        directory.path(),
        "10-guest.cfg",
        "guest",
        "extra = 'quiet'\n",
    );
    let output_path = directory.path().join("out.bin");
    let output = xl(&[
        "bundle",
        directory.path().to_str().unwrap(),
        "-o",
        output_path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("control")
            && lines[0].contains("32 MiB")
            && lines[0].contains("control.elf")
    );
    assert!(lines[1].starts_with("guest") && lines[1].contains("sha256:"));
    assert!(lines[2].starts_with("wrote ") && lines[2].contains("2 domains, no policy"));
    let bytes = std::fs::read(&output_path).unwrap();
    let bundle = xen_core::bundle::parse(&bytes).unwrap();
    let digest = xen_core::bundle::verify_kernel(&bundle.domain(1).unwrap()).unwrap();
    assert!(lines[1].ends_with(&format!("sha256:{}", xen_core::bundle::hex(&digest))));
}

#[test]
fn bundle_errors_exit_1() {
    let directory = tempfile::tempdir().unwrap();
    write_domain(directory.path(), "00-a.cfg", "a", "control_domain = 1\n");
    write_domain(directory.path(), "01-b.cfg", "b", "control_domain = 1\n");
    let output = xl(&[
        "bundle",
        directory.path().to_str().unwrap(),
        "-o",
        "/nonexistent/out.bin",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("xl: ") && stderr.contains("two control domains"),
        "{stderr}"
    );
}

#[test]
fn check_config_prints_configs_and_errors() {
    let directory = tempfile::tempdir().unwrap();
    write_domain(directory.path(), "good.cfg", "good", "");
    std::fs::write(
        directory.path().join("bad.cfg"),
        "name = 'x'\nmemory = 'lots'\n",
    )
    .unwrap();
    let good = directory.path().join("good.cfg");
    let output = xl(&["check-config", good.to_str().unwrap()]);
    assert!(output.status.success());
    assert!(
        text(&output.stdout).contains("name = \"good\"\ntype = \"pv\""),
        "{}",
        text(&output.stdout)
    );

    let bad = directory.path().join("bad.cfg");
    let output = xl(&[
        "check-config",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let expected = format!(
        "xl: {}:2:10: expected an integer for 'memory', found a string",
        bad.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(stderr.contains("xl: 1 of 2 configuration files have errors"));
}
