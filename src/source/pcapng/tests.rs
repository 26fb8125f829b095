//! Unit tests of the pcapng reader over byte fixtures built in the test.

use super::*;
use crate::source::testutil::{Packets, Pcapng};
use crate::source::{CaptureReader, SourceErrorKind};

fn reader(bytes: Vec<u8>) -> CaptureReader {
    CaptureReader::from_reader("t.pcapng", Box::new(std::io::Cursor::new(bytes))).unwrap()
}

/// All packets as (ts, link type, data, wire length), then the error if any.
fn read_all(bytes: Vec<u8>) -> (Packets, Option<crate::source::SourceError>) {
    let mut r = reader(bytes);
    let mut out = Vec::new();
    loop {
        match r.next_packet() {
            Ok(Some(p)) => out.push((p.ts, p.link_type, p.data.to_vec(), p.wire_len)),
            Ok(None) => return (out, None),
            Err(e) => {
                assert!(r.next_packet().unwrap().is_none());
                return (out, Some(e));
            }
        }
    }
}

#[test]
fn sections_in_both_byte_orders_with_several_interfaces() {
    let mut f = Pcapng::new(false);
    f.interface(1, 0, &[])
        .interface(113, 0, &[(OPT_IF_TSRESOL, &[9])]);
    f.epb(0, 1_500_000_000_123_456, b"eth", 3)
        .epb(1, 7, b"sll!", 60);
    f.block(4, &[0; 12]); // name resolution: skipped
    f.section(true)
        .interface(101, 0, &[(OPT_IF_TSRESOL, &[3])])
        .epb(0, 42, b"raw", 3);
    let (pkts, err) = read_all(f.bytes());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        pkts,
        vec![
            (1_500_000_000_123_456_000, 1, b"eth".to_vec(), 3),
            (7, 113, b"sll!".to_vec(), 60),
            (42_000_000, 101, b"raw".to_vec(), 3),
        ]
    );
}

#[test]
fn a_new_section_forgets_the_old_interfaces() {
    let mut f = Pcapng::new(false);
    f.interface(1, 0, &[])
        .interface(1, 0, &[])
        .epb(1, 0, b"a", 1);
    f.section(true).interface(1, 0, &[]);
    let at = f.out.len() as u64;
    f.epb(1, 0, b"b", 1);
    let (pkts, err) = read_all(f.bytes());
    assert_eq!(pkts.len(), 1);
    let err = err.unwrap();
    assert!(matches!(err.kind, SourceErrorKind::Malformed { .. }));
    assert_eq!(
        err.to_string(),
        format!("t.pcapng: packet for undefined interface 1 at byte {at}")
    );
}

#[test]
fn timestamp_resolution_and_offset() {
    assert_eq!(TsScale::from_tsresol(6), TsScale::Mul(1_000));
    assert_eq!(TsScale::from_tsresol(0), TsScale::Mul(1_000_000_000));
    assert_eq!(TsScale::from_tsresol(12), TsScale::Div(1_000));
    assert_eq!(TsScale::from_tsresol(127), TsScale::Zero);
    assert_eq!(TsScale::from_tsresol(0x80 | 10), TsScale::Shift(10));
    let offset: &[u8] = &100i64.to_le_bytes();
    let mut f = Pcapng::new(false);
    f.interface(
        1,
        0,
        &[(OPT_IF_TSRESOL, &[0x80 | 10]), (OPT_IF_TSOFFSET, offset)],
    );
    f.interface(1, 0, &[(OPT_IF_TSRESOL, &[12])]);
    f.epb(0, 1024 * 5 + 512, b"", 0).epb(1, 123_456_789, b"", 0);
    let (pkts, err) = read_all(f.bytes());
    assert!(err.is_none());
    assert_eq!(pkts[0].0, 105_500_000_000);
    assert_eq!(pkts[1].0, 123_456);
}

#[test]
fn huge_timestamps_saturate() {
    let mut f = Pcapng::new(false);
    f.interface(1, 0, &[(OPT_IF_TSRESOL, &[0])])
        .epb(0, u64::MAX, b"", 0);
    let (pkts, _) = read_all(f.bytes());
    assert_eq!(pkts[0].0, i64::MAX);
}

#[test]
fn simple_and_obsolete_packet_blocks() {
    let mut f = Pcapng::new(true);
    f.interface(1, 4, &[]).interface(105, 0, &[]);
    f.pb(1, 2_000_000, b"old", 3)
        .spb(b"abcdef", 1514)
        .spb(b"xy", 2);
    let (pkts, err) = read_all(f.bytes());
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        pkts,
        vec![
            (2_000_000_000, 105, b"old".to_vec(), 3),
            // Snap length 4 of interface 0 limits what the SPB holds; time of the packet before.
            (2_000_000_000, 1, b"abcd".to_vec(), 1514),
            // The original length limits the captured bytes (the rest is padding).
            (2_000_000_000, 1, b"xy".to_vec(), 2),
        ]
    );
}

#[test]
fn simple_packet_before_any_interface() {
    let mut f = Pcapng::new(false);
    f.spb(b"x", 1);
    let (_, err) = read_all(f.bytes());
    assert!(matches!(
        err.unwrap().kind,
        SourceErrorKind::Malformed { .. }
    ));
}

#[test]
fn header_only() {
    assert!(read_all(Pcapng::new(true).bytes()).0.is_empty());
    let mut f = Pcapng::new(false);
    f.interface(1, 0, &[]);
    let (pkts, err) = read_all(f.bytes());
    assert!(pkts.is_empty() && err.is_none());
}

