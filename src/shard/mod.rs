//! Sharded analysis (`--threads N`): one reader thread and N-1 worker threads, N analysis
//! workers in all, each owning an [`Analyzer`]; results merged into one [`Analysis`] equal to a
//! single analyzer's.
//!
//! - **Routing.** The reader checks each frame's time ([`CaptureClock`]), decodes it (once: the
//!   worker gets the decoded fields and the payload) and sends it to the worker its unordered IP address pair hashes to ([`route`]): both directions of a flow,
//!   its fragments, the ICMP errors quoting it and the follow-ups announced between the same two
//!   hosts (H.323, RVP, 1731) meet. Frames that do not decode go to worker 0, which counts them.
//! - **Worker 0 is the reader.** It analyses its share in place (no copy, no hand-over); since it
//!   reads and decodes every frame too, its share is smaller ([`route::share`]).
//! - **Time.** The reader runs the flow table's sweep rule and the trackers' 65 536-frame expiry
//!   over every frame and tells every worker when to sweep or expire ([`Mark`]), so a flow expires
//!   at the same capture time as in one analyzer, whichever worker holds it.
//! - **Batches.** Frames travel in batches of [`BATCH_PACKETS`](batch::BATCH_PACKETS) (one byte
//!   arena each) over bounded channels and come back to the reader to be reused. A payload in
//!   the mapped file is not copied: the batch keeps the map and the payload's place in it.
//! - **Announcements across workers.** Every [`EPOCH`] frames the reader puts an epoch mark in
//!   every worker's stream; at it each worker reports the signalled expectations it announced
//!   since the last mark, and adopts the ones the others reported at the mark before. The last
//!   ones are adopted before the flows are flushed. An endpoint the mapper handed out (any client)
//!   thus reaches every worker one to two epochs after it was announced; a flow that another
//!   worker opens in that window is not taken as its follow-up when it opens, only given its
//!   service when it ends ([`Trackers::classify_late`](crate::track::Trackers::classify_late),
//!   RPC endpoints). That is where results can differ from one analyzer.
//! - **Histograms**: the workers other than the reader hand their ended flows' durations and
//!   handshake times back with the batches, and the reader records them: one set of histograms
//!   in the run (not in live mode, where each worker reports its own intervals).
//! - **Merge**: counters add up; expectations are numbered in the order the run
//!   announced them, a worker's copy of another's expectation counts its flows on the original,
//!   and one address announced in two workers within its lifetime is one expectation (as a
//!   repeat is in one analyzer); flow records are sorted (first time, protocol, client, server,
//!   last time) and cut to their caps.
//! - **Live** (`live --threads N`): the same reader and workers, fed by the capture thread; each
//!   worker keeps interval figures and the reader merges them at every tick ([`LiveShards`]).

pub mod batch;
mod live;
mod merge;
pub mod route;
mod worker;

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::analyze::{Analysis, Analyzer, Completeness, Config, Feed};
use crate::flow::CaptureClock;
use crate::packet::RawPacket;
use crate::source::MappedFile;
use crate::summary::{FileStats, InputStats};
use batch::{Batch, Mark, Shared};
use route::SweepClock;
use worker::{Output, Reply, Worker};

pub use live::LiveShards;

/// Frames between two epoch marks (exchanges of announcements between workers). A worker holds
/// the flows that ended as nobody's follow-up, with their trackers, for two epochs: with 4 096
/// instead of 8 192 the two-thread peak of the real-traffic mix is about 4 MiB lower and that of
/// the generated capture 0.7 MiB, in the same time (best of five and of nine alternating runs).
pub const EPOCH: u64 = 4096;
/// Batches queued per worker: enough to ride out a slow batch, few enough that an epoch never
/// waits for a worker to catch up, and what is in flight stays small (four of 1 024 frames;
/// two were slower on the real-traffic mix, 0.56 against 0.52 s).
const QUEUE: usize = 4;
/// Most workers: beyond it the reader is the bottleneck on any machine measured.
pub const MAX_THREADS: usize = 64;

/// Most threads the default (`--threads` not given) uses: the reader reads, decodes and routes
/// every frame, about half of the CPU time of a two-thread run of the real-traffic benchmark, so
/// past about four threads it alone sets the pace (README, "Threads"; an estimate: only two cores
/// were measured).
pub const DEFAULT_MAX_THREADS: usize = 4;

