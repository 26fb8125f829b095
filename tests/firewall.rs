//! The firewall report on built captures: RVP callbacks dropped and working, MAPI through the
//! endpoint mapper blocked by an ICMP admin-prohibited router, SMTP unanswered, refused, blocked
//! and partly blocked, and unclassified traffic that makes no rule. JSON is asserted field by
//! field after a round trip; the nft ruleset goes through `nft -c -f` (required when
//! `EXFLOW_REQUIRE_NFT=1`); the netsh lines are checked against the documented syntax.

mod common;
use common::hex;
use common::mapi_pcap::{EPM_BIND, MAP_REQUEST, MAP_RESPONSE};

use std::net::SocketAddr;

use exflow::analyze::{analyze_files, Completeness, Config};
use exflow::firewall::{render, FirewallOptions, FirewallReport, Rule};
use exflow::synth::{app, Dir, Scenario, TsPrecision};
use serde_json::Value;

const S: i64 = 1_000_000_000;
const T0: i64 = 1_000_000_000 * S;

fn ep(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const NSPI_LE: &str = "185accf564421a108c5908002b2f8426";
const EMSMDB_LE: &str = "00dbf1a447ca6710b31f00dd010662da";

fn emsmdb(pdu: &str) -> Vec<u8> {
    hex(&pdu.replace(NSPI_LE, EMSMDB_LE))
}

const RVP: &str = "10.0.0.10:80";

fn subscribe(sc: &mut Scenario, client: &str, at: i64, callback: &str) {
    let body = app::rvp_subscribe(
        "im.example.com",
        "/instmsg/aliases/bob",
        "http://im/alice",
        ep(callback),
        600,
    );
    let ok = app::rvp_subscribe_ok(7, 600);
    sc.tcp_session(
        ep(client),
        ep(RVP),
        at,
        &[(Dir::ToServer, &body), (Dir::ToClient, &ok)],
    );
}

fn scenario() -> Scenario {
    let mut sc = Scenario::with_seed(10);
    // RVP: one callback works, one is dropped.
    subscribe(&mut sc, "10.0.1.1:1100", T0, "10.0.1.1:3001");
    let notify = app::rvp_notify(
        ep("10.0.1.1:3001"),
        "http://im/bob",
        "http://im/alice",
        "online",
    );
    sc.tcp_session(
        ep("10.0.0.10:1500"),
        ep("10.0.1.1:3001"),
        T0 + 2 * S,
        &[(Dir::ToServer, &notify)],
    );
    subscribe(&mut sc, "10.0.1.2:1100", T0 + S, "10.0.1.2:3002");
    sc.tcp_unanswered(ep("10.0.0.10:1501"), ep("10.0.1.2:3002"), T0 + 3 * S, 2);
    // MAPI: the endpoint mapper answers, the store's port is prohibited by a router.
    let (bind, req, resp) = (hex(EPM_BIND), emsmdb(MAP_REQUEST), emsmdb(MAP_RESPONSE));
    sc.tcp_session(
        ep("192.168.0.173:1066"),
        ep("192.168.0.2:135"),
        T0 + 10 * S,
        &[
            (Dir::ToServer, &bind),
            (Dir::ToServer, &req),
            (Dir::ToClient, &resp),
        ],
    );
    sc.tcp_icmp_blocked(
        ep("192.168.0.173:1067"),
        ep("192.168.0.2:4997"),
        "192.168.0.1".parse().unwrap(),
        T0 + 11 * S,
    );
    // SMTP: unanswered, refused, blocked by ICMP, and partly blocked.
    let mx = "10.0.0.20";
    sc.tcp_unanswered(
        ep(&format!("{mx}:2001")),
        ep("192.0.2.25:25"),
        T0 + 20 * S,
        2,
    );
    sc.tcp_refused(
        ep(&format!("{mx}:2002")),
        ep("198.51.100.25:25"),
        T0 + 21 * S,
    );
    sc.tcp_icmp_blocked(
        ep(&format!("{mx}:2003")),
        ep("203.0.113.25:25"),
        "10.0.0.1".parse().unwrap(),
        T0 + 22 * S,
    );
    let mail = app::smtp_dialogue(
        "mx.example.net",
        "mail.example.com",
        "a@example.com",
        &["b@example.net"],
        "Subject: hi\r\n\r\nhello\r\n",
        None,
    );
    sc.tcp(
        ep(&format!("{mx}:2004")),
        ep("198.51.100.80:25"),
        T0 + 23 * S,
    )
    .handshake()
    .dialogue(&mail);
    sc.tcp_unanswered(
        ep(&format!("{mx}:2005")),
        ep("198.51.100.80:25"),
        T0 + 24 * S,
        1,
    );
    // 1731 audio: the call control works, the media goes one way only (its way back filtered).
    sc.tcp_session(
        ep("10.0.2.1:1090"),
        ep("10.0.0.30:1731"),
        T0 + 40 * S,
        &[(Dir::ToServer, b"\x01call"), (Dir::ToClient, b"\x02ok")],
    );
    let rtp: Vec<Vec<u8>> = (0..20u16)
        .map(|i| app::rtp(i, u32::from(i) * 160, 0x1731, 0, false, &[0xff; 160]))
        .collect();
    let rtp: Vec<&[u8]> = rtp.iter().map(Vec::as_slice).collect();
    sc.udp_one_way(
        ep("10.0.2.1:5006"),
        ep("10.0.0.30:6006"),
        T0 + 41 * S,
        &rtp,
        20_000_000,
    );
    // Unclassified: a working session and an unanswered one on unknown ports.
    sc.tcp_session(
        ep("10.0.3.1:4000"),
        ep("10.0.3.2:31337"),
        T0 + 30 * S,
        &[(Dir::ToServer, b"hello"), (Dir::ToClient, b"hi")],
    );
    sc.tcp_unanswered(ep("10.0.3.1:4001"), ep("10.0.3.3:31338"), T0 + 31 * S, 1);
    sc
}

fn firewall(opt: FirewallOptions) -> FirewallReport {
    firewall_of(&mut scenario(), opt, false)
}

/// The report of a built capture: rules gathered as flows end (as `exflow firewall` does), or
/// with `from_records` from the kept flow records.
fn firewall_of(sc: &mut Scenario, opt: FirewallOptions, from_records: bool) -> FirewallReport {
    // Tests run in parallel: each writes its own file.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = common::scratch("firewall").join(format!("firewall-{n}.pcap"));
    std::fs::write(&path, sc.to_pcap(TsPrecision::Micro)).unwrap();
    let (a, done) = analyze_files(
        &[path.to_string_lossy().into_owned()],
        Config {
            keep_flows: from_records,
            firewall: (!from_records).then_some(opt),
            ..Config::default()
        },
        |_, _, _, _| {},
    );
    assert_eq!(done, Completeness::Complete);
    FirewallReport::new(&a, opt)
}

fn rule<'a>(fw: &'a FirewallReport, service: &str, dst: &str) -> &'a Rule {
    fw.rules
        .iter()
        .find(|r| r.service == service && r.dst == dst)
        .unwrap_or_else(|| panic!("no {service} rule to {dst}: {:#?}", fw.rules))
}

