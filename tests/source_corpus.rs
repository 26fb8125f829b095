//! Integration tests of `exflow::source`: synthetic captures read through the public API
//! (slow streams, gzip files, errors), and packet counts of real captures when they are present.
//!
//! Real captures: every file of `tests/data/MANIFEST.tsv` (columns `local_path` and `packets`)
//! found under `tests/data/` must read with exactly the listed number of packets. The directory
//! is optional; set `EXFLOW_CORPUS=DIR` to check a corpus elsewhere (a folder holding
//! `MANIFEST.tsv` and the files at its `local_path`s).

mod common;

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use exflow::source::{CaptureFormat, CaptureReader, SourceError, SourceErrorKind};

/// Little-endian pcapng blocks, enough for these tests.
fn block(block_type: u32, body: &[u8]) -> Vec<u8> {
    let padded = (body.len() + 3) & !3;
    let len = (12 + padded) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&block_type.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.resize(8 + padded, 0);
    out.extend_from_slice(&len.to_le_bytes());
    out
}

fn le(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// A pcapng stream: one section, interfaces of the given link types, one EPB per packet.
fn pcapng(link_types: &[u16], packets: &[(u32, u64, &[u8])]) -> Vec<u8> {
    let mut out = block(
        0x0a0d_0d0a,
        &[le(&[0x1a2b_3c4d, 1, u32::MAX, u32::MAX])].concat(),
    );
    for lt in link_types {
        out.extend(block(1, &le(&[u32::from(*lt), 0])));
    }
    for (iface, ts, data) in packets {
        let mut body = le(&[
            *iface,
            (ts >> 32) as u32,
            *ts as u32,
            data.len() as u32,
            1500,
        ]);
        body.extend_from_slice(data);
        out.extend(block(6, &body));
    }
    out
}

/// A microsecond little-endian pcap file with `n` Ethernet-sized packets.
fn pcap(n: u32, size: usize) -> Vec<u8> {
    let mut out = le(&[0xa1b2_c3d4, 0x0004_0002, 0, 0, 65535, 1]);
    for i in 0..n {
        out.extend(le(&[
            1_600_000_000 + i,
            i % 1_000_000,
            size as u32,
            size as u32,
        ]));
        out.extend(std::iter::repeat_n(i as u8, size));
    }
    out
}

/// Every packet as (ts, link type, data, wire length), and the error that ended reading.
type Packets = Vec<(i64, u32, Vec<u8>, u32)>;

fn read_all(name: &str, input: Box<dyn Read + Send>) -> (Packets, Option<SourceError>) {
    let mut r = match CaptureReader::from_reader(name, input) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    loop {
        match r.next_packet() {
            Ok(Some(p)) => out.push((p.ts, p.link_type, p.data.to_vec(), p.wire_len)),
            Ok(None) => return (out, None),
            Err(e) => {
                assert!(
                    r.next_packet().unwrap().is_none(),
                    "reader goes on after an error"
                );
                return (out, Some(e));
            }
        }
    }
}

/// A stream fed by another thread in small, delayed chunks, like `tcpdump -w - |`.
struct Pipe(mpsc::Receiver<Vec<u8>>, Cursor<Vec<u8>>);

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.1.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match self.0.recv() {
                Ok(chunk) => self.1 = Cursor::new(chunk),
                Err(_) => return Ok(0),
            }
        }
    }
}

fn slow_pipe(bytes: Vec<u8>, chunk: usize) -> Box<dyn Read + Send> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for c in bytes.chunks(chunk) {
            std::thread::sleep(std::time::Duration::from_micros(50));
            if tx.send(c.to_vec()).is_err() {
                return;
            }
        }
    });
    Box::new(Pipe(rx, Cursor::new(Vec::new())))
}

#[test]
fn slow_streams_read_like_files() {
    let ng = pcapng(
        &[1, 113],
        &[(0, 10, b"first"), (1, 20, b"second"), (0, 30, b"")],
    );
    for bytes in [pcap(50, 70), ng] {
        let (expected, err) = read_all("file", Box::new(Cursor::new(bytes.clone())));
        assert!(err.is_none());
        for chunk in [1, 3, 17] {
            let (got, err) = read_all("-", slow_pipe(bytes.clone(), chunk));
            assert!(err.is_none(), "{err:?}");
            assert_eq!(got, expected);
        }
    }
}

