//! `--threads N` reports what one thread reports: every capture under `tests/data` (the corpus
//! copy included) and `$EXFLOW_CORPUS`, analysed with one analyzer and with three workers (more than this
//! machine's cores, so routing and merging are shaken), JSON reports compared whole, with
//! `--flows`. The documented differences are left out: `flow_table.peak` and
//! `signalling.reassembly.peak_bytes` (sums of the workers' peaks), the order of `problems`. And
//! endpoint-mapper announcements that cross workers: a follow-up from another host counts on the
//! mapper's expectation, once, whether it opened after the announcement reached its worker or
//! opened and ended before.

mod common;
use common::{captures, first_difference, hex, without_shard_differences};

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use exflow::analyze::Config;
use exflow::output::Report;
use exflow::shard::{analyze_files, route::worker_for, EPOCH};
use exflow::synth::{Dir, Scenario, TsPrecision};
use serde_json::Value;

/// `tests/data` (the corpus copy and the other test captures), and `$EXFLOW_CORPUS` if it is
/// elsewhere.
fn capture_dirs() -> Vec<PathBuf> {
    let data = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data"));
    let mut dirs = vec![data.clone()];
    if let Some(c) = std::env::var_os("EXFLOW_CORPUS").map(PathBuf::from) {
        if !c.starts_with(&data) {
            dirs.push(c);
        }
    }
    dirs
}

/// The JSON report of `path` with `threads` workers, flow lists in one order, the workers'
/// summed peak left out.
fn report(path: &Path, threads: usize) -> Value {
    report_with(path, threads, true)
}

/// [`report`], with the file memory-mapped (payloads handed to the workers in place) or read as
/// a stream (payloads copied into the batches).
fn report_with(path: &Path, threads: usize, map_files: bool) -> Value {
    let mut config = Config {
        keep_flows: true,
        ..Config::default()
    };
    config.read.map_files = map_files;
    let (a, _) = analyze_files(
        &[path.to_string_lossy().into_owned()],
        config,
        threads,
        |_, _, _, _| {},
    )
    .unwrap();
    let mut v = serde_json::to_value(Report::new(&a)).unwrap();
    for k in ["flows", "failures", "tcp_broken"] {
        if let Some(Value::Array(list)) = v.get_mut(k) {
            list.sort_by_key(|f| {
                ["first_ts", "proto", "client", "server", "last_ts"]
                    .map(|k| f[k].to_string())
                    .join(" ")
            });
        }
    }
    // Problems are listed in the order flows ended in each worker: compared as sets.
    without_shard_differences(&mut v);
    v
}

