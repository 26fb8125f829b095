//! Per-flow TCP facts and the rules that turn them into one outcome (DESIGN.md, "Flow outcomes").

use serde::{Deserialize, Serialize};

use super::health::{Side, TcpHealth};
use super::Flow;
use crate::packet::{tcp_flags, Nanos, Packet, Proto};

/// How a flow ended. Every flow has exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Handshake completed, or traffic went both ways.
    Established,
    /// A TCP connection attempt that never got any reply.
    Unanswered,
    /// The SYN was answered by a RST.
    Refused,
    /// An ICMP destination-unreachable quoted the flow and nothing else answered.
    IcmpUnreachable,
    /// Packets in one direction only, and not a TCP attempt (UDP without reply, TCP seen
    /// mid-stream from one side, or a client whose ACKs prove replies the capture did not see).
    OneWay,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Established,
        Outcome::Unanswered,
        Outcome::Refused,
        Outcome::IcmpUnreachable,
        Outcome::OneWay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Established => "established",
            Outcome::Unanswered => "unanswered",
            Outcome::Refused => "refused",
            Outcome::IcmpUnreachable => "icmp_unreachable",
            Outcome::OneWay => "one_way",
        }
    }

    /// True for the outcomes that mean the connection did not work.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Unanswered | Outcome::Refused | Outcome::IcmpUnreachable
        )
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// An open flow keeps this outcome once it has it (`unanswered` and `one_way` wait for the
    /// flow to end: a reply may still come).
    pub fn is_final_while_open(self) -> bool {
        matches!(
            self,
            Outcome::Established | Outcome::Refused | Outcome::IcmpUnreachable
        )
    }
}

/// Longest handshake round-trip time taken as one (Linux gives up retransmitting a SYN after
/// about 127 s, Windows after 21 s).
pub const MAX_HANDSHAKE_RTT: Nanos = 130 * 1_000_000_000;

/// TCP facts gathered from a flow's packets.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpTrack {
    /// The client sent a SYN: this flow is a connection attempt.
    pub client_syn: bool,
    /// Client SYNs (first plus retransmissions).
    pub syns: u32,
    /// The client's initial sequence number.
    pub isn: u32,
    pub last_syn_ts: Nanos,
    /// The server answered with SYN-ACK.
    pub synack: bool,
    /// Time from the last SYN before the SYN-ACK to the client's ACK that completed the
    /// handshake, plus one: 8 bytes with its niche, where an `Option<Nanos>` takes 16
    /// ([`handshake_rtt`](Self::handshake_rtt)).
    handshake: Option<std::num::NonZeroU64>,
    /// The client sent a non-SYN segment with ACK set: the server must have replied, even if the
    /// capture did not see it.
    pub client_acked: bool,
    /// RSTs from the server.
    pub server_rsts: u32,
    /// RSTs from the client.
    pub client_rsts: u32,
    pub fin_client: bool,
    pub fin_server: bool,
    /// The flow's start predates the capture (TCP seen without its opening SYN). Here, not in
    /// `Flow`: it fits in this struct's padding.
    pub midstream: bool,
    /// Retransmissions, duplicate ACKs, zero windows, mid-session resets, silences.
    pub health: TcpHealth,
}

impl TcpTrack {
    /// Time from the last SYN before the SYN-ACK to the client's ACK that completed the
    /// handshake (`None`: no handshake completed, or one slower than `MAX_HANDSHAKE_RTT`).
    #[inline]
    pub fn handshake_rtt(&self) -> Option<Nanos> {
        self.handshake
            .and_then(|v| Nanos::try_from(v.get() - 1).ok())
    }

    /// Sets the handshake's round-trip time; one outside `0..=MAX_HANDSHAKE_RTT` is none.
    pub fn set_handshake_rtt(&mut self, rtt: Option<Nanos>) {
        self.handshake = rtt
            .filter(|r| (0..=MAX_HANDSHAKE_RTT).contains(r))
            .and_then(|r| u64::try_from(r).ok())
            .and_then(|r| std::num::NonZeroU64::new(r + 1));
    }

    /// Closed by FIN both ways or by a RST from either side.
    pub fn closed(&self) -> bool {
        self.client_rsts > 0 || self.server_rsts > 0 || (self.fin_client && self.fin_server)
    }
}

