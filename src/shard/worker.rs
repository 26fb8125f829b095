//! One analysis worker: an [`Analyzer`] fed the batches the reader routes to it. It notes when
//! (at which frame of the run) each of its expectations was announced, sends its signalled
//! expectations to the reader at every epoch mark and adopts the other workers'.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;

use super::batch::{Ahead, Batch, Item, Mark, Shared};
use crate::analyze::{Analysis, Analyzer};
use crate::classify::{Basis, Expectation, Flow};
use crate::decode::SkipReason;
use crate::flow::{EndReason, FlowHash};
use crate::interval::{Intervals, Window};
use crate::packet::{Endpoint, Nanos, Packet, Proto};
use crate::source::{MappedFile, PageStep};
use crate::summary::{Micros, Timing};

/// What a worker tells the reader.
pub enum Reply {
    /// Its signalled expectations announced since its last epoch mark.
    Share(Vec<(usize, u32, Expectation)>),
    /// It stopped: a panic, with its message.
    Failed(usize, String),
}

/// A worker's result: its analysis and what the merge needs to number expectations.
pub struct Output {
    pub analysis: Analysis,
    /// Frame of the run (1-based) that announced each of its own expectations; 0 for those
    /// announced while the flows were flushed at the end.
    pub announced_at: HashMap<u32, u64>,
    /// Its copies of other workers' expectations: its id -> (worker, id there).
    pub copies: HashMap<u32, (usize, u32)>,
    /// Live: the last interval (it ends with the input) and the durations of the flows that
    /// ended in it.
    pub last: Option<(Analysis, Vec<Micros>)>,
}

/// A live worker's answer to a [`Mark::Tick`]: its interval and its totals so far.
pub struct TickReply {
    pub worker: usize,
    pub interval: Output,
    pub totals: Output,
    pub durations: Vec<Micros>,
}

/// Runs worker `me` until the reader closes its channel.
pub fn run(
    me: usize,
    a: Analyzer,
    rx: Receiver<Batch>,
    back: Sender<Batch>,
    replies: Sender<Reply>,
    live: bool,
) -> Output {
    let mut w = Worker::new(me, a, replies, live);
    // The file the reader maps: while no batch waits, this worker pages it for the reader.
    let mut paging: Option<Arc<MappedFile>> = None;
    loop {
        let mut batch = match rx.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                match paging.as_ref().map(|f| f.page_step()) {
                    Some(PageStep::Worked) => continue,
                    Some(PageStep::Done) => paging = None,
                    Some(PageStep::Idle) | None => {}
                }
                match rx.recv() {
                    Ok(b) => b,
                    Err(_) => break,
                }
            }
        };
        if let Some(m) = batch.map() {
            if !paging.as_ref().is_some_and(|p| Arc::ptr_eq(p, m)) {
                paging = Some(Arc::clone(m));
            }
        }
        let mut ahead = Ahead::default();
        let mut n = 0;
        batch.replay(|item| match item {
            Item::Frame(ts, wire, decoded, seq) => {
                let hash = decoded.is_ok().then(|| ahead.hash(n)).flatten();
                n += 1;
                w.frame(ts, wire, decoded, seq, hash);
            }
            Item::Mark(m) => w.mark(m),
            Item::Ahead(p, at) => ahead.frame(&w.a.flows, at, p),
        });
        batch.clear();
        w.a.summary.take_timings(&mut batch.timings);
        // The reader may have gone (it failed); the batch is then simply dropped.
        let _ = back.send(batch);
    }
    w.finish()
}

/// One shard's analyzer and what it keeps for the exchange of announcements. Run by a worker
/// thread ([`run`]), or by the reader itself for its own share (worker 0).
pub(super) struct Worker {
    me: usize,
    /// Live: the interval figures of this worker's analyzer.
    intervals: Option<Intervals>,
    last_window: Window,
    a: Analyzer,
    announced_at: HashMap<u32, u64>,
    copies: HashMap<u32, (usize, u32)>,
    /// Own expectations announced since the last epoch mark.
    pending: Vec<u32>,
    /// Flows opened in the epoch before the last mark that were nobody's follow-up (the
    /// analyzer's `opened` holds those since).
    recent: Vec<(Proto, Endpoint, Endpoint, Nanos)>,
    /// Flows that ended in the epoch before the last mark, nobody's follow-up yet (the
    /// analyzer's `deferred` holds those since).
    held: Vec<(Flow, EndReason, Nanos)>,
    replies: Sender<Reply>,
}

