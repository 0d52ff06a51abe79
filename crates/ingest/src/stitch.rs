//! Stitching flow records that an exporter split by its active timeout.
//!
//! NetFlow/IPFIX exporters end a long flow's record every *active timeout* (often 60 s
//! to 30 min) and start a new one for the same 5-tuple, so one SSH session becomes
//! many records. Relay matching compares whole sessions, so consecutive records of one
//! 5-tuple whose gap (next start − previous end) is at most [`Stitcher::max_gap_ns`]
//! are merged back into one connection: counters summed, start the earliest, end the
//! latest. The merged connection keeps the provenance (`record`) of its first record;
//! how many records were merged is reported in [`crate::ReadSummary::merged`].
//!
//! Pending flows are held compactly (a packed 5-tuple key and a `Pending`, not a whole
//! `Conn`) and indexed by slot number: the stitcher reads and writes every record of a
//! NetFlow input, so its memory traffic is a large part of that ingest's time.

use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::HashTable;
use relaytrace_model::{Conn, Event, PacketTimeline, Proto, Rejection};
use rustc_hash::FxBuildHasher;

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

impl Key {
    /// The 5-tuple back as the `Conn` fields it was made of (the inverse of
    /// [`Key::of`]): a pending flow keeps only its key, not these fields twice.
    fn five_tuple(&self) -> (Proto, IpAddr, u16, IpAddr, u16) {
        fn addr(bits: u128, v6: bool) -> IpAddr {
            if v6 {
                IpAddr::V6(bits.into())
            } else {
                // An IPv4 key holds 32 bits (see `Key::of`).
                IpAddr::V4((bits as u32).into())
            }
        }
        let proto = match self.rest >> 48 {
            1 => Proto::Tcp,
            2 => Proto::Udp,
            3 => Proto::Icmp,
            _ => Proto::Unknown,
        };
        (
            proto,
            addr(self.orig, self.rest >> 41 & 1 == 1),
            (self.rest >> 16) as u16,
            addr(self.resp, self.rest >> 40 & 1 == 1),
            self.rest as u16,
        )
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

/// A pending flow without its 5-tuple, which is its slot's [`Key`]: what a merge
/// changes and what the flow needs to become a `Conn` again. 104 bytes where a `Conn`
/// takes 288 (`size_of`, 2026-11-30), and every pending flow is written once and read
/// once from memory that is no longer in cache: with whole `Conn`s in the generations,
/// the stitcher's own code and the copies in and out of it (`memmove`) were 15 % and
/// 14 % of a NetFlow ingest's samples (perf, 6 M generated v9 records, 2026-11-30).
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    start_ns: i64,
    /// `Conn::duration_ns`; `None` is kept apart from 0.
    duration_ns: Option<i64>,
    /// `orig_bytes`, `resp_bytes`, `orig_pkts`, `resp_pkts`, `orig_ip_bytes`,
    /// `resp_ip_bytes`, `missed_bytes`: a value when bit i of `present` is set.
    counters: [u64; COUNTERS],
    present: u8,
    ip_proto: Option<u8>,
    record: u64,
    /// The text fields, boxed: flow records (the stitcher's input) have none.
    text: Option<Box<TextFields>>,
}

/// `uid`, `service`, `conn_state`, `history` of a pending flow that has any.
#[derive(Debug, Clone, PartialEq)]
struct TextFields([Option<String>; 4]);

/// The counters [`Pending::merge`] adds up (all but `missed_bytes`, the last).
const SUMMED_COUNTERS: usize = 6;

/// Every counter a pending flow keeps: the summed ones and `missed_bytes`.
const COUNTERS: usize = SUMMED_COUNTERS + 1;

/// A connection's counters that a merge adds up, in [`Pending`]'s counter order.
fn summed_counters(c: &Conn) -> [Option<u64>; SUMMED_COUNTERS] {
    [
        c.orig_bytes,
        c.resp_bytes,
        c.orig_pkts,
        c.resp_pkts,
        c.orig_ip_bytes,
        c.resp_ip_bytes,
    ]
}

impl Pending {
    fn of(c: Conn) -> Pending {
        let values = summed_counters(&c).into_iter().chain([c.missed_bytes]);
        let mut counters = [0u64; COUNTERS];
        let mut present = 0u8;
        for (i, v) in values.enumerate() {
            if let Some(v) = v {
                counters[i] = v;
                present |= 1 << i;
            }
        }
        let strings = [c.uid, c.service, c.conn_state, c.history];
        let text = strings
            .iter()
            .any(Option::is_some)
            .then(|| Box::new(TextFields(strings)));
        Pending {
            start_ns: c.start_ns,
            duration_ns: c.duration_ns,
            counters,
            present,
            ip_proto: c.ip_proto,
            record: c.record,
            text,
        }
    }

    fn end_ns(&self) -> i64 {
        self.start_ns.saturating_add(self.duration_ns.unwrap_or(0))
    }

    fn counter(&self, i: usize) -> Option<u64> {
        (self.present & (1 << i) != 0).then_some(self.counters[i])
    }

