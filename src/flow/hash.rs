//! The flow table's hash: a flow's protocol and its two endpoints, in either order, to 64 bits.
//!
//! Each endpoint is mixed on its own, with keys drawn per run, and the two results' sum and
//! product (both the same either way round) are mixed together, so both directions of a flow
//! hash alike without ordering the endpoints first. The sum alone collided: one keyed fold is
//! nearly linear in the low bits of what it mixes when its key has leading zero bits, so
//! endpoints a few ports apart summed alike (with one run's keys in twenty, up to 1 201 of the
//! 65 536 port pairs between two hosts shared a hash with another pair). A keyed multiply folds
//! every step (the 128-bit product's halves XORed, as ahash does), so the hash is as seeded as
//! ahash's and costs a fraction of it: hashing the derived `Hash` of a key with its endpoints in
//! order with ahash was seven chained rounds plus the comparison that ordered them, about 5 % of
//! a one-thread run of the real-traffic benchmark (README, Benchmarks).
//!
//! Inputs are distinct before they are mixed: an IPv4 endpoint is its address and port as one
//! 48-bit word; an IPv6 one folds its two address halves, then its port, each step keyed, so no
//! two endpoints collide whatever the keys (as a port packed into an address half would).

use std::net::IpAddr;

use crate::packet::{Endpoint, Proto};

/// Per-run keys of the flow hash.
#[derive(Clone, Debug)]
pub(crate) struct FlowHasher {
    k: [u64; 5],
}

/// The 128-bit product of `a` and `b`, its halves XORed.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let r = u128::from(a).wrapping_mul(u128::from(b));
    (r as u64) ^ ((r >> 64) as u64)
}

impl FlowHasher {
    /// Keys drawn from the process's random source (ahash's per-run seed).
    pub(crate) fn new() -> FlowHasher {
        let seed = ahash::RandomState::new();
        let mut k = [0u64; 5];
        for (i, k) in (0u64..).zip(k.iter_mut()) {
            // Odd, so no key multiplies away the low bits of what it mixes.
            *k = seed.hash_one(i) | 1;
        }
        FlowHasher { k }
    }

    /// Keys given (tests: keys a run could draw).
    #[cfg(test)]
    pub(crate) fn with_keys(k: [u64; 5]) -> FlowHasher {
        FlowHasher { k }
    }

    /// The hash of a flow of `proto` between `a` and `b` (the same for `b` and `a`).
    #[inline]
    pub(crate) fn hash(&self, proto: Proto, a: Endpoint, b: Endpoint) -> u64 {
        let (a, b) = (self.endpoint(a), self.endpoint(b));
        let proto = match proto {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Icmp => 1,
            Proto::Other(n) => 0x100 | u64::from(n),
        };
        // The protocol is mixed on its own too: put straight into the last fold's key, as it
        // was, flows differing only in protocol crowded into a few buckets with one run's keys
        // in a hundred (up to 78 of 65 536 in one).
        let sum = a.wrapping_add(b) ^ fold(proto ^ self.k[2], self.k[1]);
        // Odd, so the fold keeps the sum's low bits.
        fold(sum ^ self.k[3], (a.wrapping_mul(b) ^ self.k[4]) | 1)
    }

