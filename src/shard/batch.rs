//! The unit of work between the reader and a worker: a few hundred frames, decoded by the reader,
//! their transport payloads in one byte arena, with the reader's instructions placed between them. Batches go back to the reader once done,
//! so a run in steady state allocates none.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use crate::source::MappedFile;

use super::worker::TickReply;
use crate::classify::{Expectation, FlowTable};
use crate::decode::SkipReason;
use crate::flow::{FlowHash, PREFETCH_AHEAD as AHEAD};
use crate::interval::Window;
use crate::packet::{Nanos, Packet};
use crate::summary::Timing;

/// Frames per batch before it is sent. Each hand-over can wake a thread; with 256 a two-thread
/// run of the 5 M-frame benchmark capture spent 1.5 s CPU in the reader, with 2 048 1.0 s (one
/// run each, `/proc/thread-self/schedstat`). With 1 024 and four batches queued (`QUEUE`) the
/// frames in flight, their batches and the file pages they read in place, take 2.9 MiB less at
/// the peak of the generated capture than 2 048 and eight, in the same time (best of five
/// alternating runs: 1.05 against 1.01 s, then 1.14 against 1.28 s; the mix 0.52 s both).
pub const BATCH_PACKETS: usize = 1024;
/// Arena bytes per batch before it is sent (a batch of jumbo frames goes out early).
pub const BATCH_BYTES: usize = 512 * 1024;

/// One frame in a batch: its decoded fields (the payload is `start..end` of the arena, or of the
/// batch's mapped file when `mapped`) or why it did not decode, and its place in the whole run.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Checked capture time (the reader's [`CaptureClock`](crate::flow::CaptureClock)).
    ts: Nanos,
    wire_len: u32,
    decoded: Result<Packet<'static>, SkipReason>,
    start: usize,
    end: usize,
    mapped: bool,
    /// Position of the frame in the run (1-based), which orders announcements across workers.
    seq: u64,
}

/// Signalled expectations one worker announced, as shared with the others: (worker, its id
/// there, the expectation).
pub type Shared = Arc<Vec<(usize, u32, Expectation)>>;

/// What the reader tells every worker at one point of the capture.
#[derive(Clone, Debug)]
pub enum Mark {
    /// Expire tracker sessions at this capture time (every 65 536 frames, as one analyzer does).
    Expire(Nanos),
    /// Sweep the flow table at this capture time (the table's own sweep rule, run on every
    /// frame), before frame number `.1` of the run.
    Sweep(Nanos, u64),
    /// An epoch ends: report the expectations announced since the last one, then adopt these
    /// (the others' of the epoch before).
    Epoch(Shared),
    /// The input ended: adopt these, the last ones, before the flows are flushed.
    Final(Shared),
    /// Live: an interval whose frames span the window ends, the run's newest packet at the
    /// given time; answer with its figures.
    Tick(Window, Option<Nanos>, SyncSender<TickReply>),
    /// Live, a quiet interface: capture time has moved to `.0` without packets; expire what is
    /// idle then (before frame number `.1`).
    SweepIdle(Nanos, u64),
    /// Live: retire expectations that expired long before this capture time.
    Retire(Nanos),
    /// Live: the last interval's frames span this window (it ends with the input).
    LastWindow(Window),
}

