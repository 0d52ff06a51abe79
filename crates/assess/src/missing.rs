//! Missing evidence: what would most change the judgement, and who holds it.
//!
//! Each [`Candidate`] is an observation the case does not have, with its possible
//! [`Outcome`]s and `P(outcome | hypothesis)` for each. Under the current posterior,
//! an outcome's probability is `P(o) = Σ_h P'(o | h) · P(h | E)` (with the same
//! reliability discount as any item, at the grade the answer is expected to have).
//! The candidate's value is measured two ways (value of information, as in Lindley,
//! "On a measure of the information provided by an experiment", *Ann. Math. Stat.*
//! 27, 1956):
//! - the **expected reduction in entropy** of the posterior, in bits:
//!   `H(P(·|E)) − Σ_o P(o) · H(P(·|E, o))`;
//! - the **chance of crossing the decision threshold**: `Σ_o P(o)` over the outcomes
//!   after which the verdict differs from the current one, found by re-running the
//!   whole judgement (posterior, confidence, policy) with the outcome added.
//!
//! Candidates come from trace gaps (the flow records beyond the hop where telemetry
//! ends, held by that hop's network operator) and from items that weigh little or
//! could have been planted (their better version, held by their source or by the
//! holder the item names).

use crate::engine::{discount, entropy_bits, force};
use crate::evidence::{EvidenceSet, Item, Kind, Source, Special, Stated};
use crate::grade::{Credibility, Reliability};
use crate::judge::{judge, Judgement};
use crate::trace_items::{Gap, P_FOREIGN, P_FRAMED, P_OWN};

/// Items weighing less than this are candidates for corroboration.
pub const WEAK_WEIGHT: f64 = 0.5;
/// Most candidates reported: a request list longer than this is not read.
pub const MAX_CANDIDATES: usize = 12;
/// Grade expected of an answer before it is seen: B2 (a holder's own records or
/// the full artefact are usually reliable and probably true).
pub const ANSWER_GRADE: (Reliability, u8) = (Reliability::B, 2);

/// One possible answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// What the answer would say.
    pub name: String,
    /// `P(outcome | hypothesis)`, one per hypothesis; over a candidate's outcomes
    /// they sum to 1 for every hypothesis.
    pub likelihood: Vec<f64>,
}

/// Evidence the case lacks.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Stable id (`flows-192-0-2-66`, `corroborate-<item>`).
    pub id: String,
    /// What is asked for.
    pub what: String,
    /// Who holds it.
    pub holder: String,
    /// Why it matters.
    pub why: String,
    /// Exact time windows (ns since the epoch), if any.
    pub windows: Vec<(i64, i64)>,
    /// Addresses concerned.
    pub addresses: Vec<String>,
    /// The kind of evidence the answer would be.
    pub kind: Kind,
    /// Whether the answer could itself be planted.
    pub spoofable: bool,
    /// Possible answers.
    pub outcomes: Vec<Outcome>,
}

/// What one outcome would do.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeEffect {
    /// The outcome's name.
    pub name: String,
    /// Its probability under the current posterior.
    pub probability: f64,
    /// The judgement after it.
    pub after: Judgement,
}

/// A candidate with its expected effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    /// The candidate.
    pub candidate: Candidate,
    /// Per outcome.
    pub outcomes: Vec<OutcomeEffect>,
    /// Expected reduction of the posterior's entropy, bits.
    pub entropy_reduction_bits: f64,
    /// Probability that the verdict changes.
    pub chance_of_crossing_threshold: f64,
}

