//! Live monitoring: a libpcap source in front of the same analysis as `analyze`, a report every
//! interval behind it (NDJSON or a refreshed table), Prometheus metrics on the side.
//!
//! Three parts: the capture thread (`capture`) reads libpcap and hands frames over in batches
//! ([`frames`]); the analysis side (`engine`: one [`Analyzer`](crate::analyze::Analyzer), or
//! the shard reader and its workers) analyses them; this module's loop ends the intervals and
//! writes the reports. A test drives the same loop with built frames ([`run_frames`]).
//!
//! The analyzer only ever sees packet time. The wall clock decides when an interval ends and, on a
//! quiet interface, how far capture time has moved since the last packet (so idle flows still
//! expire and memory stays bounded).

mod capture;
mod engine;
pub mod frames;
mod http;
mod metrics;
mod report;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::analyze::Config;
use crate::interval::Ended;
use crate::output::events::{EventHandle, EventStream, EventWriter, QUEUE_LINES};
use crate::packet::Nanos;
use crate::shard::WorkerFailed;

pub use crate::interval::{Intervals, Window};
pub use capture::{list_interfaces, CaptureConfig, CaptureError, InterfaceInfo};
pub use frames::{FrameReceiver, FrameSender};
pub use report::{CaptureView, IntervalView, LiveReport, Render, TotalsView};

use capture::LiveCapture;
use engine::Engine;
use frames::Message;
use metrics::Metrics;

/// Settings of a live run.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub capture: CaptureConfig,
    pub analysis: Config,
    pub interval: Duration,
    /// Analysis threads (`--threads`): above 1, the shard reader and N-1 workers analyse (unless
    /// `--events` asks for one analyzer); the capture has its own thread either way.
    pub threads: usize,
    /// Stop after this long (wall clock); run until a signal otherwise.
    pub duration: Option<Duration>,
    pub render: Render,
    pub metrics: Option<SocketAddr>,
    /// `--events`: where, and the Community ID seed.
    pub events: Option<(crate::output::events::Dest, u16)>,
}

/// Why a live run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("--metrics: cannot serve on {addr}")]
    Metrics { addr: SocketAddr, source: io::Error },
    #[error("installing the signal handlers: {0}")]
    Signals(io::Error),
    #[error("starting a thread: {0}")]
    Thread(io::Error),
    #[error("--events: {0}")]
    Events(io::Error),
    #[error(transparent)]
    Analysis(#[from] WorkerFailed),
    #[error(transparent)]
    Output(#[from] io::Error),
}

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// `--duration` elapsed or SIGINT/SIGTERM: a complete final report.
    Stopped,
    /// The interface failed (went away, ...); the final report covers what was read.
    CaptureFailed,
}

/// Captures until `--duration` or SIGINT/SIGTERM, writing a report every interval and a final one.
/// `ready` is called once the capture (and the metrics endpoint) are up.
///
/// libpcap is read on its own thread (`exflow-capture`), which hands frames over in batches;
/// this thread analyses them (or, with `--threads N`, analyses a share and routes the rest to
/// N-1 workers).
pub fn run(
    config: LiveConfig,
    out: &mut dyn Write,
    ready: impl FnOnce(),
) -> Result<Ending, LiveError> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(LiveError::Signals)?;
    }
    let mut cap = LiveCapture::open(&config.capture)?;
    let metrics = serve_metrics(&config)?;
    let waking = Arc::new(AtomicBool::new(true));
    spawn_waker(cap.waker(), Arc::clone(&waking)).map_err(LiveError::Thread)?;
    let (tx, rx) = frames::channel();
    let deadline = config.duration.map(|d| Instant::now() + d);
    let capture = match capture::spawn(cap, tx, Arc::clone(&stop), deadline) {
        Ok(t) => t,
        Err(e) => {
            waking.store(false, Ordering::Relaxed);
            return Err(LiveError::Thread(e));
        }
    };
    ready();
    let result = analyse(&config, rx, metrics, out);
    // The capture thread ends at its next look (the waker makes one every 100 ms) or at once
    // if it is waiting to hand over frames nobody reads any more.
    stop.store(true, Ordering::Relaxed);
    let _ = capture.join();
    waking.store(false, Ordering::Relaxed);
    result
}

