//! One analysis worker: an [`Analyzer`] fed the batches the reader routes to it. It notes when
//! (at which frame of the run) each of its expectations was announced, sends its signalled
//! expectations to the reader at every epoch mark and adopts the other workers'.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender};

use super::batch::{Batch, Item, Mark, Shared};
use crate::analyze::{Analysis, Analyzer};
use crate::classify::Basis;

/// What a worker tells the reader.
pub enum Reply {
    /// Its signalled expectations announced since its last epoch mark.
    Share(Vec<(usize, u32, crate::classify::Expectation)>),
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
}

/// Runs worker `me` until the reader closes its channel.
pub fn run(
    me: usize,
    mut a: Analyzer,
    rx: Receiver<Batch>,
    back: Sender<Batch>,
    replies: Sender<Reply>,
) -> Output {
    a.make_shard();
    let mut w = Worker {
        me,
        a,
        announced_at: HashMap::new(),
        copies: HashMap::new(),
        pending: Vec::new(),
        replies,
    };
    for mut batch in rx {
        batch.replay(|item| match item {
            Item::Frame(raw, seq) => {
                w.a.packet_at(raw);
                w.note_announced(seq);
            }
            Item::Mark(m) => w.mark(m),
        });
        batch.clear();
        // The reader may have gone (it failed); the batch is then simply dropped.
        let _ = back.send(batch);
    }
    let analysis = w.a.finish();
    Output {
        analysis,
        announced_at: w.announced_at,
        copies: w.copies,
    }
}

struct Worker {
    me: usize,
    a: Analyzer,
    announced_at: HashMap<u32, u64>,
    copies: HashMap<u32, (usize, u32)>,
    /// Own expectations announced since the last epoch mark.
    pending: Vec<u32>,
    replies: Sender<Reply>,
}

impl Worker {
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

    fn mark(&mut self, m: &Mark) {
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
                    .map(|e| (self.me, e.id, e.clone()))
                    .collect();
                // The reader waits for this; if it is gone there is nobody to tell.
                let _ = self.replies.send(Reply::Share(mine));
                self.adopt(shared);
            }
            Mark::Final(shared) => self.adopt(shared),
        }
    }

    fn adopt(&mut self, shared: &Shared) {
        let expect = &mut self.a.trackers.shared.expect;
        for (from, id, e) in shared.iter() {
            if *from == self.me {
                continue;
            }
            if let Some(local) = expect.adopt(e) {
                self.copies.insert(local, (*from, *id));
            }
        }
    }
}
