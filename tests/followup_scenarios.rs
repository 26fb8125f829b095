//! Follow-up scenarios built with `exflow::synth` (no public RVP or 1731 capture exists): RVP
//! callbacks that work, are dropped by a firewall, go over httpu, plain OWA on the same port, an
//! unrelated connection to the subscriber's port; 1731 audio with two-way and one-way media and
//! unrelated UDP to a third host.

mod common;

use std::net::SocketAddr;

use exflow::analyze::{analyze_files, Completeness, Config};
use exflow::output::{FollowupView, Report};
use exflow::synth::{app, Dir, Scenario, TsPrecision};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_000_000_000 * S;

fn ep(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn analyse(name: &str, sc: &mut Scenario) -> Report {
    let path = common::scratch("followup-scenarios").join(name);
    std::fs::write(&path, sc.to_pcap(TsPrecision::Micro)).unwrap();
    let (a, done) = analyze_files(
        &[path.to_string_lossy().into_owned()],
        Config {
            keep_flows: true,
            ..Config::default()
        },
        |_, _, _, _| {},
    );
    assert_eq!(done, Completeness::Complete);
    Report::new(&a)
}

fn followup<'a>(r: &'a Report, host: &str, port: u16) -> &'a FollowupView {
    r.followups
        .iter()
        .find(|e| e.expected.host == host && e.expected.port == port)
        .unwrap_or_else(|| panic!("no expectation for {host}:{port}: {:#?}", r.followups))
}

/// The run's only expectation, checked to be `service` inferred from a `parent` session.
fn only_inferred<'a>(r: &'a Report, service: &str, parent: &str) -> &'a FollowupView {
    assert_eq!(r.followups.len(), 1, "{:#?}", r.followups);
    let e = &r.followups[0];
    assert_eq!(
        (
            e.service.as_str(),
            e.basis.as_str(),
            e.parent.service.as_str()
        ),
        (service, "inferred", parent)
    );
    e
}

fn flow_service(r: &Report, client: &str, server: &str) -> String {
    let f = r
        .flows
        .as_ref()
        .unwrap()
        .iter()
        .find(|f| f.client == client && f.server == server);
    f.unwrap_or_else(|| panic!("no flow {client} -> {server}"))
        .service
        .clone()
}

const SERVER: &str = "10.0.0.10:80";

fn subscribe(sc: &mut Scenario, client: &str, at: i64, callback: &str, udp: bool) {
    let mut body = app::rvp_subscribe(
        "im.example.com",
        "/instmsg/aliases/bob",
        "http://im/alice",
        ep(callback),
        600,
    );
    if udp {
        let text = String::from_utf8(body)
            .unwrap()
            .replace("Call-Back: http://", "Call-Back: httpu://");
        body = text.into_bytes();
    }
    let ok = app::rvp_subscribe_ok(7, 600);
    sc.tcp_session(
        ep(client),
        ep(SERVER),
        at,
        &[(Dir::ToServer, &body), (Dir::ToClient, &ok)],
    );
}

