//! The human report: a per-service table sorted by bytes (readable at 100 columns), then the
//! failed connections and expected follow-ups written as advice, then what could not be decoded.

use std::io::{self, Write};

use super::time::{bytes, datetime, duration, millis, time_of_day};
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

/// Writes the table report.
pub fn write_table(w: &mut dyn Write, r: &Report, opt: TableOptions) -> io::Result<()> {
    let st = Style { on: opt.color };
    header(w, r, &st)?;
    services(w, &r.services, &st)?;
    failures(w, r, &st, opt.failures_per_service.max(1))?;
    super::mail_flow::write(
        w,
        r,
        opt.failures_per_service.max(1),
        &|s| st.red(s),
        &|s| st.bold(s),
        &|s| st.dim(s),
    )?;
    followups(w, &r.followups, &st, opt.failures_per_service.max(1))?;
    if let Some(flows) = &r.flows {
        flow_list(w, flows, &st)?;
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
            format!(
                "{} → {} ({})",
                datetime(f),
                time_of_day(l),
                duration(i.duration_s)
            )
        }
        _ => "no packets".to_string(),
    };
    writeln!(
        w,
        "{} packets, {}, {span} · {} flows",
        i.packets,
        bytes(i.bytes),
        r.flow_table.flows
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
    let mut head = format!(
        "{:<13}{:>6}{:>9}{:>10}{:>10}{:>10}",
        "SERVICE", "FLOWS", "PACKETS", "BYTES", "TO SRV", "TO CLI"
    );
    for (_, name) in OUTCOME_COLS {
        head.push_str(&format!("{name:>6}"));
    }
    head.push_str(&format!("{:>9}", "RTT p50"));
    writeln!(w, "{}", st.bold(&head))?;
    for s in services {
        let failed = s.outcomes.failures() > 0;
        let name = if failed {
            format!("{}!", s.service)
        } else {
            s.service.clone()
        };
        let name = format!("{name:<13}");
        write!(
            w,
            "{}{:>6}{:>9}{:>10}{:>10}{:>10}",
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
                "{:>6}",
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
        writeln!(w, "{rtt:>9}")?;
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

fn failures(w: &mut dyn Write, r: &Report, st: &Style, per_service: usize) -> io::Result<()> {
    let total: u64 = r.services.iter().map(|s| s.outcomes.failures()).sum();
    if total == 0 {
        return Ok(());
    }
    writeln!(w, "{}", st.bold(&format!("FAILED CONNECTIONS ({total})")))?;
    for s in r.services.iter().filter(|s| s.outcomes.failures() > 0) {
        writeln!(w, "{}", st.bold(&s.service))?;
        let listed: Vec<&FlowView> = r
            .failures
            .iter()
            .filter(|f| f.service == s.service)
            .collect();
        for f in listed.iter().take(per_service) {
            let text = failure_text(f);
            writeln!(
                w,
                "  {} {} → {}  {}",
                time_of_day(f.first_ts),
                f.client,
                f.server,
                st.red(&text)
            )?;
        }
        let shown = per_service.min(listed.len()) as u64;
        let more = s.outcomes.failures().saturating_sub(shown);
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

fn followups(
    w: &mut dyn Write,
    f: &[FollowupView],
    st: &Style,
    per_service: usize,
) -> io::Result<()> {
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
            followup_lines(w, e, st)?;
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

fn followup_lines(w: &mut dyn Write, e: &FollowupView, st: &Style) -> io::Result<()> {
    let target = match &e.expected.peer {
        Some(peer) => format!("{} ↔ {peer} any port/{}", e.expected.host, e.expected.proto),
        None => format!(
            "{}:{}/{}",
            e.expected.host, e.expected.port, e.expected.proto
        ),
    };
    let verdict = match e.outcome.as_str() {
        "established" => format!("seen: {} flow(s), {} packets", e.flows, e.packets),
        "not_seen" => st.red("never seen: blocked, or not on this capture's path"),
        "unanswered" => st.red("attempted, never answered: dropped by a firewall?"),
        "refused" => st.red("refused (RST): nothing listening, or rejected"),
        "icmp_unreachable" => st.red("blocked: ICMP unreachable"),
        "one_way" => st.red("one way only: the return path is blocked?"),
        other => other.to_string(),
    };
    writeln!(w, "  {} {target} — {verdict}", e.service)?;
    writeln!(
        w,
        "    {} by {} at {} on {} {} → {}",
        if e.basis == "inferred" {
            "inferred"
        } else {
            "announced"
        },
        e.announced_by,
        time_of_day(e.announced_ts),
        e.parent.service,
        e.parent.client,
        e.parent.server
    )
}

fn flow_list(w: &mut dyn Write, flows: &[FlowView], st: &Style) -> io::Result<()> {
    writeln!(w, "{}", st.bold(&format!("FLOWS ({})", flows.len())))?;
    for f in flows {
        let follow = f
            .followup_of
            .map(|i| format!(" follow-up #{i}"))
            .unwrap_or_default();
        writeln!(
            w,
            "  {} {:<13} {:<4} {} → {}  {} pkts {} / {} pkts {}  {}{}{}",
            time_of_day(f.first_ts),
            f.service,
            f.proto,
            f.client,
            f.server,
            f.to_server.packets,
            bytes(f.to_server.bytes),
            f.to_client.packets,
            bytes(f.to_client.bytes),
            f.outcome.as_str(),
            if f.midstream { " midstream" } else { "" },
            follow
        )?;
    }
    writeln!(w)
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
    if r.flow_table.evicted > 0 {
        writeln!(
            w,
            "{}",
            st.red(&format!(
                "Flow table full: {} flows evicted before they ended (raise --max-flows); still counted",
                r.flow_table.evicted
            ))
        )?;
    }
    for warning in &i.warnings {
        writeln!(w, "{} {warning}", st.red("warning:"))?;
    }
    Ok(())
}
