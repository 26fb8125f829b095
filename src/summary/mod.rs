//! Per-service counters built from finished flows, and the input's own counters.
//!
//! Summaries merge with `+=` (live mode adds each interval into the totals). Durations and
//! handshake round-trip times go into HDR histograms so percentiles stay exact to three
//! significant digits whatever the number of flows.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::AddAssign;

use hdrhistogram::Histogram;

use crate::classify::{Flow, ServiceId};
use crate::flow::{DirCount, EndReason, Outcome, Side, TcpHealth};
use crate::packet::{Endpoint, Nanos, Proto};
use crate::track::DiagnosticsSet;

/// A histogram of microsecond values (durations, round-trip times) with 32-bit counts per
/// bucket, which saturate (README, Limits).
pub type Micros = Histogram<u32>;

/// A [`Micros`] allocated at its first value. A summary has three for every catalogue service
/// and most are never recorded into (a run sees a few services; the fresh handshake times are
/// live mode's): 8 KiB each at three significant figures, about 0.6 MiB per analysis thread.
/// Reads see an empty histogram until then.
#[derive(Clone, Debug, Default)]
pub struct LazyMicros(Option<Micros>);

impl LazyMicros {
    fn get_mut(&mut self) -> &mut Micros {
        self.0.get_or_insert_with(histogram)
    }

    /// Records one value, allocating the histogram at the first.
    pub fn record(&mut self, v: u64) -> Result<(), hdrhistogram::RecordError> {
        self.get_mut().record(v)
    }

    /// Adds `o`'s counts (nothing to allocate when it is empty).
    pub fn add(&mut self, o: &Micros) -> Result<(), hdrhistogram::AdditionError> {
        if o.is_empty() {
            return Ok(());
        }
        self.get_mut().add(o)
    }
}

impl std::ops::Deref for LazyMicros {
    type Target = Micros;

    fn deref(&self) -> &Micros {
        static EMPTY: std::sync::OnceLock<Micros> = std::sync::OnceLock::new();
        self.0
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(histogram))
    }
}

impl From<Micros> for LazyMicros {
    fn from(h: Micros) -> Self {
        LazyMicros(Some(h))
    }
}

/// Counters of one service.
#[derive(Clone, Debug, Default)]
pub struct ServiceStats {
    pub flows: u64,
    pub to_server: DirCount,
    pub to_client: DirCount,
    /// Indexed by [`Outcome::index`].
    pub outcomes: [u64; 5],
    pub midstream: u64,
    /// Flows answered by ICMP administratively-prohibited (a firewall's signature).
    pub icmp_admin_prohibited: u64,
    /// Flows pushed out of a full table before they ended.
    pub evicted: u64,
    /// Flow durations in microseconds.
    pub duration_us: LazyMicros,
    /// Handshake round-trip times in microseconds.
    pub rtt_us: LazyMicros,
    /// Live mode: the RTTs of ended flows whose handshake completed after
    /// [`Summary::live_rtt_cut`] (the others were reported while the flow was open).
    pub rtt_fresh_us: LazyMicros,
    pub tcp: TcpTotals,
}

/// TCP health of a service's flows, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpTotals {
    /// Flows with any retransmission, reordering, duplicate ACK, zero window, reset or stall.
    pub flows_troubled: u64,
    pub retransmitted: u64,
    pub out_of_order: u64,
    pub dup_acks: u64,
    pub zero_windows: u64,
    pub reset_by_client: u64,
    pub reset_by_server: u64,
    pub stalled: u64,
    /// Longest silence in any of the flows.
    pub longest_silence: Nanos,
}

impl TcpTotals {
    fn add(&mut self, h: &TcpHealth) {
        self.flows_troubled += u64::from(h.troubled());
        self.retransmitted += u64::from(h.retransmitted);
        self.out_of_order += u64::from(h.out_of_order);
        self.dup_acks += u64::from(h.dup_acks);
        self.zero_windows += u64::from(h.zero_windows);
        self.reset_by_client += u64::from(h.reset_mid_session == Some(Side::Client));
        self.reset_by_server += u64::from(h.reset_mid_session == Some(Side::Server));
        self.stalled += u64::from(h.stalled);
        self.longest_silence = self.longest_silence.max(h.longest_silence());
    }
}