fn footprint_outcomes(set: &EvidenceSet, place: &str) -> Vec<Outcome> {
    let fp: Vec<usize> = (0..set.hypotheses.len())
        .filter(|&i| set.hypotheses[i].origin.is_some())
        .collect();
    if fp.is_empty() {
        return vec![Outcome {
            name: format!(
                "{place} is identified (no hypothesis has a footprint to compare it with)"
            ),
            likelihood: vec![1.0; set.hypotheses.len()],
        }];
    }
    // P(hop in F_j | h): P_OWN for h's own footprint, P_FOREIGN for the others,
    // scaled down together if many footprints would leave nothing for "elsewhere".
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for h in 0..set.hypotheses.len() {
        let mut r: Vec<f64> = fp
            .iter()
            .map(|&j| if j == h { P_OWN } else { P_FOREIGN })
            .collect();
        let s: f64 = r.iter().sum();
        if s > 0.95 {
            r.iter_mut().for_each(|x| *x *= 0.95 / s);
        }
        let rest = 1.0 - r.iter().sum::<f64>();
        r.push(rest);
        rows.push(r);
    }
    // A framer can route through the framed actor's networks, with a foothold
    // there (P_FRAMED, shared among the footprints).
    if let Some(ff) = set
        .hypotheses
        .iter()
        .position(|h| h.special == Some(Special::FalseFlag) && h.origin.is_none())
    {
        let n = fp.len();
        let each = P_FRAMED / n as f64;
        rows[ff] = (0..n).map(|_| each).chain([1.0 - P_FRAMED]).collect();
    }
    let mut out: Vec<Outcome> = fp
        .iter()
        .enumerate()
        .map(|(k, &j)| Outcome {
            name: format!(
                "{place} lies in the footprint of {} ({})",
                set.hypotheses[j].id, set.hypotheses[j].name
            ),
            likelihood: rows.iter().map(|r| r[k]).collect(),
        })
        .collect();
    out.push(Outcome {
        name: format!(
            "{place} lies outside every listed footprint (another relay, or an actor not listed)"
        ),
        likelihood: rows.iter().map(|r| r[fp.len()]).collect(),
    });
    out
}

