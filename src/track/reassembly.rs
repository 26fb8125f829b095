//! A bounded per-direction TCP reassembler, apart from any framing.
//!
//! [`Reassembler`] rebuilds the in-order byte stream of one direction of one connection from
//! `(sequence number, payload)` pairs and offers contiguous bytes to a [`Sink`] (a tracker's
//! framer), which says how many it used: fewer than offered leaves an unfinished unit to be
//! offered again with more; more than offered skips sequence space (a unit too long to keep).
//!
//! Rules:
//! - Bytes are only ever offered contiguous and in sequence order.
//! - Sequence space already consumed is ignored (retransmissions); partial overlaps are trimmed.
//! - Segments ahead of a hole are kept (up to [`MAX_AHEAD`] ranges within [`AHEAD_WINDOW`] bytes
//!   of the hole) until the hole fills. A hole is given up on by volume (the held data would pass
//!   the window or the buffer) and by capture time (older than [`HOLE_TIMEOUT`]); the sink is then
//!   told of the gap and offered what follows.
//! - Segments that leave nothing unfinished are offered in place: the buffer is allocated only for
//!   an unfinished unit or out-of-order data, grows on demand up to the stream's capacity, draws
//!   on a run-wide [`Budget`], and is freed as soon as it holds nothing.
//! - A stream that cannot get buffer room (its capacity or the budget) gives up its held data as a
//!   gap and goes on with what follows; the refusal is counted.
//! - Sequence numbers are compared modulo 2^32, so wrap-around needs nothing special.

use crate::packet::Nanos;

/// Out-of-order ranges kept at most while waiting for a hole to fill.
pub const MAX_AHEAD: usize = 4;
/// How far past a hole out-of-order data is kept before the hole is taken as capture loss.
pub const AHEAD_WINDOW: usize = 8 * 1024;
/// How long (capture time) a hole may stay open before it is taken as capture loss.
pub const HOLE_TIMEOUT: Nanos = 10 * 1_000_000_000;

/// Takes the contiguous bytes of a stream.
pub trait Sink {
    /// `bytes` start at the stream's current position. Returns how many were used: less than
    /// `bytes.len()` keeps the rest for later (an unfinished unit), more skips sequence space.
    fn data(&mut self, bytes: &[u8]) -> usize;
    /// Bytes before the current position were lost: the next bytes may start mid-unit.
    fn gap(&mut self);
}

/// The run-wide budget of reassembly buffer bytes, shared by every stream of every tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Most bytes all buffers may hold at once.
    pub limit: usize,
    /// Bytes held now.
    pub used: usize,
    /// Most bytes held at once.
    pub peak: usize,
    /// Times a stream was refused room because the budget was spent.
    pub refused: u64,
}

/// Default run-wide reassembly budget.
pub const DEFAULT_BUDGET: usize = 64 * 1024 * 1024;

impl Default for Budget {
    fn default() -> Self {
        Budget::new(DEFAULT_BUDGET)
    }
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: 0,
            peak: 0,
            refused: 0,
        }
    }

    fn take(&mut self, n: usize) -> bool {
        if self.used.saturating_add(n) > self.limit {
            self.refused += 1;
            return false;
        }
        self.used += n;
        self.peak = self.peak.max(self.used);
        true
    }

    fn give(&mut self, n: usize) {
        self.used = self.used.saturating_sub(n);
    }
}

/// Counters of one stream (or, summed, of many).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Retransmitted bytes ignored.
    pub duplicate_bytes: u64,
    /// Holes given up on (data never seen); the sink was told of each.
    pub gaps: u64,
    /// Times the stream needed more buffer than its capacity or the budget allowed.
    pub overflows: u64,
}

impl std::ops::AddAssign for StreamStats {
    fn add_assign(&mut self, o: StreamStats) {
        self.duplicate_bytes += o.duplicate_bytes;
        self.gaps += o.gaps;
        self.overflows += o.overflows;
    }
}

