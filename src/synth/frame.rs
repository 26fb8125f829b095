//! One Ethernet frame at a time: TCP segments, UDP datagrams and ICMP / ICMPv6
//! destination-unreachable errors that quote another frame, over IPv4 or IPv6.
//!
//! The IP and transport layers come from etherparse's `PacketBuilder`, which fills in lengths
//! and checksums; the Ethernet (and optional 802.1Q) header is written here. MAC addresses are
//! derived from the IP address, so a host keeps the same MAC throughout a capture.
//!
//! These functions panic on programmer errors only: source and destination of different IP
//! families, or a payload too long for one IP packet.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv6Extensions, Ipv6FlowLabel, Ipv6Header,
    PacketBuilder, PacketBuilderStep, TcpHeader, TcpOptionElement,
};

use crate::packet::tcp_flags;

/// Link and IP settings shared by every frame of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameOpts {
    /// IPv4 TTL / IPv6 hop limit (Windows 2000 sends 128).
    pub ttl: u8,
    /// Pad frames shorter than 60 bytes with zeros, as a capture off the wire shows them.
    pub pad: bool,
    /// Put an 802.1Q tag with this VLAN id after the MAC addresses.
    pub vlan: Option<u16>,
}

impl Default for FrameOpts {
    fn default() -> Self {
        FrameOpts {
            ttl: 128,
            pad: false,
            vlan: None,
        }
    }
}

/// The fields of one TCP segment's header that vary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment {
    pub seq: u32,
    /// Written only when `flags` has ACK.
    pub ack: u32,
    /// Bits of [`crate::packet::tcp_flags`].
    pub flags: u8,
    pub window: u16,
    /// Adds the options of a Windows 2000 SYN: MSS, NOP, NOP, SACK permitted.
    pub mss: Option<u16>,
}

/// Why a destination was unreachable: the ICMP code, which differs between ICMPv4 (type 3) and
/// ICMPv6 (type 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreachable {
    /// v4 code 0 / v6 code 0 (no route).
    Net,
    /// v4 code 1 / v6 code 3 (address unreachable).
    Host,
    /// v4 code 3 / v6 code 4.
    Port,
    /// The firewall's answer: v4 code 13 (communication administratively prohibited) / v6 code 1.
    AdminProhibited,
    /// This code as is, for either family.
    Code(u8),
}

impl Unreachable {
    /// The ICMPv4 (`v6 == false`) or ICMPv6 code.
    pub fn code(self, v6: bool) -> u8 {
        match (self, v6) {
            (Unreachable::Net, _) => 0,
            (Unreachable::Host, false) => 1,
            (Unreachable::Host, true) => 3,
            (Unreachable::Port, false) => 3,
            (Unreachable::Port, true) => 4,
            (Unreachable::AdminProhibited, false) => 13,
            (Unreachable::AdminProhibited, true) => 1,
            (Unreachable::Code(c), _) => c,
        }
    }
}

/// The MAC address used for `ip`: locally administered, `02:00` (IPv4) or `02:06` (IPv6)
/// followed by the address's last four bytes.
pub fn mac_for(ip: IpAddr) -> [u8; 6] {
    let (kind, tail) = match ip {
        IpAddr::V4(v4) => (0, v4.octets()),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            (6, [o[12], o[13], o[14], o[15]])
        }
    };
    [0x02, kind, tail[0], tail[1], tail[2], tail[3]]
}

/// A TCP segment from `src` to `dst`.
pub fn tcp_frame(
    opts: &FrameOpts,
    ip_id: u16,
    src: SocketAddr,
    dst: SocketAddr,
    seg: &TcpSegment,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = TcpHeader::new(src.port(), dst.port(), seg.seq, seg.window);
    h.fin = seg.flags & tcp_flags::FIN != 0;
    h.syn = seg.flags & tcp_flags::SYN != 0;
    h.rst = seg.flags & tcp_flags::RST != 0;
    h.psh = seg.flags & tcp_flags::PSH != 0;
    h.ack = seg.flags & tcp_flags::ACK != 0;
    if h.ack {
        h.acknowledgment_number = seg.ack;
    }
    if let Some(mss) = seg.mss {
        use TcpOptionElement::*;
        h.set_options(&[
            MaximumSegmentSize(mss),
            Noop,
            Noop,
            SelectiveAcknowledgementPermitted,
        ])
        .expect("8 bytes of TCP options fit");
    }
    let mut out = start_frame(opts, src.ip(), dst.ip(), payload.len() + 60);
    ip_step(opts, ip_id, src.ip(), dst.ip())
        .tcp_header(h)
        .write(&mut out, payload)
        .expect("TCP segment fits in one IP packet");
    finish(opts, out)
}

