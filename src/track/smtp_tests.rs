//! The SMTP tracker on built flows: one test per verdict, pipelining, replies split over
//! segments, Exchange-to-Exchange verbs and binary chunks, and bad input.

use super::smtp_diag::SmtpDiag;
use super::tests::{pkt, Run};
use super::SECOND;
use crate::packet::tcp_flags::{ACK, FIN, PSH, RST, SYN};

const C: &str = "10.1.0.5:1040";
const S: &str = "10.2.0.2:25";

/// How the built connection ends.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Fin,
    Rst,
    /// The capture stops.
    Nothing,
}

/// Runs one connection: handshake, then each `(to_server, bytes)` segment, then `end`. Returns
/// the flow's `smtp` object and the run's SMTP diagnostics.
fn session(segments: &[(bool, &[u8])], end: End) -> (serde_json::Value, SmtpDiag) {
    let mut r = Run::builtin();
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    r.feed(&pkt(0, C, S, SYN, cseq - 1, b""));
    r.feed(&pkt(1, S, C, SYN | ACK, sseq - 1, b""));
    let mut ts = 2;
    for (to_server, bytes) in segments {
        if *to_server {
            r.feed(&pkt(ts, C, S, ACK | PSH, cseq, bytes));
            cseq = cseq.wrapping_add(bytes.len() as u32);
        } else {
            r.feed(&pkt(ts, S, C, ACK | PSH, sseq, bytes));
            sseq = sseq.wrapping_add(bytes.len() as u32);
        }
        ts += 1000;
    }
    match end {
        End::Fin => {
            r.feed(&pkt(ts, C, S, ACK | FIN, cseq, b""));
            r.feed(&pkt(ts + 1, S, C, ACK | FIN, sseq, b""));
        }
        End::Rst => {
            r.feed(&pkt(ts, S, C, RST, sseq, b""));
        }
        End::Nothing => {}
    }
    r.finish();
    let smtp = r
        .ended
        .iter()
        .find_map(|(_, f)| f.iter().find(|(k, _)| *k == "smtp").map(|(_, v)| v.clone()))
        .unwrap_or_default();
    let d = r
        .diagnostics
        .get("smtp")
        .and_then(|d| d.as_any().downcast_ref::<SmtpDiag>())
        .cloned()
        .unwrap_or_default();
    (smtp, d)
}

const BANNER: &[u8] = b"220 mail.example Microsoft ESMTP MAIL Service ready\r\n";
const EHLO_REPLY: &[u8] = b"250-mail.example Hello [10.1.0.5]\r\n250-PIPELINING\r\n250-X-EXPS GSSAPI NTLM\r\n250-XEXCH50\r\n250-STARTTLS\r\n250 OK\r\n";

fn verdict(segments: &[(bool, &[u8])], end: End) -> String {
    session(segments, end).0["verdict"]
        .as_str()
        .unwrap_or("none")
        .to_string()
}

fn head() -> Vec<(bool, &'static [u8])> {
    vec![
        (false, BANNER),
        (true, b"EHLO client.example\r\n"),
        (false, EHLO_REPLY),
    ]
}

