//! Firewall report: the analysis turned around into rules — what the traffic needed, which of
//! those connections were blocked, refused or worked, and the rules that would let it through.
//!
//! [`FirewallReport::new`] is a pure function of an [`Analysis`] run with flow records kept
//! (`Config::keep_flows`): one [`Rule`] per (proto, source, destination, service), its destination
//! ports merged, plus one per announced follow-up no flow answered. The JSON view is
//! `exflow.firewall.v1` (docs/firewall.md); [`render`] draws the table, nftables and netsh forms.

mod advice;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::analyze::Analysis;
use crate::classify::{Catalogue, ServiceKind};
use crate::flow::Outcome;
use crate::output::{FlowView, FollowupView, Report};

/// Schema id of the JSON firewall report.
pub const SCHEMA: &str = "exflow.firewall.v1";

/// Distinct ports of one rule past which they are shown as one range (and the advice says so).
const PORTS_LISTED: usize = 8;

/// How rules are grouped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FirewallOptions {
    /// Group addresses into IPv4 prefixes of this length (IPv6 into /64s); `None` keeps hosts.
    pub aggregate: Option<u8>,
}

/// The whole firewall report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FirewallReport {
    pub schema: String,
    pub generator: String,
    /// `/24` when addresses were grouped into prefixes, absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<String>,
    /// Blocked first, then partly blocked, refused, not seen, allowed.
    pub rules: Vec<Rule>,
    /// Flows on ports exflow does not know: no rule is made for them.
    pub unclassified_flows: u64,
    /// Flows counted but not kept (`--max-flow-records`): their rules may be missing.
    pub flow_records_dropped: u64,
}

/// One rule: a connection the traffic needed, and how it fared.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Rule {
    /// `tcp` or `udp`.
    pub proto: String,
    /// An address, or a prefix with `--aggregate`.
    pub src: String,
    pub dst: String,
    /// `"3457"`, `"1100,1101"`, `"1024-65535"`.
    pub dst_ports: String,
    pub service: String,
    /// `allowed`, `blocked`, `refused`, `partly_blocked`, or `not_seen` (a follow-up announced and
    /// never tried in the capture).
    pub status: String,
    pub evidence: Evidence,
    pub why: String,
    pub advice: String,
}

/// What the rule's flows did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    pub flows: u64,
    pub established: u64,
    pub unanswered: u64,
    pub refused: u64,
    pub icmp_unreachable: u64,
    pub one_way: u64,
    /// Routers (or hosts) that answered ICMP destination unreachable, with the codes.
    pub icmp_from: Vec<IcmpFrom>,
    /// Seconds since the epoch; absent for a follow-up never tried.
    pub first_ts: Option<f64>,
    pub last_ts: Option<f64>,
}

/// An ICMP destination-unreachable answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct IcmpFrom {
    pub addr: String,
    pub code: u8,
    pub admin_prohibited: bool,
}

/// A rule's status, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Blocked,
    PartlyBlocked,
    Refused,
    NotSeen,
    Allowed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Blocked => "blocked",
            Status::PartlyBlocked => "partly_blocked",
            Status::Refused => "refused",
            Status::NotSeen => "not_seen",
            Status::Allowed => "allowed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Blocked,
            Status::PartlyBlocked,
            Status::Refused,
            Status::NotSeen,
            Status::Allowed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl Rule {
    pub fn status(&self) -> Status {
        Status::parse(&self.status).unwrap_or(Status::Allowed)
    }
}

/// Rule key: (proto, src, dst, service).
type Key = (String, String, String, String);

/// A rule being gathered.
#[derive(Default)]
struct Acc {
    ports: BTreeSet<u16>,
    any_port: bool,
    ev: Evidence,
    /// Attempts that got through, were filtered, found nothing listening.
    worked: u64,
    filtered: u64,
    nobody: u64,
    icmp: BTreeSet<IcmpFrom>,
    followup: Option<u32>,
}

impl FirewallReport {
    /// The firewall report of a run whose flow records were kept.
    pub fn new(a: &Analysis, opt: FirewallOptions) -> FirewallReport {
        from_report(&Report::new(a), &a.catalogue, opt)
    }
}

