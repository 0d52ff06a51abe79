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
//! and a value near any usual threshold still sees all `K` (`shift.rs`).
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
use crate::shift::{float_bytes, Bytes, Moved, Sequential, Shifts};

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
    score(&Span::of(inb), &Span::of(out), p).map(|s| s.0)
}

/// What the score reads of a connection, packed: the null reads it for every inbound
/// at every shift, and reading it from the (large) connection records instead cost a
/// cache miss each (`bench/trace`'s flow throughput).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    /// Start, ns.
    pub start: i64,
    /// End, ns.
    pub end: i64,
    /// Byte counts, originator then responder direction.
    pub bytes: Bytes,
    /// The same as floats ([`float_bytes`]).
    pub float_bytes: [f64; 2],
}

impl Span {
    /// The span of a connection.
    pub fn of(c: &FlowConn) -> Self {
        Span {
            start: c.start_ns,
            end: c.end_ns,
            bytes: (c.orig_bytes, c.resp_bytes),
            float_bytes: float_bytes((c.orig_bytes, c.resp_bytes)),
        }
    }

    /// The span of a shifted outbound (its byte counts from its connection).
    pub fn moved(m: &Moved, conns: &[FlowConn]) -> Self {
        let c = &conns[m.conn as usize];
        Span {
            start: m.start,
            end: m.end,
            bytes: (c.orig_bytes, c.resp_bytes),
            float_bytes: m.float_bytes,
        }
    }
}

/// (score, tightness, volume) of the outbound `out` inside the inbound `inb`, `None`
/// when it fails a gate.
fn score(inb: &Span, out: &Span, p: &FlowParams) -> Option<(f64, f64, f64)> {
    let tightness = tightness(inb, out.start, out.end, p)?;
    let volume = volume(inb.bytes, out.bytes, p.volume_factor)?;
    Some((tightness * volume, tightness, volume))
}

/// The timing half of [`score`]: `None` when the outbound is not contained, else its
/// tightness in (0, 1].
fn tightness(inb: &Span, out_start: i64, out_end: i64, p: &FlowParams) -> Option<f64> {
    let t = p.tolerance_ns;
    if out_start < inb.start - t || out_end > inb.end + t {
        return None;
    }
    let slack = (out_start - inb.start).max(0) + (inb.end - out_end).max(0);
    let d = (out_end - out_start).max(t).max(1) as f64;
    Some(d / (d + slack as f64))
}

/// The larger of `best` and the score of the shifted outbound `m` inside `inb`: the
/// null's inner loop. The volume (two divisions and a square root) is only computed
/// when the tightness alone beats `best`: the score is tightness × volume with
/// volume ≤ 1, and a float product by a factor ≤ 1 never exceeds the other factor, so
/// the result is the one scoring every pair gives.
fn best_with(inb: &Span, m: &Moved, best: f64, conns: &[FlowConn], p: &FlowParams) -> f64 {
    if !volume_may_pass(&inb.float_bytes, &m.float_bytes, p.volume_factor) {
        return best;
    }
    match tightness(inb, m.start, m.end, p) {
        Some(t) if t > best => {
            match volume(inb.bytes, Span::moved(m, conns).bytes, p.volume_factor) {
                Some(v) => best.max(t * v),
                None => best,
            }
        }
        _ => best,
    }
}

