//! Flow mode: relay links from connection records alone, each with a false-match
//! probability from the relay's own background.
//!
//! # Score
//! A relay R receives A→R (the *inbound*) and, while it is alive, opens R→V (the
//! *outbound*). A candidate pair must satisfy, with clock tolerance `t`:
//! - **containment**: `out.start ≥ in.start − t` and `out.end ≤ in.end + t` (the
//!   relayed session cannot outlive the session that drives it);
//! - **volume**: in each direction where both byte counts are known, the smaller is at
//!   least `1/volume_factor` of the larger (relaying plus re-encryption adds per-packet
//!   overhead, it does not multiply bytes);
//! - A ≠ V (a host talking to itself through R is a loop, not a relay).
//!
//! The score is `tightness × volume`, in (0, 1]:
//! - `tightness = d / (d + slack)`, with `d` the outbound's duration (at least `t`)
//!   and `slack` the time the inbound is alive without the outbound (start lag plus
//!   end lag, negatives clipped). An `ssh -J` hop starts within a second of its
//!   inbound and ends with it: tightness ≈ 1. A short session that happens to fall
//!   inside a long one scores its share of the long one's lifetime.
//! - `volume` = geometric mean over the known directions of `smaller / larger`
//!   (1 when no direction has counts: timing alone then decides, and says so in a
//!   lower power, not in a false certainty: the null below uses the same score).
//!
//! # False-match probability (time-shift null)
//! Would an unrelated connection at R have scored as well? R's own background answers
//! it: shift *all* of R's outbound connections by an offset δ (circularly, inside
//! R's observation window, so the density of connections stays what it was) and
//! score them against R's unshifted inbound connections. A shift breaks every causal
//! pairing but keeps everything else of R's traffic: how many sessions, how long,
//! how large, how bursty. `K` offsets are spread evenly over the window, excluding
//! shifts shorter than `min_shift` either way (a true pair shifted by a second is
//! still a true pair). Deterministic: no random numbers, same case, same answer.
//!
//! For each offset `k`, `M_k` is the best score of any (inbound, shifted outbound)
//! pair at R. A link with score `s` gets
//! `false_match_probability = (#{k : M_k ≥ s} + 1) / (K + 1)`: the chance that R's
//! background, with no relaying at all, produces *somewhere at R* a pair at least as
//! good. Taking the maximum over all of R's pairs is the per-host correction for the
//! number of candidates (a max-statistic correction, as in Westfall–Young: never
//! weaker than Bonferroni over R's candidates, and less conservative when the
//! candidates are correlated). The uncorrected, per-inbound value (`M_k` restricted
//! to the link's own inbound connection) is reported beside it as
//! `false_match_probability_pair`. The smallest reportable value is `1/(K+1)`: with
//! the default `K = 1000`, just under 1e-3; ask for more offsets to claim less.
//! The offsets are tried in a low-discrepancy order and each value stops once ten shifts
//! have matched as well (a Besag–Clifford sequential p-value, `10 / L` after `L` shifts):
//! a chance pair at a busy host is priced after a few dozen shifts instead of a thousand,
//! and a value near any usual threshold still sees all `K` ([`crate::shift`]).
//!
//! # Floor: when R's background is too thin to say
//! A host with two sessions in a 30-second capture has almost no background: no
//! shifted session fits anywhere, every candidate gets the smallest value `1/(K+1)`,
//! and an unrelated pair (the testbed's hard negatives) would look certain. Absence of
//! background is not evidence. So each value is floored by a simple arrival model of
//! R's own outbound sessions: the chance that an outbound session arriving at R's rate
//! (`(n_out + 1) / window`) starts within the observed start lag (plus tolerance) of
//! the inbound one, times the share of R's outbound durations (+1 smoothing) that
//! would fit the inbound within the observed slack. This is a per-pair value, so it
//! is a lower bound for the per-host one: the floor never makes a link look more
//! certain, only less. A busy host with a long window is decided by the time-shift
//! null; a thin one by the floor.
//!
//! # Repeated sessions
//! One session's records are weak evidence at a busy relay; an operator who comes back
//! through R to V several times is not. [`crate::repeated`] combines the sessions of
//! each (A, V) pair and folds the result into the links' probability (see there).
//!
//! Limits, said plainly: the null assumes R's inbound and outbound sessions are
//! otherwise independent of each other's timing (a cron job opening outbound
//! connections at the same minute as inbound ones would make shifts look too
//! different from reality); a window shorter than `2 × min_shift` has no null at all
//! and its links get probability 1.

