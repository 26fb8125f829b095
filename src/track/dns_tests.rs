//! The DNS tracker on built flows: matching, retransmissions, unanswered queries, TC then TCP,
//! several messages per TCP segment, caps and bad messages.

use super::dns_diag::DnsDiag;
use super::tests::{ep, pkt, Run};
use super::SECOND;
use crate::packet::tcp_flags::{ACK, PSH, SYN};
use crate::packet::{Nanos, Packet, Proto};
use crate::synth::app::{dns_query, dns_response, DnsAnswer};

const C: &str = "10.1.0.5:1055";
const S: &str = "10.1.0.53:53";

fn udp<'a>(ts: Nanos, src: &str, dst: &str, payload: &'a [u8]) -> Packet<'a> {
    Packet {
        proto: Proto::Udp,
        tcp_flags: 0,
        seq: 0,
        src: ep(src),
        dst: ep(dst),
        ..pkt(ts, src, dst, 0, 0, payload)
    }
}

fn diag(r: &Run) -> DnsDiag {
    r.diagnostics
        .get("dns")
        .and_then(|d| d.as_any().downcast_ref::<DnsDiag>())
        .cloned()
        .unwrap_or_default()
}

fn findings(r: &Run) -> Vec<serde_json::Value> {
    r.ended
        .iter()
        .flat_map(|(_, f)| {
            f.iter()
                .filter(|(k, _)| *k == "dns")
                .map(|(_, v)| v.clone())
        })
        .collect()
}

