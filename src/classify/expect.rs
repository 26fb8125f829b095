//! The expectation table: follow-up connections announced by signalling (or inferred from a
//! live session), each with a basis, a lifetime in capture time, caps, and an outcome at the end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use ahash::RandomState;

use super::{Flow, ServiceId};
use crate::flow::Outcome;
use crate::packet::{Endpoint, Nanos, Proto};

/// The largest expectation id (ids wrap to 0 after it; `u32::MAX` is never one).
pub const MAX_ID: u32 = u32::MAX - 1;

/// How an expectation was learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    /// An address in a decoded signalling message.
    Signalled,
    /// Deduced from a live session between two hosts (audio, undecodable H.323).
    Inferred,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Signalled => "signalled",
            Basis::Inferred => "inferred",
        }
    }
}

/// One expected follow-up connection.
#[derive(Clone, Debug)]
pub struct Expectation {
    /// Stable id (flows' `followup_of`), in order of announcement.
    pub id: u32,
    pub service: ServiceId,
    pub basis: Basis,
    pub parent_service: ServiceId,
    pub parent_client: Endpoint,
    pub parent_server: Endpoint,
    pub proto: Proto,
    /// The announced address; for inferred expectations the port is 0 (any) and `peer` names
    /// the other host.
    pub addr: Endpoint,
    pub peer: Option<IpAddr>,
    /// What kind of address was announced (`h245Address`, `mediaChannel`, `Call-Back`, ...).
    pub kind: &'static str,
    /// The message that announced it (`connect`, `OLCAck`, `fastStart,setup`, `SUBSCRIBE`, ...).
    pub announced_by: &'static str,
    pub announced_ts: Nanos,
    /// Capture time after which no new flow matches.
    pub expires: Nanos,
    /// A connection is not required (H.245 tunnelled, a RAS registration): not seeing one is
    /// normal.
    pub optional: bool,
    /// Best outcome of the flows that matched, `None` while none has ended.
    pub outcome: Option<Outcome>,
    pub flows: u64,
    pub packets: u64,
    pub bytes: u64,
    /// Free-form attributes from the announcing tracker (an RPC interface, ...).
    pub attrs: Vec<(&'static str, String)>,
}

impl Expectation {
    /// A signalled, required expectation of `parent` (its service, client and server), announced
    /// at `ts` and live for `lifetime`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        parent: (ServiceId, Endpoint, Endpoint),
        service: ServiceId,
        proto: Proto,
        addr: Endpoint,
        kind: &'static str,
        announced_by: &'static str,
        ts: Nanos,
        lifetime: Nanos,
    ) -> Expectation {
        Expectation {
            id: 0,
            service,
            basis: Basis::Signalled,
            parent_service: parent.0,
            parent_client: parent.1,
            parent_server: parent.2,
            proto,
            addr,
            peer: None,
            kind,
            announced_by,
            announced_ts: ts,
            expires: ts.saturating_add(lifetime),
            optional: false,
            outcome: None,
            flows: 0,
            packets: 0,
            bytes: 0,
            attrs: Vec::new(),
        }
    }

    /// `established` beats `one_way` beats the failures: one working follow-up is enough.
    pub(crate) fn merge(&mut self, o: Outcome) {
        let rank = |o: Outcome| match o {
            Outcome::Established => 4,
            Outcome::OneWay => 3,
            Outcome::IcmpUnreachable => 2,
            Outcome::Refused => 1,
            Outcome::Unanswered => 0,
        };
        if self.outcome.is_none_or(|cur| rank(o) > rank(cur)) {
            self.outcome = Some(o);
        }
    }
}

/// Limits of the expectation table.
#[derive(Clone, Copy, Debug)]
pub struct ExpectConfig {
    /// Most expectations one parent flow may announce.
    pub per_parent: u32,
    /// Most expectations in one run (live mode: at once).
    pub total: usize,
}

