//! Interval figures (live mode) as differences of cumulative snapshots of the [`Analyzer`], so
//! the per-packet path stays as it is. Built on the summary's own types ([`ServiceStats::advance`]
//! and [`ServiceStats::add_open`]); needs no capture library, so it is tested with built packets.
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

use crate::analyze::{Analysis, Analyzer};
use crate::classify::{Catalogue, Expectation, Flow, FlowTable};
use crate::firewall::Collector;
use crate::flow::EndReason;
use crate::packet::{Endpoint, Nanos, Proto};
use crate::summary::{
    handshake_done, histogram, nanos_to_us, FileStats, FlowRecord, InputStats, LazyMicros, Micros,
    ServiceStats, Summary,
};
use crate::track::{DiagnosticsSet, Signalling};

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

/// An interval's end: its report, the run's totals so far, and the durations of the flows that
/// ended in it by service (Prometheus observes each flow once).
pub struct Ended {
    pub interval: Analysis,
    pub totals: Analysis,
    pub durations: Vec<Micros>,
}

/// What the previous interval ended with.
#[derive(Default)]
pub struct Intervals {
    /// High-water marks of every service's cumulative counters.
    marks: Vec<ServiceStats>,
    /// Duration and fresh-RTT histograms of the finished flows at the previous interval.
    hist: Vec<(Micros, Micros)>,
    /// Durations of the flows that ended in the last interval, by service (Prometheus observes
    /// each flow once).
    ended: Vec<Micros>,
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
    /// The rules of every flow that ended so far (with `Config::firewall`).
    firewall: Option<Collector>,
    /// Capture time of the previous interval's last packet: open flows quiet since then are
    /// not in this interval's rules.
    firewall_cut: Option<Nanos>,
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
        self.tick_at(a, window, None)
    }

    /// [`tick`](Self::tick), the capture time now being `now` when given (a sharded run's
    /// newest packet, which this worker's analyzer may not have seen) instead of the analyzer's
    /// newest: the firewall rules of open flows count the flows as old as they are in the run.
    pub fn tick_at(
        &mut self,
        a: &mut Analyzer,
        window: Window,
        now: Option<Nanos>,
    ) -> (Analysis, Analysis) {
        let ended = a.take_firewall();
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
        let (mut interval, mut totals) = (interval, totals);
        if let Some(ended) = ended {
            let now = now.or(totals.input.last_ts).unwrap_or(Nanos::MIN);
            let (iv, all) = self.firewall_tick(ended, a, now, window);
            interval.firewall = Some(iv);
            totals.firewall = Some(all);
        }
        (interval, totals)
    }

    /// The interval's rules (flows that ended in it, and open flows that carried packets in it)
    /// and the run's (every ended flow, and every open flow), open flows as of capture time `now`.
    fn firewall_tick(
        &mut self,
        ended: Collector,
        a: &Analyzer,
        now: Nanos,
        window: Window,
    ) -> (Collector, Collector) {
        let total = self.firewall.get_or_insert_with(|| ended.fresh());
        total.merge(&ended);
        let mut all = total.clone();
        let mut iv = ended;
        let (table, list) = a.open_flows();
        let after = self.firewall_cut;
        for f in table.iter() {
            all.add_open(f, now, |id| list.get(&id).map(|e| &**e));
            if after.is_none_or(|c| f.last_ts > c) {
                iv.add_open(f, now, |id| list.get(&id).map(|e| &**e));
            }
        }
        self.firewall_cut = window.last_ts.or(after);
        (iv, all)
    }

    /// Durations of the flows that ended in the last interval, indexed by service.
    pub fn ended_durations(&self) -> &[Micros] {
        &self.ended
    }

    /// Ends the last interval with the run's final analysis; fixes its peak to the run's.
    pub fn finish(&mut self, totals: &mut Analysis, window: Window) -> Analysis {
        let peak = totals.peak_flows;
        totals.peak_flows = self.peak.max(peak);
        let input = totals.input.clone();
        let firewall = totals.firewall.take();
        if let Some(ended) = &firewall {
            let total = self.firewall.get_or_insert_with(|| ended.fresh());
            total.merge(ended);
            totals.firewall = Some(total.clone());
        }
        let mut interval = self.step(
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
        );
        interval.firewall = firewall;
        interval
    }

    fn step(
        &mut self,
        finished: &Summary,
        open: Option<(&FlowTable, Option<Nanos>)>,
        now: Cumulative<'_>,
        window: Window,
    ) -> Analysis {
        let n = finished.services.len();
        let mut cur: Vec<ServiceStats> = finished.services.clone();
        let mut open_hist = vec![(LazyMicros::default(), LazyMicros::default()); n];
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
                let _ = dur.record(nanos_to_us(f.last_ts.saturating_sub(f.first_ts)));
                let done = handshake_done(f);
                if let Some(r) = f.tcp.handshake_rtt().filter(|_| done > after) {
                    if cut.is_none_or(|c| done <= c) {
                        let _ = rtt.record(nanos_to_us(r));
                    }
                }
            }
        }
        self.marks.resize(n, ServiceStats::default());
        self.hist.resize_with(n, || (histogram(), histogram()));
        self.ended.clear();
        let mut services = Vec::with_capacity(n);
        for (i, fin) in finished.services.iter().enumerate() {
            let c = cur[i].advance(&mut self.marks[i]);
            let (dur, rtt) = &mut self.hist[i];
            let ended = since(&fin.duration_us, dur);
            let mut duration_us = ended.clone();
            let mut rtt_us = since(&fin.rtt_fresh_us, rtt);
            if let Some((d, r)) = open_hist.get(i) {
                let _ = duration_us.add(&**d);
                let _ = rtt_us.add(&**r);
            }
            self.ended.push(ended);
            // TCP health is reported in the totals only.
            services.push(ServiceStats {
                duration_us: duration_us.into(),
                rtt_us: rtt_us.into(),
                ..c
            });
        }
        let failures = self.new_failures(finished, open.iter().flat_map(|(t, _)| t.iter()));
        let interval = Analysis {
            catalogue: now.catalogue.clone(),
            input: input_since(&self.input, now.input, window),
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
                handed_on: None,
            },
            flows_evicted: now.evicted.saturating_sub(self.evicted),
            flows_expired: now.expired.saturating_sub(self.expired),
            peak_flows: now.peak,
            followups: self.announced(now.followups, window),
            signalling: &now.signalling - &self.signalling,
            expectations_dropped_at_cap: now.dropped_at_cap.saturating_sub(self.dropped_at_cap),
            // Retired expectations appear in the totals only.
            followups_retired: Default::default(),
            firewall: None,
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
            if !(o.is_failure() && o.is_final_while_open()) {
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
}

