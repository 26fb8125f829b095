//! The small `Copy` description of one packet that flows down the pipeline.
//!
//! `source` yields [`RawPacket`]s (a borrowed frame plus capture metadata); `decode` turns one into
//! a [`Packet`], which borrows only its transport payload. Nothing here is kept in the flow table:
//! later stages copy the fields they need (STYLE.md, "borrow at the edge, own in the table").

use std::fmt;
use std::net::IpAddr;

/// Capture time in nanoseconds since the Unix epoch. All expiry and lifetimes use this clock.
pub type Nanos = i64;

/// One captured frame as read from a capture file or a live interface.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// Capture timestamp.
    pub ts: Nanos,
    /// `LINKTYPE_*` value from the pcap link-type registry (1 = Ethernet, 113 = Linux SLL, ...).
    pub link_type: u32,
    /// The captured bytes (may be shorter than `wire_len` when the snap length cut it).
    pub data: &'a [u8],
    /// The frame's original length on the wire.
    pub wire_len: u32,
}

/// Transport protocol of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMP or ICMPv6 messages that are not errors attributed to another flow (echo, ...).
    Icmp,
    /// Any other IP protocol number (GRE, ESP, OSPF, ...): counted, never classified.
    Other(u8),
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Other(_) => "ip",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proto::Other(n) => write!(f, "ip/{n}"),
            p => f.write_str(p.as_str()),
        }
    }
}

/// An IP address and a port (0 where the protocol has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl Endpoint {
    pub fn new(ip: IpAddr, port: u16) -> Self {
        Endpoint { ip, port }
    }
}

impl fmt::Display for Endpoint {
    /// `a.b.c.d:port` or `[v6]:port`. An IPv4 endpoint is written into a buffer of its own and
    /// handed over at once: through `write!` it took about 1 600 instructions, and every flow
    /// `--flows` lists has two.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            IpAddr::V4(ip) => {
                let mut buf = [0u8; 21];
                let mut n = 0;
                for (i, octet) in ip.octets().into_iter().enumerate() {
                    if i > 0 {
                        n = put_byte(&mut buf, n, b'.');
                    }
                    n = put_decimal(&mut buf, n, u32::from(octet));
                }
                n = put_byte(&mut buf, n, b':');
                n = put_decimal(&mut buf, n, u32::from(self.port));
                f.write_str(std::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or("?"))
            }
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// Writes `b` at `buf[at]` (if it fits) and returns the next position.
fn put_byte(buf: &mut [u8], at: usize, b: u8) -> usize {
    if let Some(c) = buf.get_mut(at) {
        *c = b;
    }
    at + 1
}

/// Writes `v` in decimal at `buf[at..]` (nothing if it does not fit) and returns the next
/// position.
fn put_decimal(buf: &mut [u8], at: usize, v: u32) -> usize {
    let v = u64::from(v);
    let end = at + crate::bytes::decimal_len(v);
    if let Some(digits) = buf.get_mut(at..end) {
        crate::bytes::put_digits(digits, v);
    }
    end
}

/// TCP header flag bits, as in the header's flags byte.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// The five values that name a unidirectional conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    pub proto: Proto,
    pub src: Endpoint,
    pub dst: Endpoint,
}

/// ICMP for IPv4 (IP protocol 1) or ICMPv6 (58).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpVersion {
    V4,
    V6,
}

/// An ICMP / ICMPv6 destination-unreachable message and the packet it quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpUnreachable {
    /// ICMPv6 (type 1) rather than ICMPv4 (type 3).
    pub v6: bool,
    /// The code (v4: 3 port unreachable, 13 administratively prohibited, ...; v6: 1 admin-prohibited, 4 port).
    pub code: u8,
    /// The quoted packet's own five-tuple, as its sender sent it.
    pub quoted: FiveTuple,
}

impl IcmpUnreachable {
    /// True for the codes a filtering firewall answers with.
    pub fn is_admin_prohibited(&self) -> bool {
        is_admin_prohibited(self.v6, self.code)
    }
}

/// ICMPv4 "fragmentation needed" (code 4): path-MTU discovery, not a verdict on the flow it
/// quotes. The decoder leaves such messages ordinary ICMP ([`Packet::unreachable`] unset).
pub fn is_fragmentation_needed(v6: bool, code: u8) -> bool {
    !v6 && code == 4
}

/// True for the destination-unreachable codes a filtering firewall answers with: ICMPv4 9, 10
/// (network / host administratively prohibited) and 13 (communication administratively
/// prohibited), ICMPv6 1.
pub fn is_admin_prohibited(v6: bool, code: u8) -> bool {
    if v6 {
        code == 1
    } else {
        matches!(code, 9 | 10 | 13)
    }
}

/// IP fragmentation of a packet (IPv4 or IPv6 fragment header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    pub id: u32,
    /// Offset of this fragment's data in bytes.
    pub offset: u16,
    pub more: bool,
}

