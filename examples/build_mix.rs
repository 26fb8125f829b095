//! Builds a real-traffic mix for benchmarks from many small public captures (nDPI's test set,
//! see `benches/build-mix.sh`): every Ethernet packet of every input, each file moved to start
//! within `--spread` seconds of a common start, all merged by time; then `--copies` copies of
//! that, copy `k` starting `k * --stagger` seconds later with its IPv4 and IPv6 addresses moved
//! (`k` added to the second byte of each address, checksums adjusted), so the copies are
//! different hosts whose flows overlap in time.
//!
//! `cargo run --release --example build_mix -- --copies 30 --out mix.pcap DIR_OR_FILES...`
//!
//! Inputs are read whole into memory (nDPI's set is about 36 MiB). Raw IP, Linux cooked and
//! BSD loopback packets get an Ethernet header; other link types are left out. A gap of more
//! than a minute between two packets of one file shrinks to a minute (some captures' clocks
//! jump by years, which would stretch the mix). ICMP errors keep the original addresses in their
//! quoted headers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use clap::Parser;
use exflow::packet::Nanos;
use exflow::source::CaptureReader;
use exflow::synth::{PcapWriter, TsPrecision};

#[derive(Parser, Debug)]
#[command(about = "Merge and replicate public captures into one large real-traffic mix")]
struct Args {
    /// Copies of the merged captures, each on shifted addresses.
    #[arg(long, default_value_t = 30)]
    copies: u32,
    /// Seconds between the starts of two copies.
    #[arg(long, default_value_t = 10)]
    stagger: u64,
    /// The input files start within this many seconds of each other.
    #[arg(long, default_value_t = 300)]
    spread: u64,
    /// Output pcap file.
    #[arg(long)]
    out: PathBuf,
    /// Capture files, or directories of them (read recursively, sorted by name).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

/// 2024-01-01 00:00:00 UTC.
const T0: Nanos = 1_704_067_200 * 1_000_000_000;
const SECOND: Nanos = 1_000_000_000;
const MAX_GAP: Nanos = 60 * SECOND;
const LINKTYPE_ETHERNET: u32 = 1;

/// One packet of the merged inputs: its time and where its bytes are in the arena.
struct Packet {
    ts: Nanos,
    at: usize,
    len: usize,
    wire_len: u32,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut files = Vec::new();
    for p in &args.inputs {
        collect(p, &mut files)?;
    }
    files.sort();
    let mut arena = Vec::new();
    let mut packets = Vec::new();
    let (mut used, mut skipped) = (0, 0);
    for (i, path) in files.iter().enumerate() {
        let offset = (i as u64 * 7919 % args.spread.max(1)) as Nanos * SECOND;
        match read_file(path, &mut arena, &mut packets, T0 + offset) {
            Ok(true) => used += 1,
            Ok(false) => skipped += 1,
            Err(e) => {
                eprintln!("skipped {}: {e}", path.display());
                skipped += 1;
            }
        }
    }
    packets.sort_by_key(|p| p.ts);
    eprintln!(
        "{used} files ({skipped} skipped): {} packets, {:.1} MiB",
        packets.len(),
        arena.len() as f64 / 1048576.0
    );
    let out = BufWriter::with_capacity(1 << 20, File::create(&args.out)?);
    let mut w = PcapWriter::with_options(out, TsPrecision::Micro, 262_144, LINKTYPE_ETHERNET)?;
    // One cursor per copy, merged by time.
    let stagger = args.stagger as Nanos * SECOND;
    let mut heap: BinaryHeap<Reverse<(Nanos, u32, usize)>> = BinaryHeap::new();
    for k in 0..args.copies {
        if let Some(p) = packets.first() {
            heap.push(Reverse((p.ts + k as Nanos * stagger, k, 0)));
        }
    }
    let mut frame = Vec::new();
    while let Some(Reverse((ts, k, i))) = heap.pop() {
        let Some(p) = packets.get(i) else { continue };
        frame.clear();
        frame.extend_from_slice(&arena[p.at..p.at + p.len]);
        shift_addresses(&mut frame, (k % 256) as u8);
        w.write_packet_with_len(ts, &frame, p.wire_len)?;
        if let Some(next) = packets.get(i + 1) {
            heap.push(Reverse((next.ts + k as Nanos * stagger, k, i + 1)));
        }
    }
    let n = w.packets();
    w.into_inner()?;
    eprintln!("wrote {n} packets to {}", args.out.display());
    Ok(())
}

/// Adds `p` and, for a directory, the capture files under it.
fn collect(p: &PathBuf, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if p.is_dir() {
        for e in std::fs::read_dir(p)? {
            collect(&e?.path(), out)?;
        }
    } else if p.is_file() {
        out.push(p.clone());
    }
    Ok(())
}

/// Appends the packets of `path` as Ethernet frames, its first packet moved to `start`;
/// `Ok(false)` when the file gives none.
fn read_file(
    path: &std::path::Path,
    arena: &mut Vec<u8>,
    packets: &mut Vec<Packet>,
    start: Nanos,
) -> Result<bool, Box<dyn std::error::Error>> {
    let mut r = CaptureReader::open(&path.to_string_lossy())?;
    let mut mine = Vec::new();
    let mut bytes = Vec::new();
    // A capture that ends in a broken record still gives the packets before it.
    while let Ok(Some(raw)) = r.next_packet() {
        let Some((header, ip)) = ethernet_header(raw.link_type, raw.data) else {
            continue;
        };
        let at = bytes.len();
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(ip);
        let added = (bytes.len() - at).saturating_sub(raw.data.len()) as u32;
        let wire_len = raw.wire_len.saturating_add(added);
        mine.push((raw.ts, at, bytes.len() - at, wire_len));
    }
    if mine.is_empty() {
        return Ok(false);
    }
    mine.sort_by_key(|m| m.0);
    let base = arena.len();
    arena.extend_from_slice(&bytes);
    let (mut prev, mut now) = (mine[0].0, start);
    packets.extend(mine.into_iter().map(|(ts, at, len, wire_len)| {
        now += (ts - prev).min(MAX_GAP);
        prev = ts;
        Packet {
            ts: now,
            at: base + at,
            len,
            wire_len,
        }
    }));
    Ok(true)
}

/// The Ethernet header to put before a packet of `link_type` (none for Ethernet) and the bytes
/// that follow it; `None` for link types that are not kept.
fn ethernet_header(link_type: u32, data: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let ip = match link_type {
        LINKTYPE_ETHERNET => return Some((Vec::new(), data)),
        // Raw IP (DLT_RAW values and LINKTYPE_RAW, IPV4, IPV6).
        12 | 14 | 101 | 228 | 229 => data,
        // Linux cooked capture v1.
        113 => data.get(16..)?,
        // BSD loopback: a 4-byte address family.
        0 | 108 => data.get(4..)?,
        _ => return None,
    };
    let ethertype: u16 = match ip.first()? >> 4 {
        4 => 0x0800,
        6 => 0x86dd,
        _ => return None,
    };
    let mut h = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    h.extend_from_slice(&ethertype.to_be_bytes());
    Some((h, ip))
}

/// Adds `k` to the second byte of the IPv4 (or the fourth of the IPv6) source and destination
/// addresses of an Ethernet frame, and adjusts the IP, TCP and UDP checksums to match.
fn shift_addresses(f: &mut [u8], k: u8) {
    if k == 0 {
        return;
    }
    let mut at = 12;
    let mut ethertype = be16(f, at);
    while matches!(ethertype, Some(0x8100 | 0x88a8)) {
        at += 4;
        ethertype = be16(f, at);
    }
    let ip = at + 2;
    match ethertype {
        Some(0x0800) if f.len() >= ip + 20 => {
            let ihl = usize::from(f[ip] & 0x0f) * 4;
            let proto = f[ip + 9];
            let first_fragment = be16(f, ip + 6).is_some_and(|v| v & 0x1fff == 0);
            let mut delta = Delta::default();
            for a in [ip + 12, ip + 16] {
                delta.add(f, a, k);
            }
            delta.apply(f, ip + 10);
            if first_fragment {
                l4_checksum(f, ip + ihl, proto, &delta);
            }
        }
        Some(0x86dd) if f.len() >= ip + 40 => {
            let next = f[ip + 6];
            let mut delta = Delta::default();
            for a in [ip + 8, ip + 24] {
                delta.add(f, a + 2, k);
            }
            l4_checksum(f, ip + 40, next, &delta);
        }
        _ => {}
    }
}

/// Adjusts the TCP or UDP checksum at `l4` for the address change in `delta` (RFC 1624).
fn l4_checksum(f: &mut [u8], l4: usize, proto: u8, delta: &Delta) {
    let at = match proto {
        6 => l4 + 16,
        17 => l4 + 6,
        _ => return,
    };
    // A zero UDP checksum means "none".
    if proto == 17 && be16(f, at) == Some(0) {
        return;
    }
    delta.apply(f, at);
}

/// The old and new 16-bit words changed in a header, for incremental checksum updates.
#[derive(Default)]
struct Delta {
    words: Vec<(u16, u16)>,
}

impl Delta {
    /// Adds `k` to the second byte of the 16-bit word at `at`, remembering the change.
    fn add(&mut self, f: &mut [u8], at: usize, k: u8) {
        if let Some(old) = be16(f, at) {
            f[at + 1] = f[at + 1].wrapping_add(k);
            let new = u16::from_be_bytes([f[at], f[at + 1]]);
            self.words.push((old, new));
        }
    }

    /// Updates the checksum at `at`: HC' = ~(~HC + ~m + m').
    fn apply(&self, f: &mut [u8], at: usize) {
        let Some(hc) = be16(f, at) else { return };
        let mut sum = u32::from(!hc);
        for &(old, new) in &self.words {
            sum += u32::from(!old) + u32::from(new);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let v = !(sum as u16);
        f[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
}

fn be16(f: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(at)?, *f.get(at + 1)?]))
}
