//! The compiled security policy (XSM/FLASK style): its binary layout and the
//! numbering of classes and permissions. This is the contract between the
//! toolstack's policy compiler and the hypervisor's security server, so
//! both read the same class ids and permission bits.
//!
//! ```text
//! header       32 bytes                 at 0
//! type names   32 bytes × type_count    right after the header
//! rules        12 bytes × rule_count    right after the type names
//! ```
//! All integers little-endian; every reserved byte is zero; nothing may
//! follow the last rule. A type's id is its index in the type-name table.
//! Type names are strictly ascending (bytewise), so they are unique and a
//! label is found by binary search. Rules are strictly ascending by
//! `(source, target, class)`, so each triple appears once and a check is a
//! binary search. Attributes, `self` and `neverallow` exist only in the
//! policy text: the compiler expands them away.
//!
//! Classes and permissions follow Xen's `access_vectors` by name; the ids
//! and bit positions are ours (Xen's own numbering carries dozens of
//! permissions we have no hypercall for).

/// `"XSEPOLCY"`.
pub const MAGIC: [u8; 8] = *b"XSEPOLCY";
/// The format version this crate describes.
pub const VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_SIZE: usize = 32;
/// Bytes of one type-name slot.
pub const TYPE_NAME_SIZE: usize = 32;
/// Bytes of one rule.
pub const RULE_SIZE: usize = 12;
/// Most types in one policy.
pub const MAX_TYPES: u32 = 1024;
/// Most rules in one policy.
pub const MAX_RULES: u32 = 1 << 16;
/// Longest type (or attribute) name, in bytes.
pub const MAX_NAME_BYTES: usize = TYPE_NAME_SIZE;

/// Header field offsets.
pub mod header {
    /// `magic[8]`.
    pub const MAGIC: usize = 0;
    /// `version` u32.
    pub const VERSION: usize = 8;
    /// `class_count` u32: the classes the compiler knew (rules name only
    /// classes `1..=class_count`).
    pub const CLASS_COUNT: usize = 12;
    /// `type_count` u32: `1..=MAX_TYPES`.
    pub const TYPE_COUNT: usize = 16;
    /// `rule_count` u32: `0..=MAX_RULES`.
    pub const RULE_COUNT: usize = 20;
    /// `total_length` u32: bytes of the whole policy.
    pub const TOTAL_LENGTH: usize = 24;
    /// Reserved u32, zero.
    pub const RESERVED: usize = 28;
}

/// Rule field offsets (from the rule's start).
pub mod rule {
    /// `source` u16: the subject's type id.
    pub const SOURCE: usize = 0;
    /// `target` u16: the target's type id.
    pub const TARGET: usize = 2;
    /// `class` u16: a [`super::Class`] id.
    pub const CLASS: usize = 4;
    /// Reserved u16, zero.
    pub const RESERVED: usize = 6;
    /// `permissions` u32: the allowed permission bits, non-zero, only bits
    /// the class defines.
    pub const PERMISSIONS: usize = 8;
}

/// The user and role a label given as a bare type is printed with.
pub const DEFAULT_USER_ROLE: &str = "system_u:system_r";
/// The type the `security` class is checked against: the security server
/// itself, as in Xen's FLASK policy.
pub const SECURITY_SERVER_TYPE: &str = "security_t";

/// Whether `name` is a valid type or attribute name: 1 to
/// [`MAX_NAME_BYTES`] ASCII bytes, a letter first, then letters, digits
/// and underscores.
pub fn is_valid_name(name: &[u8]) -> bool {
    match name.split_first() {
        Some((first, rest)) => {
            name.len() <= MAX_NAME_BYTES
                && first.is_ascii_alphabetic()
                && rest
                    .iter()
                    .all(|byte| byte.is_ascii_alphanumeric() || *byte == b'_')
        }
        None => false,
    }
}

/// An object class: what kind of thing a permission is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u16)]
pub enum Class {
    /// `domain`: operations on a domain as a whole (domctl).
    Domain = 1,
    /// `event`: event channels.
    Event = 2,
    /// `grant`: grant tables.
    Grant = 3,
    /// `resource`: devices, interrupts, I/O ports and memory.
    Resource = 4,
    /// `security`: the security server itself.
    Security = 5,
}

/// How many classes this crate defines (ids `1..=CLASS_COUNT`).
pub const CLASS_COUNT: u32 = 5;

