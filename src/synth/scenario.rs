//! [`Scenario`]: a set of timestamped frames built from conversation-sized building blocks, and
//! written to a pcap in time order.
//!
//! Every building block takes endpoints as `SocketAddr` (the client, i.e. the side that starts,
//! first), a start time in nanoseconds, appends its frames and returns the time of its last
//! frame, so blocks can be chained or interleaved freely: the frames are sorted (stably) only
//! when written. Initial sequence numbers come from the scenario's seeded generator, so the same
//! calls always give the same bytes.
//!
//! Timing model ([`Timing`]): a reply or acknowledgement from the other side comes one `rtt`
//! after the frame it answers; consecutive frames from the same side are `gap` apart.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use super::frame::{icmp_unreachable_frame, udp_frame, FrameOpts, Unreachable};
use super::pcap::{PcapWriter, TsPrecision};
use super::rng::SplitMix64;
use super::tcp::{TcpConn, ETHERNET_MSS};
use super::{Dir, Frame, MICRO, MILLI, SECOND};
use crate::packet::{tcp_flags, Nanos};

/// Seed of [`Scenario::new`].
pub const DEFAULT_SEED: u64 = 0x4578_6368_616e_6765; // "Exchange"

/// How far apart the frames of a conversation are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Round trip: from a frame to the other side's answer.
    pub rtt: Nanos,
    /// Between back-to-back frames from the same side.
    pub gap: Nanos,
}

impl Default for Timing {
    /// A LAN: 1 ms round trip, 100 µs between a side's own frames.
    fn default() -> Self {
        Timing {
            rtt: MILLI,
            gap: 100 * MICRO,
        }
    }
}

/// A collection of frames under construction.
#[derive(Clone, Debug)]
pub struct Scenario {
    frames: Vec<Frame>,
    opts: FrameOpts,
    timing: Timing,
    rng: SplitMix64,
    ip_id: u16,
}

impl Default for Scenario {
    fn default() -> Self {
        Self::new()
    }
}

impl Scenario {
    /// An empty scenario with [`DEFAULT_SEED`], default frame options and LAN timing.
    pub fn new() -> Self {
        Self::with_seed(DEFAULT_SEED)
    }

    pub fn with_seed(seed: u64) -> Self {
        Scenario {
            frames: Vec::new(),
            opts: FrameOpts::default(),
            timing: Timing::default(),
            rng: SplitMix64::new(seed),
            ip_id: 0x1000,
        }
    }

    /// Frame options for the building blocks called from now on.
    pub fn set_opts(&mut self, opts: FrameOpts) -> &mut Self {
        self.opts = opts;
        self
    }

    pub fn opts(&self) -> FrameOpts {
        self.opts
    }

    /// Timing for the building blocks called from now on.
    pub fn set_timing(&mut self, timing: Timing) -> &mut Self {
        self.timing = timing;
        self
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// The scenario's generator (ISNs come from it too).
    pub fn rng(&mut self) -> &mut SplitMix64 {
        &mut self.rng
    }

    /// Adds a frame made elsewhere.
    pub fn push(&mut self, frame: Frame) {
        self.frames.push(frame);
    }

    /// The frames so far, in the order they were added (or sorted, after [`Scenario::sort`]).
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Sorts the frames by time; frames with equal times keep the order they were added in.
    pub fn sort(&mut self) {
        self.frames.sort_by_key(|f| f.ts);
    }

    /// The frames, sorted by time.
    pub fn into_frames(mut self) -> Vec<Frame> {
        self.sort();
        self.frames
    }

    /// Writes a pcap file of the frames sorted by time; returns how many were written.
    pub fn write_pcap<W: Write>(&mut self, out: W, precision: TsPrecision) -> io::Result<u64> {
        self.sort();
        let mut w = PcapWriter::new(out, precision)?;
        for f in &self.frames {
            w.write_frame(f)?;
        }
        w.flush()?;
        Ok(w.packets())
    }

    /// The pcap file as bytes (see [`Scenario::write_pcap`]).
    pub fn to_pcap(&mut self, precision: TsPrecision) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_pcap(&mut out, precision)
            .expect("writing to a Vec cannot fail");
        out
    }