#[test]
fn queries_match_responses_and_retransmissions_are_one_transaction() {
    let mut r = Run::builtin();
    let q = dns_query(7, "tailspin.example", 15);
    r.feed(&udp(0, C, S, &q));
    r.feed(&udp(SECOND, C, S, &q));
    r.feed(&udp(
        SECOND + 20_000_000,
        S,
        C,
        &dns_response(7, "tailspin.example", 15, 3, &[], 60),
    ));
    r.feed(&udp(
        2 * SECOND,
        C,
        S,
        &dns_query(8, "mail.corp.example", 1),
    ));
    let a = dns_response(
        9,
        "corp.example",
        15,
        0,
        &[DnsAnswer::Mx(10, "mail.corp.example")],
        60,
    );
    r.feed(&udp(3 * SECOND, C, S, &dns_query(9, "corp.example", 15)));
    r.feed(&udp(3 * SECOND + 1_000_000, S, C, &a));
    r.finish();
    let d = diag(&r);
    assert_eq!((d.queries, d.responses, d.unanswered), (4, 2, 1));
    assert_eq!(d.qtypes.get("MX"), Some(&3));
    assert_eq!(d.qtypes.get("A"), Some(&1));
    assert_eq!(d.rcodes.get("NXDOMAIN"), Some(&1));
    assert_eq!(d.rcodes.get("NOERROR"), Some(&1));
    let outcomes: Vec<(&str, &str, &str, u64)> = d
        .problems
        .iter()
        .map(|(k, p)| {
            (
                k.name.as_str(),
                k.qtype.as_str(),
                k.outcome.as_str(),
                p.count,
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("mail.corp.example", "A", "unanswered", 1),
            ("tailspin.example", "MX", "NXDOMAIN", 1)
        ]
    );
    let f = findings(&r);
    let tx = &f[0]["transactions"];
    assert_eq!(tx[0]["queries"], 2, "{tx}");
    assert_eq!(tx[0]["rcode"], "NXDOMAIN");
    assert_eq!(tx[0]["rtt_ms"], 1020.0, "from the first query");
    assert_eq!(tx[1]["rcode"], serde_json::Value::Null);
    assert_eq!(
        (tx[0]["answered"].as_bool(), tx[1]["answered"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(tx[0]["first_ts"].as_f64().is_some(), "{tx}");
    assert_eq!(tx[2]["answers"], 1);
}

#[test]
fn a_one_way_query_is_unanswered() {
    let mut r = Run::builtin();
    r.feed(&udp(
        0,
        C,
        S,
        &dns_query(1, "_ldap._tcp.dc._msdcs.corp.example", 33),
    ));
    r.finish();
    let d = diag(&r);
    assert_eq!((d.queries, d.unanswered), (1, 1));
    assert_eq!(d.qtypes.get("SRV"), Some(&1));
}

#[test]
fn a_truncated_answer_expects_the_tcp_retry_and_tcp_carries_several_messages() {
    let mut r = Run::builtin();
    r.feed(&udp(0, C, S, &dns_query(3, "big.example", 16)));
    let mut tc = dns_response(3, "big.example", 16, 0, &[], 60);
    tc[2] |= 0x02; // TC
    r.feed(&udp(1_000_000, S, C, &tc));
    assert_eq!(
        r.trackers.shared.expect.list.len(),
        1,
        "the TCP retry is expected"
    );
    let (tc_c, tc_s) = ("10.1.0.5:1056", "10.1.0.53:53");
    r.feed(&pkt(2_000_000, tc_c, tc_s, SYN, 99, b""));
    r.feed(&pkt(2_100_000, tc_s, tc_c, SYN | ACK, 499, b""));
    let mut stream = Vec::new();
    for id in [3u16, 4] {
        let q = dns_query(id, "big.example", 16);
        stream.extend((q.len() as u16).to_be_bytes());
        stream.extend(q);
    }
    // Two queries in one segment; the answer split over two.
    r.feed(&pkt(2_200_000, tc_c, tc_s, ACK | PSH, 100, &stream));
    let a = dns_response(3, "big.example", 16, 0, &[], 60);
    let mut ans = (a.len() as u16).to_be_bytes().to_vec();
    ans.extend(a);
    r.feed(&pkt(2_300_000, tc_s, tc_c, ACK | PSH, 500, &ans[..5]));
    r.feed(&pkt(2_400_000, tc_s, tc_c, ACK | PSH, 505, &ans[5..]));
    r.finish();
    let tcp = r.ended.iter().find(|(f, _)| f.client == ep(tc_c)).unwrap();
    assert!(
        tcp.0.class.followup_of().is_some(),
        "the retry fulfils the TC expectation"
    );
    let d = diag(&r);
    assert_eq!((d.queries, d.responses, d.unanswered), (3, 2, 1));
    let sig = r.trackers.signalling();
    assert_eq!(sig.decoded("dns", "truncated"), 1);
}

#[test]
fn the_caps_are_configurable() {
    let mut r = Run::with_limits(super::Limits {
        problems: 3,
        per_flow: 4,
    });
    for id in 0..10u16 {
        r.feed(&udp(
            Nanos::from(id),
            C,
            S,
            &dns_query(id, &format!("h{id}.example"), 1),
        ));
    }
    r.finish();
    let d = diag(&r);
    assert_eq!((d.unanswered, d.transactions_not_listed), (10, 6));
    assert_eq!((d.problems.len(), d.problems_not_listed), (3, 1));
}

#[test]
fn bad_messages_are_counted_and_the_table_is_capped() {
    let mut r = Run::builtin();
    let lp = [0u8, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1];
    r.feed(&udp(0, C, S, &lp));
    r.feed(&udp(
        1,
        C,
        S,
        &[0u8, 1, 0, 0, 0, 9, 0, 9, 0, 0, 0, 0, 3, b'a'],
    ));
    r.feed(&udp(2, C, S, b"\x00"));
    for id in 0..40u16 {
        r.feed(&udp(
            3 + Nanos::from(id),
            C,
            S,
            &dns_query(id, &format!("h{id}.example"), 1),
        ));
    }
    r.finish();
    let sig = r.trackers.signalling();
    assert_eq!(sig.tracker("dns").unwrap().errors.get("undecodable"), 3);
    assert_eq!(
        sig.tracker("dns").unwrap().errors.get("transactions_cap"),
        8
    );
    let d = diag(&r);
    assert_eq!((d.unanswered, d.transactions_not_listed), (40, 8));
    assert_eq!(
        findings(&r)[0]["transactions"].as_array().map(Vec::len),
        Some(32)
    );
}

/// A name is kept in place up to `INLINE_NAME` bytes and on the heap past it: names on either
/// side of that bound, and the longest a name can be, match their answers and are reported
/// whole, and names that differ only past the bound are not taken for each other.
#[test]
fn names_kept_in_place_or_not_match_and_report_whole() {
    use super::dns::INLINE_NAME;
    // Labels of up to 63 bytes, dot-separated, to exactly `len` bytes.
    let name = |len: usize, last: char| {
        let mut s = String::new();
        while s.len() < len {
            if !s.is_empty() {
                s.push('.');
            }
            let take = (len - s.len()).min(63);
            s.extend(std::iter::repeat_n('a', take.saturating_sub(1)));
            s.push(last);
        }
        assert_eq!(s.len(), len);
        s
    };
    let names = [
        name(INLINE_NAME - 1, 'x'),
        name(INLINE_NAME, 'x'),
        name(INLINE_NAME + 1, 'x'),
        name(INLINE_NAME + 1, 'y'),
        name(253, 'x'),
    ];
    let mut r = Run::builtin();
    for (i, n) in names.iter().enumerate() {
        let id = 40 + i as u16;
        let ts = i as Nanos * SECOND;
        r.feed(&udp(ts, C, S, &dns_query(id, n, 1)));
        if i == 3 {
            // A failed answer naming the question before, which shares this one's first
            // `INLINE_NAME` bytes, with this question's id: it is not this question's answer.
            r.feed(&udp(
                ts + 500_000,
                S,
                C,
                &dns_response(id, &names[2], 1, 3, &[], 60),
            ));
        }
        // Every other question fails, so that its name is listed as a problem.
        let rcode = if i % 2 == 0 { 3 } else { 0 };
        r.feed(&udp(
            ts + 1_000_000,
            S,
            C,
            &dns_response(id, n, 1, rcode, &[], 60),
        ));
    }
    r.finish();
    let d = diag(&r);
    assert_eq!((d.queries, d.responses, d.unanswered), (5, 6, 0));
    let listed: Vec<(&str, &str)> = d
        .problems
        .keys()
        .map(|k| (k.name.as_str(), k.outcome.as_str()))
        .collect();
    let mut want = vec![
        (names[0].as_str(), "NXDOMAIN"),
        (names[2].as_str(), "NXDOMAIN"),
        (names[4].as_str(), "NXDOMAIN"),
    ];
    want.sort();
    assert_eq!(listed, want);
    let f = findings(&r);
    let tx = f[0]["transactions"].as_array().expect("transactions");
    let got: Vec<(&str, bool)> = tx
        .iter()
        .map(|t| (t["name"].as_str().unwrap_or(""), t["answered"] == true))
        .collect();
    let want: Vec<(&str, bool)> = names.iter().map(|n| (n.as_str(), true)).collect();
    assert_eq!(got, want);
    assert_eq!(tx[3]["rcode"], "NOERROR", "{}", tx[3]);
}

/// A flow counts at most `MAX_QTYPES` distinct query types: a ninth and tenth are counted as
/// `qtypes_cap`, and types counted already go on counting past the cap.
#[test]
fn query_types_past_the_cap_are_counted_as_such() {
    let mut r = Run::builtin();
    let types = [1u16, 2, 5, 6, 12, 15, 16, 28, 33, 255];
    for (id, &t) in types.iter().enumerate() {
        let id = u16::try_from(id).unwrap();
        r.feed(&udp(
            Nanos::from(id),
            C,
            S,
            &dns_query(id, "cap.example", t),
        ));
    }
    // Two more of a type counted before the cap, one more of a type past it.
    r.feed(&udp(20, C, S, &dns_query(20, "cap.example", 1)));
    r.feed(&udp(21, C, S, &dns_query(21, "cap.example", 1)));
    r.feed(&udp(22, C, S, &dns_query(22, "cap.example", 255)));
    r.finish();
    let sig = r.trackers.signalling();
    assert_eq!(sig.tracker("dns").unwrap().errors.get("qtypes_cap"), 3);
    let d = diag(&r);
    assert_eq!(d.queries, 13);
    assert_eq!(d.qtypes.len(), super::dns::MAX_QTYPES);
    assert_eq!(d.qtypes.get("A"), Some(&3));
    assert_eq!(d.qtypes.values().sum::<u64>(), 10);
    assert!(!d.qtypes.contains_key("SRV") && !d.qtypes.contains_key("ANY"));
}
