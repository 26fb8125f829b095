//! The firewall report drawn for people and for firewalls: a table of sentences (blocked first),
//! an nftables ruleset (`nft -c -f` checks it), and Windows `netsh advfirewall` lines.
//!
//! Nothing from the capture reaches a ruleset unescaped: addresses and ports are re-printed from
//! parsed values, and comments and names pass through [`sanitize`].

use std::io::{self, Write};
use std::net::IpAddr;

use super::{FirewallReport, Rule, Status};

/// Table width.
const WIDTH: usize = 100;
/// nftables refuses comments longer than 128 bytes.
const NFT_COMMENT: usize = 120;

/// Which rules a ruleset allows beside the blocked and partly blocked ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Emit {
    /// `--include-allowed`: the rules for traffic that got through (and was refused).
    pub allowed: bool,
    /// `--include-not-seen`: follow-ups announced and never tried (nothing is known to need them).
    pub not_seen: bool,
}

fn wanted(r: &Rule, emit: Emit) -> bool {
    match r.status() {
        Status::Blocked | Status::PartlyBlocked => true,
        Status::Allowed | Status::Refused => emit.allowed,
        Status::NotSeen => emit.not_seen,
    }
}

/// Keeps letters, digits, spaces and `.,:;/_-+=()@`; anything else (quotes, backslashes, control
/// characters, non-ASCII) becomes `_`. The result is cut at `max` bytes.
pub fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " .,:;/_-+=()@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// The footer line about traffic no rule covers.
fn footer(fw: &FirewallReport) -> Vec<String> {
    let mut v = vec![format!(
        "{} flows on ports exflow does not know were left out",
        fw.unclassified_flows
    )];
    if fw.flow_records_dropped > 0 {
        v.push(format!(
            "{} flows past --max-flow-records were not kept: their rules may be missing",
            fw.flow_records_dropped
        ));
    }
    if fw.flows_over_rule_budget > 0 {
        v.push(format!(
            "{} flows past --max-rule-groups made no rule: raise it, or group with --aggregate",
            fw.flows_over_rule_budget
        ));
    }
    if fw.followups_dropped > 0 {
        v.push(format!(
            "{} follow-up announcements were dropped at the expectation cap: their rules may be \
             missing",
            fw.followups_dropped
        ));
    }
    if fw.flows_pending > 0 {
        v.push(format!(
            "{} open flows are not counted yet (no answer so far, younger than {} s)",
            fw.flows_pending,
            super::PENDING_GRACE / 1_000_000_000
        ));
    }
    v
}

/// Wraps `text` at [`WIDTH`], continuation lines indented by `indent`.
fn wrap(out: &mut dyn Write, first: &str, text: &str, indent: usize) -> io::Result<()> {
    let mut line = first.to_string();
    for word in text.split(' ') {
        if line.len() + 1 + word.len() > WIDTH && line.trim().len() > indent.min(line.len()) {
            writeln!(out, "{}", line.trim_end())?;
            line = " ".repeat(indent);
        }
        if !line.is_empty() && !line.ends_with(' ') {
            line.push(' ');
        }
        line.push_str(word);
    }
    writeln!(out, "{}", line.trim_end())
}

/// The table: one section per status, blocked first; each rule a sentence.
pub fn write_table(out: &mut dyn Write, fw: &FirewallReport) -> io::Result<()> {
    let sections = [
        (Status::Blocked, "BLOCKED"),
        (Status::PartlyBlocked, "PARTLY BLOCKED"),
        (
            Status::Refused,
            "REFUSED (the host is reachable; not a firewall problem)",
        ),
        (
            Status::NotSeen,
            "ANNOUNCED, NOT SEEN (never tried in this capture)",
        ),
        (Status::Allowed, "WORKED"),
    ];
    writeln!(out, "exflow firewall report")?;
    if let Some(a) = &fw.aggregate {
        writeln!(out, "addresses grouped into {a} prefixes")?;
    }
    for (status, title) in sections {
        let rules: Vec<&Rule> = fw.rules.iter().filter(|r| r.status() == status).collect();
        if rules.is_empty() {
            continue;
        }
        writeln!(out)?;
        writeln!(out, "{title} ({})", rules.len())?;
        for r in rules {
            let ev = &r.evidence;
            let head = format!(
                "  {:<14} {} {} -> {} port {}:",
                r.service, r.proto, r.src, r.dst, r.dst_ports
            );
            let mut counts = vec![format!("{} flow(s)", ev.flows)];
            for (n, what) in [
                (ev.established, "established"),
                (ev.unanswered, "unanswered"),
                (ev.refused, "refused"),
                (ev.icmp_unreachable, "ICMP unreachable"),
                (ev.one_way, "one way"),
            ] {
                if n > 0 && n != ev.flows {
                    counts.push(format!("{n} {what}"));
                } else if n > 0 {
                    counts[0] = format!("{n} flow(s) {what}");
                }
            }
            let text = if status == Status::Allowed {
                format!("{}. {}.", counts.join(", "), r.why)
            } else {
                format!("{}. Why: {}. Do: {}.", counts.join(", "), r.why, r.advice)
            };
            wrap(out, &head, &text, 4)?;
        }
    }
    writeln!(out)?;
    for l in footer(fw) {
        writeln!(out, "{l}")?;
    }
    Ok(())
}

/// `ip`/`ip6` for an address or prefix.
fn family(addr: &str) -> &'static str {
    let host = addr.split('/').next().unwrap_or(addr);
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => "ip6",
        _ => "ip",
    }
}