#[test]
fn rvp_callbacks() {
    let mut sc = Scenario::with_seed(1);
    // 1. Callback that works.
    subscribe(&mut sc, "10.0.1.1:1100", T0, "10.0.1.1:3001", false);
    let notify = app::rvp_notify(
        ep("10.0.1.1:3001"),
        "http://im/bob",
        "http://im/alice",
        "online",
    );
    sc.tcp_session(
        ep("10.0.0.10:1500"),
        ep("10.0.1.1:3001"),
        T0 + 2 * S,
        &[(Dir::ToServer, &notify)],
    );
    // 2. Callback dropped by a firewall (SYNs never answered).
    subscribe(&mut sc, "10.0.1.2:1100", T0 + S, "10.0.1.2:3002", false);
    sc.tcp_unanswered(ep("10.0.0.10:1501"), ep("10.0.1.2:3002"), T0 + 3 * S, 2);
    // 3. httpu: NOTIFY over UDP, answered.
    subscribe(&mut sc, "10.0.1.3:1100", T0 + 2 * S, "10.0.1.3:3003", true);
    sc.udp_exchange(
        ep("10.0.0.10:1502"),
        ep("10.0.1.3:3003"),
        T0 + 4 * S,
        &notify,
        b"HTTP/1.1 200 OK\r\n\r\n",
    );
    // 4. Plain OWA on port 80: http, no expectation.
    let get = b"GET /exchange/alice/Inbox/ HTTP/1.1\r\nHost: mail\r\n\r\n";
    sc.tcp_session(
        ep("10.0.1.4:1100"),
        ep(SERVER),
        T0,
        &[
            (Dir::ToServer, get),
            (Dir::ToClient, b"HTTP/1.1 200 OK\r\n\r\n"),
        ],
    );
    // 5. Same port on a host that never subscribed: not a callback.
    sc.tcp_session(
        ep("10.0.0.10:1507"),
        ep("10.0.1.4:3001"),
        T0 + 5 * S,
        &[(Dir::ToServer, &notify)],
    );
    // 6. A subscription whose server never calls back.
    subscribe(&mut sc, "10.0.1.5:1100", T0 + 3 * S, "10.0.1.5:3005", false);
    let r = analyse("rvp.pcap", &mut sc);

    assert_eq!(r.followups.len(), 4, "{:#?}", r.followups);
    assert!(r
        .followups
        .iter()
        .all(|e| e.service == "rvp_callback" && e.basis == "signalled"));
    assert!(r
        .followups
        .iter()
        .all(|e| e.parent.service == "rvp" && e.announced_by == "SUBSCRIBE"));
    assert_eq!(followup(&r, "10.0.1.1", 3001).outcome, "established");
    assert_eq!(followup(&r, "10.0.1.2", 3002).outcome, "unanswered");
    let udp = followup(&r, "10.0.1.3", 3003);
    assert_eq!(
        (udp.expected.proto.as_str(), udp.outcome.as_str()),
        ("udp", "established")
    );
    assert_eq!(followup(&r, "10.0.1.5", 3005).outcome, "not_seen");
    assert_eq!(
        flow_service(&r, "10.0.0.10:1500", "10.0.1.1:3001"),
        "rvp_callback"
    );
    assert_eq!(flow_service(&r, "10.0.1.4:1100", SERVER), "http");
    assert_eq!(
        flow_service(&r, "10.0.0.10:1507", "10.0.1.4:3001"),
        "unclassified"
    );
    assert_eq!(flow_service(&r, "10.0.1.1:1100", SERVER), "rvp");
    assert_eq!(r.signalling.rvp_subscribes, 4);
}

#[test]
fn audio_media_inference() {
    let a = "10.0.2.1";
    let conf = "10.0.0.30";
    let rtp = |seq: u16| app::rtp(seq, u32::from(seq) * 160, 0x1731, 0, false, &[0xff; 160]);
    let mut sc = Scenario::with_seed(2);
    sc.tcp_session(
        ep(&format!("{a}:1090")),
        ep(&format!("{conf}:1731")),
        T0,
        &[(Dir::ToServer, b"\x01call"), (Dir::ToClient, b"\x02ok")],
    );
    // Two-way stream between the two hosts.
    for i in 0..20u16 {
        let t = T0 + S + i64::from(i) * 20_000_000;
        sc.udp(
            ep(&format!("{a}:5004")),
            ep(&format!("{conf}:6004")),
            t,
            &rtp(i),
        );
        sc.udp(
            ep(&format!("{conf}:6004")),
            ep(&format!("{a}:5004")),
            t + 1_000_000,
            &rtp(100 + i),
        );
    }
    // One-way stream on other ports.
    for i in 0..10u16 {
        sc.udp(
            ep(&format!("{a}:5006")),
            ep(&format!("{conf}:6006")),
            T0 + 2 * S + i64::from(i) * 20_000_000,
            &rtp(i),
        );
    }
    // Unrelated UDP from the client to a third host, and non-RTP UDP between the two hosts.
    sc.udp(
        ep(&format!("{a}:5008")),
        ep("10.0.9.9:6008"),
        T0 + 2 * S,
        &rtp(1),
    );
    sc.udp(
        ep(&format!("{a}:5010")),
        ep(&format!("{conf}:6010")),
        T0 + 2 * S,
        b"\x00\x00not rtp at all",
    );
    // Long after the session: not audio.
    sc.udp(
        ep(&format!("{a}:5012")),
        ep(&format!("{conf}:6012")),
        T0 + 600 * S,
        &rtp(1),
    );
    let r = analyse("audio.pcap", &mut sc);

    let e = only_inferred(&r, "audio_media", "audio");
    assert_eq!((e.flows, e.outcome.as_str()), (2, "established"));
    assert_eq!(
        flow_service(&r, &format!("{a}:5004"), &format!("{conf}:6004")),
        "audio_media"
    );
    let one_way = r
        .flows
        .as_ref()
        .unwrap()
        .iter()
        .find(|f| f.client == format!("{a}:5006"))
        .unwrap();
    assert_eq!(
        (one_way.service.as_str(), one_way.outcome.as_str()),
        ("audio_media", "one_way")
    );
    assert_eq!(
        flow_service(&r, &format!("{a}:5008"), "10.0.9.9:6008"),
        "unclassified"
    );
    assert_eq!(
        flow_service(&r, &format!("{a}:5010"), &format!("{conf}:6010")),
        "unclassified"
    );
    assert_eq!(
        flow_service(&r, &format!("{a}:5012"), &format!("{conf}:6012")),
        "unclassified"
    );
}

