//! Bounds-checked integer readers: the one definition every parser uses. Out of range is `None`
//! (or 0 for the `_or_0` forms, where the caller has checked the length already). And the one
//! decimal writer of the output's hand-written text (endpoints, RFC 3339 times).

/// A `u16` at `at` in the given byte order.
#[inline]
pub(crate) fn u16_at(b: &[u8], at: usize, big_endian: bool) -> Option<u16> {
    match b.get(at..at.checked_add(2)?) {
        Some(&[x, y]) if big_endian => Some(u16::from_be_bytes([x, y])),
        Some(&[x, y]) => Some(u16::from_le_bytes([x, y])),
        _ => None,
    }
}

/// A `u32` at `at` in the given byte order.
#[inline]
pub(crate) fn u32_at(b: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    match b.get(at..at.checked_add(4)?) {
        Some(&[w, x, y, z]) => Some(read_u32([w, x, y, z], big_endian)),
        _ => None,
    }
}

/// A big-endian (network order) `u16` at `at`.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    u16_at(b, at, true)
}

/// A little-endian `u16` at `at`, 0 when out of range.
#[inline]
pub(crate) fn le16_or_0(b: &[u8], at: usize) -> u16 {
    u16_at(b, at, false).unwrap_or(0)
}

/// A little-endian `u32` at `at`, 0 when out of range.
#[inline]
pub(crate) fn le32_or_0(b: &[u8], at: usize) -> u32 {
    u32_at(b, at, false).unwrap_or(0)
}

/// A `u32` in the given byte order.
#[inline]
pub(crate) fn read_u32(b: [u8; 4], big_endian: bool) -> u32 {
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// Asks the CPU to start loading the cache line that holds `*r` (a hint: it reads nothing into a
/// register, cannot fault, and does nothing on other architectures). Used to overlap the memory
/// latency of the next packets with the work on this one.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn prefetch<T: ?Sized>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is a hint with no architectural effect: it never loads into a
    // register and never faults; the address comes from a live reference anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (r as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// `v`'s last `out.len()` decimal digits, zero-padded, into `out`.
pub(crate) fn put_digits(out: &mut [u8], mut v: u64) {
    for c in out.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// How many decimal digits `v` has (1 for 0).
pub(crate) fn decimal_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_lengths_and_digits() {
        for (v, n) in [(0, 1), (9, 1), (10, 2), (65_535, 5), (u64::MAX, 20)] {
            assert_eq!(decimal_len(v), n, "{v}");
            let mut out = vec![0u8; n];
            put_digits(&mut out, v);
            assert_eq!(out, v.to_string().into_bytes());
        }
        let mut padded = [0u8; 4];
        put_digits(&mut padded, 7);
        assert_eq!(&padded, b"0007");
    }

    #[test]
    fn readers_check_bounds_and_byte_order() {
        let b = [1, 2, 3, 4, 5];
        assert_eq!(u16_at(&b, 0, true), Some(0x0102));
        assert_eq!(u16_at(&b, 0, false), Some(0x0201));
        assert_eq!(u32_at(&b, 1, true), Some(0x0203_0405));
        assert_eq!(u32_at(&b, 2, true), None);
        assert_eq!(u16_at(&b, usize::MAX, true), None, "no overflow");
        assert_eq!((le16_or_0(&b, 4), le32_or_0(&b, 3)), (0, 0));
        assert_eq!(be16(&b, 3), Some(0x0405));
    }
}
