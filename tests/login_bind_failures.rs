//! Issue 11: POP3 `-ERR` and IMAP `NO`/`BAD` answers to a login, and X.400 connections or MTA
//! binds refused on tcp/102, are failures the user sees: per flow (`findings`), run-wide
//! (`diagnostics.<tracker>`) and in words in the table ("LOGIN AND BIND FAILURES"). Real captures
//! where the corpus has them (counts checked against tshark), built ones otherwise.

mod common;

use std::net::SocketAddr;

use exflow::analyze::{analyze_files, Completeness, Config};
use exflow::output::{write_table, Report, TableOptions};
use exflow::synth::{app, Dir, Scenario, TsPrecision};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/corpus");
const S: i64 = 1_000_000_000;
const T0: i64 = 1_000_000_000 * S;

fn ep(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn report_of(path: String) -> Report {
    let (a, done) = analyze_files(
        &[path],
        Config {
            keep_flows: true,
            ..Config::default()
        },
        |_, _, _, _| {},
    );
    assert_eq!(done, Completeness::Complete);
    Report::new(&a)
}

fn corpus(file: &str) -> Report {
    report_of(format!("{DATA}/{file}"))
}

fn built(name: &str, sc: &mut Scenario) -> Report {
    let path = common::scratch("login-bind-failures").join(name);
    std::fs::write(&path, sc.to_pcap(TsPrecision::Micro)).unwrap();
    report_of(path.to_string_lossy().into_owned())
}

fn table(r: &Report) -> String {
    let mut out = Vec::new();
    let opt = TableOptions {
        color: false,
        failures_per_service: 10,
    };
    write_table(&mut out, r, opt).unwrap();
    String::from_utf8(out).unwrap()
}

fn diag(r: &Report, name: &str, key: &str) -> u64 {
    r.diagnostics
        .get(name)
        .and_then(|d| d.get(key))
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

/// The flow records' findings of tracker `name`.
fn findings<'a>(r: &'a Report, name: &str) -> Vec<&'a serde_json::Value> {
    r.flows
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|f| f.findings.get(name))
        .collect()
}

/// zeek's pop3.pcap: tshark (`-Y 'pop.response.indicator == "-ERR"'`) shows four `-ERR`s: three
/// "1 argument required" to a bare `AUTH` (a mechanism listing, not a login) and one
/// "authentication failed" to `AUTH PLAIN` (frame 38); two other `AUTH PLAIN`s get `+OK`.
#[test]
fn pop3_refused_login_on_a_real_capture() {
    let r = corpus("zeek/Traces/pop3/pop3.pcap");
    assert_eq!(
        diag(&r, "pop3", "logins_refused"),
        1,
        "{:#?}",
        r.diagnostics
    );
    assert_eq!(diag(&r, "pop3", "logins_ok"), 2);
    assert_eq!(diag(&r, "pop3", "other_error_replies"), 3);
    assert_eq!(diag(&r, "pop3", "flows_with_refusals"), 1);
    let refused: Vec<_> = findings(&r, "pop3")
        .into_iter()
        .filter(|f| f["logins_refused"] == 1)
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0]["refusals"],
        serde_json::json!(["-ERR authentication failed"])
    );
    let t = table(&r);
    assert!(t.contains("LOGIN AND BIND FAILURES"), "{t}");
    assert!(
        t.contains("POP3 login refused: -ERR authentication failed"),
        "{t}"
    );
}

/// nDPI's pop3.pcap: tshark shows one "authentication failed" (frame 57); `USER`/`PASS` and two
/// `AUTH PLAIN`s succeed.
#[test]
fn pop3_user_pass_and_sasl_on_a_second_capture() {
    let r = corpus("ndpi/pop3.pcap");
    assert_eq!(
        diag(&r, "pop3", "logins_refused"),
        1,
        "{:#?}",
        r.diagnostics
    );
    assert_eq!(diag(&r, "pop3", "logins_ok"), 3);
}

