//! The probe's arithmetic, kept apart from the machine so it is tested on
//! the host: vector-register patterns and their comparison, cycle averages,
//! how a raw hypercall result is reported.

use core::fmt;

use guest_runtime::Errno;

/// A distinct 16-byte pattern for register `index`: every byte differs from
/// every byte of every other register's pattern, and no pattern is zero.
pub fn vector_patterns() -> [[u8; 16]; 16] {
    let mut patterns = [[0u8; 16]; 16];
    for (register, pattern) in patterns.iter_mut().enumerate() {
        for (byte_index, byte) in pattern.iter_mut().enumerate() {
            *byte = (register * 16 + byte_index) as u8 ^ 0xa5;
        }
    }
    patterns
}

/// SplitMix64's step: a well-mixed 64-bit value from a counter.
fn split_mix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Sixteen 16-byte patterns derived from `seed` (for `sse-switch`): two
/// domains with different seeds get different values in every register
/// (with overwhelming probability), and each register's differs from the
/// others'. A zero half is replaced so no register is all zero.
pub fn seeded_patterns(seed: u64) -> [[u8; 16]; 16] {
    let mut patterns = [[0u8; 16]; 16];
    for (register, pattern) in patterns.iter_mut().enumerate() {
        let base = seed.wrapping_mul(32).wrapping_add(register as u64 * 2);
        for (half, chunk) in pattern.chunks_exact_mut(8).enumerate() {
            let value = match split_mix(base.wrapping_add(half as u64)) {
                0 => 0xa5a5_a5a5_a5a5_a5a5,
                value => value,
            };
            chunk.copy_from_slice(&value.to_le_bytes());
        }
    }
    patterns
}

/// A register's 16 bytes as one hexadecimal number (xmm's little-endian
/// order: the last byte first).
pub struct Hex128<'a>(pub &'a [u8; 16]);

impl fmt::Display for Hex128<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#034x}", u128::from_le_bytes(*self.0))
    }
}

/// A bit per register whose contents differ (bit N: xmmN).
pub fn differing_registers(expected: &[[u8; 16]; 16], found: &[[u8; 16]; 16]) -> u16 {
    expected
        .iter()
        .zip(found)
        .enumerate()
        .filter(|(_, (left, right))| left != right)
        .fold(0, |mask, (index, _)| mask | 1 << index)
}

/// Lists the registers in a [`differing_registers`] mask: `xmm3 xmm7`.
pub struct RegisterList(pub u16);

impl fmt::Display for RegisterList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for index in (0..16).filter(|index| self.0 & 1 << index != 0) {
            if !core::mem::take(&mut first) {
                f.write_str(" ")?;
            }
            write!(f, "xmm{index}")?;
        }
        Ok(())
    }
}

/// Whole cycles per call (0 for no calls).
pub fn cycles_per_call(start: u64, end: u64, calls: u64) -> u64 {
    end.wrapping_sub(start).checked_div(calls).unwrap_or(0)
}

/// A raw hypercall result for the log: `ok <value>` or the errno name.
pub struct Outcome(pub i64);

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            write!(f, "{}", Errno::new(self.0))
        } else {
            write!(f, "ok {}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn patterns_are_distinct_and_nonzero() {
        let patterns = vector_patterns();
        let mut bytes: std::vec::Vec<u8> = patterns.iter().flatten().copied().collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
        assert!(patterns.iter().all(|pattern| pattern != &[0; 16]));
    }

    #[test]
    fn differences_are_found() {
        let expected = vector_patterns();
        let mut found = expected;
        assert_eq!(differing_registers(&expected, &found), 0);
        found[3][0] ^= 1;
        found[15] = [0; 16];
        let mask = differing_registers(&expected, &found);
        assert_eq!(mask, 1 << 3 | 1 << 15);
        assert_eq!(RegisterList(mask).to_string(), "xmm3 xmm15");
        assert_eq!(RegisterList(0).to_string(), "");
    }

    #[test]
    fn seeded_patterns_differ_by_seed_and_register() {
        let one = seeded_patterns(1);
        let two = seeded_patterns(2);
        assert_eq!(seeded_patterns(1), one, "deterministic");
        for register in 0..16 {
            assert_ne!(one[register], two[register]);
            assert_ne!(one[register], [0; 16]);
            for other in register + 1..16 {
                assert_ne!(one[register], one[other]);
            }
        }
        assert_eq!(differing_registers(&one, &two), 0xffff);
        assert_ne!(seeded_patterns(0), seeded_patterns(u64::MAX));
        let mut bytes = [0u8; 16];
        bytes[0] = 0xab;
        bytes[15] = 0x01;
        assert_eq!(Hex128(&bytes).to_string(), "0x010000000000000000000000000000ab");
    }

    #[test]
    fn averages_and_outcomes() {
        assert_eq!(cycles_per_call(100, 1100, 10), 100);
        assert_eq!(cycles_per_call(100, 1100, 0), 0);
        assert_eq!(cycles_per_call(u64::MAX - 9, 10, 4), 5, "the counter may wrap");
        assert_eq!(Outcome(-14).to_string(), "EFAULT");
        assert_eq!(Outcome(16).to_string(), "ok 16");
    }
}