impl AddAssign<&TcpTotals> for TcpTotals {
    fn add_assign(&mut self, o: &TcpTotals) {
        self.flows_troubled += o.flows_troubled;
        self.retransmitted += o.retransmitted;
        self.out_of_order += o.out_of_order;
        self.dup_acks += o.dup_acks;
        self.zero_windows += o.zero_windows;
        self.reset_by_client += o.reset_by_client;
        self.reset_by_server += o.reset_by_server;
        self.stalled += o.stalled;
        self.longest_silence = self.longest_silence.max(o.longest_silence);
    }
}

/// An empty [`Micros`].
pub fn histogram() -> Micros {
    // Auto-resizing, so a flow of days or an RTT of minutes is recorded, not dropped.
    let mut h = Histogram::new(3).expect("3 significant figures is valid");
    h.auto(true);
    h
}

impl ServiceStats {
    pub fn packets(&self) -> u64 {
        self.to_server.packets + self.to_client.packets
    }

    pub fn bytes(&self) -> u64 {
        self.to_server.bytes + self.to_client.bytes
    }

    pub fn failures(&self) -> u64 {
        Outcome::ALL
            .iter()
            .filter(|o| o.is_failure())
            .map(|o| self.outcomes[o.index()])
            .sum()
    }

    fn add_flow(&mut self, f: &Flow, outcome: Outcome, why: EndReason, rtt_cut: Option<Nanos>) {
        self.add_untimed(f, outcome, why);
        self.record(&Timing::of(f));
        if let Some(rtt) = f.tcp.handshake_rtt() {
            if rtt_cut.is_some_and(|cut| handshake_done(f) > cut) {
                let _ = self.rtt_fresh_us.record(nanos_to_us(rtt));
            }
        }
    }

    /// A flow's duration and handshake time into the histograms.
    fn record(&mut self, t: &Timing) {
        let _ = self.duration_us.record(t.duration_us);
        if let Some(rtt) = t.rtt_us {
            let _ = self.rtt_us.record(rtt);
        }
    }

    /// Everything of [`add_flow`](Self::add_flow) but the histograms.
    fn add_untimed(&mut self, f: &Flow, outcome: Outcome, why: EndReason) {
        self.flows += 1;
        add_dir(&mut self.to_server, f.to_server);
        add_dir(&mut self.to_client, f.to_client);
        self.outcomes[outcome.index()] += 1;
        self.midstream += u64::from(f.tcp.midstream());
        if outcome == Outcome::IcmpUnreachable
            && f.icmp_seen().is_some_and(|i| i.is_admin_prohibited())
        {
            self.icmp_admin_prohibited += 1;
        }
        self.evicted += u64::from(why == EndReason::Evicted);
        if f.proto == Proto::Tcp {
            self.tcp.add(&f.tcp.health);
        }
    }
}

/// What an ended flow puts in its service's histograms: held by a shard that hands them to
/// another to record ([`Summary::handed_on`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    service: ServiceId,
    duration_us: u64,
    rtt_us: Option<u64>,
}

impl Timing {
    fn of(f: &Flow) -> Timing {
        Timing {
            service: f.class.service,
            duration_us: nanos_to_us(f.last_ts.saturating_sub(f.first_ts)),
            rtt_us: f.tcp.handshake_rtt().map(nanos_to_us),
        }
    }
}

/// Capture time at which a flow's handshake completed (its client's ACK), if it did.
pub fn handshake_done(f: &Flow) -> Nanos {
    f.tcp.handshake_done().unwrap_or(Nanos::MIN)
}