/// Frames and marks for one worker.
#[derive(Debug, Default)]
pub struct Batch {
    arena: Vec<u8>,
    /// The mapped capture file the payloads of `mapped` slots are in: they are not copied.
    map: Option<Arc<MappedFile>>,
    slots: Vec<Slot>,
    /// (index of the frame the mark comes before, mark); sorted by index.
    marks: Vec<(usize, Mark)>,
    /// On its way back: the histogram values of the flows the worker ended meanwhile, for the
    /// reader to record (`summary::Summary::handed_on`): one set of histograms in the run, not
    /// one per worker (about 2.5 MiB each on the generated benchmark capture).
    pub timings: Vec<Timing>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch {
            arena: Vec::with_capacity(BATCH_BYTES / 4),
            map: None,
            slots: Vec::with_capacity(BATCH_PACKETS),
            marks: Vec::new(),
            timings: Vec::new(),
        }
    }

    /// Adds a frame at checked time `ts`, as decoded. Its payload is referred to where it lies in
    /// `map` (the file being read, if mapped; the map stays alive as long as the batch refers to
    /// it) and copied into the arena otherwise.
    pub(crate) fn push(
        &mut self,
        ts: Nanos,
        wire_len: u32,
        decoded: Result<&Packet<'_>, SkipReason>,
        seq: u64,
        map: Option<&Arc<MappedFile>>,
    ) {
        let (mut start, mut end, mut mapped) = (0, 0, false);
        let decoded = decoded.map(|p| {
            match map.and_then(|m| self.offset_in(m, p.payload)) {
                Some(at) => (start, end, mapped) = (at, at + p.payload.len(), true),
                None => {
                    start = self.arena.len();
                    self.arena.extend_from_slice(p.payload);
                    end = self.arena.len();
                }
            }
            detach(p)
        });
        self.slots.push(Slot {
            ts,
            wire_len,
            decoded,
            start,
            end,
            mapped,
            seq,
        });
    }

    /// Where `bytes` start in `map`, if they lie in it and the batch may refer to `map` (it
    /// refers to one map at most: frames of another file are copied).
    fn offset_in(&mut self, map: &Arc<MappedFile>, bytes: &[u8]) -> Option<usize> {
        let base = map.as_ptr() as usize;
        let at = (bytes.as_ptr() as usize).checked_sub(base)?;
        if at.checked_add(bytes.len())? > map.len() {
            return None;
        }
        match &self.map {
            Some(m) if Arc::ptr_eq(m, map) => {}
            Some(_) => return None,
            None => self.map = Some(Arc::clone(map)),
        }
        Some(at)
    }

    /// The mapped file the batch's payloads lie in, if any.
    pub(crate) fn map(&self) -> Option<&Arc<MappedFile>> {
        self.map.as_ref()
    }

    /// Places a mark after the frames pushed so far.
    pub fn mark(&mut self, m: Mark) {
        self.marks.push((self.slots.len(), m));
    }

    pub fn is_full(&self) -> bool {
        self.slots.len() >= BATCH_PACKETS || self.arena.len() >= BATCH_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.marks.is_empty()
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.arena.clear();
        self.slots.clear();
        self.marks.clear();
        self.map = None;
    }

    /// Calls `f` with each frame and each mark, in order; before each frame, with the decoded
    /// frame [`AHEAD`] frames on (and the first `AHEAD` before the first), payload left out.
    pub fn replay(&self, mut f: impl FnMut(Item<'_>)) {
        let mut marks = self.marks.iter().peekable();
        for (j, s) in self.slots.iter().enumerate().take(AHEAD) {
            if let Ok(p) = &s.decoded {
                f(Item::Ahead(p, j));
            }
        }
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(Ok(p)) = self.slots.get(i + AHEAD).map(|s| &s.decoded) {
                f(Item::Ahead(p, i + AHEAD));
            }
            while let Some((_, m)) = marks.next_if(|(at, _)| *at <= i) {
                f(Item::Mark(m));
            }
            let bytes: &[u8] = match (&self.map, s.mapped) {
                (Some(m), true) => m,
                _ => &self.arena,
            };
            let payload = bytes.get(s.start..s.end).unwrap_or_default();
            let mut decoded = s.decoded.map(|p| Packet { payload, ..p });
            f(Item::Frame(s.ts, s.wire_len, &mut decoded, s.seq));
        }
        for (_, m) in marks {
            f(Item::Mark(m));
        }
    }
}

/// The flow hashes of the frames a worker is about to analyse: each frame's index bucket is
/// prefetched [`AHEAD`] frames before it is analysed, the flow that bucket names half as many,
/// and the hash is handed to the table with the frame so it is computed once
/// ([`FlowTable::prefetch_packet`]; `analyze::Held` does the same for one thread).
#[derive(Default)]
pub(crate) struct Ahead {
    /// (frame number in the batch, hash), at the frame number modulo the length.
    ring: [(usize, Option<FlowHash>); 2 * AHEAD],
}

