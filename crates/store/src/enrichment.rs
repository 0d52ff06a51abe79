//! Reading the case's enrichment tables (`tables/enrich/*.jsonl`, written by
//! `relaytrace enrich`): what each address's snapshot said. Trace labels hops with it,
//! block expands origins to their networks with it; one reader serves both.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::sync::Arc;

use serde::Deserialize;

use crate::error::{IoContext, StoreError};
use crate::Case;

/// What one enrichment table line says of an address. The texts are shared between
/// the addresses that have the same one (every address names the same snapshot; many
/// share a prefix, an organisation, a country): a case of millions of addresses holds
/// each distinct text once instead of once per address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrichRow {
    /// The covering prefix the snapshot gave, as text (e.g. `175.45.176.0/22`).
    pub prefix: Option<Arc<str>>,
    /// Origin AS number.
    pub asn: Option<u64>,
    /// AS organisation.
    pub org: Option<Arc<str>>,
    /// Country code.
    pub country: Option<Arc<str>>,
    /// Digest of the snapshot that said it.
    pub snapshot: Option<Arc<str>>,
}

/// The fields of a table line that readers use; any others are ignored. Texts borrow
/// from the line unless it escapes them.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    addr: Option<Cow<'a, str>>,
    #[serde(default)]
    asn: Option<u64>,
    #[serde(borrow, default)]
    prefix: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    org: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    country: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    snapshot: Option<Cow<'a, str>>,
}

/// Reads every enrichment table the ledger names, in ledger order, so that a later
/// snapshot's answer replaces an earlier one. No table: an empty map. A line that is
/// not a JSON object of the table's fields is an error naming the file and line; a
/// line without a usable `addr` is skipped (it cannot be attached to anything).
pub fn read_enrichment(case: &Case) -> Result<BTreeMap<IpAddr, EnrichRow>, StoreError> {
    Ok(read_enrichment_where(case, |_| true)?.0)
}

/// [`read_enrichment`] keeping only the addresses `keep` accepts, and the number of
/// distinct addresses of all the tables. For a reader that needs a few addresses of a
/// large case (trace labels its chains' hops): the others are counted in a sorted
/// vector (17 bytes each) instead of held with their texts in the map.
pub fn read_enrichment_where(
    case: &Case,
    keep: impl Fn(&IpAddr) -> bool,
) -> Result<(BTreeMap<IpAddr, EnrichRow>, u64), StoreError> {
    read_filtered(case, |addr, _| keep(addr), true)
}

/// [`read_enrichment`] keeping the addresses whose answer `keep` accepts, given the
/// address and the AS the answer names. The answer judged is the one that counts (the
/// newest table's): an address kept on an earlier table's answer and not on a later
/// one is dropped. For a reader that needs the addresses of a few ASes (block expands
/// an origin AS to the prefixes the case saw it announce) without holding every
/// address of a case of millions.
pub fn read_enrichment_matching(
    case: &Case,
    keep: impl Fn(&IpAddr, Option<u64>) -> bool,
) -> Result<BTreeMap<IpAddr, EnrichRow>, StoreError> {
    Ok(read_filtered(case, keep, false)?.0)
}

