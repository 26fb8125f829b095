//! NetXRay and Windows Sniffer capture files (`.cap`, magics `XCP\0` and the older `VL\0\0`),
//! written by the Sniffer tools of the Windows 2000 era.
//!
//! Records run from the header's start offset to its end offset; a capture taken into a ring
//! buffer wraps around (start after end: read to the end of the file, then from byte 128 up to
//! the end offset), so the file is read through a [`Store`]: with seeks for a regular file, from
//! a bounded window in memory otherwise. Timestamps are ticks whose
//! length depends on the version, network and capture hardware, as Wireshark documents them.

use std::ops::Range;

use super::netmon::store_fault;
use super::store::{Seekable, Store};
use super::stream::ByteStream;
use super::{Fault, PacketMeta, Warnings, MAX_CAPLEN};
use crate::source::SourceErrorKind;

/// The 2.x / Windows Sniffer magic and the old NetXRay magic.
pub(crate) const MAGICS: [[u8; 4]; 2] = [*b"XCP\0", *b"VL\0\0"];

/// The file header is padded to 128 bytes; a wrapped capture continues there.
const HEADER_LEN: usize = 128;

/// Ticks per second by `timeunit`, for most captures, for gigabit pods, for other pods, for
/// "other pod 2" and for the S6040 gigabit blade (0 = never seen, unsupported).
const TICKS: [f64; 3] = [1e6, 1_193_000.0, 1_193_182.0];
const TICKS_GIGPOD: [f64; 3] = [1e9, 0.0, 31_250_000.0];
const TICKS_OTHERPOD: [f64; 3] = [1e6, 0.0, 1_250_000.0];
const TICKS_OTHERPOD2: [f64; 3] = [1e6, 0.0, 0.0];
const TICKS_GIGPOD2: [f64; 3] = [1e9, 0.0, 20_000_000.0];

/// How the link layer of a capture is framed, as far as record padding is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// Ethernet or 802.11: four trailing bytes are an FCS or junk, per the header.
    EthernetLike,
    /// Frame Relay, HDLC-like WAN: four trailing bytes are dropped when flagged.
    Wan,
    /// Nothing to strip.
    Plain,
}

/// State for reading the records of a capture.
pub(crate) struct NetxrayReader {
    store: Store,
    /// The current record: header and data.
    record: Vec<u8>,
    /// 0 for the old `VL` format, else 1 or 2.
    major: u8,
    link_type: u32,
    framing: Framing,
    /// Trailing flagged bytes are a real FCS, kept in the frame.
    fcs_valid: bool,
    /// Capture start in Unix seconds, and the tick count it corresponds to, in seconds.
    start_time: i64,
    start_ticks_secs: f64,
    ticks_per_sec: f64,
    start_offset: u64,
    end_offset: u64,
    next: u64,
    wrapped: bool,
    /// Stream offset of the file's first byte, for error offsets.
    base: u64,
}

