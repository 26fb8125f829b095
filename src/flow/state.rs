//! Per-flow TCP facts and the rules that turn them into one outcome (DESIGN.md, "Flow outcomes").

use serde::{Deserialize, Serialize};

use super::health::{Side, TcpHealth};
use super::Flow;
use crate::nonmax::NonMaxU32;
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

/// One-bit facts of a TCP flow ([`TcpTrack`]'s `bits`).
mod bit {
    pub const CLIENT_SYN: u16 = 1;
    pub const SYNACK: u16 = 1 << 1;
    pub const CLIENT_ACKED: u16 = 1 << 2;
    pub const FIN_CLIENT: u16 = 1 << 3;
    pub const FIN_SERVER: u16 = 1 << 4;
    pub const MIDSTREAM: u16 = 1 << 5;
    pub const CLIENT_RST: u16 = 1 << 6;
    pub const SERVER_RST: u16 = 1 << 7;
    /// The client sent a packet that was not a RST.
    pub const CLIENT_OTHER: u16 = 1 << 8;
    /// The server sent a packet that was not a RST.
    pub const SERVER_OTHER: u16 = 1 << 9;
}

/// A getter for each one-bit fact of [`TcpTrack`]: `name => BIT;`, with its doc.
macro_rules! facts {
    ($($(#[$doc:meta])* $name:ident => $bit:ident;)*) => {
        $(
            $(#[$doc])*
            #[inline]
            pub fn $name(&self) -> bool {
                self.has(bit::$bit)
            }
        )*
    };
}

/// TCP facts gathered from a flow's packets: 80 bytes, in every flow of the table. The yes/no
/// facts are bits of one word (ten `bool`s took ten bytes, and the RST counts eight where only
/// "any" and "nothing else" are asked), the handshake time is kept to the microsecond (what
/// every report shows).
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpTrack {
    /// Client SYNs (first plus retransmissions).
    pub syns: u32,
    /// The client's initial sequence number.
    pub isn: u32,
    /// The time of the client's last SYN until the handshake completes, then the time of the
    /// client's ACK that completed it ([`handshake_done`](Self::handshake_done)).
    syn_ts: Nanos,
    /// Handshake round-trip time in microseconds ([`handshake_rtt`](Self::handshake_rtt)).
    handshake_us: Option<NonMaxU32>,
    bits: u16,
    /// Retransmissions, duplicate ACKs, zero windows, mid-session resets, silences.
    pub health: TcpHealth,
}

impl TcpTrack {
    #[inline]
    fn has(&self, b: u16) -> bool {
        self.bits & b != 0
    }

    #[inline]
    fn set(&mut self, b: u16, on: bool) {
        if on {
            self.bits |= b;
        } else {
            self.bits &= !b;
        }
    }

    /// Exchanges bits `a` and `b`.
    fn swap_bits(&mut self, a: u16, b: u16) {
        let (had_a, had_b) = (self.has(a), self.has(b));
        self.set(a, had_b);
        self.set(b, had_a);
    }

    facts! {
        /// The client sent a SYN: this flow is a connection attempt.
        client_syn => CLIENT_SYN;
        /// The server answered with SYN-ACK.
        synack => SYNACK;
        /// The client sent a non-SYN segment with ACK set: the server must have replied, even
        /// if the capture did not see it.
        client_acked => CLIENT_ACKED;
        fin_client => FIN_CLIENT;
        fin_server => FIN_SERVER;
        /// The flow's start predates the capture (TCP seen without its opening SYN).
        midstream => MIDSTREAM;
        /// The client sent a RST.
        client_rst => CLIENT_RST;
        /// The server sent a RST.
        server_rst => SERVER_RST;
    }

    /// The server sent RSTs and nothing else.
    #[inline]
    pub fn only_rsts_back(&self) -> bool {
        self.server_rst() && !self.has(bit::SERVER_OTHER)
    }

    pub(super) fn set_midstream(&mut self, on: bool) {
        self.set(bit::MIDSTREAM, on);
    }

    pub(super) fn set_client_syn(&mut self, on: bool) {
        self.set(bit::CLIENT_SYN, on);
    }

    /// Time from the last SYN before the SYN-ACK to the client's ACK that completed the
    /// handshake, to the microsecond (`None`: no handshake completed, or one slower than
    /// `MAX_HANDSHAKE_RTT`).
    #[inline]
    pub fn handshake_rtt(&self) -> Option<Nanos> {
        self.handshake_us
            .map(|us| Nanos::from(us.get()).saturating_mul(1000))
    }

    /// When the handshake completed (the client's ACK), if it did.
    pub fn handshake_done(&self) -> Option<Nanos> {
        self.handshake_us.map(|_| self.syn_ts)
    }

    /// The client's ACK at `ack_ts` completes the handshake begun by the SYN at `syn_ts`; one
    /// slower than `MAX_HANDSHAKE_RTT` (or ahead of its SYN) is not taken.
    fn complete_handshake(&mut self, ack_ts: Nanos) {
        let rtt = ack_ts.saturating_sub(self.syn_ts);
        if !(0..=MAX_HANDSHAKE_RTT).contains(&rtt) {
            return;
        }
        // At most MAX_HANDSHAKE_RTT: 130 000 000 microseconds, well within a u32.
        let Some(us) = u32::try_from(rtt / 1000).ok().and_then(NonMaxU32::new) else {
            return;
        };
        self.handshake_us = Some(us);
        self.syn_ts = ack_ts;
    }

    /// Closed by FIN both ways or by a RST from either side (asked on every packet: two tests
    /// of the one word).
    #[inline]
    pub fn closed(&self) -> bool {
        const FINS: u16 = bit::FIN_CLIENT | bit::FIN_SERVER;
        self.bits & (bit::CLIENT_RST | bit::SERVER_RST) != 0 || self.bits & FINS == FINS
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
        && !f.tcp.client_syn()
        && !f.tcp.synack()
    {
        swap_roles(f);
    }
    let from_client = f.from_client(&p.src);
    let since_last = p.ts.saturating_sub(f.last_ts).max(0);
    // Up before this packet: handshake completed, or two-way traffic on a flow caught mid-stream
    // (a SYN answered only by RSTs is a refusal, a SYN-ACK answered by RST a port scan).
    let established = (f.tcp.synack() && f.tcp.client_acked())
        || (f.tcp.midstream() && f.to_server.packets > 0 && f.to_client.packets > 0);
    let tcp = p.proto == Proto::Tcp && !p.is_trailing_fragment();
    let rst = tcp && flags & tcp_flags::RST != 0;
    if from_client {
        f.to_server.add(p.wire_len);
        f.tcp.bits |= if rst {
            bit::CLIENT_RST
        } else {
            bit::CLIENT_OTHER
        };
    } else {
        f.to_client.add(p.wire_len);
        f.tcp.bits |= if rst {
            bit::SERVER_RST
        } else {
            bit::SERVER_OTHER
        };
    }
    f.last_ts = f.last_ts.max(p.ts);
    f.first_ts = f.first_ts.min(p.ts);
    if !tcp {
        return;
    }
    let t = &mut f.tcp;
    let side = if from_client {
        Side::Client
    } else {
        Side::Server
    };
    let fin_seen = t.fin_client() || t.fin_server();
    let rtt = t.handshake_rtt();
    let since_first = p.ts.saturating_sub(f.first_ts).max(0);
    t.health
        .packet(p, side, since_last, since_first, established, fin_seen, rtt);
    if from_client {
        if syn && !ack {
            if !t.client_syn() {
                t.isn = p.seq;
            }
            t.bits |= bit::CLIENT_SYN;
            t.syns = t.syns.saturating_add(1);
            if t.handshake_us.is_none() {
                t.syn_ts = p.ts;
            }
        } else if ack && !syn {
            if t.synack() && t.handshake_us.is_none() && t.syns > 0 {
                // A "handshake" slower than any SYN retransmission schedule spans a capture-time
                // jump (concatenated captures, a corrected clock), not a network round trip
                // (`complete_handshake` does not take it).
                t.complete_handshake(p.ts);
            }
            t.bits |= bit::CLIENT_ACKED;
        }
        if flags & tcp_flags::FIN != 0 {
            t.bits |= bit::FIN_CLIENT;
        }
    } else {
        if syn && ack {
            t.bits |= bit::SYNACK;
        }
        if flags & tcp_flags::FIN != 0 {
            t.bits |= bit::FIN_SERVER;
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
    t.swap_bits(bit::CLIENT_RST, bit::SERVER_RST);
    t.swap_bits(bit::CLIENT_OTHER, bit::SERVER_OTHER);
    t.swap_bits(bit::FIN_CLIENT, bit::FIN_SERVER);
    t.set(bit::CLIENT_ACKED, false);
    t.set(bit::MIDSTREAM, false);
    t.health.swap();
}

/// True when `p` opens a new connection on the five-tuple of the closed flow `f`: a SYN with a
/// different initial sequence number after FIN or RST.
pub(super) fn is_new_connection<C>(f: &Flow<C>, p: &Packet<'_>) -> bool {
    p.proto == Proto::Tcp
        && p.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
        && f.tcp.closed()
        && !(f.tcp.client_syn() && f.from_client(&p.src) && p.seq == f.tcp.isn)
        // The first SYN of a flow whose answer (a RST) was captured just before it belongs to it.
        && !(!f.tcp.client_syn()
            && !f.tcp.synack()
            && p.ts.saturating_sub(f.first_ts) <= REORDER_WINDOW)
}

/// The outcome rules of DESIGN.md, in order of precedence.
pub(super) fn outcome<C>(f: &Flow<C>) -> Outcome {
    let t = &f.tcp;
    let two_way = f.to_server.packets > 0 && f.to_client.packets > 0;
    if f.proto == Proto::Tcp {
        if t.synack() {
            return Outcome::Established;
        }
        if t.client_syn() && t.only_rsts_back() {
            return Outcome::Refused;
        }
        if two_way {
            return Outcome::Established;
        }
        if f.icmp_seen().is_some() {
            return Outcome::IcmpUnreachable;
        }
        if t.client_syn() && !t.client_acked() {
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
