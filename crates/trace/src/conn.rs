//! Connections as trace sees them: rows of the case's `conns` tables, merged across
//! vantages.
//!
//! One TCP session crossing two sensors (the relay's ISP and the victim's edge, say)
//! appears once per sensor. Counting it twice would invent a second session, so
//! [`merge`] folds observations with the same 5-tuple whose starts lie within the
//! clock tolerance into one [`FlowConn`], keeping every row id and vantage as
//! provenance.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use relaytrace_store::columns::{scan_columns, ColumnBatch, TableMeta};
use relaytrace_store::Case;
use serde_json::Value;

use crate::error::TraceError;
use crate::rowid::RowId;

/// One row of a `conns` table: one connection as one vantage saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Row id, unique in the case (`<evidence16>:<record>`).
    pub id: RowId,
    /// Whose sensor saw it (shared: a case has a handful of vantages, see [`Interned`]).
    pub vantage: Arc<str>,
    /// Transport (`tcp`, `udp`, ...), as the store writes it (shared, as `vantage`).
    pub proto: Arc<str>,
    /// Originator address.
    pub orig_h: IpAddr,
    /// Originator port.
    pub orig_p: u16,
    /// Responder address.
    pub resp_h: IpAddr,
    /// Responder port.
    pub resp_p: u16,
    /// First packet, ns since the Unix epoch.
    pub start_ns: i64,
    /// Last packet, ns since the Unix epoch.
    pub end_ns: i64,
    /// Bytes originator → responder (IP-level where the source has it, else payload).
    pub orig_bytes: Option<u64>,
    /// Bytes responder → originator (same level as `orig_bytes`).
    pub resp_bytes: Option<u64>,
    /// True for a one-way flow record (NetFlow/IPFIX from most exporters: one record
    /// per direction, nothing of the reverse direction, no state): [`pair_one_way`]
    /// joins it with its reverse record.
    pub one_way: bool,
    /// The reverse record's row id, once paired.
    pub paired_id: Option<RowId>,
}

/// The row ids of one connection: nearly always one (two for a paired one-way flow
/// record), so one is held inline. A heap block per connection for its ids and
/// another for its vantages were a sixth of `trace`'s peak on a case of 2 M flow
/// records.
pub type RowIds = smallvec::SmallVec<[RowId; 1]>;

/// The vantages that saw one connection: nearly always one, held inline.
pub type Vantages = smallvec::SmallVec<[Arc<str>; 1]>;

/// A connection after merging its observations at all vantages.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowConn {
    /// Ids of every observation merged into this connection, sorted.
    pub ids: RowIds,
    /// Vantages that saw it, sorted, without repeats.
    pub vantages: Vantages,
    /// Transport.
    pub proto: Arc<str>,
    /// Originator address.
    pub orig_h: IpAddr,
    /// Originator port.
    pub orig_p: u16,
    /// Responder address.
    pub resp_h: IpAddr,
    /// Responder port.
    pub resp_p: u16,
    /// Earliest start over the observations (ns).
    pub start_ns: i64,
    /// Latest end over the observations (ns).
    pub end_ns: i64,
    /// Largest originator byte count over the observations (a sensor that missed
    /// packets undercounts; none overcounts).
    pub orig_bytes: Option<u64>,
    /// Largest responder byte count over the observations.
    pub resp_bytes: Option<u64>,
}

impl FlowConn {
    /// The connection of one observation (and of its paired reverse record).
    fn of(o: Observation) -> FlowConn {
        FlowConn {
            ids: std::iter::once(o.id).chain(o.paired_id).collect(),
            vantages: smallvec::smallvec![o.vantage],
            proto: o.proto,
            orig_h: o.orig_h,
            orig_p: o.orig_p,
            resp_h: o.resp_h,
            resp_p: o.resp_p,
            start_ns: o.start_ns,
            end_ns: o.end_ns,
            orig_bytes: o.orig_bytes,
            resp_bytes: o.resp_bytes,
        }
    }

