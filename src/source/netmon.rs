//! Microsoft Network Monitor 1.x / 2.x capture files (`.cap`, magics `RTSS` and `GMBU`), the
//! native format of the Windows 2000 era tools Exchange administrators used.
//!
//! Frames are found through a frame table at the end of the file (frames need not be contiguous
//! nor in order), so the file is read through a [`Store`]: with seeks for a regular file, from a
//! bounded window in memory otherwise. Offsets are 32-bit, so a file holds at most 4 GiB. One
//! corrupt table entry or frame header costs that frame (counted, the first described with its
//! real byte offset), not the file. Version 2.1 and later give each frame its own media type;
//! frames that are not network packets (NetMon's event, filter and adapter-information records)
//! and media exflow cannot name a link type for are skipped and counted.

use std::ops::Range;

use super::store::{Seekable, Store, StoreError};
use super::stream::ByteStream;
use super::{Fault, PacketMeta, Warnings, MAX_CAPLEN};
use crate::source::SourceErrorKind;

/// The 1.x and 2.x magics.
pub(crate) const MAGICS: [[u8; 4]; 2] = [*b"RTSS", *b"GMBU"];

/// Fixed part of the file header (magic included).
const HEADER_LEN: usize = 64;

/// Nanoseconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
const FILETIME_UNIX_OFFSET_100NS: i128 = 116_444_736_000_000_000;

/// Frame-table entries read at once.
const TABLE_CHUNK: usize = 16_384;

/// Largest frame header plus trailer.
const MAX_FRAME_OVERHEAD: usize = 16 + 15;

/// `LINKTYPE_*` of a NetMon (NDIS) media type, where pcap has one.
fn link_type(network: u16) -> Option<u32> {
    match network {
        0 | 1 => Some(1),                                     // Ethernet
        2 => Some(6),                                         // Token Ring
        3 => Some(10),                                        // FDDI
        7..=9 => Some(101), // tunnel, wireless WAN, raw IP: raw IP frames
        0xE000..=0xE07F => Some(u32::from(network & 0x0FFF)), // converted pcap
        _ => None,
    }
}

/// The `Fault` of a [`Store`] that could not be set up, for format `format`.
pub(crate) fn store_fault(e: StoreError, stream: &ByteStream, format: &'static str) -> Fault {
    match e {
        StoreError::Io(e) => Fault::io(e, stream),
        StoreError::TooLarge(limit) => {
            Fault::whole_file(SourceErrorKind::WindowExceeded { format, limit })
        }
    }
}

/// State for reading frames through the frame table.
pub(crate) struct NetmonReader {
    store: Store,
    major: u8,
    minor: u8,
    /// The file's link type; `None` when each frame carries its own (2.1 and later).
    file_link_type: Option<u32>,
    /// Capture start (the header's SYSTEMTIME, taken as UTC), in nanoseconds.
    start_ns: i128,
    /// Store position of the frame table and its number of entries.
    table: u64,
    frames: usize,
    next_frame: usize,
    /// A chunk of the frame table, and the index of its first entry.
    table_buf: Vec<u8>,
    table_first: usize,
    /// The current frame: header, data, trailer.
    frame: Vec<u8>,
    /// Stream offset of the file's first byte, for error offsets.
    base: u64,
}

impl NetmonReader {
    /// Reads the header and sets up access to the frames; the caller has checked the magic.
    pub(crate) fn start(
        stream: &mut ByteStream,
        seekable: Option<Seekable>,
        window: usize,
    ) -> Result<Self, Fault> {
        let base = stream.offset();
        let mut store =
            Store::open(stream, seekable, window).map_err(|e| store_fault(e, stream, "NetMon"))?;
        let mut file = [0u8; HEADER_LEN];
        if !store
            .read_at(0, &mut file)
            .map_err(|e| Fault::io(e, stream))?
        {
            return Err(Fault::new(
                base,
                SourceErrorKind::Truncated {
                    what: "NetMon file header",
                },
            ));
        }
        let (minor, major) = (byte(&file, 4), byte(&file, 5));
        if major != 1 && major != 2 {
            return Err(Fault::new(
                base,
                malformed(&format!("unsupported NetMon version {major}.{minor}")),
            ));
        }
        let network = u16_at(&file, 6);
        let per_frame = major == 2 && minor >= 1;
        let file_link_type = link_type(network);
        if !per_frame && file_link_type.is_none() {
            let what = format!("NetMon media type {network} is not supported");
            return Err(Fault::new(base, malformed(&what)));
        }
        let table = u64::from(u32_at(&file, 24));
        let table_len = u64::from(u32_at(&file, 28));
        if !table_len.is_multiple_of(4) {
            return Err(Fault::new(
                base + 28,
                SourceErrorKind::CorruptLength {
                    what: "NetMon frame table",
                    len: table_len,
                },
            ));
        }
        if table + table_len > store.len() {
            // The fault is the header field that points there, not the place pointed at.
            let what = format!(
                "NetMon frame table (at {table}, {table_len} bytes) lies past the end of the \
                 file ({} bytes); its pointer is",
                store.len()
            );
            return Err(Fault::new(base + 24, malformed(&what)));
        }
        Ok(NetmonReader {
            store,
            major,
            minor,
            file_link_type: if per_frame { None } else { file_link_type },
            start_ns: start_time(&file),
            table,
            frames: usize::try_from(table_len / 4).unwrap_or(usize::MAX),
            next_frame: 0,
            table_buf: Vec::new(),
            table_first: 0,
            frame: Vec::new(),
            base,
        })
    }

