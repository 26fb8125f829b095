//! Application payloads for synthetic conversations: DNS messages in wire format, RTP packets,
//! TPKT framing, RVP requests and an SMTP dialogue.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::Dir;

/// DNS record types used here.
pub const DNS_A: u16 = 1;
pub const DNS_CNAME: u16 = 5;
pub const DNS_MX: u16 = 15;
pub const DNS_AAAA: u16 = 28;
pub const DNS_SRV: u16 = 33;

/// DNS response codes used here.
pub const DNS_NOERROR: u8 = 0;
pub const DNS_SERVFAIL: u8 = 2;
pub const DNS_NXDOMAIN: u8 = 3;

/// One answer record; its owner name is the question's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsAnswer<'a> {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// Preference and exchange host.
    Mx(u16, &'a str),
    Cname(&'a str),
}

/// A recursive query (RD set) for `name` and `qtype`, class IN.
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(18 + name.len());
    dns_header(&mut out, id, 0x0100, 1, 0);
    dns_question(&mut out, name, qtype);
    out
}

/// The response to [`dns_query`]: QR, RD, RA, `rcode`, the question again and `answers`, each
/// named by a compression pointer to the question and living `ttl` seconds.
pub fn dns_response(
    id: u16,
    name: &str,
    qtype: u16,
    rcode: u8,
    answers: &[DnsAnswer<'_>],
    ttl: u32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + name.len());
    dns_header(
        &mut out,
        id,
        0x8180 | u16::from(rcode & 0x0f),
        1,
        answers.len() as u16,
    );
    dns_question(&mut out, name, qtype);
    for a in answers {
        out.extend_from_slice(&0xc00cu16.to_be_bytes()); // the question's name, at offset 12
        let (rtype, rdata) = match *a {
            DnsAnswer::A(ip) => (DNS_A, ip.octets().to_vec()),
            DnsAnswer::Aaaa(ip) => (DNS_AAAA, ip.octets().to_vec()),
            DnsAnswer::Mx(pref, host) => {
                let mut d = pref.to_be_bytes().to_vec();
                dns_name(&mut d, host);
                (DNS_MX, d)
            }
            DnsAnswer::Cname(host) => {
                let mut d = Vec::new();
                dns_name(&mut d, host);
                (DNS_CNAME, d)
            }
        };
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    out
}

fn dns_header(out: &mut Vec<u8>, id: u16, flags: u16, questions: u16, answers: u16) {
    for v in [id, flags, questions, answers, 0, 0] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn dns_question(out: &mut Vec<u8>, name: &str, qtype: u16) {
    dns_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
}

/// A name as length-prefixed labels (labels cut to 63 bytes), root-terminated.
fn dns_name(out: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let label = &label.as_bytes()[..label.len().min(63)];
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
}

/// An RTP packet (RFC 3550): version 2, no padding, extension or CSRCs.
pub fn rtp(
    seq: u16,
    timestamp: u32,
    ssrc: u32,
    payload_type: u8,
    marker: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + payload.len());
    out.push(0x80);
    out.push((u8::from(marker) << 7) | (payload_type & 0x7f));
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// `payload` in a TPKT (RFC 1006): version 3, reserved 0, 16-bit length including the header.
pub fn tpkt(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&[3, 0]);
    out.extend_from_slice(&((payload.len() + 4) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An RVP `SUBSCRIBE` (Exchange 2000 Instant Messaging) for the presence of `target` (a URL
/// path such as `/instmsg/aliases/bob`) on `host`, asking for notifications at
/// `Call-Back: http://<callback>`.
pub fn rvp_subscribe(
    host: &str,
    target: &str,
    from_principal: &str,
    callback: SocketAddr,
    lifetime_s: u32,
) -> Vec<u8> {
    format!(
        "SUBSCRIBE {target} HTTP/1.1\r\n\
         Host: {host}\r\n\
         RVP-Notifications-Version: 0.2\r\n\
         RVP-From-Principal: {from_principal}\r\n\
         Notification-Type: pragma/notify\r\n\
         Call-Back: http://{callback}\r\n\
         Subscription-Lifetime: {lifetime_s}\r\n\
         User-Agent: Microsoft-RVP/0.2\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The server's acceptance of a [`rvp_subscribe`].
pub fn rvp_subscribe_ok(subscription_id: u32, lifetime_s: u32) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 Successful\r\n\
         RVP-Notifications-Version: 0.2\r\n\
         Subscription-Id: {subscription_id}\r\n\
         Subscription-Lifetime: {lifetime_s}\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The `NOTIFY` a server sends to a subscriber's callback address with `target`'s new state
/// (`online`, `busy`, `away`, `offline`, ...).
pub fn rvp_notify(callback: SocketAddr, subscriber: &str, target: &str, state: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\"?>\r\n<r:notification xmlns:r=\"http://schemas.microsoft.com/rvp/\">\
         <r:message><r:notification-from><r:contact><r:href>{target}</r:href></r:contact>\
         </r:notification-from><r:propstat><r:prop><r:state><r:{state}/></r:state></r:prop>\
         </r:propstat></r:message></r:notification>\r\n"
    );
    format!(
        "NOTIFY {subscriber} HTTP/1.1\r\n\
         Host: {callback}\r\n\
         RVP-Notifications-Version: 0.2\r\n\
         RVP-From-Principal: {target}\r\n\
         Content-Type: text/xml\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The messages of one SMTP transaction, server banner first: EHLO, MAIL FROM, one RCPT TO per
/// recipient, DATA with `message` (headers and body, lines ending in CRLF), QUIT.
/// `rcpt_reply` replaces the usual `250` to the first RCPT TO (e.g. `"550 5.7.1 Unable to
/// relay"`); a rejected transaction has no accepted recipient, so it ends with RSET and QUIT
/// instead of DATA.
pub fn smtp_dialogue(
    server_name: &str,
    client_name: &str,
    mail_from: &str,
    rcpt_to: &[&str],
    message: &str,
    rcpt_reply: Option<&str>,
) -> Vec<(Dir, Vec<u8>)> {
    use Dir::*;
    let mut m: Vec<(Dir, String)> = vec![
        (
            ToClient,
            format!(
                "220 {server_name} Microsoft ESMTP MAIL Service, Version: 5.0.2195.5329 ready \
                 at  Tue, 14 Jan 2003 09:12:31 +0100 \r\n"
            ),
        ),
        (ToServer, format!("EHLO {client_name}\r\n")),
        (
            ToClient,
            format!(
                "250-{server_name} Hello [{client_name}]\r\n250-TURN\r\n250-ATRN\r\n250-SIZE\r\n\
                 250-ETRN\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n\
                 250-8bitmime\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250-VRFY\r\n\
                 250-X-EXPS GSSAPI NTLM LOGIN\r\n250-X-LINK2STATE\r\n250-XEXCH50\r\n250 OK\r\n"
            ),
        ),
        (ToServer, format!("MAIL FROM:<{mail_from}>\r\n")),
        (ToClient, format!("250 2.1.0 {mail_from}....Sender OK\r\n")),
    ];
    let mut accepted = 0;
    for (i, rcpt) in rcpt_to.iter().enumerate() {
        m.push((ToServer, format!("RCPT TO:<{rcpt}>\r\n")));
        match rcpt_reply.filter(|_| i == 0) {
            Some(reply) => m.push((ToClient, format!("{reply}\r\n"))),
            None => {
                accepted += 1;
                m.push((ToClient, format!("250 2.1.5 {rcpt} \r\n")));
            }
        }
    }
    if accepted > 0 {
        m.push((ToServer, "DATA\r\n".into()));
        m.push((
            ToClient,
            "354 Start mail input; end with <CRLF>.<CRLF>\r\n".into(),
        ));
        m.push((ToServer, format!("{message}\r\n.\r\n")));
        m.push((
            ToClient,
            format!("250 2.6.0 <{client_name}-MSG01> Queued mail for delivery\r\n"),
        ));
    } else {
        m.push((ToServer, "RSET\r\n".into()));
        m.push((ToClient, "250 2.0.0 Resetting\r\n".into()));
    }
    m.push((ToServer, "QUIT\r\n".into()));
    m.push((
        ToClient,
        format!("221 2.0.0 {server_name} Service closing transmission channel\r\n"),
    ));
    m.into_iter().map(|(d, s)| (d, s.into_bytes())).collect()
}