use std::fmt;
use std::net::IpAddr;

use crate::conn::FlowConn;
use crate::error::TraceError;
use crate::repeated::{self, Found, Repeated};
use crate::shift::{Bytes, Moved, Sequential, Shifts};

/// A probability, 0..=1 by construction.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Probability(f64);

impl Probability {
    /// Certainty: what a link gets when nothing can be said against chance.
    pub const ONE: Probability = Probability(1.0);

    /// `p` if it lies in 0..=1 (NaN refused).
    pub fn new(p: f64) -> Option<Self> {
        (0.0..=1.0).contains(&p).then_some(Probability(p))
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl fmt::Display for Probability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2e}", self.0)
    }
}

/// Parameters of flow mode. The defaults are the documented ones.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowParams {
    /// Clock tolerance between sensors and for containment, ns. Default 1 s: NetFlow
    /// v9 headers carry whole seconds, so its start times can be off by up to one.
    pub tolerance_ns: i64,
    /// Largest accepted ratio between relayed byte counts in one direction. Default
    /// 3: an `ssh -J` hop wraps each keystroke's 36 payload bytes in another SSH
    /// packet (about 1.5× at IP level, more on payload counts).
    pub volume_factor: f64,
    /// Number of time shifts `K` of the null. Default 1000.
    pub null_offsets: usize,
    /// Smallest shift used by the null, ns. Default 10 s: a relayed session starts and
    /// ends within a few seconds of its inbound one, so a larger shift breaks a true
    /// pair; a smaller one could let the true pair's own shifted copy match, which only
    /// makes its probability larger (errs on the careful side). Kept small so that short
    /// captures (the testbed's 30 s runs) still have a null.
    pub min_shift_ns: i64,
    /// Whether repeated sessions between the same two hosts through a relay add their
    /// evidence ([`crate::repeated`]). Default on; off measures what single sessions say.
    pub repeated_sessions: bool,
}

impl Default for FlowParams {
    fn default() -> Self {
        FlowParams {
            tolerance_ns: 1_000_000_000,
            volume_factor: 3.0,
            null_offsets: 1000,
            min_shift_ns: 10_000_000_000,
            repeated_sessions: true,
        }
    }
}

impl FlowParams {
    fn check(&self) -> Result<(), TraceError> {
        let bad = |name, reason| Err(TraceError::BadParameter { name, reason });
        if self.tolerance_ns < 0 {
            return bad("tolerance", "must not be negative");
        }
        if self.volume_factor.is_nan() || self.volume_factor < 1.0 {
            return bad("volume_factor", "must be at least 1");
        }
        if self.null_offsets == 0 || self.null_offsets > MAX_NULL_OFFSETS {
            return bad("null_offsets", "must be between 1 and 100000");
        }
        if self.min_shift_ns <= 0 {
            return bad("min_shift", "must be positive");
        }
        Ok(())
    }
}

/// Upper bound on `K`: the null costs `K` passes over each relay's connections.
const MAX_NULL_OFFSETS: usize = 100_000;

/// How a link was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    /// Connection records: containment and volume (this module).
    Flow,
    /// Packet timelines: bounded-delay event matching ([`crate::packet`]).
    Packet,
    /// Packet timelines: the Zhang–Paxson ON/OFF baseline ([`crate::packet`]).
    Zp,
}

impl Method {
    /// The name used in findings (`"flow"`, `"packet"`, `"zp"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Flow => "flow",
            Method::Packet => "packet",
            Method::Zp => "zp",
        }
    }
}

/// The measurements behind a link's score, per method.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkDetail {
    /// Flow mode.
    Flow {
        /// Timing component: the outbound's share of the inbound's lifetime.
        tightness: f64,
        /// Volume component: geometric mean of the byte-count ratios.
        volume: f64,
    },
    /// Packet mode, bounded-delay event matching.
    Packet {
        /// The forward (typing, downstream) delay bound Δ of the choice that gave the
        /// smallest probability, ns.
        delay_bound_ns: i64,
        /// The backward (answers, upstream) delay bound of that choice, ns: it may
        /// differ from the forward one ([`crate::packet::PacketParams::split_delays`]).
        backward_delay_bound_ns: i64,
        /// Forward plus backward events.
        events: usize,
        /// Events followed by a packet on the other side within Δ.
        matched: usize,
    },
    /// Packet mode, Zhang–Paxson.
    Zp {
        /// OFF periods of the connection with fewer.
        off_periods: usize,
        /// OFF periods whose ends coincide within 80 ms.
        coincidences: usize,
        /// Longest run of consecutive coincidences.
        longest_run: usize,
    },
}

