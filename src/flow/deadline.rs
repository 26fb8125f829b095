//! The idle sweep's deadline queue: slot numbers bucketed by the capture time at which their flow
//! may have gone idle, so a sweep visits only the flows whose deadline has passed instead of the
//! whole table (README, Benchmarks).
//!
//! Invariant (tested in `tests.rs`, `wheel_sweep_matches_full_walk`): every open flow has at least
//! one entry in a bucket at or before the bucket of its real deadline (`last_ts + timeout`, the
//! timeout of its state now). A flow's real deadline only moves later (`last_ts` never
//! decreases) except when its TCP state becomes closed, and the table registers the flow again at
//! that moment and when it creates it. A sweep at `now` visits every bucket at or before
//! `now`'s, which then holds an entry of every flow idle at `now`; it checks the flow now in each
//! slot and re-registers those not idle at their real deadline. So the flows a sweep removes are
//! exactly those a walk of the whole table would remove.
//!
//! Entries are not removed when a flow leaves otherwise (reused five-tuple, eviction): an entry
//! for a vacant slot is dropped when visited, one for a slot since reused is checked against the
//! flow there (which registered itself too) and merges with that flow's own entries once both
//! are due (visited slots are deduplicated). Evictions purge the entries of vacant slots.

use std::collections::VecDeque;

use super::SWEEP_EVERY;
use crate::packet::Nanos;

/// Slot numbers by deadline bucket ([`SWEEP_EVERY`] wide), in ascending bucket order. Only
/// non-empty buckets are kept, so their number is bounded by the entries however far capture
/// time jumps; emptied buckets' `Vec`s are kept for reuse, so registering allocates nothing once
/// the queue has grown to its working size.
#[derive(Default)]
pub(super) struct Deadlines {
    buckets: VecDeque<(i64, Vec<u32>)>,
    spare: Vec<Vec<u32>>,
}

#[inline]
fn bucket(t: Nanos) -> i64 {
    t.div_euclid(SWEEP_EVERY)
}

impl Deadlines {
    /// Registers `slot` to be visited by the first sweep at or past `deadline`'s bucket.
    #[inline]
    pub(super) fn add(&mut self, deadline: Nanos, slot: u32) {
        let b = bucket(deadline);
        // New flows share one timeout per protocol: most land in the latest bucket.
        if let Some((last, v)) = self.buckets.back_mut() {
            if *last == b {
                v.push(slot);
                return;
            }
        }
        match self.buckets.binary_search_by_key(&b, |(k, _)| *k) {
            Ok(i) => self.buckets[i].1.push(slot),
            Err(i) => {
                let mut v = self.spare.pop().unwrap_or_default();
                v.push(slot);
                self.buckets.insert(i, (b, v));
            }
        }
    }

    /// Moves the slots of every bucket due at `now` (at or before its bucket) into `out`.
    pub(super) fn take_due(&mut self, now: Nanos, out: &mut Vec<u32>) {
        let b = bucket(now);
        while self.buckets.front().is_some_and(|(k, _)| *k <= b) {
            if let Some((_, mut v)) = self.buckets.pop_front() {
                out.append(&mut v);
                self.spare.push(v);
            }
        }
    }

    /// Keeps only the entries `keep` accepts (eviction: drop the slots left vacant).
    pub(super) fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) {
        for (_, v) in self.buckets.iter_mut() {
            v.retain(|&i| keep(i));
        }
        let spare = &mut self.spare;
        self.buckets.retain_mut(|(_, v)| {
            if v.is_empty() {
                spare.push(std::mem::take(v));
                false
            } else {
                true
            }
        });
    }

    /// Number of entries (tests and memory checks).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.buckets.iter().map(|(_, v)| v.len()).sum()
    }

    /// True when `slot` has an entry in a bucket at or before `deadline`'s.
    #[cfg(test)]
    pub(super) fn has_by(&self, slot: u32, deadline: Nanos) -> bool {
        let b = bucket(deadline);
        self.buckets
            .iter()
            .take_while(|(k, _)| *k <= b)
            .any(|(_, v)| v.contains(&slot))
    }
}
