//! Decodes every packet of the shared real-capture corpus (see its README.md and MANIFEST.tsv)
//! and checks that each one either decodes or is skipped for an expected reason.
//!
//! The corpus lives outside the repository: `$EXFLOW_CORPUS`, else `tests/data/corpus` (a copy of `../shared/corpus`). When
//! it is absent the test says so and passes. Run with `--nocapture` to see the per-file tally.
//! The capture reader here is a minimal pcap-parser loop of its own, so that this test depends
//! only on `decode`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use exflow::decode::{decode, FragmentTracker, SkipReason};
use exflow::packet::RawPacket;
use pcap_parser::{Block, PcapBlockOwned, PcapError};

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("EXFLOW_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/corpus"))
        });
    dir.join("MANIFEST.tsv").is_file().then_some(dir)
}

/// Reads a pcap or pcapng file (gzip-compressed or not) and calls `f` with each frame. Returns
/// false for other formats (NetXRay, Network Monitor), which exflow does not read.
fn for_each_frame(path: &Path, mut f: impl FnMut(RawPacket<'_>)) -> bool {
    let mut bytes = std::fs::read(path).unwrap();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        bytes = out;
    }
    let mut reader = match pcap_parser::create_reader(1 << 20, &bytes[..]) {
        Ok(r) => r,
        Err(PcapError::HeaderNotRecognized) => return false,
        Err(e) => panic!("{}: {e:?}", path.display()),
    };
    let mut legacy_link_type = 0;
    let mut interfaces: Vec<u32> = Vec::new();
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => legacy_link_type = h.network.0 as u32,
                    PcapBlockOwned::Legacy(b) => f(RawPacket {
                        ts: 0,
                        link_type: legacy_link_type,
                        data: b.data,
                        wire_len: b.origlen,
                    }),
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => interfaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        interfaces.push(idb.linktype.0 as u32)
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let caplen = (epb.caplen as usize).min(epb.data.len());
                        f(RawPacket {
                            ts: 0,
                            link_type: interfaces[epb.if_id as usize],
                            data: &epb.data[..caplen],
                            wire_len: epb.origlen,
                        })
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let caplen = (spb.origlen as usize).min(spb.data.len());
                        f(RawPacket {
                            ts: 0,
                            link_type: interfaces[0],
                            data: &spb.data[..caplen],
                            wire_len: spb.origlen,
                        })
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => reader.refill().unwrap(),
            Err(e) => panic!("{}: {e:?}", path.display()),
        }
    }
    true
}

/// What one file decoded to.
#[derive(Default)]
struct Tally {
    frames: u64,
    by_proto: BTreeMap<&'static str, u64>,
    skipped: BTreeMap<String, u64>,
    unreachable: u64,
    fragments: u64,
    trailing_unresolved: u64,
}

fn tally(path: &Path) -> Option<Tally> {
    let mut t = Tally::default();
    let mut tracker = FragmentTracker::new(1024);
    let read = for_each_frame(path, |raw| {
        t.frames += 1;
        match decode(&raw) {
            Ok(mut p) => {
                assert_eq!(p.wire_len, raw.wire_len);
                *t.by_proto.entry(p.proto.as_str()).or_default() += 1;
                t.unreachable += u64::from(p.unreachable.is_some());
                t.fragments += u64::from(p.fragment.is_some());
                if !tracker.resolve(&mut p) {
                    t.trailing_unresolved += 1;
                }
            }
            Err(reason) => *t.skipped.entry(reason.to_string()).or_default() += 1,
        }
    });
    read.then_some(t)
}

/// Skips that are expected somewhere in the corpus: (file, reason, count).
/// Everything else a file skips fails the test.
const EXPECTED_SKIPS: &[(&str, &str, u64)] = &[];

#[test]
fn corpus_decodes() {
    let Some(dir) = corpus_dir() else {
        eprintln!("corpus not found; set EXFLOW_CORPUS to run this test");
        return;
    };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut failures = Vec::new();
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, packets) = (cols[0], cols[6].parse::<u64>().unwrap());
        let Some(t) = tally(&dir.join(file)) else {
            println!("{file}: neither pcap nor pcapng, not read");
            continue;
        };
        println!(
            "{file}: {} frames, {:?}, skipped {:?}, unreachable {}, fragments {} ({} unresolved)",
            t.frames, t.by_proto, t.skipped, t.unreachable, t.fragments, t.trailing_unresolved
        );
        if t.frames != packets {
            failures.push(format!(
                "{file}: {} frames, manifest says {packets}",
                t.frames
            ));
        }
        for (reason, n) in &t.skipped {
            let expected = EXPECTED_SKIPS
                .iter()
                .any(|&(f, r, c)| f == file && r == reason && c == *n);
            if !expected && reason != SkipReason::NonIp.as_str() {
                failures.push(format!("{file}: {n} skipped as {reason}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
