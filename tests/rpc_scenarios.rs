//! MS-RPC scenarios built with `exflow::synth` and run through the whole pipeline (capture file →
//! JSON report and table): an endpoint-mapper answer with several towers, a big-endian one, one
//! split over fragments and segments, an authenticated one, follow-ups that are blocked by an
//! ICMP admin-prohibited or never answered, a bind on a pinned port, and an unrelated high port
//! between the same hosts that stays `unclassified`. The PDUs are the real ones of
//! `src/track/epm_tests.rs` (from `zeek/Traces/dce-rpc/mapi.pcap`) or built the same way as in
//! `src/signal/dcerpc_tests.rs`.

mod common;
use common::hex;
use common::mapi_pcap::{BIND_ACK, EPM_BIND, MAPI_BIND, MAP_REQUEST, MAP_RESPONSE};

use std::net::SocketAddr;

use exflow::analyze::{analyze_files_with, Completeness, Config};
use exflow::output::events::{Dest, EventStream, EventWriter, QUEUE_LINES};
use exflow::output::{write_table, FlowView, FollowupView, Report, TableOptions};
use exflow::synth::{Dir, Scenario, TsPrecision};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_000_000_000 * S;

fn ep(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const EMSMDB: &str = "a4f1db00-ca47-1067-b31f-00dd010662da";
const NSPI: &str = "f5cc5a18-4264-101a-8c59-08002b2f8426";
const MTA: &str = "9e8ee830-4459-11ce-979b-00aa005ffebe";
const DRSUAPI: &str = "e3514235-4b06-11d1-ab04-00c04fc2dcd2";
const NDR: &str = "045d888aeb1cc9119fe808002b104860";

const KEYS: &str = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\";

#[derive(Clone, Copy, PartialEq)]
enum Order {
    Little,
    Big,
}

fn put16(v: &mut Vec<u8>, o: Order, x: u16) {
    v.extend(match o {
        Order::Big => x.to_be_bytes(),
        Order::Little => x.to_le_bytes(),
    });
}

fn put32(v: &mut Vec<u8>, o: Order, x: u32) {
    v.extend(match o {
        Order::Big => x.to_be_bytes(),
        Order::Little => x.to_le_bytes(),
    });
}

/// A whole (first and last fragment) PDU of `ptype` around `body`, with an NTLM-style auth
/// trailer of `auth` bytes if non-zero.
fn pdu(ptype: u8, o: Order, call_id: u32, body: &[u8], auth: u16) -> Vec<u8> {
    let mut v = vec![5, 0, ptype, 0x03];
    v.extend([if o == Order::Little { 0x10 } else { 0 }, 0, 0, 0]);
    let trailer = if auth > 0 { 8 + usize::from(auth) } else { 0 };
    put16(&mut v, o, (16 + body.len() + trailer) as u16);
    put16(&mut v, o, auth);
    put32(&mut v, o, call_id);
    v.extend(body);
    if auth > 0 {
        v.extend([10, 6, 0, 0, 0, 0, 0, 0]);
        v.extend(std::iter::repeat_n(0xaa, usize::from(auth)));
    }
    v
}

/// An ept_map request (opnum 3) of `call_id`; its stub is not read.
fn map_request(o: Order, call_id: u32) -> Vec<u8> {
    let mut b = Vec::new();
    put32(&mut b, o, 40);
    put16(&mut b, o, 0);
    put16(&mut b, o, 3);
    b.extend([0u8; 40]);
    pdu(0, o, call_id, &b, 0)
}

/// A tower for `uuid` v`major`: ncacn_ip_tcp, TCP `port`, IP `ip` (0.0.0.0: the answering server).
/// Floor counts and lengths are little-endian whatever the PDU's byte order.
fn tower(uuid: &str, major: u16, ip: [u8; 4], port: u16) -> Vec<u8> {
    let u = hex(&uuid.replace('-', ""));
    let mut le = u.clone();
    le[0..4].reverse();
    le[4..6].reverse();
    le[6..8].reverse();
    let mut t = 5u16.to_le_bytes().to_vec();
    let mut floor = |lhs: &[u8], rhs: &[u8]| {
        t.extend((lhs.len() as u16).to_le_bytes());
        t.extend(lhs);
        t.extend((rhs.len() as u16).to_le_bytes());
        t.extend(rhs);
    };
    let mut f1 = vec![0x0d];
    f1.extend(le);
    f1.extend(major.to_le_bytes());
    floor(&f1, &[0, 0]);
    let mut f2 = vec![0x0d];
    f2.extend(hex(NDR));
    f2.extend(2u16.to_le_bytes());
    floor(&f2, &[0, 0]);
    floor(&[0x0b], &[0, 0]);
    floor(&[0x07], &port.to_be_bytes());
    floor(&[0x09], &ip);
    t
}

/// An ept_map response PDU of `call_id` holding `towers` (status 0).
fn map_response(o: Order, call_id: u32, towers: &[Vec<u8>], auth: u16) -> Vec<u8> {
    let mut s = vec![0; 20];
    let n = towers.len() as u32;
    for x in [n, n, 0, n] {
        put32(&mut s, o, x);
    }
    for i in 0..n {
        put32(&mut s, o, i + 1);
    }
    for t in towers {
        put32(&mut s, o, t.len() as u32);
        put32(&mut s, o, t.len() as u32);
        s.extend(t);
        while !s.len().is_multiple_of(4) {
            s.push(0);
        }
    }
    put32(&mut s, o, 0);
    let mut b = Vec::new();
    put32(&mut b, o, s.len() as u32);
    b.extend([0, 0, 0, 0]);
    b.extend(s);
    pdu(2, o, call_id, &b, auth)
}

/// A response cut into two fragments after `cut` bytes of its body.
fn fragments(resp: &[u8], cut: usize) -> Vec<u8> {
    let (head, body) = resp.split_at(24);
    let mut out = Vec::new();
    for (flags, part) in [(1u8, &body[..cut]), (2, &body[cut..])] {
        let mut p = head.to_vec();
        p[3] = flags;
        p[8..10].copy_from_slice(&((24 + part.len()) as u16).to_le_bytes());
        p.extend(part);
        out.extend(p);
    }
    out
}

/// A client asks the endpoint mapper at `server`:135 with `request` (after a bind); the mapper
/// answers with `response`, sent in the given segments.
fn ask_mapper(
    sc: &mut Scenario,
    client: &str,
    server: &str,
    at: i64,
    request: &[u8],
    segments: &[&[u8]],
) {
    let mut s = sc.tcp(ep(client), ep(&format!("{server}:135")), at);
    s.handshake()
        .send(Dir::ToServer, &hex(EPM_BIND))
        .send(Dir::ToClient, &hex(BIND_ACK))
        .send(Dir::ToServer, request);
    for seg in segments {
        s.send(Dir::ToClient, seg);
    }
    s.close();
}

/// A MAPI session to `server`: bind to EMSMDB, then some store traffic.
fn mapi_session(sc: &mut Scenario, client: &str, server: &str, at: i64) {
    sc.tcp_session(
        ep(client),
        ep(server),
        at,
        &[
            (Dir::ToServer, &hex(MAPI_BIND)),
            (Dir::ToClient, &[0x05; 200]),
            (Dir::ToServer, &[0x06; 300]),
            (Dir::ToClient, &[0x07; 900]),
        ],
    );
}

fn analyse(name: &str, sc: &mut Scenario) -> Report {
    let path = common::scratch("rpc-scenarios").join(name);
    std::fs::write(&path, sc.to_pcap(TsPrecision::Micro)).unwrap();
    let events = path.with_extension("ndjson");
    let _ = std::fs::remove_file(&events);
    let writer = EventWriter::open(&Dest::File(events.clone()), QUEUE_LINES, false).unwrap();
    let (a, done) = analyze_files_with(
        &[path.to_string_lossy().into_owned()],
        Config {
            keep_flows: true,
            ..Config::default()
        },
        Some(Box::new(EventStream::new(writer, 0))),
        |_, _, _, _| {},
    );
    assert_eq!(done, Completeness::Complete);
    let r = Report::new(&a);
    // The JSON report reads back the same.
    let json = serde_json::to_string(&r).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back.followups, r.followups);
    check_followup_events(&events, &r);
    r
}