/// [`run`] without libpcap: analyses what a [`FrameSender`] hands over (a test's built frames)
/// until its `end`, with the same intervals, reports and metrics. Intervals end on the wall clock
/// as in `run`, and where the sender asks ([`FrameSender::tick`]).
pub fn run_frames(
    config: &LiveConfig,
    rx: FrameReceiver,
    out: &mut dyn Write,
) -> Result<Ending, LiveError> {
    let metrics = serve_metrics(config)?;
    analyse(config, rx, metrics, out)
}

fn serve_metrics(config: &LiveConfig) -> Result<Option<Metrics>, LiveError> {
    let Some(addr) = config.metrics else {
        return Ok(None);
    };
    Metrics::serve(addr, &config.analysis.catalogue)
        .map(Some)
        .map_err(|source| LiveError::Metrics { addr, source })
}

/// The analysis side: frames from `rx` through the engine, a report every interval, the final
/// report when the capture ends.
fn analyse(
    config: &LiveConfig,
    rx: FrameReceiver,
    metrics: Option<Metrics>,
    out: &mut dyn Write,
) -> Result<Ending, LiveError> {
    let hup = Arc::new(AtomicBool::new(false));
    let (sink, events) = match &config.events {
        Some((dest, seed)) => {
            // Capture never waits for the event writer: a full queue drops (and counts) events.
            let writer = EventWriter::open(dest, QUEUE_LINES, true).map_err(LiveError::Events)?;
            signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
                .map_err(LiveError::Signals)?;
            let handle = writer.handle();
            let sink: Box<dyn crate::analyze::EventSink> =
                Box::new(EventStream::new(writer, *seed));
            (Some(sink), Some(handle))
        }
        None => (None, None),
    };
    let engine = engine::start(
        config.analysis.clone(),
        config.threads,
        &config.capture.interface,
        sink,
    );
    let mut run = Run {
        window: Window::default(),
        seq: 0,
        run_start: wall_secs(),
        start: wall_secs(),
        capture_prev: CaptureView::default(),
        stats: CaptureView::default(),
        metrics,
        render: config.render,
        events,
        events_dropped_prev: 0,
        hup,
        interval: config.interval,
        next_tick: Instant::now() + config.interval,
        clock: None,
    };
    run.drive(engine, &rx, out)
}

/// Interrupts the capture's read every [`WAKE_EVERY`] so the capture thread sees the clock and
/// the signals on a quiet interface, until `on` is cleared.
fn spawn_waker(waker: pcap::BreakLoop, on: Arc<AtomicBool>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("exflow-waker".into())
        .spawn(move || {
            while on.load(Ordering::Relaxed) {
                std::thread::sleep(WAKE_EVERY);
                waker.breakloop();
            }
        })?;
    Ok(())
}

/// How often a blocked read is interrupted.
const WAKE_EVERY: Duration = Duration::from_millis(100);

/// Moves capture time on a quiet interface by the wall-clock time since its last packet, and
/// expires what is idle at that time. With packets arriving the table sweeps itself; old
/// expectations are retired either way.
fn advance_clock(
    a: &mut dyn Engine,
    clock: Option<(Nanos, Instant)>,
    window: Window,
    now: Instant,
) -> Result<Option<(Nanos, Instant)>, WorkerFailed> {
    if let Some(last) = window.last_ts {
        a.retire_followups(last)?;
        return Ok(Some((last, now)));
    }
    let Some((ts, seen)) = clock else {
        return Ok(None);
    };
    let idle = i64::try_from((now - seen).as_nanos()).unwrap_or(i64::MAX);
    a.sweep_idle(ts.saturating_add(idle))?;
    Ok(Some((ts, seen)))
}

/// The state of the analysis side between messages, and of the periodic output.
struct Run {
    window: Window,
    seq: u64,
    run_start: f64,
    start: f64,
    capture_prev: CaptureView,
    /// The capture's counters as the capture thread last sent them.
    stats: CaptureView,
    metrics: Option<Metrics>,
    render: Render,
    events: Option<EventHandle>,
    events_dropped_prev: u64,
    hup: Arc<AtomicBool>,
    interval: Duration,
    next_tick: Instant,
    /// Capture time of the newest packet, and when (monotonic) it was last known to be current.
    clock: Option<(Nanos, Instant)>,
}