    /// Whether the transport is TCP (the only transport flow mode links: relayed
    /// interactive sessions are TCP, and UDP "connections" have no lifetime to
    /// contain another).
    pub fn is_tcp(&self) -> bool {
        &*self.proto == "tcp"
    }
}

/// What loading the rows found besides connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Rows read.
    pub rows: u64,
    /// Rows skipped because a field trace needs was missing or malformed (e.g. a
    /// flow without an end time); counted, never guessed.
    pub skipped: u64,
    /// The first few skipped rows with the reason, for the user.
    pub examples: Vec<String>,
}

/// Text values that repeat across a case's rows (vantages, protocols), each kept once
/// and shared: a case of millions of connections has a handful of them, and a `String`
/// per row and field was a tenth of `trace`'s memory on a 1 M-connection case.
#[derive(Debug, Default)]
pub struct Interned(Vec<Arc<str>>);

impl Interned {
    /// The shared copy of `text` (a linear search: there are only a few).
    pub fn get(&mut self, text: &str) -> Arc<str> {
        if let Some(v) = self.0.iter().find(|v| &***v == text) {
            return Arc::clone(v);
        }
        let v: Arc<str> = Arc::from(text);
        self.0.push(Arc::clone(&v));
        v
    }
}

/// At most this many skipped-row examples are kept: a table of a million bad rows
/// must not become a million strings.
const MAX_EXAMPLES: usize = 5;

/// Reads every committed `conns` table of the case.
pub fn load_case(case: &Case) -> Result<(Vec<Observation>, LoadSummary), TraceError> {
    let mut out = Vec::new();
    let mut summary = LoadSummary::default();
    let mut interned = Interned::default();
    for file in case.table_files("conns")? {
        load_table(&file, &mut out, &mut summary, &mut interned)?;
    }
    Ok((out, summary))
}

/// The `conns` columns an [`Observation`] is built from, in [`BatchRow`]'s order.
const CONN_COLUMNS: [&str; 14] = [
    "record",
    "proto",
    "orig_h",
    "orig_p",
    "resp_h",
    "resp_p",
    "start_ns",
    "end_ns",
    "orig_bytes",
    "resp_bytes",
    "orig_ip_bytes",
    "resp_ip_bytes",
    "resp_pkts",
    "conn_state",
];

fn load_table(
    file: &Path,
    out: &mut Vec<Observation>,
    summary: &mut LoadSummary,
    interned: &mut Interned,
) -> Result<(), TraceError> {
    // The column reader, not `scan_rows`: this reads every connection of the case
    // (README "Trace": the load of 1 M connections, before and after).
    let mut sized = false;
    scan_columns(file, &CONN_COLUMNS, |meta, batch| {
        if !sized {
            out.reserve(usize::try_from(meta.rows).unwrap_or(0));
            sized = true;
        }
        for row in 0..batch.rows() {
            summary.rows += 1;
            let fields = BatchRow::new(meta, batch, row);
            match observation_with(&fields, interned) {
                Ok(o) => out.push(o),
                Err(reason) => {
                    summary.skipped += 1;
                    if summary.examples.len() < MAX_EXAMPLES {
                        let id = fields.id.as_ref().map_or("?".into(), RowId::to_string);
                        summary
                            .examples
                            .push(format!("{}: row {id}: {reason}", file.display()));
                    }
                }
            }
        }
        true
    })?;
    Ok(())
}

/// The named fields of one stored connection row, however it was read: a JSON object
/// (the rows `conns --format jsonl` prints, test fixtures) or a row of a column batch.
/// One [`observation_of`] reads both, so they cannot drift apart.
pub trait RowFields {
    /// A text field, if present.
    fn text(&self, name: &str) -> Option<&str>;
    /// An integer field, if present.
    fn int(&self, name: &str) -> Option<i64>;
    /// The row id (the `id` field).
    fn row_id(&self) -> Option<RowId> {
        self.text("id").map(RowId::from)
    }
}

impl RowFields for serde_json::Map<String, Value> {
    fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
    fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }
}