impl LinkDetail {
    /// The method that measured this.
    pub fn method(&self) -> Method {
        match self {
            LinkDetail::Flow { .. } => Method::Flow,
            LinkDetail::Packet { .. } => Method::Packet,
            LinkDetail::Zp { .. } => Method::Zp,
        }
    }

    /// The measurements as JSON, rounded for stable output.
    pub fn to_json(&self) -> serde_json::Value {
        let r = |x: f64| (x * 1e6).round() / 1e6;
        match *self {
            LinkDetail::Flow { tightness, volume } => {
                serde_json::json!({"tightness": r(tightness), "volume": r(volume)})
            }
            LinkDetail::Packet {
                delay_bound_ns,
                backward_delay_bound_ns,
                events,
                matched,
            } => {
                serde_json::json!({"delay_bound_ns": delay_bound_ns,
                    "backward_delay_bound_ns": backward_delay_bound_ns,
                    "events": events, "matched": matched})
            }
            LinkDetail::Zp {
                off_periods,
                coincidences,
                longest_run,
            } => {
                serde_json::json!({"off_periods": off_periods, "coincidences": coincidences, "longest_run": longest_run})
            }
        }
    }
}

/// One candidate relay link: `conns[inbound]` (A→R) carries the session that
/// `conns[outbound]` (R→V) continues.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Index of the inbound connection (A→R) in the connection slice.
    pub inbound: usize,
    /// Index of the outbound connection (R→V).
    pub outbound: usize,
    /// The relay R.
    pub relay: IpAddr,
    /// In (0, 1]: flow mode `tightness × volume`, packet mode the share of events
    /// matched, Zhang–Paxson the share of OFF periods that coincide.
    pub score: f64,
    /// What the method measured, for the reader who checks the score.
    pub detail: LinkDetail,
    /// Per-host corrected false-match probability (max-statistic over R's pairs).
    pub false_match_probability: Probability,
    /// Uncorrected value: shifted outbound connections against this inbound only.
    pub false_match_probability_pair: Probability,
    /// Candidate pairs at R (the multiplicity the correction accounts for).
    pub candidates_at_relay: usize,
    /// Offsets the null tried at this relay before every value was settled (at most
    /// `K`; 0 when R's window was too short for any).
    pub null_offsets: usize,
    /// Flow mode: the evidence of A's repeated sessions through R to V, when at least
    /// two of them matched ([`crate::repeated`]); it is already folded into
    /// `false_match_probability`.
    pub repeated: Option<Repeated>,
}

/// The score of an outbound (given by its times and bytes) against an inbound, or
/// `None` when the pair is not a candidate.
/// Sorts links by relay, then outbound start, then outbound and inbound index: the one
/// order every method's links are reported in, so output never depends on how they
/// were found.
pub(crate) fn sort_links(links: &mut [Link], conns: &[FlowConn]) {
    links.sort_by(|a, b| {
        (a.relay, conns[a.outbound].start_ns, a.outbound, a.inbound).cmp(&(
            b.relay,
            conns[b.outbound].start_ns,
            b.outbound,
            b.inbound,
        ))
    });
}

/// Flow-mode score of one (inbound, outbound) pair, `None` when it fails the
/// containment or volume gate. Public so that benchmarks can score pairs built
/// outside a case; the false-match probability needs the host's background
/// ([`find_links`]).
pub fn pair_score(inb: &FlowConn, out: &FlowConn, p: &FlowParams) -> Option<f64> {
    score(
        inb,
        out.start_ns,
        out.end_ns,
        (out.orig_bytes, out.resp_bytes),
        p,
    )
    .map(|s| s.0)
}

/// (score, tightness, volume) of an outbound with the given times and byte counts inside
/// `inb`, `None` when it fails a gate.
fn score(
    inb: &FlowConn,
    out_start: i64,
    out_end: i64,
    out_bytes: Bytes,
    p: &FlowParams,
) -> Option<(f64, f64, f64)> {
    let t = p.tolerance_ns;
    if out_start < inb.start_ns - t || out_end > inb.end_ns + t {
        return None;
    }
    let volume = volume((inb.orig_bytes, inb.resp_bytes), out_bytes, p.volume_factor)?;
    let slack = (out_start - inb.start_ns).max(0) + (inb.end_ns - out_end).max(0);
    let d = (out_end - out_start).max(t).max(1) as f64;
    let tightness = d / (d + slack as f64);
    Some((tightness * volume, tightness, volume))
}

