//! Reading the case's enrichment tables (`tables/enrich/*.jsonl`, written by
//! `relaytrace enrich`): what each address's snapshot said. Trace labels hops with it,
//! block expands origins to their networks with it; one reader serves both.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;

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

/// Reads every enrichment table the ledger names, in ledger order, so that a later
/// snapshot's answer replaces an earlier one. No table: an empty map. A line that is
/// not JSON is an error naming the file and line; a line without a usable `addr` is
/// skipped (it cannot be attached to anything).
pub fn read_enrichment(case: &Case) -> Result<BTreeMap<IpAddr, EnrichRow>, StoreError> {
    let mut out = BTreeMap::new();
    let mut texts: HashSet<Arc<str>> = HashSet::new();
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
            let mut s = |k: &str| {
                let t = v.get(k).and_then(Value::as_str)?;
                Some(match texts.get(t) {
                    Some(shared) => Arc::clone(shared),
                    None => {
                        let shared: Arc<str> = Arc::from(t);
                        texts.insert(Arc::clone(&shared));
                        shared
                    }
                })
            };
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
