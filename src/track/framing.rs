//! Framers: where one protocol unit ends in a reassembled byte stream. Each is a small state
//! machine over contiguous bytes (what [`Reassembler`](super::reassembly::Reassembler) offers);
//! [`drive`] hands every whole unit to a tracker and tells the reassembler how much was used.
//!
//! - [`Tpkt`]: RFC 1006 TPKT (H.225, H.245, X.400), with resynchronisation on garbage.
//! - [`Lines`]: CRLF- or LF-terminated lines (SMTP, POP3, IMAP, HTTP heads), bounded length.
//! - [`Len16`]: a 2-byte big-endian length prefix (DNS over TCP).
//! - [`DceRpc`]: connection-oriented DCE/RPC PDUs by their `frag_len`.
//! - [`Ber`]: ASN.1 BER TLVs with a definite length (LDAP messages).

use crate::signal::tpkt::{HEADER_LEN as TPKT_HEADER, VERSION as TPKT_VERSION};

/// What a framer finds at the front of some contiguous bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `skip` bytes of garbage, then a whole unit of `len` bytes whose payload starts `head`
    /// bytes into it.
    Unit {
        skip: usize,
        len: usize,
        head: usize,
    },
    /// `skip` bytes of garbage, then the start of a unit that is not complete yet.
    More { skip: usize },
    /// Drop `skip` bytes and then `len` more of a unit too long to keep (the total may exceed
    /// what was offered: the sequence space is skipped).
    Oversize { skip: usize, len: usize },
}

/// Finds unit boundaries.
pub trait Framer {
    /// What is at the front of `bytes`.
    fn next(&mut self, bytes: &[u8]) -> Frame;
    /// Bytes were lost before the next ones: they may start mid-unit.
    fn gap(&mut self) {}
}

/// What a framer has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Whole units found (empty ones included).
    pub units: u64,
    /// Bytes dropped while looking for a unit's start.
    pub garbage_bytes: u64,
    /// Units longer than the framer keeps, skipped.
    pub oversize: u64,
}

/// Hands every whole unit at the front of `bytes` to `on_unit` (its payload) until it returns
/// false; returns how many bytes of sequence space are used (more than `bytes.len()` while an
/// oversize unit is skipped, fewer when a unit is unfinished).
pub fn drive(
    framer: &mut dyn Framer,
    stats: &mut FrameStats,
    bytes: &[u8],
    on_unit: &mut dyn FnMut(&[u8]) -> bool,
) -> usize {
    let mut pos = 0;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        if rest.is_empty() {
            return pos;
        }
        match framer.next(rest) {
            Frame::Unit { skip, len, head } => {
                stats.garbage_bytes += skip as u64;
                stats.units += 1;
                let end = skip.saturating_add(len).max(1);
                let payload = rest
                    .get(skip.saturating_add(head).min(end)..end)
                    .unwrap_or_default();
                pos += end;
                if !on_unit(payload) {
                    return pos;
                }
            }
            Frame::More { skip } => {
                stats.garbage_bytes += skip as u64;
                return pos + skip;
            }
            Frame::Oversize { skip, len } => {
                stats.garbage_bytes += skip as u64;
                stats.oversize += 1;
                pos = pos.saturating_add(skip).saturating_add(len.max(1));
                if pos > bytes.len() {
                    return pos;
                }
            }
        }
    }
}

/// TPKT (RFC 1006): version 3, a reserved octet, a 16-bit length that counts the 4-byte header.
/// Bytes that do not start with a plausible header are dropped until one does; after a gap or
/// garbage the reserved octet must be 0 and the length must hold a message and fit `cap`.
#[derive(Clone, Copy, Debug)]
pub struct Tpkt {
    /// Longest frame kept (a TPKT's length is 16 bits; u32 keeps every flow's framers small).
    pub cap: u32,
    /// The next byte is known to start a frame (a header that fails is then garbage).
    pub synced: bool,
}

impl Tpkt {
    pub fn new(cap: usize) -> Tpkt {
        Tpkt {
            cap: u32::try_from(cap).unwrap_or(u32::MAX),
            synced: true,
        }
    }

    fn cap(&self) -> usize {
        self.cap as usize
    }

    fn header_at(&self, bytes: &[u8], i: usize, hunting: bool) -> Option<Frame> {
        let head = bytes.get(i..).unwrap_or_default();
        match *head {
            [] => None,
            [v, ..] if v != TPKT_VERSION => None,
            [_, r, ..] if hunting && r != 0 => None,
            [_, _, hi, lo, ..] => {
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                let min = if hunting {
                    TPKT_HEADER + 1
                } else {
                    TPKT_HEADER
                };
                if len < min || (hunting && len > self.cap()) {
                    None
                } else if len > self.cap() {
                    Some(Frame::Oversize { skip: i, len })
                } else if head.len() >= len {
                    Some(Frame::Unit {
                        skip: i,
                        len,
                        head: TPKT_HEADER,
                    })
                } else {
                    Some(Frame::More { skip: i })
                }
            }
            _ => Some(Frame::More { skip: i }),
        }
    }
}

