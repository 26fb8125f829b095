//! Gives trailing IP fragments the ports of their first fragment.
//!
//! Only the first fragment of a fragmented datagram carries the transport header; without help,
//! the rest (for example the tail of a large DNS answer over UDP) would land in a port-0 flow.
//! The tracker remembers the ports of recent first fragments in a fixed-size ring plus an index,
//! both allocated up front: per-packet work never allocates, and the oldest entry makes room for
//! a new one. Fragments are not reassembled; a trailing fragment that arrives before its first
//! fragment stays unresolved.

use std::collections::HashMap;
use std::net::IpAddr;

use ahash::RandomState;

use crate::packet::{Packet, Proto};

/// Identifies one fragmented datagram (RFC 791 / RFC 8200).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct DatagramKey {
    src: IpAddr,
    dst: IpAddr,
    proto: Proto,
    id: u32,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: DatagramKey,
    src_port: u16,
    dst_port: u16,
}

/// Gives trailing IP fragments the ports of their first fragment.
///
/// Holds at most `capacity` datagrams; when full, the one recorded first is forgotten.
pub struct FragmentTracker {
    /// Ring of entries in the order they were recorded; `next` is the oldest (or empty) slot.
    ring: Vec<Option<Entry>>,
    next: usize,
    /// Key to ring slot.
    index: HashMap<DatagramKey, usize, RandomState>,
}

impl FragmentTracker {
    /// A tracker for up to `capacity` datagrams in flight (at least 1). Allocates everything now.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        FragmentTracker {
            ring: vec![None; capacity],
            next: 0,
            // Twice the entries: removals leave tombstones, and with the table at most half full
            // the hash map cleans them up in place instead of growing.
            index: HashMap::with_capacity_and_hasher(capacity * 2, RandomState::new()),
        }
    }

    /// How many datagrams the tracker can remember.
    pub fn capacity(&self) -> usize {
        self.ring.len()
    }

    /// How many datagrams it remembers now.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when it remembers none.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Records first fragments; fills in proto ports of trailing ones. Returns false for a trailing
    /// fragment whose first fragment was not seen (its ports stay 0). Packets that are not
    /// fragments are left alone (true).
    #[inline]
    pub fn resolve(&mut self, p: &mut Packet<'_>) -> bool {
        // Almost no packet is a fragment: keep this check inline and the table work out of line.
        match p.fragment {
            None => true,
            Some(_) => self.resolve_fragment(p),
        }
    }

    #[inline(never)]
    fn resolve_fragment(&mut self, p: &mut Packet<'_>) -> bool {
        let Some(fragment) = p.fragment else {
            return true;
        };
        let key = DatagramKey {
            src: p.src.ip,
            dst: p.dst.ip,
            proto: p.proto,
            id: fragment.id,
        };
        if fragment.offset == 0 {
            self.record(key, p.src.port, p.dst.port);
            return true;
        }
        match self.index.get(&key).and_then(|&slot| self.ring.get(slot)) {
            Some(Some(entry)) => {
                p.src.port = entry.src_port;
                p.dst.port = entry.dst_port;
                true
            }
            _ => false,
        }
    }

    fn record(&mut self, key: DatagramKey, src_port: u16, dst_port: u16) {
        let entry = Entry {
            key,
            src_port,
            dst_port,
        };
        // The same id again (a retransmitted first fragment, or the id wrapped): latest wins.
        if let Some(&slot) = self.index.get(&key) {
            if let Some(s) = self.ring.get_mut(slot) {
                *s = Some(entry);
            }
            return;
        }
        let slot = self.next;
        let Some(s) = self.ring.get_mut(slot) else {
            return;
        };
        if let Some(old) = s.replace(entry) {
            self.index.remove(&old.key);
        }
        self.index.insert(key, slot);
        self.next = (slot + 1) % self.ring.len();
    }
}

impl std::fmt::Debug for FragmentTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FragmentTracker")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Endpoint, Fragment};

    fn packet(id: u32, offset: u16, ports: (u16, u16)) -> Packet<'static> {
        Packet {
            ts: 0,
            wire_len: 100,
            proto: Proto::Udp,
            src: Endpoint::new([10, 0, 0, 1].into(), ports.0),
            dst: Endpoint::new([10, 0, 0, 2].into(), ports.1),
            tcp_flags: 0,
            seq: 0,
            ack: 0,
            window: 0,
            payload: &[],
            unreachable: None,
            fragment: Some(Fragment {
                id,
                offset,
                more: offset == 0,
            }),
            icmp: None,
        }
    }

    #[test]
    fn trailing_fragment_gets_first_fragments_ports() {
        let mut t = FragmentTracker::new(4);
        assert!(t.resolve(&mut packet(7, 0, (53, 33000))));
        let mut tail = packet(7, 1480, (0, 0));
        assert!(t.resolve(&mut tail));
        assert_eq!((tail.src.port, tail.dst.port), (53, 33000));
        // Every trailing fragment resolves, not only the first one.
        let mut tail2 = packet(7, 2960, (0, 0));
        assert!(t.resolve(&mut tail2));
        assert_eq!(tail2.src.port, 53);
    }

    #[test]
    fn unknown_first_fragment_leaves_ports_zero() {
        let mut t = FragmentTracker::new(4);
        let mut tail = packet(9, 8, (0, 0));
        assert!(!t.resolve(&mut tail));
        assert_eq!((tail.src.port, tail.dst.port), (0, 0));
        // Different protocol, direction or id: not the same datagram.
        t.resolve(&mut packet(9, 0, (1, 2)));
        let mut other = packet(9, 8, (0, 0));
        other.proto = Proto::Tcp;
        assert!(!t.resolve(&mut other));
        let mut reversed = packet(9, 8, (0, 0));
        std::mem::swap(&mut reversed.src, &mut reversed.dst);
        assert!(!t.resolve(&mut reversed));
    }

    #[test]
    fn oldest_is_evicted_when_full() {
        let mut t = FragmentTracker::new(3);
        for id in 0..5 {
            t.resolve(&mut packet(id, 0, (1000 + id as u16, 53)));
        }
        assert_eq!(t.len(), 3);
        for (id, known) in [(0, false), (1, false), (2, true), (3, true), (4, true)] {
            let mut tail = packet(id, 8, (0, 0));
            assert_eq!(t.resolve(&mut tail), known, "id {id}");
        }
    }

    #[test]
    fn same_id_again_updates_ports() {
        let mut t = FragmentTracker::new(2);
        t.resolve(&mut packet(1, 0, (1, 2)));
        t.resolve(&mut packet(1, 0, (3, 4)));
        assert_eq!(t.len(), 1);
        let mut tail = packet(1, 8, (0, 0));
        t.resolve(&mut tail);
        assert_eq!((tail.src.port, tail.dst.port), (3, 4));
    }

    #[test]
    fn non_fragments_are_untouched() {
        let mut t = FragmentTracker::new(0);
        assert_eq!(t.capacity(), 1);
        let mut p = packet(1, 0, (5, 6));
        p.fragment = None;
        assert!(t.resolve(&mut p));
        assert!(t.is_empty());
    }

    #[test]
    fn churn_does_not_grow_the_index() {
        let mut t = FragmentTracker::new(100);
        // `capacity()` is entries plus room left; tombstones lower it, growing would raise it.
        let room = t.index.capacity();
        for id in 0..100_000 {
            t.resolve(&mut packet(id, 0, (1, 2)));
            assert!(t.index.capacity() <= room);
        }
        assert_eq!(t.len(), 100);
    }
}
