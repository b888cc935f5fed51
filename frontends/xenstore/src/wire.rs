//! The `xs_wire` message format: a 16-byte header (`type`, `req_id`, `tx_id`, `len`,
//! each a little-endian u32) and at most 4096 bytes of payload. [`Decoder`] takes bytes
//! as they come off a ring, in any split, and yields whole messages; the `reply_*`
//! helpers build the store's replies.

use alloc::vec::Vec;

use crate::error::XsError;

/// Size of the `xsd_sockmsg` header.
pub const HEADER_LEN: usize = 16;
/// Largest payload (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;

/// A message type (`enum xsd_sockmsg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // reason: the names are Xen's XS_* names
pub enum MsgType {
    Control = 0,
    Directory = 1,
    Read = 2,
    GetPerms = 3,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    Introduce = 8,
    Release = 9,
    GetDomainPath = 10,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    WatchEvent = 15,
    Error = 16,
    IsDomainIntroduced = 17,
    Resume = 18,
    SetTarget = 19,
    ResetWatches = 21,
    DirectoryPart = 22,
}

impl MsgType {
    /// The type for a raw header value, if it is one Xen defines.
    #[must_use]
    pub const fn from_u32(raw: u32) -> Option<Self> {
        Some(match raw {
            0 => Self::Control,
            1 => Self::Directory,
            2 => Self::Read,
            3 => Self::GetPerms,
            4 => Self::Watch,
            5 => Self::Unwatch,
            6 => Self::TransactionStart,
            7 => Self::TransactionEnd,
            8 => Self::Introduce,
            9 => Self::Release,
            10 => Self::GetDomainPath,
            11 => Self::Write,
            12 => Self::Mkdir,
            13 => Self::Rm,
            14 => Self::SetPerms,
            15 => Self::WatchEvent,
            16 => Self::Error,
            17 => Self::IsDomainIntroduced,
            18 => Self::Resume,
            19 => Self::SetTarget,
            21 => Self::ResetWatches,
            22 => Self::DirectoryPart,
            _ => return None,
        })
    }
}

/// One message: header fields and payload. `kind` stays raw so that an unknown type
/// can still be answered (with `ENOSYS`) under its request id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The raw `type` field.
    pub kind: u32,
    /// The request id, echoed in the reply.
    pub req_id: u32,
    /// The transaction id (0 outside a transaction), echoed in the reply.
    pub tx_id: u32,
    /// The payload, at most [`PAYLOAD_MAX`] bytes.
    pub payload: Vec<u8>,
}

impl Message {
    /// A message of a known type.
    #[must_use]
    pub fn new(kind: MsgType, req_id: u32, tx_id: u32, payload: Vec<u8>) -> Self {
        Self {
            kind: kind as u32,
            req_id,
            tx_id,
            payload,
        }
    }

    /// A request whose payload is `args`, each followed by a NUL (Xen's usual form).
    #[must_use]
    pub fn with_args(kind: MsgType, req_id: u32, tx_id: u32, args: &[&[u8]]) -> Self {
        let mut payload = Vec::new();
        for arg in args {
            payload.extend_from_slice(arg);
            payload.push(0);
        }
        Self::new(kind, req_id, tx_id, payload)
    }

    /// The decoded type, if known.
    #[must_use]
    pub const fn msg_type(&self) -> Option<MsgType> {
        MsgType::from_u32(self.kind)
    }

    /// Appends the wire form (header then payload) to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.kind.to_le_bytes());
        out.extend_from_slice(&self.req_id.to_le_bytes());
        out.extend_from_slice(&self.tx_id.to_le_bytes());
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&self.payload);
    }

    /// The wire form.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        self.encode_into(&mut out);
        out
    }

    /// If this is an ERROR reply, the error it names.
    #[must_use]
    pub fn error(&self) -> Option<XsError> {
        if self.msg_type() != Some(MsgType::Error) {
            return None;
        }
        XsError::from_name(self.payload.strip_suffix(&[0]).unwrap_or(&self.payload))
    }
}

/// The reply `OK\0` to `request`.
#[must_use]
pub fn reply_ok(request: &Message) -> Message {
    reply_data(request, b"OK\0".to_vec())
}

/// A reply of the request's type carrying `payload`.
#[must_use]
pub fn reply_data(request: &Message, payload: Vec<u8>) -> Message {
    Message {
        kind: request.kind,
        req_id: request.req_id,
        tx_id: request.tx_id,
        payload,
    }
}

