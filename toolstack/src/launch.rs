//! A launch description: a directory of `*.cfg` files, one per boot-time
//! domain, built in file-name order (so name them `00-control.cfg`,
//! `10-driver.cfg`, ...), plus an optional compiled policy in `policy.bin`
//! or `policy` (passed through as bytes).

use std::path::{Path, PathBuf};

use crate::config::{self, DomainConfig};
use crate::Error;

/// The file names a compiled policy may have.
pub const POLICY_FILE_NAMES: [&str; 2] = ["policy.bin", "policy"];

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
        } else if POLICY_FILE_NAMES.iter().any(|name| file_name == *name) {
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
        [path] => Some(Policy {
            path: path.clone(),
            bytes: std::fs::read(path).map_err(io_error(path))?,
        }),
        _ => {
            return Err(Error::Launch {
                directory: directory.to_path_buf(),
                message: "both policy.bin and policy exist: keep one".to_string(),
            })
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
