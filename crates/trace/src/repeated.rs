//! Repeated sessions: the evidence of an operator who comes back through a relay.
//!
//! One session can be weak evidence: at a busy relay R, an outbound session that starts
//! within a second of some inbound one and ends before it is not rare, and a record
//! carries nothing else to tell a relayed session from a look-alike; a short typed session
//! under chaff has few bursts to match. But an operator who works through R returns: A→R
//! sessions, each driving an R→V session. Under "A's sessions and R's sessions to V are
//! unrelated", each coincidence would have to happen again by chance; n of them together
//! are strong evidence even when each alone is weak. (Issue 4 names this "repeated
//! co-occurrence across sessions"; it is the session-level analogue of the long-term
//! correlation that Zhang and Paxson's detector draws from many OFF periods.)
//!
//! Both modes use it (`combine`, `fold_into`); they differ in each session's value.
//! Packet mode (bounded-delay matching) uses the pair probability of the session's best
//! link to V, which is already a valid (conservative) value of its own. Flow mode prices
//! each session against the relay's background as below.
//!
//! # Each session's own probability (flow mode)
//! For a host pair (A, V) at R, each of A's sessions into R gets `q`: the best flow-mode
//! score ([`crate::flow`]: containment, tightness, volume) of an R→V outbound inside it,
//! priced by a time-shift null of its own — R's sessions *to V* shifted by each of the `K`
//! offsets (`Shifts`) inside the window the pair's sessions span (A's into R and R's to
//! V), `q` the sequential share of offsets at which a shifted one scores at least as well
//! inside the session (`shift.rs`) — and floored by that session's arrival model
//! (as single links are), so thin background never produces a certainty the data cannot
//! carry. A session of A with no R→V outbound inside it has `q = 1`. Why the pair's own
//! window and not R's: a time-shift null assumes the shifted sessions could have fallen
//! anywhere in the window; for two hosts both busy only in one hour of a six-hour capture
//! that holds for the hour, not for the six. Measured on `tests/repeated_sessions.rs`'s
//! shared-hour scenario (1,000 seeds each): shifting over R's whole window gave 5.8 % of
//! the seeds at ≤ 0.05 and 0.9 % at ≤ 0.01 (within noise of calibrated), the pair's window
//! 0.3 % and 0 % — more conservative, and `bench/trace`'s six-session sweep detected every
//! attack link either way. The choice rests on the assumption, not on a measured failure.

//! # The pattern's probability
//! The truncated product method ([`truncated_product_p`], Zaykin et al. 2002) combines
//! the `q` of *all* of A's sessions into R, matched or not (so an A that logs in to R all
//! day does not collect matches for free): the statistic is the product of the `q ≤ τ`
//! (τ = [`TRUNCATION`]), its tail under independent uniform values is exact. The result is
//! multiplied by the number of (A, V) pairs at R that *could* have shown a pattern (A with
//! at least two sessions into R, V with at least two sessions from R): Bonferroni over
//! every pair that could have been tested, not only those that were.
//!
//! Values below 1e-9 ([`crate::packet::PROBABILITY_FLOOR`]) are reported as 1e-9 in both
//! modes: further out, the sessions' independence, not the data, would be doing the talking.
//!
//! Only pairs with at least two matched sessions get this value. Each of their links then
//! reports `2 × min(own, pattern)` (capped at 1): the smaller of two valid p-values is
//! itself valid only after that factor (Bonferroni over the two), so the repeated pattern
//! can only lower a link's probability when it is clearly stronger than the link alone.
//! One exception: a pattern with no session at or below τ is no test at all (its value is
//! 1), and a link whose own value is above τ as well is left as it was rather than doubled.
//! Every value at or below τ is still `2 × min(...)`, so the values stay valid there.
//!
//! Why not the joint shift null of a summed score, which needs no independence: its
//! smallest value is `1/(K+1)` and shifts closer together than the clock tolerance are not
//! independent of each other, so on a capture of minutes to hours it cannot go below
//! 1e-3–1e-4 — too coarse to survive the correction over a busy relay's hundreds of host
//! pairs, which is exactly where repeated sessions matter.
//!
//! # Limits
//! The sessions' values are combined as independent: arrivals in disjoint intervals of a
//! Poisson process are, but two hosts whose sessions recur on a common clock (a cron job
//! at R and a user's scheduled logins) would look related. Sessions of A with no match
//! count as `q = 1` though under the null most of them would be far from τ too: when A has
//! many other sessions through R the value is conservative (six strong sessions among a
//! hundred still give about 0.02, `tests::few_strong_sessions_among_many_still_count`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::conn::FlowConn;
use crate::flow::{Link, Probability};
use crate::shift::{Moved, Sequential, Shifts};

