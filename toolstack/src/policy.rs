//! The policy compiler: FLASK-like policy text in, the compact binary the
//! hypervisor's security server reads ([`xen_abi::policy`]) out.
//!
//! ```text
//! # comment
//! attribute guest_type;
//! type banking_t, guest_type;            # a type, in zero or more attributes
//! typeattribute untrusted_t guest_type;  # attributes added later
//! allow driver_t guest_type : grant { map_read map_write unmap copy };
//! allow { banking_t untrusted_t } driver_t : event { bind send };
//! allow guest_type self : grant setup;   # self: each source on itself
//! allow control_t security_t : security *;  # every permission of the class
//! neverallow untrusted_t banking_t : *;  # every class (neverallow only)
//! ```
//!
//! The subject (source) is the domain acting, the target what it acts on.
//! Declarations may come in any order. Attributes and `self` are expanded,
//! and every `neverallow` is checked against every `allow`, at compile
//! time; the binary holds only the sorted type names and one
//! access-vector entry per `(source, target, class)`. The same text always
//! compiles to the same bytes.

mod binary;
mod parser;
mod resolve;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use xen_abi::policy::Class;

pub use binary::{decode, encode, DecodeError};

/// A place in the policy text: the same line-and-column as config files.
pub use crate::config::syntax::Position;

/// What is wrong with the policy text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A character that starts no token.
    UnexpectedCharacter(char),
    /// The grammar wanted something else here.
    Expected {
        /// What would have been right.
        expected: String,
        /// What was there.
        found: String,
    },
    /// A declared name that is not a valid name.
    InvalidName(String),
    /// A type or attribute declared twice.
    Duplicate {
        /// The name.
        name: String,
        /// The line of the first declaration.
        first_line: usize,
    },
    /// `typeattribute` of a name that is not a declared type.
    UnknownType(String),
    /// An attribute list names an undeclared name.
    UnknownAttribute(String),
    /// An attribute list names a type.
    NotAnAttribute(String),
    /// `typeattribute` names an attribute where a type belongs.
    NotAType(String),
    /// A rule names something that is neither a type nor an attribute.
    UnknownTypeOrAttribute(String),
    /// `self` as a rule's source.
    SelfAsSource,
    /// A class that does not exist.
    UnknownClass(String),
    /// A permission the class does not have.
    UnknownPermission {
        /// The class.
        class: &'static str,
        /// The permission named.
        permission: String,
    },
    /// `: *` (every class) in an `allow`.
    AllClassesInAllow,
    /// An `allow` grants what a `neverallow` forbids.
    NeverallowViolation {
        /// The line of the `neverallow`.
        neverallow_line: usize,
        /// The offending access, as `source target : class { perms }`.
        access: String,
    },
    /// More types than a compiled policy may hold.
    TooManyTypes,
    /// More `(source, target, class)` entries than a compiled policy may hold.
    TooManyRules,
    /// The text declares no type.
    NoTypes,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let classes = || {
            Class::ALL
                .iter()
                .map(|class| class.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Self::UnexpectedCharacter(character) => {
                write!(formatter, "unexpected character {character:?}")
            }
            Self::Expected { expected, found } => {
                write!(formatter, "expected {expected}, found {found}")
            }
            Self::InvalidName(name) => write!(
                formatter,
                "'{name}' is not a valid name (a letter, then letters, digits or '_'; at most {} bytes)",
                xen_abi::policy::MAX_NAME_BYTES
            ),
            Self::Duplicate { name, first_line } => {
                write!(formatter, "'{name}' is already declared on line {first_line}")
            }
            Self::UnknownType(name) => write!(formatter, "unknown type '{name}'"),
            Self::UnknownAttribute(name) => write!(formatter, "unknown attribute '{name}'"),
            Self::NotAnAttribute(name) => {
                write!(formatter, "'{name}' is a type, expected an attribute")
            }
            Self::NotAType(name) => write!(formatter, "'{name}' is an attribute, expected a type"),
            Self::UnknownTypeOrAttribute(name) => {
                write!(formatter, "unknown type or attribute '{name}'")
            }
            Self::SelfAsSource => write!(formatter, "'self' may only be a target"),
            Self::UnknownClass(name) => write!(
                formatter,
                "unknown class '{name}' (expected one of {})",
                classes()
            ),
            Self::UnknownPermission { class, permission } => {
                let known = Class::from_name(class)
                    .map_or_else(String::new, |class| class.permission_names().join(" "));
                write!(
                    formatter,
                    "unknown permission '{permission}' for class {class} (expected one of {known})"
                )
            }
            Self::AllClassesInAllow => write!(
                formatter,
                "'*' for every class is only allowed in neverallow; name the class"
            ),
            Self::NeverallowViolation {
                neverallow_line,
                access,
            } => write!(
                formatter,
                "this allow grants {access}, which the neverallow on line {neverallow_line} forbids"
            ),
            Self::TooManyTypes => write!(
                formatter,
                "too many types (at most {})",
                xen_abi::policy::MAX_TYPES
            ),
            Self::TooManyRules => write!(
                formatter,
                "the rules expand to more than {} (source, target, class) entries",
                xen_abi::policy::MAX_RULES
            ),
            Self::NoTypes => write!(formatter, "a policy declares at least one type"),
        }
    }
}

