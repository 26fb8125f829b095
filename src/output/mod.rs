//! Output: the report as a serde view built from an [`Analysis`], rendered as a table, JSON or CSV.
//!
//! [`Report`] is the JSON contract (`exflow.report.v1`, documented in docs/json-schema.md); the
//! table and CSV are rendered from the same view, so the three never disagree.

pub mod community_id;
mod csv;
pub mod events;
pub mod flow_stream;
mod mail_flow;
pub mod pretty;
mod table;
pub mod time;

use crate::summary::Micros;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analyze::Analysis;
use crate::flow::{DirCount, Outcome, TcpHealth};
use crate::packet::Nanos;
use crate::summary::{FlowRecord, ServiceStats, TcpTotals};

pub use csv::{
    field as csv_field, write_flow_row, write_flows_csv, write_services_csv, FLOWS_CSV_HEADER,
};
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
    /// The trackers' refusals in plain words (a POP3 or IMAP login refused, an X.400 connection
    /// or MTA bind refused), for the table's "LOGIN AND BIND FAILURES".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Failed flows (unanswered, refused, ICMP unreachable), oldest first.
    pub failures: Vec<FlowView>,
    /// Failed flows beyond the kept ones.
    pub failures_not_listed: u64,
    /// Established TCP sessions reset mid-way or stalled, oldest first.
    #[serde(default)]
    pub tcp_broken: Vec<FlowView>,
    #[serde(default)]
    pub tcp_broken_not_listed: u64,
    /// Every flow, with `--flows`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flows: Option<Vec<FlowView>>,
    /// Budgets reached (README, "Limits"): what each one dropped or ignored.
    #[serde(default)]
    pub limits: LimitsView,
}

/// What each budget against hostile input cut off (all 0 when none was reached).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LimitsView {
    /// Flows evicted from the full table (`--max-flows`), still counted everywhere.
    pub flows_evicted: u64,
    /// Follow-up announcements dropped at an expectation cap.
    pub expectations_dropped: u64,
    /// Failed flows counted but not listed in `failures`.
    pub failures_not_listed: u64,
    /// Flows counted but not listed in `flows` (`--max-flow-records`).
    pub flow_records_dropped: u64,
    /// pcapng interface description blocks ignored past the per-section budget.
    pub pcapng_interfaces_ignored: u64,
    /// Packets skipped because their pcapng interface was ignored.
    pub pcapng_packets_skipped: u64,
    /// Files not read because they exceeded `--stream-window`.
    pub files_over_window: u64,
    /// Times a tracker's stream was refused reassembly buffer because the run-wide
    /// `--reassembly-budget` was spent (the unfinished unit is lost, the stream goes on).
    #[serde(default)]
    pub reassembly_refused: u64,
}

impl LimitsView {
    /// Each budget's name and count, in the order the README lists them.
    pub fn entries(&self) -> [(&'static str, u64); 8] {
        [
            ("flows_evicted", self.flows_evicted),
            ("expectations_dropped", self.expectations_dropped),
            ("failures_not_listed", self.failures_not_listed),
            ("flow_records_dropped", self.flow_records_dropped),
            ("pcapng_interfaces_ignored", self.pcapng_interfaces_ignored),
            ("pcapng_packets_skipped", self.pcapng_packets_skipped),
            ("files_over_window", self.files_over_window),
            ("reassembly_refused", self.reassembly_refused),
        ]
    }

    /// Whether any budget was reached.
    pub fn any(&self) -> bool {
        self.entries().iter().any(|(_, n)| *n > 0)
    }
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
    /// The same times as RFC 3339 strings in UTC (`2004-03-01T12:00:01.500000Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_ts_rfc3339: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ts_rfc3339: Option<String>,
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
    /// Timestamps before 1970, after 2200 or years from their neighbours, given the time of
    /// the packet before them.
    #[serde(default)]
    pub bogus_timestamps: u64,
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
    /// TCP health of the service's flows, summed (zeros for UDP).
    #[serde(default)]
    pub tcp: TcpTotalsView,
}

/// TCP health of a service's flows.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TcpTotalsView {
    /// Flows with any of the counts below above zero.
    pub flows_troubled: u64,
    pub retransmitted: u64,
    pub out_of_order: u64,
    pub dup_acks: u64,
    pub zero_windows: u64,
    /// Established sessions reset before either side's FIN, by who sent the RST.
    pub reset_by_client: u64,
    pub reset_by_server: u64,
    /// Sessions silent for `stall_after_s` or more with data unacknowledged.
    pub stalled: u64,
    pub longest_silence_s: f64,
}