/// One row of a `conns` column batch ([`CONN_COLUMNS`]), with the fields the file
/// keeps once for all rows (`vantage`) or that are derived per row (`id`).
struct BatchRow<'a> {
    meta: &'a TableMeta,
    batch: &'a ColumnBatch,
    row: usize,
    id: Option<RowId>,
}

impl<'a> BatchRow<'a> {
    fn new(meta: &'a TableMeta, batch: &'a ColumnBatch, row: usize) -> Self {
        let id = match (&meta.evidence, batch.int(0, row)) {
            (Some(ev), Some(r)) => u64::try_from(r).ok().map(|r| RowId::of_row(ev, r)),
            _ => None,
        };
        BatchRow {
            meta,
            batch,
            row,
            id,
        }
    }

    fn column(name: &str) -> Option<usize> {
        CONN_COLUMNS.iter().position(|c| *c == name)
    }
}

impl RowFields for BatchRow<'_> {
    fn text(&self, name: &str) -> Option<&str> {
        match name {
            "vantage" => self.meta.vantage.as_deref(),
            _ => self.batch.text(Self::column(name)?, self.row),
        }
    }
    fn int(&self, name: &str) -> Option<i64> {
        self.batch.int(Self::column(name)?, self.row)
    }
    fn row_id(&self) -> Option<RowId> {
        self.id.clone()
    }
}

/// Packet times of one connection as one vantage captured them, per direction: what
/// packet mode reads. Only packets that carried new payload are kept (the store's
/// `packets` table), so pure ACKs and retransmissions neither add nor hide activity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Originator → responder packet times, ns, sorted.
    pub orig: Vec<i64>,
    /// Responder → originator packet times, ns, sorted.
    pub resp: Vec<i64>,
}

/// Reads every committed `packets` table of the case into timelines keyed by the
/// connection row id (`<evidence16>:<record>`, the `id` of the matching `conns` row).
/// Rows without a usable time or direction are counted in `summary.skipped`.
pub fn load_timelines(
    case: &Case,
    summary: &mut LoadSummary,
) -> Result<BTreeMap<RowId, Timeline>, TraceError> {
    let mut out: BTreeMap<RowId, Timeline> = BTreeMap::new();
    for file in case.table_files("packets")? {
        // The column reader (one row per packet: the largest table of a case); the id
        // is made once per run of rows of one connection, not per packet.
        let mut current: Option<(i64, RowId)> = None;
        scan_columns(&file, &["conn_record", "dir", "ts_ns"], |meta, batch| {
            for row in 0..batch.rows() {
                let record = batch.int(0, row);
                let id = match (&meta.evidence, record) {
                    (Some(ev), Some(r)) => {
                        if current.as_ref().is_none_or(|c| c.0 != r) {
                            current = u64::try_from(r).ok().map(|u| (r, RowId::of_row(ev, u)));
                        }
                        current.as_ref().map(|c| &c.1)
                    }
                    _ => None,
                };
                let dir = batch.text(1, row).map(|d| d == "orig");
                match (id, dir, batch.int(2, row)) {
                    (Some(id), Some(is_orig), Some(ts)) => {
                        let t = match out.get_mut(id) {
                            Some(t) => t,
                            None => out.entry(id.clone()).or_default(),
                        };
                        if is_orig {
                            t.orig.push(ts);
                        } else {
                            t.resp.push(ts);
                        }
                    }
                    _ => {
                        summary.skipped += 1;
                        if summary.examples.len() < MAX_EXAMPLES {
                            summary.examples.push(format!(
                                "{}: packet row without conn_id, dir or ts_ns",
                                file.display()
                            ));
                        }
                    }
                }
            }
            true
        })?;
    }
    for t in out.values_mut() {
        t.orig.sort_unstable();
        t.resp.sort_unstable();
    }
    Ok(out)
}

/// Builds an observation from one row, or says which field is unusable.
pub fn observation(m: &serde_json::Map<String, Value>) -> Result<Observation, String> {
    observation_of(m)
}

