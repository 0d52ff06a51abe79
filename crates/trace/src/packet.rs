//! Packet mode: relay links from packet timing on both sides of a relay, each with a
//! false-match probability from the pair's own traffic.
//!
//! Two detectors read the same timelines (the store's `packets` table: times of the
//! packets that carried new payload, per direction):
//!
//! # `zp` — the Zhang–Paxson baseline
//! Zhang and Paxson, "Detecting Stepping Stones" (USENIX Security 2000), as Bro/Zeek's
//! stepping-stone analyser ran it: a connection is OFF after 0.5 s without payload in
//! its originator direction; two connections are correlated when the ends of their OFF
//! periods (the moments typing resumes) coincide within 80 ms for at least 30 % of the
//! OFF periods of the connection with fewer, with at least 2 consecutive coincidences
//! (4 when the two connections share no host); pairs with the same originator or the
//! same responder are skipped. It is exact about what it sees and fragile: a relay
//! that delays each segment by more than 80 ms breaks the coincidence, and chaff that
//! fills the idle periods removes the OFF periods themselves.
//!
//! # `packet` (default) — bounded-delay event matching
//! A relay forwards what it receives after some delay that is bounded (an interactive
//! session cannot wait seconds per keystroke), whatever it adds (chaff) and however it
//! re-segments. So for a true pair U = A→R (inbound) and D = R→V (outbound):
//! - every burst of U's originator packets inside D's lifetime is followed, within the
//!   delay bound Δ, by a packet of D's originator direction ("forward" events);
//! - every burst of D's responder packets is followed within Δ by a packet of U's
//!   responder direction (the victim's answers flow back: "backward" events).
//!
//! Events are packets thinned so that consecutive events are at least Δ apart (their
//! windows do not overlap). Extra packets on either side — chaff, re-segmentation —
//! never remove a match, only make chance matches commoner; delays up to Δ do not
//! remove it either. This is the bounded-delay idea of Blum, Song and Venkataraman
//! ("Detection of Interactive Stepping Stones: Algorithms and Confidence Bounds",
//! RAID 2004) applied to event presence instead of cumulative counts, so that chaff on
//! the relayed connection raises the null, not the statistic's variance.
//!
//! **How likely by chance.** For each Δ in a small grid (default 0.1, 0.3, 1, 2 s) the
//! pair's own outbound timeline is shifted circularly inside its own lifetime by `K`
//! offsets spread evenly over (`min_shift`, lifetime − `min_shift`). A shift keeps
//! D's packet pattern — its density, bursts, chaff — and breaks any causal alignment.
//! The pooled share of events matched under the shifts, `q` (+1/+2 smoothing), is the
//! chance match rate; the observed `m` of `n` events gets the Chernoff bound
//! `exp(−n·KL(m/n ‖ q))` on `P(Bin(n, q) ≥ m)` (an upper bound, so on the careful side;
//! events are treated as independent, which their non-overlapping windows make
//! plausible and the testbed's calibration measures). Forward and backward values are
//! combined with Fisher's method; the smallest value over the Δ grid is multiplied by
//! the grid size (Bonferroni over the grid, since Δ is chosen after looking). That is
//! `false_match_probability_pair`; multiplied by the number of candidate pairs at the
//! relay (Bonferroni over the host's candidates), it is `false_match_probability`.
//!
//! Limits, said plainly: a relay that holds traffic longer than the largest Δ (2 s by
//! default) defeats the match (raise `--max-delay`); a pair whose outbound lives less
//! than `2 × min_shift` has no null and gets probability 1; fewer than
//! `min_events` events is too little to say anything.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::conn::{FlowConn, Timeline};
use crate::error::TraceError;
use crate::flow::{Link, LinkDetail, Probability};

/// Which packet-timing detector to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketMethod {
    /// Bounded-delay event matching (the default, see the module docs).
    Counting,
    /// The Zhang–Paxson ON/OFF baseline.
    Zp,
}

