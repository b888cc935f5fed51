//! Little-endian field access on byte slices: the one set of readers every
//! parser of a layout in this crate uses (the hypervisor's included), so a
//! bounds check is written once. `get_*` return `None` for an out-of-range
//! field; `*_or_zero` read such a field as zero, for parsers that checked
//! the length up front; `put` writes nothing out of range.

/// The `N` bytes at `offset`, if they are all in `bytes`.
#[inline]
pub fn field<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

/// A little-endian u16 at `offset`.
#[inline]
pub fn get_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    field(bytes, offset).map(u16::from_le_bytes)
}

/// A little-endian u32 at `offset`.
#[inline]
pub fn get_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    field(bytes, offset).map(u32::from_le_bytes)
}

/// A little-endian u64 at `offset`.
#[inline]
pub fn get_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    field(bytes, offset).map(u64::from_le_bytes)
}

/// A little-endian u16 at `offset`, zero if out of range.
#[inline]
pub fn u16_or_zero(bytes: &[u8], offset: usize) -> u16 {
    get_u16(bytes, offset).unwrap_or(0)
}

/// A little-endian u32 at `offset`, zero if out of range.
#[inline]
pub fn u32_or_zero(bytes: &[u8], offset: usize) -> u32 {
    get_u32(bytes, offset).unwrap_or(0)
}

/// A little-endian u64 at `offset`, zero if out of range.
#[inline]
pub fn u64_or_zero(bytes: &[u8], offset: usize) -> u64 {
    get_u64(bytes, offset).unwrap_or(0)
}

/// Writes `value` at `offset` if it fits.
#[inline]
pub fn put(bytes: &mut [u8], offset: usize, value: &[u8]) {
    if let Some(slot) = offset.checked_add(value.len()).and_then(|end| bytes.get_mut(offset..end)) {
        slot.copy_from_slice(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_range_out_of_range_and_wrapping() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(get_u16(&bytes, 0), Some(0x0201));
        assert_eq!(get_u32(&bytes, 5), Some(0x0908_0706));
        assert_eq!(get_u64(&bytes, 1), Some(0x0908_0706_0504_0302));
        assert_eq!(get_u32(&bytes, 6), None);
        assert_eq!(get_u16(&bytes, usize::MAX), None);
        assert_eq!(u64_or_zero(&bytes, 2), 0);
        let mut out = [0u8; 4];
        put(&mut out, 2, &[9, 9]);
        put(&mut out, 3, &[7, 7]);
        put(&mut out, usize::MAX, &[7]);
        assert_eq!(out, [0, 0, 9, 9]);
    }
}
