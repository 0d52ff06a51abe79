//! The assessment finding (`findings/assess-<sha16>.json`) and its views: text,
//! Markdown and the `--explain` detail (ACH matrix, per-item weight, sensitivity).
//!
//! Stable names (read by `block` and partners): `verdict`, `leading`, `confidence`,
//! `hypotheses[{id, name, probability, words, origin?}]`,
//! `missing_evidence[{what, holder, expected_effect}]`. Probabilities are rounded to
//! four decimals and clamped to [1 %, 99 %]; everything is in a fixed order, so the
//! same case and evidence give the same bytes. The probability and the confidence
//! are never stated in the same sentence.

use serde_json::{json, Map, Value};

use crate::engine::{discounted, force};
use crate::evidence::{EvidenceSet, Stated};
use crate::judge::Judgement;
use crate::missing::Effect;
use crate::trace_items::TraceFinding;
use crate::words;

/// The format of the finding.
pub const FORMAT: &str = "relaytrace-assessment/1";

/// Everything an assessment run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// The evidence (file items, then trace items).
    pub set: EvidenceSet,
    /// The judgement.
    pub judgement: Judgement,
    /// Missing evidence, best first.
    pub missing: Vec<Effect>,
    /// `evidence.toml` digest.
    pub evidence_sha256: String,
    /// The trace finding used, if any.
    pub trace: Option<TraceFinding>,
    /// The `--as-of` date, if the items were limited to those published by then.
    pub as_of: Option<String>,
}

fn r4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// A percentage for people: whole numbers, except where the whole number would sit
/// on an ICD 203 band edge and so contradict the word (0.5504 is "likely", and
/// printed "55.0 %" rather than "55 %").
fn pct(p: f64) -> String {
    let x = words::clamp(p) * 100.0;
    if [5.0, 20.0, 45.0, 55.0, 80.0, 95.0].contains(&x.round()) {
        format!("{x:.1} %")
    } else {
        format!("{x:.0} %")
    }
}

impl Assessment {
    /// Stated probability of hypothesis `i` (clamped, rounded).
    pub fn probability(&self, i: usize) -> f64 {
        r4(words::clamp(self.judgement.posterior[i]))
    }

