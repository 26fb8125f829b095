//! The pipeline for one run: decoded packets into the flow table, flows classified, finished flows
//! folded into the summary. File and live sources feed the same [`Analyzer`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::classify::{Catalogue, Classifier, ExpectConfig, Expectation, Flow, FlowTable};
use crate::decode::{self, FragmentTracker, SkipReason};
use crate::firewall::Collector;
use crate::flow::PREFETCH_AHEAD as AHEAD;
use crate::flow::{CaptureClock, EndReason, FlowConfig, FlowHash, Touch};
use crate::packet::{Endpoint, Nanos, Packet, Proto, RawPacket};
use crate::summary::{FileStats, FlowRecord, InputStats, Summary};
use crate::track::{Signalling, Trackers};

/// Settings of one run.
#[derive(Clone, Debug)]
pub struct Config {
    pub catalogue: Catalogue,
    pub flow: FlowConfig,
    /// Keep a record of every flow (`--flows`).
    pub keep_flows: bool,
    /// Bytes all trackers' reassembly buffers may hold at once.
    pub reassembly_budget: usize,
    /// Most flow records kept for `--flows` (`--max-flow-records`).
    pub max_flow_records: usize,
    /// Budgets of the capture readers.
    pub read: crate::source::ReadLimits,
    /// Caps of the mail-flow trackers' lists.
    pub limits: crate::track::Limits,
    /// Gather firewall rules as flows end (`exflow firewall`, `live --firewall`).
    pub firewall: Option<crate::firewall::FirewallOptions>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            catalogue: Catalogue::builtin(),
            flow: FlowConfig::default(),
            keep_flows: false,
            reassembly_budget: crate::track::reassembly::DEFAULT_BUDGET,
            max_flow_records: crate::summary::DEFAULT_MAX_FLOW_RECORDS,
            read: crate::source::ReadLimits::default(),
            limits: crate::track::Limits::default(),
            firewall: None,
        }
    }
}

/// Receives the run's events as they happen in capture time (`--events`): each flow as it leaves
/// the table (with its trackers' findings), each follow-up when announced and when the run
/// concludes it or retires it from the table.
pub trait EventSink: Send {
    /// The catalogue the run names services from; called once, before any event.
    fn start(&mut self, catalogue: Arc<Catalogue>);
    /// A flow left the table at capture time `now`; `record` is its `--flows` record, its
    /// `findings` those of its trackers (an SMTP session, DNS transactions, LDAP results).
    fn flow(&mut self, now: Nanos, flow: &Flow, record: &FlowRecord);
    /// A follow-up was announced (`concluded` false) or has its final outcome. `on_dc`: its host
    /// announced a domain controller's interface (which registry pin applies to NSPI), judged
    /// as the report does.
    fn followup(&mut self, now: Nanos, e: &Expectation, concluded: bool, on_dc: bool);
    /// Live mode's counters at the end of an interval (wall-clock time `now`).
    fn stats(&mut self, _now: Nanos, _stats: &serde_json::Value) {}
}

/// Capacity of the table that gives trailing IP fragments their ports.
const FRAGMENT_SLOTS: usize = 4096;

/// Runs the pipeline over packets from any source.
pub struct Analyzer {
    pub(crate) frag: FragmentTracker,
    pub(crate) flows: FlowTable,
    pub(crate) classifier: Classifier,
    pub(crate) trackers: Trackers,
    pub(crate) summary: Summary,
    pub(crate) input: InputStats,
    pub(crate) skipped: HashMap<SkipReason, u64>,
    pub(crate) clock: CaptureClock,
    events: Option<Box<dyn EventSink>>,
    /// Rules of the flows ended since it was last taken ([`Analyzer::take_firewall`]).
    pub(crate) firewall: Option<Collector>,
    /// A shard of a sharded run: the reader checks time and decides tracker expiry and table
    /// sweeps for every worker (see `shard`).
    sharded: bool,
    /// A shard's flows opened since it last looked that are nobody's follow-up: (proto, client,
    /// server, first time). Another worker's announcement may yet claim them.
    pub(crate) opened: Vec<(Proto, Endpoint, Endpoint, Nanos)>,
    /// A shard's ended flows that are nobody's follow-up, held until another worker's
    /// announcements of their time have arrived (`None`: not held).
    pub(crate) deferred: Option<Vec<(Flow, EndReason, Nanos)>>,
}

