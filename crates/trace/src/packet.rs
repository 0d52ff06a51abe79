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
//! # `packet` (default) — bounded-delay burst matching
//! A relay forwards what it receives after some delay that is bounded (an interactive
//! session cannot wait seconds per keystroke), whatever it adds (chaff) and however it
//! re-segments. So for a true pair U = A→R (inbound) and D = R→V (outbound):
//! - every packet of U's originator direction is followed, within the delay bound Δ, by
//!   a packet of D's originator direction (forward: the typing goes downstream);
//! - every packet of D's responder direction is followed within Δ by one of U's
//!   responder direction (backward: the answers come back up).
//!
//! Packets come in bursts (a command typed, an answer printed) separated by think
//! times; packets of one burst are not independent chances, so the unit of evidence is
//! the **burst** (at least two packets separated by less than 0.5 s, thinned to one per
//! Δ; a lone packet is no burst, see [`MIN_BURST_PACKETS`]): a burst is matched when at
//! least 80 % of its packets find their counterpart. This is the
//! bounded-delay idea of Blum, Song and Venkataraman ("Detection of Interactive
//! Stepping Stones: Algorithms and Confidence Bounds", RAID 2004) read as presence of
//! counterparts rather than cumulative counts. Extra packets on the searched side —
//! chaff, re-segmentation — never remove a match, they only make chance matches
//! commoner, which the null below measures; delays up to Δ remove nothing either. Chaff
//! on the side whose bursts are counted would add unmatched bursts, so both choices are
//! tried: bursts of the inbound (robust to chaff added by the relay on its outbound) and
//! bursts of the outbound searched backwards in the inbound (robust to chaff arriving on
//! the inbound). The first 2 s of the outbound are skipped: any two SSH sessions opened
//! at the same moment have look-alike handshakes, relayed or not. A pair matching fewer
//! than half its bursts is not a relay and is not judged further.
//!
//! **How likely by chance.** For each event side and each Δ in a small grid
//! ([`DEFAULT_DELAYS_NS`]: 0.01, 0.1, 0.3, 1, 2 s) the outbound's timeline is shifted
//! circularly inside its own lifetime by `K` offsets spread evenly over (`min_shift`,
//! lifetime − `min_shift`). A
//! shift keeps D's packet pattern — density, bursts, chaff — and breaks any causal
//! alignment. The pooled share of bursts matched under the shifts, `q` (+1/+2
//! smoothing), is the chance rate per burst; the observed `m` of `n` bursts gets the
//! Chernoff bound `exp(−n·KL(m/n ‖ q))` on `P(Bin(n, q) ≥ m)` (an upper bound, so on the
//! careful side). Forward and backward values are combined with Fisher's method, each
//! direction with its own Δ (a relay may delay one direction and not the other: see
//! [`PacketParams::split_delays`]); the smallest value over sides and (forward Δ,
//! backward Δ) is multiplied by the number of choices tried, 2 × 5 × 5 by default
//! (Bonferroni, since they are chosen after looking). That is
//! `false_match_probability_pair`; multiplied by the number of candidate pairs at the
//! relay (Bonferroni over the host's candidates), it is `false_match_probability`.
//! Whether these values are calibrated is measured, not assumed: `bench/trace` reports
//! the share of negative pairs at or below each probability.
//!
//! Probabilities below [`PROBABILITY_FLOOR`] (1e-9) are reported as that value: further
//! out, the independence assumption, not the data, would be doing the talking.
//!
//! Limits, said plainly: a relay that holds traffic longer than the largest Δ (2 s by
//! default) defeats the match (raise `--max-delay`); a pair whose outbound lives less
//! than `2 × min_shift` has no null and gets probability 1; fewer than
//! `min_events` events is too little to say anything. An outbound that lives barely
//! longer than `2 × min_shift` has a null of nearly one placement of its pattern (the
//! 200 shifts of a 10.1 s outbound span 0.1 s), so its chance rate rests on that one
//! placement: `bench/trace`'s strongest remaining look-alike negative (5.2e-7 per pair,
//! middle sweep) is such an outbound. Scaling the null's counts down to the number of
//! distinct placements (one per 0.5 s of shift range) removed it, but cost detection
//! (short sweep, plain relays at 1e-4: 1.000 → 0.956) and made every other value far
//! more careful than it needed to be; not adopted.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::conn::{FlowConn, Timeline};
use crate::error::TraceError;
use crate::flow::{Link, LinkDetail, Probability};
use crate::rowid::{RowId, RowSource};

