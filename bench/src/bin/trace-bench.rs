//! `trace-bench RUN_DIR...`: detection, false positives, calibration and throughput of
//! trace's three methods (packet, flow, Zhang–Paxson) on testbed runs, in one process.
//!
//! Each RUN_DIR is a testbed run ingested into `RUN_DIR/case` with its ground truth in
//! `RUN_DIR/scenario/labels.json` (bench/trace/make-runs.sh makes them).
//!
//! - **Positives**: the labelled attack links (inbound → outbound at a relay), each
//!   classed by the condition of its hop: the evasive relay's outbound hop carries the
//!   run's delay and chaff (at the next relay, if any, that hop is the inbound: "on
//!   inbound"), every other hop is plain.
//! - **Negatives**, per candidate pair: (a) every other (inbound, outbound) pair at every
//!   host of every run that passes the candidate rule (outbound inside the inbound's
//!   lifetime, no loop, not the same originator or responder) — the hard negatives;
//!   (b) cross-run pairs: an inbound of one run with an outbound of another run, moved
//!   in time to start 250 ms and, again, 1 s after the inbound (as `ssh -J` does), so every such pair is
//!   perfectly aligned by construction and only the packet timing can tell. The admin's
//!   legitimate jump is a true relay and is in neither set.
//! - Each method gives every pair a statistic (packet: −ln of its pair probability;
//!   flow: its score; zp: 1 + score when its rule detects, else 0). Detection at a
//!   false-positive rate r is the share of positives above the threshold that at most
//!   r of the negatives exceed (reported only with at least 1/r negatives).
//! - Calibration: the share of negatives whose pair probability is ≤ α, for each α;
//!   a calibrated method keeps it ≤ α.
//! - As `trace` reports it ([`on_background`]): packet and flow mode's per-host values on
//!   each run's own case and on cross-run relays, with and without repeated sessions.
//!   Calibration there leaves out the pair each cross-run relay was aligned on (chosen,
//!   not drawn), and in the repeated column also the other links between its two hosts,
//!   whose repeated pattern includes that chosen session.
//! - Throughput: all runs' connections copied 1×, 4× and 16× (copies laid end to end in
//!   time) through `find_all_links` (auto method), connections per second; and flow mode
//!   on synthetic records (`trace-bench --flow-throughput` runs only this part;
//!   `trace-bench --auto-throughput RUN_DIR...` only the first). Both print connections
//!   per CPU-second of the measuring thread too: the per-core figure on a shared machine.
//!   `TRACE_BENCH_NO_THROUGHPUT=1` leaves the throughput out; `TRACE_BENCH_SHOW=1`
//!   names the weak positives and strong negatives (and, per host, every calibration
//!   negative at ≤ 0.1 with where its sessions lie), `TRACE_BENCH_DUMP=1` prints the
//!   timelines of cross-run negatives at ≤ 1e-4 (standard error).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use relaytrace_store::Case;
use relaytrace_trace::conn::{load_case, load_timelines, Timeline};
use relaytrace_trace::find_links;
use relaytrace_trace::flow::{pair_score, Link};
use relaytrace_trace::packet::judge_pair;
use relaytrace_trace::rowid::RowId;
use relaytrace_trace::{
    find_all_links, find_packet_links, merge, FlowConn, FlowParams, PacketMethod, PacketParams,
    Timelines, TraceMethod, TraceParams,
};
use serde_json::Value;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Tuple = (String, u16, String, u16);

/// One run: its connections (with timelines) and ground truth.
struct Run {
    name: String,
    conns: Vec<FlowConn>,
    timelines: Vec<Option<Timeline>>,
    /// Every timeline of the run by row id (what `trace` reads).
    all: BTreeMap<RowId, Timeline>,
    /// Labelled attack links as (inbound index, outbound index, condition).
    positives: Vec<(usize, usize, String)>,
    /// Labelled true relay pairs of any kind (excluded from negatives).
    true_pairs: BTreeSet<(usize, usize)>,
    relays: u64,
    /// The scenario's seed: two runs with one seed type the same keystrokes at the same
    /// offsets, so pairing them would not be a negative.
    seed: u64,
}

fn tuple_of(v: &Value) -> Tuple {
    (
        v["orig_h"].as_str().unwrap_or_default().to_string(),
        v["orig_p"].as_u64().unwrap_or(0) as u16,
        v["resp_h"].as_str().unwrap_or_default().to_string(),
        v["resp_p"].as_u64().unwrap_or(0) as u16,
    )
}

