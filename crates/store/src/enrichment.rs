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
    Ok(out)
}