impl Worker {
    /// `live`: the worker keeps interval figures of its analyzer for the reader's ticks.
    pub(super) fn new(me: usize, mut a: Analyzer, replies: Sender<Reply>, live: bool) -> Worker {
        a.make_shard();
        if me != 0 && !live {
            // Worker 0 (the reader) records every worker's histogram values: they go back to
            // it with the batches.
            a.summary.handed_on = Some(Vec::new());
        }
        let intervals = live.then(|| {
            let mut iv = Intervals::new();
            iv.begin(&mut a);
            iv
        });
        Worker {
            intervals,
            last_window: Window::default(),
            me,
            a,
            announced_at: HashMap::new(),
            copies: HashMap::new(),
            pending: Vec::new(),
            recent: Vec::new(),
            held: Vec::new(),
            replies,
        }
    }

    /// Records flows' histogram values another worker handed on.
    pub(super) fn record_timings(&mut self, timings: impl IntoIterator<Item = Timing>) {
        self.a.summary.record_timings(timings);
    }

    /// Frame number `seq` of the run, checked time `ts`, as the reader decoded it.
    #[inline(always)]
    pub(super) fn frame(
        &mut self,
        ts: Nanos,
        wire: u32,
        decoded: &mut Result<Packet<'_>, SkipReason>,
        seq: u64,
        hash: Option<FlowHash>,
    ) {
        #[cfg(test)]
        if test_hooks::PANIC_AT.with(std::cell::Cell::get) == Some(seq) {
            panic!("injected at frame {seq}");
        }
        self.a.packet_decoded(ts, wire, decoded, hash);
        self.note_announced(seq);
    }

    /// The input ended (after [`Mark::Final`]): the shard's analysis and what the merge needs.
    pub(super) fn finish(mut self) -> Output {
        let mut analysis = self.a.finish();
        let last = self.intervals.as_mut().map(|iv| {
            let interval = iv.finish(&mut analysis, self.last_window);
            (interval, iv.ended_durations().to_vec())
        });
        Output {
            analysis,
            announced_at: self.announced_at,
            copies: self.copies,
            last,
        }
    }

    /// Takes note of the expectations the frame `seq` announced (usually none).
    #[inline]
    fn note_announced(&mut self, seq: u64) {
        let Some(ids) = self.a.trackers.shared.expect.announced.as_mut() else {
            return;
        };
        if ids.is_empty() {
            return;
        }
        for id in ids.drain(..) {
            self.announced_at.insert(id, seq);
            self.pending.push(id);
        }
    }

    pub(super) fn mark(&mut self, m: &Mark) {
        match m {
            Mark::Expire(now) => self.a.expire_trackers(*now),
            Mark::Sweep(now, seq) => {
                self.a.sweep_flows(*now);
                // Flows that ended may have announced: in one analyzer the sweep runs inside
                // the frame that follows.
                self.note_announced(*seq);
            }
            Mark::Epoch(shared) => {
                let expect = &self.a.trackers.shared.expect;
                let mine = self
                    .pending
                    .drain(..)
                    .filter_map(|id| expect.list.get(&id))
                    .filter(|e| e.basis == Basis::Signalled)
                    .map(|e| (self.me, e.id, Expectation::clone(e)))
                    .collect();
                // The reader waits for this; if it is gone there is nobody to tell.
                let _ = self.replies.send(Reply::Share(mine));
                self.adopt(shared);
                // What opened or ended two epochs ago can no longer be anyone's follow-up.
                self.recent.clear();
                std::mem::swap(&mut self.recent, &mut self.a.opened);
                let held = std::mem::take(&mut self.held);
                self.a.conclude(held.into_iter());
                if let Some(d) = self.a.deferred.as_mut() {
                    std::mem::swap(&mut self.held, d);
                }
            }
            Mark::Final(shared) => {
                // The last batches may not go back before the run ends: from here on this
                // worker records its own flows' histogram values.
                self.a.summary.keep_timings();
                self.adopt(shared);
                let held = std::mem::take(&mut self.held);
                self.a.conclude(held.into_iter());
                let last = self.a.deferred.take().unwrap_or_default();
                self.a.conclude(last.into_iter());
            }
            Mark::Tick(window, now, reply) => self.tick(*window, *now, reply),
            Mark::SweepIdle(now, seq) => {
                self.a.sweep_idle(*now);
                self.note_announced(*seq);
            }
            Mark::Retire(now) => self.a.retire_followups(*now),
            Mark::LastWindow(window) => self.last_window = *window,
        }
    }