/// A compile error: where, and what is wrong or was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError {
    /// Where in the text.
    pub position: Position,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for CompileError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.position, self.kind)
    }
}

impl std::error::Error for CompileError {}

/// A policy with attributes and `self` expanded: what the binary holds,
/// plus the attributes for [`describe`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompiledPolicy {
    /// Type names, sorted; a type's id is its index.
    pub types: Vec<String>,
    /// Each attribute's member type ids (empty when decoded from binary).
    pub attributes: BTreeMap<String, Vec<u16>>,
    /// `(source, target, class)` → allowed permission bits.
    pub rules: BTreeMap<(u16, u16, Class), u32>,
}

impl CompiledPolicy {
    /// The id of a type.
    pub fn type_id(&self, name: &str) -> Option<u16> {
        let index = self
            .types
            .binary_search_by(|type_name| type_name.as_str().cmp(name));
        index.ok().map(|index| index as u16)
    }

    /// The permissions of `class` that type `source` has on type `target`.
    pub fn allowed(&self, source: &str, target: &str, class: Class) -> u32 {
        match (self.type_id(source), self.type_id(target)) {
            (Some(source), Some(target)) => self
                .rules
                .get(&(source, target, class))
                .copied()
                .unwrap_or(0),
            _ => 0,
        }
    }
}

/// Parses and checks policy `text`.
pub fn analyze(text: &str) -> Result<CompiledPolicy, CompileError> {
    let statements = parser::parse(text)?;
    resolve::resolve(&statements, parser::end_position(text))
}

/// Compiles policy `text` to the binary the hypervisor loads.
pub fn compile(text: &str) -> Result<Vec<u8>, CompileError> {
    Ok(encode(&analyze(text)?))
}

/// Why a policy file could not be compiled: the file and what went wrong.
#[derive(Debug)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// The compile error, or `None` if the file could not be read.
    pub error: Option<CompileError>,
    /// The I/O error, if the file could not be read.
    pub io: Option<std::io::Error>,
}

impl fmt::Display for FileError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match (&self.error, &self.io) {
            (Some(error), _) => write!(formatter, "{path}:{error}"),
            (None, Some(io)) => write!(formatter, "{path}: {io}"),
            (None, None) => write!(formatter, "{path}: cannot compile"),
        }
    }
}

impl std::error::Error for FileError {}

/// The largest policy text read.
pub const MAX_TEXT_BYTES: u64 = 16 << 20;

/// Reads and analyzes the policy text at `path`.
pub fn analyze_file(path: &Path) -> Result<CompiledPolicy, FileError> {
    let unreadable = |io| FileError {
        path: path.to_path_buf(),
        error: None,
        io: Some(io),
    };
    let bytes = crate::read_limited(path, MAX_TEXT_BYTES).map_err(unreadable)?;
    let text = String::from_utf8(bytes).map_err(|error| {
        unreadable(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not UTF-8 text: {error}")))
    })?;
    analyze(&text).map_err(|error| FileError {
        path: path.to_path_buf(),
        error: Some(error),
        io: None,
    })
}

/// Reads and compiles the policy text at `path`.
pub fn compile_file(path: &Path) -> Result<Vec<u8>, FileError> {
    analyze_file(path).map(|policy| encode(&policy))
}

fn permission_list(class: Class, permissions: u32) -> String {
    let names: Vec<&str> = (0..32)
        .filter(|bit| permissions & (1 << bit) != 0)
        .filter_map(|bit| class.permission_name(1 << bit))
        .collect();
    match names.as_slice() {
        [one] => (*one).to_string(),
        _ => format!("{{ {} }}", names.join(" ")),
    }
}

/// The policy as text that compiles back to the same binary: one `type`
/// per type and one `allow` per entry, attributes already expanded.
pub fn to_text(policy: &CompiledPolicy) -> String {
    let mut text = format!(
        "# {} types, {} access-vector entries\n",
        policy.types.len(),
        policy.rules.len()
    );
    for name in &policy.types {
        text.push_str(&format!("type {name};\n"));
    }
    let name = |id: u16| {
        policy
            .types
            .get(usize::from(id))
            .map_or("?", String::as_str)
    };
    for ((source, target, class), permissions) in &policy.rules {
        text.push_str(&format!(
            "allow {} {} : {} {};\n",
            name(*source),
            name(*target),
            class.name(),
            permission_list(*class, *permissions)
        ));
    }
    text
}

/// A compiled binary policy as text (for `xl policy check` and tests).
pub fn decompile(bytes: &[u8]) -> Result<String, DecodeError> {
    Ok(to_text(&decode(bytes)?))
}

/// A human summary: the attributes and their members, then [`to_text`].
pub fn describe(policy: &CompiledPolicy) -> String {
    let mut text = String::new();
    for (attribute, members) in &policy.attributes {
        let names: Vec<&str> = members
            .iter()
            .filter_map(|id| policy.types.get(usize::from(*id)).map(String::as_str))
            .collect();
        text.push_str(&format!("# attribute {attribute}: {}\n", names.join(" ")));
    }
    text.push_str(&to_text(policy));
    text
}

#[cfg(test)]
mod tests;
