//! [`TcpConn`]: the sequence-number bookkeeping of one TCP connection.
//!
//! Each call returns one segment and advances the sender's next sequence number by what the
//! segment consumes (SYN and FIN one, data its length). Acknowledgement numbers always cover
//! everything the other side has sent so far, as if every segment arrived. Time is the
//! caller's: every call takes the frame's timestamp.

use std::net::SocketAddr;

use super::frame::{tcp_frame, FrameOpts, TcpSegment};
use super::{Dir, Frame};
use crate::packet::{tcp_flags::*, Nanos};

/// MSS announced in SYNs over Ethernet.
pub const ETHERNET_MSS: u16 = 1460;

/// Receive window both sides announce (Windows 2000's default for Ethernet, 12 × 1460).
pub const DEFAULT_WINDOW: u16 = 17_520;

/// One TCP connection between a client (the SYN's sender) and a server.
#[derive(Clone, Debug)]
pub struct TcpConn {
    client: SocketAddr,
    server: SocketAddr,
    opts: FrameOpts,
    client_isn: u32,
    server_isn: u32,
    /// Next sequence number each side sends: `[client, server]`.
    next: [u32; 2],
    ip_id: [u16; 2],
    window: u16,
}

impl TcpConn {
    /// A connection whose sides pick these initial sequence numbers. Until a SYN or SYN/ACK is
    /// made, each side's next sequence number is its ISN + 1, so a connection that starts
    /// with [`TcpConn::data`] looks like one picked up mid-stream.
    pub fn new(client: SocketAddr, server: SocketAddr, client_isn: u32, server_isn: u32) -> Self {
        TcpConn {
            client,
            server,
            opts: FrameOpts::default(),
            client_isn,
            server_isn,
            next: [client_isn.wrapping_add(1), server_isn.wrapping_add(1)],
            // IP ids start somewhere different for each connection, like per-host counters.
            ip_id: [(client_isn >> 16) as u16, (server_isn >> 16) as u16],
            window: DEFAULT_WINDOW,
        }
    }

    /// Uses these link/IP settings for all following segments.
    pub fn with_opts(mut self, opts: FrameOpts) -> Self {
        self.opts = opts;
        self
    }

    pub fn client(&self) -> SocketAddr {
        self.client
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    pub fn client_isn(&self) -> u32 {
        self.client_isn
    }

    pub fn server_isn(&self) -> u32 {
        self.server_isn
    }

    /// The sequence number the next segment in `dir` carries.
    pub fn next_seq(&self, dir: Dir) -> u32 {
        self.next[side(dir)]
    }

    /// The client's SYN (with MSS and SACK-permitted options). Call it again for a
    /// retransmission: it carries the same ISN.
    pub fn syn(&mut self, ts: Nanos) -> Frame {
        self.next[0] = self.client_isn.wrapping_add(1);
        let seg = TcpSegment {
            seq: self.client_isn,
            ack: 0,
            flags: SYN,
            window: self.window,
            mss: Some(ETHERNET_MSS),
        };
        self.emit(Dir::ToServer, ts, seg, &[])
    }

    /// The server's SYN/ACK.
    pub fn syn_ack(&mut self, ts: Nanos) -> Frame {
        self.next[1] = self.server_isn.wrapping_add(1);
        let seg = TcpSegment {
            seq: self.server_isn,
            ack: self.client_isn.wrapping_add(1),
            flags: SYN | ACK,
            window: self.window,
            mss: Some(ETHERNET_MSS),
        };
        self.emit(Dir::ToClient, ts, seg, &[])
    }

    /// The server's answer to a SYN on a closed port: RST/ACK with sequence number 0
    /// acknowledging the SYN, as Windows and Linux send it.
    pub fn refuse(&mut self, ts: Nanos) -> Frame {
        let seg = TcpSegment {
            seq: 0,
            ack: self.client_isn.wrapping_add(1),
            flags: RST | ACK,
            window: 0,
            mss: None,
        };
        self.emit(Dir::ToClient, ts, seg, &[])
    }

    /// A pure ACK in `dir`.
    pub fn ack(&mut self, dir: Dir, ts: Nanos) -> Frame {
        self.segment(dir, ts, ACK, &[])
    }

    /// A data segment (PSH/ACK) in `dir`. Keep `payload` within the MSS for realism;
    /// [`crate::synth::TcpSession::send`] splits longer messages.
    pub fn data(&mut self, dir: Dir, ts: Nanos, payload: &[u8]) -> Frame {
        self.segment(dir, ts, PSH | ACK, payload)
    }

    /// `dir`'s last `payload.len()` bytes sent again (a retransmission): same sequence number,
    /// nothing advances.
    pub fn resend(&mut self, dir: Dir, ts: Nanos, payload: &[u8]) -> Frame {
        let me = side(dir);
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let seg = TcpSegment {
            seq: self.next[me].wrapping_sub(len),
            ack: self.next[1 - me],
            flags: ACK,
            window: self.window,
            mss: None,
        };
        self.emit(dir, ts, seg, payload)
    }

    /// FIN/ACK in `dir`.
    pub fn fin(&mut self, dir: Dir, ts: Nanos) -> Frame {
        self.segment(dir, ts, FIN | ACK, &[])
    }

    /// RST/ACK in `dir`, aborting an established connection.
    pub fn rst(&mut self, dir: Dir, ts: Nanos) -> Frame {
        let seg = TcpSegment {
            seq: self.next[side(dir)],
            ack: self.next[side(dir.reverse())],
            flags: RST | ACK,
            window: 0,
            mss: None,
        };
        self.emit(dir, ts, seg, &[])
    }

    /// Any segment in `dir` at the sender's next sequence number, acknowledging everything the
    /// other side sent. Advances the sequence number by the payload (and one for SYN or FIN).
    pub fn segment(&mut self, dir: Dir, ts: Nanos, flags: u8, payload: &[u8]) -> Frame {
        let me = side(dir);
        let seg = TcpSegment {
            seq: self.next[me],
            ack: self.next[1 - me],
            flags,
            window: self.window,
            mss: None,
        };
        let consumed = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        self.next[me] = self.next[me].wrapping_add(consumed);
        self.emit(dir, ts, seg, payload)
    }

    fn emit(&mut self, dir: Dir, ts: Nanos, seg: TcpSegment, payload: &[u8]) -> Frame {
        let me = side(dir);
        let (src, dst) = match dir {
            Dir::ToServer => (self.client, self.server),
            Dir::ToClient => (self.server, self.client),
        };
        let id = self.ip_id[me];
        self.ip_id[me] = id.wrapping_add(1);
        Frame {
            ts,
            data: tcp_frame(&self.opts, id, src, dst, &seg, payload),
        }
    }
}

fn side(dir: Dir) -> usize {
    match dir {
        Dir::ToServer => 0,
        Dir::ToClient => 1,
    }
}
