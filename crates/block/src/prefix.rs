//! IPv4/IPv6 prefixes and the set arithmetic block needs: minimal exact covers,
//! subtraction of allowlisted ranges, and bounded over-block merging.
//!
//! A set of prefixes is turned into address ranges, merged, and cut back into the
//! fewest CIDR blocks that cover exactly those ranges (the greedy split of a range
//! into largest aligned blocks is optimal for a single range, and merged ranges are
//! disjoint and non-adjacent, so the union of the per-range covers is minimal).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::BlockError;

/// An IPv4 or IPv6 prefix, bits beyond the length cleared. Ordered IPv4 first, then
/// by first address, then by length (shorter first), so sorted output is stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    v6: bool,
    bits: u128,
    len: u8,
}

/// An inclusive address range in one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    /// True for IPv6.
    pub v6: bool,
    /// First address (IPv4 in the low 32 bits).
    pub first: u128,
    /// Last address.
    pub last: u128,
}

fn width(v6: bool) -> u8 {
    if v6 {
        128
    } else {
        32
    }
}

/// Host bits of a `len`-bit prefix in a `w`-bit family, all ones.
fn host_mask(w: u8, len: u8) -> u128 {
    let host = u32::from(w - len);
    if host == 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    }
}

impl Prefix {
    /// The prefix of `len` bits holding `addr` (`len` is clamped to the family).
    pub fn new(addr: IpAddr, len: u8) -> Prefix {
        let (v6, bits) = match addr {
            IpAddr::V4(a) => (false, u128::from(u32::from(a))),
            IpAddr::V6(a) => (true, u128::from(a)),
        };
        let len = len.min(width(v6));
        Prefix {
            v6,
            bits: bits & !host_mask(width(v6), len),
            len,
        }
    }

    /// The host prefix of one address (/32 or /128).
    pub fn host(addr: IpAddr) -> Prefix {
        Prefix::new(addr, 128)
    }

    /// True for IPv6.
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// Prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Always false: a prefix holds at least one address (clippy wants the pair).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The first address.
    pub fn addr(&self) -> IpAddr {
        to_ip(self.v6, self.bits)
    }

    /// The address range the prefix covers.
    pub fn range(&self) -> Range {
        Range {
            v6: self.v6,
            first: self.bits,
            last: self.bits | host_mask(width(self.v6), self.len),
        }
    }

    /// Number of addresses, saturating at `u128::MAX` for `::/0`.
    pub fn size(&self) -> u128 {
        host_mask(width(self.v6), self.len).saturating_add(1)
    }

    /// Whether `a` lies inside.
    pub fn contains(&self, a: IpAddr) -> bool {
        let other = Prefix::host(a);
        other.v6 == self.v6 && self.range().first <= other.bits && other.bits <= self.range().last
    }

    /// Whether `other` lies wholly inside.
    pub fn covers(&self, other: &Prefix) -> bool {
        let (a, b) = (self.range(), other.range());
        a.v6 == b.v6 && a.first <= b.first && b.last <= a.last
    }

    /// Whether the two share any address.
    pub fn overlaps(&self, other: &Prefix) -> bool {
        let (a, b) = (self.range(), other.range());
        a.v6 == b.v6 && a.first <= b.last && b.first <= a.last
    }
}

fn to_ip(v6: bool, bits: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(bits))
    } else {
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    }
}