#[test]
fn packets_in_a_slow_stream_are_yielded_before_it_ends() {
    // The reader must hand out a packet as soon as it is complete, not wait for more input.
    let (tx, rx) = mpsc::channel();
    let bytes = pcap(2, 40);
    let first_end = 24 + 16 + 40;
    tx.send(bytes[..first_end].to_vec()).unwrap();
    let mut r =
        CaptureReader::from_reader("-", Box::new(Pipe(rx, Cursor::new(Vec::new())))).unwrap();
    assert_eq!(r.next_packet().unwrap().unwrap().data.len(), 40);
    tx.send(bytes[first_end..].to_vec()).unwrap();
    drop(tx);
    assert_eq!(r.next_packet().unwrap().unwrap().data, &[1u8; 40][..]);
    assert!(r.next_packet().unwrap().is_none());
}

#[test]
fn per_interface_link_types() {
    let ng = pcapng(&[1, 113, 101], &[(2, 1, b"a"), (0, 2, b"b"), (1, 3, b"c")]);
    let (got, err) = read_all("x", Box::new(Cursor::new(ng)));
    assert!(err.is_none());
    let link_types: Vec<u32> = got.iter().map(|p| p.1).collect();
    assert_eq!(link_types, [101, 1, 113]);
    assert_eq!(got[0].0, 1_000);
}

#[test]
fn gzip_files_open_with_progress() {
    let plain = pcap(1000, 100);
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&plain).unwrap();
    let z = z.finish().unwrap();
    let path = common::scratch("source-corpus").join("gzip.pcap.gz");
    std::fs::write(&path, &z).unwrap();
    let mut r = CaptureReader::open(path.to_str().unwrap()).unwrap();
    assert_eq!((r.format(), r.is_gzip()), (CaptureFormat::Pcap, true));
    let mut n = 0;
    while r.next_packet().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 1000);
    assert_eq!(r.progress(), Some((z.len() as u64, z.len() as u64)));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn error_messages_name_the_file_and_offset() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "cap: empty file"),
        (
            b"\x7fELF\x02\x01".to_vec(),
            "cap: not a pcap, pcapng, NetMon or Sniffer capture (starts with 7f 45 4c 46, \".ELF\")",
        ),
        (
            pcap(2, 10)[..60].to_vec(),
            "cap: truncated packet record at byte 50",
        ),
        (
            {
                let mut b = pcap(3, 10);
                b[58..62].copy_from_slice(&1_000_000u32.to_le_bytes());
                b
            },
            "cap: corrupt captured length 1000000 at byte 50",
        ),
        (
            pcapng(&[], &[(0, 0, b"x")]),
            "cap: packet for undefined interface 0 at byte 28",
        ),
        (
            {
                let mut b = pcapng(&[1], &[(0, 0, b"x")]);
                b.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 7, 0, 0, 0]);
                b
            },
            "cap: corrupt pcapng block length 7 at byte 84",
        ),
    ];
    for (bytes, message) in cases {
        let (_, err) = read_all("cap", Box::new(Cursor::new(bytes)));
        assert_eq!(err.map(|e| e.to_string()).as_deref(), Some(message));
    }
}

#[test]
fn header_only_captures_are_valid() {
    for bytes in [pcap(0, 0), pcapng(&[1], &[])] {
        let (got, err) = read_all("h", Box::new(Cursor::new(bytes)));
        assert!(got.is_empty() && err.is_none());
    }
}

#[test]
fn missing_file() {
    let e = CaptureReader::open("no/such/file.pcap").err().unwrap();
    assert!(matches!(e.kind, SourceErrorKind::Io(_)));
    assert!(
        e.to_string().starts_with("no/such/file.pcap: No such file"),
        "{e}"
    );
}

/// The folder of real captures: `EXFLOW_CORPUS`, else `tests/data` if it exists.
fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("EXFLOW_CORPUS") {
        return Some(dir.into());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    dir.is_dir().then_some(dir)
}

