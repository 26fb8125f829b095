//! The whole pipeline (bytes → reader → analyzer → report → JSON and table) over thousands of
//! mutated real captures, on stable Rust: the cheap, deterministic cousin of the cargo-fuzz
//! targets in `fuzz/`, run by CI on every change. Every corpus capture, and its Ethernet frames
//! rewritten as NetMon and NetXRay files, is mutated the way fuzzers do (bit flips, extreme
//! integers, cuts, splices); each run must end without a panic, account for every packet, and
//! give no negative or absurd time.

use std::path::{Path, PathBuf};

use exflow::analyze::{Analyzer, Config};
use exflow::flow::FlowConfig;
use exflow::output::{write_table, Report, TableOptions};
use exflow::source::{CaptureReader, ReadLimits};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Mutants per seed file.
const MUTANTS: u64 = 24;
/// Bytes of each seed file used (mutations matter most in headers and the first records).
const SEED_PREFIX: usize = 48 << 10;

/// xorshift64*: deterministic, so a failure names a reproducible (file, mutant) pair.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            captures(&p, out);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| matches!(x, "pcap" | "pcapng" | "cap" | "gz"))
        {
            out.push(p);
        }
    }
}

/// Ethernet frames of a little-endian microsecond pcap: (seconds, microseconds, data).
fn pcap_frames(b: &[u8]) -> Vec<(u32, u32, &[u8])> {
    let mut out = Vec::new();
    if b.get(..4) != Some(&[0xd4, 0xc3, 0xb2, 0xa1]) || b.get(20..24) != Some(&[1, 0, 0, 0]) {
        return out;
    }
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    let mut at = 24;
    while at + 16 <= b.len() && out.len() < 200 {
        let caplen = u32_at(at + 8) as usize;
        let Some(data) = b.get(at + 16..at + 16 + caplen) else {
            break;
        };
        out.push((u32_at(at), u32_at(at + 4), data));
        at += 16 + caplen;
    }
    out
}

/// The frames as a NetMon 2.0 file: header, frames, frame table.
fn to_netmon(frames: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut out = vec![0u8; 128];
    out[..4].copy_from_slice(b"GMBU");
    out[5] = 2;
    out[6] = 1;
    for (i, v) in [2005u16, 7, 0, 17, 11, 24, 47, 0].iter().enumerate() {
        out[8 + 2 * i..10 + 2 * i].copy_from_slice(&v.to_le_bytes());
    }
    let t0 = frames
        .first()
        .map_or(0, |f| u64::from(f.0) * 1_000_000 + u64::from(f.1));
    let mut table = Vec::new();
    for (s, us, data) in frames {
        table.extend_from_slice(&(out.len() as u32).to_le_bytes());
        let delta = (u64::from(*s) * 1_000_000 + u64::from(*us)).saturating_sub(t0);
        out.extend_from_slice(&delta.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    let table_at = out.len() as u32;
    out[24..28].copy_from_slice(&table_at.to_le_bytes());
    out[28..32].copy_from_slice(&(table.len() as u32).to_le_bytes());
    out.extend(table);
    out
}

/// The frames as a NetXRay 2.0 Ethernet file with microsecond ticks.
fn to_netxray(frames: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut out = vec![0u8; 128];
    out[..4].copy_from_slice(b"XCP\0");
    out[4..12].copy_from_slice(b"002.000\0");
    out[12..16].copy_from_slice(&frames.first().map_or(0, |f| f.0).to_le_bytes());
    out[24..28].copy_from_slice(&128u32.to_le_bytes());
    for (s, us, data) in frames {
        let t0 = frames[0].0;
        let ticks = u64::from(s.saturating_sub(t0)) * 1_000_000 + u64::from(*us);
        let mut h = [0u8; 40];
        h[..8].copy_from_slice(&ticks.to_le_bytes());
        h[8..10].copy_from_slice(&(data.len() as u16).to_le_bytes());
        h[10..12].copy_from_slice(&(data.len() as u16).to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
    }
    let end = out.len() as u32;
    out[28..32].copy_from_slice(&end.to_le_bytes());
    out
}

/// One fuzzer-style mutation.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            break;
        }
        let at = rng.below(b.len());
        match rng.below(6) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.next() as u8,
            2 => {
                let extreme: [u8; 8] = match rng.below(4) {
                    0 => [0xff; 8],
                    1 => [0; 8],
                    2 => [0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0],
                    _ => [0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff],
                };
                let n = (b.len() - at).min(4 + rng.below(5));
                b[at..at + n].copy_from_slice(&extreme[..n]);
            }
            3 => b.truncate(at),
            4 => {
                let len = rng.below(64).min(b.len() - at);
                let chunk = b[at..at + len].to_vec();
                let to = rng.below(b.len());
                b.splice(to..to, chunk);
            }
            _ => {
                let len = rng.below(64).min(b.len() - at);
                b.drain(at..at + len);
            }
        }
    }
    b
}