/// The result of a run: what `output` renders.
#[derive(Clone, Debug)]
pub struct Analysis {
    /// Shared with the analyzer that made it (live snapshots do not copy it).
    pub catalogue: Arc<Catalogue>,
    pub input: InputStats,
    pub summary: Summary,
    pub flows_evicted: u64,
    pub flows_expired: u64,
    pub peak_flows: usize,
    /// Every expected follow-up connection and its outcome.
    pub followups: Vec<Expectation>,
    /// What the trackers decoded and could not.
    pub signalling: Signalling,
    pub expectations_dropped_at_cap: u64,
    /// Expectations retired from the table (live mode), by service and outcome.
    pub followups_retired:
        std::collections::BTreeMap<(crate::classify::ServiceId, Option<crate::flow::Outcome>), u64>,
    /// With `Config::firewall`: the rules of the flows that ended (a snapshot's are `None`; live
    /// intervals fill in their own).
    pub firewall: Option<Collector>,
}

impl Analyzer {
    pub fn new(config: Config) -> Analyzer {
        let trackers = Trackers::with_limits(
            &config.catalogue,
            ExpectConfig::default(),
            config.reassembly_budget,
            config.limits,
        );
        let mut summary = Summary::new(config.catalogue.len(), config.keep_flows);
        summary.diagnostics = trackers.diagnostics();
        summary.max_flow_records = config.max_flow_records;
        let mut input = InputStats::default();
        input.warnings.extend(
            trackers
                .unknown
                .iter()
                .map(|u| format!("catalogue: {u} (ignored)")),
        );
        let classifier = Classifier::new(config.catalogue);
        let firewall = config
            .firewall
            .map(|opt| Collector::new(classifier.shared_catalogue(), opt));
        Analyzer {
            firewall,
            frag: FragmentTracker::new(FRAGMENT_SLOTS),
            flows: FlowTable::new(config.flow),
            trackers,
            classifier,
            summary,
            input,
            skipped: HashMap::new(),
            clock: CaptureClock::default(),
            events: None,
            sharded: false,
            opened: Vec::new(),
            deferred: None,
        }
    }

    /// Sends the run's events to `sink` from now on.
    pub fn set_events(&mut self, mut sink: Box<dyn EventSink>) {
        sink.start(self.classifier.shared_catalogue());
        self.trackers.shared.expect.announced = Some(Vec::new());
        self.events = Some(sink);
    }

    /// Sends a `stats` event, when events are on.
    pub fn stats_event(&mut self, now: Nanos, stats: &serde_json::Value) {
        if let Some(ev) = self.events.as_deref_mut() {
            ev.stats(now, stats);
        }
    }

    /// Stops sending events; the sink is returned (to be flushed by its owner).
    pub fn take_events(&mut self) -> Option<Box<dyn EventSink>> {
        self.trackers.shared.expect.announced = None;
        self.events.take()
    }

    /// Starts counting packets against a new input file.
    pub fn begin_file(&mut self, name: &str) {
        self.clock.restart();
        self.input.files.push(FileStats {
            name: name.to_string(),
            ..FileStats::default()
        });
    }

    /// Records the error that stopped the current file.
    pub fn file_error(&mut self, message: String) {
        if let Some(f) = self.input.files.last_mut() {
            f.error = Some(message.clone());
        }
        self.input.warnings.push(message);
    }

    /// Adds a warning to the report.
    pub fn warn(&mut self, message: String) {
        self.input.warnings.push(message);
    }