/// The report as JSON, parsed back.
fn json(fw: &FirewallReport) -> Value {
    let text = serde_json::to_string(fw).unwrap();
    let back: FirewallReport = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, fw);
    serde_json::from_str(&text).unwrap()
}

fn json_rule<'a>(v: &'a Value, service: &str, dst: &str) -> &'a Value {
    v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == service && r["dst"] == dst)
        .unwrap_or_else(|| panic!("no {service} rule to {dst}"))
}

#[test]
fn rules_statuses_and_evidence() {
    let fw = firewall(FirewallOptions::default());
    let v = json(&fw);
    assert_eq!(v["schema"], "exflow.firewall.v1");
    assert_eq!(v["unclassified_flows"], 2);
    assert_eq!(v["flow_records_dropped"], 0);
    assert!(v.get("aggregate").is_none());

    // RVP callback dropped: blocked, announced by the SUBSCRIBE.
    let r = json_rule(&v, "rvp_callback", "10.0.1.2");
    assert_eq!(r["proto"], "tcp");
    assert_eq!(r["src"], "10.0.0.10");
    assert_eq!(r["dst_ports"], "3002");
    assert_eq!(r["status"], "blocked");
    let ev = &r["evidence"];
    assert_eq!(ev["flows"], 1);
    assert_eq!(ev["unanswered"], 1);
    assert_eq!(ev["established"], 0);
    assert_eq!(ev["icmp_from"], serde_json::json!([]));
    assert!(ev["first_ts"].as_f64().unwrap() >= 1e9);
    let why = r["why"].as_str().unwrap();
    assert!(why.contains("Call-Back header"), "{why}");
    let advice = r["advice"].as_str().unwrap();
    assert!(
        advice.contains("allow tcp/3002 from 10.0.0.10 to 10.0.1.2"),
        "{advice}"
    );
    assert!(advice.contains("call-back port range"), "{advice}");
    // RVP callback that works.
    let r = json_rule(&v, "rvp_callback", "10.0.1.1");
    assert_eq!(r["status"], "allowed");
    assert_eq!(r["evidence"]["established"], 1);

    // MAPI through the endpoint mapper, prohibited by a router.
    let r = json_rule(&v, "mapi", "192.168.0.2");
    assert_eq!(r["src"], "192.168.0.173");
    assert_eq!(r["dst_ports"], "4997");
    assert_eq!(r["status"], "blocked");
    assert_eq!(r["evidence"]["icmp_unreachable"], 1);
    assert_eq!(
        r["evidence"]["icmp_from"],
        serde_json::json!([{"addr": "192.168.0.1", "code": 13, "admin_prohibited": true}])
    );
    let why = r["why"].as_str().unwrap();
    assert!(
        why.starts_with(
            "announced by the endpoint mapper of 192.168.0.2 for the Exchange store (MAPI)"
        ),
        "{why}"
    );
    let advice = r["advice"].as_str().unwrap();
    assert!(
        advice.contains("192.168.0.1 answered administratively prohibited"),
        "{advice}"
    );
    assert!(
        advice.contains("MSExchangeIS\\ParametersSystem\\TCP/IP Port"),
        "{advice}"
    );
    assert_eq!(json_rule(&v, "msrpc", "192.168.0.2")["status"], "allowed");

    // SMTP.
    let r = json_rule(&v, "smtp", "192.0.2.25");
    assert_eq!(
        (r["status"].as_str(), r["dst_ports"].as_str()),
        (Some("blocked"), Some("25"))
    );
    assert_eq!(r["evidence"]["unanswered"], 1);
    let r = json_rule(&v, "smtp", "198.51.100.25");
    assert_eq!(r["status"], "refused");
    assert_eq!(r["evidence"]["refused"], 1);
    assert!(r["advice"]
        .as_str()
        .unwrap()
        .starts_with("not a firewall problem"));
    let r = json_rule(&v, "smtp", "203.0.113.25");
    assert_eq!(r["status"], "blocked");
    assert_eq!(r["evidence"]["icmp_from"][0]["addr"], "10.0.0.1");
    let r = json_rule(&v, "smtp", "198.51.100.80");
    assert_eq!(r["status"], "partly_blocked");
    assert_eq!(r["evidence"]["flows"], 2);
    assert_eq!(r["evidence"]["established"], 1);
    assert_eq!(r["evidence"]["unanswered"], 1);

    // Unclassified traffic makes no rule.
    assert!(fw
        .rules
        .iter()
        .all(|r| r.service != "unclassified" && !r.dst.starts_with("10.0.3.")));

    // Order: blocked, partly blocked, refused, ..., allowed.
    let order: Vec<_> = fw.rules.iter().map(Rule::status).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert_eq!(fw.rules[0].status, "blocked");
}