/// What repeated sessions between the same two hosts through one relay add to a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Repeated {
    /// A's sessions into R with an R→V outbound inside them (at least 2).
    pub sessions: usize,
    /// A's sessions into R in all.
    pub inbound_sessions: usize,
    /// The truncated product: the product of the sessions' own probabilities at or
    /// below [`TRUNCATION`] (smaller is stronger).
    pub statistic: f64,
    /// The pattern's false-match probability, corrected for the (A, V) pairs at R that
    /// could have shown one, floored by the arrival model.
    pub false_match_probability: Probability,
    /// The correction's multiplicity: (A, V) pairs at R with two or more sessions each.
    pub pairs_at_relay: usize,
}

impl Repeated {
    /// The fields as JSON, rounded for stable output.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sessions": self.sessions,
            "inbound_sessions": self.inbound_sessions,
            "statistic": self.statistic,
            "false_match_probability": self.false_match_probability.get(),
            "pairs_at_relay": self.pairs_at_relay,
        })
    }
}

/// One observed candidate at R: inbound, outbound, score, and its arrival-model floor.
pub(crate) struct Found {
    pub inbound: usize,
    pub outbound: usize,
    pub score: f64,
    pub floor: f64,
}

/// Truncation point of the truncated product: sessions whose own probability is above
/// it do not enter the product (Zaykin et al. 2002 found 0.05 a good all-round choice).
pub const TRUNCATION: f64 = 0.05;

/// Repeated-session evidence at one relay R from each session's own probability:
/// `values[(inbound, V)]` is the probability of inbound session A→R's best link to V
/// (however a method priced it). For every (A, V) with two or more such sessions, the
/// truncated product over all of A's sessions into R (those without a value count as 1),
/// times the number of (A, V) pairs at R that could have shown a pattern.
pub(crate) fn combine(
    conns: &[FlowConn],
    inbound: &[usize],
    outbound: &[usize],
    values: &BTreeMap<(usize, IpAddr), f64>,
) -> BTreeMap<(IpAddr, IpAddr), Repeated> {
    let mut groups: BTreeMap<(IpAddr, IpAddr), Vec<f64>> = BTreeMap::new();
    for (&(i, v), &q) in values {
        groups.entry((conns[i].orig_h, v)).or_default().push(q);
    }
    groups.retain(|_, q| q.len() >= 2);
    if groups.is_empty() {
        return BTreeMap::new();
    }
    // Multiplicity: every (A, V) that could have shown two or more matches.
    let mut n_from: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for &i in inbound {
        *n_from.entry(conns[i].orig_h).or_default() += 1;
    }
    let mut n_to: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for &o in outbound {
        *n_to.entry(conns[o].resp_h).or_default() += 1;
    }
    let many_to: Vec<IpAddr> = n_to.iter().filter(|e| *e.1 >= 2).map(|e| *e.0).collect();
    let pairs = n_from
        .iter()
        .filter(|e| *e.1 >= 2)
        .map(|(a, _)| many_to.iter().filter(|v| *v != a).count())
        .sum::<usize>()
        .max(1);
    groups
        .into_iter()
        .map(|(key, q)| {
            let sessions = n_from.get(&key.0).copied().unwrap_or(0);
            let statistic: f64 = q.iter().filter(|&&x| x <= TRUNCATION).product();
            // Floored like packet mode's values: far out, the independence of the
            // sessions, not the data, would be doing the talking.
            let p = (truncated_product_p(&q, sessions, TRUNCATION) * pairs as f64)
                .clamp(crate::packet::PROBABILITY_FLOOR, 1.0);
            let r = Repeated {
                sessions: q.len(),
                inbound_sessions: sessions,
                statistic,
                false_match_probability: Probability::new(p).unwrap_or(Probability::ONE),
                pairs_at_relay: pairs,
            };
            (key, r)
        })
        .collect()
}

