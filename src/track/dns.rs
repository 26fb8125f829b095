//! DNS (udp/53 and tcp/53): matches queries to responses by (client, server, id, question) in a
//! small per-flow table allocated when the tracker attaches, so datagrams of known flows cost no
//! allocation (a flow with more than four questions grows it, up to `--diagnostics-per-flow`). Repeated
//! queries are one transaction; a query never answered is `unanswered`; a truncated (TC) answer
//! over UDP announces the TCP retry to the same server as an optional follow-up.

use super::dns_diag::{DnsDiag, ProblemKey};
use super::framing::{drive, FrameStats, Len16};
use super::{Announcement, Cx, Dir, EndCx, FlowInfo, Limits, Tracker, TrackerKind, SECOND};
use crate::classify::{Catalogue, ServiceId};
use crate::packet::{Endpoint, Nanos, Proto};
use crate::signal::dns::{self, MAX_NAME};

/// Question slots allocated when the tracker attaches: most flows (a UDP exchange) ask one
/// question, and a slot holds a whole name (about 300 bytes); four of them were 1.2 KiB per DNS
/// flow, a fifth of the peak memory of the generated benchmark capture (README, Benchmarks).
const SLOTS_AT_ATTACH: usize = 1;
/// Distinct query types counted per flow (more are counted as `qtypes_cap`).
const MAX_QTYPES: usize = 8;
/// How long after a TC answer the TCP retry may start.
const TC_RETRY_WINDOW: Nanos = 30 * SECOND;

#[derive(Clone, Copy, Debug)]
struct Answer {
    rcode: u8,
    answers: u16,
    rtt: Nanos,
}

#[derive(Clone, Copy)]
struct Slot {
    id: u16,
    qtype: u16,
    qclass: u16,
    name: [u8; MAX_NAME],
    name_len: usize,
    first_ts: Nanos,
    queries: u32,
    answer: Option<Answer>,
    truncated: bool,
}

impl Slot {
    fn name(&self) -> &[u8] {
        self.name.get(..self.name_len).unwrap_or_default()
    }

    fn is_problem(&self) -> bool {
        self.answer.is_none_or(|a| a.rcode != 0)
    }
}

pub(super) struct DnsKind {
    dns: ServiceId,
    limits: Limits,
}

impl DnsKind {
    pub fn new(c: &Catalogue, limits: Limits) -> Self {
        DnsKind {
            dns: c.must("dns"),
            limits,
        }
    }
}

impl TrackerKind for DnsKind {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn attach(&self, _: &FlowInfo) -> Box<dyn Tracker> {
        Box::new(Dns {
            dns: self.dns,
            max_slots: self.limits.per_flow.max(1),
            slots: Vec::with_capacity(SLOTS_AT_ATTACH),
            framers: [Len16, Len16],
            frames: FrameStats::default(),
            queries: 0,
            responses: 0,
            qtypes: [(0, 0); MAX_QTYPES],
            rcodes: [0; 16],
            dropped: 0,
            dropped_unanswered: 0,
            tc_announced: false,
        })
    }

    fn diagnostics(&self) -> Option<Box<dyn super::Diagnostics>> {
        Some(Box::new(DnsDiag::with_cap(self.limits.problems)))
    }
}

struct Dns {
    dns: ServiceId,
    /// Question slots kept (transactions listed per flow).
    max_slots: usize,
    slots: Vec<Slot>,
    framers: [Len16; 2],
    frames: FrameStats,
    /// Query and response messages.
    queries: u64,
    responses: u64,
    /// Query messages by type (type, count; count 0: free).
    qtypes: [(u16, u32); MAX_QTYPES],
    /// Response messages by rcode.
    rcodes: [u32; 16],
    /// Transactions pushed out of the full table, and how many of them were unanswered.
    dropped: u32,
    dropped_unanswered: u32,
    tc_announced: bool,
}

impl Dns {
    fn message(&mut self, msg: &[u8], cx: &mut Cx<'_>) {
        let mut name = [0u8; MAX_NAME];
        let m = match dns::parse(msg, &mut name) {
            Ok(m) => m,
            Err(_) => {
                cx.error("undecodable");
                return;
            }
        };
        cx.count("messages");
        let q = m.question;
        let name = q.and_then(|q| name.get(..q.name_len)).unwrap_or_default();
        let matches = |s: &Slot| {
            s.id == m.id
                && q.is_none_or(|q| s.qtype == q.qtype && s.qclass == q.qclass && s.name() == name)
        };
        if !m.response {
            self.queries += 1;
            let Some(q) = q else {
                return;
            };
            self.count_qtype(q.qtype, cx);
            if let Some(s) = self
                .slots
                .iter_mut()
                .find(|s| s.answer.is_none() && matches(s))
            {
                s.queries = s.queries.saturating_add(1);
                cx.count("retransmissions");
                return;
            }
            let mut slot = Slot {
                id: m.id,
                qtype: q.qtype,
                qclass: q.qclass,
                name: [0; MAX_NAME],
                name_len: name.len(),
                first_ts: cx.ts,
                queries: 1,
                answer: None,
                truncated: false,
            };
            if let Some(dst) = slot.name.get_mut(..name.len()) {
                dst.copy_from_slice(name);
            }
            self.insert(slot, cx);
            return;
        }
        self.responses += 1;
        if let Some(n) = self.rcodes.get_mut(usize::from(m.rcode & 0xf)) {
            *n = n.saturating_add(1);
        }
        let Some(s) = self.slots.iter_mut().find(|s| matches(s)) else {
            cx.error("unmatched_response");
            return;
        };
        if s.answer.is_none() {
            s.answer = Some(Answer {
                rcode: m.rcode,
                answers: m.answers,
                rtt: cx.ts.saturating_sub(s.first_ts),
            });
        }
        if m.truncated && cx.flow.proto == Proto::Udp {
            s.truncated = true;
            cx.count("truncated");
            if !self.tc_announced {
                self.tc_announced = true;
                let a = Announcement {
                    optional: true,
                    ..Announcement::new(
                        self.dns,
                        Proto::Tcp,
                        Endpoint::new(cx.flow.server.ip, cx.flow.server.port),
                        "tcp_retry",
                        "TC",
                        TC_RETRY_WINDOW,
                    )
                };
                cx.announce(a);
            }
        }
    }

