//! The flow table: one entry per bidirectional conversation, who started it, what each side sent,
//! and the TCP facts that decide its outcome.
//!
//! Time is capture time only: idle flows expire when later packets' timestamps pass their
//! deadline, never by the wall clock. When the table is full the least recently active flows are
//! evicted; every flow that leaves the table (ended, expired, evicted or flushed at the end) is
//! handed to the caller so its counts reach the totals.
//!
//! Layout (measured: a flood of a million one-packet flows, README "Limits"): the flows live in a
//! slab (`Vec`, vacant slots reused through a free list) and the hash index (`index.rs`) holds
//! only a `u32` slot number and a 32-bit hash tag per flow. Its bucket array (at most seven
//! tenths full, grown by a quarter) then costs 8 bytes per bucket instead of a whole key and
//! flow, and a flow's key is not stored twice: it is read back from the flow's own endpoints
//! (the hash is the same both ways, `hash.rs`, and a lookup compares both directions, so both
//! meet).

mod clock;
mod deadline;
mod hash;
mod health;
mod index;
mod state;

use crate::packet::{tcp_flags, Endpoint, IcmpUnreachable, Nanos, Packet, Proto};

pub use clock::{CaptureClock, MAX_JUMP, MAX_TS};
pub use health::{Side, TcpHealth, STALL_AFTER};
pub use state::{Outcome, TcpTrack};

/// What a lookup looks for: a flow's protocol and its two endpoints, in either order (the flow
/// hash is the same both ways, `flow::hash`, and a lookup compares both directions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    pub proto: Proto,
    pub a: Endpoint,
    pub b: Endpoint,
}

impl FlowKey {
    #[inline]
    pub fn new(proto: Proto, a: Endpoint, b: Endpoint) -> FlowKey {
        FlowKey { proto, a, b }
    }

    /// True when `f` is the flow of this key (either direction).
    #[inline]
    fn is_of<C>(&self, f: &Flow<C>) -> bool {
        f.proto == self.proto
            && ((f.client == self.a && f.server == self.b)
                || (f.client == self.b && f.server == self.a))
    }
}

/// Packets and wire bytes in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirCount {
    pub packets: u64,
    pub bytes: u64,
}

impl DirCount {
    #[inline]
    fn add(&mut self, wire_len: u32) {
        self.packets += 1;
        self.bytes += u64::from(wire_len);
    }
}

/// An ICMP destination-unreachable that quoted this flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpSeen {
    pub v6: bool,
    /// Code of the first such message.
    pub code: u8,
    /// How many such messages quoted this flow.
    pub count: u32,
    /// Who sent the first one (a router or firewall, or the server's host).
    pub reporter: std::net::IpAddr,
    pub ts: Nanos,
}

impl IcmpSeen {
    pub fn is_admin_prohibited(&self) -> bool {
        crate::packet::is_admin_prohibited(self.v6, self.code)
    }
}

/// What ICMP told of a flow. Rare, so boxed: 24 + 4 bytes less in every flow of the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IcmpFacts {
    /// ICMP destination-unreachable messages that quoted this (TCP or UDP) flow.
    pub seen: Option<IcmpSeen>,
    /// ICMP type and code of an ICMP flow's first packet, and whether its server sent it: what
    /// Community ID hashes in place of ports.
    pub first: Option<(u8, u8, bool)>,
}

/// One bidirectional conversation. `C` is what later stages keep per flow (the classifier's
/// service and tracker slot); the table only creates it with `C::default()` and hands it back.
#[derive(Clone, Debug)]
pub struct Flow<C = ()> {
    pub proto: Proto,
    /// The side that started it (sent the SYN; for UDP the first sender unless only the other
    /// side uses a catalogue port).
    pub client: Endpoint,
    pub server: Endpoint,
    pub first_ts: Nanos,
    pub last_ts: Nanos,
    pub to_server: DirCount,
    pub to_client: DirCount,
    pub tcp: TcpTrack,
    /// What ICMP told of the flow ([`icmp_seen`](Self::icmp_seen),
    /// [`icmp_first`](Self::icmp_first)).
    pub icmp: Option<Box<IcmpFacts>>,
    /// The later stages' data about this flow.
    pub class: C,
}