/// The smallest false-match probability packet mode reports (see the module docs).
pub const PROBABILITY_FLOOR: f64 = 1e-9;

/// The delay bounds Δ packet mode tries by default, ns: 10 ms, 100 ms, 300 ms, 1 s, 2 s.
///
/// The smallest is for relays that forward at once (`ssh -J`, socat, a port forward):
/// their segments leave well under a millisecond after they arrive, and a bound that
/// tight makes a chance match rare, so a short session is enough to tell. Without it
/// (the grid began at 100 ms until 2026-12-01) `bench/trace`'s per-pair detection at
/// 1e-4 was 0.852 for plain relays on the middle sweep and 0.889 for a 300 ms relay
/// without chaff on the short one; with it, 1.000 and 1.000 on the same runs, and a
/// relay that delays only one direction gains too (300 ms with 50 % chaff: 0.444 →
/// 0.778), for a Bonferroni factor of 50 instead of 32. The larger bounds are for
/// relays that hold traffic back (an evasive forwarder, a loaded host, a tunnel).
pub const DEFAULT_DELAYS_NS: [i64; 5] = [
    10_000_000,
    100_000_000,
    300_000_000,
    1_000_000_000,
    2_000_000_000,
];

/// The delay bounds to try when a relay may hold a segment up to `max_ns`: the default
/// grid up to it, then doubling up to it (so `max_ns` itself is always the last).
pub fn delay_bounds(max_ns: i64) -> Vec<i64> {
    let mut out: Vec<i64> = DEFAULT_DELAYS_NS
        .into_iter()
        .filter(|&d| d <= max_ns)
        .collect();
    let mut next = out.last().map_or(max_ns, |&d| d * 2);
    while out.last().is_none_or(|&d| d < max_ns) {
        next = next.min(max_ns);
        out.push(next);
        next = next.saturating_mul(2);
    }
    out
}

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
    /// Bounded-delay matching: whether repeated sessions between the same two hosts
    /// through a relay add their evidence ([`crate::repeated`]; default on). Never for
    /// Zhang–Paxson, which stays the baseline as published.
    pub repeated_sessions: bool,
    /// Bounded-delay matching: whether the forward and backward directions may each
    /// take their own delay bound Δ from `delays_ns` (default on). A relay that shapes
    /// only what it sends one way — or a shaping tunnel whose far end delays the other
    /// way before the relay sees it — leaves one direction tight and the other loose;
    /// one Δ for both must then be the loose one, and the tight direction's evidence
    /// drowns in its larger chance rate. The price is a larger Bonferroni factor (2 ×
    /// |Δ|² choices instead of 2 × |Δ|). `bench/trace`, six-session sweep, per pair at
    /// 1e-4 under 300 ms + 50 % chaff: 0.778 with one Δ, 1.000 split (measured with the
    /// grid before its 10 ms bound, which now also catches a tight direction when both
    /// share one Δ).
    pub split_delays: bool,
}

