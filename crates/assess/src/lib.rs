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
//! - [`judge()`]: posterior + confidence + the policy = a [`Judgement`].
//! - [`missing`]: candidate evidence, their outcomes and expected effect.
//! - [`report`]: the finding (JSON) and its text, Markdown and `--explain` views;
//!   [`requests`]: one Markdown request per holder; [`record()`]: findings and ledger.

pub mod attack;
pub mod confidence;
pub mod edit;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod footprint;
pub mod grade;
pub mod judge;
pub mod missing;
pub mod record;
pub mod report;
pub mod requests;
pub mod trace_items;
pub mod words;

use relaytrace_store::{digest::sha256_hex, Case};

pub use error::AssessError;
pub use evidence::EvidenceSet;
pub use judge::{judge, Judgement, Verdict};
pub use record::{log_evidence, record, Recorded};
pub use report::Assessment;

/// The evidence file of a case, relative to the case directory.
pub const EVIDENCE_FILE: &str = "evidence.toml";

/// Options of [`assess_case`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Only items published on or before this date (`YYYY-MM-DD`): the case as it
    /// stood then.
    pub as_of: Option<String>,
    /// ATT&CK data directory (from `.ci/fetch-attack.sh`), needed when items list
    /// ATT&CK ids (`attack = {...}`).
    pub attack_data: Option<std::path::PathBuf>,
}

/// Assesses a case: reads `evidence.toml`, adds the items of the newest trace
/// finding, judges, and ranks the missing evidence. Writes nothing; see
/// [`record()`] and [`log_evidence`].
pub fn assess_case(case: &Case, opts: &Options) -> Result<Assessment, AssessError> {
    let path = case.root().join(EVIDENCE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AssessError::NoEvidence(path));
        }
        Err(source) => return Err(AssessError::Io { path, source }),
    };
    let mut set = evidence::parse(&text, &path)?;
    if let Some(d) = &opts.as_of {
        if !evidence::is_date(d) {
            return Err(AssessError::BadParameter {
                name: "as-of",
                reason: format!("{d:?} is not a date (YYYY-MM-DD, one that exists)"),
            });
        }
        set.as_of(d);
    }
    if set
        .items
        .iter()
        .any(|i| i.stated == evidence::Stated::Attack)
    {
        let dir = opts.attack_data.as_ref().ok_or(AssessError::BadParameter {
            name: "attack-data",
            reason: "evidence items list ATT&CK ids: pass --attack-data DIR or set RELAYTRACE_ATTACK_DATA (bash .ci/fetch-attack.sh fetches ATT&CK v18.1)".into(),
        })?;
        attack::resolve(&attack::load(dir)?, &mut set)?;
    }
    let trace = trace_items::load(case)?;
    let gaps = match &trace {
        Some(t) => {
            let extra = trace_items::items(t, &set.hypotheses);
            set.items.extend(extra);
            trace_items::gaps(case, t)?
        }
        None => Vec::new(),
    };
    let judgement = judge(&set);
    let cands = missing::candidates(&set, &gaps);
    let missing = missing::rank(&set, &judgement, &cands);
    Ok(Assessment {
        set,
        judgement,
        missing,
        evidence_sha256: sha256_hex(text.as_bytes()),
        trace,
        as_of: opts.as_of.clone(),
    })
}
