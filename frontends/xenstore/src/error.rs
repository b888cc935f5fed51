//! The store's errors, named as Xen's `xsd_errors` table names them: an ERROR reply
//! carries the name (`"ENOENT\0"`), never a number.

/// An error the store returns to a client, one of Xen's `xsd_errors`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsError {
    /// `EINVAL`: malformed request or path.
    Inval,
    /// `EACCES`: permission denied.
    Acces,
    /// `EEXIST`: already exists (a duplicate watch).
    Exist,
    /// `EISDIR`: is a directory.
    Isdir,
    /// `ENOENT`: no such node, transaction or watch.
    Noent,
    /// `ENOMEM`: out of memory.
    Nomem,
    /// `ENOSPC`: over the node or transaction quota.
    Nospc,
    /// `EIO`: input/output error.
    Io,
    /// `ENOTEMPTY`: directory not empty.
    Notempty,
    /// `ENOSYS`: unknown or unsupported operation.
    Nosys,
    /// `EROFS`: read-only.
    Rofs,
    /// `EBUSY`: busy (a transaction started inside a transaction).
    Busy,
    /// `EAGAIN`: a transaction conflicted; retry it.
    Again,
    /// `EISCONN`: already connected.
    Isconn,
    /// `E2BIG`: value, path or watch count too big.
    TooBig,
    /// `EPERM`: operation not permitted (only the privileged domain may do it).
    Perm,
}

impl XsError {
    /// The name Xen puts in an ERROR reply.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Inval => "EINVAL",
            Self::Acces => "EACCES",
            Self::Exist => "EEXIST",
            Self::Isdir => "EISDIR",
            Self::Noent => "ENOENT",
            Self::Nomem => "ENOMEM",
            Self::Nospc => "ENOSPC",
            Self::Io => "EIO",
            Self::Notempty => "ENOTEMPTY",
            Self::Nosys => "ENOSYS",
            Self::Rofs => "EROFS",
            Self::Busy => "EBUSY",
            Self::Again => "EAGAIN",
            Self::Isconn => "EISCONN",
            Self::TooBig => "E2BIG",
            Self::Perm => "EPERM",
        }
    }

    /// Parses a name from an ERROR reply (without its NUL).
    #[must_use]
    pub fn from_name(name: &[u8]) -> Option<Self> {
        const ALL: [XsError; 16] = [
            XsError::Inval,
            XsError::Acces,
            XsError::Exist,
            XsError::Isdir,
            XsError::Noent,
            XsError::Nomem,
            XsError::Nospc,
            XsError::Io,
            XsError::Notempty,
            XsError::Nosys,
            XsError::Rofs,
            XsError::Busy,
            XsError::Again,
            XsError::Isconn,
            XsError::TooBig,
            XsError::Perm,
        ];
        ALL.into_iter().find(|e| e.name().as_bytes() == name)
    }
}

impl core::fmt::Display for XsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}
