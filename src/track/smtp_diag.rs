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

    /// Counts an EHLO keyword, in capitals. A keyword already counted is found without an
    /// allocation (it was one per keyword of every session, a good part of ending a session).
    pub(super) fn extension(&mut self, kw: &str) {
        // In capitals, on the stack when it fits (ASCII case changes keep UTF-8 valid).
        let mut buf = [0u8; 32];
        let long;
        let upper = match buf.get_mut(..kw.len()).and_then(|b| {
            b.copy_from_slice(kw.as_bytes());
            b.make_ascii_uppercase();
            std::str::from_utf8(b).ok()
        }) {
            Some(u) => u,
            None => {
                long = kw.to_ascii_uppercase();
                long.as_str()
            }
        };
        if let Some(n) = self.extensions.get_mut(upper) {
            *n += 1;
        } else if self.extensions.len() < MAX_EXTENSION_KEYWORDS {
            self.extensions.insert(upper.to_owned(), 1);
        } else {
            self.extensions_not_listed += 1;
        }
    }

    /// Lists the problem `p` makes, or counts it when the list is full: it is only built when
    /// it is listed (its addresses and mail addresses are strings).
    pub(super) fn problem(&mut self, p: impl FnOnce() -> SmtpProblem) {
        if self.problems.len() < self.cap {
            self.problems.push(p());
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
            self.problem(|| p.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Keywords are counted in capitals whatever their case or length, and the list stops at
    /// its cap; a problem is built only when it is listed, and counted when it is not.
    #[test]
    fn keywords_and_problems_are_counted_within_their_caps() {
        let mut d = SmtpDiag::with_cap(2);
        let long = "x-".repeat(40);
        for kw in [
            "pipelining",
            "PIPELINING",
            "Size",
            long.as_str(),
            long.as_str(),
        ] {
            d.extension(kw);
        }
        assert_eq!(d.extensions.get("PIPELINING"), Some(&2));
        assert_eq!(d.extensions.get("SIZE"), Some(&1));
        assert_eq!(d.extensions.get(&long.to_ascii_uppercase()), Some(&2));
        for i in 0..MAX_EXTENSION_KEYWORDS + 5 {
            d.extension(&format!("k{i}"));
        }
        assert_eq!(d.extensions.len(), MAX_EXTENSION_KEYWORDS);
        assert_eq!(d.extensions_not_listed, 8);
        let built = std::cell::Cell::new(0);
        let problem = || {
            built.set(built.get() + 1);
            SmtpProblem {
                client: "10.0.0.1:1025".into(),
                server: "10.0.0.2:25".into(),
                first_ts: 0,
                verdict: "rejected",
                reply: None,
                mail_from: None,
                rcpt: Vec::new(),
            }
        };
        for _ in 0..5 {
            d.problem(problem);
        }
        assert_eq!((d.problems.len(), d.problems_not_listed), (2, 3));
        assert_eq!(built.get(), 2, "problems past the cap are not built");
    }
}