/// One decoded packet: the fields the flow table and the classifiers need.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Packet<'a> {
    pub ts: Nanos,
    /// Wire length of the whole frame (what the report's `bytes` add up).
    pub wire_len: u32,
    pub proto: Proto,
    /// Source and destination. Ports are 0 for ICMP/other protocols and for non-first fragments
    /// (the pipeline's fragment tracker fills them in).
    pub src: Endpoint,
    pub dst: Endpoint,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    pub seq: u32,
    pub ack: u32,
    /// TCP window field as sent (unscaled; 0 for other protocols).
    pub window: u16,
    /// Captured transport payload (may be cut short by the snap length). Empty for non-first
    /// fragments.
    pub payload: &'a [u8],
    /// Set (to the ICMP version) when this is an ICMP destination-unreachable message whose
    /// quote is readable and which is a verdict on the quoted flow (not a path-MTU "fragmentation
    /// needed", which stays ordinary ICMP): it belongs to that flow, which
    /// [`quoted`](Self::quoted) reads from the payload again. Kept here, the quoted five-tuple made every packet 40 bytes
    /// larger, and every packet is moved on its way to the flow table (README, Benchmarks).
    pub unreachable: Option<IcmpVersion>,
    /// Set when the IP packet is a fragment.
    pub fragment: Option<Fragment>,
    /// ICMP type and code, for ICMP and ICMPv6 messages (Community ID maps them to ports).
    pub icmp: Option<(u8, u8)>,
}

impl Packet<'_> {
    /// The destination-unreachable message and the packet it quotes, if this is one
    /// ([`unreachable`](Self::unreachable) is set): read from the payload again, as the decoder
    /// read it.
    #[inline]
    pub fn quoted(&self) -> Option<IcmpUnreachable> {
        // Every packet asks; nearly every one is answered here, in line.
        let version = self.unreachable?;
        self.read_quote(version)
    }

    #[inline(never)]
    fn read_quote(&self, version: IcmpVersion) -> Option<IcmpUnreachable> {
        let (_, code) = self.icmp?;
        Some(IcmpUnreachable {
            v6: version == IcmpVersion::V6,
            code,
            quoted: crate::decode::quoted_flow(self.payload)?,
        })
    }

    /// True for a non-first IP fragment, which carries no transport header.
    pub fn is_trailing_fragment(&self) -> bool {
        matches!(self.fragment, Some(f) if f.offset > 0)
    }
}

/// Packets for unit tests, from `"ip:port"` strings.
#[cfg(test)]
pub(crate) mod testkit {
    use super::{Endpoint, Nanos, Packet, Proto};

    /// `"10.0.0.1:25"` (or `"[::1]:25"`) as an endpoint.
    pub(crate) fn ep(s: &str) -> Endpoint {
        let (ip, port) = s.rsplit_once(':').expect("ip:port");
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        Endpoint::new(ip.parse().expect("an IP"), port.parse().expect("a port"))
    }

    /// A TCP segment from `src` to `dst` with `flags`, sequence number `seq` and `payload`.
    pub(crate) fn tcp<'a>(
        ts: Nanos,
        src: &str,
        dst: &str,
        flags: u8,
        seq: u32,
        payload: &'a [u8],
    ) -> Packet<'a> {
        Packet {
            ts,
            wire_len: 60 + payload.len() as u32,
            proto: Proto::Tcp,
            src: ep(src),
            dst: ep(dst),
            tcp_flags: flags,
            seq,
            ack: 0,
            window: 0,
            payload,
            unreachable: None,
            fragment: None,
            icmp: None,
        }
    }
}

/// Every packet is moved from the decoder into a read-ahead ring or a batch on its way to the
/// flow table: it stays small (README, Benchmarks). An ICMP error's quote is read again from
/// the payload ([`Packet::quoted`]), not carried: with it, a packet was 136 bytes.
#[test]
fn a_packet_stays_small() {
    use std::mem::size_of;
    let sizes = [
        ("Packet", size_of::<Packet<'_>>()),
        (
            "Result<Packet, SkipReason>",
            size_of::<Result<Packet<'_>, crate::decode::SkipReason>>(),
        ),
    ];
    for (what, size) in sizes {
        eprintln!("{what}: {size} bytes");
        assert!(size <= 96, "{what} is {size} bytes, more than 96");
    }
}

#[cfg(test)]
mod endpoint_text {
    use super::*;

    proptest::proptest! {
        /// An endpoint reads as `write!` wrote it: `a.b.c.d:port`, `[v6]:port`.
        #[test]
        fn an_endpoint_reads_as_write_wrote_it(
            v4 in proptest::prelude::any::<u32>(),
            v6 in proptest::prelude::any::<u128>(),
            port in proptest::prelude::any::<u16>(),
        ) {
            let ip4 = std::net::Ipv4Addr::from(v4);
            let e = Endpoint::new(IpAddr::V4(ip4), port);
            proptest::prop_assert_eq!(e.to_string(), format!("{ip4}:{port}"));
            let ip6 = std::net::Ipv6Addr::from(v6);
            let e = Endpoint::new(IpAddr::V6(ip6), port);
            proptest::prop_assert_eq!(e.to_string(), format!("[{ip6}]:{port}"));
        }
    }

    #[test]
    fn endpoints_at_the_edges_read_whole() {
        let e = |ip: [u8; 4], port| Endpoint::new(IpAddr::from(ip), port).to_string();
        assert_eq!(e([255, 255, 255, 255], 65535), "255.255.255.255:65535");
        assert_eq!(e([0, 0, 0, 0], 0), "0.0.0.0:0");
        assert_eq!(e([10, 0, 100, 9], 25), "10.0.100.9:25");
    }
}