#[test]
fn truncated_last_block() {
    let mut f = Pcapng::new(false);
    f.interface(1, 0, &[]).epb(0, 1, b"complete", 8);
    let at = f.out.len();
    f.epb(0, 2, b"cut short", 9);
    let full = f.bytes();
    for cut in [at + 1, at + 8, at + 20, full.len() - 1] {
        let (pkts, err) = read_all(full[..cut].to_vec());
        assert_eq!(pkts.len(), 1);
        let err = err.unwrap();
        assert!(matches!(err.kind, SourceErrorKind::Truncated { .. }));
        assert_eq!(
            err.to_string(),
            format!("t.pcapng: truncated pcapng block at byte {at}")
        );
    }
}

#[test]
fn corrupt_block_lengths() {
    let mut f = Pcapng::new(false);
    f.interface(1, 0, &[]).epb(0, 1, b"good", 4);
    let at = f.out.len();
    f.epb(0, 2, b"abcd", 4).epb(0, 3, b"tail", 4);
    let full = f.bytes();
    for (len, shown) in [
        (13u32, "pcapng block length 13"),
        (8, "pcapng block length 8"),
        (0x4000_0000, "pcapng block length 1073741824"),
    ] {
        let mut bytes = full.clone();
        bytes[at + 4..at + 8].copy_from_slice(&len.to_le_bytes());
        let (pkts, err) = read_all(bytes);
        assert_eq!(pkts.len(), 1);
        assert_eq!(
            err.unwrap().to_string(),
            format!("t.pcapng: corrupt {shown} at byte {at}")
        );
    }
    // A length that is plausible but disagrees with the trailer.
    let mut bytes = full.clone();
    bytes[at + 4..at + 8].copy_from_slice(&40u32.to_le_bytes());
    let (_, err) = read_all(bytes);
    assert!(matches!(
        err.unwrap().kind,
        SourceErrorKind::CorruptLength {
            what: "pcapng block trailing",
            ..
        }
    ));
    // A captured length larger than the block.
    let mut bytes = full;
    bytes[at + 20..at + 24].copy_from_slice(&5u32.to_le_bytes());
    let (_, err) = read_all(bytes);
    let err = err.unwrap();
    assert_eq!(
        err.to_string(),
        format!("t.pcapng: corrupt captured length 5 at byte {at}")
    );
}

#[test]
fn bad_byte_order_magic_and_version() {
    let mut f = Pcapng::new(false);
    f.out[8] = 0;
    let e = CaptureReader::from_reader("t", Box::new(std::io::Cursor::new(f.bytes())))
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "t: bad pcapng byte-order magic [00, 3c, 2b, 1a] at byte 0"
    );
    let mut f = Pcapng::new(false);
    f.out[12] = 2;
    let e = CaptureReader::from_reader("t", Box::new(std::io::Cursor::new(f.bytes())))
        .err()
        .unwrap();
    assert_eq!(e.to_string(), "t: unsupported pcapng version 2.0 at byte 0");
}

#[test]
fn interface_option_overrun() {
    let mut f = Pcapng::new(false);
    let mut b = f.body();
    b.u16(1);
    b.u16(0);
    b.u32(0);
    b.u16(OPT_IF_TSRESOL);
    b.u16(200);
    f.block(1, &b.out);
    let (_, err) = read_all(f.bytes());
    assert_eq!(
        err.unwrap().to_string(),
        "t.pcapng: interface description option overruns its block at byte 28"
    );
}

#[test]
fn statistics_drops_become_a_warning() {
    let mut f = Pcapng::new(false);
    f.interface(1, 0, &[])
        .epb(0, 0, b"a", 1)
        .isb(0, 5)
        .isb(0, 12)
        .isb(7, 100);
    let mut r = reader(f.bytes());
    while r.next_packet().unwrap().is_some() {}
    assert_eq!(
        r.warnings(),
        vec!["the capture's interface statistics report 12 packet(s) dropped while capturing"]
    );
}

#[test]
fn caplen_over_wire_len_is_raised() {
    let mut f = Pcapng::new(false);
    f.interface(1, 0, &[]).epb(0, 0, b"abcd", 2);
    assert_eq!(read_all(f.bytes()).0[0].3, 4);
}

#[test]
fn an_interface_flood_is_capped_per_section_and_counted() {
    let limits = crate::source::ReadLimits {
        interfaces_per_section: 100,
        ..Default::default()
    };
    let mut f = Pcapng::new(false);
    for _ in 0..10_000 {
        f.interface(1, 0, &[]);
    }
    f.epb(5_000, 1, b"dropped", 7).epb(99, 2, b"kept", 4);
    // A new section starts counting again.
    f.section(false).interface(1, 0, &[]).epb(0, 3, b"new", 3);
    let bytes = std::io::Cursor::new(f.bytes());
    let mut r = CaptureReader::from_reader_with("flood.pcapng", Box::new(bytes), limits).unwrap();
    let mut data = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        data.push(p.data.to_vec());
    }
    assert_eq!(data, [b"kept".to_vec(), b"new".to_vec()]);
    let counts = r.limit_counts();
    assert_eq!(counts.interfaces_over_cap, 9_900);
    assert_eq!(counts.packets_on_capped_interfaces, 1);
    let w = r.warnings();
    assert!(
        w.iter()
            .any(|w| w.starts_with("limit reached: 9900 pcapng interface description block(s)")),
        "{w:?}"
    );
    // An interface never described is still an error.
    let mut f = Pcapng::new(false);
    f.interface(1, 0, &[]).epb(3, 1, b"x", 1);
    let (_, err) = read_all(f.bytes());
    assert!(err.unwrap().to_string().contains("undefined interface 3"));
}