/// Folds repeated-session evidence into links of one relay: each link of a pattern gets
/// it as `repeated` and reports `2 × min(own, pattern)`, capped at 1 (Bonferroni over
/// the two values).
pub(crate) fn fold_into(
    links: &mut [Link],
    conns: &[FlowConn],
    patterns: &BTreeMap<(IpAddr, IpAddr), Repeated>,
) {
    for l in links {
        let key = (conns[l.inbound].orig_h, conns[l.outbound].resp_h);
        if let Some(r) = patterns.get(&key) {
            let own = l.false_match_probability.get();
            // An empty truncated product (no session at or below τ) is no test: links
            // above τ are left alone, not doubled (module docs: still valid below τ).
            if r.statistic >= 1.0 && own > TRUNCATION {
                continue;
            }
            let p = (2.0 * own.min(r.false_match_probability.get())).min(1.0);
            l.false_match_probability = Probability::new(p).unwrap_or(Probability::ONE);
            l.repeated = Some(*r);
        }
    }
}

/// Flow mode's per-session values at one relay (see the module docs): for each (A, V)
/// with candidates in two or more of A's sessions into R, each such session gets the
/// sequential share of shifts at which a shifted R→V session scores at least as well
/// inside it, floored by the session's arrival model. The shifts move R's sessions to V
/// only, inside the window the pair's own sessions span (A's into R, R's to V): two hosts
/// that are both busy in the same hour of a long capture are compared with that hour, not
/// with the whole of R's window (module docs: why, and what it changed when measured).
/// `score(inbound, shifted outbound)` is flow mode's pair score (`None` when not a
/// candidate).
#[allow(clippy::too_many_arguments)]
pub(crate) fn flow_session_values(
    conns: &[FlowConn],
    inbound: &[usize],
    outbound: &[usize],
    found: &[Found],
    tolerance: i64,
    min_shift: i64,
    offsets: usize,
    score: impl Fn(usize, &Moved) -> Option<f64>,
) -> BTreeMap<(usize, IpAddr), f64> {
    // Most relays have no (A, V) with two sessions: say so before building any map.
    let mut pairs: Vec<(IpAddr, IpAddr, usize)> = found
        .iter()
        .map(|f| (conns[f.inbound].orig_h, conns[f.outbound].resp_h, f.inbound))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    if !pairs
        .windows(2)
        .any(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1))
    {
        return BTreeMap::new();
    }
    // Observed: best score (and its floor) per (A, V), then per inbound session.
    let mut best: BTreeMap<(IpAddr, IpAddr), BTreeMap<usize, (f64, f64)>> = BTreeMap::new();
    for f in found {
        let key = (conns[f.inbound].orig_h, conns[f.outbound].resp_h);
        let e = best
            .entry(key)
            .or_default()
            .entry(f.inbound)
            .or_insert((0.0, 1.0));
        if f.score > e.0 {
            *e = (f.score, f.floor);
        }
    }
    let mut values = BTreeMap::new();
    let mut shifted = Vec::new();
    for ((a, v), sessions) in best.iter().filter(|(_, s)| s.len() >= 2) {
        let to_v: Vec<usize> = outbound
            .iter()
            .copied()
            .filter(|&o| conns[o].resp_h == *v)
            .collect();
        let from_a = inbound.iter().filter(|&&i| conns[i].orig_h == *a);
        let lo = from_a
            .clone()
            .chain(&to_v)
            .map(|&x| conns[x].start_ns)
            .min()
            .unwrap_or(0);
        let hi = from_a
            .chain(&to_v)
            .map(|&x| conns[x].end_ns)
            .max()
            .unwrap_or(0);
        let shifts = Shifts::new(
            conns,
            &to_v,
            (lo, hi),
            tolerance,
            min_shift,
            offsets,
            // All go to V: no shifted session can loop back to an inbound's originator
            // (a session from V itself is not one of A's).
            |_| 0,
        );
        let mut seqs: Vec<(usize, f64, f64, Sequential)> = sessions
            .iter()
            .map(|(&i, &(observed, floor))| (i, observed, floor, Sequential::default()))
            .collect();
        let mut tried = 0usize;
        for k in 0..shifts.deltas.len() {
            if seqs.iter().all(|s| s.3.stopped()) {
                break;
            }
            shifts.apply(k, &mut shifted);
            tried = k + 1;
            for (i, observed, _, seq) in seqs.iter_mut() {
                if seq.stopped() {
                    continue;
                }
                let ci = &conns[*i];
                let first = shifted.partition_point(|x: &Moved| x.start < ci.start_ns - tolerance);
                let mut got = 0.0f64;
                for m in &shifted[first..] {
                    if m.start > ci.end_ns + tolerance {
                        break;
                    }
                    if let Some(sc) = score(*i, m) {
                        got = got.max(sc);
                    }
                }
                // A tiny tolerance so that a shift reproducing the observed score counts.
                seq.record(tried, got >= *observed - 1e-12);
            }
        }
        for (i, _, floor, seq) in &seqs {
            values.insert((*i, *v), seq.value(tried).max(*floor).min(1.0));
        }
    }
    values
}