    /// The flow as a connection again, its 5-tuple from `key`.
    fn into_conn(self, key: &Key) -> Conn {
        let (proto, orig_h, orig_p, resp_h, resp_p) = key.five_tuple();
        let mut c = Conn::new(proto, orig_h, orig_p, resp_h, resp_p, self.start_ns);
        c.duration_ns = self.duration_ns;
        c.orig_bytes = self.counter(0);
        c.resp_bytes = self.counter(1);
        c.orig_pkts = self.counter(2);
        c.resp_pkts = self.counter(3);
        c.orig_ip_bytes = self.counter(4);
        c.resp_ip_bytes = self.counter(5);
        c.missed_bytes = self.counter(SUMMED_COUNTERS);
        c.ip_proto = self.ip_proto;
        c.record = self.record;
        if let Some(text) = self.text {
            let [uid, service, conn_state, history] = text.0;
            (c.uid, c.service, c.conn_state, c.history) = (uid, service, conn_state, history);
        }
        c
    }

    /// Whether `next`'s counters can be added to this flow's without passing
    /// [`relaytrace_model::MAX_COUNT`], the largest count the store keeps: a stitched
    /// flow must not hold a sum the tables would clamp. Records whose sum would pass it
    /// stay apart (no real flow comes near it; readers reject a single record above it).
    fn can_absorb(&self, next: &Conn) -> bool {
        let theirs = summed_counters(next);
        theirs.into_iter().enumerate().all(|(i, v)| {
            v.is_none_or(|v| {
                self.counter(i)
                    .unwrap_or(0)
                    .checked_add(v)
                    .is_some_and(|sum| sum <= relaytrace_model::MAX_COUNT)
            })
        })
    }

