//! Prometheus exposition on `--metrics ADDR:PORT` (`GET /metrics`, OpenMetrics text format, via
//! the `prometheus-client` crate), updated at the end of every interval from its report.
//!
//! Counters grow by each interval's own counts, so they never go down and `rate()` works across
//! a fleet; follow-up outcomes can still change while their flows live, so they are gauges.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::Value;

use super::report::LiveReport;

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

/// The metric families, shared with the HTTP thread through the registry.
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
    smtp_sessions: Family<VerdictLabel, Counter>,
    smtp_replies: Family<CodeLabel, Counter>,
    dns_responses: Family<RcodeLabel, Counter>,
    dns_unanswered: Counter,
    ldap_results: Family<OpCodeLabels, Counter>,
}

impl Metrics {
    /// Registers the metrics and serves them on `addr` from a background thread.
    pub fn serve(addr: SocketAddr) -> std::io::Result<Metrics> {
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
        let server = tiny_http::Server::http(addr).map_err(std::io::Error::other)?;
        let reg = Arc::new(reg);
        thread::Builder::new()
            .name("exflow-metrics".into())
            .spawn(move || serve_forever(&server, &reg))?;
        Ok(m)
    }

    /// Adds one interval's counts (and sets the gauges from the totals).
    pub fn update(&self, r: &LiveReport) {
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

fn serve_forever(server: &tiny_http::Server, reg: &Registry) {
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("");
        let response = if path == "/metrics" {
            let mut body = String::new();
            if encode(&mut body, reg).is_err() {
                body.clear();
            }
            let ct = "application/openmetrics-text; version=1.0.0; charset=utf-8";
            tiny_http::Response::from_string(body).with_header(header("Content-Type", ct))
        } else {
            tiny_http::Response::from_string("exflow: metrics are at /metrics\n")
                .with_status_code(404)
        };
        // A client that went away is its own problem; keep serving the others.
        let _ = req.respond(response);
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
        .expect("static header is valid")
}
