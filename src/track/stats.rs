//! What trackers counted: per tracker, what it decoded and what it could not, by name.

use std::ops::{AddAssign, Sub};

use super::reassembly::{Budget, StreamStats};

/// Named counters in first-seen order. Adding to a known name allocates nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters(Vec<(&'static str, u64)>);

impl Counters {
    pub fn add(&mut self, name: &'static str, n: u64) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v += n,
            None => self.0.push((name, n)),
        }
    }

    pub fn get(&self, name: &str) -> u64 {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(0, |(_, v)| *v)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, v)| v).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().copied()
    }
}

impl AddAssign<&Counters> for Counters {
    fn add_assign(&mut self, o: &Counters) {
        for (k, v) in o.iter() {
            self.add(k, v);
        }
    }
}

/// Counts since an earlier snapshot of the same run (never negative).
impl Sub<&Counters> for &Counters {
    type Output = Counters;

    fn sub(self, old: &Counters) -> Counters {
        Counters(
            self.iter()
                .map(|(k, v)| (k, v.saturating_sub(old.get(k))))
                .collect(),
        )
    }
}

/// What one tracker kind counted over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackerStats {
    /// Flows it was attached to.
    pub flows: u64,
    /// Units decoded, by kind (`messages`, `subscribes`, ...).
    pub decoded: Counters,
    /// Units that could not be decoded, by reason.
    pub errors: Counters,
    /// Flows it stopped reading before they ended (nothing more to learn, garbage, a cap).
    pub gave_up: u64,
    /// Its reassembly streams (summed when each stream ends).
    pub stream: StreamStats,
}

impl Sub<&TrackerStats> for &TrackerStats {
    type Output = TrackerStats;

    fn sub(self, old: &TrackerStats) -> TrackerStats {
        TrackerStats {
            flows: self.flows.saturating_sub(old.flows),
            decoded: &self.decoded - &old.decoded,
            errors: &self.errors - &old.errors,
            gave_up: self.gave_up.saturating_sub(old.gave_up),
            stream: StreamStats {
                duplicate_bytes: self
                    .stream
                    .duplicate_bytes
                    .saturating_sub(old.stream.duplicate_bytes),
                gaps: self.stream.gaps.saturating_sub(old.stream.gaps),
                overflows: self.stream.overflows.saturating_sub(old.stream.overflows),
            },
        }
    }
}

/// Everything the trackers of a run counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signalling {
    /// Per tracker kind, in registry order.
    pub trackers: Vec<(&'static str, TrackerStats)>,
    /// The reassembly budget: its limit, peak use and refusals.
    pub budget: Budget,
    /// Announcements dropped because an expectation cap was reached.
    pub expectations_dropped_at_cap: u64,
}

impl Signalling {
    /// One tracker's counters (empty when it is not registered).
    pub fn tracker(&self, name: &str) -> Option<&TrackerStats> {
        self.trackers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
    }

    /// `decoded[what]` of tracker `name`.
    pub fn decoded(&self, name: &str, what: &str) -> u64 {
        self.tracker(name).map_or(0, |s| s.decoded.get(what))
    }

    /// Every error of the named trackers.
    pub fn errors(&self, names: &[&str]) -> u64 {
        names
            .iter()
            .filter_map(|n| self.tracker(n))
            .map(|s| s.errors.total())
            .sum()
    }
}

/// Counts since an earlier snapshot of the same run (never negative); the budget is the newer's.
impl Sub<&Signalling> for &Signalling {
    type Output = Signalling;

    fn sub(self, old: &Signalling) -> Signalling {
        Signalling {
            trackers: self
                .trackers
                .iter()
                .map(|(n, s)| {
                    let prev = old.tracker(n).cloned().unwrap_or_default();
                    (*n, s - &prev)
                })
                .collect(),
            budget: Budget {
                refused: self.budget.refused.saturating_sub(old.budget.refused),
                ..self.budget
            },
            expectations_dropped_at_cap: self
                .expectations_dropped_at_cap
                .saturating_sub(old.expectations_dropped_at_cap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_and_subtract() {
        let mut a = Counters::default();
        a.add("messages", 3);
        a.add("errors", 1);
        a.add("messages", 2);
        assert_eq!((a.get("messages"), a.get("none"), a.total()), (5, 0, 6));
        let mut b = a.clone();
        b.add("messages", 4);
        b.add("new", 1);
        let d = &b - &a;
        assert_eq!(
            (d.get("messages"), d.get("errors"), d.get("new")),
            (4, 0, 1)
        );
        let back = &a - &b;
        assert_eq!(back.get("messages"), 0, "never negative");
    }
}
