//! Stitching flow records that an exporter split by its active timeout.
//!
//! NetFlow/IPFIX exporters end a long flow's record every *active timeout* (often 60 s
//! to 30 min) and start a new one for the same 5-tuple, so one SSH session becomes
//! many records. Relay matching compares whole sessions, so consecutive records of one
//! 5-tuple whose gap (next start − previous end) is at most [`Stitcher::max_gap_ns`]
//! are merged back into one connection: counters summed, start the earliest, end the
//! latest. The merged connection keeps the provenance (`record`) of its first record;
//! how many records were merged is reported in [`crate::ReadSummary::merged`].

use std::collections::HashMap;
use std::net::IpAddr;

use relaytrace_model::{Conn, Event, PacketTimeline, Proto, Rejection};

use crate::Sink;

/// Default largest gap between a record's end and the next record's start that still
/// counts as the same flow: exporters start the next record with the next packet, so
/// a split shows a gap of at most one inter-packet time; 1 s keeps two distinct
/// sessions that reuse a 5-tuple apart in practice.
pub const DEFAULT_MAX_GAP_NS: i64 = 1_000_000_000;

/// Open flows kept at most; beyond it, the flows that ended longest ago are emitted.
/// Bounds memory on huge exports (one entry is a few hundred bytes).
const MAX_PENDING: usize = 1 << 16;

type Key = (Proto, IpAddr, u16, IpAddr, u16);

/// A [`Sink`] adaptor that merges split flow records before passing them on.
pub struct Stitcher<'a> {
    inner: &'a mut dyn Sink,
    pending: HashMap<Key, Conn>,
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
            pending: HashMap::new(),
            max_gap_ns: DEFAULT_MAX_GAP_NS,
            merged: 0,
        }
    }

    /// Emits every pending flow, ordered by start time then record, so output is
    /// deterministic whatever the hash map's order.
    pub fn finish(mut self) -> std::io::Result<u64> {
        let mut rest: Vec<Conn> = self.pending.drain().map(|(_, c)| c).collect();
        rest.sort_by_key(|c| (c.start_ns, c.record));
        for c in rest {
            self.inner.conn(c)?;
        }
        Ok(self.merged)
    }

    fn evict_oldest_half(&mut self) -> std::io::Result<()> {
        let mut ends: Vec<i64> = self.pending.values().map(Conn::end_ns).collect();
        ends.sort_unstable();
        let cutoff = ends[ends.len() / 2];
        let keys: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, c)| c.end_ns() <= cutoff)
            .map(|(k, _)| *k)
            .collect();
        let mut out: Vec<Conn> = keys.iter().filter_map(|k| self.pending.remove(k)).collect();
        out.sort_by_key(|c| (c.start_ns, c.record));
        for c in out {
            self.inner.conn(c)?;
        }
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
        let key = (
            conn.proto,
            conn.orig_h,
            conn.orig_p,
            conn.resp_h,
            conn.resp_p,
        );
        if let Some(prev) = self.pending.get_mut(&key) {
            let gap = conn.start_ns - prev.end_ns();
            if conn.start_ns >= prev.start_ns && gap <= self.max_gap_ns {
                merge(prev, &conn);
                self.merged += 1;
                return Ok(());
            }
            let done = std::mem::replace(prev, conn);
            return self.inner.conn(done);
        }
        if self.pending.len() >= MAX_PENDING {
            self.evict_oldest_half()?;
        }
        self.pending.insert(key, conn);
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
                (0, Some(130), Some(350), Some(3), 0),
                (1, Some(1), Some(1), Some(1), 192),
                (500, Some(5), Some(7), Some(1), 144),
            ]
        );
    }
}