fn volume(inb: Bytes, out: Bytes, factor: f64) -> Option<f64> {
    let mut product = 1.0;
    let mut n = 0;
    for (a, b) in [(inb.0, out.0), (inb.1, out.1)] {
        let (Some(a), Some(b)) = (a, b) else { continue };
        let (lo, hi) = (a.min(b) as f64, a.max(b) as f64);
        let r = if hi == 0.0 { 1.0 } else { lo / hi };
        if r * factor < 1.0 {
            return None;
        }
        product *= r;
        n += 1;
    }
    // Geometric mean of one or two ratios (`sqrt`, not `powf`: this runs for every
    // shifted pair of the null).
    Some(match n {
        2 => product.sqrt(),
        _ => product,
    })
}

/// One relay's connections, as indices into the connection slice.
struct HostConns {
    inbound: Vec<usize>,
    outbound: Vec<usize>,
}

/// Finds every candidate link among `conns` (merged, see [`crate::conn::merge`])
/// and gives each its false-match probability. Links are sorted by (relay,
/// outbound start, inbound start): deterministic.
pub fn find_links(conns: &[FlowConn], p: &FlowParams) -> Result<Vec<Link>, TraceError> {
    p.check()?;
    // Each TCP connection's two ends, grouped by host by one sort (a map keyed by host
    // cost a sixth of the run on a 640k-record set, `bench/trace`'s flow throughput).
    let mut ends: Vec<(IpAddr, bool, usize)> = Vec::with_capacity(2 * conns.len());
    for (i, c) in conns.iter().enumerate() {
        if c.is_tcp() {
            ends.push((c.resp_h, false, i));
            ends.push((c.orig_h, true, i));
        }
    }
    ends.sort_unstable();
    let mut links = Vec::new();
    for host in ends.chunk_by(|a, b| a.0 == b.0) {
        let split = host.partition_point(|e| !e.1);
        if split == 0 || split == host.len() {
            continue;
        }
        let h = HostConns {
            inbound: host[..split].iter().map(|e| e.2).collect(),
            outbound: host[split..].iter().map(|e| e.2).collect(),
        };
        links.extend(host_links(conns, host[0].0, &h, p));
    }
    sort_links(&mut links, conns);
    Ok(links)
}

