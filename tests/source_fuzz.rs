//! Property tests: `CaptureReader` never panics, whatever the bytes, and always ends.

use std::io::Cursor;

use exflow::source::CaptureReader;
use proptest::prelude::*;

/// Reads everything; the reader must stop after at most one packet per input byte plus one.
fn drain(bytes: Vec<u8>) {
    let limit = bytes.len() + 1;
    let Ok(mut r) = CaptureReader::from_reader("fuzz", Box::new(Cursor::new(bytes))) else {
        return;
    };
    for _ in 0..=limit {
        match r.next_packet() {
            Ok(Some(p)) => assert!(p.data.len() as u64 <= u64::from(p.wire_len)),
            Ok(None) | Err(_) => {
                assert!(matches!(r.next_packet(), Ok(None)));
                return;
            }
        }
    }
    panic!("reader did not finish");
}

const PCAP_LE: [u8; 24] = [
    0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
];
const PCAP_NS_BE: [u8; 24] = [
    0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 1,
];
/// A little-endian SHB and an Ethernet IDB.
const PCAPNG_LE: [u8; 48] = [
    0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0, 1, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 20,
    0, 0, 0,
];
/// A big-endian SHB.
const PCAPNG_BE: [u8; 28] = [
    0x0a, 0x0d, 0x0d, 0x0a, 0, 0, 0, 28, 0x1a, 0x2b, 0x3c, 0x4d, 0, 1, 0, 0, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 28,
];

/// Plausible pcapng blocks with arbitrary contents: known types, lengths near the truth.
fn pcapng_block() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![1u32, 2, 3, 4, 5, 6, 0x0a0d_0d0a, 0xbad, 99]),
        prop::collection::vec(any::<u8>(), 0..80),
        -8i32..8,
        any::<bool>(),
    )
        .prop_map(|(t, mut body, skew, fix_trailer)| {
            body.resize((body.len() + 3) & !3, 0);
            let len = (12 + body.len() as i32 + skew * 4) as u32;
            let mut out = t.to_le_bytes().to_vec();
            out.extend_from_slice(&len.to_le_bytes());
            if t == 6 && body.len() >= 20 {
                // Keep the interface id and captured length small so some packets get through.
                body[..4].copy_from_slice(&0u32.to_le_bytes());
                let room = body.len() as u32 - 20;
                let caplen = u32::from(body[12]) % (room + 2);
                body[12..16].copy_from_slice(&caplen.to_le_bytes());
            }
            out.extend_from_slice(&body);
            let trailer = if fix_trailer {
                12 + body.len() as u32
            } else {
                len
            };
            out.extend_from_slice(&trailer.to_le_bytes());
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        drain(bytes);
    }

    #[test]
    fn valid_header_then_garbage(
        header in prop::sample::select(vec![&PCAP_LE[..], &PCAP_NS_BE[..], &PCAPNG_LE[..], &PCAPNG_BE[..]]),
        garbage in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = header.to_vec();
        bytes.extend(garbage);
        drain(bytes);
    }

    #[test]
    fn pcap_records_with_random_lengths(
        recs in prop::collection::vec((any::<u32>(), 0u32..64, any::<u32>(), prop::collection::vec(any::<u8>(), 0..64)), 0..20),
    ) {
        let mut bytes = PCAP_LE.to_vec();
        for (ts, caplen, orig, data) in recs {
            for v in [ts, ts, caplen, orig] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            bytes.extend(data);
        }
        drain(bytes);
    }

    #[test]
    fn pcapng_blocks_with_random_contents(blocks in prop::collection::vec(pcapng_block(), 0..12)) {
        let mut bytes = PCAPNG_LE.to_vec();
        bytes.extend(blocks.concat());
        drain(bytes);
    }
}

/// A NetMon file whose frame table points at random places in garbage.
fn netmon() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..5,
        prop::collection::vec(any::<u8>(), 0..400),
        prop::collection::vec(any::<u32>(), 0..20),
        prop::sample::select(vec![0u16, 1, 4, 7, 0xE001, 0xFFE0]),
    )
        .prop_map(|(minor, body, entries, network)| {
            let mut out = vec![0u8; 128];
            out[..4].copy_from_slice(b"GMBU");
            out[4] = minor;
            out[5] = 2;
            out[6..8].copy_from_slice(&network.to_le_bytes());
            out.extend(body);
            let len = out.len() as u32;
            out[24..28].copy_from_slice(&len.to_le_bytes());
            out[28..32].copy_from_slice(&(entries.len() as u32 * 4).to_le_bytes());
            for e in entries {
                out.extend_from_slice(&(e % (len + 8)).to_le_bytes());
            }
            out
        })
}

/// A NetXRay file with random start and end offsets over garbage records.
fn netxray() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![
            *b"001.000\0",
            *b"001.100\0",
            *b"002.001\0",
            *b"002.003\0",
        ]),
        prop::collection::vec(any::<u8>(), 0..400),
        any::<u32>(),
        any::<u32>(),
        any::<[u8; 4]>(),
    )
        .prop_map(|(version, body, start, end, knobs)| {
            let mut out = vec![0u8; 128];
            out[..4].copy_from_slice(b"XCP\0");
            out[4..12].copy_from_slice(&version);
            let len = 128 + body.len() as u32;
            out[24..28].copy_from_slice(&(start % (len + 8)).to_le_bytes());
            out[28..32].copy_from_slice(&(end % (len + 8)).to_le_bytes());
            out[44] = knobs[0] % 5;
            out[48] = knobs[1] % 4;
            out[76] = knobs[2];
            out[84] = knobs[3] % 7;
            out.extend(body);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn netmon_frames_anywhere(file in netmon()) {
        drain(file);
    }

    #[test]
    fn netxray_records_anywhere(file in netxray()) {
        drain(file);
    }
}

proptest! {
    // Garbage deflate data can expand a lot before it fails, so fewer cases.
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn gzip_garbage(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut all = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        all.extend(bytes);
        drain(all);
    }
}