#[test]
fn audio_media_going_one_way_is_blocked() {
    let fw = firewall(FirewallOptions::default());
    let r = rule(&fw, "audio_media", "10.0.0.30");
    assert_eq!(
        (r.proto.as_str(), r.src.as_str(), r.dst_ports.as_str()),
        ("udp", "10.0.2.1", "6006")
    );
    assert_eq!(r.status, "blocked");
    assert_eq!((r.evidence.flows, r.evidence.one_way), (1, 1));
    assert_eq!(
        r.why,
        "1731 audio media inferred between 10.0.2.1 and 10.0.0.30"
    );
    assert!(r.advice.contains("H.323-aware gateway"), "{}", r.advice);
    assert_eq!(rule(&fw, "audio", "10.0.0.30").status, "allowed");
}

#[test]
fn aggregated_rules_merge_hosts() {
    let fw = firewall(FirewallOptions {
        aggregate: Some(24),
        ..FirewallOptions::default()
    });
    assert_eq!(fw.aggregate.as_deref(), Some("/24"));
    let r = rule(&fw, "rvp_callback", "10.0.1.0/24");
    assert_eq!(r.src, "10.0.0.0/24");
    assert_eq!(r.dst_ports, "3001,3002");
    assert_eq!(r.status, "partly_blocked");
    assert_eq!(r.evidence.flows, 2);
}

