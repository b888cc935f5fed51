//! The security policy (XSM/FLASK style), hypervisor side: a compiled
//! policy read straight out of the bytes it arrived in ([`Policy`]), the
//! labels domains carry ([`label`]) and the security server that decides
//! every cross-domain operation and logs denials in Xen's AVC format
//! ([`SecurityServer`]).
//!
//! The bytes come from the boot bundle or from a domain (`load_policy`)
//! and are hostile: [`Policy::parse`] checks every count, bound, name and
//! ordering before anything reads them, after which lookups cannot fail.
//! The layout is [`xen_abi::policy`]'s.

pub mod label;
mod rate_limit;
mod server;

pub use rate_limit::RateLimit;
pub use server::{
    AccessDenied, AccessRequest, LabelError, Mode, SecurityId, SecurityServer,
    DENIAL_COUNTER_SLOTS, MAX_LABELS, MAX_LABEL_BYTES,
};

use core::fmt;

use xen_abi::bundle::MAX_POLICY_BYTES;
use xen_abi::policy::{
    header, is_valid_name, rule, Class, CLASS_COUNT, HEADER_SIZE, MAGIC, MAX_RULES, MAX_TYPES,
    RULE_SIZE, TYPE_NAME_SIZE, VERSION,
};

/// A type's index in a policy's type table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TypeId(pub u16);

/// Why a compiled policy was refused. Nothing was loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// Shorter than the header, or longer than any policy may be.
    BadLength {
        /// Bytes given.
        length: usize,
    },
    /// Not a compiled policy.
    BadMagic,
    /// A format version this hypervisor does not read.
    UnsupportedVersion(u32),
    /// The header's `total_length` is not the number of bytes given, or
    /// the counts do not add up to it.
    LengthMismatch {
        /// What the header's counts imply.
        expected: u64,
        /// Bytes given.
        actual: usize,
    },
    /// A reserved field is not zero.
    ReservedNotZero {
        /// Its offset in the policy.
        offset: usize,
    },
    /// The policy was compiled for classes this hypervisor does not know.
    BadClassCount(u32),
    /// No types, or more than [`MAX_TYPES`].
    BadTypeCount(u32),
    /// More than [`MAX_RULES`] rules.
    BadRuleCount(u32),
    /// A type name is empty, too long, not NUL-padded or not a name.
    BadTypeName {
        /// The type's index.
        index: u32,
    },
    /// Type names are not strictly ascending (so not sorted, or repeated).
    TypeNamesOutOfOrder {
        /// The first type out of order.
        index: u32,
    },
    /// A rule names a type id outside the type table.
    RuleTypeOutOfRange {
        /// The rule's index.
        index: u32,
    },
    /// A rule names no known class.
    RuleBadClass {
        /// The rule's index.
        index: u32,
    },
    /// A rule allows nothing, or a bit its class does not define.
    RuleBadPermissions {
        /// The rule's index.
        index: u32,
    },
    /// Rules are not strictly ascending by `(source, target, class)`.
    RulesOutOfOrder {
        /// The first rule out of order.
        index: u32,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLength { length } => write!(formatter, "policy: bad length {length}"),
            Self::BadMagic => write!(formatter, "policy: not a compiled policy (bad magic)"),
            Self::UnsupportedVersion(version) => {
                write!(formatter, "policy: unsupported version {version}")
            }
            Self::LengthMismatch { expected, actual } => {
                write!(
                    formatter,
                    "policy: {actual} bytes, header implies {expected}"
                )
            }
            Self::ReservedNotZero { offset } => {
                write!(formatter, "policy: reserved field at {offset} is not zero")
            }
            Self::BadClassCount(count) => write!(formatter, "policy: unknown class count {count}"),
            Self::BadTypeCount(count) => write!(formatter, "policy: bad type count {count}"),
            Self::BadRuleCount(count) => write!(formatter, "policy: bad rule count {count}"),
            Self::BadTypeName { index } => write!(formatter, "policy: type {index}: bad name"),
            Self::TypeNamesOutOfOrder { index } => {
                write!(
                    formatter,
                    "policy: type {index}: names not strictly ascending"
                )
            }
            Self::RuleTypeOutOfRange { index } => {
                write!(formatter, "policy: rule {index}: type id out of range")
            }
            Self::RuleBadClass { index } => write!(formatter, "policy: rule {index}: bad class"),
            Self::RuleBadPermissions { index } => {
                write!(formatter, "policy: rule {index}: bad permissions")
            }
            Self::RulesOutOfOrder { index } => {
                write!(
                    formatter,
                    "policy: rule {index}: rules not strictly ascending"
                )
            }
        }
    }
}