    /// The finding as JSON.
    pub fn to_json(&self) -> Value {
        let set = &self.set;
        let j = &self.judgement;
        let hyps: Vec<Value> = set
            .hypotheses
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mut m = Map::new();
                m.insert("id".into(), json!(h.id));
                m.insert("name".into(), json!(h.name));
                m.insert("prior".into(), json!(r4(h.prior)));
                m.insert("probability".into(), json!(self.probability(i)));
                m.insert("words".into(), json!(words::word(j.posterior[i])));
                if let Some(o) = &h.origin {
                    m.insert(
                        "origin".into(),
                        serde_json::to_value(o).unwrap_or(Value::Null),
                    );
                }
                Value::Object(m)
            })
            .collect();
        let items: Vec<Value> = set
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                let d = discounted(it);
                json!({
                    "id": it.id,
                    "kind": it.kind.as_str(),
                    "statement": it.statement,
                    "source": {"name": it.source.name, "url": it.source.url, "date": it.source.date},
                    "reliability": it.reliability.letter(),
                    "credibility": it.credibility.get(),
                    "weight": r4(it.weight()),
                    "group": it.group,
                    "counted": j.counted.contains(&i),
                    "spoofable": it.spoofable,
                    "from_trace": it.stated == Stated::Trace,
                    "ratio_to_leading": set.hypotheses.iter().enumerate()
                        .map(|(h, x)| (x.id.clone(), json!(r4(d[j.leading] / d[h]))))
                        .collect::<Map<String, Value>>(),
                })
            })
            .collect();
        let missing: Vec<Value> = self
            .missing
            .iter()
            .map(|e| {
                let c = &e.candidate;
                json!({
                    "id": c.id,
                    "what": c.what,
                    "holder": c.holder,
                    "why": c.why,
                    "addresses": c.addresses,
                    "windows": c.windows.iter().map(|(s, e)| json!({
                        "start": relaytrace_model::format_iso8601_us(*s),
                        "end": relaytrace_model::format_iso8601_us(*e)})).collect::<Vec<_>>(),
                    "expected_effect": {
                        "entropy_reduction_bits": r4(e.entropy_reduction_bits),
                        "chance_of_crossing_threshold": r4(e.chance_of_crossing_threshold),
                        "summary": effect_summary(self, e),
                    },
                    "outcomes": e.outcomes.iter().map(|o| json!({
                        "outcome": o.name,
                        "probability": r4(o.probability),
                        "leading_after": set.hypotheses[o.after.leading].id,
                        "probability_after": r4(words::clamp(o.after.posterior[o.after.leading])),
                        "words_after": words::word(o.after.posterior[o.after.leading]),
                        "confidence_after": o.after.basis.level.as_str(),
                        "verdict_after": o.after.verdict.as_str(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let b = &j.basis;
        json!({
            "format": FORMAT,
            "verdict": j.verdict.as_str(),
            "leading": set.hypotheses[j.leading].id,
            "confidence": b.level.as_str(),
            "hypotheses": hyps,
            "confidence_basis": {
                "independent_sources": b.independent_sources,
                "kinds": b.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                "leader_changes_without_group": b.fragile_to.iter()
                    .map(|(g, l)| json!({"group": g, "leading_after": set.hypotheses[*l].id}))
                    .collect::<Vec<_>>(),
                "spoofable_items": b.spoofable_items,
                "leader_if_spoofable_planted": b.planted_leader.map(|l| set.hypotheses[l].id.clone()),
            },
            "policy": {
                "min_words": set.policy.min_words,
                "min_confidence": set.policy.min_confidence.as_str(),
            },
            "items": items,
            "missing_evidence": missing,
            "inputs": {
                "evidence": {"path": "evidence.toml", "sha256": self.evidence_sha256},
                "trace": self.trace.as_ref().map(|t| json!({"path": t.path, "sha256": t.sha256})),
                "as_of": self.as_of,
            },
            "method": {
                "discount": "P'(E|H) = w*P(E|H) + (1-w)*mean_H P(E|H), w = Admiralty reliability weight x credibility weight (A/1 = 1, B/2 = 0.85, C/3 = 0.65, D/4 = 0.4, E/5 = 0.15, F/6 = 0)",
                "groups": "one item per dependency group: the one with the largest ln(max/min) of its discounted likelihoods",
                "words": "ICD 203, clamped to [0.01, 0.99]",
            },
        })
    }

    /// The one-paragraph reading of the verdict (probability sentence, then the
    /// confidence sentence, never the two in one).
    pub fn headline(&self) -> Vec<String> {
        let j = &self.judgement;
        let h = &self.set.hypotheses[j.leading];
        let p = j.posterior[j.leading];
        let tied = tied_with_leader(self);
        let mut out = vec![if tied.len() > 1 {
            // The leader of a tie is only the first in the file: saying "it is
            // unlikely that: <first>" would single it out for nothing.
            format!(
                "No hypothesis leads: {} are tied at {} each.",
                tied.iter()
                    .map(|&i| self.set.hypotheses[i].id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                pct(p)
            )
        } else {
            format!(
                "It is {} ({}) that: {} [{}].",
                words::word(p),
                pct(p),
                h.name,
                h.id
            )
        }];
        out.push(format!(
            "Confidence in this judgement is {}: {}.",
            j.basis.level.as_str(),
            basis_text(self)
        ));
        out.push(format!(
            "Verdict: {}. The policy asks for \"{}\" or above for the leading hypothesis. It also asks for {} confidence or above.",
            j.verdict.as_str().replace('_', " "),
            self.set.policy.min_words,
            self.set.policy.min_confidence.as_str()
        ));
        if let (crate::judge::Verdict::InsufficientEvidence, Some(e)) =
            (j.verdict, self.missing.first())
        {
            out.push(format!(
                "Most useful next: request from {}: {}.",
                e.candidate.holder, e.candidate.what
            ));
        }
        out
    }

    /// Plain-text view.
    pub fn text(&self, explain: bool) -> String {
        let mut s = String::new();
        let j = &self.judgement;
        if let Some(d) = &self.as_of {
            s.push_str(&format!("Assessment with the evidence published by {d}\n"));
        }
        for line in self.headline() {
            s.push_str(&line);
            s.push('\n');
        }
        s.push_str("\nHypotheses:\n");
        // Columns as wide as their longest entry ("99.9 %" is six characters).
        let id_width = self
            .set
            .hypotheses
            .iter()
            .map(|h| h.id.len())
            .max()
            .unwrap_or(0);
        for i in self.order() {
            let h = &self.set.hypotheses[i];
            s.push_str(&format!(
                "  {:<id_width$} {:>6}  {:<20} {}\n",
                h.id,
                pct(j.posterior[i]),
                words::word(j.posterior[i]),
                h.name
            ));
        }
        s.push_str(&format!(
            "\nEvidence: {} item(s), {} counted (one per dependency group).\n",
            self.set.items.len(),
            j.counted.len()
        ));
        if !self.missing.is_empty() {
            s.push_str("\nMissing evidence (most useful first):\n");
            for (n, e) in self.missing.iter().enumerate() {
                s.push_str(&format!(
                    "  {}. {}\n     holder: {}\n     why: {}\n     expected effect: {}\n",
                    n + 1,
                    e.candidate.what,
                    e.candidate.holder,
                    e.candidate.why,
                    effect_summary(self, e)
                ));
            }
        }
        if explain {
            s.push_str(&self.explain_text());
        }
        s
    }

    /// Hypothesis indices by stated probability, highest first (ties: file order).
    pub fn order(&self) -> Vec<usize> {
        let mut o: Vec<usize> = (0..self.set.hypotheses.len()).collect();
        o.sort_by(|a, b| {
            self.judgement.posterior[*b]
                .total_cmp(&self.judgement.posterior[*a])
                .then(a.cmp(b))
        });
        o
    }

    fn explain_text(&self) -> String {
        let set = &self.set;
        let j = &self.judgement;
        let mut s = String::from("\nItems (weight = reliability x credibility x factor; ratio = P'(E|leading)/P'(E|H)):\n");
        for (i, it) in set.items.iter().enumerate() {
            s.push_str(&format!(
                "  {} [{}] {}{} w={:.3} group={}{}{}\n     {}\n     source: {} <{}>{}\n",
                it.id,
                it.kind.as_str(),
                it.reliability,
                it.credibility,
                it.weight(),
                it.group,
                if j.counted.contains(&i) {
                    " counted"
                } else {
                    " (not counted: group represented by a stronger item)"
                },
                if it.spoofable { " spoofable" } else { "" },
                it.statement,
                it.source.name,
                it.source.url,
                it.source
                    .date
                    .as_ref()
                    .map_or(String::new(), |d| format!(" {d}")),
            ));
        }
        s.push_str("\nACH matrix (Heuer): ++ strongly consistent, + consistent, 0 neutral, - inconsistent, -- strongly inconsistent; counted items only\n");
        s.push_str(&ach_matrix(self, "  ", " "));
        s.push_str("\nSensitivity:\n");
        let b = &j.basis;
        if let Some(narrow) = narrow_lead(self) {
            s.push_str(&format!("  {narrow}\n"));
        } else if b.fragile_to.is_empty() {
            s.push_str("  the leader stays ahead by at least 1.5 to 1 when any one dependency group is removed\n");
        } else {
            for (g, l) in &b.fragile_to {
                s.push_str(&format!(
                    "  without group {g}, {} would lead or come within 1.5 to 1 of the leader\n",
                    set.hypotheses[*l].id
                ));
            }
        }
        match b.planted_leader {
            Some(l) => s.push_str(&format!(
                "  if every spoofable item ({}) was planted, {} would lead or come within 1.5 to 1\n",
                b.spoofable_items, set.hypotheses[l].id
            )),
            None if narrow_lead(self).is_some() => {}
            None => s.push_str(&format!(
                "  if every spoofable item ({}) was planted, the leader would stay ahead by at least 1.5 to 1\n",
                b.spoofable_items
            )),
        }
        for e in &self.missing {
            s.push_str(&format!("\nOutcomes of: {}\n", e.candidate.id));
            for o in &e.outcomes {
                let l = o.after.leading;
                s.push_str(&format!(
                    "  {:>5}  {} -> {} {} ({}), confidence {}, {}\n",
                    format!("{:.0} %", o.probability * 100.0),
                    o.name,
                    set.hypotheses[l].id,
                    words::word(o.after.posterior[l]),
                    pct(o.after.posterior[l]),
                    o.after.basis.level.as_str(),
                    o.after.verdict.as_str()
                ));
            }
        }
        s.push_str(&format!(
            "\nMethod: {}\n",
            "P'(E|H) = w*P(E|H) + (1-w)*mean P(E|H) (Bovens & Hartmann 2003); one item per dependency group; posterior by Bayes' rule; ICD 203 words; confidence from independent groups, kinds and sensitivity."
        ));
        s
    }

    /// Markdown view (report for people; same content as [`Assessment::text`]).
    pub fn markdown(&self, explain: bool) -> String {
        let j = &self.judgement;
        let mut s = String::from("# Assessment\n\n");
        if let Some(d) = &self.as_of {
            s.push_str(&format!("_Evidence published by {d}._\n\n"));
        }
        for line in self.headline() {
            s.push_str(&line);
            s.push_str("\n\n");
        }
        s.push_str(
            "## Hypotheses\n\n| id | probability | words | hypothesis |\n|---|---|---|---|\n",
        );
        for i in self.order() {
            let h = &self.set.hypotheses[i];
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                h.id,
                pct(j.posterior[i]),
                words::word(j.posterior[i]),
                h.name
            ));
        }
        s.push_str("\n## Evidence\n\n| id | kind | grade | weight | counted | spoofable | statement | source |\n|---|---|---|---|---|---|---|---|\n");
        for (i, it) in self.set.items.iter().enumerate() {
            s.push_str(&format!(
                "| {} | {} | {}{} | {:.3} | {} | {} | {} | [{}]({}) |\n",
                it.id,
                it.kind.as_str(),
                it.reliability,
                it.credibility,
                it.weight(),
                if j.counted.contains(&i) { "yes" } else { "no" },
                if it.spoofable { "yes" } else { "no" },
                it.statement.replace('|', "\\|"),
                it.source.name.replace('|', "\\|"),
                it.source.url
            ));
        }
        if !self.missing.is_empty() {
            s.push_str("\n## Missing evidence\n\n");
            for (n, e) in self.missing.iter().enumerate() {
                s.push_str(&format!(
                    "{}. **{}** — holder: {}. Why: {}. Expected effect: {}.\n",
                    n + 1,
                    e.candidate.what,
                    e.candidate.holder,
                    e.candidate.why,
                    effect_summary(self, e)
                ));
            }
        }
        if explain {
            s.push_str("\n## ACH matrix\n\n");
            s.push_str(&ach_matrix(self, "| ", " | "));
        }
        s
    }
}

/// The hypotheses whose posterior equals the leader's (the leader first).
fn tied_with_leader(a: &Assessment) -> Vec<usize> {
    let j = &a.judgement;
    let top = j.posterior[j.leading];
    let mut tied = vec![j.leading];
    tied.extend(
        (0..j.posterior.len()).filter(|&i| i != j.leading && (j.posterior[i] - top).abs() <= 1e-12),
    );
    tied
}

/// When the leader is not 1.5 times as likely as the runner-up even with every item
/// counted, says so: "stays ahead when any one group is removed" would then claim a
/// robustness the judgement does not have (with no item at all, every group's
/// removal changes nothing).
fn narrow_lead(a: &Assessment) -> Option<String> {
    let j = &a.judgement;
    let top = j.posterior[j.leading];
    let (runner, second) = (0..j.posterior.len())
        .filter(|&i| i != j.leading)
        .map(|i| (i, j.posterior[i]))
        // On equal values the first in the file, as for the leader.
        .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)))?;
    (top < 1.5 * second).then(|| {
        format!(
            "the leader is not ahead of {} by 1.5 to 1 even with every item counted",
            a.set.hypotheses[runner].id
        )
    })
}

fn basis_text(a: &Assessment) -> String {
    let b = &a.judgement.basis;
    let mut parts = vec![format!(
        "{} independent source group(s), {} kind(s) of evidence ({})",
        b.independent_sources,
        b.kinds.len(),
        b.kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )];
    if let Some(narrow) = narrow_lead(a) {
        parts.push(narrow);
    } else if b.fragile_to.is_empty() {
        parts.push(
            "the leader stays ahead by at least 1.5 to 1 when any one group is removed".into(),
        );
    } else {
        parts.push(format!(
            "the lead is lost or narrowed below 1.5 to 1 without group(s) {}",
            b.fragile_to
                .iter()
                .map(|(g, _)| g.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    match b.planted_leader {
        Some(l) => parts.push(format!(
            "with every spoofable item assumed planted, the lead is lost or narrowed below 1.5 to 1 (runner-up: {})",
            a.set.hypotheses[l].id
        )),
        None if b.spoofable_items > 0 => parts.push(
            "the leader stays ahead by at least 1.5 to 1 with every spoofable item assumed planted"
                .into(),
        ),
        None => {}
    }
    parts.join("; ")
}

/// One line on what a candidate is expected to do.
pub fn effect_summary(a: &Assessment, e: &Effect) -> String {
    let best = e
        .outcomes
        .iter()
        .max_by(|x, y| x.probability.total_cmp(&y.probability));
    let mut s = format!(
        "expected entropy reduction {:.3} bit; chance the verdict changes {:.0} %",
        e.entropy_reduction_bits,
        e.chance_of_crossing_threshold * 100.0
    );
    if let Some(o) = best {
        s.push_str(&format!(
            "; most likely answer ({:.0} %): {} -> {} leads",
            o.probability * 100.0,
            o.name,
            a.set.hypotheses[o.after.leading].id
        ));
    }
    s
}

/// The ACH matrix: one row per counted item with force, one column per hypothesis;
/// the cell compares the item's discounted likelihood under the hypothesis with its
/// mean over hypotheses (log10: ≥ 0.5 "++", ≥ 0.1 "+", ≤ −0.5 "--", ≤ −0.1 "-",
/// else "0"). The last row is Heuer's inconsistency score: the sum of the negative
/// log10 ratios (lower is better). An explanation view, not the engine.
pub fn ach_matrix(a: &Assessment, lead: &str, sep: &str) -> String {
    let set = &a.set;
    let j = &a.judgement;
    let mut s = String::new();
    s.push_str(lead);
    s.push_str("item");
    for h in &set.hypotheses {
        s.push_str(sep);
        s.push_str(&h.id);
    }
    s.push('\n');
    if lead.starts_with('|') {
        s.push_str(&"|---".repeat(set.hypotheses.len() + 1));
        s.push_str("|\n");
    }
    let mut inconsistency = vec![0.0; set.hypotheses.len()];
    for &i in &j.counted {
        let it = &set.items[i];
        let d = discounted(it);
        if force(&d) < 1e-9 {
            continue;
        }
        let m = d.iter().sum::<f64>() / d.len() as f64;
        s.push_str(lead);
        s.push_str(&it.id);
        for (h, x) in d.iter().enumerate() {
            let l = (x / m).log10();
            if l < 0.0 {
                inconsistency[h] -= l;
            }
            let cell = if l >= 0.5 {
                "++"
            } else if l >= 0.1 {
                "+"
            } else if l <= -0.5 {
                "--"
            } else if l <= -0.1 {
                "-"
            } else {
                "0"
            };
            s.push_str(sep);
            s.push_str(cell);
        }
        s.push('\n');
    }
    s.push_str(lead);
    s.push_str("inconsistency");
    for x in inconsistency {
        s.push_str(sep);
        s.push_str(&format!("{x:.2}"));
    }
    s.push('\n');
    s
}