impl Default for PacketParams {
    fn default() -> Self {
        PacketParams {
            method: PacketMethod::Counting,
            delays_ns: DEFAULT_DELAYS_NS.to_vec(),
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
            repeated_sessions: true,
            split_delays: true,
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
    by_conn: Vec<Vec<(RowSource<'a>, &'a Timeline)>>,
}

impl<'a> Timelines<'a> {
    /// Looks up every connection's observations in `all` (keyed by row id).
    pub fn new(conns: &[FlowConn], all: &'a BTreeMap<RowId, Timeline>) -> Self {
        let by_conn = conns
            .iter()
            .map(|c| {
                c.ids
                    .iter()
                    .filter_map(|id| all.get_key_value(id))
                    .map(|(id, t)| (id.source(), t))
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
        let first = links.len();
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
            let judged = judge_pair(tu, td, lifetime, shares_host(&conns[u], &conns[d]), p);
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
                repeated: None,
            });
        }
        if p.repeated_sessions && p.method == PacketMethod::Counting {
            // Each session's value: its best link's pair probability to each V.
            let mut values: BTreeMap<(usize, IpAddr), f64> = BTreeMap::new();
            for l in &links[first..] {
                let q = l.false_match_probability_pair.get();
                let e = values
                    .entry((l.inbound, conns[l.outbound].resp_h))
                    .or_insert(1.0);
                *e = e.min(q);
            }
            let patterns = crate::repeated::combine(conns, inbound, outbound, &values);
            crate::repeated::fold_into(&mut links[first..], conns, &patterns);
        }
    }
    crate::flow::sort_links(&mut links, conns);
    Ok(links)
}

const ONE: Probability = Probability::ONE;

fn candidate(conns: &[FlowConn], u: usize, d: usize, p: &PacketParams) -> bool {
    u != d && may_be_relayed(&conns[u], &conns[d], p)
}

/// Whether inbound `u` and outbound `d` (of the same host) may be one relayed
/// session in packet mode: no loop back to the originator, the outbound inside the
/// inbound's lifetime within the tolerance — its end also within the largest delay
/// bound, since a relay that holds data that long still flushes it after the inbound
/// has closed (the testbed's 1 s evasive relay ended its outbound 1.07–1.20 s after
/// the inbound) — and (Zhang–Paxson's rule, applied to both detectors) not the same
/// originator or the same responder. Public so that benchmarks pick their negative
/// pairs by the same rule.
pub fn may_be_relayed(u: &FlowConn, d: &FlowConn, p: &PacketParams) -> bool {
    let held = p.delays_ns.iter().copied().max().unwrap_or(0);
    u.orig_h != d.resp_h
        && u.orig_h != d.orig_h
        && u.resp_h != d.resp_h
        && d.start_ns >= u.start_ns - p.tolerance_ns
        && d.end_ns <= u.end_ns + p.tolerance_ns + held
}

/// Judges one (inbound `u`, outbound `d`) pair with `p.method`: `(score, pair
/// false-match probability, measurements)`, or `None` when the pair cannot be judged
/// (too few events) or, for Zhang–Paxson, is not detected. `lifetime` is the
/// outbound's (start, end) in ns; `shared` whether the two connections share a host.
/// Public so that benchmarks can score pairs built outside a case.
pub fn judge_pair(
    u: &Timeline,
    d: &Timeline,
    lifetime: (i64, i64),
    shared: bool,
    p: &PacketParams,
) -> Option<(f64, f64, LinkDetail)> {
    match p.method {
        PacketMethod::Counting => counting(u, d, lifetime, p),
        PacketMethod::Zp => zp(u, d, shared, lifetime, p),
    }
}

fn shares_host(a: &FlowConn, b: &FlowConn) -> bool {
    [a.orig_h, a.resp_h]
        .iter()
        .any(|h| *h == b.orig_h || *h == b.resp_h)
}

/// `times` (sorted) shifted circularly by `delta` (0 < delta < span) inside
/// `[w0, w0 + span)`, sorted, into `out`. Times outside the window are dropped (they
/// cannot be matched inside it either). The shifted list is a rotation of the sorted
/// one — the times that wrap come first — so no sort is needed.
fn shifted_into(times: &[i64], w0: i64, span: i64, delta: i64, out: &mut Vec<i64>) {
    out.clear();
    let lo = times.partition_point(|&t| t < w0);
    let hi = times.partition_point(|&t| t < w0 + span);
    let inside = &times[lo..hi];
    let wrap = inside.partition_point(|&t| t - w0 + delta < span);
    out.extend(inside[wrap..].iter().map(|&t| t + delta - span));
    out.extend(inside[..wrap].iter().map(|&t| t + delta));
}

/// [`shifted_into`] into a new vector.
fn shifted(times: &[i64], w0: i64, span: i64, delta: i64) -> Vec<i64> {
    let mut out = Vec::with_capacity(times.len());
    shifted_into(times, w0, span, delta, &mut out);
    out
}

/// Where an event's counterpart lies, which decides the one neighbour in the searched
/// timeline that every delay bound Δ can be tested against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Counterpart {
    /// After the event (the event is a cause): window `[e − skew, e + Δ]`, decided by
    /// the first target at or after `e − skew` (`i64::MAX` when there is none).
    After,
    /// Before the event (the event is an effect): window `[e − Δ, e + skew]`, decided by
    /// the last target at or before `e + skew` (`i64::MIN` when there is none).
    Before,
}

