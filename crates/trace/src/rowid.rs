//! Row ids held as numbers.
//!
//! Every connection row of a case is named `<evidence16>:<record>` (the first 16 hex
//! digits of its evidence's SHA-256 and its record number: `store::tables::record_id`).
//! Trace keeps one or two of them per connection for the findings, and as strings they
//! were a quarter of its memory on a case of millions of flow records (a `String` per
//! row plus the heap block behind it). [`RowId`] keeps the two numbers instead and
//! gives the same text, equality and order as the string it stands for, so findings,
//! sorts and their tie-breaks are what they were with strings.

use std::cmp::Ordering;
use std::fmt;

/// A row id: the two numbers of a canonical `<16 lowercase hex digits>:<decimal>` id,
/// or, for anything else (tests and benchmarks name rows freely), the text itself.
/// Equality, order and `Display` are those of the text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RowId {
    /// `<evidence:016x>:<record>`.
    Stored {
        /// The first 16 hex digits of the evidence digest, as a number.
        evidence: u64,
        /// The record number (line or byte offset) within that evidence.
        record: u64,
    },
    /// Any other text (never a canonical id: [`RowId::from`] parses those).
    Named(Box<str>),
}

/// Which evidence file a row came from: rows of one capture share a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowSource<'a> {
    /// The evidence prefix of a [`RowId::Stored`].
    Stored(u64),
    /// The text before the first `:` of a [`RowId::Named`] (all of it without one).
    Named(&'a str),
}

impl RowId {
    /// The id of row `record` of the evidence with SHA-256 `evidence` (hex): the same
    /// text as `store::tables::record_id`.
    pub fn of_row(evidence: &str, record: u64) -> RowId {
        match evidence.get(..16).and_then(lower_hex_u64) {
            Some(evidence) => RowId::Stored { evidence, record },
            // `record_id`'s text; the whole digest where it has no 16-byte prefix.
            None => {
                RowId::Named(format!("{}:{record}", evidence.get(..16).unwrap_or(evidence)).into())
            }
        }
    }

    /// The evidence the row came from.
    pub fn source(&self) -> RowSource<'_> {
        match self {
            RowId::Stored { evidence, .. } => RowSource::Stored(*evidence),
            RowId::Named(s) => RowSource::Named(s.split_once(':').map_or(&**s, |(e, _)| e)),
        }
    }
}

/// Exactly 16 lowercase hex digits as a number (the form `{:016x}` writes back).
fn lower_hex_u64(s: &str) -> Option<u64> {
    let ok = s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then(|| u64::from_str_radix(s, 16).ok()).flatten()
}

/// A record number as `Display` writes it: digits, no sign, no leading zero.
fn canonical_u64(s: &str) -> Option<u64> {
    let ok =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    ok.then(|| s.parse().ok()).flatten()
}

impl From<&str> for RowId {
    /// Parses a canonical id into its numbers; any other text is kept as it is.
    fn from(s: &str) -> RowId {
        if let Some((e, r)) = s.split_once(':') {
            if let (Some(evidence), Some(record)) = (lower_hex_u64(e), canonical_u64(r)) {
                return RowId::Stored { evidence, record };
            }
        }
        RowId::Named(s.into())
    }
}

impl From<String> for RowId {
    fn from(s: String) -> RowId {
        RowId::from(s.as_str())
    }
}

impl fmt::Display for RowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowId::Stored { evidence, record } => write!(f, "{evidence:016x}:{record}"),
            RowId::Named(s) => f.write_str(s),
        }
    }
}

impl PartialEq<str> for RowId {
    /// Whether `other` is this id's text (a named id never holds a canonical text, so
    /// comparing texts is enough there).
    fn eq(&self, other: &str) -> bool {
        match self {
            RowId::Stored { evidence, record } => other.split_once(':').is_some_and(|(e, r)| {
                lower_hex_u64(e) == Some(*evidence) && canonical_u64(r) == Some(*record)
            }),
            RowId::Named(s) => **s == *other,
        }
    }
}