#[test]
fn table_leads_with_what_is_blocked() {
    let fw = firewall(FirewallOptions::default());
    let mut out = Vec::new();
    render::write_table(&mut out, &fw).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().all(|l| l.len() <= 100), "{text}");
    let blocked = text.find("BLOCKED (").unwrap();
    let partly = text.find("PARTLY BLOCKED (").unwrap();
    let worked = text.find("WORKED (").unwrap();
    assert!(blocked < partly && partly < worked, "{text}");
    assert!(text.contains("2 flows on ports exflow does not know were left out"));
    assert!(!text.contains("31337"));
}

#[test]
fn nft_ruleset_passes_nft_check() {
    let fw = firewall(FirewallOptions::default());
    for include_allowed in [false, true] {
        let mut out = Vec::new();
        let emit = render::Emit {
            allowed: include_allowed,
            not_seen: false,
        };
        render::write_nft(&mut out, &fw, emit).unwrap();
        let text = String::from_utf8(out).unwrap();
        let accepts = text
            .lines()
            .filter(|l| l.contains(" accept comment "))
            .count();
        let wanted = fw
            .rules
            .iter()
            .filter(|r| {
                matches!(r.status.as_str(), "blocked" | "partly_blocked")
                    || (include_allowed && matches!(r.status.as_str(), "allowed" | "refused"))
            })
            .count();
        assert_eq!(accepts, wanted, "{text}");
        assert!(!text.contains("31337") && !text.contains("31338"), "{text}");
        if !include_allowed {
            assert!(
                !text.contains("198.51.100.25"),
                "refused has no rule: {text}"
            );
        }
        nft_check(&text);
    }
}

/// Runs `nft -c -f` on the ruleset when nft is installed (and must be with EXFLOW_REQUIRE_NFT=1).
fn nft_check(text: &str) {
    let required = std::env::var_os("EXFLOW_REQUIRE_NFT").is_some_and(|v| v == "1");
    // Tests run in parallel: each check has its own file.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = common::scratch("firewall").join(format!("ruleset-{n}.nft"));
    std::fs::write(&path, text).unwrap();
    match std::process::Command::new("nft")
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
    {
        // Without root nft cannot open its netlink socket even to check: a skip, not a failure.
        Ok(o)
            if !o.status.success()
                && !required
                && String::from_utf8_lossy(&o.stderr).contains("Operation not permitted") =>
        {
            eprintln!("skipped: nft -c needs root here")
        }
        Ok(o) => assert!(
            o.status.success(),
            "nft -c -f rejected the ruleset: {}\n{text}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) if !required => eprintln!("skipped: nft not runnable ({e})"),
        Err(e) => panic!("EXFLOW_REQUIRE_NFT=1 but nft cannot run: {e}"),
    }
}

#[test]
fn netsh_lines_follow_the_documented_syntax() {
    let fw = firewall(FirewallOptions::default());
    let mut out = Vec::new();
    render::write_netsh(&mut out, &fw, render::Emit::default()).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("@rem ")).collect();
    assert_eq!(
        lines.len(),
        fw.rules
            .iter()
            .filter(|r| matches!(r.status.as_str(), "blocked" | "partly_blocked"))
            .count()
    );
    for l in lines {
        let rest = l
            .strip_prefix("netsh advfirewall firewall add rule ")
            .unwrap_or_else(|| panic!("{l}"));
        assert!(
            !rest.contains("10.0.3.") && !rest.contains("31337"),
            "unclassified traffic has no rule: {l}"
        );
        let args = netsh_args(rest);
        let keys: Vec<&str> = args.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "name",
                "dir",
                "action",
                "protocol",
                "localip",
                "remoteip",
                "localport",
                "description"
            ],
            "{l}"
        );
        let get = |k: &str| args.iter().find(|(key, _)| key == k).unwrap().1.as_str();
        assert_eq!(get("dir"), "in");
        assert_eq!(get("action"), "allow");
        assert!(matches!(get("protocol"), "TCP" | "UDP"), "{l}");
        for ip in [get("localip"), get("remoteip")] {
            assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{l}");
        }
        for p in get("localport").split(',') {
            let ok = match p.split_once('-') {
                Some((a, b)) => a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok(),
                None => p.parse::<u16>().is_ok(),
            };
            assert!(ok, "{l}");
        }
    }
}

