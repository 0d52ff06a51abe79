//! Exact decimal time parsing.

use thiserror::Error;

/// Why a decimal seconds value could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeParseError {
    /// Empty input.
    #[error("empty time value")]
    Empty,
    /// A character that is not a digit, sign or single dot.
    #[error("not a decimal number of seconds: {0:?}")]
    NotDecimal(String),
    /// Not an ISO 8601 timestamp (`2017-01-30T16:12:26.985026+0100`), or one of a
    /// date or time that does not exist (February 30th, 25 o'clock).
    #[error("not an ISO 8601 timestamp (YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm] of a date and time that exist): {0:?}")]
    NotIso8601(String),
    /// Does not fit in i64 nanoseconds (year 2262).
    #[error("time value out of range: {0:?}")]
    OutOfRange(String),
}

/// Parses `"1300475167.096535"` (seconds with any number of decimals) into integer
/// nanoseconds without going through a float, so microseconds printed by Zeek
/// survive exactly; digits beyond nanoseconds are truncated.
pub fn parse_decimal_seconds_ns(s: &str) -> Result<i64, TimeParseError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(TimeParseError::Empty);
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(TimeParseError::NotDecimal(s.to_string()));
    }
    let overflow = || TimeParseError::OutOfRange(s.to_string());
    let mut secs: i64 = 0;
    for b in int_part.bytes() {
        secs = secs
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or_else(overflow)?;
    }
    let mut frac: i64 = 0;
    for i in 0..9 {
        let d = frac_part
            .as_bytes()
            .get(i)
            .map_or(0, |b| i64::from(b - b'0'));
        frac = frac * 10 + d;
    }
    let ns = secs
        .checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(frac))
        .ok_or_else(overflow)?;
    Ok(if neg { -ns } else { ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_microseconds() {
        let cases = [
            ("1300475167.096535", 1_300_475_167_096_535_000),
            ("0.000001", 1_000),
            ("12", 12_000_000_000),
            ("3.1234567891", 3_123_456_789),
            ("-0.5", -500_000_000),
            (".25", 250_000_000),
        ];
        for (input, want) in cases {
            assert_eq!(parse_decimal_seconds_ns(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "1.2.3", "1e5", "-", "99999999999999999999"] {
            assert!(parse_decimal_seconds_ns(bad).is_err(), "{bad}");
        }
    }
}

/// Parses an ISO-8601 / RFC 3339 timestamp as written by Zeek JSON logs
/// (`2018-03-24T17:16:39.739898Z`) and Suricata EVE (`2017-01-30T16:12:26.985026+0100`,
/// offset with or without a colon) into nanoseconds since the Unix epoch, exactly.
pub fn parse_iso8601_ns(s: &str) -> Result<i64, TimeParseError> {
    let bad = || TimeParseError::NotIso8601(s.to_string());
    let b = s.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, TimeParseError> {
        let part = &b[range];
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 31,
    };
    if !(1..=12).contains(&month)
        || !(1..=month_days).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        for k in 0..9 {
            let d = if start + k < i {
                i64::from(b[start + k] - b'0')
            } else {
                0
            };
            frac_ns = frac_ns * 10 + d;
        }
    }
    let offset_s = match &b[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let digits: Vec<u8> = rest.iter().copied().filter(|c| *c != b':').collect();
            if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            let v = |k: usize| i64::from(digits[k] - b'0');
            let off = (v(0) * 10 + v(1)) * 3600 + (v(2) * 10 + v(3)) * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    secs.checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(frac_ns))
        .ok_or_else(|| TimeParseError::OutOfRange(s.to_string()))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil` algorithm, public domain description).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod iso_tests {
    use super::*;

    #[test]
    fn parses_zeek_and_eve_forms() {
        let cases = [
            // Zeek JSON (ssh.json line 1; same record's TSV ts is 1521911799.739898)
            ("2018-03-24T17:16:39.739898Z", 1_521_911_799_739_898_000),
            // Suricata EVE with +0100 offset
            ("2017-01-30T16:12:26.985026+0100", 1_485_789_146_985_026_000),
            (
                "2017-01-30T16:12:26.985026+01:00",
                1_485_789_146_985_026_000,
            ),
            ("1970-01-01T00:00:00Z", 0),
            // the next two checked with GNU `date -u -d ... +%s`
            ("2000-02-29T12:00:00-0030", 951_827_400_000_000_000),
            ("2000-02-29T12:00:00Z", 951_825_600_000_000_000),
        ];
        for (input, want) in cases {
            assert_eq!(parse_iso8601_ns(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_bad_dates() {
        for bad in [
            "",
            "2018-13-01T00:00:00Z",
            "2018-03-24 17:16",
            "2018-03-24T17:16:39.Z",
            "x018-03-24T17:16:39Z",
            "2018-03-24T17:16:39+1",
            "2014-02-30T00:00:00Z",
            "2014-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2014-04-31T00:00:00Z",
        ] {
            let e = parse_iso8601_ns(bad).unwrap_err().to_string();
            assert!(
                bad.is_empty() || e.starts_with("not an ISO 8601 timestamp"),
                "{bad}: {e}"
            );
        }
        assert!(parse_iso8601_ns("2016-02-29T00:00:00Z").is_ok());
        assert!(parse_iso8601_ns("2000-02-29T23:59:59Z").is_ok());
    }
}

/// Formats nanoseconds since the Unix epoch as `2018-03-24T17:16:39.739898Z`
/// (microseconds, UTC): the inverse of [`parse_iso8601_ns`] at Zeek's precision.
pub fn format_iso8601_us(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let micros = ns.rem_euclid(1_000_000_000) / 1_000;
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        tod / 3600,
        (tod / 60) % 60,
        tod % 60
    )
}

/// Inverse of `days_from_civil` (same public-domain algorithm description).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn round_trips_with_parser() {
        for s in [
            "2018-03-24T17:16:39.739898Z",
            "1970-01-01T00:00:00.000000Z",
            "2000-02-29T23:59:59.999999Z",
            "1969-12-31T23:59:59.500000Z",
        ] {
            assert_eq!(format_iso8601_us(parse_iso8601_ns(s).unwrap()), s);
        }
    }
}
