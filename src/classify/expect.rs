//! The expectation table: follow-up connections announced by signalling (or inferred from a
//! live session), each with a basis, a lifetime in capture time, caps, and an outcome at the end.

use std::collections::HashMap;
use std::net::IpAddr;

use ahash::RandomState;

use super::ServiceId;
use crate::flow::{Flow, Outcome};
use crate::packet::{Endpoint, Nanos, Proto};

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
}

impl Expectation {
    /// `established` beats `one_way` beats the failures: one working follow-up is enough.
    fn merge(&mut self, o: Outcome) {
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

/// All expectations of a run, indexed by announced address.
#[derive(Debug)]
pub struct ExpectTable {
    pub list: Vec<Expectation>,
    by_addr: HashMap<(Proto, Endpoint), u32, RandomState>,
    config: ExpectConfig,
    /// Announcements dropped because a cap was reached.
    pub dropped_at_cap: u64,
    /// Announcements of an address already expected (refreshed, not added).
    pub repeated: u64,
}

impl ExpectTable {
    pub fn new(config: ExpectConfig) -> ExpectTable {
        ExpectTable {
            list: Vec::new(),
            by_addr: HashMap::with_hasher(RandomState::new()),
            config,
            dropped_at_cap: 0,
            repeated: 0,
        }
    }

    /// Adds an expectation; an address already expected for the same service is refreshed
    /// instead. `parent_count` is how many the parent has announced so far (capped).
    pub fn add(&mut self, e: Expectation, parent_count: &mut u32) -> Option<u32> {
        let key = (e.proto, e.addr);
        if e.basis == Basis::Signalled {
            if let Some(&id) = self.by_addr.get(&key) {
                let old = &mut self.list[id as usize];
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
        let id = self.list.len() as u32;
        if e.basis == Basis::Signalled {
            self.by_addr.insert(key, id);
        }
        self.list.push(e);
        Some(id)
    }

    /// The live signalled expectation a new flow fulfils: its server's address, or for UDP
    /// either end (media may flow from the announced port as well as to it).
    pub fn find(&self, proto: Proto, client: Endpoint, server: Endpoint, ts: Nanos) -> Option<u32> {
        let live = |ep: Endpoint| {
            self.by_addr
                .get(&(proto, ep))
                .copied()
                .filter(|&id| ts <= self.list[id as usize].expires)
        };
        live(server).or_else(|| {
            if proto == Proto::Udp {
                live(client)
            } else {
                None
            }
        })
    }

    /// Counts a finished follow-up flow on the expectations it fulfilled: every announced
    /// address that received traffic in it (for UDP media both ends may have been announced),
    /// or the inferred session that tagged it.
    pub fn flow_ended(&mut self, f: &Flow) {
        let Some(own) = f.followup_of else {
            return;
        };
        let mut ids = [None; 3];
        if self
            .list
            .get(own as usize)
            .is_some_and(|e| e.basis == Basis::Inferred)
        {
            ids[0] = Some(own);
        }
        let received = |ep: Endpoint, packets: u64| {
            if packets == 0 {
                return None;
            }
            self.by_addr
                .get(&(f.proto, ep))
                .copied()
                .filter(|&id| self.list[id as usize].announced_ts <= f.last_ts)
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
            if let Some(e) = self.list.get_mut(id as usize) {
                e.flows += 1;
                e.packets += f.packets();
                e.bytes += f.bytes();
                e.merge(f.outcome());
            }
        }
    }
}