impl TcpTotalsView {
    /// Sessions reset mid-way or stalled.
    pub fn broken(&self) -> u64 {
        self.reset_by_client + self.reset_by_server + self.stalled
    }
}

/// TCP health of one flow.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TcpHealthView {
    pub retransmitted: u32,
    pub out_of_order: u32,
    pub dup_acks: u32,
    pub zero_windows: u32,
    /// `client` or `server`: who reset the established session before either side's FIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_mid_session: Option<String>,
    pub stalled: bool,
    pub longest_silence_s: f64,
}

/// Nanoseconds as seconds, rounded to microseconds.
fn nanos_secs(n: Nanos) -> f64 {
    (n / 1000) as f64 / 1e6
}

impl From<&TcpTotals> for TcpTotalsView {
    fn from(t: &TcpTotals) -> Self {
        TcpTotalsView {
            flows_troubled: t.flows_troubled,
            retransmitted: t.retransmitted,
            out_of_order: t.out_of_order,
            dup_acks: t.dup_acks,
            zero_windows: t.zero_windows,
            reset_by_client: t.reset_by_client,
            reset_by_server: t.reset_by_server,
            stalled: t.stalled,
            longest_silence_s: nanos_secs(t.longest_silence),
        }
    }
}

impl From<&TcpHealth> for TcpHealthView {
    fn from(h: &TcpHealth) -> Self {
        TcpHealthView {
            retransmitted: h.retransmitted,
            out_of_order: h.out_of_order,
            dup_acks: h.dup_acks,
            zero_windows: h.zero_windows,
            reset_mid_session: h.reset_mid_session.map(|s| s.as_str().to_string()),
            stalled: h.stalled,
            longest_silence_s: nanos_secs(h.longest_silence()),
        }
    }
}

impl TcpHealthView {
    /// Anything worth a look.
    pub fn troubled(&self) -> bool {
        self.retransmitted > 0
            || self.out_of_order > 0
            || self.dup_acks > 0
            || self.zero_windows > 0
            || self.reset_mid_session.is_some()
            || self.stalled
    }
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
    /// `h225:callSignalAddress`, `Call-Back`, `tower` (endpoint mapper), `bind` (an RPC bind), or
    /// `session` for inferred expectations.
    pub kind: String,
    /// The signalling message that announced it (e.g. `connect`, `OLCAck`, `SUBSCRIBE`).
    pub announced_by: String,
    /// Capture time of that message, seconds since the epoch, and as RFC 3339 (UTC).
    pub announced_ts: f64,
    #[serde(default)]
    pub announced_ts_rfc3339: String,
    pub outcome: String,
    /// No connection is required (H.245 tunnelled in H.225, a RAS registration's address).
    pub optional: bool,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    /// The RPC interface of an endpoint-mapper tower or a bind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<InterfaceView>,
}

/// An RPC interface: its UUID, `major.minor` version and catalogue name (empty when the catalogue
/// does not name it).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct InterfaceView {
    pub uuid: String,
    pub version: String,
    pub name: String,
    /// Follow-ups only: the catalogue's description of the service, in plain words
    /// ("Exchange store (MAPI)").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Follow-ups only: the registry setting that pins the service's port on the answering server
    /// (absent for services no setting pins, e.g. `msrpc_dynamic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinView>,
}

/// A registry setting that pins an RPC service's port (see `classify::port_pin`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PinView {
    /// `HKLM\SYSTEM\CurrentControlSet\Services\...`.
    pub key: String,
    /// The REG_DWORD value under the key; absent when the source does not name it (the MTA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The Microsoft KB article that documents it, e.g. `KB 270836`.
    pub kb: String,
}

impl PinView {
    fn of(p: &crate::classify::PortPin) -> PinView {
        PinView {
            key: p.key.to_string(),
            value: p.value.map(str::to_string),
            kb: p.kb.to_string(),
        }
    }

    /// The key and value as one path, as the table prints it (the key alone without a value).
    pub fn path(&self) -> String {
        match &self.value {
            Some(v) => format!("{}\\{v}", self.key),
            None => self.key.clone(),
        }
    }
}

