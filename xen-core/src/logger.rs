//! The `log` backend: each record becomes one line,
//! `(XEN) [   1.234567] W message`, written to the console sink and kept in
//! the [`LogRing`] for `xl dmesg`. The level comes from `loglvl=`.

use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};

use log::{LevelFilter, Log, Metadata, Record};

use crate::log_ring::LogRing;

/// Bytes of log the hypervisor keeps in memory.
pub const LOG_RING_BYTES: usize = 64 * 1024;
/// The longest line a record becomes; longer messages are cut and marked.
pub const MAX_LINE_BYTES: usize = 512;

/// Where lines go besides the ring, and where the time comes from.
pub struct LogSink {
    /// Writes a finished line to the console.
    pub console: fn(&[u8]),
    /// Nanoseconds since boot.
    pub now_ns: fn() -> u64,
}

/// The hypervisor's logger.
pub struct Logger {
    sink: LogSink,
    level: AtomicUsize,
    ring: spin::Mutex<LogRing<LOG_RING_BYTES>>,
}

fn level_to_usize(level: LevelFilter) -> usize {
    level as usize
}

fn level_letter(level: log::Level) -> char {
    match level {
        log::Level::Error => 'E',
        log::Level::Warn => 'W',
        log::Level::Info => 'I',
        log::Level::Debug => 'D',
        log::Level::Trace => 'T',
    }
}

/// A fixed-size line buffer that cuts rather than fails.
struct Line {
    text: heapless::String<MAX_LINE_BYTES>,
    cut: bool,
}

impl Write for Line {
    fn write_str(&mut self, piece: &str) -> core::fmt::Result {
        for character in piece.chars() {
            // Keep room for the cut marker and the newline.
            if self.text.len() + character.len_utf8() > MAX_LINE_BYTES - 8 {
                self.cut = true;
                return Ok(());
            }
            let _ = self.text.push(character);
        }
        Ok(())
    }
}

impl Logger {
    /// A logger at level Info writing to `sink`.
    pub const fn new(sink: LogSink) -> Logger {
        Logger {
            sink,
            level: AtomicUsize::new(LevelFilter::Info as usize),
            ring: spin::Mutex::new(LogRing::new()),
        }
    }

    /// Sets the most detailed level that is logged.
    pub fn set_level(&self, level: LevelFilter) {
        self.level.store(level_to_usize(level), Ordering::Relaxed);
        log::set_max_level(level);
    }

    /// Copies held log text from sequence number `from`; see [`LogRing::read`].
    pub fn read(&self, from: u64, out: &mut [u8]) -> (u64, usize) {
        self.ring.lock().read(from, out)
    }

    /// Formats one line: time stamp, level letter, message.
    fn format(&self, record: &Record<'_>) -> Line {
        let mut line = Line { text: heapless::String::new(), cut: false };
        let now_ns = (self.sink.now_ns)();
        let _ = write!(
            line,
            "(XEN) [{:5}.{:06}] {} {}",
            now_ns / 1_000_000_000,
            (now_ns % 1_000_000_000) / 1_000,
            level_letter(record.level()),
            record.args()
        );
        if line.cut {
            let _ = line.text.push_str(" [cut]");
        }
        let _ = line.text.push('\n');
        line
    }

    /// Writes one line that was formatted elsewhere (a domain's console
    /// output), adding the newline.
    pub fn write_line(&self, text: &[u8]) {
        let mut ring = self.ring.lock();
        (self.sink.console)(text);
        (self.sink.console)(b"\n");
        ring.write(text);
        ring.write(b"\n");
    }

    /// Writes raw text to the console and the ring without formatting (for
    /// the fatal path, which must not wait on the ring's lock forever).
    pub fn emergency_write(&self, text: &[u8]) {
        (self.sink.console)(text);
        if let Some(mut ring) = self.ring.try_lock() {
            ring.write(text);
        }
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() as usize <= self.level.load(Ordering::Relaxed)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = self.format(record);
        let mut ring = self.ring.lock();
        (self.sink.console)(line.text.as_bytes());
        ring.write(line.text.as_bytes());
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    static CONSOLE: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    fn console(bytes: &[u8]) {
        CONSOLE.lock().unwrap().extend_from_slice(bytes);
    }

    fn clock() -> u64 {
        1_234_567_890
    }

    #[test]
    fn lines_go_to_console_and_ring_filtered_by_level() {
        let logger = Logger::new(LogSink { console, now_ns: clock });
        logger.set_level(LevelFilter::Warn);
        logger.log(&Record::builder().level(log::Level::Info).args(format_args!("hidden")).build());
        logger.log(&Record::builder().level(log::Level::Warn).args(format_args!("disk {} gone", 3)).build());
        let expected = "(XEN) [    1.234567] W disk 3 gone\n";
        assert_eq!(String::from_utf8(CONSOLE.lock().unwrap().clone()).unwrap(), expected);
        let mut out = [0u8; 128];
        let (start, count) = logger.read(0, &mut out);
        assert_eq!((start, &out[..count]), (0, expected.as_bytes()));
    }

    #[test]
    fn long_messages_are_cut_and_marked() {
        fn sink(_: &[u8]) {}
        let logger = Logger::new(LogSink { console: sink, now_ns: clock });
        let long = "x".repeat(2000);
        let line = logger.format(&Record::builder().level(log::Level::Error).args(format_args!("{long}")).build());
        assert!(line.text.len() <= MAX_LINE_BYTES);
        assert!(line.text.ends_with(" [cut]\n"));
    }
}
