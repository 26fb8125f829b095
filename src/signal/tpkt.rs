//! TPKT (RFC 1006) headers: a pure parser. Stream framing lives in `track::framing::Tpkt`.
//!
//! A TPKT is a 4-byte header (version 3, a reserved octet, a 16-bit length that counts the
//! header) and a payload: a Q.931/H.225 message on tcp/1720, an H.245 message on the H.245
//! connection. TCP does not keep those boundaries: NetMeeting sends the header alone, one
//! segment may hold several TPKTs and one TPKT may span many segments; the trackers' reassembler
//! and TPKT framer rebuild them.

use std::fmt;

/// Length of the TPKT header.
pub const HEADER_LEN: usize = 4;
/// The only TPKT version.
pub const VERSION: u8 = 3;

/// A TPKT header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TpktHeader {
    pub version: u8,
    pub reserved: u8,
    /// Total length, header included.
    pub length: u16,
}

/// What was wrong with a TPKT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpktErrorKind {
    /// Fewer bytes than the header or than its length says.
    Truncated,
    /// Version is not 3.
    BadVersion,
    /// Length smaller than the header.
    BadLength,
}

/// A TPKT error and the byte offset it refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("TPKT {kind} at byte {offset}")]
pub struct TpktError {
    pub kind: TpktErrorKind,
    pub offset: usize,
}

impl fmt::Display for TpktErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TpktErrorKind::Truncated => "truncated",
            TpktErrorKind::BadVersion => "version is not 3",
            TpktErrorKind::BadLength => "length shorter than the header",
        })
    }
}

/// Parses a TPKT header.
pub fn parse_header(bytes: &[u8]) -> Result<TpktHeader, TpktError> {
    let Some(&[version, reserved, hi, lo]) = bytes.get(..HEADER_LEN) else {
        return Err(TpktError {
            kind: TpktErrorKind::Truncated,
            offset: bytes.len(),
        });
    };
    let header = TpktHeader {
        version,
        reserved,
        length: u16::from_be_bytes([hi, lo]),
    };
    if version != VERSION {
        return Err(TpktError {
            kind: TpktErrorKind::BadVersion,
            offset: 0,
        });
    }
    if usize::from(header.length) < HEADER_LEN {
        return Err(TpktError {
            kind: TpktErrorKind::BadLength,
            offset: 2,
        });
    }
    Ok(header)
}

/// Splits one whole TPKT off the front of `bytes`: `(payload, rest)`.
pub fn split_frame(bytes: &[u8]) -> Result<(&[u8], &[u8]), TpktError> {
    let header = parse_header(bytes)?;
    let len = usize::from(header.length);
    let frame = bytes.get(HEADER_LEN..len).ok_or(TpktError {
        kind: TpktErrorKind::Truncated,
        offset: bytes.len(),
    })?;
    Ok((frame, bytes.get(len..).unwrap_or_default()))
}