impl<C> Flow<C> {
    /// True when `src` is this flow's client.
    #[inline]
    pub fn from_client(&self, src: &Endpoint) -> bool {
        *src == self.client
    }

    pub fn packets(&self) -> u64 {
        self.to_server.packets + self.to_client.packets
    }

    /// The ICMP destination-unreachable messages that quoted this flow, if any did.
    #[inline]
    pub fn icmp_seen(&self) -> Option<&IcmpSeen> {
        self.icmp.as_ref()?.seen.as_ref()
    }

    /// ICMP type and code of an ICMP flow's first packet, and whether its server sent it.
    pub fn icmp_first(&self) -> Option<(u8, u8, bool)> {
        self.icmp.as_ref()?.first
    }

    pub fn bytes(&self) -> u64 {
        self.to_server.bytes + self.to_client.bytes
    }

    /// The outcome the flow has now (final once it left the table).
    pub fn outcome(&self) -> Outcome {
        state::outcome(self)
    }
}

/// Why a flow left the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Idle longer than its timeout, or closed and quiet for the close grace.
    Expired,
    /// Pushed out because the table was full.
    Evicted,
    /// A new connection reused its five-tuple.
    Reused,
    /// The capture ended.
    Flushed,
}

/// Flow table limits and timeouts (capture time).
#[derive(Clone, Copy, Debug)]
pub struct FlowConfig {
    pub max_flows: usize,
    pub tcp_timeout: Nanos,
    pub udp_timeout: Nanos,
    /// How long a closed (FIN both ways, or RST) TCP flow stays for stray retransmissions.
    pub closed_timeout: Nanos,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: DEFAULT_MAX_FLOWS,
            tcp_timeout: 600 * 1_000_000_000,
            udp_timeout: 120 * 1_000_000_000,
            closed_timeout: 30 * 1_000_000_000,
        }
    }
}

impl FlowConfig {
    /// How long `f` may stay quiet in its present state.
    #[inline]
    fn timeout<C>(&self, f: &Flow<C>) -> Nanos {
        if f.tcp.closed() {
            self.closed_timeout
        } else if f.proto == Proto::Tcp {
            self.tcp_timeout
        } else {
            self.udp_timeout
        }
    }

    /// True when `f` is idle past its timeout at `now` (`now` may precede its last packet).
    #[inline]
    fn idle<C>(&self, f: &Flow<C>, now: Nanos) -> bool {
        now.saturating_sub(f.last_ts) > self.timeout(f)
    }

    /// The last capture time at which `f` is not yet [`idle`](Self::idle) (while it stays quiet).
    #[inline]
    fn deadline<C>(&self, f: &Flow<C>) -> Nanos {
        f.last_ts.saturating_add(self.timeout(f))
    }
}

/// What happened to the table for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// The packet joined an existing flow.
    Existing,
    /// The packet opened a new flow: classify it.
    New,
}

/// The flow table.
pub struct FlowTable<C = ()> {
    /// Slot numbers in `slab`, found by the hash of the flow's [`FlowKey`]. Keyed by tuples an
    /// attacker chooses: the hash is keyed per run ([`hash`]).
    index: index::FlowIndex,
    /// The flows; `None` slots are listed in `free`. Every slot in `index` holds a flow.
    slab: Vec<Option<Flow<C>>>,
    free: Vec<u32>,
    hasher: hash::FlowHasher,
    config: FlowConfig,
    /// Capture time of the next expiry sweep.
    next_sweep: Nanos,
    /// Time of a first packet past `next_sweep`; the sweep waits for a second one, so a single
    /// packet with a bogus timestamp far in the future cannot expire the whole table.
    armed: Option<Nanos>,
    /// When each flow may go idle: what a sweep visits (`deadline.rs`, with its invariant).
    deadlines: deadline::Deadlines,
    /// The slots a sweep visits, kept between sweeps so that sweeping allocates nothing.
    due: Vec<u32>,
    /// The hash of each flow in `due` that leaves, for the same reason.
    due_hash: Vec<u64>,
    /// Scratch for [`oldest_first`], kept for the same reason.
    order: Vec<(Nanos, u32)>,
    pub evicted: u64,
    pub expired: u64,
    pub peak: usize,
}