#[test]
fn sharded_runs_report_what_one_thread_reports_on_every_corpus_capture() {
    let mut files = Vec::new();
    for dir in capture_dirs() {
        captures(&dir, &mut files);
    }
    assert!(files.len() > 20, "{} captures", files.len());
    let mut diffs = Vec::new();
    for f in &files {
        let one = report(f, 1);
        // Two: the reader analyses a third itself; three, read as a stream: payloads are
        // copied into the batches instead of read in place from the map. One, read as a
        // stream: frame by frame, where a mapped file is decoded a few frames ahead.
        for (threads, mapped) in [(3, true), (2, true), (3, false), (1, false)] {
            let other = report_with(f, threads, mapped);
            if let Some(d) = first_difference(&one, &other, "") {
                diffs.push(format!(
                    "{} ({threads} threads, mapped {mapped}): {d}",
                    f.display()
                ));
            }
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

const S: i64 = 1_000_000_000;
const T0: i64 = 1_000_000_000 * S;

/// zeek `dce-rpc/mapi.pcap` frames 397-400: bind to the mapper, its ack, an `ept_map` for NSPI
/// and the answer, NSPI at 192.168.0.2:4997/tcp.
const EPM: [(Dir, &str); 4] = [
    (Dir::ToServer, "05000b03100000004800000001000000d016d0160000000001000000000001000883afe11f5dc91191a408002b14a0fa03000000045d888aeb1cc9119fe808002b10486002000000"),
    (Dir::ToClient, "05000c03100000003c00000001000000d016d016e5c8000004003133350000000100000000000000045d888aeb1cc9119fe808002b10486002000000"),
    (Dir::ToServer, "05000003100000009c0000000100000084000000000003000100000000000000000000000000000000000000020000004b0000004b000000050013000d185accf564421a108c5908002b2f842638000200000013000d045d888aeb1cc9119fe808002b10486002000200000001000b020000000100070200008701000904000000000000000000000000000000000000000000000000000004000000"),
    (Dir::ToClient, "050002031000000098000000010000008000000000000000000000000000000000000000000000000000000001000000040000000000000001000000030000004b0000004b000000050013000d185accf564421a108c5908002b2f842638000200000013000d045d888aeb1cc9119fe808002b10486002000200000001000b02000000010007020013850100090400c0a800020000000000"),
];

const SERVER: &str = "192.168.0.2";

/// A host whose traffic with the server goes to another of 3 workers than `client`'s.
fn other_client(client: &str) -> String {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let home = worker_for(ip(client), ip(SERVER), 3);
    (2..250)
        .map(|i| format!("192.168.1.{i}"))
        .find(|c| worker_for(ip(c), ip(SERVER), 3) != home)
        .unwrap()
}

/// Client A asks the mapper; another host uses the endpoint, `gap` frames of unrelated traffic
/// later, or (`gap` 0) at once, and the flow ends well before the capture does. Returns the
/// reports of 1 and 3 workers.
fn cross_worker(gap: u64) -> (Report, Report) {
    cross_worker_at(gap, None)
}

/// [`cross_worker`], the other host's flow starting at `b_at` if given.
fn cross_worker_at(gap: u64, b_at: Option<i64>) -> (Report, Report) {
    let a = "192.168.0.10";
    let b = other_client(a);
    let ep = |h: &str, p: u16| SocketAddr::new(h.parse().unwrap(), p);
    let mut sc = Scenario::new();
    let bytes: Vec<Vec<u8>> = EPM.iter().map(|(_, h)| hex(h)).collect();
    let msgs: Vec<(Dir, &[u8])> = EPM
        .iter()
        .zip(&bytes)
        .map(|((d, _), b)| (*d, &b[..]))
        .collect();
    sc.tcp_session(ep(a, 1100), ep(SERVER, 135), T0, &msgs);
    for i in 0..gap {
        let t = T0 + S + i as i64 * 1000;
        sc.udp(ep("10.9.0.1", 5000), ep("10.9.0.2", 5001), t, b"x");
    }
    let later = T0 + 2 * S + gap as i64 * 1000;
    sc.tcp_session(
        ep(&b, 1200),
        ep(SERVER, 4997),
        b_at.unwrap_or(later),
        &[
            (Dir::ToServer, &[5u8; 100][..]),
            (Dir::ToClient, &[6u8; 200]),
        ],
    );
    // Ten minutes more, a frame every 5 s: the closed flow is swept out of its table.
    for i in 0..120 {
        let t = later + 10 * S + i * 5 * S;
        sc.udp(ep("10.9.0.3", 5000), ep("10.9.0.4", 5001), t, b"y");
    }
    let path =
        common::scratch("shard-identity").join(format!("cross-{gap}-{}.pcap", b_at.is_some()));
    std::fs::write(&path, sc.to_pcap(TsPrecision::Micro)).unwrap();
    let run = |threads| {
        let config = Config {
            keep_flows: true,
            ..Config::default()
        };
        let p = path.to_string_lossy().into_owned();
        Report::new(
            &analyze_files(&[p], config, threads, |_, _, _, _| {})
                .unwrap()
                .0,
        )
    };
    (run(1), run(3))
}

fn nspi_flow(r: &Report) -> (String, Option<u32>) {
    let f = r
        .flows
        .as_ref()
        .unwrap()
        .iter()
        .find(|f| f.server.ends_with(":4997"))
        .unwrap();
    (f.service.clone(), f.followup_of)
}

#[test]
fn a_mapper_endpoint_used_from_another_worker_after_two_epochs_is_its_follow_up() {
    let (one, three) = cross_worker(2 * EPOCH + 10);
    assert_eq!(nspi_flow(&one), ("nspi".to_string(), Some(0)));
    assert_eq!(nspi_flow(&three), nspi_flow(&one));
    assert_eq!(
        three.followups, one.followups,
        "counted once, on the original"
    );
    assert_eq!(three.followups[0].flows, 1);
}

#[test]
fn a_follow_up_that_ended_before_the_announcement_reached_its_worker_is_still_one() {
    let (one, three) = cross_worker(0);
    assert_eq!(nspi_flow(&one), ("nspi".to_string(), Some(0)));
    // Held back at its end until the other workers' announcements of its epoch arrived.
    assert_eq!(nspi_flow(&three), nspi_flow(&one));
    assert_eq!(three.followups, one.followups);
    assert_eq!(three.followups[0].flows, 1);
}

#[test]
fn a_flow_that_predates_the_answer_takes_its_service_when_it_ends() {
    let (one, three) = cross_worker_at(0, Some(T0 - S));
    assert_eq!(nspi_flow(&one), ("nspi".to_string(), None));
    assert_eq!(nspi_flow(&three), nspi_flow(&one));
    assert_eq!(three.followups, one.followups);
}

/// `exflow analyze --threads N` on the command line: the JSON report of the sample capture with
/// three workers is one thread's, and a bad count is refused.
#[test]
fn the_command_line_takes_threads() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/broken-mail-flow.pcap");
    let run = |threads: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_exflow"))
            .args([
                "analyze",
                "-q",
                "--format",
                "json",
                "--flows",
                "--threads",
                threads,
            ])
            .arg(sample)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["flow_table"].as_object_mut().unwrap().remove("peak");
        v["signalling"]["reassembly"]
            .as_object_mut()
            .unwrap()
            .remove("peak_bytes");
        for p in [
            "/problems",
            "/diagnostics/smtp/problems",
            "/diagnostics/dns/problems",
        ] {
            if let Some(Value::Array(list)) = v.pointer_mut(p) {
                list.sort_by_key(|x| x.to_string());
            }
        }
        for k in ["flows", "failures", "tcp_broken"] {
            if let Some(Value::Array(list)) = v.get_mut(k) {
                list.sort_by_key(|f| f.to_string());
            }
        }
        v
    };
    let one = run("1");
    assert!(one["flows"].as_array().is_some_and(|f| f.len() > 20));
    assert_eq!(run("3"), one);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(["analyze", "--threads", "0", sample])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

/// One thread decodes a mapped capture's frames a few ahead of their analysis
/// (`analyze::read_ahead`); read as a stream, it analyses each as it is read. A capture cut
/// anywhere, mid-record included, reports the same either way: the same frames analysed, the
/// same warning naming the cut, the same flows.
#[test]
fn one_thread_reads_a_cut_mapped_capture_as_it_reads_a_stream() {
    let src = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/corpus/suricata-verify/tests/smtp-errors/smtperr.pcap"
    ));
    let bytes = std::fs::read(&src).unwrap();
    let dir = common::scratch("shard-identity");
    let mut cuts: Vec<usize> = (0..8).map(|k| bytes.len() * k / 8 + 13).collect();
    cuts.extend([24, 25, 40, bytes.len() - 1, bytes.len()]);
    let mut warned = 0;
    for cut in cuts {
        let f = dir.join(format!("cut-{cut}.pcap"));
        std::fs::write(&f, &bytes[..cut.min(bytes.len())]).unwrap();
        let mapped = report_with(&f, 1, true);
        let streamed = report_with(&f, 1, false);
        if let Some(d) = first_difference(&streamed, &mapped, "") {
            panic!("cut at {cut}: {d}");
        }
        warned += usize::from(mapped.to_string().contains("truncated"));
    }
    assert!(warned >= 5, "only {warned} cuts were reported as truncated");
}