/// The input counters of an interval: what grew from `old` to `now`, the frames' times `window`.
pub(crate) fn input_since(old: &InputStats, now: &InputStats, window: Window) -> InputStats {
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

/// The run's cumulative counters that are not per service.
struct Cumulative<'a> {
    catalogue: &'a std::sync::Arc<Catalogue>,
    input: &'a InputStats,
    evicted: u64,
    expired: u64,
    peak: usize,
    followups: &'a [Expectation],
    signalling: Signalling,
    dropped_at_cap: u64,
}

/// The values recorded in `now` since `mark`, which becomes `now`.
fn since(now: &Micros, mark: &mut Micros) -> Micros {
    let mut h = now.clone();
    if h.subtract(&*mark).is_err() {
        h.reset();
    }
    *mark = now.clone();
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Config;
    use crate::packet::tcp_flags::{ACK, PSH, SYN};
    use crate::packet::RawPacket;
    use crate::synth::frame::{tcp_frame, udp_frame, FrameOpts, TcpSegment};

    const S: Nanos = 1_000_000_000;

    struct Feed {
        a: Analyzer,
        window: Window,
    }

    impl Feed {
        fn frame(&mut self, ts: Nanos, data: &[u8]) {
            self.window.note(ts);
            self.a.packet(&RawPacket {
                ts,
                link_type: 1,
                data,
                wire_len: data.len() as u32,
            });
        }

        fn tcp(&mut self, ts: Nanos, src: &str, dst: &str, flags: u8, seq: u32, payload: &[u8]) {
            let seg = TcpSegment {
                seq,
                ack: 1,
                flags,
                window: 8192,
                mss: None,
            };
            let f = tcp_frame(
                &FrameOpts::default(),
                1,
                src.parse().unwrap(),
                dst.parse().unwrap(),
                &seg,
                payload,
            );
            self.frame(ts, &f);
        }

        fn udp(&mut self, ts: Nanos, src: &str, dst: &str) {
            let f = udp_frame(
                &FrameOpts::default(),
                1,
                src.parse().unwrap(),
                dst.parse().unwrap(),
                b"query",
            );
            self.frame(ts, &f);
        }

        fn tick(&mut self, iv: &mut Intervals) -> (Analysis, Analysis) {
            let out = iv.tick(&mut self.a, self.window);
            self.window = Window::default();
            out
        }
    }

    fn stats<'a>(a: &'a Analysis, id: &str) -> &'a ServiceStats {
        &a.summary.services[a.catalogue.must(id).0 as usize]
    }

    #[test]
    fn intervals_count_what_grew_and_add_up_to_the_totals() {
        let mut f = Feed {
            a: Analyzer::new(Config::default()),
            window: Window::default(),
        };
        let mut iv = Intervals::new();
        iv.begin(&mut f.a);
        let (c, s) = ("10.0.0.1:40000", "10.0.0.2:25");
        f.tcp(S, c, s, SYN, 0, b"");
        f.tcp(S + 1000, s, c, SYN | ACK, 0, b"");
        f.tcp(S + 2000, c, s, ACK, 1, b"");
        let (one, totals) = f.tick(&mut iv);
        let smtp = stats(&one, "smtp");
        assert_eq!((smtp.flows, smtp.packets()), (1, 3));
        assert_eq!(smtp.outcomes[crate::flow::Outcome::Established.index()], 1);
        assert_eq!(smtp.rtt_us.len(), 1, "the handshake of this interval");
        assert_eq!(stats(&totals, "smtp").flows, 1);

        // Second interval: more of the same flow, and a DNS query that gets no answer yet.
        f.tcp(2 * S, c, s, ACK | PSH, 1, b"EHLO x\r\n");
        f.udp(2 * S, "10.0.0.1:5353", "10.0.0.3:53");
        let (two, _) = f.tick(&mut iv);
        let smtp = stats(&two, "smtp");
        assert_eq!((smtp.flows, smtp.packets()), (0, 1), "the flow counts once");
        assert_eq!(
            smtp.outcomes.iter().sum::<u64>(),
            0,
            "its outcome was reported"
        );
        assert_eq!(smtp.rtt_us.len(), 0, "and its handshake");
        let dns = stats(&two, "dns");
        assert_eq!(dns.flows, 1);
        assert_eq!(
            dns.outcomes.iter().sum::<u64>(),
            0,
            "one_way waits for the end"
        );

        // The end: the DNS flow's outcome is known now; the intervals add up to the totals.
        let mut totals = f.a.finish();
        let last = iv.finish(&mut totals, Window::default());
        let dns = stats(&last, "dns");
        assert_eq!((dns.flows, dns.outcomes.iter().sum::<u64>()), (0, 1));
        for id in ["smtp", "dns"] {
            let all = [&one, &two, &last]
                .map(|a| stats(a, id).flows)
                .iter()
                .sum::<u64>();
            assert_eq!(all, stats(&totals, id).flows, "{id}");
            let p = [&one, &two, &last]
                .map(|a| stats(a, id).packets())
                .iter()
                .sum::<u64>();
            assert_eq!(p, stats(&totals, id).packets(), "{id}");
        }
    }

    #[test]
    fn advance_never_goes_negative_nor_counts_twice() {
        let mut mark = ServiceStats::default();
        let mut now = ServiceStats {
            flows: 3,
            ..ServiceStats::default()
        };
        assert_eq!(now.advance(&mut mark).flows, 3);
        now.flows = 2; // a flow moved to another service
        assert_eq!(now.advance(&mut mark).flows, 0);
        now.flows = 4;
        assert_eq!(
            now.advance(&mut mark).flows,
            1,
            "only past the high-water mark"
        );
    }
}