/// `key=value` and `key="quoted value"` pairs; a quote inside a value fails the test.
fn netsh_args(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').unwrap_or_else(|| panic!("{s}"));
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or_else(|| panic!("unterminated: {s}"));
            let next = &q[end + 1..];
            assert!(next.is_empty() || next.starts_with(' '), "{s}");
            (&q[..end], next)
        } else {
            after.split_once(' ').unwrap_or((after, ""))
        };
        out.push((key.to_string(), value.to_string()));
        rest = next.trim_start();
    }
    out
}

#[test]
fn rules_gathered_as_flows_end_equal_those_from_flow_records() {
    let mut sc = scenario();
    for aggregate in [None, Some(24)] {
        let opt = FirewallOptions {
            aggregate,
            ..FirewallOptions::default()
        };
        let ended = firewall_of(&mut sc, opt, false);
        let records = firewall_of(&mut sc, opt, true);
        assert!(ended.rules.len() >= 8, "{:#?}", ended.rules);
        assert_eq!(ended, records);
    }
}

/// The report of the capture at `path` with `threads` analysis threads (rules gathered by every
/// worker as its flows end, then merged).
fn firewall_threads(
    path: &std::path::Path,
    opt: FirewallOptions,
    threads: usize,
) -> FirewallReport {
    let config = Config {
        firewall: Some(opt),
        ..Config::default()
    };
    let (a, _) = exflow::shard::analyze_files(
        &[path.to_string_lossy().into_owned()],
        config,
        threads,
        |_, _, _, _| {},
    )
    .unwrap();
    FirewallReport::new(&a, opt)
}

/// Sharded runs gather the same rules as one thread: the built scenarios (blocked, refused and
/// working callbacks, the mapper's endpoint blocked by a router, H.323 media blocked) and every
/// capture of the corpus, with hosts and with /24 groups.
#[test]
fn sharded_runs_gather_the_rules_one_thread_gathers() {
    let dir = common::scratch("firewall");
    let mut files = Vec::new();
    for (name, mut sc) in [("scenario", scenario()), ("h323", h323_scenario())] {
        let path = dir.join(format!("{name}.pcap"));
        std::fs::write(&path, sc.to_pcap(TsPrecision::Micro)).unwrap();
        files.push(path);
    }
    files.extend(common::corpus());
    let mut diffs = Vec::new();
    let mut rules = 0;
    for f in &files {
        for aggregate in [None, Some(24)] {
            let opt = FirewallOptions {
                aggregate,
                ..FirewallOptions::default()
            };
            let one = json(&firewall_threads(f, opt, 1));
            rules += one["rules"].as_array().map_or(0, Vec::len);
            for threads in [2, 3] {
                let other = json(&firewall_threads(f, opt, threads));
                if let Some(d) = common::first_difference(&one, &other, "") {
                    diffs.push(format!(
                        "{} ({threads} threads, /{aggregate:?}): {d}",
                        f.display()
                    ));
                }
            }
        }
    }
    assert!(rules > 50, "{rules} rules in all");
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

#[test]
fn rule_budget_counts_what_it_leaves_out() {
    let opt = FirewallOptions {
        max_groups: 3,
        ..FirewallOptions::default()
    };
    let all = firewall(FirewallOptions::default());
    let fw = firewall_of(&mut scenario(), opt, false);
    assert_eq!(fw.rules.len(), 3);
    // Every flow (and untried follow-up) of a catalogued service is in a rule or counted.
    let flows = |r: &FirewallReport| r.rules.iter().map(|r| r.evidence.flows.max(1)).sum::<u64>();
    assert_eq!(flows(&fw) + fw.flows_over_rule_budget, flows(&all));
    assert!(fw.flows_over_rule_budget > 0);
    let mut out = Vec::new();
    render::write_table(&mut out, &fw).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(&format!(
            "{} flows past --max-rule-groups made no rule",
            fw.flows_over_rule_budget
        )),
        "{text}"
    );
}

