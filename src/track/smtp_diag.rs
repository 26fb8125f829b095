//! SMTP's run-wide findings: sessions by verdict, replies by code, commands by verb, advertised
//! extensions by sessions, and one problem record per session that did not deliver.

use super::diagnostics::{add_counts, sub_counts};
use std::collections::BTreeMap;

use super::diagnostics::Diagnostics;
use super::smtp::Reply;
use crate::classify::Catalogue;
use crate::packet::Nanos;

/// Problem records kept per run by default (the rest are counted in `problems_not_listed`).
pub const MAX_PROBLEMS: usize = 500;
/// Distinct extension keywords kept.
pub const MAX_EXTENSION_KEYWORDS: usize = 64;

/// One session that did not deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpProblem {
    pub client: String,
    pub server: String,
    pub first_ts: Nanos,
    pub verdict: &'static str,
    /// The reply that decided the verdict.
    pub reply: Option<Reply>,
    /// The last transaction's sender and recipients.
    pub mail_from: Option<String>,
    pub rcpt: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpDiag {
    /// Problem records kept.
    pub cap: usize,
    pub sessions: u64,
    pub verdicts: BTreeMap<&'static str, u64>,
    pub replies: BTreeMap<u16, u64>,
    pub commands: BTreeMap<&'static str, u64>,
    pub extensions: BTreeMap<String, u64>,
    pub extensions_not_listed: u64,
    pub problems: Vec<SmtpProblem>,
    pub problems_not_listed: u64,
}

impl Default for SmtpDiag {
    fn default() -> Self {
        SmtpDiag::with_cap(MAX_PROBLEMS)
    }
}

impl SmtpDiag {
    pub fn with_cap(cap: usize) -> SmtpDiag {
        SmtpDiag {
            cap,
            sessions: 0,
            verdicts: BTreeMap::new(),
            replies: BTreeMap::new(),
            commands: BTreeMap::new(),
            extensions: BTreeMap::new(),
            extensions_not_listed: 0,
            problems: Vec::new(),
            problems_not_listed: 0,
        }
    }

    pub(super) fn extension(&mut self, kw: &str) {
        let kw = kw.to_ascii_uppercase();
        if let Some(n) = self.extensions.get_mut(&kw) {
            *n += 1;
        } else if self.extensions.len() < MAX_EXTENSION_KEYWORDS {
            self.extensions.insert(kw, 1);
        } else {
            self.extensions_not_listed += 1;
        }
    }

    pub(super) fn problem(&mut self, p: SmtpProblem) {
        if self.problems.len() < self.cap {
            self.problems.push(p);
        } else {
            self.problems_not_listed += 1;
        }
    }
}

/// Seconds since the epoch, rounded to microseconds.
pub(super) fn secs(ts: Nanos) -> f64 {
    (ts / 1000) as f64 / 1e6
}

impl Diagnostics for SmtpDiag {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn merge(&mut self, other: &dyn Diagnostics) {
        let Some(o) = other.as_any().downcast_ref::<SmtpDiag>() else {
            return;
        };
        self.sessions += o.sessions;
        add_counts(&mut self.verdicts, &o.verdicts);
        add_counts(&mut self.replies, &o.replies);
        add_counts(&mut self.commands, &o.commands);
        for (k, v) in &o.extensions {
            if let Some(n) = self.extensions.get_mut(k) {
                *n += v;
            } else if self.extensions.len() < MAX_EXTENSION_KEYWORDS {
                self.extensions.insert(k.clone(), *v);
            } else {
                self.extensions_not_listed += v;
            }
        }
        self.extensions_not_listed += o.extensions_not_listed;
        for p in &o.problems {
            self.problem(p.clone());
        }
        self.problems_not_listed += o.problems_not_listed;
    }

    fn since(&self, earlier: &dyn Diagnostics) -> Box<dyn Diagnostics> {
        let e = earlier
            .as_any()
            .downcast_ref::<SmtpDiag>()
            .cloned()
            .unwrap_or_default();
        Box::new(SmtpDiag {
            cap: self.cap,
            sessions: self.sessions.saturating_sub(e.sessions),
            verdicts: sub_counts(&self.verdicts, &e.verdicts),
            replies: sub_counts(&self.replies, &e.replies),
            commands: sub_counts(&self.commands, &e.commands),
            extensions: sub_counts(&self.extensions, &e.extensions),
            extensions_not_listed: self
                .extensions_not_listed
                .saturating_sub(e.extensions_not_listed),
            // Problems are appended in order: the new ones follow the earlier ones.
            problems: self
                .problems
                .get(e.problems.len()..)
                .unwrap_or_default()
                .to_vec(),
            problems_not_listed: self
                .problems_not_listed
                .saturating_sub(e.problems_not_listed),
        })
    }

    fn to_json(&self, _: &Catalogue) -> serde_json::Value {
        serde_json::json!({
            "sessions": self.sessions,
            "verdicts": self.verdicts,
            "replies": self.replies.iter().map(|(c, n)| (c.to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "commands": self.commands,
            "extensions": self.extensions,
            "extensions_not_listed": self.extensions_not_listed,
            "problems": self.problems.iter().map(|p| serde_json::json!({
                "client": p.client,
                "server": p.server,
                "time": secs(p.first_ts),
                "verdict": p.verdict,
                "reply": p.reply.as_ref().map(Reply::json),
                "mail_from": p.mail_from,
                "rcpt": p.rcpt,
            })).collect::<Vec<_>>(),
            "problems_not_listed": self.problems_not_listed,
        })
    }

    fn problems(&self, _: &Catalogue) -> Vec<String> {
        self.problems.iter().map(problem_line).collect()
    }
}

/// `10.1.0.5:1040 → 10.2.0.2:25 rejected: 550 5.7.1 Unable to relay (a@x → b@y)`.
pub fn problem_line(p: &SmtpProblem) -> String {
    let mut s = format!("{} → {} {}", p.client, p.server, p.verdict);
    if let Some(r) = &p.reply {
        s.push_str(": ");
        s.push_str(&r.line());
    }
    if let Some(from) = &p.mail_from {
        s.push_str(&format!(" (<{from}> → {})", p.rcpt.join(", ")));
    }
    s
}