impl FromStr for Prefix {
    type Err = BlockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BlockError::BadPrefix(s.to_string());
        let (a, len) = match s.trim().split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let w = if addr.is_ipv6() { 128 } else { 32 };
        let len = len.unwrap_or(w);
        if len > w {
            return Err(bad());
        }
        Ok(Prefix::new(addr, len))
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl Serialize for Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Prefix {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Merges overlapping and adjacent ranges; the result is sorted and disjoint.
pub fn merge_ranges(mut rs: Vec<Range>) -> Vec<Range> {
    rs.sort();
    let mut out: Vec<Range> = Vec::with_capacity(rs.len());
    for r in rs {
        if let Some(last) = out.last_mut() {
            if last.v6 == r.v6 && (last.last == u128::MAX || r.first <= last.last + 1) {
                last.last = last.last.max(r.last);
                continue;
            }
        }
        out.push(r);
    }
    out
}

/// A set of prefixes as merged, sorted ranges: whether an address lies in any of them
/// is a binary search, so an AS of thousands of prefixes tested against millions of
/// connections stays cheap.
#[derive(Debug, Clone, Default)]
pub struct RangeSet {
    ranges: Vec<Range>,
}

impl RangeSet {
    /// The union of `prefixes`.
    pub fn new<'a>(prefixes: impl IntoIterator<Item = &'a Prefix>) -> RangeSet {
        RangeSet {
            ranges: merge_ranges(prefixes.into_iter().map(Prefix::range).collect()),
        }
    }

    /// Whether `a` lies in one of the prefixes.
    pub fn contains(&self, a: IpAddr) -> bool {
        let r = Prefix::host(a).range();
        let i = self
            .ranges
            .partition_point(|x| (x.v6, x.first) <= (r.v6, r.first));
        i > 0 && self.ranges[i - 1].v6 == r.v6 && self.ranges[i - 1].last >= r.first
    }
}

/// The fewest prefixes covering exactly `r` (largest aligned block first).
pub fn range_to_prefixes(r: Range) -> Vec<Prefix> {
    let w = width(r.v6);
    let mut out = Vec::new();
    let mut first = r.first;
    loop {
        // Largest block aligned at `first` that does not pass `last`.
        let mut len = w;
        while len > 0 {
            let bigger = len - 1;
            let mask = host_mask(w, bigger);
            if first & mask != 0 || first | mask > r.last {
                break;
            }
            len = bigger;
        }
        let p = Prefix {
            v6: r.v6,
            bits: first,
            len,
        };
        out.push(p);
        let end = p.range().last;
        if end >= r.last {
            break;
        }
        first = end + 1;
    }
    out
}

/// The minimal set of prefixes covering exactly the union of `ps`, sorted.
pub fn exact_cover(ps: &[Prefix]) -> Vec<Prefix> {
    merge_ranges(ps.iter().map(Prefix::range).collect())
        .into_iter()
        .flat_map(range_to_prefixes)
        .collect()
}

/// The addresses of `p` not in any of `holes`, as a minimal sorted prefix set.
pub fn subtract(p: &Prefix, holes: &[Prefix]) -> Vec<Prefix> {
    let r = p.range();
    let mut holes: Vec<Range> = holes
        .iter()
        .filter(|h| h.overlaps(p))
        .map(Prefix::range)
        .collect();
    holes = merge_ranges(holes);
    let mut out = Vec::new();
    let mut next = r.first;
    let mut done = false;
    for h in holes {
        if h.first > next {
            out.push(Range {
                v6: r.v6,
                first: next,
                last: h.first - 1,
            });
        }
        if h.last >= r.last {
            done = true;
            break;
        }
        next = next.max(h.last + 1);
    }
    if !done && next <= r.last {
        out.push(Range {
            v6: r.v6,
            first: next,
            last: r.last,
        });
    }
    out.into_iter().flat_map(range_to_prefixes).collect()
}

/// The smallest prefix holding both `a` and `b` (same family).
fn common_supernet(a: &Prefix, b: &Prefix) -> Prefix {
    let w = width(a.v6);
    let diff = a.bits ^ b.bits;
    let common = (diff.leading_zeros() as u8).saturating_sub(128 - w);
    Prefix::new(a.addr(), common.min(a.len).min(b.len))
}

/// Result of [`bounded_cover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cover {
    /// The prefixes, sorted.
    pub prefixes: Vec<Prefix>,
    /// Addresses covered that were not asked for (0 for an exact cover).
    pub overblock_addresses: u128,
}