/// The firewall report from a report view (which must list its flows) and its catalogue.
pub fn from_report(r: &Report, cat: &Catalogue, opt: FirewallOptions) -> FirewallReport {
    let mut acc: BTreeMap<Key, Acc> = BTreeMap::new();
    let mut unclassified = 0;
    let mut answered: BTreeSet<u32> = BTreeSet::new();
    for f in r.flows.iter().flatten() {
        let kind = cat.find(&f.service).map(|s| cat.service(s).kind);
        if matches!(kind, None | Some(ServiceKind::Unclassified)) {
            unclassified += 1;
            continue;
        }
        let (Ok(c), Ok(s)) = (
            f.client.parse::<SocketAddr>(),
            f.server.parse::<SocketAddr>(),
        ) else {
            continue;
        };
        let key = (
            f.proto.clone(),
            group(c.ip(), opt),
            group(s.ip(), opt),
            f.service.clone(),
        );
        let a = acc.entry(key).or_default();
        a.ports.insert(s.port());
        add_flow(a, f);
        if let Some(id) = f.followup_of {
            answered.insert(id);
            a.followup.get_or_insert(id);
        }
    }
    for e in &r.followups {
        if answered.contains(&e.id) || e.optional || e.flows > 0 {
            continue;
        }
        let Ok(dst) = e.expected.host.parse::<IpAddr>() else {
            continue;
        };
        let Some(src) = followup_source(e, dst) else {
            continue;
        };
        let key = (
            e.expected.proto.clone(),
            group(src, opt),
            group(dst, opt),
            e.service.clone(),
        );
        let a = acc.entry(key).or_default();
        if e.expected.port == 0 {
            a.any_port = true;
        } else {
            a.ports.insert(e.expected.port);
        }
        a.followup.get_or_insert(e.id);
    }
    let followups: BTreeMap<u32, &FollowupView> = r.followups.iter().map(|e| (e.id, e)).collect();
    let mut rules: Vec<Rule> = acc
        .into_iter()
        .map(|((proto, src, dst, service), a)| {
            let fu = a.followup.and_then(|id| followups.get(&id).copied());
            finish(proto, src, dst, service, a, fu, cat)
        })
        .collect();
    rules.sort_by(|x, y| {
        (x.status(), &x.service, &x.src, &x.dst, &x.proto).cmp(&(
            y.status(),
            &y.service,
            &y.src,
            &y.dst,
            &y.proto,
        ))
    });
    FirewallReport {
        schema: SCHEMA.to_string(),
        generator: format!("exflow {}", env!("CARGO_PKG_VERSION")),
        aggregate: opt.aggregate.map(|n| format!("/{n}")),
        rules,
        unclassified_flows: unclassified,
        flow_records_dropped: r.limits.flow_records_dropped,
    }
}

/// Counts one flow into its rule.
fn add_flow(a: &mut Acc, f: &FlowView) {
    let ev = &mut a.ev;
    ev.flows += 1;
    ev.first_ts = Some(ev.first_ts.map_or(f.first_ts, |t| t.min(f.first_ts)));
    ev.last_ts = Some(ev.last_ts.map_or(f.last_ts, |t| t.max(f.last_ts)));
    match f.outcome {
        Outcome::Established => {
            ev.established += 1;
            a.worked += 1;
        }
        Outcome::Unanswered => {
            ev.unanswered += 1;
            a.filtered += 1;
        }
        Outcome::Refused => {
            ev.refused += 1;
            a.nobody += 1;
        }
        Outcome::IcmpUnreachable => {
            ev.icmp_unreachable += 1;
            match &f.icmp {
                // Port unreachable: the host is there and nothing listens, as a reset says.
                Some(i) if port_unreachable(i.v6, i.code) => a.nobody += 1,
                _ => a.filtered += 1,
            }
            if let Some(i) = &f.icmp {
                a.icmp.insert(IcmpFrom {
                    addr: i.from.clone(),
                    code: i.code,
                    admin_prohibited: i.admin_prohibited,
                });
            }
        }
        Outcome::OneWay => {
            ev.one_way += 1;
            // UDP with no reply may be a filter on the way back; TCP one way is a mid-stream
            // capture of a session that worked.
            if f.proto == "udp" {
                a.filtered += 1;
            } else {
                a.worked += 1;
            }
        }
    }
}

fn port_unreachable(v6: bool, code: u8) -> bool {
    code == if v6 { 4 } else { 3 }
}

