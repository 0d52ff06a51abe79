//! Errors that stop a whole input.

use thiserror::Error;

/// Why a reader stopped before the end of its input. Bad *records* are not errors
/// (they are [`relaytrace_model::Rejection`]s); these are conditions under which
/// nothing more can be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IngestError {
    /// Reading the input or writing to the sink failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The content matches no supported format.
    #[error("unrecognised format: {0}")]
    UnknownFormat(String),
    /// The file header itself is unusable (e.g. a pcap with an unsupported link type).
    #[error("unusable header: {0}")]
    BadHeader(String),
}
