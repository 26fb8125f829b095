//! The H.323 parsers against tshark's decode of the real captures in `shared/corpus`
//! (`H323_TRUTH.tsv`): every transport address, per file, by (frame, kind, ip, port).
//!
//! This test carries its own small capture reader (pcap, gzip pcap, NetXRay 1.1) and flow
//! table so that it depends only on the signal parsers. When the corpus is not beside the crate
//! (`tests/data/corpus`, or `$EXFLOW_CORPUS`) it says so and passes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use exflow::packet::Endpoint;
use exflow::signal::{h225, h245, ras, AddrKind, Announced};
use exflow::track::TpktStream;

type Row = (u64, String, String, u16);
/// Rows, and rows with their context.
type Found = (BTreeSet<Row>, BTreeSet<(Row, String)>);

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("EXFLOW_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus"));
    dir.join("H323_TRUTH.tsv").is_file().then_some(dir)
}

/// Frames of a capture, in file order.
fn read_frames(path: &Path) -> Vec<Vec<u8>> {
    let mut raw = std::fs::read(path).expect("read capture");
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        raw = out;
    }
    if raw.starts_with(b"XCP\0") {
        return netxray_frames(&raw);
    }
    let cap = pcap_parser::PcapCapture::from_file(&raw).expect("pcap");
    cap.blocks.iter().map(|b| b.data.to_vec()).collect()
}

/// NetXRay / Sniffer 1.1: 128-byte file header, 28-byte record headers.
fn netxray_frames(raw: &[u8]) -> Vec<Vec<u8>> {
    let u32_at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap()) as usize;
    let u16_at = |o: usize| u16::from_le_bytes(raw[o..o + 2].try_into().unwrap()) as usize;
    let (mut pos, end) = (u32_at(24), u32_at(28).min(raw.len()));
    let mut frames = Vec::new();
    while pos + 28 <= end {
        let incl = u16_at(pos + 10);
        let data = pos + 28;
        if data + incl > end {
            break;
        }
        frames.push(raw[data..data + incl].to_vec());
        pos = data + incl;
    }
    frames
}

fn row(frame: u64, a: &Announced) -> Row {
    (
        frame,
        a.kind.key().to_string(),
        a.addr.ip.to_string(),
        a.addr.port,
    )
}

/// Runs the parsers over one capture: TPKT streams on tcp/1720 (H.225) and on connections to
/// announced `h245Address`es (H.245), RAS on udp/1719.
#[derive(Debug, Default)]
struct Diag {
    h225_ok: u32,
    h245_ok: u32,
    ras_ok: u32,
    fast_start: u32,
    h245_control: u32,
    nested_errors: u32,
    errors: Vec<String>,
}

