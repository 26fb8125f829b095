//! The flow table's hash index: slot numbers found by the hash of a flow's key.
//!
//! An open-addressing table with linear probing, one `u64` per bucket: the upper half of the
//! key's hash (the tag) and the slot number plus one (0 is an empty bucket). A lookup loads one
//! bucket line and then the flow it names; a general-purpose table (hashbrown) keeps its control
//! bytes and its items apart, one more cache miss per packet on a table larger than the cache,
//! and rehashes every flow (a miss each) when it grows. Here the tag holds what growing needs: a
//! bucket's home is the tag scaled to the number of buckets (`tag × buckets / 2^32`), so the
//! table grows, and deletes (backward shift, no tombstones), without reading a flow.
//!
//! The number of buckets is not a power of two: the table grows by a quarter at a time, so it is
//! on average about a tenth larger than its load needs where doubling left it a third larger.
//! With two analysis threads on the generated benchmark capture the two indexes took 6.1 MiB
//! (4 and 2 MiB tables for 226 000 and 113 000 flows) where one table of the same flows takes 4.
//!
//! The hash is seeded per run (`FlowTable::hasher`), so hostile keys cannot aim at one run of
//! buckets. The load stays at most [`MAX_LOAD`], so every probe ends at an empty bucket.

/// Most buckets in use, as a fraction `MAX_LOAD.0 / MAX_LOAD.1` of all: linear probing's
/// expected probe length stays short below about three quarters.
const MAX_LOAD: (usize, usize) = (7, 10);

/// Fewest buckets of a table.
const MIN_BUCKETS: usize = 16;

/// A growing table takes `1 / GROWTH` more buckets.
const GROWTH: usize = 4;

/// Slot numbers by key hash.
pub(super) struct FlowIndex {
    buckets: Vec<u64>,
    len: usize,
}

#[inline]
fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

#[inline]
fn entry(tag: u32, slot: u32) -> u64 {
    (u64::from(tag) << 32) | (u64::from(slot) + 1)
}

#[inline]
fn slot_of(e: u64) -> u32 {
    (e as u32).wrapping_sub(1)
}

#[inline]
fn tag_of(e: u64) -> u32 {
    (e >> 32) as u32
}

