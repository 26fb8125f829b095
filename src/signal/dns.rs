//! DNS messages (RFC 1035): the header and the first question, with the name decoded into a
//! caller's fixed buffer (compression pointers followed, loops and overlong names refused). Pure
//! and allocation-free.

/// What is wrong with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("shorter than a DNS header")]
    Short,
    #[error("question beyond the message")]
    Truncated,
    #[error("compression loop or pointer forward")]
    Loop,
    #[error("name longer than 255 bytes")]
    LongName,
    #[error("label type not supported")]
    Label,
}

/// Longest name kept, in text form (RFC 1035: 255 octets on the wire).
pub const MAX_NAME: usize = 255;

/// The parts of a message exflow uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub response: bool,
    pub opcode: u8,
    pub truncated: bool,
    pub rcode: u8,
    pub questions: u16,
    pub answers: u16,
    /// The first question: type and class, and the name's length in the caller's buffer.
    pub question: Option<Question>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question {
    pub qtype: u16,
    pub qclass: u16,
    pub name_len: usize,
}

/// Parses a message; the first question's name goes into `name` as dotted text, lower case
/// (`.` for the root).
pub fn parse(msg: &[u8], name: &mut [u8; MAX_NAME]) -> Result<Message, Error> {
    let Some(h) = msg.get(..12) else {
        return Err(Error::Short);
    };
    let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let flags = word(2);
    let mut m = Message {
        id: word(0),
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        truncated: flags & 0x0200 != 0,
        rcode: (flags & 0xf) as u8,
        questions: word(4),
        answers: word(6),
        question: None,
    };
    if m.questions == 0 {
        return Ok(m);
    }
    let (name_len, end) = read_name(msg, 12, name)?;
    let Some(&[a, b, c, d]) = msg.get(end..end.saturating_add(4)) else {
        return Err(Error::Truncated);
    };
    m.question = Some(Question {
        qtype: u16::from_be_bytes([a, b]),
        qclass: u16::from_be_bytes([c, d]),
        name_len,
    });
    Ok(m)
}

/// Reads the name at `start`: its text length in `out` and the offset after it in the message.
fn read_name(msg: &[u8], start: usize, out: &mut [u8; MAX_NAME]) -> Result<(usize, usize), Error> {
    let mut pos = start;
    let mut len = 0usize;
    let mut end = None;
    // Pointers must go backwards (RFC 1035 4.1.4 allows any prior occurrence): no loops.
    let mut limit = start;
    loop {
        let &b = msg.get(pos).ok_or(Error::Truncated)?;
        match b & 0xc0 {
            0x00 if b == 0 => break,
            0x00 => {
                let label = msg
                    .get(pos + 1..pos + 1 + usize::from(b))
                    .ok_or(Error::Truncated)?;
                if len > 0 {
                    *out.get_mut(len).ok_or(Error::LongName)? = b'.';
                    len += 1;
                }
                let dst = out.get_mut(len..len + label.len()).ok_or(Error::LongName)?;
                for (d, s) in dst.iter_mut().zip(label) {
                    *d = s.to_ascii_lowercase();
                }
                len += label.len();
                pos += 1 + label.len();
            }
            0xc0 => {
                let &lo = msg.get(pos + 1).ok_or(Error::Truncated)?;
                let target = usize::from(u16::from_be_bytes([b & 0x3f, lo]));
                if end.is_none() {
                    end = Some(pos + 2);
                }
                if target >= limit {
                    return Err(Error::Loop);
                }
                limit = target;
                pos = target;
            }
            _ => return Err(Error::Label),
        }
    }
    if len == 0 {
        out[0] = b'.';
        len = 1;
    }
    Ok((len, end.unwrap_or(pos + 1)))
}

/// A type's mnemonic (`A`, `MX`, `SRV`), or `TYPE<n>`.
pub fn type_name(t: u16) -> std::borrow::Cow<'static, str> {
    let s = match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        24 => "SIG",
        25 => "KEY",
        28 => "AAAA",
        29 => "LOC",
        33 => "SRV",
        35 => "NAPTR",
        39 => "DNAME",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        50 => "NSEC3",
        52 => "TLSA",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        257 => "CAA",
        _ => return format!("TYPE{t}").into(),
    };
    s.into()
}

/// An rcode's name (`NOERROR`, `NXDOMAIN`), or `RCODE<n>`.
pub fn rcode_name(r: u8) -> std::borrow::Cow<'static, str> {
    let s = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return format!("RCODE{r}").into(),
    };
    s.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::app::{dns_query, dns_response, DnsAnswer};

    #[test]
    fn query_and_response() {
        let mut name = [0u8; MAX_NAME];
        let q = dns_query(0x1234, "Mail.Example.COM", 15);
        let m = parse(&q, &mut name).unwrap();
        assert_eq!((m.id, m.response, m.questions), (0x1234, false, 1));
        let qq = m.question.unwrap();
        assert_eq!(
            (qq.qtype, &name[..qq.name_len]),
            (15, &b"mail.example.com"[..])
        );
        let r = dns_response(0x1234, "mail.example.com", 15, 3, &[], 60);
        let m = parse(&r, &mut name).unwrap();
        assert_eq!((m.response, m.rcode, m.answers), (true, 3, 0));
        let r = dns_response(
            7,
            "x.example",
            1,
            0,
            &[DnsAnswer::A([1, 2, 3, 4].into())],
            60,
        );
        assert_eq!(parse(&r, &mut name).unwrap().answers, 1);
    }

    #[test]
    fn bad_messages_are_errors() {
        let mut name = [0u8; MAX_NAME];
        assert_eq!(parse(b"query", &mut name), Err(Error::Short));
        // A pointer to itself, and one forward.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
        assert_eq!(parse(&m, &mut name), Err(Error::Loop));
        m[13] = 14;
        assert_eq!(parse(&m, &mut name), Err(Error::Loop));
        // Counts beyond the packet.
        let m = [0, 1, 0, 0, 0, 9, 0, 9, 0, 0, 0, 0, 3, b'a'];
        assert_eq!(parse(&m, &mut name), Err(Error::Truncated));
        // A name of 300 bytes.
        let mut m = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..5 {
            m.push(63);
            m.extend([b'a'; 63]);
        }
        m.extend([0, 0, 1, 0, 1]);
        assert_eq!(parse(&m, &mut name), Err(Error::LongName));
        assert_eq!(type_name(33), "SRV");
        assert_eq!(type_name(4000), "TYPE4000");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(12), "RCODE12");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(msg in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut name = [0u8; MAX_NAME];
            let _ = parse(&msg, &mut name);
        }
    }
}
