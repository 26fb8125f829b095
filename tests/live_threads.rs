//! `live --threads N` without a capture device: the captures under `tests/data` are handed to the
//! live loop the way the capture thread hands frames over ([`FrameSender`]), with an interval
//! ending every few hundred frames, and analysed by one analyzer and by three workers. The final
//! totals are compared whole but for the documented differences (the flow table's and the
//! reassembly's peaks are sums of the workers', problems are compared as sets); in both runs the
//! intervals add up to the totals.
#![cfg(feature = "live")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{corpus, first_difference, without_shard_differences};
use exflow::analyze::Config;
use exflow::firewall::FirewallOptions;
use exflow::live::{self, CaptureConfig, FrameSender, LiveConfig, LiveReport, Render};
use exflow::source::CaptureReader;
use serde_json::Value;

/// Frames between two interval ends.
const TICK_EVERY: u64 = 300;

fn config(threads: usize) -> LiveConfig {
    config_with(threads, None)
}

/// [`config`], with `--firewall` when `firewall` is given.
fn config_with(threads: usize, firewall: Option<FirewallOptions>) -> LiveConfig {
    LiveConfig {
        capture: CaptureConfig {
            interface: "test0".into(),
            filter: None,
            snaplen: 262_144,
            promisc: false,
            buffer_size: None,
            immediate: false,
        },
        analysis: Config {
            firewall,
            ..Config::default()
        },
        // Only the sender's ticks end intervals.
        interval: Duration::from_secs(3600),
        threads,
        duration: None,
        render: Render::Ndjson,
        metrics: None,
        events: None,
    }
}

/// Hands the frames of `path` over, an interval ending every [`TICK_EVERY`] frames.
fn send_capture(path: &Path, mut tx: FrameSender) {
    let mut r = CaptureReader::open(&path.to_string_lossy()).unwrap();
    let mut n = 0u64;
    while let Ok(Some(raw)) = r.next_packet() {
        tx.push(&raw).unwrap();
        n += 1;
        if n.is_multiple_of(TICK_EVERY) {
            tx.tick().unwrap();
        }
    }
    tx.end(None).unwrap();
}

/// The NDJSON reports of a live run over `path` with `threads` analysis threads.
fn live_run(path: &Path, threads: usize) -> Vec<LiveReport> {
    live_run_with(path, config(threads))
}