/// [`observation`] for any [`RowFields`].
pub fn observation_of(m: &impl RowFields) -> Result<Observation, String> {
    observation_with(m, &mut Interned::default())
}

/// [`observation_of`], sharing vantage and protocol texts through `interned`.
pub fn observation_with(
    m: &impl RowFields,
    interned: &mut Interned,
) -> Result<Observation, String> {
    let mut shared = |k: &str| -> Result<Arc<str>, String> {
        m.text(k)
            .map(|t| interned.get(t))
            .ok_or_else(|| format!("{k} missing"))
    };
    let ip = |k: &str| -> Result<IpAddr, String> {
        m.text(k)
            .ok_or_else(|| format!("{k} missing"))?
            .parse()
            .map_err(|_| format!("{k} is not an address"))
    };
    let port = |k: &str| -> Result<u16, String> {
        m.int(k)
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("{k} missing or not a port"))
    };
    let ns = |k: &str| -> Result<i64, String> { m.int(k).ok_or_else(|| format!("{k} missing")) };
    let count = |k: &str| m.int(k).and_then(|v| u64::try_from(v).ok());
    let absent = |k: &str| m.int(k).is_none() && m.text(k).is_none();
    // IP-level counts when both directions have them (Suricata, NetFlow, pcap), else
    // payload counts: the two are never mixed within one observation.
    let (orig_bytes, resp_bytes) = match (count("orig_ip_bytes"), count("resp_ip_bytes")) {
        (Some(o), Some(r)) => (Some(o), Some(r)),
        _ => (count("orig_bytes"), count("resp_bytes")),
    };
    // Nothing at all of the responder's direction, and no state: a one-way record.
    let one_way = ["resp_ip_bytes", "resp_bytes", "resp_pkts", "conn_state"]
        .iter()
        .all(|k| absent(k))
        && count("orig_ip_bytes").or(count("orig_bytes")).is_some();
    let (orig_bytes, resp_bytes) = if one_way {
        (count("orig_ip_bytes").or(count("orig_bytes")), None)
    } else {
        (orig_bytes, resp_bytes)
    };
    let start_ns = ns("start_ns")?;
    let end_ns = ns("end_ns")?;
    if end_ns < start_ns {
        return Err("end_ns before start_ns".into());
    }
    Ok(Observation {
        id: m.row_id().ok_or("id missing")?,
        vantage: shared("vantage")?,
        proto: shared("proto")?,
        orig_h: ip("orig_h")?,
        orig_p: port("orig_p")?,
        resp_h: ip("resp_h")?,
        resp_p: port("resp_p")?,
        start_ns,
        end_ns,
        orig_bytes,
        resp_bytes,
        one_way,
        paired_id: None,
    })
}