/// `domain` permissions.
pub mod domain {
    /// `XEN_DOMCTL_createdomain` (target: the new domain's label).
    pub const CREATE: u32 = 1 << 0;
    /// `XEN_DOMCTL_destroydomain`.
    pub const DESTROY: u32 = 1 << 1;
    /// `XEN_DOMCTL_pausedomain`.
    pub const PAUSE: u32 = 1 << 2;
    /// `XEN_DOMCTL_unpausedomain`.
    pub const UNPAUSE: u32 = 1 << 3;
    /// `XEN_DOMCTL_getdomaininfo`.
    pub const GET_DOMAIN_INFO: u32 = 1 << 4;
    /// `XEN_DOMCTL_max_mem`.
    pub const SET_DOMAIN_MAX_MEMORY: u32 = 1 << 5;
    /// Shutting another domain down (`SCHEDOP_remote_shutdown`).
    pub const SHUTDOWN: u32 = 1 << 6;
    /// Names by bit position.
    pub const NAMES: &[&str] = &[
        "create",
        "destroy",
        "pause",
        "unpause",
        "getdomaininfo",
        "setdomainmaxmem",
        "shutdown",
    ];
}

/// `event` permissions.
pub mod event {
    /// `bind_interdomain` to the target's port.
    pub const BIND: u32 = 1 << 0;
    /// `send` on a channel whose other end is the target.
    pub const SEND: u32 = 1 << 1;
    /// `status` of the target's port.
    pub const STATUS: u32 = 1 << 2;
    /// `alloc_unbound` offered to the target.
    pub const CREATE: u32 = 1 << 3;
    /// `reset` of the target's ports.
    pub const RESET: u32 = 1 << 4;
    /// Names by bit position.
    pub const NAMES: &[&str] = &["bind", "send", "status", "create", "reset"];
}

/// `grant` permissions.
pub mod grant {
    /// Map the target's grant for reading.
    pub const MAP_READ: u32 = 1 << 0;
    /// Map the target's grant for writing.
    pub const MAP_WRITE: u32 = 1 << 1;
    /// Unmap a mapping of the target's grant.
    pub const UNMAP: u32 = 1 << 2;
    /// Page transfer (v1 `GNTTABOP_transfer`).
    pub const TRANSFER: u32 = 1 << 3;
    /// `GNTTABOP_setup_table` on the target's table.
    pub const SETUP: u32 = 1 << 4;
    /// `GNTTABOP_copy` to or from the target's grant.
    pub const COPY: u32 = 1 << 5;
    /// `GNTTABOP_query_size` of the target's table.
    pub const QUERY: u32 = 1 << 6;
    /// Map the page behind one of the target's *reserved* grant refs (0, its
    /// console ring; 1, its store ring), which the domain builder fills in for
    /// the control domain. A mapping of a reserved ref asks for this and not
    /// for `map_read`/`map_write`, so the store can be served by a domain the
    /// policy forbids to map any other page of a guest.
    pub const MAP_RESERVED: u32 = 1 << 7;
    /// Names by bit position.
    pub const NAMES: &[&str] = &[
        "map_read",
        "map_write",
        "unmap",
        "transfer",
        "setup",
        "copy",
        "query",
        "map_reserved",
    ];
}

/// `resource` permissions.
pub mod resource {
    /// Add a resource to the target domain.
    pub const ADD: u32 = 1 << 0;
    /// Remove a resource from the target domain.
    pub const REMOVE: u32 = 1 << 1;
    /// Use a device assigned to the target (the driver domain: itself).
    pub const USE: u32 = 1 << 2;
    /// Route an interrupt to the target.
    pub const ADD_IRQ: u32 = 1 << 3;
    /// Take an interrupt from the target.
    pub const REMOVE_IRQ: u32 = 1 << 4;
    /// Grant the target I/O ports.
    pub const ADD_IOPORT: u32 = 1 << 5;
    /// Revoke the target's I/O ports.
    pub const REMOVE_IOPORT: u32 = 1 << 6;
    /// Grant the target device memory.
    pub const ADD_IOMEM: u32 = 1 << 7;
    /// Revoke the target's device memory.
    pub const REMOVE_IOMEM: u32 = 1 << 8;
    /// Names by bit position.
    pub const NAMES: &[&str] = &[
        "add",
        "remove",
        "use",
        "add_irq",
        "remove_irq",
        "add_ioport",
        "remove_ioport",
        "add_iomem",
        "remove_iomem",
    ];
}