/// For each of `events` (sorted), its deciding neighbour in `target` (sorted): one
/// merge of the two lists, shared by every Δ (the windows of one kind differ only in
/// the bound that Δ sets). Searching the targets per event and per Δ was most of packet
/// mode's time.
fn neighbours(events: &[i64], target: &[i64], kind: Counterpart, skew: i64, out: &mut Vec<i64>) {
    out.clear();
    let mut j = 0usize;
    match kind {
        Counterpart::After => {
            for &e in events {
                while j < target.len() && target[j] < e - skew {
                    j += 1;
                }
                out.push(target.get(j).copied().unwrap_or(i64::MAX));
            }
        }
        Counterpart::Before => {
            for &e in events {
                while j < target.len() && target[j] <= e + skew {
                    j += 1;
                }
                out.push(if j == 0 { i64::MIN } else { target[j - 1] });
            }
        }
    }
}

/// Bursts of `times` — runs of at least [`MIN_BURST_PACKETS`] packets separated by less
/// than `gap`, each thinned so that consecutive events are at least `delta` apart —
/// counted as `(matched, total)`: a burst is matched when at least
/// [`BURST_MATCH_SHARE`] of its events have a counterpart within Δ, read off `near`
/// (their [`neighbours`], same order). One pass, no allocation (it runs for every Δ of
/// every shift of the null).
fn count_bursts(
    times: &[i64],
    near: &[i64],
    kind: Counterpart,
    gap: i64,
    delta: i64,
) -> (usize, usize) {
    let (mut matched, mut total) = (0usize, 0usize);
    // The burst being read: its events, those with a counterpart, its packets.
    let (mut events, mut hits, mut packets) = (0usize, 0usize, 0usize);
    let mut close = |events: usize, hits: usize, packets: usize| {
        if packets >= MIN_BURST_PACKETS {
            total += 1;
            if hits as f64 >= BURST_MATCH_SHARE * events as f64 {
                matched += 1;
            }
        }
    };
    let (mut prev, mut last_event) = (i64::MIN, i64::MIN);
    for (&t, &n) in times.iter().zip(near) {
        let new_burst = prev == i64::MIN || t - prev >= gap;
        if new_burst {
            close(events, hits, packets);
            (events, hits, packets) = (0, 0, 0);
        }
        packets += 1;
        if new_burst || t - last_event >= delta {
            events += 1;
            hits += usize::from(match kind {
                Counterpart::After => n <= t.saturating_add(delta),
                Counterpart::Before => n >= t.saturating_sub(delta),
            });
            last_event = t;
        }
        prev = t;
    }
    close(events, hits, packets);
    (matched, total)
}

/// Fewest packets a burst has. A lone packet between silences — a keep-alive, a line of
/// a login slowed by a relay, one keystroke — is no evidence of its own: any busy
/// stretch of the other connection matches it, and several lone packets in a row all
/// fall into the same stretch, so counting each as a burst (as before 2026-12-01) made
/// dependent chances look independent. `bench/trace`'s strongest look-alike negative
/// was that: the end of one session's login through a slow relay, single packets about
/// 0.5–0.6 s apart in both directions (most of them lone), each "matched" by another
/// session's single typing burst (7.2e-7 per pair). Measured on the short and middle
/// sweeps against counting every burst (10 ms bound in both): per pair at 1e-4,
/// negatives at ≤ 1e-4 4 → 2 of 21,742 (middle; 0 → 0 short), 300 ms + 50 % chaff on
/// the next relay's inbound 0.833 → 1.000, every other cell the same. Three packets:
/// short sweep two cells 1.000 → 0.889; middle, 300 ms + chaff at the evasive relay
/// 0.778 → 0.889 but attack pairs at ≤ 1e-4 70 → 68 of 72. Note that at Δ ≥ 0.5 s a
/// two-packet burst thins to one event, as much evidence as a lone packet would be.
pub const MIN_BURST_PACKETS: usize = 2;

/// Share of a burst's events that must find their counterpart for the burst to count
/// as matched: all of them for a faithful relay; 0.8 leaves room for a segment the
/// capture lost.
const BURST_MATCH_SHARE: f64 = 0.8;

/// Silence that separates two bursts, ns: a think time, as Zhang–Paxson's idle time.
const BURST_GAP_NS: i64 = 500_000_000;

