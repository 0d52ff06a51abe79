//! What a plan reads from the case: the newest trace and assess findings (by their
//! ledger entries), the enrichment tables, and the stored connections.

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use relaytrace_store::columns::scan_columns;
use relaytrace_store::{tables::record_id, Case};
use serde_json::Value;

use crate::error::{BlockError, IoContext};
use crate::prefix::{Prefix, RangeSet};

/// A finding file named by the newest ledger entry of its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Path relative to the case.
    pub path: String,
    /// SHA-256 the ledger recorded for it.
    pub sha256: String,
    /// The parsed JSON.
    pub json: Value,
}

/// The finding named by the newest ledger entry of `kind` (`trace`, `assess`,
/// `block-plan`), or `None`. The file's digest is checked against the ledger, so a
/// plan never builds on an altered finding.
pub fn newest_finding(case: &Case, kind: &str) -> Result<Option<Finding>, BlockError> {
    let entries = case.ledger().entries()?;
    let Some(entry) = entries.iter().rev().find(|e| e.kind() == kind) else {
        return Ok(None);
    };
    let out = entry
        .body
        .get("outputs")
        .and_then(Value::as_array)
        .and_then(|o| o.first());
    let path = out.and_then(|o| o.get("path")).and_then(Value::as_str);
    let sha = out.and_then(|o| o.get("sha256")).and_then(Value::as_str);
    let (Some(path), Some(sha)) = (path, sha) else {
        return Err(BlockError::BadFinding {
            path: case.ledger().path().to_path_buf(),
            reason: format!(
                "ledger entry {} ({kind}) has no outputs[0].path/sha256",
                entry.seq
            ),
        });
    };
    let full: PathBuf = case.root().join(path);
    let bytes = fs::read(&full).at(&full)?;
    let got = relaytrace_store::digest::sha256_hex(&bytes);
    if got != sha {
        return Err(BlockError::BadFinding {
            path: full,
            reason: format!("sha256 {got} differs from the ledger's {sha}"),
        });
    }
    let json = serde_json::from_slice(&bytes).map_err(|e| BlockError::BadFinding {
        path: full.clone(),
        reason: format!("not JSON: {e}"),
    })?;
    Ok(Some(Finding {
        path: path.to_string(),
        sha256: sha.to_string(),
        json,
    }))
}

