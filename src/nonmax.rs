//! [`NonMaxU32`]: a `u32` kept in 4 bytes even inside an `Option`, for per-flow ids and counts
//! (a flow's tracker slot and follow-up id, a tracker slot's announcement count, a handshake
//! time in microseconds), where `Option<u32>` would take 8 and a flow table holds hundreds of
//! thousands of them.

use std::num::NonZeroU32;

/// A `u32` other than `u32::MAX`, stored plus one in a [`NonZeroU32`], so that an `Option` of it
/// uses the niche.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NonMaxU32(NonZeroU32);

impl NonMaxU32 {
    pub const ZERO: NonMaxU32 = NonMaxU32(NonZeroU32::MIN);

    /// `v`, or `None` for `u32::MAX`.
    #[inline]
    pub fn new(v: u32) -> Option<NonMaxU32> {
        NonZeroU32::new(v.wrapping_add(1)).map(NonMaxU32)
    }

    /// `v`, `u32::MAX - 1` for `u32::MAX`.
    #[inline]
    pub fn saturating(v: u32) -> NonMaxU32 {
        NonMaxU32(NonZeroU32::new(v.saturating_add(1)).unwrap_or(NonZeroU32::MAX))
    }

    #[inline]
    pub fn get(self) -> u32 {
        self.0.get() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_but_the_largest_round_trips_in_four_bytes() {
        for v in [0, 1, 12_345, u32::MAX - 1] {
            assert_eq!(NonMaxU32::new(v).map(NonMaxU32::get), Some(v));
            assert_eq!(NonMaxU32::saturating(v).get(), v);
        }
        assert_eq!(NonMaxU32::new(u32::MAX), None);
        assert_eq!(NonMaxU32::saturating(u32::MAX).get(), u32::MAX - 1);
        assert_eq!(NonMaxU32::ZERO.get(), 0);
        assert_eq!(std::mem::size_of::<Option<NonMaxU32>>(), 4);
    }
}
