//! The control channel between the host CLI `xl` and the control domain's
//! agent: one crate both sides build (the agent bare-metal, `no_std`), so
//! the wire format cannot drift.
//!
//! The channel is a byte stream (QEMU's second serial port, a Unix socket on
//! the host; a byte ring in the control domain). It may carry garbage — the
//! tail of an earlier connection's frame, console noise — so every message
//! travels in a checksummed [`Frame`] and the [`Decoder`] resynchronizes on
//! the magic. Each [`Request`] carries an id the host chooses; every
//! [`Response`] to it echoes the id, so a client ignores stale frames.
//!
//! The conversation:
//! - a plain request gets exactly one response: `Ok`, `Error`, or its data;
//! - a stream request (`Console`, `Dmesg`, `StoreLs`) gets `Ok` (or
//!   `Error`), then any number of `Text`, then `End`; a new request from the
//!   host ends a running stream without an `End`;
//! - an upload (`Create` or `LoadPolicy`) is answered `Ok`, then each
//!   `Chunk` (in order, offsets contiguous from 0) is answered `Ok`, and
//!   `Commit` is answered `Created { id }` (create) or `Ok` (policy) after the
//!   agent checked size and SHA-256; any other request abandons the upload.
//!
//! Payload encoding: little-endian integers; byte
//! strings and UTF-8 strings as a `u32` length then the bytes; an option as
//! a `u8` 0, or 1 then the value; a list as a `u32` count then the items;
//! a SHA-256 as its 32 bytes. A payload must be consumed exactly.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod crc32;
mod frame;
mod message;
mod wire;

pub use crc32::crc32;
pub use frame::{
    encode_frame, Decoder, EncodeError, Frame, FrameError, HEADER_BYTES, MAGIC, MAX_FRAME_BYTES,
    MAX_PAYLOAD_BYTES, VERSION,
};
pub use message::{
    BlockDevice, CreateSpec, DomainEntry, DomainRef, DomainState, EnforceMode, ExitAction,
    HypervisorInfo, MessageError, Request, Response,
};

/// The most data bytes one `Chunk` or `Text` carries, leaving room in the
/// payload for the other fields.
pub const MAX_CHUNK_BYTES: usize = 32 * 1024;

/// The frame kinds. Requests are below 0x80, responses 0x80 and above.
pub mod kind {
    /// Request `List`: empty payload.
    pub const LIST: u8 = 0x01;
    /// Request `Info`: empty payload.
    pub const INFO: u8 = 0x02;
    /// Request `Destroy`: a domain ref.
    pub const DESTROY: u8 = 0x03;
    /// Request `Shutdown`: a domain ref.
    pub const SHUTDOWN: u8 = 0x04;
    /// Request `Pause`: a domain ref.
    pub const PAUSE: u8 = 0x05;
    /// Request `Unpause`: a domain ref.
    pub const UNPAUSE: u8 = 0x06;
    /// Request `Console` (a stream): a domain ref.
    pub const CONSOLE: u8 = 0x07;
    /// Request `Dmesg` (a stream): empty payload.
    pub const DMESG: u8 = 0x08;
    /// Request `GetEnforce`: empty payload.
    pub const GET_ENFORCE: u8 = 0x09;
    /// Request `SetEnforce`: `u8` mode (0 permissive, 1 enforcing).
    pub const SET_ENFORCE: u8 = 0x0A;
    /// Request `LoadPolicy` (an upload): `u32` size, 32-byte SHA-256.
    pub const LOAD_POLICY: u8 = 0x0B;
    /// Request `BlockList`: a domain ref.
    pub const BLOCK_LIST: u8 = 0x0C;
    /// Request `StoreLs` (a stream): string path.
    pub const STORE_LS: u8 = 0x0D;
    /// Request `Create` (an upload): the create spec.
    pub const CREATE: u8 = 0x0E;
    /// Request `Chunk`: `u32` offset, byte string.
    pub const CHUNK: u8 = 0x0F;
    /// Request `Commit`: empty payload.
    pub const COMMIT: u8 = 0x10;

    /// Response `Ok`: empty payload.
    pub const OK: u8 = 0x80;
    /// Response `Error`: `i32` negative errno, string message.
    pub const ERROR: u8 = 0x81;
    /// Response `Domains`: list of domain entries.
    pub const DOMAINS: u8 = 0x82;
    /// Response `Text`: byte string.
    pub const TEXT: u8 = 0x83;
    /// Response `End`: empty payload.
    pub const END: u8 = 0x84;
    /// Response `Info`: the hypervisor info.
    pub const INFO_REPLY: u8 = 0x85;
    /// Response `Enforce`: `u8` mode.
    pub const ENFORCE: u8 = 0x86;
    /// Response `Created`: `u32` domain id.
    pub const CREATED: u8 = 0x87;
    /// Response `Blocks`: list of block devices.
    pub const BLOCKS: u8 = 0x88;
}

/// The errno values the agent answers with, negated as Xen returns them.
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = -1;
    /// No such file or store node.
    pub const ENOENT: i32 = -2;
    /// No such domain.
    pub const ESRCH: i32 = -3;
    /// I/O error.
    pub const EIO: i32 = -5;
    /// Out of memory.
    pub const ENOMEM: i32 = -12;
    /// Permission denied: the policy refused it.
    pub const EACCES: i32 = -13;
    /// Busy (an upload or a stream is in the way).
    pub const EBUSY: i32 = -16;
    /// Already exists (a domain of that name).
    pub const EEXIST: i32 = -17;
    /// Invalid argument.
    pub const EINVAL: i32 = -22;
    /// Too large.
    pub const EFBIG: i32 = -27;
    /// Not implemented.
    pub const ENOSYS: i32 = -38;
    /// A message that does not decode.
    pub const EBADMSG: i32 = -74;

    /// The symbolic name of `errno` (negative or positive), if known.
    pub fn name(errno: i32) -> Option<&'static str> {
        Some(match -errno.saturating_abs() {
            EPERM => "EPERM",
            ENOENT => "ENOENT",
            ESRCH => "ESRCH",
            EIO => "EIO",
            ENOMEM => "ENOMEM",
            EACCES => "EACCES",
            EBUSY => "EBUSY",
            EEXIST => "EEXIST",
            EINVAL => "EINVAL",
            EFBIG => "EFBIG",
            ENOSYS => "ENOSYS",
            EBADMSG => "EBADMSG",
            _ => return None,
        })
    }
}