/// A byte range `[start, end)` of the buffer holding data received ahead of a hole. Offsets
/// are below the stream's capacity, at most [`MAX_CAPACITY`]: 32 bits hold them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

/// An offset into a stream's buffer, in the 32 bits [`Held`] keeps (offsets are below the
/// capacity, at most [`MAX_CAPACITY`]; a larger one saturates instead of wrapping).
#[inline]
fn off(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: off(start),
            end: off(end),
        }
    }

    fn start(self) -> usize {
        self.start as usize
    }

    fn end(self) -> usize {
        self.end as usize
    }
}

/// No hole is open (`Held::hole_since`).
const NO_HOLE: Nanos = Nanos::MIN;

/// What a stream holds while a unit is unfinished or a hole is open: allocated with the buffer's
/// first byte and dropped with its last, so an idle stream is a few words (a flood of flows that
/// each leave nothing, or were refused room, costs no more). 40 bytes, the ranges held beyond a
/// hole in an allocation of their own while there are any (72 with them in place, 120 with
/// `usize` offsets): on the generated benchmark capture 71 000 streams hold an unfinished unit
/// at the end, next to no stream a hole.
#[derive(Debug)]
struct Held {
    /// Bytes from sequence number `base` on, up to the end of the last range held (its
    /// capacity grown on demand, and counted against the budget).
    buf: Vec<u8>,
    /// Contiguous bytes at the start of `buf`.
    filled: u32,
    /// Data held beyond a hole: `None` when there is none.
    holes: Option<Box<Holes>>,
}

/// The ranges a stream holds beyond a hole, and since when the hole is open.
#[derive(Debug)]
struct Holes {
    len: u8,
    /// Sorted, disjoint, all starting after `Held::filled`; the first `len` are used.
    ahead: [Span; MAX_AHEAD],
    /// Capture time the current hole opened, or [`NO_HOLE`].
    since: Nanos,
}

/// The state of a stream that holds nothing: what a new `Held` starts as, and what an idle
/// stream reads (`NOTHING_HELD`).
const EMPTY_HELD: Held = Held {
    buf: Vec::new(),
    filled: 0,
    holes: None,
};

static NOTHING_HELD: Held = EMPTY_HELD;

impl Default for Held {
    fn default() -> Self {
        EMPTY_HELD
    }
}

impl Held {
    fn ahead(&self) -> &[Span] {
        self.holes.as_deref().map_or(&[], |h| {
            h.ahead.get(..usize::from(h.len)).unwrap_or_default()
        })
    }

    fn ahead_len(&self) -> usize {
        self.ahead().len()
    }

    /// Keeps the first `n` of `ranges` as the ranges held beyond a hole (none: no hole).
    fn set_ahead(&mut self, ranges: [Span; MAX_AHEAD], n: usize) {
        let len = n.min(MAX_AHEAD) as u8;
        match (&mut self.holes, len) {
            (_, 0) => self.holes = None,
            (Some(h), _) => {
                h.ahead = ranges;
                h.len = len;
            }
            (None, _) => {
                self.holes = Some(Box::new(Holes {
                    len,
                    ahead: ranges,
                    since: NO_HOLE,
                }));
            }
        }
    }

    fn filled(&self) -> usize {
        self.filled as usize
    }

    fn set_filled(&mut self, n: usize) {
        self.filled = off(n);
    }

    fn hole_since(&self) -> Option<Nanos> {
        self.holes
            .as_deref()
            .map(|h| h.since)
            .filter(|&t| t != NO_HOLE)
    }

    /// Records when the current hole opened (`NO_HOLE`: forget it); nothing without a hole.
    fn set_hole_since(&mut self, ts: Nanos) {
        if let Some(h) = self.holes.as_deref_mut() {
            h.since = ts;
        }
    }

    fn buffered(&self) -> usize {
        self.ahead().last().map_or(self.filled(), |s| s.end())
    }