fn with(extra: &[(bool, &'static [u8])]) -> Vec<(bool, &'static [u8])> {
    let mut v = head();
    v.extend_from_slice(extra);
    v
}

#[test]
fn exchange_to_exchange_delivery_skips_bodies_and_blobs() {
    let (s, d) = session(
        &with(&[
            (true, b"X-EXPS GSSAPI\r\n"),
            (false, b"334 <token>\r\n"),
            (true, b"YIIFzgYGKwYBBQUCoIIFwjCC\r\n"),
            (false, b"235 2.7.0 X-EXPS authentication successful\r\n"),
            (
                true,
                b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n",
            ),
            (false, b"250 2.1.0 Sender OK\r\n250 2.1.5 b@y.example\r\n"),
            (true, b"XEXCH50 12 2\r\n"),
            (false, b"354 Send binary data\r\n"),
            // The blob looks like a command: it must be skipped by length.
            (true, b"QUIT\r\nRSET\r\n"),
            (false, b"250 2.0.0 XEXCH50 OK\r\n"),
            (true, b"DATA\r\n"),
            (false, b"354 Start mail input\r\n"),
            (true, b"Subject: hi\r\n\r\nRSET\r\n..dot\r\n.\r\n"),
            (false, b"250 2.6.0 Queued mail for delivery\r\n"),
            (true, b"X-LINK2STATE LAST CHUNK=abc\r\nQUIT\r\n"),
            (false, b"250 X-LINK2STATE OK\r\n221 2.0.0 closing\r\n"),
        ]),
        End::Fin,
    );
    assert_eq!(s["verdict"], "delivered", "{s}");
    assert_eq!(
        s["commands"],
        serde_json::json!({"EHLO": 1, "MAIL": 1, "RCPT": 1, "DATA": 1, "QUIT": 1,
            "X-EXPS": 1, "XEXCH50": 1, "X-LINK2STATE": 1})
    );
    assert_eq!(s["replies"]["250"], 6);
    assert_eq!(s["replies"]["354"], 2);
    assert_eq!(s["transactions"][0]["data_reply"]["code"], 250);
    assert_eq!(s["transactions"][0]["outcome"], "delivered");
    assert_eq!(s["helo"], "client.example");
    assert_eq!(s["extensions"][1], "X-EXPS GSSAPI NTLM");
    assert_eq!(s["starttls"]["offered"], true);
    assert_eq!(s["last_command"], "QUIT");
    assert_eq!(s["auth_reply"]["code"], 235);
    assert_eq!(s["auth_reply"]["enhanced"], "2.7.0");
    assert_eq!(s["reply"]["code"], 221, "delivered: the last reply");
    // The last reply, its text written over longer ones before it.
    assert_eq!(
        s["last_reply"],
        serde_json::json!({"code": 221, "text": "2.0.0 closing", "enhanced": "2.0.0"})
    );
    assert_eq!(d.sessions, 1);
    assert!(d.problems.is_empty());
    assert_eq!(d.extensions.get("XEXCH50"), Some(&1));
}

#[test]
fn pipelined_commands_match_replies_in_order() {
    let (s, d) = session(
        &with(&[
            (true, b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@z.example>\r\nDATA\r\n"),
            (false, b"250 OK\r\n250 OK\r\n550 5.7.1 Unable to relay for c@z.example\r\n354 go\r\n"),
            (true, b"body\r\n.\r\nQUIT\r\n"),
            (false, b"250 Queued\r\n221 bye\r\n"),
        ]),
        End::Fin,
    );
    assert_eq!(s["verdict"], "rejected");
    let rcpt = &s["transactions"][0]["rcpt"];
    assert_eq!(
        (rcpt[0]["code"].as_u64(), rcpt[1]["code"].as_u64()),
        (Some(250), Some(550))
    );
    assert_eq!(rcpt[1]["to"], "c@z.example");
    assert_eq!(s["reply"]["code"], 550, "the reply that decided: {s}");
    assert_eq!(s["reply"]["enhanced"], "5.7.1");
    assert_eq!(s["auth_reply"], serde_json::Value::Null);
    let p = &d.problems[0];
    assert_eq!(
        p.reply.as_ref().map(|r| r.line()),
        Some("550 5.7.1 Unable to relay for c@z.example".to_string())
    );
    assert_eq!(p.rcpt, ["b@y.example", "c@z.example"]);
}

#[test]
fn a_reply_split_over_segments_is_one_reply() {
    let (s, _) = session(
        &[
            (false, b"220 ready\r\n"),
            (true, b"EHLO c\r\n"),
            (false, b"250-mail Hello\r\n250-PIPE"),
            (false, b"LINING\r\n25"),
            (false, b"0 OK\r\n"),
            (true, b"QUIT\r\n"),
            (false, b"221 bye\r\n"),
        ],
        End::Fin,
    );
    assert_eq!(
        s["replies"],
        serde_json::json!({"220": 1, "250": 1, "221": 1})
    );
    assert_eq!(s["extensions"], serde_json::json!(["PIPELINING", "OK"]));
    // "221 bye" has no enhanced status code.
    assert!(s["last_reply"].get("enhanced").is_none(), "{s}");
    assert_eq!(s["verdict"], "no_mail");
}

#[test]
fn each_verdict_from_its_rule() {
    let relay: &[(bool, &[u8])] = &[
        (true, b"MAIL FROM:<a@x>\r\n"),
        (false, b"250 OK\r\n"),
        (true, b"RCPT TO:<b@y>\r\n"),
        (false, b"550 5.7.1 Unable to relay\r\n"),
        (true, b"QUIT\r\n"),
        (false, b"221 bye\r\n"),
    ];
    assert_eq!(verdict(&with(relay), End::Fin), "rejected");
    let grey: &[(bool, &[u8])] = &[
        (true, b"MAIL FROM:<a@x>\r\n"),
        (false, b"250 OK\r\n"),
        (true, b"RCPT TO:<b@y>\r\n"),
        (false, b"451 4.7.1 Greylisted, try again later\r\n"),
        (true, b"QUIT\r\n"),
        (false, b"221 bye\r\n"),
    ];
    assert_eq!(verdict(&with(grey), End::Fin), "deferred");
    assert_eq!(
        verdict(&[(false, b"554 5.3.2 Service not available\r\n")], End::Fin),
        "greeting_refused"
    );
    assert_eq!(verdict(&[], End::Fin), "no_banner");
    let auth: &[(bool, &[u8])] = &[
        (true, b"AUTH LOGIN\r\n"),
        (false, b"334 VXNlcm5hbWU6\r\n"),
        (true, b"dXNlcg==\r\n"),
        (false, b"334 UGFzc3dvcmQ6\r\n"),
        (true, b"cGFzcw==\r\n"),
        (false, b"535 5.7.3 Authentication unsuccessful\r\n"),
        (true, b"QUIT\r\n"),
        (false, b"221 bye\r\n"),
    ];
    let (s, _) = session(&with(auth), End::Fin);
    assert_eq!(s["verdict"], "auth_failed");
    assert_eq!(s["auth_reply"]["code"], 535);
    assert_eq!(s["reply"]["enhanced"], "5.7.3");
    assert_eq!(
        s["commands"],
        serde_json::json!({"EHLO": 1, "AUTH": 1, "QUIT": 1}),
        "credentials are not commands"
    );
    let tls: &[(bool, &[u8])] = &[
        (true, b"STARTTLS\r\n"),
        (false, b"220 2.0.0 Ready to start TLS\r\n"),
        (true, &[0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0]),
    ];
    assert_eq!(verdict(&with(tls), End::Rst), "tls_failed");
    let mut ok = with(tls);
    ok.push((false, &[0x16, 3, 1, 0, 5, 2, 0, 0, 1, 0]));
    let (s, _) = session(&ok, End::Fin);
    assert_eq!(
        (s["verdict"].as_str(), s["starttls"]["tls_seen"].as_bool()),
        (Some("tls"), Some(true))
    );
    let data: &[(bool, &[u8])] = &[
        (true, b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
        (false, b"250 OK\r\n250 OK\r\n354 go\r\n"),
        (true, b"Subject: half a message\r\n"),
    ];
    assert_eq!(verdict(&with(data), End::Rst), "cut");
    assert_eq!(verdict(&with(data), End::Nothing), "incomplete");
    let quit: &[(bool, &[u8])] = &[(true, b"QUIT\r\n"), (false, b"221 bye\r\n")];
    assert_eq!(verdict(&with(quit), End::Fin), "no_mail");
}

#[test]
fn bdat_chunks_are_skipped_by_length() {
    let (s, _) = session(
        &with(&[
            (
                true,
                b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 12 LAST\r\nQUIT\r\nRSET\r\n",
            ),
            (false, b"250 OK\r\n250 OK\r\n250 2.6.0 Queued\r\n"),
            (true, b"QUIT\r\n"),
            (false, b"221 bye\r\n"),
        ]),
        End::Fin,
    );
    assert_eq!(s["verdict"], "delivered");
    assert_eq!(s["commands"]["QUIT"], 1);
    assert!(s["commands"].get("RSET").is_none(), "{s}");
}

#[test]
fn one_direction_only_is_one_sided() {
    let mut r = Run::builtin();
    r.feed(&pkt(0, C, S, ACK | PSH, 1, b"MAIL FROM:<a@x>\r\n"));
    r.feed(&pkt(SECOND, C, S, ACK | PSH, 18, b"RCPT TO:<b@y>\r\n"));
    r.finish();
    let v = r.ended[0]
        .1
        .iter()
        .find(|(k, _)| *k == "smtp")
        .map(|(_, v)| v["verdict"].clone());
    assert_eq!(v, Some(serde_json::json!("one_sided")));
}

#[test]
fn garbage_and_endless_lines_are_counted_not_kept() {
    let garbage: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 251) as u8).collect();
    let endless = vec![b'A'; 100_000];
    let mut segs = vec![(false, BANNER)];
    segs.push((true, garbage.as_slice()));
    segs.push((true, endless.as_slice()));
    segs.push((true, b"\r\nQUIT\r\n"));
    segs.push((false, b"no code here\r\n221 bye\r\n"));
    let (s, _) = session(&segs, End::Fin);
    assert_eq!(s["verdict"], "no_mail");
    assert_eq!(s["commands"]["QUIT"], 1, "{s}");
    assert_eq!(s["replies"], serde_json::json!({"220": 1, "221": 1}));
}

#[test]
fn enhanced_status_codes_are_read_only_where_rfc_3463_puts_them() {
    let r = |code, text: &str| super::smtp::Reply {
        code,
        text: text.into(),
    };
    assert_eq!(r(550, "5.7.1 Unable to relay").enhanced(), Some("5.7.1"));
    assert_eq!(r(250, "2.1.5 ok").enhanced(), Some("2.1.5"));
    // The class must be the reply's.
    assert_eq!(r(250, "5.7.1 odd").enhanced(), None);
    assert_eq!(r(550, "5.7 short").enhanced(), None);
    assert_eq!(r(550, "5.7.1.2 long").enhanced(), None);
    assert_eq!(r(550, "5.7.1234 wide").enhanced(), None);
    assert_eq!(r(550, "").enhanced(), None);
    assert_eq!(r(221, "mail.example closing").enhanced(), None);
}

/// What `text` made of every input before its printable-ASCII shortcut: the shortcut must
/// change no output.
fn text_a_character_at_a_time(b: &[u8]) -> String {
    let b = b.get(..160).unwrap_or(b);
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect()
}

#[test]
fn reply_text_is_the_same_by_the_shortcut_and_the_long_way() {
    let long = [b'x'; 200];
    let cases: [&[u8]; 9] = [
        b"",
        b"5.7.1 Unable to relay",
        b"tab\there",
        b"del\x7f",
        b"caf\xc3\xa9",
        b"bad \xff utf-8",
        b"C1 control \xc2\x85",
        &long,
        b"~ and space ",
    ];
    for b in cases {
        assert_eq!(super::smtp::text(b), text_a_character_at_a_time(b), "{b:?}");
    }
    assert_eq!(super::smtp::text(&long).len(), 160);
}

proptest::proptest! {
    #[test]
    fn reply_text_of_any_bytes_is_what_the_long_way_makes(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        proptest::prop_assert_eq!(super::smtp::text(&b), text_a_character_at_a_time(&b));
    }
}