/// The NetMeeting call of rtp_example.raw.gz (src/signal/h225_tests.rs, h245_tests.rs; TPKT
/// headers removed): the Connect announces H.245 at 10.1.6.18:1232, the OLCAcks the media ports.
const H225_SETUP: &str = "080277f40504038090a528086d2e6a656d6563007e00850520a8060008914a0004014006006d002e006a0065006d0065006322c00900003d1443616c6c67656e33323320706f67616373616d00000a302e39616c706861340000000a01061206b800f8fdf93ecd9ed6119ab2000476222017005d0d8007000a01038f80231100c0fef93ecd9ed6119ab2000476222017010001000100010002800100";
const H225_CONNECT: &str = "0802f7f40728074d2e4a454d45437e004c0522c0060008914a0003000a01061204d022c0000000000333313069005200f8fdf93ecd9ed6119ab2000476222017170c001100c0fef93ecd9ed6119ab20004762220170100010008800100";
const H245_OLC_CALLER: &str = "030000640c201d800b0d0001000a01038f138980";
const H245_OLC_CALLEE: &str = "0300003c0c201d800a040001000a01061207d7";
/// From the caller: its RTP 10.1.3.143:5000, RTCP :5001.
const H245_ACK_CALLER: &str = "22c0003c0280135c00000a01038f1388000a01038f1389010100";
/// From the callee: its RTP 10.1.6.18:2006, RTCP :2007.
const H245_ACK_CALLEE: &str = "22c000640480145c00000a01061207d6000a01061207d703000180";

/// An H.323 call whose signalling works and whose media to the callee is blocked: RTP answered
/// by ICMP admin-prohibited from the callee's router, RTCP unanswered.
fn h323_scenario() -> Scenario {
    let mut sc = Scenario::with_seed(323);
    let (caller, callee) = ("10.1.3.143", "10.1.6.18");
    let t = |p: &str| app::tpkt(&hex(p));
    sc.tcp_session(
        ep(&format!("{caller}:32803")),
        ep(&format!("{callee}:1720")),
        T0,
        &[
            (Dir::ToServer, &t(H225_SETUP)),
            (Dir::ToClient, &t(H225_CONNECT)),
        ],
    );
    sc.tcp_session(
        ep(&format!("{caller}:32804")),
        ep(&format!("{callee}:1232")),
        T0 + S,
        &[
            (Dir::ToServer, &t(H245_OLC_CALLER)),
            (Dir::ToClient, &t(H245_OLC_CALLEE)),
            (Dir::ToClient, &t(H245_ACK_CALLEE)),
            (Dir::ToServer, &t(H245_ACK_CALLER)),
        ],
    );
    let rtp = app::rtp(1, 160, 0x323, 0, false, &[0xff; 160]);
    let data = exflow::synth::frame::udp_frame(
        &sc.opts(),
        7,
        ep(&format!("{caller}:5000")),
        ep(&format!("{callee}:2006")),
        &rtp,
    );
    sc.push(exflow::synth::Frame {
        ts: T0 + 3 * S,
        data: data.clone(),
    });
    assert!(sc.icmp_unreachable(
        "10.1.6.1".parse().unwrap(),
        &data,
        exflow::synth::Unreachable::AdminProhibited,
        T0 + 3 * S + 1_000_000,
    ));
    sc.udp_one_way(
        ep(&format!("{caller}:5001")),
        ep(&format!("{callee}:2007")),
        T0 + 4 * S,
        &[
            b"\x81\xc8\x00\x06rtcp-sender-report-",
            b"\x81\xc8\x00\x06rtcp-sender-report-",
        ],
        S,
    );
    sc
}

