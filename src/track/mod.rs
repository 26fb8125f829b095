//! Application-layer trackers: one pluggable place for every protocol that reads a flow's payload.
//!
//! A [`Tracker`] is one protocol's reader of one flow. The catalogue says which trackers run on
//! which service (`track` lines in `catalogue.txt`); a tracker may also claim an unclassified TCP
//! flow by a payload signature ([`TrackerKind::signature`]). Trackers are fed, per direction,
//! in-order reassembled bytes (TCP, through a bounded [`Reassembler`] and a framer of
//! [`framing`]) or whole datagrams (UDP), with capture time. Through their [`Cx`] they can:
//! - announce expected follow-up connections ([`Announcement`]) into the expectation table;
//! - reclassify their flow ([`Cx::reclassify`]: RVP on port 80);
//! - count what they decoded and what they could not ([`Cx::count`], [`Cx::error`]), reported
//!   per tracker in JSON `signalling.trackers`;
//! - keep per-flow findings that, when the flow ends ([`Tracker::end`]), go into the flow record
//!   and into the tracker kind's [`Diagnostics`] (the report's `diagnostics` section).
//!
//! A tracker that is done ([`Tracker::done`]: garbage, caps reached, nothing more to learn) is
//! dropped with its buffers; the flow then costs nothing more. Flows without trackers cost one
//! branch per packet.
//!
//! Adding a protocol: a pure parser in `signal/`, a file here implementing [`Tracker`] and
//! [`TrackerKind`], one line in `registry.rs`, and `track` lines in the catalogue.

mod counts;
pub mod diagnostics;
mod dns;
mod dns_diag;
#[cfg(test)]
mod dns_tests;
mod epm;
#[cfg(test)]
mod epm_tests;
pub mod framing;
mod h323;
mod ldap;
mod ldap_diag;
#[cfg(test)]
mod ldap_tests;
mod mail_login;
pub mod reassembly;
pub mod refusals;
mod registry;
mod rvp;
mod session;
mod smtp;
mod smtp_diag;
#[cfg(test)]
mod smtp_tests;
mod stats;
#[cfg(test)]
mod tests;
pub mod tpkt_stream;
mod x400;

use std::net::IpAddr;

use smallvec::SmallVec;

use crate::classify::{Basis, Catalogue, ExpectTable, Expectation, Flow, ServiceId};
use crate::flow::{EndReason, Outcome};
use crate::nonmax::NonMaxU32;
use crate::packet::{tcp_flags, Endpoint, Nanos, Packet, Proto};

pub use diagnostics::{Diagnostics, DiagnosticsSet};
pub use reassembly::{Budget, Reassembler, StreamStats};
pub use session::plausible_rtp;
pub use stats::{Counters, Signalling, TrackerStats};
pub use tpkt_stream::{TpktStats, TpktStream};

use reassembly::Sink;
use session::Sessions;

pub(crate) const SECOND: Nanos = 1_000_000_000;

/// Which way bytes went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    ToServer = 0,
    ToClient = 1,
}

/// What a tracker knows of its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    pub proto: Proto,
    pub client: Endpoint,
    pub server: Endpoint,
    /// The flow's service now.
    pub service: ServiceId,
}

/// An expected follow-up connection, as a tracker announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// The follow-up's service.
    pub service: ServiceId,
    pub proto: Proto,
    pub host: IpAddr,
    /// `None`: any port (inferred sessions).
    pub port: Option<u16>,
    /// The other host, when known (inferred media flows between the two).
    pub peer: Option<IpAddr>,
    /// How long after the announcement a connection may start.
    pub lifetime: Nanos,
    /// A connection is not required (H.245 tunnelled, a RAS registration).
    pub optional: bool,
    pub basis: Basis,
    /// What kind of address it is (`h245Address`, `Call-Back`, `session`, ...).
    pub kind: &'static str,
    /// The message that announced it (`connect`, `SUBSCRIBE`, ...).
    pub announced_by: &'static str,
    /// Free-form attributes (an RPC interface, ...), reported with the follow-up.
    pub attrs: Vec<(&'static str, String)>,
}

impl Announcement {
    /// A signalled, required announcement of `host:port`.
    pub fn new(
        service: ServiceId,
        proto: Proto,
        addr: Endpoint,
        kind: &'static str,
        announced_by: &'static str,
        lifetime: Nanos,
    ) -> Announcement {
        Announcement {
            service,
            proto,
            host: addr.ip,
            port: Some(addr.port),
            peer: None,
            lifetime,
            optional: false,
            basis: Basis::Signalled,
            kind,
            announced_by,
            attrs: Vec::new(),
        }
    }
}