fn window_text(w: &[(i64, i64)]) -> String {
    if w.is_empty() {
        return "the attack's time span (no session times in the case)".into();
    }
    w.iter()
        .map(|(s, e)| {
            format!(
                "{} to {} (UTC)",
                relaytrace_model::format_iso8601_us(*s),
                relaytrace_model::format_iso8601_us(*e)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The candidates for `set` (which already holds the trace items) and the trace `gaps`.
pub fn candidates(set: &EvidenceSet, gaps: &[Gap]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    for g in gaps {
        let Some(ip) = g.hop.ip else { continue };
        let id = format!("flows-{}", ip.to_string().replace(['.', ':'], "-"));
        if out.iter().any(|c| c.id == id) {
            continue;
        }
        let holder = match (g.hop.asn, &g.hop.org) {
            (Some(a), Some(o)) => format!("the operator of AS{a} ({o})"),
            (Some(a), None) => format!("the operator of AS{a}"),
            _ => format!(
                "the network operator of {ip} (ASN not known to the case: run `relaytrace enrich`)"
            ),
        };
        let down = g
            .downstream
            .map_or(String::new(), |d| format!(" and its sessions to {d}"));
        let mut addresses = vec![ip.to_string()];
        if let Some(d) = g.downstream {
            addresses.push(d.to_string());
        }
        out.push(Candidate {
            what: format!(
                "flow records (NetFlow/IPFIX, firewall or Zeek conn logs) of {ip}{down} in {}, with every connection that reached {ip} in the same windows",
                window_text(&g.windows)
            ),
            holder,
            why: format!(
                "chain {} ends at {}: the case has no telemetry beyond it, so whether it is the actor's own host or one more relay is unknown",
                g.chain,
                g.hop.describe()
            ),
            windows: g.windows.clone(),
            addresses,
            kind: Kind::Infrastructure,
            spoofable: true,
            outcomes: footprint_outcomes(set, &format!("the hop upstream of {ip}")),
            id,
        });
    }
    for it in set.items.iter().filter(|i| i.stated != Stated::Trace) {
        if force(&it.likelihood) < 1e-9 || !(it.weight() < WEAK_WEIGHT || it.spoofable) {
            continue;
        }
        let max = it.likelihood.iter().copied().fold(0.0, f64::max);
        let q: Vec<f64> = it
            .likelihood
            .iter()
            .map(|x| match it.stated {
                Stated::Ratios | Stated::Attack => x / max * 0.8,
                _ => *x,
            })
            .map(|x| x.clamp(0.001, 0.999))
            .collect();
        let what = it.request.clone().unwrap_or_else(|| match it.kind {
            Kind::Malware => format!(
                "the full malware sample(s) behind item {} (\u{201c}{}\u{201d}), for an independent code comparison",
                it.id, it.statement
            ),
            Kind::Infrastructure => format!(
                "records that independently show item {} (\u{201c}{}\u{201d})",
                it.id, it.statement
            ),
            _ => format!(
                "an independent second source (graded B or better) for item {} (\u{201c}{}\u{201d})",
                it.id, it.statement
            ),
        });
        let mut why = format!(
            "item {} is graded {}{} (weight {:.2})",
            it.id,
            it.reliability,
            it.credibility,
            it.weight()
        );
        if it.spoofable {
            why.push_str(" and could have been planted or borrowed");
        }
        out.push(Candidate {
            id: format!("corroborate-{}", it.id),
            what,
            holder: it
                .holder
                .clone()
                .unwrap_or_else(|| format!("{} (the source of item {})", it.source.name, it.id)),
            why,
            windows: Vec::new(),
            addresses: Vec::new(),
            kind: it.kind,
            spoofable: it.spoofable,
            outcomes: vec![
                Outcome {
                    name: "confirmed".into(),
                    likelihood: q.clone(),
                },
                Outcome {
                    name: "not confirmed".into(),
                    likelihood: q.iter().map(|x| 1.0 - x).collect(),
                },
            ],
        });
    }
    out
}

/// The item an outcome of `c` would add.
pub fn outcome_item(c: &Candidate, o: &Outcome) -> Item {
    Item {
        id: format!("{}-answer", c.id),
        kind: c.kind,
        statement: o.name.clone(),
        source: Source {
            name: c.holder.clone(),
            url: "case:missing-evidence".into(),
            date: None,
        },
        reliability: ANSWER_GRADE.0,
        credibility: Credibility::new(ANSWER_GRADE.1).expect("2 is a credibility"),
        group: format!("{}-answer", c.id),
        spoofable: c.spoofable,
        likelihood: o.likelihood.clone(),
        stated: Stated::Probabilities,
        factor: 1.0,
        holder: None,
        request: None,
        attack: None,
        line: 0,
    }
}

/// The expected effect of `c` on the judgement `now` of `set`.
pub fn evaluate(set: &EvidenceSet, now: &Judgement, c: &Candidate) -> Effect {
    let h0 = entropy_bits(&now.posterior);
    let mut outcomes = Vec::new();
    let mut expected_h = 0.0;
    let mut cross = 0.0;
    for o in &c.outcomes {
        let item = outcome_item(c, o);
        let d = discount(&item.likelihood, item.weight());
        let p: f64 = d.iter().zip(&now.posterior).map(|(a, b)| a * b).sum();
        let mut with = set.clone();
        with.items.push(item);
        let after = judge(&with);
        expected_h += p * entropy_bits(&after.posterior);
        if after.verdict != now.verdict {
            cross += p;
        }
        outcomes.push(OutcomeEffect {
            name: o.name.clone(),
            probability: p,
            after,
        });
    }
    Effect {
        candidate: c.clone(),
        outcomes,
        entropy_reduction_bits: (h0 - expected_h).max(0.0),
        chance_of_crossing_threshold: cross,
    }
}

/// Every candidate evaluated, best first (chance of crossing the decision
/// threshold, then entropy reduction, then id: what can change the decision comes
/// before what only sharpens it), at most [`MAX_CANDIDATES`].
pub fn rank(set: &EvidenceSet, now: &Judgement, cands: &[Candidate]) -> Vec<Effect> {
    let mut out: Vec<Effect> = cands.iter().map(|c| evaluate(set, now, c)).collect();
    out.sort_by(|a, b| {
        b.entropy_reduction_bits
            .total_cmp(&a.entropy_reduction_bits)
            .then(
                b.chance_of_crossing_threshold
                    .total_cmp(&a.chance_of_crossing_threshold),
            )
            .then(a.candidate.id.cmp(&b.candidate.id))
    });
    out.truncate(MAX_CANDIDATES);
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::evidence::parse;
    use crate::trace_items::TraceHop;

    fn set() -> EvidenceSet {
        parse(
            "format = \"relaytrace-evidence/1\"\n\
[[hypothesis]]\nid = \"kp\"\nname = \"KP\"\norigin = { countries = [\"KP\"] }\n\
[[hypothesis]]\nid = \"insider\"\nname = \"Insider\"\n\
[[item]]\nid = \"rumour\"\nkind = \"outside-source\"\nstatement = \"a firm blames an insider\"\n\
source = { name = \"Firm\", url = \"https://example.org\" }\nreliability = \"D\"\ncredibility = 4\n\
likelihoods = { insider = 0.6, otherwise = 0.2 }\n",
            Path::new("t.toml"),
        )
        .unwrap()
    }

    fn gap() -> Gap {
        Gap {
            chain: 1,
            hop: TraceHop {
                ip: Some("192.0.2.66".parse().unwrap()),
                role: "origin".into(),
                asn: Some(64496),
                org: Some("Example Net".into()),
                country: None,
                snapshot: None,
                note: None,
            },
            downstream: Some("198.51.100.23".parse().unwrap()),
            windows: vec![(1_700_000_000_000_000_000, 1_700_000_600_000_000_000)],
            conn_ids: vec!["e:1".into()],
        }
    }

    #[test]
    fn outcomes_are_distributions_under_every_hypothesis() {
        let s = set();
        for c in candidates(&s, &[gap()]) {
            for h in 0..s.hypotheses.len() {
                let total: f64 = c.outcomes.iter().map(|o| o.likelihood[h]).sum();
                assert!((total - 1.0).abs() < 1e-9, "{} under {h}: {total}", c.id);
            }
        }
    }

    #[test]
    fn gap_names_holder_windows_and_addresses() {
        let s = set();
        let c = candidates(&s, &[gap()]);
        let f = c.iter().find(|c| c.id == "flows-192-0-2-66").unwrap();
        assert_eq!(f.holder, "the operator of AS64496 (Example Net)");
        assert!(f.what.contains("2023-11-14T22:13:20"), "{}", f.what);
        assert_eq!(f.addresses, ["192.0.2.66", "198.51.100.23"]);
        assert!(c.iter().any(|c| c.id == "corroborate-rumour"));
    }

    #[test]
    fn expected_effects_are_consistent() {
        let s = set();
        let now = judge(&s);
        let ranked = rank(&s, &now, &candidates(&s, &[gap()]));
        assert_eq!(ranked.len(), 2);
        for e in &ranked {
            let total: f64 = e.outcomes.iter().map(|o| o.probability).sum();
            assert!((total - 1.0).abs() < 1e-9, "{}: {total}", e.candidate.id);
            assert!(e.entropy_reduction_bits >= 0.0);
            assert!((0.0..=1.0 + 1e-12).contains(&e.chance_of_crossing_threshold));
        }
        // The flow records can tell KP from the rest through its footprint; the
        // rumour's corroboration only moves the insider hypothesis a little.
        assert_eq!(ranked[0].candidate.id, "flows-192-0-2-66");
        assert!(ranked[0].entropy_reduction_bits > ranked[1].entropy_reduction_bits);
    }
}
