//! Strict readers for values a guest or driver domain wrote (XSA-175/178 class): a
//! value is opaque bytes until one of these accepts it. No whitespace, sign, leading
//! zero or overflow is tolerated.

use crate::error::XsError;

/// XenbusState, as written in a device's `state` node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[allow(missing_docs)] // reason: the names are Xen's XenbusState names
pub enum XenbusState {
    Unknown = 0,
    Initialising = 1,
    InitWait = 2,
    Initialised = 3,
    Connected = 4,
    Closing = 5,
    Closed = 6,
    Reconfiguring = 7,
    Reconfigured = 8,
}

impl XenbusState {
    /// The value to write into a `state` node.
    #[must_use]
    pub fn to_value(self) -> alloc::vec::Vec<u8> {
        alloc::format!("{}", self as u32).into_bytes()
    }
}

/// Parses a decimal u32: ASCII digits only, no leading zero (except `0` itself),
/// at most ten digits and no overflow.
///
/// # Errors
///
/// [`XsError::Inval`] on anything else.
pub fn parse_u32(value: &[u8]) -> Result<u32, XsError> {
    if value.is_empty() || value.len() > 10 || (value.len() > 1 && value[0] == b'0') {
        return Err(XsError::Inval);
    }
    let mut n: u32 = 0;
    for &c in value {
        if !c.is_ascii_digit() {
            return Err(XsError::Inval);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(c - b'0')))
            .ok_or(XsError::Inval)?;
    }
    Ok(n)
}

/// Parses a domid (a decimal u16, as Xen's `domid_t`).
///
/// # Errors
///
/// [`XsError::Inval`] if not a decimal below 65536.
pub fn parse_domid(value: &[u8]) -> Result<u32, XsError> {
    let n = parse_u32(value)?;
    if n > u32::from(u16::MAX) {
        return Err(XsError::Inval);
    }
    Ok(n)
}

/// Parses a `state` node.
///
/// # Errors
///
/// [`XsError::Inval`] if not one of the nine XenbusState values.
pub fn parse_state(value: &[u8]) -> Result<XenbusState, XsError> {
    Ok(match parse_u32(value)? {
        0 => XenbusState::Unknown,
        1 => XenbusState::Initialising,
        2 => XenbusState::InitWait,
        3 => XenbusState::Initialised,
        4 => XenbusState::Connected,
        5 => XenbusState::Closing,
        6 => XenbusState::Closed,
        7 => XenbusState::Reconfiguring,
        8 => XenbusState::Reconfigured,
        _ => return Err(XsError::Inval),
    })
}
