//! The analysis side of a live run: one [`Analyzer`] with its [`Intervals`], or (`--threads N`)
//! the shard reader (analysing a share itself) and N-1 workers, each with its own. The live loop
//! drives either through [`Engine`].

use crate::analyze::{Analyzer, Config, EventSink};
use crate::interval::{Ended, Intervals, Window};
use crate::packet::{Nanos, RawPacket};
use crate::shard::{LiveShards, WorkerFailed};

/// What the live loop needs of the analysis.
pub trait Engine {
    /// Analyses a frame; returns its checked capture time.
    fn packet(&mut self, raw: &RawPacket<'_>) -> Result<Nanos, WorkerFailed>;
    /// Adds a warning to the report.
    fn warn(&mut self, message: String);
    /// A quiet interface: capture time is now `ts`; expire what is idle then.
    fn sweep_idle(&mut self, ts: Nanos) -> Result<(), WorkerFailed>;
    /// Retires expectations that expired long before capture time `ts`.
    fn retire_followups(&mut self, ts: Nanos) -> Result<(), WorkerFailed>;
    /// A `stats` event (only a run with `--events`, which is not sharded, has any).
    fn stats_event(&mut self, now: Nanos, value: &serde_json::Value);
    /// Ends an interval whose frames span `window`.
    fn tick(&mut self, window: Window) -> Result<Ended, WorkerFailed>;
    /// Ends the run, the last interval spanning `window`.
    fn finish(self: Box<Self>, window: Window) -> Result<Ended, WorkerFailed>;
}

/// The engine for `config` with `threads` workers. Events go out in the order one analyzer makes
/// them, so a run with events has one analysis thread whatever `threads` says; firewall rules
/// are gathered by every worker and merged.
pub fn start(
    config: Config,
    threads: usize,
    interface: &str,
    events: Option<Box<dyn EventSink>>,
) -> Box<dyn Engine> {
    if threads > 1 && events.is_none() {
        let mut shards = LiveShards::start(config, threads);
        shards.begin_file(interface);
        return Box::new(shards);
    }
    let mut a = Analyzer::new(config);
    a.begin_file(interface);
    if let Some(sink) = events {
        a.set_events(sink);
    }
    let mut intervals = Intervals::new();
    intervals.begin(&mut a);
    Box::new(Single { a, intervals })
}

/// One analyzer on the analysis thread.
struct Single {
    a: Analyzer,
    intervals: Intervals,
}

impl Engine for Single {
    #[inline]
    fn packet(&mut self, raw: &RawPacket<'_>) -> Result<Nanos, WorkerFailed> {
        Ok(self.a.packet(raw))
    }

    fn warn(&mut self, message: String) {
        self.a.warn(message);
    }

    fn sweep_idle(&mut self, ts: Nanos) -> Result<(), WorkerFailed> {
        self.a.sweep_idle(ts);
        Ok(())
    }

    fn retire_followups(&mut self, ts: Nanos) -> Result<(), WorkerFailed> {
        self.a.retire_followups(ts);
        Ok(())
    }

    fn stats_event(&mut self, now: Nanos, value: &serde_json::Value) {
        self.a.stats_event(now, value);
    }

    fn tick(&mut self, window: Window) -> Result<Ended, WorkerFailed> {
        let (interval, totals) = self.intervals.tick(&mut self.a, window);
        Ok(Ended {
            interval,
            totals,
            durations: self.intervals.ended_durations().to_vec(),
        })
    }

    fn finish(self: Box<Self>, window: Window) -> Result<Ended, WorkerFailed> {
        let Single { a, mut intervals } = *self;
        let mut totals = a.finish();
        let interval = intervals.finish(&mut totals, window);
        Ok(Ended {
            interval,
            totals,
            durations: intervals.ended_durations().to_vec(),
        })
    }
}

impl Engine for LiveShards {
    #[inline]
    fn packet(&mut self, raw: &RawPacket<'_>) -> Result<Nanos, WorkerFailed> {
        LiveShards::packet(self, raw)
    }

    fn warn(&mut self, message: String) {
        LiveShards::warn(self, message);
    }

    fn sweep_idle(&mut self, ts: Nanos) -> Result<(), WorkerFailed> {
        LiveShards::sweep_idle(self, ts)
    }

    fn retire_followups(&mut self, ts: Nanos) -> Result<(), WorkerFailed> {
        LiveShards::retire_followups(self, ts)
    }

    fn stats_event(&mut self, _now: Nanos, _value: &serde_json::Value) {}

    fn tick(&mut self, window: Window) -> Result<Ended, WorkerFailed> {
        LiveShards::tick(self, window)
    }

    fn finish(self: Box<Self>, window: Window) -> Result<Ended, WorkerFailed> {
        LiveShards::finish(*self, window)
    }
}
