//! Human-readable capture times and sizes for the table, without a date-time dependency.
//!
//! Capture times are shown in UTC, always, and labelled so: a report reads the same wherever it
//! is printed (and matches the JSON's RFC 3339 strings); `TZ` is not consulted.

use crate::bytes::put_digits;
use crate::packet::Nanos;

/// `YYYY-MM-DD HH:MM:SS.mmm` (UTC) for seconds since the Unix epoch.
pub fn datetime(secs: f64) -> String {
    let (days, rest) = split_days(secs);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {}", clock(rest))
}

/// `HH:MM:SS.mmm` (UTC) for seconds since the Unix epoch.
pub fn time_of_day(secs: f64) -> String {
    clock(split_days(secs).1)
}

/// True when two times (seconds since the epoch) fall on the same UTC day.
pub fn same_day(a: f64, b: f64) -> bool {
    split_days(a).0 == split_days(b).0
}

/// RFC 3339 in UTC with microseconds: `2004-03-01T12:00:01.500000Z`.
///
/// Written digit by digit into a fixed template: every flow `--flows` lists and every record of
/// the report's lists has two, and `format!` took about 3 600 instructions a call (an eighth of
/// a `--flows` run on the real-traffic mix). A [`Nanos`] spans the years 1677 to 2262, so the
/// template always fits; `format!` stays for anything outside 0000–9999.
pub fn rfc3339(ts: Nanos) -> String {
    let us = ts.div_euclid(1000);
    let days = us.div_euclid(86_400_000_000);
    let rest = us.rem_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    let s = rest / 1_000_000;
    let Ok(year) = u64::try_from(y) else {
        return rfc3339_slow(y, m, d, rest);
    };
    if year > 9999 {
        return rfc3339_slow(y, m, d, rest);
    }
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    // `rest` is below a day's microseconds: all of these are non-negative.
    let fields: [(usize, usize, u64); 7] = [
        (0, 4, year),
        (5, 7, u64::from(m)),
        (8, 10, u64::from(d)),
        (11, 13, (s / 3600).unsigned_abs()),
        (14, 16, (s / 60 % 60).unsigned_abs()),
        (17, 19, (s % 60).unsigned_abs()),
        (20, 26, (rest % 1_000_000).unsigned_abs()),
    ];
    for (from, to, v) in fields {
        if let Some(digits) = b.get_mut(from..to) {
            put_digits(digits, v);
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// [`rfc3339`] through `format!`, for a year outside 0000–9999 (no [`Nanos`] has one).
#[cold]
fn rfc3339_slow(y: i64, m: u32, d: u32, rest: i64) -> String {
    let s = rest / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        rest % 1_000_000
    )
}

fn split_days(secs: f64) -> (i64, i64) {
    let ms = (secs * 1000.0).round() as i64;
    (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000))
}

fn clock(ms: i64) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Bytes with a binary unit: `512 B`, `98.1 KiB`, `1.2 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// A duration in seconds, short: `850 ms`, `12.3 s`, `4m05s`, `3h12m`, `2248d01h`.
pub fn duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else if secs < 3600.0 {
        let s = secs as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else if secs < 172_800.0 {
        let s = secs as u64;
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else {
        let s = secs as u64;
        format!("{}d{:02}h", s / 86_400, s / 3600 % 24)
    }
}

/// Milliseconds, short: `0.42 ms`, `12.3 ms`, `1.2 s`.
pub fn millis(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(datetime(0.0), "1970-01-01 00:00:00.000");
        assert_eq!(datetime(1_078_142_401.5), "2004-03-01 12:00:01.500");
        assert_eq!(datetime(951_782_400.0), "2000-02-29 00:00:00.000");
        assert_eq!(time_of_day(1_078_142_401.25), "12:00:01.250");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(100_454), "98.1 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(duration(0.25), "250 ms");
        assert_eq!(duration(245.0), "4m05s");
        assert_eq!(millis(0.4242), "0.42 ms");
        assert_eq!(duration(194_230_805.0), "2248d01h");
        assert_eq!(duration(7_200.0), "2h00m");
        assert_eq!(
            rfc3339(1_078_142_401_500_000_000),
            "2004-03-01T12:00:01.500000Z"
        );
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(
            rfc3339(951_782_400_000_001_000),
            "2000-02-29T00:00:00.000001Z"
        );
        assert!(same_day(1_078_142_401.0, 1_078_142_401.0 + 3600.0));
        assert!(!same_day(1_078_185_599.0, 1_078_185_600.0));
        assert_eq!(rfc3339(i64::MIN), "1677-09-21T00:12:43.145224Z");
        assert_eq!(rfc3339(i64::MAX), "2262-04-11T23:47:16.854775Z");
        assert_eq!(
            rfc3339_slow(-1, 1, 2, 3_723_000_004),
            "-001-01-02T01:02:03.000004Z"
        );
        assert_eq!(
            rfc3339_slow(10_000, 12, 31, 0),
            "10000-12-31T00:00:00.000000Z"
        );
    }

    proptest::proptest! {
        /// The digit-by-digit template writes what `format!` writes, for any capture time.
        #[test]
        fn rfc3339_writes_what_format_writes(ts in proptest::prelude::any::<i64>()) {
            let us = ts.div_euclid(1000);
            let (y, m, d) = civil_from_days(us.div_euclid(86_400_000_000));
            let want = rfc3339_slow(y, m, d, us.rem_euclid(86_400_000_000));
            proptest::prop_assert_eq!(rfc3339(ts), want);
        }
    }
}
