//! Reading the case's enrichment tables (`tables/enrich/*.jsonl`, written by
//! `relaytrace enrich`): what each address's snapshot said. Trace labels hops with it,
//! block expands origins to their networks with it; one reader serves both.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;

use serde_json::Value;

use crate::error::{IoContext, StoreError};
use crate::Case;

/// What one enrichment table line says of an address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrichRow {
    /// The covering prefix the snapshot gave, as text (e.g. `175.45.176.0/22`).
    pub prefix: Option<String>,
    /// Origin AS number.
    pub asn: Option<u64>,
    /// AS organisation.
    pub org: Option<String>,
    /// Country code.
    pub country: Option<String>,
    /// Digest of the snapshot that said it.
    pub snapshot: Option<String>,
}

/// Reads every enrichment table the ledger names, in ledger order, so that a later
/// snapshot's answer replaces an earlier one. No table: an empty map. A line that is
/// not JSON is an error naming the file and line; a line without a usable `addr` is
/// skipped (it cannot be attached to anything).
pub fn read_enrichment(case: &Case) -> Result<BTreeMap<IpAddr, EnrichRow>, StoreError> {
    let mut out = BTreeMap::new();
    for path in case.table_files("enrich")? {
        let file = File::open(&path).at(&path)?;
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.at(&path)?;
            if line.trim().is_empty() {
                continue;
            }
            let v: Value =
                serde_json::from_str(&line).map_err(|source| StoreError::BadEnrichLine {
                    path: path.clone(),
                    line: n as u64 + 1,
                    source,
                })?;
            let Some(addr) = v
                .get("addr")
                .and_then(Value::as_str)
                .and_then(|a| a.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
            out.insert(
                addr,
                EnrichRow {
                    prefix: s("prefix"),
                    asn: v.get("asn").and_then(Value::as_u64),
                    org: s("org"),
                    country: s("country"),
                    snapshot: s("snapshot"),
                },
            );
        }
    }
    Ok(out)
}
