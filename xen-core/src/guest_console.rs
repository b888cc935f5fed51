//! What a domain writes with `console_io`: split into lines, each line
//! prefixed `(dN) ` like Xen's, control characters replaced (a hostile
//! domain must not drive the operator's terminal with escape sequences), and
//! rate-limited per domain with a token bucket so a flood cannot drown the
//! log. Dropped bytes are counted and reported.

/// Longest line kept; longer lines are emitted in pieces.
pub const LINE_BYTES: usize = 160;
/// Bytes a domain may write in a burst.
pub const BURST_BYTES: u64 = 16 * 1024;
/// Bytes per second a domain may sustain.
pub const RATE_BYTES_PER_SECOND: u64 = 32 * 1024;

/// One domain's console state.
pub struct GuestConsole {
    domain: u16,
    line: heapless::Vec<u8, LINE_BYTES>,
    tokens: u64,
    last_refill_ns: u64,
    dropped_bytes: u64,
    reported_dropped_bytes: u64,
}

impl GuestConsole {
    /// A console for domain `domain`, with a full bucket.
    pub fn new(domain: u16, now_ns: u64) -> GuestConsole {
        GuestConsole {
            domain,
            line: heapless::Vec::new(),
            tokens: BURST_BYTES,
            last_refill_ns: now_ns,
            dropped_bytes: 0,
            reported_dropped_bytes: 0,
        }
    }

    /// Bytes dropped by the rate limit so far.
    pub fn dropped_bytes(&self) -> u64 {
        self.dropped_bytes
    }

    fn refill(&mut self, now_ns: u64) {
        let elapsed_ns = now_ns.saturating_sub(self.last_refill_ns);
        let earned = u128::from(elapsed_ns) * u128::from(RATE_BYTES_PER_SECOND) / 1_000_000_000;
        if earned > 0 {
            self.tokens = (self.tokens + u64::try_from(earned).unwrap_or(u64::MAX)).min(BURST_BYTES);
            self.last_refill_ns = now_ns;
        }
    }

    /// Takes bytes the domain wrote; calls `emit` with each finished line
    /// (prefix included, no newline).
    pub fn write(&mut self, bytes: &[u8], now_ns: u64, emit: &mut dyn FnMut(&[u8])) {
        self.refill(now_ns);
        let allowed = (bytes.len() as u64).min(self.tokens) as usize;
        self.tokens -= allowed as u64;
        self.dropped_bytes += (bytes.len() - allowed) as u64;
        if self.dropped_bytes > self.reported_dropped_bytes && self.tokens > 0 {
            let mut note: heapless::String<96> = heapless::String::new();
            let _ = core::fmt::Write::write_fmt(
                &mut note,
                format_args!("(d{}) [console: {} bytes dropped by the rate limit]", self.domain, self.dropped_bytes - self.reported_dropped_bytes),
            );
            self.reported_dropped_bytes = self.dropped_bytes;
            emit(note.as_bytes());
        }
        for &byte in &bytes[..allowed] {
            match byte {
                b'\n' => self.flush(emit),
                b'\r' => {}
                b'\t' | 0x20..=0x7e => self.push(byte, emit),
                _ => self.push(b'?', emit),
            }
        }
    }

    fn push(&mut self, byte: u8, emit: &mut dyn FnMut(&[u8])) {
        if self.line.push(byte).is_err() {
            self.flush(emit);
            let _ = self.line.push(byte);
        }
    }

    /// Emits any partial line (at shutdown).
    pub fn flush(&mut self, emit: &mut dyn FnMut(&[u8])) {
        let mut text: heapless::Vec<u8, { LINE_BYTES + 16 }> = heapless::Vec::new();
        let mut prefix: heapless::String<16> = heapless::String::new();
        let _ = core::fmt::Write::write_fmt(&mut prefix, format_args!("(d{}) ", self.domain));
        let _ = text.extend_from_slice(prefix.as_bytes());
        let _ = text.extend_from_slice(&self.line);
        self.line.clear();
        emit(&text);
    }

    /// Whether a partial line is waiting.
    pub fn has_partial_line(&self) -> bool {
        !self.line.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(console: &mut GuestConsole, bytes: &[u8], now_ns: u64) -> Vec<String> {
        let mut lines = Vec::new();
        console.write(bytes, now_ns, &mut |line| lines.push(String::from_utf8(line.to_vec()).unwrap()));
        lines
    }

    #[test]
    fn lines_are_prefixed_and_split() {
        let mut console = GuestConsole::new(3, 0);
        assert_eq!(collect(&mut console, b"hello\nwor", 0), vec!["(d3) hello"]);
        assert!(console.has_partial_line());
        assert_eq!(collect(&mut console, b"ld\r\n", 0), vec!["(d3) world"]);
    }

    #[test]
    fn control_characters_are_replaced() {
        let mut console = GuestConsole::new(1, 0);
        let lines = collect(&mut console, b"\x1b[2Jgone\x07\xff\n", 0);
        assert_eq!(lines, vec!["(d1) ?[2Jgone??"]);
    }

    #[test]
    fn long_lines_come_out_in_pieces() {
        let mut console = GuestConsole::new(1, 0);
        let long = vec![b'x'; LINE_BYTES + 10];
        let lines = collect(&mut console, &long, 0);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), 5 + LINE_BYTES);
    }

    #[test]
    fn floods_are_rate_limited_and_reported() {
        let mut console = GuestConsole::new(2, 0);
        let chunk = [b'a'; 1000];
        let mut emitted = 0usize;
        for _ in 0..100 {
            console.write(&chunk, 0, &mut |line| emitted += line.len());
        }
        assert_eq!(console.dropped_bytes(), 100_000 - BURST_BYTES);
        // A second later the bucket has refilled and the loss is reported.
        let lines = collect(&mut console, b"\n", 1_000_000_000);
        assert!(lines[0].contains("bytes dropped by the rate limit"), "{lines:?}");
        // What got through is the burst, plus a prefix per line.
        assert!(emitted <= BURST_BYTES as usize + (BURST_BYTES as usize / LINE_BYTES + 2) * 8);
    }
}