/// Who would open an announced connection nobody tried: the other side of the announcing
/// session from the announced host (the RVP server calls its subscriber back; any client of the
/// endpoint mapper connects to the server's port), or the inferred session's peer.
fn followup_source(e: &FollowupView, dst: IpAddr) -> Option<IpAddr> {
    if let Some(peer) = &e.expected.peer {
        return peer
            .parse::<IpAddr>()
            .ok()
            .or_else(|| peer.parse::<SocketAddr>().ok().map(|s| s.ip()));
    }
    let ip = |s: &str| s.parse::<SocketAddr>().ok().map(|s| s.ip());
    let client = ip(&e.parent.client)?;
    let server = ip(&e.parent.server)?;
    Some(if client == dst { server } else { client })
}

fn finish(
    proto: String,
    src: String,
    dst: String,
    service: String,
    a: Acc,
    fu: Option<&FollowupView>,
    cat: &Catalogue,
) -> Rule {
    let status = if a.ev.flows == 0 {
        Status::NotSeen
    } else if a.worked > 0 && a.filtered > 0 {
        Status::PartlyBlocked
    } else if a.worked > 0 {
        Status::Allowed
    } else if a.filtered > 0 {
        Status::Blocked
    } else {
        Status::Refused
    };
    let ports: Vec<u16> = a.ports.iter().copied().collect();
    let dst_ports = if a.any_port {
        "1024-65535".to_string()
    } else {
        port_list(&ports)
    };
    let mut ev = a.ev;
    ev.icmp_from = a.icmp.into_iter().collect();
    let mut rule = Rule {
        proto,
        src,
        dst,
        dst_ports,
        service,
        status: status.as_str().to_string(),
        evidence: ev,
        why: String::new(),
        advice: String::new(),
    };
    rule.why = advice::why(&rule, fu, cat);
    rule.advice = advice::advice(&rule, &ports, fu, cat);
    rule
}

/// Ports as a string: runs of three or more consecutive ports become ranges; past
/// `PORTS_LISTED` (8) distinct ports, one range from the lowest to the highest.
pub fn port_list(ports: &[u16]) -> String {
    if ports.len() > PORTS_LISTED {
        let (lo, hi) = (ports[0], ports[ports.len() - 1]);
        return format!("{lo}-{hi}");
    }
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ports.len() {
        let mut j = i;
        while j + 1 < ports.len() && ports[j + 1] == ports[j].wrapping_add(1) {
            j += 1;
        }
        if j >= i + 2 {
            out.push(format!("{}-{}", ports[i], ports[j]));
        } else {
            out.extend(ports[i..=j].iter().map(u16::to_string));
        }
        i = j + 1;
    }
    out.join(",")
}

/// An address, or its prefix when grouping.
fn group(ip: IpAddr, opt: FirewallOptions) -> String {
    let Some(len) = opt.aggregate else {
        return ip.to_string();
    };
    match ip {
        IpAddr::V4(v4) => {
            let len = len.min(32);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let net = std::net::Ipv4Addr::from(u32::from(v4) & mask);
            format!("{net}/{len}")
        }
        IpAddr::V6(v6) => {
            let net = std::net::Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("{net}/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_as_strings() {
        assert_eq!(port_list(&[3457]), "3457");
        assert_eq!(port_list(&[1100, 1101]), "1100,1101");
        assert_eq!(port_list(&[25, 1100, 1101, 1102]), "25,1100-1102");
        assert_eq!(port_list(&[25, 1100, 1102]), "25,1100,1102");
        let many: Vec<u16> = (0..20).map(|i| 2000 + i * 7).collect();
        assert_eq!(port_list(&many), "2000-2133");
    }

    #[test]
    fn prefixes() {
        let opt = FirewallOptions {
            aggregate: Some(24),
        };
        assert_eq!(group("10.2.0.10".parse().unwrap(), opt), "10.2.0.0/24");
        assert_eq!(group("2001:db8::1".parse().unwrap(), opt), "2001:db8::/64");
        let opt = FirewallOptions { aggregate: Some(0) };
        assert_eq!(group("10.2.0.10".parse().unwrap(), opt), "0.0.0.0/0");
        assert_eq!(
            group("10.2.0.10".parse().unwrap(), FirewallOptions::default()),
            "10.2.0.10"
        );
    }
}
