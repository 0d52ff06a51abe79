//! Stitching flow records that an exporter split by its active timeout.
//!
//! NetFlow/IPFIX exporters end a long flow's record every *active timeout* (often 60 s
//! to 30 min) and start a new one for the same 5-tuple, so one SSH session becomes
//! many records. Relay matching compares whole sessions, so consecutive records of one
//! 5-tuple whose gap (next start − previous end) is at most [`Stitcher::max_gap_ns`]
//! are merged back into one connection: counters summed, start the earliest, end the
//! latest. The merged connection keeps the provenance (`record`) of its first record;
//! how many records were merged is reported in [`crate::ReadSummary::merged`].

use std::net::IpAddr;

use relaytrace_model::{Conn, Event, PacketTimeline, Proto, Rejection};
use rustc_hash::FxHashMap;

use crate::Sink;

/// Default largest gap between a record's end and the next record's start that still
/// counts as the same flow: exporters start the next record with the next packet, so
/// a split shows a gap of at most one inter-packet time; 1 s keeps two distinct
/// sessions that reuse a 5-tuple apart in practice.
pub const DEFAULT_MAX_GAP_NS: i64 = 1_000_000_000;

/// Longest active timeout an exporter is assumed to use (Cisco's default and common
/// maximum, 30 min). Exporters send records in expiry order, so once records start
/// this long after everything in the older generation ended, none of it can be
/// continued any more.
pub const ACTIVE_TIMEOUT_HORIZON_NS: i64 = 30 * 60 * 1_000_000_000;

/// Flows per generation. Two generations are held, so memory is bounded by twice
/// this (a few tens of MiB) whatever the input size; a continuation arriving more
/// than two generations after its predecessor is not merged (both parts are kept as
/// separate connections, nothing is lost).
const GENERATION_FLOWS: usize = 1 << 16;

/// A flow's 5-tuple packed into three integers (addresses as 128-bit numbers, with
/// flags telling IPv4 from IPv6; protocol and ports in the third), so that hashing it
/// takes three mixing steps instead of one per field and per address byte. With the
/// tuple `(Proto, IpAddr, u16, IpAddr, u16)` as key the stitcher was 18% of a NetFlow
/// v9 ingest (perf, 2 M generated records, 2026-11-30); this key took that ingest
/// from 1.25 to 1.10 s of user time (best of 3), same tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    orig: u128,
    resp: u128,
    rest: u64,
}

impl Key {
    fn of(c: &Conn) -> Key {
        fn bits(a: IpAddr) -> (u128, u64) {
            match a {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 0),
                IpAddr::V6(v) => (u128::from(v), 1),
            }
        }
        let (orig, orig_v6) = bits(c.orig_h);
        let (resp, resp_v6) = bits(c.resp_h);
        Key {
            orig,
            resp,
            rest: (proto_code(c.proto) << 48)
                | (orig_v6 << 41)
                | (resp_v6 << 40)
                | (u64::from(c.orig_p) << 16)
                | u64::from(c.resp_p),
        }
    }
}

/// A distinct number per protocol, for [`Key`].
fn proto_code(p: Proto) -> u64 {
    match p {
        Proto::Tcp => 1,
        Proto::Udp => 2,
        Proto::Icmp => 3,
        Proto::Unknown => 4,
    }
}

/// One generation of pending flows, in arrival order (so emission order follows the
/// input and is deterministic without sorting).
#[derive(Default)]
struct Generation {
    flows: Vec<Option<Conn>>,
    index: FxHashMap<Key, usize>,
    max_end_ns: Option<i64>,
}

impl Generation {
    fn get_mut(&mut self, key: &Key) -> Option<&mut Conn> {
        let i = *self.index.get(key)?;
        self.flows[i].as_mut()
    }

    fn remove(&mut self, key: &Key) -> Option<Conn> {
        let i = self.index.remove(key)?;
        self.flows[i].take()
    }

    fn insert(&mut self, key: Key, conn: Conn) {
        self.note_end(conn.end_ns());
        self.index.insert(key, self.flows.len());
        self.flows.push(Some(conn));
    }

    fn note_end(&mut self, end: i64) {
        self.max_end_ns = Some(self.max_end_ns.map_or(end, |m| m.max(end)));
    }

    /// Slots used, including those of flows already emitted (a 5-tuple that starts a new
    /// session leaves its old slot empty): bounding slots, not pending flows, is what
    /// bounds memory when 5-tuples repeat.
    fn len(&self) -> usize {
        self.flows.len()
    }
}