/// How far behind the reader a mapped capture's pages may be given back in a run of `threads`
/// analysis threads. One thread reads next to nothing behind itself: its pages go as soon as
/// they are read (the few frames it decoded ahead, `analyze::read_ahead`, are at worst faulted
/// in again). Workers read the payloads of their queued frames in place: a full queue of batches
/// whose payloads were copied is `QUEUE` × [`BATCH_BYTES`] per worker, the lag given here (at
/// most the default). A batch of mapped payloads is [`BATCH_PACKETS`] frames however large, so
/// a full queue of them can span more; pages given back before a worker reads them are faulted
/// in again from the page cache, nothing worse. At `--threads 2` on the generated capture, five
/// runs each gave the same page faults (medians 75 075 and 75 715) with this lag and with 16 MiB,
/// and three runs each the same again with 2 MiB (four queued batches) and with 4 MiB (eight):
/// 74 200–74 704 and 74 279–74 817.
///
/// [`BATCH_BYTES`]: batch::BATCH_BYTES
/// [`BATCH_PACKETS`]: batch::BATCH_PACKETS
pub fn release_lag(threads: usize) -> usize {
    threads
        .saturating_sub(1)
        .saturating_mul(QUEUE)
        .saturating_mul(batch::BATCH_BYTES)
        .min(crate::source::ReadLimits::default().release_lag)
}

/// The default number of analysis threads: the available cores, at most [`DEFAULT_MAX_THREADS`].
pub fn default_threads() -> usize {
    cores().clamp(1, DEFAULT_MAX_THREADS)
}

/// The cores this process may run on.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A sharded run stopped because a worker failed.
#[derive(Debug, thiserror::Error)]
#[error("analysis worker {worker} failed: {message}")]
pub struct WorkerFailed {
    pub worker: usize,
    pub message: String,
}

/// [`analyze_files`](crate::analyze::analyze_files) with `threads` workers (1 is the single
/// analyzer, with no thread started). Firewall rule groups (`Config::firewall`) are gathered by
/// every worker as its flows end and merged.
pub fn analyze_files(
    paths: &[String],
    config: Config,
    threads: usize,
    on_progress: impl FnMut(&str, u64, u64, u64),
) -> Result<(Analysis, Completeness), WorkerFailed> {
    if threads <= 1 {
        return Ok(crate::analyze::analyze_files(paths, config, on_progress));
    }
    let read = config.read;
    let mut reader = Reader::start(config, threads.min(MAX_THREADS), false);
    let errors = crate::analyze::read_files(paths, read, &mut reader, on_progress);
    let analysis = reader.finish()?;
    let completeness = crate::analyze::completeness(&analysis, errors);
    Ok((analysis, completeness))
}

/// One worker as the reader sees it.
struct Link {
    tx: Option<SyncSender<Batch>>,
    filling: Batch,
    thread: Option<JoinHandle<Option<Output>>>,
}

/// The reader's side of a sharded run: routes frames, places marks, collects announcements, and
/// analyses worker 0's share itself (no copy, no hand-over).
pub(crate) struct Reader {
    /// Worker 0, run on this thread; `None` once finished.
    own: Option<Worker>,
    /// Workers 1.., each on its own thread (`links[i]` is worker `i + 1`).
    links: Vec<Link>,
    /// Workers in all, `own` included.
    n: usize,
    free: Receiver<Batch>,
    replies: Receiver<Reply>,
    clock: CaptureClock,
    sweep: SweepClock,
    input: InputStats,
    /// Frames so far.
    seq: u64,
    /// Whether the workers owe their announcements of the last epoch mark.
    owed: bool,
    failed: Option<WorkerFailed>,
    config: Config,
    /// The file being read, when it is mapped: payloads in it are handed over, not copied.
    map: Option<Arc<MappedFile>>,
}

impl Reader {
    /// Starts `n` workers; `live` ones keep interval figures ([`Mark::Tick`]).
    fn start(config: Config, n: usize, live: bool) -> Reader {
        let (back_tx, free) = mpsc::channel();
        let (reply_tx, replies) = mpsc::channel();
        let links = (1..n)
            .map(|me| spawn(me, shard_config(&config, me, n), &back_tx, &reply_tx, live))
            .collect();
        let own = Worker::new(
            0,
            Analyzer::new(shard_config(&config, 0, n)),
            reply_tx,
            live,
        );
        Reader {
            own: Some(own),
            links,
            n,
            free,
            replies,
            clock: CaptureClock::default(),
            sweep: SweepClock::default(),
            input: InputStats::default(),
            seq: 0,
            owed: false,
            failed: None,
            config,
            map: None,
        }
    }