fn host_links(conns: &[FlowConn], relay: IpAddr, h: &HostConns, p: &FlowParams) -> Vec<Link> {
    // Observed candidates: for each inbound, the outbounds that start inside it.
    let mut by_start: Vec<(i64, usize)> =
        h.outbound.iter().map(|&o| (conns[o].start_ns, o)).collect();
    by_start.sort_unstable();
    let mut found: Vec<(usize, usize, f64, f64, f64)> = Vec::new();
    for &i in &h.inbound {
        let ci = &conns[i];
        let lo = by_start.partition_point(|x| x.0 < ci.start_ns - p.tolerance_ns);
        for &(start, o) in &by_start[lo..] {
            if start > ci.end_ns + p.tolerance_ns {
                break;
            }
            if i == o || ci.orig_h == conns[o].resp_h {
                continue;
            }
            let co = &conns[o];
            if let Some((s, t, v)) = score(
                ci,
                co.start_ns,
                co.end_ns,
                (co.orig_bytes, co.resp_bytes),
                p,
            ) {
                found.push((i, o, s, t, v));
            }
        }
    }
    if found.is_empty() {
        return Vec::new();
    }
    // The null: best shifted score per offset, for the host and per inbound, each link's
    // values counted sequentially ([`crate::shift`]).
    let window_start = h
        .inbound
        .iter()
        .chain(&h.outbound)
        .map(|&i| conns[i].start_ns)
        .min()
        .unwrap_or(0);
    let window_end = h
        .inbound
        .iter()
        .chain(&h.outbound)
        .map(|&i| conns[i].end_ns)
        .max()
        .unwrap_or(0);
    let shifts = Shifts::new(
        conns,
        &h.outbound,
        (window_start, window_end),
        p.tolerance_ns,
        p.min_shift_ns,
        p.null_offsets,
    );
    let span = shifts.span;
    // Inbounds by start, each with its slot in `best_of` when some link starts from it.
    let mut linked: Vec<usize> = found.iter().map(|f| f.0).collect();
    linked.sort_unstable();
    linked.dedup();
    let slot_of = |i: usize| linked.binary_search(&i).ok();
    // Each inbound with its slot and its originator among R's outbound peers (a shifted
    // outbound back to the inbound's own originator is a loop, not a candidate).
    let mut inbounds: Vec<(usize, Option<usize>, Option<u32>)> = h
        .inbound
        .iter()
        .map(|&i| (i, slot_of(i), shifts.peer(conns[i].orig_h)))
        .collect();
    inbounds.sort_by_key(|&(i, _, _)| conns[i].start_ns);
    let found_slot: Vec<usize> = found
        .iter()
        .map(|f| slot_of(f.0).expect("every link's inbound is linked"))
        .collect();
    let mut best_of = vec![0.0f64; linked.len()];
    let mut host_seq = vec![Sequential::default(); found.len()];
    let mut pair_seq = vec![Sequential::default(); found.len()];
    let mut tried = 0usize;
    let mut shifted: Vec<Moved> = Vec::with_capacity(h.outbound.len());
    // Per shift, what can still change a value: the highest score among links whose
    // per-host value is open, and the inbounds whose per-pair values are open. Once the
    // host's best shifted score reaches that score, the remaining inbounds cannot change
    // any open value and are skipped (the values are the same as without skipping).
    let mut pair_open = vec![true; linked.len()];
    for kk in 0..shifts.deltas.len() {
        shifts.apply(kk, &mut shifted);
        let need_host = found
            .iter()
            .zip(&host_seq)
            .filter(|(_, q)| !q.stopped())
            .map(|(f, _)| f.2)
            .fold(f64::NEG_INFINITY, f64::max);
        pair_open.iter_mut().for_each(|x| *x = false);
        for (n, q) in pair_seq.iter().enumerate() {
            if !q.stopped() {
                pair_open[found_slot[n]] = true;
            }
        }
        let mut host_best = 0.0f64;
        // Inbounds come by start, so the first shifted outbound that could be inside one
        // only moves forward: a merge, not a search per inbound.
        let mut lo = 0usize;
        for &(i, slot, me) in &inbounds {
            if host_best >= need_host && !slot.is_some_and(|x| pair_open[x]) {
                continue;
            }
            let ci = &conns[i];
            // Shifted outbounds that could be contained start in [start − t, end + t].
            while lo < shifted.len() && shifted[lo].start < ci.start_ns - p.tolerance_ns {
                lo += 1;
            }
            let mut best = 0.0f64;
            for m in &shifted[lo..] {
                if m.start > ci.end_ns + p.tolerance_ns {
                    break;
                }
                if Some(m.peer) == me {
                    continue;
                }
                if let Some((sc, _, _)) = score(ci, m.start, m.end, m.bytes, p) {
                    best = best.max(sc);
                }
            }
            host_best = host_best.max(best);
            if let Some(slot) = slot {
                best_of[slot] = best;
            }
        }
        tried = kk + 1;
        for (n, f) in found.iter().enumerate() {
            host_seq[n].record(tried, host_best >= f.2);
            pair_seq[n].record(tried, best_of[found_slot[n]] >= f.2);
        }
        if host_seq.iter().all(|s| s.stopped()) {
            break;
        }
    }
    let k = tried;
    let m = found.len();
    // Arrival-model floor (see the module docs): outbound arrivals at R's own rate,
    // durations drawn from R's own outbound durations, both with +1 smoothing.
    let rate_per_ns = (h.outbound.len() as f64 + 1.0) / span.max(1) as f64;
    let mut durations: Vec<i64> = h
        .outbound
        .iter()
        .map(|&x| conns[x].end_ns - conns[x].start_ns)
        .collect();
    durations.sort_unstable();
    let floor = |i: usize, o: usize| -> f64 {
        let (ci, co) = (&conns[i], &conns[o]);
        let lag = (co.start_ns - ci.start_ns).max(0) + p.tolerance_ns;
        let arrive = 1.0 - (-rate_per_ns * lag as f64).exp();
        let d_obs = co.end_ns - co.start_ns;
        let slack = lag + (ci.end_ns - co.end_ns).max(0) + p.tolerance_ns;
        let fits = durations.partition_point(|&d| d <= d_obs + slack)
            - durations.partition_point(|&d| d < d_obs - slack);
        let fit = (fits as f64 + 1.0) / (h.outbound.len() as f64 + 1.0);
        (arrive * fit.min(1.0)).clamp(0.0, 1.0)
    };
    // Timing and volume components, beside the candidates in the same order.
    let details: Vec<(f64, f64)> = found.iter().map(|f| (f.3, f.4)).collect();
    let found: Vec<Found> = found
        .into_iter()
        .map(|(i, o, s, _, _)| Found {
            inbound: i,
            outbound: o,
            score: s,
            floor: floor(i, o),
        })
        .collect();
    let mut links: Vec<Link> = found
        .iter()
        .zip(details)
        .enumerate()
        .map(|(n, (f, (t, v)))| Link {
            inbound: f.inbound,
            outbound: f.outbound,
            relay,
            score: f.score,
            detail: LinkDetail::Flow {
                tightness: t,
                volume: v,
            },
            false_match_probability: Probability(host_seq[n].value(tried).max(f.floor)),
            false_match_probability_pair: Probability(pair_seq[n].value(tried).max(f.floor)),
            candidates_at_relay: m,
            null_offsets: k,
            repeated: None,
        })
        .collect();
    if p.repeated_sessions {
        let values = repeated::flow_session_values(
            conns,
            &h.inbound,
            &h.outbound,
            &found,
            p.tolerance_ns,
            p.min_shift_ns,
            p.null_offsets,
            |i, m: &Moved| score(&conns[i], m.start, m.end, m.bytes, p).map(|x| x.0),
        );
        let patterns = repeated::combine(conns, &h.inbound, &h.outbound, &values);
        repeated::fold_into(&mut links, conns, &patterns);
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(orig: &str, resp: &str, start_s: f64, end_s: f64, ob: u64, rb: u64) -> FlowConn {
        crate::testing::record(orig, resp, start_s, end_s, Some((ob, rb)))
    }

    /// Each gate of the candidate test, one row each: a regression here means
    /// containment, volume or the loop rule changed meaning.
    #[test]
    fn candidate_gates() {
        let p = FlowParams::default();
        let inb = conn("192.0.2.1", "198.51.100.1", 100.0, 200.0, 1000, 5000);
        let cases = [
            (
                "contained",
                conn("198.51.100.1", "203.0.113.1", 101.0, 199.0, 900, 4800),
                true,
            ),
            (
                "starts 0.5 s early (within tolerance)",
                conn("198.51.100.1", "203.0.113.1", 99.5, 199.0, 900, 4800),
                true,
            ),
            (
                "starts 2 s early",
                conn("198.51.100.1", "203.0.113.1", 98.0, 199.0, 900, 4800),
                false,
            ),
            (
                "ends 2 s late",
                conn("198.51.100.1", "203.0.113.1", 101.0, 202.0, 900, 4800),
                false,
            ),
            (
                "4x fewer bytes",
                conn("198.51.100.1", "203.0.113.1", 101.0, 199.0, 250, 4800),
                false,
            ),
            (
                "back to the origin",
                conn("198.51.100.1", "192.0.2.1", 101.0, 199.0, 900, 4800),
                false,
            ),
        ];
        for (name, out, want) in cases {
            let links = find_links(&[inb.clone(), out], &p).unwrap();
            assert_eq!(!links.is_empty(), want, "{name}");
        }
    }

    #[test]
    fn tight_pair_scores_higher_than_loose_pair() {
        let p = FlowParams::default();
        let inb = conn("192.0.2.1", "198.51.100.1", 0.0, 1000.0, 1000, 5000);
        let tight = conn("198.51.100.1", "203.0.113.1", 1.0, 999.0, 900, 4800);
        let loose = conn("198.51.100.1", "203.0.113.2", 400.0, 500.0, 900, 4800);
        let links = find_links(&[inb, tight, loose], &p).unwrap();
        assert_eq!(links.len(), 2);
        assert!(
            links[0].score > 0.9
                && matches!(links[0].detail, LinkDetail::Flow { tightness, .. } if tightness > 0.99),
            "{:?}",
            links[0]
        );
        assert!(links[1].score < 0.2, "{:?}", links[1]);
        assert!(links[0].false_match_probability < links[1].false_match_probability);
    }

    #[test]
    fn parameters_are_checked() {
        let p = FlowParams {
            null_offsets: 0,
            ..FlowParams::default()
        };
        assert!(matches!(
            find_links(&[], &p),
            Err(TraceError::BadParameter {
                name: "null_offsets",
                ..
            })
        ));
        assert!(Probability::new(f64::NAN).is_none());
        assert!(Probability::new(1.5).is_none());
    }
}