impl Default for ExpectConfig {
    fn default() -> Self {
        ExpectConfig {
            per_parent: 256,
            total: 200_000,
        }
    }
}

/// How long after its expiry an expectation stays in the table when the caller retires old
/// ones (live mode), so that flows still open on it are counted on it.
pub const RETIRE_AFTER: Nanos = 600 * 1_000_000_000;

/// All expectations of a run, indexed by id and by announced address.
#[derive(Debug)]
pub struct ExpectTable {
    /// Expectations in the table, by id, each in a box of its own: ids only grow, so the
    /// B-tree's nodes stay about half full, and 192-byte entries in place took about 360 bytes
    /// each (analyze mode keeps every expectation to the end of the run: README, Benchmarks).
    pub list: BTreeMap<u32, Box<Expectation>>,
    /// Expectations retired by [`retire`](Self::retire), counted by service and final outcome
    /// (`None`: not seen).
    pub retired: BTreeMap<(ServiceId, Option<Outcome>), u64>,
    next_id: u32,
    by_addr: HashMap<(Proto, Endpoint), u32, RandomState>,
    config: ExpectConfig,
    /// Announcements dropped because a cap was reached.
    pub dropped_at_cap: u64,
    /// Announcements of an address already expected (refreshed, not added).
    pub repeated: u64,
    /// Ids added since the event stream last looked (`None`: no events, nothing kept).
    pub announced: Option<Vec<u32>>,
    /// Services only a domain controller announces ([`super::DC_SERVICES`], set from the
    /// catalogue by the trackers).
    pub dc_services: Vec<ServiceId>,
    /// Per host, how many expectations in the table are of a domain controller's service.
    dc_hosts: HashMap<IpAddr, u32, RandomState>,
    /// Ids of the copies of other shards' expectations ([`adopt`](Self::adopt)): each
    /// expectation is counted once in `retired`, by the shard that announced it.
    adopted: HashSet<u32, RandomState>,
}

impl ExpectTable {
    pub fn new(config: ExpectConfig) -> ExpectTable {
        ExpectTable {
            list: BTreeMap::new(),
            retired: BTreeMap::new(),
            next_id: 0,
            by_addr: HashMap::with_hasher(RandomState::new()),
            config,
            dropped_at_cap: 0,
            repeated: 0,
            announced: None,
            dc_services: Vec::new(),
            dc_hosts: HashMap::with_hasher(RandomState::new()),
            adopted: HashSet::with_hasher(RandomState::new()),
        }
    }

    /// Whether `host` announced a domain controller's interface (an expectation in the table):
    /// the report's rule for which NSPI registry pin applies (a Global Catalog answers NSPI).
    pub fn is_dc(&self, host: IpAddr) -> bool {
        self.dc_hosts.contains_key(&host)
    }

    /// Adds an expectation; an address already expected for the same service is refreshed
    /// instead. `parent_count` is how many the parent has announced so far (capped).
    pub fn add(&mut self, e: Expectation, parent_count: &mut u32) -> Option<u32> {
        let key = (e.proto, e.addr);
        if e.basis == Basis::Signalled {
            if let Some(old) = self.by_addr.get(&key).and_then(|id| self.list.get_mut(id)) {
                let id = old.id;
                if old.service == e.service && e.announced_ts <= old.expires {
                    old.expires = old.expires.max(e.expires);
                    old.optional &= e.optional;
                    self.repeated += 1;
                    return Some(id);
                }
            }
        }
        if *parent_count >= self.config.per_parent || self.list.len() >= self.config.total {
            self.dropped_at_cap += 1;
            return None;
        }
        *parent_count += 1;
        let id = self.take_id();
        if e.basis == Basis::Signalled {
            self.by_addr.insert(key, id);
        }
        if self.dc_services.contains(&e.service) {
            *self.dc_hosts.entry(e.addr.ip).or_insert(0) += 1;
        }
        self.list.insert(id, Box::new(Expectation { id, ..e }));
        if let Some(v) = self.announced.as_mut() {
            v.push(id);
        }
        Some(id)
    }