/// The truncated product method (Zaykin, Zhivotovsky, Westfall and Weir, Genetic
/// Epidemiology 22, 2002): given the probabilities `matched` of some of `n` independent
/// tests (the others have probability 1), the chance under the null that the product of
/// all probabilities at or below `tau` is as small as observed. Unlike Fisher's product
/// of all `n`, a few strong sessions among many unremarkable ones still count: what an
/// operator who also logs in for other reasons looks like. Computed in logarithms, since
/// the terms span hundreds of orders of magnitude.
pub fn truncated_product_p(matched: &[f64], n: usize, tau: f64) -> f64 {
    let kept: Vec<f64> = matched.iter().copied().filter(|&q| q <= tau).collect();
    if kept.is_empty() || n == 0 {
        return 1.0;
    }
    let n = n.max(kept.len());
    let ln_w: f64 = kept.iter().map(|q| q.max(f64::MIN_POSITIVE).ln()).sum();
    let (ln_tau, ln_1mt) = (tau.ln(), (1.0 - tau).ln());
    // P(W ≤ w) = Σ_k C(n,k) (1−τ)^(n−k) A_k(w), A_k(w) = w Σ_{s<k} (k ln τ − ln w)^s / s!
    // when w ≤ τ^k, else τ^k (k of the n probabilities fall at or below τ).
    let mut terms: Vec<f64> = Vec::with_capacity(n);
    let mut ln_choose = 0.0f64;
    for kk in 1..=n {
        ln_choose += ((n - kk + 1) as f64).ln() - (kk as f64).ln();
        let ln_tau_k = kk as f64 * ln_tau;
        let ln_a = if ln_w <= ln_tau_k {
            let x = ln_tau_k - ln_w; // ≥ 0
            let inner: Vec<f64> = (0..kk)
                .scan(0.0f64, |ln_term, s| {
                    if s > 0 {
                        *ln_term += x.max(f64::MIN_POSITIVE).ln() - (s as f64).ln();
                    }
                    Some(*ln_term)
                })
                .collect();
            ln_w + log_sum_exp(&inner)
        } else {
            ln_tau_k
        };
        terms.push(ln_choose + (n - kk) as f64 * ln_1mt + ln_a);
    }
    log_sum_exp(&terms).exp().clamp(0.0, 1.0)
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under the null (independent uniform probabilities) the method's value is itself
    /// uniform: its share at or below α is α. Checked by simulation with a seeded
    /// generator, for a sparse and a dense case.
    #[test]
    fn truncated_product_is_calibrated() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut unit = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for n in [3usize, 20] {
            let trials = 20_000;
            let (mut le_05, mut le_01) = (0usize, 0usize);
            for _ in 0..trials {
                let q: Vec<f64> = (0..n).map(|_| unit()).collect();
                let p = truncated_product_p(&q, n, TRUNCATION);
                le_05 += usize::from(p <= 0.05);
                le_01 += usize::from(p <= 0.01);
            }
            let (a, b) = (le_05 as f64 / trials as f64, le_01 as f64 / trials as f64);
            assert!((0.04..=0.06).contains(&a), "n {n}: share <= 0.05 is {a}");
            assert!((0.006..=0.014).contains(&b), "n {n}: share <= 0.01 is {b}");
        }
    }

    /// A few strong sessions among many: what Fisher's product of all would dilute.
    #[test]
    fn few_strong_sessions_among_many_still_count() {
        let strong = [1e-3; 6];
        assert!(truncated_product_p(&strong, 6, TRUNCATION) < 1e-12);
        // Twice as many sessions in all, half of them unremarkable.
        let p = truncated_product_p(&strong, 12, TRUNCATION);
        assert!(p < 1e-9, "{p}");
        // Conservative when A has many sessions: the ones without any match count as
        // probability 1, though under the null most of them would be far from τ too.
        let p = truncated_product_p(&strong, 100, TRUNCATION);
        assert!(p < 0.05, "{p}");
        // One weak match is no evidence at all.
        assert!(truncated_product_p(&[0.5], 6, TRUNCATION) == 1.0);
        assert!(truncated_product_p(&[0.04], 40, TRUNCATION) > 0.5);
    }
}
