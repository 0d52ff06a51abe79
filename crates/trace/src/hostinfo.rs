//! What the case's enrichment tables say of each address.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;

use relaytrace_store::Case;
use serde_json::Value;

use crate::chain::HostInfo;
use crate::error::{IoContext, TraceError};

/// Reads every enrichment table the ledger names (entries of kind `enrich`, their
/// `outputs`), in ledger order, so a later snapshot's answer replaces an earlier
/// one. No table: an empty map, and every hop's enrichment is null.
pub fn load(case: &Case) -> Result<BTreeMap<IpAddr, HostInfo>, TraceError> {
    let mut out = BTreeMap::new();
    for entry in case.ledger().entries()? {
        if entry.kind() != "enrich" {
            continue;
        }
        let Some(outputs) = entry.body.get("outputs").and_then(Value::as_array) else {
            continue;
        };
        for o in outputs {
            let Some(rel) = o.get("path").and_then(Value::as_str) else {
                continue;
            };
            let path = case.root().join(rel);
            let file = File::open(&path).at(&path)?;
            for (n, line) in BufReader::new(file).lines().enumerate() {
                let line = line.at(&path)?;
                if line.trim().is_empty() {
                    continue;
                }
                let v: Value =
                    serde_json::from_str(&line).map_err(|source| TraceError::BadEnrichLine {
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
                    HostInfo {
                        asn: v.get("asn").and_then(Value::as_u64),
                        org: s("org"),
                        country: s("country"),
                        snapshot: s("snapshot"),
                    },
                );
            }
        }
    }
    Ok(out)
}
