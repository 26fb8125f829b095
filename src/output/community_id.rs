//! Community ID v1 (corelight/community-id-spec): the flow hash Zeek, Suricata and most log
//! pipelines share, so one connection can be found in all of their records.
//!
//! `1:` + base64(SHA-1(seed (2 bytes) ‖ source address ‖ destination address ‖ IP protocol ‖
//! 0 ‖ source port ‖ destination port)), the endpoints ordered so both directions hash alike.
//! ICMP and ICMPv6 hash their type and code as ports: a type with a counterpart (echo request
//! and reply, router solicitation and advertisement, ...) takes the counterpart's type as its
//! destination "port", so request and reply meet; the others (errors, redirects) are one-way
//! and keep the direction they were sent in. Protocols without ports hash no port fields.

use std::net::IpAddr;

use crate::classify::Flow;
use crate::packet::Proto;

const ICMPV4: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
const SCTP: u8 = 132;

/// The type an ICMP type is answered with (or answers), as the specification lists them.
fn icmp_counterpart(v6: bool, kind: u8) -> Option<u8> {
    let pairs: &[(u8, u8)] = if v6 {
        // Echo, router solicitation/advertisement, neighbour solicitation/advertisement,
        // multicast listener query/report, node information query/reply, home agent address
        // discovery request/reply.
        &[
            (128, 129),
            (133, 134),
            (135, 136),
            (130, 131),
            (139, 140),
            (144, 145),
        ]
    } else {
        // Echo, router solicitation/advertisement, timestamp, information, address mask.
        &[(8, 0), (10, 9), (13, 14), (15, 16), (17, 18)]
    };
    pairs.iter().find_map(|&(a, b)| match kind {
        k if k == a => Some(b),
        k if k == b => Some(a),
        _ => None,
    })
}

/// The IP protocol number of a flow's protocol (`v6`: the flow is over IPv6).
pub fn ip_proto(proto: Proto, v6: bool) -> u8 {
    match proto {
        Proto::Tcp => TCP,
        Proto::Udp => UDP,
        Proto::Icmp if v6 => ICMPV6,
        Proto::Icmp => ICMPV4,
        Proto::Other(n) => n,
    }
}

/// Community ID v1 of one packet's tuple. For ICMP/ICMPv6 `sport` and `dport` are the message's
/// type and code; for protocols other than TCP, UDP, SCTP and the ICMPs they are ignored.
pub fn community_id(
    seed: u16,
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
) -> String {
    let (ports, one_way) = match proto {
        TCP | UDP | SCTP => (Some((sport, dport)), false),
        ICMPV4 | ICMPV6 => {
            let kind = sport as u8;
            match icmp_counterpart(proto == ICMPV6, kind) {
                Some(other) => (Some((sport, u16::from(other))), false),
                None => (Some((sport, dport)), true),
            }
        }
        _ => (None, false),
    };
    let (sp, dp) = ports.unwrap_or((0, 0));
    let keep = one_way || (src, sp) < (dst, dp);
    let (a, b, ap, bp) = if keep {
        (src, dst, sp, dp)
    } else {
        (dst, src, dp, sp)
    };
    let mut input = [0u8; 2 + 16 + 16 + 2 + 4];
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        input[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(&seed.to_be_bytes());
    for ip in [a, b] {
        match ip {
            IpAddr::V4(v4) => put(&v4.octets()),
            IpAddr::V6(v6) => put(&v6.octets()),
        }
    }
    put(&[proto, 0]);
    if ports.is_some() {
        put(&ap.to_be_bytes());
        put(&bp.to_be_bytes());
    }
    let mut out = String::with_capacity(30);
    out.push_str("1:");
    base64(&sha1(&input[..n]), &mut out);
    out
}

/// Community ID of a flow, from its first packet (its direction matters only for one-way ICMP).
pub fn of_flow(seed: u16, f: &Flow) -> String {
    let v6 = f.client.ip.is_ipv6();
    let proto = ip_proto(f.proto, v6);
    match f.icmp_first() {
        Some((kind, code, from_server)) => {
            let (src, dst) = if from_server {
                (f.server.ip, f.client.ip)
            } else {
                (f.client.ip, f.server.ip)
            };
            community_id(seed, proto, src, dst, kind.into(), code.into())
        }
        None => community_id(
            seed,
            proto,
            f.client.ip,
            f.server.ip,
            f.client.port,
            f.server.port,
        ),
    }
}

/// SHA-1 (FIPS 180-4) of a short message; the specification's hash.
pub(crate) fn sha1(msg: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (msg.len() as u64).wrapping_mul(8);
    let mut padded = msg.to_vec();
    padded.push(0x80);
    while padded.len() % 64 != 56 {
        padded.push(0);
    }
    padded.extend_from_slice(&bit_len.to_be_bytes());
    for block in padded.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (o, x) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Standard base64 with padding (RFC 4648, section 4).
fn base64(data: &[u8], out: &mut String) {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha1_matches_fips_examples() {
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn base64_pads() {
        for (input, want) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v")] {
            let mut s = String::new();
            base64(input.as_bytes(), &mut s);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn the_specifications_readme_example() {
        // README of corelight/community-id-spec: TCP 128.232.110.120:34855 -> 66.35.250.204:80.
        let a: IpAddr = "128.232.110.120".parse().unwrap();
        let b: IpAddr = "66.35.250.204".parse().unwrap();
        let want = "1:LQU9qZlK+B5F3KDmev6m5PMibrg=";
        assert_eq!(community_id(0, TCP, a, b, 34855, 80), want);
        assert_eq!(community_id(0, TCP, b, a, 80, 34855), want);
        assert_eq!(
            community_id(1, TCP, a, b, 34855, 80),
            "1:3V71V58M3Ksw/yuFALMcW0LAHvc="
        );
    }
}
