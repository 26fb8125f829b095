//! The flow table: one entry per bidirectional conversation, who started it, what each side sent,
//! and the TCP facts that decide its outcome.
//!
//! Time is capture time only: idle flows expire when later packets' timestamps pass their
//! deadline, never by the wall clock. When the table is full the least recently active flows are
//! evicted; every flow that leaves the table (ended, expired, evicted or flushed at the end) is
//! handed to the caller so its counts reach the totals.

mod clock;
mod health;
mod state;

use std::hash::{Hash, Hasher};

use ahash::RandomState;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::packet::{tcp_flags, Endpoint, IcmpUnreachable, Nanos, Packet, Proto};

pub use clock::{CaptureClock, MAX_JUMP, MAX_TS};
pub use health::{Side, TcpHealth, STALL_AFTER};
pub use state::{Outcome, TcpTrack};

/// Direction-free identity of a flow: the lower endpoint first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    pub proto: Proto,
    pub lo: Endpoint,
    pub hi: Endpoint,
}

impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.proto.hash(h);
        self.lo.hash(h);
        self.hi.hash(h);
    }
}

impl FlowKey {
    pub fn new(proto: Proto, a: Endpoint, b: Endpoint) -> FlowKey {
        if a <= b {
            FlowKey {
                proto,
                lo: a,
                hi: b,
            }
        } else {
            FlowKey {
                proto,
                lo: b,
                hi: a,
            }
        }
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
    /// The flow's start predates the capture (TCP seen without its opening SYN).
    pub midstream: bool,
    pub tcp: TcpTrack,
    pub icmp: Option<IcmpSeen>,
    /// ICMP type and code of an ICMP flow's first packet, and whether its server sent it: what
    /// Community ID hashes in place of ports.
    pub icmp_first: Option<(u8, u8, bool)>,
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
            max_flows: 1_000_000,
            tcp_timeout: 600 * 1_000_000_000,
            udp_timeout: 120 * 1_000_000_000,
            closed_timeout: 30 * 1_000_000_000,
        }
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
    map: HashMap<FlowKey, Flow<C>, RandomState>,
    config: FlowConfig,
    /// Capture time of the next expiry sweep.
    next_sweep: Nanos,
    /// Time of a first packet past `next_sweep`; the sweep waits for a second one, so a single
    /// packet with a bogus timestamp far in the future cannot expire the whole table.
    armed: Option<Nanos>,
    pub evicted: u64,
    pub expired: u64,
    pub peak: usize,
}

/// How often (capture time) the table is swept for idle flows.
pub const SWEEP_EVERY: Nanos = 10 * 1_000_000_000;

