//! Findings: the JSON files that trace, assess and block write into `findings/`,
//! each named by its own digest and committed by a ledger entry.
//!
//! One writer for every stage, so that every finding gets the same guarantees: the
//! bytes are written to a temporary file, synced and renamed into place before the
//! ledger entry that names them (with their SHA-256) is appended, all under the case
//! lock; a kill at any point leaves either no entry or a complete file, and
//! `case verify` checks the digest like any other output.

use std::fs;
use std::io::Write;

use serde_json::{json, Map, Value};

use crate::digest::sha256_hex;
use crate::error::{IoContext, StoreError};
use crate::Case;

/// When a finding with the same bytes counts as already recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedup {
    /// If any earlier entry of the kind names the same digest (trace, assess: a
    /// finding is a fact about the case, recorded once).
    AnyEarlier,
    /// Only if the newest entry of the kind does (block plans: re-making an older plan
    /// after a different one must make it current again).
    Newest,
}

/// Where a finding went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFinding {
    /// Path relative to the case (`findings/<kind>-<sha16>.json`).
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// False when the same finding was already recorded (nothing added).
    pub added: bool,
}

fn names_digest(entry: &crate::LedgerEntry, sha256: &str) -> bool {
    entry
        .body
        .get("outputs")
        .and_then(Value::as_array)
        .is_some_and(|o| {
            o.iter()
                .any(|x| x.get("sha256").and_then(Value::as_str) == Some(sha256))
        })
}

impl Case {
    /// Writes `bytes` to `findings/<kind>-<sha16>.json` and appends a ledger entry of
    /// `kind` with `fields` plus `outputs` (path and SHA-256) and `tool`, under the
    /// case lock (the caller must not hold it). Nothing is written when `dedup` finds
    /// the same finding already recorded.
    pub fn record_finding(
        &self,
        kind: &str,
        bytes: &[u8],
        mut fields: Map<String, Value>,
        dedup: Dedup,
    ) -> Result<RecordedFinding, StoreError> {
        let _lock = self.lock()?;
        let sha256 = sha256_hex(bytes);
        let path = format!("findings/{kind}-{}.json", &sha256[..16]);
        let entries = self.ledger().entries()?;
        let mut same_kind = entries.iter().filter(|e| e.kind() == kind);
        let already = match dedup {
            Dedup::AnyEarlier => same_kind.any(|e| names_digest(e, &sha256)),
            Dedup::Newest => same_kind
                .next_back()
                .is_some_and(|e| names_digest(e, &sha256)),
        };
        if already {
            return Ok(RecordedFinding {
                path,
                sha256,
                added: false,
            });
        }
        let dir = self.root().join("findings");
        fs::create_dir_all(&dir).at(&dir)?;
        let tmp = dir.join(format!(".{kind}-{}.partial", std::process::id()));
        {
            let mut f = fs::File::create(&tmp).at(&tmp)?;
            f.write_all(bytes).at(&tmp)?;
            f.sync_all().at(&tmp)?;
        }
        let dest = self.root().join(&path);
        fs::rename(&tmp, &dest).at(&dest)?;
        fields.insert(
            "outputs".into(),
            json!([{ "table": "findings", "path": path, "sha256": sha256 }]),
        );
        fields.insert("tool".into(), Value::String(crate::TOOL_VERSION.into()));
        self.ledger().append(kind, fields)?;
        Ok(RecordedFinding {
            path,
            sha256,
            added: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_once_verified_and_newest_dedup_rerecords_an_older_finding() {
        let dir = tempfile::tempdir().unwrap();
        let case = Case::init(&dir.path().join("c"), "t").unwrap();
        let a = case
            .record_finding("demo", b"{\"a\":1}\n", Map::new(), Dedup::AnyEarlier)
            .unwrap();
        assert!(a.added);
        assert_eq!(fs::read(case.root().join(&a.path)).unwrap(), b"{\"a\":1}\n");
        let again = case
            .record_finding("demo", b"{\"a\":1}\n", Map::new(), Dedup::AnyEarlier)
            .unwrap();
        assert!(!again.added);
        // Newest: a, then b, then a again is recorded again (a is current once more).
        let p = |b: &[u8]| {
            case.record_finding("plan", b, Map::new(), Dedup::Newest)
                .unwrap()
                .added
        };
        assert!(p(b"a"));
        assert!(!p(b"a"));
        assert!(p(b"b"));
        assert!(p(b"a"));
        assert!(crate::verify(&case).unwrap().ok());
    }

    #[test]
    fn verify_notes_interrupted_and_unrecorded_findings() {
        let dir = tempfile::tempdir().unwrap();
        let case = Case::init(&dir.path().join("c"), "t").unwrap();
        let a = case
            .record_finding("trace", b"{}\n", Map::new(), Dedup::AnyEarlier)
            .unwrap();
        let clean = crate::verify(&case).unwrap();
        assert!(clean.ok() && clean.notes.is_empty(), "{clean:?}");
        // A kill before the rename leaves a partial file; one between the rename and
        // the ledger append leaves an unrecorded finding. Neither is a problem, both
        // are named.
        let findings = case.root().join("findings");
        fs::write(findings.join(".trace-4242.partial"), b"{").unwrap();
        fs::write(findings.join("trace-0123456789abcdef.json"), b"{}").unwrap();
        let r = crate::verify(&case).unwrap();
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.notes.len(), 2, "{r:?}");
        assert!(r
            .notes
            .iter()
            .any(|n| n.starts_with("findings/.trace-4242.partial: an interrupted")));
        assert!(r
            .notes
            .iter()
            .any(|n| n.starts_with("findings/trace-0123456789abcdef.json: not referenced")));
        // The recorded one, altered, is a problem.
        fs::write(case.root().join(&a.path), b"{\"x\":1}\n").unwrap();
        let r = crate::verify(&case).unwrap();
        assert!(
            r.problems
                .iter()
                .any(|p| p.starts_with(&format!("{}: altered", a.path))),
            "{r:?}"
        );
    }
}
