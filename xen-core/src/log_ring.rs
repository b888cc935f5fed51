//! The hypervisor's log kept in memory, so it can be read back later
//! (`xl dmesg`): a byte ring that overwrites the oldest whole lines when full
//! and numbers every byte ever written, so a reader can resume where it left
//! off and learn how much it missed.

/// A ring of log text holding the last `N` bytes' worth of whole lines.
pub struct LogRing<const N: usize> {
    bytes: [u8; N],
    /// Sequence number of the next byte to be written (bytes ever written).
    head: u64,
    /// Sequence number of the oldest byte still held (always a line start).
    tail: u64,
}

impl<const N: usize> Default for LogRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LogRing<N> {
    /// An empty ring.
    pub const fn new() -> Self {
        LogRing { bytes: [0; N], head: 0, tail: 0 }
    }

    /// Appends text; a line longer than the ring keeps only its end. Whole
    /// old lines are dropped to make room.
    pub fn write(&mut self, text: &[u8]) {
        let text = if text.len() > N {
            // Everything held and the start of this text are lost; the
            // sequence numbers still count every byte.
            let skipped = text.len() - N;
            self.head += skipped as u64;
            self.tail = self.head;
            &text[skipped..]
        } else {
            text
        };
        for &byte in text {
            if self.head - self.tail == N as u64 {
                self.drop_oldest_line();
            }
            self.bytes[(self.head % N as u64) as usize] = byte;
            self.head += 1;
        }
    }

    fn drop_oldest_line(&mut self) {
        while self.tail < self.head {
            let byte = self.bytes[(self.tail % N as u64) as usize];
            self.tail += 1;
            if byte == b'\n' {
                return;
            }
        }
    }

    /// Sequence numbers of the oldest byte held and of the next byte to come.
    pub fn bounds(&self) -> (u64, u64) {
        (self.tail, self.head)
    }

    /// Copies bytes from sequence number `from` into `out`. Returns the
    /// sequence number of the first byte copied (later than `from` when older
    /// bytes were overwritten) and how many bytes were copied.
    pub fn read(&self, from: u64, out: &mut [u8]) -> (u64, usize) {
        let start = from.clamp(self.tail, self.head);
        let available = (self.head - start) as usize;
        let count = available.min(out.len());
        for (index, slot) in out[..count].iter_mut().enumerate() {
            *slot = self.bytes[((start + index as u64) % N as u64) as usize];
        }
        (start, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all<const N: usize>(ring: &LogRing<N>) -> String {
        let mut out = vec![0u8; N];
        let (_, count) = ring.read(0, &mut out);
        String::from_utf8(out[..count].to_vec()).unwrap()
    }

    #[test]
    fn keeps_everything_until_full() {
        let mut ring = LogRing::<64>::new();
        ring.write(b"one\n");
        ring.write(b"two\n");
        assert_eq!(read_all(&ring), "one\ntwo\n");
        assert_eq!(ring.bounds(), (0, 8));
    }

    #[test]
    fn overwrites_whole_oldest_lines() {
        let mut ring = LogRing::<16>::new();
        ring.write(b"aaaa\nbbbb\ncccc\n"); // 15 bytes
        ring.write(b"dd\n");
        assert_eq!(read_all(&ring), "bbbb\ncccc\ndd\n");
        assert_eq!(ring.bounds(), (5, 18));
    }

    #[test]
    fn reader_resumes_and_learns_of_loss() {
        let mut ring = LogRing::<16>::new();
        ring.write(b"first\n");
        let mut out = [0u8; 4];
        let (start, count) = ring.read(0, &mut out);
        assert_eq!((start, count, &out), (0, 4, b"firs"));
        let (start, count) = ring.read(4, &mut out);
        assert_eq!((start, count, &out[..count]), (4, 2, &b"t\n"[..]));
        ring.write(b"second line\nthird\n");
        // The reader asked for byte 6, which was overwritten: it is told
        // where the held text starts.
        let (start, _) = ring.read(6, &mut out);
        assert!(start > 6);
        assert_eq!(ring.bounds(), (8, 24));
    }

    #[test]
    fn a_line_longer_than_the_ring_keeps_its_end() {
        let mut ring = LogRing::<8>::new();
        ring.write(b"0123456789abcdef\n");
        assert_eq!(read_all(&ring), "9abcdef\n");
        assert_eq!(ring.bounds(), (9, 17));
    }
}