fn add_dir(a: &mut DirCount, b: DirCount) {
    a.packets += b.packets;
    a.bytes += b.bytes;
}

/// Microseconds in `n` nanoseconds (0 for a negative span), what the histograms record.
pub(crate) fn nanos_to_us(n: Nanos) -> u64 {
    u64::try_from(n / 1000).unwrap_or(0)
}

impl ServiceStats {
    /// Counts a flow still open as if it ended now: its flow, packets and bytes, and its outcome
    /// when it is already final ([`Outcome::is_final_while_open`]). Histograms are left alone.
    pub fn add_open(&mut self, f: &Flow) {
        self.flows += 1;
        add_dir(&mut self.to_server, f.to_server);
        add_dir(&mut self.to_client, f.to_client);
        self.midstream += u64::from(f.tcp.midstream());
        let o = f.outcome();
        if o.is_final_while_open() {
            self.outcomes[o.index()] += 1;
            let admin = f.icmp_seen().is_some_and(|i| i.is_admin_prohibited());
            self.icmp_admin_prohibited += u64::from(o == Outcome::IcmpUnreachable && admin);
        }
    }

    /// The counters that grew past `mark`, a high-water mark of earlier values of the same
    /// cumulative counters, which is raised to these. Never negative, and a count that moved
    /// from one service to another (payload refinement) is not counted twice. The histograms
    /// and TCP totals of the result are empty: intervals difference those themselves.
    pub fn advance(&self, mark: &mut ServiceStats) -> ServiceStats {
        let d = |a: u64, b: &mut u64| {
            let diff = a.saturating_sub(*b);
            *b = (*b).max(a);
            diff
        };
        let dir = |a: DirCount, b: &mut DirCount| DirCount {
            packets: d(a.packets, &mut b.packets),
            bytes: d(a.bytes, &mut b.bytes),
        };
        let mut outcomes = [0; 5];
        for (i, o) in outcomes.iter_mut().enumerate() {
            *o = d(self.outcomes[i], &mut mark.outcomes[i]);
        }
        ServiceStats {
            flows: d(self.flows, &mut mark.flows),
            to_server: dir(self.to_server, &mut mark.to_server),
            to_client: dir(self.to_client, &mut mark.to_client),
            outcomes,
            midstream: d(self.midstream, &mut mark.midstream),
            icmp_admin_prohibited: d(self.icmp_admin_prohibited, &mut mark.icmp_admin_prohibited),
            evicted: d(self.evicted, &mut mark.evicted),
            ..ServiceStats::default()
        }
    }
}

impl AddAssign<&ServiceStats> for ServiceStats {
    fn add_assign(&mut self, o: &ServiceStats) {
        self.flows += o.flows;
        add_dir(&mut self.to_server, o.to_server);
        add_dir(&mut self.to_client, o.to_client);
        for (a, b) in self.outcomes.iter_mut().zip(o.outcomes) {
            *a += b;
        }
        self.midstream += o.midstream;
        self.icmp_admin_prohibited += o.icmp_admin_prohibited;
        self.evicted += o.evicted;
        let _ = self.duration_us.add(&o.duration_us);
        let _ = self.rtt_us.add(&o.rtt_us);
        let _ = self.rtt_fresh_us.add(&o.rtt_fresh_us);
        self.tcp += &o.tcp;
    }
}