/// A cover of `ps` that may include up to `budget` addresses not in `ps`, in
/// exchange for fewer prefixes (routers' FlowSpec and ACL capacity is finite). Starts
/// from the exact cover and repeatedly joins the neighbouring pair whose common
/// supernet adds the fewest extra addresses, while the total stays within `budget`
/// and the supernet overlaps nothing in `never`. `budget == 0` gives the exact cover.
pub fn bounded_cover(ps: &[Prefix], budget: u128, never: &[Prefix]) -> Cover {
    let mut cur = exact_cover(ps);
    let mut spent: u128 = 0;
    if budget == 0 {
        return Cover {
            prefixes: cur,
            overblock_addresses: 0,
        };
    }
    loop {
        let mut best: Option<(u128, usize, Prefix)> = None;
        for i in 0..cur.len().saturating_sub(1) {
            let (a, b) = (cur[i], cur[i + 1]);
            if a.v6 != b.v6 {
                continue;
            }
            let sup = common_supernet(&a, &b);
            let inside: u128 = cur
                .iter()
                .filter(|p| sup.covers(p))
                .map(Prefix::size)
                .fold(0u128, u128::saturating_add);
            let extra = sup.size().saturating_sub(inside);
            if spent.saturating_add(extra) > budget || never.iter().any(|n| n.overlaps(&sup)) {
                continue;
            }
            if best.is_none_or(|(e, _, _)| extra < e) {
                best = Some((extra, i, sup));
            }
        }
        let Some((extra, _, sup)) = best else { break };
        spent += extra;
        cur.retain(|p| !sup.covers(p));
        cur.push(sup);
        cur = exact_cover(&cur);
    }
    Cover {
        prefixes: cur,
        overblock_addresses: spent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }
    fn ps(v: &[&str]) -> Vec<Prefix> {
        v.iter().map(|s| p(s)).collect()
    }
    fn strs(v: &[Prefix]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(p("203.0.113.77/24").to_string(), "203.0.113.0/24");
        assert_eq!(p("2001:db8::1").to_string(), "2001:db8::1/128");
        for bad in ["", "1.2.3.4/33", "::/129", "x", "1.2.3.4/-1"] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad}");
        }
        assert_eq!(p("0.0.0.0/0").size(), 1 << 32);
        assert_eq!(p("::/0").size(), u128::MAX);
    }

    #[test]
    fn exact_cover_joins_siblings_and_drops_contained() {
        let c = exact_cover(&ps(&[
            "10.0.0.0/25",
            "10.0.0.128/25",
            "10.0.1.0/24",
            "10.0.1.7",
            "10.0.3.0/24",
            "2001:db8::/33",
            "2001:db8:8000::/33",
        ]));
        assert_eq!(strs(&c), ["10.0.0.0/23", "10.0.3.0/24", "2001:db8::/32"]);
    }

    #[test]
    fn range_split_is_minimal() {
        // 10.0.0.1 .. 10.0.0.6 = .1/32 .2/31 .4/31 .6/32
        let r = Range {
            v6: false,
            first: u128::from(u32::from(Ipv4Addr::new(10, 0, 0, 1))),
            last: u128::from(u32::from(Ipv4Addr::new(10, 0, 0, 6))),
        };
        assert_eq!(
            strs(&range_to_prefixes(r)),
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        );
    }

    #[test]
    fn subtract_carves_holes() {
        let out = subtract(&p("8.8.8.0/24"), &ps(&["8.8.8.8", "8.8.4.4"]));
        assert_eq!(
            strs(&out),
            [
                "8.8.8.0/29",
                "8.8.8.9/32",
                "8.8.8.10/31",
                "8.8.8.12/30",
                "8.8.8.16/28",
                "8.8.8.32/27",
                "8.8.8.64/26",
                "8.8.8.128/25"
            ]
        );
        assert!(subtract(&p("10.1.2.3"), &ps(&["10.0.0.0/8"])).is_empty());
        assert_eq!(strs(&subtract(&p("10.1.2.3"), &[])), ["10.1.2.3/32"]);
        // Union of the pieces plus the holes gives the prefix back.
        let mut back = out.clone();
        back.push(p("8.8.8.8"));
        assert_eq!(strs(&exact_cover(&back)), ["8.8.8.0/24"]);
    }

    #[test]
    fn bounded_cover_spends_at_most_the_budget() {
        let input = ps(&["192.0.2.0/32", "192.0.2.2/32"]);
        let exact = bounded_cover(&input, 0, &[]);
        assert_eq!(exact.prefixes.len(), 2);
        assert_eq!(exact.overblock_addresses, 0);
        let loose = bounded_cover(&input, 2, &[]);
        assert_eq!(strs(&loose.prefixes), ["192.0.2.0/30"]);
        assert_eq!(loose.overblock_addresses, 2);
        let tight = bounded_cover(&input, 1, &[]);
        assert_eq!(tight.prefixes.len(), 2, "a /30 would add 2 > 1");
        let guarded = bounded_cover(&input, 2, &ps(&["192.0.2.1"]));
        assert_eq!(
            guarded.prefixes.len(),
            2,
            "never over-block an allowlisted address"
        );
    }
}
