//! The operator's channel, agent side: frames from the host's `xl`
//! (`control-proto`) arrive as bytes on `VIRQ_CONSOLE`; each request is
//! turned into hypercalls the policy checks (`domctl`, `xsm_op`, `sysctl`)
//! or store operations, and answered on the same channel. Uploads (a new
//! domain's kernel, a policy) arrive in chunks, are checked whole (size and
//! SHA-256) and only then used. A console stream stays open, fed from the
//! hypervisor's log, until the next request.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use control_proto::{errno as wire_errno, CreateSpec, Decoder, EnforceMode, ExitAction, Frame, Request, Response};
use xen_abi::sched::ShutdownReason;
use guest_runtime::operator;
use log::{info, warn};
use sha2::{Digest, Sha256};

use crate::commands::{self, Failure};
use crate::service::Service;

/// What is being uploaded.
enum UploadKind {
    Create(CreateSpec),
    Policy,
}

struct Upload {
    kind: UploadKind,
    size: u32,
    sha256: [u8; 32],
    bytes: Vec<u8>,
}

/// A console stream: the domain's lines from the hypervisor's log.
struct ConsoleStream {
    request_id: u32,
    domid: u16,
    /// The next log sequence number to look at.
    from: u64,
    /// A partial line carried to the next read.
    partial: Vec<u8>,
}

/// The agent's end of the channel.
pub struct Operator {
    decoder: Decoder,
    upload: Option<Upload>,
    console: Option<ConsoleStream>,
    /// Domains created over the channel and what to do when they stop.
    pub created: Vec<commands::Created>,
}

impl Operator {
    /// A fresh channel end.
    pub fn new() -> Operator {
        Operator { decoder: Decoder::new(), upload: None, console: None, created: Vec::new() }
    }

    /// Whether a console stream wants polling.
    pub fn streaming(&self) -> bool {
        self.console.is_some()
    }

