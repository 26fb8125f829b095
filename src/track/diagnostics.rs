//! Run-wide findings of the trackers: each tracker kind that keeps findings has one
//! [`Diagnostics`] value, filled when its flows end, merged across intervals and workers, and
//! rendered in the report's `diagnostics` section and the table.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;

use crate::classify::Catalogue;

/// What every [`Diagnostics`] value can do by being `Clone + 'static`: implemented for all of
/// them, so a kind writes only its own logic.
pub trait DiagnosticsAny {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn clone_box(&self) -> Box<dyn Diagnostics>;
}

impl<T: Diagnostics + Clone + 'static> DiagnosticsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn Diagnostics> {
        Box::new(self.clone())
    }
}

/// One tracker kind's run-wide findings.
pub trait Diagnostics: DiagnosticsAny + Debug + Send + Sync {
    /// Key in the report's `diagnostics` section.
    fn name(&self) -> &'static str;
    /// Adds another value of the same kind (a later interval, another worker).
    fn merge(&mut self, other: &dyn Diagnostics);
    /// What grew since `earlier`, a snapshot of the same run (live intervals).
    fn since(&self, earlier: &dyn Diagnostics) -> Box<dyn Diagnostics>;
    /// The report's `diagnostics.<name>` object.
    fn to_json(&self, catalogue: &Catalogue) -> serde_json::Value;
    /// Plain-language lines for the table's problems section, most important first.
    fn problems(&self, catalogue: &Catalogue) -> Vec<String> {
        let _ = catalogue;
        Vec::new()
    }
}

/// Adds counts by key (`merge` of count maps).
pub(crate) fn add_counts<K: Ord + Clone>(a: &mut BTreeMap<K, u64>, b: &BTreeMap<K, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_insert(0) += v;
    }
}

/// The counts of `a` that grew past `b`, zero ones left out (`since` of count maps).
pub(crate) fn sub_counts<K: Ord + Clone>(
    a: &BTreeMap<K, u64>,
    b: &BTreeMap<K, u64>,
) -> BTreeMap<K, u64> {
    a.iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(b.get(k).copied().unwrap_or(0))))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// The problem records of `now` whose count grew past `old`'s, with the growth as their count
/// (`since` of problem lists); `count` reads a record's count and `with` sets it.
pub(crate) fn problems_since<K: Ord + Clone, P: Clone>(
    now: &BTreeMap<K, P>,
    old: &BTreeMap<K, P>,
    count: impl Fn(&P) -> u64,
    with: impl Fn(&P, u64) -> P,
) -> BTreeMap<K, P> {
    now.iter()
        .filter_map(|(k, p)| {
            let before = old.get(k).map_or(0, &count);
            (count(p) > before).then(|| (k.clone(), with(p, count(p) - before)))
        })
        .collect()
}

impl Clone for Box<dyn Diagnostics> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// The diagnostics of every tracker kind of a run, indexed by kind.
#[derive(Clone, Debug, Default)]
pub struct DiagnosticsSet {
    parts: Vec<(&'static str, Option<Box<dyn Diagnostics>>)>,
}

impl DiagnosticsSet {
    pub fn new(parts: Vec<(&'static str, Option<Box<dyn Diagnostics>>)>) -> DiagnosticsSet {
        DiagnosticsSet { parts }
    }

    /// The diagnostics of tracker kind `k`, if it keeps any.
    pub fn get_mut(&mut self, k: usize) -> Option<&mut dyn Diagnostics> {
        match self.parts.get_mut(k) {
            Some((_, Some(d))) => Some(d.as_mut()),
            _ => None,
        }
    }

    /// The kinds' diagnostics that exist, in kind order.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Diagnostics> + '_ {
        self.parts.iter().filter_map(|(_, d)| d.as_deref())
    }

    /// A kind's diagnostics by name.
    pub fn get(&self, name: &str) -> Option<&dyn Diagnostics> {
        self.iter().find(|d| d.name() == name)
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// What grew since `earlier` (live intervals).
    pub fn since(&self, earlier: &DiagnosticsSet) -> DiagnosticsSet {
        DiagnosticsSet {
            parts: self
                .parts
                .iter()
                .map(|(name, d)| {
                    let d = d.as_ref().map(|d| match earlier.get(d.name()) {
                        Some(old) => d.since(old),
                        None => d.clone_box(),
                    });
                    (*name, d)
                })
                .collect(),
        }
    }
}

impl std::ops::AddAssign<&DiagnosticsSet> for DiagnosticsSet {
    fn add_assign(&mut self, o: &DiagnosticsSet) {
        if self.parts.is_empty() {
            self.parts = o.parts.clone();
            return;
        }
        for (name, d) in &mut self.parts {
            if let (Some(d), Some(other)) = (d.as_mut(), o.get(name)) {
                d.merge(other);
            }
        }
    }
}
