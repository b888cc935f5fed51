//! The body of the `bundle_parse` fuzz target, kept in the library so the
//! proptests run exactly what the fuzzer runs.

use super::{check_name, domain_flags, parse, verify_kernel};
use super::{MAX_COMMAND_LINE_BYTES, MAX_DOMAINS, MAX_KERNEL_BYTES, MAX_POLICY_BYTES};
use xen_abi::layout::{MAX_RAM_BYTES, MIN_RAM_BYTES};

/// The fuzz target's body, shared with the proptests: parses `data` and, if
/// it is accepted, asserts what a parsed bundle promises and verifies every
/// kernel. Panics only if the parser breaks a promise.
pub fn fuzz_one(data: &[u8]) {
    let Ok(bundle) = parse(data) else { return };
    assert!((1..=MAX_DOMAINS).contains(&bundle.domain_count()));
    assert_eq!(bundle.domains().len(), bundle.domain_count());
    let mut controls = 0;
    for domain in bundle.domains() {
        assert!(check_name(domain.name.as_bytes()).is_ok() && !domain.seclabel.is_empty());
        assert!((MIN_RAM_BYTES..=MAX_RAM_BYTES).contains(&domain.memory_bytes()));
        assert!(!domain.kernel.is_empty() && domain.kernel.len() as u64 <= MAX_KERNEL_BYTES);
        assert!(domain.command_line.len() <= MAX_COMMAND_LINE_BYTES as usize);
        assert!(domain.flags & !domain_flags::ALL == 0);
        controls += usize::from(domain.is_control());
        let _ = verify_kernel(&domain);
    }
    assert!(controls <= 1);
    assert!(bundle
        .policy()
        .is_none_or(|policy| policy.len() <= MAX_POLICY_BYTES as usize));
}