    /// Merges `next` (same 5-tuple, later) into this flow: counters summed (a counter
    /// either side has), start the earliest, end the latest.
    fn merge(&mut self, next: &Conn) {
        let end = self.end_ns().max(next.end_ns());
        self.start_ns = self.start_ns.min(next.start_ns);
        self.duration_ns = Some(end - self.start_ns);
        let theirs = summed_counters(next);
        for (i, v) in theirs.into_iter().enumerate() {
            if let Some(v) = v {
                self.counters[i] = self.counter(i).unwrap_or(0).saturating_add(v);
                self.present |= 1 << i;
            }
        }
    }
}

/// One generation of pending flows, in arrival order (so emission order follows the
/// input and is deterministic without sorting).
///
/// The index holds slot numbers only (4 bytes each) and finds keys in `keys`: a table
/// of 64 Ki slot numbers stays in the CPU's L2 cache where one of `(Key, usize)`
/// entries (56 bytes each) did not, and most probes (a record of a new flow) end on the
/// table's control bytes without reading a key at all.
#[derive(Default)]
struct Generation {
    flows: Vec<Option<Pending>>,
    /// The key of each slot, same order as `flows`.
    keys: Vec<Key>,
    index: HashTable<u32>,
    max_end_ns: Option<i64>,
}

/// The hash of a key, computed once per record and used for both generations.
fn hash_of(key: &Key) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl Generation {
    /// The slot of a pending flow with this key.
    fn find(&self, key: &Key, hash: u64) -> Option<usize> {
        let keys = &self.keys;
        self.index
            .find(hash, |&i| keys[i as usize] == *key)
            .map(|&i| i as usize)
    }

    /// Takes the pending flow with this key out of the generation.
    fn remove(&mut self, key: &Key, hash: u64) -> Option<Pending> {
        let keys = &self.keys;
        let (i, _) = self
            .index
            .find_entry(hash, |&i| keys[i as usize] == *key)
            .ok()?
            .remove();
        self.flows[i as usize].take()
    }

    fn insert(&mut self, key: Key, hash: u64, conn: Conn) {
        self.note_end(conn.end_ns());
        let conn = Pending::of(conn);
        let slot = u32::try_from(self.flows.len()).expect("a generation holds at most 2^16 slots");
        self.keys.push(key);
        self.flows.push(Some(conn));
        let keys = &self.keys;
        self.index
            .insert_unique(hash, slot, |&i| hash_of(&keys[i as usize]));
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
        let pending = generation.keys.drain(..).zip(generation.flows.drain(..));
        for (key, flow) in pending {
            if let Some(flow) = flow {
                inner.conn(flow.into_conn(&key))?;
            }
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

impl Sink for Stitcher<'_> {
    fn conn(&mut self, conn: Conn) -> std::io::Result<()> {
        let key = Key::of(&conn);
        let hash = hash_of(&key);
        if self.stale(&self.current, conn.start_ns) {
            // Everything pending is past the horizon.
            self.rotate()?;
            self.rotate()?;
        } else if self.stale(&self.old, conn.start_ns) {
            Self::emit(self.inner, &mut self.old)?;
        }
        let max_gap_ns = self.max_gap_ns;
        let found = match self.current.find(&key, hash) {
            Some(slot) => Some((&mut self.current, slot)),
            None => self.old.find(&key, hash).map(|slot| (&mut self.old, slot)),
        };
        if let Some((generation, slot)) = found {
            if let Some(prev) = generation.flows[slot].as_mut() {
                let gap = conn.start_ns - prev.end_ns();
                if conn.start_ns >= prev.start_ns && gap <= max_gap_ns && prev.can_absorb(&conn) {
                    prev.merge(&conn);
                    let end = prev.end_ns();
                    generation.note_end(end);
                    self.merged += 1;
                    return Ok(());
                }
            }
            // Same 5-tuple, a new session: the earlier one is complete.
            if let Some(done) = generation.remove(&key, hash) {
                self.inner.conn(done.into_conn(&key))?;
            }
        }
        if self.current.len() >= GENERATION_FLOWS {
            self.rotate()?;
        }
        self.current.insert(key, hash, conn);
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

    /// A pending flow becomes the same connection again, every field, with or without
    /// text fields, IPv4 or IPv6, each counter present or not.
    #[test]
    fn a_pending_flow_is_the_connection_it_was_made_of() {
        let mut full = flow(5, 7, 1234, 40000, 77);
        full.uid = Some("C1".into());
        full.service = Some("ssh".into());
        full.conn_state = Some("SF".into());
        full.history = Some("ShAD".into());
        full.orig_bytes = Some(1);
        full.resp_bytes = Some(2);
        full.orig_pkts = Some(3);
        full.resp_pkts = Some(4);
        full.resp_ip_bytes = Some(u64::MAX);
        full.missed_bytes = Some(0);
        full.ip_proto = Some(6);
        let mut v6 = flow(1, 1, 1, 1, 1);
        v6.proto = Proto::Icmp;
        v6.orig_h = "2001:db8::1".parse().unwrap();
        // IPv4-compatible (not mapped: `Conn::new` makes mapped ones IPv4): stays IPv6.
        v6.resp_h = "::192.0.2.9".parse().unwrap();
        v6.duration_ns = None;
        v6.orig_ip_bytes = None;
        let mut other = flow(2, 2, 2, 65535, 2);
        other.proto = Proto::Unknown;
        other.resp_p = 0;
        other.ip_proto = Some(47);
        let mut udp = flow(3, 0, 0, 53, 3);
        udp.proto = Proto::Udp;
        udp.orig_h = "0.0.0.0".parse().unwrap();
        udp.resp_h = "255.255.255.255".parse().unwrap();
        for c in [full, v6, other, udp] {
            let key = Key::of(&c);
            assert_eq!(Pending::of(c.clone()).into_conn(&key), c);
        }
    }

    /// A merge sums a counter that either record has (a missing one counts as 0), keeps
    /// one that neither has missing, and leaves `missed_bytes` as the first record's.
    #[test]
    fn a_merge_sums_the_counters_either_record_has() {
        let values = [None, Some(5u64), Some(u64::MAX)];
        for a in values {
            for b in values {
                let mut first = flow(0, 60, 1, 7000, 0);
                let mut next = flow(60, 10, 1, 7000, 48);
                (first.resp_pkts, next.resp_pkts) = (a, b);
                (first.missed_bytes, next.missed_bytes) = (a, b);
                let key = Key::of(&first);
                let mut p = Pending::of(first);
                p.merge(&next);
                let got = p.into_conn(&key);
                let want = match (a, b) {
                    (None, None) => None,
                    (x, y) => Some(x.unwrap_or(0).saturating_add(y.unwrap_or(0))),
                };
                assert_eq!(got.resp_pkts, want, "{a:?} + {b:?}");
                assert_eq!(got.missed_bytes, a);
                assert_eq!(got.orig_ip_bytes, Some(2));
                assert_eq!((got.start_ns, got.duration_ns), (0, Some(70_000_000_000)));
            }
        }
    }

    /// Two pieces of one flow whose byte counts add up past what the store keeps are
    /// not stitched: both come out as they were read, nothing clamped; pieces that fit
    /// still merge.
    #[test]
    fn pieces_whose_sum_the_store_cannot_keep_stay_apart() {
        let half = relaytrace_model::MAX_COUNT / 2 + 1;
        let mut sink = VecSink::default();
        let mut st = Stitcher::new(&mut sink);
        st.conn(flow(0, 60, half, 7000, 0)).unwrap();
        st.conn(flow(60, 60, half, 7000, 48)).unwrap();
        st.conn(flow(0, 60, half - 1, 7001, 96)).unwrap();
        st.conn(flow(60, 60, half - 1, 7001, 144)).unwrap();
        assert_eq!(st.finish().unwrap(), 1);
        let mut got: Vec<_> = sink
            .conns
            .iter()
            .map(|c| (c.orig_p, c.orig_ip_bytes))
            .collect();
        got.sort();
        let max = relaytrace_model::MAX_COUNT;
        assert_eq!(
            got,
            [
                (7000, Some(half)),
                (7000, Some(half)),
                (7001, Some(max - 1))
            ]
        );
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
