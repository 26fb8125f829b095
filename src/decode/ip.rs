//! IPv4 / IPv6 headers with etherparse: addresses, transport protocol, fragmentation.
//!
//! Lengths are read the lax way (the rule of etherparse's `LaxIpv4Slice` / `LaxIpv6Slice`): a
//! packet cut short by the snap length keeps what was captured, and a length field that is zero or
//! too small to be true (segmentation offload on the capturing host) falls back to the captured
//! length; a length field that fits is used, which keeps Ethernet padding out of the payload.
//!
//! The header slices are etherparse's; the lax payload rule is applied here rather than through
//! `LaxIpv4Slice::from_slice`, whose large result and error values cost about a quarter of the
//! per-packet decode time (measured with callgrind on the corpus). IPv6 extension headers, which
//! few packets have, go through etherparse's `Ipv6ExtensionsSlice::from_slice_lax`.

use std::net::IpAddr;

use etherparse::err::{ip_auth, ipv4, ipv6, ipv6_exts};
use etherparse::{
    IpAuthHeaderSlice, IpNumber, Ipv4HeaderSlice, Ipv6ExtensionSlice, Ipv6ExtensionsSlice,
    Ipv6Header, Ipv6HeaderSlice,
};

use super::link::IpVersion;
use super::{Layer, SkipReason};
use crate::packet::Fragment;

/// What the IP layer says about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct L3<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number of the transport header (after IPv6 extension headers).
    pub ip_number: u8,
    /// Captured bytes from the transport header on; empty for a trailing fragment.
    pub payload: &'a [u8],
    pub fragment: Option<Fragment>,
}

impl L3<'_> {
    /// A non-first fragment: no transport header follows the IP headers.
    pub fn is_trailing_fragment(&self) -> bool {
        matches!(self.fragment, Some(f) if f.offset > 0)
    }
}

/// Parses the IP header(s) at the start of `bytes`. The version nibble must agree with what the
/// link layer announced.
#[inline(always)]
pub(super) fn parse(bytes: &[u8], announced: IpVersion) -> Result<L3<'_>, SkipReason> {
    let first = *bytes.first().ok_or(SkipReason::Truncated(Layer::Ip))?;
    match (announced, first >> 4) {
        (IpVersion::V4 | IpVersion::Any, 4) => parse_v4(bytes),
        (IpVersion::V6 | IpVersion::Any, 6) => parse_v6(bytes),
        _ => Err(SkipReason::Malformed(Layer::Ip)),
    }
}

/// IPv4. A header without options (nearly every packet) is read here, in line; others, and
/// every error, go through etherparse ([`parse_v4_options`]). The two agree on every input that
/// starts `0x45` (the test `a_plain_v4_header_reads_as_etherparse_reads_it`).
#[inline(always)]
fn parse_v4(bytes: &[u8]) -> Result<L3<'_>, SkipReason> {
    match bytes.first_chunk::<20>() {
        // Version 4, 5 words: what etherparse's `Ipv4HeaderSlice::from_slice` checks, for the
        // 20 bytes it then spans.
        Some(h) if h[0] == 0x45 => {
            let flags = u16::from_be_bytes([h[6], h[7]]);
            let more = flags & 0x2000 != 0;
            let offset = flags & 0x1fff;
            let fragment = (more || offset != 0).then(|| Fragment {
                id: u32::from(u16::from_be_bytes([h[4], h[5]])),
                offset: offset * 8,
                more,
            });
            let end = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let l3 = L3 {
                src: IpAddr::from([h[12], h[13], h[14], h[15]]),
                dst: IpAddr::from([h[16], h[17], h[18], h[19]]),
                ip_number: h[9],
                payload: lax_payload(bytes, 20, end),
                fragment,
            };
            v4_transport(l3)
        }
        _ => parse_v4_options(bytes),
    }
}

/// IPv4 through etherparse: headers with options, and every malformed one.
#[inline(never)]
fn parse_v4_options(bytes: &[u8]) -> Result<L3<'_>, SkipReason> {
    let header = Ipv4HeaderSlice::from_slice(bytes).map_err(v4_error)?;
    let fragment = header.is_fragmenting_payload().then(|| Fragment {
        id: u32::from(header.identification()),
        offset: header.fragments_offset().byte_offset(),
        more: header.more_fragments(),
    });
    let end = usize::from(header.total_len());
    let l3 = L3 {
        src: header.source_addr().into(),
        dst: header.destination_addr().into(),
        ip_number: header.protocol().0,
        payload: lax_payload(bytes, header.slice().len(), end),
        fragment,
    };
    v4_transport(l3)
}