/// Parameters of packet mode. The defaults are the documented ones.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketParams {
    /// The detector.
    pub method: PacketMethod,
    /// Delay bounds Δ tried by the counting detector, ns, ascending.
    pub delays_ns: Vec<i64>,
    /// How far a forwarded packet may appear *before* its cause, ns: clock skew
    /// between two captures. Default 5 ms (both sides usually come from one capture).
    pub skew_ns: i64,
    /// Time shifts `K` of the null. Default 200.
    pub null_shifts: usize,
    /// Smallest shift of the null, ns. Default 5 s (more than the largest Δ, so a
    /// true pair's shifted copy cannot match itself).
    pub min_shift_ns: i64,
    /// Fewest events (forward plus backward) a pair needs before it is judged.
    pub min_events: usize,
    /// Containment tolerance between inbound and outbound lifetimes, ns. Default 1 s.
    pub tolerance_ns: i64,
    /// Zhang–Paxson: idle time that makes a connection OFF, ns (0.5 s).
    pub zp_idle_ns: i64,
    /// Zhang–Paxson: OFF periods coincide when they end within this, ns (80 ms).
    pub zp_coincide_ns: i64,
    /// Zhang–Paxson: smallest share of coinciding OFF periods (0.3).
    pub zp_min_fraction: f64,
    /// Zhang–Paxson: consecutive coincidences needed when the pair shares a host (2).
    pub zp_consecutive_shared: usize,
    /// Zhang–Paxson: consecutive coincidences needed when it shares none (4).
    pub zp_consecutive_disjoint: usize,
}

impl Default for PacketParams {
    fn default() -> Self {
        PacketParams {
            method: PacketMethod::Counting,
            delays_ns: vec![100_000_000, 300_000_000, 1_000_000_000, 2_000_000_000],
            skew_ns: 5_000_000,
            null_shifts: 200,
            min_shift_ns: 5_000_000_000,
            min_events: 3,
            tolerance_ns: 1_000_000_000,
            zp_idle_ns: 500_000_000,
            zp_coincide_ns: 80_000_000,
            zp_min_fraction: 0.3,
            zp_consecutive_shared: 2,
            zp_consecutive_disjoint: 4,
        }
    }
}

impl PacketParams {
    /// Default parameters of the Zhang–Paxson baseline.
    pub fn zp() -> Self {
        PacketParams {
            method: PacketMethod::Zp,
            ..PacketParams::default()
        }
    }

    fn check(&self) -> Result<(), TraceError> {
        let bad = |name, reason| Err(TraceError::BadParameter { name, reason });
        if self.delays_ns.is_empty() || self.delays_ns.iter().any(|&d| d <= 0) {
            return bad("max_delay", "needs at least one positive delay bound");
        }
        if self.null_shifts == 0 || self.null_shifts > 100_000 {
            return bad("null_shifts", "must be between 1 and 100000");
        }
        if self.min_shift_ns <= 0 || self.skew_ns < 0 || self.tolerance_ns < 0 {
            return bad("min_shift", "times must be positive");
        }
        Ok(())
    }
}

/// The timeline packet mode uses for each connection, chosen among its observations.
/// For a pair, timelines from the same capture are preferred (one clock).
pub struct Timelines<'a> {
    by_conn: Vec<Vec<(&'a str, &'a Timeline)>>,
}

impl<'a> Timelines<'a> {
    /// Looks up every connection's observations in `all` (keyed by row id).
    pub fn new(conns: &[FlowConn], all: &'a BTreeMap<String, Timeline>) -> Self {
        let by_conn = conns
            .iter()
            .map(|c| {
                c.ids
                    .iter()
                    .filter_map(|id| all.get_key_value(id))
                    .map(|(id, t)| (evidence_of(id), t))
                    .collect()
            })
            .collect();
        Timelines { by_conn }
    }

    /// Whether connection `i` has a timeline.
    pub fn has(&self, i: usize) -> bool {
        !self.by_conn[i].is_empty()
    }

    /// Timelines for the pair (inbound `u`, outbound `d`): from one capture if both
    /// were seen by one, else the first of each.
    fn pair(&self, u: usize, d: usize) -> Option<(&'a Timeline, &'a Timeline)> {
        let (a, b) = (&self.by_conn[u], &self.by_conn[d]);
        for (ea, ta) in a {
            if let Some((_, tb)) = b.iter().find(|(eb, _)| eb == ea) {
                return Some((ta, tb));
            }
        }
        Some((a.first()?.1, b.first()?.1))
    }
}

