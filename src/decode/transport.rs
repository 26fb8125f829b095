//! TCP, UDP and ICMP headers, read by hand from the fixed-offset fields exflow needs.
//!
//! etherparse's TCP slice insists on the whole header including options; a capture with a short
//! snap length (tcpdump's old default of 68 bytes) cuts a SYN inside its options, and the ports,
//! flags and sequence numbers are still there. So the fixed 20-byte header is enough here.
//! ICMP destination-unreachable messages quote the offending packet; [`quoted_flow`] reads its
//! five-tuple through the same IP parser as the outer packet.

use super::ip::{self, L3};
use super::link::IpVersion;
use super::{Layer, SkipReason};
use crate::bytes::be16;
use crate::packet::{
    is_fragmentation_needed, Endpoint, FiveTuple, IcmpVersion, Packet, Proto, RawPacket,
};

const TCP: u8 = 6;
const UDP: u8 = 17;
const SCTP: u8 = 132;
const ICMPV4: u8 = 1;
const ICMPV6: u8 = 58;

const TCP_MIN_LEN: usize = 20;
const UDP_LEN: usize = 8;
const ICMP_LEN: usize = 8;

const ICMPV4_ECHO_REPLY: u8 = 0;
const ICMPV4_UNREACHABLE: u8 = 3;
const ICMPV4_ECHO_REQUEST: u8 = 8;
const ICMPV6_UNREACHABLE: u8 = 1;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// What the transport header says; ports are 0 where there are none.
#[derive(Clone, Copy, Default)]
struct L4<'a> {
    src_port: u16,
    dst_port: u16,
    tcp_flags: u8,
    seq: u32,
    ack: u32,
    window: u16,
    payload: &'a [u8],
    unreachable: Option<IcmpVersion>,
    icmp: Option<(u8, u8)>,
}

/// Builds the [`Packet`] from the IP layer's view and the transport header.
///
/// The packet is assembled once, at the end, so that it is written straight into the caller's
/// slot: it is the largest value on the hot path.
#[inline]
pub(super) fn decode<'a>(raw: &RawPacket<'a>, l3: &L3<'a>) -> Result<Packet<'a>, SkipReason> {
    let l4 = if l3.is_trailing_fragment() {
        L4::default()
    } else {
        let b = l3.payload;
        match l3.ip_number {
            TCP => tcp(b)?,
            UDP => udp(b)?,
            ICMPV4 => icmp(b, false)?,
            ICMPV6 => icmp(b, true)?,
            // SCTP's ports keep its associations apart, as Community ID expects; a header cut
            // short leaves them 0.
            SCTP => {
                let (src_port, dst_port) = ports(b).unwrap_or_default();
                L4 {
                    src_port,
                    dst_port,
                    payload: b,
                    ..L4::default()
                }
            }
            _ => L4 {
                payload: b,
                ..L4::default()
            },
        }
    };
    Ok(Packet {
        ts: raw.ts,
        wire_len: raw.wire_len,
        proto: proto(l3.ip_number),
        src: Endpoint::new(l3.src, l4.src_port),
        dst: Endpoint::new(l3.dst, l4.dst_port),
        tcp_flags: l4.tcp_flags,
        seq: l4.seq,
        ack: l4.ack,
        window: l4.window,
        payload: l4.payload,
        unreachable: l4.unreachable,
        fragment: l3.fragment,
        icmp: l4.icmp,
    })
}

/// The flow protocol of an IP protocol number.
fn proto(ip_number: u8) -> Proto {
    match ip_number {
        TCP => Proto::Tcp,
        UDP => Proto::Udp,
        ICMPV4 | ICMPV6 => Proto::Icmp,
        n => Proto::Other(n),
    }
}

fn truncated() -> SkipReason {
    SkipReason::Truncated(Layer::Transport)
}

#[inline]
fn tcp(b: &[u8]) -> Result<L4<'_>, SkipReason> {
    let fixed: &[u8; TCP_MIN_LEN] = b
        .get(..TCP_MIN_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(truncated)?;
    let header_len = usize::from(fixed[12] >> 4) * 4;
    if header_len < TCP_MIN_LEN {
        return Err(SkipReason::Malformed(Layer::Transport));
    }
    Ok(L4 {
        src_port: u16::from_be_bytes([fixed[0], fixed[1]]),
        dst_port: u16::from_be_bytes([fixed[2], fixed[3]]),
        seq: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        ack: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        tcp_flags: fixed[13],
        window: u16::from_be_bytes([fixed[14], fixed[15]]),
        // Options cut by the snap length: the header fields are read, there is no payload.
        payload: b.get(header_len..).unwrap_or_default(),
        unreachable: None,
        icmp: None,
    })
}

#[inline]
fn udp(b: &[u8]) -> Result<L4<'_>, SkipReason> {
    let (Some((src_port, dst_port)), Some(len), Some(data)) =
        (ports(b), be16(b, 4), b.get(UDP_LEN..))
    else {
        return Err(truncated());
    };
    // The UDP length bounds the payload too, unless it is nonsense (or 0, as in jumbograms).
    let len = usize::from(len);
    let payload = match data.get(..len.wrapping_sub(UDP_LEN)) {
        Some(datagram) if len >= UDP_LEN => datagram,
        _ => data,
    };
    Ok(L4 {
        src_port,
        dst_port,
        payload,
        ..L4::default()
    })
}

