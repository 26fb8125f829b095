//! Output: the report as a serde view built from an [`Analysis`], rendered as a table, JSON or CSV.
//!
//! [`Report`] is the JSON contract (`exflow.report.v1`, documented in docs/json-schema.md); the
//! table and CSV are rendered from the same view, so the three never disagree.

mod csv;
mod mail_flow;
mod table;
pub mod time;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analyze::Analysis;
use crate::flow::{DirCount, Outcome};
use crate::packet::Nanos;
use crate::summary::{FlowRecord, ServiceStats};

pub use csv::{write_flows_csv, write_services_csv};
pub use table::{write_table, TableOptions};

/// Schema id of the JSON report.
pub const SCHEMA: &str = "exflow.report.v1";

/// The whole report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub schema: String,
    pub generator: String,
    pub input: InputView,
    pub flow_table: FlowTableView,
    pub services: Vec<ServiceView>,
    pub followups: Vec<FollowupView>,
    /// Expectations retired from the table in a long live run (their details are gone), by
    /// service and outcome. Empty for `analyze`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub followups_retired: Vec<RetiredView>,
    pub signalling: SignallingView,
    /// What the trackers found in the payload, per tracker kind that keeps findings (SMTP
    /// verdicts, DNS rcodes, ...).
    #[serde(default)]
    pub diagnostics: BTreeMap<String, serde_json::Value>,
    /// Failed flows (unanswered, refused, ICMP unreachable), oldest first.
    pub failures: Vec<FlowView>,
    /// Failed flows beyond the kept ones.
    pub failures_not_listed: u64,
    /// Every flow, with `--flows`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows: Option<Vec<FlowView>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileView {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InputView {
    pub files: Vec<FileView>,
    pub packets: u64,
    /// Wire (original) lengths.
    pub bytes: u64,
    /// Seconds since the Unix epoch, microsecond precision.
    pub first_ts: Option<f64>,
    pub last_ts: Option<f64>,
    pub duration_s: f64,
    /// Frames decoded into IP packets.
    pub decoded: u64,
    /// Frames not decoded, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Wire bytes of the frames not decoded.
    pub skipped_bytes: u64,
    pub orphan_fragments: u64,
    /// ICMP destination-unreachable messages; they decide their flow's outcome and are not among
    /// its packets, so `bytes` = services' bytes + `icmp_unreachable_bytes` + `skipped_bytes`.
    pub icmp_unreachable: u64,
    pub icmp_unreachable_bytes: u64,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FlowTableView {
    pub flows: u64,
    /// Most flows in the table at once.
    pub peak: u64,
    /// Flows pushed out by `--max-flows` before they ended (still counted everywhere).
    pub evicted: u64,
    /// Flows that left the table after their idle timeout.
    pub expired: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DirView {
    pub packets: u64,
    pub bytes: u64,
}

impl From<DirCount> for DirView {
    fn from(d: DirCount) -> Self {
        DirView {
            packets: d.packets,
            bytes: d.bytes,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutcomesView {
    pub established: u64,
    pub unanswered: u64,
    pub refused: u64,
    pub icmp_unreachable: u64,
    pub one_way: u64,
}

impl OutcomesView {
    pub fn get(&self, o: Outcome) -> u64 {
        match o {
            Outcome::Established => self.established,
            Outcome::Unanswered => self.unanswered,
            Outcome::Refused => self.refused,
            Outcome::IcmpUnreachable => self.icmp_unreachable,
            Outcome::OneWay => self.one_way,
        }
    }

    pub fn failures(&self) -> u64 {
        self.unanswered + self.refused + self.icmp_unreachable
    }
}

/// Percentiles of a distribution; absent when nothing was recorded.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ServiceView {
    pub service: String,
    pub description: String,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    pub to_server: DirView,
    pub to_client: DirView,
    pub outcomes: OutcomesView,
    pub midstream: u64,
    pub icmp_admin_prohibited: u64,
    pub evicted: u64,
    pub duration_s: Percentiles,
    pub handshake_rtt_ms: Percentiles,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ParentView {
    pub service: String,
    pub client: String,
    pub server: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExpectedView {
    pub proto: String,
    pub host: String,
    /// 0 for an inferred expectation: any port.
    pub port: u16,
    /// For an inferred expectation, the other host of the session (media flows between the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

/// One expected follow-up connection and what became of it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FollowupView {
    /// The id flows' `followup_of` refers to.
    pub id: u32,
    pub service: String,
    /// `signalled` or `inferred`.
    pub basis: String,
    pub parent: ParentView,
    pub expected: ExpectedView,
    /// What was announced: `h245Address`, `mediaChannel`, `mediaControlChannel`,
    /// `h225:callSignalAddress`, `Call-Back`, or `session` for inferred expectations.
    pub kind: String,
    /// The signalling message that announced it (e.g. `connect`, `OLCAck`, `SUBSCRIBE`).
    pub announced_by: String,
    /// Capture time of that message, seconds since the epoch.
    pub announced_ts: f64,
    pub outcome: String,
    /// No connection is required (H.245 tunnelled in H.225, a RAS registration's address).
    pub optional: bool,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
}

/// A count of retired expectations.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RetiredView {
    pub service: String,
    pub outcome: String,
    pub count: u64,
}

/// What the trackers read of the payload. The first five fields are fixed views of the H.323 and
/// RVP trackers' counters; `trackers` has every tracker's.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignallingView {
    /// H.225 messages (TPKTs) on call-signalling flows.
    pub h225_messages: u64,
    pub h245_messages: u64,
    pub ras_messages: u64,
    pub rvp_subscribes: u64,
    /// H.225, H.245 and RAS messages that could not be decoded.
    pub decode_errors: u64,
    /// Announcements dropped because an expectation cap was reached.
    pub expectations_dropped_at_cap: u64,
    /// Per tracker (by name): what it decoded and could not.
    #[serde(default)]
    pub trackers: BTreeMap<String, TrackerView>,
    /// The trackers' shared reassembly buffer budget.
    #[serde(default)]
    pub reassembly: ReassemblyView,
}

/// One tracker's counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrackerView {
    /// Flows it read.
    pub flows: u64,
    /// Units decoded, by kind.
    pub decoded: BTreeMap<String, u64>,
    /// Units not decoded, by reason.
    pub errors: BTreeMap<String, u64>,
    /// Flows it stopped reading early (nothing more to learn, garbage, a cap).
    pub gave_up: u64,
    /// Reassembly: holes given up on, retransmitted bytes ignored, units too long to buffer.
    pub gaps: u64,
    pub duplicate_bytes: u64,
    pub overflows: u64,
}

/// The reassembly budget shared by all trackers.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReassemblyView {
    pub budget_bytes: u64,
    /// Most bytes buffered at once.
    pub peak_bytes: u64,
    /// Times a stream was refused buffer room because the budget was spent.
    pub refused: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IcmpView {
    pub code: u8,
    pub v6: bool,
    pub admin_prohibited: bool,
    pub from: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FlowView {
    pub service: String,
    pub proto: String,
    pub client: String,
    pub server: String,
    pub outcome: Outcome,
    pub midstream: bool,
    pub to_server: DirView,
    pub to_client: DirView,
    pub first_ts: f64,
    pub last_ts: f64,
    /// Client SYNs (TCP), retransmissions included.
    #[serde(default)]
    pub syns: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_rtt_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpView>,
    /// `id` (in `followups`) of the expectation this flow fulfilled.
    pub followup_of: Option<u32>,
    #[serde(default)]
    pub evicted: bool,
    /// What the flow's trackers found, one object per tracker (e.g. `smtp`, `dns`).
    #[serde(flatten, default)]
    pub findings: BTreeMap<String, serde_json::Value>,
}

/// Seconds since the epoch, rounded to microseconds.
pub fn ts_secs(ts: Nanos) -> f64 {
    (ts / 1000) as f64 / 1e6
}

fn percentiles(h: &hdrhistogram::Histogram<u64>, scale: f64) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let round = |v: u64| (v as f64 / scale * 1000.0).round() / 1000.0;
    Percentiles {
        count: h.len(),
        p50: round(h.value_at_quantile(0.5)),
        p95: round(h.value_at_quantile(0.95)),
        max: round(h.max()),
    }
}

impl Report {
    /// Builds the report view of a finished run.
    pub fn new(a: &Analysis) -> Report {
        let cat = &a.catalogue;
        let mut services: Vec<ServiceView> = a
            .summary
            .services
            .iter()
            .enumerate()
            // Live intervals may carry traffic or outcomes of flows that started earlier.
            .filter(|(_, s)| s.flows > 0 || s.packets() > 0 || s.outcomes.iter().any(|&n| n > 0))
            .map(|(i, s)| {
                service_view(
                    cat.services()[i].id.clone(),
                    &cat.services()[i].description,
                    s,
                )
            })
            .collect();
        services.sort_by(|a, b| {
            b.bytes
                .cmp(&a.bytes)
                .then(b.flows.cmp(&a.flows))
                .then(a.service.cmp(&b.service))
        });
        let flow_view = |r: &FlowRecord| flow_view(cat.id(r.service), r);
        let mut failures: Vec<FlowView> = a.summary.failures.iter().map(flow_view).collect();
        failures.sort_by(|a, b| a.first_ts.total_cmp(&b.first_ts));
        let flows = a.summary.flows.as_ref().map(|v| {
            let mut v: Vec<FlowView> = v.iter().map(flow_view).collect();
            v.sort_by(|a, b| a.first_ts.total_cmp(&b.first_ts));
            v
        });
        let i = &a.input;
        let (first, last) = (i.first_ts, i.last_ts);
        Report {
            schema: SCHEMA.to_string(),
            generator: format!("exflow {}", env!("CARGO_PKG_VERSION")),
            input: InputView {
                files: i
                    .files
                    .iter()
                    .map(|f| FileView {
                        name: f.name.clone(),
                        packets: f.packets,
                        bytes: f.bytes,
                        error: f.error.clone(),
                    })
                    .collect(),
                packets: i.packets,
                bytes: i.bytes,
                first_ts: first.map(ts_secs),
                last_ts: last.map(ts_secs),
                duration_s: match (first, last) {
                    (Some(f), Some(l)) => ((l - f) / 1000) as f64 / 1e6,
                    _ => 0.0,
                },
                decoded: i.packets - i.skipped_total(),
                skipped: i.skipped.clone(),
                skipped_bytes: i.skipped_bytes,
                orphan_fragments: i.orphan_fragments,
                icmp_unreachable: i.icmp_unreachable,
                icmp_unreachable_bytes: i.icmp_unreachable_bytes,
                warnings: i.warnings.clone(),
            },
            flow_table: FlowTableView {
                flows: a.summary.total_flows(),
                peak: a.peak_flows as u64,
                evicted: a.flows_evicted,
                expired: a.flows_expired,
            },
            services,
            followups: a.followups.iter().map(|e| followup_view(cat, e)).collect(),
            followups_retired: a
                .followups_retired
                .iter()
                .map(|((service, outcome), &count)| RetiredView {
                    service: cat.id(*service).to_string(),
                    outcome: outcome.map_or("not_seen", |o| o.as_str()).to_string(),
                    count,
                })
                .collect(),
            signalling: signalling_view(&a.signalling, a.expectations_dropped_at_cap),
            diagnostics: a
                .summary
                .diagnostics
                .iter()
                .map(|d| (d.name().to_string(), d.to_json(cat)))
                .collect(),
            failures,
            failures_not_listed: a.summary.failures_dropped,
            flows,
        }
    }
}

fn signalling_view(s: &crate::track::Signalling, dropped_at_cap: u64) -> SignallingView {
    SignallingView {
        h225_messages: s.decoded("h225", "messages"),
        h245_messages: s.decoded("h245", "messages"),
        ras_messages: s.decoded("ras", "messages"),
        rvp_subscribes: s.decoded("rvp", "subscribes"),
        decode_errors: ["h225", "h245", "ras"]
            .iter()
            .filter_map(|n| s.tracker(n))
            .map(|t| t.errors.get("undecodable"))
            .sum(),
        expectations_dropped_at_cap: dropped_at_cap,
        trackers: s
            .trackers
            .iter()
            .map(|(name, t)| {
                let map = |c: &crate::track::Counters| {
                    c.iter().map(|(k, v)| (k.to_string(), v)).collect()
                };
                let view = TrackerView {
                    flows: t.flows,
                    decoded: map(&t.decoded),
                    errors: map(&t.errors),
                    gave_up: t.gave_up,
                    gaps: t.stream.gaps,
                    duplicate_bytes: t.stream.duplicate_bytes,
                    overflows: t.stream.overflows,
                };
                (name.to_string(), view)
            })
            .collect(),
        reassembly: ReassemblyView {
            budget_bytes: s.budget.limit as u64,
            peak_bytes: s.budget.peak as u64,
            refused: s.budget.refused,
        },
    }
}

fn followup_view(
    cat: &crate::classify::Catalogue,
    e: &crate::classify::Expectation,
) -> FollowupView {
    FollowupView {
        id: e.id,
        service: cat.id(e.service).to_string(),
        basis: e.basis.as_str().to_string(),
        parent: ParentView {
            service: cat.id(e.parent_service).to_string(),
            client: e.parent_client.to_string(),
            server: e.parent_server.to_string(),
        },
        expected: ExpectedView {
            proto: e.proto.to_string(),
            host: e.addr.ip.to_string(),
            port: e.addr.port,
            peer: e.peer.map(|p| p.to_string()),
        },
        kind: e.kind.to_string(),
        announced_by: e.announced_by.to_string(),
        announced_ts: ts_secs(e.announced_ts),
        outcome: e.outcome.map_or("not_seen", |o| o.as_str()).to_string(),
        optional: e.optional,
        flows: e.flows,
        packets: e.packets,
        bytes: e.bytes,
    }
}

fn service_view(id: String, description: &str, s: &ServiceStats) -> ServiceView {
    let o = |x: Outcome| s.outcomes[x.index()];
    ServiceView {
        service: id,
        description: description.to_string(),
        flows: s.flows,
        packets: s.packets(),
        bytes: s.bytes(),
        to_server: s.to_server.into(),
        to_client: s.to_client.into(),
        outcomes: OutcomesView {
            established: o(Outcome::Established),
            unanswered: o(Outcome::Unanswered),
            refused: o(Outcome::Refused),
            icmp_unreachable: o(Outcome::IcmpUnreachable),
            one_way: o(Outcome::OneWay),
        },
        midstream: s.midstream,
        icmp_admin_prohibited: s.icmp_admin_prohibited,
        evicted: s.evicted,
        duration_s: percentiles(&s.duration_us, 1e6),
        handshake_rtt_ms: percentiles(&s.rtt_us, 1e3),
    }
}

fn flow_view(service: &str, r: &FlowRecord) -> FlowView {
    FlowView {
        service: service.to_string(),
        proto: r.proto.to_string(),
        client: r.client.to_string(),
        server: r.server.to_string(),
        outcome: r.outcome,
        midstream: r.midstream,
        to_server: r.to_server.into(),
        to_client: r.to_client.into(),
        first_ts: ts_secs(r.first_ts),
        last_ts: ts_secs(r.last_ts),
        syns: r.syns,
        handshake_rtt_ms: r.handshake_rtt.map(|n| (n / 1000) as f64 / 1e3),
        icmp: r.icmp.map(|(v6, code, from)| IcmpView {
            code,
            v6,
            admin_prohibited: crate::packet::is_admin_prohibited(v6, code),
            from: from.to_string(),
        }),
        followup_of: r.followup_of,
        evicted: r.evicted,
        findings: r
            .findings
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}