/// Caps of the lists the mail-flow trackers keep (`--diagnostics-problems`,
/// `--diagnostics-per-flow`); what a cap leaves out is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Problem records per tracker kind per run (`diagnostics.<name>.problems`).
    pub problems: usize,
    /// Per flow: SMTP transactions and recipients per transaction, DNS transactions, LDAP
    /// (operation, result) pairs.
    pub per_flow: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            problems: 500,
            per_flow: 32,
        }
    }
}

/// State shared by every tracker of a run.
#[derive(Debug)]
pub struct Shared {
    pub expect: ExpectTable,
    pub budget: Budget,
    sessions: Sessions,
}

/// What a tracker may do while it reads: announce, reclassify, count.
pub struct Cx<'a> {
    /// Capture time of the packet being read.
    pub ts: Nanos,
    pub flow: FlowInfo,
    shared: &'a mut Shared,
    stats: &'a mut TrackerStats,
    announced: &'a mut u32,
    reclassified: &'a mut Option<ServiceId>,
}

impl Cx<'_> {
    /// Adds an expected follow-up connection; its id, or `None` when a cap dropped it.
    pub fn announce(&mut self, a: Announcement) -> Option<u32> {
        let e = Expectation {
            basis: a.basis,
            peer: a.peer,
            optional: a.optional,
            attrs: a.attrs,
            ..Expectation::new(
                (self.flow.service, self.flow.client, self.flow.server),
                a.service,
                a.proto,
                Endpoint::new(a.host, a.port.unwrap_or(0)),
                a.kind,
                a.announced_by,
                self.ts,
                a.lifetime,
            )
        };
        self.shared.expect.add(e, self.announced)
    }

    /// Keeps a media-inference session alive between the flow's two hosts: new UDP flows between
    /// them (both ports above 1023, plausible RTP) are `media` until `grace` after the last call.
    pub fn infer_media(&mut self, media: ServiceId, what: &'static str, grace: Nanos) {
        let flow = self.flow;
        if self.shared.sessions.refresh(flow, self.ts, grace) {
            return;
        }
        let a = Announcement {
            basis: Basis::Inferred,
            peer: Some(flow.server.ip),
            port: None,
            ..Announcement::new(
                media,
                Proto::Udp,
                Endpoint::new(flow.client.ip, 0),
                "session",
                what,
                grace,
            )
        };
        if let Some(id) = self.announce(a) {
            self.shared
                .sessions
                .open(flow, self.ts.saturating_add(grace), id, media);
        }
    }

    /// Gives the flow another service (a payload proved it).
    pub fn reclassify(&mut self, service: ServiceId) {
        self.flow.service = service;
        *self.reclassified = Some(service);
    }

    /// Counts one decoded unit of kind `what`.
    pub fn count(&mut self, what: &'static str) {
        self.stats.decoded.add(what, 1);
    }

    /// Counts `n` of `what` decoded.
    pub fn count_n(&mut self, what: &'static str, n: u64) {
        self.stats.decoded.add(what, n);
    }

    /// Counts one unit that could not be decoded, by reason.
    pub fn error(&mut self, why: &'static str) {
        self.stats.errors.add(why, 1);
    }
}

/// What a tracker is told when its flow ends.
pub struct EndCx<'a> {
    pub flow: FlowInfo,
    pub outcome: Outcome,
    pub why: EndReason,
    /// The flow's start predates the capture.
    pub midstream: bool,
    /// Client and server FIN seen, RSTs by either side.
    pub fin: [bool; 2],
    pub rst: [bool; 2],
    pub first_ts: Nanos,
    pub last_ts: Nanos,
    /// Packets each way (to server, to client).
    pub packets: [u64; 2],
    /// The tracker kind's diagnostics, if it keeps any.
    pub diagnostics: Option<&'a mut dyn Diagnostics>,
    /// The flow record wants the tracker's findings (`--flows`, failure list).
    pub want_record: bool,
    pub stats: &'a mut TrackerStats,
}

/// One protocol's reader of one flow.
pub trait Tracker: Send {
    /// In-order bytes of one TCP direction. Returns how many it used: fewer than given keeps the
    /// rest as an unfinished unit (offered again with more), more skips sequence space.
    fn stream(&mut self, dir: Dir, bytes: &[u8], cx: &mut Cx<'_>) -> usize {
        let _ = (dir, cx);
        bytes.len()
    }

