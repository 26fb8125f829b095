//! Writes `samples/broken-mail-flow.pcap`: a small, fully deterministic capture of an Exchange
//! 2000 site whose outbound mail flow is broken (one remote MX never answers, one refuses, a
//! firewall blocks a third), among normal directory, DNS, web, instant-messaging, conferencing
//! and unclassified traffic. `samples/README.md` lists every conversation and the outcome
//! exflow should report for it.
//!
//! Usage: `cargo run --example gen_sample [-- OUTPUT.pcap]`. No clock, no randomness: the same
//! source always writes the same bytes.

use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;

use exflow::packet::Nanos;
use exflow::synth::app::{self, DnsAnswer, DNS_A, DNS_MX, DNS_NOERROR, DNS_NXDOMAIN};
use exflow::synth::{Dir, FrameOpts, Scenario, Timing, TsPrecision, MICRO, MILLI, SECOND};

/// 2003-01-14 08:12:31 UTC.
const T0: Nanos = 1_042_531_951 * SECOND;

/// Addresses of the site (10.20.0.0/16) and of the outside world (documentation ranges).
const FIREWALL: [u8; 4] = [10, 20, 0, 1]; // server-subnet gateway and firewall
const CLIENT_GW: [u8; 4] = [10, 20, 1, 1]; // client-subnet gateway, filters inbound connections
const DC: [u8; 4] = [10, 20, 0, 10]; // dc01: DC, Global Catalog, DNS, WINS
const DNS2: [u8; 4] = [10, 20, 0, 11]; // dc02: secondary DNS, switched off
const EXCH: [u8; 4] = [10, 20, 0, 20]; // exch01: Exchange 2000 (SMTP, OWA, IM)
const CONF: [u8; 4] = [10, 20, 0, 30]; // conf01: Exchange 2000 Conferencing Server
const BACKUP: [u8; 4] = [10, 20, 0, 40]; // backup server
const WS101: [u8; 4] = [10, 20, 1, 101];
const WS102: [u8; 4] = [10, 20, 1, 102];
const WS103: [u8; 4] = [10, 20, 1, 103];
const MX_PARTNER: [u8; 4] = [192, 0, 2, 25]; // never answers
const MX_FABRIKAM: [u8; 4] = [198, 51, 100, 25]; // refuses
const MX_CONTOSO: [u8; 4] = [203, 0, 113, 25]; // blocked by our firewall
const MX_TAILSPIN: [u8; 4] = [198, 51, 100, 80]; // answers, rejects the recipient
const REMOTE_SENDER: [u8; 4] = [192, 0, 2, 77]; // delivers mail to us
const RELAY_PROBE: [u8; 4] = [192, 0, 2, 99]; // tries to relay through us
const MX_LITWARE: [u8; 4] = [198, 51, 100, 90]; // greylists our first attempt

fn ep(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

fn main() -> std::io::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/samples/broken-mail-flow.pcap").to_string()
    });
    let mut sc = Scenario::with_seed(2003);
    sc.set_opts(FrameOpts {
        pad: true,
        ..FrameOpts::default()
    });
    sc.set_timing(lan());

    unclassified(&mut sc);
    directory(&mut sc);
    web_and_im(&mut sc);
    outbound_mail(&mut sc);
    working_mail(&mut sc);
    refused_mail(&mut sc);
    conferencing(&mut sc);

    let packets = sc.write_pcap(BufWriter::new(File::create(&out)?), TsPrecision::Micro)?;
    eprintln!("wrote {packets} packets to {out}");
    Ok(())
}

/// The site's LAN: 0.4 ms round trip.
fn lan() -> Timing {
    Timing {
        rtt: 400 * MICRO,
        gap: 60 * MICRO,
    }
}

/// A WAN peer: 40 ms round trip.
fn wan() -> Timing {
    Timing {
        rtt: 40 * MILLI,
        gap: 200 * MICRO,
    }
}

fn at(secs: f64) -> Nanos {
    T0 + (secs * 1e6).round() as Nanos * MICRO
}

