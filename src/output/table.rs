//! The human report: a per-service table sorted by bytes (readable at 100 columns), then the
//! failed connections and expected follow-ups written as advice, then what could not be decoded.

use std::io::{self, Write};

use super::time::{bytes, datetime, duration, millis, same_day, time_of_day};
use super::{FlowView, FollowupView, Report, ServiceView};
use crate::flow::Outcome;

/// How to render the table.
#[derive(Clone, Copy, Debug, Default)]
pub struct TableOptions {
    /// ANSI colour (failures in red).
    pub color: bool,
    /// Failed connections listed per service before "... and N more".
    pub failures_per_service: usize,
}

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// How the lists show a capture time: the time of day (UTC) when the whole capture falls on one
/// day, else the date too, so that times never seem to jump backwards.
#[derive(Clone, Copy)]
struct Clock {
    dates: bool,
}

impl Clock {
    fn of(r: &Report) -> Clock {
        let dates = match (r.input.first_ts, r.input.last_ts) {
            (Some(f), Some(l)) => !same_day(f, l),
            _ => false,
        };
        Clock { dates }
    }

    fn at(self, secs: f64) -> String {
        if self.dates {
            datetime(secs)
        } else {
            time_of_day(secs)
        }
    }
}

/// Writes the table report.
pub fn write_table(w: &mut dyn Write, r: &Report, opt: TableOptions) -> io::Result<()> {
    let st = Style { on: opt.color };
    let clock = Clock::of(r);
    header(w, r, &st)?;
    services(w, &r.services, &st)?;
    failures(w, r, &st, clock, opt.failures_per_service.max(1))?;
    super::mail_flow::write(
        w,
        r,
        opt.failures_per_service.max(1),
        &|s| st.red(s),
        &|s| st.bold(s),
        &|s| st.dim(s),
    )?;
    login_and_bind_failures(w, &r.problems, &st)?;
    tcp_health(w, &r.services, &st)?;
    followups(w, r, &st, clock, opt.failures_per_service.max(1))?;
    if let Some(flows) = &r.flows {
        flow_list(w, flows, &st, clock)?;
    }
    notes(w, r, &st)
}

fn header(w: &mut dyn Write, r: &Report, st: &Style) -> io::Result<()> {
    let i = &r.input;
    let names: Vec<&str> = i
        .files
        .iter()
        .map(|f| {
            if f.name == "-" {
                "(stdin)"
            } else {
                f.name.as_str()
            }
        })
        .collect();
    writeln!(w, "{} {}", st.bold(&r.generator), names.join(", "))?;
    let span = match (i.first_ts, i.last_ts) {
        (Some(f), Some(l)) => {
            let end = if same_day(f, l) {
                time_of_day(l)
            } else {
                datetime(l)
            };
            format!("{} → {end} UTC ({})", datetime(f), duration(i.duration_s))
        }
        _ => "no packets".to_string(),
    };
    writeln!(
        w,
        "{}, {}, {span} · {}",
        plural(i.packets, "packet"),
        bytes(i.bytes),
        plural(r.flow_table.flows, "flow")
    )?;
    writeln!(w)
}

const OUTCOME_COLS: [(Outcome, &str); 5] = [
    (Outcome::Established, "OK"),
    (Outcome::Unanswered, "UNANS"),
    (Outcome::Refused, "REFUS"),
    (Outcome::IcmpUnreachable, "ICMP"),
    (Outcome::OneWay, "1WAY"),
];