    /// Bytes of a TCP direction were lost (a hole given up on, or the capture joined the stream
    /// mid-way): the next bytes may start inside a unit.
    fn gap(&mut self, dir: Dir, cx: &mut Cx<'_>) {
        let _ = (dir, cx);
    }

    /// One UDP datagram's payload.
    fn datagram(&mut self, dir: Dir, payload: &[u8], cx: &mut Cx<'_>) {
        let _ = (dir, payload, cx);
    }

    /// Every packet of the flow, payload or not, before its bytes are delivered.
    fn packet(&mut self, dir: Dir, cx: &mut Cx<'_>) {
        let _ = (dir, cx);
    }

    /// True when nothing more is to be learned: the tracker and its buffers are dropped.
    fn done(&self) -> bool {
        false
    }

    /// Largest unfinished unit kept per direction (the reassembly buffer's capacity).
    fn max_unit(&self) -> usize {
        16 * 1024
    }

    /// The flow ended: fold findings into the diagnostics; return the flow record's part.
    fn end(&mut self, cx: &mut EndCx<'_>) -> Option<serde_json::Value> {
        let _ = cx;
        None
    }
}

/// A protocol: its name, how it attaches, and its run-wide diagnostics.
pub trait TrackerKind: Send + Sync {
    /// Stable name (the catalogue's `track` lines, JSON `signalling.trackers` keys).
    fn name(&self) -> &'static str;
    /// A tracker for a new flow of a service the catalogue attaches this kind to.
    fn attach(&self, flow: &FlowInfo) -> Box<dyn Tracker>;
    /// Whether [`signature`](Self::signature) can claim unclassified flows.
    fn has_signature(&self) -> bool {
        false
    }
    /// For an unclassified TCP flow, the service its client's first payload proves, if any.
    fn signature(&self, payload: &[u8]) -> Option<ServiceId> {
        let _ = payload;
        None
    }
    /// Empty run-wide diagnostics, when the kind keeps findings.
    fn diagnostics(&self) -> Option<Box<dyn Diagnostics>> {
        None
    }
}

/// One tracker attached to a flow.
struct Attached {
    kind: u16,
    tracker: Box<dyn Tracker>,
    streams: [Reassembler; 2],
}

/// Per-flow tracker state.
struct Slot {
    /// Most flows have one tracker: it is kept in the slot, not in an allocation of its own.
    attached: SmallVec<[Attached; 1]>,
    /// Expectations this flow announced (for the per-parent cap). Its niche makes an empty
    /// `Option<Slot>` free (a slot is 72 bytes, not 80).
    announced: NonMaxU32,
}

/// Feeds a tracker from a reassembler.
struct Feed<'t, 'c, 'x> {
    tracker: &'t mut dyn Tracker,
    dir: Dir,
    cx: &'c mut Cx<'x>,
}

impl Sink for Feed<'_, '_, '_> {
    fn data(&mut self, bytes: &[u8]) -> usize {
        self.tracker.stream(self.dir, bytes, self.cx)
    }

    fn gap(&mut self) {
        self.tracker.gap(self.dir, self.cx);
    }
}

/// Every tracker of a run, the flows they are attached to, and the expectation table they feed.
pub struct Trackers {
    pub shared: Shared,
    kinds: Vec<Box<dyn TrackerKind>>,
    /// Per kind, what its trackers counted.
    pub stats: Vec<TrackerStats>,
    /// Per service index, the kinds the catalogue attaches.
    by_service: Vec<Vec<u16>>,
    /// Kinds with a payload signature.
    signatures: Vec<u16>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// Catalogue `track` lines naming no known tracker.
    pub unknown: Vec<String>,
    unclassified: Option<ServiceId>,
    /// Per service index: an RPC interface service, whose endpoints live as long as the server
    /// runs (only those may classify a flow that predates their announcement).
    long_lived: Vec<bool>,
}

impl Trackers {
    pub fn new(
        catalogue: &Catalogue,
        config: crate::classify::ExpectConfig,
        budget: usize,
    ) -> Self {
        Self::with_limits(catalogue, config, budget, Limits::default())
    }

    /// The built-in trackers with the given list caps.
    pub fn with_limits(
        catalogue: &Catalogue,
        config: crate::classify::ExpectConfig,
        budget: usize,
        limits: Limits,
    ) -> Self {
        Self::with_kinds(
            catalogue,
            config,
            budget,
            registry::kinds(catalogue, limits),
        )
    }

