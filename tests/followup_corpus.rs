//! Follow-up expectations on real H.323 captures against tshark's decode (H323_TRUTH.tsv): the
//! announced H.245 and media addresses are exactly the ones tshark decodes, and an address counts
//! as seen exactly when tshark saw traffic sent to it later in the capture.

use std::collections::{BTreeMap, BTreeSet};

use exflow::analyze::{analyze_files, Completeness, Config};
use exflow::output::Report;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
const KINDS: [&str; 3] = ["h245Address", "mediaChannel", "mediaControlChannel"];

type Addr = (String, String, u16);

fn report(file: &str) -> Report {
    let (a, done) = analyze_files(
        &[format!("{DATA}/corpus/{file}")],
        Config::default(),
        |_, _, _, _| {},
    );
    assert_eq!(done, Completeness::Complete);
    Report::new(&a)
}

/// tshark's addresses per file, with whether a later SYN / datagram went to them.
fn truth() -> BTreeMap<String, BTreeMap<Addr, bool>> {
    let text = std::fs::read_to_string(format!("{DATA}/corpus/H323_TRUTH.tsv")).unwrap();
    let mut out: BTreeMap<String, BTreeMap<Addr, bool>> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        if !KINDS.contains(&c[2]) {
            continue;
        }
        let proto = if c[2] == "h245Address" { "tcp" } else { "udp" };
        let addr = (proto.to_string(), c[3].to_string(), c[4].parse().unwrap());
        *out.entry(c[0].to_string())
            .or_default()
            .entry(addr)
            .or_default() |= c[6] != "none";
    }
    out
}

#[test]
fn announced_addresses_equal_tshark_per_file() {
    let truth = truth();
    assert_eq!(truth.len(), 3, "rtp_example, tel2, ndpi h323");
    let files = [
        "ndpi/h323-overflow.pcap",
        "wireshark-wiki/SampleCaptures/cr_ss101.cap",
    ];
    for file in truth.keys().map(String::as_str).chain(files) {
        let r = report(file);
        let got: BTreeMap<Addr, String> = r
            .followups
            .iter()
            .filter(|e| KINDS.contains(&e.kind.as_str()))
            .map(|e| {
                (
                    (
                        e.expected.proto.clone(),
                        e.expected.host.clone(),
                        e.expected.port,
                    ),
                    e.outcome.clone(),
                )
            })
            .collect();
        let want = truth.get(file).cloned().unwrap_or_default();
        let got_set: BTreeSet<&Addr> = got.keys().collect();
        let want_set: BTreeSet<&Addr> = want.keys().collect();
        assert_eq!(got_set, want_set, "{file}: announced addresses");
        for (addr, seen) in &want {
            assert_eq!(
                got[addr] != "not_seen",
                *seen,
                "{file}: {addr:?} outcome {}",
                got[addr]
            );
        }
    }
}

#[test]
fn follow_up_flows_are_classified_and_tagged() {
    let r = report("wireshark-wiki/SampleCaptures/rtp_example.raw.gz");
    let media = r
        .services
        .iter()
        .find(|s| s.service == "h323_media")
        .expect("RTP tagged as h323_media");
    assert!(
        media.packets >= 465,
        "465 RTP + RTCP packets, got {}",
        media.packets
    );
    let h245 = r
        .services
        .iter()
        .find(|s| s.service == "h323_h245")
        .unwrap();
    assert_eq!(h245.flows, 1);
    assert!(r
        .followups
        .iter()
        .all(|e| e.parent.service == "h323" || e.parent.service == "h323_h245"));
    assert!(r.signalling.h245_messages > 0 && r.signalling.decode_errors == 0);
    // tel2: H.245 tunnelled, the advertised h245Addresses are never used and are optional.
    let r = report("wireshark-wiki/SampleCaptures/tel2.dump");
    let h245: Vec<_> = r
        .followups
        .iter()
        .filter(|e| e.kind == "h245Address")
        .collect();
    assert!(!h245.is_empty());
    assert!(h245.iter().all(|e| e.optional && e.outcome == "not_seen"));
}
