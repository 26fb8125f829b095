//! DNS's run-wide findings: query and response messages, query types, response codes,
//! unanswered transactions, response times, and the failed lookups grouped by (name, type,
//! outcome).

use super::diagnostics::{add_counts, problems_since, sub_counts};
use std::collections::BTreeMap;
use std::net::IpAddr;

use hdrhistogram::Histogram;

use super::diagnostics::Diagnostics;
use super::smtp_diag::secs;
use crate::classify::Catalogue;
use crate::packet::Nanos;
use crate::summary::Micros;

/// Distinct failed lookups kept by default (the rest are counted in `problems_not_listed`).
pub const MAX_PROBLEMS: usize = 500;
/// Clients and servers listed per failed lookup.
const MAX_HOSTS: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProblemKey {
    pub name: String,
    pub qtype: String,
    /// An rcode name or `unanswered`.
    pub outcome: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problem {
    pub count: u64,
    pub clients: Vec<IpAddr>,
    pub servers: Vec<IpAddr>,
    pub first_ts: Nanos,
}

#[derive(Clone, Debug)]
pub struct DnsDiag {
    /// Problem records kept.
    pub cap: usize,
    pub queries: u64,
    pub responses: u64,
    pub unanswered: u64,
    pub transactions_not_listed: u64,
    pub qtypes: BTreeMap<String, u64>,
    pub rcodes: BTreeMap<String, u64>,
    /// Response times, microseconds.
    pub rtt_us: Micros,
    pub problems: BTreeMap<ProblemKey, Problem>,
    pub problems_not_listed: u64,
}

impl Default for DnsDiag {
    fn default() -> Self {
        DnsDiag::with_cap(MAX_PROBLEMS)
    }
}

impl DnsDiag {
    pub fn with_cap(cap: usize) -> DnsDiag {
        DnsDiag {
            cap,
            queries: 0,
            responses: 0,
            unanswered: 0,
            transactions_not_listed: 0,
            qtypes: BTreeMap::new(),
            rcodes: BTreeMap::new(),
            rtt_us: Histogram::new(3).expect("3 significant figures is valid"),
            problems: BTreeMap::new(),
            problems_not_listed: 0,
        }
    }
}

fn add_host(list: &mut Vec<IpAddr>, ip: IpAddr) {
    if list.len() < MAX_HOSTS && !list.contains(&ip) {
        list.push(ip);
    }
}

impl DnsDiag {
    pub(super) fn rtt(&mut self, rtt: Nanos) {
        self.rtt_us.saturating_record((rtt / 1000).max(0) as u64);
    }

    /// One more transaction with the problem `key`, from `client` to `server` at `ts`.
    pub(super) fn problem(&mut self, key: ProblemKey, client: IpAddr, server: IpAddr, ts: Nanos) {
        self.add_problem(key, 1, &[client], &[server], ts);
    }

    /// Adds `count` transactions with the problem `key` (from `clients` to `servers`, the first
    /// at `first_ts`). Nothing is allocated for a problem already listed, or past the cap,
    /// beyond its key.
    fn add_problem(
        &mut self,
        key: ProblemKey,
        count: u64,
        clients: &[IpAddr],
        servers: &[IpAddr],
        first_ts: Nanos,
    ) {
        if let Some(e) = self.problems.get_mut(&key) {
            e.count += count;
            e.first_ts = e.first_ts.min(first_ts);
            for &c in clients {
                add_host(&mut e.clients, c);
            }
            for &s in servers {
                add_host(&mut e.servers, s);
            }
        } else if self.problems.len() < self.cap {
            let p = Problem {
                count,
                clients: clients.to_vec(),
                servers: servers.to_vec(),
                first_ts,
            };
            self.problems.insert(key, p);
        } else {
            self.problems_not_listed += count;
        }
    }
}

impl Diagnostics for DnsDiag {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn merge(&mut self, other: &dyn Diagnostics) {
        let Some(o) = other.as_any().downcast_ref::<DnsDiag>() else {
            return;
        };
        self.queries += o.queries;
        self.responses += o.responses;
        self.unanswered += o.unanswered;
        self.transactions_not_listed += o.transactions_not_listed;
        add_counts(&mut self.qtypes, &o.qtypes);
        add_counts(&mut self.rcodes, &o.rcodes);
        let _ = self.rtt_us.add(&o.rtt_us);
        for (k, p) in &o.problems {
            self.add_problem(k.clone(), p.count, &p.clients, &p.servers, p.first_ts);
        }
        self.problems_not_listed += o.problems_not_listed;
    }

    fn since(&self, earlier: &dyn Diagnostics) -> Box<dyn Diagnostics> {
        let e = earlier
            .as_any()
            .downcast_ref::<DnsDiag>()
            .cloned()
            .unwrap_or_default();
        let mut rtt_us = self.rtt_us.clone();
        let _ = rtt_us.subtract(&e.rtt_us);
        let problems = problems_since(
            &self.problems,
            &e.problems,
            |p| p.count,
            |p, count| Problem { count, ..p.clone() },
        );
        Box::new(DnsDiag {
            cap: self.cap,
            queries: self.queries.saturating_sub(e.queries),
            responses: self.responses.saturating_sub(e.responses),
            unanswered: self.unanswered.saturating_sub(e.unanswered),
            transactions_not_listed: self
                .transactions_not_listed
                .saturating_sub(e.transactions_not_listed),
            qtypes: sub_counts(&self.qtypes, &e.qtypes),
            rcodes: sub_counts(&self.rcodes, &e.rcodes),
            rtt_us,
            problems,
            problems_not_listed: self
                .problems_not_listed
                .saturating_sub(e.problems_not_listed),
        })
    }

    fn to_json(&self, _: &Catalogue) -> serde_json::Value {
        let h = &self.rtt_us;
        let ms = |v: u64| (v as f64 / 1000.0 * 1000.0).round() / 1000.0;
        let rtt = if h.is_empty() {
            serde_json::json!({"count": 0, "p50": 0.0, "p95": 0.0, "max": 0.0})
        } else {
            serde_json::json!({
                "count": h.len(),
                "p50": ms(h.value_at_quantile(0.5)),
                "p95": ms(h.value_at_quantile(0.95)),
                "max": ms(h.max()),
            })
        };
        // Most frequent first.
        let mut problems: Vec<(&ProblemKey, &Problem)> = self.problems.iter().collect();
        problems.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        serde_json::json!({
            "queries": self.queries,
            "responses": self.responses,
            "unanswered": self.unanswered,
            "qtypes": self.qtypes,
            "rcodes": self.rcodes,
            "rtt_ms": rtt,
            "transactions_not_listed": self.transactions_not_listed,
            "problems": problems.iter().map(|(k, p)| serde_json::json!({
                "name": k.name,
                "qtype": k.qtype,
                "outcome": k.outcome,
                "count": p.count,
                "clients": p.clients.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "servers": p.servers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "first_ts": secs(p.first_ts),
            })).collect::<Vec<_>>(),
            "problems_not_listed": self.problems_not_listed,
        })
    }
}
