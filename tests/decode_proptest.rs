//! Property tests: `decode` never panics on any bytes for any link type, keeps its payload inside
//! the captured bytes, and the fragment tracker never panics whatever it is fed.
//!
//! Random bytes rarely get past the link layer, so besides plain noise the frames are also
//! valid packets (Ethernet/VLAN/PPPoE/SLL/SLL2/null headers around IPv4/IPv6, TCP/UDP/ICMP and
//! ICMP errors quoting packets) with random bytes overwritten and a random snap length.

use etherparse::PacketBuilder;
use exflow::decode::{decode, FragmentTracker};
use exflow::packet::{Packet, RawPacket};
use proptest::prelude::*;

const LINK_TYPES: [u32; 11] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147];

fn raw(link_type: u32, data: &[u8]) -> RawPacket<'_> {
    RawPacket {
        ts: 0,
        link_type,
        data,
        wire_len: data.len() as u32,
    }
}

/// The packet's payload lies within the frame's bytes.
fn payload_within(p: &Packet<'_>, data: &[u8]) -> bool {
    let start = data.as_ptr() as usize;
    let end = start + data.len();
    let at = p.payload.as_ptr() as usize;
    p.payload.is_empty() || (at >= start && at + p.payload.len() <= end)
}

/// An IP packet: which transport, which version, payload.
fn ip_packet(kind: u8, v6: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let (a4, b4) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    let (a6, b6) = ([1; 16], [2; 16]);
    macro_rules! build {
        ($step:expr) => {
            $step.write(&mut v, payload).unwrap()
        };
    }
    match (kind % 4, v6) {
        (0, false) => build!(PacketBuilder::ipv4(a4, b4, 9).tcp(1, 2, 3, 4).syn()),
        (0, true) => build!(PacketBuilder::ipv6(a6, b6, 9).tcp(1, 2, 3, 4).ack(5)),
        (1, false) => build!(PacketBuilder::ipv4(a4, b4, 9).udp(53, 5353)),
        (1, true) => build!(PacketBuilder::ipv6(a6, b6, 9).udp(53, 5353)),
        (2, false) => build!(PacketBuilder::ipv4(a4, b4, 9).icmpv4_raw(3, 13, [0; 4])),
        (2, true) => build!(PacketBuilder::ipv6(a6, b6, 9).icmpv6_raw(1, 1, [0; 4])),
        (_, false) => build!(PacketBuilder::ipv4(a4, b4, 9).icmpv4_echo_request(7, 8)),
        (_, true) => build!(PacketBuilder::ipv6(a6, b6, 9).icmpv6_echo_reply(7, 8)),
    }
    v
}

/// Wraps an IP packet in the link header of `link_type`.
fn frame(link_type: u32, shim: u8, v6: bool, ip: &[u8]) -> Vec<u8> {
    let ethertype: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    let mut f = Vec::new();
    match link_type {
        1 => {
            f.extend_from_slice(&[0; 12]);
            match shim % 4 {
                0 => {}
                1 => f.extend_from_slice(&[0x81, 0x00, 0, 1]),
                2 => f.extend_from_slice(&[0x88, 0xa8, 0, 1, 0x81, 0x00, 0, 2]),
                _ => {
                    f.extend_from_slice(&[0x88, 0x64, 0x11, 0, 0, 1, 0, 0]);
                    f.extend_from_slice(if v6 { &[0x00, 0x57] } else { &[0x00, 0x21] });
                    f.extend_from_slice(ip);
                    return f;
                }
            }
            f.extend_from_slice(&ethertype);
        }
        113 => {
            f.extend_from_slice(&[0; 14]);
            f.extend_from_slice(&ethertype);
        }
        276 => {
            f.extend_from_slice(&ethertype);
            f.extend_from_slice(&[0; 18]);
        }
        0 | 108 => {
            let af: u32 = if v6 { 30 } else { 2 };
            let bytes = if shim & 1 == 0 {
                af.to_le_bytes()
            } else {
                af.to_be_bytes()
            };
            f.extend_from_slice(&bytes);
        }
        _ => {}
    }
    f.extend_from_slice(ip);
    f
}