/// Runs the pipeline over `bytes` and checks the report; returns the packets read, or `None`
/// if the capture could not be opened or ended in an error.
fn run(name: &str, bytes: Vec<u8>) -> Option<u64> {
    let limits = ReadLimits {
        window: 8 << 20,
        interfaces_per_section: 64,
        ..ReadLimits::default()
    };
    let Ok(mut r) =
        CaptureReader::from_reader_with(name, Box::new(std::io::Cursor::new(bytes)), limits)
    else {
        return None;
    };
    let config = Config {
        flow: FlowConfig {
            max_flows: 256,
            ..FlowConfig::default()
        },
        keep_flows: true,
        max_flow_records: 512,
        ..Config::default()
    };
    let mut a = Analyzer::new(config);
    a.begin_file(name);
    let mut n = 0u64;
    let mut failed = false;
    loop {
        match r.next_packet() {
            Ok(Some(p)) => {
                a.packet(&p);
                n += 1;
                assert!(n < 1 << 22, "{name}: the reader does not end");
            }
            Ok(None) => break,
            Err(e) => {
                a.file_error(e.to_string());
                failed = true;
                break;
            }
        }
    }
    let report = Report::new(&a.finish());
    let i = &report.input;
    let in_flows: u64 = report.services.iter().map(|s| s.packets).sum();
    assert_eq!(
        i.packets,
        in_flows + i.icmp_unreachable + i.skipped.values().sum::<u64>(),
        "{name}: packets unaccounted for"
    );
    assert!(
        i.duration_s >= 0.0 && i.duration_s < 400.0 * 365.0 * 86_400.0,
        "{name}: {i:?}"
    );
    for s in &report.services {
        assert!(s.duration_s.max >= 0.0, "{name}: {s:?}");
        assert!(s.handshake_rtt_ms.max >= 0.0, "{name}: {s:?}");
    }
    for f in report.flows.iter().flatten() {
        assert!(f.last_ts >= f.first_ts, "{name}: {f:?}");
    }
    let mut sink = Vec::new();
    serde_json::to_writer(&mut sink, &report).unwrap();
    write_table(&mut sink, &report, TableOptions::default()).unwrap();
    (!failed).then_some(n)
}

#[test]
fn mutated_corpus_captures_through_the_whole_pipeline() {
    let mut files = Vec::new();
    captures(&Path::new(ROOT).join("tests/data/corpus"), &mut files);
    captures(&Path::new(ROOT).join("samples"), &mut files);
    files.sort();
    assert!(files.len() >= 40, "corpus not found: {files:?}");
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    for f in &files {
        let mut b = std::fs::read(f).unwrap();
        let name = f.strip_prefix(ROOT).unwrap_or(f).display().to_string();
        let frames = pcap_frames(&b);
        if !frames.is_empty() {
            let (netmon, netxray) = (to_netmon(&frames), to_netxray(&frames));
            let want = Some(frames.len() as u64);
            assert_eq!(run(&name, netmon.clone()), want, "{name} as NetMon");
            assert_eq!(run(&name, netxray.clone()), want, "{name} as NetXRay");
            seeds.push((format!("{name} as NetMon"), netmon));
            seeds.push((format!("{name} as NetXRay"), netxray));
        }
        b.truncate(SEED_PREFIX);
        seeds.push((name, b));
    }
    assert!(seeds.iter().any(|(n, _)| n.ends_with("as NetMon")));
    let mut runs = 0;
    for (k, (name, seed)) in seeds.iter().enumerate() {
        // The unmutated seed must read: the mutants start from something valid.
        run(name, seed.clone());
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (k as u64 + 1));
        for m in 0..MUTANTS {
            let bytes = mutate(seed, &mut rng);
            run(&format!("{name} mutant {m}"), bytes);
            runs += 1;
        }
    }
    eprintln!("{runs} mutated captures through the pipeline");
    assert!(runs >= 40 * MUTANTS as usize);
}