    fn can_hold_ahead(&self, start: usize, end: usize) -> bool {
        self.ahead_len() < MAX_AHEAD
            || self
                .ahead()
                .iter()
                .any(|s| start <= s.end() && end >= s.start())
    }

    /// Records `[start, end)` as received and extends the contiguous prefix over held ranges.
    fn mark(&mut self, start: usize, end: usize) {
        let mut span = Span::new(start, end);
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
        // A range that now touches the prefix joins it.
        let mut joined = 0;
        for s in kept.get(..n).unwrap_or_default() {
            if s.start > self.filled {
                break;
            }
            self.filled = self.filled.max(s.end);
            joined += 1;
        }
        kept.copy_within(joined.., 0);
        self.set_ahead(kept, n - joined);
    }

    /// Drops `n` bytes from the front of the buffer.
    fn consume(&mut self, n: usize) {
        let end = self.buffered();
        if n < end {
            self.buf.copy_within(n..end, 0);
        }
        self.buf.truncate(end.saturating_sub(n));
        self.set_filled(self.filled().saturating_sub(n));
        let mut kept = [Span::default(); MAX_AHEAD];
        let mut held = 0;
        for s in self.ahead().iter().filter(|s| s.end() > n) {
            if let Some(slot) = kept.get_mut(held) {
                *slot = Span::new(s.start().saturating_sub(n), s.end() - n);
                held += 1;
            }
        }
        self.set_ahead(kept, held);
        // Skipping may have run into held data: the prefix now starts at 0.
        if self.filled == 0 {
            self.mark(0, 0);
        }
    }
}

/// The largest capacity of a stream (its top bit says whether the stream has started).
pub const MAX_CAPACITY: usize = (1 << 31) - 1;

/// Set in [`Reassembler`]'s `cap` once the stream knows its position.
const STARTED: u32 = 1 << 31;

/// One direction of one TCP connection. See the module documentation for its rules.
///
/// 16 bytes: two live in every tracked flow's slot (an `Option<u32>` base and a `usize`
/// capacity made it 24).
#[derive(Debug)]
pub struct Reassembler {
    /// Buffer and bookkeeping, only while something is held.
    held: Option<Box<Held>>,
    /// Sequence number of the next byte to offer (the buffer's first), once started.
    base: u32,
    /// The most bytes the buffer may hold, and [`STARTED`].
    cap: u32,
}

impl Reassembler {
    /// A stream whose buffer holds at most `capacity` bytes (at most [`MAX_CAPACITY`]).
    pub fn new(capacity: usize) -> Reassembler {
        Reassembler {
            held: None,
            base: 0,
            cap: u32::try_from(capacity.min(MAX_CAPACITY)).unwrap_or(0),
        }
    }

    pub fn capacity(&self) -> usize {
        (self.cap & !STARTED) as usize
    }

    /// Sequence number of the next byte to offer; `None` before the stream knows its position.
    fn base(&self) -> Option<u32> {
        self.started().then_some(self.base)
    }

    /// Tells the stream where its bytes start (the SYN's sequence number + 1), before the first
    /// segment, so that segments arriving ahead of the first one are held.
    pub fn start(&mut self, seq: u32) {
        if !self.started() {
            self.base = seq;
            self.cap |= STARTED;
        }
    }

    /// True once the stream knows its position.
    pub fn started(&self) -> bool {
        self.cap & STARTED != 0
    }

    fn held(&self) -> &Held {
        self.held.as_deref().unwrap_or(&NOTHING_HELD)
    }

    /// Bytes held waiting for the rest of a unit or for a hole to fill.
    pub fn buffered(&self) -> usize {
        self.held().buffered()
    }

    /// Bytes of buffer allocated now.
    pub fn allocated(&self) -> usize {
        self.held().buf.capacity()
    }

    /// Returns the buffer to the budget (the flow ended).
    pub fn release(&mut self, budget: &mut Budget) {
        if let Some(h) = self.held.take() {
            budget.give(h.buf.capacity());
        }
    }