impl Framer for Tpkt {
    fn next(&mut self, bytes: &[u8]) -> Frame {
        if self.synced {
            if let Some(found) = self.header_at(bytes, 0, false) {
                return found;
            }
        }
        let found = (0..bytes.len())
            .find_map(|i| self.header_at(bytes, i, true))
            .unwrap_or(Frame::More { skip: bytes.len() });
        self.synced = match found {
            Frame::Unit { .. } | Frame::Oversize { .. } => true,
            Frame::More { skip } => skip == 0 && self.synced,
        };
        found
    }

    fn gap(&mut self) {
        self.synced = false;
    }
}

/// Lines ending in LF (CRLF or bare LF; the unit includes the terminator, [`trim_eol`] strips
/// it). A line longer than `max` is skipped up to its end.
#[derive(Clone, Copy, Debug)]
pub struct Lines {
    pub max: usize,
    /// Inside an over-long line: drop bytes until its end.
    discarding: bool,
}

impl Lines {
    pub fn new(max: usize) -> Lines {
        Lines {
            max,
            discarding: false,
        }
    }
}

impl Framer for Lines {
    fn next(&mut self, bytes: &[u8]) -> Frame {
        let window = bytes.get(..self.max.saturating_add(1)).unwrap_or(bytes);
        match memchr::memchr(b'\n', window) {
            Some(i) if self.discarding => {
                self.discarding = false;
                Frame::Oversize {
                    skip: 0,
                    len: i + 1,
                }
            }
            // The unit keeps its terminator; `trim_eol` strips it.
            Some(i) => Frame::Unit {
                skip: 0,
                len: i + 1,
                head: 0,
            },
            None if self.discarding || bytes.len() > self.max => {
                self.discarding = true;
                Frame::Oversize {
                    skip: 0,
                    len: bytes.len(),
                }
            }
            None => Frame::More { skip: 0 },
        }
    }

    fn gap(&mut self) {
        // A gap may have eaten a line's end: the next LF ends a partial line, which the parser
        // sees as one more (probably malformed) line.
        self.discarding = false;
    }
}

/// Strips a line's LF or CRLF terminator.
pub fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Units behind a 2-byte big-endian length (DNS over TCP, RFC 1035 4.2.2).
#[derive(Clone, Copy, Debug, Default)]
pub struct Len16;

impl Framer for Len16 {
    fn next(&mut self, bytes: &[u8]) -> Frame {
        let Some(&[hi, lo]) = bytes.get(..2) else {
            return Frame::More { skip: 0 };
        };
        let len = 2 + usize::from(u16::from_be_bytes([hi, lo]));
        if bytes.len() >= len {
            Frame::Unit {
                skip: 0,
                len,
                head: 2,
            }
        } else {
            Frame::More { skip: 0 }
        }
    }
}

/// Connection-oriented DCE/RPC PDUs (C706 12.6): version 5, minor 0 or 1, `frag_len` at offset 8
/// in the byte order the data representation at offset 4 names. Anything else is garbage (after
/// a gap the framer hunts for a plausible header).
#[derive(Clone, Copy, Debug)]
pub struct DceRpc {
    pub cap: usize,
}

/// Length of the common header of a connection-oriented DCE/RPC PDU.
pub const DCERPC_HEADER: usize = 16;

impl DceRpc {
    fn at(&self, bytes: &[u8], i: usize) -> Option<Frame> {
        let h = bytes.get(i..).unwrap_or_default();
        match *h {
            [] => None,
            [v, ..] if v != 5 => None,
            [_, minor, ..] if minor > 1 => None,
            [_, _, ptype, ..] if ptype > 20 => None,
            [_, _, _, _, drep0, _, _, _, a, b, ..] => {
                let len = usize::from(if drep0 & 0x10 != 0 {
                    u16::from_le_bytes([a, b])
                } else {
                    u16::from_be_bytes([a, b])
                });
                if len < DCERPC_HEADER {
                    None
                } else if len > self.cap {
                    Some(Frame::Oversize { skip: i, len })
                } else if h.len() >= len {
                    Some(Frame::Unit {
                        skip: i,
                        len,
                        head: 0,
                    })
                } else {
                    Some(Frame::More { skip: i })
                }
            }
            _ => Some(Frame::More { skip: i }),
        }
    }
}

impl Framer for DceRpc {
    fn next(&mut self, bytes: &[u8]) -> Frame {
        (0..bytes.len())
            .find_map(|i| self.at(bytes, i))
            .unwrap_or(Frame::More { skip: bytes.len() })
    }
}

/// ASN.1 BER TLVs with a definite length (LDAP's LDAPMessage is a SEQUENCE, tag 0x30). Units
/// whose tag is not `tag` are garbage; indefinite lengths and lengths over `cap` are skipped.
#[derive(Clone, Copy, Debug)]
pub struct Ber {
    pub tag: u8,
    pub cap: usize,
}

/// A BER length exflow does not follow: indefinite, or longer than 4 octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unusable BER length form")]
pub struct BerLengthError;