fn decode_capture(path: &Path) -> Found {
    let mut diag = Diag::default();
    let mut streams: HashMap<(Endpoint, Endpoint), TpktStream> = HashMap::new();
    let mut h245_servers: HashSet<Endpoint> = HashSet::new();
    let mut rows = BTreeSet::new();
    let mut with_ctx = BTreeSet::new();
    for (i, data) in read_frames(path).iter().enumerate() {
        let frame = i as u64 + 1;
        let Ok(pkt) = SlicedPacket::from_ethernet(data) else {
            continue;
        };
        let (src_ip, dst_ip): (IpAddr, IpAddr) = match &pkt.net {
            Some(NetSlice::Ipv4(v4)) => (
                v4.header().source_addr().into(),
                v4.header().destination_addr().into(),
            ),
            Some(NetSlice::Ipv6(v6)) => (
                v6.header().source_addr().into(),
                v6.header().destination_addr().into(),
            ),
            _ => continue,
        };
        let mut found: Vec<Announced> = Vec::new();
        match &pkt.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                let src = Endpoint::new(src_ip, tcp.source_port());
                let dst = Endpoint::new(dst_ip, tcp.destination_port());
                let is_h225 = src.port == 1720 || dst.port == 1720;
                let is_h245 = h245_servers.contains(&src) || h245_servers.contains(&dst);
                if !(is_h225 || is_h245) || tcp.payload().is_empty() {
                    continue;
                }
                let stream = streams.entry((src, dst)).or_default();
                stream.push(tcp.sequence_number(), tcp.payload(), |msg| {
                    let mut sink = |a: Announced| found.push(a);
                    if is_h225 {
                        match h225::parse_frame(msg, &mut sink) {
                            Ok(s) => {
                                diag.h225_ok += 1;
                                diag.nested_errors += s.nested_errors;
                                diag.fast_start += s.fast_start;
                                diag.h245_control += s.h245_control;
                            }
                            Err(e) => diag.errors.push(format!("frame {frame} h225: {e}")),
                        }
                    } else {
                        match h245::parse_frame(msg, &mut sink) {
                            Ok(_) => diag.h245_ok += 1,
                            Err(e) => diag.errors.push(format!("frame {frame} h245: {e}")),
                        }
                    }
                });
            }
            Some(TransportSlice::Udp(udp))
                if udp.source_port() == 1719 || udp.destination_port() == 1719 =>
            {
                match ras::parse(udp.payload(), &mut |a| found.push(a)) {
                    Ok(_) => diag.ras_ok += 1,
                    Err(e) => diag.errors.push(format!("frame {frame} ras: {e}")),
                }
            }
            _ => {}
        }
        for a in found {
            if a.kind == AddrKind::H245Address {
                h245_servers.insert(a.addr);
            }
            let r = row(frame, &a);
            with_ctx.insert((r.clone(), a.context.key().to_string()));
            rows.insert(r);
        }
    }
    let mut tpkt = exflow::track::TpktStats::default();
    for s in streams.values() {
        let st = s.stats();
        tpkt.frames += st.frames;
        tpkt.garbage_bytes += st.garbage_bytes;
        tpkt.duplicate_bytes += st.duplicate_bytes;
        tpkt.oversize_frames += st.oversize_frames;
        tpkt.gaps += st.gaps;
    }
    eprintln!("  {tpkt:?}");
    eprintln!(
        "  h225 ok {} h245 ok {} ras ok {} fastStart {} h245Control {} nested errors {} errors {}",
        diag.h225_ok,
        diag.h245_ok,
        diag.ras_ok,
        diag.fast_start,
        diag.h245_control,
        diag.nested_errors,
        diag.errors.len()
    );
    for e in diag.errors.iter().take(10) {
        eprintln!("  {e}");
    }
    (rows, with_ctx)
}

fn truth(dir: &Path) -> HashMap<String, Found> {
    let text = std::fs::read_to_string(dir.join("H323_TRUTH.tsv")).expect("truth");
    let mut by_file: HashMap<String, Found> = HashMap::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let r: Row = (
            f[1].parse().unwrap(),
            f[2].to_string(),
            f[3].to_string(),
            f[4].parse().unwrap(),
        );
        let e = by_file.entry(f[0].to_string()).or_default();
        e.1.insert((r.clone(), f[5].to_string()));
        e.0.insert(r);
    }
    by_file
}

const FILES: [&str; 5] = [
    "wireshark-wiki/SampleCaptures/rtp_example.raw.gz",
    "wireshark-wiki/SampleCaptures/tel2.dump",
    "wireshark-wiki/SampleCaptures/cr_ss101.cap",
    "ndpi/h323.pcap",
    "ndpi/h323-overflow.pcap",
];

#[test]
fn corpus_addresses_match_tshark() {
    let Some(dir) = corpus_dir() else {
        eprintln!("H.323 corpus not found beside the crate; skipping");
        return;
    };
    let truth = truth(&dir);
    let mut failures = Vec::new();
    for file in FILES {
        let (want, want_ctx) = truth.get(file).cloned().unwrap_or_default();
        eprintln!("decoding {file}");
        let (got, got_ctx) = decode_capture(&dir.join(file));
        let matched = want.intersection(&got).count();
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(&want).collect();
        let ctx_diff: Vec<_> = want_ctx.symmetric_difference(&got_ctx).collect();
        eprintln!(
            "{file}: truth {} matched {matched} missing {} extra {} context-diffs {}",
            want.len(),
            missing.len(),
            extra.len(),
            ctx_diff.len()
        );
        for m in &missing {
            eprintln!("  missing {m:?}");
        }
        for e in &extra {
            eprintln!("  extra   {e:?}");
        }
        for c in &ctx_diff {
            eprintln!("  context {c:?}");
        }
        if !missing.is_empty() || !extra.is_empty() || !ctx_diff.is_empty() {
            failures.push(file);
        }
    }
    assert!(failures.is_empty(), "mismatches in {failures:?}");
}