fn load_run(dir: &Path) -> Result<Run, String> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let labels_path = dir.join("scenario/labels.json");
    let labels: Value = serde_json::from_str(
        &std::fs::read_to_string(&labels_path)
            .map_err(|e| format!("{}: {e}", labels_path.display()))?,
    )
    .map_err(|e| format!("{}: {e}", labels_path.display()))?;
    let case = Case::open(&dir.join("case")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (obs, mut summary) = load_case(&case).map_err(|e| e.to_string())?;
    let all = load_timelines(&case, &mut summary).map_err(|e| e.to_string())?;
    let conns: Vec<FlowConn> = merge(obs, 1_000_000_000)
        .into_iter()
        .filter(|c| c.is_tcp())
        .collect();
    let timelines: Vec<Option<Timeline>> = conns
        .iter()
        .map(|c| c.ids.iter().find_map(|id| all.get(id).cloned()))
        .collect();
    let all: BTreeMap<RowId, Timeline> = conns
        .iter()
        .flat_map(|c| c.ids.iter())
        .filter_map(|id| Some((id.clone(), all.get(id)?.clone())))
        .collect();
    let index: BTreeMap<Tuple, usize> = conns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                (
                    c.orig_h.to_string(),
                    c.orig_p,
                    c.resp_h.to_string(),
                    c.resp_p,
                ),
                i,
            )
        })
        .collect();
    let by_id: BTreeMap<&str, &Value> = labels["connections"]
        .as_array()
        .ok_or("labels without connections")?
        .iter()
        .map(|c| (c["id"].as_str().unwrap_or_default(), c))
        .collect();
    let sc = &labels["scenario"];
    let delay = sc["evasive_delay_ms"].as_f64().unwrap_or(0.0);
    let chaff = sc["evasive_chaff"].as_f64().unwrap_or(0.0);
    let relays = sc["relays"].as_u64().unwrap_or(0);
    let mut positives = Vec::new();
    let mut true_pairs = BTreeSet::new();
    for l in labels["links"].as_array().ok_or("labels without links")? {
        let get = |k: &str| -> Option<usize> {
            let c = by_id.get(l[k].as_str()?)?;
            index.get(&tuple_of(c)).copied()
        };
        let (Some(i), Some(o)) = (get("in"), get("out")) else {
            continue;
        };
        true_pairs.insert((i, o));
        if l["kind"] == "attack" {
            // The evasive hop is the one into the next host's end of the tunnel (port
            // 2200): at the evasive relay it is the outbound; at the relay after it
            // (`--evasive-relay` not the last) it is the inbound.
            let shaped = delay > 0.0 || chaff > 0.0;
            let cond = if shaped && conns[o].resp_p == 2200 {
                format!("delay<={delay:.0}ms chaff {:.0}%", chaff * 100.0)
            } else if shaped && conns[i].resp_p == 2200 {
                format!("delay<={delay:.0}ms chaff {:.0}% on inbound", chaff * 100.0)
            } else {
                "plain relay".to_string()
            };
            positives.push((i, o, cond));
        }
    }
    Ok(Run {
        seed: sc["seed"].as_u64().unwrap_or(0),
        name,
        conns,
        timelines,
        all,
        positives,
        true_pairs,
        relays,
    })
}

/// Whether `u` into a host and `d` out of it may be one relayed session, by packet
/// mode's own rule.
fn candidate(u: &FlowConn, d: &FlowConn, p: &PacketParams) -> bool {
    u.resp_h == d.orig_h && relaytrace_trace::packet::may_be_relayed(u, d, p)
}

fn shift_conn(c: &FlowConn, by: i64) -> FlowConn {
    let mut c = c.clone();
    c.start_ns += by;
    c.end_ns += by;
    c
}

fn shift_timeline(t: &Timeline, by: i64) -> Timeline {
    Timeline {
        orig: t.orig.iter().map(|x| x + by).collect(),
        resp: t.resp.iter().map(|x| x + by).collect(),
    }
}

/// The three statistics and two pair probabilities of one pair.
#[derive(Clone, Copy)]
struct Scored {
    packet: f64,
    packet_p: f64,
    flow: f64,
    zp: f64,
    zp_p: f64,
}

struct Scorer {
    packet: PacketParams,
    zp: PacketParams,
    flow: FlowParams,
}

impl Scorer {
    fn score(&self, u: &FlowConn, tu: &Timeline, d: &FlowConn, td: &Timeline) -> Scored {
        let life = (d.start_ns, d.end_ns);
        let (packet, packet_p) = match judge_pair(tu, td, life, true, &self.packet) {
            Some((_, p, _)) => (-p.ln(), p),
            None => (0.0, 1.0),
        };
        let (zp, zp_p) = match judge_pair(tu, td, life, true, &self.zp) {
            Some((s, p, _)) => (1.0 + s, p),
            None => (0.0, 1.0),
        };
        Scored {
            packet,
            packet_p,
            flow: pair_score(u, d, &self.flow).unwrap_or(0.0),
            zp,
            zp_p,
        }
    }
}

/// Share of `pos` strictly above the threshold that at most `rate` of `neg` exceed.
fn detection_at(pos: &[f64], neg: &[f64], rate: f64) -> Option<f64> {
    if neg.is_empty() || (neg.len() as f64) * rate < 1.0 || pos.is_empty() {
        return None;
    }
    let mut n = neg.to_vec();
    n.sort_by(|a, b| b.total_cmp(a));
    let k = ((neg.len() as f64) * rate).floor() as usize; // negatives allowed above
    let t = n[k.min(n.len() - 1)];
    Some(pos.iter().filter(|&&x| x > t).count() as f64 / pos.len() as f64)
}