    /// Feeds one captured frame through the pipeline; returns the capture time it was given
    /// (its own, unless that was bogus: see [`CaptureClock`]).
    pub fn packet(&mut self, raw: &RawPacket<'_>) -> Nanos {
        let ts = self.clock.check(raw.ts);
        self.packet_at(&RawPacket { ts, ..*raw });
        ts
    }

    /// Makes this analyzer one shard of a sharded run: its packets come with checked times, and
    /// tracker expiry and flow sweeps happen when the reader says ([`expire_trackers`],
    /// [`sweep_flows`]), at the same points of the capture as in a single analyzer.
    ///
    /// [`expire_trackers`]: Self::expire_trackers
    /// [`sweep_flows`]: Self::sweep_flows
    pub(crate) fn make_shard(&mut self) {
        self.sharded = true;
        self.flows.manual_sweeps();
        self.trackers.shared.expect.announced = Some(Vec::new());
        self.deferred = Some(Vec::new());
    }

    /// Counts flows a shard held back (see `deferred`), their class now final.
    pub(crate) fn conclude(&mut self, flows: impl Iterator<Item = (Flow, EndReason, Nanos)>) {
        for (f, why, now) in flows {
            conclude(
                &mut self.trackers,
                &mut self.summary,
                &mut self.events,
                &mut self.firewall,
                now,
                f,
                why,
            );
        }
    }

    /// Expires tracker sessions at capture time `now` (a shard's share of the 65 536-packet
    /// expiry of [`packet`](Self::packet)).
    pub(crate) fn expire_trackers(&mut self, now: Nanos) {
        self.trackers.expire(now);
    }

    /// Sweeps the flow table at capture time `now`, as the table itself does when not a shard.
    pub(crate) fn sweep_flows(&mut self, now: Nanos) {
        let mut ends = ends!(self);
        self.flows
            .sweep(now, &mut |f, why| ends.flow_ended(now, f, why));
    }

    /// Feeds a frame whose time the caller checked (a shard's packets).
    pub(crate) fn packet_at(&mut self, raw: &RawPacket<'_>) {
        let wire = u64::from(raw.wire_len);
        self.input.count_frame(wire, raw.ts);
        self.decoded(raw.ts, wire, &mut decode::decode(raw), None);
    }

    /// A shard's frame, decoded by the reader: counted, then [`decoded`](Self::decoded) (with
    /// its flow's hash if the worker computed it ahead).
    pub(crate) fn packet_decoded(
        &mut self,
        ts: Nanos,
        wire: u32,
        decoded: &mut Result<Packet<'_>, SkipReason>,
        hash: Option<FlowHash>,
    ) {
        let wire = u64::from(wire);
        self.input.packets += 1;
        self.input.bytes += wire;
        self.input.note_time(ts);
        self.decoded(ts, wire, decoded, hash);
    }