impl NetxrayReader {
    /// Reads the header and sets up access to the records; the caller has checked the magic.
    pub(crate) fn start(
        stream: &mut ByteStream,
        seekable: Option<Seekable>,
        window: usize,
    ) -> Result<Self, Fault> {
        let base = stream.offset();
        let unsupported = |what: String| Fault::new(base, SourceErrorKind::Malformed { what });
        let mut store =
            Store::open(stream, seekable, window).map_err(|e| store_fault(e, stream, "NetXRay"))?;
        let mut header = [0u8; HEADER_LEN];
        let complete = store
            .read_at(0, &mut header)
            .map_err(|e| Fault::io(e, stream))?;
        let file = &header[..];
        if !complete {
            return Err(Fault::new(
                base,
                SourceErrorKind::Truncated {
                    what: "NetXRay file header",
                },
            ));
        }
        let version = file.get(4..12).unwrap_or_default();
        let (major, minor) = if file.starts_with(&MAGICS[1]) {
            (0, 0)
        } else {
            match version {
                b"001.000\0" => (1, 0),
                b"001.100\0" => (1, 1),
                b"002.000\0" => (2, 0),
                b"002.001\0" => (2, 1),
                b"002.002\0" => (2, 2),
                b"002.003\0" => (2, 3),
                _ => {
                    let shown = String::from_utf8_lossy(
                        version.split(|&b| b == 0).next().unwrap_or_default(),
                    );
                    return Err(unsupported(format!(
                        "unsupported NetXRay/Sniffer version \"{shown}\""
                    )));
                }
            }
        };
        let network = match byte(file, 45) {
            0 => u16::from(byte(file, 44)) + 1,
            2 => byte(file, 44).into(),
            other => {
                return Err(unsupported(format!(
                    "unknown NetXRay network qualifier {other}"
                )))
            }
        };
        let captype = byte(file, 84);
        let (link_type, framing) = media(network, major, captype).ok_or_else(|| {
            unsupported(format!(
                "NetXRay/Sniffer network type {network} (capture type {captype}) is not supported"
            ))
        })?;
        let timeunit = usize::from(byte(file, 48));
        let realtick = u32_at(file, 76);
        let mut start_ticks =
            f64::from(u32_at(file, 52)) + f64::from(u32_at(file, 56)) * 4_294_967_296.0;
        let ticks_per_sec = match (major, minor) {
            (0, _) | (1, 0) => 1e3,
            (1, _) => 1e6,
            _ => {
                let pod = network == 1 && captype != 0;
                if pod && (minor == 2 || minor == 3) {
                    // Pod captures of 002.002 and 002.003 count from zero.
                    start_ticks = 0.0;
                }
                let table = match (network, captype) {
                    (1, 0) if timeunit == 2 => Some(f64::from(realtick)),
                    (1, 0) => TICKS.get(timeunit).copied(),
                    (1, 2) => TICKS_GIGPOD.get(timeunit).copied(),
                    (1, 3) => TICKS_OTHERPOD.get(timeunit).copied(),
                    (1, 5) => TICKS_OTHERPOD2.get(timeunit).copied(),
                    (1, 6) => TICKS_GIGPOD2.get(timeunit).copied(),
                    (1, _) => None,
                    _ => TICKS.get(timeunit).copied(),
                };
                match table {
                    Some(t) if t > 0.0 => t,
                    _ => {
                        let what = format!(
                            "unknown NetXRay time unit {timeunit} for capture type {captype}"
                        );
                        return Err(unsupported(what));
                    }
                }
            }
        };
        let fcs_valid = major == 2
            && framing == Framing::EthernetLike
            && byte(file, 77) == 0x34
            && byte(file, 78) == 0x12;
        let start_offset = u64::from(u32_at(file, 24));
        Ok(NetxrayReader {
            store,
            record: Vec::new(),
            major,
            link_type,
            framing,
            fcs_valid,
            start_time: u32_at(file, 12).into(),
            start_ticks_secs: start_ticks / ticks_per_sec,
            ticks_per_sec,
            start_offset,
            end_offset: u64::from(u32_at(file, 28)),
            next: start_offset,
            wrapped: false,
            base,
        })
    }

    /// The next record; `Ok(None)` at the end offset.
    pub(crate) fn next(
        &mut self,
        stream: &mut ByteStream,
        _warnings: &mut Warnings,
    ) -> Result<Option<PacketMeta>, Fault> {
        let at = self.next;
        let fault_at = self.base + at;
        let truncated = Fault::new(
            fault_at,
            SourceErrorKind::Truncated {
                what: "NetXRay record",
            },
        );
        if at == self.end_offset {
            return Ok(None);
        }
        if at == self.store.len() {
            // The end of the file before the end offset: a ring-buffer capture wraps once.
            if self.start_offset < self.end_offset || self.wrapped {
                return if self.wrapped {
                    Ok(None)
                } else {
                    Err(truncated)
                };
            }
            self.wrapped = true;
            self.next = HEADER_LEN as u64;
            return self.next(stream, _warnings);
        }
        let header_len = match self.major {
            0 => 16,
            1 => 28,
            _ => 40,
        };
        self.record.resize(header_len, 0);
        let read = self.store.read_at(at, &mut self.record);
        if !read.map_err(|e| Fault::io(e, stream))? {
            return Err(truncated);
        }
        let file = &self.record;
        let at = 0;
        let ticks = f64::from(u32_at(file, at)) + f64::from(u32_at(file, at + 4)) * 4_294_967_296.0;
        let (incl_len, orig_len) = if self.major == 0 {
            let len = u16_at(file, at + 8);
            (len, len)
        } else {
            (u16_at(file, at + 10), u16_at(file, at + 8))
        };
        let flagged = self.major == 2 && byte(file, at + 14) == 0xff && byte(file, at + 15) == 0xff;
        let padding = match self.framing {
            Framing::EthernetLike if flagged && !self.fcs_valid => 4,
            Framing::Wan if flagged => 4,
            _ => 0,
        };
        let data = at + header_len;
        let end = data + usize::from(incl_len);
        if u32::from(incl_len) > MAX_CAPLEN || incl_len < padding {
            return Err(Fault::new(
                fault_at,
                SourceErrorKind::CorruptLength {
                    what: "captured",
                    len: incl_len.into(),
                },
            ));
        }
        self.record.resize(end, 0);
        let data_at = self.next + header_len as u64;
        let read = self
            .store
            .read_at(data_at, self.record.get_mut(data..).unwrap_or_default());
        if !read.map_err(|e| Fault::io(e, stream))? {
            return Err(truncated);
        }
        self.next = data_at + u64::from(incl_len);
        let caplen = u32::from(incl_len - padding);
        Ok(Some(PacketMeta {
            ts: self.nanos(ticks),
            link_type: self.link_type,
            data: data..data + caplen as usize,
            wire_len: u32::from(orig_len.saturating_sub(padding)).max(caplen),
        }))
    }