/// Connection setup skipped at the start of the outbound, ns: the SSH handshake of any
/// two sessions opened at the same moment looks alike, relayed or not.
const SETUP_NS: i64 = 2_000_000_000;

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

/// Which connection's bursts are the events (the other one is searched for them).
#[derive(Clone, Copy, PartialEq, Eq)]
enum EventSide {
    /// The inbound's: robust to chaff on the outbound.
    Inbound = 0,
    /// The outbound's: robust to chaff on the inbound.
    Outbound = 1,
}

/// One alignment of the outbound timeline against the inbound one, ready for every Δ:
/// per event side (inbound, outbound) and direction (forward, backward), the events
/// inside the judged window and their deciding neighbours ([`neighbours`]). Forward,
/// U's originator packets cause D's; backward, D's responder packets cause U's. Events
/// come from the side named; the other side is searched after the cause (events are
/// causes) or before the effect (events are effects).
#[derive(Default)]
struct Aligned {
    events: [[Vec<i64>; 2]; 2],
    near: [[Vec<i64>; 2]; 2],
}

impl Aligned {
    /// Fills the (side, direction) entries that `need` asks for, with `d_orig` and
    /// `d_resp` the outbound's timeline as aligned.
    fn fill(
        &mut self,
        u: &Timeline,
        (d_orig, d_resp): (&[i64], &[i64]),
        (lo, hi): (i64, i64),
        skew: i64,
        need: [[bool; 2]; 2],
    ) {
        for (s, side) in [EventSide::Inbound, EventSide::Outbound]
            .into_iter()
            .enumerate()
        {
            for (k, _) in need[s].iter().enumerate().filter(|(_, &wanted)| wanted) {
                let (ev, tg) = match (side, k) {
                    (EventSide::Inbound, 0) => (&u.orig[..], d_orig),
                    (EventSide::Inbound, _) => (&u.resp[..], d_resp),
                    (EventSide::Outbound, 0) => (d_orig, &u.orig[..]),
                    (EventSide::Outbound, _) => (d_resp, &u.resp[..]),
                };
                let first = ev.partition_point(|&t| t < lo);
                let last = ev.partition_point(|&t| t <= hi);
                let ev = &ev[first..last.max(first)];
                // Copied, though the inbound's events are the same at every shift:
                // reading them from the timelines instead (ranges kept here) was slower
                // in the null, 4.67-4.72 k against 5.04-5.25 k connections per
                // CPU-second in alternating runs on bench/trace's short sweep.
                self.events[s][k].clear();
                self.events[s][k].extend_from_slice(ev);
                neighbours(ev, tg, counterpart(side, k), skew, &mut self.near[s][k]);
            }
        }
    }

    /// Matched and total bursts, forward and backward, with events from `side` and
    /// bound Δ = `delta`; a direction not in `want` is not counted (`(0, 0)`).
    fn counts(&self, side: EventSide, delta: i64, want: [bool; 2]) -> [(usize, usize); 2] {
        let s = side as usize;
        let gap = BURST_GAP_NS.max(delta);
        let count = |k: usize| {
            if want[k] {
                let kind = counterpart(side, k);
                count_bursts(&self.events[s][k], &self.near[s][k], kind, gap, delta)
            } else {
                (0, 0)
            }
        };
        [count(0), count(1)]
    }
}

