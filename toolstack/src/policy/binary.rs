//! The compiled policy's bytes ([`xen_abi::policy`]'s layout): writing
//! them, and reading them back for `xl policy check` and tests. The
//! reader checks what the hypervisor checks, so a file it accepts boots.

use std::collections::BTreeMap;
use std::fmt;

use xen_abi::bundle::MAX_POLICY_BYTES;
use xen_abi::policy::{
    header, is_valid_name, rule, Class, CLASS_COUNT, HEADER_SIZE, MAGIC, MAX_RULES, MAX_TYPES,
    RULE_SIZE, TYPE_NAME_SIZE, VERSION,
};

use super::CompiledPolicy;

/// Encodes a policy (types sorted, as [`super::analyze`] leaves them).
pub fn encode(policy: &CompiledPolicy) -> Vec<u8> {
    let total = HEADER_SIZE + policy.types.len() * TYPE_NAME_SIZE + policy.rules.len() * RULE_SIZE;
    let mut bytes = vec![0u8; HEADER_SIZE];
    bytes[header::MAGIC..header::MAGIC + MAGIC.len()].copy_from_slice(&MAGIC);
    for (offset, value) in [
        (header::VERSION, VERSION),
        (header::CLASS_COUNT, CLASS_COUNT),
        (header::TYPE_COUNT, policy.types.len() as u32),
        (header::RULE_COUNT, policy.rules.len() as u32),
        (header::TOTAL_LENGTH, total as u32),
    ] {
        bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }
    for name in &policy.types {
        let mut slot = [0u8; TYPE_NAME_SIZE];
        let length = name.len().min(TYPE_NAME_SIZE);
        slot[..length].copy_from_slice(&name.as_bytes()[..length]);
        bytes.extend_from_slice(&slot);
    }
    for ((source, target, class), permissions) in &policy.rules {
        let mut entry = [0u8; RULE_SIZE];
        entry[rule::SOURCE..rule::SOURCE + 2].copy_from_slice(&source.to_le_bytes());
        entry[rule::TARGET..rule::TARGET + 2].copy_from_slice(&target.to_le_bytes());
        entry[rule::CLASS..rule::CLASS + 2].copy_from_slice(&class.id().to_le_bytes());
        entry[rule::PERMISSIONS..rule::PERMISSIONS + 4].copy_from_slice(&permissions.to_le_bytes());
        bytes.extend_from_slice(&entry);
    }
    bytes
}

/// Why bytes are not a compiled policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// The byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "compiled policy, byte {}: {}",
            self.offset, self.message
        )
    }
}

impl std::error::Error for DecodeError {}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError {
        offset,
        message: message.into(),
    })
}

use xen_abi::bytes::{u16_or_zero as u16_at, u32_or_zero as u32_at};

/// Reads a compiled policy, checking it as the hypervisor does.
pub fn decode(bytes: &[u8]) -> Result<CompiledPolicy, DecodeError> {
    if bytes.len() < HEADER_SIZE || bytes.len() > MAX_POLICY_BYTES as usize {
        return fail(0, format!("{} bytes is not a policy's length", bytes.len()));
    }
    if bytes[..MAGIC.len()] != MAGIC {
        return fail(header::MAGIC, "not a compiled policy (bad magic)");
    }
    let version = u32_at(bytes, header::VERSION);
    if version != VERSION {
        return fail(header::VERSION, format!("unsupported version {version}"));
    }
    let class_count = u32_at(bytes, header::CLASS_COUNT);
    if class_count == 0 || class_count > CLASS_COUNT {
        return fail(
            header::CLASS_COUNT,
            format!("unknown class count {class_count}"),
        );
    }
    let type_count = u32_at(bytes, header::TYPE_COUNT);
    if type_count == 0 || type_count > MAX_TYPES {
        return fail(header::TYPE_COUNT, format!("bad type count {type_count}"));
    }
    let rule_count = u32_at(bytes, header::RULE_COUNT);
    if rule_count > MAX_RULES {
        return fail(header::RULE_COUNT, format!("bad rule count {rule_count}"));
    }
    if u32_at(bytes, header::RESERVED) != 0 {
        return fail(header::RESERVED, "reserved field is not zero");
    }
    let rules_start = HEADER_SIZE + type_count as usize * TYPE_NAME_SIZE;
    let expected = rules_start + rule_count as usize * RULE_SIZE;
    if bytes.len() != expected || u32_at(bytes, header::TOTAL_LENGTH) as usize != expected {
        return fail(
            header::TOTAL_LENGTH,
            format!("{} bytes, the header implies {expected}", bytes.len()),
        );
    }
    let mut policy = CompiledPolicy::default();
    for index in 0..type_count as usize {
        let offset = HEADER_SIZE + index * TYPE_NAME_SIZE;
        let slot = &bytes[offset..offset + TYPE_NAME_SIZE];
        let length = slot
            .iter()
            .position(|byte| *byte == 0)
            .unwrap_or(slot.len());
        if !is_valid_name(&slot[..length]) || slot[length..].iter().any(|byte| *byte != 0) {
            return fail(offset, format!("type {index}: bad name"));
        }
        let name = String::from_utf8_lossy(&slot[..length]).into_owned();
        if policy
            .types
            .last()
            .is_some_and(|previous| *previous >= name)
        {
            return fail(
                offset,
                format!("type {index}: names not strictly ascending"),
            );
        }
        policy.types.push(name);
    }
    let mut rules = BTreeMap::new();
    let mut previous = None;
    for index in 0..rule_count as usize {
        let offset = rules_start + index * RULE_SIZE;
        let source = u16_at(bytes, offset + rule::SOURCE);
        let target = u16_at(bytes, offset + rule::TARGET);
        let class_id = u16_at(bytes, offset + rule::CLASS);
        let permissions = u32_at(bytes, offset + rule::PERMISSIONS);
        if u16_at(bytes, offset + rule::RESERVED) != 0 {
            return fail(
                offset + rule::RESERVED,
                format!("rule {index}: reserved field is not zero"),
            );
        }
        if u32::from(source) >= type_count || u32::from(target) >= type_count {
            return fail(offset, format!("rule {index}: type id out of range"));
        }
        let Some(class) = Class::from_id(class_id).filter(|_| u32::from(class_id) <= class_count)
        else {
            return fail(
                offset + rule::CLASS,
                format!("rule {index}: bad class {class_id}"),
            );
        };
        if permissions == 0 || permissions & !class.valid_permissions() != 0 {
            return fail(
                offset + rule::PERMISSIONS,
                format!("rule {index}: bad permissions {permissions:#x}"),
            );
        }
        let key = (source, target, class);
        if previous.is_some_and(|previous| previous >= key) {
            return fail(
                offset,
                format!("rule {index}: rules not strictly ascending"),
            );
        }
        previous = Some(key);
        rules.insert(key, permissions);
    }
    policy.rules = rules;
    Ok(policy)
}
