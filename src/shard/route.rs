//! Which worker a frame goes to: a hash of its unordered IP address pair, so both directions of a
//! flow, its IP fragments, the ICMP errors quoting it, and the follow-ups its signalling announces
//! between the same two hosts meet in one worker. And the flow table's sweep rule, run by the
//! reader over every frame so every worker sweeps at the same points of the capture.

use std::net::IpAddr;

use crate::flow::SWEEP_EVERY;
use crate::packet::{Nanos, Packet};

/// The worker (of `n`) for a decoded frame.
#[inline]
pub fn worker_of(p: &Packet<'_>, n: usize) -> usize {
    let (a, b) = match p.quoted() {
        // The error belongs to the flow it quotes (path-MTU messages are ordinary ICMP: the
        // decoder does not set them).
        Some(u) => (u.quoted.src.ip, u.quoted.dst.ip),
        None => (p.src.ip, p.dst.ip),
    };
    worker_for(a, b, n)
}

/// The worker (of `n`) for frames between hosts `a` and `b`.
#[inline]
pub fn worker_for(a: IpAddr, b: IpAddr, n: usize) -> usize {
    shard_of(pair_hash(a, b), n)
}

/// Address pairs the reader analyses itself (worker 0), out of every [`OWN_WEIGHT`] +
/// [`WORKER_WEIGHT`] per other worker: the reader also reads and decodes every frame, so its
/// own share is smaller. With two threads it takes a quarter. A third had been faster in three
/// earlier sittings; since the per-frame costs changed, a quarter is: on 2026-12-08, best of
/// 9 and of 7 alternating runs, 0.52 → 0.51 s on the real-traffic mix and 0.99 → 0.94 s on the
/// generated capture, where the reader (read, decode, route and its own share) was the
/// busier thread at a third, about 810 instructions a frame against the worker's 560 (README
/// "Threads").
pub const OWN_WEIGHT: u64 = 1;
/// Address pairs each worker thread analyses, against the reader's [`OWN_WEIGHT`].
pub const WORKER_WEIGHT: u64 = 3;

/// The weights of `n` workers together.
fn total_weight(n: usize) -> u64 {
    OWN_WEIGHT + (n as u64).saturating_sub(1) * WORKER_WEIGHT
}

/// The share of the address pairs worker `w` (of `n`) analyses: (numerator, denominator).
pub fn share(w: usize, n: usize) -> (u64, u64) {
    let mine = if w == 0 { OWN_WEIGHT } else { WORKER_WEIGHT };
    (mine, total_weight(n))
}

/// The worker (of `n`) for a pair hash, by the shares of [`share`].
fn shard_of(h: u64, n: usize) -> usize {
    let x = pick(h, total_weight(n) as usize) as u64;
    match x.checked_sub(OWN_WEIGHT) {
        None => 0,
        Some(rest) => 1 + (rest / WORKER_WEIGHT) as usize,
    }
}

/// A hash of the two addresses that does not depend on their order, the same on every run.
/// Two IPv4 addresses, nearly every frame, are ordered as numbers and mixed once as one word,
/// instead of ordering two `IpAddr`s and mixing twice: at `--threads 2` the reader's
/// instructions went from 243.0 to 240.6 M on the real-traffic mix's first 300 000 frames and
/// from 356.2 to 348.5 M on the generated capture's (a changed routing moves some work too).
#[inline]
pub fn pair_hash(a: IpAddr, b: IpAddr) -> u64 {
    if let (IpAddr::V4(a), IpAddr::V4(b)) = (a, b) {
        let (a, b) = (u32::from(a), u32::from(b));
        return mix((u64::from(a.min(b)) << 32) | u64::from(a.max(b)));
    }
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    mix(mix(bits(lo)) ^ bits(hi))
}

fn bits(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let x = u128::from(v6);
            // Both halves count; the tag keeps v4 and low v6 addresses apart.
            (x as u64) ^ ((x >> 64) as u64).rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15
        }
    }
}

/// splitmix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `h` reduced to `0..n` without a division's bias towards low workers.
fn pick(h: u64, n: usize) -> usize {
    ((u128::from(h) * n as u128) >> 64) as usize
}

/// The flow table's sweep rule ([`FlowTable::maybe_sweep`](crate::flow::FlowTable::maybe_sweep)):
/// once per [`SWEEP_EVERY`] of capture time, when two frames in a row are past it.
#[derive(Clone, Copy, Debug)]
pub struct SweepClock {
    next: Nanos,
    armed: Option<Nanos>,
}

impl Default for SweepClock {
    fn default() -> Self {
        SweepClock {
            next: Nanos::MIN,
            armed: None,
        }
    }
}

impl SweepClock {
    /// A decoded frame at `now`: the time to sweep at before it, if one is due.
    pub fn tick(&mut self, now: Nanos) -> Option<Nanos> {
        if self.next == Nanos::MIN {
            self.next = now.saturating_add(SWEEP_EVERY);
            return None;
        }
        if now < self.next {
            self.armed = None;
            return None;
        }
        let Some(first) = self.armed else {
            self.armed = Some(now);
            return None;
        };
        let at = now.min(first);
        self.armed = None;
        self.next = at.saturating_add(SWEEP_EVERY);
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_order_does_not_matter_and_workers_are_in_range() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(pair_hash(a, b), pair_hash(b, a));
        let mut used = [0u32; 3];
        for i in 0..5000u32 {
            let x = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            used[worker_for(x, a, 3)] += 1;
        }
        // Shares 1/7, 3/7, 3/7 (714 and 2 143 of 5 000).
        assert!((600..830).contains(&used[0]), "{used:?}");
        assert!(
            used[1..].iter().all(|n| (1950..2350).contains(n)),
            "{used:?}"
        );
        // Two IPv4 addresses take the one-word path: the same in either order, spread alike.
        let v4 = IpAddr::from(std::net::Ipv4Addr::new(192, 168, 7, 9));
        let mut used = [0u32; 3];
        for i in 0..5000u32 {
            let x = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i * 7919));
            assert_eq!(pair_hash(x, v4), pair_hash(v4, x));
            used[worker_for(x, v4, 3)] += 1;
        }
        assert!((600..830).contains(&used[0]), "{used:?}");
        assert!(
            used[1..].iter().all(|n| (1950..2350).contains(n)),
            "{used:?}"
        );
        assert_eq!(share(0, 3), (1, 7));
        assert_eq!(share(2, 3), (3, 7));
        assert_eq!(share(0, 1), (1, 1));
    }

    #[test]
    fn sweeps_when_two_frames_are_past_the_time() {
        let s = SWEEP_EVERY;
        let mut c = SweepClock::default();
        assert_eq!(c.tick(0), None);
        assert_eq!(c.tick(s + 5), None, "one frame past arms");
        assert_eq!(c.tick(1), None, "a frame before disarms");
        assert_eq!(c.tick(s + 7), None);
        assert_eq!(c.tick(s + 9), Some(s + 7));
        assert_eq!(c.tick(s + 10), None);
    }
}