/// An ERROR reply naming `error`.
#[must_use]
pub fn reply_error(request: &Message, error: XsError) -> Message {
    Message::with_args(
        MsgType::Error,
        request.req_id,
        request.tx_id,
        &[error.name().as_bytes()],
    )
}

/// A WATCH_EVENT carrying `path` and `token`.
#[must_use]
pub fn watch_event(path: &[u8], token: &[u8]) -> Message {
    Message::with_args(MsgType::WatchEvent, 0, 0, &[path, token])
}

/// Splits a payload of exactly `N` NUL-terminated arguments (`EINVAL` otherwise).
///
/// # Errors
///
/// [`XsError::Inval`] if the payload does not hold exactly `N` NUL-terminated strings.
pub fn split_args<const N: usize>(payload: &[u8]) -> Result<[&[u8]; N], XsError> {
    let body = payload.strip_suffix(&[0]).ok_or(XsError::Inval)?;
    let mut out = [&body[..0]; N];
    let mut parts = body.split(|&b| b == 0);
    for slot in &mut out {
        *slot = parts.next().ok_or(XsError::Inval)?;
    }
    if parts.next().is_some() {
        return Err(XsError::Inval);
    }
    Ok(out)
}

/// Splits `path\0rest`: the first NUL-terminated argument, then the raw remainder
/// (WRITE's value, which carries no NUL of its own).
///
/// # Errors
///
/// [`XsError::Inval`] if there is no NUL.
pub fn split_first(payload: &[u8]) -> Result<(&[u8], &[u8]), XsError> {
    let at = payload.iter().position(|&b| b == 0).ok_or(XsError::Inval)?;
    Ok((&payload[..at], &payload[at + 1..]))
}

/// A stream the decoder cannot continue: the connection must be dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// A header announced a payload longer than [`PAYLOAD_MAX`].
    TooLong(u32),
}

/// Reassembles messages from a byte stream split arbitrarily.
#[derive(Debug, Default)]
pub struct Decoder {
    header: [u8; HEADER_LEN],
    header_len: usize,
    payload: Vec<u8>,
    payload_len: usize,
    fault: Option<ProtocolError>,
}

impl Decoder {
    /// An empty decoder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The error that stopped the stream, if any; after one no bytes are taken.
    #[must_use]
    pub const fn fault(&self) -> Option<ProtocolError> {
        self.fault
    }

    /// How many bytes complete the header or message in progress: reading at most this
    /// many off the ring never takes bytes of a following message.
    #[must_use]
    pub fn wanted(&self) -> usize {
        if self.fault.is_some() {
            0
        } else if self.header_len < HEADER_LEN {
            HEADER_LEN - self.header_len
        } else {
            self.payload_len - self.payload.len()
        }
    }

    /// Takes bytes from the front of `input`, stopping after the first complete
    /// message. Returns the bytes taken and the message, if one completed.
    ///
    /// # Errors
    ///
    /// [`ProtocolError`] once a header is invalid; the decoder then stays faulted.
    pub fn push(&mut self, input: &[u8]) -> Result<(usize, Option<Message>), ProtocolError> {
        if let Some(fault) = self.fault {
            return Err(fault);
        }
        let mut used = 0;
        if self.header_len < HEADER_LEN {
            let take = (HEADER_LEN - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
            self.header_len += take;
            used += take;
            if self.header_len < HEADER_LEN {
                return Ok((used, None));
            }
            let len = self.word(12);
            if len as usize > PAYLOAD_MAX {
                self.fault = Some(ProtocolError::TooLong(len));
                return Err(ProtocolError::TooLong(len));
            }
            self.payload_len = len as usize;
            self.payload = Vec::with_capacity(self.payload_len);
        }
        let rest = &input[used..];
        let take = (self.payload_len - self.payload.len()).min(rest.len());
        self.payload.extend_from_slice(&rest[..take]);
        used += take;
        if self.payload.len() < self.payload_len {
            return Ok((used, None));
        }
        let message = Message {
            kind: self.word(0),
            req_id: self.word(4),
            tx_id: self.word(8),
            payload: core::mem::take(&mut self.payload),
        };
        self.header_len = 0;
        self.payload_len = 0;
        Ok((used, Some(message)))
    }

    fn word(&self, at: usize) -> u32 {
        u32::from_le_bytes([
            self.header[at],
            self.header[at + 1],
            self.header[at + 2],
            self.header[at + 3],
        ])
    }
}
