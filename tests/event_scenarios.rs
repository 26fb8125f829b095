//! `--events` on built captures (`exflow::synth`): the exact order and content of the events of an
//! SMTP session, a DNS lookup and an RVP callback announced and concluded; and, in a long live
//! run, the concluding event of an expectation retired from the table.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use exflow::analyze::{analyze_files_with, Analyzer, Completeness, Config};
use exflow::classify::RETIRE_AFTER;
use exflow::output::events::{Dest, EventStream, EventWriter, QUEUE_LINES};
use exflow::packet::RawPacket;
use exflow::synth::{app, Dir, Scenario, TsPrecision};
use serde_json::Value;

const S: i64 = 1_000_000_000;
const T0: i64 = 1_000_000_000 * S;

fn ep(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let p = common::scratch("event-scenarios").join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn read(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stream(path: &Path, lossy: bool) -> Box<EventStream> {
    let writer = EventWriter::open(&Dest::File(path.to_path_buf()), QUEUE_LINES, lossy).unwrap();
    Box::new(EventStream::new(writer, 0))
}

/// `2001-09-09T01:46:40.000000Z` for `T0`, as events write it.
fn rfc3339(ts: i64) -> String {
    exflow::output::time::rfc3339(ts)
}

fn subscribe(sc: &mut Scenario, client: &str, at: i64, callback: &str) {
    let body = app::rvp_subscribe(
        "im.example.com",
        "/instmsg/aliases/bob",
        "http://im/alice",
        ep(callback),
        600,
    );
    let ok = app::rvp_subscribe_ok(7, 600);
    sc.tcp_session(
        ep(client),
        ep("10.0.0.10:80"),
        at,
        &[(Dir::ToServer, &body), (Dir::ToClient, &ok)],
    );
}

/// Each flow leaves the table in a sweep of its own (a sweep runs at the second packet past the
/// sweep time; the event has that packet's time), so the order is fixed:
/// - T0: an SMTP session whose recipient is refused (550 5.7.1), closed;
/// - T0+60 s: a DNS MX lookup, answered; its response sweeps the closed SMTP flow out;
/// - T0+300 s: an RVP SUBSCRIBE with a callback address; its SYN-ACK sweeps the DNS flow out;
/// - T0+340 s: the server's callback connection; its SYN-ACK sweeps the RVP flow out;
/// - the end of the capture flushes the callback flow and concludes the follow-up.
#[test]
fn built_session_lookup_and_followup_give_events_in_this_order() {
    let mut sc = Scenario::with_seed(13);
    let smtp = app::smtp_dialogue(
        "mx.example.com",
        "client.example.com",
        "alice@example.com",
        &["bob@elsewhere.example"],
        "Subject: hi\r\n\r\nhello\r\n",
        Some("550 5.7.1 Unable to relay for bob@elsewhere.example"),
    );
    sc.tcp(ep("10.0.1.1:1100"), ep("10.0.0.25:25"), T0)
        .handshake()
        .dialogue(&smtp)
        .close();
    let q = app::dns_query(0x1234, "example.com", app::DNS_MX);
    let answer = app::dns_response(
        0x1234,
        "example.com",
        app::DNS_MX,
        app::DNS_NOERROR,
        &[app::DnsAnswer::Mx(10, "mx.example.com")],
        3600,
    );
    let dns_at = T0 + 60 * S;
    let dns_answered =
        sc.udp_exchange(ep("10.0.1.1:1053"), ep("10.0.0.53:53"), dns_at, &q, &answer);
    let rvp_at = T0 + 300 * S;
    subscribe(&mut sc, "10.0.1.5:1100", rvp_at, "10.0.1.5:3001");
    let notify = app::rvp_notify(
        ep("10.0.1.5:3001"),
        "http://im/bob",
        "http://im/alice",
        "online",
    );
    let callback_at = T0 + 340 * S;
    let end = sc.tcp_session(
        ep("10.0.0.10:1500"),
        ep("10.0.1.5:3001"),
        callback_at,
        &[(Dir::ToServer, &notify)],
    );
    let pcap = tmp("order.pcap");
    std::fs::write(&pcap, sc.to_pcap(TsPrecision::Micro)).unwrap();
    let out = tmp("order.ndjson");
    let (a, done) = analyze_files_with(
        &[pcap.to_string_lossy().into_owned()],
        Config::default(),
        Some(stream(&out, false)),
        |_, _, _, _| {},
    );
    assert_eq!(done, Completeness::Complete);
    assert_eq!(a.followups.len(), 1);
    let ev = read(&out);
    let kinds: Vec<(String, String)> = ev
        .iter()
        .map(|e| {
            let t = e["event_type"].as_str().unwrap().to_string();
            let what = match t.as_str() {
                "followup" => e["state"].as_str().unwrap().to_string(),
                _ => e["app_proto"].as_str().unwrap().to_string(),
            };
            (t, what)
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("smtp", "smtp"),
        ("flow", "smtp"),
        ("dns", "dns"),
        ("flow", "dns"),
        ("followup", "announced"),
        ("flow", "rvp"),
        ("flow", "rvp_callback"),
        ("followup", "concluded"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(kinds, want, "{ev:#?}");

    // When each happened, in capture time.
    let ts: Vec<&str> = ev
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    let rtt = sc.timing().rtt;
    assert_eq!(
        ts[0],
        rfc3339(dns_answered),
        "the response's arrival swept it out"
    );
    assert_eq!(ts[1], ts[0]);
    assert_eq!(
        ts[2],
        rfc3339(rvp_at + rtt),
        "swept out by the SUBSCRIBE's SYN-ACK"
    );
    assert_eq!(ts[3], ts[2]);
    assert!(
        ts[4] > ts[3] && ts[4] < rfc3339(rvp_at + S).as_str(),
        "{}",
        ts[4]
    );
    assert_eq!(ts[5], rfc3339(callback_at + rtt));
    assert_eq!(ts[6], rfc3339(end), "flushed at the capture's last packet");
    assert_eq!(ts[7], ts[6]);

    // The SMTP session: the tracker's finding, joined to its flow.
    let (s, f) = (&ev[0], &ev[1]);
    for k in [
        "flow_id",
        "community_id",
        "src_ip",
        "src_port",
        "dest_ip",
        "dest_port",
    ] {
        assert_eq!(s[k], f[k], "{k}");
    }
    assert_eq!(
        (s["src_ip"].as_str(), s["dest_port"].as_u64()),
        (Some("10.0.1.1"), Some(25))
    );
    assert_eq!(s["proto"], "TCP");
    assert_eq!(
        s["smtp"], f["flow"]["smtp"],
        "the same finding as the flow's"
    );
    assert_eq!(s["smtp"]["verdict"], "rejected");
    assert_eq!(s["smtp"]["reply"]["code"], 550);
    assert_eq!(s["smtp"]["reply"]["enhanced"], "5.7.1");
    assert_eq!(
        s["smtp"]["transactions"][0]["rcpt"][0]["code"], 550,
        "the relay denial, on its recipient"
    );

    // The DNS transaction.
    let (d, f) = (&ev[2], &ev[3]);
    assert_eq!(d["flow_id"], f["flow_id"]);
    assert_eq!(
        (d["proto"].as_str(), d["dest_port"].as_u64()),
        (Some("UDP"), Some(53))
    );
    let tx = &d["dns"];
    assert_eq!(*tx, f["flow"]["dns"]["transactions"][0]);
    assert_eq!(
        (tx["name"].as_str(), tx["qtype"].as_str()),
        (Some("example.com"), Some("MX"))
    );
    assert_eq!(
        (tx["rcode"].as_str(), tx["answered"].as_bool()),
        (Some("NOERROR"), Some(true))
    );
    assert_eq!(tx["answers"], 1);
    let rtt_ms = (dns_answered - dns_at) as f64 / 1e6;
    assert_eq!(tx["rtt_ms"].as_f64(), Some(rtt_ms));

    // The follow-up: announced pending, fulfilled by the callback flow, concluded established.
    let (ann, con) = (&ev[4], &ev[7]);
    assert_eq!(
        (ann["dest_ip"].as_str(), ann["dest_port"].as_u64()),
        (Some("10.0.1.5"), Some(3001))
    );
    assert_eq!(ann["app_proto"], "rvp_callback");
    assert_eq!(ann["followup"]["outcome"], "pending");
    assert_eq!(ann["followup"]["announced_by"], "SUBSCRIBE");
    assert_eq!(con["followup"]["outcome"], "established");
    assert_eq!(ann["followup"]["id"], con["followup"]["id"]);
    assert_eq!(ev[6]["flow"]["followup_of"], con["followup"]["id"]);
    assert_eq!(ev[6]["dest_port"], 3001);
}

/// In a long live run the expectation table retires old entries; each still gets its
/// `concluded` event, once, as it leaves (not again at the end), with its final outcome.
#[test]
fn a_retired_followup_is_concluded_as_it_leaves() {
    let mut sc = Scenario::with_seed(14);
    subscribe(&mut sc, "10.0.1.6:1100", T0, "10.0.1.6:3002");
    let out = tmp("retired.ndjson");
    let mut a = Analyzer::new(Config::default());
    a.set_events(stream(&out, true));
    let mut last = T0;
    for f in sc.into_frames() {
        last = a.packet(&RawPacket {
            ts: f.ts,
            link_type: 1,
            data: &f.data,
            wire_len: f.data.len() as u32,
        });
    }
    // Past the subscription's lifetime (600 s) and the retirement delay.
    let later = last + 600 * S + RETIRE_AFTER + S;
    a.sweep_idle(later);
    let analysis = a.finish();
    assert!(analysis.followups.is_empty(), "retired from the table");
    assert_eq!(analysis.followups_retired.values().sum::<u64>(), 1);
    let ev = read(&out);
    let followups: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event_type"] == "followup")
        .collect();
    let states: Vec<&str> = followups
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["announced", "concluded"], "{ev:#?}");
    let c = followups[1];
    assert_eq!(c["timestamp"], rfc3339(later));
    assert_eq!(c["followup"]["outcome"], "not_seen");
    assert_eq!(c["dest_port"], 3002);
    assert_eq!(c["followup"]["id"], followups[0]["followup"]["id"]);
}

/// A flow cannot make events without bound: 100 questions on one DNS flow give as many `dns`
/// events as `--diagnostics-per-flow` keeps transactions (32), the rest counted on the flow.
#[test]
fn dns_events_of_one_flow_stay_within_the_per_flow_cap() {
    let mut sc = Scenario::with_seed(15);
    for i in 0..100u16 {
        let name = format!("host{i}.example.com");
        let q = app::dns_query(i, &name, app::DNS_A);
        let r = app::dns_response(i, &name, app::DNS_A, app::DNS_NXDOMAIN, &[], 60);
        sc.udp_exchange(
            ep("10.0.1.1:1053"),
            ep("10.0.0.53:53"),
            T0 + i64::from(i) * 10_000_000,
            &q,
            &r,
        );
    }
    let pcap = tmp("dns-cap.pcap");
    std::fs::write(&pcap, sc.to_pcap(TsPrecision::Micro)).unwrap();
    let out = tmp("dns-cap.ndjson");
    let cap = exflow::track::Limits::default().per_flow;
    let (_, done) = analyze_files_with(
        &[pcap.to_string_lossy().into_owned()],
        Config::default(),
        Some(stream(&out, false)),
        |_, _, _, _| {},
    );
    assert_eq!(done, Completeness::Complete);
    let ev = read(&out);
    let dns: Vec<&Value> = ev.iter().filter(|e| e["event_type"] == "dns").collect();
    assert_eq!(dns.len(), cap, "{} dns events", dns.len());
    let flow = ev.iter().find(|e| e["event_type"] == "flow").unwrap();
    assert_eq!(
        flow["flow"]["dns"]["transactions_not_listed"].as_u64(),
        Some(100 - cap as u64)
    );
    assert!(dns.iter().all(|e| e["dns"]["rcode"] == "NXDOMAIN"));
}
