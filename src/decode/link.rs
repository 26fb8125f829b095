//! Link layers, parsed by hand: strips a frame down to the IP packet it carries.
//!
//! etherparse has no BSD null/loopback, SLL2 or PPPoE, and its Ethernet path does work exflow
//! does not need (MAC addresses, MACsec, ARP), so the few fixed-offset headers are read here.

use super::{Layer, SkipReason};
use crate::bytes::be16;

/// `LINKTYPE_*` values (<https://www.tcpdump.org/linktypes.html>) that [`super::decode`] accepts.
pub mod linktype {
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II (and 802.3, which is skipped as non-IP).
    pub const ETHERNET: u32 = 1;
    /// `DLT_RAW` as some systems write it into capture files instead of [`RAW`].
    pub const RAW_DLT_12: u32 = 12;
    /// `DLT_RAW` on OpenBSD, likewise.
    pub const RAW_DLT_14: u32 = 14;
    /// Raw IP: IPv4 or IPv6 by the version nibble.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: like [`NULL`] but the family is in network byte order.
    pub const LOOP: u32 = 108;
    /// Linux "cooked" capture v1 (`tcpdump -i any` before libpcap 1.10).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4 only.
    pub const IPV4: u32 = 228;
    /// Raw IPv6 only.
    pub const IPV6: u32 = 229;
    /// Linux "cooked" capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

/// Which IP version the link layer announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum IpVersion {
    /// Only the version nibble tells (raw IP, MPLS).
    Any,
    V4,
    V6,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;

const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

const ETHERNET_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
const PPPOE_LEN: usize = 6;
const MPLS_LABEL_LEN: usize = 4;
const SLL_LEN: usize = 16;
const SLL2_LEN: usize = 20;
const NULL_LEN: usize = 4;

/// Returns the bytes from the start of the IP header, and the IP version the link layer named.
#[inline]
pub(super) fn strip(link_type: u32, data: &[u8]) -> Result<(&[u8], IpVersion), SkipReason> {
    // Nearly every capture is Ethernet carrying IPv4: test for that before the general matches.
    if link_type == linktype::ETHERNET {
        return ethernet(data);
    }
    match link_type {
        linktype::LINUX_SLL => linux_sll(data),
        linktype::LINUX_SLL2 => linux_sll2(data),
        linktype::RAW | linktype::RAW_DLT_12 | linktype::RAW_DLT_14 => Ok((data, IpVersion::Any)),
        linktype::IPV4 => Ok((data, IpVersion::V4)),
        linktype::IPV6 => Ok((data, IpVersion::V6)),
        linktype::NULL | linktype::LOOP => null(data),
        n => Err(SkipReason::UnsupportedLinkType(n)),
    }
}

fn truncated() -> SkipReason {
    SkipReason::Truncated(Layer::Link)
}

#[inline]
fn ethernet(data: &[u8]) -> Result<(&[u8], IpVersion), SkipReason> {
    let ethertype = be16(data, 12).ok_or_else(truncated)?;
    let rest = data.get(ETHERNET_LEN..).unwrap_or_default();
    if ethertype == ETHERTYPE_IPV4 {
        return Ok((rest, IpVersion::V4));
    }
    ethertype_payload(ethertype, rest)
}

/// Follows an EtherType through VLAN tags, PPPoE and MPLS to IP.
///
/// Each tag consumes 4 bytes, so the loop ends when the frame does.
fn ethertype_payload(
    mut ethertype: u16,
    mut rest: &[u8],
) -> Result<(&[u8], IpVersion), SkipReason> {
    loop {
        match ethertype {
            ETHERTYPE_IPV4 => return Ok((rest, IpVersion::V4)),
            ETHERTYPE_IPV6 => return Ok((rest, IpVersion::V6)),
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                ethertype = be16(rest, 2).ok_or_else(truncated)?;
                rest = rest.get(VLAN_TAG_LEN..).unwrap_or_default();
            }
            ETHERTYPE_PPPOE_SESSION => return pppoe_session(rest),
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => return mpls(rest),
            // ARP, LLDP, IPX, 802.3 length fields (< 0x600) for STP / NetBIOS LLC, ...
            _ => return Err(SkipReason::NonIp),
        }
    }
}

