//! Regression: the pcap reader's connections against the `conn.log` Zeek 9.1 wrote
//! for the same trace (corpus `zeek-pcap-pairs`, see `shared/corpus/PROVENANCE.md`).
//!
//! Connections are matched by (proto, orig_h, orig_p, resp_h, resp_p); when Zeek
//! logs the same five-tuple several times (reuse, timeouts), each Zeek record takes
//! the unused one of ours that differs in the fewest fields. Compared fields: byte
//! and packet counts, IP bytes, duration to the microsecond, conn_state, history,
//! missed_bytes, and ts where btest did not mask it. Zeek's `-C` (ignore checksums,
//! recorded in each pair's `pair.json`) is reproduced with `PcapOptions`.
//!
//! The test fails when a pair not listed in `zeek_known_differences.md` differs in
//! any way, and when a listed pair matches fully (so the list stays honest). Run with
//! `--nocapture` to see the per-pair table.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use relaytrace_ingest::input::open_input;
use relaytrace_ingest::pcap::{self, PcapOptions};
use relaytrace_ingest::VecSink;
use relaytrace_model::{parse_decimal_seconds_ns, Conn};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpus/zeek-pcap-pairs"
);
const KNOWN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/zeek_known_differences.md"
);

/// Fields compared, by their conn.log column name.
const FIELDS: [&str; 11] = [
    "ts",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
];

type Key = (String, String, String, String, String);

/// One conn.log-shaped record: key plus the compared fields as Zeek prints them.
#[derive(Debug, Clone)]
struct Row {
    key: Key,
    fields: BTreeMap<&'static str, String>,
}

fn micros(ns: i64) -> String {
    // Round to the microsecond as Zeek's %.6f does.
    let us = (ns + 500).div_euclid(1000);
    format!(
        "{}.{:06}",
        us.div_euclid(1_000_000),
        us.rem_euclid(1_000_000)
    )
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |x| x.to_string())
}

fn our_row(c: &Conn) -> Row {
    let mut f = BTreeMap::new();
    f.insert("ts", micros(c.start_ns));
    f.insert("duration", c.duration_ns.map_or("-".into(), micros));
    f.insert("orig_bytes", opt(c.orig_bytes));
    f.insert("resp_bytes", opt(c.resp_bytes));
    f.insert("conn_state", opt(c.conn_state.clone()));
    f.insert("missed_bytes", opt(c.missed_bytes));
    f.insert("history", opt(c.history.clone()));
    f.insert("orig_pkts", opt(c.orig_pkts));
    f.insert("orig_ip_bytes", opt(c.orig_ip_bytes));
    f.insert("resp_pkts", opt(c.resp_pkts));
    f.insert("resp_ip_bytes", opt(c.resp_ip_bytes));
    Row {
        key: (
            c.proto.as_str().to_string(),
            c.orig_h.to_string(),
            c.orig_p.to_string(),
            c.resp_h.to_string(),
            c.resp_p.to_string(),
        ),
        fields: f,
    }
}

/// Minimal conn.log TSV parsing: `#fields` names the columns, other `#` lines are
/// metadata, `-` is unset. Addresses are normalised through `IpAddr` so both sides
/// print them alike.
fn zeek_rows(path: &Path) -> Vec<Row> {
    let text = fs::read_to_string(path).expect("read conn.log");
    let mut columns: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#fields") {
            columns = rest.split('\t').skip(1).map(str::to_string).collect();
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let values: Vec<&str> = line.split('\t').collect();
        let get = |name: &str| -> String {
            columns
                .iter()
                .position(|c| c == name)
                .and_then(|i| values.get(i))
                .map_or("-".to_string(), |v| v.to_string())
        };
        let addr = |v: String| {
            v.parse::<std::net::IpAddr>()
                .map_or(v.clone(), |a| a.to_string())
        };
        let mut f = BTreeMap::new();
        for name in FIELDS {
            let mut v = get(name);
            if name == "ts" && !v.starts_with('X') {
                v = micros(parse_decimal_seconds_ns(&v).expect("ts"));
            }
            f.insert(name, v);
        }
        rows.push(Row {
            key: (
                get("proto"),
                addr(get("id.orig_h")),
                get("id.orig_p"),
                addr(get("id.resp_h")),
                get("id.resp_p"),
            ),
            fields: f,
        });
    }
    rows
}

/// Names of the fields that differ (ts only when Zeek's is not masked).
fn diff(zeek: &Row, ours: &Row) -> Vec<&'static str> {
    FIELDS
        .iter()
        .copied()
        .filter(|name| {
            let z = &zeek.fields[name];
            !(*name == "ts" && z.starts_with('X')) && z != &ours.fields[name]
        })
        .collect()
}

