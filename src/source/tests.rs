//! Unit tests of format detection, gzip, and opening files.

use std::io::{Cursor, Write};

#[cfg(target_os = "linux")]
use super::testutil::{long_file, mapping_rss};
use super::testutil::{pcap_file, PcapRec, Pcapng, TempDir};
use super::*;

fn from_bytes(bytes: Vec<u8>) -> Result<CaptureReader, SourceError> {
    CaptureReader::from_reader("in", Box::new(Cursor::new(bytes)))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn small_pcap() -> Vec<u8> {
    let recs: Vec<PcapRec> = (0..3u8)
        .map(|i| PcapRec {
            sec: i.into(),
            frac: 0,
            data: vec![i; 10 + i as usize],
            orig_len: 60,
        })
        .collect();
    pcap_file(false, false, 1, &recs)
}

fn count(r: &mut CaptureReader) -> Result<usize, SourceError> {
    let mut n = 0;
    while r.next_packet()?.is_some() {
        n += 1;
    }
    Ok(n)
}

#[test]
fn empty_and_not_a_capture() {
    let e = from_bytes(Vec::new()).err().unwrap();
    assert_eq!(e.to_string(), "in: empty file");
    let e = from_bytes(b"GET / HTTP/1.1\r\n".to_vec()).err().unwrap();
    assert!(matches!(
        e.kind,
        SourceErrorKind::NotACapture {
            magic: [0x47, 0x45, 0x54, 0x20]
        }
    ));
    assert_eq!(
        e.to_string(),
        "in: not a pcap, pcapng, NetMon or Sniffer capture (starts with 47 45 54 20, \"GET \")"
    );
    let e = from_bytes(vec![0xd4]).err().unwrap();
    assert!(matches!(
        e.kind,
        SourceErrorKind::NotACapture {
            magic: [0xd4, 0, 0, 0]
        }
    ));
}

#[test]
fn formats_are_detected() {
    let r = from_bytes(small_pcap()).unwrap();
    assert_eq!((r.format(), r.is_gzip()), (CaptureFormat::Pcap, false));
    let r = from_bytes(pcap_file(true, true, 1, &[])).unwrap();
    assert_eq!(r.format(), CaptureFormat::PcapNanos);
    let r = from_bytes(Pcapng::new(true).bytes()).unwrap();
    assert_eq!(r.format(), CaptureFormat::Pcapng);
}

#[test]
fn gzip_is_decompressed_including_several_members() {
    let plain = small_pcap();
    let mut r = from_bytes(gzip(&plain)).unwrap();
    assert!(r.is_gzip());
    assert_eq!(count(&mut r).unwrap(), 3);
    let (a, b) = plain.split_at(50);
    let mut two = gzip(a);
    two.extend(gzip(b));
    let mut r = from_bytes(two).unwrap();
    assert_eq!(count(&mut r).unwrap(), 3);
    let mut f = Pcapng::new(false);
    f.interface(1, 0, &[]).epb(0, 0, b"x", 1);
    assert_eq!(
        count(&mut from_bytes(gzip(&f.bytes())).unwrap()).unwrap(),
        1
    );
}

#[test]
fn gzip_of_nothing_is_empty() {
    let e = from_bytes(gzip(b"")).err().unwrap();
    assert!(matches!(e.kind, SourceErrorKind::Empty));
}

#[test]
fn corrupt_and_cut_gzip() {
    let e = from_bytes(vec![0x1f, 0x8b, 7, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3])
        .err()
        .unwrap();
    assert!(matches!(e.kind, SourceErrorKind::Decompress(_)), "{e}");
    assert!(e.to_string().starts_with("in: corrupt gzip data"), "{e}");
    let e = from_bytes(vec![0x1f, 0x8b, 8, 0, 0, 0]).err().unwrap();
    assert_eq!(e.to_string(), "in: truncated gzip stream at byte 0");
}

/// Stored (uncompressed) deflate: compressed byte `15 + i` is uncompressed byte `i`.
fn stored_gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn a_cut_gzip_reads_like_a_cut_file() {
    let plain = small_pcap();
    let second = 24 + 16 + 10;
    let z = stored_gzip(&plain);
    // Cut inside the second record: the record is reported at its own offset.
    let mut r = from_bytes(z[..15 + second + 20].to_vec()).unwrap();
    assert_eq!(r.next_packet().unwrap().unwrap().data.len(), 10);
    let e = r.next_packet().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("in: truncated packet record at byte {second}")
    );
    // Cut between records, or only the trailer missing: the stream itself is reported.
    for (cut, at, packets) in [(15 + second, second, 1), (z.len() - 4, plain.len(), 3)] {
        let mut r = from_bytes(z[..cut].to_vec()).unwrap();
        let e = count(&mut r).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("in: truncated gzip stream at byte {at}")
        );
        let mut r = from_bytes(z[..cut].to_vec()).unwrap();
        for _ in 0..packets {
            assert!(r.next_packet().unwrap().is_some());
        }
    }
}