/// Joins one-way flow records into connections: a record A:a→B:b and a record B:b→A:a
/// of the same vantage and protocol whose starts lie within `tolerance_ns` become one
/// observation with both directions' bytes. The originator is the side that started
/// first; on a tie (exporters often stamp both directions with the first packet of
/// either) the side whose port is not the lower one, i.e. the client of a well-known
/// or lower service port. Records without a partner stay one-way: counted as
/// connections of unknown return volume, never dropped. Two-way rows pass untouched.
pub fn pair_one_way(mut obs: Vec<Observation>, tolerance_ns: i64) -> Vec<Observation> {
    // Most cases have no one-way record at all: nothing to pair, nothing to copy.
    if !obs.iter().any(|o| o.one_way) {
        return obs;
    }
    // In place: two-way rows first (their order does not matter, `merge` sorts), then
    // the one-way records grouped by (vantage, proto, unordered endpoints), each group
    // in start order, paired greedily. No map of groups, no second copy of the records:
    // a map of one vector per socket pair, with the records cloned out of it, took
    // 2.5 GB and 11-13 s of CPU for a case of 2 M one-way NetFlow records.
    // Borrowed, not cloned: the sort compares groups some 40 M times for 2 M records.
    fn group(o: &Observation) -> (&str, &str, (IpAddr, u16), (IpAddr, u16)) {
        let (x, y) = ((o.orig_h, o.orig_p), (o.resp_h, o.resp_p));
        (&o.vantage, &o.proto, x.min(y), x.max(y))
    }
    obs.sort_unstable_by(|a, b| match (a.one_way, b.one_way) {
        (false, false) => std::cmp::Ordering::Equal,
        (true, true) => group(a)
            .cmp(&group(b))
            .then_with(|| (a.start_ns, &a.id).cmp(&(b.start_ns, &b.id))),
        (x, y) => x.cmp(&y),
    });
    let first = obs.partition_point(|o| !o.one_way);
    let w = &obs[first..];
    let n = w.len();
    // partner[i]: the reverse record paired with record i, for the earlier of the two.
    let mut partner = vec![usize::MAX; n];
    let mut used = vec![false; n];
    let mut lo = 0;
    while lo < n {
        let key = group(&w[lo]);
        let hi = lo + w[lo..].iter().take_while(|o| group(o) == key).count();
        let g = &w[lo..hi];
        for i in 0..g.len() {
            if used[lo + i] {
                continue;
            }
            used[lo + i] = true;
            // Sorted by start: the first record past the tolerance ends the search.
            let found = (i + 1..g.len())
                .take_while(|&j| g[j].start_ns - g[i].start_ns <= tolerance_ns)
                .find(|&j| {
                    !used[lo + j] && g[j].orig_h == g[i].resp_h && g[j].orig_p == g[i].resp_p
                });
            if let Some(j) = found {
                used[lo + j] = true;
                partner[lo + i] = lo + j;
            }
        }
        lo = hi;
    }
    // Each pair becomes one observation in the earlier record's place; the later
    // record's place is left blank and dropped below.
    let mut blank = used;
    blank.fill(false);
    for i in 0..n {
        let j = partner[i];
        if j == usize::MAX {
            continue;
        }
        let a = take(&mut obs[first + i]);
        let b = take(&mut obs[first + j]);
        blank[j] = true;
        // `a` started no later than `b` (sorted); on a tie the client is the side
        // talking to the lower port.
        let a_is_client = a.start_ns < b.start_ns || a.resp_p <= b.resp_p;
        let (start_ns, end_ns) = (a.start_ns.min(b.start_ns), a.end_ns.max(b.end_ns));
        let (c, s) = if a_is_client { (a, b) } else { (b, a) };
        obs[first + i] = Observation {
            start_ns,
            end_ns,
            resp_bytes: s.orig_bytes,
            one_way: false,
            paired_id: Some(s.id),
            ..c
        };
    }
    let mut k = 0;
    obs.retain(|_| {
        let keep = k < first || !blank[k - first];
        k += 1;
        keep
    });
    obs
}

/// Moves an observation out of its place, leaving a blank without allocating.
fn take(slot: &mut Observation) -> Observation {
    let blank = Observation {
        id: RowId::Stored {
            evidence: 0,
            record: 0,
        },
        vantage: Arc::clone(&slot.vantage),
        proto: Arc::clone(&slot.proto),
        orig_bytes: None,
        resp_bytes: None,
        paired_id: None,
        ..*slot
    };
    std::mem::replace(slot, blank)
}

