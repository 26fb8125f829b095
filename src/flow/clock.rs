//! Capture time checked before anything uses it: a timestamp before 1970, after 2200, or years
//! away from the packets around it is taken as corrupt, counted, and given the time of the packet
//! before it (as Simple Packet Blocks are), so no duration, RTT or deadline can go negative,
//! absurd or overflow.
//!
//! The rule is the flow table's "bogus timestamp" rule: one packet far from its neighbours is a
//! corrupt field; a second packet close to it confirms that the capture's clock really moved
//! (a device that captured before its clock was set), and time continues from there.

use crate::packet::Nanos;

/// The latest capture time accepted: 2200-01-01 00:00:00 UTC. Leaves decades of headroom below
/// `i64::MAX` nanoseconds (2262) for timeouts and grace periods added to it.
pub const MAX_TS: Nanos = 7_258_118_400 * 1_000_000_000;

/// How far one packet may be from the one before it without confirmation: one year.
pub const MAX_JUMP: Nanos = 365 * 86_400 * 1_000_000_000;

/// Checks capture timestamps against their range and their neighbours.
#[derive(Clone, Copy, Debug, Default)]
pub struct CaptureClock {
    /// The time of the last accepted packet.
    last: Option<Nanos>,
    /// A far-away timestamp waiting for a second packet to confirm it.
    pending: Option<Nanos>,
    /// Timestamps replaced.
    pub bogus: u64,
}

impl CaptureClock {
    /// The time to use for a packet stamped `ts`.
    #[inline]
    pub fn check(&mut self, ts: Nanos) -> Nanos {
        if !(0..=MAX_TS).contains(&ts) {
            self.bogus = self.bogus.saturating_add(1);
            return self.last.unwrap_or_else(|| ts.clamp(0, MAX_TS));
        }
        let Some(last) = self.last else {
            self.last = Some(ts);
            return ts;
        };
        // Both are in 0..=MAX_TS, so the difference cannot overflow.
        if (ts - last).abs() <= MAX_JUMP {
            self.pending = None;
            self.last = Some(ts);
            return ts;
        }
        if self.pending.is_some_and(|p| (ts - p).abs() <= MAX_JUMP) {
            // A second packet there: the clock moved.
            self.pending = None;
            self.last = Some(ts);
            return ts;
        }
        self.pending = Some(ts);
        self.bogus = self.bogus.saturating_add(1);
        last
    }

    /// Forgets the neighbours (a new input file has its own clock); the count stays.
    pub fn restart(&mut self) {
        self.last = None;
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;
    const T0: Nanos = 1_121_599_487 * S;

    #[test]
    fn out_of_range_and_lone_jumps_take_the_previous_time() {
        let mut c = CaptureClock::default();
        assert_eq!(c.check(T0), T0);
        assert_eq!(c.check(-8_101_772_158_608_000_000), T0);
        assert_eq!(c.check(i64::MAX - 5), T0);
        assert_eq!(c.check(T0 + 2 * MAX_JUMP), T0);
        assert_eq!(c.check(T0 + S), T0 + S);
        assert_eq!(c.bogus, 3);
    }

    #[test]
    fn two_packets_confirm_a_clock_that_moved() {
        let mut c = CaptureClock::default();
        assert_eq!(c.check(0), 0);
        assert_eq!(c.check(T0), 0);
        assert_eq!(c.check(T0 + S), T0 + S);
        assert_eq!(c.check(T0 + 2 * S), T0 + 2 * S);
        assert_eq!(c.bogus, 1);
    }

    #[test]
    fn the_first_packet_out_of_range_is_clamped() {
        let mut c = CaptureClock::default();
        assert_eq!(c.check(-5), 0);
        assert_eq!(c.check(Nanos::MAX), MAX_TS);
        assert_eq!(c.check(T0), T0);
        c.restart();
        assert_eq!(c.check(T0 + 2 * MAX_JUMP), T0 + 2 * MAX_JUMP);
        assert_eq!(c.bogus, 2);
    }
}
