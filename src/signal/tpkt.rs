//! TPKT (RFC 1006) framing and a bounded per-direction TCP reassembler that yields whole TPKTs.
//!
//! A TPKT is a 4-byte header (version 3, a reserved octet, a 16-bit length that counts the
//! header) and a payload: a Q.931/H.225 message on tcp/1720, an H.245 message on the H.245
//! connection. TCP does not keep those boundaries: NetMeeting sends the header alone, one
//! segment may hold several TPKTs and one TPKT may span many segments. [`TpktStream`] rebuilds
//! them for one direction of one connection from `(sequence number, payload)` pairs.
//!
//! Rules of [`TpktStream`]:
//! - A frame is only ever emitted from contiguous bytes, in sequence order.
//! - Sequence space already consumed is ignored (retransmissions); partial overlaps are trimmed.
//! - Segments ahead of a hole are kept (up to [`MAX_AHEAD`] ranges within [`AHEAD_WINDOW`] bytes
//!   of the hole, inside the buffer) until the hole is filled; when they cannot be kept, the hole
//!   is declared lost and the stream resynchronises after it.
//! - Bytes that do not start with a plausible header (version 3, reserved 0, length 5 up to the
//!   buffer size) are dropped until one does. A frame longer than the buffer is skipped whole.
//! - Sequence numbers are compared modulo 2^32, so wrap-around needs nothing special.
//! - Segments holding only whole frames are framed in place; the buffer is allocated once, on
//!   the first partial frame or out-of-order segment, and never grows.

use std::fmt;

/// Length of the TPKT header.
pub const HEADER_LEN: usize = 4;
/// The only TPKT version.
pub const VERSION: u8 = 3;
/// Default reassembly buffer per direction.
pub const DEFAULT_CAPACITY: usize = 32 * 1024;
/// Smallest and largest accepted buffer sizes. 64 KiB holds any TPKT.
pub const MIN_CAPACITY: usize = 1024;
pub const MAX_CAPACITY: usize = 64 * 1024;
/// Out-of-order ranges kept at most while waiting for a hole to fill.
pub const MAX_AHEAD: usize = 4;
/// How far past a hole out-of-order data is kept. Signalling is low-volume, so a hole not filled
/// within this much later data is taken as capture loss rather than reordering.
pub const AHEAD_WINDOW: usize = 8 * 1024;

/// A TPKT header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TpktHeader {
    pub version: u8,
    pub reserved: u8,
    /// Total length, header included.
    pub length: u16,
}

/// What was wrong with a TPKT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TpktErrorKind {
    /// Fewer bytes than the header or than its length says.
    Truncated,
    /// Version is not 3.
    BadVersion,
    /// Length smaller than the header.
    BadLength,
}

/// A TPKT error and the byte offset it refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("TPKT {kind} at byte {offset}")]
pub struct TpktError {
    pub kind: TpktErrorKind,
    pub offset: usize,
}

impl fmt::Display for TpktErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TpktErrorKind::Truncated => "truncated",
            TpktErrorKind::BadVersion => "version is not 3",
            TpktErrorKind::BadLength => "length shorter than the header",
        })
    }
}

/// Parses a TPKT header.
pub fn parse_header(bytes: &[u8]) -> Result<TpktHeader, TpktError> {
    let Some(&[version, reserved, hi, lo]) = bytes.get(..HEADER_LEN) else {
        return Err(TpktError {
            kind: TpktErrorKind::Truncated,
            offset: bytes.len(),
        });
    };
    let header = TpktHeader {
        version,
        reserved,
        length: u16::from_be_bytes([hi, lo]),
    };
    if version != VERSION {
        return Err(TpktError {
            kind: TpktErrorKind::BadVersion,
            offset: 0,
        });
    }
    if usize::from(header.length) < HEADER_LEN {
        return Err(TpktError {
            kind: TpktErrorKind::BadLength,
            offset: 2,
        });
    }
    Ok(header)
}

/// Splits one whole TPKT off the front of `bytes`: `(payload, rest)`.
pub fn split_frame(bytes: &[u8]) -> Result<(&[u8], &[u8]), TpktError> {
    let header = parse_header(bytes)?;
    let len = usize::from(header.length);
    let frame = bytes.get(HEADER_LEN..len).ok_or(TpktError {
        kind: TpktErrorKind::Truncated,
        offset: bytes.len(),
    })?;
    Ok((frame, bytes.get(len..).unwrap_or_default()))
}

