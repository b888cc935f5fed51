//! The toolstack's error: what went wrong, naming the file or the domain.

use std::fmt;
use std::path::PathBuf;

use crate::config::ConfigError;

/// Why a launch description could not be read or turned into a bundle.
#[derive(Debug)]
pub enum Error {
    /// A configuration file is malformed.
    Config(ConfigError),
    /// A file or directory could not be read.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The launch description as a whole is wrong (no domains, two policy
    /// files, ...).
    Launch {
        /// The launch directory.
        directory: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// One domain breaks a bundle limit.
    Domain {
        /// The domain's name.
        name: String,
        /// The configuration file it came from.
        source: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The bundle as a whole breaks a limit.
    Bundle {
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(error) => error.fmt(formatter),
            Self::Io { path, source } => write!(formatter, "{}: {source}", path.display()),
            Self::Launch { directory, message } => {
                write!(formatter, "{}: {message}", directory.display())
            }
            Self::Domain {
                name,
                source,
                message,
            } => {
                write!(
                    formatter,
                    "{}: domain '{name}': {message}",
                    source.display()
                )
            }
            Self::Bundle { message } => write!(formatter, "bundle: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(error) => Some(error),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}
