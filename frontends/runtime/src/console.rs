//! Writing to the hypervisor console (`console_io` WRITE), and a small
//! buffered formatter that sends whole lines where it can.

use core::fmt;

use xen_abi::hypercall::console::MAX_WRITE_BYTES;

use crate::hypercall::{check, console_write_chunk, Errno};

/// Writes `bytes` to the hypervisor console in chunks of at most
/// `MAX_WRITE_BYTES`, following short writes. Returns the bytes written;
/// an error on the first chunk is returned as is, a later one ends the
/// write early (the count says how far it got).
pub fn console_write(bytes: &[u8]) -> Result<usize, Errno> {
    write_with(bytes, console_write_chunk)
}

/// [`console_write`] over any chunk writer (a raw hypercall result), so the
/// looping is testable.
fn write_with(bytes: &[u8], mut write_chunk: impl FnMut(&[u8]) -> i64) -> Result<usize, Errno> {
    let mut written = 0;
    while written < bytes.len() {
        let end = bytes.len().min(written + MAX_WRITE_BYTES as usize);
        let chunk = &bytes[written..end];
        match check(write_chunk(chunk)) {
            // Never trust the count beyond what was asked.
            Ok(count) if count > 0 => written += (count as usize).min(chunk.len()),
            Ok(_) => break,
            Err(errno) if written == 0 => return Err(errno),
            Err(_) => break,
        }
    }
    Ok(written)
}

/// Bytes one [`LineWriter`] buffers before it flushes.
pub const LINE_BUFFER_BYTES: usize = 256;

/// A `fmt::Write` that collects text in a fixed buffer and hands it to a
/// sink when full and on [`LineWriter::finish`]; no heap, no lock, so the
/// logger and the panic handler can use it anywhere.
pub struct LineWriter<F: FnMut(&[u8])> {
    buffer: [u8; LINE_BUFFER_BYTES],
    length: usize,
    sink: F,
}

impl<F: FnMut(&[u8])> LineWriter<F> {
    /// An empty writer sending to `sink`.
    pub fn new(sink: F) -> Self {
        LineWriter { buffer: [0; LINE_BUFFER_BYTES], length: 0, sink }
    }

    fn flush(&mut self) {
        if self.length > 0 {
            (self.sink)(&self.buffer[..self.length]);
            self.length = 0;
        }
    }

    /// Ends the line with `\n` and flushes.
    pub fn finish(mut self) {
        let _ = fmt::Write::write_str(&mut self, "\n");
        self.flush();
    }
}

impl<F: FnMut(&[u8])> fmt::Write for LineWriter<F> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text.as_bytes();
        while !rest.is_empty() {
            if self.length == LINE_BUFFER_BYTES {
                self.flush();
            }
            let take = rest.len().min(LINE_BUFFER_BYTES - self.length);
            self.buffer[self.length..self.length + take].copy_from_slice(&rest[..take]);
            self.length += take;
            rest = &rest[take..];
        }
        Ok(())
    }
}

/// A [`LineWriter`] to the hypervisor console.
pub fn console_line() -> LineWriter<impl FnMut(&[u8])> {
    LineWriter::new(|bytes: &[u8]| {
        let _ = console_write(bytes);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::with_responder;
    use core::fmt::Write;
    use std::vec::Vec;
    use xen_abi::errno::{EFAULT, EINVAL};
    use xen_abi::hypercall::{console, CONSOLE_IO};

    #[test]
    fn long_writes_are_chunked() {
        let bytes = [b'x'; 2500];
        let (written, calls) = with_responder(|call| call.arguments[1] as i64, || console_write(&bytes));
        assert_eq!(written, Ok(2500));
        let counts: Vec<u64> = calls.iter().map(|call| call.arguments[1]).collect();
        assert_eq!(counts, [1024, 1024, 452]);
        assert!(calls.iter().all(|call| call.number == CONSOLE_IO && call.arguments[0] == console::WRITE));
        assert_eq!(calls[1].arguments[2], calls[0].arguments[2] + 1024);
        assert_eq!(calls[2].arguments[2], calls[0].arguments[2] + 2048);
    }

    #[test]
    fn short_writes_are_followed_and_errors_reported() {
        let mut counts = Vec::new();
        let written = write_with(&[0; 10], |chunk| {
            counts.push(chunk.len());
            3
        });
        assert_eq!(written, Ok(10));
        assert_eq!(counts, [10, 7, 4, 1]);
        assert_eq!(write_with(b"abc", |_| -EFAULT), Err(Errno::new(EFAULT)));
        let mut first = true;
        let partial = write_with(&[0; 2000], |_| if core::mem::take(&mut first) { 1024 } else { -EINVAL });
        assert_eq!(partial, Ok(1024));
        assert_eq!(write_with(b"abc", |_| 0), Ok(0), "a zero-byte write stops the loop");
        assert_eq!(write_with(b"abc", |_| 1 << 40), Ok(3), "an inflated count is capped");
        assert_eq!(write_with(b"", |_| -EFAULT), Ok(0));
    }

    #[test]
    fn line_writer_flushes_when_full_and_at_the_end() {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut writer = LineWriter::new(|bytes: &[u8]| out.push(bytes.to_vec()));
        let long = "y".repeat(300);
        write!(writer, "{long}").unwrap();
        writer.finish();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), LINE_BUFFER_BYTES);
        assert_eq!(out[1].len(), 300 - LINE_BUFFER_BYTES + 1);
        assert_eq!(out[1].last(), Some(&b'\n'));
    }
}
