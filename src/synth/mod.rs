//! Synthetic captures for tests, the bundled sample and benchmarks.
//!
//! Nothing in the analysis pipeline depends on this module; it goes the other way round: tests,
//! `examples/gen_sample.rs` and `examples/gen_bench.rs` use it to write capture files whose
//! contents are known exactly.
//!
//! The layers, from the bottom:
//! - [`pcap`]: a streaming classic-pcap writer ([`PcapWriter`]), microsecond or nanosecond.
//! - [`frame`]: one Ethernet frame at a time (TCP, UDP, ICMP/ICMPv6 destination unreachable
//!   quoting another frame), IPv4 or IPv6, all checksums correct (etherparse's `PacketBuilder`).
//! - [`tcp`]: [`TcpConn`], the sequence and acknowledgement numbers of one TCP connection, which
//!   hands out one segment per call (SYN, SYN/ACK, data, FIN, RST, ...).
//! - [`scenario`]: [`Scenario`], a collection of timestamped frames with building blocks
//!   (a whole TCP session, an unanswered / refused / ICMP-blocked attempt, UDP request and
//!   response, one-way UDP, mid-stream TCP) that writes itself to a pcap sorted by time.
//! - [`app`]: application payloads that the building blocks carry (DNS messages, RTP, TPKT,
//!   RVP requests).
//! - [`rng`]: a tiny seeded generator, so that anything random is still reproducible.
//!
//! ```
//! use exflow::synth::{Dir, Scenario, TsPrecision};
//!
//! let mut sc = Scenario::new();
//! let (client, server) = ("10.0.0.10:1100".parse().unwrap(), "10.0.0.2:25".parse().unwrap());
//! let t = 1_000_000_000; // capture time in nanoseconds since the Unix epoch
//! sc.tcp(client, server, t)
//!     .handshake()
//!     .send(Dir::ToClient, b"220 mail ESMTP\r\n")
//!     .send(Dir::ToServer, b"QUIT\r\n")
//!     .send(Dir::ToClient, b"221 bye\r\n")
//!     .close();
//! sc.tcp_unanswered(client, "10.0.0.3:25".parse().unwrap(), t, 3);
//! let pcap: Vec<u8> = sc.to_pcap(TsPrecision::Nano);
//! assert_eq!(&pcap[..4], &0xa1b2_3c4d_u32.to_le_bytes());
//! ```

pub mod app;
pub mod frame;
pub mod pcap;
pub mod rng;
pub mod scenario;
pub mod tcp;

#[cfg(test)]
mod tests;

pub use frame::{FrameOpts, Unreachable};
pub use pcap::{PcapWriter, TsPrecision};
pub use rng::SplitMix64;
pub use scenario::{Scenario, TcpSession, Timing};
pub use tcp::TcpConn;

use crate::packet::Nanos;

/// One Ethernet frame and the capture time it is stamped with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts: Nanos,
    /// The whole frame, Ethernet header first.
    pub data: Vec<u8>,
}

/// Direction of a segment or datagram within a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the client (the side that sent the SYN, or the first datagram) to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl Dir {
    /// The other direction.
    pub fn reverse(self) -> Dir {
        match self {
            Dir::ToServer => Dir::ToClient,
            Dir::ToClient => Dir::ToServer,
        }
    }
}

/// One second in [`Nanos`].
pub const SECOND: Nanos = 1_000_000_000;
/// One millisecond in [`Nanos`].
pub const MILLI: Nanos = 1_000_000;
/// One microsecond in [`Nanos`].
pub const MICRO: Nanos = 1_000;