/// Re-prints an address or prefix from its parsed value (nothing else gets into a ruleset).
fn clean_addr(addr: &str) -> Option<String> {
    let (host, len) = match addr.split_once('/') {
        Some((h, l)) => (h, Some(l.parse::<u8>().ok()?)),
        None => (addr, None),
    };
    let ip: IpAddr = host.parse().ok()?;
    Some(match len {
        Some(l) => format!("{ip}/{l}"),
        None => ip.to_string(),
    })
}

/// Re-prints a port list (`25`, `1100,1101`, `1024-65535`) from parsed numbers.
fn clean_ports(ports: &str) -> Option<Vec<String>> {
    ports
        .split(',')
        .map(|p| match p.split_once('-') {
            Some((a, b)) => Some(format!(
                "{}-{}",
                a.parse::<u16>().ok()?,
                b.parse::<u16>().ok()?
            )),
            None => Some(p.parse::<u16>().ok()?.to_string()),
        })
        .collect()
}

/// A rule's service, status and evidence in a few words (a ruleset comment).
fn evidence_words(r: &Rule) -> String {
    let ev = &r.evidence;
    let mut parts = vec![format!("{} {}: {} flow(s)", r.service, r.status, ev.flows)];
    for (n, what) in [
        (ev.established, "established"),
        (ev.unanswered, "unanswered"),
        (ev.refused, "refused"),
        (ev.icmp_unreachable, "ICMP unreachable"),
        (ev.one_way, "one way"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    if let Some(i) = ev.icmp_from.first() {
        parts.push(format!("ICMP code {} from {}", i.code, i.addr));
    }
    parts.join(", ")
}

/// Chain name of a service: lowercase letters, digits and `_`.
fn chain(service: &str) -> String {
    let s: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("allow_{s}")
}

/// The nftables ruleset: table `inet exflow`, a base chain on the forward hook that jumps to one
/// named chain per service.
pub fn write_nft(out: &mut dyn Write, fw: &FirewallReport, emit: Emit) -> io::Result<()> {
    writeln!(out, "#!/usr/sbin/nft -f")?;
    writeln!(out, "# {} firewall rules ({}).", fw.generator, fw.schema)?;
    writeln!(
        out,
        "# Review before loading. These are accept rules: merge them into the chain that drops"
    )?;
    writeln!(
        out,
        "# this traffic (an accept in a table of its own does not override a drop elsewhere)."
    )?;
    for l in footer(fw) {
        writeln!(out, "# {}", sanitize(&l, 200))?;
    }
    let mut by_chain: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in fw.rules.iter().filter(|r| wanted(r, emit)) {
        let (Some(src), Some(dst), Some(ports)) = (
            clean_addr(&r.src),
            clean_addr(&r.dst),
            clean_ports(&r.dst_ports),
        ) else {
            continue;
        };
        let proto = if r.proto == "udp" { "udp" } else { "tcp" };
        let fam = family(&src);
        if fam != family(&dst) {
            continue;
        }
        let ports = if ports.len() == 1 {
            ports[0].clone()
        } else {
            format!("{{ {} }}", ports.join(", "))
        };
        let comment = sanitize(&evidence_words(r), NFT_COMMENT);
        by_chain.entry(chain(&r.service)).or_default().push(format!(
            "{fam} saddr {src} {fam} daddr {dst} {proto} dport {ports} accept comment \"{comment}\""
        ));
    }
    writeln!(out, "table inet exflow {{")?;
    for (name, rules) in &by_chain {
        writeln!(out, "\tchain {name} {{")?;
        for r in rules {
            writeln!(out, "\t\t{r}")?;
        }
        writeln!(out, "\t}}")?;
    }
    writeln!(out, "\tchain forward {{")?;
    writeln!(
        out,
        "\t\ttype filter hook forward priority filter; policy accept;"
    )?;
    for name in by_chain.keys() {
        writeln!(out, "\t\tjump {name}")?;
    }
    writeln!(out, "\t}}")?;
    writeln!(out, "}}")
}

/// Windows firewall lines: an inbound allow rule on the destination (an Exchange server's own
/// firewall), one per rule.
pub fn write_netsh(out: &mut dyn Write, fw: &FirewallReport, emit: Emit) -> io::Result<()> {
    writeln!(out, "@rem {} firewall rules ({}).", fw.generator, fw.schema)?;
    writeln!(
        out,
        "@rem Run on the destination host, as an administrator."
    )?;
    for l in footer(fw) {
        writeln!(out, "@rem {}", sanitize(&l, 200))?;
    }
    for r in fw.rules.iter().filter(|r| wanted(r, emit)) {
        let (Some(src), Some(dst), Some(ports)) = (
            clean_addr(&r.src),
            clean_addr(&r.dst),
            clean_ports(&r.dst_ports),
        ) else {
            continue;
        };
        let name = sanitize(&format!("exflow {} {src} to {dst}", r.service), 100);
        let description = sanitize(&format!("{}. {}", evidence_words(r), r.why), 250);
        writeln!(
            out,
            "netsh advfirewall firewall add rule name=\"{name}\" dir=in action=allow \
             protocol={} localip={dst} remoteip={src} localport={} description=\"{description}\"",
            if r.proto == "udp" { "UDP" } else { "TCP" },
            ports.join(","),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitised() {
        assert_eq!(sanitize("a\"b\\c\n;d{}é", 100), "a_b_c_;d___");
        assert_eq!(sanitize("abcdef", 3), "abc");
        assert_eq!(clean_addr("10.0.0.0/24").as_deref(), Some("10.0.0.0/24"));
        assert_eq!(clean_addr("10.0.0.1\"; drop"), None);
        assert_eq!(
            clean_ports("25,1100-1102"),
            Some(vec!["25".to_string(), "1100-1102".to_string()])
        );
        assert_eq!(clean_ports("25;x"), None);
    }
}