/// Most flows held at once by default (`--max-flows`): twice the most a 5 M-packet busy-gateway
/// capture holds (about 250 000), and a flood of a million hostile flows stays within a few
/// hundred MiB (README, Limits).
pub const DEFAULT_MAX_FLOWS: usize = 1 << 19;

/// How many visits ahead a sweep prefetches the flow it will visit.
const SWEEP_PREFETCH: usize = 8;

/// How many packets before a packet reaches the table its caller starts loading what the lookup
/// will touch: the index bucket then ([`FlowTable::prefetch_packet`]), the flow it names half as
/// many packets before ([`FlowTable::prefetch_flow`]). The table is larger than the caches, so
/// each is a cache miss (README, Benchmarks).
pub const PREFETCH_AHEAD: usize = 8;

/// A packet's flow hash, from [`FlowTable::prefetch_packet`], for that packet's
/// [`FlowTable::packet_hashed`] (debug builds check it is that packet's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowHash(u64);

/// How often (capture time) the table is swept for idle flows.
pub const SWEEP_EVERY: Nanos = 10 * 1_000_000_000;

/// The hash of a flow's key, from the flow itself (both directions hash alike).
#[inline]
fn hash_flow<C>(hasher: &hash::FlowHasher, f: &Flow<C>) -> u64 {
    hasher.hash(f.proto, f.client, f.server)
}

