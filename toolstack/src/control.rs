//! The host's end of the control channel: a [`Client`] that connects to
//! the running machine's control socket, sends [`control_proto`] requests
//! and waits, with a deadline, for the responses carrying its request ids
//! (stale frames from an earlier connection and line garbage are skipped).
//! [`format`] turns responses into Xen's output shapes.

pub mod format;

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use control_proto::{errno, Decoder, Frame, Request, Response, MAX_CHUNK_BYTES};
use sha2::{Digest, Sha256};

/// The control socket `xl boot` creates and the runtime commands use when
/// neither `--socket` nor `XL_SOCKET` names one:
/// `$XDG_RUNTIME_DIR/xl-control.sock`, else `/tmp/xl-control-$USER.sock`.
pub fn default_socket() -> PathBuf {
    if let Some(directory) = std::env::var_os("XDG_RUNTIME_DIR").filter(|value| !value.is_empty()) {
        return PathBuf::from(directory).join("xl-control.sock");
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "default".to_string());
    std::env::temp_dir().join(format!("xl-control-{user}.sock"))
}

/// Why a runtime command failed.
#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens on the socket: no machine is running.
    NoMachine {
        /// The socket.
        socket: PathBuf,
        /// What connecting said.
        source: io::Error,
    },
    /// No answer came in time.
    Timeout {
        /// The socket.
        socket: PathBuf,
        /// How long `xl` waited.
        waited: Duration,
    },
    /// The machine closed the channel (it stopped, or QEMU quit).
    Closed,
    /// Reading or writing the socket failed.
    Io(io::Error),
    /// The agent answered something that makes no sense here.
    Protocol(String),
    /// The agent refused: Xen's negative errno and its message.
    Agent {
        /// The errno.
        errno: i32,
        /// The agent's message (a denial quotes the AVC line).
        message: String,
    },
}

impl ClientError {
    /// Whether the policy denied the operation.
    pub fn is_denial(&self) -> bool {
        matches!(self, Self::Agent { errno, .. } if *errno == errno::EACCES || *errno == errno::EPERM)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoMachine { socket, source } => write!(
                formatter,
                "no machine is running: cannot connect to {} ({source}); start one with \
                 `xl boot` (or `make run`), or name its control socket with --socket or XL_SOCKET",
                socket.display()
            ),
            Self::Timeout { socket, waited } => write!(
                formatter,
                "no answer from the control domain in {} s on {}: the machine may still be \
                 booting or its agent may be stuck; try again or raise --timeout",
                waited.as_secs_f64(),
                socket.display()
            ),
            Self::Closed => write!(
                formatter,
                "the control channel closed: the machine stopped or QEMU quit"
            ),
            Self::Io(error) => write!(formatter, "control channel: {error}"),
            Self::Protocol(message) => write!(formatter, "control channel: {message}"),
            Self::Agent { errno, message } => {
                let name =
                    errno::name(*errno).map_or_else(|| format!("errno {errno}"), str::to_string);
                if self.is_denial() {
                    write!(formatter, "denied ({name}): {message}")
                } else {
                    write!(formatter, "{message} ({name})")
                }
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// A connection to the control domain's agent.
pub struct Client {
    socket: PathBuf,
    stream: UnixStream,
    decoder: Decoder,
    next_id: u32,
    timeout: Duration,
    frames: Vec<Frame>,
}

impl Client {
    /// Connects to the machine listening on `socket`; every wait for an
    /// answer is bounded by `timeout`.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(socket).map_err(|source| ClientError::NoMachine {
            socket: socket.to_path_buf(),
            source,
        })?;
        // Ids start somewhere new each run, so a stale answer to an earlier
        // `xl` is not taken for ours.
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let next_id = (std::process::id() << 16) ^ clock;
        Ok(Self {
            socket: socket.to_path_buf(),
            stream,
            decoder: Decoder::new(),
            next_id: next_id.max(1),
            timeout,
            frames: Vec::new(),
        })
    }

