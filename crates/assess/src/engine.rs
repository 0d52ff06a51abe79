//! The probability engine: reliability-discounted likelihoods, one item per
//! dependency group, posterior by Bayes' rule.
//!
//! **Discount.** An item graded with weight `w` ([`crate::grade`]) is treated as a
//! report that is informative with probability `w` and otherwise uninformative:
//! `P'(E | H) = w · P(E | H) + (1 − w) · m`, where `m` is the mean of `P(E | H)` over
//! the hypotheses (a value that is the same under every hypothesis, so it favours
//! none). This is the "unreliable source as a randomiser" model of Bovens & Hartmann,
//! *Bayesian Epistemology* (OUP 2003, ch. 3), and follows Schum, *Evidential
//! Foundations of Probabilistic Reasoning* (1994), in separating what the source says
//! from whether the source is to be believed. At `w = 1` the item counts as stated; at
//! `w = 0` (grade F or 6) every ratio is exactly 1; in between, ratios are pulled
//! towards 1 and can never exceed the stated ones. Multiplying all values of an item
//! by a constant changes nothing, so ratio profiles (`lr = {...}`) work the same way.
//!
//! **Dependency groups.** Items of one group (one source, one artefact) are not
//! independent, and multiplying them would count the shared source several times.
//! The group is represented by its *strongest* item: the one whose discounted values
//! spread furthest (largest `ln(max/min)`), ties to the smaller id. This never
//! claims more than any single report of the group does.
//!
//! **Posterior.** `P(H | E) ∝ P(H) · Π_groups P'(E_g | H)`, computed in logarithms.

use std::collections::BTreeMap;

use crate::evidence::{EvidenceSet, Item};

/// Discounted likelihoods of `item` (see the module documentation).
pub fn discounted(item: &Item) -> Vec<f64> {
    discount(&item.likelihood, item.weight())
}

/// `w · p + (1 − w) · mean(p)` for every value.
pub fn discount(p: &[f64], w: f64) -> Vec<f64> {
    if p.is_empty() {
        return Vec::new();
    }
    let w = w.clamp(0.0, 1.0);
    let m = p.iter().sum::<f64>() / p.len() as f64;
    p.iter().map(|x| w * x + (1.0 - w) * m).collect()
}

/// How far an item's discounted values spread: `ln(max / min)`, 0 for an item that
/// favours nothing.
pub fn force(d: &[f64]) -> f64 {
    let max = d.iter().copied().fold(f64::MIN, f64::max);
    let min = d.iter().copied().fold(f64::MAX, f64::min);
    if d.is_empty() || min <= 0.0 {
        return 0.0;
    }
    (max / min).ln()
}

/// The items that count: for each dependency group among the items `keep` accepts,
/// the strongest one. Returned as indices into `set.items`, sorted.
pub fn counted(set: &EvidenceSet, keep: &dyn Fn(&Item) -> bool) -> Vec<usize> {
    let mut best: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
    for (i, it) in set.items.iter().enumerate() {
        if !keep(it) {
            continue;
        }
        let f = force(&discounted(it));
        match best.get(it.group.as_str()) {
            Some((bf, bi)) if *bf > f || (*bf == f && set.items[*bi].id <= it.id) => {}
            _ => {
                best.insert(&it.group, (f, i));
            }
        }
    }
    let mut out: Vec<usize> = best.values().map(|(_, i)| *i).collect();
    out.sort_unstable();
    out
}

/// Posterior over the hypotheses from the priors and the items at `indices`.
pub fn posterior(set: &EvidenceSet, indices: &[usize]) -> Vec<f64> {
    let mut logp: Vec<f64> = set.hypotheses.iter().map(|h| h.prior.ln()).collect();
    for &i in indices {
        for (l, d) in logp.iter_mut().zip(discounted(&set.items[i])) {
            *l += d.ln();
        }
    }
    normalise_logs(&logp)
}

