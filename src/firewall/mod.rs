//! Firewall report: the analysis turned around into rules — what the traffic needed, which of
//! those connections were blocked, refused or worked, and the rules that would let it through.
//!
//! Rules are gathered as flows end ([`Collector`], fed by the analyzer when `Config::firewall` is
//! set), so neither `exflow firewall` nor live mode keeps flow records for them: one [`Rule`] per
//! (proto, source, destination, service), its destination ports merged, plus one per announced
//! follow-up no flow tried. The JSON view is `exflow.firewall.v1` (docs/firewall.md); [`render`]
//! draws the table, nftables and netsh forms.

mod advice;
mod collect;
pub mod render;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::analyze::Analysis;
use crate::classify::Expectation;

pub use collect::{Collector, PENDING_GRACE};

/// Schema id of the JSON firewall report.
pub const SCHEMA: &str = "exflow.firewall.v1";

/// Distinct ports of one rule past which they are shown as one range.
const PORTS_LISTED: usize = 8;

/// Default of `--max-rule-groups`.
pub const DEFAULT_MAX_RULE_GROUPS: usize = 100_000;

/// How rules are grouped, and how many groups may be held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FirewallOptions {
    /// Group addresses into IPv4 prefixes of this length (IPv6 into /64s); `None` keeps hosts.
    pub aggregate: Option<u8>,
    /// Most (proto, source, destination, service) groups held; a flow that would start another
    /// is counted in `flows_over_rule_budget` (`--max-rule-groups`).
    pub max_groups: usize,
}

impl Default for FirewallOptions {
    fn default() -> Self {
        FirewallOptions {
            aggregate: None,
            max_groups: DEFAULT_MAX_RULE_GROUPS,
        }
    }
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
    /// Only for a report built from kept flow records: flows past `--max-flow-records`, whose
    /// rules may be missing. `exflow firewall` and live mode gather rules as flows end: 0.
    pub flow_records_dropped: u64,
    /// Flows (and untried follow-ups) that would have made a rule past `--max-rule-groups`.
    #[serde(default)]
    pub flows_over_rule_budget: u64,
    /// Live mode: open flows whose fate is not known yet (a SYN or a UDP packet younger than
    /// [`PENDING_GRACE`]), left for a later report.
    #[serde(default)]
    pub flows_pending: u64,
    /// Follow-up announcements dropped at the expectation cap (`limits.expectations_dropped` of
    /// the report): their ports are unknown, so their rules may be missing.
    #[serde(default)]
    pub followups_dropped: u64,
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

impl FirewallReport {
    /// The report of a finished run: from the rules gathered as its flows ended
    /// (`Config::firewall`), else from its kept flow records (`Config::keep_flows`), whose cut
    /// (`--max-flow-records`) is then reported in `flow_records_dropped`. Announced follow-ups no
    /// flow tried become `not_seen` rules.
    pub fn new(a: &Analysis, opt: FirewallOptions) -> FirewallReport {
        let mut c = match &a.firewall {
            Some(c) => c.clone(),
            None => {
                let mut c = Collector::new(Arc::clone(&a.catalogue), opt);
                let by_id: BTreeMap<u32, &Expectation> =
                    a.followups.iter().map(|e| (e.id, e)).collect();
                for r in a.summary.flows.iter().flatten() {
                    c.add_record(r, |id| by_id.get(&id).copied());
                }
                c
            }
        };
        for e in &a.followups {
            c.add_announced(e);
        }
        let mut report = c.report();
        if a.firewall.is_none() {
            report.flow_records_dropped = a.summary.flow_records_dropped;
        }
        report.followups_dropped = a.expectations_dropped_at_cap;
        report
    }

    /// The report of an analysis whose rules were gathered as flows ended (`Config::firewall`;
    /// a live interval or its totals), with its announced follow-ups; `None` otherwise.
    pub fn of(a: &Analysis) -> Option<FirewallReport> {
        let mut c = a.firewall.clone()?;
        for e in &a.followups {
            c.add_announced(e);
        }
        let mut report = c.report();
        report.followups_dropped = a.expectations_dropped_at_cap;
        Some(report)
    }
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
}
