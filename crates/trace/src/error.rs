//! Trace errors.

use std::path::PathBuf;

use thiserror::Error;

/// What can stop a trace. Bad individual rows are not errors (they are counted in
/// [`crate::conn::LoadSummary`]); these are the failures that leave no answer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The case store failed (reading the ledger, a table, writing findings).
    #[error(transparent)]
    Store(#[from] relaytrace_store::error::StoreError),
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
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
    /// `--victim` is neither an address nor a CIDR prefix.
    #[error("not an address or CIDR prefix: {0:?}")]
    BadCidr(String),
    /// A parameter is out of its meaningful range (e.g. zero null offsets).
    #[error("invalid parameter {name}: {reason}")]
    BadParameter {
        /// The parameter.
        name: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// Attaches a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, TraceError>;
}

impl<T> IoContext<T> for Result<T, std::io::Error> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, TraceError> {
        self.map_err(|source| TraceError::Io {
            path: path.into(),
            source,
        })
    }
}
