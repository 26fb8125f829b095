//! Real captures against tshark: for every corpus file and every service tshark saw on a
//! catalogue port, exflow's packets and wire bytes equal tshark's (tests/data/tshark_reference.tsv,
//! made by tests/data/tshark_reference.sh).

use std::collections::BTreeMap;

use exflow::analyze::{analyze_files, Completeness, Config};
use exflow::output::Report;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

struct Row {
    file: String,
    service: String,
    packets: u64,
    bytes: u64,
}

fn reference() -> Vec<Row> {
    let text = std::fs::read_to_string(format!("{DATA}/tshark_reference.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Row {
                file: c[0].to_string(),
                service: c[1].to_string(),
                packets: c[3].parse().unwrap(),
                bytes: c[4].parse().unwrap(),
            }
        })
        .collect()
}

fn report(file: &str) -> Report {
    let path = format!("{DATA}/corpus/{file}");
    let (a, done) = analyze_files(&[path], Config::default(), |_, _, _, _| {});
    assert_eq!(
        done,
        Completeness::Complete,
        "{file}: {:?}",
        a.input.warnings
    );
    Report::new(&a)
}

/// exflow's (packets, bytes) for a reference service name (`http+rvp` adds both).
fn exflow_counts(r: &Report, service: &str) -> (u64, u64) {
    r.services
        .iter()
        .filter(|s| service.split('+').any(|n| n == s.service))
        .fold((0, 0), |(p, b), s| (p + s.packets, b + s.bytes))
}

#[test]
fn per_service_packets_and_bytes_equal_tshark() {
    let rows = reference();
    assert!(rows.len() > 50, "reference has {} rows", rows.len());
    let mut by_file: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in &rows {
        by_file.entry(&r.file).or_default().push(r);
    }
    let mut mismatches = Vec::new();
    for (file, rows) in &by_file {
        let rep = report(file);
        for row in rows {
            let got = exflow_counts(&rep, &row.service);
            if got != (row.packets, row.bytes) {
                mismatches.push(format!(
                    "{file} {}: exflow {got:?}, tshark ({}, {})",
                    row.service, row.packets, row.bytes
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Total `(unanswered, refused)` TCP flows in a report.
fn failures(r: &Report) -> (u64, u64) {
    r.services.iter().fold((0, 0), |(u, f), s| {
        (u + s.outcomes.unanswered, f + s.outcomes.refused)
    })
}

#[test]
fn every_packet_and_byte_is_accounted_for() {
    let manifest = std::fs::read_to_string(format!("{DATA}/corpus/MANIFEST.tsv")).unwrap();
    for line in manifest.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let r = report(c[0]);
        assert_eq!(
            r.input.packets,
            c[6].parse::<u64>().unwrap(),
            "{}: packets vs MANIFEST",
            c[0]
        );
        let (p, b) = r
            .services
            .iter()
            .fold((0, 0), |(p, b), s| (p + s.packets, b + s.bytes));
        let skipped: u64 = r.input.skipped.values().sum();
        assert_eq!(
            r.input.packets,
            p + r.input.icmp_unreachable + skipped,
            "{}",
            c[0]
        );
        assert_eq!(
            r.input.bytes,
            b + r.input.icmp_unreachable_bytes + r.input.skipped_bytes,
            "{}",
            c[0]
        );
        assert_eq!(
            r.flow_table.flows,
            r.services.iter().map(|s| s.flows).sum::<u64>()
        );
    }
}

#[test]
fn unanswered_and_refused_equal_tshark_streams() {
    let text = std::fs::read_to_string(format!("{DATA}/tshark_outcomes.tsv")).unwrap();
    let expected: BTreeMap<String, (u64, u64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].to_string(),
                (c[1].parse().unwrap(), c[2].parse().unwrap()),
            )
        })
        .collect();
    assert!(expected.contains_key("ndpi/synscan.pcap"));
    let manifest = std::fs::read_to_string(format!("{DATA}/corpus/MANIFEST.tsv")).unwrap();
    let mut mismatches = Vec::new();
    for line in manifest.lines().skip(1) {
        let file = line.split('\t').next().unwrap();
        let want = expected.get(file).copied().unwrap_or((0, 0));
        let got = failures(&report(file));
        if got != want {
            mismatches.push(format!(
                "{file}: exflow (unanswered, refused) {got:?}, tshark {want:?}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn icmp_unreachables_are_attributed_to_the_flows_they_quote() {
    // tshark's counts of ICMP destination-unreachable messages, from MANIFEST.tsv
    // ("ICMP unreach: icmp-unreach-host-admin x53").
    let manifest = std::fs::read_to_string(format!("{DATA}/corpus/MANIFEST.tsv")).unwrap();
    let mut checked = 0;
    for line in manifest.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let Some(part) = c[8].split(" | ").find(|p| p.starts_with("ICMP unreach: ")) else {
            continue;
        };
        let kinds: Vec<(&str, u64)> = part["ICMP unreach: ".len()..]
            .split(',')
            .map(|k| {
                let (name, n) = k.trim().rsplit_once(" x").unwrap();
                (name, n.parse().unwrap())
            })
            .collect();
        let r = report(c[0]);
        let total: u64 = kinds.iter().map(|k| k.1).sum();
        assert_eq!(r.input.icmp_unreachable, total, "{}", c[0]);
        let flows: u64 = r.services.iter().map(|s| s.outcomes.icmp_unreachable).sum();
        assert!(flows > 0 && flows <= total, "{}: {flows} flows", c[0]);
        let admin: u64 = r.services.iter().map(|s| s.icmp_admin_prohibited).sum();
        let all_admin = kinds.iter().all(|k| k.0.contains("admin"));
        assert_eq!(
            admin == flows,
            all_admin,
            "{}: admin-prohibited flows {admin} of {flows}",
            c[0]
        );
        checked += 1;
    }
    assert!(checked >= 4, "{checked} captures with ICMP unreachables");
    // zeek's icmp-destunreach-udp: a DNS query answered by port unreachable.
    let r = report("zeek/Traces/icmp/icmp-destunreach-udp.pcap");
    let dns = r.services.iter().find(|s| s.service == "dns").unwrap();
    assert_eq!(
        (dns.outcomes.icmp_unreachable, dns.icmp_admin_prohibited),
        (1, 0)
    );
}

/// The stored tshark figures are what tshark says today: regenerate them and compare. Needs
/// tshark (CI installs it; `EXFLOW_REQUIRE_TSHARK=1` turns its absence into a failure).
#[test]
fn stored_tshark_figures_match_a_fresh_tshark_run() {
    let have = std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("EXFLOW_REQUIRE_TSHARK").is_none(),
            "tshark is required here"
        );
        eprintln!("tshark not installed: stored figures not re-checked");
        return;
    }
    for name in [
        "tshark_reference",
        "tshark_outcomes",
        "tshark_smtp",
        "tshark_dns",
    ] {
        let out = std::process::Command::new("bash")
            .arg(format!("{DATA}/{name}.sh"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stored = std::fs::read_to_string(format!("{DATA}/{name}.tsv")).unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            stored,
            "{name}.tsv is stale"
        );
    }
}
