//! Rules gathered as flows end: one small group per (proto, source, destination, service), so the
//! firewall report never needs the flow records. Groups are capped ([`FirewallOptions::max_groups`]);
//! a flow that would start a group past the cap is counted in `flows_over_rule_budget`.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use super::{advice, FirewallOptions, FirewallReport, IcmpFrom, Rule, Status, SCHEMA};
use crate::classify::{Catalogue, Expectation, Flow, ServiceId, ServiceKind};
use crate::flow::{EndReason, Outcome};
use crate::output::{followup_view, ts_secs, FollowupView};
use crate::packet::{Nanos, Proto};
use crate::summary::FlowRecord;

/// Distinct destination ports remembered per group; past it only the lowest and highest are.
pub(super) const PORTS_KEPT: usize = 64;
/// Distinct ICMP reporters (address, code) remembered per group; more are counted.
const ICMP_KEPT: usize = 8;
/// An open flow whose outcome may still change (a SYN not answered yet, UDP with no reply yet)
/// is counted once its last packet is this old; younger ones are `flows_pending`.
pub const PENDING_GRACE: Nanos = 3_000_000_000;

type Key = (Proto, IpAddr, IpAddr, ServiceId);

/// One rule being gathered.
#[derive(Clone, Debug, Default)]
struct Group {
    ports: BTreeSet<u16>,
    /// Lowest and highest port, kept also past [`PORTS_KEPT`].
    span: Option<(u16, u16)>,
    ports_over: bool,
    any_port: bool,
    flows: u64,
    outcomes: [u64; 5],
    /// Attempts that got through, were filtered, found nothing listening.
    worked: u64,
    filtered: u64,
    nobody: u64,
    first_ts: Option<Nanos>,
    last_ts: Option<Nanos>,
    icmp: BTreeSet<IcmpFrom>,
    followup: Option<Box<FollowupView>>,
}

impl Group {
    fn port(&mut self, p: u16) {
        self.span = Some(self.span.map_or((p, p), |(lo, hi)| (lo.min(p), hi.max(p))));
        if self.ports.len() < PORTS_KEPT || self.ports.contains(&p) {
            self.ports.insert(p);
        } else {
            self.ports_over = true;
        }
    }

    fn flow(&mut self, r: &FlowRecord) {
        self.flows += 1;
        self.first_ts = Some(self.first_ts.map_or(r.first_ts, |t| t.min(r.first_ts)));
        self.last_ts = Some(self.last_ts.map_or(r.last_ts, |t| t.max(r.last_ts)));
        self.outcomes[r.outcome.index()] += 1;
        match r.outcome {
            Outcome::Established => self.worked += 1,
            Outcome::Unanswered => self.filtered += 1,
            Outcome::Refused => self.nobody += 1,
            Outcome::IcmpUnreachable => {
                match r.icmp {
                    // Port unreachable: the host is there and nothing listens, as a reset says.
                    Some((v6, code, _)) if code == if v6 { 4 } else { 3 } => self.nobody += 1,
                    _ => self.filtered += 1,
                }
                if let Some((v6, code, from)) = r.icmp {
                    let i = IcmpFrom {
                        addr: from.to_string(),
                        code,
                        admin_prohibited: crate::packet::is_admin_prohibited(v6, code),
                    };
                    if self.icmp.len() < ICMP_KEPT {
                        self.icmp.insert(i);
                    }
                }
            }
            // UDP with no reply may be a filter on the way back; TCP one way is a mid-stream
            // capture of a session that worked.
            Outcome::OneWay if r.proto == Proto::Udp => self.filtered += 1,
            Outcome::OneWay => self.worked += 1,
        }
    }

    fn merge(&mut self, o: &Group) {
        for &p in &o.ports {
            self.port(p);
        }
        if let Some((lo, hi)) = o.span {
            self.port(lo);
            self.port(hi);
        }
        self.ports_over |= o.ports_over;
        self.any_port |= o.any_port;
        self.flows += o.flows;
        for (a, b) in self.outcomes.iter_mut().zip(o.outcomes) {
            *a += b;
        }
        self.worked += o.worked;
        self.filtered += o.filtered;
        self.nobody += o.nobody;
        let min = |a: Option<Nanos>, b: Option<Nanos>| a.into_iter().chain(b).min();
        let max = |a: Option<Nanos>, b: Option<Nanos>| a.into_iter().chain(b).max();
        self.first_ts = min(self.first_ts, o.first_ts);
        self.last_ts = max(self.last_ts, o.last_ts);
        for i in &o.icmp {
            if self.icmp.len() < ICMP_KEPT {
                self.icmp.insert(i.clone());
            }
        }
        if self.followup.is_none() {
            self.followup.clone_from(&o.followup);
        }
    }

