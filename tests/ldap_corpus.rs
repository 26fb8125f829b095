//! Real LDAP captures against tshark: per file, exflow's operations and (operation, result code)
//! counts equal tshark's `ldap.protocolOp` / `ldap.resultCode` (tests/data/tshark_ldap.tsv, made
//! by tests/data/tshark_ldap.sh).

use std::collections::BTreeMap;

use exflow::analyze::{analyze_files, Completeness, Config};
use exflow::output::Report;
use exflow::signal::ldap::op_name;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn report(file: &str) -> Report {
    let (a, done) = analyze_files(
        &[format!("{DATA}/corpus/{file}")],
        Config::default(),
        |_, _, _, _| {},
    );
    assert_eq!(done, Completeness::Complete, "{file}");
    Report::new(&a)
}

#[test]
fn operations_and_results_equal_tshark() {
    let text = std::fs::read_to_string(format!("{DATA}/tshark_ldap.tsv")).unwrap();
    let mut files = 0;
    let mut mismatches = Vec::new();
    for l in text.lines().skip(1) {
        let c: Vec<&str> = l.split('\t').collect();
        let want_ops: BTreeMap<String, u64> = c[1]
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once(':').unwrap();
                (op_name(k.parse().unwrap()).to_string(), v.parse().unwrap())
            })
            .collect();
        let want_results: BTreeMap<(String, u64), u64> = c[2]
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once(':').unwrap();
                let (op, code) = k.split_once('/').unwrap();
                (
                    (
                        op_name(op.parse().unwrap()).to_string(),
                        code.parse().unwrap(),
                    ),
                    v.parse().unwrap(),
                )
            })
            .collect();
        let r = report(c[0]);
        let d = &r.diagnostics["ldap"];
        let ops: BTreeMap<String, u64> = d["operations"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        let results: BTreeMap<(String, u64), u64> = d["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    (
                        x["op"].as_str().unwrap().to_string(),
                        x["code"].as_u64().unwrap(),
                    ),
                    x["count"].as_u64().unwrap(),
                )
            })
            .collect();
        if ops != want_ops || results != want_results {
            mismatches.push(format!(
                "{}: exflow {ops:?} {results:?}, tshark {want_ops:?} {want_results:?}",
                c[0]
            ));
        }
        files += 1;
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(files >= 5, "{files} files compared");
}

#[test]
fn refused_binds_are_listed_with_the_server_and_its_message() {
    let r = report("zeek/Traces/ldap/ldap_invalid_credentials.pcap");
    let p = &r.diagnostics["ldap"]["problems"];
    assert_eq!(p.as_array().map(Vec::len), Some(1), "{p}");
    assert_eq!(p[0]["op"], "bindResponse");
    assert_eq!(p[0]["name"], "invalidCredentials");
    assert_eq!(
        (p[0]["code"].as_u64(), p[0]["count"].as_u64()),
        (Some(49), Some(12))
    );
    assert!(
        p[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{p}"
    );
    // StartTLS: the extended operation is decoded, then the rest is TLS.
    let r = report("wireshark-wiki/SampleCaptures/ldap-ssl.pcapng");
    assert_eq!(r.diagnostics["ldap"]["tls_flows"], 1);
}