/// A valid frame, then some bytes overwritten, then cut to a snap length.
fn mutated_frame() -> impl Strategy<Value = (u32, Vec<u8>)> {
    (
        prop::sample::select(&LINK_TYPES[..]),
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        any::<usize>(),
        prop::option::of(any::<[u8; 2]>()),
    )
        .prop_map(|(lt, kind, shim, v6, quote, payload, edits, cut, frag)| {
            let mut ip = ip_packet(kind, v6, &payload);
            if let (Some(bits), false) = (frag, v6) {
                // IPv4 flags and fragment offset.
                ip[6..8].copy_from_slice(&bits);
            }
            if quote {
                // An ICMP error quoting this packet.
                ip = ip_packet(2, v6, &ip);
            }
            let mut f = frame(lt, shim, v6, &ip);
            for (at, byte) in edits {
                if !f.is_empty() {
                    let i = at % f.len();
                    f[i] = byte;
                }
            }
            if cut & 1 == 1 {
                f.truncate(cut / 2 % (f.len() + 1));
            }
            (lt, f)
        })
}

fn check(lt: u32, data: &[u8], tracker: &mut FragmentTracker) -> Result<(), TestCaseError> {
    let r = raw(lt, data);
    if let Ok(mut p) = decode(&r) {
        prop_assert_eq!(p.wire_len, r.wire_len);
        prop_assert!(payload_within(&p, data));
        if p.is_trailing_fragment() {
            prop_assert!(p.payload.is_empty());
        }
        tracker.resolve(&mut p);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn noise_never_panics(
        lt in prop::sample::select(&LINK_TYPES[..]),
        data in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        check(lt, &data, &mut FragmentTracker::new(8))?;
    }

    #[test]
    fn noise_after_valid_ip_nibble_never_panics(
        lt in prop::sample::select(&[101u32, 228, 229][..]),
        v6 in any::<bool>(),
        mut data in prop::collection::vec(any::<u8>(), 1..120),
    ) {
        data[0] = if v6 { 0x60 | (data[0] & 0xf) } else { 0x45 };
        check(lt, &data, &mut FragmentTracker::new(8))?;
    }

    #[test]
    fn mutated_packets_never_panic((lt, data) in mutated_frame()) {
        check(lt, &data, &mut FragmentTracker::new(8))?;
    }

    #[test]
    fn any_link_type_never_panics(
        lt in any::<u32>(),
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        check(lt, &data, &mut FragmentTracker::new(1))?;
    }

    #[test]
    fn built_frames_decode(
        lt in prop::sample::select(&[0u32, 1, 12, 14, 101, 108, 113, 276][..]),
        kind in any::<u8>(),
        shim in any::<u8>(),
        v6 in any::<bool>(),
        quote in any::<bool>(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        // Checks the generator behind the other properties: unmutated, its frames are valid.
        let mut ip = ip_packet(kind, v6, &payload);
        if quote {
            ip = ip_packet(2, v6, &ip);
        }
        let f = frame(lt, shim, v6, &ip);
        let p = decode(&raw(lt, &f));
        prop_assert!(p.is_ok(), "{:?}", p);
        let unreachable = p.unwrap().unreachable;
        if quote {
            prop_assert!(unreachable.is_some());
        } else if kind % 4 != 2 {
            prop_assert!(unreachable.is_none());
        }
    }

    #[test]
    fn tracker_survives_a_stream(frames in prop::collection::vec(mutated_frame(), 1..64)) {
        let mut tracker = FragmentTracker::new(4);
        for (lt, data) in &frames {
            check(*lt, data, &mut tracker)?;
        }
        prop_assert!(tracker.len() <= tracker.capacity());
    }
}
