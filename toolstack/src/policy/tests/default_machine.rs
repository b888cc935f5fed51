//! The default machine's policy allows exactly what DESIGN.md's domain
//! table says, checked through the hypervisor's own reader.

use xen_abi::policy::{domain, event, grant, resource, security, Class};
use xen_core::policy::{Policy, TypeId};

use super::super::*;

/// The default machine's policy text.
pub(super) const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/machines/default/policy.te");

const DOMAINS: [&str; 4] = ["control_t", "driver_t", "banking_t", "untrusted_t"];
const GUESTS: [&str; 2] = ["banking_t", "untrusted_t"];

struct Loaded {
    bytes: Vec<u8>,
}

impl Loaded {
    fn new() -> Self {
        Loaded {
            bytes: compile_file(Path::new(PATH)).unwrap(),
        }
    }

    fn policy(&self) -> Policy<'_> {
        Policy::parse(&self.bytes).unwrap()
    }

    fn id(&self, name: &str) -> TypeId {
        self.policy().type_id(name).unwrap()
    }

    fn allowed(&self, source: &str, target: &str, class: Class) -> u32 {
        self.policy()
            .allowed(self.id(source), self.id(target), class)
    }
}

#[test]
fn untrusted_and_banking_have_nothing_to_do_with_each_other() {
    let loaded = Loaded::new();
    for class in Class::ALL {
        assert_eq!(
            loaded.allowed("untrusted_t", "banking_t", class),
            0,
            "{class:?}"
        );
        assert_eq!(
            loaded.allowed("banking_t", "untrusted_t", class),
            0,
            "{class:?}"
        );
    }
}

#[test]
fn the_driver_domain_maps_what_guests_grant_it_and_nothing_more() {
    let loaded = Loaded::new();
    let io = grant::MAP_READ | grant::MAP_WRITE | grant::UNMAP | grant::COPY;
    for guest in GUESTS {
        assert_eq!(loaded.allowed("driver_t", guest, Class::Grant), io);
        assert_eq!(
            loaded.allowed("driver_t", guest, Class::Event),
            event::CREATE | event::BIND | event::SEND | event::STATUS
        );
        assert_eq!(loaded.allowed("driver_t", guest, Class::Domain), 0);
        assert_eq!(loaded.allowed("driver_t", guest, Class::Resource), 0);
    }
    assert_eq!(loaded.allowed("driver_t", "control_t", Class::Grant), 0);
    assert_eq!(
        loaded.allowed("driver_t", "driver_t", Class::Resource),
        resource::USE
    );
    assert_eq!(loaded.allowed("driver_t", "security_t", Class::Security), 0);
}

#[test]
fn guests_use_their_devices_through_the_driver_domain() {
    let loaded = Loaded::new();
    for guest in GUESTS {
        assert_eq!(
            loaded.allowed(guest, "driver_t", Class::Event),
            event::CREATE | event::BIND | event::SEND
        );
        assert!(loaded.policy().check(
            loaded.id(guest),
            loaded.id("driver_t"),
            Class::Event,
            event::BIND | event::SEND
        ));
        for target in DOMAINS {
            assert_eq!(
                loaded.allowed(guest, target, Class::Domain),
                0,
                "{guest} {target}"
            );
            assert_eq!(
                loaded.allowed(guest, target, Class::Resource),
                0,
                "{guest} {target}"
            );
            let mapping = loaded.allowed(guest, target, Class::Grant);
            assert_eq!(
                mapping & (grant::MAP_READ | grant::MAP_WRITE | grant::COPY),
                0,
                "{guest} {target}"
            );
        }
        assert_eq!(loaded.allowed(guest, "security_t", Class::Security), 0);
        assert_eq!(
            loaded.allowed(guest, guest, Class::Grant),
            grant::SETUP | grant::QUERY
        );
    }
}

#[test]
fn control_starts_and_stops_domains_but_cannot_read_them() {
    let loaded = Loaded::new();
    let lifecycle = domain::CREATE
        | domain::DESTROY
        | domain::PAUSE
        | domain::UNPAUSE
        | domain::GET_DOMAIN_INFO;
    for target in ["driver_t", "banking_t", "untrusted_t"] {
        let allowed = loaded.allowed("control_t", target, Class::Domain);
        assert_eq!(allowed & lifecycle, lifecycle, "{target}");
        // Only the rings the builder reserved for it (console, store).
        assert_eq!(
            loaded.allowed("control_t", target, Class::Grant),
            grant::MAP_RESERVED | grant::UNMAP,
            "{target}"
        );
        assert_eq!(
            loaded.allowed("control_t", target, Class::Resource),
            0,
            "{target}"
        );
        assert!(!loaded.policy().check(
            loaded.id("control_t"),
            loaded.id(target),
            Class::Grant,
            grant::MAP_READ
        ));
    }
    assert_eq!(
        loaded.allowed("control_t", "control_t", Class::Domain),
        domain::GET_DOMAIN_INFO
    );
    assert_eq!(
        loaded.allowed("control_t", "security_t", Class::Security),
        security::COMPUTE_AV | security::LOAD_POLICY | security::SET_ENFORCE | security::READ_CONSOLE | security::WRITE_CONSOLE | security::PHYSINFO
    );
}

#[test]
fn the_default_machine_boots_with_it() {
    let loaded = Loaded::new();
    let policy = loaded.policy();
    // Every label a default-machine config uses names a type of the policy.
    let directory = Path::new(PATH).parent().unwrap();
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "cfg") {
            let config = crate::config::load(&path).unwrap();
            let label = config.seclabel.unwrap();
            assert!(
                policy.type_id(&label).is_some(),
                "{}: {label}",
                path.display()
            );
        }
    }
}

#[test]
fn the_launch_reader_compiles_policy_text() {
    let launch = crate::launch::load(Path::new(PATH).parent().unwrap()).unwrap();
    let policy = launch.policy.unwrap();
    assert_eq!(policy.path, Path::new(PATH));
    assert_eq!(policy.bytes, Loaded::new().bytes);
}

#[test]
fn the_launch_reader_reports_policy_errors_and_ambiguity() {
    use crate::test_support::{four_domains, write};
    let directory = four_domains();
    write(
        directory.path(),
        "policy.te",
        "type a_t;\nallow a_t b_t : event send;\n",
    );
    let error = crate::launch::load(directory.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.ends_with("policy.te:2:11: unknown type or attribute 'b_t'"),
        "{error}"
    );
    write(directory.path(), "policy.bin", b"compiled");
    let error = crate::launch::load(directory.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.ends_with(": both policy.te and policy.bin exist: keep one"),
        "{error}"
    );
    write(directory.path(), "policy", b"compiled");
    let error = crate::launch::load(directory.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.ends_with(": policy.te, policy.bin and policy exist: keep one"),
        "{error}"
    );
}
