//! The append-only, hash-chained ledger (`ledger.jsonl`).
//!
//! Each line is one JSON object with sorted keys. Its `hash` is the SHA-256 of the
//! same object serialised without `hash`; its `prev` is the previous line's `hash`
//! (64 zeros for the first). Changing, removing or reordering any line therefore
//! breaks the chain from that line on, which [`Ledger::check_chain`] reports.
//! An entry is committed when its line, newline included, is on disk: a line cut
//! short by a crash was never committed and is dropped on the next append.
//!
//! A chain shows a changed or removed line, but not lines cut off at the end: the
//! shorter ledger is a valid chain too. So every append also records the newest
//! entry's `seq` and `hash` in `ledger.head` (written aside and renamed over), and
//! `case verify` compares the two. Someone who can rewrite the case can rewrite that
//! file as well; it catches a ledger cut short by accident or by a careless hand, and
//! signed bundles are what hold against the rest.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::digest::sha256_hex;
use crate::error::{IoContext, StoreError};

/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One committed ledger line.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    /// 0-based position in the ledger.
    pub seq: u64,
    /// The entry's fields (including `seq`, `prev`, `kind`), without `hash`.
    pub body: Map<String, Value>,
    /// The stored hash.
    pub hash: String,
}

impl LedgerEntry {
    /// The entry kind (`init`, `ingest`...).
    pub fn kind(&self) -> &str {
        self.body.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    /// A string field of the body.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }
}

/// A chain problem found by [`Ledger::check_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainProblem {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// The ledger file of a case.
pub struct Ledger {
    path: PathBuf,
}

/// Result of reading the ledger leniently, for verification.
pub struct LedgerScan {
    /// Entries that parsed (in file order), whether or not their hashes are right.
    pub entries: Vec<LedgerEntry>,
    /// Problems: unparsable lines, hash mismatches, broken links.
    pub problems: Vec<ChainProblem>,
    /// Bytes after the last newline (an uncommitted, interrupted append).
    pub partial_tail_bytes: u64,
}

impl Ledger {
    /// The ledger at `path` (created on first append).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Ledger { path: path.into() }
    }

    /// Path of the ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and checks every committed line. Any problem is an error: callers that
    /// write must not build on a broken chain.
    pub fn entries(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        let scan = self.check_chain()?;
        if let Some(p) = scan.problems.first() {
            return Err(StoreError::BadLedger {
                path: self.path.clone(),
                line: p.line,
                reason: format!("{} (run `relaytrace case verify`)", p.reason),
            });
        }
        Ok(scan.entries)
    }