    /// The pipeline after decoding, for a frame of `wire` bytes at checked time `ts`; `hash` is
    /// the decoded packet's flow hash if [`FlowTable::prefetch_packet`] gave one.
    #[inline]
    fn decoded(
        &mut self,
        ts: Nanos,
        wire: u64,
        decoded: &mut Result<Packet<'_>, SkipReason>,
        hash: Option<FlowHash>,
    ) {
        let raw_ts = ts;
        // Borrowed in place: moving the packet out of the `Result` was a `memcpy` call per
        // packet (2 % of a run).
        let p = match decoded {
            Ok(p) => p,
            Err(reason) => {
                *self.skipped.entry(*reason).or_insert(0) += 1;
                self.input.skipped_bytes += wire;
                return;
            }
        };
        if !self.sharded && self.input.packets.is_multiple_of(65_536) {
            self.trackers.expire(raw_ts);
        }
        if p.fragment.is_some() && !self.frag.resolve(p) {
            self.input.orphan_fragments += 1;
        }
        let mut ends = ends!(self);
        let now = raw_ts;
        let mut ended = |f: Flow, why: EndReason| ends.flow_ended(now, f, why);
        let classifier = &self.classifier;
        // Set only for a verdict on the quoted flow: path-MTU messages are ordinary ICMP.
        let unreachable = p.quoted();
        let (touch, flow) = match &unreachable {
            Some(u) => {
                self.input.icmp_unreachable += 1;
                self.input.icmp_unreachable_bytes += wire;
                self.flows.icmp_unreachable(p, u, &mut ended)
            }
            None => self.flows.packet_hashed(
                p,
                hash,
                |pr, port| classifier.is_server_port(pr, port),
                &mut ended,
            ),
        };
        if touch == Touch::New {
            if !self.trackers.classify_new(flow, p) {
                classifier.classify_new(flow);
            }
            self.trackers.attach(flow);
            if self.sharded && flow.class.followup_of().is_none() {
                self.opened
                    .push((flow.proto, flow.client, flow.server, flow.first_ts));
            }
        }
        if unreachable.is_none() {
            self.trackers.packet(flow, p);
        }
        if let Some(ev) = self.events.as_deref_mut() {
            announce(ev, &mut self.trackers);
        }
    }

    /// Ends the run: every flow still open is counted.
    pub fn finish(mut self) -> Analysis {
        let mut ends = ends!(self);
        let now = self.input.last_ts.unwrap_or(0);
        self.flows.flush(&mut |f, why| ends.flow_ended(now, f, why));
        if let Some(ev) = self.events.as_deref_mut() {
            announce(ev, &mut self.trackers);
            let expect = &self.trackers.shared.expect;
            for e in expect.list.values() {
                ev.followup(now, e, true, expect.is_dc(e.addr.ip));
            }
        }
        let summary = std::mem::take(&mut self.summary);
        let followups = std::mem::take(&mut self.trackers.shared.expect.list)
            .into_values()
            .map(|e| *e)
            .collect();
        let mut a = self.analysis(summary, followups);
        a.firewall = self.firewall.take();
        a
    }

    /// The rules gathered since the last call (flows that ended meanwhile), leaving an empty
    /// collector; `None` without `Config::firewall`.
    pub fn take_firewall(&mut self) -> Option<Collector> {
        let c = self.firewall.as_mut()?;
        let fresh = c.fresh();
        Some(std::mem::replace(c, fresh))
    }

    /// The flows still open and the expectations they may answer (live firewall reports).
    pub(crate) fn open_flows(
        &self,
    ) -> (
        &FlowTable,
        &std::collections::BTreeMap<u32, Box<Expectation>>,
    ) {
        (&self.flows, &self.trackers.shared.expect.list)
    }

    /// An [`Analysis`] of the run's counters with the given summary and expectations.
    fn analysis(&self, summary: Summary, followups: Vec<Expectation>) -> Analysis {
        Analysis {
            catalogue: self.classifier.shared_catalogue(),
            input: self.merged_input(),
            summary,
            flows_evicted: self.flows.evicted,
            flows_expired: self.flows.expired,
            peak_flows: self.flows.peak,
            followups,
            signalling: self.trackers.signalling(),
            expectations_dropped_at_cap: self.trackers.shared.expect.dropped_at_cap,
            followups_retired: self.trackers.shared.expect.retired.clone(),
            firewall: None,
        }
    }

    /// The report of the run so far, as if the capture ended now; the analyzer is untouched.
    pub fn snapshot(&self) -> Analysis {
        let mut summary = self.summary.clone();
        for f in self.flows.iter() {
            summary.add_flow(f, EndReason::Flushed, Vec::new());
        }
        self.analysis(
            summary,
            self.trackers
                .shared
                .expect
                .list
                .values()
                .map(|e| Expectation::clone(e))
                .collect(),
        )
    }