    fn status(&self) -> Status {
        if self.flows == 0 {
            Status::NotSeen
        } else if self.worked > 0 && self.filtered > 0 {
            Status::PartlyBlocked
        } else if self.worked > 0 {
            Status::Allowed
        } else if self.filtered > 0 {
            Status::Blocked
        } else {
            Status::Refused
        }
    }
}

/// The rules of a run (or of a live interval), gathered flow by flow.
#[derive(Clone, Debug)]
pub struct Collector {
    opt: FirewallOptions,
    cat: Arc<Catalogue>,
    groups: HashMap<Key, Group, ahash::RandomState>,
    unclassified: u64,
    over_budget: u64,
    pending: u64,
}

impl Collector {
    pub fn new(cat: Arc<Catalogue>, opt: FirewallOptions) -> Collector {
        Collector {
            opt,
            cat,
            groups: HashMap::default(),
            unclassified: 0,
            over_budget: 0,
            pending: 0,
        }
    }

    /// An empty collector with the same settings.
    pub fn fresh(&self) -> Collector {
        Collector::new(Arc::clone(&self.cat), self.opt)
    }

    /// Rule groups held.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The group of `key`, made if there is room; `None` (and counted) past the budget.
    fn group(&mut self, key: Key) -> Option<&mut Group> {
        if !self.groups.contains_key(&key) && self.groups.len() >= self.opt.max_groups {
            self.over_budget += 1;
            return None;
        }
        Some(self.groups.entry(key).or_default())
    }

    /// A flow left the table; `lookup` finds the follow-up it answered.
    pub fn add_flow<'e>(
        &mut self,
        f: &Flow,
        why: EndReason,
        lookup: impl FnOnce(u32) -> Option<&'e Expectation>,
    ) {
        self.add_record(&FlowRecord::from_flow(f, why, Vec::new()), lookup);
    }

    /// A flow still open at capture time `now`, counted with its outcome so far when that is
    /// final or old enough ([`PENDING_GRACE`]), else counted in `flows_pending`.
    pub fn add_open<'e>(
        &mut self,
        f: &Flow,
        now: Nanos,
        lookup: impl FnOnce(u32) -> Option<&'e Expectation>,
    ) {
        let settled =
            f.outcome().is_final_while_open() || f.last_ts <= now.saturating_sub(PENDING_GRACE);
        if settled {
            self.add_flow(f, EndReason::Flushed, lookup);
        } else if self.classified(f.class.service) {
            self.pending += 1;
        }
    }

    fn classified(&self, id: ServiceId) -> bool {
        let kind = self.cat.services().get(usize::from(id.0)).map(|s| s.kind);
        !matches!(kind, None | Some(ServiceKind::Unclassified))
    }

    /// A flow's record; `lookup` finds the follow-up it answered.
    pub fn add_record<'e>(
        &mut self,
        r: &FlowRecord,
        lookup: impl FnOnce(u32) -> Option<&'e Expectation>,
    ) {
        if !self.classified(r.service) {
            self.unclassified += 1;
            return;
        }
        if !matches!(r.proto, Proto::Tcp | Proto::Udp) {
            return;
        }
        let key = (
            r.proto,
            group_ip(r.client.ip, self.opt),
            group_ip(r.server.ip, self.opt),
            r.service,
        );
        let cat = Arc::clone(&self.cat);
        let Some(g) = self.group(key) else { return };
        g.port(r.server.port);
        g.flow(r);
        if let (None, Some(id)) = (&g.followup, r.followup_of) {
            g.followup = lookup(id).map(|e| Box::new(followup_view(&cat, e, false)));
        }
    }

    /// A follow-up announced and not tried (nor optional): a rule from the announcement.
    pub fn add_announced(&mut self, e: &Expectation) {
        if e.flows > 0 || e.optional || !matches!(e.proto, Proto::Tcp | Proto::Udp) {
            return;
        }
        // Who would open it: the other side of the announcing session from the announced host
        // (the RVP server calls its subscriber back; any client of the endpoint mapper connects
        // to the server's port), or the inferred session's peer.
        let src = e.peer.unwrap_or(if e.parent_client.ip == e.addr.ip {
            e.parent_server.ip
        } else {
            e.parent_client.ip
        });
        let key = (
            e.proto,
            group_ip(src, self.opt),
            group_ip(e.addr.ip, self.opt),
            e.service,
        );
        let cat = Arc::clone(&self.cat);
        let Some(g) = self.group(key) else { return };
        if e.addr.port == 0 {
            g.any_port = true;
        } else {
            g.port(e.addr.port);
        }
        if g.followup.is_none() {
            g.followup = Some(Box::new(followup_view(&cat, e, false)));
        }
    }

    /// Adds `other`'s groups and counts (the budget holds: groups past it are counted).
    pub fn merge(&mut self, other: &Collector) {
        for (key, g) in &other.groups {
            if let Some(mine) = self.groups.get_mut(key) {
                mine.merge(g);
            } else if self.groups.len() < self.opt.max_groups {
                self.groups.insert(*key, g.clone());
            } else {
                self.over_budget += g.flows.max(1);
            }
        }
        self.unclassified += other.unclassified;
        self.over_budget += other.over_budget;
        self.pending += other.pending;
    }

    /// The report: rules sorted blocked first.
    pub fn report(&self) -> FirewallReport {
        let mut rules: Vec<Rule> = self
            .groups
            .iter()
            .map(|(key, g)| self.rule(key, g))
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
            aggregate: self.opt.aggregate.map(|n| format!("/{n}")),
            rules,
            unclassified_flows: self.unclassified,
            flow_records_dropped: 0,
            flows_over_rule_budget: self.over_budget,
            flows_pending: self.pending,
            followups_dropped: 0,
        }
    }

    fn rule(&self, &(proto, src, dst, service): &Key, g: &Group) -> Rule {
        let ports: Vec<u16> = g.ports.iter().copied().collect();
        let dst_ports = match g.span {
            _ if g.any_port => "1024-65535".to_string(),
            Some((lo, hi)) if g.ports_over => format!("{lo}-{hi}"),
            _ => super::port_list(&ports),
        };
        let o = |x: Outcome| g.outcomes[x.index()];
        let mut rule = Rule {
            proto: proto.to_string(),
            src: show(src, self.opt),
            dst: show(dst, self.opt),
            dst_ports,
            service: self.cat.id(service).to_string(),
            status: g.status().as_str().to_string(),
            evidence: super::Evidence {
                flows: g.flows,
                established: o(Outcome::Established),
                unanswered: o(Outcome::Unanswered),
                refused: o(Outcome::Refused),
                icmp_unreachable: o(Outcome::IcmpUnreachable),
                one_way: o(Outcome::OneWay),
                icmp_from: g.icmp.iter().cloned().collect(),
                first_ts: g.first_ts.map(ts_secs),
                last_ts: g.last_ts.map(ts_secs),
            },
            why: String::new(),
            advice: String::new(),
        };
        let fu = g.followup.as_deref();
        rule.why = advice::why(&rule, fu, &self.cat);
        let seen = if g.ports_over {
            PORTS_KEPT + 1
        } else {
            ports.len()
        };
        rule.advice = advice::advice(&rule, seen, fu, &self.cat);
        rule
    }
}

