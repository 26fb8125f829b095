//! TPKT framing and stream reassembly: every segmenting case the module documentation lists.

use super::*;
use crate::signal::test_util::hex;
use crate::signal::tpkt::{parse_header, split_frame, TpktErrorKind, TpktHeader};

fn tpkt(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![3, 0];
    v.extend_from_slice(&((payload.len() + 4) as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn feed(s: &mut TpktStream, seq: u32, data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    s.push(seq, data, |f| out.push(f.to_vec()));
    out
}

#[test]
fn header_parsing_and_splitting() {
    let frame = tpkt(b"hello");
    assert_eq!(
        parse_header(&frame),
        Ok(TpktHeader {
            version: 3,
            reserved: 0,
            length: 9
        })
    );
    let mut two = frame.clone();
    two.extend(tpkt(b"x"));
    let (first, rest) = split_frame(&two).unwrap();
    assert_eq!((first, rest.len()), (&b"hello"[..], 5));
    let err = |b: &[u8]| split_frame(b).unwrap_err().kind;
    assert_eq!(err(&[3, 0, 0]), TpktErrorKind::Truncated);
    assert_eq!(err(&[2, 0, 0, 9]), TpktErrorKind::BadVersion);
    assert_eq!(err(&[3, 0, 0, 3]), TpktErrorKind::BadLength);
    assert_eq!(err(&frame[..8]), TpktErrorKind::Truncated);
    assert_eq!(split_frame(&[3, 0, 0, 4]), Ok((&[][..], &[][..])));
}

/// Also the regression test for the first corpus run: a partial frame at the start of an
/// unbuffered stream looped for ever instead of being buffered.
#[test]
fn netmeeting_header_alone_then_body() {
    let mut s = TpktStream::new();
    let frame = tpkt(b"\x08\x02\x00\x01\x05");
    assert!(feed(&mut s, 1000, &frame[..4]).is_empty());
    assert_eq!(s.buffered(), 4);
    assert_eq!(
        feed(&mut s, 1004, &frame[4..]),
        [b"\x08\x02\x00\x01\x05".to_vec()]
    );
    assert_eq!(s.buffered(), 0);
}

#[test]
fn several_frames_in_one_segment_and_one_frame_over_many() {
    let mut s = TpktStream::new();
    let mut seg = tpkt(b"one");
    seg.extend(tpkt(b"two"));
    let third = tpkt(b"three!");
    seg.extend(&third[..5]);
    assert_eq!(feed(&mut s, 7, &seg), [b"one".to_vec(), b"two".to_vec()]);
    let start = 7 + seg.len() as u32;
    let mut out = Vec::new();
    for (seq, b) in (start..).zip(&third[5..]) {
        out.extend(feed(&mut s, seq, std::slice::from_ref(b)));
    }
    assert_eq!(out, [b"three!".to_vec()]);
    assert_eq!(s.stats().frames, 3);
}

#[test]
fn whole_frames_are_framed_in_place_without_a_buffer() {
    let mut s = TpktStream::new();
    let mut seq = 1;
    for i in 0..10u8 {
        let f = tpkt(&[i; 20]);
        assert_eq!(feed(&mut s, seq, &f).len(), 1);
        seq += f.len() as u32;
    }
    assert_eq!(s.allocated(), 0);
    // A partial frame allocates the buffer; it is freed as soon as the frame completes.
    let f = tpkt(&[1; 20]);
    feed(&mut s, seq, &f[..10]);
    assert!(s.allocated() > 0);
    feed(&mut s, seq + 10, &f[10..]);
    assert_eq!(s.allocated(), 0);
}

#[test]
fn retransmissions_and_partial_overlaps_are_trimmed() {
    let mut s = TpktStream::new();
    let a = tpkt(b"first");
    let b = tpkt(b"second");
    let mut stream = a.clone();
    stream.extend(&b);
    assert_eq!(feed(&mut s, 50, &a).len(), 1);
    // Exact retransmission of a consumed frame: ignored.
    assert!(feed(&mut s, 50, &a).is_empty());
    // A segment repeating the end of `a` and carrying half of `b`.
    assert!(feed(&mut s, 52, &stream[2..a.len() + 4]).is_empty());
    // Overlapping what is buffered, then the rest.
    assert_eq!(
        feed(&mut s, 50 + a.len() as u32 + 2, &b[2..]),
        [b"second".to_vec()]
    );
    assert_eq!(
        s.stats().duplicate_bytes,
        (a.len() + a.len() - 2 + 2) as u64
    );
}

#[test]
fn out_of_order_segments_are_held_until_the_hole_fills() {
    let mut s = TpktStream::new();
    let a = tpkt(b"alpha-alpha");
    let b = tpkt(b"beta");
    let c = tpkt(b"gamma");
    let base = 9000u32;
    s.start(base);
    let (la, lb) = (a.len() as u32, b.len() as u32);
    // c, then the second half of a, then b: nothing can be emitted yet.
    assert!(feed(&mut s, base + la + lb, &c).is_empty());
    assert!(feed(&mut s, base + 6, &a[6..]).is_empty());
    assert!(feed(&mut s, base + la, &b).is_empty());
    // The first half of a fills the hole: everything comes out in order.
    let out = feed(&mut s, base, &a[..6]);
    assert_eq!(
        out,
        [b"alpha-alpha".to_vec(), b"beta".to_vec(), b"gamma".to_vec()]
    );
    assert_eq!(s.buffered(), 0);
    assert_eq!(s.stats().gaps, 0);
}

/// Regression: `skip_hole` once resumed at offset 0 and gave up nothing.
#[test]
fn a_lost_segment_resynchronises_without_stitching_frames() {
    let mut s = TpktStream::new();
    let a = tpkt(&[0x11; 100]);
    let b = tpkt(&[0x22; 100]);
    let c = tpkt(&[0x33; 100]);
    assert!(feed(&mut s, 0, &a[..50]).is_empty());
    // a[50..] is lost. b and c arrive and are held; skip_hole gives up on a.
    let after = a.len() as u32;
    assert!(feed(&mut s, after, &b).is_empty());
    assert!(feed(&mut s, after + b.len() as u32, &c).is_empty());
    let mut out = Vec::new();
    s.skip_hole(|f| out.push(f.to_vec()));
    assert_eq!(out, [vec![0x22; 100], vec![0x33; 100]]);
    assert_eq!(s.stats().gaps, 1);
}

#[test]
fn a_hole_older_than_the_window_is_given_up_by_itself() {
    let mut s = TpktStream::new();
    let mut seq = 1u32;
    s.start(seq);
    let lost = tpkt(&[7; 300]);
    seq += lost.len() as u32;
    let mut out = Vec::new();
    while out.is_empty() {
        let f = tpkt(&[9; 1000]);
        out.extend(feed(&mut s, seq, &f));
        seq += f.len() as u32;
        assert!(seq < 20_000, "never resynchronised");
    }
    assert!(out.iter().all(|f| f == &vec![9; 1000]));
    assert_eq!(s.stats().gaps, 1);
}

#[test]
fn too_many_holes_give_up_the_oldest() {
    let mut s = TpktStream::new();
    let frames: Vec<Vec<u8>> = (0..12u8).map(|i| tpkt(&[i; 10])).collect();
    let starts: Vec<u32> = (0..12).map(|i| i * 14).collect();
    // Frames 0, 2, 4, 6, 8, 10 are lost; the odd ones arrive and each needs its own range.
    let mut out = Vec::new();
    for i in (1..12).step_by(2) {
        out.extend(feed(&mut s, 1000 + starts[i], &frames[i]));
    }
    assert!(s.stats().gaps >= 1);
    assert!(
        out.iter().all(|f| f.len() == 10 && f[0] % 2 == 1),
        "{out:?}"
    );
}

#[test]
fn garbage_before_a_header_is_dropped() {
    let mut s = TpktStream::new();
    // Joined mid-stream: the tail of some frame, then a real one.
    let mut seg = vec![0x42, 0x03, 0x99, 0x00, 0x17];
    seg.extend(tpkt(b"real"));
    assert_eq!(feed(&mut s, 5, &seg), [b"real".to_vec()]);
    assert_eq!(s.stats().garbage_bytes, 5);
    // Once in sync, a bad version loses sync until the next plausible header.
    let mut seg = vec![0x07, 0x00, 0x00, 0x08, 1, 2, 3, 4];
    seg.extend(tpkt(b"again"));
    assert_eq!(feed(&mut s, 5 + 13, &seg), [b"again".to_vec()]);
}

#[test]
fn oversize_frames_are_skipped_whole() {
    let mut s = TpktStream::with_capacity(1024);
    s.start(100);
    let big = tpkt(&[0x55; 3000]);
    let small = tpkt(b"after");
    let mut out = Vec::new();
    for (i, chunk) in big.chunks(700).enumerate() {
        out.extend(feed(&mut s, 100 + 700 * i as u32, chunk));
    }
    out.extend(feed(&mut s, 100 + big.len() as u32, &small));
    assert_eq!(out, [b"after".to_vec()]);
    assert_eq!(s.stats().oversize_frames, 1);
}

#[test]
fn sequence_numbers_wrap_around() {
    let mut s = TpktStream::new();
    let a = tpkt(b"wrapping frame");
    let start = u32::MAX - 5;
    assert!(feed(&mut s, start, &a[..8]).is_empty());
    let out = feed(&mut s, start.wrapping_add(8), &a[8..]);
    assert_eq!(out, [b"wrapping frame".to_vec()]);
    // A retransmission from before the wrap is still recognised as old.
    assert!(feed(&mut s, start, &a).is_empty());
}

#[test]
fn empty_keepalive_tpkt_is_counted_not_emitted() {
    // ndpi/h323-overflow.pcap: a lone 03 00 00 04, seen mid-stream: not plausible enough to
    // resynchronise on, so garbage.
    let mut s = TpktStream::new();
    assert!(feed(&mut s, 964_517_219, &hex("03000004")).is_empty());
    assert_eq!((s.stats().frames, s.stats().garbage_bytes), (0, 4));
    // At a known stream start it is a keep-alive frame.
    let mut s = TpktStream::new();
    s.start(964_517_219);
    assert!(feed(&mut s, 964_517_219, &hex("03000004")).is_empty());
    assert_eq!(s.stats().frames, 1);
}

#[test]
fn capacity_is_clamped() {
    assert_eq!(TpktStream::with_capacity(1).capacity(), MIN_CAPACITY);
    assert_eq!(TpktStream::with_capacity(1 << 30).capacity(), MAX_CAPACITY);
    assert_eq!(TpktStream::default().capacity(), DEFAULT_CAPACITY);
}

#[test]
fn tel2_setup_split_over_two_segments() {
    // tel2.dump frames 182 (256 bytes from the TPKT header) and 188 (the last 93 bytes).
    let mut s = TpktStream::new();
    let mut first = hex("0300015d0802155605a104039090a51e0281836c");
    first.resize(256, 0xee);
    assert!(feed(&mut s, 539_160_510, &first).is_empty());
    let out = feed(&mut s, 539_160_766, &[0xaa; 93]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), 0x15d - 4);
    assert_eq!(out[0][..4], [0x08, 0x02, 0x15, 0x56]);
}