#[test]
fn open_reports_missing_files_and_progress() {
    let e = CaptureReader::open("/nonexistent/x.pcap").err().unwrap();
    assert!(matches!(e.kind, SourceErrorKind::Io(_)));
    assert!(e.to_string().starts_with("/nonexistent/x.pcap: "), "{e}");
    assert!(e.offset.is_none());
    let e = CaptureReader::open("/").err().unwrap();
    assert_eq!(e.to_string(), "/: is a directory");

    let dir = TempDir::new("source");
    let path = dir.join("p.pcap.gz");
    let z = gzip(&small_pcap());
    std::fs::write(&path, &z).unwrap();
    let mut r = CaptureReader::open(path.to_str().unwrap()).unwrap();
    assert_eq!(count(&mut r).unwrap(), 3);
    assert_eq!(r.progress(), Some((z.len() as u64, z.len() as u64)));
    assert_eq!(r.offset(), small_pcap().len() as u64);
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let e = CaptureReader::open(empty.to_str().unwrap()).err().unwrap();
    assert_eq!(e.to_string(), format!("{}: empty file", empty.display()));
}

#[test]
fn packets_borrow_one_reused_buffer() {
    // Many packets, more than one buffer's worth: every one must come out intact.
    let recs: Vec<PcapRec> = (0..5000u32)
        .map(|i| PcapRec {
            sec: i,
            frac: 0,
            data: vec![i as u8; 300 + (i % 97) as usize],
            orig_len: 2000,
        })
        .collect();
    let mut r = from_bytes(pcap_file(false, false, 1, &recs)).unwrap();
    let mut i = 0u32;
    while let Some(p) = r.next_packet().unwrap() {
        assert_eq!(p.ts, i64::from(i) * 1_000_000_000);
        assert_eq!(p.data.len(), 300 + (i % 97) as usize);
        assert!(p.data.iter().all(|&b| b == i as u8));
        i += 1;
    }
    assert_eq!(i, 5000);
}