/// Each follow-up's `followup` events (`--events`) describe it as the report does, the registry
/// pin of its interface included (a domain controller's NSPI is pinned with NTDS's setting): the
/// concluded one whole, the announced one (one endpoint-mapper answer here) in its interface.
fn check_followup_events(events: &std::path::Path, r: &Report) {
    let text = std::fs::read_to_string(events).unwrap();
    let followups: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event_type"] == "followup")
        .collect();
    assert_eq!(followups.len(), 2 * r.followups.len());
    for f in &r.followups {
        let want = serde_json::to_value(f).unwrap();
        let of = |state: &str| {
            followups
                .iter()
                .find(|e| e["state"] == state && e["followup"]["id"] == want["id"])
                .unwrap_or_else(|| panic!("no {state} event for {want}"))
        };
        assert_eq!(of("concluded")["followup"], want);
        assert_eq!(of("announced")["followup"]["interface"], want["interface"]);
    }
}

fn table(r: &Report) -> String {
    let mut out = Vec::new();
    write_table(&mut out, r, TableOptions::default()).unwrap();
    String::from_utf8(out).unwrap()
}

fn followup<'a>(r: &'a Report, endpoint: &str) -> &'a FollowupView {
    let (host, port) = endpoint.rsplit_once(':').unwrap();
    let port: u16 = port.parse().unwrap();
    r.followups
        .iter()
        .find(|e| e.expected.host == host && e.expected.port == port)
        .unwrap_or_else(|| panic!("no expectation for {endpoint}: {:#?}", r.followups))
}

