//! Xen's node permissions: a list whose first entry names the owner and the access
//! every domain not listed gets, then per-domain entries. Textual form is one letter
//! (`n` none, `r` read, `w` write, `b` both) and a domid: `n0`, `r3`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::error::XsError;
use crate::DomId;

/// What a domain may do with a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `n`: nothing.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: read and write.
    Both,
}

impl Access {
    /// Whether this access allows reading.
    #[must_use]
    pub const fn can_read(self) -> bool {
        matches!(self, Self::Read | Self::Both)
    }

    /// Whether this access allows writing.
    #[must_use]
    pub const fn can_write(self) -> bool {
        matches!(self, Self::Write | Self::Both)
    }

    const fn letter(self) -> char {
        match self {
            Self::None => 'n',
            Self::Read => 'r',
            Self::Write => 'w',
            Self::Both => 'b',
        }
    }
}

/// One entry of a permission list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermEntry {
    /// The domain the entry is about.
    pub domid: DomId,
    /// What it may do.
    pub access: Access,
}

impl PermEntry {
    /// Parses the textual form (`r3`), strictly: one letter, then a decimal domid
    /// without sign, leading zeros or overflow.
    ///
    /// # Errors
    ///
    /// [`XsError::Inval`] on anything else.
    pub fn parse(text: &[u8]) -> Result<Self, XsError> {
        let (&letter, digits) = text.split_first().ok_or(XsError::Inval)?;
        let access = match letter {
            b'n' => Access::None,
            b'r' => Access::Read,
            b'w' => Access::Write,
            b'b' => Access::Both,
            _ => return Err(XsError::Inval),
        };
        let domid = crate::checked::parse_u32(digits).map_err(|_| XsError::Inval)?;
        Ok(Self { domid, access })
    }
}

/// A node's permission list; never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Perms {
    entries: Vec<PermEntry>,
}

impl Perms {
    /// Owned by `owner`, `default` for everyone else.
    #[must_use]
    pub fn new(owner: DomId, default: Access) -> Self {
        Self {
            entries: alloc::vec![PermEntry {
                domid: owner,
                access: default
            }],
        }
    }

    /// From entries; the first is the owner and default.
    ///
    /// # Errors
    ///
    /// [`XsError::Inval`] if `entries` is empty.
    pub fn from_entries(entries: Vec<PermEntry>) -> Result<Self, XsError> {
        if entries.is_empty() {
            return Err(XsError::Inval);
        }
        Ok(Self { entries })
    }

    /// Adds (or replaces) the entry for `domid`.
    #[must_use]
    pub fn with(mut self, domid: DomId, access: Access) -> Self {
        if let Some(entry) = self.entries.iter_mut().skip(1).find(|e| e.domid == domid) {
            entry.access = access;
        } else {
            self.entries.push(PermEntry { domid, access });
        }
        self
    }

    /// The entries, owner first.
    #[must_use]
    pub fn entries(&self) -> &[PermEntry] {
        &self.entries
    }

    /// The owning domain.
    #[must_use]
    pub fn owner(&self) -> DomId {
        self.entries[0].domid
    }

    /// Sets the owner (keeping the default access).
    pub fn set_owner(&mut self, owner: DomId) {
        self.entries[0].domid = owner;
    }

    /// Drops the listed (non-owner) entries of `domid`; whether there were any.
    pub fn drop_entries_of(&mut self, domid: DomId) -> bool {
        let before = self.entries.len();
        let mut index = 0;
        self.entries.retain(|entry| {
            index += 1;
            index == 1 || entry.domid != domid
        });
        self.entries.len() != before
    }

    /// The access of a non-privileged `domid`: the owner may do anything, a listed
    /// domain gets its entry, everyone else the default.
    #[must_use]
    pub fn access_for(&self, domid: DomId) -> Access {
        if self.owner() == domid {
            return Access::Both;
        }
        self.entries[1..]
            .iter()
            .find(|e| e.domid == domid)
            .map_or(self.entries[0].access, |e| e.access)
    }

    /// The GET_PERMS payload: each entry's text followed by a NUL.
    #[must_use]
    pub fn to_wire(&self) -> Vec<u8> {
        let mut text = String::new();
        for entry in &self.entries {
            let _ = write!(text, "{}{}\0", entry.access.letter(), entry.domid);
        }
        text.into_bytes()
    }
}
