//! Prometheus exposition on `--metrics ADDR:PORT` (`GET /metrics`, OpenMetrics text format, via
//! the `prometheus-client` crate, served by `http.rs`), updated at the end of every interval
//! from its report.
//!
//! Counters grow by each interval's own counts, so they never go down and `rate()` works across
//! a fleet; follow-up outcomes can still change while their flows live, so they are gauges.
//! Every family is registered, and every per-service series created with zeros, before the first
//! scrape: a dashboard sees `0`, not a missing series. Histograms observe each flow once: its
//! handshake RTT in the interval of the handshake, its duration when it ends.

use crate::summary::Micros;
use std::collections::BTreeMap;
use std::net::SocketAddr;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::Value;

use super::report::LiveReport;
use crate::analyze::Analysis;
use crate::classify::{Catalogue, ServiceKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// Handshake RTT buckets, seconds: LAN to satellite.
const RTT_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];
/// Flow duration buckets, seconds: a DNS exchange to a day-long MAPI session.
const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 14_400.0, 86_400.0,
];

fn rtt_histogram() -> Histogram {
    Histogram::new(RTT_BUCKETS)
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

type HistogramFamily = Family<ServiceLabel, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabel {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    service: String,
    /// `to_server` or `to_client`.
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    service: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RcodeLabel {
    rcode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpCodeLabels {
    op: String,
    code: String,
}

/// The metric families, shared with the HTTP thread (`http.rs`) through the registry.
pub struct Metrics {
    flows: Family<ServiceLabel, Counter>,
    packets: Family<DirectionLabels, Counter>,
    bytes: Family<DirectionLabels, Counter>,
    outcomes: Family<OutcomeLabels, Counter>,
    admin_prohibited: Family<ServiceLabel, Counter>,
    followups: Family<OutcomeLabels, Gauge>,
    captured: Counter,
    dropped: Counter,
    if_dropped: Counter,
    input_packets: Counter,
    input_bytes: Counter,
    skipped: Family<ReasonLabel, Counter>,
    evicted: Counter,
    expired: Counter,
    dropped_at_cap: Counter,
    peak_flows: Gauge,
    intervals: Counter,
    limits: Family<LimitLabel, Counter>,
    bogus_timestamps: Counter,
    events_dropped: Counter,
    build_info: Family<VersionLabel, Gauge>,
    handshake_rtt: HistogramFamily,
    flow_duration: HistogramFamily,
    smtp_sessions: Family<VerdictLabel, Counter>,
    smtp_replies: Family<CodeLabel, Counter>,
    dns_responses: Family<RcodeLabel, Counter>,
    dns_unanswered: Counter,
    ldap_results: Family<OpCodeLabels, Counter>,
}

impl Metrics {
    /// Registers the metrics and serves them on `addr` from a background thread.
    pub fn serve(addr: SocketAddr, catalogue: &Catalogue) -> std::io::Result<Metrics> {
        let (m, reg) = Metrics::new(catalogue);
        super::http::serve(addr, reg)?;
        Ok(m)
    }

    /// The metric families and their registry, every per-service series at zero.
    pub fn new(catalogue: &Catalogue) -> (Metrics, Registry) {
        let mut reg = Registry::with_prefix("exflow");
        let m = Metrics {
            flows: Family::default(),
            packets: Family::default(),
            bytes: Family::default(),
            outcomes: Family::default(),
            admin_prohibited: Family::default(),
            followups: Family::default(),
            captured: Counter::default(),
            dropped: Counter::default(),
            if_dropped: Counter::default(),
            input_packets: Counter::default(),
            input_bytes: Counter::default(),
            skipped: Family::default(),
            evicted: Counter::default(),
            expired: Counter::default(),
            dropped_at_cap: Counter::default(),
            peak_flows: Gauge::default(),
            intervals: Counter::default(),
            limits: Family::default(),
            bogus_timestamps: Counter::default(),
            events_dropped: Counter::default(),
            build_info: Family::default(),
            handshake_rtt: Family::new_with_constructor(rtt_histogram as fn() -> Histogram),
            flow_duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            smtp_sessions: Family::default(),
            smtp_replies: Family::default(),
            dns_responses: Family::default(),
            dns_unanswered: Counter::default(),
            ldap_results: Family::default(),
        };
        reg.register("flows", "Flows seen, by service", m.flows.clone());
        reg.register(
            "packets",
            "Packets of the flows, by service and direction",
            m.packets.clone(),
        );
        reg.register(
            "bytes",
            "Wire bytes of the flows, by service and direction",
            m.bytes.clone(),
        );
        reg.register(
            "flow_outcomes",
            "Flow outcomes, by service (counted once the outcome is known)",
            m.outcomes.clone(),
        );
        reg.register(
            "icmp_admin_prohibited",
            "Flows answered by ICMP administratively prohibited (a firewall), by service",
            m.admin_prohibited.clone(),
        );
        reg.register(
            "followups",
            "Expected follow-up connections, by service and current outcome",
            m.followups.clone(),
        );
        reg.register(
            "events_dropped",
            "Events (--events) dropped because the writer's queue was full",
            m.events_dropped.clone(),
        );
        reg.register(
            "capture_received",
            "Packets received by the capture (pcap statistics)",
            m.captured.clone(),
        );
        reg.register(
            "capture_dropped",
            "Packets dropped because the capture buffer was full (pcap statistics)",
            m.dropped.clone(),
        );
        reg.register(
            "capture_if_dropped",
            "Packets dropped by the interface or its driver (pcap statistics)",
            m.if_dropped.clone(),
        );
        reg.register("input_packets", "Frames analysed", m.input_packets.clone());
        reg.register(
            "input_bytes",
            "Wire bytes of the frames analysed",
            m.input_bytes.clone(),
        );
        reg.register(
            "decode_skipped",
            "Frames not decoded, by reason",
            m.skipped.clone(),
        );
        reg.register(
            "flows_evicted",
            "Flows pushed out of the full table (--max-flows)",
            m.evicted.clone(),
        );
        reg.register(
            "flows_expired",
            "Flows that left the table after their idle timeout",
            m.expired.clone(),
        );
        reg.register(
            "expectations_dropped_at_cap",
            "Follow-up announcements dropped because an expectation cap was reached",
            m.dropped_at_cap.clone(),
        );
        reg.register(
            "flow_table_peak",
            "Most flows open at once during the last interval",
            m.peak_flows.clone(),
        );
        reg.register("intervals", "Intervals reported", m.intervals.clone());
        reg.register(
            "limit_reached",
            "Items dropped or ignored because a budget was reached (README, Limits), by limit",
            m.limits.clone(),
        );
        reg.register(
            "bogus_timestamps",
            "Packets whose timestamp was replaced as corrupt",
            m.bogus_timestamps.clone(),
        );
        reg.register(
            "build_info",
            "exflow's version (always 1)",
            m.build_info.clone(),
        );
        reg.register(
            "handshake_rtt_seconds",
            "TCP handshake round-trip times (last SYN to the ACK completing it), by service",
            m.handshake_rtt.clone(),
        );
        reg.register(
            "flow_duration_seconds",
            "Durations of the flows that ended, by service",
            m.flow_duration.clone(),
        );
        reg.register(
            "smtp_sessions",
            "SMTP sessions ended, by verdict",
            m.smtp_sessions.clone(),
        );
        reg.register(
            "smtp_replies",
            "SMTP replies, by code",
            m.smtp_replies.clone(),
        );
        reg.register(
            "dns_responses",
            "DNS response messages, by rcode",
            m.dns_responses.clone(),
        );
        reg.register(
            "dns_unanswered",
            "DNS transactions never answered",
            m.dns_unanswered.clone(),
        );
        reg.register(
            "ldap_results",
            "LDAP results, by operation and result code",
            m.ldap_results.clone(),
        );
        m.build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        m.zeros(catalogue);
        (m, reg)
    }

    /// Creates every per-service series, so the first scrape shows zeros.
    fn zeros(&self, catalogue: &Catalogue) {
        self.followup_zeros(catalogue);
        for reason in [
            "non_ip",
            "truncated_link",
            "truncated_ip",
            "truncated_transport",
            "malformed_link",
            "malformed_ip",
            "malformed_transport",
        ] {
            let _ = self.skipped.get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            });
        }
        for s in catalogue.services() {
            let service = ServiceLabel {
                service: s.id.clone(),
            };
            let _ = self.flows.get_or_create(&service);
            let _ = self.admin_prohibited.get_or_create(&service);
            let _ = self.flow_duration.get_or_create(&service);
            let _ = self.handshake_rtt.get_or_create(&service);
            for direction in ["to_server", "to_client"] {
                let d = DirectionLabels {
                    service: s.id.clone(),
                    direction,
                };
                let _ = self.packets.get_or_create(&d);
                let _ = self.bytes.get_or_create(&d);
            }
            for o in crate::flow::Outcome::ALL {
                let _ = self.outcomes.get_or_create(&OutcomeLabels {
                    service: s.id.clone(),
                    outcome: o.as_str().to_string(),
                });
            }
        }
    }

    /// A zero gauge per follow-up service and outcome (the family is rebuilt every interval).
    fn followup_zeros(&self, catalogue: &Catalogue) {
        let services = catalogue
            .services()
            .iter()
            .filter(|s| s.kind == ServiceKind::Followup);
        for s in services {
            let outcomes = crate::flow::Outcome::ALL.iter().map(|o| o.as_str());
            for outcome in outcomes.chain(["not_seen"]) {
                let _ = self.followups.get_or_create(&OutcomeLabels {
                    service: s.id.clone(),
                    outcome: outcome.to_string(),
                });
            }
        }
    }

    /// Observes each flow's handshake RTT (in the interval of its handshake) and each ended
    /// flow's duration (`ended`: microsecond histograms indexed by service, from
    /// [`super::Intervals::ended_durations`]).
    fn observe(&self, interval: &Analysis, ended: &[Micros]) {
        let cat = &interval.catalogue;
        let each = |h: &Micros, into: &Histogram| {
            for v in h.iter_recorded() {
                let secs = v.value_iterated_to() as f64 / 1e6;
                for _ in 0..v.count_at_value() {
                    into.observe(secs);
                }
            }
        };
        for (i, s) in interval.summary.services.iter().enumerate() {
            let Some(svc) = cat.services().get(i) else {
                continue;
            };
            let label = ServiceLabel {
                service: svc.id.clone(),
            };
            if !s.rtt_us.is_empty() {
                each(&s.rtt_us, &self.handshake_rtt.get_or_create(&label));
            }
            if let Some(h) = ended.get(i).filter(|h| !h.is_empty()) {
                each(h, &self.flow_duration.get_or_create(&label));
            }
        }
    }

    /// Adds one interval's counts (and sets the gauges from the totals).
    /// Counts events dropped since the last call.
    pub fn events_dropped(&self, n: u64) {
        self.events_dropped.inc_by(n);
    }

    pub fn update(&self, r: &LiveReport, interval: &Analysis, ended: &[Micros]) {
        self.observe(interval, ended);
        for s in &r.report.services {
            let service = || ServiceLabel {
                service: s.service.clone(),
            };
            let dir = |direction| DirectionLabels {
                service: s.service.clone(),
                direction,
            };
            self.flows.get_or_create(&service()).inc_by(s.flows);
            self.admin_prohibited
                .get_or_create(&service())
                .inc_by(s.icmp_admin_prohibited);
            for (d, v) in [("to_server", s.to_server), ("to_client", s.to_client)] {
                self.packets.get_or_create(&dir(d)).inc_by(v.packets);
                self.bytes.get_or_create(&dir(d)).inc_by(v.bytes);
            }
            for o in crate::flow::Outcome::ALL {
                let labels = OutcomeLabels {
                    service: s.service.clone(),
                    outcome: o.as_str().to_string(),
                };
                self.outcomes
                    .get_or_create(&labels)
                    .inc_by(s.outcomes.get(o));
            }
        }
        self.followups.clear();
        self.followup_zeros(&interval.catalogue);
        for f in &r.totals.report.followups {
            let labels = OutcomeLabels {
                service: f.service.clone(),
                outcome: f.outcome.clone(),
            };
            self.followups.get_or_create(&labels).inc();
        }
        for f in &r.totals.report.followups_retired {
            let labels = OutcomeLabels {
                service: f.service.clone(),
                outcome: f.outcome.clone(),
            };
            self.followups.get_or_create(&labels).inc_by(f.count as i64);
        }
        let c = &r.capture;
        self.captured.inc_by(c.received);
        self.dropped.inc_by(c.dropped);
        self.if_dropped.inc_by(c.if_dropped);
        let i = &r.report.input;
        self.input_packets.inc_by(i.packets);
        self.input_bytes.inc_by(i.bytes);
        for (reason, n) in &i.skipped {
            let labels = ReasonLabel {
                reason: reason.clone(),
            };
            self.skipped.get_or_create(&labels).inc_by(*n);
        }
        self.evicted.inc_by(r.report.flow_table.evicted);
        self.expired.inc_by(r.report.flow_table.expired);
        self.dropped_at_cap
            .inc_by(r.report.signalling.expectations_dropped_at_cap);
        self.peak_flows
            .set(i64::try_from(r.report.flow_table.peak).unwrap_or(i64::MAX));
        self.intervals.inc();
        for (limit, n) in r.report.limits.entries() {
            self.limits.get_or_create(&LimitLabel { limit }).inc_by(n);
        }
        self.bogus_timestamps.inc_by(i.bogus_timestamps);
        self.diagnostics(&r.report.diagnostics);
    }

    /// Adds one interval's mail-flow diagnostics (the report's `diagnostics` objects).
    fn diagnostics(&self, d: &BTreeMap<String, Value>) {
        let counts = |v: Option<&Value>| -> Vec<(String, u64)> {
            v.and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(smtp) = d.get("smtp") {
            for (verdict, n) in counts(smtp.get("verdicts")) {
                self.smtp_sessions
                    .get_or_create(&VerdictLabel { verdict })
                    .inc_by(n);
            }
            for (code, n) in counts(smtp.get("replies")) {
                self.smtp_replies
                    .get_or_create(&CodeLabel { code })
                    .inc_by(n);
            }
        }
        if let Some(dns) = d.get("dns") {
            for (rcode, n) in counts(dns.get("rcodes")) {
                self.dns_responses
                    .get_or_create(&RcodeLabel { rcode })
                    .inc_by(n);
            }
            self.dns_unanswered
                .inc_by(dns.get("unanswered").and_then(Value::as_u64).unwrap_or(0));
        }
        let results = d
            .get("ldap")
            .and_then(|l| l.get("results"))
            .and_then(Value::as_array);
        for r in results.into_iter().flatten() {
            let labels = OpCodeLabels {
                op: r
                    .get("op")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                code: r.get("code").map(ToString::to_string).unwrap_or_default(),
            };
            self.ldap_results
                .get_or_create(&labels)
                .inc_by(r.get("count").and_then(Value::as_u64).unwrap_or(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn scrape(reg: &Registry) -> String {
        let mut body = String::new();
        encode(&mut body, reg).unwrap();
        body
    }

    #[test]
    fn every_family_is_there_from_the_first_scrape() {
        let (_m, reg) = Metrics::new(&Catalogue::builtin());
        let body = scrape(&reg);
        for line in [
            "exflow_build_info{version=\"0.1.0\"} 1",
            "exflow_flows_total{service=\"smtp\"} 0",
            "exflow_flows_total{service=\"cldap\"} 0",
            "exflow_packets_total{service=\"ldap\",direction=\"to_server\"} 0",
            "exflow_flow_outcomes_total{service=\"smtp\",outcome=\"refused\"} 0",
            "exflow_icmp_admin_prohibited_total{service=\"h323_media\"} 0",
            "exflow_handshake_rtt_seconds_count{service=\"smtp\"} 0",
            "exflow_handshake_rtt_seconds_bucket{le=\"0.001\",service=\"smtp\"} 0",
            "exflow_flow_duration_seconds_count{service=\"dns\"} 0",
            "exflow_capture_dropped_total 0",
            "exflow_intervals_total 0",
        ] {
            assert!(body.contains(line), "{line} missing from\n{body}");
        }
        for line in [
            "exflow_followups{service=\"audio_media\",outcome=\"not_seen\"} 0",
            "exflow_decode_skipped_total{reason=\"non_ip\"} 0",
        ] {
            assert!(body.contains(line), "{line} missing from\n{body}");
        }
    }

    #[test]
    fn histograms_observe_each_recorded_value() {
        let (m, reg) = Metrics::new(&Catalogue::builtin());
        let mut a = crate::analyze::Analyzer::new(crate::analyze::Config::default()).finish();
        let smtp = a.catalogue.must("smtp").0 as usize;
        let mut ended = vec![Micros::new(3).unwrap(); a.catalogue.len()];
        for us in [400, 900, 30_000] {
            a.summary.services[smtp].rtt_us.record(us).unwrap();
        }
        ended[smtp].record(2_000_000).unwrap();
        m.observe(&a, &ended);
        let body = scrape(&reg);
        for line in [
            "exflow_handshake_rtt_seconds_count{service=\"smtp\"} 3",
            "exflow_handshake_rtt_seconds_bucket{le=\"0.001\",service=\"smtp\"} 2",
            "exflow_flow_duration_seconds_count{service=\"smtp\"} 1",
            "exflow_flow_duration_seconds_bucket{le=\"5.0\",service=\"smtp\"} 1",
            "exflow_flow_duration_seconds_bucket{le=\"1.0\",service=\"smtp\"} 0",
        ] {
            assert!(body.contains(line), "{line} missing from\n{body}");
        }
    }
}