    /// The bytes of the record last returned by [`next`](Self::next).
    pub(crate) fn frame_bytes(&self, range: Range<usize>) -> &[u8] {
        self.record.get(range).unwrap_or(&[])
    }

    /// A record's tick count as nanoseconds since the epoch (as Wireshark computes it).
    fn nanos(&self, ticks: f64) -> i64 {
        let t = ticks / self.ticks_per_sec - self.start_ticks_secs;
        let whole = t.trunc();
        let secs = self.start_time.saturating_add(whole as i64);
        secs.saturating_mul(1_000_000_000)
            .saturating_add(((t - whole) * 1e9) as i64)
    }
}

/// The `LINKTYPE_*` and framing of a NetXRay network type (NDIS numbering) and capture type.
fn media(network: u16, major: u8, captype: u8) -> Option<(u32, Framing)> {
    match (network, major, captype) {
        (1, ..) => Some((1, Framing::EthernetLike)),
        (2, ..) => Some((6, Framing::Plain)),
        (3, ..) => Some((10, Framing::Plain)),
        // WAN: before version 2, frames arrive shaped like Ethernet (through NDISWAN).
        (4, 0 | 1, _) => Some((1, Framing::Plain)),
        (4, _, 3) => Some((9, Framing::Plain)),    // PPP
        (4, _, 4) => Some((107, Framing::Wan)),    // Frame Relay
        (4, _, 19) => Some((104, Framing::Plain)), // Cisco HDLC
        (10, ..) => Some((105, Framing::EthernetLike)),
        _ => None,
    }
}