impl PartialEq<&str> for RowId {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Ord for RowId {
    /// The order of the texts. Two canonical ids have the same 17 first characters
    /// exactly when their evidence numbers are equal, and zero-padded lowercase hex
    /// sorts as its value does; the record numbers then compare as decimal strings.
    fn cmp(&self, other: &RowId) -> Ordering {
        match (self, other) {
            (
                RowId::Stored {
                    evidence: ea,
                    record: ra,
                },
                RowId::Stored {
                    evidence: eb,
                    record: rb,
                },
            ) => ea.cmp(eb).then_with(|| decimal_text_cmp(*ra, *rb)),
            _ => self.to_string().cmp(&other.to_string()),
        }
    }
}

impl PartialOrd for RowId {
    fn partial_cmp(&self, other: &RowId) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Number of decimal digits of `n` (1 for 0).
fn decimal_digits(n: u64) -> u32 {
    n.checked_ilog10().map_or(1, |d| d + 1)
}

/// Compares two numbers as their decimal texts compare ("10" < "9"). With equal
/// lengths that is their values' order; otherwise the longer one's leading digits, as
/// many as the shorter has, decide, and a tie puts the shorter (a prefix) first.
fn decimal_text_cmp(a: u64, b: u64) -> Ordering {
    let (da, db) = (decimal_digits(a), decimal_digits(b));
    match da.cmp(&db) {
        Ordering::Equal => a.cmp(&b),
        Ordering::Less => a.cmp(&(b / 10u64.pow(db - da))).then(Ordering::Less),
        Ordering::Greater => (a / 10u64.pow(da - db)).cmp(&b).then(Ordering::Greater),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_numbers_compare_as_their_texts() {
        let mut values = vec![0, 1, 9, 10, 11, 19, 99, 100, 101, 909, 1000, 12345];
        values.extend([
            u64::MAX,
            u64::MAX / 10,
            1844674407370955161,
            18446744073709551,
        ]);
        // A deterministic spread of other values, short and long.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 60));
        }
        for &a in &values {
            for &b in &values {
                assert_eq!(
                    decimal_text_cmp(a, b),
                    a.to_string().cmp(&b.to_string()),
                    "{a} against {b}"
                );
            }
        }
    }

    #[test]
    fn ids_keep_the_text_order_and_form_of_their_strings() {
        let texts = [
            "c7e25b453687730f:12",
            "c7e25b453687730f:9",
            "c7e25b453687730f:0",
            "c7e25b4536877310:1",
            "07e25b453687730f:123456789",
            "ffffffffffffffff:18446744073709551615",
            "C7E25B453687730F:12",
            "c7e25b453687730f:012",
            "c7e25b45:3",
            "true-in",
            "s7#2",
            "a:7",
        ];
        let ids: Vec<RowId> = texts.iter().map(|&t| RowId::from(t)).collect();
        for (id, t) in ids.iter().zip(texts) {
            assert_eq!(id.to_string(), t);
            assert_eq!(*id, t);
        }
        assert!(matches!(ids[0], RowId::Stored { .. }));
        assert!(matches!(ids[5], RowId::Stored { .. }));
        for i in [6, 7, 8, 9] {
            assert!(matches!(ids[i], RowId::Named(_)), "{}", texts[i]);
        }
        for (a, ta) in ids.iter().zip(texts) {
            for (b, tb) in ids.iter().zip(texts) {
                assert_eq!(a.cmp(b), ta.cmp(tb), "{ta} against {tb}");
            }
        }
    }

    #[test]
    fn a_row_gets_the_id_the_store_names_it_by() {
        let digest = "c7e25b453687730f4b2a0c0e8d1f6a5b9e3d2c1b0a9f8e7d6c5b4a3928171605";
        let id = RowId::of_row(digest, 4711);
        assert_eq!(
            id.to_string(),
            relaytrace_store::tables::record_id(digest, 4711)
        );
        assert!(matches!(id, RowId::Stored { .. }));
        assert_eq!(id.source(), RowId::of_row(digest, 1).source());
        // Not a digest this build wrote: kept as text, still the store's name.
        let odd = RowId::of_row("XYZ", 3);
        assert_eq!(
            odd.to_string(),
            relaytrace_store::tables::record_id("XYZ", 3)
        );
        assert_eq!(odd.source(), RowSource::Named("XYZ"));
    }
}