/// NetBIOS name service, a MAPI connection already open when the capture started, a backup job.
fn unclassified(sc: &mut Scenario) {
    let (q, r) = (
        nbns_query(0x8001, "EXCH01"),
        nbns_response(0x8001, "EXCH01", EXCH),
    );
    sc.udp_exchange(ep(WS101, 137), ep(DC, 137), at(0.0), &q, &r);

    // Outlook's MAPI over RPC on the port the endpoint mapper handed out before the capture.
    let rpc_req = dcerpc_request(7, 120);
    let rpc_resp = dcerpc_response(7, 680);
    sc.tcp_midstream(
        ep(WS101, 1040),
        ep(EXCH, 1027),
        at(0.6),
        &[(Dir::ToServer, &rpc_req), (Dir::ToClient, &rpc_resp)],
    );

    let block: Vec<u8> = (0..6000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut s = sc.tcp(ep(WS102, 1095), ep(BACKUP, 10000), at(12.0));
    s.handshake()
        .send(
            Dir::ToServer,
            b"BKUP 1 exch01 \\\\exch01\\MDBDATA\\priv1.edb\r\n",
        )
        .send(Dir::ToClient, b"OK 1\r\n")
        .send(Dir::ToServer, &block)
        .send(Dir::ToClient, b"DONE 1 6000\r\n")
        .close();
}

/// DNS, LDAP from Exchange's DSAccess, a Global Catalog lookup by Outlook, the RPC endpoint
/// mapper.
fn directory(sc: &mut Scenario) {
    dns(
        sc,
        at(0.1),
        WS101,
        1031,
        0x0101,
        "exch01.corp.example.com",
        DNS_A,
        &[DnsAnswer::A(EXCH.into())],
    );

    let base = "DC=corp,DC=example,DC=com";
    let gc_search = ldap::search(
        2,
        base,
        "mail",
        "jsmith@corp.example.com",
        &["displayName", "legacyExchangeDN"],
    );
    let gc_entry = ldap::entry(
        2,
        "CN=John Smith,CN=Users,DC=corp,DC=example,DC=com",
        &[
            ("displayName", "John Smith"),
            (
                "legacyExchangeDN",
                "/o=Example/ou=First Administrative Group/cn=Recipients/cn=jsmith",
            ),
        ],
    );
    let gc_bind = ldap::bind_request(
        1,
        "CN=Alice Jones,CN=Users,DC=corp,DC=example,DC=com",
        "synthetic",
    );
    let mut gc_answer = gc_entry;
    gc_answer.extend(ldap::done(2, 0x65));
    sc.tcp(ep(WS101, 1035), ep(DC, 3268), at(0.2))
        .handshake()
        .send(Dir::ToServer, &gc_bind)
        .send(Dir::ToClient, &ldap::bind_ok(1))
        .send(Dir::ToServer, &gc_search)
        .send(Dir::ToClient, &gc_answer)
        .send(Dir::ToServer, &ldap::unbind(3))
        .close();

    // Outlook asks the endpoint mapper where the store (EMSMDB) listens: 1101. The server
    // subnet's firewall passes 135 but not the store's dynamic port.
    let bind = dcerpc_bind_epm(1);
    let ack = dcerpc_bind_ack(1);
    let map = dcerpc_ept_map_request(2);
    let store = dcerpc_ept_map_response(2, &EMSMDB_UUID, EXCH, 1101);
    sc.tcp_session(
        ep(WS101, 1038),
        ep(EXCH, 135),
        at(0.5),
        &[
            (Dir::ToServer, &bind),
            (Dir::ToClient, &ack),
            (Dir::ToServer, &map),
            (Dir::ToClient, &store),
        ],
    );
    sc.tcp_icmp_blocked(ep(WS101, 1039), ep(EXCH, 1101), FIREWALL.into(), at(0.55));

    let dsa_bind = ldap::bind_request(
        1,
        "CN=EXCH01,CN=Computers,DC=corp,DC=example,DC=com",
        "synthetic",
    );
    let search = ldap::search(
        2,
        base,
        "proxyAddresses",
        "smtp:postmaster@corp.example.com",
        &["homeMDB", "msExchHomeServerName"],
    );
    let mut answer = ldap::entry(
        2,
        "CN=Postmaster,CN=Users,DC=corp,DC=example,DC=com",
        &[
            (
                "homeMDB",
                "CN=Mailbox Store (EXCH01),CN=First Storage Group",
            ),
            ("msExchHomeServerName", "/o=Example/cn=Servers/cn=EXCH01"),
        ],
    );
    answer.extend(ldap::done(2, 0x65));
    sc.tcp(ep(EXCH, 1200), ep(DC, 389), at(3.0))
        .handshake()
        .send(Dir::ToServer, &dsa_bind)
        .send(Dir::ToClient, &ldap::bind_ok(1))
        .send(Dir::ToServer, &search)
        .send(Dir::ToClient, &answer)
        .send(Dir::ToServer, &ldap::unbind(3))
        .close();
}

/// Outlook Web Access, and two RVP presence subscriptions: one whose callback the client
/// subnet's filter blocks, one that works.
fn web_and_im(sc: &mut Scenario) {
    let get = "GET /exchange/jsmith/Inbox/?Cmd=contents HTTP/1.1\r\nAccept: */*\r\n\
               Accept-Language: en-us\r\nUser-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0)\r\n\
               Host: exch01.corp.example.com\r\nAuthorization: Basic anNtaXRoOnN5bnRoZXRpYw==\r\n\
               Connection: Keep-Alive\r\n\r\n";
    let mut html =
        String::from("<HTML><HEAD><TITLE>Microsoft Outlook Web Access</TITLE></HEAD><BODY><TABLE>");
    for i in 0..40 {
        html.push_str(&format!(
            "<TR><TD><IMG SRC=\"/exchweb/img/icon-msg-unread.gif\"></TD><TD>sender{i}@partner.example</TD>\
             <TD>Quarterly report part {i}</TD><TD>Tue 1/14/2003 8:{:02} AM</TD></TR>\r\n",
            i % 60
        ));
    }
    html.push_str("</TABLE></BODY></HTML>\r\n");
    let ok = format!(
        "HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/5.0\r\nDate: Tue, 14 Jan 2003 08:12:33 GMT\r\n\
         MS-WebStorage: 6.0.6249\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{html}",
        html.len()
    );
    let img = "GET /exchweb/img/icon-msg-unread.gif HTTP/1.1\r\nAccept: */*\r\n\
               If-Modified-Since: Mon, 13 Jan 2003 10:00:00 GMT\r\nHost: exch01.corp.example.com\r\n\r\n";
    sc.tcp(ep(WS103, 1050), ep(EXCH, 80), at(2.0))
        .handshake()
        .send(Dir::ToServer, get.as_bytes())
        .send(Dir::ToClient, ok.as_bytes())
        .send(Dir::ToServer, img.as_bytes())
        .send(
            Dir::ToClient,
            b"HTTP/1.1 304 Not Modified\r\nServer: Microsoft-IIS/5.0\r\n\r\n",
        )
        .close();

    // RVP 1: ws101 subscribes to bob's presence; exch01's callback to ws101:1063 is blocked.
    rvp_subscription(sc, at(1.0), WS101, 1062, 1063, "alice", "bob");
    sc.tcp_icmp_blocked(ep(EXCH, 1110), ep(WS101, 1063), CLIENT_GW.into(), at(2.5));

    // RVP 2: ws102 subscribes to alice's presence; the callback delivers a NOTIFY.
    rvp_subscription(sc, at(1.5), WS102, 1071, 1072, "bob", "alice");
    let notify = app::rvp_notify(
        ep(WS102, 1072),
        "/instmsg/aliases/bob",
        "http://exch01.corp.example.com/instmsg/aliases/alice",
        "online",
    );
    sc.tcp(ep(EXCH, 1111), ep(WS102, 1072), at(3.2))
        .handshake()
        .send(Dir::ToServer, &notify)
        .send(
            Dir::ToClient,
            b"HTTP/1.1 200 Successful\r\nContent-Length: 0\r\n\r\n",
        )
        .close();
}

fn rvp_subscription(
    sc: &mut Scenario,
    t: Nanos,
    client: [u8; 4],
    port: u16,
    callback: u16,
    me: &str,
    them: &str,
) {
    let sub = app::rvp_subscribe(
        "exch01.corp.example.com",
        &format!("/instmsg/aliases/{them}"),
        &format!("http://exch01.corp.example.com/instmsg/aliases/{me}"),
        ep(client, callback),
        14400,
    );
    sc.tcp_session(
        ep(client, port),
        ep(EXCH, 80),
        t,
        &[
            (Dir::ToServer, &sub),
            (
                Dir::ToClient,
                &app::rvp_subscribe_ok(41 + u32::from(port), 14400),
            ),
        ],
    );
}

/// The broken part: three remote MX hosts that cannot be reached, a DNS server that is down.
fn outbound_mail(sc: &mut Scenario) {
    let mx = |name: &'static str| DnsAnswer::Mx(10, name);
    dns(
        sc,
        at(4.0),
        EXCH,
        1300,
        0x2001,
        "partner.example",
        DNS_MX,
        &[mx("mx1.partner.example")],
    );
    dns(
        sc,
        at(4.005),
        EXCH,
        1301,
        0x2002,
        "mx1.partner.example",
        DNS_A,
        &[DnsAnswer::A(MX_PARTNER.into())],
    );
    sc.tcp_unanswered(ep(EXCH, 1210), ep(MX_PARTNER, 25), at(4.01), 3);

    dns(
        sc,
        at(4.5),
        EXCH,
        1302,
        0x2003,
        "fabrikam.example",
        DNS_MX,
        &[mx("mx.fabrikam.example")],
    );
    dns(
        sc,
        at(4.505),
        EXCH,
        1303,
        0x2004,
        "mx.fabrikam.example",
        DNS_A,
        &[DnsAnswer::A(MX_FABRIKAM.into())],
    );
    sc.set_timing(wan());
    sc.tcp_refused(ep(EXCH, 1211), ep(MX_FABRIKAM, 25), at(4.51));
    sc.set_timing(lan());

    dns(
        sc,
        at(5.0),
        EXCH,
        1304,
        0x2005,
        "contoso.example",
        DNS_MX,
        &[mx("mail.contoso.example")],
    );
    dns(
        sc,
        at(5.005),
        EXCH,
        1305,
        0x2006,
        "mail.contoso.example",
        DNS_A,
        &[DnsAnswer::A(MX_CONTOSO.into())],
    );
    sc.tcp_icmp_blocked(
        ep(EXCH, 1212),
        ep(MX_CONTOSO, 25),
        FIREWALL.into(),
        at(5.01),
    );

    let q = app::dns_query(0x2007, "woodgrove.example", DNS_MX);
    sc.udp_one_way(ep(EXCH, 1306), ep(DNS2, 53), at(5.5), &[&q, &q], 2 * SECOND);
}

/// SMTP that works: inbound from the Internet, outbound with a rejected recipient, and a
/// client submitting.
fn working_mail(sc: &mut Scenario) {
    let msg = |from: &str, to: &str, subject: &str| {
        format!(
            "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: Tue, 14 Jan 2003 09:12:37 +0100\r\n\
             Message-ID: <20030114081237.4711@example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
             Hello,\r\n\r\nthe figures are attached to the next message.\r\n\r\nRegards\r\n"
        )
    };
    let inbound = app::smtp_dialogue(
        "exch01.corp.example.com",
        "mail.partner.example",
        "carol@partner.example",
        &["jsmith@corp.example.com"],
        &msg(
            "carol@partner.example",
            "jsmith@corp.example.com",
            "Quarterly report",
        ),
        None,
    );
    sc.tcp(ep(REMOTE_SENDER, 3372), ep(EXCH, 25), at(6.0))
        .timing(wan())
        .handshake()
        .dialogue(&inbound)
        .close();

    dns(
        sc,
        at(7.995),
        EXCH,
        1307,
        0x2008,
        "mx.tailspin.example",
        DNS_A,
        &[DnsAnswer::A(MX_TAILSPIN.into())],
    );
    let rejected = app::smtp_dialogue(
        "mx.tailspin.example",
        "exch01.corp.example.com",
        "jsmith@corp.example.com",
        &["nobody@tailspin.example"],
        "",
        Some("550 5.1.1 <nobody@tailspin.example>... User unknown"),
    );
    sc.tcp(ep(EXCH, 1213), ep(MX_TAILSPIN, 25), at(8.0))
        .timing(wan())
        .handshake()
        .dialogue(&rejected)
        .close();

    let submit = app::smtp_dialogue(
        "exch01.corp.example.com",
        "ws102",
        "bob@corp.example.com",
        &["jsmith@corp.example.com", "alice@corp.example.com"],
        &msg("bob@corp.example.com", "jsmith@corp.example.com", "Lunch"),
        None,
    );
    sc.tcp(ep(WS102, 1080), ep(EXCH, 25), at(9.0))
        .handshake()
        .dialogue(&submit)
        .close();
}

/// What the MAIL FLOW section explains: a domain without MX (NXDOMAIN), a relay attempt denied,
/// and a remote MX that greylists.
fn refused_mail(sc: &mut Scenario) {
    let q = app::dns_query(0x2009, "northwind.example", DNS_MX);
    let r = app::dns_response(0x2009, "northwind.example", DNS_MX, DNS_NXDOMAIN, &[], 3600);
    sc.udp_exchange(ep(EXCH, 1308), ep(DC, 53), at(9.3), &q, &r);

    let relay = app::smtp_dialogue(
        "exch01.corp.example.com",
        "unknown",
        "offers@spam.example",
        &["someone@elsewhere.example"],
        "",
        Some("550 5.7.1 Unable to relay for someone@elsewhere.example"),
    );
    sc.tcp(ep(RELAY_PROBE, 4100), ep(EXCH, 25), at(9.4))
        .timing(wan())
        .handshake()
        .dialogue(&relay)
        .close();

    dns(
        sc,
        at(9.6),
        EXCH,
        1309,
        0x200a,
        "mx.litware.example",
        DNS_A,
        &[DnsAnswer::A(MX_LITWARE.into())],
    );
    let grey = app::smtp_dialogue(
        "mx.litware.example",
        "exch01.corp.example.com",
        "jsmith@corp.example.com",
        &["pat@litware.example"],
        "",
        Some("451 4.7.1 Greylisted, please try again in 5 minutes"),
    );
    sc.tcp(ep(EXCH, 1214), ep(MX_LITWARE, 25), at(9.605))
        .timing(wan())
        .handshake()
        .dialogue(&grey)
        .close();
}

/// An audio conference: call control on tcp/1731, then RTP both ways between the same hosts.
fn conferencing(sc: &mut Scenario) {
    let (client, server) = (ep(WS103, 1090), ep(CONF, 1731));
    let mut s = sc.tcp(client, server, at(10.0));
    s.handshake()
        .send(
            Dir::ToServer,
            &call_control(1, b"JOIN conf:weekly-sync user:jsmith codec:PCMU rtp:5004"),
        )
        .send(
            Dir::ToClient,
            &call_control(2, b"ACCEPT codec:PCMU rtp:49172"),
        );
    let media_start = s.now() + 5 * MILLI;
    // Frames are sorted when written, so the call can be hung up before its media is added.
    s.wait(900 * MILLI)
        .send(Dir::ToServer, &call_control(3, b"LEAVE conf:weekly-sync"))
        .send(Dir::ToClient, &call_control(4, b"BYE"))
        .close();

    let (rtp_client, rtp_server) = (ep(WS103, 5004), ep(CONF, 49172));
    for i in 0..40u16 {
        let t = media_start + Nanos::from(i) * 20 * MILLI;
        let voice: Vec<u8> = (0..160u16).map(|k| 0xd5 ^ ((k + i) % 16) as u8).collect();
        let up = app::rtp(
            0x3a10 + i,
            8000 + u32::from(i) * 160,
            0x1731_0103,
            0,
            i == 0,
            &voice,
        );
        let down = app::rtp(
            0x0c00 + i,
            96_000 + u32::from(i) * 160,
            0x1731_0030,
            0,
            i == 0,
            &voice,
        );
        sc.udp(rtp_client, rtp_server, t, &up);
        sc.udp(rtp_server, rtp_client, t + 3 * MILLI, &down);
    }
}

/// A DNS request from `client` to dc01 and its answer.
#[allow(clippy::too_many_arguments)]
fn dns(
    sc: &mut Scenario,
    t: Nanos,
    client: [u8; 4],
    port: u16,
    id: u16,
    name: &str,
    qtype: u16,
    answers: &[DnsAnswer<'_>],
) {
    let q = app::dns_query(id, name, qtype);
    let r = app::dns_response(id, name, qtype, DNS_NOERROR, answers, 3600);
    sc.udp_exchange(ep(client, port), ep(DC, 53), t, &q, &r);
}

/// Audio conferencing call control. The real format is not public; this stands in for it: a
/// 4-byte big-endian length, a message number, then text.
fn call_control(n: u16, text: &[u8]) -> Vec<u8> {
    let mut out = ((text.len() + 2) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(text);
    out
}

/// A NetBIOS name (RFC 1002 first-level encoding of the 16-byte padded name with suffix 0x20).
fn nbns_name(out: &mut Vec<u8>, name: &str) {
    let mut raw = [b' '; 16];
    raw[15] = 0x20;
    for (r, b) in raw.iter_mut().zip(name.bytes().take(15)) {
        *r = b.to_ascii_uppercase();
    }
    out.push(32);
    for b in raw {
        out.extend_from_slice(&[b'A' + (b >> 4), b'A' + (b & 0x0f)]);
    }
    out.push(0);
}

fn nbns_query(id: u16, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [id, 0x0100, 1, 0, 0, 0] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    nbns_name(&mut out, name);
    out.extend_from_slice(&[0, 0x20, 0, 1]); // NB, IN
    out
}

fn nbns_response(id: u16, name: &str, ip: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [id, 0x8580, 0, 1, 0, 0] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    nbns_name(&mut out, name);
    out.extend_from_slice(&[0, 0x20, 0, 1]);
    out.extend_from_slice(&300_000u32.to_be_bytes());
    out.extend_from_slice(&[0, 6, 0, 0]); // RDLENGTH 6, NB flags: B-node, unique
    out.extend_from_slice(&ip);
    out
}

/// A DCE/RPC connection-oriented PDU header (version 5.0, little-endian data representation).
fn dcerpc(ptype: u8, call_id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![5, 0, ptype, 0x03, 0x10, 0, 0, 0];
    out.extend_from_slice(&((16 + body.len()) as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&call_id.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The endpoint mapper interface e1af8308-5d1f-11c9-91a4-08002b14a0fa v3.0 and NDR
/// 8a885d04-1ceb-11c9-9fe8-08002b104860 v2, in their little-endian wire form.
const EPM_UUID: [u8; 16] = [
    0x08, 0x83, 0xaf, 0xe1, 0x1f, 0x5d, 0xc9, 0x11, 0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa,
];
const NDR_UUID: [u8; 16] = [
    0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60,
];

fn dcerpc_bind_epm(call_id: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&5840u16.to_le_bytes()); // max xmit frag
    b.extend_from_slice(&5840u16.to_le_bytes()); // max recv frag
    b.extend_from_slice(&0u32.to_le_bytes()); // association group
    b.extend_from_slice(&[1, 0, 0, 0]); // one context item
    b.extend_from_slice(&[0, 0, 1, 0]); // context id 0, one transfer syntax
    b.extend_from_slice(&EPM_UUID);
    b.extend_from_slice(&[3, 0, 0, 0]);
    b.extend_from_slice(&NDR_UUID);
    b.extend_from_slice(&[2, 0, 0, 0]);
    dcerpc(11, call_id, &b)
}

fn dcerpc_bind_ack(call_id: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&5840u16.to_le_bytes());
    b.extend_from_slice(&5840u16.to_le_bytes());
    b.extend_from_slice(&0x0000_53f0u32.to_le_bytes()); // association group
    b.extend_from_slice(&[4, 0]);
    b.extend_from_slice(b"135\0");
    b.extend_from_slice(&[1, 0, 0, 0]); // one result
    b.extend_from_slice(&[0, 0, 0, 0]); // acceptance
    b.extend_from_slice(&NDR_UUID);
    b.extend_from_slice(&[2, 0, 0, 0]);
    dcerpc(12, call_id, &b)
}

/// EMSMDB (MAPI) a4f1db00-ca47-1067-b31f-00dd010662da in its little-endian wire form.
const EMSMDB_UUID: [u8; 16] = [
    0x00, 0xdb, 0xf1, 0xa4, 0x47, 0xca, 0x67, 0x10, 0xb3, 0x1f, 0x00, 0xdd, 0x01, 0x06, 0x62, 0xda,
];

/// An `ept_map` request (opnum 3); the endpoint mapper's stub is not needed to read the answer.
fn dcerpc_ept_map_request(call_id: u32) -> Vec<u8> {
    let mut b = 40u32.to_le_bytes().to_vec(); // alloc hint
    b.extend_from_slice(&[0, 0, 3, 0]); // context 0, opnum 3
    b.extend_from_slice(&[0; 40]);
    dcerpc(0, call_id, &b)
}

/// The `ept_map` answer: one tower, interface `uuid` v0 over ncacn_ip_tcp at `ip`:`port`.
fn dcerpc_ept_map_response(call_id: u32, uuid: &[u8; 16], ip: [u8; 4], port: u16) -> Vec<u8> {
    // Floor counts and lengths are little-endian; the port and address big-endian.
    let mut t = 5u16.to_le_bytes().to_vec();
    let mut floor = |lhs: &[u8], rhs: &[u8]| {
        t.extend_from_slice(&(lhs.len() as u16).to_le_bytes());
        t.extend_from_slice(lhs);
        t.extend_from_slice(&(rhs.len() as u16).to_le_bytes());
        t.extend_from_slice(rhs);
    };
    let mut f1 = vec![0x0d];
    f1.extend_from_slice(uuid);
    f1.extend_from_slice(&[0, 0]);
    floor(&f1, &[0, 0]);
    let mut f2 = vec![0x0d];
    f2.extend_from_slice(&NDR_UUID);
    f2.extend_from_slice(&[2, 0]);
    floor(&f2, &[0, 0]);
    floor(&[0x0b], &[0, 0]); // connection-oriented
    floor(&[0x07], &port.to_be_bytes()); // TCP
    floor(&[0x09], &ip); // IP
                         // NDR stub: handle, tower count, conformant array of one tower pointer, the tower, status.
    let mut s = vec![0; 20];
    for x in [1u32, 1, 0, 1, 1] {
        s.extend_from_slice(&x.to_le_bytes());
    }
    s.extend_from_slice(&(t.len() as u32).to_le_bytes());
    s.extend_from_slice(&(t.len() as u32).to_le_bytes());
    s.extend_from_slice(&t);
    while !s.len().is_multiple_of(4) {
        s.push(0);
    }
    s.extend_from_slice(&0u32.to_le_bytes()); // status: ok
    let mut b = (s.len() as u32).to_le_bytes().to_vec();
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(&s);
    dcerpc(2, call_id, &b)
}

/// A DCE/RPC request (ptype 0) with `len` bytes of stub data.
fn dcerpc_request(call_id: u32, len: usize) -> Vec<u8> {
    let mut b = (len as u32).to_le_bytes().to_vec(); // alloc hint
    b.extend_from_slice(&[0, 0, 0x0a, 0]); // context 0, opnum 10
    b.extend((0..len).map(|i| (i * 13 % 256) as u8));
    dcerpc(0, call_id, &b)
}

/// A DCE/RPC response (ptype 2) with `len` bytes of stub data.
fn dcerpc_response(call_id: u32, len: usize) -> Vec<u8> {
    let mut b = (len as u32).to_le_bytes().to_vec();
    b.extend_from_slice(&[0, 0, 0, 0]); // context 0, cancel count 0
    b.extend((0..len).map(|i| (i * 29 % 256) as u8));
    dcerpc(2, call_id, &b)
}

/// Just enough BER to write LDAPv3 messages (RFC 2251).
mod ldap {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend_from_slice(&[0x81, n as u8]),
            n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    fn int(tag: u8, v: u32) -> Vec<u8> {
        let bytes = v.to_be_bytes();
        let skip = bytes.iter().take(3).take_while(|&&b| b == 0).count();
        let mut body = bytes[skip..].to_vec();
        if body[0] & 0x80 != 0 {
            body.insert(0, 0);
        }
        tlv(tag, &body)
    }

    fn string(s: &str) -> Vec<u8> {
        tlv(0x04, s.as_bytes())
    }

    fn message(id: u32, op: Vec<u8>) -> Vec<u8> {
        let mut body = int(0x02, id);
        body.extend(op);
        tlv(0x30, &body)
    }

    /// BindRequest, version 3, simple authentication.
    pub fn bind_request(id: u32, dn: &str, password: &str) -> Vec<u8> {
        let mut op = int(0x02, 3);
        op.extend(string(dn));
        op.extend(tlv(0x80, password.as_bytes()));
        message(id, tlv(0x60, &op))
    }

    /// An LDAPResult (`app_tag` 0x61 BindResponse, 0x65 SearchResultDone) with success.
    pub fn done(id: u32, app_tag: u8) -> Vec<u8> {
        let mut op = tlv(0x0a, &[0]);
        op.extend(string(""));
        op.extend(string(""));
        message(id, tlv(app_tag, &op))
    }

    pub fn bind_ok(id: u32) -> Vec<u8> {
        done(id, 0x61)
    }

    /// SearchRequest, whole subtree, filter `(attr=value)`.
    pub fn search(id: u32, base: &str, attr: &str, value: &str, wanted: &[&str]) -> Vec<u8> {
        let mut op = string(base);
        op.extend(tlv(0x0a, &[2])); // wholeSubtree
        op.extend(tlv(0x0a, &[0])); // neverDerefAliases
        op.extend(int(0x02, 0));
        op.extend(int(0x02, 0));
        op.extend(tlv(0x01, &[0]));
        let mut filter = string(attr);
        filter.extend(string(value));
        op.extend(tlv(0xa3, &filter)); // equalityMatch
        let attrs: Vec<u8> = wanted.iter().flat_map(|a| string(a)).collect();
        op.extend(tlv(0x30, &attrs));
        message(id, tlv(0x63, &op))
    }

    /// SearchResultEntry with one value per attribute.
    pub fn entry(id: u32, dn: &str, attrs: &[(&str, &str)]) -> Vec<u8> {
        let mut list = Vec::new();
        for (name, value) in attrs {
            let mut pa = string(name);
            pa.extend(tlv(0x31, &string(value)));
            list.extend(tlv(0x30, &pa));
        }
        let mut op = string(dn);
        op.extend(tlv(0x30, &list));
        message(id, tlv(0x64, &op))
    }

    pub fn unbind(id: u32) -> Vec<u8> {
        message(id, tlv(0x42, &[]))
    }
}