fn byte(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

use crate::bytes::{le16_or_0 as u16_at, le32_or_0 as u32_at};

#[cfg(test)]
mod tests {
    use crate::source::testutil::Packets;
    use crate::source::{CaptureFormat, CaptureReader};

    /// A version `version` file with Ethernet records (ticks, data, junk flag).
    fn netxray(
        version: &[u8; 8],
        header: &[(usize, u8)],
        records: &[(u64, Vec<u8>, bool)],
    ) -> Vec<u8> {
        let mut out = vec![0u8; 128];
        out[..4].copy_from_slice(b"XCP\0");
        out[4..12].copy_from_slice(version);
        out[12..16].copy_from_slice(&1_265_194_715u32.to_le_bytes());
        out[24..28].copy_from_slice(&128u32.to_le_bytes());
        for &(i, v) in header {
            out[i] = v;
        }
        let header_len = if version.starts_with(b"002") { 40 } else { 28 };
        for (ticks, data, junk) in records {
            let mut h = vec![0u8; header_len];
            h[..8].copy_from_slice(&ticks.to_le_bytes());
            let len = data.len() as u16 + if *junk { 4 } else { 0 };
            h[8..10].copy_from_slice(&len.to_le_bytes());
            h[10..12].copy_from_slice(&len.to_le_bytes());
            if *junk {
                h[14] = 0xff;
                h[15] = 0xff;
            }
            out.extend(h);
            out.extend_from_slice(data);
            if *junk {
                out.extend_from_slice(b"JUNK");
            }
        }
        let end = out.len() as u32;
        out[28..32].copy_from_slice(&end.to_le_bytes());
        out
    }

    fn read_all(bytes: Vec<u8>) -> (Packets, Option<String>) {
        let mut r = match CaptureReader::from_reader("s.cap", Box::new(std::io::Cursor::new(bytes)))
        {
            Ok(r) => r,
            Err(e) => return (Vec::new(), Some(e.to_string())),
        };
        assert_eq!(r.format(), CaptureFormat::NetXray);
        let mut out = Vec::new();
        loop {
            match r.next_packet() {
                Ok(Some(p)) => out.push((p.ts, p.link_type, p.data.to_vec(), p.wire_len)),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    const START: i64 = 1_265_194_715_000_000_000;

    #[test]
    fn version_1_1_microsecond_ticks() {
        let (pkts, err) = read_all(netxray(
            b"001.100\0",
            &[],
            &[
                (140_000, b"abc".to_vec(), false),
                (2_500_000, b"d".to_vec(), false),
            ],
        ));
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts[0], (START + 140_000_000, 1, b"abc".to_vec(), 3));
        assert_eq!(pkts[1].0, START + 2_500_000_000);
    }

    #[test]
    fn version_2_junk_is_stripped_unless_it_is_an_fcs() {
        // timeunit 0: 1e6 ticks per second; start tick 1_000_000 means "one second in".
        let header = [(52, 0x40), (53, 0x42), (54, 0x0f)];
        let recs = [
            (3_000_000, b"frame".to_vec(), true),
            (3_000_001, b"x".to_vec(), false),
        ];
        let (pkts, err) = read_all(netxray(b"002.001\0", &header, &recs));
        assert!(err.is_none(), "{err:?}");
        assert_eq!(pkts[0], (START + 2_000_000_000, 1, b"frame".to_vec(), 5));
        assert_eq!(pkts[1].2, b"x");
        let fcs = [(77, 0x34), (78, 0x12), (48, 2), (76, 0x40), (79, 0)];
        let (pkts, _) = read_all(netxray(b"002.001\0", &fcs, &recs));
        assert_eq!(pkts[0].2, b"frameJUNK");
    }

    #[test]
    fn wrapped_ring_buffer() {
        let recs = [
            (1_000, b"late".to_vec(), false),
            (500, b"early".to_vec(), false),
        ];
        let mut file = netxray(b"001.100\0", &[], &recs);
        // The oldest records were overwritten: stale bytes lie between the newest and oldest.
        let end = 128 + 28 + 4;
        file.splice(end..end, *b"stale!!!");
        file[24..28].copy_from_slice(&(end as u32 + 8).to_le_bytes());
        file[28..32].copy_from_slice(&(end as u32).to_le_bytes());
        let (pkts, err) = read_all(file);
        assert!(err.is_none(), "{err:?}");
        let data: Vec<&[u8]> = pkts.iter().map(|p| &p.2[..]).collect();
        assert_eq!(data, [&b"early"[..], b"late"]);
    }

    #[test]
    fn errors() {
        let file = netxray(b"001.100\0", &[], &[(0, b"abcdef".to_vec(), false)]);
        let (pkts, err) = read_all(file[..file.len() - 1].to_vec());
        assert!(pkts.is_empty());
        assert_eq!(err.unwrap(), "s.cap: truncated NetXRay record at byte 128");
        let mut short_end = file.clone();
        short_end[28..32].copy_from_slice(&10_000u32.to_le_bytes());
        assert_eq!(
            read_all(short_end).1.unwrap(),
            "s.cap: truncated NetXRay record at byte 162"
        );
        let mut bad = file.clone();
        bad[4..12].copy_from_slice(b"009.000\0");
        assert_eq!(
            read_all(bad).1.unwrap(),
            "s.cap: unsupported NetXRay/Sniffer version \"009.000\" at byte 0"
        );
        let mut atm = file;
        atm[44] = 8;
        assert!(read_all(atm).1.unwrap().contains("network type 9"));
        assert_eq!(
            read_all([&b"XCP\0"[..], b"001.100"].concat()).1.unwrap(),
            "s.cap: truncated NetXRay file header at byte 0"
        );
    }

    #[test]
    fn a_compressed_bomb_stops_at_the_window() {
        use std::io::Write;
        let mut head = netxray(b"002.000\0", &[], &[]);
        // Records claimed to run to 4 GiB.
        head[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&head).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..8 {
            gz.write_all(&zeros).unwrap();
        }
        let gz = std::io::Cursor::new(gz.finish().unwrap());
        let limits = crate::source::ReadLimits {
            window: 4 << 20,
            ..Default::default()
        };
        let err = CaptureReader::from_reader_with("bomb.cap.gz", Box::new(gz), limits)
            .err()
            .expect("the window stops it");
        assert_eq!(
            err.to_string(),
            "bomb.cap.gz: limit reached: a compressed or streamed NetXRay capture is read into \
             memory, and this one is larger than the 4 MiB window (--stream-window); decompress \
             it to a file first"
        );
    }
}