/// Expected packet counts from a `MANIFEST.tsv` (columns `local_path` and `packets`), as
/// (path relative to the manifest's folder, packets).
fn manifest(path: &Path) -> Vec<(String, u64)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (path_col, packets_col) = (col("local_path"), col("packets"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split('\t').collect();
            (
                fields[path_col].to_string(),
                fields[packets_col].parse().unwrap(),
            )
        })
        .collect()
}

/// Each capture listed in a manifest and present, with its expected packet count. Manifests are
/// looked for under `dir`; without one, the shared corpus manifest next to the crate (during
/// development) names files found anywhere under `dir` by their file name.
fn expected_counts(dir: &Path, files: &[PathBuf]) -> Vec<(PathBuf, u64)> {
    let local: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.ends_with("MANIFEST.tsv"))
        .collect();
    let mut out = Vec::new();
    for m in &local {
        let base = m.parent().unwrap_or(dir);
        for (rel, n) in manifest(m) {
            let path = base.join(rel);
            if path.is_file() {
                out.push((path, n));
            }
        }
    }
    if local.is_empty() {
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/MANIFEST.tsv");
        for (rel, n) in manifest(&shared) {
            let name = Path::new(&rel).file_name().unwrap_or_default();
            let mut found = files.iter().filter(|p| p.file_name() == Some(name));
            if let (Some(path), None) = (found.next(), found.next()) {
                out.push((path.clone(), n));
            }
        }
    }
    out
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Reads a whole capture: its packet count, or the error that stopped it.
fn count_packets(path: &Path) -> Result<u64, SourceError> {
    let mut r = CaptureReader::open(path.to_str().unwrap())?;
    let mut n = 0;
    while r.next_packet()?.is_some() {
        n += 1;
    }
    Ok(n)
}

#[test]
fn corpus_packet_counts_match_the_manifest() {
    let Some(dir) = corpus_dir() else { return };
    let mut files = Vec::new();
    files_under(&dir, &mut files);
    let mut failures = Vec::new();
    let expected = expected_counts(&dir, &files);
    for (path, n_expected) in &expected {
        match count_packets(path) {
            Ok(n) if n == *n_expected => {}
            Ok(n) => failures.push(format!(
                "{}: {n} packets, manifest says {n_expected}",
                path.display()
            )),
            Err(e) => failures.push(e.to_string()),
        }
    }
    // Captures no manifest lists must at least read without error.
    let mut unlisted = 0;
    for path in files
        .iter()
        .filter(|p| !expected.iter().any(|(e, _)| e == *p))
    {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.contains(".pcap") || name.ends_with(".cap") {
            unlisted += 1;
            if let Err(e) = count_packets(path) {
                failures.push(e.to_string());
            }
        }
    }
    let summary = format!(
        "{} captures counted against a manifest, {unlisted} more read, in {}",
        expected.len(),
        dir.display()
    );
    assert!(failures.is_empty(), "{summary}:\n{}", failures.join("\n"));
    println!("{summary}");
}

/// Read speed of a big capture: `EXFLOW_BENCH_FILE=big.pcap cargo test --release --test
/// source_corpus -- --ignored --nocapture read_speed`.
#[test]
#[ignore]
fn read_speed() {
    let Some(path) = std::env::var_os("EXFLOW_BENCH_FILE") else {
        return;
    };
    let start = Instant::now();
    let mut r = CaptureReader::open(path.to_str().unwrap()).unwrap();
    let (mut n, mut bytes, mut sum) = (0u64, 0u64, 0u64);
    while let Some(p) = r.next_packet().unwrap() {
        n += 1;
        bytes += p.data.len() as u64;
        sum = sum.wrapping_add(u64::from(p.data.first().copied().unwrap_or(0)));
    }
    let secs = start.elapsed().as_secs_f64();
    let size = r.progress().map_or(0, |p| p.1);
    println!(
        "{n} packets, {bytes} captured bytes, {:.0} MB/s of file, {:.1} Mpkt/s (checksum {sum})",
        size as f64 / secs / 1e6,
        n as f64 / secs / 1e6
    );
}
