//! Trace errors.

use thiserror::Error;

/// What can stop a trace. Bad individual rows are not errors (they are counted in
/// [`crate::conn::LoadSummary`]); these are the failures that leave no answer.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The case store failed (reading the ledger, a table, writing findings).
    #[error(transparent)]
    Store(#[from] relaytrace_store::error::StoreError),
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
    /// More connections than flow mode's grouping can index (2³¹); no memory of
    /// today's machines holds that many, but the limit is said rather than wrapped.
    #[error("flow mode takes at most 2^31 connections at once, got {0}: trace a shorter window (--since/--until)")]
    TooManyConnections(usize),
}
