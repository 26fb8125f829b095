//! The tracker model end to end with a toy protocol: attachment by the catalogue, reassembled
//! lines, announcements, reclassification, counters, findings and diagnostics, giving up.

use super::framing::{drive, trim_eol, FrameStats, Lines};
use super::*;
use crate::classify::{Catalogue, Classifier, ExpectConfig, FlowTable, Origin};
use crate::flow::{FlowConfig, Touch};
use crate::packet::tcp_flags::{ACK, FIN, PSH, SYN};

/// Lines protocol: `ANNOUNCE <port>` expects a TCP connection to the server on that port,
/// `BECOME` reclassifies the flow as `toy_b`, `BYE` ends interest, anything else is an error.
struct ToyKind {
    followup: ServiceId,
    become_: ServiceId,
}

struct Toy {
    ids: (ServiceId, ServiceId),
    lines: [Lines; 2],
    frames: FrameStats,
    seen: Vec<String>,
    done: bool,
}

#[derive(Clone, Debug, Default)]
struct ToyDiag {
    flows: u64,
    lines: u64,
}

impl Diagnostics for ToyDiag {
    fn name(&self) -> &'static str {
        "toy"
    }
    fn merge(&mut self, other: &dyn Diagnostics) {
        if let Some(o) = other.as_any().downcast_ref::<ToyDiag>() {
            self.flows += o.flows;
            self.lines += o.lines;
        }
    }
    fn since(&self, earlier: &dyn Diagnostics) -> Box<dyn Diagnostics> {
        let e = earlier
            .as_any()
            .downcast_ref::<ToyDiag>()
            .cloned()
            .unwrap_or_default();
        Box::new(ToyDiag {
            flows: self.flows - e.flows,
            lines: self.lines - e.lines,
        })
    }
    fn to_json(&self, _: &Catalogue) -> serde_json::Value {
        serde_json::json!({ "flows": self.flows, "lines": self.lines })
    }
}

impl Tracker for Toy {
    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        let (ids, seen, done) = (self.ids, &mut self.seen, &mut self.done);
        drive(
            &mut self.lines[dir as usize],
            &mut self.frames,
            bytes,
            &mut |line| {
                let line = String::from_utf8_lossy(trim_eol(line)).to_string();
                if let Some(port) = line.strip_prefix("ANNOUNCE ") {
                    cx.count("announce");
                    let ep = Endpoint::new(cx.flow.server.ip, port.parse().unwrap_or(0));
                    cx.announce(Announcement {
                        attrs: vec![("note", "toy".to_string())],
                        ..Announcement::new(ids.0, Proto::Tcp, ep, "toy", "ANNOUNCE", 60 * SECOND)
                    });
                } else if line == "BECOME" {
                    cx.count("become");
                    cx.reclassify(ids.1);
                } else if line == "BYE" {
                    *done = true;
                } else {
                    cx.error("unknown");
                }
                seen.push(line);
                !*done
            },
        )
    }

    fn done(&self) -> bool {
        self.done
    }

    fn end(&mut self, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        if let Some(d) = cx
            .diagnostics
            .as_mut()
            .and_then(|d| d.as_any_mut().downcast_mut::<ToyDiag>())
        {
            d.flows += 1;
            d.lines += self.seen.len() as u64;
        }
        Some(serde_json::json!({ "lines": self.seen }))
    }
}

impl TrackerKind for ToyKind {
    fn name(&self) -> &'static str {
        "toy"
    }
    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(Toy {
            ids: (self.followup, self.become_),
            lines: [Lines::new(64), Lines::new(64)],
            frames: FrameStats::default(),
            seen: Vec::new(),
            done: false,
        })
    }
    fn diagnostics(&self) -> Option<Box<dyn Diagnostics>> {
        Some(Box::new(ToyDiag::default()))
    }
}

fn catalogue() -> Catalogue {
    let mut c = Catalogue::builtin();
    c.apply(
        "toy.cat",
        "toy tcp/7777 toy protocol\ntoy_b tcp/7778 toy, reclassified\ntoy_f tcp/7779 toy follow-up\ntrack toy toy\n",
        Origin::User,
    )
    .unwrap();
    c
}

pub(super) use crate::packet::testkit::{ep, tcp as pkt};