/// An address, or the network of its prefix when grouping (IPv6 into /64s).
fn group_ip(ip: IpAddr, opt: FirewallOptions) -> IpAddr {
    let Some(len) = opt.aggregate else { return ip };
    match ip {
        IpAddr::V4(v4) => {
            let len = len.min(32);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
    }
}

/// An address, or its prefix when grouping.
fn show(ip: IpAddr, opt: FirewallOptions) -> String {
    match (opt.aggregate, ip) {
        (None, _) => ip.to_string(),
        (Some(len), IpAddr::V4(_)) => format!("{ip}/{}", len.min(32)),
        (Some(_), IpAddr::V6(_)) => format!("{ip}/64"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let opt = FirewallOptions {
            aggregate: Some(24),
            ..FirewallOptions::default()
        };
        let g = |s: &str| show(group_ip(s.parse().unwrap(), opt), opt);
        assert_eq!(g("10.2.0.10"), "10.2.0.0/24");
        assert_eq!(g("2001:db8::1"), "2001:db8::/64");
        let zero = FirewallOptions {
            aggregate: Some(0),
            ..FirewallOptions::default()
        };
        assert_eq!(
            show(group_ip("10.2.0.10".parse().unwrap(), zero), zero),
            "0.0.0.0/0"
        );
        let none = FirewallOptions::default();
        assert_eq!(
            show(group_ip("10.2.0.10".parse().unwrap(), none), none),
            "10.2.0.10"
        );
    }

    #[test]
    fn ports_past_the_cap_become_a_span() {
        let mut g = Group::default();
        for p in (0..200u16).map(|i| 2000 + i * 3) {
            g.port(p);
        }
        assert_eq!(g.ports.len(), PORTS_KEPT);
        assert!(g.ports_over);
        assert_eq!(g.span, Some((2000, 2597)));
    }
}