/// A [`Sink`] adaptor that merges split flow records before passing them on.
///
/// Pending flows are held in two generations: new flows enter the current one; when
/// it is full, or when records start past [`ACTIVE_TIMEOUT_HORIZON_NS`] after a
/// generation's last end, the old generation is emitted and the current one becomes
/// old. A record is looked up in both: two hash probes per record, no per-flow
/// eviction bookkeeping.
pub struct Stitcher<'a> {
    inner: &'a mut dyn Sink,
    current: Generation,
    old: Generation,
    /// Largest gap still merged, nanoseconds.
    pub max_gap_ns: i64,
    /// Records merged into an earlier one so far.
    pub merged: u64,
}

impl<'a> Stitcher<'a> {
    /// Wraps `inner` with the default gap.
    pub fn new(inner: &'a mut dyn Sink) -> Self {
        Stitcher {
            inner,
            current: Generation::default(),
            old: Generation::default(),
            max_gap_ns: DEFAULT_MAX_GAP_NS,
            merged: 0,
        }
    }

    /// Emits every pending flow (old generation first, each in arrival order).
    pub fn finish(mut self) -> std::io::Result<u64> {
        Self::emit(self.inner, &mut self.old)?;
        Self::emit(self.inner, &mut self.current)?;
        Ok(self.merged)
    }

    /// Emits and empties a generation, keeping its allocations for reuse.
    fn emit(inner: &mut dyn Sink, generation: &mut Generation) -> std::io::Result<()> {
        generation.index.clear();
        generation.max_end_ns = None;
        for c in generation.flows.drain(..).flatten() {
            inner.conn(c)?;
        }
        Ok(())
    }

    /// Whether no flow of `g` can be continued by a record starting at `start_ns`.
    fn stale(&self, g: &Generation, start_ns: i64) -> bool {
        g.max_end_ns.is_some_and(|end| {
            start_ns > end.saturating_add(ACTIVE_TIMEOUT_HORIZON_NS + self.max_gap_ns)
        })
    }

    /// Emits the old generation and makes the current one old.
    fn rotate(&mut self) -> std::io::Result<()> {
        Self::emit(self.inner, &mut self.old)?;
        std::mem::swap(&mut self.old, &mut self.current);
        Ok(())
    }
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0).saturating_add(y.unwrap_or(0))),
    }
}

/// Merges `next` into `into` (same 5-tuple, `next` later).
fn merge(into: &mut Conn, next: &Conn) {
    let end = into.end_ns().max(next.end_ns());
    into.start_ns = into.start_ns.min(next.start_ns);
    into.duration_ns = Some(end - into.start_ns);
    into.orig_bytes = add(into.orig_bytes, next.orig_bytes);
    into.resp_bytes = add(into.resp_bytes, next.resp_bytes);
    into.orig_pkts = add(into.orig_pkts, next.orig_pkts);
    into.resp_pkts = add(into.resp_pkts, next.resp_pkts);
    into.orig_ip_bytes = add(into.orig_ip_bytes, next.orig_ip_bytes);
    into.resp_ip_bytes = add(into.resp_ip_bytes, next.resp_ip_bytes);
}

