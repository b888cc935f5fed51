//! Xen's output shapes for the runtime commands: `xl list` (with `-Z`, or
//! as JSON for `-l`), `xl info`, `xl block-list`, and the escaping of
//! stream text so a domain cannot drive the operator's terminal.

use control_proto::{BlockDevice, DomainEntry, HypervisorInfo};

/// `xl list`'s header, as Xen prints it.
pub const LIST_HEADER: &str =
    "Name                                        ID   Mem VCPUs\tState\tTime(s)";

/// `xl list`'s table: Xen's header and one line per domain (`-Z` adds the
/// security label column).
pub fn list_table(domains: &[DomainEntry], labels: bool) -> String {
    let mut out = String::from(LIST_HEADER);
    if labels {
        out.push_str("   Security Label");
    }
    out.push('\n');
    for domain in domains {
        let state = String::from_utf8_lossy(&domain.state.letters()).into_owned();
        out.push_str(&format!(
            "{:<40} {:>5} {:>5} {:>5}     {}  {:>8.1}",
            printable(&domain.name),
            domain.id,
            domain.memory_kib / 1024,
            domain.vcpus,
            state,
            domain.cpu_time_ns as f64 / 1e9
        ));
        if labels {
            out.push_str(&format!(" {:>16}", printable(&domain.label)));
        }
        out.push('\n');
    }
    out
}

/// `xl list -l`: the domains as a JSON array.
pub fn list_json(domains: &[DomainEntry]) -> String {
    let entries: Vec<serde_json::Value> = domains
        .iter()
        .map(|domain| {
            let state = &domain.state;
            serde_json::json!({
                "domid": domain.id,
                "name": domain.name,
                "seclabel": domain.label,
                "memory_kib": domain.memory_kib,
                "vcpus": domain.vcpus,
                "state": String::from_utf8_lossy(&state.letters()),
                "running": state.has(control_proto::DomainState::RUNNING),
                "blocked": state.has(control_proto::DomainState::BLOCKED),
                "paused": state.has(control_proto::DomainState::PAUSED),
                "shutdown": state.has(control_proto::DomainState::SHUTDOWN),
                "crashed": state.has(control_proto::DomainState::CRASHED),
                "dying": state.has(control_proto::DomainState::DYING),
                "cpu_time_ns": domain.cpu_time_ns,
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".to_string());
    text.push('\n');
    text
}

/// `xl info`: `key : value` lines, Xen's names where Xen has the fact.
pub fn info(info: &HypervisorInfo) -> String {
    let lines = [
        ("xen_version", printable(&info.version)),
        ("total_memory", (info.total_memory_kib / 1024).to_string()),
        ("free_memory", (info.free_memory_kib / 1024).to_string()),
        ("nr_domains", info.domains.to_string()),
        ("xsm_mode", info.mode.name().to_string()),
    ];
    lines
        .iter()
        .map(|(key, value)| format!("{key:<23}: {value}\n"))
        .collect()
}

/// `xl block-list`: Xen's columns.
pub fn block_list(devices: &[BlockDevice]) -> String {
    let mut out = format!(
        "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {}\n",
        "Vdev", "BE", "handle", "state", "evt-ch", "ring-ref", "BE-path"
    );
    for device in devices {
        out.push_str(&format!(
            "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {}\n",
            device.vdev,
            device.backend_id,
            device.handle,
            device.state,
            device.event_channel,
            device.ring_ref,
            printable(&device.backend_path)
        ));
    }
    out
}

/// `text` with control characters shown as `^X` (a name or label comes
/// from a domain and must not move the cursor).
pub fn printable(text: &str) -> String {
    String::from_utf8_lossy(&escape_controls(text.as_bytes(), false)).into_owned()
}

/// `bytes` with every control byte except tab and (if `keep_lines`)
/// newline and carriage return shown as `^X` (`^[` for ESC, `^?` for DEL),
/// so a domain's output cannot send escape sequences to the terminal.
pub fn escape_controls(bytes: &[u8], keep_lines: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'\t' => out.push(byte),
            b'\n' | b'\r' if keep_lines => out.push(byte),
            0..=0x1F => out.extend_from_slice(&[b'^', byte + 0x40]),
            0x7F => out.extend_from_slice(b"^?"),
            _ => out.push(byte),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use control_proto::{DomainState, EnforceMode};

    fn domains() -> Vec<DomainEntry> {
        vec![
            DomainEntry {
                id: 0,
                name: "control".into(),
                label: "system_u:system_r:control_t".into(),
                memory_kib: 8 * 1024,
                vcpus: 1,
                state: DomainState(DomainState::RUNNING),
                cpu_time_ns: 12_345_000_000,
            },
            DomainEntry {
                id: 12,
                name: "evil\x1b[2J".into(),
                label: "untrusted_t".into(),
                memory_kib: 65536,
                vcpus: 1,
                state: DomainState(DomainState::BLOCKED | DomainState::PAUSED),
                cpu_time_ns: 50_000_000,
            },
        ]
    }

    #[test]
    fn list_follows_xen_columns() {
        let table = list_table(&domains(), false);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], LIST_HEADER);
        assert_eq!(
            lines[1],
            "control                                      0     8     1     r-----      12.3"
        );
        assert_eq!(
            lines[2],
            "evil^[[2J                                   12    64     1     -bp---       0.1"
        );
        let table = list_table(&domains(), true);
        assert!(table
            .lines()
            .next()
            .is_some_and(|line| line.ends_with("Time(s)   Security Label")));
        assert!(table
            .lines()
            .nth(1)
            .is_some_and(|line| line.ends_with("12.3 system_u:system_r:control_t")));
        assert!(table
            .lines()
            .nth(2)
            .is_some_and(|line| line.ends_with("0.1      untrusted_t")));
    }

    #[test]
    fn json_lists_every_field() {
        let value: serde_json::Value = serde_json::from_str(&list_json(&domains())).unwrap();
        assert_eq!(value[1]["domid"], 12);
        assert_eq!(value[1]["state"], "-bp---");
        assert_eq!(value[1]["paused"], true);
        assert_eq!(value[0]["seclabel"], "system_u:system_r:control_t");
    }

    #[test]
    fn info_and_block_list() {
        let text = info(&HypervisorInfo {
            version: "xen-core 0.1".into(),
            total_memory_kib: 512 * 1024,
            free_memory_kib: 100 * 1024,
            domains: 4,
            mode: EnforceMode::Enforcing,
        });
        assert!(text
            .starts_with("xen_version            : xen-core 0.1\ntotal_memory           : 512\n"));
        assert!(text.ends_with("xsm_mode               : Enforcing\n"));
        let text = block_list(&[BlockDevice {
            vdev: 51712,
            backend_id: 2,
            handle: 0,
            state: 4,
            event_channel: 3,
            ring_ref: 8,
            backend_path: "/local/domain/2/backend/vbd/3/51712".into(),
        }]);
        assert_eq!(
            text,
            "Vdev  BE  handle state evt-ch ring-ref BE-path\n\
             51712 2   0      4     3      8        /local/domain/2/backend/vbd/3/51712\n"
        );
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(
            escape_controls(b"a\x1b[1mb\r\n\x07\x7f\t", true),
            b"a^[[1mb\r\n^G^?\t"
        );
        assert_eq!(escape_controls(b"a\nb", false), b"a^Jb");
        assert_eq!(printable("é"), "é");
    }
}