fn fmt_rate(x: Option<f64>) -> String {
    x.map_or("n/a".to_string(), |v| format!("{v:.3}"))
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--flow-throughput") {
        // Only the synthetic flow-mode throughput (no testbed runs needed).
        flow_throughput();
        return;
    }
    // `--auto-throughput RUN_DIR...`: only the throughput of the auto method.
    let only_throughput = std::env::args().nth(1).as_deref() == Some("--auto-throughput");
    let dirs: Vec<PathBuf> = std::env::args()
        .skip(1 + usize::from(only_throughput))
        .map(PathBuf::from)
        .collect();
    if dirs.is_empty() {
        eprintln!("usage: trace-bench RUN_DIR... (see bench/trace/run.sh) | trace-bench --flow-throughput");
        std::process::exit(2);
    }
    let mut runs = Vec::new();
    for d in &dirs {
        match load_run(d) {
            Ok(r) => runs.push(r),
            Err(e) => {
                eprintln!("trace-bench: {e}");
                std::process::exit(1);
            }
        }
    }
    if only_throughput {
        auto_throughput(&runs);
        return;
    }
    let scorer = Scorer {
        packet: PacketParams::default(),
        zp: PacketParams {
            null_shifts: 2000,
            ..PacketParams::zp()
        },
        flow: FlowParams::default(),
    };
    let t0 = Instant::now();
    // Positives, by condition and by relay count.
    let mut pos: Vec<(String, u64, Scored)> = Vec::new();
    let mut neg_hard: Vec<Scored> = Vec::new();
    for r in &runs {
        for (i, o, cond) in &r.positives {
            let (Some(tu), Some(td)) = (&r.timelines[*i], &r.timelines[*o]) else {
                continue;
            };
            let sc = scorer.score(&r.conns[*i], tu, &r.conns[*o], td);
            if std::env::var_os("TRACE_BENCH_SHOW").is_some() && sc.packet_p > 1e-4 {
                let (u, d) = (&r.conns[*i], &r.conns[*o]);
                let j = judge_pair(tu, td, (d.start_ns, d.end_ns), true, &scorer.packet);
                eprintln!(
                    "weak positive: {} {cond} {}:{} -> {} -> {}:{} ({} s, {}+{} / {}+{} pkts): {:?}",
                    r.name, u.orig_h, u.orig_p, u.resp_h, d.resp_h, d.resp_p,
                    (d.end_ns - d.start_ns) / 1_000_000_000,
                    tu.orig.len(), tu.resp.len(), td.orig.len(), td.resp.len(), j
                );
            }
            pos.push((cond.clone(), r.relays, sc));
        }
        for (i, u) in r.conns.iter().enumerate() {
            for (o, d) in r.conns.iter().enumerate() {
                if i == o || r.true_pairs.contains(&(i, o)) || !candidate(u, d, &scorer.packet) {
                    continue;
                }
                if let (Some(tu), Some(td)) = (&r.timelines[i], &r.timelines[o]) {
                    neg_hard.push(scorer.score(u, tu, d, td));
                }
            }
        }
    }
    // Cross-run aligned negatives: inbound of run a, outbound of run b != a.
    let mut neg_cross: Vec<Scored> = Vec::new();
    // Two alignments per pair: the outbound starting 250 ms and 1 s after the inbound
    // (an `ssh -J` hop opens within a second).
    for lag in [250_000_000i64, 1_000_000_000] {
        for (a, ra) in runs.iter().enumerate() {
            for (b, rb) in runs.iter().enumerate() {
                if a == b || ra.seed == rb.seed {
                    continue;
                }
                for (i, u) in ra.conns.iter().enumerate() {
                    let Some(tu) = &ra.timelines[i] else { continue };
                    for (o, d) in rb.conns.iter().enumerate() {
                        let Some(td) = &rb.timelines[o] else { continue };
                        let dur = d.end_ns - d.start_ns;
                        if dur + lag > u.end_ns - u.start_ns || dur < 2_000_000_000 {
                            continue;
                        }
                        let by = u.start_ns + lag - d.start_ns;
                        // The outbound as aligned: scored, and read again by the
                        // diagnostics below.
                        let (d2, td2) = (shift_conn(d, by), shift_timeline(td, by));
                        let sc = scorer.score(u, tu, &d2, &td2);
                        if std::env::var_os("TRACE_BENCH_SHOW").is_some() && sc.packet_p <= 1e-3 {
                            let j = judge_pair(
                                tu,
                                &td2,
                                (d2.start_ns, d2.end_ns),
                                true,
                                &scorer.packet,
                            );
                            eprintln!(
                            "low-p negative: {} {}:{} -> {}:{} ({} s, {}+{} pkts) with {} {}:{} -> {}:{} ({} s, {}+{} pkts): {:?}",
                            ra.name, u.orig_h, u.orig_p, u.resp_h, u.resp_p, (u.end_ns - u.start_ns) / 1_000_000_000,
                            tu.orig.len(), tu.resp.len(),
                            rb.name, d.orig_h, d.orig_p, d.resp_h, d.resp_p, dur / 1_000_000_000,
                            td.orig.len(), td.resp.len(), j
                        );
                        }
                        if std::env::var_os("TRACE_BENCH_DUMP").is_some() && sc.packet_p <= 1e-4 {
                            eprintln!(
                                "negative at {:.2e}: {} :{} with {} :{}",
                                sc.packet_p, ra.name, u.orig_p, rb.name, d.orig_p
                            );
                            dump_timelines(u.start_ns, tu, &td2);
                        }
                        neg_cross.push(sc);
                    }
                }
            }
        }
    }
    let scoring_s = t0.elapsed().as_secs_f64();
    let neg: Vec<Scored> = neg_hard.iter().chain(&neg_cross).copied().collect();
    println!(
        "trace-bench: {} runs, {} positive pairs, {} negative pairs ({} hard negatives at the testbed's hosts, {} cross-run aligned); scoring took {:.1} s",
        runs.len(),
        pos.len(),
        neg.len(),
        neg_hard.len(),
        neg_cross.len(),
        scoring_s
    );
    println!(
        "runs: {}",
        runs.iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    type Pick = fn(&Scored) -> f64;
    let methods: [(&str, Pick); 3] = [
        ("packet", |s| s.packet),
        ("flow", |s| s.flow),
        ("zp", |s| s.zp),
    ];
    let print_group = |title: &str, groups: &BTreeMap<String, Vec<Scored>>| {
        println!("\n{title}");
        print!("{:<36} {:>5}", "", "pairs");
        for (m, _) in &methods {
            print!("  {:>9} {:>9}", format!("{m}@1e-3"), format!("{m}@1e-4"));
        }
        println!();
        for (g, v) in groups {
            print!("{g:<36} {:>5}", v.len());
            for (_, pick) in &methods {
                let p: Vec<f64> = v.iter().map(pick).collect();
                let n: Vec<f64> = neg.iter().map(pick).collect();
                print!(
                    "  {:>9} {:>9}",
                    fmt_rate(detection_at(&p, &n, 1e-3)),
                    fmt_rate(detection_at(&p, &n, 1e-4))
                );
            }
            println!();
        }
    };
    let mut by_cond: BTreeMap<String, Vec<Scored>> = BTreeMap::new();
    let mut by_relays: BTreeMap<String, Vec<Scored>> = BTreeMap::new();
    for (c, r, s) in &pos {
        by_cond.entry(c.clone()).or_default().push(*s);
        by_relays
            .entry(format!("{r} relay(s), all hops"))
            .or_default()
            .push(*s);
    }
    print_group(
        "detection rate at false-positive rate 1e-3 / 1e-4 per candidate pair, by hop condition",
        &by_cond,
    );
    print_group("by relay count (chain length)", &by_relays);
    let zp_rule_fp = neg.iter().filter(|s| s.zp > 0.0).count();
    let zp_rule_tp = pos.iter().filter(|p| p.2.zp > 0.0).count();
    println!(
        "\nzp's own rule (detect or not): {}/{} positives detected, {}/{} negatives detected (false-positive rate {:.2e})",
        zp_rule_tp,
        pos.len(),
        zp_rule_fp,
        neg.len(),
        zp_rule_fp as f64 / neg.len().max(1) as f64
    );
    println!(
        "\ncalibration on negatives: share with pair probability <= alpha (calibrated: <= alpha); count, and the count alpha x negatives would give"
    );
    println!("{:<8} {:>24} {:>24}", "alpha", "packet", "zp");
    for alpha in [0.1, 0.01, 1e-3, 1e-4] {
        let cell = |f: fn(&Scored) -> f64| {
            calibration_cell(
                neg.iter().filter(|s| f(s) <= alpha).count(),
                neg.len(),
                alpha,
            )
        };
        println!(
            "{alpha:<8} {:>24} {:>24}",
            cell(|s| s.packet_p),
            cell(|s| s.zp_p)
        );
    }
    let pos_p: Vec<f64> = pos.iter().map(|p| p.2.packet_p).collect();
    let small = pos_p.iter().filter(|&&p| p <= 1e-4).count();
    println!(
        "packet-mode positives with pair probability <= 1e-4: {small}/{}",
        pos_p.len()
    );

    on_background(&runs, Mode::Flow);
    on_background(&runs, Mode::Packet);

    // TRACE_BENCH_NO_THROUGHPUT=1: detection and calibration only (the throughput runs
    // take longer than the scoring and do not change with a detector's parameters).
    if std::env::var_os("TRACE_BENCH_NO_THROUGHPUT").is_some() {
        return;
    }
    auto_throughput(&runs);
    flow_throughput();
}