fn services(w: &mut dyn Write, services: &[ServiceView], st: &Style) -> io::Result<()> {
    if services.is_empty() {
        return writeln!(w, "No IP flows.\n");
    }
    // Wide enough for the longest name and its failure and TCP-health marks; every number column starts with a
    // space, so a count wider than its column still stands apart from its neighbour.
    let name_w = services
        .iter()
        .map(|s| s.service.chars().count() + 2)
        .max()
        .unwrap_or(0)
        .max(13);
    let mut head = format!(
        "{:<name_w$} {:>5} {:>7} {:>9} {:>9} {:>9}",
        "SERVICE", "FLOWS", "PACKETS", "BYTES", "TO SRV", "TO CLI"
    );
    for (_, name) in OUTCOME_COLS {
        head.push_str(&format!(" {name:>5}"));
    }
    head.push_str(&format!(" {:>8}", "RTT p50"));
    writeln!(w, "{}", st.bold(&head))?;
    for s in services {
        let failed = s.outcomes.failures() > 0 || s.tcp.broken() > 0;
        let name = format!(
            "{}{}{}",
            s.service,
            if failed { "!" } else { "" },
            if s.tcp.flows_troubled > 0 { "~" } else { "" }
        );
        let name = format!("{name:<name_w$}");
        write!(
            w,
            "{} {:>5} {:>7} {:>9} {:>9} {:>9}",
            if failed { st.red(&name) } else { name },
            s.flows,
            s.packets,
            bytes(s.bytes),
            bytes(s.to_server.bytes),
            bytes(s.to_client.bytes)
        )?;
        for (o, _) in OUTCOME_COLS {
            let n = s.outcomes.get(o);
            let cell = format!(
                " {:>5}",
                if n == 0 {
                    "·".to_string()
                } else {
                    n.to_string()
                }
            );
            let cell = if n > 0 && o.is_failure() {
                st.red(&cell)
            } else {
                cell
            };
            write!(w, "{cell}")?;
        }
        let rtt = if s.handshake_rtt_ms.count > 0 {
            millis(s.handshake_rtt_ms.p50)
        } else {
            "-".into()
        };
        writeln!(w, " {rtt:>8}")?;
    }
    if services.iter().any(|s| s.tcp.flows_troubled > 0) {
        writeln!(
            w,
            "{}",
            st.dim("! failed connections, ~ TCP trouble: both listed below")
        )?;
    }
    writeln!(w)
}

/// What went wrong in an established TCP session, in words.
pub(super) fn broken_text(f: &FlowView) -> String {
    let Some(h) = &f.tcp else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(side) = &h.reset_mid_session {
        parts.push(format!(
            "reset mid-session by the {side} after {}",
            duration((f.last_ts - f.first_ts).max(0.0))
        ));
    }
    if h.stalled {
        parts.push(format!(
            "stalled: {} silent with data unacknowledged",
            duration(h.longest_silence_s)
        ));
    }
    if h.retransmitted > 0 {
        parts.push(plural(u64::from(h.retransmitted), "retransmission"));
    }
    parts.join(", ")
}

