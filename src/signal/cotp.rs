//! The OSI stack of an X.400 MTA connection over RFC 1006 (tcp/102), as far as exflow needs it to
//! tell a refused connection from an accepted one: COTP TPDUs (ISO 8073: CR, CC, DR, DT, ER), the
//! session SPDU a DT carries (ISO 8327: CN, AC, RF, AB, ...) and, in a session refusal or accept,
//! the ACSE AARE result, the RTSE RTORJ refuse reason and the X.411 MTA bind error (X.880's
//! bind-error inside RTORJ's userDataRJ). The presentation layer is not decoded: the user data is
//! walked as BER, bounded in depth and nodes.

/// A COTP TPDU (the payload of one TPKT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tpdu<'a> {
    /// Connection request.
    Cr,
    /// Connection confirm.
    Cc,
    /// Disconnect request, with its reason.
    Dr { reason: u8 },
    /// Disconnect confirm.
    Dc,
    /// Data: end-of-TSDU flag and the user data.
    Dt { eot: bool, data: &'a [u8] },
    /// TPDU error, with its reject cause.
    Er { cause: u8 },
    /// Any other TPDU code (expedited data, acknowledgements).
    Other(u8),
}

/// Why a TPDU could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CotpError {
    #[error("TPDU shorter than its length indicator")]
    Short,
}

/// Decodes one TPDU: length indicator, code (high nibble), fixed part.
pub fn parse_tpdu(b: &[u8]) -> Result<Tpdu<'_>, CotpError> {
    let (&li, rest) = b.split_first().ok_or(CotpError::Short)?;
    let li = usize::from(li);
    let header = rest.get(..li).ok_or(CotpError::Short)?;
    let &code = header.first().ok_or(CotpError::Short)?;
    Ok(match code & 0xf0 {
        0xe0 => Tpdu::Cr,
        0xd0 => Tpdu::Cc,
        0x80 => Tpdu::Dr {
            reason: *header.get(5).ok_or(CotpError::Short)?,
        },
        0xc0 => Tpdu::Dc,
        0xf0 => Tpdu::Dt {
            eot: header.get(1).is_some_and(|&n| n & 0x80 != 0),
            data: rest.get(li..).unwrap_or_default(),
        },
        0x70 => Tpdu::Er {
            cause: *header.get(3).ok_or(CotpError::Short)?,
        },
        c => Tpdu::Other(c),
    })
}

/// A DR's reason in words (ISO 8073 13.5.3 e).
pub fn dr_reason(r: u8) -> &'static str {
    match r {
        0 => "reason not specified",
        1 => "congestion at TSAP",
        2 => "session entity not attached to TSAP",
        3 => "address unknown",
        128 => "normal disconnect",
        129 => "remote transport entity congestion",
        130 => "connection negotiation failed",
        131 => "duplicate source reference",
        132 => "mismatched references",
        133 => "protocol error",
        135 => "reference overflow",
        136 => "connection request refused on this network connection",
        138 => "header or parameter length invalid",
        _ => "unknown reason",
    }
}

/// An ER's reject cause in words.
pub fn er_cause(c: u8) -> &'static str {
    match c {
        1 => "invalid parameter code",
        2 => "invalid TPDU type",
        3 => "invalid parameter value",
        _ => "reason not specified",
    }
}

/// Session SPDU types exflow looks at (ISO 8327-1 8.3).
pub mod spdu {
    pub const CONNECT: u8 = 13;
    pub const ACCEPT: u8 = 14;
    pub const REFUSE: u8 = 12;
    pub const ABORT: u8 = 25;
    pub const FINISH: u8 = 9;
    pub const DISCONNECT: u8 = 10;
}

/// The first SPDU of a session TSDU: its type and parameter bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spdu<'a> {
    pub kind: u8,
    pub params: &'a [u8],
}

/// A session length: one octet, or 0xff and two.
fn ses_len(b: &[u8]) -> Option<(usize, usize)> {
    match *b {
        [0xff, hi, lo, ..] => Some((3, usize::from(u16::from_be_bytes([hi, lo])))),
        [l, ..] => Some((1, usize::from(l))),
        [] => None,
    }
}

/// The first SPDU of a TSDU.
pub fn parse_spdu(b: &[u8]) -> Option<Spdu<'_>> {
    let (&kind, rest) = b.split_first()?;
    let (n, len) = ses_len(rest)?;
    let params = rest.get(n..)?;
    Some(Spdu {
        kind,
        params: params.get(..len).unwrap_or(params),
    })
}

/// Parameter codes carrying user data (Reason Code's octets after the first, User Data,
/// Extended User Data).
const PI_REASON: u8 = 50;
const PI_USER_DATA: u8 = 193;
const PI_EXT_USER_DATA: u8 = 194;

