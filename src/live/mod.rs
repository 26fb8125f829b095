//! Live monitoring: a libpcap source in front of the same [`Analyzer`] as `analyze`, a report every
//! interval behind it (NDJSON or a refreshed table), Prometheus metrics on the side.
//!
//! The analyzer only ever sees packet time. The wall clock decides when an interval ends and, on a
//! quiet interface, how far capture time has moved since the last packet (so idle flows still
//! expire and memory stays bounded).

mod capture;
mod http;
mod metrics;
mod report;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::analyze::{Analyzer, Config};
use crate::output::events::{EventHandle, EventStream, EventWriter, QUEUE_LINES};
use crate::packet::Nanos;

pub use crate::interval::{Intervals, Window};
pub use capture::{list_interfaces, CaptureConfig, CaptureError, InterfaceInfo};
pub use report::{CaptureView, IntervalView, LiveReport, Render, TotalsView};

use capture::{LiveCapture, Read};
use metrics::Metrics;

/// Settings of a live run.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub capture: CaptureConfig,
    pub analysis: Config,
    pub interval: Duration,
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

/// Packets between two looks at the wall clock when capture time does not move.
const CHECK_EVERY_PACKETS: u32 = 4096;
/// Capture time between two looks at the wall clock.
const CHECK_EVERY_NS: Nanos = 10_000_000;

/// Captures until `--duration` or SIGINT/SIGTERM, writing a report every interval and a final one.
/// `ready` is called once the capture (and the metrics endpoint) are up.
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
    let metrics = match config.metrics {
        Some(addr) => Some(
            Metrics::serve(addr, &config.analysis.catalogue)
                .map_err(|source| LiveError::Metrics { addr, source })?,
        ),
        None => None,
    };
    let waking = Arc::new(AtomicBool::new(true));
    spawn_waker(cap.waker(), Arc::clone(&waking)).map_err(LiveError::Thread)?;
    ready();
    let mut a = Analyzer::new(config.analysis.clone());
    a.begin_file(&config.capture.interface);
    let hup = Arc::new(AtomicBool::new(false));
    let events = match &config.events {
        Some((dest, seed)) => {
            // Capture never waits for the event writer: a full queue drops (and counts) events.
            let writer = EventWriter::open(dest, QUEUE_LINES, true).map_err(LiveError::Events)?;
            signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
                .map_err(LiveError::Signals)?;
            let handle = writer.handle();
            a.set_events(Box::new(EventStream::new(writer, *seed)));
            Some(handle)
        }
        None => None,
    };
    let mut run = Run {
        intervals: Intervals::new(),
        window: Window::default(),
        seq: 0,
        run_start: wall_secs(),
        start: wall_secs(),
        capture_prev: CaptureView::default(),
        metrics,
        render: config.render,
        events,
        events_dropped_prev: 0,
    };
    run.intervals.begin(&mut a);
    let started = Instant::now();
    let deadline = config.duration.map(|d| started + d);
    let mut next_tick = started + config.interval;
    // Capture time of the newest packet, and when (monotonic) it was last known to be current.
    let mut clock: Option<(Nanos, Instant)> = None;
    let mut next_check: Nanos = Nanos::MIN;
    let mut since_check = 0u32;
    let mut ending = Ending::Stopped;
    loop {
        let mut look = false;
        match cap.next() {
            Ok(Read::Packet(raw)) => {
                let ts = a.packet(&raw);
                run.window.note(ts);
                since_check += 1;
                if ts >= next_check || since_check >= CHECK_EVERY_PACKETS {
                    next_check = ts.saturating_add(CHECK_EVERY_NS);
                    since_check = 0;
                    look = true;
                }
            }
            Ok(Read::Idle) => look = true,
            Err(e) => {
                a.warn(e.to_string());
                ending = Ending::CaptureFailed;
                break;
            }
        }
        if !look {
            continue;
        }
        let now = Instant::now();
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d) {
            break;
        }
        if hup.swap(false, Ordering::Relaxed) {
            if let Some(h) = &run.events {
                h.reopen();
            }
        }
        if now < next_tick {
            continue;
        }
        while next_tick <= now {
            next_tick += config.interval;
        }
        clock = advance_clock(&mut a, clock, run.window, now);
        let stats = cap.stats();
        run.tick(&mut a, stats, out)?;
    }
    waking.store(false, Ordering::Relaxed);
    let stats = cap.stats();
    run.stats_event(&mut a, stats);
    let mut totals = a.finish();
    let interval = run.intervals.finish(&mut totals, run.window);
    run.emit(&interval, &totals, stats, true, out)?;
    Ok(ending)
}

/// Interrupts the capture's read every [`WAKE_EVERY`] so the loop sees the clock and the signals
/// on a quiet interface, until `on` is cleared.
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
    a: &mut Analyzer,
    clock: Option<(Nanos, Instant)>,
    window: Window,
    now: Instant,
) -> Option<(Nanos, Instant)> {
    if let Some(last) = window.last_ts {
        a.retire_followups(last);
        return Some((last, now));
    }
    let (ts, seen) = clock?;
    let idle = i64::try_from((now - seen).as_nanos()).unwrap_or(i64::MAX);
    a.sweep_idle(ts.saturating_add(idle));
    Some((ts, seen))
}

/// The state of the periodic output.
struct Run {
    intervals: Intervals,
    window: Window,
    seq: u64,
    run_start: f64,
    start: f64,
    capture_prev: CaptureView,
    metrics: Option<Metrics>,
    render: Render,
    events: Option<EventHandle>,
    events_dropped_prev: u64,
}

impl Run {
    fn tick(
        &mut self,
        a: &mut Analyzer,
        stats: CaptureView,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        self.stats_event(a, stats);
        let (interval, totals) = self.intervals.tick(a, self.window);
        self.emit(&interval, &totals, stats, false, out)
    }

    /// A `stats` event: the interval's capture counters and the events dropped so far.
    fn stats_event(&mut self, a: &mut Analyzer, stats: CaptureView) {
        let Some(h) = &self.events else { return };
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

    fn emit(
        &mut self,
        interval: &crate::analyze::Analysis,
        totals: &crate::analyze::Analysis,
        stats: CaptureView,
        last: bool,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        self.seq += 1;
        let end = wall_secs();
        let bounds = IntervalView {
            seq: self.seq,
            run_start: self.run_start,
            start: self.start,
            end,
            last,
        };
        let p = self.capture_prev;
        let delta = CaptureView {
            received: stats.received.saturating_sub(p.received),
            dropped: stats.dropped.saturating_sub(p.dropped),
            if_dropped: stats.if_dropped.saturating_sub(p.if_dropped),
        };
        let r = LiveReport::new(interval, totals, bounds, delta, stats);
        if let Some(m) = &self.metrics {
            m.update(&r, interval, self.intervals.ended_durations());
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
        let mut a = Analyzer::new(Config::default());
        for f in sc.into_frames() {
            a.packet(&RawPacket {
                ts: f.ts,
                link_type: 1,
                data: &f.data,
                wire_len: f.data.len() as u32,
            });
        }
        let mut window = Window::default();
        window.note(t0 + 60 * S + RETIRE_AFTER / 2);
        advance_clock(&mut a, None, window, Instant::now());
        assert_eq!(a.snapshot().followups.len(), 1, "not old enough yet");
        let mut window = Window::default();
        window.note(t0 + 61 * S + RETIRE_AFTER);
        advance_clock(&mut a, None, window, Instant::now());
        let s = a.snapshot();
        assert!(s.followups.is_empty(), "{:?}", s.followups);
        assert_eq!(s.followups_retired.values().sum::<u64>(), 1);
    }
}