    /// Feeds one segment: `seq` is the TCP sequence number of `payload[0]`, `ts` its capture time.
    /// What the stream counts goes to `stats` (the caller's, so that an idle stream keeps none).
    pub fn push(
        &mut self,
        mut seq: u32,
        mut data: &[u8],
        ts: Nanos,
        budget: &mut Budget,
        stats: &mut StreamStats,
        sink: &mut dyn Sink,
    ) {
        self.start(seq);
        if self.held().ahead_len() > 0
            && self
                .held()
                .hole_since()
                .is_some_and(|t| ts.saturating_sub(t) > HOLE_TIMEOUT)
        {
            self.abandon_hole(usize::MAX, stats, sink);
            self.drain(sink);
        }
        while let Some((rel, cut)) = self.locate(seq, data, stats) {
            seq = seq.wrapping_add(cut as u32);
            data = data.get(cut..).unwrap_or_default();
            let taken = if rel == 0 && self.buffered() == 0 {
                // Nothing held: offer the segment in place, keep only an unfinished tail.
                let used = sink.data(data);
                self.advance(used);
                let Some(tail) = data.get(used..).filter(|t| !t.is_empty()) else {
                    return;
                };
                let stored = self.store(0, tail, budget);
                if stored == 0 {
                    // No room for the unfinished unit: it is lost.
                    stats.overflows += 1;
                    self.lose_front(tail.len(), stats, sink);
                    used + tail.len()
                } else {
                    used + stored
                }
            } else {
                let stored = self.store(rel, data, budget);
                if stored == 0 {
                    // No room: give up on the oldest hole. The base moves forward, so `rel`
                    // shrinks on every retry and the loop ends.
                    if rel <= self.held().filled() {
                        stats.overflows += 1;
                    }
                    self.abandon_hole(rel, stats, sink);
                    continue;
                }
                if let Some(h) = self.held.as_deref_mut() {
                    if rel > h.filled() && h.hole_since().is_none() {
                        h.set_hole_since(ts.max(NO_HOLE + 1));
                    }
                }
                self.drain(sink);
                stored
            };
            seq = seq.wrapping_add(taken as u32);
            data = data.get(taken..).unwrap_or_default();
        }
        self.shrink(budget);
        debug_assert!(
            self.held
                .as_deref()
                .is_none_or(|h| h.buf.len() == h.buffered()),
            "the buffer ends where the last held range ends"
        );
    }

    /// Where `data` (starting at sequence number `seq`) goes: its offset from the buffer start
    /// and how many leading bytes are already held or consumed (counted as duplicates).
    fn locate(&self, seq: u32, data: &[u8], stats: &mut StreamStats) -> Option<(usize, usize)> {
        if data.is_empty() {
            return None;
        }
        let base = self.base()?;
        let filled = self.held().filled();
        // Signed distance modulo 2^32: negative is behind the consumed point.
        let offset = seq.wrapping_sub(base) as i32;
        let (rel, behind) = match usize::try_from(offset) {
            Ok(rel) => (rel, 0),
            Err(_) => (0, offset.unsigned_abs() as usize),
        };
        let cut = behind.saturating_add(filled.saturating_sub(rel));
        if cut >= data.len() {
            stats.duplicate_bytes += data.len() as u64;
            return None;
        }
        stats.duplicate_bytes += cut as u64;
        Some((rel.max(filled), cut))
    }

