//! Merges the workers' analyses into the run's: counters add up, expectations are numbered in the
//! order the run announced them (copies counted on their originals), flow records are put in one
//! documented order and cut to their caps.

use std::collections::{BTreeMap, HashMap};

use super::worker::Output;
use crate::analyze::{Analysis, Config};
use crate::classify::{Basis, Expectation};
use crate::firewall::Collector;
use crate::summary::{FlowRecord, InputStats, Summary, MAX_FAILURES_KEPT};
use crate::track::Signalling;

/// The run's analysis from the reader's input counters and the workers' outputs.
pub fn merge(mut input: InputStats, mut outs: Vec<Output>, config: &Config) -> Analysis {
    let ids = number_expectations(&outs);
    for (w, out) in outs.iter_mut().enumerate() {
        renumber(&mut out.analysis.summary, w, &ids.map);
    }
    let mut followups = ids.list;
    for (w, out) in outs.iter().enumerate() {
        for e in out.analysis.followups.iter() {
            if let Some(&g) = ids.map.get(&(w, e.id)) {
                if ids.first.get(&(w, e.id)) != Some(&true) {
                    // A copy or a cross-worker repeat: its flows count on the one listed.
                    if let Some(t) = followups.get_mut(g as usize) {
                        add_counts(t, e);
                    }
                }
            }
        }
    }
    // Rule groups are keyed by what they hold (proto, hosts, service), not by worker or
    // expectation id: they add up like counters, into a collector with the run's whole budget.
    let firewalls: Vec<_> = outs
        .iter_mut()
        .filter_map(|o| o.analysis.firewall.take())
        .collect();
    let mut outs = outs.into_iter().map(|o| o.analysis);
    let Some(mut a) = outs.next() else {
        // No worker output: the reader's counters alone (cannot happen with one worker or more).
        return empty(input, config);
    };
    // The catalogue's warnings are every worker's; the reader's follow them.
    let mut warnings = std::mem::take(&mut a.input.warnings);
    warnings.append(&mut input.warnings);
    input.warnings = warnings;
    add_worker_input(&mut input, &a.input);
    let mut records = Records::take(&mut a.summary);
    for b in outs {
        add_worker_input(&mut input, &b.input);
        let mut s = b.summary;
        records.add(Records::take(&mut s));
        a.summary += &s;
        a.flows_evicted += b.flows_evicted;
        a.flows_expired += b.flows_expired;
        a.peak_flows += b.peak_flows;
        add_signalling(&mut a.signalling, &b.signalling);
        a.expectations_dropped_at_cap += b.expectations_dropped_at_cap;
        for (k, n) in b.followups_retired {
            *a.followups_retired.entry(k).or_insert(0) += n;
        }
    }
    a.signalling.budget.limit = config.reassembly_budget;
    records.put(&mut a.summary);
    a.input = input;
    a.followups = followups;
    a.firewall = config.firewall.map(|opt| {
        let mut c = Collector::new(std::sync::Arc::clone(&a.catalogue), opt);
        for f in &firewalls {
            c.merge(f);
        }
        c
    });
    a
}

fn empty(input: InputStats, config: &Config) -> Analysis {
    let catalogue = std::sync::Arc::new(config.catalogue.clone());
    Analysis {
        summary: Summary::new(catalogue.len(), config.keep_flows),
        catalogue,
        input,
        flows_evicted: 0,
        flows_expired: 0,
        peak_flows: 0,
        followups: Vec::new(),
        signalling: Signalling::default(),
        expectations_dropped_at_cap: 0,
        followups_retired: BTreeMap::new(),
        firewall: None,
    }
}

/// What the workers counted of the input beyond the frames the reader counted itself.
fn add_worker_input(input: &mut InputStats, w: &InputStats) {
    for (k, n) in &w.skipped {
        *input.skipped.entry(k.clone()).or_insert(0) += n;
    }
    input.orphan_fragments += w.orphan_fragments;
    input.icmp_unreachable += w.icmp_unreachable;
    input.icmp_unreachable_bytes += w.icmp_unreachable_bytes;
    input.skipped_bytes += w.skipped_bytes;
}

fn add_signalling(a: &mut Signalling, b: &Signalling) {
    for ((_, s), (_, t)) in a.trackers.iter_mut().zip(&b.trackers) {
        s.flows += t.flows;
        s.decoded += &t.decoded;
        s.errors += &t.errors;
        s.gave_up += t.gave_up;
        s.stream += t.stream;
    }
    // Workers' peaks need not coincide: the sum is an upper bound of the run's.
    a.budget.used += b.budget.used;
    a.budget.peak += b.budget.peak;
    a.budget.refused += b.budget.refused;
    a.expectations_dropped_at_cap += b.expectations_dropped_at_cap;
}

fn add_counts(t: &mut Expectation, e: &Expectation) {
    t.flows += e.flows;
    t.packets += e.packets;
    t.bytes += e.bytes;
    if let Some(o) = e.outcome {
        t.merge(o);
    }
}