fn flow<'a>(r: &'a Report, client: &str, server: &str) -> &'a FlowView {
    r.flows
        .as_ref()
        .unwrap()
        .iter()
        .find(|f| f.client == client && f.server == server)
        .unwrap_or_else(|| panic!("no flow {client} -> {server}: {:#?}", r.flows))
}

/// The follow-up's service, outcome, interface UUID and name, and pin path.
fn described(e: &FollowupView) -> (&str, &str, &str, &str, String) {
    let i = e
        .interface
        .as_ref()
        .expect("an RPC follow-up has its interface");
    let pin = i.pin.as_ref().map(|p| p.path()).unwrap_or_default();
    (
        e.service.as_str(),
        e.outcome.as_str(),
        i.uuid.as_str(),
        i.name.as_str(),
        pin,
    )
}

#[test]
fn several_towers_in_one_response_expect_every_address() {
    // A multi-homed Exchange server answers with one tower per address.
    let mut sc = Scenario::with_seed(1);
    let resp = map_response(
        Order::Little,
        1,
        &[
            tower(EMSMDB, 0, [10, 2, 0, 10], 1101),
            tower(EMSMDB, 0, [10, 3, 0, 10], 1101),
        ],
        0,
    );
    ask_mapper(
        &mut sc,
        "10.1.0.5:1030",
        "10.2.0.10",
        T0,
        &hex(MAP_REQUEST),
        &[&resp],
    );
    mapi_session(&mut sc, "10.1.0.5:1031", "10.2.0.10:1101", T0 + S);
    let r = analyse("towers.pcap", &mut sc);

    let pin = format!("{KEYS}MSExchangeIS\\ParametersSystem\\TCP/IP Port");
    let seen = followup(&r, "10.2.0.10:1101");
    assert_eq!(
        described(seen),
        ("mapi", "established", EMSMDB, "EMSMDB", pin.clone())
    );
    assert_eq!(
        (seen.kind.as_str(), seen.announced_by.as_str()),
        ("tower", "ept_map")
    );
    assert_eq!(seen.parent.server, "10.2.0.10:135");
    assert_eq!(
        seen.interface.as_ref().unwrap().description,
        "Exchange store (MAPI)"
    );
    let other = followup(&r, "10.3.0.10:1101");
    assert_eq!(
        described(other),
        ("mapi", "not_seen", EMSMDB, "EMSMDB", pin.clone())
    );
    assert_eq!(r.followups.len(), 2, "{:#?}", r.followups);

    let f = flow(&r, "10.1.0.5:1031", "10.2.0.10:1101");
    assert_eq!((f.service.as_str(), f.followup_of), ("mapi", Some(seen.id)));
    assert_eq!(flow(&r, "10.1.0.5:1030", "10.2.0.10:135").service, "msrpc");
    // The address never connected to is reported with its interface and pin.
    let t = table(&r);
    assert!(
        t.contains("Exchange store (MAPI) 10.3.0.10:1101/tcp — never seen"),
        "{t}"
    );
    assert!(t.contains(&pin), "{t}");
}