/// An ICMP error's quote is read again from the payload where it is wanted (`Packet::quoted`):
/// by the reader to route the error to its flow's worker, and by the analysis. A "fragmentation
/// needed" (path-MTU discovery) is ordinary ICMP traffic there, not a verdict on the flow it
/// quotes; an "administratively prohibited" decides its flow's outcome, in whichever worker.
#[test]
fn icmp_errors_reach_the_flow_they_quote_or_stay_icmp() {
    let ep = |h: &str, p: u16| SocketAddr::new(h.parse().unwrap(), p);
    let router: IpAddr = "10.1.9.1".parse().unwrap();
    let mut sc = Scenario::new();
    // Clients in several workers' shares, so that an error crosses the reader's routing.
    let clients: Vec<String> = (0..8).map(|i| format!("192.168.4.{}", 10 + i)).collect();
    for (i, c) in clients.iter().enumerate() {
        let t = T0 + i as i64 * S;
        let syn = sc.tcp(ep(c, 1500), ep(SERVER, 25), t).conn().syn(t);
        let why = if i % 2 == 0 {
            exflow::synth::Unreachable::Code(4)
        } else {
            exflow::synth::Unreachable::AdminProhibited
        };
        assert!(sc.icmp_unreachable(router, &syn.data, why, t + 1_000_000));
        sc.push(syn);
    }
    let path = common::scratch("shard-identity").join("icmp.pcap");
    std::fs::write(&path, sc.to_pcap(TsPrecision::Micro)).unwrap();
    let mut reports = Vec::new();
    for threads in [1, 3] {
        let r = report(&path, threads);
        assert_eq!(r["input"]["icmp_unreachable"], 4, "{threads} threads");
        let flows = r["flows"].as_array().expect("flows");
        for (i, c) in clients.iter().enumerate() {
            let f = flows
                .iter()
                .find(|f| {
                    f["client"]
                        .as_str()
                        .is_some_and(|s| s.starts_with(c.as_str()))
                })
                .unwrap_or_else(|| panic!("{c}'s flow, {threads} threads"));
            let want = if i % 2 == 0 {
                "unanswered"
            } else {
                "icmp_unreachable"
            };
            assert_eq!(f["outcome"], want, "{c}, {threads} threads: {f}");
        }
        // The path-MTU messages are flows of their own, ICMP from the router.
        let icmp = flows
            .iter()
            .filter(|f| {
                f["proto"] == "icmp"
                    && f["client"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("10.1.9.1"))
            })
            .count();
        assert!(icmp >= 1, "{threads} threads: no ICMP flow from the router");
        reports.push(r);
    }
    assert_eq!(reports[0], reports[1]);
    let workers: std::collections::BTreeSet<usize> = clients
        .iter()
        .map(|c| worker_for(c.parse().unwrap(), SERVER.parse().unwrap(), 3))
        .collect();
    assert!(workers.len() > 1, "every client in one worker: {workers:?}");
}