/// Counters of what a [`TpktStream`] saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TpktStats {
    /// Frames yielded (empty keep-alive TPKTs included, though not handed to the callback).
    pub frames: u64,
    /// Bytes dropped while looking for a header.
    pub garbage_bytes: u64,
    /// Retransmitted bytes ignored.
    pub duplicate_bytes: u64,
    /// Frames longer than the buffer, skipped.
    pub oversize_frames: u64,
    /// Holes given up on (data never seen); the stream resynchronised after each.
    pub gaps: u64,
}

/// What the framer finds at the front of some contiguous bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// A whole frame at `start..end` (header included).
    Frame { start: usize, end: usize },
    /// A plausible header at `start`, frame not complete yet.
    Partial { start: usize },
    /// A frame at `start` of `len` bytes, too long for the buffer: skip it.
    Oversize { start: usize, len: usize },
    /// No header anywhere: everything is garbage.
    Nothing,
}

/// Frame boundary state and counters, apart from the buffer so both can be borrowed at once.
#[derive(Clone, Copy, Debug)]
struct Framer {
    cap: usize,
    /// The next byte is known to start a frame (a header that fails is then garbage).
    synced: bool,
    stats: TpktStats,
}

impl Framer {
    /// Is there a header at `bytes[i..]`? `None`: no. When synced at the first byte only the
    /// version and the length are checked, else (hunting) the reserved octet must be 0 and the
    /// length must hold a message and fit the buffer.
    fn header_at(&self, bytes: &[u8], i: usize, hunting: bool) -> Option<Found> {
        let head = bytes.get(i..).unwrap_or_default();
        match *head {
            [] => None,
            [v, ..] if v != VERSION => None,
            [_, r, ..] if hunting && r != 0 => None,
            [_, _, hi, lo, ..] => {
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                let min = if hunting { HEADER_LEN + 1 } else { HEADER_LEN };
                if len < min || (hunting && len > self.cap) {
                    None
                } else if len > self.cap {
                    Some(Found::Oversize { start: i, len })
                } else if head.len() >= len {
                    Some(Found::Frame {
                        start: i,
                        end: i + len,
                    })
                } else {
                    Some(Found::Partial { start: i })
                }
            }
            _ => Some(Found::Partial { start: i }),
        }
    }

    fn find(&self, bytes: &[u8]) -> Found {
        if self.synced {
            if let Some(found) = self.header_at(bytes, 0, false) {
                return found;
            }
        }
        (0..bytes.len())
            .find_map(|i| self.header_at(bytes, i, true))
            .unwrap_or(Found::Nothing)
    }

    /// Emits every whole frame at the front of `bytes`; returns how many bytes of sequence space
    /// are consumed, which exceeds `bytes.len()` when an oversize frame is being skipped.
    fn drain(&mut self, bytes: &[u8], on_frame: &mut dyn FnMut(&[u8])) -> usize {
        let mut pos = 0;
        loop {
            let rest = bytes.get(pos..).unwrap_or_default();
            match self.find(rest) {
                Found::Frame { start, end } => {
                    self.stats.garbage_bytes += start as u64;
                    self.stats.frames += 1;
                    self.synced = true;
                    if let Some(payload) = rest.get(start + HEADER_LEN..end) {
                        if !payload.is_empty() {
                            on_frame(payload);
                        }
                    }
                    pos += end;
                }
                Found::Partial { start } => {
                    self.stats.garbage_bytes += start as u64;
                    if start > 0 {
                        self.synced = false;
                    }
                    return pos + start;
                }
                Found::Oversize { start, len } => {
                    self.stats.garbage_bytes += start as u64;
                    self.stats.oversize_frames += 1;
                    self.synced = true;
                    pos += start + len;
                    if pos > bytes.len() {
                        return pos;
                    }
                }
                Found::Nothing => {
                    self.stats.garbage_bytes += rest.len() as u64;
                    self.synced = false;
                    return bytes.len();
                }
            }
        }
    }
}

/// A byte range `[start, end)` of the buffer holding data received ahead of a hole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

/// Reassembles the TPKTs of one TCP direction. See the module documentation for its rules.
#[derive(Debug)]
pub struct TpktStream {
    framer: Framer,
    buf: Option<Box<[u8]>>,
    /// Sequence number of `buf[0]`; `None` before the first segment.
    base: Option<u32>,
    /// Contiguous bytes at the start of `buf`.
    filled: usize,
    /// Data held beyond a hole, sorted, disjoint, all starting after `filled`.
    ahead: [Span; MAX_AHEAD],
    ahead_len: usize,
}

