//! Real SMTP captures against tshark: per session, the multiset of reply codes exflow's SMTP
//! tracker reads equals tshark's `smtp.response.code` (tests/data/tshark_smtp.tsv, made by
//! tests/data/tshark_smtp.sh), and each session's verdict is the one its bytes show.

use std::collections::BTreeMap;

use exflow::analyze::{analyze_files, Completeness, Config};
use exflow::classify::{Catalogue, Origin};
use exflow::output::{FlowView, Report};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// Submission (tcp/587) is not in KB 278339; several corpus captures use it, as a user catalogue
/// file would add it.
const SUBMISSION: &str = "smtp_submission tcp/587 SMTP submission\ntrack smtp smtp_submission\n";

fn report(file: &str) -> Report {
    let mut catalogue = Catalogue::builtin();
    catalogue
        .apply("submission.cat", SUBMISSION, Origin::User)
        .unwrap();
    let config = Config {
        catalogue,
        keep_flows: true,
        ..Config::default()
    };
    let (a, done) = analyze_files(&[format!("{DATA}/corpus/{file}")], config, |_, _, _, _| {});
    assert_eq!(done, Completeness::Complete, "{file}");
    Report::new(&a)
}

fn smtp_flows(r: &Report) -> Vec<&FlowView> {
    r.flows
        .iter()
        .flatten()
        .filter(|f| f.findings.contains_key("smtp"))
        .collect()
}

/// `220:1,250:4` from a session's `replies` object.
fn replies(f: &FlowView) -> String {
    let codes: BTreeMap<u16, u64> = f.findings["smtp"]["replies"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.as_u64().unwrap()))
        .collect();
    codes
        .iter()
        .map(|(c, n)| format!("{c}:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn reply_codes_per_session_equal_tshark() {
    let text = std::fs::read_to_string(format!("{DATA}/tshark_smtp.tsv")).unwrap();
    let mut by_file: BTreeMap<&str, Vec<(&str, &str, &str)>> = BTreeMap::new();
    for l in text.lines().skip(1) {
        let c: Vec<&str> = l.split('\t').collect();
        by_file.entry(c[0]).or_default().push((c[1], c[2], c[3]));
    }
    assert!(by_file.len() >= 8, "{} files", by_file.len());
    let mut sessions = 0;
    let mut mismatches = Vec::new();
    for (file, rows) in &by_file {
        let r = report(file);
        let flows = smtp_flows(&r);
        for (client, server, want) in rows {
            let got = flows
                .iter()
                .find(|f| f.client == *client && f.server == *server)
                .map(|f| replies(f));
            if got.as_deref() != Some(*want) {
                mismatches.push(format!(
                    "{file} {client} → {server}: exflow {got:?}, tshark {want}"
                ));
            }
            sessions += 1;
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(sessions >= 12, "{sessions} sessions compared");
}

fn verdicts(file: &str) -> Vec<(String, String)> {
    let r = report(file);
    smtp_flows(&r)
        .iter()
        .map(|f| {
            (
                f.client.clone(),
                f.findings["smtp"]["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verdict_of(file: &str, client: &str) -> String {
    verdicts(file)
        .into_iter()
        .find(|(c, _)| c == client)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

#[test]
fn verdicts_follow_the_bytes() {
    // RCPT answered "553 5.7.1 ... Sender address rejected".
    assert_eq!(
        verdict_of("arkime/tests/pcap/smtp-rcpt-553.pcap", "10.0.0.1:48012"),
        "rejected"
    );
    // The end of DATA answered 521.
    assert_eq!(
        verdict_of("arkime/tests/pcap/smtp-data-521.pcap", "10.0.0.1:56558"),
        "rejected"
    );
    // One message queued with 250, then the server's own 451 timeout.
    assert_eq!(
        verdict_of("zeek/Traces/smtp-multi-addr.pcap", "188.184.129.157:35119"),
        "delivered"
    );
    // Only the client's side was captured.
    assert_eq!(
        verdicts("zeek/Traces/smtp-one-side-only.pcap"),
        [("192.150.187.22:57722".to_string(), "one_sided".to_string())]
    );
    // STARTTLS answered 220, then a ServerHello.
    assert_eq!(
        verdict_of(
            "suricata-verify/tests/smtp-startssl/input.pcap",
            "10.16.1.11:34634"
        ),
        "tls"
    );
    let crim = verdicts("wireshark-wiki/SampleCaptures/crim.pcap");
    assert_eq!(crim.len(), 2);
    assert!(crim.iter().all(|(_, v)| v == "delivered"), "{crim:?}");
    // smtperr: a session reset inside DATA after the 354, and one whose RCPT got a 4xx and
    // whose next commands got 501s.
    let e = "suricata-verify/tests/smtp-errors/smtperr.pcap";
    assert_eq!(verdict_of(e, "10.6.8.101:49448"), "cut");
    assert_eq!(verdict_of(e, "10.7.29.101:49740"), "rejected");
}

#[test]
fn the_report_names_the_deciding_reply_and_the_addresses() {
    let r = report("arkime/tests/pcap/smtp-rcpt-553.pcap");
    let d = &r.diagnostics["smtp"];
    assert_eq!(d["sessions"], 1);
    assert_eq!(d["verdicts"]["rejected"], 1);
    let p = &d["problems"][0];
    assert_eq!(p["reply"]["code"], 553);
    assert_eq!(p["mail_from"], "12345678@aol.com");
    assert_eq!(p["rcpt"][0], "123456@example");
    let s = &smtp_flows(&r)[0].findings["smtp"];
    assert_eq!(s["transactions"][0]["rcpt"][0]["code"], 553);
    assert_eq!(s["commands"]["RCPT"], 1);
    assert_eq!(s["banner"]["code"], 220);
}
