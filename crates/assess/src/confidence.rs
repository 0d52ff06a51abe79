//! Confidence: how far the judgement can be trusted, stated apart from the
//! probability (ICD 203 §D.6.e(2): confidence in the sources and reasoning is not a
//! likelihood, and the two are not put in one sentence).
//!
//! Three things are measured on the items that count ([`crate::engine::counted`]):
//! - **independent sources**: dependency groups whose counted item moves the
//!   posterior at all (weight > 0 and not every ratio 1);
//! - **diversity**: how many kinds of evidence (infrastructure, malware, ...) those
//!   groups cover;
//! - **sensitivity**: whether the leading hypothesis changes when any one group is
//!   removed, and when every spoofable item is assumed planted (removed: an artefact
//!   placed to frame someone says nothing about who placed it).
//!
//! "Changes" includes a near tie: the leader is only said to survive a removal when it
//! still leads by at least [`MARGIN`] (1.5 : 1) over the runner-up, so a leader kept
//! by an order-of-listing tie-break, or by one weak item, does not count as robust.
//! An "independent source" likewise is a group whose counted item moves the odds
//! between some two hypotheses by at least [`MIN_SOURCE_RATIO`] after its discount:
//! a report that barely moves anything is not a source the judgement rests on.
//!
//! The rule: **high** needs ≥ 3 independent sources, ≥ 3 kinds and a leader that
//! survives both tests; **moderate** needs ≥ 2 sources, ≥ 2 kinds and a leader that
//! survives the removal of any one group; anything else is **low**. One source, or
//! one kind of evidence, is never more than low confidence however strong it looks.

use std::collections::BTreeSet;

use crate::engine::{counted, discounted, force, posterior};
use crate::evidence::{EvidenceSet, Kind};

/// How far the leader must stay ahead of the runner-up to count as unchanged.
pub const MARGIN: f64 = 1.5;
/// Smallest discounted max/min likelihood ratio for a group to count as a source.
pub const MIN_SOURCE_RATIO: f64 = 1.5;

/// Whether `lead` still leads `p` by at least [`MARGIN`]; otherwise the hypothesis
/// that now leads or ties it (the best other one).
pub fn survivor(p: &[f64], lead: usize) -> Result<(), usize> {
    let (best_other, other_p) =
        p.iter()
            .enumerate()
            .filter(|(i, _)| *i != lead)
            .fold(
                (lead, 0.0),
                |acc, (i, x)| if *x > acc.1 { (i, *x) } else { acc },
            );
    if best_other == lead || p[lead] >= MARGIN * other_p {
        Ok(())
    } else {
        Err(best_other)
    }
}

/// The three confidence levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Few or fragile sources.
    Low,
    /// Several sources of different kinds; the leader survives losing any one.
    Moderate,
    /// Many sources of several kinds; the leader survives losing any one and
    /// survives all spoofable items being planted.
    High,
}

impl Level {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Moderate => "moderate",
            Level::High => "high",
        }
    }

    /// Parses a name as [`Level::as_str`] writes it.
    pub fn parse(s: &str) -> Option<Level> {
        [Level::Low, Level::Moderate, Level::High]
            .into_iter()
            .find(|l| l.as_str() == s)
    }
}

/// What a confidence level rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Basis {
    /// Dependency groups that move the posterior.
    pub independent_sources: usize,
    /// Kinds of evidence among them, sorted.
    pub kinds: Vec<Kind>,
    /// Groups whose removal changes the leading hypothesis (or leaves it less than
    /// [`MARGIN`] ahead), with the hypothesis that then leads or ties it, by group.
    pub fragile_to: Vec<(String, usize)>,
    /// Number of spoofable items.
    pub spoofable_items: usize,
    /// The hypothesis that leads or ties when every spoofable item is assumed
    /// planted, if the leader does not survive that.
    pub planted_leader: Option<usize>,
    /// The resulting level.
    pub level: Level,
}