/// The header length and content length of a BER TLV at the front of `bytes`: `Ok(None)` when
/// more bytes are needed.
pub fn ber_header(bytes: &[u8]) -> Result<Option<(usize, usize)>, BerLengthError> {
    let Some(&first) = bytes.get(1) else {
        return Ok(None);
    };
    if first < 0x80 {
        return Ok(Some((2, usize::from(first))));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return Err(BerLengthError);
    }
    let Some(octets) = bytes.get(2..2 + n) else {
        return Ok(None);
    };
    let len = octets
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok(Some((2 + n, len)))
}

impl Framer for Ber {
    fn next(&mut self, bytes: &[u8]) -> Frame {
        let Some(skip) = memchr::memchr(self.tag, bytes) else {
            return Frame::More { skip: bytes.len() };
        };
        let rest = bytes.get(skip..).unwrap_or_default();
        match ber_header(rest) {
            Ok(None) => Frame::More { skip },
            Err(BerLengthError) => Frame::Oversize { skip, len: 1 },
            Ok(Some((head, len))) => {
                let total = head.saturating_add(len);
                if total > self.cap {
                    Frame::Oversize { skip, len: total }
                } else if rest.len() >= total {
                    Frame::Unit {
                        skip,
                        len: total,
                        head: 0,
                    }
                } else {
                    Frame::More { skip }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(f: &mut dyn Framer, bytes: &[u8]) -> (Vec<Vec<u8>>, usize, FrameStats) {
        let mut out = Vec::new();
        let mut stats = FrameStats::default();
        let used = drive(f, &mut stats, bytes, &mut |u| {
            out.push(u.to_vec());
            true
        });
        (out, used, stats)
    }

    #[test]
    fn lines_split_and_overlong_lines_are_skipped() {
        let mut f = Lines::new(8);
        let (out, used, _) = units(&mut f, b"250 OK\r\n220 x\npartial");
        assert_eq!(out, [b"250 OK\r\n".to_vec(), b"220 x\n".to_vec()]);
        assert_eq!(used, 14, "the partial line is left for later");
        assert_eq!(trim_eol(&out[0]), b"250 OK");
        let (out, used, stats) = units(&mut f, b"0123456789abcdef");
        assert!(out.is_empty());
        assert_eq!((used, stats.oversize), (16, 1), "over-long: dropped");
        let (out, _, _) = units(&mut f, b"tail\nQUIT\r\n");
        assert_eq!(
            out,
            [b"QUIT\r\n".to_vec()],
            "the long line's end is dropped too"
        );
    }

    #[test]
    fn length_prefixed_units() {
        let (out, used, _) = units(&mut Len16, &[0, 3, 1, 2, 3, 0, 5, 9]);
        assert_eq!((out, used), (vec![vec![1, 2, 3]], 5));
    }

    #[test]
    fn dcerpc_frag_len_in_both_byte_orders() {
        let mut le = vec![5, 0, 11, 3, 0x10, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0];
        le.extend([0xaa; 4]);
        let mut be = vec![5, 0, 12, 3, 0x00, 0, 0, 0, 0, 18, 0, 0, 0, 0, 0, 1];
        be.extend([0xbb; 2]);
        let mut both = le.clone();
        both.extend(&be);
        let (out, used, _) = units(&mut DceRpc { cap: 4096 }, &both);
        assert_eq!((out.len(), used), (2, 38));
        assert_eq!(out[1].len(), 18);
        let (out, used, _) = units(&mut DceRpc { cap: 4096 }, &le[..10]);
        assert!(out.is_empty() && used == 0, "unfinished");
        let (out, _, st) = units(&mut DceRpc { cap: 4096 }, b"garbage!");
        assert!(out.is_empty());
        assert_eq!(st.garbage_bytes, 8);
    }

    #[test]
    fn ber_sequences_short_and_long_lengths() {
        let mut bytes = vec![0x30, 3, 2, 1, 7];
        bytes.extend([0x30, 0x81, 2, 0xa, 0xb]);
        bytes.extend([0x30, 0x82, 0x10]);
        let mut f = Ber {
            tag: 0x30,
            cap: 1024,
        };
        let (out, used, _) = units(&mut f, &bytes);
        assert_eq!(out.len(), 2);
        assert_eq!(used, 10, "the third is unfinished");
        let (out, used, st) = units(&mut f, &[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff]);
        assert!(out.is_empty());
        assert_eq!(
            (st.oversize, used > 6),
            (1, true),
            "a length beyond the cap is skipped"
        );
        assert_eq!(ber_header(&[0x30, 0x80]), Err(BerLengthError), "indefinite");
    }

    #[test]
    fn tpkt_resynchronises_after_a_gap() {
        let mut f = Tpkt::new(1024);
        f.gap();
        let mut bytes = b"xx".to_vec();
        bytes.extend([3, 0, 0, 6, 0xde, 0xad]);
        let (out, used, st) = units(&mut f, &bytes);
        assert_eq!(
            (out, used, st.garbage_bytes),
            (vec![vec![0xde, 0xad]], 8, 2)
        );
    }
}