/// ICMP / ICMPv6: echo messages get their identifier as both ports; destination-unreachable
/// messages get the quoted flow. Other types keep ports 0.
fn icmp(b: &[u8], v6: bool) -> Result<L4<'_>, SkipReason> {
    let (Some(&[kind, code]), Some(body)) = (b.get(..2), b.get(ICMP_LEN..)) else {
        return Err(truncated());
    };
    let mut l4 = L4 {
        payload: body,
        icmp: Some((kind, code)),
        ..L4::default()
    };
    let unreachable = if v6 {
        ICMPV6_UNREACHABLE
    } else {
        ICMPV4_UNREACHABLE
    };
    if kind == unreachable {
        // Path-MTU messages are ordinary ICMP traffic, not a verdict on the flow they quote.
        if is_fragmentation_needed(v6, code) {
            return Ok(l4);
        }
        // The quote is read again from the payload when it is wanted (`Packet::quoted`).
        l4.unreachable =
            quoted_flow(body).map(|_| if v6 { IcmpVersion::V6 } else { IcmpVersion::V4 });
    } else if let Some(id) = echo_id(b, v6) {
        (l4.src_port, l4.dst_port) = (id, id);
    }
    Ok(l4)
}

/// The identifier of an echo request or reply.
fn echo_id(icmp: &[u8], v6: bool) -> Option<u16> {
    let kind = *icmp.first()?;
    let echo = if v6 {
        matches!(kind, ICMPV6_ECHO_REQUEST | ICMPV6_ECHO_REPLY)
    } else {
        matches!(kind, ICMPV4_ECHO_REQUEST | ICMPV4_ECHO_REPLY)
    };
    echo.then(|| be16(icmp, 4)).flatten()
}

/// The five-tuple of the packet an ICMP error quotes: its IP header and at least the first
/// 8 bytes of its transport header, often fewer. Ports that were cut off (or that a non-first
/// fragment never had) are 0. `None` when not even the quoted IP header is readable; the
/// message is then an ordinary ICMP packet.
pub(crate) fn quoted_flow(quote: &[u8]) -> Option<FiveTuple> {
    let l3 = ip::parse(quote, IpVersion::Any).ok()?;
    let b = l3.payload;
    let (sport, dport) = match l3.ip_number {
        _ if l3.is_trailing_fragment() => (0, 0),
        TCP | UDP => ports(b).unwrap_or((0, 0)),
        ICMPV4 | ICMPV6 => echo_id(b, l3.ip_number == ICMPV6).map_or((0, 0), |id| (id, id)),
        _ => (0, 0),
    };
    Some(FiveTuple {
        proto: proto(l3.ip_number),
        src: Endpoint::new(l3.src, sport),
        dst: Endpoint::new(l3.dst, dport),
    })
}

/// Source and destination port, the first four bytes of TCP and UDP.
#[inline]
fn ports(b: &[u8]) -> Option<(u16, u16)> {
    Some((be16(b, 0)?, be16(b, 2)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP_SYN: [u8; 24] = [
        0x04, 0xd2, 0x00, 0x19, 0, 0, 0, 1, 0, 0, 0, 2, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0, 2, 4,
        5, 0xb4,
    ];

    #[test]
    fn tcp_fields_and_options() {
        let l4 = tcp(&TCP_SYN).unwrap();
        assert_eq!((l4.src_port, l4.dst_port, l4.seq, l4.ack), (1234, 25, 1, 2));
        assert_eq!((l4.tcp_flags, l4.payload), (0x02, &[][..]));
        // Cut inside the options: still a packet.
        assert_eq!(tcp(&TCP_SYN[..22]).unwrap().src_port, 1234);
        // Cut inside the fixed header: not.
        assert_eq!(tcp(&TCP_SYN[..19]).err(), Some(truncated()));
        let mut bad = TCP_SYN;
        bad[12] = 0x40;
        assert_eq!(
            tcp(&bad).err(),
            Some(SkipReason::Malformed(Layer::Transport))
        );
    }

    #[test]
    fn udp_length_bounds_payload() {
        let dgram = [0, 53, 0x80, 0, 0, 10, 0, 0, b'a', b'b', b'x', b'x'];
        assert_eq!(udp(&dgram).unwrap().payload, b"ab");
        let mut zero = dgram;
        zero[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(udp(&zero).unwrap().payload, b"abxx");
        let mut long = dgram;
        long[4..6].copy_from_slice(&[0x05, 0xdc]);
        assert_eq!(udp(&long).unwrap().payload, b"abxx");
        assert_eq!(udp(&dgram[..7]).err(), Some(truncated()));
    }

    #[test]
    fn icmp_echo_and_short_messages() {
        let echo = [8, 0, 0, 0, 0x12, 0x34, 0, 1, b'p'];
        let l4 = icmp(&echo, false).unwrap();
        assert_eq!(
            (l4.src_port, l4.dst_port, l4.payload),
            (0x1234, 0x1234, &b"p"[..])
        );
        // An ICMPv4 echo type number means nothing in ICMPv6.
        assert_eq!(icmp(&echo, true).unwrap().src_port, 0);
        assert_eq!(icmp(&echo[..7], false).err(), Some(truncated()));
    }

    #[test]
    fn quoted_trailing_fragment_has_no_ports() {
        let mut quote = [
            0x45, 0, 0, 28, 0, 1, 0x00, 0x10, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0xaa, 0xbb,
            0xcc, 0xdd, 0, 0, 0, 0,
        ];
        let q = quoted_flow(&quote).unwrap();
        assert_eq!((q.proto, q.src.port, q.dst.port), (Proto::Udp, 0, 0));
        quote[6..8].copy_from_slice(&[0x20, 0]); // first fragment: ports are there
        assert_eq!(quoted_flow(&quote).unwrap().src.port, 0xaabb);
        assert_eq!(quoted_flow(&quote[..19]), None);
    }
}