impl Ahead {
    /// Frame number `at` of the batch is [`AHEAD`] frames away.
    #[inline]
    pub(crate) fn frame(&mut self, flows: &FlowTable, at: usize, p: &Packet<'_>) {
        self.ring[at % (2 * AHEAD)] = (at, flows.prefetch_packet(p));
        if let Some(near) = at.checked_sub(AHEAD / 2) {
            if let Some(&(n, Some(hash))) = self.ring.get(near % (2 * AHEAD)) {
                if n == near {
                    flows.prefetch_flow(hash);
                }
            }
        }
    }

    /// The flow hash of frame number `at`, analysed next, if it was computed ahead.
    #[inline]
    pub(crate) fn hash(&self, at: usize) -> Option<FlowHash> {
        match self.ring.get(at % (2 * AHEAD)) {
            Some(&(n, hash)) if n == at => hash,
            _ => None,
        }
    }
}

/// A frame (checked time, wire length, decoded or not, number in the run) or a mark, as
/// [`Batch::replay`] hands them out.
pub enum Item<'b> {
    /// Borrowed, so the analysis reads it where it was built: a decoded frame is the largest
    /// value on the hot path, and passing it on by value copied it at every call.
    Frame(Nanos, u32, &'b mut Result<Packet<'b>, SkipReason>, u64),
    Mark(&'b Mark),
    /// A frame to come (its number in the batch, from 0), for prefetching: it comes before
    /// the frame [`AHEAD`] before it.
    Ahead(&'b Packet<'static>, usize),
}

/// The packet's fields without its payload (which the batch keeps in its arena).
fn detach(p: &Packet<'_>) -> Packet<'static> {
    Packet {
        ts: p.ts,
        wire_len: p.wire_len,
        proto: p.proto,
        src: p.src,
        dst: p.dst,
        tcp_flags: p.tcp_flags,
        seq: p.seq,
        ack: p.ack,
        window: p.window,
        payload: &[],
        unreachable: p.unreachable,
        fragment: p.fragment,
        icmp: p.icmp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_frames_and_marks_in_order() {
        let mut b = Batch::new();
        // An Ethernet/IPv4/UDP frame with a 3-byte payload.
        let mut frame = vec![0u8; 12];
        frame.extend([0x08, 0x00, 0x45, 0, 0, 31, 0, 0, 0, 0, 64, 17, 0, 0]);
        frame.extend([
            10, 0, 0, 1, 10, 0, 0, 2, 0x13, 0x88, 0x13, 0x89, 0, 11, 0, 0,
        ]);
        frame.extend(b"cde");
        let raw = crate::packet::RawPacket {
            ts: 6,
            link_type: 1,
            data: &frame,
            wire_len: 60,
        };
        let p = crate::decode::decode(&raw).unwrap();
        b.mark(Mark::Expire(1));
        b.push(5, 60, Err(SkipReason::NonIp), 1, None);
        b.mark(Mark::Sweep(2, 2));
        b.push(6, 60, Ok(&p), 2, None);
        b.mark(Mark::Sweep(3, 3));
        let mut seen = Vec::new();
        b.replay(|item| match item {
            Item::Frame(ts, _, d, seq) => seen.push(format!(
                "{seq}:{ts}:{:?}",
                d.as_ref().map(|p| (p.src.port, p.payload.to_vec()))
            )),
            Item::Mark(m) => seen.push(format!("{m:?}")),
            Item::Ahead(..) => {}
        });
        assert_eq!(
            seen,
            [
                "Expire(1)",
                "1:5:Err(NonIp)",
                "Sweep(2, 2)",
                "2:6:Ok((5000, [99, 100, 101]))",
                "Sweep(3, 3)"
            ]
        );
        b.clear();
        assert!(b.is_empty());
    }
}