    /// The next expectation id. Ids run from 0 to [`MAX_ID`] and then wrap: a flow keeps the id
    /// it fulfilled in 4 bytes, as the id plus one ([`super::FlowClass::followup_of`]).
    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = if id >= MAX_ID { 0 } else { id + 1 };
        id
    }

    /// Adds a signalled expectation another shard of the run announced (see `shard`): no cap per
    /// parent, not an announcement of this table (`announced`, `repeated` stay as they are).
    /// `None` when the address is already expected for the same service (it is refreshed) or
    /// the table is full.
    pub fn adopt(&mut self, e: &Expectation) -> Option<u32> {
        let key = (e.proto, e.addr);
        if let Some(old) = self.by_addr.get(&key).and_then(|id| self.list.get_mut(id)) {
            if old.service == e.service && e.announced_ts <= old.expires {
                old.expires = old.expires.max(e.expires);
                return None;
            }
        }
        if self.list.len() >= self.config.total {
            return None;
        }
        let id = self.take_id();
        self.by_addr.insert(key, id);
        self.adopted.insert(id);
        self.list.insert(
            id,
            Box::new(Expectation {
                id,
                outcome: None,
                flows: 0,
                packets: 0,
                bytes: 0,
                ..e.clone()
            }),
        );
        Some(id)
    }

    /// The live signalled expectation a new flow fulfils: its server's address, or for UDP
    /// either end (media may flow from the announced port as well as to it).
    pub fn find(&self, proto: Proto, client: Endpoint, server: Endpoint, ts: Nanos) -> Option<u32> {
        let live = |ep: Endpoint| {
            self.by_addr
                .get(&(proto, ep))
                .copied()
                .filter(|id| self.list.get(id).is_some_and(|e| ts <= e.expires))
        };
        live(server).or_else(|| {
            if proto == Proto::Udp {
                live(client)
            } else {
                None
            }
        })
    }

    /// The signalled expectation at either end of a flow open from `first` to `last` that was
    /// live, or announced less than its lifetime later: the flow predates the announcement (the
    /// capture joined it mid-way, or its client asked the endpoint mapper before the capture
    /// began), and its roles may have been guessed backwards. An answer about a server endpoint
    /// says it was there before too (Exchange registers its endpoints when a service starts).
    pub fn find_during(
        &self,
        proto: Proto,
        ends: [Endpoint; 2],
        first: Nanos,
        last: Nanos,
    ) -> Option<u32> {
        ends.into_iter().find_map(|ep| {
            let id = *self.by_addr.get(&(proto, ep))?;
            let e = self.list.get(&id)?;
            let lifetime = e.expires.saturating_sub(e.announced_ts);
            let since = e.announced_ts.saturating_sub(lifetime);
            (e.basis == Basis::Signalled && since <= last && first <= e.expires).then_some(id)
        })
    }

    /// Counts a finished follow-up flow on the expectations it fulfilled: every announced
    /// address that received traffic in it (for UDP media both ends may have been announced),
    /// or the inferred session that tagged it.
    pub fn flow_ended(&mut self, f: &Flow) {
        let Some(own) = f.class.followup_of() else {
            return;
        };
        let mut ids = [None; 3];
        if self
            .list
            .get(&own)
            .is_some_and(|e| e.basis == Basis::Inferred)
        {
            ids[0] = Some(own);
        }
        let received = |ep: Endpoint, packets: u64| {
            if packets == 0 {
                return None;
            }
            self.by_addr.get(&(f.proto, ep)).copied().filter(|id| {
                self.list
                    .get(id)
                    .is_some_and(|e| e.announced_ts <= f.last_ts)
            })
        };
        ids[1] = received(
            f.server,
            f.to_server.packets.max(u64::from(f.proto == Proto::Tcp)),
        );
        ids[2] = received(f.client, f.to_client.packets);
        if ids[2] == ids[1] {
            ids[2] = None;
        }
        for id in ids.into_iter().flatten() {
            if let Some(e) = self.list.get_mut(&id) {
                e.flows += 1;
                e.packets += f.packets();
                e.bytes += f.bytes();
                e.merge(f.outcome());
            }
        }
    }

    /// Takes out of the table the expectations that expired more than [`RETIRE_AFTER`] before
    /// `now`, keeping their outcomes in [`retired`](Self::retired): memory stays bounded over a
    /// run of days. A flow still open on a retired expectation counts only in its service.
    /// `concluded` sees each one (and whether its host is a domain controller, judged before any
    /// of them leaves) before it goes.
    pub fn retire(&mut self, now: Nanos, mut concluded: impl FnMut(&Expectation, bool)) {
        let old: Vec<u32> = self
            .list
            .values()
            .filter(|e| now.saturating_sub(e.expires) > RETIRE_AFTER)
            .map(|e| e.id)
            .collect();
        for id in &old {
            if let Some(e) = self.list.get(id) {
                concluded(e, self.is_dc(e.addr.ip));
            }
        }
        for id in old {
            if let Some(e) = self.list.remove(&id) {
                let key = (e.proto, e.addr);
                if self.by_addr.get(&key) == Some(&id) {
                    self.by_addr.remove(&key);
                }
                // A copy is counted by the shard that announced it, and never counted its host
                // as a domain controller here.
                if self.adopted.remove(&id) {
                    continue;
                }
                *self.retired.entry((e.service, e.outcome)).or_insert(0) += 1;
                if self.dc_services.contains(&e.service) {
                    if let Some(n) = self.dc_hosts.get_mut(&e.addr.ip) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            self.dc_hosts.remove(&e.addr.ip);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expectation(port: u16, expires: Nanos) -> Expectation {
        let ep = |s: &str| Endpoint::new(s.parse().unwrap(), port);
        Expectation {
            id: 0,
            service: ServiceId(1),
            basis: Basis::Signalled,
            parent_service: ServiceId(0),
            parent_client: ep("10.0.0.1"),
            parent_server: ep("10.0.0.2"),
            proto: Proto::Udp,
            addr: ep("10.0.0.1"),
            peer: None,
            kind: "mediaChannel",
            announced_by: "OLCAck",
            announced_ts: 0,
            expires,
            optional: false,
            outcome: None,
            flows: 0,
            packets: 0,
            bytes: 0,
            attrs: Vec::new(),
        }
    }

    #[test]
    fn caps_repeats_and_retirement() {
        let mut t = ExpectTable::new(ExpectConfig {
            per_parent: 2,
            total: 10,
        });
        let mut parent = 0;
        let a = t.add(expectation(5000, 100), &mut parent).unwrap();
        assert_eq!(
            t.add(expectation(5000, 200), &mut parent),
            Some(a),
            "a repeat refreshes"
        );
        assert_eq!((t.repeated, t.list[&a].expires), (1, 200));
        let b = t.add(expectation(5002, 100), &mut parent).unwrap();
        assert_ne!(a, b);
        assert_eq!(
            t.add(expectation(5004, 100), &mut parent),
            None,
            "per-parent cap"
        );
        assert_eq!(t.dropped_at_cap, 1);
        let ep = |port| Endpoint::new("10.0.0.1".parse().unwrap(), port);
        assert_eq!(t.find(Proto::Udp, ep(9), ep(5000), 150), Some(a));
        assert_eq!(t.find(Proto::Udp, ep(9), ep(5000), 250), None, "expired");
        let mut seen = Vec::new();
        t.retire(150 + RETIRE_AFTER, |e, _| seen.push(e.id));
        assert_eq!(
            seen,
            [b],
            "each retired expectation is seen once, before it goes"
        );
        assert_eq!(
            t.list.len(),
            1,
            "only the one that expired at 100 is retired"
        );
        t.retire(250 + RETIRE_AFTER, |e, _| seen.push(e.id));
        assert_eq!(seen, [b, a]);
        assert!(t.list.is_empty());
        assert_eq!(t.retired[&(ServiceId(1), None)], 2);
        assert_eq!(t.find(Proto::Udp, ep(9), ep(5000), 0), None);
        let mut other = 0;
        assert!(
            t.add(expectation(5006, 100), &mut other)
                .is_some_and(|id| id > b),
            "ids are never reused"
        );
    }

    #[test]
    fn ids_wrap_before_the_one_a_flow_cannot_keep() {
        let mut t = ExpectTable::new(ExpectConfig::default());
        t.next_id = MAX_ID - 1;
        let mut parent = 0;
        let ids: Vec<u32> = (0..3)
            .filter_map(|i| t.add(expectation(6000 + i, 100), &mut parent))
            .collect();
        assert_eq!(ids, [MAX_ID - 1, MAX_ID, 0]);
        // Each id, the largest and 0 too, is what a flow that fulfils it keeps.
        for id in ids {
            let mut c = super::super::FlowClass::default();
            assert_eq!(c.followup_of(), None);
            c.set_followup_of(id);
            assert_eq!(c.followup_of(), Some(id));
        }
    }

    #[test]
    fn a_host_is_a_dc_while_a_dc_service_of_it_is_in_the_table() {
        let mut t = ExpectTable::new(ExpectConfig::default());
        t.dc_services = vec![ServiceId(7)];
        let host: IpAddr = "10.0.0.1".parse().unwrap();
        let mut parent = 0;
        t.add(expectation(5000, 100), &mut parent).unwrap();
        assert!(!t.is_dc(host), "an NSPI-like service alone says nothing");
        let dc = Expectation {
            service: ServiceId(7),
            ..expectation(5002, 200)
        };
        t.add(dc, &mut parent).unwrap();
        assert!(t.is_dc(host));
        assert!(!t.is_dc("10.0.0.2".parse().unwrap()));
        let mut judged = Vec::new();
        t.retire(150 + RETIRE_AFTER, |e, dc| judged.push((e.addr.port, dc)));
        assert_eq!(
            judged,
            [(5000, true)],
            "judged while the DC's entry is there"
        );
        assert!(t.is_dc(host));
        t.retire(250 + RETIRE_AFTER, |e, dc| judged.push((e.addr.port, dc)));
        assert_eq!(judged[1], (5002, true));
        assert!(!t.is_dc(host), "forgotten with its last DC expectation");
    }

    /// A copy of another shard's expectation is concluded when it retires but not counted in
    /// `retired` (the announcing shard counts it), and leaves the host's DC count alone.
    #[test]
    fn retired_copies_are_not_counted() {
        let mut t = ExpectTable::new(ExpectConfig::default());
        t.dc_services = vec![ServiceId(7)];
        let host: IpAddr = "10.0.0.1".parse().unwrap();
        let mut parent = 0;
        let own = Expectation {
            service: ServiceId(7),
            ..expectation(5002, 300)
        };
        t.add(own, &mut parent).unwrap();
        let copy = t
            .adopt(&Expectation {
                service: ServiceId(7),
                ..expectation(5004, 100)
            })
            .unwrap();
        t.add(expectation(5000, 100), &mut parent).unwrap();
        let mut concluded = Vec::new();
        t.retire(150 + RETIRE_AFTER, |e, _| concluded.push(e.id));
        assert!(concluded.contains(&copy), "the copy leaves too");
        assert_eq!(concluded.len(), 2);
        assert_eq!(
            t.retired.values().sum::<u64>(),
            1,
            "only this table's own: {:?}",
            t.retired
        );
        assert!(
            t.is_dc(host),
            "the copy did not take the own DC entry's count"
        );
    }
}