/// The evidence part of a row id (`<evidence16>:<record>`): one capture, one clock.
fn evidence_of(id: &str) -> &str {
    id.split_once(':').map_or(id, |(e, _)| e)
}

/// Finds packet-mode links between every host's inbound and outbound TCP
/// connections that both have timelines. Sorted like [`crate::flow::find_links`].
pub fn find_packet_links(
    conns: &[FlowConn],
    timelines: &Timelines<'_>,
    p: &PacketParams,
) -> Result<Vec<Link>, TraceError> {
    p.check()?;
    let mut hosts: BTreeMap<IpAddr, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (i, c) in conns.iter().enumerate() {
        if !c.is_tcp() || !timelines.has(i) {
            continue;
        }
        hosts.entry(c.resp_h).or_default().0.push(i);
        hosts.entry(c.orig_h).or_default().1.push(i);
    }
    let mut links = Vec::new();
    for (relay, (inbound, outbound)) in &hosts {
        let mut cands = Vec::new();
        for &u in inbound {
            for &d in outbound {
                if candidate(conns, u, d, p) {
                    cands.push(u * conns.len() + d);
                }
            }
        }
        let m = cands.len();
        for key in cands {
            let (u, d) = (key / conns.len(), key % conns.len());
            let Some((tu, td)) = timelines.pair(u, d) else {
                continue;
            };
            let lifetime = (conns[d].start_ns, conns[d].end_ns);
            let judged = match p.method {
                PacketMethod::Counting => counting(tu, td, lifetime, p),
                PacketMethod::Zp => zp(tu, td, shares_host(&conns[u], &conns[d]), lifetime, p),
            };
            let Some((score, pair_p, detail)) = judged else {
                continue;
            };
            let host_p = (pair_p * m as f64).min(1.0);
            links.push(Link {
                inbound: u,
                outbound: d,
                relay: *relay,
                score,
                detail,
                false_match_probability: Probability::new(host_p).unwrap_or(ONE),
                false_match_probability_pair: Probability::new(pair_p.min(1.0)).unwrap_or(ONE),
                candidates_at_relay: m,
                null_offsets: p.null_shifts,
            });
        }
    }
    links.sort_by(|a, b| {
        (a.relay, conns[a.outbound].start_ns, a.outbound, a.inbound).cmp(&(
            b.relay,
            conns[b.outbound].start_ns,
            b.outbound,
            b.inbound,
        ))
    });
    Ok(links)
}

const ONE: Probability = Probability::ONE;

/// Whether (inbound `u`, outbound `d`) may be one relayed session: different
/// connections, no loop back to the originator, the outbound inside the inbound's
/// lifetime within the tolerance, and (Zhang–Paxson's rule, applied to both
/// detectors) not the same originator or the same responder.
fn candidate(conns: &[FlowConn], u: usize, d: usize, p: &PacketParams) -> bool {
    let (cu, cd) = (&conns[u], &conns[d]);
    u != d
        && cu.orig_h != cd.resp_h
        && cu.orig_h != cd.orig_h
        && cu.resp_h != cd.resp_h
        && cd.start_ns >= cu.start_ns - p.tolerance_ns
        && cd.end_ns <= cu.end_ns + p.tolerance_ns
}

fn shares_host(a: &FlowConn, b: &FlowConn) -> bool {
    [a.orig_h, a.resp_h]
        .iter()
        .any(|h| *h == b.orig_h || *h == b.resp_h)
}

/// `times` shifted circularly by `delta` inside `[w0, w0 + span)`, sorted. Times
/// outside the window are dropped (they cannot be matched inside it either).
fn shifted(times: &[i64], w0: i64, span: i64, delta: i64) -> Vec<i64> {
    let mut out: Vec<i64> = times
        .iter()
        .filter(|&&t| t >= w0 && t < w0 + span)
        .map(|&t| w0 + (t - w0 + delta).rem_euclid(span))
        .collect();
    out.sort_unstable();
    out
}

