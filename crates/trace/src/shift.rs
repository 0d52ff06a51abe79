//! The time-shift null of flow mode: the offsets, how they move a relay's outbound
//! connections, and when enough of them have been tried.
//!
//! One relay R is priced against its own background: all of R's outbound connections are
//! moved by an offset δ — circularly inside R's observation window, so the density of
//! sessions stays what it was — and scored against R's unmoved inbound ones. Shared by
//! single links ([`crate::flow`]) and repeated sessions ([`crate::repeated`]).
//!
//! # Order of the offsets
//! The `K` offsets are spread over `(min_shift, span − min_shift)` by the golden-ratio
//! sequence `frac(0.5 + k·φ⁻¹)` (a low-discrepancy sequence): every prefix is itself
//! spread evenly over the window, so stopping early (below) still samples all of it, and
//! the whole set is as even as `K` equal cells. Deterministic: same case, same answer.
//!
//! # Stopping early (Besag and Clifford 1991)
//! Most candidates at a busy host are chance pairs whose probability is far above any
//! threshold a user asks for: a thousand shifts to say "about 0.4" is wasted work. Each
//! value is a sequential Monte Carlo p-value ([`Sequential`]): once `h` =
//! [`EXCEEDANCES`] shifts have matched as well as the observed pair after `L` shifts,
//! the value is `h / L`; if that never happens in `K` shifts it is the usual
//! `(g + 1)/(K + 1)`. Besag and Clifford (Biometrika 78, 1991) show this is a valid
//! p-value; it loses precision only where precision does not matter (large values). A
//! host stops as soon as every one of its links has stopped.
//!
//! # Cost
//! The outbound connections are sorted once; a circular shift of a sorted list is a
//! rotation of it (the part that wraps past the window's end moves to the front, order
//! unchanged), so each offset costs one linear copy, not a sort.

use std::net::IpAddr;

use crate::conn::FlowConn;

/// An outbound connection's byte counts, originator then responder direction.
pub(crate) type Bytes = (Option<u64>, Option<u64>);

/// One outbound connection as the null's inner loop reads it: packed, so that scoring a
/// shifted pair touches one small record instead of the connection (`bench/trace`'s flow
/// throughput: reading whole connections there was a quarter of the run).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Moved {
    /// Start after the shift, ns.
    pub start: i64,
    /// End after the shift, ns.
    pub end: i64,
    /// Index of the connection in the connection slice (its byte counts are read there,
    /// when the floats below let a pair through: this record is copied at every
    /// shift, and 40 bytes copy faster than 80).
    pub conn: u32,
    /// The responder, as a host number given by the caller of [`Shifts::new`] (flow mode
    /// numbers every host once, so that "is this the inbound's own originator?" compares
    /// two integers).
    pub peer: u32,
    /// The byte counts as floats ([`float_bytes`]).
    pub float_bytes: [f64; 2],
}

/// Each byte count as a float, NaN where it is unknown: the volume gate's cheap
/// pre-check reads these (converted once per connection, not once per pair and shift).
pub(crate) fn float_bytes(b: Bytes) -> [f64; 2] {
    let f = |x: Option<u64>| x.map_or(f64::NAN, |x| x as f64);
    [f(b.0), f(b.1)]
}

/// The `h` of the sequential p-values: stop a value after this many shifts matched as
/// well as the observed pair. 10 keeps the relative error of a stopped value near 1/√10
/// (about 30 %), which is precision enough for values this large: a value near the
/// usual thresholds (0.01 and below) needs a thousand shifts and does not stop early.
pub const EXCEEDANCES: usize = 10;

/// The golden ratio's inverse, the step of the low-discrepancy sequence.
const PHI_INV: f64 = 0.618_033_988_749_894_9;

/// The offsets of the time-shift null at one relay, and R's outbound connections sorted
/// once so that each offset is a rotation.
pub(crate) struct Shifts {
    /// First instant of R's window, ns.
    pub window_start: i64,
    /// Window length plus tolerance, ns.
    pub span: i64,
    /// The `K` offsets, ns, in low-discrepancy order (empty when the window is too short
    /// for any).
    pub deltas: Vec<i64>,
    /// R's outbound connections, unshifted (start relative to `window_start`), sorted.
    sorted: Vec<Moved>,
}

