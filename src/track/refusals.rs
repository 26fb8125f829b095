//! Run-wide diagnostics shared by the trackers that find refusals (POP3 and IMAP logins, X.400
//! connections and MTA binds): counts by name, and the refusals themselves, grouped by server and
//! text, bounded, for the table's "LOGIN AND BIND FAILURES" lines.

use std::collections::BTreeMap;

use super::diagnostics::{Diagnostics, DiagnosticsAny};
use crate::classify::Catalogue;
use crate::packet::Endpoint;

/// Distinct (server, text) refusals kept per tracker kind; more are only counted.
const MAX_EXAMPLES: usize = 32;

/// One refusal, as the table shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Example {
    pub client: Endpoint,
    pub server: Endpoint,
    pub text: String,
    pub count: u64,
}

/// A tracker kind's refusals.
#[derive(Clone, Debug, Default)]
pub struct Refusals {
    pub name: &'static str,
    /// Counters (`flows`, `logins_ok`, `logins_refused`, ...), reported as they are.
    pub counts: BTreeMap<&'static str, u64>,
    pub examples: Vec<Example>,
    /// Refusals not kept as examples.
    pub examples_dropped: u64,
}

impl Refusals {
    pub fn new(name: &'static str) -> Refusals {
        Refusals {
            name,
            ..Refusals::default()
        }
    }

    pub fn add(&mut self, what: &'static str, n: u64) {
        if n > 0 {
            *self.counts.entry(what).or_default() += n;
        }
    }

    /// Records one refusal in plain words.
    pub fn refusal(&mut self, client: Endpoint, server: Endpoint, text: &str) {
        if let Some(e) = self
            .examples
            .iter_mut()
            .find(|e| e.server == server && e.text == text)
        {
            e.count += 1;
        } else if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(Example {
                client,
                server,
                text: text.to_string(),
                count: 1,
            });
        } else {
            self.examples_dropped += 1;
        }
    }

    /// The `Refusals` of an end context's diagnostics, if they are ours.
    pub fn of<'a>(d: &'a mut Option<&mut dyn Diagnostics>) -> Option<&'a mut Refusals> {
        d.as_mut()
            .and_then(|d| d.as_any_mut().downcast_mut::<Refusals>())
    }
}

impl Diagnostics for Refusals {
    fn name(&self) -> &'static str {
        self.name
    }
    fn merge(&mut self, other: &dyn Diagnostics) {
        let Some(o) = other.as_any().downcast_ref::<Refusals>() else {
            return;
        };
        for (k, v) in &o.counts {
            self.add(k, *v);
        }
        for e in &o.examples {
            for _ in 0..e.count {
                self.refusal(e.client, e.server, &e.text);
            }
        }
        self.examples_dropped += o.examples_dropped;
    }
    fn since(&self, earlier: &dyn Diagnostics) -> Box<dyn Diagnostics> {
        let Some(e) = earlier.as_any().downcast_ref::<Refusals>() else {
            return self.clone_box();
        };
        let mut d = Refusals::new(self.name);
        for (k, v) in &self.counts {
            d.add(k, v.saturating_sub(e.counts.get(k).copied().unwrap_or(0)));
        }
        for x in &self.examples {
            let before = e
                .examples
                .iter()
                .find(|y| y.server == x.server && y.text == x.text)
                .map_or(0, |y| y.count);
            if x.count > before {
                d.examples.push(Example {
                    count: x.count - before,
                    ..x.clone()
                });
            }
        }
        d.examples_dropped = self.examples_dropped.saturating_sub(e.examples_dropped);
        Box::new(d)
    }
    fn to_json(&self, _: &Catalogue) -> serde_json::Value {
        let mut v = serde_json::Map::new();
        for (k, n) in &self.counts {
            v.insert((*k).to_string(), (*n).into());
        }
        let refusals: Vec<_> = self
            .examples
            .iter()
            .map(|e| {
                serde_json::json!({
                    "client": e.client.to_string(),
                    "server": e.server.to_string(),
                    "text": e.text,
                    "count": e.count,
                })
            })
            .collect();
        v.insert("refusals".to_string(), refusals.into());
        v.insert(
            "refusals_not_listed".to_string(),
            self.examples_dropped.into(),
        );
        v.into()
    }
    fn problems(&self, _: &Catalogue) -> Vec<String> {
        let mut out: Vec<String> = self
            .examples
            .iter()
            .map(|e| {
                let times = if e.count > 1 {
                    format!(" ({} times)", e.count)
                } else {
                    String::new()
                };
                format!("{} ({} → {}){times}", e.text, e.client.ip, e.server)
            })
            .collect();
        if self.examples_dropped > 0 {
            out.push(format!(
                "… and {} more {} refusals",
                self.examples_dropped, self.name
            ));
        }
        out
    }
}

/// Text of a protocol line for the report: lossy UTF-8, control characters dropped, at most 100
/// characters.
pub fn line_text(line: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(line)
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    s.trim_end().to_string()
}
