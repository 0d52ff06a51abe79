//! [`RangeMap`]: one source's ranges made non-overlapping by the overlap rule.
//!
//! The rule, the same for every source kind: **the narrowest range containing an
//! address wins; between ranges of equal width, the one read last wins.** For CIDR
//! data (MMDB networks, MRT prefixes) this is exactly longest-prefix match; for CSV
//! ranges it is the natural generalisation (a more specific statement beats a broader
//! one). Every overlap is counted so loaders can report it.

use std::collections::BTreeMap;

/// A row of a source before overlap resolution: inclusive `[first, last]` and a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRow<V> {
    /// First address of the range (numeric; IPv4 widened to `u128`).
    pub first: u128,
    /// Last address, inclusive.
    pub last: u128,
    /// What the source says about the range.
    pub value: V,
}

/// Sorted, non-overlapping ranges with values; gaps mean "this source says nothing".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeMap<V> {
    /// Segments in address order: `(first, last, value)`, never overlapping.
    pub segments: Vec<(u128, u128, V)>,
    /// Rows that start inside a range starting before them (or at the same address):
    /// each was resolved by the rule above, and loaders report the count.
    pub overlaps: u64,
}

impl<V: Clone + PartialEq> RangeMap<V> {
    /// Resolves overlaps among `rows` (in source order) by the narrowest-wins rule.
    ///
    /// Fast path: sources without overlaps (the usual case) only need a sort. With
    /// overlaps, rows are painted widest first into an ordered map, each narrower
    /// (or later, at equal width) row overwriting what it covers.
    pub fn from_rows(rows: Vec<RangeRow<V>>) -> Self {
        // Remember read order before sorting: it breaks ties between equal widths.
        let mut indexed: Vec<(usize, RangeRow<V>)> = rows.into_iter().enumerate().collect();
        indexed.sort_by_key(|(i, r)| (r.first, *i));
        let mut overlaps = 0u64;
        let mut reach: Option<u128> = None;
        for (_, r) in &indexed {
            if reach.is_some_and(|end| r.first <= end) {
                overlaps += 1;
            }
            reach = Some(reach.map_or(r.last, |end| end.max(r.last)));
        }
        if overlaps == 0 {
            let segments = indexed
                .into_iter()
                .map(|(_, r)| (r.first, r.last, r.value))
                .collect();
            return RangeMap {
                segments,
                overlaps: 0,
            };
        }
        indexed.sort_by(|(ia, a), (ib, b)| {
            let wa = a.last - a.first;
            let wb = b.last - b.first;
            wb.cmp(&wa).then(ia.cmp(ib))
        });
        let mut map: BTreeMap<u128, (u128, V)> = BTreeMap::new();
        for (_, row) in indexed {
            paint(&mut map, row.first, row.last, row.value);
        }
        let segments = map.into_iter().map(|(s, (e, v))| (s, e, v)).collect();
        RangeMap { segments, overlaps }
    }

    /// The value at `key`, by binary search (used by tests and slow paths only).
    pub fn get(&self, key: u128) -> Option<&V> {
        let i = self.segments.partition_point(|s| s.0 <= key);
        let seg = self.segments.get(i.checked_sub(1)?)?;
        (key <= seg.1).then_some(&seg.2)
    }
}

/// Writes `[first, last] = value` over whatever the map holds there, splitting the
/// segments it cuts.
fn paint<V: Clone>(map: &mut BTreeMap<u128, (u128, V)>, first: u128, last: u128, value: V) {
    // Segments starting at or before `last` that end at or after `first` overlap.
    let mut cut: Vec<(u128, u128, V)> = Vec::new();
    for (&s, (e, v)) in map.range(..=last).rev() {
        if *e < first {
            break;
        }
        cut.push((s, *e, v.clone()));
    }
    for (s, e, v) in cut {
        map.remove(&s);
        if s < first {
            map.insert(s, (first - 1, v.clone()));
        }
        if e > last {
            map.insert(last + 1, (e, v));
        }
    }
    map.insert(first, (last, value));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(first: u128, last: u128, value: &'static str) -> RangeRow<&'static str> {
        RangeRow { first, last, value }
    }

    #[test]
    fn narrowest_wins_and_equal_width_later_wins() {
        let map = RangeMap::from_rows(vec![
            row(0, 99, "wide"),
            row(10, 19, "narrow"),
            row(50, 59, "first"),
            row(50, 59, "second"),
            row(90, 120, "straddles"),
        ]);
        assert_eq!(map.overlaps, 4);
        // (wide 0-99 is width 99, straddles 90-120 is width 30: straddles is narrower.)
        assert_eq!(
            map.segments,
            vec![
                (0, 9, "wide"),
                (10, 19, "narrow"),
                (20, 49, "wide"),
                (50, 59, "second"),
                (60, 89, "wide"),
                (90, 120, "straddles"),
            ]
        );
        assert_eq!(map.get(95), Some(&"straddles"));
        assert_eq!(map.get(121), None);
    }

    #[test]
    fn disjoint_rows_take_the_fast_path() {
        let map = RangeMap::from_rows(vec![row(20, 29, "b"), row(0, 9, "a")]);
        assert_eq!(map.overlaps, 0);
        assert_eq!(map.segments, vec![(0, 9, "a"), (20, 29, "b")]);
        assert_eq!(map.get(15), None);
    }
}
