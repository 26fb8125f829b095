//! End-to-end tests of `decode::decode` and `FragmentTracker` on frames built with etherparse's
//! `PacketBuilder` or by hand: every link type, truncation at each layer, ICMP errors, fragments.

use std::net::IpAddr;

use etherparse::{IpNumber, PacketBuilder};
use exflow::decode::{decode, FragmentTracker, Layer, SkipReason};
use exflow::packet::{
    tcp_flags, Endpoint, FiveTuple, Fragment, IcmpVersion, Packet, Proto, RawPacket,
};

const A4: [u8; 4] = [192, 168, 1, 10];
const B4: [u8; 4] = [10, 0, 0, 25];
const R4: [u8; 4] = [192, 168, 1, 1];
const A6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
];
const B6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x19,
];
const R6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
];

fn ep(ip: impl Into<IpAddr>, port: u16) -> Endpoint {
    Endpoint::new(ip.into(), port)
}

fn raw(link_type: u32, data: &[u8]) -> RawPacket<'_> {
    RawPacket {
        ts: 1_000,
        link_type,
        data,
        wire_len: data.len() as u32 + 7,
    }
}

/// Decodes a copy of `data` that lives for the rest of the test run, so that tests can pass
/// temporaries.
fn dec(link_type: u32, data: &[u8]) -> Result<Packet<'static>, SkipReason> {
    let data: &'static [u8] = Box::leak(data.to_vec().into_boxed_slice());
    decode(&raw(link_type, data))
}