/// PPPoE session header (RFC 2516), then the PPP protocol field (RFC 1661), which may be
/// compressed to one byte (its low bit is then set).
fn pppoe_session(data: &[u8]) -> Result<(&[u8], IpVersion), SkipReason> {
    let ppp = data.get(PPPOE_LEN..).ok_or_else(truncated)?;
    let first = *ppp.first().ok_or_else(truncated)?;
    let (protocol, len) = if first & 1 == 1 {
        (u16::from(first), 1)
    } else {
        (be16(ppp, 0).ok_or_else(truncated)?, 2)
    };
    let rest = ppp.get(len..).unwrap_or_default();
    match protocol {
        PPP_IPV4 => Ok((rest, IpVersion::V4)),
        PPP_IPV6 => Ok((rest, IpVersion::V6)),
        // LCP, IPCP, CHAP, ...
        _ => Err(SkipReason::NonIp),
    }
}

/// MPLS label stack (RFC 3032): labels up to the bottom-of-stack bit, then IP by version nibble.
fn mpls(mut data: &[u8]) -> Result<(&[u8], IpVersion), SkipReason> {
    loop {
        let bottom = data.get(2).ok_or_else(truncated)? & 1 == 1;
        data = data.get(MPLS_LABEL_LEN..).ok_or_else(truncated)?;
        if bottom {
            break;
        }
    }
    match data.first().map(|b| b >> 4) {
        Some(4) => Ok((data, IpVersion::V4)),
        Some(6) => Ok((data, IpVersion::V6)),
        None => Err(SkipReason::Truncated(Layer::Ip)),
        // Ethernet pseudowire, control word, ...
        Some(_) => Err(SkipReason::NonIp),
    }
}

/// Linux cooked v1: packet type, ARPHRD type, address length, 8 address bytes, protocol.
/// For the link types exflow sees, the protocol field is an EtherType (and VLAN tags that were
/// not offloaded follow it); 802.2/802.3 frames use small values that fall out as non-IP.
fn linux_sll(data: &[u8]) -> Result<(&[u8], IpVersion), SkipReason> {
    let protocol = be16(data, 14).ok_or_else(truncated)?;
    ethertype_payload(protocol, data.get(SLL_LEN..).unwrap_or_default())
}

/// Linux cooked v2: protocol, reserved, interface index, ARPHRD type, packet type, address
/// length, 8 address bytes.
fn linux_sll2(data: &[u8]) -> Result<(&[u8], IpVersion), SkipReason> {
    let rest = data.get(SLL2_LEN..).ok_or_else(truncated)?;
    let protocol = be16(data, 0).ok_or_else(truncated)?;
    ethertype_payload(protocol, rest)
}

