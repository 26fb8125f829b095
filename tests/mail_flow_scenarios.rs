//! Built captures (`exflow::synth`, written as pcap and read back) for the mail-flow trackers:
//! every SMTP verdict, an Exchange-to-Exchange session whose XEXCH50 blob and body span many
//! segments, DNS retransmissions and a truncated answer retried over TCP, several LDAP messages
//! per segment.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use exflow::analyze::{analyze_files, Completeness, Config};
use exflow::output::Report;
use exflow::synth::{app, Dir, Scenario, TsPrecision};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_000_000_000 * S;
const MX: &str = "10.2.0.2:25";

fn ep(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn analyse(name: &str, sc: &mut Scenario) -> Report {
    let path = common::scratch("mail-flow-scenarios").join(name);
    std::fs::write(&path, sc.to_pcap(TsPrecision::Micro)).unwrap();
    let config = Config {
        keep_flows: true,
        ..Config::default()
    };
    let (a, done) = analyze_files(
        &[path.to_string_lossy().into_owned()],
        config,
        |_, _, _, _| {},
    );
    assert_eq!(done, Completeness::Complete);
    Report::new(&a)
}

/// Client port → SMTP verdict.
fn verdicts(r: &Report) -> BTreeMap<u16, String> {
    r.flows
        .iter()
        .flatten()
        .filter_map(|f| {
            let v = f.findings.get("smtp")?["verdict"].as_str()?.to_string();
            Some((ep(&f.client).port(), v))
        })
        .collect()
}

fn lines(text: &[&str]) -> Vec<u8> {
    text.iter()
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect()
}

#[test]
fn every_smtp_verdict_from_a_built_capture() {
    use Dir::*;
    let mut sc = Scenario::new();
    let banner = lines(&["220 mx.example ESMTP"]);
    let ehlo = lines(&["EHLO client.example"]);
    let ehlo_ok = lines(&["250-mx.example", "250-PIPELINING", "250-STARTTLS", "250 OK"]);
    let quit = lines(&["QUIT"]);
    let bye = lines(&["221 bye"]);
    let mut t = T0;
    let mut next = |port: u16| {
        t += S;
        (ep(&format!("10.1.0.5:{port}")), t)
    };
    // 1001 delivered, 1002 rejected (relay), 1003 deferred (greylisting).
    for (port, reply) in [
        (1001, None),
        (1002, Some("550 5.7.1 Unable to relay")),
        (1003, Some("451 4.7.1 Greylisted")),
    ] {
        let (c, t) = next(port);
        let d = app::smtp_dialogue(
            "mx.example",
            "client.example",
            "a@x.example",
            &["b@y.example"],
            "hi",
            reply,
        );
        sc.tcp(c, ep(MX), t).handshake().dialogue(&d).close();
    }
    let (c, t) = next(1004);
    sc.tcp(c, ep(MX), t)
        .handshake()
        .send(ToClient, &lines(&["554 5.3.2 Service not available"]))
        .close();
    let (c, t) = next(1005);
    sc.tcp(c, ep(MX), t).handshake().wait(S).close();
    let (c, t) = next(1006);
    sc.tcp(c, ep(MX), t)
        .handshake()
        .messages(&[
            (ToClient, &banner),
            (ToServer, &ehlo),
            (ToClient, &ehlo_ok),
            (ToServer, &lines(&["AUTH LOGIN"])),
            (ToClient, &lines(&["334 VXNlcm5hbWU6"])),
            (ToServer, &lines(&["dXNlcg=="])),
            (ToClient, &lines(&["535 5.7.3 Authentication unsuccessful"])),
            (ToServer, &quit),
            (ToClient, &bye),
        ])
        .close();
    let starttls = [
        (ToClient, banner.as_slice()),
        (ToServer, &ehlo),
        (ToClient, &ehlo_ok),
        (ToServer, b"STARTTLS\r\n".as_slice()),
        (ToClient, b"220 2.0.0 Ready to start TLS\r\n".as_slice()),
        (ToServer, &[0x16, 3, 1, 0, 4, 1, 0, 0, 0][..]),
    ];
    let (c, t) = next(1007);
    sc.tcp(c, ep(MX), t)
        .handshake()
        .messages(&starttls)
        .send(ToClient, &[0x16, 3, 1, 0, 4, 2, 0, 0, 0])
        .close();
    let (c, t) = next(1008);
    sc.tcp(c, ep(MX), t)
        .handshake()
        .messages(&starttls)
        .reset(ToServer);
    let data = [
        (ToClient, banner.as_slice()),
        (ToServer, &ehlo),
        (ToClient, &ehlo_ok),
        (
            ToServer,
            b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n".as_slice(),
        ),
        (ToClient, b"250 OK\r\n250 OK\r\n354 go ahead\r\n".as_slice()),
        (ToServer, b"Subject: half\r\n".as_slice()),
    ];
    let (c, t) = next(1009);
    sc.tcp(c, ep(MX), t)
        .handshake()
        .messages(&data)
        .reset(ToClient);
    let (c, t) = next(1010);
    sc.tcp(c, ep(MX), t)
        .handshake()
        .messages(&[
            (ToClient, &banner),
            (ToServer, &ehlo),
            (ToClient, &ehlo_ok),
            (ToServer, &quit),
            (ToClient, &bye),
        ])
        .close();
    let (c, t) = next(1011);
    sc.tcp(c, ep(MX), t)
        .one_way()
        .send(ToServer, &ehlo)
        .send(ToServer, &quit);
    // Last: the capture ends inside DATA.
    let (c, t) = next(1012);
    sc.tcp(c, ep(MX), t).handshake().messages(&data);
    let r = analyse("verdicts.pcap", &mut sc);
    let want: BTreeMap<u16, String> = [
        (1001, "delivered"),
        (1002, "rejected"),
        (1003, "deferred"),
        (1004, "greeting_refused"),
        (1005, "no_banner"),
        (1006, "auth_failed"),
        (1007, "tls"),
        (1008, "tls_failed"),
        (1009, "cut"),
        (1010, "no_mail"),
        (1011, "one_sided"),
        (1012, "incomplete"),
    ]
    .into_iter()
    .map(|(p, v)| (p, v.to_string()))
    .collect();
    assert_eq!(verdicts(&r), want);
    let d = &r.diagnostics["smtp"];
    assert_eq!(d["sessions"], 12);
    assert_eq!(
        d["problems"].as_array().map(Vec::len),
        Some(11),
        "all but the delivered one"
    );
}

#[test]
fn exchange_to_exchange_blobs_and_bodies_span_segments() {
    use Dir::*;
    let mut sc = Scenario::new();
    // A 5000-byte XEXCH50 blob and a 20 kB body, each over several MSS-sized segments, full of
    // lines that look like commands.
    let blob: Vec<u8> = b"RSET\r\nQUIT\r\n"
        .iter()
        .copied()
        .cycle()
        .take(5000)
        .collect();
    let mut body: Vec<u8> = b"MAIL FROM:<x@y>\r\n"
        .iter()
        .copied()
        .cycle()
        .take(20_000)
        .collect();
    body.extend(b"\r\n.\r\n");
    sc.tcp(ep("10.1.0.6:1100"), ep(MX), T0)
        .handshake()
        .messages(&[
            (ToClient, b"220 exch02 Microsoft ESMTP MAIL Service\r\n".as_slice()),
            (ToServer, b"EHLO exch01\r\n"),
            (ToClient, b"250-exch02 Hello\r\n250-X-EXPS GSSAPI NTLM\r\n250-XEXCH50\r\n250 X-LINK2STATE\r\n"),
            (ToServer, b"X-EXPS GSSAPI\r\n"),
            (ToClient, b"334 <token>\r\n"),
            (ToServer, b"YIIFzgYGKwYBBQUCoIIFwjCC\r\n"),
            (ToClient, b"235 2.7.0 X-EXPS authentication successful\r\n"),
            (ToServer, b"MAIL FROM:<a@corp.example>\r\nRCPT TO:<b@corp.example>\r\n"),
            (ToClient, b"250 OK\r\n250 OK\r\n"),
            (ToServer, b"XEXCH50 5000 2\r\n"),
            (ToClient, b"354 Send binary data\r\n"),
            (ToServer, &blob),
            (ToClient, b"250 XEXCH50 OK\r\n"),
            (ToServer, b"DATA\r\n"),
            (ToClient, b"354 Start mail input\r\n"),
            (ToServer, &body),
            (ToClient, b"250 2.6.0 Queued mail for delivery\r\n"),
            (ToServer, b"X-LINK2STATE LAST CHUNK=1\r\nQUIT\r\n"),
            (ToClient, b"250 X-LINK2STATE OK\r\n221 bye\r\n"),
        ])
        .close();
    let r = analyse("x-exch.pcap", &mut sc);
    let f = r
        .flows
        .iter()
        .flatten()
        .find_map(|f| f.findings.get("smtp"))
        .unwrap();
    assert_eq!(f["verdict"], "delivered");
    assert_eq!(
        f["commands"],
        serde_json::json!({"EHLO": 1, "X-EXPS": 1, "MAIL": 1, "RCPT": 1, "XEXCH50": 1,
            "DATA": 1, "X-LINK2STATE": 1, "QUIT": 1})
    );
    assert_eq!(r.diagnostics["smtp"]["extensions"]["XEXCH50"], 1);
}

#[test]
fn dns_retransmissions_and_a_truncated_answer_retried_over_tcp() {
    let mut sc = Scenario::new();
    let (c, dns) = (ep("10.1.0.5:1200"), ep("10.1.0.53:53"));
    let q = app::dns_query(5, "corp.example", app::DNS_MX);
    // Asked three times, answered once: one transaction.
    sc.udp(c, dns, T0, &q);
    sc.udp(c, dns, T0 + S, &q);
    sc.udp(c, dns, T0 + 2 * S, &q);
    let mut tc = app::dns_response(5, "corp.example", app::DNS_MX, 0, &[], 60);
    tc[2] |= 0x02;
    sc.udp(dns, c, T0 + 2 * S + 1_000_000, &tc);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend(&q);
    let a = app::dns_response(
        5,
        "corp.example",
        app::DNS_MX,
        0,
        &[app::DnsAnswer::Mx(10, "mx.corp.example")],
        60,
    );
    let mut answer = (a.len() as u16).to_be_bytes().to_vec();
    answer.extend(&a);
    sc.tcp(ep("10.1.0.5:1201"), dns, T0 + 3 * S)
        .handshake()
        .send(Dir::ToServer, &framed)
        .send(Dir::ToClient, &answer)
        .close();
    let r = analyse("dns.pcap", &mut sc);
    let d = &r.diagnostics["dns"];
    assert_eq!(
        (
            d["queries"].as_u64(),
            d["responses"].as_u64(),
            d["unanswered"].as_u64()
        ),
        (Some(4), Some(2), Some(0))
    );
    assert_eq!(r.signalling.trackers["dns"].decoded["retransmissions"], 2);
    let retry = r
        .followups
        .iter()
        .find(|e| e.kind == "tcp_retry")
        .expect("TC announces the retry");
    assert_eq!(retry.outcome, "established");
}

#[test]
fn several_ldap_messages_per_segment() {
    let mut sc = Scenario::new();
    let msg = |id: u8, op: u8, body: &[u8]| {
        let mut inner = vec![0x02, 1, id, 0x60 | op, body.len() as u8];
        inner.extend(body);
        let mut m = vec![0x30, inner.len() as u8];
        m.extend(inner);
        m
    };
    let result = |code: u8| vec![0x0a, 1, code, 0x04, 0, 0x04, 0];
    let mut requests = msg(1, 0, &[0x02, 1, 3, 0x04, 0, 0x80, 0]);
    requests.extend(msg(2, 3, &[0x04, 0]));
    let mut answers = msg(1, 1, &result(0));
    answers.extend(msg(2, 4, &[0x04, 0]));
    answers.extend(msg(2, 4, &[0x04, 0]));
    answers.extend(msg(2, 5, &result(51)));
    sc.tcp(ep("10.1.0.5:1300"), ep("10.3.0.3:3268"), T0)
        .handshake()
        .send(Dir::ToServer, &requests)
        .send(Dir::ToClient, &answers)
        .close();
    let r = analyse("ldap.pcap", &mut sc);
    let d = &r.diagnostics["ldap"];
    assert_eq!(d["operations"]["searchResEntry"], 2);
    assert_eq!(d["problems"][0]["name"], "busy");
    assert_eq!(d["problems"][0]["server"], "10.3.0.3:3268");
}