/// A UDP datagram from `src` to `dst`.
pub fn udp_frame(
    opts: &FrameOpts,
    ip_id: u16,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = start_frame(opts, src.ip(), dst.ip(), payload.len() + 48);
    ip_step(opts, ip_id, src.ip(), dst.ip())
        .udp(src.port(), dst.port())
        .write(&mut out, payload)
        .expect("UDP datagram fits in one IP packet");
    finish(opts, out)
}

/// An ICMP destination-unreachable error sent by `router` to the sender of `offending` (an
/// Ethernet frame, such as one made by [`tcp_frame`]). ICMPv4 quotes the offending IP header
/// and the first 8 bytes of its payload (RFC 792); ICMPv6 quotes as much of the packet as fits
/// in 1280 bytes (RFC 4443). `None` when `offending` is not an Ethernet/IP frame or `router`
/// is of another family.
pub fn icmp_unreachable_frame(
    opts: &FrameOpts,
    ip_id: u16,
    router: IpAddr,
    offending: &[u8],
    why: Unreachable,
) -> Option<Vec<u8>> {
    let ip = ip_packet_of(offending)?;
    let first = *ip.first()?;
    let (sender, quote): (IpAddr, &[u8]) = match (first >> 4, router) {
        (4, IpAddr::V4(_)) => {
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let ihl = usize::from(first & 0x0f) * 4;
            (src.into(), ip.get(..(ihl + 8).min(ip.len()))?)
        }
        (6, IpAddr::V6(_)) => {
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            (src.into(), ip.get(..ip.len().min(1280 - 48))?)
        }
        _ => return None,
    };
    let mut out = start_frame(opts, router, sender, quote.len() + 48);
    let step = ip_step(opts, ip_id, router, sender);
    let written = match router {
        IpAddr::V4(_) => step
            .icmpv4_raw(3, why.code(false), [0; 4])
            .write(&mut out, quote),
        IpAddr::V6(_) => step
            .icmpv6_raw(1, why.code(true), [0; 4])
            .write(&mut out, quote),
    };
    written.ok()?;
    Some(finish(opts, out))
}

/// The IP packet inside an Ethernet frame (optionally 802.1Q-tagged), cut to its total length.
fn ip_packet_of(frame: &[u8]) -> Option<&[u8]> {
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
    if ethertype == 0x8100 {
        at += 4;
        ethertype = u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?);
    }
    let ip = frame.get(at + 2..)?;
    let len = match ethertype {
        0x0800 => usize::from(u16::from_be_bytes(ip.get(2..4)?.try_into().ok()?)),
        0x86dd => 40 + usize::from(u16::from_be_bytes(ip.get(4..6)?.try_into().ok()?)),
        _ => return None,
    };
    ip.get(..len.min(ip.len()))
}

/// A buffer holding the Ethernet (and VLAN) header for a packet from `src` to `dst`.
fn start_frame(opts: &FrameOpts, src: IpAddr, dst: IpAddr, room: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(18 + 40 + room);
    out.extend_from_slice(&mac_for(dst));
    out.extend_from_slice(&mac_for(src));
    if let Some(vlan) = opts.vlan {
        out.extend_from_slice(&0x8100u16.to_be_bytes());
        out.extend_from_slice(&(vlan & 0x0fff).to_be_bytes());
    }
    let ethertype: u16 = if src.is_ipv4() { 0x0800 } else { 0x86dd };
    out.extend_from_slice(&ethertype.to_be_bytes());
    out
}

fn finish(opts: &FrameOpts, mut out: Vec<u8>) -> Vec<u8> {
    if opts.pad && out.len() < 60 {
        out.resize(60, 0);
    }
    out
}

/// The IP layer of the packet builder; lengths, protocol and checksum are filled in on write.
fn ip_step(opts: &FrameOpts, ip_id: u16, src: IpAddr, dst: IpAddr) -> PacketBuilderStep<IpHeaders> {
    let headers = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => IpHeaders::Ipv4(
            Ipv4Header {
                identification: ip_id,
                dont_fragment: true,
                time_to_live: opts.ttl,
                source: s.octets(),
                destination: d.octets(),
                ..Default::default()
            },
            Ipv4Extensions::default(),
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: 0,
                next_header: IpNumber(59),
                hop_limit: opts.ttl,
                source: s.octets(),
                destination: d.octets(),
            },
            Ipv6Extensions::default(),
        ),
        _ => panic!("synth: {src} and {dst} are of different IP families"),
    };
    PacketBuilder::ip(headers)
}