    /// The next network frame in frame-table order; `Ok(None)` after the last. A corrupt frame
    /// is counted in `warnings` and skipped; only a failing read ends the file.
    pub(crate) fn next(
        &mut self,
        stream: &mut ByteStream,
        warnings: &mut Warnings,
    ) -> Result<Option<PacketMeta>, Fault> {
        while self.next_frame < self.frames {
            let entry = self.next_frame;
            self.next_frame += 1;
            let at = self.entry(entry).map_err(|e| Fault::io(e, stream))?;
            match self.frame(at, entry) {
                Ok(Some(meta)) => return Ok(Some(meta)),
                Ok(None) => warnings.frames_skipped += 1,
                Err(Frame::Io(e)) => return Err(Fault::io(e, stream)),
                Err(Frame::Corrupt(fault)) => warnings.corrupt_frame(fault, "NetMon"),
            }
        }
        Ok(None)
    }

    /// The bytes of the frame last returned by [`next`](Self::next).
    pub(crate) fn frame_bytes(&self, range: Range<usize>) -> &[u8] {
        self.frame.get(range).unwrap_or(&[])
    }

    /// The file offset in frame-table entry `i`, reading the table a chunk at a time.
    fn entry(&mut self, i: usize) -> std::io::Result<u64> {
        let cached = self.table_buf.len() / 4;
        if i < self.table_first || i >= self.table_first + cached {
            let n = TABLE_CHUNK.min(self.frames - i);
            self.table_buf.resize(4 * n, 0);
            // The table was checked to lie inside the store.
            let at = self.table + 4 * i as u64;
            if !self.store.read_at(at, &mut self.table_buf)? {
                self.table_buf.clear();
            }
            self.table_first = i;
        }
        Ok(u64::from(u32_at(
            &self.table_buf,
            4 * (i - self.table_first),
        )))
    }