/// What follows an IPv4 header: nothing readable after a trailing fragment, the transport
/// header after an authentication header.
#[inline(always)]
fn v4_transport(mut l3: L3<'_>) -> Result<L3<'_>, SkipReason> {
    if l3.is_trailing_fragment() {
        // Its data is not a transport or authentication header, whatever the protocol says.
        l3.payload = &[];
    } else if l3.ip_number == IpNumber::AUTHENTICATION_HEADER.0 {
        skip_auth_header(&mut l3)?;
    }
    Ok(l3)
}

/// IPsec AH over IPv4 (RFC 4302): the transport header follows it.
#[inline(never)]
fn skip_auth_header(l3: &mut L3<'_>) -> Result<(), SkipReason> {
    let auth = IpAuthHeaderSlice::from_slice(l3.payload).map_err(auth_error)?;
    l3.ip_number = auth.next_header().0;
    l3.payload = l3.payload.get(auth.slice().len()..).unwrap_or_default();
    Ok(())
}

fn parse_v6(bytes: &[u8]) -> Result<L3<'_>, SkipReason> {
    let header = Ipv6HeaderSlice::from_slice(bytes).map_err(v6_error)?;
    // A zero payload length is a jumbogram or segmentation offload: use what was captured.
    let end = match usize::from(header.payload_length()) {
        0 => bytes.len(),
        n => Ipv6Header::LEN + n,
    };
    let mut l3 = L3 {
        src: header.source_addr().into(),
        dst: header.destination_addr().into(),
        ip_number: header.next_header().0,
        payload: lax_payload(bytes, Ipv6Header::LEN, end),
        fragment: None,
    };
    if is_extension_header(l3.ip_number) {
        skip_extension_headers(&mut l3)?;
    }
    Ok(l3)
}

/// The IPv6 extension headers etherparse walks: hop-by-hop, routing, fragment, destination
/// options, authentication. (ESP ends the readable part of a packet anyway.)
fn is_extension_header(ip_number: u8) -> bool {
    matches!(
        IpNumber(ip_number),
        IpNumber::IPV6_HEADER_HOP_BY_HOP
            | IpNumber::IPV6_ROUTE_HEADER
            | IpNumber::IPV6_FRAGMENTATION_HEADER
            | IpNumber::IPV6_DESTINATION_OPTIONS
            | IpNumber::AUTHENTICATION_HEADER
    )
}

#[inline(never)]
fn skip_extension_headers(l3: &mut L3<'_>) -> Result<(), SkipReason> {
    let (exts, next_header, rest, ext_err) =
        Ipv6ExtensionsSlice::from_slice_lax(IpNumber(l3.ip_number), l3.payload);
    l3.ip_number = next_header.0;
    l3.payload = rest;
    if exts.is_fragmenting_payload() {
        if let Some((fragment, next_header)) = find_fragment(&exts) {
            l3.fragment = Some(fragment);
            if fragment.offset > 0 {
                // What etherparse read after the fragment header is data, not headers.
                l3.ip_number = next_header;
                l3.payload = &[];
                return Ok(());
            }
        }
    }
    match ext_err {
        Some((e, _)) => Err(ext_error(e)),
        None => Ok(()),
    }
}

/// The bytes from the end of the header to the end the length field names, or to the end of
/// the capture when the field is larger (snap length) or smaller than the header (offload).
#[inline]
fn lax_payload(bytes: &[u8], header_len: usize, end: usize) -> &[u8] {
    let end = if end < header_len || end > bytes.len() {
        bytes.len()
    } else {
        end
    };
    bytes.get(header_len..end).unwrap_or_default()
}

/// The first fragment header that fragments the payload, and its next-header value.
///
/// Walks only the headers etherparse parsed: the iterator re-reads them unchecked, and asking it
/// for one more after an extension-header error would read past them.
fn find_fragment(exts: &Ipv6ExtensionsSlice<'_>) -> Option<(Fragment, u8)> {
    let total = exts.slice().len();
    let mut seen = 0;
    let mut iter = exts.clone().into_iter();
    while seen < total {
        let ext = iter.next()?;
        seen += match &ext {
            Ipv6ExtensionSlice::HopByHop(s)
            | Ipv6ExtensionSlice::Routing(s)
            | Ipv6ExtensionSlice::DestinationOptions(s) => s.slice().len(),
            Ipv6ExtensionSlice::Fragment(s) => s.slice().len(),
            Ipv6ExtensionSlice::Authentication(s) => s.slice().len(),
        };
        if let Ipv6ExtensionSlice::Fragment(f) = ext {
            if f.is_fragmenting_payload() {
                let fragment = Fragment {
                    id: f.identification(),
                    offset: f.fragment_offset().byte_offset(),
                    more: f.more_fragments(),
                };
                return Some((fragment, f.next_header().0));
            }
        }
    }
    None
}

