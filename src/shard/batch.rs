//! The unit of work between the reader and a worker: a few hundred frames in one byte arena,
//! with the reader's instructions placed between them. Batches go back to the reader once done,
//! so a run in steady state allocates none.

use std::sync::Arc;

use crate::classify::Expectation;
use crate::packet::{Nanos, RawPacket};

/// Frames per batch before it is sent.
pub const BATCH_PACKETS: usize = 256;
/// Arena bytes per batch before it is sent (a batch of jumbo frames goes out early).
pub const BATCH_BYTES: usize = 512 * 1024;

/// One frame in a batch: where its bytes are in the arena, and its place in the whole run.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Checked capture time (the reader's [`CaptureClock`](crate::flow::CaptureClock)).
    ts: Nanos,
    link_type: u32,
    wire_len: u32,
    start: usize,
    end: usize,
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
}

/// Frames and marks for one worker.
#[derive(Debug, Default)]
pub struct Batch {
    arena: Vec<u8>,
    slots: Vec<Slot>,
    /// (index of the frame the mark comes before, mark); sorted by index.
    marks: Vec<(usize, Mark)>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch {
            arena: Vec::with_capacity(BATCH_BYTES / 4),
            slots: Vec::with_capacity(BATCH_PACKETS),
            marks: Vec::new(),
        }
    }

    /// Copies a frame (with its checked time) into the batch.
    pub fn push(&mut self, raw: &RawPacket<'_>, seq: u64) {
        let start = self.arena.len();
        self.arena.extend_from_slice(raw.data);
        self.slots.push(Slot {
            ts: raw.ts,
            link_type: raw.link_type,
            wire_len: raw.wire_len,
            start,
            end: self.arena.len(),
            seq,
        });
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
    }

    /// Calls `f` with each frame and each mark, in order.
    pub fn replay(&self, mut f: impl FnMut(Item<'_, '_>)) {
        let mut marks = self.marks.iter().peekable();
        for (i, s) in self.slots.iter().enumerate() {
            while let Some((_, m)) = marks.next_if(|(at, _)| *at <= i) {
                f(Item::Mark(m));
            }
            let data = self.arena.get(s.start..s.end).unwrap_or_default();
            let raw = RawPacket {
                ts: s.ts,
                link_type: s.link_type,
                data,
                wire_len: s.wire_len,
            };
            f(Item::Frame(&raw, s.seq));
        }
        for (_, m) in marks {
            f(Item::Mark(m));
        }
    }
}

/// A frame (with its number in the run) or a mark, as [`Batch::replay`] hands them out.
pub enum Item<'b, 'a> {
    Frame(&'b RawPacket<'a>, u64),
    Mark(&'b Mark),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_frames_and_marks_in_order() {
        let mut b = Batch::new();
        let raw = |ts, data| RawPacket {
            ts,
            link_type: 1,
            data,
            wire_len: 60,
        };
        b.mark(Mark::Expire(1));
        b.push(&raw(5, b"ab"), 1);
        b.mark(Mark::Sweep(2, 2));
        b.push(&raw(6, b"cde"), 2);
        b.mark(Mark::Sweep(3, 3));
        let mut seen = Vec::new();
        b.replay(|item| match item {
            Item::Frame(r, seq) => seen.push(format!("{seq}:{}:{}", r.ts, r.data.len())),
            Item::Mark(m) => seen.push(format!("{m:?}")),
        });
        assert_eq!(
            seen,
            ["Expire(1)", "1:5:2", "Sweep(2, 2)", "2:6:3", "Sweep(3, 3)"]
        );
        b.clear();
        assert!(b.is_empty());
    }
}