/// Events: `times` inside `[lo, hi]` thinned so consecutive ones are ≥ `gap` apart.
fn events(times: &[i64], lo: i64, hi: i64, gap: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut last = i64::MIN;
    for &t in times {
        if t < lo || t > hi {
            continue;
        }
        if last == i64::MIN || t - last >= gap {
            out.push(t);
            last = t;
        }
    }
    out
}

/// How many `events` have a `target` time in `[e − skew, e + delta]`.
fn matched(events: &[i64], target: &[i64], skew: i64, delta: i64) -> usize {
    events
        .iter()
        .filter(|&&e| {
            let i = target.partition_point(|&t| t < e - skew);
            target.get(i).is_some_and(|&t| t <= e + delta)
        })
        .count()
}

/// Chernoff bound on `P(Bin(n, q) ≥ m)`: `exp(−n·KL(m/n ‖ q))` when `m/n > q`, else 1.
pub fn binomial_tail_bound(m: usize, n: usize, q: f64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let f = m as f64 / n as f64;
    if f <= q {
        return 1.0;
    }
    let q = q.clamp(1e-12, 1.0 - 1e-12);
    let kl = if f >= 1.0 {
        -q.ln()
    } else {
        f * (f / q).ln() + (1.0 - f) * ((1.0 - f) / (1.0 - q)).ln()
    };
    (-(n as f64) * kl).exp().max(1e-300)
}

/// Fisher's method for two p-values: `x·(1 − ln x)` with `x = p1·p2`.
fn fisher2(p1: f64, p2: f64) -> f64 {
    let x = (p1 * p2).max(1e-300);
    (x * (1.0 - x.ln())).min(1.0)
}

/// The shifts of the null over a lifetime of `span` ns, or none if it is too short.
fn shifts(span: i64, p: &PacketParams) -> Vec<i64> {
    let usable = span - 2 * p.min_shift_ns;
    if usable <= 0 {
        return Vec::new();
    }
    let k = p.null_shifts;
    (0..k)
        .map(|i| p.min_shift_ns + ((usable as f64) * ((i as f64 + 0.5) / k as f64)).round() as i64)
        .collect()
}

/// The counting detector on one pair: `(score, pair probability, detail)`.
fn counting(
    u: &Timeline,
    d: &Timeline,
    (d0, d1): (i64, i64),
    p: &PacketParams,
) -> Option<(f64, f64, LinkDetail)> {
    let span = d1 - d0 + 1;
    let offsets = shifts(span, p);
    let mut best: Option<(f64, f64, LinkDetail)> = None;
    for &delta in &p.delays_ns {
        let fwd = events(&u.orig, d0, d1, delta);
        let back_all = events(&d.resp, d0, d1, delta);
        let n = fwd.len() + back_all.len();
        if n < p.min_events {
            continue;
        }
        let mf = matched(&fwd, &d.orig, p.skew_ns, delta);
        let mb = matched(&back_all, &u.resp, p.skew_ns, delta);
        // The null: D's own timeline displaced inside its lifetime.
        let (mut nf_sum, mut mf_sum, mut nb_sum, mut mb_sum) = (0usize, 0usize, 0usize, 0usize);
        for &s in &offsets {
            let d_orig = shifted(&d.orig, d0, span, s);
            let d_resp = shifted(&d.resp, d0, span, s);
            let back = events(&d_resp, d0, d1, delta);
            nf_sum += fwd.len();
            mf_sum += matched(&fwd, &d_orig, p.skew_ns, delta);
            nb_sum += back.len();
            mb_sum += matched(&back, &u.resp, p.skew_ns, delta);
        }
        let pval = if offsets.is_empty() {
            1.0
        } else {
            let qf = (mf_sum as f64 + 1.0) / (nf_sum as f64 + 2.0);
            let qb = (mb_sum as f64 + 1.0) / (nb_sum as f64 + 2.0);
            let pf = binomial_tail_bound(mf, fwd.len(), qf);
            let pb = binomial_tail_bound(mb, back_all.len(), qb);
            match (fwd.is_empty(), back_all.is_empty()) {
                (false, false) => fisher2(pf, pb),
                (false, true) => pf,
                (true, false) => pb,
                (true, true) => 1.0,
            }
        };
        let score = (mf + mb) as f64 / n as f64;
        let detail = LinkDetail::Packet {
            delay_bound_ns: delta,
            events: n,
            matched: mf + mb,
        };
        if best.as_ref().is_none_or(|b| pval < b.1) {
            best = Some((score, pval, detail));
        }
    }
    best.map(|(s, pv, d)| (s, (pv * p.delays_ns.len() as f64).min(1.0), d))
}

