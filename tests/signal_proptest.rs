//! Property tests of the H.323 signalling parsers: no input panics any of them, and the TPKT
//! reassembler rebuilds exactly the frames that were sent, whatever the segmentation, and never
//! emits bytes that were not contiguous in the stream.

use exflow::signal::h245::Carrier;
use exflow::signal::tpkt::split_frame;
use exflow::signal::{h225, h245, q931, ras, UuieKind};
use exflow::track::TpktStream;
use proptest::prelude::*;

fn tpkt(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![3, 0];
    v.extend_from_slice(&((payload.len() + 4) as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn every_parser(bytes: &[u8]) {
    let mut sink = |_| {};
    let _ = q931::parse(bytes);
    let _ = split_frame(bytes);
    let _ = h225::parse_frame(bytes, &mut sink);
    let _ = h225::parse_user_information(bytes, &mut sink);
    let _ = h245::parse_frame(bytes, &mut sink);
    let _ = h245::parse_message(bytes, Carrier::Tunnelled(UuieKind::Facility), &mut sink);
    let fast_start = Carrier::FastStart(UuieKind::Setup);
    let _ = h245::parse_open_logical_channel(bytes, fast_start, &mut sink);
    let _ = ras::parse(bytes, &mut sink);
}

/// The DCE/RPC parsers on `bytes` as a PDU, as an endpoint-mapper stub in both byte orders and
/// as a tower.
fn every_dcerpc_parser(bytes: &[u8]) {
    use exflow::signal::dcerpc::{self, Order};
    let _ = dcerpc::parse_bind(bytes);
    let _ = dcerpc::parse_bind_ack(bytes);
    let _ = dcerpc::parse_request(bytes);
    let _ = dcerpc::parse_response(bytes);
    for order in [Order::Little, Order::Big] {
        for opnum in [dcerpc::OPNUM_EPT_MAP, dcerpc::OPNUM_EPT_LOOKUP] {
            let _ = dcerpc::parse_epm_response(bytes, opnum, order);
        }
    }
    let _ = dcerpc::parse_tower(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_dcerpc(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        every_dcerpc_parser(&bytes);
    }

    /// A valid version-5 header with a matching frag_len, so the body parsers see arbitrary input.
    #[test]
    fn arbitrary_dcerpc_bodies_never_panic(
        ptype in prop::sample::select(vec![0u8, 2, 11, 12, 14, 15]),
        little in any::<bool>(),
        auth_len in 0u16..64,
        body in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let len = (16 + body.len()) as u16;
        let mut pdu = vec![5, 0, ptype, 3, if little { 0x10 } else { 0 }, 0, 0, 0];
        let (l, a) = if little {
            (len.to_le_bytes(), auth_len.to_le_bytes())
        } else {
            (len.to_be_bytes(), auth_len.to_be_bytes())
        };
        pdu.extend(l);
        pdu.extend(a);
        pdu.extend([0, 0, 0, 1]);
        pdu.extend(&body);
        every_dcerpc_parser(&pdu);
        if body.len() > 8 {
            every_dcerpc_parser(&body[8..]);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        every_parser(&bytes);
    }

    /// A valid Q.931 head so that the PER decoder behind it sees arbitrary input.
    #[test]
    fn arbitrary_user_information_never_panics(
        msg_type in prop_oneof![Just(5u8), Just(2), Just(7), Just(1), Just(0x62), Just(0x5a)],
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut frame = vec![0x08, 0x02, 0x12, 0x34, msg_type, 0x7e];
        frame.extend_from_slice(&((body.len() + 1) as u16).to_be_bytes());
        frame.push(0x05);
        frame.extend_from_slice(&body);
        let _ = h225::parse_frame(&frame, &mut |_| {});
    }

    /// Arbitrary segments of a stream of random TPKTs, delivered with adjacent swaps and
    /// retransmissions, come out as exactly the frames sent, in order.
    #[test]
    fn reassembly_rebuilds_the_frames(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..12),
        cuts in proptest::collection::vec(1usize..200, 1..40),
        swaps in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        repeats in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        isn in any::<u32>(),
        announce_start in any::<bool>(),
    ) {
        let stream: Vec<u8> = payloads.iter().flat_map(|p| tpkt(p)).collect();
        let mut segments = Vec::new();
        let (mut pos, mut i) = (0, 0);
        while pos < stream.len() {
            let len = cuts[i % cuts.len()].min(stream.len() - pos);
            segments.push((pos, len));
            pos += len;
            i += 1;
        }
        // Adjacent swaps, but never before the first segment unless the start is announced.
        for s in &swaps {
            let k = s.index(segments.len());
            if k + 1 < segments.len() && (k > 0 || announce_start) {
                segments.swap(k, k + 1);
            }
        }
        // Retransmit some segment right after a later one.
        for r in &repeats {
            let k = r.index(segments.len());
            let again = segments[k];
            segments.insert((k + 2).min(segments.len()), again);
        }
        let mut s = TpktStream::new();
        if announce_start {
            s.start(isn);
        }
        let mut out = Vec::new();
        for (off, len) in segments {
            let seq = isn.wrapping_add(off as u32);
            s.push(seq, &stream[off..off + len], |f| out.push(f.to_vec()));
        }
        prop_assert_eq!(out, payloads);
        prop_assert_eq!(s.buffered(), 0);
    }

    /// Windows of a byte stream in any order, with holes and overlaps: whatever is emitted was a
    /// contiguous TPKT in the stream.
    #[test]
    fn reassembly_never_stitches_across_holes(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..120), 1..10),
        junk in proptest::collection::vec(any::<u8>(), 0..40),
        windows in proptest::collection::vec((0usize..1500, 1usize..300), 1..40),
        isn in any::<u32>(),
    ) {
        let mut stream = junk.clone();
        for f in &frames {
            stream.extend(tpkt(f));
        }
        let mut s = TpktStream::with_capacity(1024);
        let mut out = Vec::new();
        for (off, len) in windows {
            let off = off % stream.len();
            let end = (off + len).min(stream.len());
            let seq = isn.wrapping_add(off as u32);
            s.push(seq, &stream[off..end], |f| out.push(f.to_vec()));
        }
        for f in out {
            let framed = tpkt(&f);
            let found = stream.windows(framed.len()).any(|w| w == framed.as_slice());
            prop_assert!(found, "emitted bytes were not a TPKT of the stream: {:?}", f);
        }
    }
}