/// One finished flow, owned, as `--flows` and the failure list show it.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowRecord {
    pub service: ServiceId,
    pub proto: Proto,
    pub client: Endpoint,
    pub server: Endpoint,
    pub outcome: Outcome,
    pub midstream: bool,
    pub to_server: DirCount,
    pub to_client: DirCount,
    pub first_ts: Nanos,
    pub last_ts: Nanos,
    pub followup_of: Option<u32>,
    pub syns: u32,
    pub handshake_rtt: Option<Nanos>,
    /// ICMP unreachable code and who sent it.
    pub icmp: Option<(bool, u8, IpAddr)>,
    pub evicted: bool,
    /// What the flow's trackers found, by tracker name (empty in a [`kept`](Self::kept) copy:
    /// read them with [`findings_by_name`](Self::findings_by_name)).
    pub findings: Vec<(&'static str, serde_json::Value)>,
    /// The findings of a record kept in the failure or broken-session list, packed by
    /// [`kept`](Self::kept) as the JSON text of one object by tracker name. A JSON value's tree
    /// takes a B-tree node of about 700 bytes for every object in it, however small: the lists
    /// fill up to their caps over a long run, and their findings were most of what a streamed
    /// 50 M-packet run held in use beyond a 5 M-packet one (README, Benchmarks).
    packed: Option<Box<str>>,
    /// TCP health (TCP flows only).
    pub tcp: Option<TcpHealth>,
}

impl FlowRecord {
    pub fn from_flow(
        f: &Flow,
        why: EndReason,
        findings: Vec<(&'static str, serde_json::Value)>,
    ) -> FlowRecord {
        FlowRecord {
            service: f.class.service,
            proto: f.proto,
            client: f.client,
            server: f.server,
            outcome: f.outcome(),
            midstream: f.tcp.midstream(),
            to_server: f.to_server,
            to_client: f.to_client,
            first_ts: f.first_ts,
            last_ts: f.last_ts,
            followup_of: f.class.followup_of(),
            syns: f.tcp.syns,
            handshake_rtt: f.tcp.handshake_rtt(),
            icmp: f.icmp_seen().map(|i| (i.v6, i.code, i.reporter)),
            evicted: why == EndReason::Evicted,
            findings,
            packed: None,
            tcp: (f.proto == Proto::Tcp).then_some(f.tcp.health),
        }
    }

    /// The copy a list keeps to the end of the run: its findings packed as JSON text (see
    /// `packed`), without copying their trees first. JSON values under string keys always
    /// serialize; were one not to, the copy keeps them as they are rather than lose them.
    pub fn kept(&self) -> FlowRecord {
        if self.findings.is_empty() {
            return self.clone();
        }
        // By name, as the report shows them (a later finding of the same name wins there too).
        let by_name: BTreeMap<&str, &serde_json::Value> =
            self.findings.iter().map(|(name, v)| (*name, v)).collect();
        match serde_json::to_string(&by_name) {
            Ok(text) => FlowRecord {
                findings: Vec::new(),
                packed: Some(text.into_boxed_str()),
                ..*self
            },
            Err(_) => self.clone(),
        }
    }

    /// The findings by tracker name, from the packed text if the record was packed (its numbers
    /// come back exactly: serde_json's `float_roundtrip`).
    pub fn findings_by_name(&self) -> BTreeMap<String, serde_json::Value> {
        match &self.packed {
            Some(text) => {
                let read = serde_json::from_str(text);
                debug_assert!(read.is_ok(), "packed findings read back: {text}");
                read.unwrap_or_default()
            }
            None => self
                .findings
                .iter()
                .map(|(name, v)| (name.to_string(), v.clone()))
                .collect(),
        }
    }
}

/// How many failed flows are kept for the report's failure list.
pub const MAX_FAILURES_KEPT: usize = 10_000;

/// Default of `--max-flow-records`: flow records kept for `--flows`.
pub const DEFAULT_MAX_FLOW_RECORDS: usize = 1_000_000;

/// Everything learned from the flows.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Indexed by [`ServiceId`].
    pub services: Vec<ServiceStats>,
    /// Every finished flow, when asked for (the first `max_flow_records`).
    pub flows: Option<Vec<FlowRecord>>,
    pub max_flow_records: usize,
    /// Flow records not kept past `max_flow_records`.
    pub flow_records_dropped: u64,
    /// Failed flows (first [`MAX_FAILURES_KEPT`]).
    pub failures: Vec<FlowRecord>,
    pub failures_dropped: u64,
    /// The trackers' run-wide findings.
    pub diagnostics: DiagnosticsSet,
    /// Established TCP sessions reset mid-way or stalled (first [`MAX_FAILURES_KEPT`]).
    pub broken: Vec<FlowRecord>,
    pub broken_dropped: u64,
    /// Live mode: capture time up to which open flows' handshakes were reported (None: not
    /// live, `rtt_fresh_us` stays empty).
    pub live_rtt_cut: Option<Nanos>,
    /// A shard that hands its flows' histogram values to another (`Some`): they wait here to
    /// be taken ([`take_timings`](Self::take_timings)) instead of filling a second set of
    /// histograms. Not in live mode (each worker reports its own intervals).
    pub handed_on: Option<Vec<Timing>>,
}