/// A refusal's reason code and the user data that follows it; a CN/AC/AB's user data.
pub fn spdu_user_data<'a>(s: &Spdu<'a>) -> (Option<u8>, &'a [u8]) {
    let mut b = s.params;
    let mut reason = None;
    let mut data: &[u8] = &[];
    let mut guard = 0;
    while let Some((&pi, rest)) = b.split_first() {
        guard += 1;
        let Some((n, len)) = ses_len(rest).filter(|_| guard < 64) else {
            break;
        };
        let Some(v) = rest.get(n..n + len) else {
            break;
        };
        match pi {
            PI_REASON => {
                reason = v.first().copied();
                data = v.get(1..).unwrap_or_default();
            }
            PI_USER_DATA | PI_EXT_USER_DATA => data = v,
            _ => {}
        }
        b = rest.get(n + len..).unwrap_or_default();
    }
    (reason, data)
}

/// A session refusal's reason code in words (ISO 8327-1 8.3.5.17).
pub fn rf_reason(r: u8) -> &'static str {
    match r {
        0 => "rejected by the called session user",
        1 => "called session user congested",
        2 => "rejected by the called session user",
        129 => "session selector unknown",
        130 => "session user not attached to SSAP",
        131 => "session entity congested",
        132 => "session protocol versions not supported",
        133 => "rejected by the session entity",
        134 => "rejected by the session entity: implementation restriction",
        _ => "reason unknown",
    }
}

/// What the session user data of an accept or refusal says about the association and the MTA
/// bind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BindAnswer {
    /// ACSE AARE `result`: 0 accepted, 1 rejected (permanent), 2 rejected (transient).
    pub acse_result: Option<u8>,
    /// An RTSE RTOAC (association accepted by RTSE).
    pub rtoac: bool,
    /// An RTSE RTORJ, with its `refuseReason` when present.
    pub rtorj: bool,
    pub refuse_reason: Option<u8>,
    /// The bind-error value inside RTORJ's `userDataRJ` (X.411 `MTABindError`).
    pub bind_error: Option<u8>,
}

/// RTSE `RefuseReason` in words (X.228).
pub fn refuse_reason(r: u8) -> &'static str {
    match r {
        0 => "RTS busy",
        1 => "cannot recover",
        2 => "validation failure",
        3 => "unacceptable dialogue mode",
        _ => "unknown reason",
    }
}

/// X.411 `MTABindError` in words.
pub fn mta_bind_error(e: u8) -> &'static str {
    match e {
        0 => "busy",
        2 => "authentication error",
        3 => "unacceptable dialogue mode",
        4 => "unacceptable security context",
        5 => "inadequate association confidentiality",
        _ => "unknown bind error",
    }
}

/// One BER TLV: tag octet, content, and the rest after it. Multi-octet tags and indefinite
/// lengths are not followed.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let &tag = b.first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (head, len) = crate::track::framing::ber_header(b).ok()??;
    let content = b.get(head..head.checked_add(len)?)?;
    Some((tag, content, &b[head + len..]))
}

fn small_int(content: &[u8]) -> Option<u8> {
    match *content {
        [v] => Some(v),
        [0, v] => Some(v),
        _ => None,
    }
}

/// The first primitive INTEGER at or under `b` (a tagged wrapper around it).
fn first_int(b: &[u8], depth: u8) -> Option<u8> {
    let (tag, content, _) = tlv(b)?;
    match tag {
        0x02 | 0x0a => small_int(content),
        t if t & 0x20 != 0 && depth < 4 => first_int(content, depth + 1),
        _ => None,
    }
}

/// Walks the user data of an accept or refusal (presentation, ACSE, RTSE, ROS), bounded.
pub fn bind_answer(data: &[u8]) -> BindAnswer {
    let mut a = BindAnswer::default();
    let mut nodes = 0u32;
    walk(data, 0, &mut a, &mut nodes);
    a
}