/// Ends of OFF periods: times of packets that follow ≥ `idle` of silence.
fn off_ends(times: &[i64], idle: i64) -> Vec<i64> {
    times
        .windows(2)
        .filter(|w| w[1] - w[0] >= idle)
        .map(|w| w[1])
        .collect()
}

/// Zhang–Paxson coincidences between two OFF-end lists: `(count, longest run of
/// consecutive coincidences)`, matching one to one in time order.
fn coincidences(a: &[i64], b: &[i64], within: i64) -> (usize, usize) {
    let (mut i, mut j) = (0, 0);
    let (mut count, mut run, mut longest) = (0, 0, 0);
    let mut last: Option<(usize, usize)> = None;
    while i < a.len() && j < b.len() {
        if (a[i] - b[j]).abs() <= within {
            count += 1;
            run = match last {
                Some((li, lj)) if li + 1 == i && lj + 1 == j => run + 1,
                _ => 1,
            };
            longest = longest.max(run);
            last = Some((i, j));
            i += 1;
            j += 1;
        } else if a[i] < b[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    (count, longest)
}

/// The Zhang–Paxson decision and score for one alignment of the two timelines.
fn zp_judge(ea: &[i64], eb: &[i64], shared: bool, p: &PacketParams) -> Option<(f64, usize, usize)> {
    let fewer = ea.len().min(eb.len());
    if fewer == 0 {
        return None;
    }
    let (c, run) = coincidences(ea, eb, p.zp_coincide_ns);
    let need = if shared {
        p.zp_consecutive_shared
    } else {
        p.zp_consecutive_disjoint
    };
    let frac = c as f64 / fewer as f64;
    (frac >= p.zp_min_fraction && run >= need).then_some((frac, c, run))
}

/// The Zhang–Paxson baseline on one pair: only detected pairs give a link; its
/// probability is the share of time shifts of the outbound that are detected with
/// at least the same score (+1 smoothing).
fn zp(
    u: &Timeline,
    d: &Timeline,
    shared: bool,
    (d0, d1): (i64, i64),
    p: &PacketParams,
) -> Option<(f64, f64, LinkDetail)> {
    let ea = off_ends(&u.orig, p.zp_idle_ns);
    let eb = off_ends(&d.orig, p.zp_idle_ns);
    let (score, c, run) = zp_judge(&ea, &eb, shared, p)?;
    let span = d1 - d0 + 1;
    let offsets = shifts(span, p);
    let pval = if offsets.is_empty() {
        1.0
    } else {
        let hits = offsets
            .iter()
            .filter(|&&s| {
                let eb_s = off_ends(&shifted(&d.orig, d0, span, s), p.zp_idle_ns);
                zp_judge(&ea, &eb_s, shared, p).is_some_and(|(f, _, _)| f >= score)
            })
            .count();
        (hits as f64 + 1.0) / (offsets.len() as f64 + 1.0)
    };
    Some((
        score,
        pval,
        LinkDetail::Zp {
            off_periods: ea.len().min(eb.len()),
            coincidences: c,
            longest_run: run,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    /// A typing pattern: bursts of keystrokes every ~130 ms separated by think times,
    /// from a small deterministic generator (no external randomness in tests).
    fn typing(seed: u64, start: i64, bursts: usize) -> Vec<i64> {
        let mut x = seed;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut t = start;
        let mut out = Vec::new();
        for _ in 0..bursts {
            for _ in 0..(3 + next() % 8) {
                t += (60 + (next() % 200) as i64) * MS;
                out.push(t);
            }
            t += (1000 + (next() % 5000) as i64) * MS;
        }
        out
    }

    fn relay(times: &[i64], seed: u64, max_delay: i64) -> Vec<i64> {
        let mut x = seed;
        let mut last = 0;
        let mut out: Vec<i64> = times
            .iter()
            .map(|&t| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let d = ((x >> 33) as i64 % max_delay.max(1)).max(MS);
                last = (t + d).max(last);
                last
            })
            .collect();
        out.sort_unstable();
        out
    }

    fn echo(times: &[i64], lag: i64) -> Vec<i64> {
        times.iter().map(|t| t + lag).collect()
    }

    fn pair(max_delay: i64) -> (Timeline, Timeline) {
        let u_orig = typing(7, 0, 40);
        let d_orig = relay(&u_orig, 3, max_delay);
        let d_resp = echo(&d_orig, 20 * MS);
        let u_resp = relay(&d_resp, 5, max_delay);
        (
            Timeline {
                orig: u_orig,
                resp: u_resp,
            },
            Timeline {
                orig: d_orig,
                resp: d_resp,
            },
        )
    }

    fn lifetime(t: &Timeline) -> (i64, i64) {
        let all: Vec<i64> = t.orig.iter().chain(&t.resp).copied().collect();
        (*all.iter().min().unwrap(), *all.iter().max().unwrap())
    }

    #[test]
    fn relayed_typing_is_found_with_a_small_probability_even_with_jitter() {
        for max_delay in [5 * MS, 300 * MS, 900 * MS] {
            let (u, d) = pair(max_delay);
            let (score, pv, _) = counting(&u, &d, lifetime(&d), &PacketParams::default()).unwrap();
            assert!(score > 0.95, "delay {max_delay}: score {score}");
            assert!(pv < 1e-6, "delay {max_delay}: p {pv}");
        }
    }

    #[test]
    fn unrelated_typing_is_not_significant() {
        let (u, _) = pair(5 * MS);
        let other_orig = typing(99, 0, 40);
        let d = Timeline {
            resp: echo(&other_orig, 20 * MS),
            orig: other_orig,
        };
        let (_, pv, _) = counting(&u, &d, lifetime(&d), &PacketParams::default()).unwrap();
        assert!(pv > 0.01, "p {pv}");
    }

    #[test]
    fn chaff_on_the_relayed_side_does_not_hide_the_pair() {
        let (u, mut d) = pair(300 * MS);
        // As many chaff packets as real ones, spread evenly over the lifetime.
        let (d0, d1) = lifetime(&d);
        let n = d.orig.len() as i64;
        d.orig
            .extend((0..n).map(|i| d0 + (d1 - d0) * i / n + 37 * MS));
        d.orig.sort_unstable();
        let (_, pv, _) = counting(&u, &d, lifetime(&d), &PacketParams::default()).unwrap();
        assert!(pv < 1e-4, "p {pv}");
    }

    #[test]
    fn zhang_paxson_sees_tight_relays_and_misses_jittered_ones() {
        let p = PacketParams::zp();
        let (u, d) = pair(5 * MS);
        assert!(zp(&u, &d, true, lifetime(&d), &p).is_some());
        let (u, d) = pair(900 * MS);
        let got = zp(&u, &d, true, lifetime(&d), &p);
        assert!(got.is_none_or(|g| g.0 < 0.6), "{got:?}");
    }

    #[test]
    fn coincidences_count_runs() {
        let a = [1000, 2000, 3000, 9000];
        let b = [1010, 2030, 3500, 9000];
        assert_eq!(coincidences(&a, &b, 80), (3, 2));
    }

    #[test]
    fn chernoff_bound_is_an_upper_bound_of_the_exact_tail() {
        // P(Bin(10, 0.5) >= 9) = 11/1024.
        let exact = 11.0 / 1024.0;
        let bound = binomial_tail_bound(9, 10, 0.5);
        assert!(bound >= exact && bound < 0.05, "{bound}");
        assert_eq!(binomial_tail_bound(3, 10, 0.5), 1.0);
    }
}