    /// Trackers of the given kinds (tests register their own).
    pub fn with_kinds(
        catalogue: &Catalogue,
        config: crate::classify::ExpectConfig,
        budget: usize,
        kinds: Vec<Box<dyn TrackerKind>>,
    ) -> Self {
        let mut by_service = vec![Vec::new(); catalogue.len()];
        let mut unknown = Vec::new();
        for (sid, service) in catalogue.services().iter().enumerate() {
            for name in &service.trackers {
                match kinds.iter().position(|k| k.name() == name) {
                    Some(k) => by_service[sid].push(k as u16),
                    None => unknown.push(format!("service {}: unknown tracker {name}", service.id)),
                }
            }
        }
        let mut expect = ExpectTable::new(config);
        expect.dc_services = crate::classify::DC_SERVICES
            .iter()
            .filter_map(|s| catalogue.find(s))
            .collect();
        let signatures = (0..kinds.len() as u16)
            .filter(|&k| kinds[usize::from(k)].has_signature())
            .collect();
        Trackers {
            shared: Shared {
                expect,
                budget: Budget::new(budget),
                sessions: Sessions::default(),
            },
            stats: vec![TrackerStats::default(); kinds.len()],
            kinds,
            by_service,
            signatures,
            slots: Vec::new(),
            free: Vec::new(),
            unknown,
            unclassified: catalogue.find("unclassified"),
            long_lived: catalogue
                .services()
                .iter()
                .map(|s| s.kind == crate::classify::ServiceKind::Interface)
                .collect(),
        }
    }

