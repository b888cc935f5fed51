//! Doing a step: each operation through the runtime's wrappers, its result
//! as an [`Outcome`]. On the host every hypercall fails with `ENOSYS`, which
//! the tests use to run every operation.

use core::fmt;

use alloc::vec::Vec;

use guest_runtime::domctl::{self, DomainInfo};
use guest_runtime::event::{self, ChannelStatus, Port};
use guest_runtime::grant::{self, CopySide, CopySpec};
use guest_runtime::page::Page;
use guest_runtime::{sched_yield, time, xsm};

use super::outcome::{Outcome, Verdict};
use super::syntax::{Op, Step};
use crate::control::DEFAULT_CHILD_KIB;
use crate::timing::NS_PER_MS;
use crate::tiny::TINY_HELLO;

/// Bytes `copy:D:R` copies.
pub const COPY_BYTES: u16 = 16;

/// The bytes hexadecimal text spells (the syntax checked the digits).
pub fn decode_hex(hex: &str) -> alloc::vec::Vec<u8> {
    let digit = |byte: u8| match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        b'A'..=b'F' => byte - b'A' + 10,
        _ => 0,
    };
    hex.as_bytes().chunks_exact(2).map(|pair| digit(pair[0]) << 4 | digit(pair[1])).collect()
}

/// What `loadpolicy` sends: 64 bytes that are no compiled policy (no magic,
/// no header), so a domain allowed to load policies gets `EINVAL`.
pub const NOT_A_POLICY: [u8; 64] = [0xa5; 64];

/// The name `create` gives its domain.
pub const CHILD_NAME: &str = "tiny";

/// The label prefix `create:TYPE` puts before the type.
pub const LABEL_PREFIX: &str = "system_u:system_r:";

/// What steps need besides themselves.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// The label of a domain `create` makes without a type.
    pub child_label: &'a str,
    /// Milliseconds to sleep between steps and between the maps of a
    /// `guess` (so each denial gets its AVC line past the rate limit).
    pub pace_ms: u64,
}

/// Does `step` and judges its result.
pub fn perform(step: &Step<'_>, context: &Context<'_>) -> Verdict {
    match step.op {
        Op::Guess { domain, first, last } => {
            let mut outcomes = Vec::with_capacity((last - first) as usize + 1);
            for reference in first..=last {
                if reference != first {
                    pace(context.pace_ms);
                }
                outcomes.push(map_once(domain, reference, false));
            }
            Verdict::guess(first, &outcomes, step.expect)
        }
        op => Verdict::single(&single(op, context), step.expect),
    }
}

/// Sleeps `ms` milliseconds of system time, if any (a clock that does not
/// run makes it a no-op).
pub fn pace(ms: u64) {
    if ms > 0 {
        let _ = time::sleep_ns(ms.saturating_mul(NS_PER_MS));
    }
}

