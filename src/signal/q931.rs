//! Q.931 message walk for H.225.0 call signalling: protocol discriminator, call reference,
//! message type, then information elements up to the User-user element (0x7e), whose contents
//! are the PER-encoded `H323-UserInformation`.
//!
//! H.225.0 changes one rule of Q.931: the User-user element has a two-octet length.

use std::fmt;

/// Q.931 protocol discriminator.
pub const PROTOCOL_DISCRIMINATOR: u8 = 0x08;
/// Information element identifier of User-user.
pub const IE_USER_USER: u8 = 0x7e;
/// User-user protocol discriminator "X.208/X.209 coded user information" (H.225.0).
pub const UU_PROTOCOL_X208: u8 = 0x05;

/// Q.931 message types used by H.225.0.
pub mod msg {
    pub const ALERTING: u8 = 0x01;
    pub const CALL_PROCEEDING: u8 = 0x02;
    pub const PROGRESS: u8 = 0x03;
    pub const SETUP: u8 = 0x05;
    pub const CONNECT: u8 = 0x07;
    pub const SETUP_ACKNOWLEDGE: u8 = 0x0d;
    pub const RELEASE_COMPLETE: u8 = 0x5a;
    pub const FACILITY: u8 = 0x62;
    pub const NOTIFY: u8 = 0x6e;
    pub const STATUS_ENQUIRY: u8 = 0x75;
    pub const INFORMATION: u8 = 0x7b;
    pub const STATUS: u8 = 0x7d;
}

/// Name of a Q.931 message type, for reports.
pub fn message_name(message_type: u8) -> &'static str {
    match message_type {
        msg::ALERTING => "Alerting",
        msg::CALL_PROCEEDING => "CallProceeding",
        msg::PROGRESS => "Progress",
        msg::SETUP => "Setup",
        msg::CONNECT => "Connect",
        msg::SETUP_ACKNOWLEDGE => "SetupAcknowledge",
        msg::RELEASE_COMPLETE => "ReleaseComplete",
        msg::FACILITY => "Facility",
        msg::NOTIFY => "Notify",
        msg::STATUS_ENQUIRY => "StatusEnquiry",
        msg::INFORMATION => "Information",
        msg::STATUS => "Status",
        _ => "unknown",
    }
}

/// A Q.931 message, borrowing the User-user contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q931Message<'a> {
    /// Call reference value (up to the first 4 octets, big-endian) without the flag bit.
    pub call_ref: u32,
    /// The call reference flag: set in messages sent by the side that did not originate the call.
    pub call_ref_flag: bool,
    pub message_type: u8,
    /// Protocol discriminator of the User-user element, if there is one.
    pub uu_protocol: Option<u8>,
    /// The User-user contents after its protocol discriminator.
    pub user_user: Option<&'a [u8]>,
}

/// What was wrong with a Q.931 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Q931ErrorKind {
    /// The first octet is not 0x08.
    NotQ931,
    /// The message ends inside its header or inside an information element.
    Truncated,
    /// The User-user element is empty (no protocol discriminator).
    EmptyUserUser,
}

/// A Q.931 error and the byte offset where it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Q.931 {kind} at byte {offset}")]
pub struct Q931Error {
    pub kind: Q931ErrorKind,
    pub offset: usize,
}

impl fmt::Display for Q931ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Q931ErrorKind::NotQ931 => "protocol discriminator is not 0x08",
            Q931ErrorKind::Truncated => "message truncated",
            Q931ErrorKind::EmptyUserUser => "empty User-user element",
        })
    }
}

fn err(kind: Q931ErrorKind, offset: usize) -> Q931Error {
    Q931Error { kind, offset }
}

/// Parses a Q.931 message (a TPKT payload on tcp/1720). Information elements after the first
/// User-user element are not looked at.
pub fn parse(bytes: &[u8]) -> Result<Q931Message<'_>, Q931Error> {
    let truncated = |at: usize| err(Q931ErrorKind::Truncated, at);
    match bytes.first() {
        Some(&PROTOCOL_DISCRIMINATOR) => {}
        Some(_) => return Err(err(Q931ErrorKind::NotQ931, 0)),
        None => return Err(truncated(0)),
    }
    let cr_len = usize::from(bytes.get(1).ok_or(truncated(1))? & 0x0f);
    let cr = bytes.get(2..2 + cr_len).ok_or(truncated(2))?;
    let call_ref_flag = cr.first().is_some_and(|b| b & 0x80 != 0);
    let call_ref = cr.iter().take(4).enumerate().fold(0u32, |v, (i, &b)| {
        (v << 8) | u32::from(if i == 0 { b & 0x7f } else { b })
    });
    let mut pos = 2 + cr_len;
    let mut message_type = *bytes.get(pos).ok_or(truncated(pos))?;
    pos += 1;
    if message_type == 0 {
        // Escape to a nationally specific message type, which follows.
        message_type = *bytes.get(pos).ok_or(truncated(pos))?;
        pos += 1;
    }
    let mut msg = Q931Message {
        call_ref,
        call_ref_flag,
        message_type,
        uu_protocol: None,
        user_user: None,
    };
    if let Some((proto, contents)) = find_user_user(bytes, pos)? {
        msg.uu_protocol = Some(proto);
        msg.user_user = Some(contents);
    }
    Ok(msg)
}

/// Walks the information elements from `pos`; returns the first codeset-0 User-user element.
fn find_user_user(bytes: &[u8], mut pos: usize) -> Result<Option<(u8, &[u8])>, Q931Error> {
    let truncated = |at: usize| err(Q931ErrorKind::Truncated, at);
    let mut locked_codeset = 0u8;
    let mut next_codeset: Option<u8> = None;
    while let Some(&id) = bytes.get(pos) {
        let codeset = next_codeset.take().unwrap_or(locked_codeset);
        if id & 0x80 != 0 {
            // Single-octet element. Shift (0x9X) changes the codeset of what follows:
            // locking for all later elements, non-locking (bit 3 set) for the next one only.
            if id & 0xf0 == 0x90 {
                if id & 0x08 != 0 {
                    next_codeset = Some(id & 0x07);
                } else {
                    locked_codeset = id & 0x07;
                }
            }
            pos += 1;
            continue;
        }
        if id == IE_USER_USER && codeset == 0 {
            let Some(&[hi, lo]) = bytes.get(pos + 1..pos + 3) else {
                return Err(truncated(pos + 1));
            };
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            let contents = bytes
                .get(pos + 3..pos + 3 + len)
                .ok_or(truncated(pos + 3))?;
            let (&proto, rest) = contents
                .split_first()
                .ok_or(err(Q931ErrorKind::EmptyUserUser, pos))?;
            return Ok(Some((proto, rest)));
        }
        let len = usize::from(*bytes.get(pos + 1).ok_or(truncated(pos + 1))?);
        pos += 2 + len;
        if pos > bytes.len() {
            return Err(truncated(pos - len));
        }
    }
    Ok(None)
}

#[cfg(test)]
#[path = "q931_tests.rs"]
mod tests;
