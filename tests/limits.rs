//! Budgets and checked time end to end: every limit reached is counted in the JSON report and
//! named in one line of the table; a corrupt timestamp gives no negative or absurd figure; the
//! table keeps its columns apart whatever the counts.

mod common;

use std::process::Command;

use exflow::analyze::{analyze_files, Config};
use exflow::output::{write_table, Report, TableOptions};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/broken-mail-flow.pcap");

fn exflow_json(args: &[&str]) -> Report {
    let out = Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(["analyze", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn table(r: &Report) -> String {
    let mut out = Vec::new();
    write_table(&mut out, r, TableOptions::default()).unwrap();
    String::from_utf8(out).unwrap()
}

fn sample_report() -> Report {
    let (a, _) = analyze_files(&[SAMPLE.to_string()], Config::default(), |_, _, _, _| {});
    Report::new(&a)
}

#[test]
fn flow_records_past_the_budget_are_counted_not_listed() {
    let all = exflow_json(&["--flows", SAMPLE]);
    let total = all.flows.as_ref().unwrap().len() as u64;
    assert!(total > 2);
    assert!(!all.limits.any(), "{:?}", all.limits);
    let cut = exflow_json(&["--flows", "--max-flow-records", "2", SAMPLE]);
    assert_eq!(cut.flows.as_ref().unwrap().len(), 2);
    assert_eq!(cut.limits.flow_records_dropped, total - 2);
    assert_eq!(cut.flow_table.flows, all.flow_table.flows);
}

#[test]
fn every_limit_reached_is_one_line_of_the_table() {
    let mut r = sample_report();
    assert!(!table(&r).contains("Limits reached"));
    r.limits.expectations_dropped = 3;
    r.limits.flows_evicted = 7;
    r.limits.pcapng_interfaces_ignored = 9;
    let t = table(&r);
    let lines: Vec<&str> = t.lines().filter(|l| l.contains("Limits reached")).collect();
    assert_eq!(lines.len(), 1, "{t}");
    for part in [
        "7 flows evicted",
        "3 follow-up announcements dropped at the expectation cap",
        "9 pcapng interfaces ignored",
    ] {
        assert!(lines[0].contains(part), "{}", lines[0]);
    }
}

#[test]
fn large_counts_do_not_run_into_the_service_name() {
    let mut r = sample_report();
    let s = &mut r.services[0];
    s.service = "unclassified".into();
    s.flows = 4_000_000;
    s.packets = 123_456_789;
    s.outcomes.unanswered = 1_234_567;
    let t = table(&r);
    let row = t
        .lines()
        .find(|l| l.starts_with("unclassified"))
        .unwrap_or_else(|| panic!("{t}"));
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(words[0], "unclassified!", "{row}");
    assert_eq!(words[1], "4000000", "{row}");
    assert_eq!(words[2], "123456789", "{row}");
    assert!(words.contains(&"1234567"), "{row}");
}

#[test]
fn a_corrupt_timestamp_gives_no_negative_or_absurd_figure() {
    let mut b = std::fs::read(SAMPLE).unwrap();
    // The third record's seconds: 2106, a century from its neighbours.
    let mut at = 24;
    for _ in 0..2 {
        let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let p = common::scratch("limits").join("corrupt-timestamp.pcap");
    std::fs::write(&p, &b).unwrap();
    let r = exflow_json(&["--flows", p.to_str().unwrap()]);
    std::fs::remove_file(&p).unwrap();
    let good = exflow_json(&[SAMPLE]);
    assert_eq!(r.input.bogus_timestamps, 1);
    assert_eq!(r.input.duration_s, good.input.duration_s);
    for s in &r.services {
        assert!(
            s.duration_s.max >= 0.0 && s.duration_s.max < 86_400.0,
            "{s:?}"
        );
        assert!(s.handshake_rtt_ms.max >= 0.0 && s.handshake_rtt_ms.max < 60_000.0);
    }
    for f in r.flows.as_ref().unwrap() {
        assert!(f.last_ts >= f.first_ts, "{f:?}");
        assert!(f.last_ts < 4_102_444_800.0, "{f:?}");
    }
}
