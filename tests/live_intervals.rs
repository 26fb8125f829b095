//! Live intervals without a capture device (issue 11): an interval's handshake-RTT percentiles
//! cover the flows whose handshake completed in it, open or ended, each once; its duration
//! percentiles cover the flows still open at its end as well as those that ended in it.
#![cfg(feature = "live")]

use std::net::SocketAddr;

use exflow::analyze::{Analyzer, Config};
use exflow::live::{Intervals, Window};
use exflow::output::Report;
use exflow::packet::RawPacket;
use exflow::synth::{Dir, Frame, Scenario};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_100_000_000 * S;

fn ep(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn feed(a: &mut Analyzer, w: &mut Window, frames: &[Frame]) {
    for f in frames {
        w.note(f.ts);
        a.packet(&RawPacket {
            ts: f.ts,
            link_type: 1,
            data: &f.data,
            wire_len: u32::try_from(f.data.len()).unwrap(),
        });
    }
}

fn http(r: &Report) -> &exflow::output::ServiceView {
    r.services.iter().find(|s| s.service == "http").unwrap()
}

#[test]
fn interval_percentiles_cover_open_flows_once() {
    // Flow A: handshake and a request in the first interval, still open at its end.
    let mut first = Scenario::with_seed(1);
    first
        .tcp(ep("10.0.0.5:1100"), ep("10.0.0.80:80"), T0)
        .handshake()
        .send(Dir::ToServer, b"GET / HTTP/1.0\r\n\r\n");
    // Flow B: a whole session in the second interval; A sends once more.
    let mut second = Scenario::with_seed(2);
    second.tcp_session(
        ep("10.0.0.6:1101"),
        ep("10.0.0.80:80"),
        T0 + 10 * S,
        &[(Dir::ToServer, b"GET / HTTP/1.0\r\n\r\n")],
    );
    let mut a = Analyzer::new(Config::default());
    a.begin_file("lo");
    let mut iv = Intervals::new();
    iv.begin(&mut a);
    let mut w = Window::default();
    first.sort();
    feed(&mut a, &mut w, first.frames());
    let (one, _) = iv.tick(&mut a, w);
    let one = Report::new(&one);
    assert_eq!(
        http(&one).handshake_rtt_ms.count,
        1,
        "A's handshake, A still open"
    );
    assert_eq!(http(&one).duration_s.count, 1, "A is open: its age so far");

    let mut w = Window::default();
    second.sort();
    feed(&mut a, &mut w, second.frames());
    let mut totals = a.finish();
    let two = Report::new(&iv.finish(&mut totals, w));
    assert_eq!(
        http(&two).handshake_rtt_ms.count,
        1,
        "B only: A was reported before"
    );
    assert_eq!(http(&two).duration_s.count, 2, "A and B ended in it");
    assert_eq!(iv.ended_durations().iter().map(|h| h.len()).sum::<u64>(), 2);
}

/// `live --firewall` without a capture device: each interval carries the rules of the flows that
/// ended in it and of the open flows that carried packets in it; the totals carry the run's, each
/// flow once; a connection attempt younger than the grace period is pending, not blocked.
#[test]
fn firewall_rules_per_interval_and_in_the_totals() {
    use exflow::firewall::{FirewallOptions, FirewallReport};
    use exflow::live::{CaptureView, IntervalView, LiveReport};
    use exflow::synth::app;

    // Interval 1: an RVP subscriber whose call-back is dropped, and mail that works.
    let mut first = Scenario::with_seed(3);
    let body = app::rvp_subscribe(
        "im.example.com",
        "/instmsg/aliases/bob",
        "http://im/alice",
        ep("10.0.1.2:3002"),
        600,
    );
    let ok = app::rvp_subscribe_ok(7, 600);
    first.tcp_session(
        ep("10.0.1.2:1100"),
        ep("10.0.0.10:80"),
        T0,
        &[(Dir::ToServer, &body), (Dir::ToClient, &ok)],
    );
    first.tcp_unanswered(ep("10.0.0.10:1501"), ep("10.0.1.2:3002"), T0 + S, 1);
    first.tcp_session(
        ep("10.0.0.20:2001"),
        ep("10.0.0.25:25"),
        T0 + 10 * S,
        &[(Dir::ToClient, b"220 mx\r\n"), (Dir::ToServer, b"QUIT\r\n")],
    );
    // Interval 2: a refused SMTP connection, and a SYN sent just before the interval ends.
    let mut second = Scenario::with_seed(4);
    second.tcp_refused(ep("10.0.0.20:2002"), ep("198.51.100.25:25"), T0 + 20 * S);
    second.tcp_unanswered(ep("10.0.0.20:2003"), ep("192.0.2.25:25"), T0 + 21 * S, 0);

    let mut a = Analyzer::new(Config {
        firewall: Some(FirewallOptions::default()),
        ..Config::default()
    });
    a.begin_file("lo");
    let mut iv = Intervals::new();
    iv.begin(&mut a);
    let live = |interval: &exflow::analyze::Analysis,
                totals: &exflow::analyze::Analysis,
                seq: u64|
     -> serde_json::Value {
        let r = LiveReport::new(
            interval,
            totals,
            IntervalView {
                seq,
                run_start: 0.0,
                start: 0.0,
                end: 1.0,
                last: false,
            },
            CaptureView::default(),
            CaptureView::default(),
        );
        let text = serde_json::to_string(&r).unwrap();
        let back: LiveReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        serde_json::from_str(&text).unwrap()
    };
    let rule = |fw: &serde_json::Value, service: &str, dst: &str| -> Option<serde_json::Value> {
        fw["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["service"] == service && r["dst"] == dst)
            .cloned()
    };

    let mut w = Window::default();
    first.sort();
    feed(&mut a, &mut w, first.frames());
    let (one, totals) = iv.tick(&mut a, w);
    let v = live(&one, &totals, 1);
    let fw = &v["firewall"];
    assert_eq!(fw["schema"], "exflow.firewall.v1");
    // Still open, but its last SYN is 8 s older than the newest packet: blocked.
    let cb = rule(fw, "rvp_callback", "10.0.1.2").expect("call-back rule");
    assert_eq!(cb["status"], "blocked");
    assert_eq!(cb["src"], "10.0.0.10");
    assert_eq!(cb["dst_ports"], "3002");
    assert_eq!(cb["evidence"]["unanswered"], 1);
    assert!(cb["why"].as_str().unwrap().contains("Call-Back header"));
    assert_eq!(rule(fw, "smtp", "10.0.0.25").unwrap()["status"], "allowed");
    assert_eq!(fw["flows_pending"], 0);
    assert_eq!(v["totals"]["firewall"]["rules"], fw["rules"]);

    let mut w = Window::default();
    second.sort();
    feed(&mut a, &mut w, second.frames());
    let (two, totals) = iv.tick(&mut a, w);
    let v = live(&two, &totals, 2);
    let fw = &v["firewall"];
    let refused = rule(fw, "smtp", "198.51.100.25").expect("refused rule");
    assert_eq!(refused["status"], "refused");
    assert_eq!(refused["evidence"]["flows"], 1);
    assert!(
        rule(fw, "rvp_callback", "10.0.1.2").is_none(),
        "no packet of the call-back in interval 2: {fw:#}"
    );
    assert!(rule(fw, "smtp", "192.0.2.25").is_none(), "{fw:#}");
    assert_eq!(fw["flows_pending"], 1, "the SYN just sent");
    let all = &v["totals"]["firewall"];
    assert_eq!(
        rule(all, "rvp_callback", "10.0.1.2").unwrap()["evidence"]["flows"],
        1
    );
    assert_eq!(
        rule(all, "smtp", "198.51.100.25").unwrap()["status"],
        "refused"
    );

    // The end: every flow ends; the totals hold each flow once, the last SYN unanswered.
    let mut totals = a.finish();
    let last = iv.finish(&mut totals, Window::default());
    let fin = FirewallReport::of(&totals).unwrap();
    let find = |service: &str, dst: &str| {
        fin.rules
            .iter()
            .find(|r| r.service == service && r.dst == dst)
            .unwrap_or_else(|| panic!("no {service} rule to {dst}: {:#?}", fin.rules))
    };
    assert_eq!(find("rvp_callback", "10.0.1.2").evidence.flows, 1);
    assert_eq!(find("rvp_callback", "10.0.1.2").status, "blocked");
    assert_eq!(find("smtp", "10.0.0.25").evidence.flows, 1);
    assert_eq!(find("smtp", "192.0.2.25").status, "blocked");
    assert_eq!(fin.flows_pending, 0);
    let last = FirewallReport::of(&last).unwrap();
    assert!(
        last.rules
            .iter()
            .any(|r| r.dst == "192.0.2.25" && r.status == "blocked"),
        "{:#?}",
        last.rules
    );
}
