//! A TPKT stream on its own: the [`Reassembler`] with the TPKT framer, yielding whole TPKTs of one
//! direction from `(sequence number, payload)` pairs. Trackers combine the two themselves; this
//! is the pair in one value, for tests and the fuzz target.

use super::framing::{drive, FrameStats, Framer, Tpkt};
use super::reassembly::{Budget, Reassembler, Sink, StreamStats};

/// Default reassembly buffer per direction.
pub const DEFAULT_CAPACITY: usize = 32 * 1024;
/// Smallest and largest accepted buffer sizes. 64 KiB holds any TPKT.
pub const MIN_CAPACITY: usize = 1024;
pub const MAX_CAPACITY: usize = 64 * 1024;

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

/// Reassembles the TPKTs of one TCP direction.
#[derive(Debug)]
pub struct TpktStream {
    framer: Tpkt,
    frames: FrameStats,
    stream: Reassembler,
    budget: Budget,
    counts: StreamStats,
}

impl Default for TpktStream {
    fn default() -> Self {
        Self::new()
    }
}

struct Frames<'a, F: FnMut(&[u8])> {
    framer: &'a mut Tpkt,
    stats: &'a mut FrameStats,
    on_frame: F,
}

impl<F: FnMut(&[u8])> Sink for Frames<'_, F> {
    fn data(&mut self, bytes: &[u8]) -> usize {
        let on_frame = &mut self.on_frame;
        drive(self.framer, self.stats, bytes, &mut |f| {
            if !f.is_empty() {
                on_frame(f);
            }
            true
        })
    }

    fn gap(&mut self) {
        self.framer.gap();
    }
}

impl TpktStream {
    /// A stream with a [`DEFAULT_CAPACITY`] buffer (allocated on first need).
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A stream whose buffer holds at most `capacity` bytes, clamped to
    /// [`MIN_CAPACITY`]..=[`MAX_CAPACITY`]. Frames longer than the buffer are skipped.
    pub fn with_capacity(capacity: usize) -> Self {
        let cap = capacity.clamp(MIN_CAPACITY, MAX_CAPACITY);
        TpktStream {
            framer: Tpkt {
                synced: false,
                ..Tpkt::new(cap)
            },
            frames: FrameStats::default(),
            stream: Reassembler::new(cap),
            budget: Budget::new(usize::MAX),
            counts: StreamStats::default(),
        }
    }

    /// The buffer's capacity.
    pub fn capacity(&self) -> usize {
        self.framer.cap as usize
    }

    /// Tells the stream where its byte stream starts (the SYN's sequence number + 1), before
    /// the first segment: the first byte is then known to start a frame.
    pub fn start(&mut self, seq: u32) {
        if !self.stream.started() {
            self.stream.start(seq);
            self.framer.synced = true;
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> TpktStats {
        TpktStats {
            frames: self.frames.units,
            garbage_bytes: self.frames.garbage_bytes,
            duplicate_bytes: self.counts.duplicate_bytes,
            oversize_frames: self.frames.oversize,
            gaps: self.counts.gaps,
        }
    }

    /// Bytes held waiting for the rest of a frame or for a hole to fill.
    pub fn buffered(&self) -> usize {
        self.stream.buffered()
    }

    /// Bytes of buffer allocated now (0 when nothing is held).
    pub fn allocated(&self) -> usize {
        self.stream.allocated()
    }

    /// Feeds one segment: `seq` is the TCP sequence number of `payload[0]`. Every TPKT the
    /// segment completes is handed to `on_frame` (its payload, header removed).
    pub fn push(&mut self, seq: u32, payload: &[u8], on_frame: impl FnMut(&[u8])) {
        let mut sink = Frames {
            framer: &mut self.framer,
            stats: &mut self.frames,
            on_frame,
        };
        self.stream.push(
            seq,
            payload,
            0,
            &mut self.budget,
            &mut self.counts,
            &mut sink,
        );
    }

    /// Gives up on the current hole now and frames what was held beyond it.
    pub fn skip_hole(&mut self, on_frame: impl FnMut(&[u8])) {
        let mut sink = Frames {
            framer: &mut self.framer,
            stats: &mut self.frames,
            on_frame,
        };
        self.stream
            .skip_hole(&mut self.budget, &mut self.counts, &mut sink);
    }
}

#[cfg(test)]
#[path = "tpkt_stream_tests.rs"]
mod tests;