impl<C: Default> FlowTable<C> {
    pub fn new(config: FlowConfig) -> FlowTable<C> {
        FlowTable {
            map: HashMap::with_capacity_and_hasher(
                config.max_flows.min(1 << 16),
                RandomState::new(),
            ),
            config,
            next_sweep: Nanos::MIN,
            armed: None,
            evicted: 0,
            expired: 0,
            peak: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The flows still open, in no particular order (live mode's interval snapshots).
    pub fn iter(&self) -> impl Iterator<Item = &Flow<C>> + '_ {
        self.map.values()
    }

    /// Adds a packet. `is_server_port` tells whether a port is in the catalogue (used to pick the
    /// client of UDP and mid-stream flows). Flows that leave the table go to `ended`.
    pub fn packet(
        &mut self,
        p: &Packet<'_>,
        is_server_port: impl Fn(Proto, u16) -> bool,
        ended: &mut impl FnMut(Flow<C>, EndReason),
    ) -> (Touch, &mut Flow<C>) {
        self.maybe_sweep(p.ts, ended);
        let key = FlowKey::new(p.proto, p.src, p.dst);
        // One hash lookup per packet; the extra one only when the table is full.
        if self.map.len() >= self.config.max_flows && !self.map.contains_key(&key) {
            self.make_room(ended);
        }
        let len = self.map.len();
        let (touch, flow) = match self.map.entry(key) {
            Entry::Occupied(o) => {
                let flow = o.into_mut();
                if state::is_new_connection(flow, p) {
                    let old = std::mem::replace(flow, new_flow(p, &is_server_port));
                    ended(old, EndReason::Reused);
                    (Touch::New, flow)
                } else {
                    (Touch::Existing, flow)
                }
            }
            Entry::Vacant(v) => {
                self.peak = self.peak.max(len + 1);
                (Touch::New, v.insert(new_flow(p, &is_server_port)))
            }
        };
        state::update(flow, p);
        (touch, flow)
    }

    /// Attributes an ICMP destination-unreachable to the flow it quotes, creating that flow (with
    /// no packets) when the quoted packet itself was not captured.
    pub fn icmp_unreachable(
        &mut self,
        p: &Packet<'_>,
        u: &IcmpUnreachable,
        ended: &mut impl FnMut(Flow<C>, EndReason),
    ) -> (Touch, &mut Flow<C>) {
        self.maybe_sweep(p.ts, ended);
        let q = u.quoted;
        let key = FlowKey::new(q.proto, q.src, q.dst);
        if !self.map.contains_key(&key) {
            self.make_room(ended);
            self.peak = self.peak.max(self.map.len() + 1);
        }
        let mut touch = Touch::Existing;
        let flow = self.map.entry(key).or_insert_with(|| {
            touch = Touch::New;
            let mut f = blank_flow(q.proto, q.src, q.dst, p.ts);
            // The quoted packet was sent by q.src; for TCP it is most likely the SYN.
            f.tcp.client_syn = q.proto == Proto::Tcp;
            f
        });
        let seen = flow.icmp.get_or_insert(IcmpSeen {
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
        let mut open: Vec<Flow<C>> = self.map.drain().map(|(_, f)| f).collect();
        open.sort_unstable_by(|a, b| {
            (a.first_ts, a.proto, a.client, a.server)
                .cmp(&(b.first_ts, b.proto, b.client, b.server))
        });
        for f in open {
            ended(f, EndReason::Flushed);
        }
    }

    /// Expires flows idle past their timeout, at most once per [`SWEEP_EVERY`] of capture time,
    /// when two packets in a row are past the sweep time.
    pub fn maybe_sweep(&mut self, now: Nanos, ended: &mut impl FnMut(Flow<C>, EndReason)) {
        if self.next_sweep == Nanos::MIN {
            self.next_sweep = now.saturating_add(SWEEP_EVERY);
            return;
        }
        if now < self.next_sweep {
            self.armed = None;
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

    /// Expires every flow idle past its timeout at capture time `now`.
    pub fn sweep(&mut self, now: Nanos, ended: &mut impl FnMut(Flow<C>, EndReason)) {
        let cfg = self.config;
        let idle = |f: &mut Flow<C>| {
            let timeout = if f.tcp.closed() {
                cfg.closed_timeout
            } else if f.proto == Proto::Tcp {
                cfg.tcp_timeout
            } else {
                cfg.udp_timeout
            };
            now.saturating_sub(f.last_ts) > timeout
        };
        // Oldest first, as at the end of the capture: the hash order is random per run, and the
        // order flows end in is the order of `--flows` listings and events.
        let mut gone: Vec<Flow<C>> = self
            .map
            .extract_if(|_, f| idle(f))
            .map(|(_, f)| f)
            .collect();
        gone.sort_unstable_by(|a, b| {
            (a.first_ts, a.proto, a.client, a.server)
                .cmp(&(b.first_ts, b.proto, b.client, b.server))
        });
        for f in gone {
            self.expired += 1;
            ended(f, EndReason::Expired);
        }
    }

    /// Makes space for one more flow by evicting the least recently active eighth of the table.
    fn make_room(&mut self, ended: &mut impl FnMut(Flow<C>, EndReason)) {
        if self.map.len() < self.config.max_flows {
            return;
        }
        let mut ts: Vec<Nanos> = self.map.values().map(|f| f.last_ts).collect();
        let n = (ts.len() / 8).max(1);
        let (_, cut, _) = ts.select_nth_unstable(n - 1);
        let cut = *cut;
        let mut left = n;
        for (_, f) in self.map.extract_if(|_, f| {
            let take = left > 0 && f.last_ts <= cut;
            left -= usize::from(take);
            take
        }) {
            self.evicted += 1;
            ended(f, EndReason::Evicted);
        }
    }
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
        midstream: false,
        tcp: TcpTrack::default(),
        icmp: None,
        icmp_first: None,
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
    f.midstream = midstream;
    f.icmp_first = p.icmp.map(|(kind, code)| (kind, code, p.src != client));
    f
}

#[cfg(test)]
mod tests;
