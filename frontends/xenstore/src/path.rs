//! Paths as xenstored accepts them: absolute (`/local/domain/3/device`) or relative to
//! the connection's home `/local/domain/<id>`; characters limited to alphanumerics and
//! `-/_@`; no `//`, no trailing `/` except the root; bounded length. The two special
//! watch paths `@introduceDomain` and `@releaseDomain` are accepted only where a watch
//! is meant.

use alloc::format;
use alloc::string::String;

use crate::error::XsError;
use crate::DomId;

/// Longest absolute path (`XENSTORE_ABS_PATH_MAX`).
pub const ABS_PATH_MAX: usize = 3072;
/// Longest relative path (`XENSTORE_REL_PATH_MAX`).
pub const REL_PATH_MAX: usize = 2048;
/// Watch path fired when a domain is introduced.
pub const INTRODUCE_DOMAIN: &str = "@introduceDomain";
/// Watch path fired when a domain is released.
pub const RELEASE_DOMAIN: &str = "@releaseDomain";

/// A path made absolute, remembering whether the client gave it relative (watch
/// events on a relative watch are reported relative again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canonical {
    /// The absolute path.
    pub path: String,
    /// Whether the client wrote it relative to its home.
    pub relative: bool,
}

/// The home of domain `domid`: `/local/domain/<domid>`.
#[must_use]
pub fn domain_path(domid: DomId) -> String {
    format!("/local/domain/{domid}")
}

fn valid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@')
}

/// Whether `path` is a valid absolute node path.
#[must_use]
pub fn is_valid_absolute(path: &str) -> bool {
    let bytes = path.as_bytes();
    if path == "/" {
        return true;
    }
    bytes.first() == Some(&b'/')
        && bytes.len() <= ABS_PATH_MAX
        && bytes.last() != Some(&b'/')
        && !path.contains("//")
        && bytes.iter().all(|&c| valid_char(c))
}

/// Makes a client's path absolute and validates it.
///
/// # Errors
///
/// [`XsError::Inval`] if the bytes are not a valid path.
pub fn canonicalize(home: DomId, raw: &[u8]) -> Result<Canonical, XsError> {
    let text = core::str::from_utf8(raw).map_err(|_| XsError::Inval)?;
    if text.is_empty() || !text.bytes().all(valid_char) {
        return Err(XsError::Inval);
    }
    let (path, relative) = if text.starts_with('/') {
        (String::from(text), false)
    } else {
        if text.len() > REL_PATH_MAX {
            return Err(XsError::Inval);
        }
        (format!("{}/{text}", domain_path(home)), true)
    };
    if !is_valid_absolute(&path) {
        return Err(XsError::Inval);
    }
    Ok(Canonical { path, relative })
}

/// Like [`canonicalize`], but also accepts the special watch paths.
///
/// # Errors
///
/// [`XsError::Inval`] if the bytes are neither a valid path nor a special path.
pub fn canonicalize_watch(home: DomId, raw: &[u8]) -> Result<Canonical, XsError> {
    if raw == INTRODUCE_DOMAIN.as_bytes() || raw == RELEASE_DOMAIN.as_bytes() {
        let path = String::from_utf8(raw.to_vec()).map_err(|_| XsError::Inval)?;
        return Ok(Canonical {
            path,
            relative: false,
        });
    }
    canonicalize(home, raw)
}

/// The parent of an absolute path (`None` for the root).
#[must_use]
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(at) => Some(&path[..at]),
        None => None,
    }
}

/// The last component of an absolute path.
#[must_use]
pub fn basename(path: &str) -> &str {
    path.rfind('/').map_or(path, |at| &path[at + 1..])
}

/// `parent` joined with child `name`.
#[must_use]
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Whether `path` is `ancestor` or lies below it.
#[must_use]
pub fn is_at_or_below(path: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return path.starts_with('/');
    }
    path == ancestor
        || (path.starts_with(ancestor) && path.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

/// `path` as a client with home `domid` that watched relatively sees it: the home
/// prefix and its `/` removed (the home itself becomes empty).
#[must_use]
pub fn relative_to_home(domid: DomId, path: &str) -> String {
    let home = domain_path(domid);
    match path.strip_prefix(home.as_str()) {
        Some("") => String::new(),
        Some(rest) if rest.starts_with('/') => String::from(&rest[1..]),
        _ => String::from(path),
    }
}