/// [`live_run`] with the given settings.
fn live_run_with(path: &Path, config: LiveConfig) -> Vec<LiveReport> {
    let (tx, rx) = live::frames::channel();
    let p = path.to_path_buf();
    let feeder = std::thread::spawn(move || send_capture(&p, tx));
    let mut out = Vec::new();
    let ending = live::run_frames(&config, rx, &mut out).unwrap();
    feeder.join().unwrap();
    assert_eq!(ending, live::Ending::Stopped);
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The totals of the last report, with what is documented to differ left out.
fn comparable_totals(lines: &[LiveReport]) -> Value {
    let last = lines.last().expect("a final report");
    assert!(last.interval.last);
    let mut v = serde_json::to_value(&last.totals.report).unwrap();
    without_shard_differences(&mut v);
    if let Some(Value::Array(f)) = v.get_mut("failures") {
        f.sort_by_key(|x| x.to_string());
    }
    v
}

/// A service's counters: flows, packets, bytes, established, failures.
fn counters(s: &exflow::output::ServiceView) -> [u64; 5] {
    [
        s.flows,
        s.packets,
        s.bytes,
        s.outcomes.established,
        s.outcomes.failures(),
    ]
}

/// Each service's counters summed over the intervals (flows, packets, bytes, established,
/// failures), and the frames.
fn interval_sums(lines: &[LiveReport]) -> (BTreeMap<String, [u64; 5]>, u64) {
    let mut sums: BTreeMap<String, [u64; 5]> = BTreeMap::new();
    for s in lines.iter().flat_map(|l| &l.report.services) {
        let t = sums.entry(s.service.clone()).or_default();
        for (t, a) in t.iter_mut().zip(counters(s)) {
            *t += a;
        }
    }
    let frames = lines.iter().map(|l| l.report.input.packets).sum();
    (sums, frames)
}

/// The same counters of the final totals.
fn total_sums(lines: &[LiveReport]) -> (BTreeMap<String, [u64; 5]>, u64) {
    totals_at(lines.last().unwrap())
}

/// The same counters of the totals a report carries.
fn totals_at(line: &LiveReport) -> (BTreeMap<String, [u64; 5]>, u64) {
    let totals = &line.totals.report;
    let sums = totals
        .services
        .iter()
        .map(|s| (s.service.clone(), counters(s)))
        .collect();
    (sums, totals.input.packets)
}

/// The intervals add up to the totals (every frame in one interval, every flow in the interval
/// it started) with three workers wherever they do with one thread. They do not where payload
/// moves a flow to another service after an interval counted it (the intervals then count it
/// under both; a worker may see such a flow a tick later than one analyzer, so the sums can
/// differ there).
#[test]
fn live_with_three_workers_totals_what_one_thread_totals() {
    let files = corpus();
    let mut diffs = Vec::new();
    let (mut ticked, mut exact) = (0, 0);
    for f in &files {
        let name = f.display().to_string();
        let (one, three) = (live_run(f, 1), live_run(f, 3));
        assert_eq!(one.len(), three.len(), "{name}: as many reports");
        ticked += usize::from(one.len() > 2);
        let (a, b) = (comparable_totals(&one), comparable_totals(&three));
        if let Some(d) = first_difference(&a, &b, "") {
            diffs.push(format!("{name}: totals: {d}"));
        }
        for (i, (a, b)) in one.iter().zip(&three).enumerate() {
            let (a, b) = (totals_at(a), totals_at(b));
            if a != b {
                diffs.push(format!(
                    "{name}: totals of report {}: {a:?} -> {b:?}",
                    i + 1
                ));
                break;
            }
        }
        let (iv_one, iv_three) = (interval_sums(&one), interval_sums(&three));
        let totals = total_sums(&one);
        if iv_one == totals && iv_three != iv_one {
            diffs.push(format!("{name}: intervals: {iv_one:?} -> {iv_three:?}"));
        }
        assert_eq!(iv_one.1, totals.1, "{name}: every frame in one interval");
        assert_eq!(
            iv_three.1,
            total_sums(&three).1,
            "{name}: every frame, 3 workers"
        );
        exact += usize::from(iv_one == totals);
    }
    assert!(ticked > 5, "only {ticked} captures had several intervals");
    assert!(
        exact > 20,
        "the intervals add up to the totals in only {exact} captures"
    );
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// A frame that arrives alone, the interface quiet after it, is in the report of the interval it
/// arrived in: the hand-over sends a partly filled batch on the read timeout (`idle`).
#[test]
fn a_lone_frame_is_analysed_within_its_interval() {
    for threads in [1, 2] {
        let (mut tx, rx) = live::frames::channel();
        let mut sc = exflow::synth::Scenario::with_seed(1);
        let ep = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
        sc.udp(ep("10.0.0.1:5353"), ep("10.0.0.2:53"), 1_000_000_000, b"q");
        let frame = sc.into_frames().remove(0);
        let feeder = std::thread::spawn(move || {
            let raw = exflow::packet::RawPacket {
                ts: frame.ts,
                link_type: 1,
                data: &frame.data,
                wire_len: frame.data.len() as u32,
            };
            tx.push(&raw).unwrap();
            tx.idle().unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            tx.end(None).unwrap();
        });
        let config = LiveConfig {
            interval: Duration::from_millis(500),
            ..config(threads)
        };
        let mut out = Vec::new();
        live::run_frames(&config, rx, &mut out).unwrap();
        feeder.join().unwrap();
        let lines: Vec<LiveReport> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.len() >= 3, "{threads}: {} reports", lines.len());
        assert_eq!(lines[0].report.input.packets, 1, "{threads}: in the first");
        let dns = lines[0].report.services.iter().find(|s| s.service == "dns");
        assert_eq!(dns.map(|s| s.flows), Some(1), "{threads}");
    }
}

/// `live --firewall --threads 3` reports the rules one thread reports: in every interval (flows
/// that ended in it and open flows that carried packets in it, open ones judged at the run's
/// newest packet) and in the totals of every report, on every corpus capture.
#[test]
fn live_firewall_with_three_workers_reports_what_one_thread_reports() {
    let files = corpus();
    let opt = Some(FirewallOptions::default());
    let mut diffs = Vec::new();
    let mut rules = 0;
    for f in &files {
        let one = live_run_with(f, config_with(1, opt));
        let three = live_run_with(f, config_with(3, opt));
        assert_eq!(one.len(), three.len(), "{}: reports", f.display());
        for (i, (a, b)) in one.iter().zip(&three).enumerate() {
            rules += a.totals.firewall.as_ref().map_or(0, |r| r.rules.len());
            for (what, x, y) in [
                ("interval", &a.firewall, &b.firewall),
                ("totals", &a.totals.firewall, &b.totals.firewall),
            ] {
                let (x, y) = (
                    serde_json::to_value(x).unwrap(),
                    serde_json::to_value(y).unwrap(),
                );
                if let Some(d) = first_difference(&x, &y, "") {
                    diffs.push(format!("{} report {i} {what}: {d}", f.display()));
                }
            }
        }
    }
    assert!(rules > 50, "{rules} rules over the reports");
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