fn v4_error(e: ipv4::HeaderSliceError) -> SkipReason {
    match e {
        ipv4::HeaderSliceError::Len(_) => SkipReason::Truncated(Layer::Ip),
        ipv4::HeaderSliceError::Content(_) => SkipReason::Malformed(Layer::Ip),
    }
}

fn v6_error(e: ipv6::HeaderSliceError) -> SkipReason {
    match e {
        ipv6::HeaderSliceError::Len(_) => SkipReason::Truncated(Layer::Ip),
        ipv6::HeaderSliceError::Content(_) => SkipReason::Malformed(Layer::Ip),
    }
}

fn auth_error(e: ip_auth::HeaderSliceError) -> SkipReason {
    match e {
        ip_auth::HeaderSliceError::Len(_) => SkipReason::Truncated(Layer::Ip),
        ip_auth::HeaderSliceError::Content(_) => SkipReason::Malformed(Layer::Ip),
    }
}

fn ext_error(e: ipv6_exts::HeaderSliceError) -> SkipReason {
    match e {
        ipv6_exts::HeaderSliceError::Len(_) => SkipReason::Truncated(Layer::Ip),
        ipv6_exts::HeaderSliceError::Content(_) => SkipReason::Malformed(Layer::Ip),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{
        IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader,
    };

    fn v4(proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = Ipv4Header::new(
            payload.len() as u16,
            64,
            IpNumber(proto),
            [10, 0, 0, 1],
            [10, 0, 0, 2],
        )
        .unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    fn v6_header(next: u8, payload_len: usize) -> Vec<u8> {
        Ipv6Header {
            payload_length: payload_len as u16,
            next_header: IpNumber(next),
            hop_limit: 64,
            source: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            destination: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            ..Default::default()
        }
        .to_bytes()
        .to_vec()
    }

    #[test]
    fn ipv4_payload_stops_at_total_length() {
        let mut pkt = v4(17, &[1, 2, 3, 4, 5, 6, 7, 8]);
        pkt.extend_from_slice(&[0; 18]); // Ethernet padding
        let l3 = parse(&pkt, IpVersion::V4).unwrap();
        assert_eq!(l3.ip_number, 17);
        assert_eq!(l3.payload, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(l3.src, IpAddr::from([10, 0, 0, 1]));
        assert_eq!(l3.fragment, None);
    }

    #[test]
    fn ipv4_cut_by_snaplen_keeps_captured_part() {
        let pkt = v4(6, &[9; 100]);
        let l3 = parse(&pkt[..30], IpVersion::Any).unwrap();
        assert_eq!(l3.payload, &[9; 10]);
    }

    #[test]
    fn ipv4_zero_total_length_uses_captured_length() {
        let mut pkt = v4(6, &[9; 40]);
        pkt[2..4].copy_from_slice(&[0, 0]);
        assert_eq!(parse(&pkt, IpVersion::V4).unwrap().payload.len(), 40);
    }

    #[test]
    fn truncated_and_malformed_headers() {
        let pkt = v4(6, &[]);
        for n in 0..20 {
            assert_eq!(
                parse(&pkt[..n], IpVersion::V4),
                Err(SkipReason::Truncated(Layer::Ip)),
                "{n}"
            );
        }
        let mut bad_ihl = pkt.clone();
        bad_ihl[0] = 0x44;
        assert_eq!(
            parse(&bad_ihl, IpVersion::V4),
            Err(SkipReason::Malformed(Layer::Ip))
        );
        let mut options_cut = pkt.clone();
        options_cut[0] = 0x46;
        assert_eq!(
            parse(&options_cut, IpVersion::V4),
            Err(SkipReason::Truncated(Layer::Ip))
        );
        assert_eq!(
            parse(&pkt, IpVersion::V6),
            Err(SkipReason::Malformed(Layer::Ip))
        );
        assert_eq!(
            parse(&[0x50; 40], IpVersion::Any),
            Err(SkipReason::Malformed(Layer::Ip))
        );
        let h6 = v6_header(17, 0);
        for n in 1..40 {
            assert_eq!(
                parse(&h6[..n], IpVersion::V6),
                Err(SkipReason::Truncated(Layer::Ip)),
                "{n}"
            );
        }
    }

    #[test]
    fn ipv4_fragments() {
        let mut first = v4(17, &[0, 53, 4, 0, 0, 0, 0, 0]);
        first[4..8].copy_from_slice(&[0x12, 0x34, 0x20, 0x00]); // id 0x1234, MF
        let l3 = parse(&first, IpVersion::V4).unwrap();
        assert_eq!(
            l3.fragment,
            Some(Fragment {
                id: 0x1234,
                offset: 0,
                more: true
            })
        );
        assert_eq!(l3.payload.len(), 8);

        let mut rest = v4(17, &[0xaa; 16]);
        rest[4..8].copy_from_slice(&[0x12, 0x34, 0x00, 0xb9]); // offset 185 * 8, last
        let l3 = parse(&rest, IpVersion::V4).unwrap();
        assert_eq!(
            l3.fragment,
            Some(Fragment {
                id: 0x1234,
                offset: 1480,
                more: false
            })
        );
        assert!(l3.is_trailing_fragment());
        assert_eq!((l3.ip_number, l3.payload), (17, &[][..]));
    }

    #[test]
    fn ipv4_trailing_fragment_of_auth_header_is_not_parsed_as_auth() {
        let mut rest = v4(51, &[0xff; 3]);
        rest[6..8].copy_from_slice(&[0x00, 0x10]);
        let l3 = parse(&rest, IpVersion::V4).unwrap();
        assert_eq!(l3.ip_number, 51);
        assert!(l3.is_trailing_fragment());
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        let hop = Ipv6RawExtHeader::new_raw(IpNumber(60), &[0; 6])
            .unwrap()
            .to_bytes();
        let dst = Ipv6RawExtHeader::new_raw(IpNumber(6), &[0; 6])
            .unwrap()
            .to_bytes();
        let mut pkt = v6_header(0, hop.len() + dst.len() + 20);
        pkt.extend_from_slice(&hop);
        pkt.extend_from_slice(&dst);
        pkt.extend_from_slice(&[7; 20]);
        let l3 = parse(&pkt, IpVersion::V6).unwrap();
        assert_eq!((l3.ip_number, l3.payload), (6, &[7; 20][..]));
        // Extension header cut short.
        assert_eq!(
            parse(&pkt[..44], IpVersion::V6),
            Err(SkipReason::Truncated(Layer::Ip))
        );
    }

    #[test]
    fn ipv6_fragments() {
        let frag = |offset: u16, more: bool| {
            let h = Ipv6FragmentHeader::new(
                IpNumber(17),
                IpFragOffset::try_new(offset).unwrap(),
                more,
                0xdead_beef,
            );
            let mut pkt = v6_header(44, 8 + 16);
            pkt.extend_from_slice(&h.to_bytes());
            pkt.extend_from_slice(&[0x3c; 16]); // looks like a destination-options header
            pkt
        };
        let pkt = frag(0, true);
        let l3 = parse(&pkt, IpVersion::Any).unwrap();
        assert_eq!(
            l3.fragment,
            Some(Fragment {
                id: 0xdead_beef,
                offset: 0,
                more: true
            })
        );
        assert_eq!((l3.ip_number, l3.payload.len()), (17, 16));

        let pkt = frag(2, false);
        let l3 = parse(&pkt, IpVersion::Any).unwrap();
        assert_eq!(
            l3.fragment,
            Some(Fragment {
                id: 0xdead_beef,
                offset: 16,
                more: false
            })
        );
        assert_eq!((l3.ip_number, l3.payload), (17, &[][..]));

        // An atomic fragment (offset 0, no more) is not a fragment.
        let pkt = frag(0, false);
        let l3 = parse(&pkt, IpVersion::Any).unwrap();
        assert_eq!(l3.fragment, None);
    }

    #[test]
    fn ipv6_trailing_fragment_ignores_garbage_after_fragment_header() {
        let h = Ipv6FragmentHeader::new(IpNumber(60), IpFragOffset::try_new(5).unwrap(), true, 7);
        let mut pkt = v6_header(44, 8 + 3);
        pkt.extend_from_slice(&h.to_bytes());
        pkt.extend_from_slice(&[1, 2, 3]);
        let l3 = parse(&pkt, IpVersion::V6).unwrap();
        assert_eq!(
            l3.fragment,
            Some(Fragment {
                id: 7,
                offset: 40,
                more: true
            })
        );
        assert_eq!(l3.ip_number, 60);
    }

    proptest::proptest! {
        /// The in-line reading of a plain IPv4 header gives what etherparse's gives, on any
        /// bytes that start like one: fragments, lengths too large, too small, or zero, AH.
        #[test]
        fn a_plain_v4_header_reads_as_etherparse_reads_it(
            mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            proto in proptest::sample::select(vec![6u8, 17, 1, 51, 50]),
            flags in proptest::prelude::any::<u16>(),
        ) {
            if let Some(first) = bytes.first_mut() {
                *first = 0x45;
            }
            if bytes.len() >= 20 {
                bytes[9] = proto;
                // Mostly unfragmented, as traffic is; any flags and offset otherwise.
                let flags = if flags % 4 == 0 { flags } else { flags & 0x4000 };
                bytes[6..8].copy_from_slice(&flags.to_be_bytes());
            }
            proptest::prop_assert_eq!(parse_v4(&bytes), parse_v4_options(&bytes));
        }
    }
}
