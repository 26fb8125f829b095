//! The legacy libpcap file format: a 24-byte file header, then records of a 16-byte header and
//! the captured bytes. Both byte orders, microsecond and nanosecond magics, and the "modified"
//! (Kuznetzov) variant whose record headers are 24 bytes long.

use super::stream::ByteStream;
use super::{Fault, PacketMeta, Warnings, MAX_CAPLEN};
use crate::bytes::read_u32;
use crate::source::SourceErrorKind;

/// Length of the file header.
pub(crate) const FILE_HEADER_LEN: usize = 24;

/// Mask of the link-type bits in the header's `network` field; the top bits carry FCS
/// information (libpcap's `LT_LINKTYPE`).
const LINKTYPE_MASK: u32 = 0x03FF_FFFF;

/// What the file header says about the records that follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PcapReader {
    big_endian: bool,
    /// Fractions of a second are nanoseconds (else microseconds).
    nanos: bool,
    /// 16, or 24 for the modified format.
    record_header_len: usize,
    link_type: u32,
}

/// The legacy magics, as read big-endian from the first four bytes:
/// `(magic, big_endian, nanos, modified)`.
const MAGICS: [(u32, bool, bool, bool); 6] = [
    (0xa1b2_c3d4, true, false, false),
    (0xd4c3_b2a1, false, false, false),
    (0xa1b2_3c4d, true, true, false),
    (0x4d3c_b2a1, false, true, false),
    (0xa1b2_cd34, true, false, true),
    (0x34cd_b2a1, false, false, true),
];

/// Whether four bytes are one of the legacy pcap magics.
pub(crate) fn is_magic(magic: [u8; 4]) -> bool {
    let m = u32::from_be_bytes(magic);
    MAGICS.iter().any(|&(x, ..)| x == m)
}

impl PcapReader {
    /// Reads the file header at the start of `stream`.
    pub(crate) fn start(stream: &mut ByteStream) -> Result<Self, Fault> {
        let at = stream.offset();
        if !stream
            .fill(FILE_HEADER_LEN)
            .map_err(|e| Fault::io(e, stream))?
        {
            return Err(Fault::new(
                at,
                SourceErrorKind::Truncated {
                    what: "pcap file header",
                },
            ));
        }
        let range = stream.consume(FILE_HEADER_LEN);
        let header = stream.slice(range);
        let Some(h) = header.first_chunk::<FILE_HEADER_LEN>() else {
            return Err(Fault::new(
                at,
                SourceErrorKind::Truncated {
                    what: "pcap file header",
                },
            ));
        };
        let magic = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let Some(&(_, big_endian, nanos, modified)) = MAGICS.iter().find(|m| m.0 == magic) else {
            return Err(Fault::new(
                at,
                SourceErrorKind::NotACapture {
                    magic: [h[0], h[1], h[2], h[3]],
                },
            ));
        };
        let network = read_u32([h[20], h[21], h[22], h[23]], big_endian);
        Ok(PcapReader {
            big_endian,
            nanos,
            record_header_len: if modified { 24 } else { 16 },
            link_type: network & LINKTYPE_MASK,
        })
    }