impl InterfaceView {
    /// From an expectation's `interface_*` attributes, when it has them.
    fn from_attrs(attrs: &[(&'static str, String)]) -> Option<InterfaceView> {
        let get = |k: &str| {
            attrs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.clone())
        };
        Some(InterfaceView {
            uuid: get("interface_uuid")?,
            version: get("interface_version").unwrap_or_default(),
            name: get("interface_name").unwrap_or_default(),
            description: String::new(),
            pin: None,
        })
    }
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
    /// `first_ts` and `last_ts` as RFC 3339 strings (UTC).
    #[serde(default)]
    pub first_ts_rfc3339: String,
    #[serde(default)]
    pub last_ts_rfc3339: String,
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
    /// TCP health (TCP flows only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpHealthView>,
    /// What the flow's trackers found, one object per tracker (e.g. `smtp`, `dns`).
    #[serde(flatten, default)]
    pub findings: BTreeMap<String, serde_json::Value>,
}

/// Seconds since the epoch, rounded to microseconds.
pub fn ts_secs(ts: Nanos) -> f64 {
    (ts / 1000) as f64 / 1e6
}

fn percentiles(h: &Micros, scale: f64) -> Percentiles {
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
        let mut tcp_broken: Vec<FlowView> = a.summary.broken.iter().map(flow_view).collect();
        tcp_broken.sort_by(|a, b| a.first_ts.total_cmp(&b.first_ts));
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
                first_ts_rfc3339: first.map(time::rfc3339),
                last_ts_rfc3339: last.map(time::rfc3339),
                duration_s: match (first, last) {
                    (Some(f), Some(l)) => (l.saturating_sub(f).max(0) / 1000) as f64 / 1e6,
                    _ => 0.0,
                },
                decoded: i.packets.saturating_sub(i.skipped_total()),
                skipped: i.skipped.clone(),
                skipped_bytes: i.skipped_bytes,
                orphan_fragments: i.orphan_fragments,
                icmp_unreachable: i.icmp_unreachable,
                icmp_unreachable_bytes: i.icmp_unreachable_bytes,
                bogus_timestamps: i.bogus_timestamps,
                warnings: i.warnings.clone(),
            },
            flow_table: FlowTableView {
                flows: a.summary.total_flows(),
                peak: a.peak_flows as u64,
                evicted: a.flows_evicted,
                expired: a.flows_expired,
            },
            services,
            followups: {
                // Hosts that announce a domain controller's interface answer NSPI as a Global
                // Catalog; any other host is taken for an Exchange server.
                let dcs: std::collections::HashSet<std::net::IpAddr> = a
                    .followups
                    .iter()
                    .filter(|e| crate::classify::DC_SERVICES.contains(&cat.id(e.service)))
                    .map(|e| e.addr.ip)
                    .collect();
                a.followups
                    .iter()
                    .map(|e| followup_view(cat, e, dcs.contains(&e.addr.ip)))
                    .collect()
            },
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
            // SMTP, DNS and LDAP problems have the table's MAIL FLOW section of their own.
            problems: a
                .summary
                .diagnostics
                .iter()
                .filter(|d| !mail_flow::SECTION_TRACKERS.contains(&d.name()))
                .flat_map(|d| d.problems(cat))
                .collect(),
            failures,
            failures_not_listed: a.summary.failures_dropped,
            tcp_broken,
            tcp_broken_not_listed: a.summary.broken_dropped,
            flows,
            limits: LimitsView {
                flows_evicted: a.flows_evicted,
                expectations_dropped: a.expectations_dropped_at_cap,
                failures_not_listed: a.summary.failures_dropped,
                flow_records_dropped: a.summary.flow_records_dropped,
                pcapng_interfaces_ignored: i.read_limits.interfaces_over_cap,
                pcapng_packets_skipped: i.read_limits.packets_on_capped_interfaces,
                files_over_window: i.files_over_window,
                reassembly_refused: a.signalling.budget.refused,
            },
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

pub(crate) fn followup_view(
    cat: &crate::classify::Catalogue,
    e: &crate::classify::Expectation,
    on_dc: bool,
) -> FollowupView {
    let host = if on_dc {
        crate::classify::Host::DomainController
    } else {
        crate::classify::Host::Exchange
    };
    let interface = InterfaceView::from_attrs(&e.attrs).map(|mut i| {
        i.description = cat
            .services()
            .get(usize::from(e.service.0))
            .map(|s| s.description.clone())
            .unwrap_or_default();
        i.pin = crate::classify::port_pin(cat.id(e.service), host).map(PinView::of);
        i
    });
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
        announced_ts_rfc3339: time::rfc3339(e.announced_ts),
        outcome: e.outcome.map_or("not_seen", |o| o.as_str()).to_string(),
        optional: e.optional,
        flows: e.flows,
        packets: e.packets,
        bytes: e.bytes,
        interface,
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
        tcp: (&s.tcp).into(),
    }
}

pub(crate) fn flow_view(service: &str, r: &FlowRecord) -> FlowView {
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
        first_ts_rfc3339: time::rfc3339(r.first_ts),
        last_ts_rfc3339: time::rfc3339(r.last_ts),
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
        tcp: r.tcp.as_ref().map(TcpHealthView::from),
        findings: r.findings_by_name(),
    }
}
