//! `case verify`: recompute every digest and the ledger chain.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::case::Case;
use crate::digest::file_sha256;
use crate::error::{IoContext, StoreError};

/// What verification found.
#[derive(Debug, Default, Clone)]
pub struct VerifyReport {
    /// Ledger entries checked.
    pub entries: u64,
    /// Files whose digest was recomputed.
    pub files_checked: u64,
    /// Alterations and missing files: the case cannot be trusted as it is.
    pub problems: Vec<String>,
    /// Harmless findings, e.g. debris of an interrupted ingest or enrich that the ledger never
    /// committed (ignored by every reader).
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// True when nothing was altered or missing.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the ledger chain, then every file the ledger vouches for (evidence and
/// table outputs), then lists files the ledger does not know.
pub fn verify(case: &Case) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let ledger = case.ledger();
    let scan = ledger.check_chain()?;
    let ledger_name = ledger.path().display().to_string();
    for p in &scan.problems {
        report
            .problems
            .push(format!("{ledger_name}: line {}: {}", p.line, p.reason));
    }
    if scan.partial_tail_bytes > 0 {
        report.notes.push(format!(
            "{ledger_name}: {} bytes after the last complete entry (an interrupted append, never committed; removed by the next write)",
            scan.partial_tail_bytes
        ));
    }
    report.entries = scan.entries.len() as u64;
    check_ends(&ledger, &scan, &ledger_name, &mut report)?;
    let mut known: BTreeSet<String> = BTreeSet::new();
    for entry in &scan.entries {
        if let Some(ev) = entry.str_field("evidence") {
            let rel = format!("evidence/{ev}");
            check_file(case.root(), &rel, ev, entry.seq, &mut report)?;
            known.insert(rel);
        }
        if let Some(outputs) = entry.body.get("outputs").and_then(Value::as_array) {
            for out in outputs {
                let (Some(rel), Some(digest)) = (
                    out.get("path").and_then(Value::as_str),
                    out.get("sha256").and_then(Value::as_str),
                ) else {
                    report.problems.push(format!(
                        "{ledger_name}: entry {}: output without path or sha256",
                        entry.seq
                    ));
                    continue;
                };
                check_file(case.root(), rel, digest, entry.seq, &mut report)?;
                known.insert(rel.to_string());
            }
        }
    }
    for dir in [
        "evidence",
        "tables/conns",
        "tables/packets",
        "tables/events",
        "tables/rejects",
        "tables/enrich",
        "findings",
    ] {
        let path = case.root().join(dir);
        let Ok(listing) = fs::read_dir(&path) else {
            continue;
        };
        for item in listing {
            let item = item.at(&path)?;
            let rel = format!("{dir}/{}", item.file_name().to_string_lossy());
            if !known.contains(&rel) {
                report.notes.push(unreferenced_note(dir, &rel));
            }
        }
    }
    let scratch_used = fs::read_dir(case.tmp_dir()).is_ok_and(|mut d| d.next().is_some());
    if scratch_used {
        report
            .notes
            .push("tables/.tmp: uncommitted output of an interrupted ingest or enrich (ignored; removed by the next one)".into());
    }
    Ok(report)
}

/// Checks that the ledger starts with the case's `init` entry and ends where its
/// head file says (see [`crate::ledger`]): the chain alone shows neither a ledger
/// emptied nor one cut short.
fn check_ends(
    ledger: &crate::ledger::Ledger,
    scan: &crate::ledger::LedgerScan,
    ledger_name: &str,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    match scan.entries.first() {
        None if scan.problems.is_empty() => report.problems.push(format!(
            "{ledger_name}: no entries (missing or emptied: a case's ledger starts with its `init` entry)"
        )),
        Some(first) if first.kind() != "init" => report.problems.push(format!(
            "{ledger_name}: line {}: a `{}` entry, not the case's `init` entry",
            first.seq + 1,
            first.kind()
        )),
        _ => {}
    }
    if !scan.problems.is_empty() {
        // A broken chain is already the finding; where its end lies is not known.
        return Ok(());
    }
    let head_name = ledger.head_path().display().to_string();
    let head = match ledger.head() {
        Ok(h) => h,
        Err(e) => {
            report.problems.push(e.to_string());
            return Ok(());
        }
    };
    let last = scan.entries.last();
    match (head, last) {
        (None, None) => {}
        (None, Some(_)) => report.notes.push(format!(
            "{head_name}: missing (cases written before relaytrace recorded it have none; without it, entries cut off the ledger's end cannot be noticed)"
        )),
        (Some((seq, hash)), last) => match last {
            Some(last) if last.seq >= seq => {
                let at = scan.entries.iter().find(|e| e.seq == seq);
                if let Some(at) = at.filter(|e| e.hash != hash) {
                    report.problems.push(format!(
                        "{ledger_name}: entry {seq} has hash {}, but {head_name} records {hash}: the ledger was rewritten",
                        at.hash
                    ));
                } else if last.seq > seq {
                    let behind = last.seq - seq;
                    report.notes.push(format!(
                        "{head_name}: {behind} entr{} behind the ledger (an append interrupted before the head was updated; the next write updates it)",
                        if behind == 1 { "y" } else { "ies" }
                    ));
                }
            }
            _ => report.problems.push(format!(
                "{ledger_name}: ends {}, but {head_name} records entry {seq}: entries were removed from its end",
                last.map_or("before its first entry".to_string(), |l| format!("at entry {}", l.seq)),
            )),
        },
    }
    Ok(())
}

/// What an unreferenced file in `dir` is. Nothing reads such files (tables and
/// findings are found through the ledger), so they are noted, not problems.
fn unreferenced_note(dir: &str, rel: &str) -> String {
    let partial = rel.ends_with(".partial");
    match (dir, partial) {
        ("findings", true) => format!(
            "{rel}: an interrupted finding write, never committed (ignored; safe to delete)"
        ),
        ("findings", false) => format!(
            "{rel}: not referenced by the ledger (a command stopped between writing its finding and its ledger entry; ignored, recorded again on re-run)"
        ),
        _ => format!(
            "{rel}: not referenced by the ledger (left by an interrupted ingest or enrich; ignored, replaced on re-run)"
        ),
    }
}

fn check_file(
    root: &Path,
    rel: &str,
    expected: &str,
    seq: u64,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let path = root.join(rel);
    if !path.is_file() {
        report
            .problems
            .push(format!("{rel}: missing (recorded by ledger entry {seq})"));
        return Ok(());
    }
    let actual = file_sha256(&path)?;
    report.files_checked += 1;
    if actual != expected {
        report.problems.push(format!(
            "{rel}: altered: sha256 is {actual}, ledger entry {seq} recorded {expected}"
        ));
    }
    Ok(())
}