impl Summary {
    pub fn new(services: usize, keep_flows: bool) -> Summary {
        Summary {
            services: vec![ServiceStats::default(); services],
            flows: keep_flows.then(Vec::new),
            max_flow_records: DEFAULT_MAX_FLOW_RECORDS,
            flow_records_dropped: 0,
            failures: Vec::new(),
            failures_dropped: 0,
            diagnostics: DiagnosticsSet::default(),
            broken: Vec::new(),
            broken_dropped: 0,
            live_rtt_cut: None,
            handed_on: None,
        }
    }

    /// Records flows' histogram values another summary handed on.
    pub fn record_timings(&mut self, timings: impl IntoIterator<Item = Timing>) {
        for t in timings {
            if let Some(s) = self.services.get_mut(t.service.0 as usize) {
                s.record(&t);
            }
        }
    }

    /// Moves the histogram values waiting to be handed on to the end of `to`.
    pub fn take_timings(&mut self, to: &mut Vec<Timing>) {
        if let Some(t) = self.handed_on.as_mut() {
            to.append(t);
        }
    }

    /// Records the values still waiting here, and those of the flows to come.
    pub fn keep_timings(&mut self) {
        if let Some(t) = self.handed_on.take() {
            self.record_timings(t);
        }
    }

    /// Whether a record of `f` will be kept (every flow with `--flows`, else failures).
    pub fn wants_record(&self, f: &Flow) -> bool {
        self.flows
            .as_ref()
            .is_some_and(|r| r.len() < self.max_flow_records)
            || f.outcome().is_failure()
            || (f.proto == Proto::Tcp && f.tcp.health.broken())
    }

