//! A launch description: a directory of `*.cfg` files, one per boot-time
//! domain, built in file-name order (so name them `00-control.cfg`,
//! `10-driver.cfg`, ...), plus an optional policy: text in `policy.te`
//! (compiled here, see [`crate::policy`]) or already compiled in
//! `policy.bin` or `policy` (passed through as bytes).

use std::path::{Path, PathBuf};

use crate::config::{self, DomainConfig};
use crate::Error;

/// The file names a compiled policy may have.
pub const POLICY_FILE_NAMES: [&str; 2] = ["policy.bin", "policy"];
/// The file name of policy text, compiled when the launch is read.
pub const POLICY_SOURCE_FILE_NAME: &str = "policy.te";

/// A compiled policy and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The file.
    pub path: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Everything the boot bundle is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    /// The launch directory.
    pub directory: PathBuf,
    /// The domains, in build order.
    pub domains: Vec<DomainConfig>,
    /// The compiled policy, if there is one.
    pub policy: Option<Policy>,
}

/// Reads the launch description in `directory`.
pub fn load(directory: &Path) -> Result<Launch, Error> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut config_paths = Vec::new();
    let mut policy_paths = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(io_error(directory))? {
        let entry = entry.map_err(io_error(directory))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let file_name = entry.file_name();
        if path.extension().is_some_and(|extension| extension == "cfg") {
            config_paths.push(path);
        } else if POLICY_FILE_NAMES.iter().any(|name| file_name == *name)
            || file_name == POLICY_SOURCE_FILE_NAME
        {
            policy_paths.push(path);
        }
    }
    config_paths.sort_by(|first, second| first.file_name().cmp(&second.file_name()));
    if config_paths.is_empty() {
        return Err(Error::Launch {
            directory: directory.to_path_buf(),
            message: "no *.cfg files: a launch description needs one per domain".to_string(),
        });
    }
    let domains = config_paths
        .iter()
        .map(|path| config::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let policy = match policy_paths.as_slice() {
        [] => None,
        [path]
            if path
                .file_name()
                .is_some_and(|name| name == POLICY_SOURCE_FILE_NAME) =>
        {
            Some(Policy {
                path: path.clone(),
                bytes: crate::policy::compile_file(path).map_err(|error| Error::Launch {
                    directory: directory.to_path_buf(),
                    message: error.to_string(),
                })?,
            })
        }
        [path] => Some(Policy {
            path: path.clone(),
            // Bounded by the bundle's size; the bundle writer checks the policy's own limit.
            bytes: crate::read_limited(path, xen_abi::bundle::MAX_TOTAL_BYTES)
                .map_err(io_error(path))?,
        }),
        _ => {
            let mut names: Vec<String> = policy_paths
                .iter()
                .filter_map(|path| path.file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .collect();
            names.sort_by(|first, second| second.cmp(first));
            let (last, others) = names
                .split_last()
                .map_or(("", &[][..]), |(last, others)| (last.as_str(), others));
            let both = if others.len() == 1 { "both " } else { "" };
            return Err(Error::Launch {
                directory: directory.to_path_buf(),
                message: format!("{both}{} and {last} exist: keep one", others.join(", ")),
            });
        }
    };
    Ok(Launch {
        directory: directory.to_path_buf(),
        domains,
        policy,
    })
}

#[cfg(test)]
mod tests;