/// `1 flow`, `2 flows`.
pub(super) fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn tcp_health(w: &mut dyn Write, services: &[ServiceView], st: &Style) -> io::Result<()> {
    let troubled: Vec<&ServiceView> = services
        .iter()
        .filter(|s| s.tcp.flows_troubled > 0)
        .collect();
    if troubled.is_empty() {
        return Ok(());
    }
    writeln!(w, "{}", st.bold("TCP HEALTH"))?;
    for s in troubled {
        let t = &s.tcp;
        let mut parts = vec![format!(
            "{} of {}",
            t.flows_troubled,
            plural(s.flows, "flow")
        )];
        for (n, what) in [
            (t.retransmitted, "retransmitted"),
            (t.out_of_order, "out of order"),
            (t.dup_acks, "duplicate ACK"),
            (t.zero_windows, "zero window"),
            (t.reset_by_client, "reset mid-session by the client"),
            (t.reset_by_server, "reset mid-session by the server"),
            (t.stalled, "stalled"),
        ] {
            if n > 0 && (what.ends_with("ACK") || what.ends_with("window")) {
                parts.push(plural(n, what));
            } else if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        parts.push(format!("longest silence {}", duration(t.longest_silence_s)));
        // Filled to the width, continuation lines under the numbers.
        let mut line = format!("  {:<12}", s.service);
        for (i, part) in parts.iter().enumerate() {
            let part = if i + 1 < parts.len() {
                format!("{part},")
            } else {
                part.clone()
            };
            if line.chars().count() + 1 + part.chars().count() > WIDTH {
                writeln!(w, "{line}")?;
                line = " ".repeat(14);
            } else if !line.ends_with("  ") {
                line.push(' ');
            }
            line.push_str(&part);
        }
        writeln!(w, "{line}")?;
    }
    writeln!(w)
}

/// What a failed flow means, in words.
pub(super) fn failure_text(f: &FlowView) -> String {
    match f.outcome {
        Outcome::Unanswered => {
            let syns = if f.syns == 1 {
                "1 SYN".to_string()
            } else {
                format!("{} SYNs", f.syns)
            };
            format!("unanswered: {syns}, no reply")
        }
        Outcome::Refused => "refused: SYN answered by RST".to_string(),
        Outcome::IcmpUnreachable => match &f.icmp {
            Some(i) if i.admin_prohibited => {
                format!("blocked: ICMP admin-prohibited from {}", i.from)
            }
            Some(i) => format!("ICMP {} from {}", icmp_name(i.v6, i.code), i.from),
            None => "ICMP unreachable".to_string(),
        },
        o => o.as_str().to_string(),
    }
}

fn icmp_name(v6: bool, code: u8) -> String {
    let name = match (v6, code) {
        (false, 0) | (true, 0) => "network unreachable",
        (false, 1) | (true, 3) => "host unreachable",
        (false, 2) => "protocol unreachable",
        (false, 3) | (true, 4) => "port unreachable",
        (false, 4) => "fragmentation needed",
        (true, 5) => "source address failed policy",
        (true, 6) => "reject route",
        _ => return format!("unreachable code {code}"),
    };
    name.to_string()
}

fn failures(
    w: &mut dyn Write,
    r: &Report,
    st: &Style,
    clock: Clock,
    per_service: usize,
) -> io::Result<()> {
    let failed = |s: &ServiceView| s.outcomes.failures() + s.tcp.broken();
    let total: u64 = r.services.iter().map(failed).sum();
    if total == 0 {
        return Ok(());
    }
    writeln!(w, "{}", st.bold(&format!("FAILED CONNECTIONS ({total})")))?;
    for s in r.services.iter().filter(|s| failed(s) > 0) {
        writeln!(w, "{}", st.bold(&s.service))?;
        let listed: Vec<(&FlowView, String)> = r
            .failures
            .iter()
            .filter(|f| f.service == s.service)
            .map(|f| (f, failure_text(f)))
            .chain(
                r.tcp_broken
                    .iter()
                    .filter(|f| f.service == s.service)
                    .map(|f| (f, broken_text(f))),
            )
            .collect();
        for (f, text) in listed.iter().take(per_service) {
            let head = format!("  {} {} → {}", clock.at(f.first_ts), f.client, f.server);
            fitted(w, &head, text, |t| st.red(t))?;
        }
        let shown = per_service.min(listed.len()) as u64;
        let more = failed(s).saturating_sub(shown);
        if more > 0 {
            writeln!(
                w,
                "  {}",
                st.dim(&format!("… and {more} more (see --flows)"))
            )?;
        }
    }
    writeln!(w)
}

/// The trackers' refusals: POP3/IMAP logins and X.400 connections or binds refused, which the
/// transport saw as successful sessions.
fn login_and_bind_failures(w: &mut dyn Write, problems: &[String], st: &Style) -> io::Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    writeln!(w, "{}", st.bold("LOGIN AND BIND FAILURES"))?;
    for p in problems {
        writeln!(w, "  {}", st.red(p))?;
    }
    writeln!(w)
}