#[test]
fn h323_call_with_blocked_media() {
    let fw = firewall_of(&mut h323_scenario(), FirewallOptions::default(), false);
    let v = json(&fw);
    assert_eq!(v["unclassified_flows"], 0, "{v:#}");

    let r = json_rule(&v, "h323_media", "10.1.6.18");
    assert_eq!(r["proto"], "udp");
    assert_eq!(r["src"], "10.1.3.143");
    assert_eq!(r["dst_ports"], "2006,2007");
    assert_eq!(r["status"], "blocked");
    let ev = &r["evidence"];
    assert_eq!(ev["flows"], 2);
    assert_eq!(ev["established"], 0);
    assert_eq!(ev["unanswered"], 0);
    assert_eq!(ev["refused"], 0);
    assert_eq!(ev["icmp_unreachable"], 1);
    assert_eq!(ev["one_way"], 1);
    assert_eq!(
        ev["icmp_from"],
        serde_json::json!([{"addr": "10.1.6.1", "code": 13, "admin_prohibited": true}])
    );
    assert_eq!(ev["first_ts"], 1_000_000_003.0);
    assert_eq!(ev["last_ts"], 1_000_000_005.0);
    assert_eq!(
        r["why"],
        "H.323 media (RTP/RTCP) on ports announced in the H.245 OLCAck of the call between \
         10.1.3.143 and 10.1.6.18"
    );
    let advice = r["advice"].as_str().unwrap();
    assert!(
        advice.starts_with(
            "allow udp/2006,2007 from 10.1.3.143 to 10.1.6.18 (10.1.6.1 answered administratively \
             prohibited)"
        ),
        "{advice}"
    );
    assert!(advice.contains("H.323-aware gateway"), "{advice}");
    assert!(
        advice.contains("restrict the endpoints' port range"),
        "{advice}"
    );

    // The signalling worked; the H.245 rule says where its port came from.
    assert_eq!(json_rule(&v, "h323", "10.1.6.18")["status"], "allowed");
    let h245 = json_rule(&v, "h323_h245", "10.1.6.18");
    assert_eq!(h245["status"], "allowed");
    assert_eq!(h245["dst_ports"], "1232");
    assert_eq!(h245["why"], "H.245 address in the H.225 connect");

    // The caller's own media ports were announced and nothing tried them: not_seen.
    let r = json_rule(&v, "h323_media", "10.1.3.143");
    assert_eq!(r["status"], "not_seen");
    assert_eq!(
        (r["src"].as_str(), r["dst_ports"].as_str()),
        (Some("10.1.6.18"), Some("5000,5001"))
    );
    assert_eq!(r["evidence"]["flows"], 0);
    assert_eq!(r["evidence"]["first_ts"], Value::Null);
    assert!(r["advice"]
        .as_str()
        .unwrap()
        .starts_with("announced but never tried in this capture"));

    let nft = |emit| {
        let mut out = Vec::new();
        render::write_nft(&mut out, &fw, emit).unwrap();
        String::from_utf8(out).unwrap()
    };
    let with_not_seen = nft(render::Emit {
        allowed: false,
        not_seen: true,
    });
    assert!(
        with_not_seen.contains("ip saddr 10.1.6.18 ip daddr 10.1.3.143 udp dport { 5000, 5001 }"),
        "{with_not_seen}"
    );
    nft_check(&with_not_seen);
    let text = nft(render::Emit::default());
    assert!(
        !text.contains("5000"),
        "not_seen is not emitted unless asked: {text}"
    );
    assert!(
        text.contains(
            "ip saddr 10.1.3.143 ip daddr 10.1.6.18 udp dport { 2006, 2007 } accept comment \
             \"h323_media blocked: 2 flow(s), 1 ICMP unreachable, 1 one way, ICMP code 13 from \
             10.1.6.1\""
        ),
        "{text}"
    );
    assert!(
        !text.contains("dport 1720"),
        "allowed signalling is not emitted: {text}"
    );
    nft_check(&text);
}