/// Throughput of `find_all_links` (auto method: packet mode where timelines exist) on
/// every run's connections, copied end to end 1×, 4× and 16×.
fn auto_throughput(runs: &[Run]) {
    // Throughput: every run's connections, copied end to end.
    println!("\nthroughput of find_all_links (auto method: packet where timelines exist), all runs' connections copied end to end");
    println!(
        "{:>5} {:>12} {:>10} {:>14} {:>8} {:>16}",
        "copies", "connections", "seconds", "conns/s", "growth", "conns/CPU-second"
    );
    let mut base: Option<f64> = None;
    for copies in [1usize, 4, 16] {
        let (conns, all) = replicate(runs, copies);
        let tl = Timelines::new(&conns, &all);
        let p = TraceParams::new("0.0.0.0/0".parse().expect("valid prefix"));
        let p = TraceParams {
            method: TraceMethod::Auto,
            packet: PacketParams {
                method: PacketMethod::Counting,
                ..p.packet.clone()
            },
            ..p
        };
        let t = Instant::now();
        let cpu0 = thread_cpu_seconds();
        let links = find_all_links(&conns, &tl, &p).expect("default parameters are valid");
        let s = t.elapsed().as_secs_f64();
        let cpu = thread_cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
        let per_s = conns.len() as f64 / s;
        let growth = base.map_or("1.00".to_string(), |b| format!("{:.2}", s / b));
        base.get_or_insert(s);
        println!(
            "{copies:>5} {:>12} {s:>10.3} {per_s:>14.0} {growth:>8} {:>16}   ({} links)",
            conns.len(),
            per_cpu_second(conns.len(), cpu),
            links.len()
        );
    }
}