    /// Tracker names, in kind order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.iter().map(|k| k.name())
    }

    /// What every tracker counted, by name.
    pub fn signalling(&self) -> Signalling {
        let mut s = Signalling {
            trackers: self.names().zip(self.stats.iter().cloned()).collect(),
            budget: self.shared.budget,
            ..Signalling::default()
        };
        s.expectations_dropped_at_cap = self.shared.expect.dropped_at_cap;
        s
    }

    /// Empty diagnostics for every kind that keeps them.
    pub fn diagnostics(&self) -> DiagnosticsSet {
        DiagnosticsSet::new(
            self.kinds
                .iter()
                .map(|k| (k.name(), k.diagnostics()))
                .collect(),
        )
    }

    /// Gives a new flow its follow-up service if it fulfils an expectation; false otherwise.
    pub fn classify_new(&mut self, flow: &mut Flow, p: &Packet<'_>) -> bool {
        let expect = &self.shared.expect;
        if let Some(id) = expect.find(flow.proto, flow.client, flow.server, p.ts) {
            if let Some(e) = expect.list.get(&id) {
                flow.class.service = e.service;
            }
            flow.class.set_followup_of(id);
            return true;
        }
        if let Some((service, id)) = self.shared.sessions.media_for(flow, p) {
            flow.class.service = service;
            flow.class.set_followup_of(id);
            return true;
        }
        false
    }

    /// An unclassified flow that ends takes the service of an expectation announced for one of
    /// its ends while it was open or less than a lifetime after (see
    /// [`ExpectTable::find_during`]): clients of an RPC service that asked the endpoint mapper
    /// before the capture began. It does not count as a follow-up of that expectation: it did not
    /// follow the announcement.
    pub fn classify_late(&self, flow: &mut Flow) {
        if Some(flow.class.service) != self.unclassified || flow.class.followup_of().is_some() {
            return;
        }
        let expect = &self.shared.expect;
        let ends = [flow.server, flow.client];
        if let Some(id) = expect.find_during(flow.proto, ends, flow.first_ts, flow.last_ts) {
            if let Some(e) = expect.list.get(&id) {
                // A media or callback port is chosen per call: an earlier flow to the same port
                // is not that call's. An RPC endpoint is the server's for as long as it runs.
                if self.long_lived.get(usize::from(e.service.0)) == Some(&true) {
                    flow.class.service = e.service;
                }
            }
        }
    }

    /// [`classify_late`](Self::classify_late) of a flow that left the table at `ended`, before
    /// the expectations `ids` reached it (a sharded run's worker adopts other workers'
    /// announcements late): only those announced by then count, as in one analyzer.
    pub fn classify_late_among(&self, flow: &mut Flow, ids: &[u32], ended: Nanos) {
        if Some(flow.class.service) != self.unclassified || flow.class.followup_of().is_some() {
            return;
        }
        let found = ids
            .iter()
            .filter_map(|id| self.shared.expect.list.get(id))
            .find(|e| {
                let lifetime = e.expires.saturating_sub(e.announced_ts);
                let since = e.announced_ts.saturating_sub(lifetime);
                e.basis == crate::classify::Basis::Signalled
                    && e.proto == flow.proto
                    && (e.addr == flow.server || e.addr == flow.client)
                    && e.announced_ts <= ended
                    && since <= flow.last_ts
                    && flow.first_ts <= e.expires
                    && self.long_lived.get(usize::from(e.service.0)) == Some(&true)
            });
        if let Some(e) = found {
            flow.class.service = e.service;
        }
    }

    /// Attaches the trackers the catalogue names for the flow's service.
    pub fn attach(&mut self, flow: &mut Flow) {
        if flow.class.by_client_port {
            // A service guessed from the client's port alone must not drive signalling.
            return;
        }
        let Some(kinds) = self.by_service.get(usize::from(flow.class.service.0)) else {
            return;
        };
        if kinds.is_empty() {
            return;
        }
        let info = info(flow);
        let mut attached = SmallVec::with_capacity(kinds.len());
        for &k in kinds {
            let kind = &self.kinds[usize::from(k)];
            attach_one(&mut attached, k, kind.as_ref(), &info, &mut self.stats);
        }
        let slot = Slot {
            attached,
            announced: NonMaxU32::ZERO,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                id
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        flow.class.tracker = NonMaxU32::new(id);
    }

    /// Feeds one packet of a flow to its trackers.
    #[inline]
    pub fn packet(&mut self, flow: &mut Flow, p: &Packet<'_>) {
        if let Some(id) = slot_of(flow) {
            self.feed(flow, id, p);
        } else if !flow.class.probed {
            self.probe(flow, p);
        }
    }

    /// An unclassified TCP flow's first client payload: does a signature claim it?
    fn probe(&mut self, flow: &mut Flow, p: &Packet<'_>) {
        if p.payload.is_empty() {
            return;
        }
        flow.class.probed = true;
        if flow.proto != Proto::Tcp
            || !flow.from_client(&p.src)
            || flow.class.followup_of().is_some()
        {
            return;
        }
        for &k in &self.signatures {
            if let Some(service) = self.kinds[usize::from(k)].signature(p.payload) {
                flow.class.service = service;
                self.attach(flow);
                if let Some(id) = slot_of(flow) {
                    self.feed(flow, id, p);
                }
                return;
            }
        }
    }

    fn feed(&mut self, flow: &mut Flow, id: u32, p: &Packet<'_>) {
        let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        let dir = if flow.from_client(&p.src) {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let syn = p.tcp_flags & tcp_flags::SYN != 0;
        let mut reclassified = None;
        let mut announced = slot.announced.get();
        for a in &mut slot.attached {
            let stats = &mut self.stats[usize::from(a.kind)];
            let mut cx = Cx {
                ts: p.ts,
                flow: info(flow),
                shared: &mut self.shared,
                stats,
                announced: &mut announced,
                reclassified: &mut reclassified,
            };
            a.tracker.packet(dir, &mut cx);
            if p.payload.is_empty() && !syn {
                continue;
            }
            match p.proto {
                Proto::Tcp => {
                    let stream = &mut a.streams[dir as usize];
                    if syn {
                        stream.start(p.seq.wrapping_add(1));
                    }
                    if p.payload.is_empty() {
                        continue;
                    }
                    if !stream.started() {
                        // Joined mid-stream: the first bytes may be inside a unit.
                        a.tracker.gap(dir, &mut cx);
                    }
                    push(stream, p, &mut *a.tracker, dir, &mut cx);
                }
                _ => a.tracker.datagram(dir, p.payload, &mut cx),
            }
        }
        slot.announced = NonMaxU32::saturating(announced);
        if let Some(service) = reclassified {
            flow.class.service = service;
            self.attach_more(flow, id);
        }
        self.reap(flow, id);
    }

    /// After a reclassification: attaches the new service's kinds not attached yet.
    fn attach_more(&mut self, flow: &Flow, id: u32) {
        let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        let info = info(flow);
        for &k in self
            .by_service
            .get(usize::from(flow.class.service.0))
            .into_iter()
            .flatten()
        {
            if !slot.attached.iter().any(|a| a.kind == k) {
                let kind = &self.kinds[usize::from(k)];
                attach_one(&mut slot.attached, k, kind.as_ref(), &info, &mut self.stats);
            }
        }
    }

    /// Drops trackers that are done; frees the slot when none is left.
    fn reap(&mut self, flow: &mut Flow, id: u32) {
        let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::as_mut) else {
            return;
        };
        if !slot.attached.iter().any(|a| a.tracker.done()) {
            return;
        }
        let budget = &mut self.shared.budget;
        let stats = &mut self.stats;
        slot.attached.retain_mut(|a| {
            if !a.tracker.done() {
                return true;
            }
            let s = &mut stats[usize::from(a.kind)];
            s.gave_up += 1;
            for r in &mut a.streams {
                r.release(budget);
            }
            false
        });
        if slot.attached.is_empty() && slot.announced == NonMaxU32::ZERO {
            self.slots[id as usize] = None;
            self.free.push(id);
            flow.class.tracker = None;
            flow.class.probed = true;
        }
    }

    /// A flow left the table: counts it on its expectation, lets its trackers conclude, frees
    /// their state. Returns the trackers' findings for the flow record (empty: no allocation).
    pub fn flow_ended(
        &mut self,
        f: &Flow,
        why: EndReason,
        diagnostics: &mut DiagnosticsSet,
        want_record: bool,
    ) -> Vec<(&'static str, serde_json::Value)> {
        self.shared.expect.flow_ended(f);
        let mut findings = Vec::new();
        let Some(id) = slot_of(f) else {
            return findings;
        };
        let Some(slot) = self.slots.get_mut(id as usize).and_then(Option::take) else {
            return findings;
        };
        self.free.push(id);
        let outcome = f.outcome();
        for mut a in slot.attached {
            let k = usize::from(a.kind);
            let stats = &mut self.stats[k];
            for r in &mut a.streams {
                r.release(&mut self.shared.budget);
            }
            let mut cx = EndCx {
                flow: info(f),
                outcome,
                why,
                midstream: f.tcp.midstream(),
                fin: [f.tcp.fin_client(), f.tcp.fin_server()],
                rst: [f.tcp.client_rst(), f.tcp.server_rst()],
                first_ts: f.first_ts,
                last_ts: f.last_ts,
                packets: [f.to_server.packets, f.to_client.packets],
                diagnostics: diagnostics.get_mut(k),
                want_record,
                stats,
            };
            if let Some(v) = a.tracker.end(&mut cx) {
                if want_record {
                    findings.push((self.kinds[k].name(), v));
                }
            }
        }
        findings
    }

    /// Drops inference sessions that ended long ago (bounded memory in live mode).
    pub fn expire(&mut self, now: Nanos) {
        self.shared.sessions.expire(now);
    }
}