    /// Reads every line, recomputing hashes and links, and reports all problems.
    pub fn check_chain(&self) -> Result<LedgerScan, StoreError> {
        let mut scan = LedgerScan {
            entries: Vec::new(),
            problems: Vec::new(),
            partial_tail_bytes: 0,
        };
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(scan),
            Err(e) => return Err(e).at(&self.path),
        };
        let mut reader = BufReader::new(file);
        let mut prev = GENESIS.to_string();
        let mut line_no = 0u64;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).at(&self.path)?;
            if n == 0 {
                break;
            }
            if buf.last() != Some(&b'\n') {
                scan.partial_tail_bytes = n as u64;
                break;
            }
            line_no += 1;
            let mut problem = |reason: String| {
                scan.problems.push(ChainProblem {
                    line: line_no,
                    reason,
                })
            };
            let mut body = match serde_json::from_slice::<Value>(&buf) {
                Ok(Value::Object(m)) => m,
                _ => {
                    problem("not a JSON object".into());
                    prev = String::new();
                    continue;
                }
            };
            let stored = match body.remove("hash") {
                Some(Value::String(h)) => h,
                _ => {
                    problem("no `hash` field".into());
                    String::new()
                }
            };
            let computed = sha256_hex(Value::Object(body.clone()).to_string().as_bytes());
            if computed != stored {
                problem(format!(
                    "entry altered: its content hashes to {computed}, the line says {stored}"
                ));
            }
            match body.get("prev").and_then(Value::as_str) {
                Some(p) if p == prev => {}
                Some(p) => problem(format!(
                    "chain broken: `prev` is {p}, the previous entry's hash is {prev}"
                )),
                None => problem("no `prev` field".into()),
            }
            let seq_ok = body.get("seq").and_then(Value::as_u64) == Some(line_no - 1);
            if !seq_ok {
                problem(format!("`seq` is not {}", line_no - 1));
            }
            prev = stored.clone();
            scan.entries.push(LedgerEntry {
                seq: line_no - 1,
                body,
                hash: stored,
            });
        }
        Ok(scan)
    }

    /// Appends one entry built from `fields` (which must not contain `seq`, `prev`
    /// or `hash`), syncing it to disk before returning. A partial last line left by
    /// an interrupted append is removed first.
    pub fn append(
        &self,
        kind: &str,
        fields: Map<String, Value>,
    ) -> Result<LedgerEntry, StoreError> {
        let entries = self.entries()?;
        self.drop_partial_tail()?;
        let (seq, prev) = match entries.last() {
            Some(last) => (last.seq + 1, last.hash.clone()),
            None => (0, GENESIS.to_string()),
        };
        let mut body = fields;
        body.insert("kind".into(), Value::String(kind.into()));
        body.insert("seq".into(), Value::from(seq));
        body.insert("prev".into(), Value::String(prev));
        let hash = sha256_hex(Value::Object(body.clone()).to_string().as_bytes());
        let mut full = body.clone();
        full.insert("hash".into(), Value::String(hash.clone()));
        let mut line = Value::Object(full).to_string();
        line.push('\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .at(&self.path)?;
        file.write_all(line.as_bytes()).at(&self.path)?;
        file.sync_all().at(&self.path)?;
        drop(file);
        // The entry is committed: a head that cannot be written (a full disk, a root
        // that is read-only while the ledger is not) must not turn that into an error.
        // It stays behind, which `case verify` notes and the next append mends.
        let _ = self.write_head(seq, &hash);
        Ok(LedgerEntry { seq, body, hash })
    }

    /// Path of the head file (`ledger.head` beside `ledger.jsonl`).
    pub fn head_path(&self) -> PathBuf {
        self.path.with_extension("head")
    }

    /// Records `seq` and `hash` as the newest entry: written aside, synced, renamed
    /// over the old head. A crash (or an error) before the rename leaves the head one
    /// entry behind, which verification notes and the next append mends.
    fn write_head(&self, seq: u64, hash: &str) -> Result<(), StoreError> {
        let head = self.head_path();
        // A name of this process's own: two appenders never write one scratch file.
        let partial = self
            .path
            .with_extension(format!("head.{}.partial", std::process::id()));
        let mut text = serde_json::json!({ "seq": seq, "hash": hash }).to_string();
        text.push('\n');
        let mut f = File::create(&partial).at(&partial)?;
        f.write_all(text.as_bytes()).at(&partial)?;
        f.sync_all().at(&partial)?;
        std::fs::rename(&partial, &head).at(&head)?;
        Ok(())
    }

    /// The newest entry's `seq` and `hash` as the head file records them; `None`
    /// when there is no head file (a case written before heads were recorded).
    pub fn head(&self) -> Result<Option<(u64, String)>, StoreError> {
        let path = self.head_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at(&path),
        };
        let v: Value = serde_json::from_str(&text).map_err(|e| StoreError::BadLedger {
            path: path.clone(),
            line: 1,
            reason: format!("not a ledger head: {e}"),
        })?;
        match (
            v.get("seq").and_then(Value::as_u64),
            v.get("hash").and_then(Value::as_str),
        ) {
            (Some(seq), Some(hash)) => Ok(Some((seq, hash.to_string()))),
            _ => Err(StoreError::BadLedger {
                path,
                line: 1,
                reason: "not a ledger head: needs `seq` (a number) and `hash` (a string)".into(),
            }),
        }
    }

    fn drop_partial_tail(&self) -> Result<(), StoreError> {
        let mut file = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).at(&self.path),
        };
        let len = file.metadata().at(&self.path)?.len();
        if len == 0 {
            return Ok(());
        }
        let mut content = Vec::new();
        file.read_to_end(&mut content).at(&self.path)?;
        if content.last() == Some(&b'\n') {
            return Ok(());
        }
        let keep = content
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        file.set_len(keep as u64).at(&self.path)?;
        file.seek(SeekFrom::End(0)).at(&self.path)?;
        file.sync_all().at(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(k: &str, v: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(k.into(), Value::String(v.into()));
        m
    }

    #[test]
    fn chain_detects_edits_and_survives_partial_tail() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path().join("ledger.jsonl"));
        let a = ledger.append("init", fields("name", "x")).unwrap();
        let b = ledger.append("ingest", fields("input", "y")).unwrap();
        assert_eq!(b.str_field("prev"), Some(a.hash.as_str()));
        assert_eq!(ledger.entries().unwrap().len(), 2);

        // An interrupted append leaves a partial line: not committed, dropped.
        let mut f = OpenOptions::new().append(true).open(ledger.path()).unwrap();
        f.write_all(b"{\"kind\":\"ing").unwrap();
        assert_eq!(ledger.check_chain().unwrap().partial_tail_bytes, 12);
        ledger.append("ingest", fields("input", "z")).unwrap();
        assert_eq!(ledger.entries().unwrap().len(), 3);

        // Editing a committed line is caught.
        let text = std::fs::read_to_string(ledger.path()).unwrap();
        std::fs::write(ledger.path(), text.replacen("\"y\"", "\"Y\"", 1)).unwrap();
        let scan = ledger.check_chain().unwrap();
        assert_eq!(scan.problems.len(), 1, "{:?}", scan.problems);
        assert_eq!(scan.problems[0].line, 2);
        assert!(ledger.entries().is_err());
    }
}
