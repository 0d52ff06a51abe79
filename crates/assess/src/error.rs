//! Assess errors: each names the file and, where there is one, the line and field.

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong while reading evidence or assessing a case.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AssessError {
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The evidence file is not valid TOML or does not have the expected shape.
    #[error("{path}: {source}")]
    Toml {
        /// The evidence file.
        path: PathBuf,
        /// The parser's error (it names line and column).
        #[source]
        source: toml::de::Error,
    },
    /// The evidence file parsed but a value breaks a rule of the format.
    #[error("{path}: line {line}: {at}: {reason}")]
    Invalid {
        /// The evidence file.
        path: PathBuf,
        /// 1-based line of the offending entry (0 when not known).
        line: usize,
        /// Which entry and field (`item "x" field "reliability"`).
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// The case has no `evidence.toml`.
    #[error("{0}: no evidence file; create one with `relaytrace evidence init --case DIR` (format in README.md, \"Assess\")")]
    NoEvidence(PathBuf),
    /// A trace finding named in the ledger cannot be used.
    #[error("{path}: trace finding: {reason}")]
    BadTrace {
        /// The finding file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A parameter given by the caller is out of range.
    #[error("{name}: {reason}")]
    BadParameter {
        /// Parameter name.
        name: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The case store failed.
    #[error(transparent)]
    Store(#[from] relaytrace_store::StoreError),
}

/// Attaches a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, AssessError>;
}

impl<T> IoContext<T> for Result<T, std::io::Error> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, AssessError> {
        self.map_err(|source| AssessError::Io {
            path: path.into(),
            source,
        })
    }
}