fn single(op: Op<'_>, context: &Context<'_>) -> Outcome {
    match op {
        Op::Bind { domain, port } => match event::bind_interdomain(domain, Port(port)) {
            Ok(local) => Outcome::ok_with(format_args!("port {local}")),
            Err(errno) => errno.into(),
        },
        Op::Send { port } => Outcome::of_unit(event::send(Port(port))),
        Op::Close { port } => Outcome::of_unit(event::close(Port(port))),
        Op::Alloc { domain } => match event::alloc_unbound(domain) {
            Ok(local) => Outcome::ok_with(format_args!("port {local}")),
            Err(errno) => errno.into(),
        },
        Op::Status { port } => match event::status(Port(port)) {
            Ok(status) => Outcome::ok_with(Channel(status)),
            Err(errno) => errno.into(),
        },
        Op::Map { domain, reference, readonly } => map_once(domain, reference, readonly),
        Op::Copy { domain, reference } => {
            let page = Page::new();
            let spec = CopySpec {
                source: CopySide::Granted { domid: domain, reference, offset: 0 },
                dest: CopySide::Local { page: page.buffer(), offset: 0 },
                length: COPY_BYTES,
            };
            match grant::copy(&spec) {
                Ok(()) => Outcome::ok_with(format_args!("{COPY_BYTES} bytes")),
                Err(failure) => failure.into(),
            }
        }
        Op::Guess { domain, first, .. } => map_once(domain, first, false),
        Op::Pause { domain } => Outcome::of_unit(domctl::pause_domain(domain)),
        Op::Unpause { domain } => Outcome::of_unit(domctl::unpause_domain(domain)),
        Op::Destroy { domain } => Outcome::of_unit(domctl::destroy_domain(domain)),
        Op::Info { domain } => match domctl::domain_info(domain) {
            Ok(found) => Outcome::ok_with(Described(&found)),
            Err(errno) => errno.into(),
        },
        Op::Create { type_name } => create(type_name, context.child_label),
        Op::SetEnforce { enforcing } => Outcome::of_unit(xsm::set_enforce(enforcing)),
        Op::GetEnforce => match xsm::get_enforce() {
            Ok(true) => Outcome::ok_with("enforcing"),
            Ok(false) => Outcome::ok_with("permissive"),
            Err(errno) => errno.into(),
        },
        Op::LoadPolicy { hex: None } => Outcome::of_unit(xsm::load_policy(&NOT_A_POLICY)),
        Op::LoadPolicy { hex: Some(hex) } => Outcome::of_unit(xsm::load_policy(&decode_hex(hex))),
        Op::Sleep { ms } => match time::sleep_ns(ms.saturating_mul(NS_PER_MS)) {
            Ok(_) => Outcome::ok(),
            Err(errno) => errno.into(),
        },
        Op::Yield => Outcome::of_unit(sched_yield()),
    }
}

/// Maps `domain`'s `reference` and, if that works, unmaps it at once.
fn map_once(domain: u16, reference: u32, readonly: bool) -> Outcome {
    match grant::map(domain, reference, readonly) {
        Ok(mapping) => {
            let address = mapping.address();
            match grant::unmap(mapping) {
                Ok(()) => Outcome::ok_with(format_args!("mapped at {address:#x}, unmapped")),
                Err((_, failure)) => Outcome::ok_with(format_args!("mapped at {address:#x}; unmap: {failure}")),
            }
        }
        Err(failure) => failure.into(),
    }
}

/// Creates the `tiny` kernel labelled `system_u:system_r:TYPE` (or
/// `default_label`) and unpauses it if it was created paused.
fn create(type_name: Option<&str>, default_label: &str) -> Outcome {
    let mut label = alloc::string::String::new();
    match type_name {
        Some(name) => {
            label.push_str(LABEL_PREFIX);
            label.push_str(name);
        }
        None => label.push_str(default_label),
    }
    match domctl::create_domain(TINY_HELLO.as_bytes(), DEFAULT_CHILD_KIB, CHILD_NAME, &label, "", 0) {
        Ok(id) => {
            if domctl::domain_info(id).is_ok_and(|found| found.state.paused()) {
                let _ = domctl::unpause_domain(id);
            }
            Outcome::ok_with(format_args!("d{id} ({label})"))
        }
        Err(errno) => errno.into(),
    }
}

/// A port's status for the log: `closed`, `unbound for d3`,
/// `interdomain d3 port 1`, `virq 0`.
pub struct Channel(pub ChannelStatus);

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ChannelStatus::Closed => f.write_str("closed"),
            ChannelStatus::Unbound { remote } => write!(f, "unbound for d{remote}"),
            ChannelStatus::Interdomain { remote, port } => write!(f, "interdomain d{remote} port {port}"),
            ChannelStatus::Pirq(number) => write!(f, "pirq {number}"),
            ChannelStatus::Virq(number) => write!(f, "virq {number}"),
            ChannelStatus::Ipi => f.write_str("ipi"),
            ChannelStatus::Other(status) => write!(f, "status {status}"),
        }
    }
}

/// A domain for the log: `d3 banking system_u:system_r:banking_t running`.
pub struct Described<'a>(pub &'a DomainInfo);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let found = self.0;
        write!(f, "d{} {} {} {}", found.domain, found.name(), found.seclabel(), found.state)
    }
}

#[cfg(test)]
mod tests {
    use super::super::syntax::parse_script;
    use super::*;
    use std::string::ToString;
    use xen_abi::errno::ENOSYS;