    /// Puts `m` in every worker's stream at this point of the capture.
    fn broadcast(&mut self, m: Mark) {
        for l in &mut self.links {
            l.filling.mark(m.clone());
        }
        self.on_own(|own| own.mark(&m));
    }

    /// Runs `f` on worker 0, on this thread. A panic there (a bug) fails the run the way a
    /// worker thread's panic does (`analysis worker 0 failed: …`) instead of unwinding the
    /// reader; worker 0 is gone from then on.
    fn on_own(&mut self, f: impl FnOnce(&mut Worker)) {
        let Some(own) = self.own.as_mut() else {
            return;
        };
        if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(own))) {
            self.own = None;
            self.fail(0, panic_message(e.as_ref()));
        }
    }

    /// Sends the batch of the worker of link `l` (worker `l + 1`), taking a recycled one (or a
    /// new one) to fill next.
    fn send(&mut self, l: usize) {
        if self.links.get(l).is_none_or(|link| link.filling.is_empty()) {
            return;
        }
        let mut next = self.free.try_recv().unwrap_or_else(|_| Batch::new());
        if !next.timings.is_empty() {
            self.on_own(|own| own.record_timings(next.timings.drain(..)));
        }
        let Some(link) = self.links.get_mut(l) else {
            return;
        };
        let full = std::mem::replace(&mut link.filling, next);
        let sent = link.tx.as_ref().is_some_and(|tx| tx.send(full).is_ok());
        if !sent {
            self.fail(l + 1, "stopped".to_string());
        }
    }

    fn flush_all(&mut self) {
        for w in 0..self.links.len() {
            self.send(w);
        }
    }

    fn fail(&mut self, worker: usize, message: String) {
        if self.failed.is_none() {
            self.failed = Some(WorkerFailed { worker, message });
        }
    }

    /// Waits for every worker's announcements of the last epoch mark.
    fn collect(&mut self) -> Shared {
        let mut all = Vec::new();
        if !std::mem::take(&mut self.owed) {
            return Arc::new(all);
        }
        for _ in 0..self.n {
            match self.replies.recv() {
                Ok(Reply::Share(v)) => all.extend(v),
                Ok(Reply::Failed(w, message)) => {
                    self.fail(w, message);
                    break;
                }
                Err(_) => {
                    self.fail(0, "gone".to_string());
                    break;
                }
            }
        }
        Arc::new(all)
    }

    /// An epoch ends here.
    fn epoch(&mut self) {
        // A failed worker may owe its announcements forever: the run is ending anyway.
        if self.failed.is_some() {
            return;
        }
        let shared = self.collect();
        if self.failed.is_some() {
            return;
        }
        self.broadcast(Mark::Epoch(shared));
        self.owed = true;
        self.flush_all();
    }

    /// Ends the input: the last announcements go to every worker, the workers finish, their
    /// analyses are merged.
    fn finish(self) -> Result<Analysis, WorkerFailed> {
        let (input, outputs, config) = self.outputs()?;
        Ok(merge::merge(input, outputs, &config))
    }

    /// The reader's input counters so far, with the bogus time stamps its clock found.
    fn input_now(&self) -> InputStats {
        let mut input = self.input.clone();
        input.bogus_timestamps = self.clock.bogus;
        input
    }

    /// Ends the input as [`finish`](Self::finish) does, without merging.
    fn outputs(mut self) -> Result<(InputStats, Vec<Output>, Config), WorkerFailed> {
        if self.failed.is_none() {
            self.epoch();
        }
        if self.failed.is_none() {
            let last = self.collect();
            self.broadcast(Mark::Final(last));
            self.flush_all();
        }
        let mut outputs = Vec::with_capacity(self.n);
        for l in &mut self.links {
            l.tx = None;
        }
        // Worker 0 finishes while the others flush their tables.
        if let Some(own) = self.own.take() {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| own.finish())) {
                Ok(out) => outputs.push(out),
                Err(e) => self.fail(0, panic_message(e.as_ref())),
            }
        }
        for (l, link) in self.links.iter_mut().enumerate() {
            match link.thread.take().map(|t| t.join()) {
                Some(Ok(Some(out))) => outputs.push(out),
                _ => {
                    if self.failed.is_none() {
                        self.failed = Some(WorkerFailed {
                            worker: l + 1,
                            message: "panicked".to_string(),
                        });
                    }
                }
            }
        }
        // Histogram values that came back with the last batches.
        while let Ok(mut b) = self.free.try_recv() {
            if let Some(out) = outputs.first_mut() {
                out.analysis.summary.record_timings(b.timings.drain(..));
            }
        }
        // A panic's own message, when the worker sent it.
        while let Ok(r) = self.replies.try_recv() {
            if let Reply::Failed(worker, message) = r {
                if self.failed.as_ref().is_none_or(|f| f.message == "stopped") {
                    self.failed = Some(WorkerFailed { worker, message });
                }
            }
        }
        if let Some(f) = self.failed {
            return Err(f);
        }
        Ok((self.input_now(), outputs, self.config))
    }

    /// Routes one frame; returns its checked capture time.
    fn frame(&mut self, raw: &RawPacket<'_>) -> crate::packet::Nanos {
        let ts = self.clock.check(raw.ts);
        let raw = RawPacket { ts, ..*raw };
        self.seq += 1;
        let wire = u64::from(raw.wire_len);
        self.input.count_frame(wire, ts);
        let n = self.n;
        let mut decoded = crate::decode::decode(&raw);
        let w = match &decoded {
            Ok(p) => {
                // The same points as one analyzer: expiry, then the table's sweep, then the frame.
                if self.seq.is_multiple_of(65_536) {
                    self.broadcast(Mark::Expire(ts));
                }
                if let Some(at) = self.sweep.tick(ts) {
                    self.broadcast(Mark::Sweep(at, self.seq));
                }
                route::worker_of(p, n)
            }
            Err(_) => 0,
        };
        if w == 0 {
            let (wire, seq) = (raw.wire_len, self.seq);
            self.on_own(|own| own.frame(ts, wire, &mut decoded, seq, None));
        } else if let Some(link) = self.links.get_mut(w - 1) {
            link.filling.push(
                ts,
                raw.wire_len,
                decoded.as_ref().map_err(|r| *r),
                self.seq,
                self.map.as_ref(),
            );
            if link.filling.is_full() {
                self.send(w - 1);
            }
        }
        if self.seq.is_multiple_of(EPOCH) {
            self.epoch();
        }
        ts
    }
}

