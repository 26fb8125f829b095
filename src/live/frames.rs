//! The hand-over from the capture thread to the analysis side: frames copied into reusable
//! batches (one byte arena each, as `shard::batch` does) sent over a bounded channel, and the
//! batches' way back to be filled again.
//!
//! Nothing here knows libpcap: the capture thread fills a [`FrameSender`] from the interface, a
//! test fills one from built frames, and the analysis side reads a [`FrameReceiver`] the same way
//! in both cases.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use crate::packet::{Nanos, RawPacket};

use super::report::CaptureView;

/// Frames per batch before it is sent.
pub const BATCH_FRAMES: usize = 256;
/// Arena bytes per batch before it is sent (a batch of jumbo frames goes out early).
pub const BATCH_BYTES: usize = 1 << 20;
/// Batches queued between the capture thread and the analysis side. When they are all full the
/// capture thread waits, the kernel's buffer takes the traffic, and what does not fit there is
/// libpcap's `dropped` counter.
pub const QUEUE: usize = 16;
/// Capture time a batch may span before it is sent, however few frames it holds: low-rate
/// traffic reaches the analysis within this (or the read timeout, whichever comes first).
pub const FLUSH_AFTER_NS: Nanos = 100_000_000;

/// One frame in a batch; its bytes are `arena[start..end]`.
#[derive(Clone, Copy, Debug)]
struct Slot {
    ts: Nanos,
    link_type: u32,
    wire_len: u32,
    start: usize,
    end: usize,
}

/// Copies of captured frames, in capture order.
#[derive(Debug, Default)]
pub struct FrameBatch {
    arena: Vec<u8>,
    slots: Vec<Slot>,
}

impl FrameBatch {
    pub fn new() -> FrameBatch {
        FrameBatch {
            arena: Vec::with_capacity(BATCH_BYTES / 4),
            slots: Vec::with_capacity(BATCH_FRAMES),
        }
    }

    /// Copies `raw` in.
    pub fn push(&mut self, raw: &RawPacket<'_>) {
        let start = self.arena.len();
        self.arena.extend_from_slice(raw.data);
        self.slots.push(Slot {
            ts: raw.ts,
            link_type: raw.link_type,
            wire_len: raw.wire_len,
            start,
            end: self.arena.len(),
        });
    }

    pub fn is_full(&self) -> bool {
        self.slots.len() >= BATCH_FRAMES || self.arena.len() >= BATCH_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Capture time of the first frame.
    fn first_ts(&self) -> Option<Nanos> {
        self.slots.first().map(|s| s.ts)
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.arena.clear();
        self.slots.clear();
    }

    /// The frames, in the order they were pushed.
    pub fn frames(&self) -> impl Iterator<Item = RawPacket<'_>> {
        self.slots.iter().map(|s| RawPacket {
            ts: s.ts,
            link_type: s.link_type,
            data: self.arena.get(s.start..s.end).unwrap_or_default(),
            wire_len: s.wire_len,
        })
    }
}

/// What the capture thread tells the analysis side.
#[derive(Debug)]
pub enum Message {
    /// Frames, and the capture's counters as last read.
    Frames(FrameBatch, CaptureView),
    /// Nothing arrived within the read timeout (what was pending went out before).
    Idle(CaptureView),
    /// End an interval here (tests: intervals at chosen points of the input instead of the wall
    /// clock's).
    Tick,
    /// The capture ended: stopped (`None`) or failed reading (`Some(why)`), with its final
    /// counters. Nothing follows.
    End(Option<String>, CaptureView),
    /// The capture side went away without an `End` (its thread panicked).
    Lost,
}

/// The capture side's end of the hand-over.
pub struct FrameSender {
    tx: SyncSender<Message>,
    free: Receiver<FrameBatch>,
    filling: FrameBatch,
    stats: CaptureView,
}

/// The analysis side's end of the hand-over.
pub struct FrameReceiver {
    rx: Receiver<Message>,
    back: SyncSender<FrameBatch>,
}

/// A bounded hand-over, and a bounded way back: it has room for every batch in flight (the
/// queue's, and the ones being filled and read), so a batch is only ever dropped there if the
/// capture side has gone.
pub fn channel() -> (FrameSender, FrameReceiver) {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let (back, free) = mpsc::sync_channel(QUEUE + 2);
    (
        FrameSender {
            tx,
            free,
            filling: FrameBatch::new(),
            stats: CaptureView::default(),
        },
        FrameReceiver { rx, back },
    )
}