    const CONTEXT: Context<'static> = Context { child_label: "system_u:system_r:domU_t", pace_ms: 0 };

    #[test]
    fn without_a_hypervisor_every_op_fails() {
        // On the host every hypercall is ENOSYS (copy stops earlier: a heap
        // page there is no page of guest RAM).
        let script = "bind:3:1=fail;send:1=fail;close:1=fail;alloc:2=fail;status:1=fail;map:3:8=fail;mapro:3:8=fail;\
                      copy:3:8=fail;pause:3=fail;unpause:3=fail;destroy:3=fail;info:3=fail;create=fail;create:banking_t=fail;\
                      setenforce:0=fail;setenforce:1=fail;getenforce=fail;loadpolicy=fail;sleep:5=fail;yield=fail";
        let steps = parse_script(script).unwrap();
        for step in &steps {
            let verdict = perform(step, &CONTEXT);
            assert!(verdict.passed, "{}: {}", step.text, verdict.text);
            assert!(!perform(&Step { expect: super::super::syntax::Expect::Ok, ..*step }, &CONTEXT).passed);
            if !matches!(step.op, Op::Copy { .. }) {
                assert_eq!(verdict.text, "ENOSYS", "{}", step.text);
            }
        }
    }

    #[test]
    fn errnos_are_exact() {
        let steps = parse_script("bind:3:1=ENOSYS;bind:3:1=EINVAL;bind:3:1=deny;map:3:8=ENOSYS").unwrap();
        let passed: std::vec::Vec<bool> = steps.iter().map(|step| perform(step, &CONTEXT).passed).collect();
        assert_eq!(passed, [true, false, false, true]);
        assert_eq!(single(Op::Send { port: 1 }, &CONTEXT), Outcome::Errno(ENOSYS));
    }

    #[test]
    fn guess_tries_each_ref() {
        let steps = parse_script("guess:3:0:15=fail;guess:3:4:4=ENOSYS;guess:3:0:1=deny").unwrap();
        let verdict = perform(&steps[0], &CONTEXT);
        assert_eq!(verdict.text, "0 of 16 mapped (16 ENOSYS)");
        assert!(verdict.passed);
        assert_eq!(perform(&steps[1], &CONTEXT).text, "0 of 1 mapped (1 ENOSYS)");
        let verdict = perform(&steps[2], &CONTEXT);
        assert_eq!(verdict.text, "0 of 2 mapped (2 ENOSYS); ref 0: ENOSYS");
        assert!(!verdict.passed);
    }

    #[test]
    fn channel_and_domain_text() {
        assert_eq!(Channel(ChannelStatus::Closed).to_string(), "closed");
        assert_eq!(Channel(ChannelStatus::Unbound { remote: 3 }).to_string(), "unbound for d3");
        assert_eq!(Channel(ChannelStatus::Interdomain { remote: 2, port: Port(5) }).to_string(), "interdomain d2 port 5");
        assert_eq!(Channel(ChannelStatus::Pirq(4)).to_string(), "pirq 4");
        assert_eq!(Channel(ChannelStatus::Virq(0)).to_string(), "virq 0");
        assert_eq!(Channel(ChannelStatus::Ipi).to_string(), "ipi");
        assert_eq!(Channel(ChannelStatus::Other(9)).to_string(), "status 9");
        let mut block = [0u8; xen_abi::domctl::SIZE];
        block[xen_abi::domctl::info::DOMAIN..][..2].copy_from_slice(&3u16.to_le_bytes());
        block[xen_abi::domctl::info::STATE..][..4].copy_from_slice(&xen_abi::domctl::state::RUNNING.to_le_bytes());
        block[xen_abi::domctl::info::NAME..][..7].copy_from_slice(b"banking");
        block[xen_abi::domctl::info::SECLABEL..][..9].copy_from_slice(b"banking_t");
        let found = DomainInfo::decode(&block);
        assert_eq!(Described(&found).to_string(), "d3 banking banking_t running");
    }

    #[test]
    fn not_a_policy_lacks_the_magic() {
        assert_ne!(NOT_A_POLICY[..8], xen_abi::policy::MAGIC[..]);
    }
}