/// IPv4 TCP SYN-ACK A:1234 -> B:25 with payload.
fn tcp4(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .tcp(1234, 25, 0x0102_0304, 8192)
        .syn()
        .ack(0x0a0b_0c0d)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn udp4(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .udp(33000, 53)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn tcp6(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(A6, B6, 64)
        .tcp(1234, 389, 1, 8192)
        .syn()
        .write(&mut v, payload)
        .unwrap();
    v
}

fn udp6(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(A6, B6, 64)
        .udp(33000, 53)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn eth(ethertype: u16, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(rest);
    v
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The skip reason, or `None` when the frame decodes (`Packet` has no `PartialEq`).
fn skip(link_type: u32, data: &[u8]) -> Option<SkipReason> {
    dec(link_type, data).err()
}

fn assert_tcp4(p: &Packet<'_>, payload: &[u8]) {
    assert_eq!(p.proto, Proto::Tcp);
    assert_eq!(p.src, ep(A4, 1234));
    assert_eq!(p.dst, ep(B4, 25));
    assert_eq!(p.tcp_flags, tcp_flags::SYN | tcp_flags::ACK);
    assert_eq!((p.seq, p.ack), (0x0102_0304, 0x0a0b_0c0d));
    assert_eq!(p.payload, payload);
    assert_eq!(p.unreachable, None);
    assert_eq!(p.fragment, None);
}

#[test]
fn ethernet_ipv4_tcp_fields_and_wire_len() {
    let frame = eth(0x0800, &tcp4(b"EHLO x\r\n"));
    let p = dec(1, &frame).unwrap();
    assert_tcp4(&p, b"EHLO x\r\n");
    assert_eq!(p.ts, 1_000);
    assert_eq!(p.wire_len, frame.len() as u32 + 7);
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut frame = eth(0x0800, &udp4(b"ab"));
    frame.resize(60, 0xee);
    let p = dec(1, &frame).unwrap();
    assert_eq!(p.proto, Proto::Udp);
    assert_eq!((p.src, p.dst), (ep(A4, 33000), ep(B4, 53)));
    assert_eq!(p.payload, b"ab");
}

#[test]
fn ethernet_ipv6_tcp_and_udp() {
    let p = dec(1, &eth(0x86dd, &tcp6(b"x"))).unwrap();
    assert_eq!(
        (p.proto, p.src, p.dst),
        (Proto::Tcp, ep(A6, 1234), ep(B6, 389))
    );
    assert_eq!((p.tcp_flags, p.payload), (tcp_flags::SYN, &b"x"[..]));
    let p = dec(1, &eth(0x86dd, &udp6(b"q"))).unwrap();
    assert_eq!(
        (p.proto, p.src, p.dst),
        (Proto::Udp, ep(A6, 33000), ep(B6, 53))
    );
}

#[test]
fn vlan_and_qinq() {
    let ip = tcp4(b"hi");
    let single = eth(0x8100, &cat(&[&[0x20, 0x0a, 0x08, 0x00], &ip]));
    assert_tcp4(&dec(1, &single).unwrap(), b"hi");
    for outer in [0x88a8u16, 0x9100, 0x8100] {
        let double = eth(outer, &cat(&[&[0, 5, 0x81, 0x00, 0, 6, 0x08, 0x00], &ip]));
        assert_tcp4(&dec(1, &double).unwrap(), b"hi");
    }
    let v6 = eth(0x8100, &cat(&[&[0, 5, 0x86, 0xdd], &tcp6(b"")]));
    assert_eq!(dec(1, &v6).unwrap().dst, ep(B6, 389));
    let arp_in_vlan = eth(0x8100, &[0, 5, 0x08, 0x06, 0, 1, 8, 0, 6, 4]);
    assert_eq!(dec(1, &arp_in_vlan).unwrap_err(), SkipReason::NonIp);
}

#[test]
fn pppoe_session() {
    let pppoe = |proto: &[u8], ip: &[u8]| {
        let len = (proto.len() + ip.len()) as u16;
        let hdr = cat(&[&[0x11, 0x00, 0x00, 0x2a], &len.to_be_bytes(), proto, ip]);
        eth(0x8864, &hdr)
    };
    assert_tcp4(&dec(1, &pppoe(&[0x00, 0x21], &tcp4(b"z"))).unwrap(), b"z");
    assert_eq!(
        dec(1, &pppoe(&[0x00, 0x57], &udp6(b""))).unwrap().src,
        ep(A6, 33000)
    );
    // LCP echo: PPP, but not IP.
    assert_eq!(
        dec(1, &pppoe(&[0xc0, 0x21], &[9, 1, 0, 8, 0, 0, 0, 0])).unwrap_err(),
        SkipReason::NonIp
    );
}

#[test]
fn linux_sll_and_sll2() {
    let sll = |proto: u16, ip: &[u8]| {
        cat(&[
            &[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0],
            &proto.to_be_bytes(),
            ip,
        ])
    };
    assert_tcp4(&dec(113, &sll(0x0800, &tcp4(b"s"))).unwrap(), b"s");
    assert_eq!(
        dec(113, &sll(0x86dd, &udp6(b""))).unwrap().proto,
        Proto::Udp
    );
    assert_eq!(skip(113, &sll(0x0806, &[0; 28])), Some(SkipReason::NonIp));

    let sll2 = |proto: u16, ip: &[u8]| {
        cat(&[
            &proto.to_be_bytes(),
            &[0, 0, 0, 0, 0, 3, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0],
            ip,
        ])
    };
    assert_tcp4(&dec(276, &sll2(0x0800, &tcp4(b"s"))).unwrap(), b"s");
    assert_eq!(
        dec(276, &sll2(0x86dd, &tcp6(b""))).unwrap().dst,
        ep(B6, 389)
    );
    assert_eq!(
        skip(276, &sll2(0x0800, &[])[..19]),
        Some(SkipReason::Truncated(Layer::Link))
    );
}

#[test]
fn raw_ip_link_types() {
    for lt in [101, 12, 14] {
        assert_tcp4(&dec(lt, &tcp4(b"r")).unwrap(), b"r");
        assert_eq!(dec(lt, &tcp6(b"")).unwrap().proto, Proto::Tcp);
    }
    assert_tcp4(&dec(228, &tcp4(b"")).unwrap(), b"");
    assert_eq!(dec(229, &udp6(b"")).unwrap().src, ep(A6, 33000));
    // The link type names the version; a packet of the other one is malformed.
    assert_eq!(
        skip(228, &udp6(b"")),
        Some(SkipReason::Malformed(Layer::Ip))
    );
    assert_eq!(
        skip(229, &tcp4(b"")),
        Some(SkipReason::Malformed(Layer::Ip))
    );
}

#[test]
fn null_and_loop_in_either_byte_order() {
    for lt in [0, 108] {
        for af in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
            assert_tcp4(&dec(lt, &cat(&[&af, &tcp4(b"n")])).unwrap(), b"n");
        }
        for af6 in [10u32, 24, 28, 30] {
            for af in [af6.to_le_bytes(), af6.to_be_bytes()] {
                let p = dec(lt, &cat(&[&af, &udp6(b"")])).unwrap();
                assert_eq!(p.dst, ep(B6, 53), "af {af6}");
            }
        }
        assert_eq!(
            skip(lt, &cat(&[&[17, 0, 0, 0], &tcp4(b"")])),
            Some(SkipReason::NonIp)
        );
    }
}

#[test]
fn non_ip_and_unsupported() {
    // ARP, LLDP, and an 802.3 frame (length field) carrying spanning tree over LLC.
    assert_eq!(skip(1, &eth(0x0806, &[0; 28])), Some(SkipReason::NonIp));
    assert_eq!(skip(1, &eth(0x88cc, &[0; 28])), Some(SkipReason::NonIp));
    assert_eq!(
        skip(1, &eth(0x0026, &[0x42, 0x42, 3, 0, 0])),
        Some(SkipReason::NonIp)
    );
    assert_eq!(
        skip(147, &tcp4(b"")),
        Some(SkipReason::UnsupportedLinkType(147))
    );
}

#[test]
fn skip_reason_keys() {
    let keys = [
        (SkipReason::UnsupportedLinkType(147), "link_type_147"),
        (SkipReason::NonIp, "non_ip"),
        (SkipReason::Truncated(Layer::Link), "truncated_link"),
        (SkipReason::Truncated(Layer::Ip), "truncated_ip"),
        (
            SkipReason::Truncated(Layer::Transport),
            "truncated_transport",
        ),
        (SkipReason::Malformed(Layer::Link), "malformed_link"),
        (SkipReason::Malformed(Layer::Ip), "malformed_ip"),
        (
            SkipReason::Malformed(Layer::Transport),
            "malformed_transport",
        ),
    ];
    for (r, key) in keys {
        assert_eq!(r.to_string(), key);
    }
    assert_eq!(
        SkipReason::UnsupportedLinkType(9).as_str(),
        "unsupported_link_type"
    );
    assert_eq!(SkipReason::NonIp.as_str(), "non_ip");
}

/// Cuts a frame at every length and checks which layer reports it.
fn truncation_layers(link_type: u32, frame: &[u8], link_end: usize, ip_end: usize, l4_end: usize) {
    for n in 0..=frame.len() {
        let got = dec(link_type, &frame[..n]);
        let want = if n < link_end {
            Some(SkipReason::Truncated(Layer::Link))
        } else if n < ip_end {
            Some(SkipReason::Truncated(Layer::Ip))
        } else if n < l4_end {
            Some(SkipReason::Truncated(Layer::Transport))
        } else {
            None
        };
        match want {
            Some(reason) => assert_eq!(got.map(|_| ()), Err(reason), "cut at {n}"),
            None => assert!(got.is_ok(), "cut at {n}: {got:?}"),
        }
    }
}

#[test]
fn truncated_at_each_layer() {
    truncation_layers(1, &eth(0x0800, &tcp4(b"payload")), 14, 34, 54);
    truncation_layers(1, &eth(0x86dd, &udp6(b"payload")), 14, 54, 62);
    let vlan = eth(0x8100, &cat(&[&[0, 5, 0x08, 0x00], &udp4(b"p")]));
    truncation_layers(1, &vlan, 18, 38, 46);
    truncation_layers(
        113,
        &cat(&[&[0; 14], &[0x08, 0x00], &udp4(b"")]),
        16,
        36,
        44,
    );
    truncation_layers(0, &cat(&[&[0, 0, 0, 30], &tcp6(b"")]), 4, 44, 64);
    let mut echo = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut echo, b"ping")
        .unwrap();
    truncation_layers(101, &echo, 0, 20, 28);
}

#[test]
fn tcp_cut_inside_options_keeps_header_fields() {
    let mut ip = tcp4(b"data");
    // Make room for 12 bytes of options: data offset 8, total length + 12.
    ip[32] = 0x80;
    let total = u16::from_be_bytes([ip[2], ip[3]]) + 12;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.splice(40..40, [1u8; 12]);
    let frame = eth(0x0800, &ip);
    let full = dec(1, &frame).unwrap();
    assert_tcp4(&full, b"data");
    // A 68-byte snap length ends inside the options.
    let cut = dec(1, &frame[..60]).unwrap();
    assert_tcp4(&cut, b"");
    assert_eq!(cut.wire_len, 60 + 7);
}

#[test]
fn tcp_bad_data_offset_is_malformed() {
    let mut ip = tcp4(b"");
    ip[32] = 0x40;
    assert_eq!(
        skip(101, &ip),
        Some(SkipReason::Malformed(Layer::Transport))
    );
}

#[test]
fn other_ip_protocols() {
    let mut gre = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .write(&mut gre, IpNumber(47), &[0, 0, 0x08, 0x00])
        .unwrap();
    let p = dec(101, &gre).unwrap();
    assert_eq!(
        (p.proto, p.src, p.dst),
        (Proto::Other(47), ep(A4, 0), ep(B4, 0))
    );
    assert_eq!(p.payload, &[0, 0, 0x08, 0x00]);
}

#[test]
fn icmp_echo_uses_identifier_as_ports() {
    let mut req = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .icmpv4_echo_request(0x4242, 1)
        .write(&mut req, b"abc")
        .unwrap();
    let p = dec(101, &req).unwrap();
    assert_eq!(
        (p.proto, p.src, p.dst),
        (Proto::Icmp, ep(A4, 0x4242), ep(B4, 0x4242))
    );
    assert_eq!(p.payload, b"abc");

    let mut reply = Vec::new();
    PacketBuilder::ipv6(B6, A6, 64)
        .icmpv6_echo_reply(9, 1)
        .write(&mut reply, b"")
        .unwrap();
    let p = dec(101, &reply).unwrap();
    assert_eq!((p.proto, p.src, p.dst), (Proto::Icmp, ep(B6, 9), ep(A6, 9)));

    // Other ICMP types have no ports.
    let mut exceeded = Vec::new();
    PacketBuilder::ipv4(R4, A4, 64)
        .icmpv4_raw(11, 0, [0; 4])
        .write(&mut exceeded, &udp4(b"")[..28])
        .unwrap();
    let p = dec(101, &exceeded).unwrap();
    assert_eq!((p.src.port, p.dst.port, p.unreachable), (0, 0, None));
}

fn icmp4_unreachable(code: u8, quote: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(R4, A4, 64)
        .icmpv4_raw(3, code, [0; 4])
        .write(&mut v, quote)
        .unwrap();
    v
}

fn icmp6_unreachable(code: u8, quote: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(R6, A6, 64)
        .icmpv6_raw(1, code, [0; 4])
        .write(&mut v, quote)
        .unwrap();
    v
}

#[test]
fn icmpv4_unreachable_quotes_tcp_and_udp() {
    // Administratively prohibited, quoting the SYN's IP header and 8 bytes of TCP.
    let p = dec(1, &eth(0x0800, &icmp4_unreachable(13, &tcp4(b"")[..28]))).unwrap();
    assert_eq!((p.proto, p.src, p.dst), (Proto::Icmp, ep(R4, 0), ep(A4, 0)));
    assert_eq!(p.unreachable, Some(IcmpVersion::V4));
    let u = p.quoted().unwrap();
    assert!(!u.v6 && u.code == 13 && u.is_admin_prohibited());
    let want = FiveTuple {
        proto: Proto::Tcp,
        src: ep(A4, 1234),
        dst: ep(B4, 25),
    };
    assert_eq!(u.quoted, want);

    // Port unreachable, quoting a whole UDP datagram.
    let p = dec(101, &icmp4_unreachable(3, &udp4(b"query"))).unwrap();
    let u = p.quoted().unwrap();
    assert_eq!((u.code, u.quoted.proto), (3, Proto::Udp));
    assert_eq!((u.quoted.src, u.quoted.dst), (ep(A4, 33000), ep(B4, 53)));

    // Fragmentation needed (path-MTU discovery): ordinary ICMP, no verdict on what it quotes.
    let p = dec(101, &icmp4_unreachable(4, &udp4(b"query"))).unwrap();
    assert_eq!(
        (p.proto, p.icmp, p.unreachable),
        (Proto::Icmp, Some((3, 4)), None)
    );
    assert_eq!(p.quoted(), None);
}

#[test]
fn icmpv6_unreachable_quotes_tcp_and_udp() {
    let p = dec(229, &icmp6_unreachable(1, &tcp6(b"")[..48])).unwrap();
    assert_eq!((p.proto, p.src, p.dst), (Proto::Icmp, ep(R6, 0), ep(A6, 0)));
    assert_eq!(p.unreachable, Some(IcmpVersion::V6));
    let u = p.quoted().unwrap();
    assert!(u.v6 && u.code == 1 && u.is_admin_prohibited());
    assert_eq!(
        u.quoted,
        FiveTuple {
            proto: Proto::Tcp,
            src: ep(A6, 1234),
            dst: ep(B6, 389)
        }
    );
    let p = dec(101, &icmp6_unreachable(4, &udp6(b"zz"))).unwrap();
    let u = p.quoted().unwrap();
    assert_eq!(
        (u.code, u.quoted.proto, u.quoted.dst),
        (4, Proto::Udp, ep(B6, 53))
    );
}

#[test]
fn icmp_unreachable_with_short_quote() {
    // Ports cut off: the flow is still named, with port 0.
    let p = dec(101, &icmp4_unreachable(1, &tcp4(b"")[..22])).unwrap();
    let q = p.quoted().unwrap().quoted;
    assert_eq!((q.proto, q.src, q.dst), (Proto::Tcp, ep(A4, 0), ep(B4, 0)));
    // Not even the quoted IP header: a plain ICMP packet.
    let p = dec(101, &icmp4_unreachable(1, &tcp4(b"")[..12])).unwrap();
    assert_eq!((p.proto, p.unreachable), (Proto::Icmp, None));
    // The ICMP header itself cut: skipped.
    let frame = icmp4_unreachable(1, &[]);
    assert_eq!(
        skip(101, &frame[..25]),
        Some(SkipReason::Truncated(Layer::Transport))
    );
}

#[test]
fn icmp_unreachable_quoting_a_ping() {
    let mut req = Vec::new();
    PacketBuilder::ipv4(A4, B4, 64)
        .icmpv4_echo_request(0x77, 3)
        .write(&mut req, b"")
        .unwrap();
    let p = dec(101, &icmp4_unreachable(10, &req)).unwrap();
    let q = p.quoted().unwrap().quoted;
    assert_eq!(
        (q.proto, q.src, q.dst),
        (Proto::Icmp, ep(A4, 0x77), ep(B4, 0x77))
    );
}

/// Splits a UDP datagram into IPv4 fragments of `chunk` bytes (a multiple of 8).
fn fragments_v4(id: u16, udp_and_payload: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, part) in udp_and_payload.chunks(chunk).enumerate() {
        let offset = (i * chunk / 8) as u16;
        let more = (i + 1) * chunk < udp_and_payload.len();
        let mut hdr =
            etherparse::Ipv4Header::new(part.len() as u16, 64, IpNumber::UDP, A4, B4).unwrap();
        hdr.identification = id;
        hdr.dont_fragment = false;
        hdr.more_fragments = more;
        hdr.fragment_offset = etherparse::IpFragOffset::try_new(offset).unwrap();
        hdr.header_checksum = hdr.calc_header_checksum();
        out.push(cat(&[&hdr.to_bytes(), part]));
    }
    out
}

#[test]
fn ipv4_fragments_and_tracker() {
    let whole = udp4(&[0x5a; 3000]);
    let frags = fragments_v4(0x1234, &whole[20..], 1480);
    assert_eq!(frags.len(), 3);
    let mut tracker = FragmentTracker::new(16);
    let mut seen = Vec::new();
    for f in &frags {
        let frame = eth(0x0800, f);
        let mut p = dec(1, &frame).unwrap();
        assert_eq!(p.proto, Proto::Udp);
        assert!(tracker.resolve(&mut p));
        seen.push((p.src.port, p.dst.port, p.fragment, p.payload.len()));
    }
    assert_eq!(
        seen,
        [
            (
                33000,
                53,
                Some(Fragment {
                    id: 0x1234,
                    offset: 0,
                    more: true
                }),
                1472
            ),
            (
                33000,
                53,
                Some(Fragment {
                    id: 0x1234,
                    offset: 1480,
                    more: true
                }),
                0
            ),
            (
                33000,
                53,
                Some(Fragment {
                    id: 0x1234,
                    offset: 2960,
                    more: false
                }),
                0
            ),
        ]
    );
    // Before resolving, a trailing fragment has no ports; with no first fragment it stays so.
    let mut p = dec(101, &frags[2]).unwrap();
    assert!(p.is_trailing_fragment());
    assert_eq!((p.src.port, p.dst.port, p.payload), (0, 0, &[][..]));
    assert!(!FragmentTracker::new(4).resolve(&mut p));
    assert_eq!(p.src.port, 0);
}

#[test]
fn ipv6_fragments_and_tracker() {
    let udp = &udp6(&[1; 40])[40..];
    let frag = |offset: u16, more: bool, data: &[u8]| {
        let fh = etherparse::Ipv6FragmentHeader::new(
            IpNumber::UDP,
            etherparse::IpFragOffset::try_new(offset / 8).unwrap(),
            more,
            0xabcd_0001,
        );
        let hdr = etherparse::Ipv6Header {
            payload_length: (8 + data.len()) as u16,
            next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
            hop_limit: 64,
            source: A6,
            destination: B6,
            ..Default::default()
        };
        cat(&[&hdr.to_bytes(), &fh.to_bytes(), data])
    };
    let first = frag(0, true, &udp[..24]);
    let last = frag(24, false, &udp[24..]);
    let mut tracker = FragmentTracker::new(4);
    let mut p1 = dec(229, &first).unwrap();
    assert_eq!(
        (p1.proto, p1.src, p1.dst),
        (Proto::Udp, ep(A6, 33000), ep(B6, 53))
    );
    assert_eq!(
        p1.fragment,
        Some(Fragment {
            id: 0xabcd_0001,
            offset: 0,
            more: true
        })
    );
    assert!(tracker.resolve(&mut p1));
    let mut p2 = dec(229, &last).unwrap();
    assert_eq!(
        p2.fragment,
        Some(Fragment {
            id: 0xabcd_0001,
            offset: 24,
            more: false
        })
    );
    assert_eq!(
        (p2.proto, p2.src.port, p2.payload.len()),
        (Proto::Udp, 0, 0)
    );
    assert!(tracker.resolve(&mut p2));
    assert_eq!((p2.src, p2.dst), (ep(A6, 33000), ep(B6, 53)));
}

/// Frames captured with `tcpdump -i any` on Linux loopback (curl to a local HTTP server on
/// 127.0.0.1:18080, and UDP to closed port 9999 over IPv4 and IPv6); field values as tshark
/// 4.0 decodes them.
mod captured {
    use super::*;

    fn hex(lines: &[&str]) -> Vec<u8> {
        let s: String = lines.concat();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const LO4: [u8; 4] = [127, 0, 0, 1];
    const LO6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    #[test]
    fn sll_ipv4_syn_with_options() {
        let f = hex(&[
            "000003040006000000000000000008004500003ce73c40004006557d7f000001",
            "7f000001e8b646a04a0afc3c00000000a002ffd7fe3000000204ffd70402080a",
            "7b7ee312000000000103030a",
        ]);
        let p = dec(113, &f).unwrap();
        assert_eq!(
            (p.proto, p.src, p.dst),
            (Proto::Tcp, ep(LO4, 59574), ep(LO4, 18080))
        );
        assert_eq!(
            (p.tcp_flags, p.seq, p.payload.len()),
            (tcp_flags::SYN, 0x4a0a_fc3c, 0)
        );
    }

    #[test]
    fn sll_ipv6_rst_ack() {
        let f = hex(&[
            "000003040006000000000000000086dd60001641001406400000000000000000",
            "00000000000000010000000000000000000000000000000146a0d98e00000000",
            "216f9ba850140000001c0000",
        ]);
        let p = dec(113, &f).unwrap();
        assert_eq!(
            (p.proto, p.src, p.dst),
            (Proto::Tcp, ep(LO6, 18080), ep(LO6, 55694))
        );
        assert_eq!(p.tcp_flags, tcp_flags::RST | tcp_flags::ACK);
        assert_eq!((p.seq, p.ack), (0, 0x216f_9ba8));
    }

    #[test]
    fn sll_icmpv4_port_unreachable() {
        let f = hex(&[
            "0000030400060000000000000000080045c00042f32c0000400188cc7f000001",
            "7f0000010303e1530000000045000026d8bb4000401164097f0000017f000001",
            "9c07270f0012fe2578787878787878787878",
        ]);
        let p = dec(113, &f).unwrap();
        assert_eq!((p.proto, p.src.port, p.dst.port), (Proto::Icmp, 0, 0));
        let u = p.quoted().unwrap();
        assert_eq!((u.v6, u.code, u.is_admin_prohibited()), (false, 3, false));
        let want = FiveTuple {
            proto: Proto::Udp,
            src: ep(LO4, 39943),
            dst: ep(LO4, 9999),
        };
        assert_eq!(u.quoted, want);
    }

    #[test]
    fn sll2_icmpv6_port_unreachable() {
        let f = hex(&[
            "86dd000000000001030400060000000000000000600f44ee00423a4000000000",
            "000000000000000000000001000000000000000000000000000000010104b8d4",
            "000000006001a57a001211400000000000000000000000000000000100000000",
            "000000000000000000000001ad38270f0012002578787878787878787878",
        ]);
        let p = dec(276, &f).unwrap();
        assert_eq!(
            (p.proto, p.src, p.dst),
            (Proto::Icmp, ep(LO6, 0), ep(LO6, 0))
        );
        let u = p.quoted().unwrap();
        assert_eq!((u.v6, u.code), (true, 4));
        let want = FiveTuple {
            proto: Proto::Udp,
            src: ep(LO6, 44344),
            dst: ep(LO6, 9999),
        };
        assert_eq!(u.quoted, want);
    }
}
