//! RVP (Exchange 2000 Instant Messaging) request parsing: is an HTTP request RVP, and where does a
//! `SUBSCRIBE` ask the server to call back?
//!
//! RVP is HTTP with its own methods and headers. A request is RVP when it carries RVP's own headers
//! (`RVP-Notifications-Version`, `RVP-From-Principal`, any other `RVP-*`, or `Call-Back`); the
//! method alone is not enough, since UPnP GENA also sends `SUBSCRIBE`/`NOTIFY` (with `CALLBACK`,
//! `NT`, `SID`) and is not RVP. A pure function of the bytes: nothing here keeps state.

use std::net::IpAddr;

/// Why a payload is not an HTTP request head exflow can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RvpError {
    #[error("not an HTTP request line")]
    NotRequest,
    #[error("Call-Back header is not http://host:port or httpu://host:port")]
    BadCallBack,
}

/// Transport of an RVP callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallBackProto {
    /// `http://`: the server opens a TCP connection.
    Tcp,
    /// `httpu://`: the server sends UDP datagrams.
    Udp,
}

/// Host part of a `Call-Back` URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallBackHost<'a> {
    Ip(IpAddr),
    /// A name exflow cannot resolve passively; the subscriber's own address is used instead.
    Name(&'a str),
}

/// Where the server is asked to send `NOTIFY`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallBack<'a> {
    pub proto: CallBackProto,
    pub host: CallBackHost<'a>,
    pub port: u16,
}

/// The parts of an HTTP request head that matter for RVP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request carries RVP's own headers.
    pub is_rvp: bool,
    pub call_back: Option<CallBack<'a>>,
    /// `Subscription-Lifetime` in seconds.
    pub lifetime_s: Option<u32>,
}

impl Request<'_> {
    pub fn is_subscribe(&self) -> bool {
        self.method.eq_ignore_ascii_case("SUBSCRIBE")
    }
}

/// Parses the head of an HTTP request at the start of `payload` (which may be cut anywhere; the
/// headers present are read).
pub fn parse_request(payload: &[u8]) -> Result<Request<'_>, RvpError> {
    let mut lines = lines(payload);
    let first = lines.next().ok_or(RvpError::NotRequest)?;
    let method = request_method(first).ok_or(RvpError::NotRequest)?;
    let mut req = Request {
        method,
        is_rvp: false,
        call_back: None,
        lifetime_s: None,
    };
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if starts_with_ignore_case(name, b"rvp-") {
            req.is_rvp = true;
        } else if name.eq_ignore_ascii_case(b"call-back") {
            req.is_rvp = true;
            req.call_back = Some(parse_call_back(value)?);
        } else if name.eq_ignore_ascii_case(b"subscription-lifetime") {
            req.lifetime_s = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        }
    }
    Ok(req)
}

/// Cheap test used on every client payload of a port-80 flow: could this be an RVP request?
pub fn looks_like_rvp(payload: &[u8]) -> bool {
    matches!(parse_request(payload), Ok(r) if r.is_rvp)
}

fn request_method(line: &[u8]) -> Option<&str> {
    let sp = line.iter().position(|&b| b == b' ')?;
    let method = &line[..sp];
    if method.is_empty() || method.len() > 16 || !method.iter().all(u8::is_ascii_uppercase) {
        return None;
    }
    let rest = &line[sp + 1..];
    let version = rest
        .iter()
        .rposition(|&b| b == b' ')
        .map(|i| &rest[i + 1..])?;
    if !starts_with_ignore_case(version, b"HTTP/") {
        return None;
    }
    std::str::from_utf8(method).ok()
}

fn parse_call_back(v: &[u8]) -> Result<CallBack<'_>, RvpError> {
    let (proto, rest) = if starts_with_ignore_case(v, b"httpu://") {
        (CallBackProto::Udp, &v[8..])
    } else if starts_with_ignore_case(v, b"http://") {
        (CallBackProto::Tcp, &v[7..])
    } else {
        return Err(RvpError::BadCallBack);
    };
    let authority = rest.split(|&b| b == b'/').next().unwrap_or_default();
    let authority = std::str::from_utf8(authority).map_err(|_| RvpError::BadCallBack)?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| RvpError::BadCallBack)?)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(RvpError::BadCallBack);
    }
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => CallBackHost::Ip(ip),
        Err(_) => CallBackHost::Name(host),
    };
    Ok(CallBack { proto, host, port })
}

