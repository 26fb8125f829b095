//! Interval figures as differences of cumulative snapshots of the [`Analyzer`], so the per-packet
//! path stays as it is.
//!
//! The totals are the report `analyze` would give if the capture ended now: finished flows plus
//! every open flow as if flushed. An interval counts what grew since the previous one: new flows,
//! packets and bytes, and each flow's outcome once, in the interval where it became known —
//! `established`, `refused` and `icmp_unreachable` at once (an open flow does not leave them in
//! practice), `unanswered` and `one_way` only when the flow leaves the table, since a reply may
//! still come. Cumulative counters are kept as high-water marks, so the intervals never count a
//! flow twice when payload refinement moves it to another service, and never go negative.
//! Handshake-RTT percentiles of an interval cover the flows whose handshake completed in it (open
//! or ended, each flow in one interval only); duration percentiles cover the flows that ended in
//! it and the flows still open at its end (their age so far), so both can be plotted.

use std::collections::HashSet;

use hdrhistogram::Histogram;

use crate::analyze::{Analysis, Analyzer};
use crate::classify::{Catalogue, Expectation, Flow, FlowTable};
use crate::flow::{DirCount, EndReason, Outcome};
use crate::packet::{Endpoint, Nanos, Proto};
use crate::summary::{handshake_done, FileStats, FlowRecord, InputStats, ServiceStats, Summary};
use crate::track::{DiagnosticsSet, Signalling};

/// Cumulative counters of one service that only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Count {
    flows: u64,
    to_server: DirCount,
    to_client: DirCount,
    outcomes: [u64; 5],
    midstream: u64,
    icmp_admin_prohibited: u64,
    evicted: u64,
}

impl Count {
    fn of_finished(s: &ServiceStats) -> Count {
        Count {
            flows: s.flows,
            to_server: s.to_server,
            to_client: s.to_client,
            outcomes: s.outcomes,
            midstream: s.midstream,
            icmp_admin_prohibited: s.icmp_admin_prohibited,
            evicted: s.evicted,
        }
    }

    fn add_open(&mut self, f: &Flow) {
        self.flows += 1;
        add_dir(&mut self.to_server, f.to_server);
        add_dir(&mut self.to_client, f.to_client);
        self.midstream += u64::from(f.midstream);
        let o = f.outcome();
        if known(o) {
            self.outcomes[o.index()] += 1;
            let admin = f.icmp.is_some_and(|i| i.is_admin_prohibited());
            self.icmp_admin_prohibited += u64::from(o == Outcome::IcmpUnreachable && admin);
        }
    }

    /// `self - old` where `old` is a high-water mark, and raises the mark.
    fn advance(&self, mark: &mut Count) -> Count {
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
        Count {
            flows: d(self.flows, &mut mark.flows),
            to_server: dir(self.to_server, &mut mark.to_server),
            to_client: dir(self.to_client, &mut mark.to_client),
            outcomes,
            midstream: d(self.midstream, &mut mark.midstream),
            icmp_admin_prohibited: d(self.icmp_admin_prohibited, &mut mark.icmp_admin_prohibited),
            evicted: d(self.evicted, &mut mark.evicted),
        }
    }
}

/// Outcomes an open flow keeps once it has them; the others wait for the flow to end.
fn known(o: Outcome) -> bool {
    matches!(
        o,
        Outcome::Established | Outcome::Refused | Outcome::IcmpUnreachable
    )
}

fn add_dir(a: &mut DirCount, b: DirCount) {
    a.packets += b.packets;
    a.bytes += b.bytes;
}

/// A flow's identity for the failure list across intervals.
type FlowId = (Proto, Endpoint, Endpoint, Nanos);

fn flow_id(r: &FlowRecord) -> FlowId {
    (r.proto, r.client, r.server, r.first_ts)
}

/// Capture times of the packets of one interval (the live loop notes them).
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    pub first_ts: Option<Nanos>,
    pub last_ts: Option<Nanos>,
}

impl Window {
    #[inline]
    pub fn note(&mut self, ts: Nanos) {
        self.first_ts = Some(self.first_ts.map_or(ts, |f| f.min(ts)));
        self.last_ts = Some(self.last_ts.map_or(ts, |l| l.max(ts)));
    }
}

/// What the previous interval ended with.
#[derive(Default)]
pub struct Intervals {
    marks: Vec<Count>,
    /// Duration and fresh-RTT histograms of the finished flows at the previous interval.
    hist: Vec<(Histogram<u64>, Histogram<u64>)>,
    /// Durations of the flows that ended in the last interval, by service (Prometheus observes
    /// each flow once).
    ended: Vec<Histogram<u64>>,
    /// Capture time up to which handshakes were reported.
    rtt_cut: Option<Nanos>,
    input: InputStats,
    evicted: u64,
    expired: u64,
    failures_seen: usize,
    failures_dropped: u64,
    /// Open flows with a known failure outcome, already listed.
    open_failures: HashSet<FlowId>,
    peak: usize,
    signalling: Signalling,
    diagnostics: DiagnosticsSet,
    dropped_at_cap: u64,
    /// Capture time up to which announced follow-ups were reported.
    announced_until: Option<Nanos>,
}