    /// The input counters with the undecoded frames folded in by reason, as `finish` does.
    fn merged_input(&self) -> InputStats {
        let mut input = self.input.clone();
        input.bogus_timestamps = self.clock.bogus;
        for (reason, n) in &self.skipped {
            *input.skipped.entry(reason.to_string()).or_insert(0) += n;
        }
        input
    }

    /// Expires flows idle at capture time `now` and sessions that ended long ago; live mode calls
    /// it when no packet arrives to drive the table's own sweeps.
    pub fn sweep_idle(&mut self, now: Nanos) {
        self.trackers.expire(now);
        self.retire_followups(now);
        let mut ends = ends!(self);
        self.flows
            .sweep(now, &mut |f, why| ends.flow_ended(now, f, why));
    }

    /// Takes out of the expectation table what expired long before capture time `now` (live
    /// mode, each interval: bounded memory over days), keeping their outcomes counted. A retired
    /// expectation's outcome is final: its concluding event goes out as it leaves.
    pub fn retire_followups(&mut self, now: Nanos) {
        let events = &mut self.events;
        self.trackers.shared.expect.retire(now, |e, on_dc| {
            if let Some(ev) = events.as_deref_mut() {
                ev.followup(now, e, true, on_dc);
            }
        });
    }

    /// Most flows open at once since the last call, which restarts the count from the flows open
    /// now (each interval reports its own peak).
    pub fn take_peak(&mut self) -> usize {
        let peak = self.flows.peak;
        self.flows.peak = self.flows.len();
        peak
    }
}

/// Where a flow goes when it leaves the table: the analyzer's parts that take it, borrowed apart
/// from the flow table that hands it over (`ends!(self)`).
struct Ends<'a> {
    trackers: &'a mut Trackers,
    summary: &'a mut Summary,
    events: &'a mut Option<Box<dyn EventSink>>,
    firewall: &'a mut Option<Collector>,
    deferred: &'a mut Option<Vec<(Flow, EndReason, Nanos)>>,
}

macro_rules! ends {
    ($a:expr) => {
        Ends {
            trackers: &mut $a.trackers,
            summary: &mut $a.summary,
            events: &mut $a.events,
            firewall: &mut $a.firewall,
            deferred: &mut $a.deferred,
        }
    };
}
use ends;

impl Ends<'_> {
    /// A flow left the table at capture time `now`: its expectation and trackers conclude, its
    /// event goes out, then the summary counts it.
    fn flow_ended(&mut self, now: Nanos, mut f: Flow, why: EndReason) {
        self.trackers.classify_late(&mut f);
        if let Some(d) = self
            .deferred
            .as_mut()
            .filter(|_| f.class.followup_of().is_none())
        {
            d.push((f, why, now));
            return;
        }
        conclude(
            self.trackers,
            self.summary,
            self.events,
            self.firewall,
            now,
            f,
            why,
        );
    }
}

/// The rest of [`Ends::flow_ended`], for a flow whose class is final.
fn conclude(
    trackers: &mut Trackers,
    summary: &mut Summary,
    events: &mut Option<Box<dyn EventSink>>,
    firewall: &mut Option<Collector>,
    now: Nanos,
    f: Flow,
    why: EndReason,
) {
    if let Some(fw) = firewall.as_mut() {
        let list = &trackers.shared.expect.list;
        fw.add_flow(&f, why, |id| list.get(&id).map(|e| &**e));
    }
    let want_record = events.is_some() || summary.wants_record(&f);
    let findings = trackers.flow_ended(&f, why, &mut summary.diagnostics, want_record);
    if let Some(ev) = events.as_deref_mut() {
        // A follow-up announced by the packet that ended this flow goes out before it.
        announce(ev, trackers);
        ev.flow(now, &f, &FlowRecord::from_flow(&f, why, findings.clone()));
    }
    summary.add_flow(&f, why, findings);
}