/// Where the counterpart of an event lies, for events from `side` in direction `k`
/// (0 forward, 1 backward).
fn counterpart(side: EventSide, k: usize) -> Counterpart {
    match (side, k) {
        (EventSide::Inbound, 0) | (EventSide::Outbound, 1) => Counterpart::After,
        _ => Counterpart::Before,
    }
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
    let window = (d0 + SETUP_NS, d1);
    let combos: Vec<(EventSide, i64)> = [EventSide::Inbound, EventSide::Outbound]
        .into_iter()
        .flat_map(|side| p.delays_ns.iter().map(move |&delta| (side, delta)))
        .collect();
    let mut aligned = Aligned::default();
    aligned.fill(u, (&d.orig, &d.resp), window, p.skew_ns, [[true; 2]; 2]);
    let observed: Vec<[(usize, usize); 2]> = combos
        .iter()
        .map(|&(side, delta)| aligned.counts(side, delta, [true; 2]))
        .collect();
    // The (side, forward Δ, backward Δ) choices judged: one Δ for both directions, or
    // (split) each its own.
    let choices: Vec<(usize, usize)> = combos
        .iter()
        .enumerate()
        .flat_map(|(c, &(side, _))| {
            let split = p.split_delays;
            combos
                .iter()
                .enumerate()
                .filter(move |&(b, &(sb, _))| sb == side && (split || b == c))
                .map(move |(b, _)| (c, b))
        })
        .collect();
    // A relay reproduces nearly every burst; a choice matching fewer than half of its
    // bursts is not one, whatever the null says, and costs no null (most pairs stop
    // here).
    let active: Vec<(usize, usize)> = choices
        .iter()
        .copied()
        .filter(|&(f, b)| {
            let n = observed[f][0].1 + observed[b][1].1;
            let m = observed[f][0].0 + observed[b][1].0;
            n >= p.min_events && 2 * m >= n
        })
        .collect();
    if active.is_empty() {
        return None;
    }
    // Which (side, Δ) the null must count, and in which direction.
    let mut want = vec![[false; 2]; combos.len()];
    for &(f, b) in &active {
        want[f][0] = true;
        want[b][1] = true;
    }
    let legs: Vec<usize> = (0..combos.len())
        .filter(|&c| want[c] != [false; 2])
        .collect();
    // The null: D's own timeline displaced inside its lifetime, each shift made once
    // and read by every (side, delta) still in play.
    let mut null = vec![[(0usize, 0usize); 2]; combos.len()];
    let mut need = [[false; 2]; 2];
    for &c in &legs {
        for k in 0..2 {
            need[combos[c].0 as usize][k] |= want[c][k];
        }
    }
    let (mut d_orig, mut d_resp) = (Vec::new(), Vec::new());
    for &s in &offsets {
        shifted_into(&d.orig, d0, span, s, &mut d_orig);
        shifted_into(&d.resp, d0, span, s, &mut d_resp);
        aligned.fill(u, (&d_orig, &d_resp), window, p.skew_ns, need);
        for &c in &legs {
            let (side, delta) = combos[c];
            let got = aligned.counts(side, delta, want[c]);
            for k in 0..2 {
                null[c][k].0 += got[k].0;
                null[c][k].1 += got[k].1;
            }
        }
    }
    let mut best: Option<(f64, f64, LinkDetail)> = None;
    for &(f, b) in &active {
        let obs = [observed[f][0], observed[b][1]];
        let nul = [null[f][0], null[b][1]];
        let (n, matched) = (obs[0].1 + obs[1].1, obs[0].0 + obs[1].0);
        let pval = if offsets.is_empty() {
            1.0
        } else {
            let tail = |k: usize| {
                let q = (nul[k].0 as f64 + 1.0) / (nul[k].1 as f64 + 2.0);
                binomial_tail_bound(obs[k].0, obs[k].1, q)
            };
            fisher2(tail(0), tail(1))
        };
        let detail = LinkDetail::Packet {
            delay_bound_ns: combos[f].1,
            backward_delay_bound_ns: combos[b].1,
            events: n,
            matched,
        };
        if best.as_ref().is_none_or(|x| pval < x.1) {
            best = Some((matched as f64 / n as f64, pval, detail));
        }
    }
    // Bonferroni over every choice looked at, judged or not.
    best.map(|(s, pv, d)| {
        let pv = (pv * choices.len() as f64).clamp(PROBABILITY_FLOOR, 1.0);
        (s, pv, d)
    })
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

    /// The inbound's and the outbound's timelines from their four directions.
    fn timelines(
        u_orig: Vec<i64>,
        u_resp: Vec<i64>,
        d_orig: Vec<i64>,
        d_resp: Vec<i64>,
    ) -> (Timeline, Timeline) {
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

    fn pair(max_delay: i64) -> (Timeline, Timeline) {
        let u_orig = typing(7, 0, 40);
        let d_orig = relay(&u_orig, 3, max_delay);
        let d_resp = echo(&d_orig, 20 * MS);
        let u_resp = relay(&d_resp, 5, max_delay);
        timelines(u_orig, u_resp, d_orig, d_resp)
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
            assert!(pv >= PROBABILITY_FLOOR);
        }
    }

    #[test]
    fn a_relay_that_delays_one_direction_is_judged_with_a_delay_bound_per_direction() {
        // A short session (5 bursts) relayed with up to 300 ms of delay and chaff on
        // the forward direction, answered promptly backward: one Δ for both directions
        // must take the loose one and lose the tight direction's evidence; split bounds
        // keep it.
        let u_orig = typing(21, 0, 5);
        let mut d_orig = relay(&u_orig, 8, 300 * MS);
        let d_real = d_orig.clone();
        // Chaff: one extra segment per two real ones, up to 3 s later.
        let mut x = 77u64;
        for &t in d_real.iter().step_by(2) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            d_orig.push(t + ((x >> 33) as i64 % 3000) * MS);
        }
        d_orig.sort_unstable();
        let d_resp = echo(&d_real, 20 * MS);
        let u_resp = relay(&d_resp, 9, 5 * MS);
        let (u, d) = timelines(u_orig, u_resp, d_orig, d_resp);
        // Without the 10 ms bound, which would let "both directions at 10 ms" carry the
        // backward direction's evidence alone.
        let judge = |split_delays| {
            let p = PacketParams {
                split_delays,
                delays_ns: DEFAULT_DELAYS_NS[1..].to_vec(),
                ..PacketParams::default()
            };
            counting(&u, &d, lifetime(&d), &p).map_or(1.0, |j| j.1)
        };
        let (joint, split) = (judge(false), judge(true));
        assert!(
            split < joint / 10.0,
            "split {split}, one delay bound {joint}"
        );
    }

    #[test]
    fn a_relay_that_forwards_at_once_is_judged_at_the_tightest_bound() {
        // A short session (4 bursts) through a relay that forwards within 2 ms: at a
        // 10 ms bound a chance match is far rarer than at 100 ms, so the same few
        // bursts say much more (here 1e-9, the floor, against about 0.01).
        // The outbound also carries other segments, about six a second each way
        // (another channel of the same connection, keep-alives), so chance matches at
        // 100 ms are common.
        let u_orig = typing(33, 0, 4);
        let end = *u_orig.last().unwrap() + 2_000 * MS;
        let background = |seed: u64| {
            let mut x = seed;
            let mut t = 0;
            let mut out = Vec::new();
            while t < end {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                t += (20 + (x >> 33) as i64 % 300) * MS;
                out.push(t);
            }
            out
        };
        let d_real = relay(&u_orig, 4, 2 * MS);
        let d_resp_real = echo(&d_real, 20 * MS);
        let u_resp = relay(&d_resp_real, 6, 2 * MS);
        let mut d_orig = [d_real, background(11)].concat();
        let mut d_resp = [d_resp_real, background(12)].concat();
        d_orig.sort_unstable();
        d_resp.sort_unstable();
        let (u, d) = timelines(u_orig, u_resp, d_orig, d_resp);
        let judge = |delays_ns: Vec<i64>| {
            let p = PacketParams {
                delays_ns,
                ..PacketParams::default()
            };
            counting(&u, &d, lifetime(&d), &p).unwrap()
        };
        let tight = judge(DEFAULT_DELAYS_NS.to_vec());
        let loose = judge(DEFAULT_DELAYS_NS[1..].to_vec());
        assert!(
            tight.1 < loose.1 / 10.0,
            "with 10 ms {tight:?}, without {loose:?}"
        );
        match tight.2 {
            LinkDetail::Packet {
                delay_bound_ns,
                backward_delay_bound_ns,
                ..
            } => assert_eq!(
                (delay_bound_ns, backward_delay_bound_ns),
                (10 * MS, 10 * MS)
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn delay_bounds_follow_the_grid_up_to_the_largest_delay() {
        let s = 1_000 * MS;
        assert_eq!(delay_bounds(2 * s), DEFAULT_DELAYS_NS.to_vec());
        assert_eq!(
            delay_bounds(s / 2),
            vec![10 * MS, 100 * MS, 300 * MS, 500 * MS]
        );
        assert_eq!(delay_bounds(10 * MS), vec![10 * MS]);
        assert_eq!(delay_bounds(5 * MS), vec![5 * MS]);
        // Doubling stops at the largest delay, however large (no overflow).
        assert_eq!(delay_bounds(i64::MAX).last(), Some(&i64::MAX));
        assert_eq!(
            delay_bounds(5 * s),
            vec![10 * MS, 100 * MS, 300 * MS, s, 2 * s, 4 * s, 5 * s]
        );
    }

    #[test]
    fn an_outbound_may_end_up_to_the_largest_delay_bound_after_its_inbound() {
        // A relay holding data up to Δ flushes it after the inbound closed.
        let c = |o: &str, r: &str, start_s: f64, end_s: f64| {
            crate::testing::record(o, r, start_s, end_s, None)
        };
        let p = PacketParams::default();
        let ends_after = |late: f64| {
            let conns = [
                c("10.0.0.1", "10.0.0.2", 0.0, 30.0),
                c("10.0.0.2", "10.0.0.3", 0.2, 30.0 + late),
            ];
            candidate(&conns, 0, 1, &p)
        };
        assert!(ends_after(0.5));
        assert!(ends_after(2.5), "1 s tolerance + 2 s largest delay bound");
        assert!(!ends_after(3.5));
        let short = PacketParams {
            delays_ns: vec![100_000_000],
            ..PacketParams::default()
        };
        let conns = [
            c("10.0.0.1", "10.0.0.2", 0.0, 30.0),
            c("10.0.0.2", "10.0.0.3", 0.2, 32.5),
        ];
        assert!(!candidate(&conns, 0, 1, &short));
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
    fn lone_packets_are_no_bursts() {
        // Three lone packets 0.6 s apart, then a burst of three: one burst, matched
        // when its packets have counterparts, whatever the lone packets found.
        let times = [0, 600 * MS, 1_200 * MS, 2_000 * MS, 2_100 * MS, 2_200 * MS];
        let gap = BURST_GAP_NS;
        let all_found: Vec<i64> = times.iter().map(|t| t + MS).collect();
        let burst_missed: Vec<i64> = times
            .iter()
            .map(|&t| if t < 2_000 * MS { t + MS } else { i64::MAX })
            .collect();
        let count = |near: &[i64]| count_bursts(&times, near, Counterpart::After, gap, 10 * MS);
        assert_eq!(count(&all_found), (1, 1));
        assert_eq!(count(&burst_missed), (0, 1));
        // Two packets make a burst.
        assert_eq!(
            count_bursts(
                &times[..2],
                &[MS, 601 * MS],
                Counterpart::After,
                700 * MS,
                10 * MS
            ),
            (1, 1)
        );
    }

    /// Every event's window test read off its one neighbour ([`neighbours`]) says what
    /// a search of the whole target list for a time inside `[e − before, e + after]`
    /// says, for both kinds of window, every Δ, and targets denser and sparser than the
    /// events — so one merge per shift can serve every Δ.
    #[test]
    fn one_neighbour_decides_every_window() {
        let skew = 5 * MS;
        for seed in 1..40u64 {
            let events = typing(seed, 0, 6);
            let mut target = typing(seed * 7919, 30 * MS, 3 + (seed as usize % 9));
            target.extend(typing(seed * 104_729, 10 * MS, 2));
            target.sort_unstable();
            for kind in [Counterpart::After, Counterpart::Before] {
                let mut near = Vec::new();
                neighbours(&events, &target, kind, skew, &mut near);
                for delta in [10 * MS, 100 * MS, 300 * MS, 2000 * MS] {
                    let (before, after) = match kind {
                        Counterpart::After => (skew, delta),
                        Counterpart::Before => (delta, skew),
                    };
                    for (&e, &n) in events.iter().zip(&near) {
                        let direct = target.iter().any(|&t| e - before <= t && t <= e + after);
                        let read = match kind {
                            Counterpart::After => n <= e + delta,
                            Counterpart::Before => n >= e - delta,
                        };
                        assert_eq!(direct, read, "seed {seed} {kind:?} delta {delta} e {e}");
                    }
                }
            }
        }
    }

    #[test]
    fn shifting_is_a_rotation_of_the_sorted_times() {
        let times: Vec<i64> = vec![5, 10, 11, 40, 99, 100, 150, 199, 250];
        for delta in [1, 37, 100, 149] {
            let mut want: Vec<i64> = times
                .iter()
                .filter(|&&t| (10..210).contains(&t))
                .map(|&t| 10 + (t - 10 + delta).rem_euclid(200))
                .collect();
            want.sort_unstable();
            assert_eq!(shifted(&times, 10, 200, delta), want, "delta {delta}");
        }
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