    /// Sends `request` and returns its id.
    fn send(&mut self, request: &Request) -> Result<u32, ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let bytes = request
            .encode(id)
            .map_err(|error| ClientError::Protocol(error.to_string()))?;
        self.stream
            .write_all(&bytes)
            .map_err(|error| match error.kind() {
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => ClientError::Closed,
                _ => ClientError::Io(error),
            })?;
        Ok(id)
    }

    /// The next response to request `id`, waiting until `deadline` (or for
    /// ever if `None`).
    fn receive(&mut self, id: u32, deadline: Option<Instant>) -> Result<Response, ClientError> {
        loop {
            if let Some(index) = self.frames.iter().position(|frame| frame.request_id == id) {
                let frame = self.frames.remove(index);
                return Response::from_frame(&frame).map_err(|error| {
                    ClientError::Protocol(format!("bad answer to request {id}: {error}"))
                });
            }
            // Frames for other ids are stale: drop them.
            self.frames.clear();
            let wait = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ClientError::Timeout {
                            socket: self.socket.clone(),
                            waited: self.timeout,
                        });
                    }
                    Some(left)
                }
                None => None,
            };
            self.stream
                .set_read_timeout(wait)
                .map_err(ClientError::Io)?;
            let mut buffer = [0u8; 8192];
            let count = match self.stream.read(&mut buffer) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(count) => count,
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(ClientError::Closed)
                }
                Err(error) => return Err(ClientError::Io(error)),
            };
            let frames = &mut self.frames;
            // Frame errors are line noise; the request's deadline covers a
            // lost answer.
            self.decoder
                .push_all(&buffer[..count], |event| frames.extend(event.ok()));
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Sends `request` and returns its one answer; an `Error` answer is
    /// returned as [`ClientError::Agent`].
    pub fn call(&mut self, request: &Request) -> Result<Response, ClientError> {
        let id = self.send(request)?;
        let deadline = self.deadline();
        match self.receive(id, Some(deadline))? {
            Response::Error { errno, message } => Err(ClientError::Agent { errno, message }),
            response => Ok(response),
        }
    }

    /// Sends a stream request and hands every `Text` to `on_text` until
    /// `End`. The agent must accept the stream in time; after that, `live`
    /// streams (a console) wait for ever, others at most the timeout
    /// between frames.
    pub fn stream(
        &mut self,
        request: &Request,
        live: bool,
        mut on_text: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<(), ClientError> {
        let id = self.send(request)?;
        let mut started = false;
        loop {
            let deadline = (!started || !live).then(|| self.deadline());
            match self.receive(id, deadline)? {
                Response::Ok if !started => started = true,
                Response::Text(bytes) if started => on_text(&bytes).map_err(ClientError::Io)?,
                Response::End if started => return Ok(()),
                Response::Error { errno, message } => {
                    return Err(ClientError::Agent { errno, message })
                }
                other => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected {other:?} in a stream"
                    )))
                }
            }
        }
    }

    /// Uploads `data` after `begin` (a `Create` or `LoadPolicy`): each
    /// chunk must be acknowledged; returns the answer to `Commit`.
    pub fn upload(&mut self, begin: &Request, data: &[u8]) -> Result<Response, ClientError> {
        self.expect_ok(begin)?;
        for (index, chunk) in data.chunks(MAX_CHUNK_BYTES).enumerate() {
            let offset = u32::try_from(index * MAX_CHUNK_BYTES)
                .map_err(|_| ClientError::Protocol("image over 4 GiB".to_string()))?;
            self.expect_ok(&Request::Chunk {
                offset,
                bytes: chunk.to_vec(),
            })?;
        }
        self.call(&Request::Commit)
    }

    /// Sends `request`; anything but `Ok` is an error.
    pub fn expect_ok(&mut self, request: &Request) -> Result<(), ClientError> {
        match self.call(request)? {
            Response::Ok => Ok(()),
            other => Err(ClientError::Protocol(format!("expected Ok, got {other:?}"))),
        }
    }
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}
