//! The control channel's messages: [`Request`]s from the host, [`Response`]s
//! from the agent, and the values they carry. Each message is one frame;
//! its kind byte is listed in [`crate::kind`] and its payload is its fields
//! in order, encoded as [`crate::wire`] describes.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::frame::{encode_frame, EncodeError, Frame};
use crate::kind;
use crate::wire::{Reader, Writer};

/// A payload that does not decode as its kind's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// The kind byte names no message of this direction.
    UnknownKind(u8),
    /// The payload ends before the message does.
    Truncated,
    /// The payload has this many bytes after the message.
    TrailingBytes(usize),
    /// A string is not UTF-8.
    InvalidUtf8,
    /// A tag or enumeration field holds a value it may not.
    InvalidValue {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKind(kind) => write!(formatter, "unknown message kind {kind:#04x}"),
            Self::Truncated => write!(formatter, "message payload is truncated"),
            Self::TrailingBytes(count) => {
                write!(formatter, "message payload has {count} bytes too many")
            }
            Self::InvalidUtf8 => write!(formatter, "message string is not UTF-8"),
            Self::InvalidValue { field, value } => {
                write!(
                    formatter,
                    "message field '{field}' has invalid value {value}"
                )
            }
        }
    }
}

/// A domain, by id or by name (Xen's tools take either: an argument of
/// digits only is an id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainRef {
    /// The domain id.
    Id(u32),
    /// The domain's name.
    Name(String),
}

impl DomainRef {
    /// Reads an operator's argument: digits only make an id.
    pub fn parse(text: &str) -> Self {
        match text.parse::<u32>() {
            Ok(id) if text.bytes().all(|byte| byte.is_ascii_digit()) => Self::Id(id),
            _ => Self::Name(String::from(text)),
        }
    }

    fn write(&self, writer: &mut Writer<'_>) {
        match self {
            Self::Id(id) => {
                writer.u8(0);
                writer.u32(*id);
            }
            Self::Name(name) => {
                writer.u8(1);
                writer.string(name);
            }
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, MessageError> {
        match reader.u8()? {
            0 => Ok(Self::Id(reader.u32()?)),
            1 => Ok(Self::Name(reader.string()?)),
            other => Err(MessageError::InvalidValue {
                field: "domain",
                value: u32::from(other),
            }),
        }
    }
}

impl fmt::Display for DomainRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(formatter, "{id}"),
            Self::Name(name) => write!(formatter, "{name}"),
        }
    }
}

/// The security policy's mode (Xen's `setenforce 0|1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnforceMode {
    /// Denials are logged but allowed (0).
    Permissive,
    /// Denials are enforced (1).
    Enforcing,
}

impl EnforceMode {
    /// The wire value: 0 permissive, 1 enforcing.
    pub fn to_wire(self) -> u8 {
        match self {
            Self::Permissive => 0,
            Self::Enforcing => 1,
        }
    }

    /// The mode of a wire value.
    pub fn from_wire(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Permissive),
            1 => Some(Self::Enforcing),
            _ => None,
        }
    }

    /// `Enforcing` or `Permissive`, as `xl getenforce` prints it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Permissive => "Permissive",
            Self::Enforcing => "Enforcing",
        }
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, MessageError> {
        let value = reader.u8()?;
        Self::from_wire(value).ok_or(MessageError::InvalidValue {
            field: "mode",
            value: u32::from(value),
        })
    }
}

/// What to do when a domain crashes, powers off or reboots (xl.cfg's
/// `on_crash`, `on_poweroff`, `on_reboot`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitAction {
    /// Destroy the domain (0).
    Destroy,
    /// Destroy it and build it again from the same spec and kernel (1).
    Restart,
    /// Keep it, shut down, for inspection (2).
    Preserve,
}

impl ExitAction {
    /// The wire value.
    pub fn to_wire(self) -> u8 {
        match self {
            Self::Destroy => 0,
            Self::Restart => 1,
            Self::Preserve => 2,
        }
    }

    /// The action of a wire value.
    pub fn from_wire(value: u8) -> Option<Self> {
        match value {
            0 => Some(Self::Destroy),
            1 => Some(Self::Restart),
            2 => Some(Self::Preserve),
            _ => None,
        }
    }