    fn next_ip_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }

    /// A TCP connection from `client` to `server` whose first frame is at `start`; nothing is
    /// sent until the session's methods are called. Without [`TcpSession::handshake`] it is a
    /// connection seen mid-stream.
    pub fn tcp(&mut self, client: SocketAddr, server: SocketAddr, start: Nanos) -> TcpSession<'_> {
        let conn = TcpConn::new(client, server, self.rng.next_u32(), self.rng.next_u32())
            .with_opts(self.opts);
        TcpSession {
            timing: self.timing,
            sc: self,
            conn,
            now: start,
            last: None,
            unacked: None,
            auto_ack: true,
        }
    }

    /// A whole TCP session: handshake, the messages in order (each split at the MSS and
    /// acknowledged), then a FIN exchange started by the client. Returns the last frame's time.
    pub fn tcp_session(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Nanos,
        messages: &[(Dir, &[u8])],
    ) -> Nanos {
        let mut s = self.tcp(client, server, start);
        s.handshake().messages(messages).close();
        s.now()
    }

    /// A connection attempt nobody answers: the SYN, then `retransmissions` copies with the
    /// same ISN after exponential backoff from one second (at +1 s, +3 s, +7 s, ...: 1, 2, 4 s
    /// apart). Returns the last SYN's time.
    pub fn tcp_unanswered(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Nanos,
        retransmissions: u32,
    ) -> Nanos {
        let mut s = self.tcp(client, server, start);
        let mut t = start;
        let mut backoff = SECOND;
        for i in 0..=retransmissions {
            if i > 0 {
                t += backoff;
                backoff *= 2;
            }
            let f = s.conn.syn(t);
            s.sc.push(f);
        }
        t
    }

    /// A connection refused by the server: SYN, then RST/ACK one `rtt` later.
    pub fn tcp_refused(&mut self, client: SocketAddr, server: SocketAddr, start: Nanos) -> Nanos {
        let rtt = self.timing.rtt;
        let mut s = self.tcp(client, server, start);
        let syn = s.conn.syn(start);
        let rst = s.conn.refuse(start + rtt);
        s.sc.push(syn);
        s.sc.push(rst);
        start + rtt
    }

    /// A connection blocked by a firewall: the client's SYN, then, half an `rtt` later, an ICMP
    /// "communication administratively prohibited" from `router` quoting it (ICMPv4 type 3
    /// code 13, or ICMPv6 type 1 code 1 for IPv6 endpoints). Returns the ICMP message's time.
    pub fn tcp_icmp_blocked(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        router: IpAddr,
        start: Nanos,
    ) -> Nanos {
        let t = start + self.timing.rtt / 2;
        let syn = self.tcp(client, server, start).conn.syn(start);
        self.icmp_unreachable(router, &syn.data, Unreachable::AdminProhibited, t);
        self.push(syn);
        t
    }

    /// An ICMP destination-unreachable from `router` at `ts`, quoting `offending` (a frame's
    /// bytes) and sent to its sender. Returns false (and adds nothing) when `offending` is not
    /// an IP frame of `router`'s family.
    pub fn icmp_unreachable(
        &mut self,
        router: IpAddr,
        offending: &[u8],
        why: Unreachable,
        ts: Nanos,
    ) -> bool {
        let id = self.next_ip_id();
        match icmp_unreachable_frame(&self.opts, id, router, offending, why) {
            Some(data) => {
                self.push(Frame { ts, data });
                true
            }
            None => false,
        }
    }

    /// TCP data in both directions without a handshake or close: a connection that was open
    /// before the capture started. Returns the last frame's time.
    pub fn tcp_midstream(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Nanos,
        messages: &[(Dir, &[u8])],
    ) -> Nanos {
        let mut s = self.tcp(client, server, start);
        s.messages(messages).finish_acks();
        s.now()
    }

    /// One UDP datagram.
    pub fn udp(&mut self, src: SocketAddr, dst: SocketAddr, ts: Nanos, payload: &[u8]) {
        let id = self.next_ip_id();
        let data = udp_frame(&self.opts, id, src, dst, payload);
        self.push(Frame { ts, data });
    }

    /// A UDP request from `client` and the server's response one `rtt` later. Returns the
    /// response's time.
    pub fn udp_exchange(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        start: Nanos,
        request: &[u8],
        response: &[u8],
    ) -> Nanos {
        let t = start + self.timing.rtt;
        self.udp(client, server, start, request);
        self.udp(server, client, t, response);
        t
    }

    /// Datagrams from `src` to `dst`, `interval` apart, never answered. Returns the last one's
    /// time.
    pub fn udp_one_way(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        start: Nanos,
        payloads: &[&[u8]],
        interval: Nanos,
    ) -> Nanos {
        let mut t = start;
        for (i, p) in payloads.iter().enumerate() {
            t = start + interval * i as Nanos;
            self.udp(src, dst, t, p);
        }
        t
    }
}

/// One TCP connection being written into a [`Scenario`]; see [`Scenario::tcp`]. Methods chain
/// and each advances the session's clock to the last frame it added.
#[derive(Debug)]
pub struct TcpSession<'s> {
    sc: &'s mut Scenario,
    conn: TcpConn,
    timing: Timing,
    now: Nanos,
    /// Direction of the last frame, `None` before the first.
    last: Option<Dir>,
    /// Data sent in this direction that the other side has not acknowledged yet.
    unacked: Option<Dir>,
    auto_ack: bool,
}