    /// The next record if it is all buffered and unremarkable (16-byte header, captured length
    /// within [`MAX_CAPLEN`] and the original length): what [`next`](Self::next) would return
    /// for it, read in one step ([`ByteStream::whole_record`]). `None`, with nothing consumed,
    /// for anything else: `next` then reads it, with its warnings and faults.
    #[inline(always)]
    pub(crate) fn next_whole(&self, stream: &mut ByteStream) -> Option<PacketMeta> {
        if self.record_header_len != 16 {
            return None;
        }
        let (be, nanos) = (self.big_endian, self.nanos);
        let word = |h: &[u8; 16], at: usize| {
            let w = [h[at], h[at + 1], h[at + 2], h[at + 3]];
            if be {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        let ((ts, wire_len), data) = stream.whole_record::<16, _>(|h| {
            let caplen = word(h, 8);
            let orig_len = word(h, 12);
            if caplen > MAX_CAPLEN || orig_len < caplen {
                return None;
            }
            let frac = i64::from(word(h, 4));
            let frac_ns = if nanos { frac } else { frac * 1_000 };
            // u32 seconds times 1e9 plus a u32 fraction stays far below i64::MAX.
            let ts = i64::from(word(h, 0)) * 1_000_000_000 + frac_ns;
            Some((caplen as usize, (ts, orig_len)))
        })?;
        Some(PacketMeta {
            ts,
            link_type: self.link_type,
            data,
            wire_len,
        })
    }

    /// Reads the next record; `Ok(None)` at a clean end of the stream.
    #[inline]
    pub(crate) fn next(
        &mut self,
        stream: &mut ByteStream,
        warnings: &mut Warnings,
    ) -> Result<Option<PacketMeta>, Fault> {
        let at = stream.offset();
        let hlen = self.record_header_len;
        if !stream.fill(hlen).map_err(|e| Fault::io(e, stream))? {
            if stream.available() == 0 {
                return Ok(None);
            }
            return Err(Fault::new(
                at,
                SourceErrorKind::Truncated {
                    what: "packet record",
                },
            ));
        }
        let Some(h) = stream.peek().first_chunk::<16>() else {
            return Err(Fault::new(
                at,
                SourceErrorKind::Truncated {
                    what: "packet record",
                },
            ));
        };
        let be = self.big_endian;
        let sec = read_u32([h[0], h[1], h[2], h[3]], be);
        let frac = read_u32([h[4], h[5], h[6], h[7]], be);
        let caplen = read_u32([h[8], h[9], h[10], h[11]], be);
        let orig_len = read_u32([h[12], h[13], h[14], h[15]], be);
        if caplen > MAX_CAPLEN {
            return Err(Fault::new(
                at,
                SourceErrorKind::CorruptLength {
                    what: "captured",
                    len: caplen.into(),
                },
            ));
        }
        let total = hlen + caplen as usize;
        if !stream.fill(total).map_err(|e| Fault::io(e, stream))? {
            return Err(Fault::new(
                at,
                SourceErrorKind::Truncated {
                    what: "packet record",
                },
            ));
        }
        let record = stream.consume(total);
        let wire_len = if orig_len < caplen {
            warnings.wire_len_raised += 1;
            caplen
        } else {
            orig_len
        };
        // u32 seconds times 1e9 plus a u32 fraction stays far below i64::MAX.
        let frac_ns = if self.nanos {
            i64::from(frac)
        } else {
            i64::from(frac) * 1_000
        };
        Ok(Some(PacketMeta {
            ts: i64::from(sec) * 1_000_000_000 + frac_ns,
            link_type: self.link_type,
            data: record.start + hlen..record.end,
            wire_len,
        }))
    }

    /// Whether the file uses the nanosecond magic.
    pub(crate) fn nanosecond(&self) -> bool {
        self.nanos
    }
}

#[cfg(test)]
mod tests {
    use crate::source::testutil::{pcap_file, PcapRec};
    use crate::source::{CaptureReader, SourceErrorKind};

    fn reader(bytes: Vec<u8>) -> CaptureReader {
        CaptureReader::from_reader("t.pcap", Box::new(std::io::Cursor::new(bytes))).unwrap()
    }

    fn rec(sec: u32, frac: u32, data: &[u8]) -> PcapRec {
        PcapRec {
            sec,
            frac,
            data: data.to_vec(),
            orig_len: data.len() as u32,
        }
    }

    #[test]
    fn reads_both_byte_orders_and_resolutions() {
        for big_endian in [false, true] {
            for nanos in [false, true] {
                let recs = [
                    rec(1_000_000_000, 5, b"abcdef"),
                    rec(1_000_000_001, 999, b"xy"),
                ];
                let mut r = reader(pcap_file(big_endian, nanos, 1, &recs));
                let unit = if nanos { 1 } else { 1000 };
                let p = r.next_packet().unwrap().unwrap();
                assert_eq!(p.ts, 1_000_000_000 * 1_000_000_000 + 5 * unit);
                assert_eq!(p.data, b"abcdef");
                assert_eq!((p.link_type, p.wire_len), (1, 6));
                let p = r.next_packet().unwrap().unwrap();
                assert_eq!(p.ts, 1_000_000_001 * 1_000_000_000 + 999 * unit);
                assert_eq!(p.data, b"xy");
                assert!(r.next_packet().unwrap().is_none());
                assert!(r.next_packet().unwrap().is_none());
            }
        }
    }

    #[test]
    fn header_only_file_has_no_packets() {
        let mut r = reader(pcap_file(false, false, 113, &[]));
        assert!(r.next_packet().unwrap().is_none());
    }

    #[test]
    fn link_type_fcs_bits_are_masked() {
        let mut r = reader(pcap_file(false, false, 0x1000_0001, &[rec(1, 1, b"a")]));
        assert_eq!(r.next_packet().unwrap().unwrap().link_type, 1);
    }

    #[test]
    fn wire_len_is_raised_to_caplen() {
        let mut bad = rec(1, 1, b"abcd");
        bad.orig_len = 2;
        let mut r = reader(pcap_file(true, false, 1, &[bad]));
        assert_eq!(r.next_packet().unwrap().unwrap().wire_len, 4);
        assert!(r.next_packet().unwrap().is_none());
        assert_eq!(r.warnings().len(), 1);
    }

    #[test]
    fn truncated_last_record_after_complete_ones() {
        let full = pcap_file(
            false,
            false,
            1,
            &[rec(1, 0, b"0123456789"), rec(2, 0, b"abc")],
        );
        let second = 24 + 16 + 10;
        for cut in [second + 3, second + 16, full.len() - 1] {
            let mut r = reader(full[..cut].to_vec());
            assert_eq!(r.next_packet().unwrap().unwrap().data, b"0123456789");
            let e = r.next_packet().unwrap_err();
            assert!(matches!(e.kind, SourceErrorKind::Truncated { .. }), "{e}");
            assert_eq!(e.offset, Some(second as u64));
            assert_eq!(
                e.to_string(),
                format!("t.pcap: truncated packet record at byte {second}")
            );
            assert!(r.next_packet().unwrap().is_none());
        }
    }

    #[test]
    fn truncated_file_header() {
        let bytes = pcap_file(false, false, 1, &[]);
        let e =
            CaptureReader::from_reader("t", Box::new(std::io::Cursor::new(bytes[..10].to_vec())))
                .err()
                .unwrap();
        assert!(matches!(
            e.kind,
            SourceErrorKind::Truncated {
                what: "pcap file header"
            }
        ));
        assert_eq!(e.offset, Some(0));
    }

    #[test]
    fn corrupt_caplen_in_the_middle() {
        let mut bytes = pcap_file(false, false, 1, &[rec(1, 0, b"ok"), rec(2, 0, b"bad!")]);
        let second = 24 + 16 + 2;
        bytes[second + 8..second + 12].copy_from_slice(&300_000u32.to_le_bytes());
        let mut r = reader(bytes);
        assert!(r.next_packet().unwrap().is_some());
        let e = r.next_packet().unwrap_err();
        assert!(matches!(
            e.kind,
            SourceErrorKind::CorruptLength { len: 300_000, .. }
        ));
        assert_eq!(
            e.to_string(),
            format!("t.pcap: corrupt captured length 300000 at byte {second}")
        );
        assert!(r.next_packet().unwrap().is_none());
    }

    #[test]
    fn modified_format_has_longer_record_headers() {
        let mut bytes = pcap_file(false, false, 1, &[]);
        bytes[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes());
        for (sec, data) in [(7u32, &b"hello"[..]), (8, b"w")] {
            for v in [sec, 3, data.len() as u32, data.len() as u32] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            bytes.extend_from_slice(&[0; 8]);
            bytes.extend_from_slice(data);
        }
        let mut r = reader(bytes);
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!((p.ts, p.data), (7_000_003_000, &b"hello"[..]));
        assert_eq!(r.next_packet().unwrap().unwrap().data, b"w");
        assert!(r.next_packet().unwrap().is_none());
    }
}