/// Flow mode's throughput on a synthetic ISP-like record set (no timelines): `n`
/// connections among `n / 50` hosts that both serve and connect (so each host has about
/// 100 connections at every size: growth measures the method, not a denser host), over
/// six hours, start
/// uniform, duration log-uniform 0.1 s – 1 h, bytes log-uniform 200 B – 10 MB per
/// direction (seeded SplitMix64, the same every run). Every host is a possible relay, so
/// this is the per-host null at its most expensive. A last, denser set (`n / 500` hosts,
/// about 1,000 connections each) gives about 150,000 candidate pairs. The records are
/// independent by construction, so every link reported at a small probability is a
/// false one: the counts at ≤ 0.01 and ≤ 0.001 show whether per-host correction keeps
/// base rates from drowning the user.
fn flow_throughput() {
    let mut state = 0x5EED_u64;
    let mut unit = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    println!("\nthroughput of flow mode (find_links) on synthetic records: n/50 hosts (last two: about 1,280 hosts, denser, the last with over a million candidate pairs), six hours, no timelines; median of three runs (same links each); links = candidate pairs scored, all false by construction");
    println!(
        "{:>12} {:>6} {:>10} {:>14} {:>8} {:>10} {:>16} {:>9} {:>9}",
        "connections",
        "hosts",
        "seconds",
        "conns/s",
        "growth",
        "links",
        "conns/CPU-second",
        "p<=0.01",
        "p<=0.001"
    );
    let mut base: Option<f64> = None;
    for (n, per) in [
        (10_000usize, 50usize),
        (40_000, 50),
        (160_000, 50),
        (640_000, 50),
        (640_000, 500),
        (1_800_000, 1406),
    ] {
        let hosts = (n / per) as f64;
        let host = |x: f64| -> std::net::IpAddr {
            let k = (x * hosts) as u32;
            std::net::Ipv4Addr::from(0x0a00_0000 + k).into()
        };
        let mut conns: Vec<FlowConn> = (0..n)
            .map(|i| {
                let (a, mut b) = (host(unit()), host(unit()));
                if a == b {
                    b = host(unit());
                }
                let start = (unit() * 6.0 * 3600e9) as i64;
                let dur = (0.1f64.ln() + unit() * (3600f64.ln() - 0.1f64.ln())).exp();
                let bytes = |u: f64| (200f64.ln() + u * (1e7f64.ln() - 200f64.ln())).exp() as u64;
                FlowConn {
                    ids: vec![format!("s{i}").into()].into(),
                    vantages: vec!["isp".into()].into(),
                    proto: "tcp".into(),
                    orig_h: a,
                    orig_p: 40000,
                    resp_h: b,
                    resp_p: 22,
                    start_ns: start,
                    end_ns: start + (dur * 1e9) as i64,
                    orig_bytes: Some(bytes(unit())),
                    resp_bytes: Some(bytes(unit())),
                }
            })
            .collect();
        conns.sort_by_key(|c| c.start_ns);
        // Three runs, the median reported (a 10 k run lasts about 10 ms: one run is at
        // the mercy of the machine); every run must give the same links.
        let mut timings: Vec<(f64, Option<f64>)> = Vec::new();
        let mut links = Vec::new();
        for run in 0..3 {
            let t = Instant::now();
            let cpu0 = thread_cpu_seconds();
            let got =
                find_links(&conns, &FlowParams::default()).expect("default parameters are valid");
            timings.push((
                t.elapsed().as_secs_f64(),
                thread_cpu_seconds().zip(cpu0).map(|(b, a)| b - a),
            ));
            if run > 0 {
                assert!(same_links(&got, &links), "flow mode is not deterministic");
            }
            links = got;
        }
        timings.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (s, cpu) = timings[1];
        let growth = match (per, base) {
            (50, None) => "1.00".to_string(),
            (50, Some(b)) => format!("{:.2}", s / b),
            _ => "-".to_string(),
        };
        if per == 50 {
            base.get_or_insert(s);
        }
        let at_most = |a: f64| {
            links
                .iter()
                .filter(|l| l.false_match_probability.get() <= a)
                .count()
        };
        println!(
            "{n:>12} {:>6} {s:>10.3} {:>14.0} {growth:>8} {:>10} {:>16} {:>9} {:>9}",
            n / per,
            n as f64 / s,
            links.len(),
            per_cpu_second(n, cpu),
            at_most(0.01),
            at_most(0.001)
        );
    }
}