/// Updates counters and TCP facts with one packet of this flow.
#[inline]
pub(super) fn update<C>(f: &mut Flow<C>, p: &Packet<'_>) {
    let flags = p.tcp_flags;
    let syn = flags & tcp_flags::SYN != 0;
    let ack = flags & tcp_flags::ACK != 0;
    if p.proto == Proto::Tcp
        && syn
        && !ack
        && !f.from_client(&p.src)
        && !f.tcp.client_syn
        && !f.tcp.synack
    {
        swap_roles(f);
    }
    let from_client = f.from_client(&p.src);
    let since_last = p.ts.saturating_sub(f.last_ts).max(0);
    // Up before this packet: handshake completed, or two-way traffic on a flow caught mid-stream
    // (a SYN answered only by RSTs is a refusal, a SYN-ACK answered by RST a port scan).
    let established = (f.tcp.synack && f.tcp.client_acked)
        || (f.tcp.midstream && f.to_server.packets > 0 && f.to_client.packets > 0);
    if from_client {
        f.to_server.add(p.wire_len);
    } else {
        f.to_client.add(p.wire_len);
    }
    f.last_ts = f.last_ts.max(p.ts);
    f.first_ts = f.first_ts.min(p.ts);
    if p.proto != Proto::Tcp || p.is_trailing_fragment() {
        return;
    }
    let t = &mut f.tcp;
    let side = if from_client {
        Side::Client
    } else {
        Side::Server
    };
    let fin_seen = t.fin_client || t.fin_server;
    let rtt = t.handshake_rtt();
    let since_first = p.ts.saturating_sub(f.first_ts).max(0);
    t.health
        .packet(p, side, since_last, since_first, established, fin_seen, rtt);
    if from_client {
        if syn && !ack {
            if !t.client_syn {
                t.isn = p.seq;
            }
            t.client_syn = true;
            t.syns += 1;
            t.last_syn_ts = p.ts;
        } else if ack && !syn {
            if t.synack && t.handshake_rtt().is_none() && t.syns > 0 {
                let rtt = p.ts.saturating_sub(t.last_syn_ts);
                // A "handshake" slower than any SYN retransmission schedule spans a capture-time
                // jump (concatenated captures, a corrected clock), not a network round trip
                // (`set_handshake_rtt` leaves it unset).
                t.set_handshake_rtt(Some(rtt));
            }
            t.client_acked = true;
        }
        if flags & tcp_flags::RST != 0 {
            t.client_rsts += 1;
        }
        if flags & tcp_flags::FIN != 0 {
            t.fin_client = true;
        }
    } else {
        if syn && ack {
            t.synack = true;
        }
        if flags & tcp_flags::RST != 0 {
            t.server_rsts += 1;
        }
        if flags & tcp_flags::FIN != 0 {
            t.fin_server = true;
        }
    }
}

/// How far a SYN may trail its own answer in a capture (reordering between capture points).
const REORDER_WINDOW: Nanos = 1_000_000_000;

/// The first SYN of a flow came from the side taken for the server (the capture saw its answer,
/// e.g. a RST, first): the SYN's sender is the client after all.
fn swap_roles<C>(f: &mut Flow<C>) {
    std::mem::swap(&mut f.client, &mut f.server);
    std::mem::swap(&mut f.to_server, &mut f.to_client);
    let t = &mut f.tcp;
    std::mem::swap(&mut t.client_rsts, &mut t.server_rsts);
    std::mem::swap(&mut t.fin_client, &mut t.fin_server);
    t.client_acked = false;
    t.health.swap();
    f.tcp.midstream = false;
}

/// True when `p` opens a new connection on the five-tuple of the closed flow `f`: a SYN with a
/// different initial sequence number after FIN or RST.
pub(super) fn is_new_connection<C>(f: &Flow<C>, p: &Packet<'_>) -> bool {
    p.proto == Proto::Tcp
        && p.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
        && f.tcp.closed()
        && !(f.tcp.client_syn && f.from_client(&p.src) && p.seq == f.tcp.isn)
        // The first SYN of a flow whose answer (a RST) was captured just before it belongs to it.
        && !(!f.tcp.client_syn && !f.tcp.synack && p.ts.saturating_sub(f.first_ts) <= REORDER_WINDOW)
}

/// The outcome rules of DESIGN.md, in order of precedence.
pub(super) fn outcome<C>(f: &Flow<C>) -> Outcome {
    let t = &f.tcp;
    let two_way = f.to_server.packets > 0 && f.to_client.packets > 0;
    if f.proto == Proto::Tcp {
        if t.synack {
            return Outcome::Established;
        }
        let only_rsts_back = t.server_rsts > 0 && u64::from(t.server_rsts) == f.to_client.packets;
        if t.client_syn && only_rsts_back {
            return Outcome::Refused;
        }
        if two_way {
            return Outcome::Established;
        }
        if f.icmp_seen().is_some() {
            return Outcome::IcmpUnreachable;
        }
        if t.client_syn && !t.client_acked {
            return Outcome::Unanswered;
        }
        return Outcome::OneWay;
    }
    if two_way {
        Outcome::Established
    } else if f.icmp_seen().is_some() {
        Outcome::IcmpUnreachable
    } else {
        Outcome::OneWay
    }
}
