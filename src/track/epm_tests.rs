//! The MS-RPC trackers on toy runs built from real PDUs of `zeek/Traces/dce-rpc/mapi.pcap`: an
//! endpoint-mapper answer split over fragments and segments, a failed lookup, a bind on a pinned
//! port, a mid-stream flow to a remembered endpoint, and an unrelated port that stays unknown.

use super::*;
use crate::classify::{Catalogue, Classifier, ExpectConfig, FlowTable};
use crate::flow::{FlowConfig, Touch};
use crate::packet::tcp_flags::{ACK, PSH, SYN};
use crate::packet::testkit::{ep, tcp as pkt};
use crate::signal::test_util::hex;
use crate::signal::test_util::mapi_pcap::{EPM_BIND, MAPI_BIND, MAP_REQUEST, MAP_RESPONSE};

/// A response cut into two fragments after `cut` bytes of stub.
fn fragments(resp: &[u8], cut: usize) -> Vec<u8> {
    let (head, stub) = resp.split_at(24);
    let mut out = Vec::new();
    for (flags, part) in [(1u8, &stub[..cut]), (2, &stub[cut..])] {
        let mut p = head.to_vec();
        p[3] = flags;
        p[8..10].copy_from_slice(&((24 + part.len()) as u16).to_le_bytes());
        p.extend(part);
        out.extend(p);
    }
    out
}

struct Run {
    trackers: Trackers,
    table: FlowTable,
    classifier: Classifier,
    diagnostics: DiagnosticsSet,
}

impl Run {
    fn new() -> Run {
        let c = Catalogue::builtin();
        let trackers = Trackers::new(&c, ExpectConfig::default(), 1 << 20);
        let diagnostics = trackers.diagnostics();
        Run {
            trackers,
            table: FlowTable::new(FlowConfig::default()),
            classifier: Classifier::new(c),
            diagnostics,
        }
    }

    fn feed(&mut self, p: &Packet<'_>) -> String {
        let Run {
            trackers,
            table,
            classifier,
            diagnostics,
        } = self;
        let mut on_end = |f: Flow, why| {
            trackers.flow_ended(&f, why, diagnostics, false);
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
        classifier.catalogue().id(f.class.service).to_string()
    }

    /// A client's segments `msgs` on a new connection from `c` to `s` (SYN first), then the
    /// server's `replies`; the flow's service after the last.
    fn talk(&mut self, ts: Nanos, c: &str, s: &str, msgs: &[&[u8]], replies: &[&[u8]]) -> String {
        self.feed(&pkt(ts, c, s, SYN, 0, b""));
        self.feed(&pkt(ts, s, c, SYN | ACK, 0, b""));
        let (mut cs, mut ss) = (1u32, 1u32);
        let mut service = String::new();
        for m in msgs {
            service = self.feed(&pkt(ts + 1, c, s, ACK | PSH, cs, m));
            cs += m.len() as u32;
        }
        for r in replies {
            service = self.feed(&pkt(ts + 2, s, c, ACK | PSH, ss, r));
            ss += r.len() as u32;
        }
        service
    }

    fn expectations(&self) -> Vec<&Expectation> {
        self.trackers
            .shared
            .expect
            .list
            .values()
            .map(|e| &**e)
            .collect()
    }
}

#[test]
fn an_ept_map_answer_in_fragments_and_segments_is_expected_from_any_client() {
    let mut r = Run::new();
    let (bind, req) = (hex(EPM_BIND), hex(MAP_REQUEST));
    let resp = fragments(&hex(MAP_RESPONSE), 50);
    // The answer arrives in three segments that cut both fragments.
    let (a, rest) = resp.split_at(30);
    let (b, c) = rest.split_at(60);
    let svc = r.talk(
        0,
        "192.168.0.173:1066",
        "192.168.0.2:135",
        &[&bind, &req],
        &[a, b, c],
    );
    assert_eq!(svc, "msrpc");
    let e = r.expectations();
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].addr, ep("192.168.0.2:4997"));
    assert_eq!(r.classifier.catalogue().id(e[0].service), "nspi");
    assert_eq!((e[0].kind, e[0].announced_by), ("tower", "ept_map"));
    assert_eq!(
        e[0].attrs,
        vec![
            (
                "interface_uuid",
                "f5cc5a18-4264-101a-8c59-08002b2f8426".to_string()
            ),
            ("interface_version", "56.0".to_string()),
            ("interface_name", "NSPI".to_string()),
        ]
    );
    let sig = r.trackers.signalling();
    assert_eq!(sig.decoded("epm", "fragments"), 2);
    // Another client connects: it takes the interface's service.
    let svc = r.feed(&pkt(
        SECOND,
        "192.168.0.99:2000",
        "192.168.0.2:4997",
        SYN,
        0,
        b"",
    ));
    assert_eq!(svc, "nspi");
}

#[test]
fn a_failed_lookup_announces_nothing() {
    let mut r = Run::new();
    let mut resp = hex(MAP_RESPONSE);
    let n = resp.len();
    resp[n - 4..].copy_from_slice(&0x16c9_a0d6u32.to_le_bytes());
    r.talk(
        0,
        "192.168.0.173:1066",
        "192.168.0.2:135",
        &[&hex(EPM_BIND), &hex(MAP_REQUEST)],
        &[&resp],
    );
    assert!(r.expectations().is_empty());
    assert_eq!(r.trackers.signalling().decoded("epm", "lookups_failed"), 1);
    // A response whose request was not seen is not read either.
    let mut r = Run::new();
    r.talk(
        0,
        "192.168.0.173:1066",
        "192.168.0.2:135",
        &[],
        &[&hex(MAP_RESPONSE)],
    );
    assert!(r.expectations().is_empty());
}

#[test]
fn a_bind_on_a_pinned_port_names_the_service_and_its_endpoint() {
    let mut r = Run::new();
    let svc = r.talk(
        0,
        "192.168.0.141:1734",
        "192.168.0.2:6001",
        &[&hex(MAPI_BIND)],
        &[],
    );
    assert_eq!(svc, "mapi");
    let e = r.expectations();
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].addr, e[0].optional), (ep("192.168.0.2:6001"), true));
    assert_eq!(e[0].announced_by, "bind");
    // A later flow to it, joined mid-stream with no bind, takes the same service.
    let svc = r.feed(&pkt(
        SECOND,
        "192.168.0.150:3000",
        "192.168.0.2:6001",
        ACK | PSH,
        500,
        &[0u8; 40],
    ));
    assert_eq!(svc, "mapi");
    // An unrelated high port between the same hosts stays unknown.
    let svc = r.talk(
        2 * SECOND,
        "192.168.0.141:1735",
        "192.168.0.2:7001",
        &[b"hello"],
        &[],
    );
    assert_eq!(svc, "unclassified");
}

#[test]
fn garbage_on_135_announces_nothing() {
    let mut r = Run::new();
    let junk: Vec<u8> = (0..2000u32).map(|i| (i * 7 + 5) as u8).collect();
    r.talk(
        0,
        "10.0.0.1:1000",
        "10.0.0.2:135",
        &[&junk],
        &[&junk, &hex(&MAP_RESPONSE[..100])],
    );
    assert!(r.expectations().is_empty());
}
