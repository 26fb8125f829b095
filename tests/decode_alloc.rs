//! Checks that decoding and fragment tracking allocate nothing per packet, with a global
//! allocator that counts the allocations made by the current thread.
//!
//! This test crate needs `unsafe` for one reason: `GlobalAlloc` is an unsafe trait. The library
//! itself stays `#![deny(unsafe_code)]`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use etherparse::PacketBuilder;
use exflow::decode::{decode, FragmentTracker};
use exflow::packet::RawPacket;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread-local without a destructor, so touching it does not allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// A mix of frames: TCP, UDP, ICMP error quoting TCP, IPv6, first and trailing fragments.
fn frames() -> Vec<(u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut v = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(1234, 25, 1, 100)
        .syn()
        .write(&mut v, b"")
        .unwrap();
    out.push((1, v.clone()));
    let quote = v[14..42].to_vec();
    v.clear();
    PacketBuilder::ipv6([1; 16], [2; 16], 64)
        .udp(5000, 53)
        .write(&mut v, b"query")
        .unwrap();
    out.push((101, v.clone()));
    v.clear();
    PacketBuilder::ipv4([10, 0, 0, 9], [10, 0, 0, 1], 64)
        .icmpv4_raw(3, 13, [0; 4])
        .write(&mut v, &quote)
        .unwrap();
    out.push((228, v.clone()));
    for id in 0..2000u16 {
        for (flags_offset, body) in [
            (0x2000u16, &[0u8, 53, 0x80, 0, 0, 0, 0, 0][..]),
            (0x00b9, &[7; 8][..]),
        ] {
            let mut h = etherparse::Ipv4Header::new(
                8,
                64,
                etherparse::IpNumber::UDP,
                [8, 8, 8, 8],
                [10, 0, 0, 1],
            )
            .unwrap();
            h.identification = id;
            let mut f = h.to_bytes().to_vec();
            f[6..8].copy_from_slice(&flags_offset.to_be_bytes());
            f.extend_from_slice(body);
            out.push((101, f));
        }
    }
    out
}

#[test]
fn decode_and_resolve_do_not_allocate() {
    let frames = frames();
    let mut tracker = FragmentTracker::new(256);
    let before = allocations();
    let mut decoded = 0;
    for (link_type, data) in &frames {
        let raw = RawPacket {
            ts: 0,
            link_type: *link_type,
            data,
            wire_len: data.len() as u32,
        };
        if let Ok(mut p) = decode(&raw) {
            tracker.resolve(&mut p);
            decoded += 1;
        }
    }
    let after = allocations();
    // The counter does see allocations.
    std::hint::black_box(Vec::<u8>::with_capacity(1));
    assert_eq!(allocations(), after + 1);
    assert_eq!(decoded, frames.len());
    assert_eq!(
        after - before,
        0,
        "allocations while decoding {decoded} frames"
    );
}

#[test]
fn pipeline_allocates_nothing_for_packets_of_known_flows() {
    use exflow::analyze::{Analyzer, Config};
    let frames = frames();
    let mut a = Analyzer::new(Config::default());
    a.begin_file("alloc");
    let feed = |a: &mut Analyzer, ts: i64| {
        for (link_type, data) in &frames {
            a.packet(&RawPacket {
                ts,
                link_type: *link_type,
                data,
                wire_len: data.len() as u32,
            });
        }
    };
    // The first pass creates the flows (and sizes the tables).
    feed(&mut a, 1_000);
    feed(&mut a, 2_000);
    let before = allocations();
    feed(&mut a, 3_000);
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "allocations for {} packets of known flows",
        frames.len()
    );
    let analysis = a.finish();
    assert_eq!(analysis.input.packets, 3 * frames.len() as u64);
}

/// Writes `n` Ethernet frames to a pcap file in the temporary directory; `gzip` compresses it.
fn capture_file(name: &str, n: usize, gzip: bool) -> std::path::PathBuf {
    use exflow::synth::{PcapWriter, TsPrecision};
    let frames: Vec<Vec<u8>> = frames()
        .into_iter()
        .filter(|(link, _)| *link == 1)
        .map(|(_, f)| f)
        .collect();
    let mut w = PcapWriter::new(Vec::new(), TsPrecision::Micro).unwrap();
    for i in 0..n {
        w.write_packet(1_000_000 + i as i64 * 1_000, &frames[i % frames.len()])
            .unwrap();
    }
    let mut bytes = w.into_inner().unwrap();
    if gzip {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        bytes = gz.finish().unwrap();
    }
    let path = common::scratch("decode-alloc").join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Reading a capture file allocates nothing per packet: mapped (the default), read like a
/// stream, and gzip-compressed (decompressed on another thread into recycled buffers).
#[test]
fn readers_allocate_nothing_per_packet() {
    use exflow::source::{CaptureReader, ReadLimits};
    for (name, gzip, map_files) in [
        ("mapped.pcap", false, true),
        ("read.pcap", false, false),
        ("packed.pcap.gz", true, true),
    ] {
        let n = 60_000;
        let path = capture_file(name, n, gzip);
        let limits = ReadLimits {
            map_files,
            ..ReadLimits::default()
        };
        let mut r = CaptureReader::open_with(path.to_str().unwrap(), limits).unwrap();
        assert_eq!(r.is_mapped(), map_files && !gzip, "{name}");
        // The first packet sets the buffers up.
        assert!(r.next_packet().unwrap().is_some());
        let before = allocations();
        let mut read = 1;
        let mut bytes = 0usize;
        while let Some(p) = r.next_packet().unwrap() {
            read += 1;
            bytes += p.data.len();
        }
        let after = allocations();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read, n, "{name}");
        assert!(bytes > 0);
        // The gzip path hands buffers over std channels; the first time the reader has to wait
        // on its channel, std registers the waiter in a list it then keeps (1-2 allocations,
        // once per reader, when the decompressing thread first falls behind: 2 of 30 runs).
        // Per packet that would be 60 000.
        let once = if gzip { 2 } else { 0 };
        assert!(
            after - before <= once,
            "{} allocations reading {name}",
            after - before
        );
    }
}

/// Live mode's capture thread copies each frame into a recycled batch: once the batches in flight
/// exist, handing frames over allocates nothing (both ends run on this thread here).
#[cfg(feature = "live")]
#[test]
fn live_hand_over_allocates_nothing_per_frame() {
    use exflow::live::frames::{channel, Message};
    use std::time::Duration;
    let frames = frames();
    let (mut tx, rx) = channel();
    let round = |tx: &mut exflow::live::FrameSender| {
        let mut n = 0u64;
        for (i, (link_type, data)) in frames.iter().enumerate() {
            let raw = RawPacket {
                ts: i as i64 * 1000,
                link_type: *link_type,
                data,
                wire_len: data.len() as u32,
            };
            tx.push(&raw).unwrap();
            // Read what went out, as the analysis side does, and give it back.
            while let Some(m) = rx.next(Duration::ZERO) {
                if let Message::Frames(b, _) = m {
                    n += b.len() as u64;
                    rx.recycle(b);
                }
            }
        }
        tx.idle().unwrap();
        while let Some(m) = rx.next(Duration::ZERO) {
            if let Message::Frames(b, _) = m {
                n += b.len() as u64;
                rx.recycle(b);
            }
        }
        n
    };
    assert_eq!(round(&mut tx), frames.len() as u64, "warm-up");
    let before = allocations();
    for _ in 0..5 {
        assert_eq!(round(&mut tx), frames.len() as u64);
    }
    let n = allocations() - before;
    assert_eq!(n, 0, "{n} allocations for {} frames", 5 * frames.len());
}