    /// Folds a flow that left the table into the totals, with its trackers' findings.
    pub fn add_flow(
        &mut self,
        f: &Flow,
        why: EndReason,
        findings: Vec<(&'static str, serde_json::Value)>,
    ) {
        let outcome = f.outcome();
        if let Some(s) = self.services.get_mut(f.class.service.0 as usize) {
            match self.handed_on.as_mut() {
                Some(waiting) => {
                    s.add_untimed(f, outcome, why);
                    waiting.push(Timing::of(f));
                }
                None => s.add_flow(f, outcome, why, self.live_rtt_cut),
            }
        }
        let failed = outcome.is_failure();
        let broken = !failed && f.proto == Proto::Tcp && f.tcp.health.broken();
        let keep_failure = failed && self.failures.len() < MAX_FAILURES_KEPT;
        let keep_broken = broken && self.broken.len() < MAX_FAILURES_KEPT;
        if failed && !keep_failure {
            self.failures_dropped += 1;
        }
        if broken && !keep_broken {
            self.broken_dropped += 1;
        }
        let keep_record = match &self.flows {
            Some(flows) if flows.len() < self.max_flow_records => true,
            Some(_) => {
                self.flow_records_dropped = self.flow_records_dropped.saturating_add(1);
                false
            }
            None => false,
        };
        if !(keep_record || keep_failure || keep_broken) {
            return;
        }
        let r = FlowRecord::from_flow(f, why, findings);
        // A flow is failed or broken, not both: one list at most keeps it.
        let listed = if keep_failure {
            Some(&mut self.failures)
        } else if keep_broken {
            Some(&mut self.broken)
        } else {
            None
        };
        // What a list keeps to the end of the run is packed; `--flows` records are written as
        // they end, so they stay as they are.
        if let Some(list) = listed {
            list.push(r.kept());
        }
        if let Some(flows) = self.flows.as_mut().filter(|_| keep_record) {
            flows.push(r);
        }
    }

    pub fn total_flows(&self) -> u64 {
        self.services.iter().map(|s| s.flows).sum()
    }
}

impl AddAssign<&Summary> for Summary {
    fn add_assign(&mut self, o: &Summary) {
        if self.services.len() < o.services.len() {
            self.services
                .resize(o.services.len(), ServiceStats::default());
        }
        for (a, b) in self.services.iter_mut().zip(&o.services) {
            *a += b;
        }
        self.record_timings(o.handed_on.iter().flatten().copied());
        let room = MAX_FAILURES_KEPT.saturating_sub(self.failures.len());
        self.failures.extend(o.failures.iter().take(room).cloned());
        self.failures_dropped += o.failures_dropped + o.failures.len().saturating_sub(room) as u64;
        self.flow_records_dropped += o.flow_records_dropped;
        let room = MAX_FAILURES_KEPT.saturating_sub(self.broken.len());
        self.broken.extend(o.broken.iter().take(room).cloned());
        self.broken_dropped += o.broken_dropped + o.broken.len().saturating_sub(room) as u64;
        if let (Some(a), Some(b)) = (&mut self.flows, &o.flows) {
            let room = self.max_flow_records.saturating_sub(a.len());
            a.extend(b.iter().take(room).cloned());
            self.flow_records_dropped += b.len().saturating_sub(room) as u64;
        }
        self.diagnostics += &o.diagnostics;
    }
}

/// Counters of one input file.
#[derive(Clone, Debug, Default)]
pub struct FileStats {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
    /// The error that stopped reading this file early, if any.
    pub error: Option<String>,
}

/// What the inputs held, including what could not be decoded.
#[derive(Clone, Debug, Default)]
pub struct InputStats {
    pub files: Vec<FileStats>,
    pub packets: u64,
    pub bytes: u64,
    pub first_ts: Option<Nanos>,
    pub last_ts: Option<Nanos>,
    /// Frames not decoded, by reason key.
    pub skipped: BTreeMap<String, u64>,
    /// Trailing IP fragments whose first fragment was not seen (counted on a port-0 flow).
    pub orphan_fragments: u64,
    /// ICMP destination-unreachable messages attributed to a flow (not among its packets).
    pub icmp_unreachable: u64,
    pub icmp_unreachable_bytes: u64,
    /// Wire bytes of the frames not decoded.
    pub skipped_bytes: u64,
    /// Timestamps before 1970, after 2200 or years from their neighbours, replaced by the time
    /// of the packet before.
    pub bogus_timestamps: u64,
    /// Reader budgets reached (pcapng interfaces).
    pub read_limits: crate::source::ReadLimitCounts,
    /// Files not read because they exceeded the in-memory window.
    pub files_over_window: u64,
    pub warnings: Vec<String>,
}

impl InputStats {
    /// Counts one frame of `wire` bytes at capture time `ts`, in the run and its current file.
    pub fn count_frame(&mut self, wire: u64, ts: Nanos) {
        self.packets += 1;
        self.bytes += wire;
        if let Some(f) = self.files.last_mut() {
            f.packets += 1;
            f.bytes += wire;
        }
        self.note_time(ts);
    }

