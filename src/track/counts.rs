//! Counts by a small key (an LDAP operation, an SMTP verb or reply code) for one flow: a flow
//! sees a few keys of many, so the counts are a short sorted list kept in place, not an array
//! with a slot for every key (an LDAP session's 26 operation counts were 104 bytes in every
//! LDAP flow) nor a map with a node of its own.

use smallvec::SmallVec;

/// Counts by key, in key order; the first `N` keys are kept in place, more take an allocation.
#[derive(Clone, Debug, Default)]
pub(crate) struct SmallCounts<K, const N: usize>(SmallVec<[(K, u32); N]>);

impl<K: Ord + Copy, const N: usize> SmallCounts<K, N> {
    pub(crate) fn new() -> Self {
        SmallCounts(SmallVec::new())
    }

    /// Counts one more of `key` (saturating).
    #[inline]
    pub(crate) fn add(&mut self, key: K) {
        self.add_capped(key, usize::MAX);
    }

    /// Counts one more of `key` when it is counted already or fewer than `max_keys` keys are;
    /// false (nothing counted) for a new key past the cap.
    #[inline]
    pub(crate) fn add_capped(&mut self, key: K, max_keys: usize) -> bool {
        match self.0.binary_search_by_key(&key, |&(k, _)| k) {
            Ok(i) => {
                if let Some((_, n)) = self.0.get_mut(i) {
                    *n = n.saturating_add(1);
                }
                true
            }
            Err(_) if self.0.len() >= max_keys => false,
            Err(i) => {
                self.0.insert(i, (key, 1));
                true
            }
        }
    }

    /// The count of `key` (0 when never counted).
    #[cfg(test)]
    pub(crate) fn get(&self, key: K) -> u32 {
        self.0
            .binary_search_by_key(&key, |&(k, _)| k)
            .ok()
            .and_then(|i| self.0.get(i))
            .map_or(0, |&(_, n)| n)
    }

    /// Every key counted, in key order, with its count.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, u32)> + '_ {
        self.0.iter().copied()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// The same counts, in the same order, as a map would keep, in place or spilled.
        #[test]
        fn counts_as_a_map_does(keys in proptest::collection::vec(0u8..40, 0..200)) {
            let mut small = SmallCounts::<u8, 4>::new();
            let mut map = BTreeMap::new();
            for &k in &keys {
                small.add(k);
                *map.entry(k).or_insert(0u32) += 1;
            }
            let got: Vec<(u8, u32)> = small.iter().collect();
            let want: Vec<(u8, u32)> = map.iter().map(|(&k, &n)| (k, n)).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(small.is_empty(), keys.is_empty());
            for k in 0u8..40 {
                prop_assert_eq!(small.get(k), map.get(&k).copied().unwrap_or(0));
            }
        }
    }

    #[test]
    fn past_the_cap_only_keys_counted_already_count() {
        let mut c = SmallCounts::<u16, 2>::new();
        for k in [28, 1, 15] {
            assert!(c.add_capped(k, 3));
        }
        assert!(!c.add_capped(33, 3), "a fourth key");
        assert!(c.add_capped(15, 3));
        assert_eq!(c.iter().collect::<Vec<_>>(), [(1, 1), (15, 2), (28, 1)]);
        assert_eq!(c.get(33), 0);
    }

    #[test]
    fn a_count_saturates() {
        let mut c = SmallCounts::<u16, 2>::new();
        c.add(250);
        if let Some((_, n)) = c.0.get_mut(0) {
            *n = u32::MAX - 1;
        }
        c.add(250);
        c.add(250);
        assert_eq!(c.get(250), u32::MAX);
    }

    #[test]
    fn four_keys_stay_in_place() {
        let mut c = SmallCounts::<u8, 4>::new();
        for k in [9, 3, 7, 1] {
            c.add(k);
        }
        assert!(!c.0.spilled());
        c.add(5);
        assert!(c.0.spilled());
        assert_eq!(
            c.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            [1, 3, 5, 7, 9]
        );
    }
}