    /// Copies what fits of `data` to buffer offset `rel`; returns how many bytes were taken (0
    /// when there is no room, no free range slot, or no budget).
    fn store(&mut self, rel: usize, data: &[u8], budget: &mut Budget) -> usize {
        let cap = self.capacity();
        if rel >= cap {
            return 0;
        }
        let n = data.len().min(cap - rel);
        let held = self.held();
        let beyond_window = rel + n > held.filled().saturating_add(AHEAD_WINDOW);
        if rel > held.filled() && (beyond_window || !held.can_hold_ahead(rel, rel + n)) {
            return 0;
        }
        if !self.grow(rel + n, budget) {
            return 0;
        }
        let Some(h) = self.held.as_deref_mut() else {
            return 0;
        };
        let Some(src) = data.get(..n) else {
            return 0;
        };
        // The buffer's length is where its last held byte ends: bytes are appended, not
        // written over zeros laid down first (the zeroing cost as much as the copy). A hole
        // before `rel` is zero-filled; it is never read before a segment fills it.
        if rel > h.buf.len() {
            h.buf.resize(rel, 0);
        }
        let over = h.buf.len().min(rel + n) - rel;
        let (Some((src_over, src_new)), Some(dst)) =
            (src.split_at_checked(over), h.buf.get_mut(rel..rel + over))
        else {
            return 0;
        };
        dst.copy_from_slice(src_over);
        h.buf.extend_from_slice(src_new);
        h.mark(rel, rel + n);
        n
    }

    /// Makes room in the buffer for at least `len` bytes (its capacity; the bytes are appended
    /// by `store`), drawing the growth from the budget.
    fn grow(&mut self, len: usize, budget: &mut Budget) -> bool {
        let had = self.held().buf.capacity();
        if had >= len {
            return true;
        }
        // A first buffer takes what it holds (rounded to 16 bytes): most streams that hold
        // anything hold one unfinished unit until the flow ends. A buffer that grows again
        // doubles. Not `clamp`: it panics on a capacity below MIN_ALLOC.
        let want = if had == 0 {
            len.div_ceil(16).saturating_mul(16)
        } else {
            len.next_power_of_two()
        };
        let want = want.max(MIN_ALLOC).min(self.capacity().max(len));
        let more = want - had.min(want);
        if !budget.take(more) {
            return false;
        }
        // Only now, with the budget's room, does the stream get its bookkeeping.
        let h = self.held.get_or_insert_with(Box::default);
        h.buf.reserve_exact(want - h.buf.len());
        // The allocator may round up: account for what it really gave.
        let got = h.buf.capacity() - had;
        if got > more {
            budget.used = budget.used.saturating_add(got - more);
            budget.peak = budget.peak.max(budget.used);
        } else {
            budget.give(more - got);
        }
        true
    }

    /// Frees the buffer and its bookkeeping when it holds nothing (a unit completed), and gives
    /// back most of a buffer that holds less than a quarter of its size (a large unit completed
    /// and a small one is unfinished): a stream keeps at most twice what it holds, not the most
    /// it ever held. On the generated benchmark capture, the streams holding an unfinished unit
    /// at the end held 5 MB in 17 MB of buffers before (README, Benchmarks).
    fn shrink(&mut self, budget: &mut Budget) {
        let Some(h) = self.held.as_deref_mut() else {
            return;
        };
        let held = h.buffered();
        if held == 0 {
            self.release(budget);
            return;
        }
        let fits = held.next_power_of_two().max(MIN_ALLOC);
        let had = h.buf.capacity();
        if had >= fits.saturating_mul(4) {
            h.buf.shrink_to(fits.saturating_mul(2));
            budget.give(had.saturating_sub(h.buf.capacity()));
        }
    }

    /// Offers what the contiguous prefix holds and compacts the buffer.
    fn drain(&mut self, sink: &mut dyn Sink) {
        let Some(h) = self.held.as_deref() else {
            return;
        };
        if h.filled == 0 {
            return;
        }
        let prefix = h.buf.get(..h.filled()).unwrap_or_default();
        let used = sink.data(prefix);
        self.consume(used);
    }

    /// Drops `n` bytes of sequence space from the front of the buffer (some possibly not
    /// received yet, when the sink skips).
    fn consume(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(h) = self.held.as_deref_mut() {
            h.consume(n);
        }
        self.advance(n);
    }

    fn advance(&mut self, n: usize) {
        if self.started() {
            self.base = self.base.wrapping_add(n as u32);
        }
    }

