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
use crate::prefix::Prefix;

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

/// Every address the case's enrichment tables know, later snapshots winning
/// (`relaytrace_store::enrichment::read_enrichment`, the reader trace uses too), with
/// the covering prefix parsed: block needs it to expand an origin to its network.
pub fn enrichment(case: &Case) -> Result<BTreeMap<IpAddr, AddrInfo>, BlockError> {
    Ok(relaytrace_store::enrichment::read_enrichment(case)?
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
        .collect())
}

/// One stored connection, as much of it as collateral needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnRow {
    /// Row id (`<evidence16>:<record>`), as trace's link evidence names it.
    pub id: String,
    /// Originator.
    pub orig_h: IpAddr,
    /// Responder.
    pub resp_h: IpAddr,
    /// Bytes both ways: payload bytes where the row has them (Zeek, pcap), else IP-level
    /// bytes (NetFlow/IPFIX and Suricata flows have only those); a missing direction
    /// counts as 0.
    pub bytes: u64,
}

/// Every connection row of the case that has both addresses; rows without are
/// counted in the second value.
pub fn connections(case: &Case) -> Result<(Vec<ConnRow>, u64), BlockError> {
    let mut out = Vec::new();
    let mut skipped = 0u64;
    for file in case.table_files("conns")? {
        // The five columns needed (typed column reads): collateral is measured over
        // every connection of the case.
        let names = [
            "record",
            "orig_h",
            "resp_h",
            "orig_bytes",
            "resp_bytes",
            "orig_ip_bytes",
            "resp_ip_bytes",
        ];
        scan_columns(&file, &names, |meta, batch| {
            for row in 0..batch.rows() {
                let id = match (&meta.evidence, batch.int(0, row)) {
                    (Some(ev), Some(r)) => u64::try_from(r).ok().map(|r| record_id(ev, r)),
                    _ => None,
                };
                let ip = |col: usize| batch.text(col, row).and_then(|s| s.parse::<IpAddr>().ok());
                let n = |col: usize| batch.int(col, row).and_then(|v| u64::try_from(v).ok());
                let both = |a: usize, b: usize| match (n(a), n(b)) {
                    (None, None) => None,
                    (x, y) => Some(x.unwrap_or(0).saturating_add(y.unwrap_or(0))),
                };
                match (id, ip(1), ip(2)) {
                    (Some(id), Some(o), Some(r)) => out.push(ConnRow {
                        id,
                        orig_h: o,
                        resp_h: r,
                        bytes: both(3, 4).or_else(|| both(5, 6)).unwrap_or(0),
                    }),
                    _ => skipped += 1,
                }
            }
            true
        })?;
    }
    Ok((out, skipped))
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
    #[test]
    fn bytes_come_from_payload_or_else_ip_level_counts() {
        let dir = tempfile::tempdir().unwrap();
        let case = Case::init(&dir.path().join("case"), "t").unwrap();
        let mut read = relaytrace_ingest::ReadOptions::default();
        for input in ["victim-edge.conn.log", "testbed-relay1.netflow-v9.pcap"] {
            case.ingest(&demo(input), &IngestOptions::default(), &mut read)
                .unwrap();
        }
        let (rows, skipped) = connections(&case).unwrap();
        assert_eq!(skipped, 0);
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
            assert_eq!(r.bytes, want[&r.id].1, "{}", r.id);
        }
        assert!(rows.iter().filter(|r| !want[&r.id].0).all(|r| r.bytes > 0));
    }
}