    /// The frame at store offset `at` (the pointer of table entry `entry`); `None` if it is not
    /// a network packet exflow can name.
    fn frame(&mut self, at: u64, entry: usize) -> Result<Option<PacketMeta>, Frame> {
        let fault_at = self.base + at;
        let truncated = || {
            Frame::Corrupt(Fault::new(
                fault_at,
                SourceErrorKind::Truncated {
                    what: "NetMon frame",
                },
            ))
        };
        let header_len = if self.major == 1 { 8 } else { 16 };
        if at + header_len as u64 > self.store.len() {
            // A bad pointer: the fault is the table entry, not the place it points at.
            let entry_at = self.base + self.table + 4 * entry as u64;
            let what = format!("NetMon frame table entry points past the end of the file ({at})");
            return Err(Frame::Corrupt(Fault::new(entry_at, malformed(&what))));
        }
        self.frame.resize(header_len, 0);
        if !self.store.read_at(at, &mut self.frame).map_err(Frame::Io)? {
            return Err(truncated());
        }
        let h = &self.frame;
        let (caplen, orig_len, delta_ns) = if self.major == 1 {
            let delta_ms = i128::from(u32_at(h, 0));
            (
                u32::from(u16_at(h, 6)),
                u32::from(u16_at(h, 4)),
                delta_ms * 1_000_000,
            )
        } else {
            // Microseconds, which Microsoft documents as "multiply by 10 and read as signed":
            // that is how frames from before the nominal start come out negative.
            let raw = u64::from(u32_at(h, 0)) | (u64::from(u32_at(h, 4)) << 32);
            let delta_100ns = raw.wrapping_mul(10) as i64;
            (u32_at(h, 12), u32_at(h, 8), i128::from(delta_100ns) * 100)
        };
        if caplen > MAX_CAPLEN {
            return Err(Frame::Corrupt(Fault::new(
                fault_at,
                SourceErrorKind::CorruptLength {
                    what: "captured",
                    len: caplen.into(),
                },
            )));
        }
        let trailer_len = match (self.major, self.minor) {
            (2, 1) => 2,
            (2, 2) => 6,
            (2, 3..) => 15,
            _ => 0,
        };
        let data = header_len;
        let trailer = data + caplen as usize;
        debug_assert!(trailer_len + header_len <= MAX_FRAME_OVERHEAD);
        self.frame.resize(trailer + trailer_len, 0);
        let rest = self.frame.get_mut(data..).unwrap_or_default();
        if !self
            .store
            .read_at(at + header_len as u64, rest)
            .map_err(Frame::Io)?
        {
            return Err(truncated());
        }
        let f = &self.frame;
        let (link, ts) = match self.file_link_type {
            Some(link) => (link, self.start_ns + delta_ns),
            None => {
                let Some(link) = link_type(u16_at(f, trailer)) else {
                    return Ok(None);
                };
                let ts = if self.minor >= 3 {
                    let filetime = u64::from(u32_at(f, trailer + 6))
                        | (u64::from(u32_at(f, trailer + 10)) << 32);
                    (i128::from(filetime) - FILETIME_UNIX_OFFSET_100NS) * 100
                } else {
                    self.start_ns + delta_ns
                };
                (link, ts)
            }
        };
        Ok(Some(PacketMeta {
            ts: ts.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
            link_type: link,
            data: data..trailer,
            wire_len: orig_len.max(caplen),
        }))
    }
}

/// Why a frame was not read.
enum Frame {
    /// The file could not be read: the end of it.
    Io(std::io::Error),
    /// The frame is corrupt: the end of that frame only.
    Corrupt(Fault),
}