impl Intervals {
    pub fn new() -> Intervals {
        Intervals::default()
    }

    /// Starts the run: ended flows report their handshake RTT in the interval of the handshake.
    pub fn begin(&mut self, a: &mut Analyzer) {
        a.summary.live_rtt_cut = Some(Nanos::MIN);
    }

    /// Ends an interval of a running analyzer: returns the interval's own report and the totals.
    pub fn tick(&mut self, a: &mut Analyzer, window: Window) -> (Analysis, Analysis) {
        let peak = a.take_peak();
        self.peak = self.peak.max(peak);
        let mut totals = a.snapshot();
        totals.peak_flows = self.peak;
        let input = totals.input.clone();
        let cut = window.last_ts.or(self.rtt_cut);
        let interval = self.step(
            &a.summary,
            Some((&a.flows, cut)),
            Cumulative {
                catalogue: &totals.catalogue,
                input: &input,
                evicted: a.flows.evicted,
                expired: a.flows.expired,
                peak,
                followups: &totals.followups,
                signalling: totals.signalling.clone(),
                dropped_at_cap: totals.expectations_dropped_at_cap,
            },
            window,
        );
        // Flows ending from now on report their RTT only if their handshake is newer.
        self.rtt_cut = cut;
        a.summary.live_rtt_cut = Some(cut.unwrap_or(Nanos::MIN));
        (interval, totals)
    }

    /// Durations of the flows that ended in the last interval, indexed by service.
    pub fn ended_durations(&self) -> &[Histogram<u64>] {
        &self.ended
    }

    /// Ends the last interval with the run's final analysis; fixes its peak to the run's.
    pub fn finish(&mut self, totals: &mut Analysis, window: Window) -> Analysis {
        let peak = totals.peak_flows;
        totals.peak_flows = self.peak.max(peak);
        let input = totals.input.clone();
        self.step(
            &totals.summary,
            None,
            Cumulative {
                catalogue: &totals.catalogue,
                input: &input,
                evicted: totals.flows_evicted,
                expired: totals.flows_expired,
                peak,
                followups: &totals.followups,
                signalling: totals.signalling.clone(),
                dropped_at_cap: totals.expectations_dropped_at_cap,
            },
            window,
        )
    }

    fn step(
        &mut self,
        finished: &Summary,
        open: Option<(&FlowTable, Option<Nanos>)>,
        now: Cumulative<'_>,
        window: Window,
    ) -> Analysis {
        let n = finished.services.len();
        let mut cur: Vec<Count> = finished.services.iter().map(Count::of_finished).collect();
        let fresh = ServiceStats::default();
        let mut open_hist = vec![(fresh.duration_us.clone(), fresh.rtt_us.clone()); n];
        let after = self.rtt_cut.unwrap_or(Nanos::MIN);
        for (f, cut) in open
            .iter()
            .flat_map(|(t, cut)| t.iter().map(move |f| (f, *cut)))
        {
            let i = f.class.service.0 as usize;
            if let Some(c) = cur.get_mut(i) {
                c.add_open(f);
            }
            if let Some((dur, rtt)) = open_hist.get_mut(i) {
                let _ = dur.record(micros(f.last_ts.saturating_sub(f.first_ts)));
                let done = handshake_done(f);
                if let Some(r) = f.tcp.handshake_rtt.filter(|_| done > after) {
                    if cut.is_none_or(|c| done <= c) {
                        let _ = rtt.record(micros(r));
                    }
                }
            }
        }
        self.marks.resize(n, Count::default());
        self.hist
            .resize_with(n, || (fresh.duration_us.clone(), fresh.rtt_us.clone()));
        self.ended.clear();
        let mut services = Vec::with_capacity(n);
        for (i, fin) in finished.services.iter().enumerate() {
            let c = cur[i].advance(&mut self.marks[i]);
            let (dur, rtt) = &mut self.hist[i];
            let ended = since(&fin.duration_us, dur);
            let mut duration_us = ended.clone();
            let mut rtt_us = since(&fin.rtt_fresh_us, rtt);
            if let Some((d, r)) = open_hist.get(i) {
                let _ = duration_us.add(d);
                let _ = rtt_us.add(r);
            }
            self.ended.push(ended);
            services.push(ServiceStats {
                flows: c.flows,
                to_server: c.to_server,
                to_client: c.to_client,
                outcomes: c.outcomes,
                midstream: c.midstream,
                icmp_admin_prohibited: c.icmp_admin_prohibited,
                evicted: c.evicted,
                duration_us,
                rtt_us,
                rtt_fresh_us: fresh.rtt_fresh_us.clone(),
                // TCP health is reported in the totals only.
                tcp: Default::default(),
            });
        }
        let failures = self.new_failures(finished, open.iter().flat_map(|(t, _)| t.iter()));
        let interval = Analysis {
            catalogue: now.catalogue.clone(),
            input: self.input_since(now.input, window),
            summary: Summary {
                services,
                flows: None,
                failures,
                failures_dropped: finished
                    .failures_dropped
                    .saturating_sub(self.failures_dropped),
                diagnostics: finished.diagnostics.since(&self.diagnostics),
                max_flow_records: 0,
                flow_records_dropped: 0,
                broken: Vec::new(),
                broken_dropped: 0,
                live_rtt_cut: None,
            },
            flows_evicted: now.evicted.saturating_sub(self.evicted),
            flows_expired: now.expired.saturating_sub(self.expired),
            peak_flows: now.peak,
            followups: self.announced(now.followups, window),
            signalling: &now.signalling - &self.signalling,
            expectations_dropped_at_cap: now.dropped_at_cap.saturating_sub(self.dropped_at_cap),
            // Retired expectations appear in the totals only.
            followups_retired: Default::default(),
        };
        self.signalling = now.signalling;
        self.diagnostics = finished.diagnostics.clone();
        self.dropped_at_cap = now.dropped_at_cap;
        self.failures_dropped = finished.failures_dropped;
        self.evicted = now.evicted;
        self.expired = now.expired;
        self.input = now.input.clone();
        interval
    }

