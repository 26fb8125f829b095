//! Live mode's sharded analysis (`live --threads N`): the shard [`Reader`] routes the capture's
//! frames to N workers (itself one of them), each keeping its own interval figures; at each
//! interval's end the reader puts a tick mark in every worker's stream and merges their N
//! intervals and N totals the way `analyze` merges its workers' results.
//!
//! The quiet-interface clock advance and the retirement of old expectations are marks too, so
//! every worker does them at the same point of the capture. Each tick also ends an epoch: the
//! workers exchange their announcements at every interval's end, however quiet the interface.

use std::sync::mpsc;

use super::batch::Mark;
use super::worker::{Output, TickReply};
use super::{merge, Reader, WorkerFailed, MAX_THREADS};
use crate::analyze::{Config, Feed};
use crate::interval::{input_since, Ended, Window};
use crate::packet::{Nanos, RawPacket};
use crate::summary::{InputStats, Micros};

/// The analysis side of a sharded live run.
pub struct LiveShards {
    reader: Reader,
    /// The reader's input counters at the previous tick.
    input_mark: InputStats,
}

impl LiveShards {
    /// Starts `threads` workers (at most [`MAX_THREADS`]).
    pub fn start(config: Config, threads: usize) -> LiveShards {
        LiveShards {
            reader: Reader::start(config, threads.clamp(1, MAX_THREADS), true),
            input_mark: InputStats::default(),
        }
    }

    /// Names the input (the interface).
    pub fn begin_file(&mut self, name: &str) {
        Feed::begin_file(&mut self.reader, name);
    }

    /// Routes a frame; returns its checked capture time.
    #[inline]
    pub fn packet(&mut self, raw: &RawPacket<'_>) -> Result<Nanos, WorkerFailed> {
        let ts = self.reader.frame(raw);
        self.check()?;
        Ok(ts)
    }

    /// Adds a warning to the report.
    pub fn warn(&mut self, message: String) {
        self.reader.input.warnings.push(message);
    }

    /// A quiet interface: every worker expires what is idle at capture time `ts`.
    pub fn sweep_idle(&mut self, ts: Nanos) -> Result<(), WorkerFailed> {
        let before = self.reader.seq.saturating_add(1);
        self.reader.broadcast(Mark::SweepIdle(ts, before));
        self.check()
    }

    /// Every worker retires the expectations that expired long before capture time `ts`.
    pub fn retire_followups(&mut self, ts: Nanos) -> Result<(), WorkerFailed> {
        self.reader.broadcast(Mark::Retire(ts));
        self.check()
    }

    /// Ends an interval: two epochs, then a tick mark; merges the workers' answers.
    ///
    /// At the first epoch mark the workers report what they announced since the last one; at
    /// the second they adopt it. So every announcement made before the tick is in every worker
    /// before it, and a follow-up that opened in another worker after its announcement is
    /// counted under its service in this interval, not first as `unclassified` and then again.
    /// The second mark also lets go the flows the workers held back for those announcements
    /// (none ended between the two marks), so the totals count every ended flow, as one
    /// analyzer's do.
    pub fn tick(&mut self, window: Window) -> Result<Ended, WorkerFailed> {
        self.reader.epoch();
        self.reader.epoch();
        self.check()?;
        let n = self.reader.n;
        let (tx, rx) = mpsc::sync_channel(n);
        // The run's newest packet: open flows' firewall rules are judged at the run's time.
        let now = self.reader.input.last_ts;
        self.reader.broadcast(Mark::Tick(window, now, tx));
        self.reader.flush_all();
        let mut replies: Vec<TickReply> = Vec::with_capacity(n);
        for _ in 0..n {
            // Every worker answers, or drops its copy of the sender when it fails.
            match rx.recv() {
                Ok(r) => replies.push(r),
                Err(_) => break,
            }
        }
        self.check()?;
        if replies.len() < n {
            return Err(WorkerFailed {
                worker: 0,
                message: "a worker did not answer the interval's end".to_string(),
            });
        }
        replies.sort_by_key(|r| r.worker);
        let now = self.reader.input_now();
        let iv_input = input_since(&self.input_mark, &now, window);
        self.input_mark = now.clone();
        let mut intervals = Vec::with_capacity(n);
        let mut totals = Vec::with_capacity(n);
        let mut durations = Vec::new();
        for r in replies {
            add_durations(&mut durations, &r.durations);
            intervals.push(r.interval);
            totals.push(r.totals);
        }
        let config = &self.reader.config;
        Ok(Ended {
            interval: merge::merge(iv_input, intervals, config),
            totals: merge::merge(now, totals, config),
            durations,
        })
    }

    /// Ends the run, the last interval's frames spanning `window`.
    pub fn finish(mut self, window: Window) -> Result<Ended, WorkerFailed> {
        self.reader.broadcast(Mark::LastWindow(window));
        let (now, outputs, config) = self.reader.outputs()?;
        let iv_input = input_since(&self.input_mark, &now, window);
        let mut intervals = Vec::with_capacity(outputs.len());
        let mut durations = Vec::new();
        let mut totals = Vec::with_capacity(outputs.len());
        for mut o in outputs {
            let Some((interval, ended)) = o.last.take() else {
                return Err(WorkerFailed {
                    worker: 0,
                    message: "a worker ended without its last interval".to_string(),
                });
            };
            add_durations(&mut durations, &ended);
            intervals.push(Output {
                analysis: interval,
                announced_at: o.announced_at.clone(),
                copies: o.copies.clone(),
                last: None,
            });
            totals.push(o);
        }
        Ok(Ended {
            interval: merge::merge(iv_input, intervals, &config),
            totals: merge::merge(now, totals, &config),
            durations,
        })
    }

    /// The failure a worker reported, if any.
    fn check(&mut self) -> Result<(), WorkerFailed> {
        match &self.reader.failed {
            Some(f) => Err(WorkerFailed {
                worker: f.worker,
                message: f.message.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// Adds each service's histogram of `b` to `a`'s.
fn add_durations(a: &mut Vec<Micros>, b: &[Micros]) {
    for (i, h) in b.iter().enumerate() {
        match a.get_mut(i) {
            Some(t) => {
                let _ = t.add(h);
            }
            None => a.push(h.clone()),
        }
    }
}
