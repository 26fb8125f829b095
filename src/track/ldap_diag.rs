//! LDAP's run-wide findings: operations by name, results by (operation, code), and the failed
//! results grouped by (operation, code, server) with the server's diagnostic message.

use super::diagnostics::{add_counts, problems_since, sub_counts};
use std::collections::BTreeMap;
use std::net::IpAddr;

use super::diagnostics::Diagnostics;
use crate::classify::Catalogue;
use crate::signal::ldap;

/// Distinct failed (operation, code, server) kept by default (the rest counted in
/// `problems_not_listed`).
pub const MAX_PROBLEMS: usize = 500;
const MAX_CLIENTS: usize = 8;

/// (operation tag, result code, server endpoint).
pub type ProblemKey = (u8, u32, String);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problem {
    pub count: u64,
    pub message: String,
    pub clients: Vec<IpAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdapDiag {
    /// Problem records kept.
    pub cap: usize,
    pub operations: BTreeMap<&'static str, u64>,
    pub results: BTreeMap<(u8, u32), u64>,
    pub sasl_wrapped: u64,
    pub tls_flows: u64,
    pub problems: BTreeMap<ProblemKey, Problem>,
    pub problems_not_listed: u64,
}

impl Default for LdapDiag {
    fn default() -> Self {
        LdapDiag::with_cap(MAX_PROBLEMS)
    }
}

impl LdapDiag {
    pub fn with_cap(cap: usize) -> LdapDiag {
        LdapDiag {
            cap,
            operations: BTreeMap::new(),
            results: BTreeMap::new(),
            sasl_wrapped: 0,
            tls_flows: 0,
            problems: BTreeMap::new(),
            problems_not_listed: 0,
        }
    }

    pub(super) fn problem(&mut self, key: ProblemKey, count: u64, message: &str, client: IpAddr) {
        let p = Problem {
            count,
            message: message.to_string(),
            clients: vec![client],
        };
        self.add_problem(key, &p);
    }

    fn add_problem(&mut self, key: ProblemKey, p: &Problem) {
        if let Some(e) = self.problems.get_mut(&key) {
            e.count += p.count;
            if e.message.is_empty() {
                e.message.clone_from(&p.message);
            }
            for &c in &p.clients {
                if e.clients.len() < MAX_CLIENTS && !e.clients.contains(&c) {
                    e.clients.push(c);
                }
            }
        } else if self.problems.len() < self.cap {
            self.problems.insert(key, p.clone());
        } else {
            self.problems_not_listed += p.count;
        }
    }
}

fn results_json(r: &BTreeMap<(u8, u32), u64>) -> Vec<serde_json::Value> {
    r.iter()
        .map(|((op, code), n)| {
            serde_json::json!({
                "op": ldap::op_name(*op),
                "code": code,
                "name": ldap::result_name(*code),
                "count": n,
            })
        })
        .collect()
}

impl Diagnostics for LdapDiag {
    fn name(&self) -> &'static str {
        "ldap"
    }

    fn merge(&mut self, other: &dyn Diagnostics) {
        let Some(o) = other.as_any().downcast_ref::<LdapDiag>() else {
            return;
        };
        add_counts(&mut self.operations, &o.operations);
        add_counts(&mut self.results, &o.results);
        self.sasl_wrapped += o.sasl_wrapped;
        self.tls_flows += o.tls_flows;
        for (k, p) in &o.problems {
            self.add_problem(k.clone(), p);
        }
        self.problems_not_listed += o.problems_not_listed;
    }

    fn since(&self, earlier: &dyn Diagnostics) -> Box<dyn Diagnostics> {
        let e = earlier
            .as_any()
            .downcast_ref::<LdapDiag>()
            .cloned()
            .unwrap_or_default();
        let problems = problems_since(
            &self.problems,
            &e.problems,
            |p| p.count,
            |p, count| Problem { count, ..p.clone() },
        );
        Box::new(LdapDiag {
            cap: self.cap,
            operations: sub_counts(&self.operations, &e.operations),
            results: sub_counts(&self.results, &e.results),
            sasl_wrapped: self.sasl_wrapped.saturating_sub(e.sasl_wrapped),
            tls_flows: self.tls_flows.saturating_sub(e.tls_flows),
            problems,
            problems_not_listed: self
                .problems_not_listed
                .saturating_sub(e.problems_not_listed),
        })
    }

    fn to_json(&self, _: &Catalogue) -> serde_json::Value {
        let mut problems: Vec<(&ProblemKey, &Problem)> = self.problems.iter().collect();
        problems.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        serde_json::json!({
            "operations": self.operations,
            "results": results_json(&self.results),
            "sasl_wrapped": self.sasl_wrapped,
            "tls_flows": self.tls_flows,
            "problems": problems.iter().map(|((op, code, server), p)| serde_json::json!({
                "op": ldap::op_name(*op),
                "code": code,
                "name": ldap::result_name(*code),
                "server": server,
                "count": p.count,
                "message": p.message,
                "clients": p.clients.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "problems_not_listed": self.problems_not_listed,
        })
    }
}