/// Measures the confidence of the judgement on `set` whose leader is `lead`.
pub fn assess(set: &EvidenceSet, lead: usize) -> Basis {
    let all = counted(set, &|_| true);
    let informative: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| force(&discounted(&set.items[i])) >= MIN_SOURCE_RATIO.ln())
        .collect();
    let kinds: BTreeSet<Kind> = informative.iter().map(|&i| set.items[i].kind).collect();
    let groups: BTreeSet<&str> = informative
        .iter()
        .map(|&i| set.items[i].group.as_str())
        .collect();
    let mut fragile_to = Vec::new();
    for g in &groups {
        let p = posterior(set, &counted(set, &|it| it.group != *g));
        if let Err(l) = survivor(&p, lead) {
            fragile_to.push((g.to_string(), l));
        }
    }
    let spoofable_items = set.items.iter().filter(|i| i.spoofable).count();
    let planted_leader = if spoofable_items > 0 {
        survivor(&posterior(set, &counted(set, &|it| !it.spoofable)), lead).err()
    } else {
        None
    };
    let n = groups.len();
    let level = if n >= 3 && kinds.len() >= 3 && fragile_to.is_empty() && planted_leader.is_none() {
        Level::High
    } else if n >= 2 && kinds.len() >= 2 && fragile_to.is_empty() {
        Level::Moderate
    } else {
        Level::Low
    };
    Basis {
        independent_sources: n,
        kinds: kinds.into_iter().collect(),
        fragile_to,
        spoofable_items,
        planted_leader,
        level,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::evidence::parse;

    fn set(items: &[(&str, &str, &str, bool, f64)]) -> EvidenceSet {
        set_for(
            &items
                .iter()
                .map(|(i, g, k, sp, a)| (*i, *g, *k, *sp, "a", *a))
                .collect::<Vec<_>>(),
        )
    }

    fn set_for(items: &[(&str, &str, &str, bool, &str, f64)]) -> EvidenceSet {
        let mut text = String::from(
            "format = \"relaytrace-evidence/1\"\n[[hypothesis]]\nid = \"a\"\nname = \"A\"\n[[hypothesis]]\nid = \"b\"\nname = \"B\"\n",
        );
        for (id, group, kind, spoofable, target, a) in items {
            text.push_str(&format!(
                "[[item]]\nid = \"{id}\"\ngroup = \"{group}\"\nkind = \"{kind}\"\nstatement = \"s\"\n\
source = {{ name = \"n\", url = \"https://example.org\" }}\nreliability = \"B\"\ncredibility = 2\n\
spoofable = {spoofable}\nlikelihoods = {{ {target} = {a}, otherwise = 0.1 }}\n"
            ));
        }
        parse(&text, Path::new("t.toml")).unwrap()
    }

    fn level(s: &EvidenceSet) -> Basis {
        use crate::engine::leading;
        let p = posterior(s, &counted(s, &|_| true));
        assess(s, leading(&p))
    }

    #[test]
    fn one_source_is_low_however_strong() {
        let s = set(&[("x", "g", "malware", false, 0.99)]);
        let b = level(&s);
        assert_eq!(b.level, Level::Low);
        assert_eq!(b.independent_sources, 1);
    }

    #[test]
    fn two_items_of_one_group_are_one_source() {
        let s = set(&[
            ("x", "g", "malware", false, 0.9),
            ("y", "g", "intent", false, 0.9),
        ]);
        assert_eq!(level(&s).independent_sources, 1);
    }

    #[test]
    fn diverse_robust_sources_give_high_and_planting_lowers_it() {
        let s = set(&[
            ("x", "g1", "malware", false, 0.7),
            ("y", "g2", "infrastructure", false, 0.7),
            ("z", "g3", "intent", false, 0.7),
        ]);
        assert_eq!(level(&s).level, Level::High);
        // Two spoofable items point at "a", one that cannot be planted at "b": with
        // the spoofable ones assumed planted, "b" leads; and since a spoofable item
        // is as likely under "false flag" as under "a", the two tie, which is no
        // robust lead at all.
        let s = set_for(&[
            ("x", "g1", "malware", true, "a", 0.7),
            ("y", "g2", "infrastructure", true, "a", 0.7),
            ("z", "g3", "intent", false, "b", 0.4),
        ]);
        let b = level(&s);
        assert_eq!(b.planted_leader, Some(1), "{b:?}");
        assert!(!b.fragile_to.is_empty(), "{b:?}");
        assert_eq!(b.level, Level::Low, "{b:?}");
    }

    #[test]
    fn a_near_tie_is_not_survival() {
        assert_eq!(survivor(&[0.5, 0.3, 0.2], 0), Ok(()));
        assert_eq!(survivor(&[0.4, 0.35, 0.25], 0), Err(1));
        assert_eq!(survivor(&[0.3, 0.5, 0.2], 0), Err(1));
        assert_eq!(survivor(&[1.0], 0), Ok(()));
    }

    #[test]
    fn weak_reports_are_not_sources() {
        // D4 (weight 0.16) with 0.6 against 0.2: after the discount the ratio is
        // about 1.25, below MIN_SOURCE_RATIO.
        let s = set_for(&[("x", "g1", "outside-source", false, "a", 0.6)]);
        let s = EvidenceSet {
            items: s
                .items
                .into_iter()
                .map(|mut i| {
                    i.reliability = crate::grade::Reliability::D;
                    i.credibility = crate::grade::Credibility::new(4).unwrap();
                    i
                })
                .collect(),
            ..s
        };
        assert_eq!(level(&s).independent_sources, 0);
    }

    #[test]
    fn a_leader_resting_on_one_group_is_fragile() {
        let s = set_for(&[
            ("x", "g1", "malware", false, "a", 0.95),
            ("y", "g2", "infrastructure", false, "b", 0.3),
        ]);
        let b = level(&s);
        assert_eq!(b.fragile_to.len(), 1, "{b:?}");
        assert_eq!(b.fragile_to[0], ("g1".to_string(), 1));
        assert_eq!(b.level, Level::Low);
    }
}