    /// Failed flows not listed before: finished since the last interval, or open with a failure
    /// that is known now.
    fn new_failures<'f>(
        &mut self,
        finished: &Summary,
        open: impl Iterator<Item = &'f Flow>,
    ) -> Vec<FlowRecord> {
        let fresh = finished.failures.get(self.failures_seen..).unwrap_or(&[]);
        let mut out: Vec<FlowRecord> = fresh
            .iter()
            .filter(|r| !self.open_failures.contains(&flow_id(r)))
            .cloned()
            .collect();
        self.failures_seen = finished.failures.len();
        let mut listed = HashSet::new();
        for f in open {
            let o = f.outcome();
            if !(o.is_failure() && known(o)) {
                continue;
            }
            let r = FlowRecord::from_flow(f, EndReason::Flushed, Vec::new());
            let id = flow_id(&r);
            if !self.open_failures.contains(&id) {
                out.push(r);
            }
            listed.insert(id);
        }
        self.open_failures = listed;
        out
    }

    /// Follow-ups announced by this interval's packets (outcomes as of now; the totals follow
    /// them to the end).
    fn announced(&mut self, all: &[Expectation], window: Window) -> Vec<Expectation> {
        let after = self.announced_until;
        let until = window.last_ts.or(after);
        self.announced_until = until;
        all.iter()
            .filter(|e| after.is_none_or(|a| e.announced_ts > a))
            .filter(|e| until.is_some_and(|u| e.announced_ts <= u))
            .cloned()
            .collect()
    }

    fn input_since(&self, now: &InputStats, window: Window) -> InputStats {
        let old = &self.input;
        let mut skipped = now.skipped.clone();
        for (reason, n) in skipped.iter_mut() {
            *n = n.saturating_sub(old.skipped.get(reason).copied().unwrap_or(0));
        }
        skipped.retain(|_, n| *n > 0);
        let packets = now.packets.saturating_sub(old.packets);
        let bytes = now.bytes.saturating_sub(old.bytes);
        InputStats {
            files: now
                .files
                .iter()
                .map(|f| FileStats {
                    name: f.name.clone(),
                    packets,
                    bytes,
                    error: f.error.clone(),
                })
                .collect(),
            packets,
            bytes,
            first_ts: window.first_ts,
            last_ts: window.last_ts,
            skipped,
            orphan_fragments: now.orphan_fragments.saturating_sub(old.orphan_fragments),
            icmp_unreachable: now.icmp_unreachable.saturating_sub(old.icmp_unreachable),
            icmp_unreachable_bytes: now
                .icmp_unreachable_bytes
                .saturating_sub(old.icmp_unreachable_bytes),
            skipped_bytes: now.skipped_bytes.saturating_sub(old.skipped_bytes),
            bogus_timestamps: now.bogus_timestamps.saturating_sub(old.bogus_timestamps),
            read_limits: crate::source::ReadLimitCounts::default(),
            files_over_window: 0,
            warnings: now
                .warnings
                .get(old.warnings.len()..)
                .unwrap_or(&[])
                .to_vec(),
        }
    }
}

/// The run's cumulative counters that are not per service.
struct Cumulative<'a> {
    catalogue: &'a Catalogue,
    input: &'a InputStats,
    evicted: u64,
    expired: u64,
    peak: usize,
    followups: &'a [Expectation],
    signalling: Signalling,
    dropped_at_cap: u64,
}

fn micros(n: Nanos) -> u64 {
    u64::try_from(n / 1000).unwrap_or(0)
}

/// The values recorded in `now` since `mark`, which becomes `now`.
fn since(now: &Histogram<u64>, mark: &mut Histogram<u64>) -> Histogram<u64> {
    let mut h = now.clone();
    if h.subtract(&*mark).is_err() {
        h.reset();
    }
    *mark = now.clone();
    h
}