    /// The xl.cfg word: `destroy`, `restart` or `preserve`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Destroy => "destroy",
            Self::Restart => "restart",
            Self::Preserve => "preserve",
        }
    }

    fn read(reader: &mut Reader<'_>, field: &'static str) -> Result<Self, MessageError> {
        let value = reader.u8()?;
        Self::from_wire(value).ok_or(MessageError::InvalidValue {
            field,
            value: u32::from(value),
        })
    }
}

/// A domain to create: what `Request::Create` carries. The kernel image
/// follows in `Request::Chunk`s and is built on `Request::Commit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateSpec {
    /// The domain's name (unique among running domains).
    pub name: String,
    /// RAM in MiB.
    pub memory_mib: u64,
    /// The security label, if the config names one.
    pub seclabel: Option<String>,
    /// The kernel's command line.
    pub command_line: String,
    /// The scheduler weight, if not the default.
    pub cpu_weight: Option<u32>,
    /// What to do when it crashes.
    pub on_crash: ExitAction,
    /// What to do when it powers off.
    pub on_poweroff: ExitAction,
    /// What to do when it reboots.
    pub on_reboot: ExitAction,
    /// The kernel image's size in bytes.
    pub kernel_bytes: u32,
    /// The kernel image's SHA-256.
    pub kernel_sha256: [u8; 32],
}

impl CreateSpec {
    fn write(&self, writer: &mut Writer<'_>) {
        writer.string(&self.name);
        writer.u64(self.memory_mib);
        writer.option(self.seclabel.as_deref(), |writer, label| {
            writer.string(label)
        });
        writer.string(&self.command_line);
        writer.option(self.cpu_weight, |writer, weight| writer.u32(weight));
        writer.u8(self.on_crash.to_wire());
        writer.u8(self.on_poweroff.to_wire());
        writer.u8(self.on_reboot.to_wire());
        writer.u32(self.kernel_bytes);
        writer.fixed(&self.kernel_sha256);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            name: reader.string()?,
            memory_mib: reader.u64()?,
            seclabel: reader.option("seclabel", |reader| reader.string())?,
            command_line: reader.string()?,
            cpu_weight: reader.option("cpu_weight", |reader| reader.u32())?,
            on_crash: ExitAction::read(reader, "on_crash")?,
            on_poweroff: ExitAction::read(reader, "on_poweroff")?,
            on_reboot: ExitAction::read(reader, "on_reboot")?,
            kernel_bytes: reader.u32()?,
            kernel_sha256: reader.sha256()?,
        })
    }
}

/// A domain's state flags, as Xen's `xl list` shows them (`r-b-p-s-c-d`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DomainState(pub u8);

impl DomainState {
    /// Running on a CPU now.
    pub const RUNNING: u8 = 1 << 0;
    /// Blocked, waiting for an event.
    pub const BLOCKED: u8 = 1 << 1;
    /// Paused by the toolstack.
    pub const PAUSED: u8 = 1 << 2;
    /// Shut down (powered off, rebooted or crashed) but not yet destroyed.
    pub const SHUTDOWN: u8 = 1 << 3;
    /// Shut down by a crash.
    pub const CRASHED: u8 = 1 << 4;
    /// Being destroyed.
    pub const DYING: u8 = 1 << 5;
    /// Every defined flag.
    pub const ALL: u8 = 0x3F;

    /// Whether `flag` is set.
    pub fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    /// Xen's six letters: `r`, `b`, `p`, `s`, `c`, `d` or `-` each.
    pub fn letters(self) -> [u8; 6] {
        let mut letters = [b'-'; 6];
        for (index, letter) in b"rbpscd".iter().enumerate() {
            if self.0 & (1 << index) != 0 {
                letters[index] = *letter;
            }
        }
        letters
    }
}

/// One line of `xl list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainEntry {
    /// The domain id.
    pub id: u32,
    /// The domain's name.
    pub name: String,
    /// Its security label.
    pub label: String,
    /// Its memory in KiB.
    pub memory_kib: u64,
    /// Its number of vCPUs.
    pub vcpus: u32,
    /// Its state flags.
    pub state: DomainState,
    /// CPU time used, in nanoseconds.
    pub cpu_time_ns: u64,
}

impl DomainEntry {
    fn write(&self, writer: &mut Writer<'_>) {
        writer.u32(self.id);
        writer.string(&self.name);
        writer.string(&self.label);
        writer.u64(self.memory_kib);
        writer.u32(self.vcpus);
        writer.u8(self.state.0);
        writer.u64(self.cpu_time_ns);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            id: reader.u32()?,
            name: reader.string()?,
            label: reader.string()?,
            memory_kib: reader.u64()?,
            vcpus: reader.u32()?,
            state: {
                let flags = reader.u8()?;
                if flags & !DomainState::ALL != 0 {
                    return Err(MessageError::InvalidValue {
                        field: "state",
                        value: u32::from(flags),
                    });
                }
                DomainState(flags)
            },
            cpu_time_ns: reader.u64()?,
        })
    }
}