impl Default for TpktStream {
    fn default() -> Self {
        Self::new()
    }
}

impl TpktStream {
    /// A stream with a [`DEFAULT_CAPACITY`] buffer (allocated on first need).
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A stream whose buffer holds `capacity` bytes, clamped to
    /// [`MIN_CAPACITY`]..=[`MAX_CAPACITY`]. Frames longer than the buffer are skipped.
    pub fn with_capacity(capacity: usize) -> Self {
        TpktStream {
            framer: Framer {
                cap: capacity.clamp(MIN_CAPACITY, MAX_CAPACITY),
                synced: false,
                stats: TpktStats::default(),
            },
            buf: None,
            base: None,
            filled: 0,
            ahead: [Span::default(); MAX_AHEAD],
            ahead_len: 0,
        }
    }

    /// Tells the stream where its byte stream starts (the SYN's sequence number + 1), before
    /// the first segment: the first byte is then known to start a frame, and segments that
    /// arrive ahead of the first one are held instead of starting the stream late.
    pub fn start(&mut self, seq: u32) {
        if self.base.is_none() {
            self.base = Some(seq);
            self.framer.synced = true;
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> TpktStats {
        self.framer.stats
    }

    /// Bytes held waiting for the rest of a frame or for a hole to fill.
    pub fn buffered(&self) -> usize {
        self.ahead().last().map_or(self.filled, |s| s.end)
    }

    /// Frees the buffer if it holds nothing (an idle stream).
    pub fn release(&mut self) {
        if self.buffered() == 0 {
            self.buf = None;
        }
    }

    fn ahead(&self) -> &[Span] {
        self.ahead.get(..self.ahead_len).unwrap_or_default()
    }

    /// Feeds one segment: `seq` is the TCP sequence number of `payload[0]`. Every TPKT the
    /// segment completes is handed to `on_frame` (its payload, header removed).
    pub fn push(&mut self, seq: u32, payload: &[u8], mut on_frame: impl FnMut(&[u8])) {
        self.push_dyn(seq, payload, &mut on_frame);
    }

    fn push_dyn(&mut self, mut seq: u32, mut data: &[u8], on_frame: &mut dyn FnMut(&[u8])) {
        self.base.get_or_insert(seq);
        while let Some((rel, cut)) = self.locate(seq, data) {
            seq = seq.wrapping_add(cut as u32);
            data = data.get(cut..).unwrap_or_default();
            let taken = if rel == 0 && self.buffered() == 0 {
                // Nothing buffered: frame whole TPKTs straight from the segment and buffer only
                // the start of an unfinished one.
                let consumed = self.framer.drain(data, on_frame);
                self.advance(consumed);
                let tail = data.get(consumed..).unwrap_or_default();
                if tail.is_empty() {
                    return;
                }
                let stored = self.store(0, tail);
                if stored == 0 {
                    return; // unreachable: offset 0 always fits
                }
                consumed + stored
            } else {
                let stored = self.store(rel, data);
                if stored == 0 {
                    // No room: give up on the oldest hole. The base moves forward, so `rel`
                    // shrinks on every retry and the loop ends.
                    self.abandon_hole(rel);
                    continue;
                }
                self.drain_buffer(on_frame);
                stored
            };
            seq = seq.wrapping_add(taken as u32);
            data = data.get(taken..).unwrap_or_default();
        }
    }

    /// Where `data` (starting at sequence number `seq`) goes: its offset from the buffer start
    /// and how many leading bytes are already held or consumed (counted as duplicates).
    /// `None` when nothing new is left.
    fn locate(&mut self, seq: u32, data: &[u8]) -> Option<(usize, usize)> {
        if data.is_empty() {
            return None;
        }
        let base = self.base?;
        // Signed distance modulo 2^32: negative is behind the consumed point.
        let offset = seq.wrapping_sub(base) as i32;
        let (rel, behind) = match usize::try_from(offset) {
            Ok(rel) => (rel, 0),
            Err(_) => (0, offset.unsigned_abs() as usize),
        };
        let cut = behind.saturating_add(self.filled.saturating_sub(rel));
        if cut >= data.len() {
            self.framer.stats.duplicate_bytes += data.len() as u64;
            return None;
        }
        self.framer.stats.duplicate_bytes += cut as u64;
        Some((rel.max(self.filled), cut))
    }

    /// Copies what fits of `data` to buffer offset `rel`; returns how many bytes were taken
    /// (0 when there is no room or no free range slot).
    fn store(&mut self, rel: usize, data: &[u8]) -> usize {
        let cap = self.framer.cap;
        if rel >= cap {
            return 0;
        }
        let n = data.len().min(cap - rel);
        let beyond_window = rel + n > self.filled.saturating_add(AHEAD_WINDOW);
        if rel > self.filled && (beyond_window || !self.can_hold_ahead(rel, rel + n)) {
            return 0;
        }
        let buf = self
            .buf
            .get_or_insert_with(|| vec![0u8; cap].into_boxed_slice());
        let (Some(dst), Some(src)) = (buf.get_mut(rel..rel + n), data.get(..n)) else {
            return 0;
        };
        dst.copy_from_slice(src);
        self.mark(rel, rel + n);
        n
    }

    fn can_hold_ahead(&self, start: usize, end: usize) -> bool {
        self.ahead_len < MAX_AHEAD
            || self
                .ahead()
                .iter()
                .any(|s| start <= s.end && end >= s.start)
    }

    /// Records `[start, end)` as received and extends the contiguous prefix over held ranges.
    fn mark(&mut self, start: usize, end: usize) {
        let mut span = Span { start, end };
        let mut kept = [Span::default(); MAX_AHEAD];
        let mut n = 0;
        for s in self.ahead().iter().copied() {
            if span.start <= s.end && span.end >= s.start {
                span = Span {
                    start: span.start.min(s.start),
                    end: span.end.max(s.end),
                };
            } else if let Some(slot) = kept.get_mut(n) {
                *slot = s;
                n += 1;
            }
        }
        if span.start <= self.filled {
            self.filled = self.filled.max(span.end);
        } else if let Some(slot) = kept.get_mut(n) {
            *slot = span;
            n += 1;
        }
        if let Some(held) = kept.get_mut(..n) {
            held.sort_unstable_by_key(|s| s.start);
        }
        self.ahead = kept;
        self.ahead_len = n;
        // A range that now touches the prefix joins it.
        while let Some(first) = self.ahead().first().copied() {
            if first.start > self.filled {
                break;
            }
            self.filled = self.filled.max(first.end);
            self.ahead.copy_within(1.., 0);
            self.ahead_len -= 1;
        }
    }

    /// Frames what the contiguous prefix holds and compacts the buffer.
    fn drain_buffer(&mut self, on_frame: &mut dyn FnMut(&[u8])) {
        let Some(buf) = self.buf.as_deref() else {
            return;
        };
        let prefix = buf.get(..self.filled).unwrap_or_default();
        let consumed = self.framer.drain(prefix, on_frame);
        self.consume(consumed);
    }

    /// Drops `n` bytes of sequence space from the front of the buffer (some possibly not
    /// received yet, when skipping).
    fn consume(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let end = self.buffered();
        if let Some(buf) = self.buf.as_deref_mut() {
            if n < end {
                buf.copy_within(n..end, 0);
            }
        }
        self.filled = self.filled.saturating_sub(n);
        let mut kept = [Span::default(); MAX_AHEAD];
        let mut held = 0;
        for s in self.ahead().iter().filter(|s| s.end > n) {
            if let Some(slot) = kept.get_mut(held) {
                *slot = Span {
                    start: s.start.saturating_sub(n),
                    end: s.end - n,
                };
                held += 1;
            }
        }
        self.ahead = kept;
        self.ahead_len = held;
        self.advance(n);
        // Skipping may have run into held data: the prefix now starts at 0.
        if self.filled == 0 {
            self.mark(0, 0);
        }
    }

    fn advance(&mut self, n: usize) {
        if let Some(base) = self.base.as_mut() {
            *base = base.wrapping_add(n as u32);
        }
    }

    /// Gives up waiting for the bytes before the first held range (or before `rel` when nothing
    /// is held): drops them and resynchronises on what follows.
    fn abandon_hole(&mut self, rel: usize) {
        self.framer.stats.gaps += 1;
        self.framer.synced = false;
        let resume = self.ahead().first().map_or(rel, |s| s.start.min(rel));
        self.framer.stats.garbage_bytes += self.filled as u64;
        self.filled = 0;
        self.consume(resume);
    }

    /// Gives up on the current hole now (e.g. when the flow layer knows the data is lost) and
    /// frames what was held beyond it.
    pub fn skip_hole(&mut self, mut on_frame: impl FnMut(&[u8])) {
        if self.ahead_len == 0 {
            return;
        }
        self.abandon_hole(usize::MAX);
        self.drain_buffer(&mut on_frame);
    }
}

#[cfg(test)]
#[path = "tpkt_tests.rs"]
mod tests;