impl Run {
    /// Reads `rx` until the capture ends; then the final report.
    fn drive(
        &mut self,
        mut engine: Box<dyn Engine>,
        rx: &FrameReceiver,
        out: &mut dyn Write,
    ) -> Result<Ending, LiveError> {
        let ending = loop {
            let wait = self.next_tick.saturating_duration_since(Instant::now());
            match rx.next(wait) {
                Some(Message::Frames(batch, stats)) => {
                    self.stats = stats;
                    for raw in batch.frames() {
                        let ts = engine.packet(&raw)?;
                        self.window.note(ts);
                    }
                    rx.recycle(batch);
                }
                Some(Message::Idle(stats)) => self.stats = stats,
                Some(Message::Tick) => self.tick(&mut *engine, Instant::now(), out)?,
                Some(Message::End(None, stats)) => {
                    self.stats = stats;
                    break Ending::Stopped;
                }
                Some(Message::End(Some(why), stats)) => {
                    self.stats = stats;
                    engine.warn(why);
                    break Ending::CaptureFailed;
                }
                Some(Message::Lost) => {
                    engine.warn("the capture thread stopped".to_string());
                    break Ending::CaptureFailed;
                }
                None => {}
            }
            self.look(&mut *engine, out)?;
        };
        self.stats_event(&mut *engine);
        let ended = engine.finish(self.window)?;
        self.emit(&ended, true, out)?;
        Ok(ending)
    }

    /// A look at the wall clock: a SIGHUP to pass on, an interval to end.
    fn look(&mut self, engine: &mut dyn Engine, out: &mut dyn Write) -> Result<(), LiveError> {
        if self.hup.swap(false, Ordering::Relaxed) {
            if let Some(h) = &self.events {
                h.reopen();
            }
        }
        let now = Instant::now();
        if now < self.next_tick {
            return Ok(());
        }
        while self.next_tick <= now {
            self.next_tick += self.interval;
        }
        self.tick(engine, now, out)
    }

    fn tick(
        &mut self,
        engine: &mut dyn Engine,
        now: Instant,
        out: &mut dyn Write,
    ) -> Result<(), LiveError> {
        self.clock = advance_clock(engine, self.clock, self.window, now)?;
        self.stats_event(engine);
        let ended = engine.tick(self.window)?;
        Ok(self.emit(&ended, false, out)?)
    }

    /// A `stats` event: the interval's capture counters and the events dropped so far.
    fn stats_event(&mut self, a: &mut dyn Engine) {
        let Some(h) = &self.events else { return };
        let stats = self.stats;
        let dropped = h.dropped();
        let p = self.capture_prev;
        let value = serde_json::json!({
            "capture": {
                "received": stats.received.saturating_sub(p.received),
                "dropped": stats.dropped.saturating_sub(p.dropped),
                "if_dropped": stats.if_dropped.saturating_sub(p.if_dropped),
            },
            "capture_total": stats,
            "events": { "dropped": dropped },
        });
        let now = (wall_secs() * 1e9) as Nanos;
        a.stats_event(now, &value);
        if let Some(m) = &self.metrics {
            m.events_dropped(dropped.saturating_sub(self.events_dropped_prev));
        }
        self.events_dropped_prev = dropped;
    }

    fn emit(&mut self, ended: &Ended, last: bool, out: &mut dyn Write) -> io::Result<()> {
        self.seq += 1;
        let end = wall_secs();
        let bounds = IntervalView {
            seq: self.seq,
            run_start: self.run_start,
            start: self.start,
            end,
            last,
        };
        let (stats, p) = (self.stats, self.capture_prev);
        let delta = CaptureView {
            received: stats.received.saturating_sub(p.received),
            dropped: stats.dropped.saturating_sub(p.dropped),
            if_dropped: stats.if_dropped.saturating_sub(p.if_dropped),
        };
        let r = LiveReport::new(&ended.interval, &ended.totals, bounds, delta, stats);
        if let Some(m) = &self.metrics {
            m.update(&r, &ended.interval, &ended.durations);
        }
        self.capture_prev = stats;
        self.start = end;
        self.window = Window::default();
        report::write(out, &r, self.render)
    }
}

