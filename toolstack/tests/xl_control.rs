//! Runs the real `xl` binary's runtime commands against a fake control
//! domain agent: a thread listening on a Unix socket in a temporary
//! directory that speaks control-proto. Before every answer the fake sends
//! line garbage and a stale frame for another request id, as a real
//! channel may, so every test also checks that `xl` skips them.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is the test failing, with its location"
)]

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use control_proto::*;
use sha2::{Digest, Sha256};

type Handler = Box<dyn FnMut(&Request) -> Vec<Response> + Send>;

/// A fake agent: its socket and every request it received.
struct Agent {
    directory: tempfile::TempDir,
    socket: PathBuf,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Agent {
    /// Starts a fake agent answering each request with `handler`'s responses.
    fn start(handler: impl FnMut(&Request) -> Vec<Response> + Send + 'static) -> Agent {
        let directory = tempfile::tempdir().unwrap();
        let socket = directory.path().join("control.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let mut handler: Handler = Box::new(handler);
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                let Ok(mut connection) = connection else {
                    return;
                };
                let mut decoder = Decoder::new();
                let mut buffer = [0u8; 4096];
                loop {
                    let count = match connection.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(count) => count,
                    };
                    let mut frames = Vec::new();
                    decoder.push_all(&buffer[..count], |event| frames.extend(event.ok()));
                    for frame in frames {
                        let request = Request::from_frame(&frame).unwrap();
                        recorded.lock().unwrap().push(request.clone());
                        let responses = handler(&request);
                        let mut bytes = b"\r\nboot noise XLCP garbage\n".to_vec();
                        bytes.extend(
                            Response::End
                                .encode(frame.request_id ^ 0x8000_0000)
                                .unwrap(),
                        );
                        for response in responses {
                            bytes.extend(response.encode(frame.request_id).unwrap());
                        }
                        if connection.write_all(&bytes).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Agent {
            directory,
            socket,
            requests,
        }
    }

    /// Runs `xl --socket SOCKET ARGUMENTS...`.
    fn xl(&self, arguments: &[&str]) -> Output {
        let mut all = vec!["--socket", self.socket.to_str().unwrap(), "--timeout", "5"];
        all.extend_from_slice(arguments);
        xl(&all)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }
}

fn xl(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xl"))
        .args(arguments)
        .env_remove("XL_SOCKET")
        .env_remove("XL_TIMEOUT")
        .output()
        .expect("xl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn succeeded(output: &Output) -> String {
    assert!(output.status.success(), "stderr: {}", stderr(output));
    stdout(output)
}

fn failed(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "stdout: {}", stdout(output));
    stderr(output)
}

fn domains() -> Vec<DomainEntry> {
    let entry = |id, name: &str, label: &str, memory_mib: u64, state, seconds: u64| DomainEntry {
        id,
        name: name.into(),
        label: format!("system_u:system_r:{label}"),
        memory_kib: memory_mib * 1024,
        vcpus: 1,
        state: DomainState(state),
        cpu_time_ns: seconds * 1_000_000_000 + 250_000_000,
    };
    vec![
        entry(1, "control", "control_t", 8, DomainState::RUNNING, 12),
        entry(2, "driver", "driver_t", 8, DomainState::BLOCKED, 3),
        entry(
            5,
            "guest",
            "untrusted_t",
            64,
            DomainState::PAUSED | DomainState::BLOCKED,
            0,
        ),
        entry(
            6,
            "crashed",
            "untrusted_t",
            16,
            DomainState::SHUTDOWN | DomainState::CRASHED,
            1,
        ),
    ]
}

fn list_agent() -> Agent {
    Agent::start(|request| match request {
        Request::List => vec![Response::Domains(domains())],
        other => panic!("unexpected {other:?}"),
    })
}

#[test]
fn list_prints_xen_columns() {
    let agent = list_agent();
    let text = succeeded(&agent.xl(&["list"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(
        lines[0],
        "Name                                        ID   Mem VCPUs\tState\tTime(s)"
    );
    assert_eq!(
        lines[1],
        format!("{:<40}     1     8     1     r-----      12.2", "control")
    );
    assert_eq!(
        lines[3],
        format!("{:<40}     5    64     1     -bp---       0.2", "guest")
    );
    assert_eq!(
        lines[4],
        format!("{:<40}     6    16     1     ---sc-       1.2", "crashed")
    );
    assert_eq!(agent.requests(), [Request::List]);
}

#[test]
fn list_z_adds_labels_and_filters_by_name_or_id() {
    let agent = list_agent();
    let text = succeeded(&agent.xl(&["list", "-Z", "guest", "2"]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with("Time(s)   Security Label"), "{text}");
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("guest ") && lines[1].ends_with(" system_u:system_r:untrusted_t"));
    assert!(lines[2].starts_with("driver ") && lines[2].ends_with(" system_u:system_r:driver_t"));
    let stderr = failed(&agent.xl(&["list", "nosuch"]));
    assert!(
        stderr.starts_with("xl: list: no domain 'nosuch'"),
        "{stderr}"
    );
}

#[test]
fn list_l_prints_json() {
    let agent = list_agent();
    let text = succeeded(&agent.xl(&["list", "-l"]));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entries = value.as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[2]["name"], "guest");
    assert_eq!(entries[2]["domid"], 5);
    assert_eq!(entries[2]["memory_kib"], 65536);
    assert_eq!(entries[2]["state"], "-bp---");
    assert_eq!(entries[3]["crashed"], true);
    assert_eq!(entries[0]["seclabel"], "system_u:system_r:control_t");
}

#[test]
fn no_machine_says_how_to_start_one() {
    let directory = tempfile::tempdir().unwrap();
    let missing = directory.path().join("missing.sock");
    let stderr = failed(&xl(&["--socket", missing.to_str().unwrap(), "list"]));
    assert!(
        stderr.starts_with("xl: no machine is running: cannot connect to "),
        "{stderr}"
    );
    assert!(
        stderr.contains("missing.sock") && stderr.contains("xl boot"),
        "{stderr}"
    );
    // A socket file nobody listens on (a machine that stopped).
    let stale = directory.path().join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let stderr = failed(&xl(&[
        "--socket",
        stale.to_str().unwrap(),
        "pause",
        "guest",
    ]));
    assert!(stderr.starts_with("xl: no machine is running"), "{stderr}");
    // XL_SOCKET names the socket too.
    let output = Command::new(env!("CARGO_BIN_EXE_xl"))
        .arg("info")
        .env("XL_SOCKET", &missing)
        .output()
        .unwrap();
    assert!(stderr_of(&output).contains("missing.sock"));
}

fn stderr_of(output: &Output) -> String {
    stderr(output)
}

#[test]
fn unknown_domains_and_denials_pass_the_agents_message_through() {
    let agent = Agent::start(|request| {
        match request {
        Request::Pause { domain: DomainRef::Name(name) } => vec![Response::Error {
            errno: errno::ESRCH,
            message: format!("no domain named '{name}'"),
        }],
        Request::Destroy { domain: DomainRef::Id(3) } => vec![Response::Error {
            errno: errno::EACCES,
            message: "avc:  denied  { destroy } for domid=1 scontext=system_u:system_r:control_t tcontext=system_u:system_r:banking_t tclass=domain".into(),
        }],
        Request::Unpause { .. } | Request::Shutdown { .. } | Request::Destroy { .. } => vec![Response::Ok],
        other => panic!("unexpected {other:?}"),
    }
    });
    let stderr = failed(&agent.xl(&["pause", "nosuch"]));
    assert_eq!(
        stderr,
        "xl: pause nosuch: no domain named 'nosuch' (ESRCH)\n"
    );
    let stderr = failed(&agent.xl(&["destroy", "3"]));
    assert_eq!(
        stderr,
        "xl: destroy 3: denied (EACCES): avc:  denied  { destroy } for domid=1 \
         scontext=system_u:system_r:control_t tcontext=system_u:system_r:banking_t tclass=domain\n"
    );
    assert_eq!(succeeded(&agent.xl(&["unpause", "guest"])), "");
    assert_eq!(succeeded(&agent.xl(&["shutdown", "7"])), "");
    assert_eq!(succeeded(&agent.xl(&["destroy", "guest"])), "");
    assert_eq!(
        agent.requests(),
        [
            Request::Pause {
                domain: DomainRef::Name("nosuch".into())
            },
            Request::Destroy {
                domain: DomainRef::Id(3)
            },
            Request::Unpause {
                domain: DomainRef::Name("guest".into())
            },
            Request::Shutdown {
                domain: DomainRef::Id(7)
            },
            Request::Destroy {
                domain: DomainRef::Name("guest".into())
            },
        ]
    );
}

/// A fake agent that accepts uploads, keeping what arrived.
fn upload_agent(received: Arc<Mutex<Vec<u8>>>) -> Agent {
    let mut expected: Option<(u32, [u8; 32])> = None;
    Agent::start(move |request| {
        let mut data = received.lock().unwrap();
        match request {
            Request::Create(spec) => {
                data.clear();
                expected = Some((spec.kernel_bytes, spec.kernel_sha256));
                vec![Response::Ok]
            }
            Request::LoadPolicy { size, sha256 } => {
                data.clear();
                expected = Some((*size, *sha256));
                vec![Response::Ok]
            }
            Request::Chunk { offset, bytes } => {
                assert_eq!(*offset as usize, data.len(), "chunks in order");
                assert!(bytes.len() <= MAX_CHUNK_BYTES);
                data.extend_from_slice(bytes);
                vec![Response::Ok]
            }
            Request::Commit => {
                let (size, sha256) = expected.take().expect("an upload began");
                let digest: [u8; 32] = Sha256::digest(&*data).into();
                if size as usize != data.len() || digest != sha256 {
                    return vec![Response::Error {
                        errno: errno::EINVAL,
                        message: "image does not match its size and SHA-256".into(),
                    }];
                }
                if data.starts_with(&xen_abi::policy::MAGIC) {
                    vec![Response::Ok]
                } else {
                    vec![Response::Created { id: 9 }]
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    })
}

#[test]
fn create_sends_the_spec_and_the_whole_kernel() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let agent = upload_agent(Arc::clone(&received));
    // A kernel of several chunks and a ragged end.
    let kernel: Vec<u8> = (0..(2 * MAX_CHUNK_BYTES + 1234))
        .map(|index| (index * 7 % 251) as u8)
        .collect();
    std::fs::write(agent.path("guest.elf"), &kernel).unwrap();
    let config = agent.path("guest.cfg");
    std::fs::write(
        &config,
        "name = 'guest'\nkernel = 'guest.elf'\nmemory = 32\nseclabel = 'system_u:system_r:untrusted_t'\n\
         extra = 'hello world'\ncpu_weight = 512\non_crash = 'restart'\non_poweroff = 'preserve'\n",
    )
    .unwrap();
    let output = agent.xl(&["create", config.to_str().unwrap()]);
    assert_eq!(succeeded(&output), "Domain guest created with id 9\n");
    assert!(stderr(&output).starts_with("Parsing config from "));
    assert_eq!(*received.lock().unwrap(), kernel);
    let requests = agent.requests();
    let digest: [u8; 32] = Sha256::digest(&kernel).into();
    assert_eq!(
        requests[0],
        Request::Create(CreateSpec {
            name: "guest".into(),
            memory_mib: 32,
            seclabel: Some("system_u:system_r:untrusted_t".into()),
            command_line: "hello world".into(),
            cpu_weight: Some(512),
            on_crash: ExitAction::Restart,
            on_poweroff: ExitAction::Preserve,
            on_reboot: ExitAction::Restart,
            kernel_bytes: kernel.len() as u32,
            kernel_sha256: digest,
        })
    );
    assert_eq!(requests.len(), 1 + 3 + 1);
    assert_eq!(requests.last(), Some(&Request::Commit));
}

#[test]
fn create_refusals_and_config_errors() {
    let agent = Agent::start(|request| match request {
        Request::Create(spec) => vec![Response::Error {
            errno: errno::EEXIST,
            message: format!("a domain named '{}' exists", spec.name),
        }],
        other => panic!("unexpected {other:?}"),
    });
    std::fs::write(agent.path("a.elf"), b"kernel").unwrap();
    let good = agent.path("a.cfg");
    std::fs::write(&good, "name = 'a'\nkernel = 'a.elf'\nmemory = 8\nseclabel = 'a_t'\n").unwrap();
    let stderr = failed(&agent.xl(&["create", good.to_str().unwrap()]));
    assert!(
        stderr.ends_with("xl: create a: a domain named 'a' exists (EEXIST)\n"),
        "{stderr}"
    );
    // Config errors name file, line and column; nothing is sent.
    let bad = agent.path("bad.cfg");
    std::fs::write(
        &bad,
        "name = 'a'\nkernel = 'a.elf'\nmemory = 8\ndisk = [ '/x,,vda' ]\n",
    )
    .unwrap();
    let stderr = failed(&agent.xl(&["create", bad.to_str().unwrap()]));
    assert!(
        stderr.contains(&format!(
            "xl: {}:4:10: disk '/x,,vda': invalid vdev 'vda'",
            bad.display()
        )),
        "{stderr}"
    );
    let missing_kernel = agent.path("nokernel.cfg");
    std::fs::write(
        &missing_kernel,
        "name = 'b'\nkernel = 'b.elf'\nmemory = 8\nseclabel = 'b_t'\n",
    )
    .unwrap();
    let stderr = failed(&agent.xl(&["create", missing_kernel.to_str().unwrap()]));
    assert!(
        stderr.contains("kernel ") && stderr.contains("b.elf"),
        "{stderr}"
    );
    assert_eq!(agent.requests().len(), 1);
}

/// What the hypervisor would refuse is refused before anything is sent:
/// `memory` out of range used to upload the whole kernel over the serial
/// channel and come back as a bare EINVAL (and a `memory` of 2^44 MiB or
/// more wrapped to 0 in `memory_mib << 20`); a kernel path to an endless
/// file used to be read until memory ran out.
#[test]
fn create_checks_the_limits_before_sending_anything() {
    let agent = Agent::start(|request| panic!("nothing should be sent, got {request:?}"));
    std::fs::write(agent.path("a.elf"), b"kernel").unwrap();
    let cases = [
        ("memory = 2048\nseclabel = 'a_t'\nkernel = 'a.elf'\n", "memory 2048 MiB is not in range: expected 1 to 1024 MiB"),
        (
            "memory = 17592186044416\nseclabel = 'a_t'\nkernel = 'a.elf'\n",
            "memory 17592186044416 MiB is not in range: expected 1 to 1024 MiB",
        ),
        ("memory = 8\nkernel = 'a.elf'\n", "no seclabel: every domain needs a label"),
        (
            "memory = 8\nseclabel = 'a_t'\nkernel = 'a.elf'\nextra = 'a\\tb\x00c'\n",
            "command line contains a NUL character",
        ),
        #[cfg(target_os = "linux")]
        (
            "memory = 8\nseclabel = 'a_t'\nkernel = '/dev/zero'\n",
            "kernel /dev/zero: goes on past the end its metadata gives, more than the limit of 16777216 bytes",
        ),
    ];
    for (lines, expected) in cases {
        let config = agent.path("a.cfg");
        std::fs::write(&config, format!("name = 'a'\n{lines}")).unwrap();
        let stderr = failed(&agent.xl(&["create", config.to_str().unwrap()]));
        assert!(stderr.contains(expected), "{lines:?}: {stderr}");
        assert!(stderr.contains(&config.display().to_string()), "{stderr}");
    }
    assert!(agent.requests().is_empty());
}

#[test]
fn loadpolicy_compiles_text_and_uploads_it() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let agent = upload_agent(Arc::clone(&received));
    let text = "type a_t;\ntype b_t;\nallow a_t b_t : domain pause;\n";
    let source = agent.path("p.te");
    std::fs::write(&source, text).unwrap();
    succeeded(&agent.xl(&["loadpolicy", source.to_str().unwrap()]));
    let compiled = toolstack::policy::compile(text).unwrap();
    assert_eq!(*received.lock().unwrap(), compiled);
    // An already compiled policy goes as it is.
    let binary = agent.path("p.bin");
    std::fs::write(&binary, &compiled).unwrap();
    succeeded(&agent.xl(&["loadpolicy", binary.to_str().unwrap()]));
    assert_eq!(*received.lock().unwrap(), compiled);
    // Errors in policy text name file, line and column.
    let broken = agent.path("broken.te");
    std::fs::write(&broken, "type a_t;\nallow a_t nosuch_t : domain pause;\n").unwrap();
    let stderr = failed(&agent.xl(&["loadpolicy", broken.to_str().unwrap()]));
    assert!(
        stderr.starts_with(&format!("xl: {}:2:", broken.display())),
        "{stderr}"
    );
}

#[test]
fn streams_print_until_end() {
    let agent = Agent::start(|request| match request {
        Request::Console {
            domain: DomainRef::Name(name),
        } if name == "guest" => vec![
            Response::Ok,
            Response::Text(b"hello\n".to_vec()),
            Response::Text(b"\x1b[31mred\x1b[0m\r\n".to_vec()),
            Response::End,
        ],
        Request::Console { .. } => vec![Response::Error {
            errno: errno::ESRCH,
            message: "no such domain".into(),
        }],
        Request::Dmesg => vec![
            Response::Ok,
            Response::Text(b"(XEN) one\n(XEN) two\n".to_vec()),
            Response::End,
        ],
        Request::StoreLs { path } => vec![
            Response::Ok,
            Response::Text(format!("{path} = \"\"\n domid = \"3\"\n").into_bytes()),
            Response::End,
        ],
        other => panic!("unexpected {other:?}"),
    });
    assert_eq!(
        succeeded(&agent.xl(&["console", "guest"])),
        "hello\n^[[31mred^[[0m\r\n"
    );
    assert_eq!(
        succeeded(&agent.xl(&["console", "--raw", "guest"])),
        "hello\n\x1b[31mred\x1b[0m\r\n"
    );
    assert_eq!(
        failed(&agent.xl(&["console", "other"])),
        "xl: console other: no such domain (ESRCH)\n"
    );
    assert_eq!(succeeded(&agent.xl(&["dmesg"])), "(XEN) one\n(XEN) two\n");
    assert_eq!(
        succeeded(&agent.xl(&["xenstore-ls", "/local/domain/3"])),
        "/local/domain/3 = \"\"\n domid = \"3\"\n"
    );
    assert_eq!(
        agent.requests()[4],
        Request::StoreLs {
            path: "/local/domain/3".into()
        }
    );
}

#[test]
fn info_enforce_and_block_list() {
    let agent = Agent::start(|request| match request {
        Request::Info => vec![Response::Info(HypervisorInfo {
            version: "xen-core 0.1.0".into(),
            total_memory_kib: 512 * 1024,
            free_memory_kib: 400 * 1024,
            domains: 4,
            mode: EnforceMode::Enforcing,
        })],
        Request::GetEnforce => vec![Response::Enforce(EnforceMode::Permissive)],
        Request::SetEnforce { .. } => vec![Response::Ok],
        Request::BlockList { .. } => vec![Response::Blocks(vec![BlockDevice {
            vdev: 51712,
            backend_id: 2,
            handle: 0,
            state: 4,
            event_channel: 3,
            ring_ref: 8,
            backend_path: "/local/domain/2/backend/vbd/3/51712".into(),
        }])],
        other => panic!("unexpected {other:?}"),
    });
    let text = succeeded(&agent.xl(&["info"]));
    assert!(
        text.contains("xen_version            : xen-core 0.1.0\n"),
        "{text}"
    );
    assert!(text.contains("free_memory            : 400\n"), "{text}");
    assert!(
        text.contains("xsm_mode               : Enforcing\n"),
        "{text}"
    );
    assert_eq!(succeeded(&agent.xl(&["getenforce"])), "Permissive\n");
    for mode in ["Enforcing", "permissive", "1", "0"] {
        succeeded(&agent.xl(&["setenforce", mode]));
    }
    let stderr = failed(&agent.xl(&["setenforce", "maybe"]));
    assert!(
        stderr.contains("expected Enforcing, Permissive, 1 or 0"),
        "{stderr}"
    );
    let text = succeeded(&agent.xl(&["block-list", "banking"]));
    assert_eq!(
        text,
        "Vdev  BE  handle state evt-ch ring-ref BE-path\n\
         51712 2   0      4     3      8        /local/domain/2/backend/vbd/3/51712\n"
    );
    let modes: Vec<EnforceMode> = agent
        .requests()
        .iter()
        .filter_map(|request| match request {
            Request::SetEnforce { mode } => Some(*mode),
            _ => None,
        })
        .collect();
    use EnforceMode::*;
    assert_eq!(modes, [Enforcing, Permissive, Enforcing, Permissive]);
}

#[test]
fn a_silent_agent_times_out() {
    let agent = Agent::start(|_| Vec::new());
    let started = std::time::Instant::now();
    let output = xl(&[
        "--socket",
        agent.socket.to_str().unwrap(),
        "--timeout",
        "0.5",
        "list",
    ]);
    let stderr = failed(&output);
    assert!(
        stderr.starts_with("xl: list: no answer from the control domain in 0.5 s"),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // XL_TIMEOUT sets it too.
    let output = Command::new(env!("CARGO_BIN_EXE_xl"))
        .args(["--socket", agent.socket.to_str().unwrap(), "getenforce"])
        .env("XL_TIMEOUT", "0.3")
        .output()
        .unwrap();
    assert!(
        stderr_of(&output).contains("in 0.3 s"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn every_command_has_help_with_an_example() {
    let commands = [
        "boot",
        "create",
        "list",
        "destroy",
        "shutdown",
        "pause",
        "unpause",
        "console",
        "dmesg",
        "info",
        "getenforce",
        "setenforce",
        "loadpolicy",
        "block-list",
        "xenstore-ls",
    ];
    for command in commands {
        let help = succeeded(&xl(&[command, "--help"]));
        assert!(help.contains("Example"), "{command}: {help}");
        assert!(help.contains("--socket"), "{command}: {help}");
    }
}

#[test]
fn boot_dry_run_prints_the_qemu_command() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(
        directory.path().join("00-a.cfg"),
        "name = 'a'\nkernel = 'a.elf'\nmemory = 8\ncontrol_domain = 1\nseclabel = 'c_t'\n",
    )
    .unwrap();
    std::fs::write(directory.path().join("a.elf"), b"kernel").unwrap();
    let hypervisor = directory.path().join("xen-core");
    std::fs::write(&hypervisor, b"image").unwrap();
    let socket = directory.path().join("c.sock");
    let output = xl(&[
        "--socket",
        socket.to_str().unwrap(),
        "boot",
        directory.path().to_str().unwrap(),
        "--hypervisor",
        hypervisor.to_str().unwrap(),
        "--append",
        "loglvl=debug",
        "--dry-run",
    ]);
    let text = succeeded(&output);
    assert!(
        text.starts_with("qemu-system-x86_64 -machine q35 -accel tcg"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "-kernel {} -append loglvl=debug -initrd ",
        hypervisor.display()
    )));
    assert!(text.trim_end().ends_with(&format!(
        "-chardev socket,id=control,path={},server=on,wait=off -serial chardev:control",
        socket.display()
    )));
    let bundle = text
        .split(" -initrd ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap();
    assert!(Path::new(bundle).is_file());
    assert_eq!(Path::new(bundle), socket.with_extension("sock.bundle"));
    // A missing hypervisor image says how to build it.
    let stderr = failed(&xl(&[
        "boot",
        directory.path().to_str().unwrap(),
        "--hypervisor",
        "/nonexistent/xen-core",
    ]));
    assert!(stderr.contains("make images"), "{stderr}");
}
