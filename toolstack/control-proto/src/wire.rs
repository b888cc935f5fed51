//! The payload encoding's primitives: little-endian integers, `u32`-length
//! byte strings and UTF-8 strings, `u8`-tagged options, `u32`-counted
//! lists. A [`Reader`] never reads past its slice and reports truncation.

use alloc::string::String;
use alloc::vec::Vec;

use crate::message::MessageError;

/// Appends encoded fields to a payload.
pub(crate) struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out }
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn i32(&mut self, value: i32) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// A `u32` length, then the bytes.
    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.u32(value.len() as u32);
        self.out.extend_from_slice(value);
    }

    pub(crate) fn string(&mut self, value: &str) {
        self.bytes(value.as_bytes());
    }

    pub(crate) fn fixed(&mut self, value: &[u8]) {
        self.out.extend_from_slice(value);
    }

    /// `0`, or `1` then the value.
    pub(crate) fn option<T>(&mut self, value: Option<T>, mut write: impl FnMut(&mut Self, T)) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                write(self, value);
            }
        }
    }
}

/// Reads encoded fields from a payload.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn take(&mut self, count: usize) -> Result<&'a [u8], MessageError> {
        if count > self.bytes.len() {
            return Err(MessageError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, MessageError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MessageError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, MessageError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, MessageError> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, MessageError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn sha256(&mut self) -> Result<[u8; 32], MessageError> {
        self.array()
    }

    pub(crate) fn bytes(&mut self) -> Result<Vec<u8>, MessageError> {
        let length = self.u32()? as usize;
        Ok(self.take(length)?.to_vec())
    }

    pub(crate) fn string(&mut self) -> Result<String, MessageError> {
        String::from_utf8(self.bytes()?).map_err(|_| MessageError::InvalidUtf8)
    }

    pub(crate) fn option<T>(
        &mut self,
        field: &'static str,
        read: impl FnOnce(&mut Self) -> Result<T, MessageError>,
    ) -> Result<Option<T>, MessageError> {
        match self.u8()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            other => Err(MessageError::InvalidValue {
                field,
                value: u32::from(other),
            }),
        }
    }

    /// A `u32` count, then that many items. The count is not trusted for
    /// allocation: each item must be there.
    pub(crate) fn list<T>(
        &mut self,
        mut read: impl FnMut(&mut Self) -> Result<T, MessageError>,
    ) -> Result<Vec<T>, MessageError> {
        let count = self.u32()? as usize;
        let mut items = Vec::new();
        for _ in 0..count {
            items.push(read(self)?);
        }
        Ok(items)
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(self) -> Result<(), MessageError> {
        match self.bytes.len() {
            0 => Ok(()),
            extra => Err(MessageError::TrailingBytes(extra)),
        }
    }
}