impl Feed for Reader {
    fn begin_file(&mut self, name: &str) {
        self.clock.restart();
        self.input.files.push(FileStats {
            name: name.to_string(),
            ..FileStats::default()
        });
    }

    fn input(&mut self) -> &mut InputStats {
        &mut self.input
    }

    fn mapped(&mut self, map: Option<Arc<MappedFile>>) {
        self.map = map;
    }

    fn threads(&self) -> usize {
        self.n
    }

    fn feed(&mut self, raw: &RawPacket<'_>) -> bool {
        if self.failed.is_some() {
            return false;
        }
        self.frame(raw);
        self.failed.is_none()
    }
}

/// Worker `w`'s part of the run's budgets: flows and reassembly bytes are split by its share of
/// the address pairs ([`route::share`]), so the run as a whole holds what one analyzer would.
fn shard_config(c: &Config, w: usize, n: usize) -> Config {
    let (mine, all) = route::share(w, n);
    let part = |x: usize| {
        let x = x as u128 * u128::from(mine);
        usize::try_from(x.div_ceil(u128::from(all.max(1)))).unwrap_or(usize::MAX)
    };
    let mut c = c.clone();
    c.flow.max_flows = part(c.flow.max_flows).max(1);
    c.reassembly_budget = part(c.reassembly_budget);
    if let Some(f) = c.firewall.as_mut() {
        f.max_groups = part(f.max_groups).max(1);
    }
    c
}

/// A panic's message, when it has one.
fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".to_string())
}