/// The analysis side is gone; there is nobody to send to.
#[derive(Debug)]
pub struct Closed;

impl FrameSender {
    /// Adds a frame; sends the batch when it is full or spans [`FLUSH_AFTER_NS`] of capture time.
    pub fn push(&mut self, raw: &RawPacket<'_>) -> Result<(), Closed> {
        self.filling.push(raw);
        let old = self
            .filling
            .first_ts()
            .is_some_and(|t| raw.ts.saturating_sub(t) >= FLUSH_AFTER_NS);
        if self.filling.is_full() || old {
            self.flush()?;
        }
        Ok(())
    }

    /// Updates the capture counters sent along from now on.
    pub fn set_stats(&mut self, stats: CaptureView) {
        self.stats = stats;
    }

    /// Sends the partly filled batch, if any.
    pub fn flush(&mut self) -> Result<(), Closed> {
        if self.filling.is_empty() {
            return Ok(());
        }
        let next = self.free.try_recv().unwrap_or_else(|_| FrameBatch::new());
        let full = std::mem::replace(&mut self.filling, next);
        self.send(Message::Frames(full, self.stats))
    }

    /// Nothing arrived: sends what is pending, then says so.
    pub fn idle(&mut self) -> Result<(), Closed> {
        self.flush()?;
        self.send(Message::Idle(self.stats))
    }

    /// Sends what is pending, then asks for an interval to end there.
    pub fn tick(&mut self) -> Result<(), Closed> {
        self.flush()?;
        self.send(Message::Tick)
    }

    /// Sends what is pending and the end.
    pub fn end(mut self, failed: Option<String>) -> Result<(), Closed> {
        self.flush()?;
        self.send(Message::End(failed, self.stats))
    }

    /// Sends `m`, waiting while the queue is full: the analysis side is behind, and the
    /// kernel's buffer holds what arrives meanwhile (libpcap counts what it cannot).
    fn send(&mut self, m: Message) -> Result<(), Closed> {
        self.tx.send(m).map_err(|_| Closed)
    }
}

impl FrameReceiver {
    /// The next message, or `None` when none came within `wait`.
    pub fn next(&self, wait: Duration) -> Option<Message> {
        match self.rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Message::Lost),
        }
    }

    /// Gives a read batch back to be filled again.
    pub fn recycle(&self, mut b: FrameBatch) {
        b.clear();
        // The capture side may have ended (or, impossibly, have more batches than room): the
        // batch is then simply dropped.
        let _ = self.back.try_send(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(ts: Nanos, data: &[u8]) -> RawPacket<'_> {
        RawPacket {
            ts,
            link_type: 1,
            data,
            wire_len: data.len() as u32 + 4,
        }
    }

    #[test]
    fn a_partial_batch_goes_out_on_idle() {
        let (mut tx, rx) = channel();
        tx.push(&raw(5, b"abc")).unwrap();
        assert!(rx.next(Duration::ZERO).is_none(), "held until full or idle");
        tx.idle().unwrap();
        let Some(Message::Frames(b, _)) = rx.next(Duration::ZERO) else {
            panic!("frames first");
        };
        let got: Vec<_> = b
            .frames()
            .map(|f| (f.ts, f.data.to_vec(), f.wire_len))
            .collect();
        assert_eq!(got, [(5, b"abc".to_vec(), 7)]);
        assert!(matches!(rx.next(Duration::ZERO), Some(Message::Idle(_))));
    }

    #[test]
    fn a_batch_spanning_the_flush_time_goes_out_and_comes_back() {
        let (mut tx, rx) = channel();
        tx.push(&raw(0, b"a")).unwrap();
        tx.push(&raw(FLUSH_AFTER_NS, b"b")).unwrap();
        let Some(Message::Frames(b, _)) = rx.next(Duration::ZERO) else {
            panic!("sent on time");
        };
        assert_eq!(b.len(), 2);
        rx.recycle(b);
        tx.push(&raw(FLUSH_AFTER_NS + 1, b"c")).unwrap();
        tx.end(None).unwrap();
        let Some(Message::Frames(b, _)) = rx.next(Duration::ZERO) else {
            panic!("the rest");
        };
        assert_eq!(b.frames().next().map(|f| f.data), Some(&b"c"[..]));
        assert!(matches!(
            rx.next(Duration::ZERO),
            Some(Message::End(None, _))
        ));
    }
}
