//! The judgement: posterior, leading hypothesis, confidence, and the verdict the
//! policy draws from them.

use crate::confidence::{self, Basis};
use crate::engine::{counted, leading, posterior};
use crate::evidence::EvidenceSet;
use crate::words;

/// The verdict of an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The leading hypothesis reaches the policy's word and confidence.
    Assessed,
    /// It does not: more proof is needed.
    InsufficientEvidence,
}

impl Verdict {
    /// The stable name (`assessed`, `insufficient_evidence`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Assessed => "assessed",
            Verdict::InsufficientEvidence => "insufficient_evidence",
        }
    }
}

/// Posterior, leader, confidence and verdict of one evidence set.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    /// Posterior per hypothesis (unclamped; [`words::clamp`] before stating it).
    pub posterior: Vec<f64>,
    /// Index of the leading hypothesis.
    pub leading: usize,
    /// Indices of the items that count (one per dependency group).
    pub counted: Vec<usize>,
    /// What the confidence rests on.
    pub basis: Basis,
    /// The verdict.
    pub verdict: Verdict,
}

/// Judges `set`.
pub fn judge(set: &EvidenceSet) -> Judgement {
    let counted = counted(set, &|_| true);
    let posterior = posterior(set, &counted);
    let lead = leading(&posterior);
    let basis = confidence::assess(set, lead);
    let verdict = verdict(set, posterior[lead], basis.level);
    Judgement {
        posterior,
        leading: lead,
        counted,
        basis,
        verdict,
    }
}

/// The policy: the leader's ICD 203 band must reach `min_words` and the confidence
/// `min_confidence`.
pub fn verdict(set: &EvidenceSet, p_leading: f64, level: confidence::Level) -> Verdict {
    let need = words::BANDS
        .iter()
        .position(|b| b.0 == set.policy.min_words)
        .unwrap_or(4);
    if words::band(p_leading) >= need && level >= set.policy.min_confidence {
        Verdict::Assessed
    } else {
        Verdict::InsufficientEvidence
    }
}