/// `exp` and normalise, shifting by the maximum first so nothing underflows.
pub fn normalise_logs(logp: &[f64]) -> Vec<f64> {
    let max = logp.iter().copied().fold(f64::MIN, f64::max);
    let e: Vec<f64> = logp.iter().map(|l| (l - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// Index of the largest probability; ties go to the earlier hypothesis.
pub fn leading(p: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in p.iter().enumerate() {
        if *x > p[best] {
            best = i;
        }
    }
    best
}

/// Shannon entropy in bits.
pub fn entropy_bits(p: &[f64]) -> f64 {
    p.iter().filter(|x| **x > 0.0).map(|x| -x * x.log2()).sum()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::evidence::parse;

    fn set(items: &str) -> EvidenceSet {
        let text = format!(
            "format = \"relaytrace-evidence/1\"\nexclude_defaults = [\"false-flag\", \"rented-infrastructure\"]\n\
[[hypothesis]]\nid = \"a\"\nname = \"A\"\n[[hypothesis]]\nid = \"b\"\nname = \"B\"\n{items}"
        );
        parse(&text, Path::new("t.toml")).unwrap()
    }

    fn item(id: &str, group: &str, grade: (&str, u8), a: f64) -> String {
        format!(
            "[[item]]\nid = \"{id}\"\nkind = \"malware\"\nstatement = \"s\"\ngroup = \"{group}\"\n\
source = {{ name = \"n\", url = \"https://example.org\" }}\nreliability = \"{}\"\ncredibility = {}\n\
likelihoods = {{ a = {a}, otherwise = 0.1 }}\n",
            grade.0, grade.1
        )
    }

    #[test]
    fn fully_reliable_item_is_plain_bayes() {
        let s = set(&item("x", "g", ("A", 1), 0.8));
        let p = posterior(&s, &counted(&s, &|_| true));
        // Priors 1/3 each; likelihoods 0.8, 0.1, 0.1.
        assert!((p[0] - 0.8).abs() < 1e-12, "{p:?}");
        assert!((p[1] - 0.1).abs() < 1e-12);
    }

    #[test]
    fn ungradable_items_move_nothing() {
        for grade in [("F", 1), ("A", 6), ("F", 6)] {
            let s = set(&item("x", "g", grade, 0.9));
            let p = posterior(&s, &counted(&s, &|_| true));
            for x in p {
                assert!((x - 1.0 / 3.0).abs() < 1e-12, "{grade:?}");
            }
        }
    }

    #[test]
    fn discount_pulls_ratios_towards_one_and_never_past_the_stated_one() {
        let p = [0.8, 0.1, 0.1];
        let mut last = f64::INFINITY;
        for w in [1.0, 0.85, 0.5, 0.2, 0.0] {
            let d = discount(&p, w);
            let r = d[0] / d[1];
            assert!((1.0..=8.0 + 1e-12).contains(&r) && r < last, "w {w}: {r}");
            last = r;
        }
        assert!((discount(&p, 0.0)[0] / discount(&p, 0.0)[1] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_group_counts_once_by_its_strongest_item() {
        let one = set(&item("x", "g", ("B", 2), 0.8));
        let two = set(&format!(
            "{}{}",
            item("x", "g", ("B", 2), 0.8),
            item("y", "g", ("B", 2), 0.5)
        ));
        let p1 = posterior(&one, &counted(&one, &|_| true));
        let p2 = posterior(&two, &counted(&two, &|_| true));
        assert_eq!(counted(&two, &|_| true), vec![0]);
        assert_eq!(p1, p2);
        let indep = set(&format!(
            "{}{}",
            item("x", "g", ("B", 2), 0.8),
            item("y", "h", ("B", 2), 0.5)
        ));
        let p3 = posterior(&indep, &counted(&indep, &|_| true));
        assert!(p3[0] > p1[0]);
    }

    #[test]
    fn entropy_and_leading() {
        assert!((entropy_bits(&[0.5, 0.5]) - 1.0).abs() < 1e-12);
        assert_eq!(entropy_bits(&[1.0, 0.0]), 0.0);
        assert_eq!(leading(&[0.2, 0.4, 0.4]), 1);
    }
}
