//! Writing the assessment into the case, and logging evidence changes.
//!
//! The finding goes to `findings/assess-<sha16>.json` (temporary file, sync, rename)
//! followed by an `assess` ledger entry naming it with its SHA-256, the same pattern
//! as trace findings. Every change of `evidence.toml` is an `evidence` ledger entry
//! with the file's digest: `evidence add` logs its own change, and `assess` logs a
//! digest it has not seen before (a hand edit) before it uses the file, so the ledger
//! always says which evidence an assessment rests on.

use std::fs;

use relaytrace_store::{digest::sha256_hex, Case, Dedup};
use serde_json::{json, Map};

use crate::error::{AssessError, IoContext};
use crate::report::Assessment;
use crate::EVIDENCE_FILE;

/// Where [`record`] put the finding.
pub type Recorded = relaytrace_store::RecordedFinding;

/// Writes the finding and appends the `assess` ledger entry (nothing when the same
/// finding is already recorded), through [`Case::record_finding`].
pub fn record(case: &Case, a: &Assessment) -> Result<Recorded, AssessError> {
    let mut bytes = serde_json::to_vec_pretty(&a.to_json()).expect("a Value always serialises");
    bytes.push(b'\n');
    let j = &a.judgement;
    let mut fields = Map::new();
    fields.insert("verdict".into(), json!(j.verdict.as_str()));
    fields.insert("leading".into(), json!(a.set.hypotheses[j.leading].id));
    fields.insert("confidence".into(), json!(j.basis.level.as_str()));
    fields.insert(
        "inputs".into(),
        json!({
            "evidence": {"path": EVIDENCE_FILE, "sha256": a.evidence_sha256},
            "trace": a.trace.as_ref().map(|t| json!({"path": t.path, "sha256": t.sha256})),
            "as_of": a.as_of,
        }),
    );
    Ok(case.record_finding("assess", &bytes, fields, Dedup::AnyEarlier)?)
}

/// The digest of the newest `evidence` ledger entry, if any.
pub fn last_logged_digest(case: &Case) -> Result<Option<String>, AssessError> {
    Ok(case
        .ledger()
        .entries()?
        .iter()
        .rev()
        .find(|e| e.kind() == "evidence")
        .and_then(|e| e.str_field("sha256").map(str::to_string)))
}

/// Appends an `evidence` ledger entry for the current `evidence.toml` (`action`:
/// `add`, `init`, `edited`; `item`: the item concerned), unless `action` is `edited`
/// and the digest is already the logged one. Returns whether an entry was added.
pub fn log_evidence(case: &Case, action: &str, item: Option<&str>) -> Result<bool, AssessError> {
    // One writer of the ledger at a time, as every other stage.
    let _lock = case.lock()?;
    let path = case.root().join(EVIDENCE_FILE);
    let bytes = fs::read(&path).at(&path)?;
    let sha256 = sha256_hex(&bytes);
    if action == "edited" && last_logged_digest(case)?.as_deref() == Some(sha256.as_str()) {
        return Ok(false);
    }
    let mut fields = Map::new();
    fields.insert("action".into(), json!(action));
    fields.insert("path".into(), json!(EVIDENCE_FILE));
    fields.insert("sha256".into(), json!(sha256));
    fields.insert("bytes".into(), json!(bytes.len()));
    if let Some(i) = item {
        fields.insert("item".into(), json!(i));
    }
    fields.insert("tool".into(), json!(relaytrace_store::TOOL_VERSION));
    case.ledger().append("evidence", fields)?;
    Ok(true)
}