/// What a user catalogue says reaches comments and descriptions: quotes, backslashes, braces and
/// control characters in it must not break out of them.
#[test]
fn hostile_descriptions_are_sanitised_in_nft_and_netsh() {
    let mut cat = exflow::classify::Catalogue::builtin();
    cat.apply(
        "hostile.txt",
        "evil tcp/31337 Evil\" } ; flush ruleset ; comment \"x\\ é\u{7}",
        exflow::classify::Origin::User,
    )
    .unwrap();
    let mut sc = Scenario::with_seed(31337);
    sc.tcp_unanswered(ep("10.0.3.1:4001"), ep("10.0.3.3:31337"), T0, 1);
    let path = common::scratch("firewall").join("hostile.pcap");
    std::fs::write(&path, sc.to_pcap(TsPrecision::Micro)).unwrap();
    let (a, _) = analyze_files(
        &[path.to_string_lossy().into_owned()],
        Config {
            catalogue: cat,
            firewall: Some(FirewallOptions::default()),
            ..Config::default()
        },
        |_, _, _, _| {},
    );
    let fw = FirewallReport::new(&a, FirewallOptions::default());
    let r = rule(&fw, "evil", "10.0.3.3");
    assert_eq!(r.status, "blocked");
    assert!(
        r.why.contains('"'),
        "the raw words keep the quote: {}",
        r.why
    );

    let mut out = Vec::new();
    render::write_nft(&mut out, &fw, render::Emit::default()).unwrap();
    let text = String::from_utf8(out).unwrap();
    let accept: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" accept comment "))
        .collect();
    assert_eq!(accept.len(), 1, "{text}");
    assert_eq!(accept[0].matches('"').count(), 2, "{text}");
    assert!(!text.contains('\\') && !text.contains('\u{7}'), "{text}");
    nft_check(&text);

    let mut out = Vec::new();
    render::write_netsh(&mut out, &fw, render::Emit::default()).unwrap();
    let text = String::from_utf8(out).unwrap();
    let line = text.lines().find(|l| l.starts_with("netsh ")).unwrap();
    let args = netsh_args(
        line.strip_prefix("netsh advfirewall firewall add rule ")
            .unwrap(),
    );
    let description = &args.iter().find(|(k, _)| k == "description").unwrap().1;
    assert!(
        description.contains("Evil_ _ ; flush ruleset ; comment _x_ __"),
        "{line}"
    );
    assert!(text.is_ascii() && !text.contains('\\'), "{text}");
}

/// Announcements past the expectation cap (256 per signalling flow) make no rule: the report
/// counts them in `followups_dropped` and its footer says their rules may be missing.
#[test]
fn followups_dropped_at_the_cap_are_counted() {
    let mut sc = Scenario::with_seed(256);
    let bodies: Vec<Vec<u8>> = (0..300u16)
        .map(|i| {
            app::rvp_subscribe(
                "im.example.com",
                "/instmsg/aliases/bob",
                "http://im/alice",
                ep(&format!("10.0.1.5:{}", 3000 + i)),
                600,
            )
        })
        .collect();
    let ok = app::rvp_subscribe_ok(7, 600);
    let mut messages: Vec<(Dir, &[u8])> = Vec::new();
    for b in &bodies {
        messages.push((Dir::ToServer, b));
        messages.push((Dir::ToClient, &ok));
    }
    sc.tcp_session(ep("10.0.1.5:1100"), ep(RVP), T0, &messages);
    let fw = firewall_of(&mut sc, FirewallOptions::default(), false);
    assert_eq!(fw.followups_dropped, 300 - 256, "{:#?}", fw.rules);
    let r = rule(&fw, "rvp_callback", "10.0.1.5");
    assert_eq!(r.status, "not_seen");
    assert_eq!(r.dst_ports, "3000-3255");
    let mut out = Vec::new();
    render::write_table(&mut out, &fw).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(
            "44 follow-up announcements were dropped at the expectation cap: their rules may be \
             missing"
        ),
        "{text}"
    );
}
