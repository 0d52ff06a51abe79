//! Store errors.

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong with a case directory. Each variant names the path involved so
/// the CLI can say which file is at fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The directory is not a case (no `case.json`).
    #[error("{0}: not a relaytrace case (no case.json); create one with `relaytrace case init`")]
    NotACase(PathBuf),
    /// `case init` on a directory that already holds something.
    #[error("{0}: already exists and is not empty")]
    AlreadyExists(PathBuf),
    /// A ledger line cannot be parsed.
    #[error("{path}: line {line}: {reason}")]
    BadLedger {
        /// The ledger file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A saved NetFlow template cache (`tables/netflow-templates/*.json`) cannot be
    /// used.
    #[error("{path}: saved NetFlow templates: {reason}")]
    BadTemplates {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A line of an enrichment table is not the JSON object `enrich` writes.
    #[error("{path}: line {line}: {source}")]
    BadEnrichLine {
        /// The enrichment table.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Underlying parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A Parquet table could not be written or read.
    #[error("{path}: parquet: {source}")]
    Parquet {
        /// The table file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A reader stopped on an input.
    #[error("{path}: {source}")]
    Ingest {
        /// The input file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: relaytrace_ingest::IngestError,
    },
}

/// Attaches a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for Result<T, std::io::Error> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Io {
            path: path.into(),
            source,
        })
    }
}
