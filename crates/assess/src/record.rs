//! Writing the assessment into the case, and logging evidence changes.
//!
//! The finding goes to `findings/assess-<sha16>.json` (temporary file, sync, rename)
//! followed by an `assess` ledger entry naming it with its SHA-256, the same pattern
//! as trace findings. Every change of `evidence.toml` is an `evidence` ledger entry
//! with the file's digest: `evidence add` logs its own change, and `assess` logs a
//! digest it has not seen before (a hand edit) before it uses the file, so the ledger
//! always says which evidence an assessment rests on.

use std::fs;
use std::io::Write;

use relaytrace_store::{digest::sha256_hex, Case};
use serde_json::{json, Map, Value};

use crate::error::{AssessError, IoContext};
use crate::report::Assessment;
use crate::EVIDENCE_FILE;

/// Where [`record`] put the finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// Path relative to the case (`findings/assess-<sha16>.json`).
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// False when the same finding was already recorded.
    pub added: bool,
}

fn has_output(case: &Case, kind: &str, sha256: &str) -> Result<bool, AssessError> {
    Ok(case.ledger().entries()?.iter().any(|e| {
        e.kind() == kind
            && e.body
                .get("outputs")
                .and_then(Value::as_array)
                .is_some_and(|o| {
                    o.iter()
                        .any(|x| x.get("sha256").and_then(Value::as_str) == Some(sha256))
                })
    }))
}

/// Writes the finding and appends the `assess` ledger entry (nothing when the same
/// finding is already recorded).
pub fn record(case: &Case, a: &Assessment) -> Result<Recorded, AssessError> {
    let _lock = case.lock()?;
    let mut bytes = serde_json::to_vec_pretty(&a.to_json()).expect("a Value always serialises");
    bytes.push(b'\n');
    let sha256 = sha256_hex(&bytes);
    let path = format!("findings/assess-{}.json", &sha256[..16]);
    if has_output(case, "assess", &sha256)? {
        return Ok(Recorded {
            path,
            sha256,
            added: false,
        });
    }
    let dir = case.root().join("findings");
    fs::create_dir_all(&dir).at(&dir)?;
    let tmp = dir.join(format!(".assess-{}.partial", std::process::id()));
    {
        let mut f = fs::File::create(&tmp).at(&tmp)?;
        f.write_all(&bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    let dest = case.root().join(&path);
    fs::rename(&tmp, &dest).at(&dest)?;
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
    fields.insert(
        "outputs".into(),
        json!([{ "table": "findings", "path": path, "sha256": sha256 }]),
    );
    fields.insert("tool".into(), json!(relaytrace_store::TOOL_VERSION));
    case.ledger().append("assess", fields)?;
    Ok(Recorded {
        path,
        sha256,
        added: true,
    })
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
