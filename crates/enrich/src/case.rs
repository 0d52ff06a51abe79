//! Enriching a case: every distinct address of its connections looked up in one
//! snapshot, written as an enrichment table (`tables/enrich/<snap16>-<content16>.jsonl`,
//! one JSON object per address) and committed by an `enrich` ledger entry that names
//! the snapshot and its sources. Trace and block read the tables back through
//! `relaytrace_store::enrichment`.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{BufWriter, Write};
use std::net::IpAddr;

use relaytrace_store::{columns::scan_columns, digest::HashingWriter, Case};
use serde_json::{json, Map, Value};

use crate::error::{EnrichError, IoContext};
use crate::{Hit, Snapshot};

/// One address as the table (and `relaytrace whois --format json`) states it.
pub fn hit_json(addr: &str, hit: &Hit<'_>, snapshot: &str) -> Value {
    let r = &hit.record;
    let known = hit.record_id != 0;
    json!({
        "addr": addr,
        "status": if known { "known" } else { "unknown" },
        "prefix": known.then(|| format!("{}/{}", hit.prefix.0, hit.prefix.1)),
        "asn": r.asn.map(|a| a.0),
        "org": r.org,
        "country": r.country.map(|c| c.to_string()),
        "upstreams": r.upstreams.iter().map(|a| a.0).collect::<Vec<_>>(),
        "asn_source": r.asn.map(|_| if r.asn_from_routing { "routing" } else { "registry" }),
        "snapshot": snapshot,
    })
}

/// What [`enrich_case`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichOutcome {
    /// Distinct addresses looked up.
    pub addresses: u64,
    /// Of those, the ones the snapshot knows.
    pub known: u64,
    /// The snapshot's digest.
    pub snapshot: String,
    /// The table, relative to the case.
    pub path: String,
    /// False when the same table was already in the case (nothing added).
    pub added: bool,
    /// Connection rows whose `orig_h` or `resp_h` is not an address (skipped, counted).
    pub skipped: u64,
}

impl fmt::Display for EnrichOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.added {
            write!(
                f,
                "enriched {} addresses ({} known, {} unknown) with snapshot {}\n  {}",
                self.addresses,
                self.known,
                self.addresses - self.known,
                self.snapshot,
                self.path
            )?;
        } else {
            write!(
                f,
                "already enriched: {} addresses with snapshot {} ({}); nothing added",
                self.addresses, self.snapshot, self.path
            )?;
        }
        if self.skipped > 0 {
            write!(
                f,
                "\n  {} value(s) that are not addresses skipped",
                self.skipped
            )?;
        }
        Ok(())
    }
}

/// Distinct addresses of every committed conns table, and how many values were not
/// addresses.
fn case_addresses(case: &Case) -> Result<(BTreeSet<IpAddr>, u64), EnrichError> {
    let mut addrs = BTreeSet::new();
    let mut skipped = 0u64;
    for file in case.table_files("conns")? {
        // The two address columns only (typed column reads): this runs after every
        // ingest when a snapshot is installed, over the whole case.
        scan_columns(&file, &["orig_h", "resp_h"], |_, batch| {
            for row in 0..batch.rows() {
                for col in 0..2 {
                    match batch.text(col, row).map(str::parse::<IpAddr>) {
                        Some(Ok(a)) => {
                            addrs.insert(a);
                        }
                        _ => skipped += 1,
                    }
                }
            }
            true
        })?;
    }
    Ok((addrs, skipped))
}

/// Looks up every address of the case's connections in `snap` and records the table,
/// under the case lock (the caller must not hold it): written to a temporary file
/// while hashed, synced, renamed into `tables/enrich/`, then the ledger entry. The same
/// snapshot on the same addresses adds nothing. The snapshot's digest is rechecked
/// first: evidence must name exactly the data that said it.
pub fn enrich_case(case: &Case, snap: &Snapshot) -> Result<EnrichOutcome, EnrichError> {
    snap.verify_digest()?;
    let _lock = case.lock()?;
    let (addrs, skipped) = case_addresses(case)?;
    let tmp_dir = case.tmp_dir();
    fs::create_dir_all(&tmp_dir).at(&tmp_dir)?;
    let tmp = tmp_dir.join(format!("enrich-{}.partial", std::process::id()));
    let file = fs::File::create(&tmp).at(&tmp)?;
    let mut w = HashingWriter::new(BufWriter::new(file));
    let t = snap.tables();
    let mut known = 0u64;
    for a in &addrs {
        let hit = t.lookup(*a);
        known += u64::from(hit.record_id != 0);
        writeln!(w, "{}", hit_json(&a.to_string(), &hit, snap.digest())).at(&tmp)?;
    }
    let (digest, buffered) = w.finish();
    let file = buffered.into_inner().map_err(|e| e.into_error()).at(&tmp)?;
    file.sync_all().at(&tmp)?;
    drop(file);

    let path = format!(
        "tables/enrich/{}-{}.jsonl",
        &snap.digest()[..16],
        &digest[..16]
    );
    let mut outcome = EnrichOutcome {
        addresses: addrs.len() as u64,
        known,
        snapshot: snap.digest().to_string(),
        path: path.clone(),
        added: false,
        skipped,
    };
    let done = case.ledger().entries()?.iter().any(|e| {
        e.kind() == "enrich"
            && e.body
                .get("outputs")
                .and_then(Value::as_array)
                .is_some_and(|o| {
                    o.iter()
                        .any(|x| x.get("sha256").and_then(Value::as_str) == Some(&digest))
                })
    });
    if done {
        fs::remove_file(&tmp).ok();
        fs::remove_dir(&tmp_dir).ok();
        return Ok(outcome);
    }
    let dest = case.root().join(&path);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).at(parent)?;
    }
    fs::rename(&tmp, &dest).at(&dest)?;
    // Scratch directory no longer needed (fails harmlessly if another file is in it).
    fs::remove_dir(&tmp_dir).ok();

    let m = snap.meta();
    let sources: Vec<Value> = m
        .sources
        .iter()
        .map(|s| json!({ "kind": s.kind, "file": s.file, "package": s.package, "sha256": s.sha256, "licence": s.licence }))
        .collect();
    let mut fields = Map::new();
    fields.insert("snapshot".into(), Value::String(snap.digest().into()));
    fields.insert("snapshot_sources".into(), Value::Array(sources));
    fields.insert("addresses".into(), Value::from(outcome.addresses));
    fields.insert("known".into(), Value::from(known));
    fields.insert("unknown".into(), Value::from(outcome.addresses - known));
    fields.insert(
        "outputs".into(),
        json!([{ "table": "enrich", "path": path, "sha256": digest }]),
    );
    fields.insert(
        "tool".into(),
        Value::String(relaytrace_store::TOOL_VERSION.into()),
    );
    case.ledger().append("enrich", fields)?;
    outcome.added = true;
    Ok(outcome)
}