impl<C: Default> FlowTable<C> {
    pub fn new(mut config: FlowConfig) -> FlowTable<C> {
        // Slot numbers are u32.
        config.max_flows = config.max_flows.min(u32::MAX as usize);
        let initial = config.max_flows.min(1 << 16);
        FlowTable {
            index: index::FlowIndex::with_capacity(initial),
            slab: Vec::with_capacity(initial),
            free: Vec::new(),
            hasher: hash::FlowHasher::new(),
            config,
            next_sweep: Nanos::MIN,
            armed: None,
            deadlines: deadline::Deadlines::default(),
            due: Vec::new(),
            due_hash: Vec::new(),
            order: Vec::new(),
            evicted: 0,
            expired: 0,
            peak: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// [`PREFETCH_AHEAD`] packets before `p` comes: starts loading the index bucket its lookup
    /// reads first, and returns its flow's hash, for [`prefetch_flow`](Self::prefetch_flow) and
    /// [`packet_hashed`](Self::packet_hashed). `None` for packets the table finds by other
    /// addresses (an ICMP error, by the packet it quotes; a fragment, once its ports are known).
    #[inline]
    pub fn prefetch_packet(&self, p: &Packet<'_>) -> Option<FlowHash> {
        if p.fragment.is_some() || p.unreachable.is_some() {
            return None;
        }
        let hash = self.hasher.hash(p.proto, p.src, p.dst);
        self.index.prefetch(hash);
        Some(FlowHash(hash))
    }

    /// Starts loading the flow the bucket of `hash` names, if its tag is `hash`'s (the bucket
    /// should be loaded by now: [`prefetch_packet`](Self::prefetch_packet) a few packets ago).
    #[inline]
    pub fn prefetch_flow(&self, hash: FlowHash) {
        if let Some(f) = self
            .index
            .first_candidate(hash.0)
            .and_then(|i| self.slab.get(i as usize))
        {
            crate::bytes::prefetch(f);
        }
    }

    /// The open flow between `a` and `b`, if any.
    pub fn get_mut(&mut self, proto: Proto, a: Endpoint, b: Endpoint) -> Option<&mut Flow<C>> {
        let key = FlowKey::new(proto, a, b);
        let i = self.find(self.hasher.hash(proto, a, b), &key)?;
        self.slab.get_mut(i)?.as_mut()
    }

    /// Leaves expiry sweeps to the caller ([`sweep`](Self::sweep)): a sharded run's reader
    /// decides them from every packet, for every worker's table at once.
    pub fn manual_sweeps(&mut self) {
        self.next_sweep = Nanos::MAX;
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The flows still open, in no particular order (live mode's interval snapshots).
    pub fn iter(&self) -> impl Iterator<Item = &Flow<C>> + '_ {
        self.slab.iter().flatten()
    }

    /// The slot of the flow with `key`, if it is in the table.
    #[inline(always)]
    fn find(&self, hash: u64, key: &FlowKey) -> Option<usize> {
        let slab = &self.slab;
        self.index
            .find(hash, |i| {
                slab.get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|f| key.is_of(f))
            })
            .map(|i| i as usize)
    }

    /// Puts a new flow in a vacant slot and indexes it; returns the slot.
    fn insert(&mut self, hash: u64, flow: Flow<C>) -> usize {
        let i = match self.free.pop() {
            Some(i) if (i as usize) < self.slab.len() => {
                self.slab[i as usize] = Some(flow);
                i
            }
            _ => {
                self.slab.push(Some(flow));
                // Never more slots than `max_flows`, which `new` keeps within u32.
                u32::try_from(self.slab.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.index.insert(hash, i);
        i as usize
    }

    /// Adds a packet. `is_server_port` tells whether a port is in the catalogue (used to pick the
    /// client of UDP and mid-stream flows). Flows that leave the table go to `ended`.
    pub fn packet(
        &mut self,
        p: &Packet<'_>,
        is_server_port: impl Fn(Proto, u16) -> bool,
        ended: &mut impl FnMut(Flow<C>, EndReason),
    ) -> (Touch, &mut Flow<C>) {
        self.packet_hashed(p, None, is_server_port, ended)
    }

    /// [`packet`](Self::packet), with the flow's hash when
    /// [`prefetch_packet`](Self::prefetch_packet) gave one for this very packet: it is not
    /// computed again. (It is passed with the packet rather than stored in the table ahead of
    /// it: copying the packet's key into the table and comparing it back cost more than the
    /// hash it saved.)
    #[inline]
    pub fn packet_hashed(
        &mut self,
        p: &Packet<'_>,
        hash: Option<FlowHash>,
        is_server_port: impl Fn(Proto, u16) -> bool,
        ended: &mut impl FnMut(Flow<C>, EndReason),
    ) -> (Touch, &mut Flow<C>) {
        self.maybe_sweep(p.ts, ended);
        // One hash and one lookup per packet; room is made only for a new flow in a full table.
        let key = FlowKey::new(p.proto, p.src, p.dst);
        let hash = match hash {
            Some(FlowHash(h)) => {
                debug_assert_eq!(
                    h,
                    self.hasher.hash(p.proto, p.src, p.dst),
                    "a flow hash is handed in only with its own packet"
                );
                h
            }
            None => self.hasher.hash(p.proto, p.src, p.dst),
        };
        let mut was_closed = true;
        let (touch, i) = match self.find(hash, &key) {
            Some(i) => {
                let reuse = self.slab[i]
                    .as_ref()
                    .is_some_and(|f| state::is_new_connection(f, p));
                if reuse {
                    let fresh = new_flow(p, &is_server_port);
                    if let Some(old) = self.slab[i].replace(fresh) {
                        ended(old, EndReason::Reused);
                    }
                    (Touch::New, i)
                } else {
                    was_closed = self.slab[i].as_ref().is_some_and(|f| f.tcp.closed());
                    (Touch::Existing, i)
                }
            }
            None => {
                if self.index.len() >= self.config.max_flows {
                    self.make_room(ended);
                }
                self.peak = self.peak.max(self.index.len() + 1);
                (Touch::New, self.insert(hash, new_flow(p, &is_server_port)))
            }
        };
        let flow = slot(&mut self.slab, i, || new_flow(p, &is_server_port));
        state::update(flow, p);
        // The only moments a flow's deadline is new or moves earlier (deadline.rs).
        if touch == Touch::New || (!was_closed && flow.tcp.closed()) {
            self.deadlines.add(self.config.deadline(flow), i as u32);
        }
        (touch, flow)
    }

    /// Attributes an ICMP destination-unreachable to the flow it quotes, creating that flow (with
    /// no packets) when the quoted packet itself was not captured.
    #[inline(never)]
    pub fn icmp_unreachable(
        &mut self,
        p: &Packet<'_>,
        u: &IcmpUnreachable,
        ended: &mut impl FnMut(Flow<C>, EndReason),
    ) -> (Touch, &mut Flow<C>) {
        self.maybe_sweep(p.ts, ended);
        let q = u.quoted;
        let key = FlowKey::new(q.proto, q.src, q.dst);
        let hash = self.hasher.hash(q.proto, q.src, q.dst);
        let blank = || {
            let mut f = blank_flow(q.proto, q.src, q.dst, p.ts);
            // The quoted packet was sent by q.src; for TCP it is most likely the SYN.
            f.tcp.set_client_syn(q.proto == Proto::Tcp);
            f
        };
        let (touch, i) = match self.find(hash, &key) {
            Some(i) => (Touch::Existing, i),
            None => {
                self.make_room(ended);
                self.peak = self.peak.max(self.index.len() + 1);
                (Touch::New, self.insert(hash, blank()))
            }
        };
        if touch == Touch::New {
            if let Some(f) = self.slab.get(i).and_then(Option::as_ref) {
                self.deadlines.add(self.config.deadline(f), i as u32);
            }
        }
        let flow = slot(&mut self.slab, i, blank);
        let seen = flow
            .icmp
            .get_or_insert_with(Box::default)
            .seen
            .get_or_insert(IcmpSeen {
                v6: u.v6,
                code: u.code,
                count: 0,
                reporter: p.src.ip,
                ts: p.ts,
            });
        seen.count += 1;
        flow.last_ts = flow.last_ts.max(p.ts);
        (touch, flow)
    }

    /// Hands every flow still in the table to `ended` (end of capture), oldest first, so that
    /// reports list them in the same order on every run.
    pub fn flush(&mut self, ended: &mut impl FnMut(Flow<C>, EndReason)) {
        // Every flow is still open here, so what the flush adds counts in the run's peak. What
        // only lookups and sweeps need is freed before the sort takes room, and the sort takes
        // exactly the room it needs (README, Benchmarks, "Memory at the peak").
        let open = self.index.len();
        self.index = index::FlowIndex::with_capacity(0);
        self.deadlines = deadline::Deadlines::default();
        self.due = Vec::new();
        self.due_hash = Vec::new();
        self.order = Vec::new();
        // Sort slot numbers and first times, not flows: no second copy of the table. The slab
        // holds exactly the open flows. Eight bytes a flow when they fit one word, instead of
        // sixteen (the generated capture: 2.7 MB).
        let (packed, pairs) = match packed_order(&self.slab, open) {
            Some((mut order, slot_bits)) => {
                sort_packed(&self.slab, &mut order, slot_bits);
                (Some((order, slot_bits)), None)
            }
            None => {
                let mut order = Vec::with_capacity(open);
                order.extend(
                    self.slab
                        .iter()
                        .enumerate()
                        .filter_map(|(i, f)| Some((f.as_ref()?.first_ts, u32::try_from(i).ok()?))),
                );
                sort_oldest_first(&self.slab, &mut order);
                (None, Some(order))
            }
        };
        let packed = packed.iter().flat_map(|(order, slot_bits)| {
            let mask = (1u64 << slot_bits) - 1;
            order.iter().map(move |&k| (k & mask) as usize)
        });
        let pairs = pairs.iter().flatten().map(|&(_, i)| i as usize);
        for (n, i) in packed.chain(pairs).enumerate() {
            if let Some(f) = self.slab.get_mut(i).and_then(Option::take) {
                ended(f, EndReason::Flushed);
            }
            give_back_now_and_then(n);
        }
        self.slab.clear();
        self.free.clear();
    }

    /// Expires flows idle past their timeout, at most once per [`SWEEP_EVERY`] of capture time,
    /// when two packets in a row are past the sweep time.
    #[inline(always)]
    pub fn maybe_sweep(&mut self, now: Nanos, ended: &mut impl FnMut(Flow<C>, EndReason)) {
        // Every packet asks; the answer is nearly always no, in line (the call was 3 % of the
        // instructions of a run).
        if now < self.next_sweep {
            self.armed = None;
            return;
        }
        self.sweep_if_due(now, ended);
    }

    /// [`maybe_sweep`](Self::maybe_sweep) past the sweep time (or before the first packet).
    #[inline(never)]
    fn sweep_if_due(&mut self, now: Nanos, ended: &mut impl FnMut(Flow<C>, EndReason)) {
        if self.next_sweep == Nanos::MIN {
            self.next_sweep = now.saturating_add(SWEEP_EVERY);
            return;
        }
        let Some(first) = self.armed else {
            self.armed = Some(now);
            return;
        };
        let now = now.min(first);
        self.sweep(now, ended);
        self.armed = None;
        self.next_sweep = now.saturating_add(SWEEP_EVERY);
    }

    /// Expires every flow idle past its timeout at capture time `now`: the flows whose deadline
    /// bucket is due, oldest first (by first time, protocol, client, server).
    pub fn sweep(&mut self, now: Nanos, ended: &mut impl FnMut(Flow<C>, EndReason)) {
        let mut due = std::mem::take(&mut self.due);
        let mut hashes = std::mem::take(&mut self.due_hash);
        due.clear();
        hashes.clear();
        self.deadlines.take_due(now, &mut due);
        due.sort_unstable();
        due.dedup();
        let (cfg, slab, deadlines) = (self.config, &self.slab, &mut self.deadlines);
        // Each visit is a cache miss on a flow: the flow a few visits ahead is prefetched. A flow
        // that leaves is hashed now, while it is in the cache.
        let mut kept = 0;
        for k in 0..due.len() {
            if let Some(ahead) = due
                .get(k + SWEEP_PREFETCH)
                .and_then(|&j| slab.get(j as usize))
            {
                crate::bytes::prefetch(ahead);
            }
            let i = due[k];
            let leaves = match slab.get(i as usize).and_then(Option::as_ref) {
                Some(f) if cfg.idle(f, now) => Some(hash_flow(&self.hasher, f)),
                Some(f) => {
                    deadlines.add(cfg.deadline(f), i);
                    None
                }
                None => None,
            };
            if let Some(hash) = leaves {
                due[kept] = i;
                hashes.push(hash);
                kept += 1;
            }
        }
        due.truncate(kept);
        // Out of the index, each bucket line prefetched a few removals ahead (another miss each).
        for (k, (&i, &hash)) in due.iter().zip(&hashes).enumerate() {
            if let Some(&ahead) = hashes.get(k + SWEEP_PREFETCH) {
                self.index.prefetch(ahead);
            }
            self.index.remove(hash, i);
        }
        oldest_first(&self.slab, &mut due, &mut self.order);
        for &i in &due {
            let Some(f) = self.slab.get_mut(i as usize).and_then(Option::take) else {
                continue;
            };
            self.free.push(i);
            self.expired += 1;
            ended(f, EndReason::Expired);
        }
        self.due = due;
        self.due_hash = hashes;
    }

    /// The sweep as it was before the deadline queue: a walk of the whole table (the reference
    /// the queue is tested against).
    #[cfg(test)]
    fn sweep_full_walk(&mut self, now: Nanos, ended: &mut impl FnMut(Flow<C>, EndReason)) {
        let cfg = self.config;
        let gone = self.remove_if(|f| cfg.idle(f, now), ended, EndReason::Expired);
        self.expired += gone;
    }

    /// Takes every flow `leave` picks out of the table and hands it to `ended`, oldest first as
    /// at the end of the capture (the hash order is random per run, and the order flows end in
    /// is the order of `--flows` listings and events); returns how many.
    fn remove_if(
        &mut self,
        mut leave: impl FnMut(&Flow<C>) -> bool,
        ended: &mut impl FnMut(Flow<C>, EndReason),
        why: EndReason,
    ) -> u64 {
        let slab = &self.slab;
        // Slot numbers, not flows: no second copy of what leaves (once per sweep, not per packet).
        let mut gone: Vec<u32> = Vec::new();
        self.index.retain(|i| match slab.get(i as usize) {
            Some(Some(f)) if leave(f) => {
                gone.push(i);
                false
            }
            Some(Some(_)) => true,
            _ => false,
        });
        oldest_first(&self.slab, &mut gone, &mut self.order);
        let mut n = 0;
        for i in gone {
            if let Some(f) = self.slab.get_mut(i as usize).and_then(Option::take) {
                self.free.push(i);
                n += 1;
                ended(f, why);
            }
        }
        n
    }

    /// Makes space for one more flow by evicting the least recently active eighth of the table.
    fn make_room(&mut self, ended: &mut impl FnMut(Flow<C>, EndReason)) {
        if self.index.len() < self.config.max_flows {
            return;
        }
        let mut ts: Vec<Nanos> = self.iter().map(|f| f.last_ts).collect();
        let n = (ts.len() / 8).max(1);
        let (_, cut, _) = ts.select_nth_unstable(n - 1);
        let cut = *cut;
        let mut left = n;
        let gone = self.remove_if(
            |f| {
                let take = left > 0 && f.last_ts <= cut;
                left -= usize::from(take);
                take
            },
            ended,
            EndReason::Evicted,
        );
        self.evicted += gone;
        let slab = &self.slab;
        self.deadlines
            .retain(|i| slab.get(i as usize).is_some_and(Option::is_some));
    }
}

/// Puts the slot numbers in `slots` in the order flows leave the table: oldest first, by first
/// time, then protocol, client and server. A flow's key is unique in the table, so the order is
/// the same on every run. Each flow is read once, for its first time; only flows that share a
/// first time are compared by key. Reading both from the slab on every comparison made the sort
/// 6 % of a run on the generated benchmark capture (README, Benchmarks). Vacant slots are
/// dropped.
fn oldest_first<C>(slab: &[Option<Flow<C>>], slots: &mut Vec<u32>, order: &mut Vec<(Nanos, u32)>) {
    let flow = |i: u32| slab.get(i as usize).and_then(Option::as_ref);
    order.clear();
    order.extend(
        slots
            .iter()
            .filter_map(|&i| flow(i).map(|f| (f.first_ts, i))),
    );
    sort_oldest_first(slab, order);
    slots.clear();
    slots.extend(order.iter().map(|&(_, i)| i));
}

/// Flows the final flush ends between two hand-backs of freed memory.
const GIVE_BACK_EVERY: usize = 1 << 15;

/// After every [`GIVE_BACK_EVERY`] flows the flush ended, gives the memory they held back to
/// the operating system, so that the report's allocations do not add to the run's peak
/// (generated benchmark capture: the flush's peak fell below the end of reading's).
#[inline]
fn give_back_now_and_then(ended: usize) {
    if ended % GIVE_BACK_EVERY == GIVE_BACK_EVERY - 1 {
        crate::mem::give_back_freed();
    }
}

/// The open flows of `slab` as one `u64` each, the first time's offset from the oldest above
/// the slot number (`slot_bits` bits), so that sorting them sorts by first time, then slot, as
/// [`sort_oldest_first`] does; and `slot_bits`. `None` when the first times span more than the
/// bits left hold (about 9 hours of capture time for a slab of half a million flows).
fn packed_order<C>(slab: &[Option<Flow<C>>], open: usize) -> Option<(Vec<u64>, u32)> {
    // Bits for the largest slot number.
    let slot_bits = u64::BITS - (slab.len().saturating_sub(1) as u64).leading_zeros();
    let (lo, hi) = slab
        .iter()
        .flatten()
        .fold((Nanos::MAX, Nanos::MIN), |(lo, hi), f| {
            (lo.min(f.first_ts), hi.max(f.first_ts))
        });
    let span = u64::try_from(hi.checked_sub(lo)?).ok()?;
    if slot_bits >= u64::BITS || span.checked_shl(slot_bits)? >> slot_bits != span {
        return None;
    }
    let mut order = Vec::with_capacity(open);
    order.extend(slab.iter().enumerate().filter_map(|(i, f)| {
        let rel = u64::try_from(f.as_ref()?.first_ts.checked_sub(lo)?).ok()?;
        Some(rel << slot_bits | i as u64)
    }));
    Some((order, slot_bits))
}

/// Sorts [`packed_order`]'s words in the order [`oldest_first`] gives.
fn sort_packed<C>(slab: &[Option<Flow<C>>], order: &mut [u64], slot_bits: u32) {
    let mask = (1u64 << slot_bits) - 1;
    let key = |&k: &u64| {
        slab.get((k & mask) as usize)
            .and_then(Option::as_ref)
            .map(|f| (f.proto, f.client, f.server))
    };
    order.sort_unstable();
    for run in order.chunk_by_mut(|a, b| a >> slot_bits == b >> slot_bits) {
        if run.len() > 1 {
            run.sort_unstable_by_key(key);
        }
    }
}

/// Sorts `(first time, slot)` pairs in the order [`oldest_first`] gives.
fn sort_oldest_first<C>(slab: &[Option<Flow<C>>], order: &mut [(Nanos, u32)]) {
    let key = |&(_, i): &(Nanos, u32)| {
        slab.get(i as usize)
            .and_then(Option::as_ref)
            .map(|f| (f.proto, f.client, f.server))
    };
    order.sort_unstable();
    for run in order.chunk_by_mut(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            run.sort_unstable_by_key(key);
        }
    }
}

/// The flow in slot `i` of `slab`; creates it with `make` should the slot be vacant (it never
/// is for a slot from `find` or `insert`).
#[inline]
fn slot<C>(
    slab: &mut Vec<Option<Flow<C>>>,
    i: usize,
    make: impl FnOnce() -> Flow<C>,
) -> &mut Flow<C> {
    if i >= slab.len() {
        slab.resize_with(i + 1, || None);
    }
    slab[i].get_or_insert_with(make)
}

fn blank_flow<C: Default>(proto: Proto, client: Endpoint, server: Endpoint, ts: Nanos) -> Flow<C> {
    Flow {
        proto,
        client,
        server,
        first_ts: ts,
        last_ts: ts,
        to_server: DirCount::default(),
        to_client: DirCount::default(),
        tcp: TcpTrack::default(),
        icmp: None,
        class: C::default(),
    }
}

/// A new flow from its first packet: decides who is the client.
fn new_flow<C: Default>(p: &Packet<'_>, is_server_port: &impl Fn(Proto, u16) -> bool) -> Flow<C> {
    let flags = p.tcp_flags;
    let syn = flags & tcp_flags::SYN != 0;
    let ack = flags & tcp_flags::ACK != 0;
    let (client, server, midstream) = if p.proto == Proto::Tcp && syn && !ack {
        (p.src, p.dst, false)
    } else if p.proto == Proto::Tcp && syn && ack {
        // SYN-ACK first: its receiver started the connection; the SYN was not captured.
        (p.dst, p.src, true)
    } else {
        let flip = is_server_port(p.proto, p.src.port) && !is_server_port(p.proto, p.dst.port)
            || (!is_server_port(p.proto, p.dst.port)
                && p.proto == Proto::Tcp
                && p.src.port < 1024
                && p.dst.port >= 1024);
        let midstream = p.proto == Proto::Tcp;
        if flip {
            (p.dst, p.src, midstream)
        } else {
            (p.src, p.dst, midstream)
        }
    };
    let mut f = blank_flow(p.proto, client, server, p.ts);
    f.tcp.set_midstream(midstream);
    if let Some((kind, code)) = p.icmp {
        f.icmp = Some(Box::new(IcmpFacts {
            seen: None,
            first: Some((kind, code, p.src != client)),
        }));
    }
    f
}

#[cfg(test)]
mod tests;
