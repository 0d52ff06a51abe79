//! Lookups from a snapshot built from the real default datasets, compared with
//! independent references: the `maxminddb` crate on the same MMDB (country), and a
//! separately written CSV reader with binary search — itself checked against a naive
//! linear scan — on the same CSV ranges (AS number, organisation). Every range
//! boundary (first, last, last + 1) and `RELAYTRACE_ENRICH_RANDOM` random addresses
//! per family: zero differences allowed.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::OnceLock;

use maxminddb::{PathElement, Reader, WithinOptions};
use relaytrace_enrich::{Provenance, Snapshot, SnapshotBuilder, SourceKind};

use common::{random_count, test_data, Rng};

const COUNTRY_MMDB: &str = "geo-whois-asn-country.mmdb";

fn snapshot(dir: &Path) -> &'static Snapshot {
    static SNAP: OnceLock<Snapshot> = OnceLock::new();
    SNAP.get_or_init(|| {
        let mut b = SnapshotBuilder::new();
        for (kind, file) in [
            (SourceKind::AsnCsv, "asn-ipv4.csv"),
            (SourceKind::AsnCsv, "asn-ipv6.csv"),
            (SourceKind::CountryMmdb, COUNTRY_MMDB),
        ] {
            let r = b.add(kind, &dir.join(file), Provenance::default()).unwrap();
            eprintln!(
                "{file}: {} rows, {} rejected, {} overlaps",
                r.meta.rows, r.meta.rejected, r.meta.overlaps
            );
        }
        let built = b.build();
        Snapshot::from_bytes(&built.bytes).unwrap()
    })
}

/// One CSV row as the reference reads it.
#[derive(Debug, Clone)]
struct RefRow {
    line: usize,
    first: u128,
    last: u128,
    asn: u32,
    org: Option<String>,
}

/// A CSV reader written apart from the crate's: split on commas outside quotes.
fn reference_rows(path: &Path) -> Vec<RefRow> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut rows = Vec::new();
    for (line_no, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut inq = false;
        let mut chars = line.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                // RFC 4180: a doubled quote inside quotes is one quote character.
                '"' if inq && chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                '"' => inq = !inq,
                ',' if !inq => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        let num = |s: &str| match s.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        rows.push(RefRow {
            line: line_no,
            first: num(&fields[0]),
            last: num(&fields[1]),
            asn: fields[2].parse().unwrap(),
            // The loader's documented normalisation: surrounding spaces trimmed.
            org: Some(fields[3].trim().to_string()).filter(|s| !s.is_empty()),
        });
    }
    rows.sort_by_key(|r| r.first);
    rows
}

/// The documented overlap rule: of the rows containing the key, the narrowest; at
/// equal width, the one later in the file.
fn better<'a>(a: Option<&'a RefRow>, b: &'a RefRow) -> Option<&'a RefRow> {
    match a {
        Some(a) if (a.last - a.first, b.line) > (b.last - b.first, a.line) => Some(b),
        Some(a) => Some(a),
        None => Some(b),
    }
}

/// The reference: rows split into a non-overlapping list (binary search) and the
/// few rows involved in an overlap (linear scan), combined by the rule.
struct Reference {
    plain: Vec<RefRow>,
    overlapping: Vec<RefRow>,
}

impl Reference {
    fn new(rows: Vec<RefRow>) -> Self {
        let mut marked = vec![false; rows.len()];
        let mut reach: Option<(u128, usize)> = None;
        for (i, r) in rows.iter().enumerate() {
            if let Some((end, j)) = reach {
                if r.first <= end {
                    marked[i] = true;
                    marked[j] = true;
                }
            }
            if reach.is_none_or(|(end, _)| r.last > end) {
                reach = Some((r.last, i));
            }
        }
        let (mut plain, mut overlapping) = (Vec::new(), Vec::new());
        for (r, m) in rows.into_iter().zip(marked) {
            if m {
                overlapping.push(r)
            } else {
                plain.push(r)
            }
        }
        eprintln!("reference: {} rows involved in overlaps", overlapping.len());
        Reference { plain, overlapping }
    }

    fn lookup(&self, key: u128) -> Option<&RefRow> {
        let i = self.plain.partition_point(|r| r.first <= key);
        let mut best = i
            .checked_sub(1)
            .and_then(|i| self.plain.get(i))
            .filter(|r| key <= r.last);
        for r in self
            .overlapping
            .iter()
            .filter(|r| r.first <= key && key <= r.last)
        {
            best = better(best, r);
        }
        best
    }

    /// Naive: every row, the rule applied directly.
    fn linear(&self, key: u128) -> Option<&RefRow> {
        let mut best = None;
        for r in self.plain.iter().chain(&self.overlapping) {
            if r.first <= key && key <= r.last {
                best = better(best, r);
            }
        }
        best
    }
}

fn addr(v6: bool, key: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(key))
    } else {
        IpAddr::V4(Ipv4Addr::from(key as u32))
    }
}