/// BSD null / OpenBSD loop: a 4-byte address family. Its byte order is the capturing host's
/// (null) or network order (loop); files get moved between machines, so both are tried. The
/// values cannot collide: a family read in the wrong order is at least 2^24.
fn null(data: &[u8]) -> Result<(&[u8], IpVersion), SkipReason> {
    let af: [u8; NULL_LEN] = data
        .get(..NULL_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(truncated)?;
    let rest = data.get(NULL_LEN..).unwrap_or_default();
    match address_family(u32::from_le_bytes(af)).or(address_family(u32::from_be_bytes(af))) {
        Some(version) => Ok((rest, version)),
        None => Err(SkipReason::NonIp),
    }
}

/// `AF_INET` is 2 everywhere; `AF_INET6` is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD),
/// 30 (macOS).
fn address_family(af: u32) -> Option<IpVersion> {
    match af {
        2 => Some(IpVersion::V4),
        10 | 24 | 28 | 30 => Some(IpVersion::V6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &[u8] = &[0x45, 0, 0, 20];

    fn eth(ethertype: u16, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn ethernet_ipv4_and_ipv6() {
        let f = eth(0x0800, IP);
        assert_eq!(strip(1, &f), Ok((IP, IpVersion::V4)));
        let f = eth(0x86dd, IP);
        assert_eq!(strip(1, &f), Ok((IP, IpVersion::V6)));
    }

    #[test]
    fn ethernet_short_header_is_truncated_link() {
        for n in 0..14 {
            let f = eth(0x0800, &[]);
            assert_eq!(
                strip(1, &f[..n]),
                Err(SkipReason::Truncated(Layer::Link)),
                "len {n}"
            );
        }
        // A complete header with nothing after it: the IP layer reports the truncation.
        assert_eq!(strip(1, &eth(0x0800, &[])), Ok((&[][..], IpVersion::V4)));
    }

    #[test]
    fn non_ip_ethertypes() {
        for et in [0x0806u16, 0x88cc, 0x0026, 0x05dc, 0x8035, 0x8863] {
            assert_eq!(strip(1, &eth(et, IP)), Err(SkipReason::NonIp), "{et:#x}");
        }
    }

    #[test]
    fn vlan_qinq_stacks() {
        let mut rest = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x14, 0x08, 0x00];
        rest.extend_from_slice(IP);
        for outer in [0x8100u16, 0x88a8, 0x9100] {
            assert_eq!(
                strip(1, &eth(outer, &rest)),
                Ok((IP, IpVersion::V4)),
                "{outer:#x}"
            );
        }
        // Tag cut in half.
        assert_eq!(
            strip(1, &eth(0x8100, &[0, 1, 0x08])),
            Err(SkipReason::Truncated(Layer::Link))
        );
    }

    #[test]
    fn pppoe_ipv4_ipv6_lcp_compressed() {
        let hdr = [0x11, 0x00, 0x12, 0x34, 0x00, 0x20];
        let frame = |proto: &[u8]| {
            let mut v = hdr.to_vec();
            v.extend_from_slice(proto);
            v.extend_from_slice(IP);
            eth(0x8864, &v)
        };
        assert_eq!(strip(1, &frame(&[0x00, 0x21])), Ok((IP, IpVersion::V4)));
        assert_eq!(strip(1, &frame(&[0x00, 0x57])), Ok((IP, IpVersion::V6)));
        assert_eq!(strip(1, &frame(&[0x21])), Ok((IP, IpVersion::V4)));
        assert_eq!(strip(1, &frame(&[0xc0, 0x21])), Err(SkipReason::NonIp));
        assert_eq!(
            strip(1, &eth(0x8864, &hdr)),
            Err(SkipReason::Truncated(Layer::Link))
        );
        assert_eq!(
            strip(1, &eth(0x8864, &hdr[..5])),
            Err(SkipReason::Truncated(Layer::Link))
        );
    }

    #[test]
    fn mpls_stack() {
        let mut rest = vec![0, 0, 0x10, 64, 0, 0, 0x21, 64];
        rest.extend_from_slice(IP);
        assert_eq!(strip(1, &eth(0x8847, &rest)), Ok((IP, IpVersion::V4)));
        assert_eq!(
            strip(1, &eth(0x8847, &rest[..6])),
            Err(SkipReason::Truncated(Layer::Link))
        );
        assert_eq!(
            strip(1, &eth(0x8847, &rest[..8])),
            Err(SkipReason::Truncated(Layer::Ip))
        );
        let pw = [0, 0, 0x21, 64, 0, 0, 0, 0];
        assert_eq!(strip(1, &eth(0x8847, &pw)), Err(SkipReason::NonIp));
    }

    #[test]
    fn linux_sll_v1_and_v2() {
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xdd];
        sll.extend_from_slice(IP);
        assert_eq!(strip(113, &sll), Ok((IP, IpVersion::V6)));
        assert_eq!(
            strip(113, &sll[..15]),
            Err(SkipReason::Truncated(Layer::Link))
        );
        sll[14..16].copy_from_slice(&[0, 4]); // 802.2 LLC
        assert_eq!(strip(113, &sll), Err(SkipReason::NonIp));

        let mut sll2 = vec![
            0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend_from_slice(IP);
        assert_eq!(strip(276, &sll2), Ok((IP, IpVersion::V4)));
        assert_eq!(
            strip(276, &sll2[..19]),
            Err(SkipReason::Truncated(Layer::Link))
        );
    }

    #[test]
    fn raw_variants() {
        for lt in [101, 12, 14] {
            assert_eq!(strip(lt, IP), Ok((IP, IpVersion::Any)));
        }
        assert_eq!(strip(228, IP), Ok((IP, IpVersion::V4)));
        assert_eq!(strip(229, IP), Ok((IP, IpVersion::V6)));
    }

    #[test]
    fn null_and_loop_both_byte_orders() {
        for (af, v) in [
            (2u32, IpVersion::V4),
            (10, IpVersion::V6),
            (24, IpVersion::V6),
            (28, IpVersion::V6),
            (30, IpVersion::V6),
        ] {
            for bytes in [af.to_le_bytes(), af.to_be_bytes()] {
                let mut f = bytes.to_vec();
                f.extend_from_slice(IP);
                for lt in [0, 108] {
                    assert_eq!(strip(lt, &f), Ok((IP, v)), "af {af} lt {lt}");
                }
            }
        }
        assert_eq!(strip(0, &[7, 0, 0, 0]), Err(SkipReason::NonIp));
        assert_eq!(
            strip(0, &[2, 0, 0]),
            Err(SkipReason::Truncated(Layer::Link))
        );
    }

    #[test]
    fn unsupported_link_types() {
        for lt in [105, 127, 147, 9, 50] {
            assert_eq!(strip(lt, IP), Err(SkipReason::UnsupportedLinkType(lt)));
        }
    }
}