fn spawn(
    me: usize,
    config: Config,
    back: &Sender<Batch>,
    replies: &Sender<Reply>,
    live: bool,
) -> Link {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let back = back.clone();
    let replies = replies.clone();
    let thread = std::thread::Builder::new()
        .name(format!("exflow-worker-{me}"))
        .spawn(move || {
            let tell = replies.clone();
            // The receiver is moved into the unwinding closure: a panic drops it, so a reader
            // blocked sending to this worker wakes up with an error instead of hanging.
            let run = std::panic::AssertUnwindSafe(move || {
                worker::run(me, Analyzer::new(config), rx, back, replies, live)
            });
            match std::panic::catch_unwind(run) {
                Ok(out) => Some(out),
                Err(e) => {
                    let _ = tell.send(Reply::Failed(me, panic_message(e.as_ref())));
                    None
                }
            }
        });
    match thread {
        Ok(t) => Link {
            tx: Some(tx),
            filling: Batch::new(),
            thread: Some(t),
        },
        // No thread: sending to it fails at once and the run reports it.
        Err(_) => Link {
            tx: None,
            filling: Batch::new(),
            thread: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{PcapWriter, TsPrecision};

    /// A worker with no frames to analyse maps the reader's file in ahead of it: once the only
    /// batch is done, the read-ahead becomes resident though the reader never moves.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_waiting_worker_pages_the_readers_file() {
        use crate::source::testutil::{long_file, mapped, mapping_rss, PAGE_AHEAD};
        let len = 4 * PAGE_AHEAD;
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 1, 1], [10, 0, 2, 1], 64)
            .udp(40_000, 5000)
            .write(&mut frame, b"payload")
            .unwrap();
        // The frame lies in the middle of a mapped capture: the worker reads its payload there.
        let at = len / 2;
        let mut bytes = vec![0u8; len];
        bytes[at..at + frame.len()].copy_from_slice(&frame);
        let (dir, file) = long_file("worker-pages", &bytes);
        let map = mapped(&file, len);
        let in_map = map.get(at..at + frame.len()).unwrap();
        let raw = RawPacket {
            ts: 1_000_000_000,
            link_type: 1,
            data: in_map,
            wire_len: frame.len() as u32,
        };
        let p = crate::decode::decode(&raw);
        let mut batch = Batch::new();
        batch.push(
            raw.ts,
            raw.wire_len,
            p.as_ref().map_err(|r| *r),
            1,
            Some(&map),
        );
        assert!(
            batch.map().is_some(),
            "the frame's payload does not lie in the map"
        );
        let start = map.as_ptr() as usize;
        let before = mapping_rss(start);
        let (back, _returned) = mpsc::channel();
        let (replies, _replied) = mpsc::channel();
        let mut link = spawn(1, Config::default(), &back, &replies, false);
        link.tx.as_ref().unwrap().send(batch).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while mapping_rss(start) < before + PAGE_AHEAD && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let after = mapping_rss(start);
        link.tx = None;
        link.thread.take().unwrap().join().unwrap();
        drop(dir);
        assert!(
            after >= before + PAGE_AHEAD,
            "the worker mapped in {} bytes, not the read-ahead",
            after - before
        );
    }

    /// A bug in worker 0's analysis (on the reader's thread) fails the run like a worker thread's
    /// panic: an error naming worker 0 and the panic's message, not an unwinding reader.
    #[test]
    fn a_panic_in_the_readers_own_share_fails_the_run_as_a_worker_does() {
        let mut w = PcapWriter::new(Vec::new(), TsPrecision::Micro).unwrap();
        let mut frame = Vec::new();
        for i in 0..100u8 {
            frame.clear();
            etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 1, i], [10, 0, 2, i], 64)
                .udp(40_000, 5000)
                .write(&mut frame, b"x")
                .unwrap();
            w.write_packet(1_000_000_000 + i64::from(i) * 1_000, &frame)
                .unwrap();
        }
        // Frame 101 does not decode (ARP): it goes to worker 0.
        let mut arp = vec![0u8; 12];
        arp.extend([0x08, 0x06]);
        arp.extend([0u8; 28]);
        w.write_packet(1_000_200_000, &arp).unwrap();
        // Removed when dropped, also when an assertion fails.
        let dir = crate::source::testutil::TempDir::new("own-panic");
        let path = dir.join("own-panic.pcap");
        std::fs::write(&path, w.into_inner().unwrap()).unwrap();
        let run = || {
            analyze_files(
                &[path.to_string_lossy().into_owned()],
                Config::default(),
                2,
                |_, _, _, _| {},
            )
        };
        assert!(run().is_ok(), "without the injected bug the run succeeds");
        worker::test_hooks::PANIC_AT.with(|p| p.set(Some(101)));
        let got = run();
        worker::test_hooks::PANIC_AT.with(|p| p.set(None));
        let Err(err) = got else {
            panic!("the run should fail");
        };
        assert_eq!(err.worker, 0);
        assert!(err.message.contains("injected at frame 101"), "{err}");
    }
}