pub(super) struct Run {
    pub trackers: Trackers,
    table: FlowTable,
    pub classifier: Classifier,
    pub diagnostics: DiagnosticsSet,
    pub ended: Vec<(Flow, Vec<(&'static str, serde_json::Value)>)>,
}

impl Run {
    /// The built-in trackers on the built-in catalogue.
    pub(super) fn builtin() -> Run {
        Run::with_limits(Limits::default())
    }

    /// The built-in trackers with the given list caps.
    pub(super) fn with_limits(limits: Limits) -> Run {
        let c = Catalogue::builtin();
        let trackers = Trackers::with_limits(&c, ExpectConfig::default(), 1 << 20, limits);
        let diagnostics = trackers.diagnostics();
        Run {
            trackers,
            table: FlowTable::new(FlowConfig::default()),
            classifier: Classifier::new(c),
            diagnostics,
            ended: Vec::new(),
        }
    }

    fn new() -> Run {
        Run::with_budget(1000)
    }

    /// The toy tracker with a reassembly budget of `budget` bytes.
    fn with_budget(budget: usize) -> Run {
        let c = catalogue();
        let kinds: Vec<Box<dyn TrackerKind>> = vec![Box::new(ToyKind {
            followup: c.must("toy_f"),
            become_: c.must("toy_b"),
        })];
        let trackers = Trackers::with_kinds(&c, ExpectConfig::default(), budget, kinds);
        let diagnostics = trackers.diagnostics();
        Run {
            trackers,
            table: FlowTable::new(FlowConfig::default()),
            classifier: Classifier::new(c),
            diagnostics,
            ended: Vec::new(),
        }
    }

    pub(super) fn feed(&mut self, p: &Packet<'_>) -> ServiceId {
        let Run {
            trackers,
            table,
            classifier,
            diagnostics,
            ended,
        } = self;
        let mut on_end = |f: Flow, why| {
            let findings = trackers.flow_ended(&f, why, diagnostics, true);
            ended.push((f, findings));
        };
        let (touch, f) = table.packet(
            p,
            |pr, port| classifier.is_server_port(pr, port),
            &mut on_end,
        );
        if touch == Touch::New {
            if !trackers.classify_new(f, p) {
                classifier.classify_new(f);
            }
            trackers.attach(f);
        }
        trackers.packet(f, p);
        f.class.service
    }

    pub(super) fn finish(&mut self) {
        let Run {
            trackers,
            table,
            diagnostics,
            ended,
            ..
        } = self;
        table.flush(&mut |f: Flow, why| {
            let findings = trackers.flow_ended(&f, why, diagnostics, true);
            ended.push((f, findings));
        });
    }

    fn id(&self, s: ServiceId) -> String {
        self.classifier.catalogue().id(s).to_string()
    }
}

#[test]
fn a_tracker_reads_lines_announces_reclassifies_and_reports() {
    let mut r = Run::new();
    let (c, s) = ("10.0.0.1:40000", "10.0.0.2:7777");
    r.feed(&pkt(0, c, s, SYN, 99, b""));
    // Out of order: the second segment first; a line split over segments.
    r.feed(&pkt(1, c, s, ACK | PSH, 119, b"NCE 5000\nwhat?\n"));
    assert_eq!(
        r.trackers.signalling().decoded("toy", "announce"),
        0,
        "held"
    );
    r.feed(&pkt(2, c, s, ACK | PSH, 100, b"ANNOUNCE 4000\nANNOU"));
    let sig = r.trackers.signalling();
    assert_eq!(sig.decoded("toy", "announce"), 2);
    assert_eq!(sig.tracker("toy").unwrap().errors.get("unknown"), 1);
    assert_eq!(r.trackers.shared.expect.list.len(), 2);
    let e = r.trackers.shared.expect.list.values().next().unwrap();
    assert_eq!(
        (e.addr, e.attrs.clone()),
        (ep("10.0.0.2:4000"), vec![("note", "toy".to_string())])
    );
    // The announced connection takes the follow-up service.
    let f = r.feed(&pkt(3, "10.0.0.1:40001", "10.0.0.2:5000", SYN, 1, b""));
    assert_eq!(r.id(f), "toy_f");
    let f = r.feed(&pkt(4, c, s, ACK | PSH, 134, b"BECOME\n"));
    assert_eq!(r.id(f), "toy_b", "reclassified");
    r.feed(&pkt(5, c, s, ACK | FIN, 141, b""));
    r.finish();
    let (flow, findings) = r.ended.iter().find(|(f, _)| f.server == ep(s)).unwrap();
    assert_eq!(r.id(flow.class.service), "toy_b");
    assert_eq!(
        findings,
        &vec![(
            "toy",
            serde_json::json!({"lines": ["ANNOUNCE 4000", "ANNOUNCE 5000", "what?", "BECOME"]})
        )]
    );
    let d = r.diagnostics.get("toy").unwrap();
    assert_eq!(
        d.to_json(r.classifier.catalogue()),
        serde_json::json!({"flows": 1, "lines": 4})
    );
    assert_eq!(
        r.trackers.shared.budget.used, 0,
        "every buffer went back to the budget"
    );
    assert!(r.trackers.shared.budget.peak > 0);
}

#[test]
fn a_tracker_that_is_done_costs_nothing_more() {
    let mut r = Run::new();
    let (c, s) = ("10.0.0.1:40000", "10.0.0.2:7777");
    r.feed(&pkt(0, c, s, SYN, 0, b""));
    r.feed(&pkt(1, c, s, ACK | PSH, 1, b"BYE\nANNOUNCE 1\n"));
    assert_eq!(r.trackers.signalling().tracker("toy").unwrap().gave_up, 1);
    r.feed(&pkt(2, c, s, ACK | PSH, 16, b"ANNOUNCE 2\n"));
    assert!(
        r.trackers.shared.expect.list.is_empty(),
        "nothing read after BYE"
    );
    r.finish();
    assert!(
        r.ended[0].1.is_empty(),
        "a detached tracker has no findings"
    );
}

#[test]
fn the_budget_bounds_what_all_streams_hold() {
    let mut r = Run::with_budget(200);
    // Each flow leaves a 60-byte unfinished line in a 64-byte buffer: a 200-byte budget holds
    // three of them.
    let big = [b'x'; 1000];
    for i in 0..10u16 {
        let c = format!("10.0.0.1:{}", 40000 + i);
        r.feed(&pkt(0, &c, "10.0.0.2:7777", SYN, 0, b""));
        r.feed(&pkt(1, &c, "10.0.0.2:7777", ACK | PSH, 1, &big[..60]));
    }
    let b = r.trackers.shared.budget;
    assert!(b.used <= b.limit, "{b:?}");
    assert!(b.refused > 0, "the budget was reached and counted: {b:?}");
    assert_eq!(b.used, 3 * 64, "three 64-byte buffers: {b:?}");
    r.finish();
    assert_eq!(r.trackers.shared.budget.used, 0);
    let gaps = r
        .trackers
        .signalling()
        .tracker("toy")
        .unwrap()
        .stream
        .overflows;
    assert!(gaps > 0, "refused streams count an overflow");
}

#[test]
fn holes_are_given_up_by_capture_time() {
    let mut r = Run::new();
    let (c, s) = ("10.0.0.1:40000", "10.0.0.2:7777");
    r.feed(&pkt(0, c, s, SYN, 0, b""));
    // Bytes 1..=10 never arrive.
    r.feed(&pkt(SECOND, c, s, ACK | PSH, 11, b"ANNOUNCE 7\n"));
    assert!(
        r.trackers.shared.expect.list.is_empty(),
        "held behind the hole"
    );
    r.feed(&pkt(20 * SECOND, c, s, ACK | PSH, 22, b"ANNOUNCE 8\n"));
    assert_eq!(r.trackers.shared.expect.list.len(), 2, "the hole timed out");
    r.finish();
    assert_eq!(
        r.trackers.signalling().tracker("toy").unwrap().stream.gaps,
        1
    );
}

#[test]
fn builtin_track_lines_name_registered_trackers() {
    let c = Catalogue::builtin();
    let t = Trackers::new(&c, ExpectConfig::default(), 1 << 20);
    assert!(t.unknown.is_empty(), "{:?}", t.unknown);
    let names: Vec<_> = t.names().collect();
    for s in c.services() {
        for tr in &s.trackers {
            assert!(names.contains(&tr.as_str()), "{tr}");
        }
    }
    assert_eq!(c.service(c.must("h323")).trackers, ["h225"]);
}

/// What every flow of the table costs (README, "Limits": a flood of a million flows). Lowering a
/// bound is welcome; raising one needs a measurement of the flood (`tests/flood_rss.rs`).
#[test]
fn per_flow_state_stays_small() {
    use std::mem::size_of;
    let [(dns, dns_size), (dns_slot, dns_slot_size)] = super::dns::sizes();
    let (smtp, smtp_size) = super::smtp::size();
    let (ldap, ldap_size) = super::ldap::size();
    let sizes = [
        // 224 with the handshake time an Option, the follow-up id 8 bytes, `midstream` outside
        // the TCP facts' padding and an ICMP flow's first type and code in every flow; 208 with
        // ten `bool`s, two RST counts and the handshake time in nanoseconds in the TCP facts.
        ("Flow", size_of::<crate::classify::Flow>(), 192),
        ("TcpTrack", size_of::<crate::flow::TcpTrack>(), 80),
        ("FlowClass", size_of::<crate::classify::FlowClass>(), 12),
        // A DNS flow's tracker was 288 bytes plus a 312-byte slot in an allocation of its own,
        // then 264 with a count for each of the 16 reply codes, 224 with query types in two
        // arrays of eight.
        (dns, dns_size, 200),
        (dns_slot, dns_slot_size, 88),
        // 576 bytes with four rarely set replies in place, the reply counts in a BTreeMap and
        // a count for each of the 21 verbs.
        (smtp, smtp_size, 440),
        // 176 bytes with a count for each of the 26 operations.
        (ldap, ldap_size, 112),
        // 24, 72 and 96 with the capacity and the started flag in words of their own.
        ("Reassembler", size_of::<Reassembler>(), 16),
        ("Attached", size_of::<Attached>(), 56),
        // 80 with the announced count a plain u32 (no niche for the `Option`).
        ("Option<Slot>", size_of::<Option<Slot>>(), 72),
    ];
    for (what, size, bound) in sizes {
        eprintln!("{what}: {size} bytes");
        assert!(size <= bound, "{what} is {size} bytes, more than {bound}");
    }
}
