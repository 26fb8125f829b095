//! The command line end to end: the bundled sample's report (JSON parsed back into types, table
//! against a golden file), bad input and exit statuses, stdin, gzip, the catalogue.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use exflow::output::Report;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/broken-mail-flow.pcap");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");

fn exflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(args)
        .output()
        .unwrap()
}

fn json(args: &[&str]) -> (Report, Output) {
    let mut all = vec!["analyze", "--format", "json"];
    all.extend_from_slice(args);
    let out = exflow(&all);
    let report: Report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (report, out)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let p = common::scratch("cli").join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn sample_bytes() -> Vec<u8> {
    std::fs::read(SAMPLE).unwrap()
}

/// Byte offsets of the pcap records in a classic little-endian pcap file.
fn record_offsets(pcap: &[u8]) -> Vec<usize> {
    let mut offs = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        offs.push(at);
        let caplen = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    offs
}

fn service<'a>(r: &'a Report, id: &str) -> &'a exflow::output::ServiceView {
    r.services
        .iter()
        .find(|s| s.service == id)
        .unwrap_or_else(|| panic!("no service {id}"))
}

#[test]
fn sample_report_shows_the_broken_mail_flow() {
    let (r, out) = json(&[SAMPLE]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(r.schema, "exflow.report.v1");
    assert_eq!(
        r.input.packets,
        record_offsets(&sample_bytes()).len() as u64
    );
    let flows_bytes: u64 = r.services.iter().map(|s| s.bytes).sum();
    assert_eq!(
        r.input.bytes,
        flows_bytes + r.input.icmp_unreachable_bytes + r.input.skipped_bytes
    );
    assert_eq!(r.input.icmp_unreachable, 3);
    let smtp = service(&r, "smtp");
    assert_eq!(smtp.outcomes.unanswered, 1);
    assert_eq!(smtp.outcomes.refused, 1);
    assert_eq!(smtp.outcomes.icmp_unreachable, 1);
    assert_eq!(smtp.icmp_admin_prohibited, 1);
    assert!(smtp.outcomes.established >= 2, "{:?}", smtp.outcomes);
    for id in [
        "ldap",
        "gc",
        "dns",
        "http",
        "rvp",
        "audio",
        "audio_media",
        "rvp_callback",
    ] {
        assert!(service(&r, id).outcomes.established > 0, "{id}");
    }
    assert!(
        service(&r, "dns").outcomes.one_way >= 1,
        "the unanswered DNS query"
    );
    // The RVP server's callbacks: one blocked by a firewall, one that worked; audio media inferred.
    let callbacks: Vec<_> = r
        .followups
        .iter()
        .filter(|e| e.service == "rvp_callback")
        .collect();
    let mut outcomes: Vec<&str> = callbacks.iter().map(|e| e.outcome.as_str()).collect();
    outcomes.sort();
    assert_eq!(outcomes, ["established", "icmp_unreachable"]);
    let audio = r
        .followups
        .iter()
        .find(|e| e.service == "audio_media")
        .unwrap();
    assert_eq!(
        (audio.basis.as_str(), audio.outcome.as_str()),
        ("inferred", "established")
    );
    // Outlook's store port, handed out by the endpoint mapper, blocked by the firewall.
    let store = r.followups.iter().find(|e| e.service == "mapi").unwrap();
    assert_eq!(
        (store.outcome.as_str(), store.expected.port),
        ("icmp_unreachable", 1101)
    );
    let pin = store.interface.as_ref().unwrap().pin.as_ref().unwrap();
    assert_eq!(
        (pin.value.as_deref(), pin.kb.as_str()),
        (Some("TCP/IP Port"), "KB 270836")
    );
    // Failures listed, each with its verdict.
    let smtp_failures: Vec<_> = r.failures.iter().filter(|f| f.service == "smtp").collect();
    assert_eq!(smtp_failures.len(), 3);
    let blocked = smtp_failures.iter().find(|f| f.icmp.is_some()).unwrap();
    assert!(blocked.icmp.as_ref().unwrap().admin_prohibited);
    let unanswered = smtp_failures
        .iter()
        .find(|f| f.outcome.as_str() == "unanswered")
        .unwrap();
    assert!(unanswered.syns >= 2, "SYN retransmissions are one flow");
    // The mail-flow diagnostics: a relay denial, a greylisting, an unknown recipient, and the
    // NXDOMAIN MX lookup (samples/README.md).
    let smtp = &r.diagnostics["smtp"];
    assert_eq!(smtp["sessions"], 5);
    assert_eq!(
        smtp["verdicts"],
        serde_json::json!({"delivered": 2, "rejected": 2, "deferred": 1})
    );
    let replies: Vec<String> = smtp["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["reply"]["code"],
                p["reply"]["text"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        replies
            .iter()
            .any(|t| t.starts_with("550 5.7.1 Unable to relay")),
        "{replies:?}"
    );
    assert!(
        replies
            .iter()
            .any(|t| t.starts_with("451 4.7.1 Greylisted")),
        "{replies:?}"
    );
    let dns = &r.diagnostics["dns"];
    assert_eq!(
        (dns["queries"].as_u64(), dns["unanswered"].as_u64()),
        (Some(12), Some(1))
    );
    assert_eq!(
        dns["rcodes"],
        serde_json::json!({"NOERROR": 9, "NXDOMAIN": 1})
    );
    let nx = dns["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["outcome"] == "NXDOMAIN")
        .unwrap();
    assert_eq!(
        (nx["name"].as_str(), nx["qtype"].as_str()),
        (Some("northwind.example"), Some("MX"))
    );
}

#[test]
fn sample_table_matches_golden() {
    let out = exflow(&["analyze", "--color", "never", SAMPLE]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(SAMPLE, "samples/broken-mail-flow.pcap");
    let golden = Path::new(GOLDEN).join("sample.table.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(
        text, want,
        "table changed; review and rerun with UPDATE_GOLDEN=1"
    );
    for line in text.lines() {
        assert!(
            line.chars().count() <= 100,
            "wider than 100 columns: {line}"
        );
    }
}

#[test]
fn flows_listing_and_csv() {
    let (r, _) = json(&["--flows", SAMPLE]);
    let flows = r.flows.as_ref().unwrap();
    assert_eq!(flows.len() as u64, r.flow_table.flows);
    let per_service: u64 = r.services.iter().map(|s| s.flows).sum();
    assert_eq!(per_service, flows.len() as u64);
    let out = exflow(&["analyze", "--format", "csv", SAMPLE]);
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.starts_with("service,flows,packets,bytes,"));
    assert_eq!(csv.lines().count(), r.services.len() + 1);
    let out = exflow(&["analyze", "--format", "csv", "--flows", SAMPLE]);
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(csv.lines().count(), flows.len() + 1);
    // Both are written as flows end, in the same order: the JSON's flows are the CSV's rows.
    // A streamed row is written from the flow's record (`csv::write_record_row`); written from
    // the JSON's view of the same flow it reads the same, every column.
    let mut icmp_or_followup = 0;
    for (row, f) in csv.lines().skip(1).zip(flows) {
        let want = format!("{},{},{},{},", f.service, f.proto, f.client, f.server);
        assert!(row.starts_with(&want), "{row} is not {want}");
        let mut from_view = Vec::new();
        exflow::output::write_flow_row(&mut from_view, f).unwrap();
        assert_eq!(format!("{row}\n"), String::from_utf8(from_view).unwrap());
        icmp_or_followup += usize::from(f.icmp.is_some() || f.followup_of.is_some());
    }
    assert!(icmp_or_followup > 0, "no row has its last two columns");
}

/// A `--flows` JSON listing goes through a writer thread in batches of 256 records: a capture
/// of about 2 000 flows comes out whole and in the order flows ended (the CSV rows, written on
/// the analysis thread, are the same flows in the same order), and a cap keeps the first ones.
#[test]
fn many_streamed_flows_come_out_whole_and_in_order() {
    let capture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/corpus/ndpi/synscan.pcap"
    );
    let (r, _) = json(&["--flows", capture]);
    let flows = r.flows.as_ref().unwrap();
    assert!(flows.len() > 4 * 256, "only {} flows", flows.len());
    assert_eq!(flows.len() as u64, r.flow_table.flows);
    let out = exflow(&["analyze", "--format", "csv", "--flows", capture]);
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(csv.lines().count(), flows.len() + 1);
    for (row, f) in csv.lines().skip(1).zip(flows) {
        let mut from_view = Vec::new();
        exflow::output::write_flow_row(&mut from_view, f).unwrap();
        assert_eq!(format!("{row}\n"), String::from_utf8(from_view).unwrap());
    }
    let (cut, _) = json(&["--flows", "--max-flow-records", "300", capture]);
    let kept = cut.flows.as_ref().unwrap();
    assert_eq!(kept.as_slice(), &flows[..300]);
    assert_eq!(cut.limits.flow_records_dropped, flows.len() as u64 - 300);
}

#[test]
fn stdin_and_gzip_read_like_the_file() {
    let (file, _) = json(&[SAMPLE]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(["analyze", "--format", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&sample_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let piped: Report = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(piped.services, file.services);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&sample_bytes()).unwrap();
    let p = tmp("sample.pcap.gz", &gz.finish().unwrap());
    let (zipped, out) = json(&[p.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(zipped.services, file.services);
}

#[test]
fn missing_empty_and_foreign_files_analyse_nothing() {
    let empty = tmp("empty.pcap", b"");
    let text = tmp("notes.txt", b"this is not a capture\n");
    let header_only = tmp("header.pcap", &sample_bytes()[..24]);
    for (path, needle) in [
        ("/nonexistent/x.pcap", "/nonexistent/x.pcap"),
        (empty.to_str().unwrap(), "empty"),
        (text.to_str().unwrap(), "not a pcap"),
        (header_only.to_str().unwrap(), "no packets"),
    ] {
        let out = exflow(&["analyze", path]);
        assert_eq!(out.status.code(), Some(2), "{path}: {}", stderr(&out));
        assert!(
            out.stdout.is_empty(),
            "{path}: no report when nothing was analysed"
        );
        let err = stderr(&out);
        assert!(err.contains(path) && err.contains(needle), "{path}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn truncated_and_corrupt_files_give_partial_reports() {
    let bytes = sample_bytes();
    let offs = record_offsets(&bytes);
    let n = offs.len() as u64;
    // Last record cut in half.
    let cut = tmp("cut.pcap", &bytes[..bytes.len() - 10]);
    let (r, out) = json(&[cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r.input.packets, n - 1);
    let last = offs[offs.len() - 1];
    assert!(
        r.input
            .warnings
            .iter()
            .any(|w| w.contains("cut.pcap") && w.contains(&format!("byte {last}"))),
        "{:?}",
        r.input.warnings
    );
    // A corrupt record length in the middle: everything before it is reported.
    let mut bad = bytes.clone();
    let mid = offs[offs.len() / 2];
    bad[mid + 8..mid + 12].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let bad = tmp("corrupt.pcap", &bad);
    let (r, out) = json(&[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r.input.packets, (offs.len() / 2) as u64);
    assert!(
        r.input
            .warnings
            .iter()
            .any(|w| w.contains(&format!("byte {mid}"))),
        "{:?}",
        r.input.warnings
    );
    // One good file and one missing: a partial report of the good one.
    let (r, out) = json(&[SAMPLE, "/nonexistent/y.pcap"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(r.input.packets, n);
    assert_eq!(r.input.files.len(), 2);
    assert!(r.input.files[1].error.is_some());
}

#[test]
fn garbage_pcapng_block_is_reported_with_offset() {
    // A valid SHB + IDB, one EPB, then a block whose lengths disagree.
    let mut f = Vec::new();
    let block = |f: &mut Vec<u8>, kind: u32, body: &[u8]| {
        let len = (12 + body.len()) as u32;
        f.extend_from_slice(&kind.to_le_bytes());
        f.extend_from_slice(&len.to_le_bytes());
        f.extend_from_slice(body);
        f.extend_from_slice(&len.to_le_bytes());
    };
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&u64::MAX.to_le_bytes());
    block(&mut f, 0x0a0d_0d0a, &shb);
    block(&mut f, 1, &[1, 0, 0, 0, 0xff, 0xff, 0, 0]);
    let frame = &sample_bytes()[offs_first_frame()];
    let mut epb = Vec::new();
    epb.extend_from_slice(&0u32.to_le_bytes());
    epb.extend_from_slice(&0u32.to_le_bytes());
    epb.extend_from_slice(&0u32.to_le_bytes());
    epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    epb.extend_from_slice(frame);
    while epb.len() % 4 != 0 {
        epb.push(0);
    }
    block(&mut f, 6, &epb);
    let garbage_at = f.len();
    f.extend_from_slice(&[
        6, 0, 0, 0, 0x20, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x99, 0,
        0, 0,
    ]);
    let p = tmp("garbage.pcapng", &f);
    let (r, out) = json(&[p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(r.input.packets, 1);
    assert!(
        r.input
            .warnings
            .iter()
            .any(|w| w.contains(&format!("byte {garbage_at}"))),
        "{:?}",
        r.input.warnings
    );
}

fn offs_first_frame() -> std::ops::Range<usize> {
    let b = sample_bytes();
    let caplen = u32::from_le_bytes(b[32..36].try_into().unwrap()) as usize;
    40..40 + caplen
}

/// Runs exflow with stdout (or stderr) a pipe whose reading end is already closed.
fn with_closed(args: &[&str], close_stdout: bool) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if close_stdout {
        drop(child.stdout.take());
    } else {
        drop(child.stderr.take());
    }
    child.wait_with_output().unwrap()
}

#[test]
fn closed_pipe_is_not_an_error() {
    let catalogue_json = ["catalogue", "--format", "json"];
    let cases: [&[&str]; 10] = [
        &["firewall", SAMPLE],
        &["firewall", "--format", "json", SAMPLE],
        &["firewall", "--format", "nft", "--include-allowed", SAMPLE],
        &["firewall", "--format", "netsh", "--include-allowed", SAMPLE],
        &["analyze", "--flows", SAMPLE],
        &["analyze", "--format", "json", "--flows", SAMPLE],
        &["analyze", "--format", "json", SAMPLE],
        &["analyze", "--format", "csv", "--flows", SAMPLE],
        &["catalogue"],
        &catalogue_json,
    ];
    for args in cases {
        let out = with_closed(args, true);
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            !stderr(&out).contains("Broken pipe"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn closed_stderr_is_not_an_error() {
    // The first record's original length below its captured length: a warning, not a failure.
    let mut b = sample_bytes();
    b[36..40].copy_from_slice(&1u32.to_le_bytes());
    let p = tmp("wire-len.pcap", &b);
    let p = p.to_str().unwrap();
    let out = exflow(&["analyze", "--format", "json", p]);
    assert!(stderr(&out).contains("warning"), "{}", stderr(&out));
    for format in ["table", "json", "csv"] {
        let out = with_closed(&["analyze", "--format", format, p], false);
        assert_eq!(out.status.code(), Some(0), "{format}");
        assert!(
            !out.stdout.is_empty(),
            "{format}: the report is still written"
        );
    }
    // An error message to a closed stderr still gives its exit status, without a panic.
    let out = with_closed(&["analyze", "/nonexistent/x.pcap"], false);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn catalogue_lists_every_service_and_takes_user_entries() {
    let out = exflow(&["catalogue", "--format", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for id in [
        "ldap",
        "gc",
        "smtp",
        "rvp",
        "h323",
        "audio",
        "dns",
        "h323_media",
        "rvp_callback",
        "unclassified",
    ] {
        assert!(ids.contains(&id), "{id}");
    }
    let table = String::from_utf8(exflow(&["catalogue"]).stdout).unwrap();
    assert!(table.contains("tcp/3268") && table.contains("Global Catalog"));
    // Entries beyond KB 278339 (issue 11) are marked in the table, JSON and CSV.
    for (id, port) in [
        ("h323_ras", "udp/1719"),
        ("submission", "tcp/587"),
        ("cldap", "udp/389"),
        ("kerberos", "tcp/88,udp/88"),
        ("smb", "tcp/445"),
        ("netbios_ssn", "tcp/139"),
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap();
        assert!(
            line.contains(port) && line.ends_with("(not in KB 278339)"),
            "{line}"
        );
        let entry = v
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap();
        assert_eq!(entry["kb278339"], false, "{id}");
    }
    let smtp = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "smtp")
        .unwrap();
    assert_eq!(
        (&smtp["kb278339"], &smtp["origin"]),
        (&true.into(), &"builtin".into())
    );
    let csv = String::from_utf8(exflow(&["catalogue", "--format", "csv"]).stdout).unwrap();
    assert!(csv.contains("\nsmtp,port,tcp/25,builtin,true,"), "{csv}");
    assert!(csv.contains("\ncldap,port,udp/389,builtin,false,"), "{csv}");
    let cat = tmp(
        "site.cat",
        b"# KB 161931\nmta_rpc tcp/2000 MTA fixed port\nsmtp tcp/2525\n",
    );
    let out = exflow(&["catalogue", "--catalogue", cat.to_str().unwrap()]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("mta_rpc") && table.contains("tcp/25,tcp/2525"),
        "{table}"
    );
    let bad = tmp("bad.cat", b"mta tcp/x\n");
    let out = exflow(&["analyze", "--catalogue", bad.to_str().unwrap(), SAMPLE]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.cat: line 1"), "{}", stderr(&out));
}

#[test]
fn live_without_feature_says_how() {
    if cfg!(feature = "live") {
        return;
    }
    let out = exflow(&["live", "-i", "lo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--features live"), "{}", stderr(&out));
}

#[test]
fn absurd_live_durations_are_refused_without_a_panic() {
    for (flag, value) in [
        ("--duration", "1e30"),
        ("--interval", "inf"),
        ("--interval", "0"),
    ] {
        let out = exflow(&["live", "-i", "lo", flag, value]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
        if cfg!(feature = "live") {
            assert!(
                stderr(&out).contains("between 0.1 seconds and 100 years"),
                "{}",
                stderr(&out)
            );
        }
    }
}

/// `--no-mmap` is about reading files: `live` refuses it rather than ignore it, before it opens
/// the interface.
#[test]
fn live_refuses_no_mmap() {
    if !cfg!(feature = "live") {
        return;
    }
    let out = exflow(&["live", "-i", "lo", "--no-mmap"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--no-mmap: live mode reads no capture file"),
        "{}",
        stderr(&out)
    );
}

/// `live --threads N` shards the analysis (issue 12): N is checked as for `analyze` (1 to 64), and
/// N > 1 is no longer refused (here the run gets as far as opening a missing interface).
#[test]
fn live_takes_threads_within_range() {
    if !cfg!(feature = "live") {
        return;
    }
    for bad in ["0", "65", "x"] {
        let out = exflow(&["live", "-i", "lo", "--threads", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("--threads"), "{}", stderr(&out));
    }
    let out = exflow(&["live", "-i", "exflow-no-such-if0", "--threads", "3"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("exflow-no-such-if0") && !stderr(&out).contains("--threads"),
        "{}",
        stderr(&out)
    );
}

/// Issue 11: a capture from 2014 to 2020 showed `2014-02-19 19:02:39 → 20:07:00 (53953h04m)`,
/// and its flow list gave times without dates.
#[test]
fn times_spanning_days_show_dates_and_say_utc() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/corpus/suricata-verify/tests/smtp-errors/smtperr.pcap"
    );
    let out = exflow(&["analyze", "--color", "never", "--flows", file]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("2014-02-19 19:02:39.347 → 2020-04-16 20:07:00.733 UTC (2248d01h) · 4 flows"),
        "{text}"
    );
    let flows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("FLOWS"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with("      "))
        .collect();
    assert_eq!(flows.len(), 4, "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    assert!(flows.iter().all(|l| l.starts_with("  20")), "{flows:#?}");
    assert!(
        flows.iter().any(|l| l.starts_with("  2020-04-16 ")),
        "{flows:#?}"
    );
    let (r, _) = json(&["--flows", file]);
    assert_eq!(
        r.input.first_ts_rfc3339.as_deref(),
        Some("2014-02-19T19:02:39.346753Z")
    );
    let f = &r.flows.as_ref().unwrap()[0];
    assert!(f.first_ts_rfc3339.starts_with("2014-02-19T") && f.first_ts_rfc3339.ends_with('Z'));

    // One day: the lists give the time of day only, the header the end time only.
    let (r, _) = json(&[SAMPLE]);
    assert_eq!(
        r.input.first_ts_rfc3339.as_deref(),
        Some("2003-01-14T08:12:31.000000Z")
    );
    let text = String::from_utf8(exflow(&["analyze", "--color", "never", SAMPLE]).stdout).unwrap();
    assert!(
        text.contains(" → 08:12:43.003 UTC (12.0 s) · 33 flows"),
        "{text}"
    );
}

/// Issue 11, polish: CSV RTT fields are empty without a sample and the count is given; error
/// messages are one line, show a foreign file's first bytes as hex text, name no Rust type, give
/// the line of a non-UTF-8 catalogue entry, name stdin as the header does.
#[test]
fn csv_and_messages_read_well() {
    let out = exflow(&["analyze", "--format", "csv", SAMPLE]);
    let csv = String::from_utf8(out.stdout).unwrap();
    let head: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (p50, count) = (col("handshake_rtt_ms_p50"), col("handshake_rtt_count"));
    let dns: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("dns,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(
        (dns[p50], dns[count]),
        ("", "0"),
        "UDP has no handshake: {csv}"
    );
    let smtp: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("smtp,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!((smtp[p50], smtp[count]), ("40.223", "5"), "{csv}");

    let out = exflow(&["analyze", "/nonexistent/x.pcap"]);
    assert_eq!(
        stderr(&out),
        "exflow: /nonexistent/x.pcap: No such file or directory (os error 2)\n"
    );
    let text = tmp("notes2.txt", b"GET / HTTP/1.0\r\n");
    let out = exflow(&["analyze", text.to_str().unwrap()]);
    assert!(
        stderr(&out).ends_with("(starts with 47 45 54 20, \"GET \")\n")
            && stderr(&out).lines().count() == 1,
        "{}",
        stderr(&out)
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_exflow"))
        .args(["analyze", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.0\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        stderr(&out).starts_with("exflow: (stdin): not a pcap"),
        "{}",
        stderr(&out)
    );

    let cat = tmp("latin1.cat", b"foo tcp/1000 ok\nbar tcp/1001 caf\xe9\n");
    let out = exflow(&["catalogue", "--catalogue", cat.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("latin1.cat: line 2: not UTF-8"),
        "{}",
        stderr(&out)
    );
    let cat = tmp("followup.cat", b"h323_media udp/5000\n");
    let out = exflow(&["catalogue", "--catalogue", cat.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("is a follow-up service"),
        "{}",
        stderr(&out)
    );
    let cat = tmp("zero.cat", b"foo tcp/0\n");
    let out = exflow(&["catalogue", "--catalogue", cat.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("zero.cat: line 1: bad port"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn firewall_on_the_sample() {
    let o = exflow(&["firewall", "--format", "json", SAMPLE]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fw: exflow::firewall::FirewallReport = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(fw.schema, "exflow.firewall.v1");
    assert_eq!(fw.rules[0].status, "blocked");
    assert!(fw.rules.iter().all(|r| r.service != "unclassified"));
    assert_eq!(fw.unclassified_flows, 3);
    let o = exflow(&["firewall", SAMPLE, "--aggregate", "/24"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(table.starts_with("exflow firewall report\naddresses grouped into /24 prefixes\n"));
    assert!(table.contains("3 flows on ports exflow does not know were left out"));
    let o = exflow(&["firewall", SAMPLE, "--aggregate", "/33"]);
    assert_eq!(o.status.code(), Some(2));
    for format in ["nft", "netsh"] {
        let o = exflow(&["firewall", "-f", format, "--include-allowed", SAMPLE]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!o.stdout.is_empty());
    }
}

#[test]
fn firewall_is_not_cut_by_max_flow_records_and_counts_its_own_budget() {
    let json = |extra: &[&str]| -> exflow::firewall::FirewallReport {
        let mut args = vec!["firewall", "--format", "json", SAMPLE];
        args.extend_from_slice(extra);
        let o = exflow(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let all = json(&[]);
    assert!(all.rules.len() > 10, "{:#?}", all.rules);
    // Rules are gathered as flows end: the flow-record limit does not touch them.
    let few_records = json(&["--max-flow-records", "1"]);
    assert_eq!(few_records, all);
    assert_eq!(few_records.flow_records_dropped, 0);
    let few_groups = json(&["--max-rule-groups", "2"]);
    assert_eq!(few_groups.rules.len(), 2);
    assert!(few_groups.flows_over_rule_budget > 0);
    let o = exflow(&["firewall", "--max-rule-groups", "0", SAMPLE]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--max-rule-groups must be at least 1"));
    // An option firewall would ignore is refused, not ignored.
    let o = exflow(&["firewall", "--events", "/dev/null", SAMPLE]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("exflow firewall writes no events"));
}