    /// An unfinished unit of `n` bytes at the front could not be kept: skip it as lost.
    fn lose_front(&mut self, n: usize, stats: &mut StreamStats, sink: &mut dyn Sink) {
        stats.gaps += 1;
        self.advance(n);
        sink.gap();
    }

    /// Gives up waiting for the bytes before the first held range (or before `rel` when nothing
    /// is held): drops them and tells the sink; the caller offers what follows.
    fn abandon_hole(&mut self, rel: usize, stats: &mut StreamStats, sink: &mut dyn Sink) {
        stats.gaps += 1;
        let resume = self
            .held()
            .ahead()
            .first()
            .map_or(rel, |s| s.start().min(rel));
        if let Some(h) = self.held.as_deref_mut() {
            h.filled = 0;
            h.set_hole_since(NO_HOLE);
        }
        self.consume(resume);
        sink.gap();
    }

    /// Gives up on the current hole now (e.g. when the caller knows the data is lost) and
    /// offers what was held beyond it.
    pub fn skip_hole(&mut self, budget: &mut Budget, stats: &mut StreamStats, sink: &mut dyn Sink) {
        if self.held().ahead_len() == 0 {
            return;
        }
        self.abandon_hole(usize::MAX, stats, sink);
        self.drain(sink);
        self.shrink(budget);
    }
}