/// Sends the follow-ups announced since the last call.
fn announce(ev: &mut dyn EventSink, trackers: &mut Trackers) {
    let expect = &mut trackers.shared.expect;
    let Some(ids) = expect.announced.as_mut().filter(|v| !v.is_empty()) else {
        return;
    };
    let ids = std::mem::take(ids);
    for id in &ids {
        if let Some(e) = expect.list.get(id) {
            ev.followup(e.announced_ts, e, false, expect.is_dc(e.addr.ip));
        }
    }
    if let Some(v) = expect.announced.as_mut() {
        *v = ids;
        v.clear();
    }
}

/// How reading the inputs went, for the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completeness {
    /// Every input was read to its end.
    Complete,
    /// Some input could not be read (wholly or in part); the report covers the rest.
    Partial,
    /// No packet could be read from any input.
    Nothing,
}

/// Reads every capture in `paths` (`-` is stdin) through one analyzer. Problems with an input
/// become warnings naming the file and offset; `on_progress` is called now and then with the
/// current file's name, bytes read, file size (0 for a stream) and packets so far.
pub fn analyze_files(
    paths: &[String],
    config: Config,
    on_progress: impl FnMut(&str, u64, u64, u64),
) -> (Analysis, Completeness) {
    analyze_files_with(paths, config, None, on_progress)
}

/// [`analyze_files`], sending the run's events to `events`; the sink is dropped (its queue
/// written out) before this returns.
pub fn analyze_files_with(
    paths: &[String],
    config: Config,
    events: Option<Box<dyn EventSink>>,
    on_progress: impl FnMut(&str, u64, u64, u64),
) -> (Analysis, Completeness) {
    let read = config.read;
    let mut a = Analyzer::new(config);
    if let Some(sink) = events {
        a.set_events(sink);
    }
    let errors = read_files(paths, read, &mut a, on_progress);
    let analysis = a.finish();
    let completeness = completeness(&analysis, errors);
    (analysis, completeness)
}

/// How complete a run was that had `errors` unreadable inputs.
pub(crate) fn completeness(analysis: &Analysis, errors: usize) -> Completeness {
    if analysis.input.packets == 0 {
        Completeness::Nothing
    } else if errors > 0 {
        Completeness::Partial
    } else {
        Completeness::Complete
    }
}

/// What reads the inputs feeds: one [`Analyzer`], or a sharded run's reader.
pub(crate) trait Feed {
    /// Starts counting packets against a new input file.
    fn begin_file(&mut self, name: &str);
    /// The input's counters (files, warnings, reader budgets).
    fn input(&mut self) -> &mut InputStats;
    /// Records the error that stopped the current file.
    fn file_error(&mut self, message: String) {
        let input = self.input();
        if let Some(f) = input.files.last_mut() {
            f.error = Some(message.clone());
        }
        input.warnings.push(message);
    }
    /// One frame; false stops reading (the analysis failed).
    fn feed(&mut self, raw: &RawPacket<'_>) -> bool;
    /// The map of the file whose frames follow, if it is mapped (`None` for a stream): the
    /// frames' bytes lie in it.
    fn mapped(&mut self, _map: Option<std::sync::Arc<crate::source::MappedFile>>) {}
    /// Threads analysing what this feed is given (the sharded reader's workers, itself
    /// included).
    fn threads(&self) -> usize {
        1
    }
    /// The analyzer itself, when this feed is one: a mapped capture's frames are then decoded
    /// a few frames ahead of their analysis ([`read_ahead`]).
    fn analyzer(&mut self) -> Option<&mut Analyzer> {
        None
    }
}

/// A frame of a mapped capture decoded ahead of its analysis, with its flow's hash.
struct Pending<'m> {
    ts: Nanos,
    wire: u64,
    decoded: Result<Packet<'m>, SkipReason>,
    /// From [`FlowTable::prefetch_packet`](crate::flow::FlowTable::prefetch_packet): the
    /// frame's bucket was prefetched when it was decoded.
    hash: Option<FlowHash>,
}

