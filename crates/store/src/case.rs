//! Opening and creating case directories.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{IoContext, StoreError};
use crate::ledger::Ledger;

/// Version of the on-disk layout, so later versions can refuse or migrate old cases.
pub const STORE_FORMAT: u64 = 1;

/// Tables a case holds, each a directory under `tables/`.
pub const TABLES: [&str; 3] = ["conns", "packets", "events"];

/// An open case directory.
#[derive(Debug, Clone)]
pub struct Case {
    root: PathBuf,
}

impl Case {
    /// Creates a new case at `root` (which must not exist or be empty) and records
    /// its creation as the first ledger entry.
    pub fn init(root: &Path, name: &str) -> Result<Case, StoreError> {
        if root.exists() {
            let mut entries = fs::read_dir(root).at(root)?;
            if entries.next().is_some() {
                return Err(StoreError::AlreadyExists(root.to_path_buf()));
            }
        }
        for dir in [
            "evidence",
            "tables/conns",
            "tables/packets",
            "tables/events",
            "tables/rejects",
        ] {
            fs::create_dir_all(root.join(dir)).at(root.join(dir))?;
        }
        let meta = serde_json::json!({ "name": name, "store_format": STORE_FORMAT });
        let meta_path = root.join("case.json");
        fs::write(&meta_path, format!("{meta:#}\n")).at(&meta_path)?;
        let case = Case {
            root: root.to_path_buf(),
        };
        let mut fields = Map::new();
        fields.insert("name".into(), Value::String(name.into()));
        fields.insert("store_format".into(), Value::from(STORE_FORMAT));
        fields.insert("tool".into(), Value::String(crate::TOOL_VERSION.into()));
        case.ledger().append("init", fields)?;
        Ok(case)
    }

    /// Opens an existing case.
    pub fn open(root: &Path) -> Result<Case, StoreError> {
        if !root.join("case.json").is_file() {
            return Err(StoreError::NotACase(root.to_path_buf()));
        }
        Ok(Case {
            root: root.to_path_buf(),
        })
    }

    /// The case directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The case's ledger.
    pub fn ledger(&self) -> Ledger {
        Ledger::new(self.root.join("ledger.jsonl"))
    }

    /// Where evidence with digest `sha256` is kept.
    pub fn evidence_path(&self, sha256: &str) -> PathBuf {
        self.root.join("evidence").join(sha256)
    }

    /// Scratch directory for outputs not yet committed.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tables").join(".tmp")
    }

    /// Takes the case's exclusive write lock (released when the file is dropped), so
    /// two ingests into one case cannot interleave their ledger entries. When another
    /// run holds it, the hook set with [`on_lock_wait`] is told before this one waits.
    pub fn lock(&self) -> Result<File, StoreError> {
        let path = self.root.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                if let Some(hook) = LOCK_WAIT_HOOK.get() {
                    hook(&self.root);
                }
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e).at(&path),
        }
        file.lock().at(&path)?;
        Ok(file)
    }
}

/// What to do when a case's lock is held by another run, before waiting for it.
static LOCK_WAIT_HOOK: std::sync::OnceLock<fn(&Path)> = std::sync::OnceLock::new();

/// Sets, once per process, what [`Case::lock`] does before it waits for a lock another
/// run holds (given the case's root). The library never prints; the command line tells
/// its user why it seems to hang.
pub fn on_lock_wait(hook: fn(&Path)) {
    let _ = LOCK_WAIT_HOOK.set(hook);
}

impl Case {
    /// The committed files of one table (`conns`, `packets`, `events`, `rejects`), in
    /// ledger order. Files the ledger does not reference are not part of the case.
    pub fn table_files(&self, table: &str) -> Result<Vec<PathBuf>, StoreError> {
        let mut files = Vec::new();
        for entry in self.ledger().entries()? {
            let Some(outputs) = entry.body.get("outputs").and_then(Value::as_array) else {
                continue;
            };
            for out in outputs {
                if out.get("table").and_then(Value::as_str) == Some(table) {
                    if let Some(p) = out.get("path").and_then(Value::as_str) {
                        files.push(self.root.join(p));
                    }
                }
            }
        }
        Ok(files)
    }
}