/// Smallest buffer allocation (it doubles as the unit grows).
const MIN_ALLOC: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes whole lines; keeps a line without its end for later.
    #[derive(Default)]
    struct LineSink {
        lines: Vec<Vec<u8>>,
    }

    impl Sink for LineSink {
        fn data(&mut self, bytes: &[u8]) -> usize {
            let mut used = 0;
            while let Some(end) = bytes
                .get(used..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            {
                self.lines.push(bytes[used..used + end].to_vec());
                used += end + 1;
            }
            used
        }

        fn gap(&mut self) {}
    }

    /// A stream of up to 16 KiB, a budget of 1 MiB, and a sink of lines.
    fn stream() -> (Reassembler, Budget, StreamStats, LineSink) {
        (
            Reassembler::new(16 * 1024),
            Budget::new(1 << 20),
            StreamStats::default(),
            LineSink::default(),
        )
    }

    #[test]
    fn a_stream_keeps_at_most_twice_what_it_holds() {
        let (mut r, mut budget, mut stats, mut sink) = stream();
        let mut seq = 1000u32;
        let mut send = |r: &mut Reassembler, b: &mut Budget, s: &mut LineSink, data: &[u8]| {
            r.push(seq, data, 0, b, &mut stats, s);
            seq = seq.wrapping_add(data.len() as u32);
        };
        // A 3000-byte line arrives in three segments: the stream holds it whole. Its first
        // buffer is what the first segment needs (rounded to 16); then it doubles.
        send(&mut r, &mut budget, &mut sink, &[b'a'; 1000]);
        assert_eq!(r.allocated(), 1008);
        send(&mut r, &mut budget, &mut sink, &[b'a'; 1000]);
        assert_eq!(r.allocated(), 2048);
        send(&mut r, &mut budget, &mut sink, &[b'a'; 1000]);
        assert_eq!(r.buffered(), 3000);
        assert!(r.allocated() >= 3000);
        assert_eq!(budget.used, r.allocated());
        // Its end, and 100 bytes of the next line: the buffer shrinks to twice the next power
        // of two of what it holds, not what it once held.
        let mut tail = b"\n".to_vec();
        tail.extend_from_slice(&[b'b'; 100]);
        send(&mut r, &mut budget, &mut sink, &tail);
        assert_eq!(sink.lines.len(), 1);
        assert_eq!(sink.lines[0].len(), 3000);
        assert_eq!(r.buffered(), 100);
        assert_eq!(r.allocated(), 256, "2 x 128 for 100 bytes held");
        assert_eq!(budget.used, 256, "the budget got the rest back");
        assert_eq!(budget.peak, 4096);
        // The line goes on growing: the buffer grows with it again.
        send(&mut r, &mut budget, &mut sink, &[b'b'; 900]);
        assert_eq!(r.buffered(), 1000);
        assert_eq!(r.allocated(), 1024);
        send(&mut r, &mut budget, &mut sink, b"\n");
        assert_eq!(sink.lines.len(), 2);
        assert_eq!(sink.lines[1], vec![b'b'; 1000]);
        assert_eq!((r.buffered(), r.allocated(), budget.used), (0, 0, 0));
    }

    #[test]
    fn capacity_and_position_share_a_word_without_mixing() {
        let (mut budget, mut stats, mut sink) = (
            Budget::new(1 << 20),
            StreamStats::default(),
            LineSink::default(),
        );
        let mut r = Reassembler::new(100);
        assert_eq!((r.capacity(), r.started()), (100, false));
        // A sequence number with its top bit set is a position, not the flag.
        r.start(0xffff_fff0);
        assert_eq!(
            (r.capacity(), r.started(), r.base()),
            (100, true, Some(0xffff_fff0))
        );
        r.start(5);
        assert_eq!(r.base(), Some(0xffff_fff0), "the first start holds");
        // Across the wrap: 20 bytes, a line of 9 and 10 held.
        r.push(
            0xffff_fff0,
            b"012345678\nabcdefghij",
            0,
            &mut budget,
            &mut stats,
            &mut sink,
        );
        assert_eq!(sink.lines, vec![b"012345678".to_vec()]);
        assert_eq!(r.base(), Some(0xffff_fffa));
        assert_eq!((r.buffered(), r.capacity()), (10, 100));
        // The capacity still bounds what is held: 95 more bytes of the line do not fit.
        r.push(4, &[b'x'; 95], 0, &mut budget, &mut stats, &mut sink);
        assert_eq!(stats.overflows, 1);
        assert_eq!(r.capacity(), 100);
        // Capacities past what the word holds are cut to MAX_CAPACITY, not wrapped.
        let big = Reassembler::new(usize::MAX);
        assert_eq!((big.capacity(), big.started()), (MAX_CAPACITY, false));
        // A capacity below the smallest allocation holds what fits, without a panic.
        let mut tiny = Reassembler::new(8);
        tiny.push(1, b"abcdefghijkl", 0, &mut budget, &mut stats, &mut sink);
        assert!(tiny.buffered() <= 8);
    }

    #[test]
    fn what_a_stream_holds_stays_small() {
        // 120 bytes with `usize` offsets and an `Option` for the hole's time, 72 with the ranges
        // held beyond a hole in place.
        assert!(std::mem::size_of::<Held>() <= 40);
        assert!(std::mem::size_of::<Holes>() <= 48);
        assert!(std::mem::size_of::<Reassembler>() <= 16);
    }

    #[test]
    fn ranges_beyond_a_hole_take_room_only_while_there_is_one() {
        let (mut r, mut budget, mut stats, mut sink) = stream();
        let held = |r: &Reassembler| r.held.as_deref().map(|h| (h.filled(), h.ahead().to_vec()));
        // An unfinished line in order: held, no hole.
        r.push(100, b"ab", 5, &mut budget, &mut stats, &mut sink);
        assert_eq!(held(&r), Some((2, vec![])));
        assert!(r.held.as_deref().is_some_and(|h| h.holes.is_none()));
        // Two bytes missing, then two ranges beyond them: a hole, open since the first.
        r.push(104, b"ef", 7, &mut budget, &mut stats, &mut sink);
        r.push(108, b"ij", 9, &mut budget, &mut stats, &mut sink);
        assert_eq!(held(&r), Some((2, vec![Span::new(4, 6), Span::new(8, 10)])));
        assert_eq!(r.held().hole_since(), Some(7));
        // The first hole fills: the prefix runs on to the second, which stays open.
        r.push(102, b"cd", 11, &mut budget, &mut stats, &mut sink);
        assert_eq!(held(&r), Some((6, vec![Span::new(8, 10)])));
        assert_eq!(r.held().hole_since(), Some(7));
        // The last hole fills with the end of the line: what is held beyond it is the next
        // line's start, and no hole is left to keep.
        r.push(106, b"g\n", 13, &mut budget, &mut stats, &mut sink);
        assert_eq!(sink.lines, vec![b"abcdefg".to_vec()]);
        assert_eq!(held(&r), Some((2, vec![])));
        assert!(r.held.as_deref().is_some_and(|h| h.holes.is_none()));
        assert_eq!(r.held().hole_since(), None);
        // A new hole: its time is its own.
        r.push(113, b"\n", 17, &mut budget, &mut stats, &mut sink);
        assert_eq!(held(&r), Some((2, vec![Span::new(5, 6)])));
        assert_eq!(r.held().hole_since(), Some(17));
        // The hole fills and the line ends: nothing held, nothing allocated.
        r.push(110, b"klm", 19, &mut budget, &mut stats, &mut sink);
        assert_eq!(sink.lines.last(), Some(&b"ijklm".to_vec()));
        assert!(r.held.is_none(), "{:?}", held(&r));
    }

    #[test]
    fn a_small_unfinished_unit_takes_a_small_buffer() {
        let (mut r, mut budget, mut stats, mut sink) = stream();
        r.push(1, b"one\ntwo", 0, &mut budget, &mut stats, &mut sink);
        assert_eq!(r.buffered(), 3);
        assert_eq!(r.allocated(), MIN_ALLOC);
        assert_eq!(budget.used, MIN_ALLOC);
        r.push(8, b"\n", 0, &mut budget, &mut stats, &mut sink);
        assert_eq!(sink.lines, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(budget.used, 0);
    }

    /// Segments of `stream` from cut points, each sent once, some pairs swapped, some sent
    /// again and some sent again joined with their neighbour (a retransmission that covers
    /// held and new bytes).
    fn deliveries(stream: &[u8], cuts: &[usize], plan: &[u8]) -> Vec<(usize, usize)> {
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        bounds.extend([0, stream.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < segs.len() {
            let how = plan.get(i).copied().unwrap_or(0) % 5;
            match (how, segs.get(i + 1)) {
                (1, Some(&next)) => {
                    out.extend([next, segs[i]]);
                    i += 2;
                    continue;
                }
                (2, Some(&next)) => out.extend([next, (segs[i].0, next.1)]),
                (3, _) => out.extend([segs[i], segs[i]]),
                (4, _) if i > 0 => out.extend([segs[i], (segs[i - 1].0, segs[i].1)]),
                _ => out.push(segs[i]),
            }
            i += 1;
        }
        out
    }

    proptest::proptest! {
        /// Whatever the order and overlap of the segments (within one hole at a time), the
        /// lines offered are the stream's lines, byte for byte, and nothing is lost.
        #[test]
        fn reordered_and_overlapping_segments_give_the_stream_back(
            lines in proptest::collection::vec(proptest::collection::vec(b'a'..=b'z', 0..300), 1..20),
            cuts in proptest::collection::vec(0usize..10_000, 0..40),
            plan in proptest::collection::vec(0u8..5, 0..40),
            isn in proptest::prelude::any::<u32>(),
        ) {
            let bytes: Vec<u8> = lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
            let (mut r, mut budget, mut stats, mut sink) = stream();
            r.start(isn);
            for (a, b) in deliveries(&bytes, &cuts, &plan) {
                let seq = isn.wrapping_add(a as u32);
                r.push(seq, &bytes[a..b], 0, &mut budget, &mut stats, &mut sink);
            }
            proptest::prop_assert_eq!(&sink.lines, &lines);
            proptest::prop_assert_eq!((stats.gaps, stats.overflows), (0, 0));
            proptest::prop_assert_eq!((r.buffered(), r.allocated(), budget.used), (0, 0, 0));
        }
    }
}
