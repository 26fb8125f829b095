//! Unit tests of the synthetic-capture module: pcap layout, frames that parse back with
//! etherparse and carry valid checksums (verified with a separate checksum routine), TCP
//! sequence bookkeeping and the failure building blocks.

use std::net::{IpAddr, SocketAddr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use super::app::{dns_query, dns_response, rtp, DnsAnswer, DNS_MX};
use super::*;

const T0: Nanos = 1_042_531_951_000_000_000; // 2003-01-14 08:12:31 UTC

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// One's-complement sum of 16-bit big-endian words.
fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    for pair in data.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        acc += u32::from(word);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Checks the IPv4 header checksum and the transport checksum over the pseudo-header.
fn assert_checksums(frame: &[u8]) {
    let p = SlicedPacket::from_ethernet(frame).expect("frame parses");
    let (pseudo, proto, l4): (u32, u8, &[u8]) = match p.net.as_ref().expect("IP layer") {
        NetSlice::Ipv4(v4) => {
            let h = v4.header().slice();
            assert_eq!(fold(ones_sum(0, h)), 0xffff, "IPv4 header checksum");
            let mut ps = ones_sum(0, &v4.header().source());
            ps = ones_sum(ps, &v4.header().destination());
            let l4 = v4.payload().payload;
            let proto = v4.header().protocol().0;
            (ps + u32::from(proto) + l4.len() as u32, proto, l4)
        }
        NetSlice::Ipv6(v6) => {
            let mut ps = ones_sum(0, &v6.header().source());
            ps = ones_sum(ps, &v6.header().destination());
            let l4 = v6.payload().payload;
            let proto = v6.header().next_header().0;
            (ps + u32::from(proto) + l4.len() as u32, proto, l4)
        }
        NetSlice::Arp(_) => panic!("ARP"),
    };
    // ICMPv4 has no pseudo-header; TCP, UDP and ICMPv6 do.
    let acc = if proto == 1 {
        ones_sum(0, l4)
    } else {
        ones_sum(pseudo, l4)
    };
    assert_eq!(fold(acc), 0xffff, "transport checksum (protocol {proto})");
}

fn tcp_of(frame: &Frame) -> etherparse::TcpHeader {
    match SlicedPacket::from_ethernet(&frame.data).unwrap().transport {
        Some(TransportSlice::Tcp(t)) => t.to_header(),
        other => panic!("not TCP: {other:?}"),
    }
}

#[test]
fn pcap_headers_micro_and_nano() {
    for (precision, magic, frac) in [
        (TsPrecision::Micro, 0xa1b2_c3d4, 123_456),
        (TsPrecision::Nano, 0xa1b2_3c4d, 123_456_789),
    ] {
        let mut w = PcapWriter::new(Vec::new(), precision).unwrap();
        w.write_packet(T0 + 123_456_789, &[0xaa; 70]).unwrap();
        w.write_packet(T0 + SECOND, &[0xbb; 60]).unwrap();
        assert_eq!(w.packets(), 2);
        let out = w.into_inner().unwrap();
        assert_eq!(out.len(), 24 + 16 + 70 + 16 + 60);
        assert_eq!(u32le(&out, 0), magic);
        assert_eq!(&out[4..8], &[2, 0, 4, 0]);
        assert_eq!(u32le(&out, 16), pcap::DEFAULT_SNAPLEN);
        assert_eq!(u32le(&out, 20), 1, "LINKTYPE_ETHERNET");
        assert_eq!(u32le(&out, 24), (T0 / SECOND) as u32);
        assert_eq!(u32le(&out, 28), frac);
        assert_eq!((u32le(&out, 32), u32le(&out, 36)), (70, 70));
        assert_eq!(out[40], 0xaa);
        assert_eq!(u32le(&out, 110), (T0 / SECOND) as u32 + 1);
        assert_eq!(u32le(&out, 114), 0);
    }
}

#[test]
fn pcap_snaplen_cuts_but_keeps_wire_length() {
    let mut w = PcapWriter::with_options(Vec::new(), TsPrecision::Micro, 64, 1).unwrap();
    w.write_packet(T0, &[1; 100]).unwrap();
    assert!(w.write_packet(-1, &[1; 10]).is_err());
    let out = w.into_inner().unwrap();
    assert_eq!((u32le(&out, 32), u32le(&out, 36)), (64, 100));
    assert_eq!(out.len(), 24 + 16 + 64);
}

#[test]
fn tcp_session_has_valid_checksums_and_sequence_numbers() {
    let mut sc = Scenario::new();
    let big = vec![b'x'; 4000];
    sc.tcp(sa("10.1.0.10:1100"), sa("10.1.0.2:25"), T0)
        .handshake()
        .send(Dir::ToClient, b"220 hello\r\n")
        .send(Dir::ToServer, &big)
        .send(Dir::ToClient, b"250 ok\r\n")
        .close();
    let frames = sc.into_frames();
    for f in &frames {
        assert_checksums(&f.data);
    }
    let h: Vec<_> = frames.iter().map(tcp_of).collect();
    assert!(h[0].syn && !h[0].ack && h[0].options.as_slice().len() == 8);
    assert!(h[1].syn && h[1].ack && h[1].acknowledgment_number == h[0].sequence_number + 1);
    assert!(!h[2].syn && h[2].ack && h[2].acknowledgment_number == h[1].sequence_number + 1);
    // Every segment continues its side's sequence space and acknowledges the other side's.
    let (mut next_c, mut next_s) = (h[0].sequence_number + 1, h[1].sequence_number + 1);
    for (f, t) in frames.iter().zip(&h).skip(2) {
        let from_client = t.source_port == 1100;
        let len = SlicedPacket::from_ethernet(&f.data)
            .unwrap()
            .ip_payload()
            .unwrap()
            .payload
            .len()
            - t.header_len();
        let (mine, theirs) = if from_client {
            (&mut next_c, next_s)
        } else {
            (&mut next_s, next_c)
        };
        assert_eq!(t.sequence_number, *mine, "seq of {t:?}");
        assert!(t.acknowledgment_number <= theirs);
        *mine += len as u32 + u32::from(t.fin);
        assert!(len <= 1460);
    }
    let last = h.last().unwrap();
    assert!(last.ack && !last.fin && last.acknowledgment_number == next_s);
    assert!(frames.windows(2).all(|w| w[0].ts <= w[1].ts));
}

#[test]
fn unanswered_syn_is_retransmitted_with_the_same_isn() {
    let mut sc = Scenario::new();
    let end = sc.tcp_unanswered(sa("10.1.0.10:1101"), sa("10.1.0.3:25"), T0, 3);
    assert_eq!(end, T0 + 7 * SECOND);
    let frames = sc.into_frames();
    let times: Vec<_> = frames.iter().map(|f| (f.ts - T0) / SECOND).collect();
    assert_eq!(times, [0, 1, 3, 7]);
    let isn = tcp_of(&frames[0]).sequence_number;
    assert!(frames
        .iter()
        .map(tcp_of)
        .all(|t| t.syn && !t.ack && t.sequence_number == isn));
}

#[test]
fn refused_is_syn_then_rst_ack() {
    let mut sc = Scenario::new();
    sc.tcp_refused(sa("10.1.0.10:1102"), sa("10.1.0.4:25"), T0);
    let h: Vec<_> = sc.into_frames().iter().map(tcp_of).collect();
    assert!(h[1].rst && h[1].ack && h[1].acknowledgment_number == h[0].sequence_number + 1);
    assert_eq!((h[1].source_port, h[1].destination_port), (25, 1102));
}

#[test]
fn icmp_blocked_quotes_the_syn_v4_and_v6() {
    for (client, server, router) in [
        ("10.1.0.10:1103", "192.0.2.25:25", "10.1.0.1"),
        ("[2001:db8::10]:1103", "[2001:db8:1::25]:25", "2001:db8::1"),
    ] {
        let mut sc = Scenario::new();
        let router: IpAddr = router.parse().unwrap();
        sc.tcp_icmp_blocked(sa(client), sa(server), router, T0);
        let frames = sc.into_frames();
        assert_eq!(frames.len(), 2);
        let (syn, icmp) = (&frames[0], &frames[1]);
        assert_checksums(&icmp.data);
        let p = SlicedPacket::from_ethernet(&icmp.data).unwrap();
        let (src, dst, ty, code) = match (p.net.unwrap(), p.transport.unwrap()) {
            (NetSlice::Ipv4(ip), TransportSlice::Icmpv4(i)) => (
                IpAddr::from(ip.header().source()),
                IpAddr::from(ip.header().destination()),
                i.type_u8(),
                i.code_u8(),
            ),
            (NetSlice::Ipv6(ip), TransportSlice::Icmpv6(i)) => (
                IpAddr::from(ip.header().source()),
                IpAddr::from(ip.header().destination()),
                i.type_u8(),
                i.code_u8(),
            ),
            other => panic!("not ICMP: {other:?}"),
        };
        assert_eq!((src, dst), (router, sa(client).ip()));
        let quoted = &icmp.data[14 + if router.is_ipv4() { 20 } else { 40 } + 8..];
        if router.is_ipv4() {
            assert_eq!((ty, code), (3, 13));
            assert_eq!(quoted, &syn.data[14..14 + 28], "IP header + 8 bytes");
        } else {
            assert_eq!((ty, code), (1, 1));
            assert_eq!(quoted, &syn.data[14..], "the whole SYN");
        }
    }
}

#[test]
fn udp_midstream_padding_and_vlan() {
    let mut sc = Scenario::new();
    sc.set_opts(FrameOpts {
        pad: true,
        vlan: Some(42),
        ..FrameOpts::default()
    });
    let (c, s) = (sa("10.1.0.10:1030"), sa("10.1.0.2:53"));
    let q = dns_query(7, "example.com", DNS_MX);
    let r = dns_response(
        7,
        "example.com",
        DNS_MX,
        0,
        &[DnsAnswer::Mx(10, "mail.example.com")],
        3600,
    );
    sc.udp_exchange(c, s, T0, &q, &r);
    sc.udp_one_way(c, sa("10.1.0.3:53"), T0, &[&q, &q], SECOND);
    sc.tcp_midstream(
        c,
        sa("10.1.0.2:1025"),
        T0,
        &[(Dir::ToServer, b"a"), (Dir::ToClient, b"b")],
    );
    let frames = sc.into_frames();
    assert_eq!(frames.len(), 2 + 2 + 3);
    for f in &frames {
        assert!(f.data.len() >= 60);
        assert_eq!(&f.data[12..16], &[0x81, 0x00, 0, 42]);
        assert_checksums(&f.data);
    }
    let udp = SlicedPacket::from_ethernet(&frames[0].data).unwrap();
    assert_eq!(
        udp.ip_payload().unwrap().payload.len(),
        8 + q.len(),
        "padding is not payload"
    );
    assert_eq!(
        &q[..],
        &[
            0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 3,
            b'c', b'o', b'm', 0, 0, 15, 0, 1
        ]
    );
    assert!(frames
        .iter()
        .filter(|f| f.data.len() > 40 && f.data[27] == 6)
        .all(|f| !tcp_of(f).syn));
}

#[test]
fn rtp_header_is_version_2() {
    let p = rtp(0xfffe, 160, 0xdead_beef, 0, true, &[0xff; 160]);
    assert_eq!(
        &p[..12],
        &[0x80, 0x80, 0xff, 0xfe, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef]
    );
    assert_eq!(p.len(), 172);
}

#[test]
fn same_seed_same_bytes() {
    let build = || {
        let mut sc = Scenario::with_seed(9);
        sc.tcp_session(
            sa("10.1.0.10:1100"),
            sa("10.1.0.2:389"),
            T0,
            &[(Dir::ToServer, b"bind")],
        );
        sc.to_pcap(TsPrecision::Nano)
    };
    assert_eq!(build(), build());
}