/// The hypervisor's facts for `xl info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HypervisorInfo {
    /// Its version string.
    pub version: String,
    /// All of the machine's memory the hypervisor manages, in KiB.
    pub total_memory_kib: u64,
    /// Memory not held by any domain, in KiB.
    pub free_memory_kib: u64,
    /// How many domains exist.
    pub domains: u32,
    /// The policy's mode.
    pub mode: EnforceMode,
}

impl HypervisorInfo {
    fn write(&self, writer: &mut Writer<'_>) {
        writer.string(&self.version);
        writer.u64(self.total_memory_kib);
        writer.u64(self.free_memory_kib);
        writer.u32(self.domains);
        writer.u8(self.mode.to_wire());
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            version: reader.string()?,
            total_memory_kib: reader.u64()?,
            free_memory_kib: reader.u64()?,
            domains: reader.u32()?,
            mode: EnforceMode::read(reader)?,
        })
    }
}

/// One virtual block device, a line of `xl block-list` (Xen's columns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockDevice {
    /// The virtual device number (Xen's encoding: xvda is 51712).
    pub vdev: u32,
    /// The backend domain's id.
    pub backend_id: u32,
    /// The device handle.
    pub handle: u32,
    /// The frontend's xenbus state (1 initialising ... 4 connected ... 6 closed).
    pub state: u32,
    /// The frontend's event channel port.
    pub event_channel: u32,
    /// The grant reference of the ring page.
    pub ring_ref: u32,
    /// The backend's store path.
    pub backend_path: String,
}

impl BlockDevice {
    fn write(&self, writer: &mut Writer<'_>) {
        writer.u32(self.vdev);
        writer.u32(self.backend_id);
        writer.u32(self.handle);
        writer.u32(self.state);
        writer.u32(self.event_channel);
        writer.u32(self.ring_ref);
        writer.string(&self.backend_path);
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, MessageError> {
        Ok(Self {
            vdev: reader.u32()?,
            backend_id: reader.u32()?,
            handle: reader.u32()?,
            state: reader.u32()?,
            event_channel: reader.u32()?,
            ring_ref: reader.u32()?,
            backend_path: reader.string()?,
        })
    }
}

/// A request from the host. Each is answered by exactly one response
/// frame with the same request id, except the streams (`Console`, `Dmesg`,
/// `StoreLs`), answered by `Ok` (or `Error`), then `Text`s, then `End`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Every domain: answered by `Domains`.
    List,
    /// The hypervisor's facts: answered by `Info`.
    Info,
    /// Destroy a domain at once.
    Destroy {
        /// The domain.
        domain: DomainRef,
    },
    /// Ask a domain to shut down (it powers off; then `on_poweroff` applies).
    Shutdown {
        /// The domain.
        domain: DomainRef,
    },
    /// Pause a domain.
    Pause {
        /// The domain.
        domain: DomainRef,
    },
    /// Unpause a domain.
    Unpause {
        /// The domain.
        domain: DomainRef,
    },
    /// Stream a domain's console output, live, until it is destroyed.
    Console {
        /// The domain.
        domain: DomainRef,
    },
    /// Stream the hypervisor's log ring, then end.
    Dmesg,
    /// The policy's mode: answered by `Enforce`.
    GetEnforce,
    /// Set the policy's mode.
    SetEnforce {
        /// The new mode.
        mode: EnforceMode,
    },
    /// Begin loading a new compiled policy of `size` bytes: `Chunk`s and
    /// `Commit` follow.
    LoadPolicy {
        /// The policy's size in bytes.
        size: u32,
        /// Its SHA-256.
        sha256: [u8; 32],
    },
    /// A domain's virtual block devices: answered by `Blocks`.
    BlockList {
        /// The domain.
        domain: DomainRef,
    },
    /// Stream the store below `path`, in xenstore-ls's shape.
    StoreLs {
        /// The store path (`/` for all).
        path: String,
    },
    /// Begin creating a domain: `Chunk`s of its kernel and `Commit` follow.
    Create(CreateSpec),
    /// Part of the kernel or policy being uploaded.
    Chunk {
        /// Where the bytes go in the image.
        offset: u32,
        /// The bytes (at most [`crate::MAX_CHUNK_BYTES`]).
        bytes: Vec<u8>,
    },
    /// The upload is complete: check and build or load it.
    Commit,
}