impl TcpSession<'_> {
    /// Time of the last frame added (the start time before any).
    pub fn now(&self) -> Nanos {
        self.now
    }

    /// The sequence-number state, e.g. to add hand-made segments with [`TcpSession::push`].
    pub fn conn(&mut self) -> &mut TcpConn {
        &mut self.conn
    }

    /// Adds a frame (made with [`TcpSession::conn`]) and moves the clock to its time.
    pub fn push(&mut self, frame: Frame, dir: Dir) -> &mut Self {
        self.now = self.now.max(frame.ts);
        self.last = Some(dir);
        self.sc.push(frame);
        self
    }

    /// Overrides the timing for this session (a WAN peer, a slow server, ...).
    pub fn timing(&mut self, timing: Timing) -> &mut Self {
        self.timing = timing;
        self
    }

    /// Stops the other side from acknowledging data: with no handshake, a connection seen from
    /// one side only.
    pub fn one_way(&mut self) -> &mut Self {
        self.auto_ack = false;
        self
    }

    /// Moves the clock forward (after acknowledging outstanding data).
    pub fn wait(&mut self, d: Nanos) -> &mut Self {
        self.finish_acks();
        self.now += d;
        self
    }

    /// SYN, SYN/ACK one `rtt` later, then the client's ACK.
    pub fn handshake(&mut self) -> &mut Self {
        let t = self.next_ts(Dir::ToServer);
        let f = self.conn.syn(t);
        self.push(f, Dir::ToServer);
        let f = self.conn.syn_ack(t + self.timing.rtt);
        self.push(f, Dir::ToClient);
        let f = self
            .conn
            .ack(Dir::ToServer, t + self.timing.rtt + self.timing.gap);
        self.push(f, Dir::ToServer)
    }

    /// One message in `dir`, split into MSS-sized segments (PSH on the last). The receiver
    /// acknowledges every second full segment at once, and the rest with its next message or,
    /// failing that, a pure ACK one `rtt` later.
    pub fn send(&mut self, dir: Dir, payload: &[u8]) -> &mut Self {
        if self.unacked == Some(dir) {
            self.ack_from(dir.reverse());
        }
        let mut t = self.next_ts(dir);
        let count = payload.len().div_ceil(usize::from(ETHERNET_MSS));
        for (i, chunk) in payload.chunks(usize::from(ETHERNET_MSS)).enumerate() {
            let last = i + 1 == count;
            let flags = if last {
                tcp_flags::PSH | tcp_flags::ACK
            } else {
                tcp_flags::ACK
            };
            let f = self.conn.segment(dir, t, flags, chunk);
            self.push(f, dir);
            if self.auto_ack && i % 2 == 1 && !last {
                let f = self.conn.ack(dir.reverse(), t + self.timing.gap / 2);
                self.push(f, dir.reverse());
            }
            t += self.timing.gap;
        }
        if count > 0 {
            self.last = Some(dir);
            self.unacked = self.auto_ack.then_some(dir);
        }
        self
    }

    /// Several messages in order (see [`TcpSession::send`]).
    pub fn messages(&mut self, messages: &[(Dir, &[u8])]) -> &mut Self {
        for (dir, payload) in messages {
            self.send(*dir, payload);
        }
        self
    }

    /// Like [`TcpSession::messages`] for owned payloads, such as [`super::app::smtp_dialogue`]'s.
    pub fn dialogue<P: AsRef<[u8]>>(&mut self, messages: &[(Dir, P)]) -> &mut Self {
        for (dir, payload) in messages {
            self.send(*dir, payload.as_ref());
        }
        self
    }

    /// Adds the pure ACK for data not acknowledged yet, if any.
    pub fn finish_acks(&mut self) -> &mut Self {
        if let Some(dir) = self.unacked {
            self.ack_from(dir.reverse());
        }
        self
    }

    /// The client closes: FIN/ACK, the server's FIN/ACK, the client's last ACK.
    pub fn close(&mut self) -> &mut Self {
        self.close_from(Dir::ToServer)
    }

    /// `dir`'s side closes first: FIN/ACK, the other side's FIN/ACK one `rtt` later, then the
    /// last ACK.
    pub fn close_from(&mut self, dir: Dir) -> &mut Self {
        let t = self.next_ts(dir);
        let f = self.conn.fin(dir, t);
        self.push(f, dir);
        let f = self.conn.fin(dir.reverse(), t + self.timing.rtt);
        self.push(f, dir.reverse());
        let f = self.conn.ack(dir, t + self.timing.rtt + self.timing.gap);
        self.unacked = None;
        self.push(f, dir)
    }

    /// `dir`'s side aborts the connection with RST/ACK.
    pub fn reset(&mut self, dir: Dir) -> &mut Self {
        let t = self.next_ts(dir);
        let f = self.conn.rst(dir, t);
        self.unacked = None;
        self.push(f, dir)
    }

    fn ack_from(&mut self, dir: Dir) {
        let t = self.next_ts(dir);
        let f = self.conn.ack(dir, t);
        self.unacked = None;
        self.push(f, dir);
    }

    /// When the next frame in `dir` goes out: at the start for the first frame, `gap` after
    /// the same side's previous frame, one `rtt` after the other side's.
    fn next_ts(&self, dir: Dir) -> Nanos {
        match self.last {
            None => self.now,
            Some(d) if d == dir => self.now + self.timing.gap,
            Some(_) => self.now + self.timing.rtt,
        }
    }
}