/// Merges observations of the same connection, after joining one-way flow records
/// with their reverse ([`pair_one_way`]): same protocol and 5-tuple, start
/// within `tolerance_ns` of the previous observation in the group (so NetFlow's
/// whole-second export clock does not split a session). Output is sorted by
/// (start, 5-tuple): deterministic whatever the table order.
pub fn merge(obs: Vec<Observation>, tolerance_ns: i64) -> Vec<FlowConn> {
    let mut obs = pair_one_way(obs, tolerance_ns);
    // Every key ends with the row id, unique in the case: an unstable sort gives the
    // one order a stable one would, without its buffer of half the rows.
    obs.sort_unstable_by(|a, b| {
        (
            &a.proto, a.orig_h, a.orig_p, a.resp_h, a.resp_p, a.start_ns, &a.id,
        )
            .cmp(&(
                &b.proto, b.orig_h, b.orig_p, b.resp_h, b.resp_p, b.start_ns, &b.id,
            ))
    });
    // Each observation becomes a connection in its own place (`FlowConn` is no larger
    // than `Observation`, so the standard library collects into the same allocation),
    // then later observations of a group are folded into its first in place: holding
    // the observations and a second vector of connections at once was half of
    // `trace`'s peak memory on a case of 2 M flow records.
    let mut out: Vec<FlowConn> = obs.into_iter().map(FlowConn::of).collect();
    let mut last_start = out.first().map_or(i64::MIN, |c| c.start_ns);
    out.dedup_by(|later, kept| {
        let same = kept.proto == later.proto
            && kept.orig_h == later.orig_h
            && kept.orig_p == later.orig_p
            && kept.resp_h == later.resp_h
            && kept.resp_p == later.resp_p
            && later.start_ns.saturating_sub(last_start) <= tolerance_ns;
        last_start = later.start_ns;
        if same {
            kept.ids.append(&mut later.ids);
            for v in later.vantages.drain(..) {
                if !kept.vantages.contains(&v) {
                    kept.vantages.push(v);
                }
            }
            kept.end_ns = kept.end_ns.max(later.end_ns);
            kept.orig_bytes = max_opt(kept.orig_bytes, later.orig_bytes);
            kept.resp_bytes = max_opt(kept.resp_bytes, later.resp_bytes);
        }
        same
    });
    for c in &mut out {
        c.ids.sort();
        c.vantages.sort();
        c.vantages.dedup();
    }
    // Connections with the same key would have been merged: `ids` tell the rest apart,
    // so this order is total and an unstable sort gives it.
    out.sort_unstable_by(|a, b| {
        (a.start_ns, a.orig_h, a.orig_p, a.resp_h, a.resp_p, &a.ids)
            .cmp(&(b.start_ns, b.orig_h, b.orig_p, b.resp_h, b.resp_p, &b.ids))
    });
    out
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(id: &str, vantage: &str, start_s: i64, bytes: u64) -> Observation {
        Observation {
            id: id.into(),
            vantage: vantage.into(),
            proto: "tcp".into(),
            orig_h: "198.51.100.23".parse().unwrap(),
            orig_p: 51122,
            resp_h: "203.0.113.7".parse().unwrap(),
            resp_p: 22,
            start_ns: start_s * 1_000_000_000,
            end_ns: (start_s + 100) * 1_000_000_000,
            orig_bytes: Some(bytes),
            resp_bytes: None,
            one_way: false,
            paired_id: None,
        }
    }

    #[test]
    fn same_session_at_two_vantages_is_one_connection() {
        let got = merge(
            vec![
                obs("b:1", "victim-edge", 1000, 90),
                obs("a:7", "relay-isp", 1000, 100),
            ],
            1_000_000_000,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].ids.as_slice(), ["a:7", "b:1"]);
        assert_eq!(
            got[0].vantages.as_slice(),
            [Arc::from("relay-isp"), Arc::from("victim-edge")]
        );
        assert_eq!(got[0].orig_bytes, Some(100));
    }

    fn one_way(
        id: &str,
        from: (&str, u16),
        to: (&str, u16),
        start_s: i64,
        bytes: u64,
    ) -> Observation {
        Observation {
            id: id.into(),
            vantage: "isp".into(),
            proto: "tcp".into(),
            orig_h: from.0.parse().unwrap(),
            orig_p: from.1,
            resp_h: to.0.parse().unwrap(),
            resp_p: to.1,
            start_ns: start_s * 1_000_000_000,
            end_ns: (start_s + 60) * 1_000_000_000,
            orig_bytes: Some(bytes),
            resp_bytes: None,
            one_way: true,
            paired_id: None,
        }
    }

    #[test]
    fn one_way_records_pair_into_one_connection_client_first() {
        // Same start (as softflowd stamps both): the client is the side of the high port.
        let got = merge(
            vec![
                one_way(
                    "n:1",
                    ("198.51.100.23", 22),
                    ("192.0.2.66", 40022),
                    1000,
                    5000,
                ),
                one_way(
                    "n:2",
                    ("192.0.2.66", 40022),
                    ("198.51.100.23", 22),
                    1000,
                    700,
                ),
                // No partner: stays, one-way.
                one_way(
                    "n:3",
                    ("192.0.2.66", 40023),
                    ("198.51.100.23", 22),
                    1100,
                    10,
                ),
            ],
            1_000_000_000,
        );
        assert_eq!(got.len(), 2);
        let c = &got[0];
        assert_eq!(c.orig_h.to_string(), "192.0.2.66");
        assert_eq!((c.orig_p, c.resp_p), (40022, 22));
        assert_eq!((c.orig_bytes, c.resp_bytes), (Some(700), Some(5000)));
        assert_eq!(c.ids.as_slice(), ["n:1", "n:2"]);
        assert_eq!(got[1].resp_bytes, None);
        // Earlier start decides when the starts differ.
        let got = merge(
            vec![
                one_way("m:1", ("10.0.0.1", 22), ("10.0.0.2", 50000), 1000, 1),
                one_way("m:2", ("10.0.0.2", 50000), ("10.0.0.1", 22), 1000, 1),
            ],
            0,
        );
        assert_eq!(got.len(), 1);
    }

    /// Within one socket pair, records pair greedily in start order, each with the first
    /// unused reverse record inside the tolerance; other vantages and protocols are
    /// other groups; a record is used once.
    #[test]
    fn one_way_records_pair_greedily_within_their_group() {
        let (c, s) = (("192.0.2.66", 40022), ("198.51.100.23", 22));
        let mut other_vantage = one_way("v:1", s, c, 2000, 9);
        other_vantage.vantage = "edge".into();
        let mut udp = one_way("u:1", s, c, 1000, 9);
        udp.proto = "udp".into();
        let got = pair_one_way(
            vec![
                // Listed out of order: grouping and order come from sorting.
                one_way("g:4", s, c, 1010, 4),
                one_way("g:1", c, s, 1000, 1),
                one_way("g:3", c, s, 1010, 3),
                one_way("g:2", s, c, 1000, 2),
                one_way("g:5", c, s, 1020, 5), // its reverse would be 2 s later: alone
                one_way("g:6", s, c, 1022, 6),
                one_way("g:7", c, s, 2000, 7), // the reverse is at another vantage: alone
                other_vantage,
                udp, // another protocol: alone, as is g:8 with no reverse at all
                one_way("g:8", c, s, 3000, 8),
            ],
            1_000_000_000,
        );
        type Row = (String, Option<String>, Option<u64>, Option<u64>);
        let mut pairs: Vec<Row> = got
            .iter()
            .map(|o| {
                (
                    o.id.to_string(),
                    o.paired_id.as_ref().map(RowId::to_string),
                    o.orig_bytes,
                    o.resp_bytes,
                )
            })
            .collect();
        pairs.sort();
        let want = [
            ("g:1", Some("g:2"), Some(1), Some(2)),
            ("g:3", Some("g:4"), Some(3), Some(4)),
            ("g:5", None, Some(5), None),
            ("g:6", None, Some(6), None),
            ("g:7", None, Some(7), None),
            ("g:8", None, Some(8), None),
            ("u:1", None, Some(9), None),
            ("v:1", None, Some(9), None),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(a, b, x, y)| (a.to_string(), b.map(str::to_string), *x, *y))
            .collect();
        assert_eq!(pairs, want);
        assert!(got.iter().all(|o| o.one_way == o.paired_id.is_none()));
    }

    #[test]
    fn port_reuse_later_is_another_connection() {
        let got = merge(
            vec![obs("a:1", "x", 1000, 1), obs("a:2", "x", 1005, 1)],
            1_000_000_000,
        );
        assert_eq!(got.len(), 2);
    }
}