impl Request {
    /// The frame kind.
    pub fn kind(&self) -> u8 {
        match self {
            Self::List => kind::LIST,
            Self::Info => kind::INFO,
            Self::Destroy { .. } => kind::DESTROY,
            Self::Shutdown { .. } => kind::SHUTDOWN,
            Self::Pause { .. } => kind::PAUSE,
            Self::Unpause { .. } => kind::UNPAUSE,
            Self::Console { .. } => kind::CONSOLE,
            Self::Dmesg => kind::DMESG,
            Self::GetEnforce => kind::GET_ENFORCE,
            Self::SetEnforce { .. } => kind::SET_ENFORCE,
            Self::LoadPolicy { .. } => kind::LOAD_POLICY,
            Self::BlockList { .. } => kind::BLOCK_LIST,
            Self::StoreLs { .. } => kind::STORE_LS,
            Self::Create(_) => kind::CREATE,
            Self::Chunk { .. } => kind::CHUNK,
            Self::Commit => kind::COMMIT,
        }
    }

    /// Whether this request is answered by a stream (`Ok`, `Text`s, `End`).
    pub fn is_stream(&self) -> bool {
        matches!(
            self,
            Self::Console { .. } | Self::Dmesg | Self::StoreLs { .. }
        )
    }

    /// Appends the payload to `out`.
    pub fn encode_payload(&self, out: &mut Vec<u8>) {
        let mut writer = Writer::new(out);
        match self {
            Self::List | Self::Info | Self::Dmesg | Self::GetEnforce | Self::Commit => {}
            Self::Destroy { domain }
            | Self::Shutdown { domain }
            | Self::Pause { domain }
            | Self::Unpause { domain }
            | Self::Console { domain }
            | Self::BlockList { domain } => domain.write(&mut writer),
            Self::SetEnforce { mode } => writer.u8(mode.to_wire()),
            Self::LoadPolicy { size, sha256 } => {
                writer.u32(*size);
                writer.fixed(sha256);
            }
            Self::StoreLs { path } => writer.string(path),
            Self::Create(spec) => spec.write(&mut writer),
            Self::Chunk { offset, bytes } => {
                writer.u32(*offset);
                writer.bytes(bytes);
            }
        }
    }

    /// The whole frame, with `request_id`.
    pub fn encode(&self, request_id: u32) -> Result<Vec<u8>, EncodeError> {
        let mut payload = Vec::new();
        self.encode_payload(&mut payload);
        let mut out = Vec::new();
        encode_frame(self.kind(), request_id, &payload, &mut out)?;
        Ok(out)
    }

    /// Decodes the request of `kind` from `payload`.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Self, MessageError> {
        let mut reader = Reader::new(payload);
        let reader = &mut reader;
        let request = match kind {
            kind::LIST => Self::List,
            kind::INFO => Self::Info,
            kind::DESTROY => Self::Destroy {
                domain: DomainRef::read(reader)?,
            },
            kind::SHUTDOWN => Self::Shutdown {
                domain: DomainRef::read(reader)?,
            },
            kind::PAUSE => Self::Pause {
                domain: DomainRef::read(reader)?,
            },
            kind::UNPAUSE => Self::Unpause {
                domain: DomainRef::read(reader)?,
            },
            kind::CONSOLE => Self::Console {
                domain: DomainRef::read(reader)?,
            },
            kind::DMESG => Self::Dmesg,
            kind::GET_ENFORCE => Self::GetEnforce,
            kind::SET_ENFORCE => Self::SetEnforce {
                mode: EnforceMode::read(reader)?,
            },
            kind::LOAD_POLICY => Self::LoadPolicy {
                size: reader.u32()?,
                sha256: reader.sha256()?,
            },
            kind::BLOCK_LIST => Self::BlockList {
                domain: DomainRef::read(reader)?,
            },
            kind::STORE_LS => Self::StoreLs {
                path: reader.string()?,
            },
            kind::CREATE => Self::Create(CreateSpec::read(reader)?),
            kind::CHUNK => Self::Chunk {
                offset: reader.u32()?,
                bytes: reader.bytes()?,
            },
            kind::COMMIT => Self::Commit,
            other => return Err(MessageError::UnknownKind(other)),
        };
        finish(reader)?;
        Ok(request)
    }

    /// Decodes the request in `frame`.
    pub fn from_frame(frame: &Frame) -> Result<Self, MessageError> {
        Self::decode(frame.kind, &frame.payload)
    }
}