/// IMAP: the corpus has successful logins only (tshark `imap.line`: `C00001 LOGIN` → `OK`,
/// `a0001 LOGIN` → `OK`) and `STARTTLS`; a refusal is built.
#[test]
fn imap_logins_real_and_refused() {
    let r = corpus("ndpi/imap.pcap");
    assert_eq!(diag(&r, "imap", "logins_ok"), 1, "{:#?}", r.diagnostics);
    assert_eq!(diag(&r, "imap", "logins_refused"), 0);
    assert_eq!(
        diag(&r, "imap", "other_error_replies"),
        0,
        "tshark sees no tagged NO/BAD; a message body's line is not one"
    );
    let r = corpus("wireshark-wiki/SampleCaptures/imap.cap");
    assert_eq!(diag(&r, "imap", "logins_ok"), 1);
    let r = corpus("ndpi/imap-starttls.pcap");
    assert_eq!(diag(&r, "imap", "starttls"), 1, "{:#?}", r.diagnostics);

    let mut sc = Scenario::with_seed(11);
    sc.tcp_session(
        ep("10.0.0.5:1200"),
        ep("10.0.0.143:143"),
        T0,
        &[
            (
                Dir::ToClient,
                b"* OK Microsoft Exchange 2000 IMAP4rev1 server ready\r\n",
            ),
            (Dir::ToServer, b"a1 CAPABILITY\r\n"),
            (
                Dir::ToClient,
                b"* CAPABILITY IMAP4rev1\r\na1 OK CAPABILITY completed.\r\n",
            ),
            (Dir::ToServer, b"a2 LOGIN joe wrong\r\n"),
            (
                Dir::ToClient,
                b"a2 NO Logon failure: unknown user name or bad password.\r\n",
            ),
            (Dir::ToServer, b"a3 LOGIN joe\r\n"),
            (Dir::ToClient, b"a3 BAD Command syntax error\r\n"),
            (Dir::ToServer, b"a4 LOGIN joe right\r\n"),
            (Dir::ToClient, b"a4 OK LOGIN completed.\r\n"),
            (Dir::ToServer, b"a5 LOGOUT\r\n"),
        ],
    );
    let r = built("imap-no.pcap", &mut sc);
    assert_eq!(
        diag(&r, "imap", "logins_refused"),
        2,
        "{:#?}",
        r.diagnostics
    );
    assert_eq!(diag(&r, "imap", "logins_ok"), 1);
    let f = findings(&r, "imap");
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0]["refusals"],
        serde_json::json!([
            "NO Logon failure: unknown user name or bad password.",
            "BAD Command syntax error"
        ])
    );
    let t = table(&r);
    assert!(
        t.contains("IMAP login refused: NO Logon failure: unknown user name or bad password."),
        "{t}"
    );
}

/// The Wireshark wiki's p772-transfer-success.pcap: the first MTA connection is refused (tshark:
/// `ses.type == 12` 1, `rtse.rtorj_apdu_element` 1, `acse.result == 1` 1, `p1.MTABindError`
/// busy), the second is accepted (`ses.type == 14` 1, `rtse.rtoac_apdu_element` 1).
#[test]
fn x400_bind_error_on_a_real_capture() {
    let r = corpus("wireshark-wiki/SampleCaptures/p772-transfer-success.pcap");
    assert_eq!(diag(&r, "x400", "sessions"), 2, "{:#?}", r.diagnostics);
    assert_eq!(diag(&r, "x400", "refused"), 1);
    assert_eq!(diag(&r, "x400", "refused_p1"), 1);
    assert_eq!(diag(&r, "x400", "accepted"), 1);
    assert_eq!(diag(&r, "x400", "binds_accepted"), 1);
    let f = findings(&r, "x400");
    assert!(f
        .iter()
        .any(|f| f["stage"] == "refused" && f["refused_by"] == "p1"));
    assert!(f.iter().any(|f| f["stage"] == "accepted"));
    let t = table(&r);
    assert!(
        t.contains("X.400 MTA bind refused: busy (P1 bind error 0)"),
        "{t}"
    );
    let r = corpus("wireshark-wiki/SampleCaptures/x400-ping-success.pcap");
    assert_eq!(
        (diag(&r, "x400", "accepted"), diag(&r, "x400", "refused")),
        (1, 0)
    );
}

/// A COTP TPDU in a TPKT.
fn tpdu(b: &[u8]) -> Vec<u8> {
    app::tpkt(b)
}

const CR: &[u8] = &[6, 0xe0, 0, 0, 0x17, 0xc4, 0];
const CC: &[u8] = &[6, 0xd0, 0x17, 0xc4, 0x03, 0x4c, 0];

