//! MS-RPC on real captures: every endpoint-mapper answer of `EPM_TRUTH.tsv` (tshark's decode)
//! becomes an expectation of that address and port with its interface, seen when tshark saw a
//! later SYN to it; on `zeek/Traces/dce-rpc/mapi.pcap` every flow to the store's and the address
//! book's endpoints takes `mapi` / `nspi`, including clients that asked before the capture began.

use std::collections::BTreeMap;

use exflow::analyze::{analyze_files, Completeness, Config};
use exflow::output::Report;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn report(file: &str, keep_flows: bool) -> Report {
    let (a, done) = analyze_files(
        &[format!("{DATA}/corpus/{file}")],
        Config {
            keep_flows,
            ..Config::default()
        },
        |_, _, _, _| {},
    );
    assert_eq!(done, Completeness::Complete);
    Report::new(&a)
}

/// One file's rows: (ip, port) → (interface uuid, a later SYN went to it).
type Rows = BTreeMap<(String, u16), (String, bool)>;

/// `EPM_TRUTH.tsv` rows per file.
fn truth() -> BTreeMap<String, Rows> {
    let text = std::fs::read_to_string(format!("{DATA}/corpus/EPM_TRUTH.tsv")).unwrap();
    let mut out: BTreeMap<String, Rows> = BTreeMap::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let addr = (c[2].to_string(), c[3].parse().unwrap());
        let row = out
            .entry(c[0].to_string())
            .or_default()
            .entry(addr)
            .or_insert((c[4].to_string(), false));
        row.1 |= c[6] != "none";
    }
    out
}

#[test]
fn every_endpoint_mapper_answer_is_expected_with_its_interface() {
    let truth = truth();
    assert_eq!(truth.len(), 3, "mapi, nspi, zerologon");
    for (file, rows) in &truth {
        let r = report(file, true);
        for ((ip, port), (uuid, syn_later)) in rows {
            let e = r
                .followups
                .iter()
                .find(|e| e.expected.host == *ip && e.expected.port == *port && e.kind == "tower")
                .unwrap_or_else(|| panic!("{file}: no expectation of {ip}:{port}"));
            assert_eq!(e.expected.proto, "tcp");
            assert_eq!(
                e.interface.as_ref().map(|i| i.uuid.as_str()),
                Some(uuid.as_str()),
                "{file} {ip}:{port}"
            );
            // Seen exactly when a SYN followed, or when flows the capture joined mid-way (it
            // holds no SYN at all: nspi.pcap) went to it after the answer.
            let midstream_only = r.flows.as_deref().unwrap_or_default().iter().any(|f| {
                f.server == format!("{ip}:{port}") && f.midstream && f.followup_of == Some(e.id)
            });
            assert_eq!(
                e.outcome != "not_seen",
                *syn_later || midstream_only,
                "{file} {ip}:{port}: {}",
                e.outcome
            );
        }
    }
}

#[test]
fn mapi_pcap_store_and_address_book_flows_take_their_interfaces() {
    let r = report("zeek/Traces/dce-rpc/mapi.pcap", true);
    let mut seen = BTreeMap::new();
    for f in r.flows.as_deref().unwrap_or_default() {
        for (endpoint, service) in [("192.168.0.2:1032", "mapi"), ("192.168.0.2:4997", "nspi")] {
            if f.server == endpoint || f.client == endpoint {
                assert_eq!(f.service, service, "{} → {}", f.client, f.server);
                *seen.entry(service).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(seen, BTreeMap::from([("mapi", 5), ("nspi", 2)]));
    let mapi = r
        .followups
        .iter()
        .find(|e| e.service == "mapi" && e.kind == "tower")
        .unwrap();
    let i = mapi.interface.as_ref().unwrap();
    assert_eq!(
        (i.uuid.as_str(), i.name.as_str()),
        ("a4f1db00-ca47-1067-b31f-00dd010662da", "EMSMDB")
    );
    assert_eq!(mapi.outcome, "established");
    let unclassified: u64 = r
        .services
        .iter()
        .filter(|s| s.service == "unclassified")
        .map(|s| s.bytes)
        .sum();
    assert!(
        unclassified * 100 < r.input.bytes * 40,
        "unclassified {unclassified} of {} bytes",
        r.input.bytes
    );
}

#[test]
fn connectionless_dcerpc_announces_nothing() {
    let r = report("ndpi/dcerpc.pcap", false);
    assert!(r.followups.is_empty());
}