/// Every packet, then the error (as text) or `None`, read from `r`.
fn drain(r: &mut CaptureReader) -> (Vec<(i64, Vec<u8>)>, Option<String>) {
    let mut out = Vec::new();
    loop {
        match r.next_packet() {
            Ok(Some(p)) => out.push((p.ts, p.data.to_vec())),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
}

#[test]
fn mapped_read_and_streamed_files_give_the_same_packets_and_errors() {
    let dir = TempDir::new("map");
    let path = dir.join("cut.pcap");
    let name = path.to_str().unwrap();
    let full = small_pcap();
    let mut ng = Pcapng::new(false);
    ng.interface(1, 0, &[])
        .epb(0, 1, b"abcdef", 6)
        .epb(0, 2, b"ghi", 3);
    for bytes in [full, ng.bytes()] {
        for cut in (1..=bytes.len()).rev() {
            let part = &bytes[..cut];
            std::fs::write(&path, part).unwrap();
            let streamed = from_bytes(part.to_vec()).map(|mut r| drain(&mut r));
            for (map_files, page_ahead) in [(true, true), (true, false), (false, false)] {
                let limits = ReadLimits {
                    map_files,
                    page_ahead,
                    ..ReadLimits::default()
                };
                let opened = CaptureReader::open_with(name, limits).map(|mut r| {
                    assert_eq!(r.is_mapped(), map_files);
                    let got = drain(&mut r);
                    if got.1.is_none() {
                        assert_eq!(r.progress(), Some((cut as u64, cut as u64)), "cut {cut}");
                    }
                    got
                });
                match (&streamed, &opened) {
                    (Ok(a), Ok(b)) => {
                        let b = (&b.0, b.1.as_ref().map(|e| e.replacen(name, "in", 1)));
                        assert_eq!((&a.0, a.1.clone()), b, "cut {cut}");
                    }
                    (Err(a), Err(b)) => assert_eq!(
                        a.to_string(),
                        b.to_string().replacen(name, "in", 1),
                        "cut {cut}"
                    ),
                    (a, b) => panic!("cut {cut}: {:?} against {:?}", a.is_ok(), b.is_ok()),
                }
            }
        }
    }
}

/// A mapped file's pages are given back behind the reader, with or without the pager, and the
/// pager maps them in ahead of it: at most the lag behind and the read-ahead in front are ever
/// resident, however long the file; a one-thread run's lag (none) keeps less resident than the
/// default's.
#[cfg(target_os = "linux")]
#[test]
fn mapped_pages_are_paged_in_ahead_and_given_back_behind() {
    use super::map::{PAGE_AHEAD, PAGE_STEP, RELEASE_EVERY, RELEASE_LAG};
    let len = 6 * (PAGE_AHEAD + RELEASE_LAG);
    let (_dir, file) = long_file("pager", &vec![7u8; len]);
    let one_thread = crate::shard::release_lag(1);
    assert_eq!(one_thread, 0, "a lone reader reads nothing behind itself");
    let mut peaks = Vec::new();
    for (page_ahead, lag) in [
        (false, RELEASE_LAG),
        (true, RELEASE_LAG),
        (true, one_thread),
    ] {
        let map = Arc::new(MappedFile::new(
            map::map_file(&file, len as u64).unwrap(),
            lag,
        ));
        let start = map.as_ptr() as usize;
        let mut stream = ByteStream::mapped(Arc::clone(&map), page_ahead);
        if page_ahead {
            // Before a byte is read, the pager maps in what lies ahead.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while mapping_rss(start) < PAGE_AHEAD && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert!(
                mapping_rss(start) >= PAGE_AHEAD,
                "the pager mapped nothing in"
            );
        }
        let (mut most, mut read) = (0, 0u64);
        while stream.fill(1 << 16).unwrap() {
            let r = stream.consume(1 << 16);
            read += stream
                .slice(r.clone())
                .iter()
                .map(|&b| u64::from(b))
                .sum::<u64>();
            if r.start.is_multiple_of(1 << 20) {
                most = most.max(mapping_rss(start));
            }
        }
        assert_eq!(read, 7 * len as u64);
        // Behind: the lag and two release steps (the reader's own release, should the pager
        // fall behind); ahead: the pager's reach; and a step of the reader's reports each.
        let bound = lag + 2 * RELEASE_EVERY + PAGE_AHEAD + 2 * PAGE_STEP;
        assert!(
            most <= bound,
            "page_ahead {page_ahead}, lag {lag}: {most} bytes resident, more than {bound}"
        );
        assert!(
            most < len / 2,
            "page_ahead {page_ahead}, lag {lag}: nothing given back"
        );
        peaks.push(most);
    }
    assert!(
        peaks[2] + RELEASE_LAG / 2 <= peaks[1],
        "no lag kept as much resident ({}) as the default lag ({})",
        peaks[2],
        peaks[1]
    );
}

/// Bytes read in place a little behind the reader after their pages were given back (a frame
/// decoded ahead and analysed later; a worker's batch) fault the pages back in, with the pages
/// around them: the next release gives them back again, so what is resident stays bounded
/// however long the file (each release left up to 64 KiB a read behind it resident for good).
#[cfg(target_os = "linux")]
#[test]
fn pages_read_again_behind_the_reader_are_given_back_again() {
    use super::map::{PAGE_AHEAD, PAGE_STEP, RELEASE_EVERY};
    let len = 160 << 20;
    let (_dir, file) = long_file("refault", &vec![3u8; len]);
    let map = Arc::new(MappedFile::new(
        map::map_file(&file, len as u64).unwrap(),
        crate::shard::release_lag(1),
    ));
    let start = map.as_ptr() as usize;
    let mut stream = ByteStream::mapped(Arc::clone(&map), true);
    let (mut most, mut read) = (0, 0u64);
    while stream.fill(1 << 16).unwrap() {
        let r = stream.consume(1 << 16);
        read += u64::from(stream.slice(r.clone()).first().copied().unwrap_or(0));
        // Four frames read again, 4 to 196 KiB behind.
        for back in [4 << 10, 68 << 10, 132 << 10, 196 << 10] {
            if let Some(at) = r.start.checked_sub(back) {
                read += u64::from(map[at]);
            }
        }
        if r.start.is_multiple_of(1 << 20) {
            most = most.max(mapping_rss(start));
        }
    }
    assert!(read > 0);
    let bound = 2 * RELEASE_EVERY + PAGE_AHEAD + 2 * PAGE_STEP;
    assert!(
        most <= bound,
        "{most} bytes resident, more than {bound}: pages read again were kept"
    );
}

/// Paging steps, as an analysis worker takes them while it waits: they map in up to the
/// read-ahead and then wait for the reader, give back what falls the lag behind it before
/// mapping in more, and end once the file is mapped in.
#[cfg(target_os = "linux")]
#[test]
fn paging_steps_follow_the_reader() {
    use super::map::{Step, PAGE_AHEAD, PAGE_STEP, RELEASE_EVERY, RELEASE_LAG};
    let len = 2 * (PAGE_AHEAD + RELEASE_LAG) + 3 * RELEASE_EVERY;
    let (_dir, file) = long_file("steps", &vec![1u8; len]);
    let m = MappedFile::new(map::map_file(&file, len as u64).unwrap(), RELEASE_LAG);
    let start = m.as_ptr() as usize;
    let mut worked = 0;
    while m.page_step() == Step::Worked {
        worked += 1;
    }
    assert_eq!(
        worked,
        PAGE_AHEAD / PAGE_STEP,
        "mapped in more than the read-ahead"
    );
    assert_eq!(m.page_step(), Step::Idle);
    assert!(mapping_rss(start) >= PAGE_AHEAD);
    // The reader moves past the lag and a release step: the next step gives pages back.
    let at = RELEASE_LAG + RELEASE_EVERY;
    m.reader_at(at);
    let before = mapping_rss(start);
    assert_eq!(m.page_step(), Step::Worked);
    assert!(
        mapping_rss(start) + RELEASE_EVERY <= before,
        "nothing given back"
    );
    while m.page_step() == Step::Worked {}
    // The reader jumps far ahead and nobody steps: it gives back what is behind it itself.
    m.reader_at(len);
    assert!(
        mapping_rss(start) < PAGE_STEP,
        "the reader gave nothing back"
    );
    assert_eq!(m.page_step(), Step::Done);
}

/// A mapped file that shrinks under the map (documented: the reader meets it where it reads)
/// does not make the paging read past the new end ahead of the reader, which would raise SIGBUS
/// in a helper thread: steps map in what is left and skip the rest.
#[cfg(target_os = "linux")]
#[test]
fn paging_skips_what_a_shrunk_file_no_longer_has() {
    use super::map::{Step, PAGE_AHEAD};
    let len = 2 * PAGE_AHEAD;
    let (dir, file) = long_file("shrunk", &vec![3u8; len]);
    let m = super::testutil::mapped(&file, len);
    if !m.can_populate() {
        // Before Linux 5.14 pages are mapped in by reading them, which a shrunk file punishes
        // with SIGBUS wherever it happens, as the reader's own reads do (documented).
        eprintln!("no MADV_POPULATE_READ here: nothing to test");
        return;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("long.bin"))
        .unwrap()
        .set_len(4096)
        .unwrap();
    let mut steps = 0;
    while m.page_step() == Step::Worked {
        steps += 1;
        assert!(steps < 100, "paging never ends");
    }
    assert_eq!(m.first(), Some(&3));
}

/// Every packet (time, link type, bytes, wire length), then the error or `None`, and the
/// warnings, read from `r` by `next`.
type Read = (Vec<(i64, u32, Vec<u8>, u32)>, Option<String>, Vec<String>);

fn read_all(
    r: &mut CaptureReader,
    next: fn(&mut CaptureReader) -> Result<Option<RawPacket<'_>>, SourceError>,
) -> Read {
    let mut out = Vec::new();
    let end = loop {
        match next(r) {
            Ok(Some(p)) => out.push((p.ts, p.link_type, p.data.to_vec(), p.wire_len)),
            Ok(None) => break None,
            Err(e) => break Some(e.to_string()),
        }
    };
    (out, end, r.warnings())
}

/// The in-line reading of whole pcap records (`PcapReader::next_whole`) gives what the careful
/// path (`next_record`, every format's) gives: same packets, faults and warnings, in both byte
/// orders and resolutions, mapped and streamed, with records whose original length is below
/// the captured one (a warning), a captured length past `MAX_CAPLEN` (a fault), and every cut.
#[test]
fn whole_pcap_records_read_in_line_as_the_careful_path_reads_them() {
    let dir = TempDir::new("whole");
    let path = dir.join("f.pcap");
    let name = path.to_str().unwrap();
    let rec = |sec: u32, frac: u32, len: usize, orig_len: u32| PcapRec {
        sec,
        frac,
        data: (0..len).map(|i| (i as u8) ^ (sec as u8)).collect(),
        orig_len,
    };
    let mut packets = 0;
    for (big_endian, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
        let recs = [
            rec(1, 999_999, 60, 60),
            rec(2, 5, 10, 4), // captured more than the wire carried: a warning
            rec(u32::MAX, 999_999_999, 0, 0),
            rec(3, 0, 1514, 9000),
            rec(4, 7, 33, 33),
        ];
        let mut bytes = pcap_file(big_endian, nanos, 1, &recs);
        // A last record whose captured length is past MAX_CAPLEN: a fault, from either path.
        let mut corrupt = bytes.clone();
        let caplen = MAX_CAPLEN + 1;
        let w = |x: u32| {
            if big_endian {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        corrupt.extend_from_slice(&[w(5), w(0), w(caplen), w(caplen)].concat());
        corrupt.extend_from_slice(&[0; 64]);
        // Every whole, unremarkable record goes the in-line way: all but the one whose original
        // length is below its captured length.
        std::fs::write(&path, &bytes).unwrap();
        for map_files in [true, false] {
            let limits = ReadLimits {
                map_files,
                ..ReadLimits::default()
            };
            let mut r = CaptureReader::open_with(name, limits).unwrap();
            assert_eq!(read_in_line(&mut r), (4, 5), "mapped {map_files}");
        }
        for file in [std::mem::take(&mut bytes), corrupt] {
            for cut in (24..=file.len()).rev().step_by(7) {
                let part = &file[..cut];
                std::fs::write(&path, part).unwrap();
                for map_files in [true, false] {
                    let limits = ReadLimits {
                        map_files,
                        ..ReadLimits::default()
                    };
                    let mut a = CaptureReader::open_with(name, limits).unwrap();
                    let mut b = CaptureReader::open_with(name, limits).unwrap();
                    let inline = read_all(&mut a, CaptureReader::next_packet);
                    let careful = read_all(&mut b, CaptureReader::next_record);
                    assert_eq!(inline, careful, "cut {cut}, mapped {map_files}");
                    packets += inline.0.len();
                }
            }
        }
    }
    assert!(packets > 1000, "only {packets} packets read");
}

/// Reads `r` as `next_packet` does, counting the records the in-line path read: (in line, all).
fn read_in_line(r: &mut CaptureReader) -> (usize, usize) {
    let (mut inline, mut all) = (0, 0);
    loop {
        if let Reader::Pcap(p) = r.reader {
            if p.next_whole(&mut r.stream).is_some() {
                (inline, all) = (inline + 1, all + 1);
                continue;
            }
        }
        match r.next_record() {
            Ok(Some(_)) => all += 1,
            _ => return (inline, all),
        }
    }
}