/// The refusal of p772-transfer-success.pcap frame 7 with the bind error `authentication-error`
/// (2): what a wrong MTA password on an X.400 connector gets.
fn auth_refusal() -> Vec<u8> {
    let mut b = vec![
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
    *b.last_mut().unwrap() = 2;
    b
}

/// Built X.400 refusals, one per way a tcp/102 session fails: a DR answering the CR, an ER, a
/// CR never confirmed, and an MTA bind refused for a wrong password.
#[test]
fn x400_connection_and_bind_refusals() {
    let mut sc = Scenario::with_seed(102);
    let server = ep("10.0.0.102:102");
    let dr = tpdu(&[6, 0x80, 0x17, 0xc4, 0, 0, 0x81]);
    sc.tcp_session(
        ep("10.0.0.5:1300"),
        server,
        T0,
        &[(Dir::ToServer, &tpdu(CR)), (Dir::ToClient, &dr)],
    );
    let er = tpdu(&[4, 0x70, 0x17, 0xc4, 2]);
    sc.tcp_session(
        ep("10.0.0.5:1301"),
        server,
        T0 + S,
        &[(Dir::ToServer, &tpdu(CR)), (Dir::ToClient, &er)],
    );
    sc.tcp_session(
        ep("10.0.0.5:1302"),
        server,
        T0 + 2 * S,
        &[(Dir::ToServer, &tpdu(CR))],
    );
    sc.tcp_session(
        ep("10.0.0.5:1303"),
        server,
        T0 + 3 * S,
        &[
            (Dir::ToServer, &tpdu(CR)),
            (Dir::ToClient, &tpdu(CC)),
            (Dir::ToServer, &tpdu(&[2, 0xf0, 0x80, 13, 0])),
            (Dir::ToClient, &tpdu(&auth_refusal())),
        ],
    );
    // The same refusal split over two DT TPDUs (the first without end-of-TSDU), each in its own
    // TCP segment.
    let whole = auth_refusal();
    let mut first = vec![2, 0xf0, 0x00];
    first.extend_from_slice(&whole[3..40]);
    let mut second = vec![2, 0xf0, 0x80];
    second.extend_from_slice(&whole[40..]);
    sc.tcp_session(
        ep("10.0.0.6:1304"),
        server,
        T0 + 4 * S,
        &[
            (Dir::ToServer, &tpdu(CR)),
            (Dir::ToClient, &tpdu(CC)),
            (Dir::ToServer, &tpdu(&[2, 0xf0, 0x80, 13, 0])),
            (Dir::ToClient, &tpdu(&first)),
            (Dir::ToClient, &tpdu(&second)),
        ],
    );
    let r = built("x400-refusals.pcap", &mut sc);
    assert_eq!(diag(&r, "x400", "sessions"), 5, "{:#?}", r.diagnostics);
    assert_eq!(diag(&r, "x400", "refused"), 5);
    assert_eq!(diag(&r, "x400", "refused_cotp"), 3);
    assert_eq!(diag(&r, "x400", "refused_p1"), 2);
    let t = table(&r);
    for text in [
        "X.400 connection refused: COTP disconnect request (remote transport entity congestion)",
        "X.400 connection rejected: COTP error TPDU (invalid TPDU type)",
        "X.400 connection not confirmed: the CR got no CC",
        "X.400 MTA bind refused: authentication error (P1 bind error 2)",
    ] {
        assert!(t.contains(text), "{text}\n{t}");
    }
}

/// Built POP3: a pipelined `USER`/`PASS` refused, a multi-line body with a line that reads like
/// a reply, then `STLS`, after which nothing is read.
#[test]
fn pop3_built_refusal_body_and_stls() {
    let mut sc = Scenario::with_seed(110);
    sc.tcp_session(
        ep("10.0.0.5:1400"),
        ep("10.0.0.110:110"),
        T0,
        &[
            (
                Dir::ToClient,
                b"+OK Microsoft Exchange 2000 POP3 server ready\r\n",
            ),
            (Dir::ToServer, b"USER joe\r\nPASS wrong\r\n"),
            (
                Dir::ToClient,
                b"+OK\r\n-ERR Logon failure: unknown user name or bad password.\r\n",
            ),
            (Dir::ToServer, b"USER joe\r\nPASS right\r\n"),
            (
                Dir::ToClient,
                b"+OK\r\n+OK User successfully logged on.\r\n",
            ),
            (Dir::ToServer, b"RETR 1\r\n"),
            (
                Dir::ToClient,
                b"+OK\r\nSubject: x\r\n\r\n-ERR in a body\r\n.\r\n",
            ),
            (Dir::ToServer, b"STLS\r\n"),
            (Dir::ToClient, b"+OK Begin TLS\r\n"),
            (Dir::ToServer, b"\x16\x03\x01PASS x\r\n"),
            (Dir::ToClient, b"-ERR not read\r\n"),
        ],
    );
    let r = built("pop3.pcap", &mut sc);
    assert_eq!(
        diag(&r, "pop3", "logins_refused"),
        1,
        "{:#?}",
        r.diagnostics
    );
    assert_eq!(diag(&r, "pop3", "logins_ok"), 1);
    assert_eq!(diag(&r, "pop3", "other_error_replies"), 0);
    assert_eq!(diag(&r, "pop3", "starttls"), 1);
    assert!(table(&r)
        .contains("POP3 login refused: -ERR Logon failure: unknown user name or bad password."));
}