#[test]
fn a_big_endian_answer_for_the_answering_server() {
    // NDR data in big-endian order; 0.0.0.0 in the tower means the server that answered.
    let mut sc = Scenario::with_seed(2);
    let o = Order::Big;
    let resp = map_response(o, 7, &[tower(NSPI, 56, [0, 0, 0, 0], 1102)], 0);
    ask_mapper(
        &mut sc,
        "10.1.0.5:1030",
        "10.2.0.10",
        T0,
        &map_request(o, 7),
        &[&resp],
    );
    // Another client uses the endpoint: it is the server's, for every client.
    sc.tcp_session(
        ep("10.1.0.6:1200"),
        ep("10.2.0.10:1102"),
        T0 + 2 * S,
        &[(Dir::ToServer, &[0x11; 120]), (Dir::ToClient, &[0x12; 400])],
    );
    let r = analyse("big-endian.pcap", &mut sc);

    let e = followup(&r, "10.2.0.10:1102");
    assert_eq!(
        described(e),
        (
            "nspi",
            "established",
            NSPI,
            "NSPI",
            format!("{KEYS}MSExchangeSA\\Parameters\\TCP/IP NSPI Port")
        )
    );
    assert_eq!(e.interface.as_ref().unwrap().version, "56.0");
    assert_eq!(flow(&r, "10.1.0.6:1200", "10.2.0.10:1102").service, "nspi");
}

#[test]
fn an_answer_split_over_fragments_and_segments() {
    // The real ept_map answer of mapi.pcap, cut into two fragments sent as three segments that
    // cut both fragments.
    let mut sc = Scenario::with_seed(3);
    let resp = fragments(&hex(MAP_RESPONSE), 50);
    let (a, rest) = resp.split_at(30);
    let (b, c) = rest.split_at(60);
    ask_mapper(
        &mut sc,
        "192.168.0.173:1066",
        "192.168.0.2",
        T0,
        &hex(MAP_REQUEST),
        &[a, b, c],
    );
    sc.tcp_session(
        ep("192.168.0.99:2000"),
        ep("192.168.0.2:4997"),
        T0 + S,
        &[(Dir::ToServer, &[0x11; 120]), (Dir::ToClient, &[0x12; 400])],
    );
    let r = analyse("fragments.pcap", &mut sc);

    let e = followup(&r, "192.168.0.2:4997");
    assert_eq!(
        (e.service.as_str(), e.outcome.as_str()),
        ("nspi", "established")
    );
    assert_eq!(r.followups.len(), 1, "{:#?}", r.followups);
    assert_eq!(
        flow(&r, "192.168.0.99:2000", "192.168.0.2:4997").service,
        "nspi"
    );
    let epm = &r.signalling.trackers["epm"];
    assert_eq!(epm.decoded.get("fragments"), Some(&2), "{epm:?}");
}

#[test]
fn an_authenticated_answer_from_a_domain_controller() {
    // The auth trailer is not stub. A DC hands out DRSUAPI and NSPI (it is a Global Catalog):
    // NSPI is then pinned with the DC's NTDS setting, not the System Attendant's.
    let mut sc = Scenario::with_seed(4);
    let resp = map_response(
        Order::Little,
        3,
        &[
            tower(DRSUAPI, 4, [10, 2, 0, 20], 1025),
            tower(NSPI, 56, [10, 2, 0, 20], 1026),
        ],
        16,
    );
    ask_mapper(
        &mut sc,
        "10.1.0.5:1040",
        "10.2.0.20",
        T0,
        &map_request(Order::Little, 3),
        &[&resp],
    );
    let r = analyse("auth.pcap", &mut sc);

    let ntds = format!("{KEYS}NTDS\\Parameters\\TCP/IP Port");
    assert_eq!(
        described(followup(&r, "10.2.0.20:1025")),
        ("drsuapi", "not_seen", DRSUAPI, "drsuapi", ntds.clone())
    );
    let nspi = followup(&r, "10.2.0.20:1026");
    assert_eq!(described(nspi), ("nspi", "not_seen", NSPI, "NSPI", ntds));
    assert_eq!(
        nspi.interface.as_ref().unwrap().pin.as_ref().unwrap().kb,
        "KB 298369"
    );
}