impl Shifts {
    /// The null for a relay whose connections span `window_start..window_end`, with
    /// `outbound` its outbound connections.
    pub fn new(
        conns: &[FlowConn],
        outbound: &[usize],
        (window_start, window_end): (i64, i64),
        tolerance: i64,
        min_shift: i64,
        k: usize,
        peer: impl Fn(IpAddr) -> u32,
    ) -> Self {
        let span = window_end - window_start + tolerance;
        let usable = span - 2 * min_shift;
        let deltas = if usable > 0 {
            (0..k)
                .map(|kk| {
                    let u = (0.5 + kk as f64 * PHI_INV).fract();
                    min_shift + ((usable as f64) * u).round() as i64
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut sorted: Vec<Moved> = outbound
            .iter()
            .map(|&o| {
                let c = &conns[o];
                Moved {
                    start: c.start_ns - window_start,
                    end: c.end_ns - window_start,
                    // Flow mode refuses 2³¹ connections or more (`TooManyConnections`).
                    conn: o as u32,
                    peer: peer(c.resp_h),
                    float_bytes: float_bytes((c.orig_bytes, c.resp_bytes)),
                }
            })
            .collect();
        sorted.sort_unstable_by_key(|m| (m.start, m.end, m.conn));
        Shifts {
            window_start,
            span,
            deltas,
            sorted,
        }
    }

    /// The outbound connections moved by the `k`-th offset, sorted by start (then end,
    /// then index).
    pub fn apply(&self, k: usize, out: &mut Vec<Moved>) {
        let delta = self.deltas[k];
        out.clear();
        // Offsets that reach the window's end wrap to its start: they come first.
        let wrap = self.sorted.partition_point(|x| x.start + delta < self.span);
        let moved = |m: &Moved, by: i64| Moved {
            start: m.start + by,
            end: m.end + by,
            ..*m
        };
        let ws = self.window_start;
        out.extend(
            self.sorted[wrap..]
                .iter()
                .map(|m| moved(m, ws + delta - self.span)),
        );
        out.extend(self.sorted[..wrap].iter().map(|m| moved(m, ws + delta)));
    }
}

/// One sequential Monte Carlo p-value (Besag–Clifford, see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sequential {
    /// Shifts that matched at least as well as the observed value.
    exceed: usize,
    /// Shifts tried when the `h`-th exceedance came, if it has.
    stopped_at: Option<usize>,
}

impl Sequential {
    /// Records shift number `tried` (1-based), `hit` when it matched at least as well.
    pub fn record(&mut self, tried: usize, hit: bool) {
        if self.stopped_at.is_none() && hit {
            self.exceed += 1;
            if self.exceed == EXCEEDANCES {
                self.stopped_at = Some(tried);
            }
        }
    }

    /// Whether the value is settled.
    pub fn stopped(&self) -> bool {
        self.stopped_at.is_some()
    }

    /// The p-value after `tried` shifts in all (1 when there were none).
    pub fn value(&self, tried: usize) -> f64 {
        match self.stopped_at {
            Some(l) => EXCEEDANCES as f64 / l as f64,
            None if tried == 0 => 1.0,
            None => (self.exceed as f64 + 1.0) / (tried as f64 + 1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(start_s: i64, dur_s: i64) -> FlowConn {
        let (start, end) = (start_s as f64, (start_s + dur_s) as f64);
        crate::testing::record("192.0.2.1", "192.0.2.2", start, end, None)
    }

    /// The rotation gives exactly what moving each connection and sorting gives.
    #[test]
    fn rotation_equals_shift_and_sort() {
        let conns: Vec<FlowConn> = [(0, 5), (7, 1), (7, 3), (30, 60), (99, 1), (50, 2)]
            .iter()
            .map(|&(s, d)| conn(s, d))
            .collect();
        let all: Vec<usize> = (0..conns.len()).collect();
        let sh = Shifts::new(
            &conns,
            &all,
            (0, 100_000_000_000),
            1_000_000_000,
            10_000_000_000,
            50,
            |_| 0,
        );
        let mut got = Vec::new();
        for k in 0..sh.deltas.len() {
            sh.apply(k, &mut got);
            let mut want: Vec<(i64, i64, usize)> = all
                .iter()
                .map(|&o| {
                    let c = &conns[o];
                    let s = (c.start_ns + sh.deltas[k]).rem_euclid(sh.span);
                    (s, s + (c.end_ns - c.start_ns), o)
                })
                .collect();
            want.sort_unstable();
            let got: Vec<(i64, i64, usize)> = got
                .iter()
                .map(|m| (m.start, m.end, m.conn as usize))
                .collect();
            assert_eq!(got, want, "offset {k}");
        }
    }

    /// Every prefix of the offsets covers the window evenly, and all stay inside
    /// (min_shift, span − min_shift).
    #[test]
    fn offsets_are_spread_in_every_prefix() {
        let sh = Shifts::new(&[], &[], (0, 1_000), 0, 100, 1000, |_| 0);
        assert!(sh.deltas.iter().all(|&d| (100..=900).contains(&d)));
        for prefix in [20usize, 100, 1000] {
            let mut cells = [0usize; 4];
            for &d in &sh.deltas[..prefix] {
                cells[(((d - 100) * 4) / 801) as usize] += 1;
            }
            let (lo, hi) = (cells.iter().min().unwrap(), cells.iter().max().unwrap());
            assert!(hi - lo <= prefix / 10 + 1, "prefix {prefix}: {cells:?}");
        }
    }

    #[test]
    fn sequential_values() {
        let mut s = Sequential::default();
        for t in 1..=100 {
            s.record(t, t % 2 == 0);
        }
        assert!(s.stopped());
        assert_eq!(s.value(100), 20.0 / 40.0);
        let mut never = Sequential::default();
        for t in 1..=999 {
            never.record(t, false);
        }
        assert!(!never.stopped());
        assert_eq!(never.value(999), 1.0 / 1000.0);
        assert_eq!(Sequential::default().value(0), 1.0);
    }
}