/// Checks the fields block reads from a finding of `kind` (`trace` or `assess`),
/// so a malformed finding is an error naming the file and the field rather than a
/// plan built on nothing.
pub fn check_shape(case: &Case, kind: &str, f: &Finding) -> Result<(), BlockError> {
    let bad = |reason: String| BlockError::BadFinding {
        path: case.root().join(&f.path),
        reason,
    };
    let arr = |v: &Value, k: &str, at: &str| -> Result<(), BlockError> {
        match v.get(k) {
            Some(Value::Array(_)) => Ok(()),
            _ => Err(bad(format!("{at}`{k}` is missing or not an array"))),
        }
    };
    match kind {
        "trace" => {
            arr(&f.json, "chains", "")?;
            for (i, c) in f.json["chains"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                arr(c, "hops", &format!("chains[{i}]."))?;
                arr(c, "links", &format!("chains[{i}]."))?;
            }
        }
        "assess" => {
            if !f.json.get("verdict").is_some_and(Value::is_string) {
                return Err(bad("`verdict` is missing or not a string".into()));
            }
            arr(&f.json, "hypotheses", "")?;
            for (i, h) in f.json["hypotheses"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(p) = h.get("probability") {
                    if !p.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)) {
                        return Err(bad(format!(
                            "hypotheses[{i}].probability is not a number in [0, 1]"
                        )));
                    }
                }
                if let Some(o) = h.get("origin") {
                    for k in ["prefixes", "asns", "countries"] {
                        if o.get(k).is_some() {
                            arr(o, k, &format!("hypotheses[{i}].origin."))?;
                        }
                    }
                    for (j, p) in o
                        .get("prefixes")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        if p.as_str().and_then(|s| s.parse::<Prefix>().ok()).is_none() {
                            return Err(bad(format!(
                                "hypotheses[{i}].origin.prefixes[{j}] is not a prefix: {p}"
                            )));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// What the case's enrichment says of one address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddrInfo {
    /// The covering prefix the snapshot gave (largest block of the address's segment).
    pub prefix: Option<Prefix>,
    /// Origin AS.
    pub asn: Option<u64>,
    /// AS organisation (shared with every address of the same one).
    pub org: Option<Arc<str>>,
    /// Country (shared).
    pub country: Option<Arc<str>>,
    /// Snapshot digest (shared).
    pub snapshot: Option<Arc<str>>,
}

/// The addresses of the case's enrichment tables whose answer `keep` accepts (given
/// the address and its AS), later snapshots winning
/// (`relaytrace_store::enrichment::read_enrichment_matching`, the reader trace uses
/// too), with the covering prefix parsed: block needs it to expand an origin to its
/// network. A plan needs a few addresses of a case that may hold millions: the hops,
/// the addresses of the ASes it may target, the parties its rules would cut off.
pub fn enrichment(
    case: &Case,
    keep: impl Fn(&IpAddr, Option<u64>) -> bool,
) -> Result<BTreeMap<IpAddr, AddrInfo>, BlockError> {
    Ok(
        relaytrace_store::enrichment::read_enrichment_matching(case, keep)?
            .into_iter()
            .map(|(addr, r)| {
                (
                    addr,
                    AddrInfo {
                        prefix: r.prefix.as_deref().and_then(|p| p.parse().ok()),
                        asn: r.asn,
                        org: r.org,
                        country: r.country,
                        snapshot: r.snapshot,
                    },
                )
            })
            .collect(),
    )
}

/// One stored connection, as much of it as collateral needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnRow {
    /// Row ids (`<evidence16>:<record>`), as trace's link evidence names them: one per
    /// vantage that recorded the connection (see [`connections`]), sorted.
    pub ids: Vec<String>,
    /// Originator.
    pub orig_h: IpAddr,
    /// Responder.
    pub resp_h: IpAddr,
    /// Bytes both ways: payload bytes where the row has them (Zeek, pcap), else IP-level
    /// bytes (NetFlow/IPFIX and Suricata flows have only those); a missing direction
    /// counts as 0.
    pub bytes: u64,
}

/// The connections of the case a set of prefixes touches, out of how many.
#[derive(Debug, Clone, Default)]
pub struct Touching {
    /// Rows with an address in the set (the only ones whose collateral is not 0).
    pub rows: Vec<ConnRow>,
    /// Every row of the case with both addresses.
    pub total: u64,
    /// Rows without both addresses (not measurable).
    pub skipped: u64,
}

/// The connection rows of the case with an end inside `touching`, and the count of
/// every row with both addresses; rows without are counted as skipped. Collateral
/// is measured over every connection of the case, but only those a measured prefix
/// touches can count, so only they are held (a case of millions of connections
/// costs a scan, not its size in memory).
pub fn connections(case: &Case, touching: &RangeSet) -> Result<Touching, BlockError> {
    let mut out = Touching::default();
    let mut keyed = Vec::new();
    for file in case.table_files("conns")? {
        // The columns needed (typed column reads).
        let names = [
            "record",
            "orig_h",
            "resp_h",
            "orig_bytes",
            "resp_bytes",
            "orig_ip_bytes",
            "resp_ip_bytes",
            "proto",
            "orig_p",
            "resp_p",
            "start_ns",
        ];
        scan_columns(&file, &names, |meta, batch| {
            for row in 0..batch.rows() {
                let ip = |col: usize| batch.text(col, row).and_then(|s| s.parse::<IpAddr>().ok());
                let record = batch.int(0, row).and_then(|r| u64::try_from(r).ok());
                let (Some(ev), Some(r), Some(o), Some(h)) = (&meta.evidence, record, ip(1), ip(2))
                else {
                    out.skipped += 1;
                    continue;
                };
                out.total += 1;
                if !touching.contains(o) && !touching.contains(h) {
                    continue;
                }
                let n = |col: usize| batch.int(col, row).and_then(|v| u64::try_from(v).ok());
                let both = |a: usize, b: usize| match (n(a), n(b)) {
                    (None, None) => None,
                    (x, y) => Some(x.unwrap_or(0).saturating_add(y.unwrap_or(0))),
                };
                let key = SessionKey {
                    proto: batch.text(7, row).unwrap_or("").to_string(),
                    orig: (o, batch.int(8, row).unwrap_or(-1)),
                    resp: (h, batch.int(9, row).unwrap_or(-1)),
                    start_ns: batch.int(10, row).unwrap_or(i64::MIN),
                };
                keyed.push((
                    key,
                    ConnRow {
                        ids: vec![record_id(ev, r)],
                        orig_h: o,
                        resp_h: h,
                        bytes: both(3, 4).or_else(|| both(5, 6)).unwrap_or(0),
                    },
                ));
            }
            true
        })?;
    }
    out.rows = one_per_session(keyed);
    Ok(out)
}

/// What makes two rows the same connection seen by two sensors: protocol, both
/// endpoints with ports, and a start within [`SAME_SESSION_NS`] of the previous row's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SessionKey {
    proto: String,
    orig: (IpAddr, i64),
    resp: (IpAddr, i64),
    start_ns: i64,
}

/// Starts this close belong to one session (trace's merge uses the same tolerance:
/// NetFlow's whole-second export clock).
const SAME_SESSION_NS: i64 = 1_000_000_000;

/// One row per connection however many vantages recorded it (their ids kept, the
/// largest byte count taken): the same session at the victim's edge and at the
/// relay's ISP is one flow of collateral, not two. Flow records of the two directions
/// of one session (most NetFlow exporters) stay two rows, as the table holds them.
fn one_per_session(mut keyed: Vec<(SessionKey, ConnRow)>) -> Vec<ConnRow> {
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.ids.cmp(&b.1.ids)));
    let mut out: Vec<ConnRow> = Vec::with_capacity(keyed.len());
    let mut last: Option<SessionKey> = None;
    for (key, row) in keyed {
        let same = last.as_ref().is_some_and(|l| {
            l.proto == key.proto
                && l.orig == key.orig
                && l.resp == key.resp
                && key.start_ns.saturating_sub(l.start_ns) <= SAME_SESSION_NS
        });
        match out.last_mut() {
            Some(kept) if same => {
                kept.ids.extend(row.ids);
                kept.bytes = kept.bytes.max(row.bytes);
            }
            _ => out.push(row),
        }
        last = Some(key);
    }
    for r in &mut out {
        r.ids.sort();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use relaytrace_store::tables::scan_rows;
    use relaytrace_store::IngestOptions;

    use super::*;

    fn demo(name: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo")).join(name)
    }

    /// A connection's bytes are its payload bytes where the source has them (Zeek) and
    /// its IP-level bytes where it has only those (NetFlow): flow records must not
    /// count as empty connections in the collateral.
    /// The same sessions recorded at two vantages are one row each, with both ids
    /// (collateral counted them twice: once per sensor).
    #[test]
    fn a_session_seen_at_two_vantages_is_one_row() {
        let dir = tempfile::tempdir().unwrap();
        let case = Case::init(&dir.path().join("case"), "t").unwrap();
        let mut read = relaytrace_ingest::ReadOptions::default();
        let log = std::fs::read_to_string(demo("victim-edge.conn.log")).unwrap();
        // The same records in other bytes (another sensor's file): a comment added.
        let other = dir.path().join("isp.conn.log");
        std::fs::write(&other, format!("#open another sensor\n{log}")).unwrap();
        for (input, vantage) in [(demo("victim-edge.conn.log"), "edge"), (other, "isp")] {
            let opts = IngestOptions {
                vantage: vantage.into(),
                format: None,
            };
            case.ingest(&input, &opts, &mut read).unwrap();
        }
        let everywhere: Vec<Prefix> = ["0.0.0.0/0", "::/0"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        let touched = connections(&case, &RangeSet::new(&everywhere)).unwrap();
        assert_eq!(touched.total, 12, "rows of the case");
        assert_eq!(touched.rows.len(), 6, "{:?}", touched.rows);
        assert!(touched.rows.iter().all(|r| r.ids.len() == 2));
    }

    #[test]
    fn bytes_come_from_payload_or_else_ip_level_counts() {
        let dir = tempfile::tempdir().unwrap();
        let case = Case::init(&dir.path().join("case"), "t").unwrap();
        let mut read = relaytrace_ingest::ReadOptions::default();
        for input in ["victim-edge.conn.log", "testbed-relay1.netflow-v9.pcap"] {
            case.ingest(&demo(input), &IngestOptions::default(), &mut read)
                .unwrap();
        }
        let everywhere: Vec<Prefix> = ["0.0.0.0/0", "::/0"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        let touched = connections(&case, &RangeSet::new(&everywhere)).unwrap();
        assert_eq!(touched.skipped, 0);
        let rows = touched.rows;
        let mut want = BTreeMap::new();
        for file in case.table_files("conns").unwrap() {
            scan_rows(&file, |row| {
                let get = |k: &str| {
                    row.iter()
                        .find(|(n, _)| n == k)
                        .and_then(|(_, v)| v.as_u64())
                };
                let id = row.iter().find(|(n, _)| n == "id").unwrap().1.clone();
                let payload = get("orig_bytes").or(get("resp_bytes")).is_some();
                let sum = |a: &str, b: &str| get(a).unwrap_or(0) + get(b).unwrap_or(0);
                let bytes = if payload {
                    sum("orig_bytes", "resp_bytes")
                } else {
                    sum("orig_ip_bytes", "resp_ip_bytes")
                };
                want.insert(id.as_str().unwrap().to_string(), (payload, bytes));
                true
            })
            .unwrap();
        }
        assert_eq!(rows.len(), want.len());
        let flow_records = want.values().filter(|(payload, _)| !payload).count();
        assert!(flow_records > 10, "{flow_records} NetFlow rows");
        for r in &rows {
            assert_eq!(r.bytes, want[&r.ids[0]].1, "{:?}", r.ids);
        }
        assert!(rows
            .iter()
            .filter(|r| !want[&r.ids[0]].0)
            .all(|r| r.bytes > 0));

        // A narrower set keeps the rows with an end inside it, and counts them all.
        let one = rows[0].orig_h;
        let touched = connections(&case, &RangeSet::new(&[Prefix::host(one)])).unwrap();
        assert_eq!(touched.total, rows.len() as u64);
        let expect = rows
            .iter()
            .filter(|r| r.orig_h == one || r.resp_h == one)
            .count();
        assert!(
            expect > 0 && expect < rows.len(),
            "{expect} of {}",
            rows.len()
        );
        assert_eq!(touched.rows.len(), expect);
        assert!(touched
            .rows
            .iter()
            .all(|r| r.orig_h == one || r.resp_h == one));
    }
}
