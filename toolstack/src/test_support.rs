//! Builds launch directories in temporary folders for the tests.

use std::path::Path;

/// A domain's configuration text: `name`, its `kernel` file and the rest.
pub(crate) fn config_text(name: &str, extra_lines: &str) -> String {
    format!("name = \"{name}\"\nkernel = \"{name}.elf\"\nmemory = 16\nseclabel = \"{name}_t\"\n{extra_lines}")
}

/// Writes `file_name` with `contents` into `directory`.
pub(crate) fn write(directory: &Path, file_name: &str, contents: impl AsRef<[u8]>) {
    std::fs::write(directory.join(file_name), contents).unwrap();
}

/// A launch directory with the given configuration files, and a kernel
/// `NAME.elf` (`NAME` repeated) for each of `kernel_names`.
pub(crate) fn launch_directory(
    configs: &[(&str, String)],
    kernel_names: &[&str],
) -> tempfile::TempDir {
    let directory = tempfile::tempdir().unwrap();
    for (file_name, text) in configs {
        write(directory.path(), file_name, text);
    }
    for name in kernel_names {
        write(directory.path(), &format!("{name}.elf"), name.repeat(100));
    }
    directory
}

/// The default machine's four domains.
pub(crate) fn four_domains() -> tempfile::TempDir {
    launch_directory(
        &[
            (
                "00-control.cfg",
                config_text("control", "control_domain = 1\nextra = \"agent\"\n"),
            ),
            (
                "10-driver.cfg",
                config_text("driver", "driver_domain = 1\n"),
            ),
            (
                "20-banking.cfg",
                config_text("banking", "extra = 'disk=xvda'\n"),
            ),
            ("30-untrusted.cfg", config_text("untrusted", "")),
        ],
        &["control", "driver", "banking", "untrusted"],
    )
}