#[derive(Default)]
struct PairResult {
    zeek: usize,
    ours: usize,
    matched: usize,
    field_mismatches: usize,
    ours_only: Vec<Row>,
    zeek_only: Vec<Row>,
    details: Vec<String>,
    rejections: usize,
}

impl PairResult {
    fn clean(&self) -> bool {
        self.field_mismatches == 0 && self.ours_only.is_empty() && self.zeek_only.is_empty()
    }
}

fn trace_in(dir: &Path) -> PathBuf {
    fs::read_dir(dir)
        .expect("pair dir")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".pcap") || name.ends_with(".pcapng")
        })
        .expect("a trace in the pair directory")
}

fn compare(dir: &Path) -> PairResult {
    let mut input = open_input(&trace_in(dir)).expect("open trace");
    let mut sink = VecSink::default();
    // Reproduce Zeek's command line: `-C` (pair.json `ignore_checksums`).
    let meta = fs::read_to_string(dir.join("pair.json")).expect("read pair.json");
    let meta: serde_json::Value = serde_json::from_str(&meta).expect("parse pair.json");
    let options = PcapOptions {
        ignore_checksums: meta["ignore_checksums"].as_bool().unwrap_or(false),
        ..PcapOptions::default()
    };
    pcap::read_with(&mut *input, &mut sink, options).expect("read trace");
    let zeek = zeek_rows(&dir.join("conn.log"));
    let ours: Vec<Row> = sink.conns.iter().map(our_row).collect();
    let mut result = PairResult {
        zeek: zeek.len(),
        ours: ours.len(),
        rejections: sink.rejections.len(),
        ..PairResult::default()
    };
    let mut used = vec![false; ours.len()];
    for z in &zeek {
        let best = ours
            .iter()
            .enumerate()
            .filter(|(i, o)| !used[*i] && o.key == z.key)
            .min_by_key(|(_, o)| diff(z, o).len());
        match best {
            None => result.zeek_only.push(z.clone()),
            Some((i, o)) => {
                used[i] = true;
                result.matched += 1;
                let d = diff(z, o);
                if !d.is_empty() {
                    result.field_mismatches += 1;
                    let shown: Vec<String> = d
                        .iter()
                        .map(|f| format!("{f}: zeek {} ours {}", z.fields[f], o.fields[f]))
                        .collect();
                    result
                        .details
                        .push(format!("{:?}: {}", z.key, shown.join(", ")));
                }
            }
        }
    }
    for (i, o) in ours.iter().enumerate() {
        if !used[i] {
            result.ours_only.push(o.clone());
        }
    }
    result
}

/// Pair names listed in the known-differences file: lines `- `pair`: reason`.
fn known_pairs() -> BTreeSet<String> {
    let text = fs::read_to_string(KNOWN).expect("read zeek_known_differences.md");
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn pcap_reader_matches_zeek_conn_logs() {
    let known = known_pairs();
    let mut dirs: Vec<PathBuf> = fs::read_dir(CORPUS)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no pairs under {CORPUS}");

    let mut failures = Vec::new();
    println!(
        "{:<58} {:>5} {:>5} {:>7} {:>9} {:>9} {:>10} {:>6}  verdict",
        "pair", "zeek", "ours", "matched", "ours-only", "zeek-only", "field-diff", "rejects"
    );
    for dir in &dirs {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let r = compare(dir);
        let listed = known.contains(&name);
        let verdict = match (r.clean(), listed) {
            (true, false) => "ok",
            (false, true) => "known difference",
            (false, false) => {
                failures.push(format!("{name}: differs from Zeek and is not listed"));
                "FAIL"
            }
            (true, true) => {
                failures.push(format!("{name}: listed as differing but matches fully"));
                "FAIL (listed but matches)"
            }
        };
        println!(
            "{:<58} {:>5} {:>5} {:>7} {:>9} {:>9} {:>10} {:>6}  {verdict}",
            name,
            r.zeek,
            r.ours,
            r.matched,
            r.ours_only.len(),
            r.zeek_only.len(),
            r.field_mismatches,
            r.rejections
        );
        if !r.clean() {
            for d in &r.details {
                println!("    field diff {d}");
            }
            for o in &r.ours_only {
                println!("    ours only  {:?} {:?}", o.key, o.fields);
            }
            for z in &r.zeek_only {
                println!("    zeek only  {:?} {:?}", z.key, z.fields);
            }
        }
    }
    for name in &known {
        if !dirs.iter().any(|d| d.ends_with(name)) {
            failures.push(format!("{name}: listed but no such pair"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