/// `security` permissions (target: [`super::SECURITY_SERVER_TYPE`]).
pub mod security {
    /// Ask the security server for an access decision.
    pub const COMPUTE_AV: u32 = 1 << 0;
    /// Replace the policy.
    pub const LOAD_POLICY: u32 = 1 << 1;
    /// Switch between enforcing and permissive.
    pub const SET_ENFORCE: u32 = 1 << 2;
    /// Set a policy boolean (reserved: the language has no booleans yet).
    pub const SET_BOOL: u32 = 1 << 3;
    /// Read the operator's channel (`CONSOLEIO_read`) and the hypervisor's
    /// log (`sysctl` readconsole), as Xen's `xen { readconsole }`.
    pub const READ_CONSOLE: u32 = 1 << 4;
    /// Write the operator's channel (`CONSOLEIO_channel_write`). Debug
    /// output (`CONSOLEIO_write`) stays open to every domain.
    pub const WRITE_CONSOLE: u32 = 1 << 5;
    /// Read the machine's memory figures (`sysctl` physinfo), as Xen's
    /// `xen { physinfo }`.
    pub const PHYSINFO: u32 = 1 << 6;
    /// Names by bit position.
    pub const NAMES: &[&str] = &["compute_av", "load_policy", "setenforce", "setbool", "readconsole", "writeconsole", "physinfo"];
}

impl Class {
    /// Every class, by id.
    pub const ALL: [Class; CLASS_COUNT as usize] = [
        Class::Domain,
        Class::Event,
        Class::Grant,
        Class::Resource,
        Class::Security,
    ];

    /// The class's id in compiled policies.
    pub const fn id(self) -> u16 {
        self as u16
    }

    /// The class with this id.
    pub fn from_id(id: u16) -> Option<Class> {
        Self::ALL.into_iter().find(|class| class.id() == id)
    }

    /// The class's name in policy text and AVC lines.
    pub const fn name(self) -> &'static str {
        match self {
            Class::Domain => "domain",
            Class::Event => "event",
            Class::Grant => "grant",
            Class::Resource => "resource",
            Class::Security => "security",
        }
    }

    /// The class with this name.
    pub fn from_name(name: &str) -> Option<Class> {
        Self::ALL.into_iter().find(|class| class.name() == name)
    }

    /// The permission names, by bit position.
    pub const fn permission_names(self) -> &'static [&'static str] {
        match self {
            Class::Domain => domain::NAMES,
            Class::Event => event::NAMES,
            Class::Grant => grant::NAMES,
            Class::Resource => resource::NAMES,
            Class::Security => security::NAMES,
        }
    }

    /// Every permission bit the class defines.
    pub const fn valid_permissions(self) -> u32 {
        // Every class has fewer than 32 permissions.
        (1u32 << self.permission_names().len()) - 1
    }

    /// The bit of the permission with this name.
    pub fn permission(self, name: &str) -> Option<u32> {
        self.permission_names()
            .iter()
            .position(|candidate| *candidate == name)
            .map(|bit| 1 << bit)
    }

    /// The name of a single-bit permission, if the class defines it.
    pub fn permission_name(self, bit: u32) -> Option<&'static str> {
        if bit.count_ones() != 1 {
            return None;
        }
        self.permission_names()
            .get(bit.trailing_zeros() as usize)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_trip_by_id_and_name() {
        for (index, class) in Class::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(class.id()), index + 1);
            assert_eq!(Class::from_id(class.id()), Some(class));
            assert_eq!(Class::from_name(class.name()), Some(class));
            assert!(class.permission_names().len() < 32);
            for (bit, name) in class.permission_names().iter().enumerate() {
                assert_eq!(class.permission(name), Some(1 << bit));
                assert_eq!(class.permission_name(1 << bit), Some(*name));
            }
        }
        assert_eq!(Class::from_id(0), None);
        assert_eq!(Class::from_id(6), None);
        assert_eq!(Class::from_name("file"), None);
    }

    #[test]
    fn permission_constants_match_their_names() {
        assert_eq!(Class::Grant.permission("map_read"), Some(grant::MAP_READ));
        assert_eq!(Class::Grant.permission("query"), Some(grant::QUERY));
        assert_eq!(Class::Domain.permission("shutdown"), Some(domain::SHUTDOWN));
        assert_eq!(Class::Event.permission("reset"), Some(event::RESET));
        assert_eq!(
            Class::Resource.permission("remove_iomem"),
            Some(resource::REMOVE_IOMEM)
        );
        assert_eq!(
            Class::Security.permission("setbool"),
            Some(security::SET_BOOL)
        );
        assert_eq!(Class::Grant.permission("map_reserved"), Some(grant::MAP_RESERVED));
        assert_eq!(Class::Grant.valid_permissions(), 0xff);
        assert_eq!(Class::Grant.permission_name(0b11), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(is_valid_name(b"banking_t"));
        assert!(is_valid_name(&[b'a'; MAX_NAME_BYTES]));
        assert!(!is_valid_name(&[b'a'; MAX_NAME_BYTES + 1]));
        assert!(!is_valid_name(b""));
        assert!(!is_valid_name(b"_t"));
        assert!(!is_valid_name(b"9t"));
        assert!(!is_valid_name(b"a-b"));
        assert!(!is_valid_name(b"a:b"));
    }
}