    /// Reads everything the operator sent and answers each request.
    pub fn on_input(&mut self, service: &mut Service) {
        let mut buffer = [0u8; 4096];
        loop {
            let count = match operator::channel_read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(errno) => {
                    warn!("operator channel: read: {errno:?}");
                    break;
                }
            };
            let mut offset = 0;
            while offset < count {
                offset += self.decoder.push(&buffer[offset..count]);
                while let Some(event) = self.decoder.next_event() {
                    match event {
                        Ok(frame) => self.on_frame(service, &frame),
                        Err(problem) => warn!("operator channel: bad frame: {problem:?}"),
                    }
                }
            }
        }
    }

    fn on_frame(&mut self, service: &mut Service, frame: &Frame) {
        let request = match Request::from_frame(frame) {
            Ok(request) => request,
            Err(problem) => {
                let message = format!("request of kind {:#x} does not decode: {problem:?}", frame.kind);
                return send(frame.request_id, &Response::Error { errno: wire_errno::EBADMSG, message });
            }
        };
        // A new request ends a console stream; anything but a chunk or a
        // commit abandons an upload.
        self.console = None;
        if !matches!(request, Request::Chunk { .. } | Request::Commit) {
            self.upload = None;
        }
        let id = frame.request_id;
        match request {
            Request::Chunk { offset, bytes } => self.on_chunk(id, offset, &bytes),
            Request::Commit => self.on_commit(id, service),
            Request::Create(spec) => {
                if let Err(failure) = commands::check_create(&spec) {
                    return fail(id, failure);
                }
                let (size, sha256) = (spec.kernel_bytes, spec.kernel_sha256);
                self.start_upload(id, UploadKind::Create(spec), size, sha256);
            }
            Request::LoadPolicy { size, sha256 } => {
                if size == 0 || size > xen_abi::bundle::MAX_POLICY_BYTES {
                    return fail(id, Failure::new(wire_errno::EFBIG, format!("a policy of {size} bytes")));
                }
                self.start_upload(id, UploadKind::Policy, size, sha256);
            }
            Request::Console { domain } => match commands::resolve(&domain) {
                Ok(found) => {
                    send(id, &Response::Ok);
                    let from = commands::log_start();
                    self.console = Some(ConsoleStream { request_id: id, domid: found.domain, from, partial: Vec::new() });
                    self.poll();
                }
                Err(failure) => fail(id, failure),
            },
            Request::Dmesg => {
                send(id, &Response::Ok);
                let mut from = 0;
                let mut buffer = [0u8; 4096];
                while let Ok((start, count)) = operator::read_log(from, &mut buffer) {
                    if count == 0 {
                        break;
                    }
                    send(id, &Response::Text(buffer[..count].to_vec()));
                    from = start + count as u64;
                }
                send(id, &Response::End);
            }
            Request::StoreLs { path } => match commands::store_listing(service, &path) {
                Ok(text) => {
                    send(id, &Response::Ok);
                    for chunk in text.as_bytes().chunks(control_proto::MAX_CHUNK_BYTES) {
                        send(id, &Response::Text(chunk.to_vec()));
                    }
                    send(id, &Response::End);
                }
                Err(failure) => fail(id, failure),
            },
            other => match commands::run(service, other) {
                Ok(response) => send(id, &response),
                Err(failure) => fail(id, failure),
            },
        }
    }

    fn start_upload(&mut self, id: u32, kind: UploadKind, size: u32, sha256: [u8; 32]) {
        let mut bytes = Vec::new();
        if bytes.try_reserve_exact(size as usize).is_err() {
            return fail(id, Failure::new(wire_errno::ENOMEM, format!("no room for {size} bytes in the agent")));
        }
        self.upload = Some(Upload { kind, size, sha256, bytes });
        send(id, &Response::Ok);
    }

    fn on_chunk(&mut self, id: u32, offset: u32, bytes: &[u8]) {
        let Some(upload) = self.upload.as_mut() else {
            return fail(id, Failure::new(wire_errno::EINVAL, String::from("a chunk with no upload under way")));
        };
        let fits = offset as usize == upload.bytes.len() && upload.bytes.len() + bytes.len() <= upload.size as usize;
        if !fits {
            let message = format!("chunk at {offset} (+{}) does not continue the upload at {} of {}", bytes.len(), upload.bytes.len(), upload.size);
            self.upload = None;
            return fail(id, Failure::new(wire_errno::EINVAL, message));
        }
        upload.bytes.extend_from_slice(bytes);
        send(id, &Response::Ok);
    }

    fn on_commit(&mut self, id: u32, service: &mut Service) {
        let Some(upload) = self.upload.take() else {
            return fail(id, Failure::new(wire_errno::EINVAL, String::from("a commit with no upload under way")));
        };
        if upload.bytes.len() != upload.size as usize {
            return fail(id, Failure::new(wire_errno::EINVAL, format!("upload incomplete: {} of {} bytes", upload.bytes.len(), upload.size)));
        }
        let digest: [u8; 32] = Sha256::digest(&upload.bytes).into();
        if digest != upload.sha256 {
            return fail(id, Failure::new(wire_errno::EINVAL, String::from("upload damaged: its SHA-256 does not match")));
        }
        match upload.kind {
            UploadKind::Policy => match commands::load_policy(&upload.bytes) {
                Ok(()) => send(id, &Response::Ok),
                Err(failure) => fail(id, failure),
            },
            UploadKind::Create(spec) => match commands::create(service, &spec, &upload.bytes) {
                Ok(domid) => {
                    info!("operator: created d{domid} ({}) from {} bytes", spec.name, upload.bytes.len());
                    self.created.push(commands::Created::new(domid, spec, upload.bytes));
                    send(id, &Response::Created { id: u32::from(domid) });
                }
                Err(failure) => fail(id, failure),
            },
        }
    }

    /// Reads the hypervisor's exit records and applies each created
    /// domain's `on_crash`/`on_poweroff`/`on_reboot` (xl's semantics:
    /// `restart` builds it again from the same kernel and configuration;
    /// `destroy` lets it go; `preserve` cannot keep a domain the hypervisor
    /// has already torn down, so it is logged and treated as `destroy`).
    pub fn apply_exit_actions(&mut self, service: &mut Service) {
        let exits = match operator::exits() {
            Ok(exits) => exits,
            Err(errno) => {
                warn!("operator: exit records: {errno:?}");
                return;
            }
        };
        for exit in exits {
            let Some(index) = self.created.iter().position(|created| created.domid == exit.domid) else { continue };
            let record = self.created.remove(index);
            let (what, action) = match exit.reason {
                reason if reason == ShutdownReason::Crash as u32 => ("crashed", record.spec.on_crash),
                reason if reason == ShutdownReason::Poweroff as u32 => ("powered off", record.spec.on_poweroff),
                reason if reason == ShutdownReason::Reboot as u32 => ("rebooted", record.spec.on_reboot),
                _ => ("was destroyed", ExitAction::Destroy),
            };
            info!("operator: d{} ({}) {what}; on_* action: {}", exit.domid, record.spec.name, action.name());
            match (action, record.image) {
                (ExitAction::Restart, Some(image)) => match commands::create(service, &record.spec, &image) {
                    Ok(domid) => {
                        info!("operator: {} restarted as d{domid}", record.spec.name);
                        self.created.push(commands::Created::new(domid, record.spec, image));
                    }
                    Err(failure) => warn!("operator: restarting {}: {}", record.spec.name, failure.message),
                },
                (ExitAction::Preserve, _) => info!("operator: preserve: the hypervisor has already reclaimed d{}; nothing to keep", exit.domid),
                _ => {}
            }
        }
    }

    /// Sends a console stream what its domain logged since the last call.
    pub fn poll(&mut self) {
        let Some(stream) = self.console.as_mut() else { return };
        let prefix = format!("(d{}) ", stream.domid);
        let mut buffer = [0u8; 4096];
        let mut out = Vec::new();
        while let Ok((start, count)) = operator::read_log(stream.from, &mut buffer) {
            if count == 0 {
                break;
            }
            stream.from = start + count as u64;
            stream.partial.extend_from_slice(&buffer[..count]);
            while let Some(end) = stream.partial.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = stream.partial.drain(..=end).collect();
                if let Some(rest) = line.strip_prefix(prefix.as_bytes()) {
                    out.extend_from_slice(rest);
                }
            }
        }
        for chunk in out.chunks(control_proto::MAX_CHUNK_BYTES) {
            send(stream.request_id, &Response::Text(chunk.to_vec()));
        }
        if guest_runtime::domctl::domain_info(stream.domid).is_err() {
            send(stream.request_id, &Response::End);
            self.console = None;
        }
    }
}

/// Encodes and sends one response.
pub fn send(request_id: u32, response: &Response) {
    match response.encode(request_id) {
        Ok(bytes) => {
            if let Err(errno) = operator::channel_write(&bytes) {
                warn!("operator channel: write: {errno:?}");
            }
        }
        Err(problem) => warn!("operator channel: cannot encode a response: {problem:?}"),
    }
}

fn fail(request_id: u32, failure: Failure) {
    info!("operator: request {request_id} refused: {} ({})", failure.message, control_proto::errno::name(failure.errno).unwrap_or("?"));
    send(request_id, &Response::Error { errno: failure.errno, message: failure.message });
}

/// The enforcing mode as the wire says it.
pub fn mode_of(enforcing: bool) -> EnforceMode {
    if enforcing {
        EnforceMode::Enforcing
    } else {
        EnforceMode::Permissive
    }
}