/// The lines of `b` without their line ends (LF or CR LF), as `split` on LF gives them (the
/// last one unterminated, empty after a final LF), each end found by `memchr` (a byte at a time
/// was about 4 000 instructions a request on the generated capture).
fn lines(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(b);
    std::iter::from_fn(move || {
        let r = rest?;
        let (line, after) = match memchr::memchr(b'\n', r) {
            Some(i) => (r.get(..i), r.get(i + 1..)),
            None => (Some(r), None),
        };
        rest = after;
        line.map(trim_cr)
    })
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &v[start..end]
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    proptest::proptest! {
        #[test]
        fn lines_are_what_splitting_on_line_feeds_gives(
            b in proptest::collection::vec(proptest::sample::select(b"ab:\r\n ".to_vec()), 0..64),
        ) {
            let split: Vec<&[u8]> = b.split(|&c| c == b'\n').map(trim_cr).collect();
            proptest::prop_assert_eq!(lines(&b).collect::<Vec<_>>(), split);
        }
    }

    const SUBSCRIBE: &[u8] = b"SUBSCRIBE http://im.example.com/instmsg/aliases/bob HTTP/1.1\r\n\
Host: im.example.com\r\n\
RVP-Notifications-Version: 0.2\r\n\
RVP-From-Principal: http://im.example.com/instmsg/aliases/alice\r\n\
Call-Back: http://10.1.2.3:3455\r\n\
Subscription-Lifetime: 14400\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn subscribe_with_tcp_callback() {
        let r = parse_request(SUBSCRIBE).unwrap();
        assert!(r.is_rvp && r.is_subscribe());
        assert_eq!(r.lifetime_s, Some(14400));
        let cb = r.call_back.unwrap();
        assert_eq!(cb.proto, CallBackProto::Tcp);
        assert_eq!(
            cb.host,
            CallBackHost::Ip(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)))
        );
        assert_eq!(cb.port, 3455);
    }

    #[test]
    fn httpu_callback_with_name_and_ipv6() {
        let r = parse_request(b"SUBSCRIBE /x HTTP/1.1\r\ncall-back: httpu://client7:5000/\r\n")
            .unwrap();
        let cb = r.call_back.unwrap();
        assert_eq!(cb.proto, CallBackProto::Udp);
        assert_eq!(cb.host, CallBackHost::Name("client7"));
        assert_eq!(cb.port, 5000);
        let r = parse_request(b"SUBSCRIBE /x HTTP/1.1\r\nCall-Back: http://[2001:db8::5]:6000\r\n")
            .unwrap();
        assert_eq!(
            r.call_back.unwrap().host,
            CallBackHost::Ip("2001:db8::5".parse().unwrap())
        );
        let r = parse_request(b"SUBSCRIBE /x HTTP/1.1\r\nCall-Back: http://10.0.0.1\r\n").unwrap();
        assert_eq!(r.call_back.unwrap().port, 80);
    }

    #[test]
    fn gena_and_owa_are_not_rvp() {
        let gena = b"SUBSCRIBE /upnp/event HTTP/1.1\r\nHOST: 10.0.0.1:2869\r\nCALLBACK: <http://10.0.0.2:2869/>\r\nNT: upnp:event\r\nTIMEOUT: Second-1800\r\n\r\n";
        let r = parse_request(gena).unwrap();
        assert!(!r.is_rvp);
        assert_eq!(r.call_back, None);
        let owa =
            b"GET /exchange/alice/Inbox HTTP/1.1\r\nHost: mail\r\nUser-Agent: Mozilla/4.0\r\n\r\n";
        assert!(!looks_like_rvp(owa));
        assert!(looks_like_rvp(
            b"NOTIFY /x HTTP/1.1\r\nRVP-Notifications-Version: 0.2\r\n"
        ));
    }

    #[test]
    fn bad_input() {
        assert_eq!(parse_request(b""), Err(RvpError::NotRequest));
        assert_eq!(
            parse_request(b"HTTP/1.1 200 OK\r\n"),
            Err(RvpError::NotRequest)
        );
        assert_eq!(
            parse_request(b"\x16\x03\x01\x00"),
            Err(RvpError::NotRequest)
        );
        assert_eq!(
            parse_request(b"SUBSCRIBE / HTTP/1.1\r\nCall-Back: ftp://x:1\r\n"),
            Err(RvpError::BadCallBack)
        );
        assert_eq!(
            parse_request(b"SUBSCRIBE / HTTP/1.1\r\nCall-Back: http://x:99999\r\n"),
            Err(RvpError::BadCallBack)
        );
        // Cut mid-header: what is there is read.
        let cut = SUBSCRIBE
            .windows(9)
            .position(|w| w == b"Call-Back")
            .unwrap()
            + 5;
        let r = parse_request(&SUBSCRIBE[..cut]).unwrap();
        assert!(r.is_rvp);
        assert_eq!(r.call_back, None);
    }
}
