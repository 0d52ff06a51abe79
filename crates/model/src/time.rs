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
        let d = frac_part.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
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
