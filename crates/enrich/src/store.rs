//! The data directory: downloaded packages, extracted sources, snapshots.
//!
//! ```text
//! <data-dir>/
//!   packages/<scope>-<name>-<version>.tgz   npm tarballs, integrity-checked
//!   sources/<scope>-<name>-<version>/...   the files used from each tarball
//!   snapshots/<sha256>.rtsnap              immutable snapshots, never rewritten
//!   current                                digest of the snapshot in use
//! ```
//! Old snapshots stay: a case enriched with one keeps naming it, and `data status`
//! lists them all.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{EnrichError, IoContext};
use crate::snapshot::{Snapshot, EXTENSION};

/// A data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The data directory at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where npm tarballs go.
    pub fn packages(&self) -> PathBuf {
        self.root.join("packages")
    }

    /// Where the files extracted from package `stem` go.
    pub fn sources(&self, stem: &str) -> PathBuf {
        self.root.join("sources").join(stem)
    }

    /// Where snapshots go.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// Path of the snapshot with `digest`.
    pub fn snapshot_path(&self, digest: &str) -> PathBuf {
        self.snapshots().join(format!("{digest}.{EXTENSION}"))
    }

    /// Digest of the current snapshot, if one was made current.
    pub fn current(&self) -> Result<Option<String>, EnrichError> {
        let path = self.root.join("current");
        match fs::read_to_string(&path) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(path),
        }
    }

    /// Makes `digest` the current snapshot (write to a temporary file, then rename:
    /// readers see the old or the new pointer, never half of one).
    pub fn set_current(&self, digest: &str) -> Result<(), EnrichError> {
        fs::create_dir_all(&self.root).at(&self.root)?;
        let tmp = self.root.join(".current.tmp");
        fs::write(&tmp, format!("{digest}\n")).at(&tmp)?;
        let path = self.root.join("current");
        fs::rename(&tmp, &path).at(path)
    }

    /// Opens the current snapshot (structure checked; digest from its name).
    pub fn open_current(&self) -> Result<Option<Snapshot>, EnrichError> {
        match self.current()? {
            Some(d) => Snapshot::open(&self.snapshot_path(&d)).map(Some),
            None => Ok(None),
        }
    }

    /// Digests of every snapshot present, sorted.
    pub fn list(&self) -> Result<Vec<String>, EnrichError> {
        let dir = self.snapshots();
        let listing = match fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).at(dir),
        };
        let mut out = Vec::new();
        for item in listing {
            let name = item.at(&dir)?.file_name().to_string_lossy().into_owned();
            if let Some(d) = name.strip_suffix(&format!(".{EXTENSION}")) {
                out.push(d.to_string());
            }
        }
        out.sort();
        Ok(out)
    }
}