/// The frames one thread reading a mapped capture decoded and has not analysed yet. The flow
/// table is larger than the caches, so a frame's index bucket and its flow are each a cache
/// miss (`FlowIndex::find` was 17 % of a one-thread run of the real-traffic mix): each frame's
/// bucket is prefetched when it is decoded, [`AHEAD`] frames before its analysis, and the flow
/// the bucket names half as many before; its hash is computed once. The frames' payloads stay
/// in the map: a held frame is not copied again. (`shard::batch::Ahead` does the same over a
/// worker's batch.)
struct Held<'m> {
    ring: [Option<Pending<'m>>; 2 * AHEAD],
    /// Frames held so far (the next one goes to `ring[n % len]`).
    n: u64,
}

impl<'m> Held<'m> {
    fn new() -> Held<'m> {
        Held {
            ring: Default::default(),
            n: 0,
        }
    }

    fn cell(&mut self, k: u64) -> &mut Option<Pending<'m>> {
        let len = self.ring.len() as u64;
        &mut self.ring[(k % len) as usize]
    }

    /// Holds `p`, prefetches the flow of the frame held [`AHEAD`] / 2 frames before it, and
    /// analyses the one held [`AHEAD`] frames before it.
    #[inline]
    fn hold(&mut self, p: Pending<'m>, a: &mut Analyzer) {
        let n = self.n;
        self.n += 1;
        *self.cell(n) = Some(p);
        if let Some(near) = n.checked_sub(AHEAD as u64 / 2) {
            if let Some(Pending { hash: Some(h), .. }) = self.cell(near) {
                a.flows.prefetch_flow(*h);
            }
        }
        if let Some(due) = n.checked_sub(AHEAD as u64) {
            self.analyse(due, a);
        }
    }

    /// Analyses every frame held, oldest first, and holds none.
    fn drain(&mut self, a: &mut Analyzer) {
        for k in self.n.saturating_sub(AHEAD as u64)..self.n {
            self.analyse(k, a);
        }
    }

    /// Analyses frame `k`, if it is still held, and lets it go.
    #[inline]
    fn analyse(&mut self, k: u64, a: &mut Analyzer) {
        let cell = self.cell(k);
        if let Some(p) = cell {
            a.analyse_held(p);
        }
        *cell = None;
    }
}

impl Analyzer {
    /// Decodes a frame whose bytes lie in the mapped capture (they outlive the reader's
    /// borrow) and holds it in `held`, to be analysed a few frames later.
    #[inline]
    fn feed_ahead<'m>(&mut self, raw: RawPacket<'m>, held: &mut Held<'m>) {
        let ts = self.clock.check(raw.ts);
        let decoded = decode::decode(&RawPacket { ts, ..raw });
        let hash = decoded
            .as_ref()
            .ok()
            .and_then(|p| self.flows.prefetch_packet(p));
        let p = Pending {
            ts,
            wire: u64::from(raw.wire_len),
            decoded,
            hash,
        };
        held.hold(p, self);
    }

    /// Counts and analyses a frame decoded ahead, in place, its hash handed to the flow table.
    #[inline]
    fn analyse_held(&mut self, p: &mut Pending<'_>) {
        self.input.count_frame(p.wire, p.ts);
        self.decoded(p.ts, p.wire, &mut p.decoded, p.hash);
    }
}

/// The bytes `bytes` of `map`, borrowed from the map itself rather than from the reader that
/// handed them out; `None` when they are not in it (NetMon's records are copied out).
fn in_map<'m>(map: &'m crate::source::MappedFile, bytes: &[u8]) -> Option<&'m [u8]> {
    let at = (bytes.as_ptr() as usize).checked_sub(map.as_ptr() as usize)?;
    map.get(at..at.checked_add(bytes.len())?)
}