#[test]
fn undecodable_h323_falls_back_to_inference() {
    let (caller, gw) = ("10.0.3.1", "10.0.0.40");
    let rtp = |seq: u16| app::rtp(seq, u32::from(seq) * 160, 0x323, 8, false, &[0xd5; 160]);
    let mut sc = Scenario::with_seed(3);
    // A TPKT whose Q.931 is not Q.931 (protocol discriminator 0x55): nothing can be learned.
    let junk = app::tpkt(b"\x55\x02\x00\x01\x05garbage that is not a Setup");
    sc.tcp_session(
        ep(&format!("{caller}:1200")),
        ep(&format!("{gw}:1720")),
        T0,
        &[(Dir::ToServer, &junk)],
    );
    for i in 0..10u16 {
        let t = T0 + S + i64::from(i) * 20_000_000;
        sc.udp(
            ep(&format!("{caller}:5004")),
            ep(&format!("{gw}:5006")),
            t,
            &rtp(i),
        );
        sc.udp(
            ep(&format!("{gw}:5006")),
            ep(&format!("{caller}:5004")),
            t + 1_000_000,
            &rtp(50 + i),
        );
    }
    // RTP-looking UDP to a third host is not this call's media.
    sc.udp(
        ep(&format!("{caller}:5008")),
        ep("10.0.9.9:5010"),
        T0 + S,
        &rtp(1),
    );
    let r = analyse("h323-fallback.pcap", &mut sc);

    assert_eq!(r.signalling.decode_errors, 1);
    let e = only_inferred(&r, "h323_media", "h323");
    assert_eq!((e.flows, e.outcome.as_str()), (1, "established"));
    assert_eq!(
        flow_service(&r, &format!("{caller}:5004"), &format!("{gw}:5006")),
        "h323_media"
    );
    assert_eq!(
        flow_service(&r, &format!("{caller}:5008"), "10.0.9.9:5010"),
        "unclassified"
    );
}

/// Issue 11: HTTP to port 8000 from Windows client port 1731 (SYN seen) was `audio` by its client
/// port and started the 1731 inference: a false "audio_media never seen: blocked". So were
/// client ports 1503, 1720 and 3268 `t120`, `h323` and `gc`.
#[test]
fn windows_client_ports_are_not_services() {
    let web = "10.0.0.80";
    let mut sc = Scenario::with_seed(11);
    for (i, port) in [1731u16, 1503, 1720, 3268].into_iter().enumerate() {
        sc.tcp_session(
            ep(&format!("10.0.2.1:{port}")),
            ep(&format!("{web}:8000")),
            T0 + i64::try_from(i).unwrap() * S,
            &[
                (Dir::ToServer, b"GET / HTTP/1.1\r\nHost: w\r\n\r\n"),
                (Dir::ToClient, b"HTTP/1.1 200 OK\r\n\r\n"),
            ],
        );
    }
    // The same client port to a catalogued server takes the server's service.
    sc.tcp_session(
        ep("10.0.2.1:3269"),
        ep(&format!("{web}:80")),
        T0 + 5 * S,
        &[(Dir::ToServer, b"GET / HTTP/1.1\r\nHost: w\r\n\r\n")],
    );
    // Media-like UDP between the two hosts right after: nothing may infer it is audio.
    sc.udp(
        ep("10.0.2.1:5004"),
        ep(&format!("{web}:6004")),
        T0 + 6 * S,
        &app::rtp(1, 160, 0x1731, 0, false, &[0xff; 160]),
    );
    let r = analyse("client-ports.pcap", &mut sc);
    assert!(r.followups.is_empty(), "{:#?}", r.followups);
    let services: Vec<&str> = r.services.iter().map(|s| s.service.as_str()).collect();
    for wrong in ["audio", "audio_media", "t120", "h323", "gc", "gc_ssl"] {
        assert!(!services.contains(&wrong), "{wrong} in {services:?}");
    }
    assert_eq!(
        flow_service(&r, "10.0.2.1:1731", &format!("{web}:8000")),
        "unclassified"
    );
    assert_eq!(
        flow_service(&r, "10.0.2.1:3269", &format!("{web}:80")),
        "http"
    );
}