fn check_csv_family(snap: &Snapshot, rows: Vec<RefRow>, v6: bool, seed: u64) {
    let reference = Reference::new(rows.clone());
    let max = if v6 { u128::MAX } else { u128::from(u32::MAX) };
    let mut probes: Vec<u128> = Vec::with_capacity(rows.len() * 3);
    for r in &rows {
        probes.push(r.first);
        probes.push(r.last);
        if r.last < max {
            probes.push(r.last + 1);
        }
    }
    let mut rng = Rng(seed);
    let n = random_count();
    for _ in 0..n {
        probes.push(if v6 {
            rng.v6()
        } else {
            u128::from(rng.next_u64() as u32)
        });
    }
    let t = snap.tables();
    let mut diffs = Vec::new();
    for (i, &key) in probes.iter().enumerate() {
        let want = reference.lookup(key);
        if i % 2000 == 0 {
            // The split reference itself agrees with a naive scan of every row.
            let naive = reference.linear(key).map(|r| r.line);
            assert_eq!(want.map(|r| r.line), naive, "reference broken at {key}");
        }
        let a = addr(v6, key);
        if v6 && matches!(a, IpAddr::V6(x) if x.to_ipv4_mapped().is_some()) {
            continue; // looked up as IPv4 by design
        }
        let got = t.lookup(a);
        let ok = match want {
            Some(r) => {
                got.record.asn.map(|x| x.0) == Some(r.asn) && got.record.org == r.org.as_deref()
            }
            None => got.record.asn.is_none() && got.record.org.is_none(),
        };
        if !ok && diffs.len() < 10 {
            diffs.push(format!(
                "{a}: reference {want:?}, snapshot {:?}",
                got.record
            ));
        }
    }
    assert!(diffs.is_empty(), "differences:\n{}", diffs.join("\n"));
    eprintln!(
        "{}: {} probes ({} boundary, {n} random): 0 differences",
        if v6 { "IPv6 CSV" } else { "IPv4 CSV" },
        probes.len(),
        probes.len() - n
    );
}

#[test]
fn asn_lookups_match_the_csv_reference() {
    let Some(dir) = test_data() else { return };
    let snap = snapshot(&dir);
    check_csv_family(snap, reference_rows(&dir.join("asn-ipv4.csv")), false, 1);
    check_csv_family(snap, reference_rows(&dir.join("asn-ipv6.csv")), true, 2);
}

#[test]
fn country_lookups_match_the_maxminddb_crate() {
    let Some(dir) = test_data() else { return };
    let snap = snapshot(&dir);
    let reader = Reader::open_readfile(dir.join(COUNTRY_MMDB)).unwrap();
    let mut probes: Vec<IpAddr> = Vec::new();
    for item in reader.networks(WithinOptions::default()).unwrap() {
        let net = item.unwrap().network().unwrap();
        let (first, bits) = match net.network() {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32u32),
            IpAddr::V6(a) => (u128::from(a), 128),
        };
        let host = bits - u32::from(net.prefix());
        let last = first
            | if host >= 128 {
                u128::MAX
            } else {
                (1u128 << host) - 1
            };
        let v6 = bits == 128;
        let max = if v6 { u128::MAX } else { u128::from(u32::MAX) };
        probes.push(addr(v6, first));
        probes.push(addr(v6, last));
        if last < max {
            probes.push(addr(v6, last + 1));
        }
    }
    let boundary = probes.len();
    let mut rng = Rng(3);
    for _ in 0..random_count() {
        probes.push(addr(false, u128::from(rng.next_u64() as u32)));
        probes.push(addr(true, rng.v6()));
    }
    let t = snap.tables();
    let mut diffs = Vec::new();
    for a in &probes {
        if matches!(a, IpAddr::V6(x) if x.to_ipv4_mapped().is_some()) {
            continue; // looked up as IPv4 by design
        }
        let want: Option<String> = reader
            .lookup(*a)
            .unwrap()
            .decode_path(&[PathElement::Key("country_code")])
            .unwrap();
        let got = t.lookup(*a).record.country.map(|c| c.to_string());
        if want != got && diffs.len() < 10 {
            diffs.push(format!("{a}: maxminddb {want:?}, snapshot {got:?}"));
        }
    }
    assert!(diffs.is_empty(), "differences:\n{}", diffs.join("\n"));
    eprintln!(
        "country: {} probes ({boundary} boundary, {} random): 0 differences",
        probes.len(),
        probes.len() - boundary
    );
}

#[test]
fn snapshot_round_trips_through_a_file() {
    let Some(dir) = test_data() else { return };
    let snap = snapshot(&dir);
    let out = tempfile::tempdir().unwrap();
    // Rebuilding is deterministic: same inputs, same digest.
    let mut b = SnapshotBuilder::new();
    b.add(
        SourceKind::AsnCsv,
        &dir.join("asn-ipv4.csv"),
        Provenance::default(),
    )
    .unwrap();
    b.add(
        SourceKind::AsnCsv,
        &dir.join("asn-ipv6.csv"),
        Provenance::default(),
    )
    .unwrap();
    b.add(
        SourceKind::CountryMmdb,
        &dir.join(COUNTRY_MMDB),
        Provenance::default(),
    )
    .unwrap();
    let built = b.build();
    assert_eq!(built.digest, snap.digest());
    let path = built.write_to_dir(out.path()).unwrap();
    let loaded = Snapshot::open_verified(&path).unwrap();
    assert_eq!(loaded.digest(), snap.digest());
    let cf = loaded.lookup("1.1.1.1".parse().unwrap());
    assert_eq!(cf.record.asn.map(|a| a.0), Some(13335));
    assert_eq!(cf.record.org, Some("Cloudflare, Inc."));
    assert_eq!(cf.first, "1.1.1.0".parse::<IpAddr>().unwrap());
    // Altering one byte is caught.
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert!(Snapshot::open_verified(&path).is_err());
}

#[test]
fn ci_fetch_script_pins_the_same_versions_as_the_crate() {
    let script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.ci/fetch-data.sh"
    ))
    .unwrap();
    for pkg in relaytrace_enrich::npm::DEFAULT_PACKAGES {
        assert!(
            script.contains(&pkg.spec()),
            "{} not pinned in .ci/fetch-data.sh",
            pkg.spec()
        );
    }
}