/// Reads `reader`, a capture mapped as `map`, into `a`, each frame decoded [`AHEAD`] frames
/// before it is analysed ([`Held`]). Returns the frames read and the error that ended the file,
/// if one did; frames read before it are analysed first.
fn read_ahead(
    reader: &mut crate::source::CaptureReader,
    map: &crate::source::MappedFile,
    a: &mut Analyzer,
    mut on_progress: impl FnMut(u64, &crate::source::CaptureReader),
) -> (u64, Option<crate::source::SourceError>) {
    let mut held = Held::new();
    let mut n: u64 = 0;
    let error = loop {
        let raw = match reader.next_packet() {
            Ok(Some(raw)) => raw,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        match in_map(map, raw.data) {
            Some(data) => a.feed_ahead(RawPacket { data, ..raw }, &mut held),
            None => {
                held.drain(a);
                a.packet(&raw);
            }
        }
        n += 1;
        if n.is_multiple_of(65_536) {
            on_progress(n, reader);
        }
    };
    held.drain(a);
    (n, error)
}

impl Feed for Analyzer {
    fn begin_file(&mut self, name: &str) {
        Analyzer::begin_file(self, name);
    }

    fn analyzer(&mut self) -> Option<&mut Analyzer> {
        Some(self)
    }

    fn input(&mut self) -> &mut InputStats {
        &mut self.input
    }

    #[inline]
    fn feed(&mut self, raw: &RawPacket<'_>) -> bool {
        self.packet(raw);
        true
    }
}

/// Reads every capture in `paths` into `a`; returns how many inputs could not be read (wholly
/// or in part).
pub(crate) fn read_files(
    paths: &[String],
    read: crate::source::ReadLimits,
    a: &mut impl Feed,
    mut on_progress: impl FnMut(&str, u64, u64, u64),
) -> usize {
    let mut read = read;
    // A pager thread needs a core of its own: on one shared with an analysis thread it cost
    // 19 % of a two-thread run of the generated capture on two cores (README, Benchmarks).
    read.page_ahead &= a.threads() < crate::shard::cores();
    read.release_lag = read.release_lag.min(crate::shard::release_lag(a.threads()));
    let mut errors = 0;
    for path in paths {
        let mut reader = match crate::source::CaptureReader::open_with(path, read) {
            Ok(r) => r,
            Err(e) => {
                errors += 1;
                if let crate::source::SourceErrorKind::WindowExceeded { .. } = e.kind {
                    a.input().files_over_window += 1;
                }
                a.begin_file(path);
                a.file_error(e.to_string());
                continue;
            }
        };
        a.begin_file(path);
        let map = reader.map();
        a.mapped(map.clone());
        let mut stopped = false;
        // A stream has no size: its bytes so far, and 0 for the total.
        let mut report = |n: u64, reader: &crate::source::CaptureReader| {
            let (done, total) = reader.progress().unwrap_or((reader.offset(), 0));
            on_progress(path, done, total, n);
        };
        let (n, error) = if let (Some(map), Some(analyzer)) = (map.as_deref(), a.analyzer()) {
            read_ahead(&mut reader, map, analyzer, &mut report)
        } else {
            // Streamed input, or a sharded run's reader.
            let mut n: u64 = 0;
            let error = loop {
                match reader.next_packet() {
                    Ok(Some(raw)) => {
                        if !a.feed(&raw) {
                            stopped = true;
                            break None;
                        }
                        n += 1;
                        if n.is_multiple_of(65_536) {
                            report(n, &reader);
                        }
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            (n, error)
        };
        if let Some(e) = error {
            errors += 1;
            a.file_error(e.to_string());
        }
        let input = a.input();
        input.read_limits += reader.limit_counts();
        for w in reader.warnings() {
            input.warnings.push(format!("{path}: {w}"));
        }
        if n == 0 && input.files.last().is_some_and(|f| f.error.is_none()) {
            input
                .warnings
                .push(format!("{path}: capture holds no packets"));
        }
        if stopped {
            break;
        }
    }
    errors
}