fn followups(
    w: &mut dyn Write,
    r: &Report,
    st: &Style,
    clock: Clock,
    per_service: usize,
) -> io::Result<()> {
    let f = &r.followups;
    if f.is_empty() {
        return Ok(());
    }
    let missing = f
        .iter()
        .filter(|e| !e.optional && e.outcome != "established")
        .count();
    writeln!(
        w,
        "{}",
        st.bold(&format!(
            "EXPECTED FOLLOW-UP CONNECTIONS ({}, {missing} not established)",
            f.len()
        ))
    )?;
    let mut services: Vec<&str> = f.iter().map(|e| e.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    for service in services {
        let mine: Vec<&FollowupView> = f.iter().filter(|e| e.service == service).collect();
        // Problems first, then the ones that worked; optional addresses only as a count.
        let mut listed: Vec<&&FollowupView> = mine.iter().filter(|e| !e.optional).collect();
        listed.sort_by_key(|e| (e.outcome == "established", e.announced_ts.to_bits()));
        for e in listed.iter().take(per_service) {
            followup_lines(w, r, e, st, clock)?;
        }
        if listed.len() > per_service {
            let more = listed.len() - per_service;
            writeln!(
                w,
                "  {}",
                st.dim(&format!("… and {more} more {service} (see --format json)"))
            )?;
        }
        let optional: Vec<&&FollowupView> = mine.iter().filter(|e| e.optional).collect();
        if !optional.is_empty() {
            let used = optional.iter().filter(|e| e.outcome != "not_seen").count();
            writeln!(
                w,
                "  {}",
                st.dim(&format!(
                    "{service}: {} optional address(es) (H.245 tunnelled, or RAS registrations), {used} used",
                    optional.len()
                ))
            )?;
        }
    }
    writeln!(w)
}

fn followup_lines(
    w: &mut dyn Write,
    r: &Report,
    e: &FollowupView,
    st: &Style,
    clock: Clock,
) -> io::Result<()> {
    let target = match &e.expected.peer {
        Some(peer) => format!("{} ↔ {peer} any port/{}", e.expected.host, e.expected.proto),
        None => format!(
            "{}:{}/{}",
            e.expected.host, e.expected.port, e.expected.proto
        ),
    };
    let verdict = match e.outcome.as_str() {
        "established" => format!(
            "seen: {}, {}",
            plural(e.flows, "flow"),
            plural(e.packets, "packet")
        ),
        "not_seen" => st.red("never seen: blocked, or not on this capture's path"),
        "unanswered" => st.red("attempted, never answered: dropped by a firewall?"),
        "refused" => st.red("refused (RST): nothing listening, or rejected"),
        "icmp_unreachable" => {
            // The failed flow says which router sent what.
            let text = r
                .failures
                .iter()
                .find(|f| f.followup_of == Some(e.id) && f.icmp.is_some())
                .map_or("blocked: ICMP unreachable".to_string(), failure_text);
            st.red(&text)
        }
        "one_way" => st.red("one way only: the return path is blocked?"),
        other => other.to_string(),
    };
    // An RPC interface is named in plain words ("Exchange store (MAPI)").
    let what = match &e.interface {
        Some(i) if !i.description.is_empty() => i.description.clone(),
        Some(i) if !i.name.is_empty() => format!("{} ({})", e.service, i.name),
        Some(i) => format!("{} (interface {} v{})", e.service, i.uuid, i.version),
        None => e.service.clone(),
    };
    writeln!(w, "  {what} {target} — {verdict}")?;
    let head = format!(
        "    {} by {} at {}",
        if e.basis == "inferred" {
            "inferred"
        } else {
            "announced"
        },
        e.announced_by,
        clock.at(e.announced_ts),
    );
    let tail = format!(
        "on {} {} → {}",
        e.parent.service, e.parent.client, e.parent.server
    );
    if head.chars().count() + 1 + tail.chars().count() <= WIDTH {
        writeln!(w, "{head} {tail}")?;
    } else {
        fitted(w, &head, &tail, str::to_string)?;
    }
    // Where a blocked or missing RPC endpoint's port is pinned, so one firewall rule suffices.
    if let Some(pin) = e.interface.as_ref().and_then(|i| i.pin.as_ref()) {
        if e.outcome != "established" {
            let head = match pin.value {
                Some(_) => format!("    pin it ({}):", pin.kb),
                None => format!("    pin it ({}, its RPC listen value under):", pin.kb),
            };
            let path = pin.path();
            if head.chars().count() + 1 + path.chars().count() <= WIDTH {
                writeln!(w, "{head} {path}")?;
            } else {
                writeln!(w, "{head}\n      {path}")?;
            }
        }
    }
    Ok(())
}

fn flow_list(w: &mut dyn Write, flows: &[FlowView], st: &Style, clock: Clock) -> io::Result<()> {
    writeln!(w, "{}", st.bold(&format!("FLOWS ({})", flows.len())))?;
    for f in flows {
        let follow = f
            .followup_of
            .map(|i| format!(" follow-up #{i}"))
            .unwrap_or_default();
        let mut head = format!(
            "  {} {:<13} {:<4} {} → {}",
            clock.at(f.first_ts),
            f.service,
            f.proto,
            f.client,
            f.server
        );
        if head.chars().count() > WIDTH {
            // Long (IPv6) endpoints: the server goes on a line of its own.
            let client = format!(
                "  {} {:<13} {:<4} {}",
                clock.at(f.first_ts),
                f.service,
                f.proto,
                f.client
            );
            writeln!(w, "{client}")?;
            head = format!("      → {}", f.server);
        }
        let tcp = f
            .tcp
            .as_ref()
            .filter(|h| h.troubled())
            .map(|h| format!(" · TCP: {}", tcp_words(h)))
            .unwrap_or_default();
        let tail = format!(
            "{} / {}  {}{}{}{tcp}",
            packets_bytes(f.to_server.packets, f.to_server.bytes),
            packets_bytes(f.to_client.packets, f.to_client.bytes),
            f.outcome.as_str(),
            if f.midstream { " midstream" } else { "" },
            follow
        );
        fitted(w, &head, &tail, str::to_string)?;
    }
    writeln!(w)
}

/// Lines of the lists stay within this many columns.
const WIDTH: usize = 100;

/// `head  tail` on one line when it fits in [`WIDTH`] columns, else `tail` on an indented
/// continuation line (wrapped at spaces if still too long). `paint` styles the tail.
fn fitted(
    w: &mut dyn Write,
    head: &str,
    tail: &str,
    paint: impl Fn(&str) -> String,
) -> io::Result<()> {
    let width = |s: &str| s.chars().count();
    if width(head) + 2 + width(tail) <= WIDTH {
        return writeln!(w, "{head}  {}", paint(tail));
    }
    writeln!(w, "{head}")?;
    const INDENT: &str = "      ";
    let mut line = String::new();
    for word in tail.split(' ') {
        if !line.is_empty() && INDENT.len() + width(&line) + 1 + width(word) > WIDTH {
            writeln!(w, "{INDENT}{}", paint(&line))?;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    writeln!(w, "{INDENT}{}", paint(&line))
}

/// `3 pkts 1.2 KiB`, `1 pkt 60 B`.
fn packets_bytes(packets: u64, n: u64) -> String {
    let unit = if packets == 1 { "pkt" } else { "pkts" };
    format!("{packets} {unit} {}", bytes(n))
}

/// A flow's TCP trouble, short: `18 retx, 1 dup ACK, reset by server, stalled 12.0 s`.
fn tcp_words(h: &super::TcpHealthView) -> String {
    let mut parts = Vec::new();
    for (n, what) in [
        (h.retransmitted, "retx"),
        (h.out_of_order, "out of order"),
        (h.dup_acks, "dup ACK"),
        (h.zero_windows, "zero win"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if let Some(side) = &h.reset_mid_session {
        parts.push(format!("reset by {side}"));
    }
    if h.stalled {
        parts.push(format!("stalled {}", duration(h.longest_silence_s)));
    }
    parts.join(", ")
}

fn notes(w: &mut dyn Write, r: &Report, st: &Style) -> io::Result<()> {
    let i = &r.input;
    let skipped: u64 = i.skipped.values().sum();
    if skipped > 0 {
        let reasons: Vec<String> = i.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(w, "Not decoded: {skipped} frames ({})", reasons.join(", "))?;
    }
    if i.orphan_fragments > 0 {
        writeln!(
            w,
            "IP fragments without their first fragment: {}",
            i.orphan_fragments
        )?;
    }
    if i.bogus_timestamps > 0 {
        writeln!(
            w,
            "Bogus timestamps: {} packet(s) stamped before 1970, after 2200 or years from their\n  \
             neighbours were given the time of the packet before",
            i.bogus_timestamps
        )?;
    }
    if r.limits.any() {
        writeln!(w, "{}", st.red(&limits_line(&r.limits)))?;
    }
    for warning in &i.warnings {
        writeln!(w, "{} {warning}", st.red("warning:"))?;
    }
    Ok(())
}

/// Every budget reached, in one line.
pub(super) fn limits_line(l: &super::LimitsView) -> String {
    let parts: Vec<String> = [
        (
            l.flows_evicted,
            "flows evicted from the full table (--max-flows; still counted)",
        ),
        (
            l.expectations_dropped,
            "follow-up announcements dropped at the expectation cap",
        ),
        (l.failures_not_listed, "failed flows not listed"),
        (
            l.flow_records_dropped,
            "flows not listed (--max-flow-records; still counted)",
        ),
        (l.pcapng_interfaces_ignored, "pcapng interfaces ignored"),
        (
            l.pcapng_packets_skipped,
            "packets on ignored pcapng interfaces skipped",
        ),
        (
            l.files_over_window,
            "files larger than --stream-window not read",
        ),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    format!("Limits reached: {}", parts.join("; "))
}
