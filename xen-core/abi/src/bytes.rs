//! Little-endian field access on byte slices, for the layouts' encoders and
//! decoders. Out-of-range offsets read as `None` and write nothing.

pub(crate) fn get_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(offset..offset.checked_add(2)?)?.try_into().ok()?))
}

pub(crate) fn get_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?))
}

pub(crate) fn get_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(offset..offset.checked_add(8)?)?.try_into().ok()?))
}

pub(crate) fn put(bytes: &mut [u8], offset: usize, value: &[u8]) {
    if let Some(slot) = offset.checked_add(value.len()).and_then(|end| bytes.get_mut(offset..end)) {
        slot.copy_from_slice(value);
    }
}