    fn count_qtype(&mut self, t: u16, cx: &mut Cx<'_>) {
        if let Some(e) = self.qtypes.iter_mut().find(|e| e.1 > 0 && e.0 == t) {
            e.1 = e.1.saturating_add(1);
        } else if let Some(e) = self.qtypes.iter_mut().find(|e| e.1 == 0) {
            *e = (t, 1);
        } else {
            cx.error("qtypes_cap");
        }
    }

    /// Adds a question; a full table gives up an answered NOERROR slot first, else the oldest.
    fn insert(&mut self, slot: Slot, cx: &mut Cx<'_>) {
        if self.slots.len() >= self.max_slots {
            let victim = self.slots.iter().position(|s| !s.is_problem()).unwrap_or(0);
            if self.slots.get(victim).is_some_and(|s| s.answer.is_none()) {
                self.dropped_unanswered += 1;
            }
            if victim < self.slots.len() {
                self.slots.remove(victim);
            }
            self.dropped += 1;
            cx.error("transactions_cap");
        }
        self.slots.push(slot);
    }

    fn record(&self) -> serde_json::Value {
        let tx: Vec<serde_json::Value> = self
            .slots
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id,
                    "first_ts": super::smtp_diag::secs(s.first_ts),
                    "name": String::from_utf8_lossy(s.name()),
                    "qtype": dns::type_name(s.qtype),
                    "answered": s.answer.is_some(),
                    "rcode": s.answer.map(|a| dns::rcode_name(a.rcode)),
                    "answers": s.answer.map_or(0, |a| a.answers),
                    "rtt_ms": s.answer.map(|a| (a.rtt / 1000) as f64 / 1000.0),
                    "queries": s.queries,
                    "truncated": s.truncated,
                })
            })
            .collect();
        serde_json::json!({ "transactions": tx, "transactions_not_listed": self.dropped })
    }

    fn fold(&self, cx: &mut EndCx<'_>) {
        let Some(d) = cx
            .diagnostics
            .as_mut()
            .and_then(|d| d.as_any_mut().downcast_mut::<DnsDiag>())
        else {
            return;
        };
        d.queries += self.queries;
        d.responses += self.responses;
        for &(t, n) in self.qtypes.iter().filter(|e| e.1 > 0) {
            count_by_name(&mut d.qtypes, dns::type_name(t), n);
        }
        for (r, &n) in self.rcodes.iter().enumerate().filter(|e| *e.1 > 0) {
            count_by_name(&mut d.rcodes, dns::rcode_name(r as u8), n);
        }
        d.unanswered += u64::from(self.dropped_unanswered);
        d.transactions_not_listed += u64::from(self.dropped);
        for s in &self.slots {
            match s.answer {
                Some(a) => d.rtt(a.rtt),
                None => d.unanswered += 1,
            }
            if s.is_problem() {
                let outcome = s
                    .answer
                    .map_or("unanswered".into(), |a| dns::rcode_name(a.rcode));
                d.problem(
                    ProblemKey {
                        name: String::from_utf8_lossy(s.name()).into_owned(),
                        qtype: dns::type_name(s.qtype).into_owned(),
                        outcome: outcome.into_owned(),
                    },
                    cx.flow.client.ip,
                    cx.flow.server.ip,
                    s.first_ts,
                );
            }
        }
    }
}

/// Adds `n` to `name`'s count; the name is copied only the first time it is counted (it was
/// copied for every query type and reply code of every flow).
fn count_by_name(
    counts: &mut std::collections::BTreeMap<String, u64>,
    name: std::borrow::Cow<'static, str>,
    n: u32,
) {
    match counts.get_mut(name.as_ref()) {
        Some(c) => *c += u64::from(n),
        None => {
            counts.insert(name.into_owned(), u64::from(n));
        }
    }
}

impl Tracker for Dns {
    fn datagram(&mut self, _: Dir, payload: &[u8], cx: &mut Cx<'_>) {
        self.message(payload, cx);
    }

    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        let d = dir as usize;
        let mut framer = self.framers[d];
        let mut frames = self.frames;
        let used = drive(&mut framer, &mut frames, bytes, &mut |msg| {
            self.message(msg, cx);
            true
        });
        self.framers[d] = framer;
        self.frames = frames;
        used
    }

    fn max_unit(&self) -> usize {
        // A DNS message over TCP: 2-byte length, up to 64 KiB.
        65_537
    }

    fn end(&mut self, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        if self.queries == 0 && self.responses == 0 {
            return None;
        }
        self.fold(cx);
        cx.want_record.then(|| self.record())
    }
}
