//! The LDAP tracker on built flows: several messages per segment, one split over segments,
//! failed binds, SASL-wrapped buffers, StartTLS, and lengths beyond the buffer.

use super::ldap_diag::LdapDiag;
use super::tests::{pkt, Run};
use crate::packet::tcp_flags::{ACK, FIN, PSH, SYN};

const C: &str = "10.3.0.9:1500";
const S: &str = "10.3.0.3:3268";

/// An LDAPMessage: id, APPLICATION `op` (constructed) with `body`.
fn msg(id: u8, op: u8, body: &[u8]) -> Vec<u8> {
    let mut inner = vec![0x02, 1, id, 0x60 | op, body.len() as u8];
    inner.extend(body);
    let mut m = vec![0x30, inner.len() as u8];
    m.extend(inner);
    m
}

fn result(code: u8, text: &[u8]) -> Vec<u8> {
    let mut b = vec![0x0a, 1, code, 0x04, 0, 0x04, text.len() as u8];
    b.extend(text);
    b
}

/// Runs one connection; returns the flow's `ldap` object and the run's diagnostics.
fn run(segments: &[(bool, Vec<u8>)]) -> (serde_json::Value, LdapDiag, Run) {
    let mut r = Run::builtin();
    let (mut cs, mut ss) = (100u32, 900u32);
    r.feed(&pkt(0, C, S, SYN, cs - 1, b""));
    r.feed(&pkt(1, S, C, SYN | ACK, ss - 1, b""));
    for (i, (to_server, b)) in segments.iter().enumerate() {
        let ts = 10 + i as i64;
        if *to_server {
            r.feed(&pkt(ts, C, S, ACK | PSH, cs, b));
            cs = cs.wrapping_add(b.len() as u32);
        } else {
            r.feed(&pkt(ts, S, C, ACK | PSH, ss, b));
            ss = ss.wrapping_add(b.len() as u32);
        }
    }
    r.feed(&pkt(100, C, S, ACK | FIN, cs, b""));
    r.finish();
    let f = r
        .ended
        .iter()
        .find_map(|(_, f)| f.iter().find(|(k, _)| *k == "ldap").map(|(_, v)| v.clone()))
        .unwrap_or_default();
    let d = r
        .diagnostics
        .get("ldap")
        .and_then(|d| d.as_any().downcast_ref::<LdapDiag>())
        .cloned()
        .unwrap_or_default();
    (f, d, r)
}

#[test]
fn several_messages_per_segment_and_one_split_over_segments() {
    let bind = msg(1, 0, &[0x02, 1, 3, 0x04, 0, 0x80, 3, b'p', b'w', b'd']);
    let search = msg(2, 3, &[0x04, 0]);
    let mut both = bind.clone();
    both.extend(&search);
    let denied = msg(1, 1, &result(49, b"80090308: LdapErr: DSID-0C09030B"));
    let mut replies = denied.clone();
    replies.extend(msg(2, 4, &[0x04, 0]));
    replies.extend(msg(2, 5, &result(4, b"")));
    let (a, b) = replies.split_at(denied.len() + 3);
    let (f, d, _) = run(&[(true, both), (false, a.to_vec()), (false, b.to_vec())]);
    assert_eq!(
        f["operations"],
        serde_json::json!({"bindRequest": 1, "bindResponse": 1, "searchRequest": 1,
            "searchResEntry": 1, "searchResDone": 1})
    );
    assert_eq!(f["results"][0]["name"], "invalidCredentials");
    assert_eq!(
        f["results"][0]["message"],
        "80090308: LdapErr: DSID-0C09030B"
    );
    assert_eq!(f["results"][1]["name"], "sizeLimitExceeded");
    assert_eq!(d.results.get(&(1, 49)), Some(&1));
    let p: Vec<_> = d.problems.keys().cloned().collect();
    assert_eq!(p, [(1, 49, S.to_string()), (5, 4, S.to_string())]);
}

#[test]
fn sasl_buffers_and_tls_are_counted_not_decoded() {
    let mut wrapped = vec![0, 0, 0, 6];
    wrapped.extend([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]);
    let (f, d, r) = run(&[(true, wrapped.clone()), (false, wrapped)]);
    assert_eq!(f["sasl_wrapped"], 2);
    assert_eq!(d.sasl_wrapped, 2);
    assert!(d.operations.is_empty());
    assert_eq!(r.trackers.signalling().decoded("ldap", "sasl_wrapped"), 2);
    let (f, _, _) = run(&[
        (true, vec![0x16, 3, 1, 0, 2, 1, 0]),
        (false, vec![0x30, 3, 2, 1]),
    ]);
    assert_eq!(
        (f["tls"].as_bool(), f["results"].as_array().map(Vec::len)),
        (Some(true), Some(0))
    );
}

#[test]
fn lengths_beyond_the_buffer_and_garbage_are_counted() {
    let mut bad = vec![0x30, 0x84, 0x7f, 0xff, 0xff, 0xff];
    bad.extend(b"garbage");
    let undecodable = vec![0x30, 3, 0x04, 1, 1];
    let (f, _, r) = run(&[(true, b"hello".to_vec()), (true, undecodable), (false, bad)]);
    let s = r.trackers.signalling();
    let t = s.tracker("ldap").unwrap();
    assert_eq!(t.errors.get("undecodable"), 1);
    assert!(f["operations"].as_object().is_some_and(|o| o.is_empty()));
}

#[test]
fn a_name_error_keeps_its_matched_dn() {
    let search = msg(2, 3, &[0x04, 0]);
    let dn = b"DC=corp,DC=example";
    let mut body = vec![0x0a, 1, 32, 0x04, dn.len() as u8];
    body.extend(dn);
    body.extend([0x04, 8]);
    body.extend(b"0000208D");
    let done = msg(2, 5, &body);
    let (f, _, _) = run(&[(true, search), (false, done)]);
    let r = &f["results"][0];
    assert_eq!(r["name"], "noSuchObject", "{f}");
    assert_eq!(r["matched_dn"], "DC=corp,DC=example");
    assert_eq!(r["message"], "0000208D");
}