/// Wall-clock seconds since the Unix epoch, microsecond precision (the interval bounds).
fn wall_secs() -> f64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_micros() as f64) / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::RETIRE_AFTER;
    use crate::packet::RawPacket;
    use crate::synth::{app, Dir, Scenario};

    /// On a busy interface (packets every interval) expectations are retired too, not only when
    /// the interface goes quiet.
    #[test]
    fn a_busy_interval_retires_old_expectations() {
        const S: Nanos = 1_000_000_000;
        let mut sc = Scenario::with_seed(3);
        let callback: SocketAddr = "10.0.1.6:3002".parse().unwrap();
        let subscribe =
            app::rvp_subscribe("im", "/instmsg/aliases/bob", "http://im/a", callback, 60);
        let ok = app::rvp_subscribe_ok(7, 60);
        let t0 = 1_000_000_000 * S;
        sc.tcp_session(
            "10.0.1.6:1100".parse().unwrap(),
            "10.0.0.10:80".parse().unwrap(),
            t0,
            &[(Dir::ToServer, &subscribe), (Dir::ToClient, &ok)],
        );
        let frames = sc.into_frames();
        for threads in [1, 3] {
            let mut e = engine::start(Config::default(), threads, "lo", None);
            for f in &frames {
                e.packet(&RawPacket {
                    ts: f.ts,
                    link_type: 1,
                    data: &f.data,
                    wire_len: f.data.len() as u32,
                })
                .unwrap();
            }
            let mut window = Window::default();
            window.note(t0 + 60 * S + RETIRE_AFTER / 2);
            advance_clock(&mut *e, None, window, Instant::now()).unwrap();
            let s = e.tick(Window::default()).unwrap().totals;
            assert_eq!(
                s.followups.len(),
                1,
                "not old enough yet ({threads} threads)"
            );
            let mut window = Window::default();
            window.note(t0 + 61 * S + RETIRE_AFTER);
            advance_clock(&mut *e, None, window, Instant::now()).unwrap();
            let s = e.tick(Window::default()).unwrap().totals;
            assert!(s.followups.is_empty(), "{:?}", s.followups);
            assert_eq!(s.followups_retired.values().sum::<u64>(), 1);
        }
    }

    /// On a quiet interface capture time moves with the wall clock, and idle flows expire in
    /// every worker (the sweep is a mark in each worker's stream).
    #[test]
    fn a_quiet_interface_expires_idle_flows() {
        let mut sc = Scenario::with_seed(4);
        let t0 = 1_000_000_000_000_000_000;
        for i in 0..6u16 {
            let client: SocketAddr = format!("10.0.2.{}:5353", i + 1).parse().unwrap();
            sc.udp(client, "10.0.0.53:53".parse().unwrap(), t0, b"q");
        }
        let frames = sc.into_frames();
        for threads in [1, 3] {
            let mut e = engine::start(Config::default(), threads, "lo", None);
            let mut window = Window::default();
            for f in &frames {
                let raw = RawPacket {
                    ts: f.ts,
                    link_type: 1,
                    data: &f.data,
                    wire_len: f.data.len() as u32,
                };
                window.note(e.packet(&raw).unwrap());
            }
            let now = Instant::now();
            let clock = advance_clock(&mut *e, None, window, now).unwrap();
            let first = e.tick(window).unwrap();
            assert_eq!(first.totals.flows_expired, 0, "{threads}: not idle yet");
            // Three minutes later (wall clock), nothing arrived: past the UDP timeout.
            let later = now + Duration::from_secs(180);
            advance_clock(&mut *e, clock, Window::default(), later).unwrap();
            let quiet = e.tick(Window::default()).unwrap();
            assert_eq!(quiet.totals.flows_expired, 6, "{threads} threads");
            assert_eq!(quiet.interval.flows_expired, 6, "{threads} threads");
            let last = e.finish(Window::default()).unwrap();
            assert_eq!(last.totals.flows_expired, 6, "{threads} threads");
        }
    }
}