/// The run's expectations and how the workers' ids map to the run's.
struct Numbering {
    /// The run's expectations, indexed by their new id; counts of copies not added yet.
    list: Vec<Expectation>,
    /// (worker, its id) -> the run's id.
    map: HashMap<(usize, u32), u32>,
    /// Whether (worker, id) is the expectation listed under its run id (not a copy or repeat).
    first: HashMap<(usize, u32), bool>,
}

fn number_expectations(outs: &[Output]) -> Numbering {
    let mut own: Vec<(u64, usize, &Expectation)> = Vec::new();
    for (w, out) in outs.iter().enumerate() {
        for e in out.analysis.followups.iter() {
            if !out.copies.contains_key(&e.id) {
                // Announced while flushing at the end: after every frame.
                let at = out
                    .announced_at
                    .get(&e.id)
                    .copied()
                    .filter(|&s| s > 0)
                    .unwrap_or(u64::MAX);
                own.push((at, w, e));
            }
        }
    }
    own.sort_by_key(|&(at, w, e)| (at, w, e.id));
    let mut n = Numbering {
        list: Vec::with_capacity(own.len()),
        map: HashMap::new(),
        first: HashMap::new(),
    };
    // Signalled addresses listed so far: (proto, address) -> (run id, worker).
    let mut by_addr = HashMap::new();
    for (_, w, e) in own {
        let key = (e.proto, e.addr);
        if e.basis == Basis::Signalled {
            if let Some(&(g, from)) = by_addr.get(&key) {
                if let Some(old) = n.list.get_mut(g as usize).filter(|o: &&mut Expectation| {
                    from != w && o.service == e.service && e.announced_ts <= o.expires
                }) {
                    // Another worker announced it again: one analyzer would have refreshed it.
                    old.expires = old.expires.max(e.expires);
                    old.optional &= e.optional;
                    n.map.insert((w, e.id), g);
                    n.first.insert((w, e.id), false);
                    continue;
                }
            }
        }
        let g = n.list.len() as u32;
        if e.basis == Basis::Signalled {
            by_addr.insert(key, (g, w));
        }
        n.list.push(Expectation { id: g, ..e.clone() });
        n.map.insert((w, e.id), g);
        n.first.insert((w, e.id), true);
    }
    for (w, out) in outs.iter().enumerate() {
        for (&local, origin) in &out.copies {
            if let Some(&g) = n.map.get(origin) {
                n.map.insert((w, local), g);
                n.first.insert((w, local), false);
            }
        }
    }
    n
}

/// Gives worker `w`'s flow records the run's expectation ids.
fn renumber(s: &mut Summary, w: usize, map: &HashMap<(usize, u32), u32>) {
    let fix = |r: &mut FlowRecord| {
        if let Some(id) = r.followup_of {
            r.followup_of = map.get(&(w, id)).copied();
        }
    };
    s.failures.iter_mut().for_each(fix);
    s.broken.iter_mut().for_each(fix);
    if let Some(f) = s.flows.as_mut() {
        f.iter_mut().for_each(fix);
    }
}

/// The flow record lists of the workers, gathered to be ordered and cut once.
struct Records {
    flows: Option<Vec<FlowRecord>>,
    max_flows: usize,
    failures: Vec<FlowRecord>,
    broken: Vec<FlowRecord>,
}

impl Records {
    fn take(s: &mut Summary) -> Records {
        Records {
            flows: s.flows.as_mut().map(std::mem::take),
            max_flows: s.max_flow_records,
            failures: std::mem::take(&mut s.failures),
            broken: std::mem::take(&mut s.broken),
        }
    }

    fn add(&mut self, o: Records) {
        if let (Some(a), Some(b)) = (self.flows.as_mut(), o.flows) {
            a.extend(b);
        }
        self.failures.extend(o.failures);
        self.broken.extend(o.broken);
    }

    /// Puts the lists back, sorted by (first time, protocol, client, server, last time) and cut
    /// to their caps (what is cut is counted as not listed).
    fn put(self, s: &mut Summary) {
        let order = |a: &FlowRecord, b: &FlowRecord| {
            (a.first_ts, a.proto, a.client, a.server, a.last_ts)
                .cmp(&(b.first_ts, b.proto, b.client, b.server, b.last_ts))
        };
        let cut = |mut v: Vec<FlowRecord>, cap: usize, dropped: &mut u64| {
            v.sort_by(order);
            if v.len() > cap {
                *dropped += (v.len() - cap) as u64;
                v.truncate(cap);
            }
            v
        };
        s.failures = cut(self.failures, MAX_FAILURES_KEPT, &mut s.failures_dropped);
        s.broken = cut(self.broken, MAX_FAILURES_KEPT, &mut s.broken_dropped);
        if let Some(f) = self.flows {
            s.flows = Some(cut(f, self.max_flows, &mut s.flow_records_dropped));
        }
    }
}