/// A response from the agent, carrying its request's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Done; or, to a stream request, the stream begins.
    Ok,
    /// Failed.
    Error {
        /// Xen's negative errno (`-ESRCH`: no such domain, `-EACCES`: the
        /// policy denied it, ... see [`crate::errno`]).
        errno: i32,
        /// What went wrong, for the operator; a denial quotes the AVC line.
        message: String,
    },
    /// Every domain, answering `List`.
    Domains(Vec<DomainEntry>),
    /// Part of a stream's output (raw bytes, at most [`crate::MAX_CHUNK_BYTES`]).
    Text(Vec<u8>),
    /// The stream is over.
    End,
    /// The hypervisor's facts, answering `Info`.
    Info(HypervisorInfo),
    /// The policy's mode, answering `GetEnforce`.
    Enforce(EnforceMode),
    /// The domain was built, answering `Commit` of a `Create`.
    Created {
        /// The new domain's id.
        id: u32,
    },
    /// A domain's block devices, answering `BlockList`.
    Blocks(Vec<BlockDevice>),
}

impl Response {
    /// The frame kind.
    pub fn kind(&self) -> u8 {
        match self {
            Self::Ok => kind::OK,
            Self::Error { .. } => kind::ERROR,
            Self::Domains(_) => kind::DOMAINS,
            Self::Text(_) => kind::TEXT,
            Self::End => kind::END,
            Self::Info(_) => kind::INFO_REPLY,
            Self::Enforce(_) => kind::ENFORCE,
            Self::Created { .. } => kind::CREATED,
            Self::Blocks(_) => kind::BLOCKS,
        }
    }

    /// Appends the payload to `out`.
    pub fn encode_payload(&self, out: &mut Vec<u8>) {
        let mut writer = Writer::new(out);
        match self {
            Self::Ok | Self::End => {}
            Self::Error { errno, message } => {
                writer.i32(*errno);
                writer.string(message);
            }
            Self::Domains(entries) => {
                writer.u32(entries.len() as u32);
                for entry in entries {
                    entry.write(&mut writer);
                }
            }
            Self::Text(bytes) => writer.bytes(bytes),
            Self::Info(info) => info.write(&mut writer),
            Self::Enforce(mode) => writer.u8(mode.to_wire()),
            Self::Created { id } => writer.u32(*id),
            Self::Blocks(devices) => {
                writer.u32(devices.len() as u32);
                for device in devices {
                    device.write(&mut writer);
                }
            }
        }
    }

    /// The whole frame, answering `request_id`.
    pub fn encode(&self, request_id: u32) -> Result<Vec<u8>, EncodeError> {
        let mut payload = Vec::new();
        self.encode_payload(&mut payload);
        let mut out = Vec::new();
        encode_frame(self.kind(), request_id, &payload, &mut out)?;
        Ok(out)
    }

    /// Decodes the response of `kind` from `payload`.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Self, MessageError> {
        let mut reader = Reader::new(payload);
        let reader = &mut reader;
        let response = match kind {
            kind::OK => Self::Ok,
            kind::ERROR => Self::Error {
                errno: reader.i32()?,
                message: reader.string()?,
            },
            kind::DOMAINS => Self::Domains(reader.list(DomainEntry::read)?),
            kind::TEXT => Self::Text(reader.bytes()?),
            kind::END => Self::End,
            kind::INFO_REPLY => Self::Info(HypervisorInfo::read(reader)?),
            kind::ENFORCE => Self::Enforce(EnforceMode::read(reader)?),
            kind::CREATED => Self::Created { id: reader.u32()? },
            kind::BLOCKS => Self::Blocks(reader.list(BlockDevice::read)?),
            other => return Err(MessageError::UnknownKind(other)),
        };
        finish(reader)?;
        Ok(response)
    }

    /// Decodes the response in `frame`.
    pub fn from_frame(frame: &Frame) -> Result<Self, MessageError> {
        Self::decode(frame.kind, &frame.payload)
    }
}

/// Checks that the reader behind `reader` is exhausted.
fn finish(reader: &mut Reader<'_>) -> Result<(), MessageError> {
    core::mem::replace(reader, Reader::new(&[])).finish()
}
