//! `relaytrace enrich --case DIR`: an enrichment table for every address of a case.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use relaytrace_enrich::Snapshot;
use relaytrace_store::{digest::HashingWriter, tables::scan_rows, Case};
use serde_json::{json, Map, Value};

use super::data::DataDirArg;
use super::whois::hit_json;

/// Arguments of `enrich`.
#[derive(Debug, Args)]
#[command(
    after_help = "Writes tables/enrich/<snapshot>-<content>.jsonl: one JSON object per \
distinct address of the case's connections (orig_h and resp_h) with prefix, asn, org, country, \
upstreams, asn_source and the snapshot digest, and records it in the ledger. Re-running with a \
new snapshot adds a new table and ledger entry; earlier ones stay. Re-running with the same \
snapshot on unchanged connections adds nothing.\n\n\
Example:\n  relaytrace enrich --case ./sony-case"
)]
pub struct EnrichArgs {
    /// The case directory.
    #[arg(long)]
    case: PathBuf,
    /// Use this snapshot file instead of the data directory's current one.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    #[command(flatten)]
    data: DataDirArg,
}

/// Runs `enrich`.
pub fn run(args: EnrichArgs) -> Result<ExitCode> {
    let case = Case::open(&args.case)?;
    let snap = super::whois::load_snapshot(args.snapshot.as_ref(), &args.data)?;
    // Evidence must name exactly the data that said it: recheck the digest.
    snap.verify_digest()?;
    let _lock = case.lock()?;
    let addrs = case_addresses(&case)?;
    let outcome = write_table(&case, &snap, &addrs)?;
    println!("{outcome}");
    Ok(ExitCode::SUCCESS)
}

/// Enriches a case with the data directory's current snapshot, if there is one: what
/// `ingest` runs after its inputs so a case is enriched as soon as data exists.
/// Returns the one-line outcome, or `None` when no snapshot is installed.
pub fn auto(case_dir: &std::path::Path, data: &DataDirArg) -> Result<Option<String>> {
    let Some(snap) = data.resolve()?.open_current()? else {
        return Ok(None);
    };
    snap.verify_digest()?;
    let case = Case::open(case_dir)?;
    let _lock = case.lock()?;
    let addrs = case_addresses(&case)?;
    Ok(Some(write_table(&case, &snap, &addrs)?))
}

/// Distinct addresses of every committed conns table.
fn case_addresses(case: &Case) -> Result<BTreeSet<IpAddr>> {
    let mut addrs = BTreeSet::new();
    let mut bad = None;
    for file in case.table_files("conns")? {
        scan_rows(&file, |row| {
            for (name, v) in &row {
                if name == "orig_h" || name == "resp_h" {
                    match v.as_str().map(str::parse::<IpAddr>) {
                        Some(Ok(a)) => {
                            addrs.insert(a);
                        }
                        _ => bad = Some(format!("{}: {name} = {v}", file.display())),
                    }
                }
            }
            true
        })?;
    }
    if let Some(b) = bad {
        eprintln!("warning: not an address, skipped: {b}");
    }
    Ok(addrs)
}

fn write_table(case: &Case, snap: &Snapshot, addrs: &BTreeSet<IpAddr>) -> Result<String> {
    let tmp_dir = case.tmp_dir();
    fs::create_dir_all(&tmp_dir).with_context(|| tmp_dir.display().to_string())?;
    let tmp = tmp_dir.join(format!("enrich-{}.partial", std::process::id()));
    let file = fs::File::create(&tmp).with_context(|| tmp.display().to_string())?;
    let mut w = HashingWriter::new(BufWriter::new(file));
    let t = snap.tables();
    let mut known = 0u64;
    for a in addrs {
        let hit = t.lookup(*a);
        known += u64::from(hit.record_id != 0);
        writeln!(w, "{}", hit_json(&a.to_string(), &hit, snap.digest()))?;
    }
    let (digest, buffered) = w.finish();
    let file = buffered.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);

    // Same snapshot, same addresses: this table is already in the case.
    let rel = format!(
        "tables/enrich/{}-{}.jsonl",
        &snap.digest()[..16],
        &digest[..16]
    );
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
        return Ok(format!(
            "already enriched: {} addresses with snapshot {} ({rel}); nothing added",
            addrs.len(),
            snap.digest()
        ));
    }
    let dest = case.root().join(&rel);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
    }
    fs::rename(&tmp, &dest).with_context(|| dest.display().to_string())?;
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
    fields.insert("addresses".into(), Value::from(addrs.len() as u64));
    fields.insert("known".into(), Value::from(known));
    fields.insert("unknown".into(), Value::from(addrs.len() as u64 - known));
    fields.insert(
        "outputs".into(),
        json!([{ "table": "enrich", "path": rel, "sha256": digest }]),
    );
    fields.insert(
        "tool".into(),
        Value::String(relaytrace_store::TOOL_VERSION.into()),
    );
    case.ledger().append("enrich", fields)?;
    Ok(format!(
        "enriched {} addresses ({known} known, {} unknown) with snapshot {}\n  {rel}",
        addrs.len(),
        addrs.len() as u64 - known,
        snap.digest()
    ))
}