impl FlowIndex {
    /// An index that holds `n` slots before it first grows.
    pub(super) fn with_capacity(n: usize) -> FlowIndex {
        let size = (n.saturating_mul(MAX_LOAD.1) / MAX_LOAD.0 + 1).max(MIN_BUCKETS);
        FlowIndex {
            buckets: vec![0; size],
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bucket a tag's probe starts at: the tag scaled to the number of buckets.
    #[inline]
    fn home(&self, tag: u32) -> usize {
        ((u128::from(tag) * self.buckets.len() as u128) >> 32) as usize
    }

    /// The bucket after `i`, wrapping around.
    #[inline]
    fn next(&self, i: usize) -> usize {
        let j = i + 1;
        if j == self.buckets.len() {
            0
        } else {
            j
        }
    }

    /// Steps forward from bucket `from` to bucket `to`, wrapping around.
    #[inline]
    fn dist(&self, from: usize, to: usize) -> usize {
        if to >= from {
            to - from
        } else {
            to + self.buckets.len() - from
        }
    }

    /// The slot with hash `hash` that `is_it` accepts.
    #[inline(always)]
    pub(super) fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = tag(hash);
        let mut i = self.home(t);
        loop {
            let e = *self.buckets.get(i)?;
            if e == 0 {
                return None;
            }
            if tag_of(e) == t && is_it(slot_of(e)) {
                return Some(slot_of(e));
            }
            i = self.next(i);
        }
    }

    /// Asks the CPU to load the bucket line where a lookup, insert or removal of `hash` starts.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        if let Some(b) = self.buckets.get(self.home(tag(hash))) {
            crate::bytes::prefetch(b);
        }
    }

    /// The slot of the first bucket from `hash`'s home whose tag is `hash`'s, if the home's
    /// line has one (a prefetch hint: it may be another flow's).
    #[inline]
    pub(super) fn first_candidate(&self, hash: u64) -> Option<u32> {
        let t = tag(hash);
        let i = self.home(t);
        let e = *self.buckets.get(i)?;
        (e != 0 && tag_of(e) == t).then(|| slot_of(e))
    }

    /// Adds `slot` under `hash`; the caller knows it is not in the index.
    pub(super) fn insert(&mut self, hash: u64, slot: u32) {
        if (self.len + 1).saturating_mul(MAX_LOAD.1) > self.buckets.len().saturating_mul(MAX_LOAD.0)
        {
            self.grow();
        }
        self.place(entry(tag(hash), slot));
        self.len += 1;
    }

    /// Puts `e` in the first empty bucket from its home (there is one: the load is below 1).
    fn place(&mut self, e: u64) {
        let mut i = self.home(tag_of(e));
        while let Some(b) = self.buckets.get_mut(i) {
            if *b == 0 {
                *b = e;
                return;
            }
            i = self.next(i);
        }
    }

    /// Takes a quarter more buckets; entries are placed again from their tags alone.
    #[cold]
    fn grow(&mut self) {
        let size = self.buckets.len();
        let size = size.saturating_add(size.div_ceil(GROWTH));
        let old = std::mem::replace(&mut self.buckets, vec![0; size]);
        for e in old.into_iter().filter(|&e| e != 0) {
            self.place(e);
        }
    }

    /// Takes `slot`, indexed under `hash`, out of the index; false if it was not there.
    pub(super) fn remove(&mut self, hash: u64, slot: u32) -> bool {
        let want = entry(tag(hash), slot);
        let mut i = self.home(tag(hash));
        loop {
            match self.buckets.get(i) {
                Some(&e) if e == want => break,
                Some(&e) if e != 0 => i = self.next(i),
                _ => return false,
            }
        }
        // Backward shift: each later entry of the run moves into the hole if its home is not
        // between the hole and itself, so every entry stays reachable from its home.
        let mut hole = i;
        let mut j = self.next(i);
        while let Some(&e) = self.buckets.get(j) {
            if e == 0 {
                break;
            }
            let home = self.home(tag_of(e));
            if self.dist(home, j) >= self.dist(hole, j) {
                self.buckets[hole] = e;
                hole = j;
            }
            j = self.next(j);
        }
        self.buckets[hole] = 0;
        self.len -= 1;
        true
    }

    /// Keeps only the slots `keep` accepts (evictions: once per eighth of the table).
    pub(super) fn retain(&mut self, mut keep: impl FnMut(u32) -> bool) {
        let size = self.buckets.len();
        let old = std::mem::replace(&mut self.buckets, vec![0; size]);
        self.len = 0;
        for e in old.into_iter().filter(|&e| e != 0) {
            if keep(slot_of(e)) {
                self.place(e);
                self.len += 1;
            }
        }
    }

    /// Every slot, in bucket order; the index is empty afterwards.
    #[cfg(test)]
    pub(super) fn drain(&mut self) -> Vec<u32> {
        let slots = self
            .buckets
            .iter()
            .filter(|&&e| e != 0)
            .map(|&e| slot_of(e))
            .collect();
        self.buckets.fill(0);
        self.len = 0;
        slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64),
        Remove(usize),
        Find(u64),
        Retain(u8),
    }

    /// Hashes from a small range, so that tags and homes collide often.
    fn hashes() -> impl Strategy<Value = u64> {
        prop_oneof![
            (0u64..64).prop_map(|h| h << 32),
            (0u64..64).prop_map(|h| (h << 32) | 7),
            // Homes at the end of the table: runs wrap around.
            (0u64..64).prop_map(|h| (u64::from(u32::MAX) - h) << 32),
            any::<u64>(),
        ]
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                6 => hashes().prop_map(Op::Insert),
                3 => any::<usize>().prop_map(Op::Remove),
                2 => hashes().prop_map(Op::Find),
                1 => any::<u8>().prop_map(Op::Retain),
            ],
            0..600,
        )
    }

    proptest! {
        /// The index holds exactly the slots a plain map of slot to hash holds, through inserts
        /// (with growth), removals (backward shifts across the wrap-around), lookups and
        /// retains.
        #[test]
        fn index_matches_a_map(ops in ops()) {
            let mut index = FlowIndex::with_capacity(0);
            let mut model: HashMap<u32, u64> = HashMap::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Insert(h) => {
                        index.insert(h, next);
                        model.insert(next, h);
                        next += 1;
                    }
                    Op::Remove(k) => {
                        let mut live: Vec<_> = model.iter().map(|(&s, &h)| (s, h)).collect();
                        live.sort_unstable();
                        if let Some(&(s, h)) = live.get(k % live.len().max(1)) {
                            prop_assert!(index.remove(h, s));
                            model.remove(&s);
                            prop_assert!(!index.remove(h, s));
                        }
                    }
                    Op::Find(h) => {
                        let found = index.find(h, |s| model.get(&s) == Some(&h));
                        match found {
                            Some(s) => prop_assert_eq!(model.get(&s), Some(&h)),
                            None => prop_assert!(!model.values().any(|&v| v == h)),
                        }
                    }
                    Op::Retain(m) => {
                        let m = u32::from(m % 3) + 2;
                        index.retain(|s| s % m != 0);
                        model.retain(|s, _| s % m != 0);
                    }
                }
                prop_assert_eq!(index.len(), model.len());
                for (&s, &h) in &model {
                    prop_assert_eq!(index.find(h, |x| x == s), Some(s));
                }
            }
            let mut all = index.drain();
            all.sort_unstable();
            let mut want: Vec<u32> = model.keys().copied().collect();
            want.sort_unstable();
            prop_assert_eq!(all, want);
            prop_assert!(index.is_empty());
        }
    }

    #[test]
    fn sized_for_its_capacity_and_grows_past_it() {
        let mut index = FlowIndex::with_capacity(100);
        let size = index.buckets.len();
        for s in 0..100 {
            index.insert(u64::from(s).wrapping_mul(0x9E37_79B9_7F4A_7C15), s);
        }
        assert_eq!(index.buckets.len(), size, "grew before its capacity");
        for s in 100..1000 {
            index.insert(u64::from(s).wrapping_mul(0x9E37_79B9_7F4A_7C15), s);
        }
        assert!(index.len * MAX_LOAD.1 <= index.buckets.len() * MAX_LOAD.0);
        for s in 0..1000 {
            let h = u64::from(s).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assert_eq!(index.find(h, |x| x == s), Some(s));
        }
    }
}
