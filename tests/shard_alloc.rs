//! A sharded run (`--threads 2`) allocates nothing per frame once it is warm: frames go to the
//! worker in recycled batches, payloads of the mapped file are referred to in place, and the
//! reader analyses its own share with the same allocation-free path as one thread. Nor does one
//! thread reading a mapped file, its frames decoded a few ahead (`analyze::read_ahead`).
//!
//! Allocations are counted process-wide (the workers are other threads), so this binary holds a
//! single test: nothing else runs while it counts. It needs `unsafe` for one reason:
//! `GlobalAlloc` is an unsafe trait. The library itself stays `#![deny(unsafe_code)]`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use etherparse::PacketBuilder;
use exflow::analyze::Config;
use exflow::synth::{PcapWriter, TsPrecision};

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a static
// atomic, so counting never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A pcap of `n` frames over 64 UDP flows between 64 host pairs (so both threads get some),
/// each frame with a small payload, 1 ms apart: after the first 64 frames every frame belongs to
/// a flow the run knows.
fn capture(name: &str, n: usize) -> std::path::PathBuf {
    let mut w = PcapWriter::new(Vec::new(), TsPrecision::Micro).unwrap();
    let mut frame = Vec::new();
    for i in 0..n {
        let host = (i % 64) as u8;
        frame.clear();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 1, host], [10, 0, 2, host], 64)
            .udp(40_000 + u16::from(host), 5000)
            .write(&mut frame, b"a payload of some bytes")
            .unwrap();
        w.write_packet(1_000_000_000 + i as i64 * 1_000_000, &frame)
            .unwrap();
    }
    let path = common::scratch("shard-alloc").join(name);
    std::fs::write(&path, w.into_inner().unwrap()).unwrap();
    path
}

/// Allocations of a whole run of `path` with `threads` analysis threads.
fn run(path: &std::path::Path, threads: usize) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let (a, _) = exflow::shard::analyze_files(
        &[path.to_string_lossy().into_owned()],
        Config::default(),
        threads,
        |_, _, _, _| {},
    )
    .unwrap();
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(a.summary.total_flows(), 64, "{}", path.display());
    drop(a);
    after - before
}

#[test]
fn a_sharded_run_allocates_nothing_per_frame() {
    let (short, long) = (
        capture("short.pcap", 100_000),
        capture("long.pcap", 300_000),
    );
    let (a, b) = (run(&short, 2), run(&long, 2));
    let (one_a, one_b) = (run(&short, 1), run(&long, 1));
    std::fs::remove_file(short).unwrap();
    std::fs::remove_file(long).unwrap();
    // One thread has no epochs: the longer run may allocate no more than a few times (a
    // histogram or a table growing once more), nothing per frame.
    let extra = one_b.saturating_sub(one_a);
    assert!(
        extra <= 16,
        "one thread: {extra} more allocations for 200 000 more frames ({one_a} for 100 000, \
         {one_b} for 300 000)"
    );
    // The longer run has 200 000 frames more. What it may allocate more is per epoch (4 096
    // frames: the exchange of announcements, a few small vectors), not per frame.
    let extra = b.saturating_sub(a);
    let epochs = 200_000 / exflow::shard::EPOCH;
    assert!(
        extra <= 8 * epochs,
        "{extra} more allocations for 200 000 more frames ({a} for 100 000, {b} for 300 000)"
    );
}