    /// Ends a live interval: answers with this worker's interval and totals, and forgets the
    /// numbering of expectations retired since (a run of days stays bounded).
    fn tick(
        &mut self,
        window: Window,
        now: Option<Nanos>,
        reply: &std::sync::mpsc::SyncSender<TickReply>,
    ) {
        let Some(iv) = self.intervals.as_mut() else {
            return;
        };
        let (interval, totals) = iv.tick_at(&mut self.a, window, now);
        let durations = iv.ended_durations().to_vec();
        let list = &self.a.trackers.shared.expect.list;
        self.announced_at.retain(|id, _| list.contains_key(id));
        self.copies.retain(|id, _| list.contains_key(id));
        let output = |analysis| Output {
            analysis,
            announced_at: self.announced_at.clone(),
            copies: self.copies.clone(),
            last: None,
        };
        let answer = TickReply {
            worker: self.me,
            interval: output(interval),
            totals: output(totals),
            durations,
        };
        // The reader waits for this; if it is gone there is nobody to tell.
        let _ = reply.send(answer);
    }

    /// Adopts the other workers' expectations, then gives the flows opened since they were
    /// announced the follow-up they would have been had the announcement been here.
    fn adopt(&mut self, shared: &Shared) {
        let expect = &mut self.a.trackers.shared.expect;
        let mut new = Vec::new();
        for (from, id, e) in shared.iter() {
            if *from == self.me {
                continue;
            }
            if let Some(local) = expect.adopt(e) {
                self.copies.insert(local, (*from, *id));
                new.push(local);
            }
        }
        if !new.is_empty() {
            self.claim(&new);
        }
    }

    /// What [`ExpectTable::find`](crate::classify::ExpectTable::find) would have said of the
    /// recently opened flows had the copies `new` been in the table when they opened: the
    /// flow's server's address, or for UDP either end, announced before it opened and live.
    fn claim(&mut self, new: &[u32]) {
        let expect = &self.a.trackers.shared.expect;
        // Asked for every flow opened since the last hand-over (generated capture, two threads:
        // 73 730 questions in its first 300 000 frames), so hashed with ahash, not SipHash
        // (which cost 290 instructions a question).
        let mut by_addr: HashMap<(Proto, Endpoint), &Expectation, ahash::RandomState> =
            HashMap::with_capacity_and_hasher(new.len(), ahash::RandomState::new());
        by_addr.extend(
            new.iter()
                .filter_map(|id| expect.list.get(id))
                .map(|e| ((e.proto, e.addr), &**e)),
        );
        let live = |proto, ep, ts: Nanos| {
            by_addr
                .get(&(proto, ep))
                .filter(|e| e.announced_ts <= ts && ts <= e.expires)
                .map(|e| (e.id, e.service))
        };
        let claim = |f: &mut Flow| {
            let (proto, first) = (f.proto, f.first_ts);
            let found = live(proto, f.server, first).or_else(|| {
                (proto == Proto::Udp)
                    .then(|| live(proto, f.client, first))
                    .flatten()
            });
            if let Some((id, service)) = found.filter(|_| f.class.followup_of().is_none()) {
                f.class.service = service;
                f.class.set_followup_of(id);
                f.class.by_client_port = false;
            }
        };
        let flows = &mut self.a.flows;
        for &(proto, client, server, first) in self.recent.iter().chain(&self.a.opened) {
            if let Some(f) = flows
                .get_mut(proto, client, server)
                .filter(|f| f.first_ts == first)
            {
                claim(f);
            }
        }
        let deferred = self.a.deferred.iter_mut().flatten();
        let trackers = &self.a.trackers;
        for (f, _, ended) in self.held.iter_mut().chain(deferred) {
            claim(f);
            trackers.classify_late_among(f, new, *ended);
        }
    }
}

/// Test hooks: a bug injected into the analysis, to see how the run fails.
#[cfg(test)]
pub(super) mod test_hooks {
    thread_local! {
        /// Worker 0 (the reader's thread) panics at this frame of the run.
        pub static PANIC_AT: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    }
}
