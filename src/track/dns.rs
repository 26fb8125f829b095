//! DNS (udp/53 and tcp/53): matches queries to responses by (client, server, id, question) in a
//! small per-flow table kept in the tracker itself: the first question and a name of up to
//! [`INLINE_NAME`] bytes need no allocation of their own (a flow with more questions grows the
//! table, up to `--diagnostics-per-flow`; a longer name takes one allocation). Repeated
//! queries are one transaction; a query never answered is `unanswered`; a truncated (TC) answer
//! over UDP announces the TCP retry to the same server as an optional follow-up.

use super::counts::SmallCounts;
use super::dns_diag::{DnsDiag, ProblemKey};
use super::framing::{drive, FrameStats, Len16};
use super::{Announcement, Cx, Dir, EndCx, FlowInfo, Limits, Tracker, TrackerKind, SECOND};
use crate::classify::{Catalogue, ServiceId};
use crate::packet::{Endpoint, Nanos, Proto};
use crate::signal::dns::{self, MAX_NAME};
use smallvec::SmallVec;

/// Name bytes a question keeps in place; longer names take an allocation of their exact
/// length. 67 % of the query names in the first 300 000 packets of the real-traffic benchmark
/// mix fit (tshark's `dns.qry.name`), and all of the generated capture's. A slot used to hold a
/// whole name (255 bytes) in an allocation of its own: with the tracker's, 600 bytes per DNS
/// flow, the largest tracker cost at the generated capture's peak (README, Benchmarks).
pub(super) const INLINE_NAME: usize = 48;
/// A question's name, in place up to [`INLINE_NAME`] bytes.
type Name = SmallVec<[u8; INLINE_NAME]>;
/// Distinct query types counted per flow (more are counted as `qtypes_cap`).
pub(super) const MAX_QTYPES: usize = 8;
/// How long after a TC answer the TCP retry may start.
const TC_RETRY_WINDOW: Nanos = 30 * SECOND;

#[derive(Clone, Copy, Debug)]
struct Answer {
    rcode: u8,
    answers: u16,
    rtt: Nanos,
}

/// One question and its answer. The answer's fields are kept flat (not an `Option<Answer>`,
/// which pads to 24 bytes).
struct Slot {
    first_ts: Nanos,
    /// The answer's round-trip time (once `answered`).
    rtt: Nanos,
    name: Name,
    queries: u32,
    id: u16,
    qtype: u16,
    qclass: u16,
    /// The answer's answer count and reply code (once `answered`).
    answers: u16,
    rcode: u8,
    answered: bool,
    truncated: bool,
}

impl Slot {
    fn name(&self) -> &[u8] {
        &self.name
    }

    fn answer(&self) -> Option<Answer> {
        self.answered.then_some(Answer {
            rcode: self.rcode,
            answers: self.answers,
            rtt: self.rtt,
        })
    }

    fn set_answer(&mut self, a: Answer) {
        self.answered = true;
        self.rcode = a.rcode;
        self.answers = a.answers;
        self.rtt = a.rtt;
    }

    fn is_problem(&self) -> bool {
        self.answer().is_none_or(|a| a.rcode != 0)
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
            max_slots: u32::try_from(self.limits.per_flow.max(1)).unwrap_or(u32::MAX),
            slots: SmallVec::new(),
            framers: [Len16, Len16],
            frames: FrameStats::default(),
            queries: 0,
            responses: 0,
            qtypes: SmallCounts::new(),
            rcodes: SmallCounts::new(),
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
    max_slots: u32,
    /// Most flows ask one question: it is kept in the tracker.
    slots: SmallVec<[Slot; 1]>,
    framers: [Len16; 2],
    frames: FrameStats,
    /// Query and response messages.
    queries: u64,
    responses: u64,
    /// Query messages by type, at most [`MAX_QTYPES`] types (a flow asks one or two).
    qtypes: SmallCounts<u16, 2>,
    /// Response messages by rcode (a flow sees one or two of the 16: an array of them was 64
    /// bytes in every DNS flow).
    rcodes: SmallCounts<u8, 2>,
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
            if let Some(s) = self.slots.iter_mut().find(|s| !s.answered && matches(s)) {
                s.queries = s.queries.saturating_add(1);
                cx.count("retransmissions");
                return;
            }
            let slot = Slot {
                first_ts: cx.ts,
                rtt: 0,
                name: Name::from_slice(name),
                queries: 1,
                id: m.id,
                qtype: q.qtype,
                qclass: q.qclass,
                answers: 0,
                rcode: 0,
                answered: false,
                truncated: false,
            };
            self.insert(slot, cx);
            return;
        }
        self.responses += 1;
        self.rcodes.add(m.rcode & 0xf);
        let Some(s) = self.slots.iter_mut().find(|s| matches(s)) else {
            cx.error("unmatched_response");
            return;
        };
        if !s.answered {
            s.set_answer(Answer {
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
        if !self.qtypes.add_capped(t, MAX_QTYPES) {
            cx.error("qtypes_cap");
        }
    }

    /// Adds a question; a full table gives up an answered NOERROR slot first, else the oldest.
    fn insert(&mut self, slot: Slot, cx: &mut Cx<'_>) {
        if self.slots.len() >= self.max_slots as usize {
            let victim = self.slots.iter().position(|s| !s.is_problem()).unwrap_or(0);
            if self.slots.get(victim).is_some_and(|s| !s.answered) {
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
                    "answered": s.answered,
                    "rcode": s.answer().map(|a| dns::rcode_name(a.rcode)),
                    "answers": s.answer().map_or(0, |a| a.answers),
                    "rtt_ms": s.answer().map(|a| (a.rtt / 1000) as f64 / 1000.0),
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
        for (t, n) in self.qtypes.iter() {
            count_by_name(&mut d.qtypes, dns::type_name(t), n);
        }
        for (r, n) in self.rcodes.iter() {
            count_by_name(&mut d.rcodes, dns::rcode_name(r), n);
        }
        d.unanswered += u64::from(self.dropped_unanswered);
        d.transactions_not_listed += u64::from(self.dropped);
        for s in &self.slots {
            match s.answer() {
                Some(a) => d.rtt(a.rtt),
                None => d.unanswered += 1,
            }
            if s.is_problem() {
                let outcome = s
                    .answer()
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

/// The DNS tracker's size and its question slot's (`track::tests::per_flow_state_stays_small`).
#[cfg(test)]
pub(super) fn sizes() -> [(&'static str, usize); 2] {
    [
        ("Dns", std::mem::size_of::<Dns>()),
        ("dns::Slot", std::mem::size_of::<Slot>()),
    ]
}