/// Pushes `x`; a list's first element takes room for itself only. A flow's lists (an SMTP
/// session's transactions and recipients, an LDAP session's results) hold one element far more
/// often than more, and a `Vec`'s first push takes room for four.
pub(crate) fn push_first_alone<T>(v: &mut Vec<T>, x: T) {
    if v.capacity() == 0 {
        v.reserve_exact(1);
    }
    v.push(x);
}

fn attach_one(
    out: &mut SmallVec<[Attached; 1]>,
    k: u16,
    kind: &dyn TrackerKind,
    info: &FlowInfo,
    stats: &mut [TrackerStats],
) {
    let tracker = kind.attach(info);
    let cap = tracker.max_unit();
    if let Some(s) = stats.get_mut(usize::from(k)) {
        s.flows += 1;
    }
    out.push(Attached {
        kind: k,
        tracker,
        streams: [Reassembler::new(cap), Reassembler::new(cap)],
    });
}

fn push(
    stream: &mut Reassembler,
    p: &Packet<'_>,
    tracker: &mut dyn Tracker,
    dir: Dir,
    cx: &mut Cx<'_>,
) {
    // The budget lives in `cx.shared`, which the feed also borrows: lend it out for the push.
    // So do the kind's counters: the stream's counts go straight to them.
    let mut budget = std::mem::take(&mut cx.shared.budget);
    let mut counts = StreamStats::default();
    let mut feed = Feed { tracker, dir, cx };
    stream.push(p.seq, p.payload, p.ts, &mut budget, &mut counts, &mut feed);
    cx.shared.budget = budget;
    cx.stats.stream += counts;
}

/// The flow's tracker slot, if it has one.
#[inline]
fn slot_of(f: &Flow) -> Option<u32> {
    f.class.tracker.map(NonMaxU32::get)
}

fn info(f: &Flow) -> FlowInfo {
    FlowInfo {
        proto: f.proto,
        client: f.client,
        server: f.server,
        service: f.class.service,
    }
}