/// False only when [`volume`] certainly refuses the pair: its gate by multiplication
/// (`smaller × factor < larger`), with a relative margin far above rounding error, so
/// that the null's inner loop skips the divisions of the many pairs whose volumes differ
/// by orders of magnitude (they were a fifth of the flow-mode run). A pair near the
/// gate's edge, or with a count unknown (NaN compares false), is left to [`volume`].
fn volume_may_pass(inb: &[f64; 2], out: &[f64; 2], factor: f64) -> bool {
    const SHRINK: f64 = 1.0 - 1e-9;
    let refused = |a: f64, b: f64| a * factor < b * SHRINK || b * factor < a * SHRINK;
    !refused(inb[0], out[0]) & !refused(inb[1], out[1])
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

/// A number for every address of the TCP connections: the IPv4 address itself when
/// every address is IPv4 (no lookup at all), else its rank among the distinct
/// addresses. Flow mode groups and compares hosts by these numbers instead of `IpAddr`.
struct HostIds {
    /// The distinct addresses, sorted; empty when every address is IPv4.
    ranks: Vec<IpAddr>,
}

impl HostIds {
    fn new(conns: &[FlowConn]) -> Self {
        let tcp = || conns.iter().filter(|c| c.is_tcp());
        let all_v4 = tcp().all(|c| c.orig_h.is_ipv4() && c.resp_h.is_ipv4());
        let mut ranks: Vec<IpAddr> = Vec::new();
        if !all_v4 {
            ranks = tcp().flat_map(|c| [c.orig_h, c.resp_h]).collect();
            ranks.sort_unstable();
            ranks.dedup();
        }
        HostIds { ranks }
    }

    /// The number of `ip`, one of the addresses [`HostIds::new`] saw.
    fn id(&self, ip: IpAddr) -> u32 {
        match ip {
            IpAddr::V4(a) if self.ranks.is_empty() => u32::from(a),
            // Fewer than 2³¹ connections, so fewer than 2³² addresses.
            _ => self.ranks.binary_search(&ip).unwrap_or_default() as u32,
        }
    }
}

/// Every TCP connection's two ends (the responder's inbound, the originator's
/// outbound) as sort keys `host << 32 | outbound << 31 | connection`, sorted: by host,
/// inbound before outbound, then connection. Plain `u64` keys because sorting
/// `(IpAddr, bool, usize)` tuples was a sixth of flow mode's run on 640 k records
/// (`bench/trace`'s flow throughput: 95 ms of tuples against 20 ms of keys), and a map
/// keyed by host cost as much.
fn ends_by_host(conns: &[FlowConn], ids: &HostIds) -> Vec<u64> {
    let mut ends: Vec<u64> = Vec::with_capacity(2 * conns.len());
    for (i, c) in conns.iter().enumerate().filter(|(_, c)| c.is_tcp()) {
        ends.push(u64::from(ids.id(c.resp_h)) << 32 | i as u64);
        ends.push(u64::from(ids.id(c.orig_h)) << 32 | 1 << 31 | i as u64);
    }
    ends.sort_unstable();
    ends
}

/// The connection of an end key ([`ends_by_host`]).
fn end_conn(key: u64) -> usize {
    (key & ((1 << 31) - 1)) as usize
}

/// Whether an end key is an outbound end.
fn end_is_outbound(key: u64) -> bool {
    key & (1 << 31) != 0
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
    // Each TCP connection's two ends, grouped by host by one sort of integer keys.
    if conns.len() >= 1 << 31 {
        return Err(TraceError::TooManyConnections(conns.len()));
    }
    let ids = HostIds::new(conns);
    let ends = ends_by_host(conns, &ids);
    let mut links = Vec::new();
    for host in ends.chunk_by(|a, b| a >> 32 == b >> 32) {
        let split = host.partition_point(|&e| !end_is_outbound(e));
        if split == 0 || split == host.len() {
            continue;
        }
        let h = HostConns {
            inbound: host[..split].iter().map(|&e| end_conn(e)).collect(),
            outbound: host[split..].iter().map(|&e| end_conn(e)).collect(),
        };
        let c = &conns[end_conn(host[0])];
        let relay = if end_is_outbound(host[0]) {
            c.orig_h
        } else {
            c.resp_h
        };
        links.extend(host_links(conns, (relay, &ids), &h, p));
    }
    sort_links(&mut links, conns);
    Ok(links)
}

fn host_links(
    conns: &[FlowConn],
    (relay, ids): (IpAddr, &HostIds),
    h: &HostConns,
    p: &FlowParams,
) -> Vec<Link> {
    // Observed candidates: for each inbound, the outbounds that start inside it.
    let mut by_start: Vec<(i64, usize)> =
        h.outbound.iter().map(|&o| (conns[o].start_ns, o)).collect();
    by_start.sort_unstable();
    let mut found: Vec<(usize, usize, f64, f64, f64)> = Vec::new();
    for &i in &h.inbound {
        let ci = &conns[i];
        let span = Span::of(ci);
        let lo = by_start.partition_point(|x| x.0 < ci.start_ns - p.tolerance_ns);
        for &(start, o) in &by_start[lo..] {
            if start > ci.end_ns + p.tolerance_ns {
                break;
            }
            if i == o || ci.orig_h == conns[o].resp_h {
                continue;
            }
            if let Some((s, t, v)) = score(&span, &Span::of(&conns[o]), p) {
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
        |ip| ids.id(ip),
    );
    let span = shifts.span;
    // Inbounds by start, each with its slot in `best_of` when some link starts from it.
    let mut linked: Vec<usize> = found.iter().map(|f| f.0).collect();
    linked.sort_unstable();
    linked.dedup();
    let slot_of = |i: usize| linked.binary_search(&i).ok();
    // Each inbound with its slot and its originator's host number (a shifted outbound
    // back to the inbound's own originator is a loop, not a candidate), packed so that
    // the loop over shifts reads no connection record.
    let mut inbounds: Vec<(Span, Option<usize>, u32)> = h
        .inbound
        .iter()
        .map(|&i| (Span::of(&conns[i]), slot_of(i), ids.id(conns[i].orig_h)))
        .collect();
    inbounds.sort_by_key(|x| x.0.start);
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
        for &(ref ci, slot, me) in &inbounds {
            if host_best >= need_host && !slot.is_some_and(|x| pair_open[x]) {
                continue;
            }
            // Shifted outbounds that could be contained start in [start − t, end + t].
            while lo < shifted.len() && shifted[lo].start < ci.start - p.tolerance_ns {
                lo += 1;
            }
            let mut best = 0.0f64;
            for m in &shifted[lo..] {
                if m.start > ci.end + p.tolerance_ns {
                    break;
                }
                if m.peer == me {
                    continue;
                }
                best = best_with(ci, m, best, conns, p);
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
            |i, m: &Moved| score(&Span::of(&conns[i]), &Span::moved(m, conns), p).map(|x| x.0),
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

    /// The null's pre-check refuses only pairs the volume gate refuses: byte counts on
    /// both sides of the gate's edge (ratios from 1/3.3 to 1/2.7 in tiny steps, and
    /// counts from 0 to ten million), and it does refuse the far ones.
    #[test]
    fn volume_pre_check_refuses_only_what_the_gate_refuses() {
        let p = FlowParams::default();
        let mut refused = 0;
        for a in [0u64, 1, 2, 3, 7, 100, 999, 12_345, 1 << 20, 9_999_991] {
            for step in 0..=6000u64 {
                let b = (a as f64 * (2.7 + step as f64 * 1e-4)).round() as u64;
                for (x, y) in [(a, b), (b, a)] {
                    let pre = volume_may_pass(
                        &float_bytes((Some(x), Some(1))),
                        &float_bytes((Some(y), Some(1))),
                        p.volume_factor,
                    );
                    let gate = volume((Some(x), Some(1)), (Some(y), Some(1)), p.volume_factor);
                    assert!(pre || gate.is_none(), "{x} vs {y}");
                    refused += usize::from(!pre);
                }
            }
        }
        assert!(refused > 10_000, "{refused}");
        // An unknown count never refuses.
        let unknown = float_bytes((None, Some(5)));
        assert!(volume_may_pass(
            &unknown,
            &float_bytes((Some(1 << 40), Some(5))),
            3.0
        ));
    }

    /// A relay's background with one relayed pair: `n` sessions in and out over two
    /// hours, addresses written by `addr(host number)`.
    fn busy_relay(addr: impl Fn(u8) -> String) -> Vec<FlowConn> {
        let mut state = 7u64;
        let mut unit = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let relay = addr(1);
        let mut conns = vec![
            conn(&addr(2), &relay, 3000.0, 3600.0, 40_000, 900_000),
            conn(&relay, &addr(3), 3001.0, 3599.0, 38_000, 880_000),
        ];
        for k in 0..40u8 {
            let start = unit() * 7000.0;
            let end = start + 5.0 + unit() * 900.0;
            let bytes = (1000.0 + unit() * 1e6) as u64;
            let (from, to) = if k % 2 == 0 {
                (addr(10 + k), relay.clone())
            } else {
                (relay.clone(), addr(10 + k))
            };
            conns.push(conn(&from, &to, start, end, bytes, bytes * 3));
        }
        conns
    }

    /// Hosts are numbered one way for IPv4-only input and another for mixed input: both
    /// give the same links with the same values, and an IPv4 host and its IPv4-mapped
    /// IPv6 twin are two hosts, as `IpAddr` says.
    #[test]
    fn ipv4_and_ipv6_hosts_give_the_same_links() {
        let p = FlowParams::default();
        let v4 = busy_relay(|k| format!("198.51.100.{k}"));
        let v6 = busy_relay(|k| format!("2001:db8::{k}"));
        let (a, b) = (find_links(&v4, &p).unwrap(), find_links(&v6, &p).unwrap());
        let values = |links: &[Link]| -> Vec<(usize, usize, u64, u64, u64)> {
            links
                .iter()
                .map(|l| {
                    (
                        l.inbound,
                        l.outbound,
                        l.score.to_bits(),
                        l.false_match_probability.get().to_bits(),
                        l.false_match_probability_pair.get().to_bits(),
                    )
                })
                .collect()
        };
        assert!(a.len() > 1, "{a:?}");
        assert!(a[0].null_offsets > 0);
        assert_eq!(values(&a), values(&b));
        // The relay's IPv4 address receives; its mapped twin sends: no relay.
        let twins = [
            conn("192.0.2.1", "198.51.100.1", 0.0, 100.0, 1000, 5000),
            conn("::ffff:198.51.100.1", "203.0.113.1", 1.0, 99.0, 900, 4800),
        ];
        assert!(find_links(&twins, &p).unwrap().is_empty());
        // Mixed families in one input (ranks, not addresses): the same values again.
        let mut mixed = v4.clone();
        mixed.push(conn("2001:db8::99", "2001:db8::98", 0.0, 1.0, 1, 1));
        let c = find_links(&mixed, &p).unwrap();
        assert_eq!(values(&a), values(&c));
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
