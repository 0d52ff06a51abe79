//! Assess: who is behind an attack, how likely, how confident, and what proof is
//! still missing (design section 5, issue 5).
//!
//! Overview:
//! - [`evidence`]: the case's `evidence.toml` (hypotheses, items, policy), parsed
//!   and checked into an [`EvidenceSet`]; [`footprint`] the network footprint of a
//!   hypothesis; [`grade`] the Admiralty grades and their weights.
//! - [`trace_items`]: the newest trace finding of the case turned into items (hops,
//!   links, the origin hop) and gaps (where telemetry ends).
//! - [`engine`]: discounted likelihoods, one item per dependency group, posterior.
//! - [`words`]: ICD 203 words; [`confidence`]: the separate confidence level.
//! - [`judge`]: posterior + confidence + the policy = a [`Judgement`].
//! - [`missing`]: candidate evidence, their outcomes and expected effect.
//! - [`report`]: the finding (JSON) and its text, Markdown and `--explain` views;
//!   [`requests`]: one Markdown request per holder; [`record`]: findings and ledger.

pub mod confidence;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod footprint;
pub mod grade;
pub mod judge;
pub mod missing;
pub mod trace_items;
pub mod words;

pub use error::AssessError;
pub use evidence::EvidenceSet;
