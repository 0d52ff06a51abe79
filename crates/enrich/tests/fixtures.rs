//! Snapshot lookups on the hand-written fixtures: the overlap rule, malformed rows,
//! field merging, and every boundary against a naive linear scan of the rows.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use relaytrace_enrich::{Provenance, Snapshot, SnapshotBuilder, SourceKind};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn snapshot() -> Snapshot {
    let mut b = SnapshotBuilder::new();
    let asn = b
        .add(
            SourceKind::AsnCsv,
            &fixture("asn.csv"),
            Provenance::default(),
        )
        .unwrap();
    let lines: Vec<u64> = asn.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![9, 10, 11, 12], "{:?}", asn.problems);
    assert!(asn.problems[0]
        .to_string()
        .contains("asn.csv:9: start is after end"));
    assert_eq!((asn.meta.rows, asn.meta.rejected), (10, 4));
    let country = b
        .add(
            SourceKind::CountryCsv,
            &fixture("country.csv"),
            Provenance::default(),
        )
        .unwrap();
    assert_eq!(country.problems.len(), 1);
    assert_eq!(country.problems[0].line, 6);
    Snapshot::from_bytes(&b.build().bytes).unwrap()
}

fn look(s: &Snapshot, a: &str) -> (Option<u32>, Option<String>, Option<String>) {
    let h = s.lookup(a.parse::<IpAddr>().unwrap());
    (
        h.record.asn.map(|a| a.0),
        h.record.org.map(str::to_string),
        h.record.country.map(|c| c.to_string()),
    )
}

#[test]
fn overlap_rule_narrowest_wins_then_last_read() {
    let s = snapshot();
    let t = |a| look(&s, a);
    assert_eq!(t("10.0.0.1").0, Some(64496), "only the wide range");
    assert_eq!(t("10.1.0.1").1.as_deref(), Some("Narrow \"Quoted\" Org"));
    assert_eq!(
        t("10.1.2.1").0,
        Some(64498),
        "narrowest of three nested ranges"
    );
    assert_eq!(
        t("10.1.3.0").0,
        Some(64497),
        "back to the /16 after the /24"
    );
    assert_eq!(t("10.2.0.7").0, Some(64500), "equal ranges: the later row");
    // Fields merge independently: the country range splits the AS range.
    assert_eq!(
        t("10.1.2.127"),
        (Some(64498), Some("Narrower Org".into()), Some("ZZ".into()))
    );
    assert_eq!(
        t("10.1.2.128"),
        (Some(64498), Some("Narrower Org".into()), Some("KP".into()))
    );
    // Nested IPv6, and a country range covering only part of the AS range.
    assert_eq!(t("2001:db8:1::ff").0, Some(64502));
    assert_eq!(t("2001:db8:1::100").0, Some(64501));
    assert_eq!(t("2001:db8:1::100").2, None);
    assert_eq!(t("2001:db8::5").2.as_deref(), Some("JP"));
    // Mapped IPv6 is IPv4.
    assert_eq!(t("::ffff:1.0.0.9").0, Some(13335));
}

#[test]
fn unknown_addresses_have_record_zero_and_no_fields() {
    let s = snapshot();
    for a in [
        "0.0.0.0",
        "9.255.255.255",
        "255.255.255.255",
        "::",
        "ffff::1",
    ] {
        let h = s.lookup(a.parse().unwrap());
        assert_eq!(h.record_id, 0, "{a}");
        assert_eq!(look(&s, a), (None, None, None), "{a}");
    }
}

/// Every first/last/last+1 of every valid row, and the addresses around them, against
/// a linear scan applying the rule (narrowest, then later line) to the raw rows.
#[test]
fn boundaries_match_a_naive_scan() {
    let s = snapshot();
    let rows: Vec<(usize, IpAddr, IpAddr, u32)> = std::fs::read_to_string(fixture("asn.csv"))
        .unwrap()
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let f: Vec<&str> = l.split(',').collect();
            let (a, b) = (f[0].parse().ok()?, f.get(1)?.parse().ok()?);
            let asn = f.get(2)?.parse().ok()?;
            (matches!(
                (a, b),
                (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
            ) && a <= b)
                .then_some((i, a, b, asn))
        })
        .collect();
    let num = |a: IpAddr| match a {
        IpAddr::V4(x) => (false, u128::from(u32::from(x))),
        IpAddr::V6(x) => (true, u128::from(x)),
    };
    let naive = |a: IpAddr| {
        let (fam, k) = num(a);
        rows.iter()
            .filter(|r| num(r.1).0 == fam && num(r.1).1 <= k && k <= num(r.2).1)
            .min_by_key(|r| (num(r.2).1 - num(r.1).1, std::cmp::Reverse(r.0)))
            .map(|r| r.3)
    };
    let mut n = 0;
    for r in &rows {
        for (fam, k) in [num(r.1), num(r.2)] {
            for d in [-1i64, 0, 1] {
                let k = k.wrapping_add_signed(i128::from(d));
                let a = if fam {
                    IpAddr::V6(k.into())
                } else {
                    IpAddr::V4((k as u32).into())
                };
                assert_eq!(look(&s, &a.to_string()).0, naive(a), "{a}");
                n += 1;
            }
        }
    }
    assert_eq!(n, rows.len() * 6);
}