/// The reader behind both: every table in ledger order, `keep` judging each line;
/// with `count`, the distinct addresses of all the tables are counted too.
fn read_filtered(
    case: &Case,
    keep: impl Fn(&IpAddr, Option<u64>) -> bool,
    count: bool,
) -> Result<(BTreeMap<IpAddr, EnrichRow>, u64), StoreError> {
    let mut others: Vec<IpAddr> = Vec::new();
    let mut out = BTreeMap::new();
    let mut texts: HashSet<Arc<str>> = HashSet::new();
    let mut share = |t: Option<Cow<'_, str>>| -> Option<Arc<str>> {
        let t = t?;
        Some(match texts.get(t.as_ref()) {
            Some(shared) => Arc::clone(shared),
            None => {
                let shared: Arc<str> = Arc::from(t.as_ref());
                texts.insert(Arc::clone(&shared));
                shared
            }
        })
    };
    for path in case.table_files("enrich")? {
        let file = File::open(&path).at(&path)?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut line = String::new();
        let mut n = 0u64;
        loop {
            line.clear();
            if reader.read_line(&mut line).at(&path)? == 0 {
                break;
            }
            n += 1;
            if line.trim().is_empty() {
                continue;
            }
            let v: Line<'_> =
                serde_json::from_str(&line).map_err(|source| StoreError::BadEnrichLine {
                    path: path.clone(),
                    line: n,
                    source,
                })?;
            let Some(addr) = v.addr.as_deref().and_then(|a| a.parse::<IpAddr>().ok()) else {
                continue;
            };
            if !keep(&addr, v.asn) {
                // A later answer replaces an earlier one, kept or not.
                out.remove(&addr);
                if count {
                    others.push(addr);
                }
                continue;
            }
            out.insert(
                addr,
                EnrichRow {
                    prefix: share(v.prefix),
                    asn: v.asn,
                    org: share(v.org),
                    country: share(v.country),
                    snapshot: share(v.snapshot),
                },
            );
        }
    }
    others.sort_unstable();
    others.dedup();
    // An address dropped on one answer and kept on a later one is in both.
    others.retain(|a| !out.contains_key(a));
    let distinct = (out.len() + others.len()) as u64;
    Ok((out, distinct))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_hex;
    use serde_json::{json, Map};

    /// Commits `lines` as an enrichment table, as `enrich` does.
    fn add_table(case: &Case, name: &str, lines: &[serde_json::Value]) {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let rel = format!("tables/enrich/{name}.jsonl");
        std::fs::create_dir_all(case.root().join("tables/enrich")).unwrap();
        std::fs::write(case.root().join(&rel), &text).unwrap();
        let mut fields = Map::new();
        fields.insert(
            "outputs".into(),
            json!([{"table": "enrich", "path": rel, "sha256": sha256_hex(text.as_bytes())}]),
        );
        case.ledger().append("enrich", fields).unwrap();
    }

    #[test]
    fn later_answers_win_and_a_filtered_read_counts_every_address() {
        let dir = tempfile::tempdir().unwrap();
        let case = Case::init(dir.path(), "t").unwrap();
        let line = |addr: &str, asn: u64, snap: &str| json!({"addr": addr, "asn": asn, "org": "Org \"A\"", "country": "ZZ", "prefix": null, "snapshot": snap});
        add_table(
            &case,
            "a",
            &[line("192.0.2.1", 1, "s1"), line("192.0.2.2", 2, "s1")],
        );
        add_table(
            &case,
            "b",
            &[line("192.0.2.2", 20, "s2"), line("2001:db8::1", 3, "s2")],
        );
        let all = read_enrichment(&case).unwrap();
        assert_eq!(all.len(), 3);
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(all[&two].asn, Some(20), "the later table wins");
        assert_eq!(all[&two].snapshot.as_deref(), Some("s2"));
        assert_eq!(all[&two].org.as_deref(), Some("Org \"A\""), "escaped text");

        let (some, distinct) = read_enrichment_where(&case, |a| *a == two).unwrap();
        assert_eq!(some.len(), 1);
        assert_eq!(some[&two], all[&two]);
        assert_eq!(distinct, 3, "overlapping tables count an address once");
        let (none, distinct) = read_enrichment_where(&case, |_| false).unwrap();
        assert!(none.is_empty());
        assert_eq!(distinct, 3);
    }

    /// Kept by AS: the newest answer decides, whichever way it goes.
    #[test]
    fn a_read_by_as_judges_the_newest_answer() {
        let dir = tempfile::tempdir().unwrap();
        let case = Case::init(dir.path(), "t").unwrap();
        let line = |addr: &str, asn: u64| json!({"addr": addr, "asn": asn, "snapshot": "s"});
        add_table(
            &case,
            "a",
            &[
                line("192.0.2.1", 7),
                line("192.0.2.2", 7),
                line("192.0.2.3", 8),
            ],
        );
        add_table(&case, "b", &[line("192.0.2.2", 9), line("192.0.2.3", 7)]);
        let by7 = read_enrichment_matching(&case, |_, asn| asn == Some(7)).unwrap();
        let got: Vec<String> = by7.keys().map(ToString::to_string).collect();
        assert_eq!(
            got,
            ["192.0.2.1", "192.0.2.3"],
            "2 moved to AS9, 3 came to AS7"
        );
        assert!(by7.values().all(|r| r.asn == Some(7)));
        // An address dropped on its first answer and kept on a later one counts once.
        let (kept, distinct) = read_filtered(
            &case,
            |a, asn| asn == Some(7) && a.to_string() != "192.0.2.1",
            true,
        )
        .unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(distinct, 3);
    }

    #[test]
    fn a_line_that_is_not_a_table_line_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let case = Case::init(dir.path(), "t").unwrap();
        add_table(
            &case,
            "bad",
            &[
                json!({"addr": "192.0.2.1"}),
                json!({"addr": "192.0.2.2", "asn": "x"}),
            ],
        );
        let e = read_enrichment(&case).unwrap_err().to_string();
        assert!(e.contains("bad.jsonl") && e.contains("line 2"), "{e}");
    }
}