    pub fn note_time(&mut self, ts: Nanos) {
        self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `LazyMicros` is for: a histogram nobody records into holds no counts array, reads as
    /// an empty one, and adding an empty one keeps it so; its first value allocates it.
    #[test]
    fn a_histogram_takes_room_at_its_first_value() {
        let mut h = LazyMicros::default();
        assert!(h.0.is_none());
        assert!(h.is_empty());
        assert_eq!((h.len(), h.max()), (0, 0));
        h.add(&histogram()).unwrap();
        assert!(h.0.is_none(), "adding nothing allocates nothing");
        h.record(1_500).unwrap();
        assert!(h.0.is_some());
        assert_eq!((h.len(), h.max()), (1, h.highest_equivalent(1_500)));
        let mut other = histogram();
        other.record(20).unwrap();
        h.add(&other).unwrap();
        assert_eq!(h.len(), 2);
        // A service nobody saw costs nothing in a merge either.
        let mut total = ServiceStats::default();
        total += &ServiceStats::default();
        assert!(total.duration_us.0.is_none() && total.rtt_us.0.is_none());
    }

    fn record(findings: Vec<(&'static str, serde_json::Value)>) -> FlowRecord {
        let at = |port| Endpoint::new(IpAddr::from([10, 0, 0, 1]), port);
        FlowRecord {
            service: ServiceId(0),
            proto: Proto::Tcp,
            client: at(40000),
            server: at(25),
            outcome: Outcome::Refused,
            midstream: false,
            to_server: DirCount::default(),
            to_client: DirCount::default(),
            first_ts: 0,
            last_ts: 0,
            followup_of: None,
            syns: 1,
            handshake_rtt: None,
            icmp: None,
            evicted: false,
            findings,
            packed: None,
            tcp: None,
        }
    }

    /// A kept record's findings are packed as text and read back as the same JSON, numbers
    /// included; a record without findings has nothing to pack.
    #[test]
    fn packed_findings_read_back_the_same() {
        let r = record(vec![
            (
                "smtp",
                serde_json::json!({"verdict": "rejected", "n": u64::MAX, "neg": -12,
                    "reply": {"code": 550, "text": "5.7.1 Unable to relay \u{e9}\"\\"},
                    "rcpt": [{"to": "b@y.example", "code": 550}, {"to": "c@y.example", "code": null}]}),
            ),
            (
                "dns",
                serde_json::json!({"rtt_ms": 0.1 + 0.2, "tiny": 1e-7, "big": 1.7976931348623157e308,
                    "q": [1.5, 2.25, 123.456]}),
            ),
        ]);
        let before = r.findings_by_name();
        assert_eq!(before.len(), 2);
        let kept = r.kept();
        assert!(kept.findings.is_empty());
        let text = kept.packed.as_deref().unwrap();
        assert!(text.starts_with(r#"{"dns":{"#), "{text}");
        assert_eq!(kept.findings_by_name(), before);
        // The record itself is untouched: `--flows` writes it as it is.
        assert_eq!((r.findings.len(), r.packed.as_deref()), (2, None));
        assert_eq!(
            kept,
            FlowRecord {
                findings: Vec::new(),
                packed: kept.packed.clone(),
                ..r.clone()
            }
        );
        // Two findings of one name: the later one, packed or not (as the report always showed).
        let twice = record(vec![
            ("dns", serde_json::json!(1)),
            ("dns", serde_json::json!(2)),
        ]);
        assert_eq!(twice.findings_by_name()["dns"], 2);
        let twice = twice.kept();
        assert_eq!(twice.packed.as_deref(), Some(r#"{"dns":2}"#));
        let none = record(Vec::new()).kept();
        assert_eq!(none.packed, None);
        assert!(none.findings_by_name().is_empty());
    }

    proptest::proptest! {
        /// Every finite number comes back with its bits (serde_json's `float_roundtrip`).
        #[test]
        fn packed_numbers_come_back_exactly(xs in proptest::collection::vec(proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO, 1..16)) {
            let r = record(vec![("dns", serde_json::json!({ "xs": xs }))]);
            let before = r.findings_by_name();
            let after = r.kept().findings_by_name();
            let bits = |m: &BTreeMap<String, serde_json::Value>| -> Vec<u64> {
                m["dns"]["xs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap().to_bits()).collect()
            };
            proptest::prop_assert_eq!(bits(&after), bits(&before));
        }
    }
}
