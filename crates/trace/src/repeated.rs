//! Repeated sessions: flow mode's evidence from an operator who comes back.
//!
//! One session's records say little: at a busy relay R, an outbound session that starts
//! within a second of some inbound one and ends before it is not rare, and a record
//! carries nothing else to tell a relayed session from a look-alike. But an operator who
//! works through R returns: A→R sessions, each driving an R→V session. Under "A's sessions
//! and R's sessions to V are unrelated", each coincidence would have to happen again by
//! chance; n of them together are strong evidence even when each alone is weak. (Issue 4
//! names this "repeated co-occurrence across sessions"; it is the flow-record analogue of
//! the long-term correlation that Zhang and Paxson's detector draws from many OFF periods.)
//!
//! # Statistic
//! For a host pair (A, V) at R: `S = Σ` over *all* of A's inbound sessions at R of the
//! best flow-mode score ([`crate::flow`]: containment × tightness × volume) of an R→V
//! outbound inside it, 0 when there is none. Every session of A counts, matched or not,
//! so an A that logs in to R all day does not collect matches for free.
//!
//! # Probability
//! The same time-shift null as single links: all of R's outbound connections shifted by
//! each of the `K` offsets ([`Shifts`]) and scored against R's unshifted inbound ones,
//! giving `S_k` for every offset; one offset moves every session at once, so the pattern
//! of A's sessions (how many, how long, how far apart) and of R's sessions to V is kept and
//! only their alignment is broken. `p = (#{k : S_k ≥ S} + 1) / (K + 1)`, multiplied by the
//! number of (A, V) pairs at R that *could* have shown a repeated pattern (A with at least
//! two sessions into R, V with at least two sessions from R: Bonferroni over every pair that
//! could have been tested, not only those that were). It is floored, as single links are,
//! by the arrival model of R's own sessions: the product of the matched sessions' floors
//! (arrivals in disjoint intervals of a Poisson process are independent), times the same
//! multiplicity — so thin background never produces a certainty the data cannot carry.
//!
//! Only pairs with at least two matched sessions get this value. Each of their links then
//! reports `2 × min(own, repeated)` (capped at 1): the smaller of two valid p-values is
//! itself valid only after that factor (Bonferroni over the two), so the repeated pattern
//! can only lower a link's probability when it is clearly stronger than the link alone.
//!
//! # Limits
//! The null keeps each side's own rhythm: sessions that recur on a clock (a cron job at R
//! and a user's hourly login) would line up under a shift of one period as well, which only
//! raises `p`. The smallest value is `1/(K+1)` times the multiplicity; shifts closer together
//! than the clock tolerance are not independent of each other, so on a short capture (a few
//! minutes) the resolution is coarser than `K` suggests — the value stays valid, it cannot go
//! as low.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::conn::FlowConn;
use crate::flow::Probability;

/// What repeated sessions between the same two hosts through one relay add to a link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Repeated {
    /// A's sessions into R with an R→V outbound inside them (at least 2).
    pub sessions: usize,
    /// A's sessions into R in all.
    pub inbound_sessions: usize,
    /// `S`: sum over A's sessions of the best outbound score.
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
            "statistic": (self.statistic * 1e6).round() / 1e6,
            "false_match_probability": self.false_match_probability.get(),
            "pairs_at_relay": self.pairs_at_relay,
        })
    }
}

/// The offsets of the time-shift null at one relay and how they move a connection:
/// circularly inside R's observation window, so the density of sessions stays what it
/// was. Shared by single links ([`crate::flow`]) and repeated sessions.
pub(crate) struct Shifts {
    /// First instant of R's window, ns.
    pub window_start: i64,
    /// Window length plus tolerance, ns.
    pub span: i64,
    /// The `K` offsets, ns (empty when the window is too short for any).
    pub deltas: Vec<i64>,
}

impl Shifts {
    /// `k` offsets evenly spread over `(min_shift, span − min_shift)`, the mid-points of
    /// `k` equal cells: deterministic and symmetric.
    pub fn new(
        window_start: i64,
        window_end: i64,
        tolerance: i64,
        min_shift: i64,
        k: usize,
    ) -> Self {
        let span = window_end - window_start + tolerance;
        let usable = span - 2 * min_shift;
        let deltas = if usable > 0 {
            (0..k)
                .map(|kk| {
                    min_shift + ((usable as f64) * ((kk as f64 + 0.5) / k as f64)).round() as i64
                })
                .collect()
        } else {
            Vec::new()
        };
        Shifts {
            window_start,
            span,
            deltas,
        }
    }

