//! `xsm_op` (hypercall 27): the security server's own operations, numbered
//! as Xen's FLASK ops (`xen_abi::hypercall::xsm`). Reading the mode is open
//! to every domain; changing it needs `security { setenforce }` and loading
//! a policy `security { load_policy }` (otherwise `EACCES`).

use xen_abi::hypercall::{xsm, XSM_OP};

use crate::hypercall::{check, Errno};
use crate::machine;

/// `FLASK_GETENFORCE`: `true` when the policy is enforced, `false` when
/// permissive (denials logged, not enforced).
pub fn get_enforce() -> Result<bool, Errno> {
    check(machine::hypercall2(XSM_OP, xsm::GET_ENFORCE, 0)).map(|value| value != 0)
}

/// `FLASK_SETENFORCE`: enforcing (`true`) or permissive (`false`).
pub fn set_enforce(enforcing: bool) -> Result<(), Errno> {
    check(machine::hypercall2(XSM_OP, xsm::SET_ENFORCE, u64::from(enforcing))).map(drop)
}

/// `FLASK_LOAD`: replaces the policy with the compiled one in `policy`
/// (the binary format of `xen_abi::policy`). The hypervisor only reads
/// the bytes; it refuses a policy it cannot decode with `EINVAL`.
pub fn load_policy(policy: &[u8]) -> Result<(), Errno> {
    check(machine::hypercall3(XSM_OP, xsm::LOAD, policy.as_ptr() as u64, policy.len() as u64)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::with_responder;
    use xen_abi::errno::{EACCES, EINVAL};

    #[test]
    fn get_enforce_reads_the_mode() {
        let (mode, calls) = with_responder(|_| 1, get_enforce);
        assert_eq!(mode, Ok(true));
        assert_eq!(calls[0].number, XSM_OP);
        assert_eq!(calls[0].arguments[0], xsm::GET_ENFORCE);
        let (mode, _) = with_responder(|_| 0, get_enforce);
        assert_eq!(mode, Ok(false));
        assert_eq!(get_enforce(), Err(Errno::new(xen_abi::errno::ENOSYS)));
    }

    #[test]
    fn set_enforce_passes_one_or_zero() {
        let (result, calls) = with_responder(|_| 0, || (set_enforce(false), set_enforce(true)));
        assert_eq!(result, (Ok(()), Ok(())));
        assert_eq!(calls[0].arguments[..2], [xsm::SET_ENFORCE, 0]);
        assert_eq!(calls[1].arguments[..2], [xsm::SET_ENFORCE, 1]);
        let (result, _) = with_responder(|_| -EACCES, || set_enforce(false));
        assert_eq!(result, Err(Errno::new(EACCES)));
    }

    #[test]
    fn load_policy_passes_address_and_length() {
        let policy = [0xa5u8; 64];
        let (result, calls) = with_responder(|_| -EINVAL, || load_policy(&policy));
        assert_eq!(result, Err(Errno::new(EINVAL)));
        assert_eq!(calls[0].number, XSM_OP);
        assert_eq!(calls[0].arguments[..3], [xsm::LOAD, policy.as_ptr() as u64, 64]);
        let (result, _) = with_responder(|_| 0, || load_policy(&policy));
        assert_eq!(result, Ok(()));
    }
}