fn walk(mut b: &[u8], depth: u8, a: &mut BindAnswer, nodes: &mut u32) {
    while let Some((tag, content, rest)) = tlv(b) {
        *nodes += 1;
        if *nodes > 256 || depth > 12 {
            return;
        }
        match tag {
            // RTORJ [18] SET { refuseReason [0] INTEGER, userDataRJ [1] ANY }.
            0xb2 if !a.rtorj => {
                a.rtorj = true;
                let mut c = content;
                while let Some((t, v, r)) = tlv(c) {
                    match t {
                        0x80 => a.refuse_reason = small_int(v),
                        // X.880 bind-error [18] around the MTABindError.
                        0xa1 => {
                            if let Some((0xb2, e, _)) = tlv(v) {
                                a.bind_error = first_int(e, 0);
                            }
                        }
                        _ => {}
                    }
                    c = r;
                }
            }
            // RTOAC [17].
            0xb1 => a.rtoac = true,
            // AARE [APPLICATION 1] has `result` [2]; presentation's fully-encoded-data, with the
            // same tag, holds SEQUENCEs only.
            0x61 => {
                let mut c = content;
                while let Some((t, v, r)) = tlv(c) {
                    if t == 0xa2 && a.acse_result.is_none() {
                        a.acse_result = first_int(v, 0);
                    }
                    c = r;
                }
                walk(content, depth + 1, a, nodes);
            }
            t if t & 0x20 != 0 => walk(content, depth + 1, a, nodes),
            _ => {}
        }
        b = rest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refusal of `p772-transfer-success.pcap` frame 7 (TPKT payload): DT, session REFUSE,
    /// presentation CPR, ACSE AARE rejected, RTORJ with an MTA bind error `busy`.
    pub(crate) const REFUSAL: &[u8] = &[
        0x02, 0xf0, 0x80, 0x0c, 0x7d, 0x01, 0x1d, 0x09, 0x0a, 0x04, 0x08, 0x50, 0x65, 0x72, 0x63,
        0x69, 0x76, 0x61, 0x6c, 0x0b, 0x0f, 0x17, 0x0d, 0x30, 0x35, 0x31, 0x30, 0x30, 0x31, 0x31,
        0x34, 0x35, 0x37, 0x32, 0x34, 0x5a, 0x11, 0x01, 0x01, 0x14, 0x02, 0x02, 0x49, 0x32, 0x55,
        0x02, 0x30, 0x52, 0xa5, 0x1b, 0x30, 0x07, 0x80, 0x01, 0x00, 0x81, 0x02, 0x51, 0x01, 0x30,
        0x07, 0x80, 0x01, 0x00, 0x81, 0x02, 0x51, 0x01, 0x30, 0x07, 0x80, 0x01, 0x00, 0x81, 0x02,
        0x51, 0x01, 0x61, 0x33, 0x30, 0x31, 0x02, 0x01, 0x01, 0xa0, 0x2c, 0x61, 0x2a, 0xa1, 0x06,
        0x06, 0x04, 0x56, 0x00, 0x01, 0x06, 0xa2, 0x03, 0x02, 0x01, 0x01, 0xa3, 0x05, 0xa1, 0x03,
        0x02, 0x01, 0x01, 0xbe, 0x14, 0x28, 0x12, 0x06, 0x02, 0x51, 0x01, 0x02, 0x01, 0x03, 0xa0,
        0x09, 0xb2, 0x07, 0xa1, 0x05, 0xb2, 0x03, 0x02, 0x01, 0x00,
    ];

    #[test]
    fn a_refused_mta_bind_decodes_to_its_bind_error() {
        let Ok(Tpdu::Dt { eot: true, data }) = parse_tpdu(REFUSAL) else {
            panic!("DT");
        };
        let s = parse_spdu(data).unwrap();
        assert_eq!(s.kind, spdu::REFUSE);
        let (reason, user) = spdu_user_data(&s);
        assert_eq!(reason, Some(2));
        let a = bind_answer(user);
        assert_eq!(
            a,
            BindAnswer {
                acse_result: Some(1),
                rtoac: false,
                rtorj: true,
                refuse_reason: None,
                bind_error: Some(0),
            }
        );
        assert_eq!(mta_bind_error(0), "busy");
    }

    #[test]
    fn connection_tpdus() {
        assert_eq!(parse_tpdu(&[6, 0xe0, 0, 0, 0x17, 0xc4, 0]), Ok(Tpdu::Cr));
        assert_eq!(
            parse_tpdu(&[6, 0x80, 0x17, 0xc4, 0, 0, 0x81]),
            Ok(Tpdu::Dr { reason: 0x81 })
        );
        assert_eq!(parse_tpdu(&[4, 0x70, 0, 1, 2]), Ok(Tpdu::Er { cause: 2 }));
        assert_eq!(parse_tpdu(&[6, 0x80, 0]), Err(CotpError::Short));
        assert_eq!(parse_tpdu(&[]), Err(CotpError::Short));
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 7;
        for n in 0..2000usize {
            let b: Vec<u8> = (0..n % 64)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = parse_tpdu(&b);
            if let Some(s) = parse_spdu(&b) {
                let _ = spdu_user_data(&s);
            }
            let _ = bind_answer(&b);
        }
        for cut in 0..REFUSAL.len() {
            let _ = bind_answer(&REFUSAL[..cut]);
        }
    }
}
