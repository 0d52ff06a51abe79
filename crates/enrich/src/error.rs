//! Errors of the enrich crate.
//!
//! Every variant names the file involved, so the CLI can say which source or snapshot
//! is at fault. Malformed *rows* are not errors: they are [`crate::RowProblem`]s,
//! counted and reported while the rest of the file is used.

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong while loading sources, building, reading or verifying snapshots.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EnrichError {
    /// The case store failed (reading tables or the ledger, the lock, the ledger
    /// entry) while enriching a case.
    #[error(transparent)]
    Store(#[from] relaytrace_store::StoreError),
    /// An I/O operation on `path` failed.
    #[error("{path}: {source}")]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A MaxMind DB file could not be opened or decoded.
    #[error("{path}: MaxMind DB: {source}")]
    Mmdb {
        /// The MMDB file.
        path: PathBuf,
        /// Underlying error from the `maxminddb` crate.
        #[source]
        source: maxminddb::MaxMindDbError,
    },
    /// An MRT file is structurally broken at `offset` (not just an unknown record type,
    /// which is skipped and counted).
    #[error("{path}: MRT record at byte {offset}: {reason}")]
    Mrt {
        /// The MRT file.
        path: PathBuf,
        /// Byte offset of the record header in the (decompressed) stream.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// An MRT file without a single RIB entry (e.g. a BGP4MP updates file): a snapshot
    /// built from it would answer nothing, so none is built.
    #[error("{path}: no routing table entry in its {records} MRT record(s) (only TABLE_DUMP and TABLE_DUMP_V2 RIB records are read; BGP4MP update records and other types are skipped{}): give a RIB dump, e.g. a RIPE RIS `bview` or a RouteViews `rib` file", unreadable.as_ref().map_or(String::new(), |(n, first)| format!("; {n} RIB record(s) could not be read, the first: {first}")))]
    NoRib {
        /// The MRT file.
        path: PathBuf,
        /// Records it held.
        records: u64,
        /// RIB records that could not be read: how many, and the first one's problem.
        unreadable: Option<(usize, String)>,
    },
    /// A snapshot file is not one this version can read, or is damaged.
    #[error("{path}: not a usable snapshot: {reason}")]
    BadSnapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A snapshot's content does not hash to the digest it is named by.
    #[error("{path}: altered snapshot: content hashes to {actual}, expected {expected}")]
    DigestMismatch {
        /// The snapshot file.
        path: PathBuf,
        /// Digest recorded in the name or the `current` pointer.
        expected: String,
        /// Digest of the bytes on disk.
        actual: String,
    },
    /// A downloaded package does not match the registry's integrity hash: refused.
    #[error("{path}: integrity mismatch: registry says {expected}, file is {actual}; refusing to use it")]
    IntegrityMismatch {
        /// The package tarball.
        path: PathBuf,
        /// The registry's `dist.integrity` (`sha512-<base64>`).
        expected: String,
        /// The same form computed over the file.
        actual: String,
    },
    /// An integrity string is not of the `sha512-<base64>` form.
    #[error("unsupported integrity string {0:?} (expected sha512-<base64>)")]
    BadIntegrity(String),
    /// A line of the case's enrichment tables without a readable address.
    #[error("{path}: line {line}: not an enrichment table line (no readable `addr`)")]
    BadTableLine {
        /// The table.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
    },
    /// A package tarball is malformed or lacks a file we need.
    #[error("{path}: {reason}")]
    BadPackage {
        /// The tarball.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A source yielded no usable row at all: almost certainly the wrong file.
    #[error("{path}: no usable rows ({rejected} rejected); is this the right kind of file?")]
    EmptySource {
        /// The source file.
        path: PathBuf,
        /// Rows rejected.
        rejected: u64,
    },
}

/// Attaches a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, EnrichError>;
}

impl<T> IoContext<T> for Result<T, std::io::Error> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, EnrichError> {
        self.map_err(|source| EnrichError::Io {
            path: path.into(),
            source,
        })
    }
}