impl Sink for Stitcher<'_> {
    fn conn(&mut self, conn: Conn) -> std::io::Result<()> {
        let key = Key::of(&conn);
        if self.stale(&self.current, conn.start_ns) {
            // Everything pending is past the horizon.
            self.rotate()?;
            self.rotate()?;
        } else if self.stale(&self.old, conn.start_ns) {
            Self::emit(self.inner, &mut self.old)?;
        }
        let max_gap_ns = self.max_gap_ns;
        let in_current = self.current.index.contains_key(&key);
        let generation = if in_current {
            Some(&mut self.current)
        } else if self.old.index.contains_key(&key) {
            Some(&mut self.old)
        } else {
            None
        };
        if let Some(generation) = generation {
            if let Some(prev) = generation.get_mut(&key) {
                let gap = conn.start_ns - prev.end_ns();
                if conn.start_ns >= prev.start_ns && gap <= max_gap_ns {
                    merge(prev, &conn);
                    let end = prev.end_ns();
                    generation.note_end(end);
                    self.merged += 1;
                    return Ok(());
                }
            }
            // Same 5-tuple, a new session: the earlier one is complete.
            if let Some(done) = generation.remove(&key) {
                self.inner.conn(done)?;
            }
        }
        if self.current.len() >= GENERATION_FLOWS {
            self.rotate()?;
        }
        self.current.insert(key, conn);
        Ok(())
    }
    fn timeline(&mut self, timeline: PacketTimeline) -> std::io::Result<()> {
        self.inner.timeline(timeline)
    }
    fn event(&mut self, event: Event) -> std::io::Result<()> {
        self.inner.event(event)
    }
    fn reject(&mut self, rejection: Rejection) -> std::io::Result<()> {
        self.inner.reject(rejection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VecSink;

    fn flow(start_s: i64, dur_s: i64, bytes: u64, sport: u16, record: u64) -> Conn {
        let mut c = Conn::new(
            Proto::Tcp,
            "192.0.2.1".parse().unwrap(),
            sport,
            "198.51.100.2".parse().unwrap(),
            22,
            start_s * 1_000_000_000,
        );
        c.duration_ns = Some(dur_s * 1_000_000_000);
        c.orig_ip_bytes = Some(bytes);
        c.orig_pkts = Some(1);
        c.record = record;
        c
    }

    #[test]
    fn keys_tell_every_part_of_the_five_tuple_apart() {
        let base = flow(0, 1, 1, 5000, 0);
        let mut v4_mapped = base.clone();
        v4_mapped.orig_h = "::ffff:192.0.2.1".parse().unwrap();
        let mut udp = base.clone();
        udp.proto = Proto::Udp;
        let mut swapped = base.clone();
        (swapped.orig_p, swapped.resp_p) = (base.resp_p, base.orig_p);
        let mut other_resp = base.clone();
        other_resp.resp_h = "198.51.100.3".parse().unwrap();
        let keys: Vec<Key> = [&base, &v4_mapped, &udp, &swapped, &other_resp]
            .into_iter()
            .map(Key::of)
            .collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(Key::of(&base), Key::of(&flow(9, 9, 9, 5000, 9)));
    }

    /// One 5-tuple that starts a new session again and again (NTP between two fixed
    /// ports, say) leaves an emitted slot behind each time: the slots, not only the
    /// pending flows, must stay bounded, and every session must still come out once.
    #[test]
    fn a_repeating_five_tuple_keeps_memory_bounded() {
        let mut sink = VecSink::default();
        let mut st = Stitcher::new(&mut sink);
        let n = 3 * GENERATION_FLOWS as i64;
        for k in 0..n {
            // 64 s apart, 1 s long: never a continuation of the one before.
            st.conn(flow(64 * k, 1, 48, 123, k as u64)).unwrap();
            assert!(st.current.flows.len() <= GENERATION_FLOWS);
            assert!(st.old.flows.len() <= GENERATION_FLOWS);
        }
        assert_eq!(st.finish().unwrap(), 0);
        assert_eq!(sink.conns.len(), n as usize);
    }

    #[test]
    fn merges_active_timeout_splits_only() {
        let mut sink = VecSink::default();
        let mut st = Stitcher::new(&mut sink);
        // One session split at 60 s and 120 s (next record starts right after).
        st.conn(flow(0, 60, 100, 5000, 0)).unwrap();
        st.conn(flow(60, 60, 200, 5000, 48)).unwrap();
        st.conn(flow(120, 10, 50, 5000, 96)).unwrap();
        // Same 5-tuple again much later: a new session.
        st.conn(flow(500, 5, 7, 5000, 144)).unwrap();
        // Another port: separate.
        st.conn(flow(1, 1, 1, 5001, 192)).unwrap();
        assert_eq!(st.finish().unwrap(), 2);
        type Row = (i64, Option<i64>, Option<u64>, Option<u64>, u64);
        let got: Vec<Row> = sink
            .conns
            .iter()
            .map(|c| {
                (
                    c.start_ns / 1_000_000_000,
                    c.duration_ns.map(|d| d / 1_000_000_000),
                    c.orig_ip_bytes,
                    c.orig_pkts,
                    c.record,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                // Emitted in arrival order: the merged session when its 5-tuple
                // started anew, then the pending flows as they came.
                (0, Some(130), Some(350), Some(3), 0),
                (500, Some(5), Some(7), Some(1), 144),
                (1, Some(1), Some(1), Some(1), 192),
            ]
        );
    }

    #[test]
    fn flows_past_the_active_timeout_horizon_are_emitted_early() {
        let mut sink = VecSink::default();
        let mut st = Stitcher::new(&mut sink);
        st.conn(flow(0, 1, 10, 6000, 0)).unwrap();
        st.conn(flow(10, 1, 10, 6001, 48)).unwrap();
        // Two hours later, twice: each time, the generation before can no longer be
        // continued and is emitted.
        st.conn(flow(7200, 1, 10, 6002, 96)).unwrap();
        st.conn(flow(14400, 1, 10, 6003, 144)).unwrap();
        drop(st);
        // 6000 and 6001 went out when 6002 came, 6002 when 6003 came; 6003 is still
        // pending (no finish).
        let early: Vec<u16> = sink.conns.iter().map(|c| c.orig_p).collect();
        assert_eq!(early, vec![6000, 6001, 6002]);
    }
}