    /// `outbound` moved by the `k`-th offset, as (start, end, index) sorted by start.
    pub fn apply(
        &self,
        conns: &[FlowConn],
        outbound: &[usize],
        k: usize,
        out: &mut Vec<(i64, i64, usize)>,
    ) {
        let delta = self.deltas[k];
        out.clear();
        for &o in outbound {
            let c = &conns[o];
            let s =
                self.window_start + (c.start_ns - self.window_start + delta).rem_euclid(self.span);
            out.push((s, s + (c.end_ns - c.start_ns), o));
        }
        out.sort_unstable();
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

/// Repeated-session evidence at one relay, by (A, V), for every pair with at least two
/// matched sessions. `score(inbound, shifted_start, shifted_end, outbound)` is flow mode's
/// pair score (`None` when not a candidate).
pub(crate) fn evaluate(
    conns: &[FlowConn],
    inbound: &[usize],
    outbound: &[usize],
    found: &[Found],
    shifts: &Shifts,
    tolerance: i64,
    score: impl Fn(usize, i64, i64, usize) -> Option<f64>,
) -> BTreeMap<(IpAddr, IpAddr), Repeated> {
    // Observed: best score (and its floor) per (inbound, V).
    let mut best: BTreeMap<(usize, IpAddr), (f64, f64)> = BTreeMap::new();
    for f in found {
        let v = conns[f.outbound].resp_h;
        let e = best.entry((f.inbound, v)).or_insert((0.0, 1.0));
        if f.score > e.0 {
            *e = (f.score, f.floor);
        }
    }
    let mut matched: BTreeMap<(IpAddr, IpAddr), usize> = BTreeMap::new();
    for &(i, v) in best.keys() {
        *matched.entry((conns[i].orig_h, v)).or_default() += 1;
    }
    matched.retain(|_, m| *m >= 2);
    if matched.is_empty() {
        return BTreeMap::new();
    }
    let keys: Vec<(IpAddr, IpAddr)> = matched.keys().copied().collect();
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

    // Each matched session's own probability: the share of offsets at which a shifted
    // R→V session scores at least as well inside it.
    struct Slot {
        group: usize,
        to: IpAddr,
        observed: f64,
        floor: f64,
        exceed: usize,
    }
    let mut members: Vec<(usize, Vec<Slot>)> = Vec::new();
    for &i in inbound {
        let slots: Vec<Slot> = keys
            .iter()
            .enumerate()
            .filter(|(_, k)| k.0 == conns[i].orig_h)
            .filter_map(|(g, k)| {
                let &(observed, floor) = best.get(&(i, k.1))?;
                Some(Slot {
                    group: g,
                    to: k.1,
                    observed,
                    floor,
                    exceed: 0,
                })
            })
            .collect();
        if !slots.is_empty() {
            members.push((i, slots));
        }
    }
    let mut local: Vec<f64> = Vec::new();
    let mut shifted = Vec::with_capacity(outbound.len());
    for k in 0..shifts.deltas.len() {
        shifts.apply(conns, outbound, k, &mut shifted);
        for (i, slots) in members.iter_mut() {
            let ci = &conns[*i];
            local.clear();
            local.resize(slots.len(), 0.0);
            let lo = shifted.partition_point(|x| x.0 < ci.start_ns - tolerance);
            for &(s, e, o) in &shifted[lo..] {
                if s > ci.end_ns + tolerance {
                    break;
                }
                let v = conns[o].resp_h;
                for (best, slot) in local.iter_mut().zip(slots.iter()) {
                    if slot.to == v {
                        if let Some(sc) = score(*i, s, e, o) {
                            *best = best.max(sc);
                        }
                    }
                }
            }
            for (best, slot) in local.iter().zip(slots.iter_mut()) {
                // A tiny tolerance so that a shift reproducing the observed score counts.
                if *best >= slot.observed - 1e-12 {
                    slot.exceed += 1;
                }
            }
        }
    }
    let k = shifts.deltas.len();
    let mut own: Vec<Vec<f64>> = vec![Vec::new(); keys.len()];
    for (_, slots) in &members {
        for slot in slots {
            let empirical = if k == 0 {
                1.0
            } else {
                (slot.exceed as f64 + 1.0) / (k as f64 + 1.0)
            };
            own[slot.group].push(empirical.max(slot.floor).min(1.0));
        }
    }
    keys.iter()
        .zip(own)
        .map(|(key, q)| {
            let sessions = n_from.get(&key.0).copied().unwrap_or(0);
            let statistic: f64 = q.iter().filter(|&&x| x <= TRUNCATION).product();
            let p = (truncated_product_p(&q, sessions, TRUNCATION) * pairs as f64).min(1.0);
            (
                *key,
                Repeated {
                    sessions: q.len(),
                    inbound_sessions: sessions,
                    statistic,
                    false_match_probability: Probability::new(p).unwrap_or(Probability::ONE),
                    pairs_at_relay: pairs,
                },
            )
        })
        .collect()
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