/// Whether two runs gave the same links with the same values, bit for bit.
fn same_links(a: &[Link], b: &[Link]) -> bool {
    let key = |l: &Link| {
        (
            l.relay,
            l.inbound,
            l.outbound,
            l.score.to_bits(),
            l.false_match_probability.get().to_bits(),
            l.false_match_probability_pair.get().to_bits(),
        )
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| key(x) == key(y))
}

/// CPU time of the calling thread, seconds, from `/proc/thread-self/schedstat` (Linux;
/// `None` elsewhere): the per-core figure even when another process shares the machine.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// `n` per CPU-second, or "n/a" without a CPU clock.
fn per_cpu_second(n: usize, cpu: Option<f64>) -> String {
    cpu.filter(|&c| c > 0.0)
        .map_or("n/a".into(), |c| format!("{:.0}", n as f64 / c))
}

/// All runs' connections and timelines, `copies` times, each copy later in time than
/// the last ends, with distinct ids.
fn replicate(runs: &[Run], copies: usize) -> (Vec<FlowConn>, BTreeMap<RowId, Timeline>) {
    let lo = runs
        .iter()
        .flat_map(|r| r.conns.iter().map(|c| c.start_ns))
        .min()
        .unwrap_or(0);
    let hi = runs
        .iter()
        .flat_map(|r| r.conns.iter().map(|c| c.end_ns))
        .max()
        .unwrap_or(0);
    let stride = hi - lo + 60_000_000_000;
    let mut conns = Vec::new();
    let mut all = BTreeMap::new();
    for k in 0..copies {
        let by = stride * k as i64;
        for r in runs {
            for (c, t) in r.conns.iter().zip(&r.timelines) {
                let mut c = shift_conn(c, by);
                c.ids = c.ids.iter().map(|id| format!("{id}#{k}").into()).collect();
                if let Some(t) = t {
                    all.insert(c.ids[0].clone(), shift_timeline(t, by));
                }
                conns.push(c);
            }
        }
    }
    conns.sort_by_key(|c| c.start_ns);
    (conns, all)
}

/// Which method [`on_background`] measures.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Flow,
    Packet,
}

/// The links of one host set with and without repeated sessions: (inbound, outbound,
/// relay, probability with, probability without).
fn links_both(
    mode: Mode,
    conns: &[FlowConn],
    all: &BTreeMap<RowId, Timeline>,
) -> Vec<(usize, usize, std::net::IpAddr, f64, f64)> {
    match mode {
        Mode::Flow => {
            let without = FlowParams {
                repeated_sessions: false,
                ..FlowParams::default()
            };
            let b: BTreeMap<(usize, usize), f64> = find_links(conns, &without)
                .expect("valid")
                .iter()
                .map(|l| ((l.inbound, l.outbound), l.false_match_probability.get()))
                .collect();
            find_links(conns, &FlowParams::default())
                .expect("valid")
                .iter()
                .map(|l| {
                    let pb = b.get(&(l.inbound, l.outbound)).copied().unwrap_or(1.0);
                    (
                        l.inbound,
                        l.outbound,
                        l.relay,
                        l.false_match_probability.get(),
                        pb,
                    )
                })
                .collect()
        }
        Mode::Packet => {
            let tl = Timelines::new(conns, all);
            find_packet_links(conns, &tl, &PacketParams::default())
                .expect("valid")
                .iter()
                .map(|l| {
                    // Without the repeated evidence: the pair value times the relay's
                    // candidates, as packet mode reports it then.
                    let single = (l.false_match_probability_pair.get()
                        * l.candidates_at_relay as f64)
                        .min(1.0);
                    (
                        l.inbound,
                        l.outbound,
                        l.relay,
                        l.false_match_probability.get(),
                        single,
                    )
                })
                .collect()
        }
    }
}