/// One access-vector rule: what `source` may do to `target` in `class`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The subject's type.
    pub source: TypeId,
    /// The target's type.
    pub target: TypeId,
    /// The class.
    pub class: Class,
    /// The allowed permission bits of `class`.
    pub permissions: u32,
}

/// A validated compiled policy, borrowing the bytes it was parsed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy<'a> {
    bytes: &'a [u8],
    type_count: u16,
    rule_count: u32,
}

use xen_abi::bytes::{u16_or_zero as read_u16, u32_or_zero as read_u32};

fn rules_offset(type_count: u16) -> usize {
    HEADER_SIZE + usize::from(type_count) * TYPE_NAME_SIZE
}

/// The name in a NUL-padded slot, if the slot holds a valid one.
fn slot_name(slot: &[u8]) -> Option<&str> {
    let length = slot
        .iter()
        .position(|byte| *byte == 0)
        .unwrap_or(slot.len());
    let (name, padding) = slot.split_at(length);
    if !is_valid_name(name) || padding.iter().any(|byte| *byte != 0) {
        return None;
    }
    core::str::from_utf8(name).ok()
}

impl<'a> Policy<'a> {
    /// Validates `bytes` as a compiled policy. Trusts nothing in them.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PolicyError> {
        if bytes.len() < HEADER_SIZE || bytes.len() > MAX_POLICY_BYTES as usize {
            return Err(PolicyError::BadLength {
                length: bytes.len(),
            });
        }
        if bytes.get(header::MAGIC..header::MAGIC + MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(PolicyError::BadMagic);
        }
        let version = read_u32(bytes, header::VERSION);
        if version != VERSION {
            return Err(PolicyError::UnsupportedVersion(version));
        }
        if read_u32(bytes, header::RESERVED) != 0 {
            return Err(PolicyError::ReservedNotZero {
                offset: header::RESERVED,
            });
        }
        let class_count = read_u32(bytes, header::CLASS_COUNT);
        if class_count == 0 || class_count > CLASS_COUNT {
            return Err(PolicyError::BadClassCount(class_count));
        }
        let type_count = read_u32(bytes, header::TYPE_COUNT);
        if type_count == 0 || type_count > MAX_TYPES {
            return Err(PolicyError::BadTypeCount(type_count));
        }
        let rule_count = read_u32(bytes, header::RULE_COUNT);
        if rule_count > MAX_RULES {
            return Err(PolicyError::BadRuleCount(rule_count));
        }
        // Bounded by the limits above: no overflow in u64.
        let expected = HEADER_SIZE as u64
            + u64::from(type_count) * TYPE_NAME_SIZE as u64
            + u64::from(rule_count) * RULE_SIZE as u64;
        let total_length = read_u32(bytes, header::TOTAL_LENGTH);
        if expected != bytes.len() as u64 || u64::from(total_length) != expected {
            return Err(PolicyError::LengthMismatch {
                expected,
                actual: bytes.len(),
            });
        }
        let policy = Policy {
            bytes,
            type_count: type_count as u16,
            rule_count,
        };
        policy.validate_type_names()?;
        policy.validate_rules(class_count)?;
        Ok(policy)
    }

    fn validate_type_names(&self) -> Result<(), PolicyError> {
        let mut previous: Option<&[u8]> = None;
        for index in 0..self.type_count {
            let name = self
                .type_name(TypeId(index))
                .ok_or(PolicyError::BadTypeName {
                    index: u32::from(index),
                })?
                .as_bytes();
            if previous.is_some_and(|previous| previous >= name) {
                return Err(PolicyError::TypeNamesOutOfOrder {
                    index: u32::from(index),
                });
            }
            previous = Some(name);
        }
        Ok(())
    }

    fn validate_rules(&self, class_count: u32) -> Result<(), PolicyError> {
        let mut previous: Option<(u16, u16, u16)> = None;
        for index in 0..self.rule_count {
            let start = self.rule_start(index);
            let source = read_u16(self.bytes, start + rule::SOURCE);
            let target = read_u16(self.bytes, start + rule::TARGET);
            let class_id = read_u16(self.bytes, start + rule::CLASS);
            if read_u16(self.bytes, start + rule::RESERVED) != 0 {
                return Err(PolicyError::ReservedNotZero {
                    offset: start + rule::RESERVED,
                });
            }
            if source >= self.type_count || target >= self.type_count {
                return Err(PolicyError::RuleTypeOutOfRange { index });
            }
            let class = Class::from_id(class_id)
                .filter(|_| u32::from(class_id) <= class_count)
                .ok_or(PolicyError::RuleBadClass { index })?;
            let permissions = read_u32(self.bytes, start + rule::PERMISSIONS);
            if permissions == 0 || permissions & !class.valid_permissions() != 0 {
                return Err(PolicyError::RuleBadPermissions { index });
            }
            let key = (source, target, class_id);
            if previous.is_some_and(|previous| previous >= key) {
                return Err(PolicyError::RulesOutOfOrder { index });
            }
            previous = Some(key);
        }
        Ok(())
    }

    fn rule_start(&self, index: u32) -> usize {
        rules_offset(self.type_count) + index as usize * RULE_SIZE
    }

    /// The bytes the policy was parsed from.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// How many types the policy declares.
    pub fn type_count(&self) -> u16 {
        self.type_count
    }

    /// How many `(source, target, class)` rules the policy holds.
    pub fn rule_count(&self) -> u32 {
        self.rule_count
    }

    /// The name of a type.
    pub fn type_name(&self, id: TypeId) -> Option<&'a str> {
        if id.0 >= self.type_count {
            return None;
        }
        let start = HEADER_SIZE + usize::from(id.0) * TYPE_NAME_SIZE;
        slot_name(self.bytes.get(start..start + TYPE_NAME_SIZE)?)
    }

    /// The type a label names: `type` or `user:role:type`.
    pub fn type_id(&self, label: &str) -> Option<TypeId> {
        self.lookup_type(label::Label::parse(label)?.type_name())
    }

    /// The type with this name.
    pub fn lookup_type(&self, name: &str) -> Option<TypeId> {
        let (mut low, mut high) = (0u16, self.type_count);
        while low < high {
            let middle = low + (high - low) / 2;
            match self.type_name(TypeId(middle))?.cmp(name) {
                core::cmp::Ordering::Less => low = middle + 1,
                core::cmp::Ordering::Greater => high = middle,
                core::cmp::Ordering::Equal => return Some(TypeId(middle)),
            }
        }
        None
    }

    /// The rule at `index`, in `(source, target, class)` order.
    pub fn rule(&self, index: u32) -> Option<Rule> {
        if index >= self.rule_count {
            return None;
        }
        let start = self.rule_start(index);
        Some(Rule {
            source: TypeId(read_u16(self.bytes, start + rule::SOURCE)),
            target: TypeId(read_u16(self.bytes, start + rule::TARGET)),
            class: Class::from_id(read_u16(self.bytes, start + rule::CLASS))?,
            permissions: read_u32(self.bytes, start + rule::PERMISSIONS),
        })
    }

    /// Every rule, in `(source, target, class)` order.
    pub fn rules(&self) -> impl Iterator<Item = Rule> + 'a {
        let policy = *self;
        (0..self.rule_count).filter_map(move |index| policy.rule(index))
    }

    /// The permissions of `class` that `source` has on `target` (Xen's
    /// `compute_av`): 0 when no rule names the triple.
    pub fn allowed(&self, source: TypeId, target: TypeId, class: Class) -> u32 {
        let key = (source.0, target.0, class.id());
        let (mut low, mut high) = (0u32, self.rule_count);
        while low < high {
            let middle = low + (high - low) / 2;
            let start = self.rule_start(middle);
            let found = (
                read_u16(self.bytes, start + rule::SOURCE),
                read_u16(self.bytes, start + rule::TARGET),
                read_u16(self.bytes, start + rule::CLASS),
            );
            match found.cmp(&key) {
                core::cmp::Ordering::Less => low = middle + 1,
                core::cmp::Ordering::Greater => high = middle,
                core::cmp::Ordering::Equal => {
                    return read_u32(self.bytes, start + rule::PERMISSIONS)
                }
            }
        }
        0
    }

    /// Whether `source` holds every one of `permissions` (bits of `class`)
    /// on `target`. Asking for nothing, or for a bit the class does not
    /// define, is refused.
    pub fn check(&self, source: TypeId, target: TypeId, class: Class, permissions: u32) -> bool {
        permissions != 0 && self.allowed(source, target, class) & permissions == permissions
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
