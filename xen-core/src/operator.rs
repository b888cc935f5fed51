//! The operator's channel: a second serial port on which the host's `xl`
//! talks to the control domain's agent without passing through any other
//! domain. The hypervisor owns the UART; its interrupt handler moves the
//! bytes received into [`OperatorInput`] and the control domain reads them
//! with `CONSOLEIO_read` after `VIRQ_CONSOLE` (as Xen's dom0 reads the serial
//! console's input); it answers with `CONSOLEIO_channel_write`.
//!
//! Nothing is dropped: when the buffer is full the handler stops taking
//! bytes (the UART's receive interrupt is switched off, so the host side is
//! held back by the UART and QEMU's socket), and a read that makes room
//! switches it on again.

use heapless::Deque;

/// Bytes buffered between the UART and the control domain.
pub const INPUT_BYTES: usize = 16 * 1024;

/// Bytes received and not yet read by the control domain.
#[derive(Debug, Default)]
pub struct OperatorInput {
    bytes: Deque<u8, INPUT_BYTES>,
    received: u64,
    held_back: bool,
}

impl OperatorInput {
    /// An empty buffer.
    pub const fn new() -> OperatorInput {
        OperatorInput { bytes: Deque::new(), received: 0, held_back: false }
    }

    /// Takes bytes from `next` (the UART) until it has none or the buffer
    /// is full; returns how many it took. When full, it marks itself
    /// holding back: the caller must stop the UART's receive interrupt.
    pub fn fill(&mut self, mut next: impl FnMut() -> Option<u8>) -> usize {
        let mut taken = 0;
        while !self.bytes.is_full() {
            let Some(byte) = next() else { return taken };
            // Not full: checked above.
            let _ = self.bytes.push_back(byte);
            taken += 1;
        }
        self.received += taken as u64;
        self.held_back = true;
        taken
    }

    /// Copies buffered bytes into `out`; returns how many. Returns `true`
    /// as well when the buffer was holding back and now has room again:
    /// the caller must restart the UART's receive interrupt.
    pub fn read(&mut self, out: &mut [u8]) -> (usize, bool) {
        let mut count = 0;
        while count < out.len() {
            let Some(byte) = self.bytes.pop_front() else { break };
            out[count] = byte;
            count += 1;
        }
        let resume = self.held_back && !self.bytes.is_full();
        if resume {
            self.held_back = false;
        }
        (count, resume)
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether it is holding the UART back.
    pub fn held_back(&self) -> bool {
        self.held_back
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_out_in_order_and_a_full_buffer_holds_back_without_losing_any() {
        let mut input = OperatorInput::new();
        let mut source = (0..INPUT_BYTES as u32 + 100).map(|n| n as u8);
        let taken = input.fill(|| source.next());
        assert_eq!(taken, INPUT_BYTES);
        assert!(input.held_back());
        // The rest stays in the source (the UART), not dropped.
        assert_eq!(source.clone().count(), 100);
        let mut out = [0u8; 10];
        let (count, resume) = input.read(&mut out);
        assert_eq!((count, resume), (10, true));
        assert_eq!(out, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert!(!input.held_back());
        assert_eq!(input.fill(|| source.next()), 10);
        let mut all = alloc::vec![0u8; INPUT_BYTES];
        let (count, _) = input.read(&mut all);
        assert_eq!(count, INPUT_BYTES);
        assert_eq!(all[INPUT_BYTES - 1], ((INPUT_BYTES + 9) % 256) as u8);
    }

    #[test]
    fn an_empty_source_takes_nothing_and_does_not_hold_back() {
        let mut input = OperatorInput::new();
        assert_eq!(input.fill(|| None), 0);
        assert!(!input.held_back());
        assert!(input.is_empty());
        assert_eq!(input.read(&mut [0u8; 4]), (0, false));
    }
}