/// Packet or flow mode as a user runs it: each relay's links with their per-host
/// probabilities, with and without the repeated-session evidence.
///
/// - Positives: the labelled attack links, from the method over the run's own
///   connections (every vantage merged, as `trace` does).
/// - Negatives: (a) every other link of those runs that is not a labelled relay pair;
///   (b) cross-run relays: for two runs with different seeds and a relay R they share,
///   R's inbound connections of the first run and R's outbound connections of the
///   second, the second moved in time so that one of its attack outbounds starts 250 ms
///   after one of the first run's attack inbounds: one perfectly aligned session by
///   construction, the operator's other sessions unrelated — what an unrelated host that
///   happens to talk to the same places looks like. Every link of such a host is a
///   negative. Every (inbound, outbound) of the two runs' attack sessions is aligned once.
/// - Statistic: −ln of the link's false-match probability (per host, corrected).
fn on_background(runs: &[Run], mode: Mode) {
    let t0 = Instant::now();
    let name = if mode == Mode::Flow { "flow" } else { "packet" };
    // (condition, with, without) per positive; (with, without) per negative.
    let mut pos: Vec<(String, f64, f64)> = Vec::new();
    let mut neg: Vec<(f64, f64)> = Vec::new();
    let stat = |p: f64| -p.max(1e-300).ln();
    for r in runs {
        let links = links_both(mode, &r.conns, &r.all);
        let attack: BTreeMap<(usize, usize), &String> =
            r.positives.iter().map(|(i, o, c)| ((*i, *o), c)).collect();
        for &(i, o, _, pa, pb) in &links {
            if let Some(c) = attack.get(&(i, o)) {
                pos.push(((*c).clone(), stat(pa), stat(pb)));
            } else if !r.true_pairs.contains(&(i, o)) {
                neg.push((stat(pa), stat(pb)));
            }
        }
        // Attack links the method did not even make links: detected by nobody.
        for (i, o, c) in &r.positives {
            if !links.iter().any(|l| (l.0, l.1) == (*i, *o)) {
                pos.push((c.clone(), 0.0, 0.0));
            }
        }
    }
    let hard = neg.len();
    // Negatives that are samples of "unrelated" (for calibration): all but the aligned
    // pairs the cross-run hosts were built around.
    // Per column: the repeated values (`null_rep`) and the single ones (`null`).
    let mut null: Vec<(f64, f64)> = neg.clone();
    let mut null_rep: Vec<f64> = neg.iter().map(|n| n.0).collect();
    let lag = 250_000_000i64;
    let mut hosts = 0usize;
    for x in runs {
        for y in runs {
            if x.seed == y.seed {
                continue;
            }
            let x_in: Vec<usize> = x.positives.iter().map(|p| p.0).collect();
            for &xi in &x_in {
                let relay = x.conns[xi].resp_h;
                let y_out: Vec<usize> = y
                    .positives
                    .iter()
                    .map(|p| p.1)
                    .filter(|&o| y.conns[o].orig_h == relay)
                    .collect();
                for &yo in &y_out {
                    let by = x.conns[xi].start_ns + lag - y.conns[yo].start_ns;
                    let mut conns: Vec<FlowConn> = x
                        .conns
                        .iter()
                        .filter(|c| c.resp_h == relay)
                        .cloned()
                        .collect();
                    let mut all: BTreeMap<RowId, Timeline> = BTreeMap::new();
                    for c in &conns {
                        for id in &c.ids {
                            if let Some(t) = x.all.get(id) {
                                all.insert(id.clone(), t.clone());
                            }
                        }
                    }
                    for c in y.conns.iter().filter(|c| c.orig_h == relay) {
                        for id in &c.ids {
                            if let Some(t) = y.all.get(id) {
                                all.insert(id.clone(), shift_timeline(t, by));
                            }
                        }
                        conns.push(shift_conn(c, by));
                    }
                    let aligned = (x.conns[xi].ids.clone(), y.conns[yo].ids.clone());
                    let aligned_hosts = (x.conns[xi].orig_h, y.conns[yo].resp_h);
                    for (i, o, l_relay, pa, pb) in links_both(mode, &conns, &all) {
                        if l_relay != relay {
                            continue;
                        }
                        neg.push((stat(pa), stat(pb)));
                        // The aligned pair was chosen, not drawn: not a sample of the null.
                        if (conns[i].ids.clone(), conns[o].ids.clone()) != aligned {
                            null.push((stat(pa), stat(pb)));
                            // A link between the aligned pair's two hosts gets a repeated
                            // value whose pattern includes the chosen session: its single
                            // value is a sample of the null, its repeated one is not.
                            if (conns[i].orig_h, conns[o].resp_h) != aligned_hosts {
                                null_rep.push(stat(pa));
                            }
                            if std::env::var_os("TRACE_BENCH_SHOW").is_some() && pa.min(pb) <= 0.1 {
                                // Which sessions line up, and where, relative to the aligned
                                // inbound: the calibration's strongest negatives told apart
                                // (attack sessions of two runs, or their other traffic).
                                let (ci, co) = (&conns[i], &conns[o]);
                                let attack_in =
                                    x.positives.iter().any(|p| x.conns[p.0].ids == ci.ids);
                                let attack_out =
                                    y.positives.iter().any(|p| y.conns[p.1].ids == co.ids);
                                let t = |ns: i64| (ns - x.conns[xi].start_ns) as f64 / 1e9;
                                eprintln!(
                                    "{name} negative at {pb:.2e} (repeated {pa:.2e}) at {relay}: {} {} [{:.1}, {:.1}] s with {} {} [{:.1}, {:.1}] s",
                                    x.name,
                                    if attack_in { "attack inbound" } else { "other inbound" },
                                    t(ci.start_ns),
                                    t(ci.end_ns),
                                    y.name,
                                    if attack_out { "attack outbound" } else { "other outbound" },
                                    t(co.start_ns),
                                    t(co.end_ns),
                                );
                            }
                        }
                    }
                    hosts += 1;
                }
            }
        }
    }
    println!(
        "\n{name} mode on each relay's own background (per-host probabilities), with and without repeated sessions: {} positive links, {} negative links ({} at the runs' hosts, {} at {} cross-run relays), {:.1} s",
        pos.len(),
        neg.len(),
        hard,
        neg.len() - hard,
        hosts,
        t0.elapsed().as_secs_f64()
    );
    let mut by_cond: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (c, a, b) in &pos {
        by_cond.entry(c.clone()).or_default().push((*a, *b));
        by_cond.entry("all".to_string()).or_default().push((*a, *b));
    }
    println!(
        "{:<36} {:>5}  {:>11} {:>11}  {:>11} {:>11}  {:>12} {:>12}",
        "",
        "links",
        "rep@1e-3",
        "rep@1e-4",
        "single@1e-3",
        "single@1e-4",
        "rep p<=1e-3",
        "rep p<=1e-4"
    );
    let na: Vec<f64> = neg.iter().map(|n| n.0).collect();
    let nb: Vec<f64> = neg.iter().map(|n| n.1).collect();
    for (c, v) in &by_cond {
        let pa: Vec<f64> = v.iter().map(|x| x.0).collect();
        let pb: Vec<f64> = v.iter().map(|x| x.1).collect();
        let at = |t: f64| pa.iter().filter(|&&s| s >= -t.ln() - 1e-12).count();
        println!(
            "{c:<36} {:>5}  {:>11} {:>11}  {:>11} {:>11}  {:>12} {:>12}",
            v.len(),
            fmt_rate(detection_at(&pa, &na, 1e-3)),
            fmt_rate(detection_at(&pa, &na, 1e-4)),
            fmt_rate(detection_at(&pb, &nb, 1e-3)),
            fmt_rate(detection_at(&pb, &nb, 1e-4)),
            format!("{}/{}", at(1e-3), v.len()),
            format!("{}/{}", at(1e-4), v.len())
        );
    }
    println!(
        "calibration on {} of these negatives (all but the {} pairs aligned by construction; repeated: {}, also without the other links between an aligned pair's two hosts, whose pattern includes the chosen session): share with probability <= alpha",
        null.len(),
        neg.len() - null.len(),
        null_rep.len()
    );
    let na = null_rep;
    let nb: Vec<f64> = null.iter().map(|n| n.1).collect();
    println!("{:<8} {:>24} {:>24}", "alpha", "repeated", "single");
    for alpha in [0.1f64, 0.01, 1e-3, 1e-4] {
        let t = -alpha.ln();
        let cell = |v: &[f64]| {
            calibration_cell(
                v.iter().filter(|&&s| s >= t - 1e-12).count(),
                v.len(),
                alpha,
            )
        };
        println!("{alpha:<8} {:>24} {:>24}", cell(&na), cell(&nb));
    }
}

/// The four directions of a pair's timelines, in seconds after the inbound's start
/// (`TRACE_BENCH_DUMP=1`: how a look-alike negative lines up, packet by packet).
fn dump_timelines(t0: i64, u: &Timeline, d: &Timeline) {
    let rel = |v: &[i64]| {
        v.iter()
            .map(|t| format!("{:.3}", (t - t0) as f64 / 1e9))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (name, v) in [
        ("U.orig", &u.orig),
        ("U.resp", &u.resp),
        ("D.orig", &d.orig),
        ("D.resp", &d.resp),
    ] {
        eprintln!("  {name} {}", rel(v));
    }
}

/// One cell of a calibration table: the share of `n` negatives at or below `alpha`,
/// their count, and the count a calibrated method would stay under (`alpha · n`), so
/// that "4 where 2.2 were allowed" is not read like "400 where 220 were".
fn calibration_cell(count: usize, n: usize, alpha: f64) -> String {
    let share = count as f64 / n.max(1) as f64;
    format!("{share:.2e} ({count} / {:.1})", alpha * n as f64)
}