    #[inline(always)]
    fn endpoint(&self, e: Endpoint) -> u64 {
        match e.ip {
            IpAddr::V4(v4) => {
                let x = (u64::from(u32::from(v4)) << 16) | u64::from(e.port);
                fold(x ^ self.k[0], self.k[1])
            }
            IpAddr::V6(v6) => {
                let x = u128::from(v6);
                let h = fold((x as u64) ^ self.k[0], ((x >> 64) as u64) ^ self.k[2]);
                // The tag bit keeps an IPv6 endpoint's word apart from IPv4's 48 bits.
                fold(h ^ (u64::from(e.port) | 1 << 63), self.k[1])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testkit::ep;
    use proptest::prelude::*;

    fn endpoint() -> impl Strategy<Value = Endpoint> {
        prop_oneof![
            (any::<u32>(), any::<u16>())
                .prop_map(|(ip, port)| Endpoint::new(IpAddr::V4(ip.into()), port)),
            (any::<u128>(), any::<u16>())
                .prop_map(|(ip, port)| Endpoint::new(IpAddr::V6(ip.into()), port)),
        ]
    }

    proptest! {
        #[test]
        fn both_directions_hash_alike(a in endpoint(), b in endpoint(), n in any::<u8>()) {
            let h = FlowHasher::new();
            for proto in [Proto::Tcp, Proto::Udp, Proto::Icmp, Proto::Other(n)] {
                prop_assert_eq!(h.hash(proto, a, b), h.hash(proto, b, a));
            }
        }
    }

    /// The hash of the `i`th key of a family of similar keys.
    type KeyFamily<'a> = Box<dyn Fn(usize) -> u64 + 'a>;

    /// What a flow table of 2^17 buckets sees (its home is the hash's top 17 bits): flows
    /// that differ in one port, in one address, in both ports, or only in protocol spread over
    /// the buckets about as evenly as random numbers would, and runs are seeded apart.
    #[test]
    fn structured_keys_spread_over_the_buckets() {
        structured_keys_spread(&FlowHasher::new());
        let other = FlowHasher::new();
        let (a, server) = (ep("10.0.0.1:1025"), ep("10.0.0.2:25"));
        assert_ne!(
            FlowHasher::new().hash(Proto::Tcp, a, server),
            other.hash(Proto::Tcp, a, server),
            "each table draws its own keys"
        );
    }

    /// Keys runs can draw that the hash used to spread badly (about one run in twenty, and one
    /// in a hundred):
    /// - with the endpoints' hashes only added, 1 201 of the 65 536 port pairs between two hosts
    ///   shared a hash with another pair: the fold with a key of leading zero bits (`k[1]`) is
    ///   nearly linear in the ports, and the sum of two linear terms collides;
    /// - with the protocol put straight into the last fold's key, 78 of 256 × 256 flows that
    ///   differ in protocol and port fell in one bucket.
    #[test]
    fn keys_runs_drew_that_spread_badly_before_spread_now() {
        structured_keys_spread(&FlowHasher::with_keys([
            0x0944_b4e9_0253_cba1,
            0x0021_2de2_05ec_7a69,
            0x7664_c5b7_f5b1_67ab,
            0xf363_ec4b_7ca2_ed09,
            0xf92a_7921_720d_f9d3,
        ]));
        structured_keys_spread(&FlowHasher::with_keys([
            0x65c5_a760_0f46_4fcd,
            0x937d_f3b9_0fc9_1b4f,
            0x922e_f20f_8c18_742f,
            0xbd2c_4b5b_0fbd_4f99,
            0x763c_8f16_9941_6913,
        ]));
    }

    fn structured_keys_spread(h: &FlowHasher) {
        const BITS: u32 = 17;
        const N: usize = 1 << 16;
        // The tag (the upper 32 bits) scaled to the buckets: its top bits.
        let home = |x: u64| (x >> (64 - BITS)) as usize;
        let server = ep("10.0.0.2:25");
        let v6_server = ep("[2001:db8::2]:443");
        let families: [(&str, KeyFamily<'_>); 6] = [
            (
                "client ports",
                Box::new(|i| h.hash(Proto::Tcp, ep(&format!("10.0.0.1:{}", i)), server)),
            ),
            (
                "client addresses",
                Box::new(|i| {
                    let ip = IpAddr::V4((0x0a00_0000u32 + i as u32).into());
                    h.hash(Proto::Udp, Endpoint::new(ip, 53), server)
                }),
            ),
            (
                "both ports",
                Box::new(|i| {
                    let (p, q) = ((i & 0xff) as u16, (i >> 8) as u16);
                    h.hash(
                        Proto::Tcp,
                        ep(&format!("10.0.0.1:{p}")),
                        ep(&format!("10.0.0.2:{q}")),
                    )
                }),
            ),
            (
                "IPv6 addresses",
                Box::new(|i| {
                    let ip = IpAddr::V6((0x2001_0db8_u128 << 96 | i as u128).into());
                    h.hash(Proto::Tcp, Endpoint::new(ip, 80), v6_server)
                }),
            ),
            (
                "IPv6 prefixes",
                Box::new(|i| {
                    let ip = IpAddr::V6(((i as u128) << 112 | 1).into());
                    h.hash(Proto::Tcp, Endpoint::new(ip, 80), v6_server)
                }),
            ),
            (
                "protocols and ports",
                Box::new(|i| {
                    let proto = Proto::Other((i & 0xff) as u8);
                    h.hash(proto, ep(&format!("10.0.0.1:{}", i >> 8)), server)
                }),
            ),
        ];
        for (name, hash) in &families {
            let mut load = vec![0u32; 1 << BITS];
            let mut tags = std::collections::HashSet::new();
            for i in 0..N {
                let x = hash(i);
                load[home(x)] += 1;
                tags.insert(x >> 32);
            }
            // 2^16 keys in 2^17 buckets: random numbers leave about 39 % of keys sharing
            // a bucket and the fullest bucket at 6 or 7.
            let max = *load.iter().max().unwrap();
            let shared: u32 = load.iter().filter(|&&n| n > 1).sum();
            assert!(max <= 9, "{name}: {max} keys in one bucket");
            assert!(
                (shared as usize) < N / 2,
                "{name}: {shared} of {N} keys share a bucket"
            );
            assert!(
                tags.len() > N - 8,
                "{name}: only {} distinct tags",
                tags.len()
            );
        }
    }
}