#[test]
fn a_blocked_and_an_unanswered_follow_up() {
    let mut sc = Scenario::with_seed(5);
    let resp = map_response(
        Order::Little,
        1,
        &[
            tower(EMSMDB, 0, [10, 2, 0, 10], 1101),
            tower(MTA, 2, [10, 2, 0, 10], 1105),
        ],
        0,
    );
    ask_mapper(
        &mut sc,
        "10.1.0.5:1030",
        "10.2.0.10",
        T0,
        &hex(MAP_REQUEST),
        &[&resp],
    );
    // The store port is blocked by a router; the MTA's is silently dropped.
    sc.tcp_icmp_blocked(
        ep("10.1.0.5:1031"),
        ep("10.2.0.10:1101"),
        "10.2.0.1".parse().unwrap(),
        T0 + S,
    );
    sc.tcp_unanswered(ep("10.1.0.5:1032"), ep("10.2.0.10:1105"), T0 + 2 * S, 2);
    let r = analyse("blocked.pcap", &mut sc);

    let store = followup(&r, "10.2.0.10:1101");
    assert_eq!(
        described(store),
        (
            "mapi",
            "icmp_unreachable",
            EMSMDB,
            "EMSMDB",
            format!("{KEYS}MSExchangeIS\\ParametersSystem\\TCP/IP Port")
        )
    );
    let mta = followup(&r, "10.2.0.10:1105");
    let (service, outcome, uuid, name, _) = described(mta);
    assert_eq!(
        (service, outcome, uuid, name),
        ("exchange_mta", "unanswered", MTA, "MTA")
    );
    let pin = mta.interface.as_ref().unwrap().pin.as_ref().unwrap();
    assert_eq!(
        (pin.key.as_str(), pin.value.as_deref(), pin.kb.as_str()),
        (
            "HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeMTA\\Parameters",
            None,
            "KB 161931"
        )
    );
    assert_eq!(flow(&r, "10.1.0.5:1031", "10.2.0.10:1101").service, "mapi");
    assert_eq!(
        flow(&r, "10.1.0.5:1032", "10.2.0.10:1105").service,
        "exchange_mta"
    );

    // The table says it in plain words, with the router, and where to pin the port.
    let t = table(&r);
    assert!(
        t.contains(
            "Exchange store (MAPI) 10.2.0.10:1101/tcp — blocked: ICMP admin-prohibited from 10.2.0.1"
        ),
        "{t}"
    );
    assert!(
        t.contains("pin it (KB 270836):\n      HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem\\TCP/IP Port"),
        "{t}"
    );
    assert!(
        t.contains("Exchange MTA 10.2.0.10:1105/tcp — attempted, never answered"),
        "{t}"
    );
    assert!(
        t.contains("pin it (KB 161931, its RPC listen value under):\n      HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeMTA\\Parameters\n"),
        "{t}"
    );
    assert!(t.contains("announced by ept_map at"), "{t}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["followups"][0]["interface"]["pin"]["value"],
        serde_json::json!("TCP/IP Port"),
        "{json:#}"
    );
}

#[test]
fn a_bind_on_a_pinned_port_and_an_unrelated_high_port() {
    // No endpoint mapper: the admin pinned the store to 6001, the client binds there directly.
    let mut sc = Scenario::with_seed(6);
    mapi_session(&mut sc, "10.1.0.5:1031", "10.2.0.10:6001", T0);
    // A later client joins mid-stream, with no bind: the remembered endpoint names it.
    sc.tcp_midstream(
        ep("10.1.0.7:1500"),
        ep("10.2.0.10:6001"),
        T0 + S,
        &[(Dir::ToServer, &[0x21; 80]), (Dir::ToClient, &[0x22; 300])],
    );
    // Something else between the same hosts, on another high port.
    sc.tcp_session(
        ep("10.1.0.5:1040"),
        ep("10.2.0.10:7001"),
        T0 + 2 * S,
        &[(Dir::ToServer, b"hello\r\n"), (Dir::ToClient, b"world\r\n")],
    );
    let r = analyse("pinned.pcap", &mut sc);

    let bound = flow(&r, "10.1.0.5:1031", "10.2.0.10:6001");
    assert_eq!(bound.service, "mapi");
    assert_eq!(
        bound.findings["rpc"]["rpc_interface"]["uuid"],
        serde_json::json!(EMSMDB),
        "{:?}",
        bound.findings
    );
    assert_eq!(flow(&r, "10.1.0.7:1500", "10.2.0.10:6001").service, "mapi");
    assert_eq!(
        flow(&r, "10.1.0.5:1040", "10.2.0.10:7001").service,
        "unclassified"
    );
    let e = followup(&r, "10.2.0.10:6001");
    assert_eq!((e.kind.as_str(), e.optional), ("bind", true));
    assert_eq!(described(e).0, "mapi");
}
