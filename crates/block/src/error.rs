//! Errors of the block crate, one enum so the CLI can turn each into one line.

use std::path::PathBuf;

/// What can go wrong while planning or rendering blocks.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// A prefix or address that does not parse.
    #[error("not an address or prefix: {0:?}")]
    BadPrefix(String),
    /// The policy file is not valid TOML for the policy schema.
    #[error("policy {path}: {reason}")]
    BadPolicy {
        /// The file (or `<default>` for the embedded policy).
        path: String,
        /// What the TOML parser or the checks said, with line and column.
        reason: String,
    },
    /// A finding file that does not have the stable shape.
    #[error("finding {path}: {reason}")]
    BadFinding {
        /// The finding file.
        path: PathBuf,
        /// Which field is wrong.
        reason: String,
    },
    /// The case has no trace finding to plan from.
    #[error("the case has no trace finding (run `relaytrace trace` first)")]
    NoTrace,
    /// The newest assessment weighed another trace finding than the newest one (or
    /// none): a plan would pair chains with a judgement made without them.
    #[error("the newest assessment ({assess}) weighed {weighed}, but the newest trace finding is {trace}: run `relaytrace assess` again so the plan's chains and its judgement agree")]
    StaleAssessment {
        /// The assessment finding's path.
        assess: String,
        /// What it weighed (`trace finding <path>` or `no trace finding`).
        weighed: String,
        /// The newest trace finding's path.
        trace: String,
    },
    /// The case's enrichment of a hop is not the one the newest trace reported (the
    /// case was enriched again since, with another snapshot): a plan would target the
    /// AS and prefix the new snapshot gives, not those the trace — and the assessment
    /// weighing it — named.
    #[error("the newest trace finding ({trace}) reported {ip} from {traced}, but the case's enrichment now answers from {now}: run `relaytrace trace` (and `relaytrace assess`) again so the plan targets the networks the findings name")]
    StaleTrace {
        /// The trace finding's path.
        trace: String,
        /// The hop's address.
        ip: String,
        /// `snapshot <digest>`, as the trace reported the hop.
        traced: String,
        /// The same for the case's enrichment now.
        now: String,
    },
    /// The case has no block plan to render.
    #[error("the case has no block plan (run `relaytrace block plan` first)")]
    NoPlan,
    /// A renderer cannot express the plan (e.g. a STIX pattern for an unknown kind).
    #[error("cannot render: {0}")]
    Render(String),
    /// The case store failed (ledger, tables).
    #[error(transparent)]
    Store(#[from] relaytrace_store::StoreError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Attaches a path to I/O errors.
pub(crate) trait IoContext<T> {
    /// The error with `path`.
    fn at(self, path: &std::path::Path) -> Result<T, BlockError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, BlockError> {
        self.map_err(|source| BlockError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
