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