/// The header's capture start, a SYSTEMTIME without time zone, read as UTC.
fn start_time(file: &[u8]) -> i128 {
    let field = |i: usize| i64::from(u16_at(file, 8 + 2 * i));
    let (year, month, day) = (field(0), field(1).clamp(1, 12), field(3));
    let secs =
        days_from_civil(year, month, day) * 86_400 + field(4) * 3_600 + field(5) * 60 + field(6);
    i128::from(secs) * 1_000_000_000 + i128::from(field(7)) * 1_000_000
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn malformed(what: &str) -> SourceErrorKind {
    SourceErrorKind::Malformed {
        what: what.to_string(),
    }
}

fn byte(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

use crate::bytes::{le16_or_0 as u16_at, le32_or_0 as u32_at};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::testutil::Packets;
    use crate::source::{CaptureFormat, CaptureReader};

    /// A NetMon file: header, frames at the offsets given by `layout` order, frame table last.
    fn netmon(minor: u8, major: u8, network: u16, frames: &[(u64, Vec<u8>, u16)]) -> Vec<u8> {
        let mut out = vec![0u8; 128];
        out[..4].copy_from_slice(if major == 1 { b"RTSS" } else { b"GMBU" });
        out[4] = minor;
        out[5] = major;
        out[6..8].copy_from_slice(&network.to_le_bytes());
        for (i, v) in [2005u16, 7, 0, 17, 11, 24, 47, 196].iter().enumerate() {
            out[8 + 2 * i..10 + 2 * i].copy_from_slice(&v.to_le_bytes());
        }
        let mut table = Vec::new();
        for (delta, data, frame_network) in frames {
            table.extend_from_slice(&(out.len() as u32).to_le_bytes());
            if major == 1 {
                out.extend_from_slice(&(*delta as u32).to_le_bytes());
                out.extend_from_slice(&(data.len() as u16 + 4).to_le_bytes());
                out.extend_from_slice(&(data.len() as u16).to_le_bytes());
            } else {
                out.extend_from_slice(&delta.to_le_bytes());
                out.extend_from_slice(&(data.len() as u32 + 4).to_le_bytes());
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(data);
            if major == 2 && minor >= 1 {
                out.extend_from_slice(&frame_network.to_le_bytes());
            }
            if major == 2 && minor >= 2 {
                out.extend_from_slice(&[0; 4]);
            }
            if major == 2 && minor >= 3 {
                // 2005-07-17 11:24:48 UTC as a FILETIME.
                let ft = (1_121_599_488u64 + 11_644_473_600) * 10_000_000 + 5;
                out.extend_from_slice(&ft.to_le_bytes());
                out.push(0);
            }
            out.extend_from_slice(&[0xee; 3]); // a hole between frames
        }
        let table_at = out.len() as u32;
        out[24..28].copy_from_slice(&table_at.to_le_bytes());
        out[28..32].copy_from_slice(&(table.len() as u32).to_le_bytes());
        out.extend(table);
        out
    }

    fn read_all(bytes: Vec<u8>) -> (Packets, Option<String>, Vec<String>) {
        let mut r = match CaptureReader::from_reader("n.cap", Box::new(std::io::Cursor::new(bytes)))
        {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Some(e.to_string()), Vec::new()),
        };
        assert_eq!(r.format(), CaptureFormat::NetMon);
        let mut out = Vec::new();
        loop {
            match r.next_packet() {
                Ok(Some(p)) => out.push((p.ts, p.link_type, p.data.to_vec(), p.wire_len)),
                Ok(None) => return (out, None, r.warnings()),
                Err(e) => return (out, Some(e.to_string()), r.warnings()),
            }
        }
    }

    /// 2005-07-17 11:24:47.196 UTC.
    const START: i64 = 1_121_599_487_196_000_000;

    #[test]
    fn version_2_0_frames_through_the_table() {
        let (pkts, err, _) = read_all(netmon(
            0,
            2,
            1,
            &[(0, b"abc".to_vec(), 0), (1_500, b"de".to_vec(), 0)],
        ));
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts[0], (START, 1, b"abc".to_vec(), 7));
        assert_eq!(pkts[1], (START + 1_500_000, 1, b"de".to_vec(), 6));
    }

    #[test]
    fn version_1_milliseconds() {
        let (pkts, err, _) = read_all(netmon(0, 1, 1, &[(2, b"x".to_vec(), 0)]));
        assert!(err.is_none());
        assert_eq!(pkts, vec![(START + 2_000_000, 1, b"x".to_vec(), 5)]);
    }

    #[test]
    fn per_frame_media_and_skipped_frames() {
        let frames = [
            (0, b"eth".to_vec(), 1),
            (1, b"raw".to_vec(), 0xE065),
            (2, b"evt".to_vec(), 0xFFE0),
        ];
        let (pkts, err, warnings) = read_all(netmon(1, 2, 1, &frames));
        assert!(err.is_none());
        let links: Vec<u32> = pkts.iter().map(|p| p.1).collect();
        assert_eq!(links, [1, 101]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }

    #[test]
    fn version_2_3_utc_timestamps() {
        let (pkts, err, _) = read_all(netmon(3, 2, 1, &[(0, b"abc".to_vec(), 1)]));
        assert!(err.is_none());
        assert_eq!(pkts[0].0, 1_121_599_488_000_000_500);
    }

    #[test]
    fn truncated_and_corrupt() {
        let file = netmon(0, 2, 1, &[(0, b"abcdef".to_vec(), 0)]);
        // A frame table pointing past the end: the fault is the header's pointer at byte 24.
        let mut bad = file.clone();
        bad[24..28].copy_from_slice(&100_000u32.to_le_bytes());
        let err = read_all(bad).1.unwrap();
        assert!(
            err.starts_with("n.cap: NetMon frame table (at 100000, 4 bytes)"),
            "{err}"
        );
        assert!(err.ends_with("at byte 24"), "{err}");
        // A frame whose data runs past the end costs that frame.
        let mut bad = file.clone();
        bad[128 + 12..128 + 16].copy_from_slice(&5_000u32.to_le_bytes());
        let (pkts, err, warnings) = read_all(bad);
        assert!(pkts.is_empty() && err.is_none(), "{err:?}");
        assert_eq!(
            warnings,
            ["1 corrupt frame(s) skipped (the first: NetMon: truncated NetMon frame at byte 128)"]
        );
        let mut bad = file.clone();
        bad[128 + 12..128 + 16].copy_from_slice(&500_000u32.to_le_bytes());
        let warnings = read_all(bad).2;
        assert!(
            warnings[0].contains("corrupt captured length 500000 at byte 128"),
            "{warnings:?}"
        );
        let mut bad = file.clone();
        bad[28] = 3;
        assert!(read_all(bad)
            .1
            .unwrap()
            .contains("corrupt NetMon frame table length 3"));
        let mut bad = file;
        bad[6] = 4;
        assert_eq!(
            read_all(bad).1.unwrap(),
            "n.cap: NetMon media type 4 is not supported at byte 0"
        );
        assert_eq!(
            read_all(b"GMBU\0\x02".to_vec()).1.unwrap(),
            "n.cap: truncated NetMon file header at byte 0"
        );
    }

    #[test]
    fn a_bad_table_entry_costs_one_frame_and_names_the_entry() {
        let frames = [
            (0, b"one".to_vec(), 0),
            (1, b"two".to_vec(), 0),
            (2, b"three".to_vec(), 0),
        ];
        let mut file = netmon(0, 2, 1, &frames);
        let table = u32::from_le_bytes(file[24..28].try_into().unwrap()) as usize;
        // The second entry points far past the end.
        file[table + 4..table + 8].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
        let (pkts, err, warnings) = read_all(file);
        assert!(err.is_none(), "{err:?}");
        let data: Vec<&[u8]> = pkts.iter().map(|p| &p.2[..]).collect();
        assert_eq!(data, [&b"one"[..], b"three"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let at = format!("at byte {}", table + 4);
        assert!(warnings[0].contains(&at), "{warnings:?}");
        assert!(!warnings[0].contains("byte 4294967040"), "{warnings:?}");
    }

    #[test]
    fn a_regular_file_is_read_with_seeks_like_a_stream() {
        let frames: Vec<(u64, Vec<u8>, u16)> = (0..40_000u32)
            .map(|i| (u64::from(i), i.to_le_bytes().to_vec(), 1))
            .collect();
        let bytes = netmon(2, 2, 1, &frames);
        // Removed when dropped, also when an assertion fails.
        let dir = crate::source::testutil::TempDir::new("netmon");
        let path = dir.join("seeks.cap");
        std::fs::write(&path, &bytes).unwrap();
        let mut r = CaptureReader::open(path.to_str().unwrap()).unwrap();
        let mut from_file = Vec::new();
        while let Some(p) = r.next_packet().unwrap() {
            from_file.push((p.ts, p.link_type, p.data.to_vec(), p.wire_len));
        }
        assert_eq!(r.progress().map(|p| p.0), Some(bytes.len() as u64));
        let (from_stream, err, _) = read_all(bytes);
        assert!(err.is_none());
        assert_eq!(from_file.len(), 40_000);
        assert_eq!(from_file, from_stream);
    }

    /// A mapped NetMon file, read through its frame table, does not stay resident: its pages are
    /// given back as it is read, as a pcap file's are.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_mapped_file_is_given_back_as_it_is_read() {
        use crate::source::testutil::{long_file, mapping_rss, PAGE_AHEAD};
        let frames: Vec<(u64, Vec<u8>, u16)> = (0..48_000u32)
            .map(|i| (u64::from(i), vec![i as u8; 1400], 1))
            .collect();
        let bytes = netmon(2, 2, 1, &frames);
        let (dir, _) = long_file("netmon-release", &bytes);
        let path = dir.join("long.bin");
        let mut r = CaptureReader::open(path.to_str().unwrap()).unwrap();
        let start = r.map().expect("a regular file is mapped").as_ptr() as usize;
        let (mut n, mut most) = (0, 0);
        while let Some(p) = r.next_packet().unwrap() {
            assert_eq!(p.data, vec![n as u8; 1400]);
            n += 1;
            if n % 1000 == 0 {
                most = most.max(mapping_rss(start));
            }
        }
        assert_eq!(n, frames.len());
        drop(r);
        drop(dir);
        let bound = 2 * crate::source::map::RELEASE_EVERY + PAGE_AHEAD;
        assert!(
            most <= bound,
            "{most} of {} bytes resident, more than {bound}",
            bytes.len()
        );
    }

    #[test]
    fn a_compressed_bomb_stops_at_the_window() {
        use std::io::Write;
        // A header claiming a frame table 4 GiB - 4 bytes into the file, then zeros.
        let mut head = netmon(0, 2, 1, &[]);
        head[24..28].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&head).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..8 {
            gz.write_all(&zeros).unwrap();
        }
        let gz = gz.finish().unwrap();
        let limits = crate::source::ReadLimits {
            window: 4 << 20,
            ..Default::default()
        };
        let err = CaptureReader::from_reader_with(
            "bomb.cap.gz",
            Box::new(std::io::Cursor::new(gz)),
            limits,
        )
        .err()
        .expect("the window stops it");
        assert!(
            err.to_string().contains("larger than the 4 MiB window"),
            "{err}"
        );
    }
    #[test]
    fn civil_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }
}
