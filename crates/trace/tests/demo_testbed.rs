//! The demo scenario's real captures (`demo/testbed-*.pcap.gz`, made by
//! testbed/make-demo.sh from real OpenSSH sessions) against their labels
//! (`demo/testbed-labels.json`): packet mode must rebuild the labelled chain hop by hop
//! with small false-match probabilities, link none of the hard negatives, stop where
//! the telemetry stops, and give the same bytes twice. The Zhang–Paxson baseline runs
//! on the same captures.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use relaytrace_ingest::ReadOptions;
use relaytrace_store::{Case, IngestOptions};
use relaytrace_trace::{trace_case, TraceMethod, TraceParams};
use serde_json::Value;

fn demo(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo")).join(name)
}

fn labels() -> Value {
    serde_json::from_str(&std::fs::read_to_string(demo("testbed-labels.json")).unwrap()).unwrap()
}

fn case_with(dir: &Path, vantages: &[&str]) -> Case {
    let case = Case::init(&dir.join("case"), "demo-testbed-test").unwrap();
    let mut ro = ReadOptions::default();
    for v in vantages {
        let o = IngestOptions {
            vantage: (*v).into(),
            format: None,
        };
        case.ingest(&demo(&format!("testbed-{v}.pcap.gz")), &o, &mut ro)
            .unwrap();
    }
    case
}

type Tuple = (String, u64, String, u64);

fn tuple(c: &Value) -> Tuple {
    (
        c["orig_h"].as_str().unwrap().to_string(),
        c["orig_p"].as_u64().unwrap(),
        c["resp_h"].as_str().unwrap().to_string(),
        c["resp_p"].as_u64().unwrap(),
    )
}

/// The labelled true relay pairs (attack and the admin's legitimate jump).
fn true_pairs(l: &Value) -> BTreeSet<(Tuple, Tuple)> {
    let conns: std::collections::BTreeMap<&str, &Value> = l["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c))
        .collect();
    l["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                tuple(conns[k["in"].as_str().unwrap()]),
                tuple(conns[k["out"].as_str().unwrap()]),
            )
        })
        .collect()
}

fn victim(l: &Value) -> String {
    let path = l["chains"][0]["path_ips"].as_array().unwrap();
    path.last().unwrap().as_str().unwrap().to_string()
}

#[test]
fn packet_mode_rebuilds_the_labelled_chain_and_links_no_negative() {
    let l = labels();
    let tmp = tempfile::tempdir().unwrap();
    let case = case_with(tmp.path(), &["victim", "relay2", "relay1"]);
    let p = TraceParams::new(victim(&l).parse().unwrap());
    let out = trace_case(&case, &p).unwrap();
    let chains = out.json["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 1, "{:#}", out.json);
    // Hops: victim, relay2, relay1, origin, then where telemetry ends.
    let mut want: Vec<String> = l["chains"][0]["path_ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    want.reverse();
    let got: Vec<String> = chains[0]["hops"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["ip"].as_str().map(str::to_string))
        .collect();
    assert_eq!(got, want);
    assert_eq!(chains[0]["sessions"], l["chains"].as_array().unwrap().len());
    let sessions = l["chains"].as_array().unwrap().len();
    for link in chains[0]["links"].as_array().unwrap() {
        assert_eq!(link["method"], "packet");
        assert!(
            link["false_match_probability"].as_f64().unwrap() <= 1e-4,
            "{link:#}"
        );
        // The origin came back: every session went the same way, and the pattern is
        // reported with the link (its value floored at 1e-9 like packet mode's own).
        let r = &link["repeated"];
        assert_eq!(r["sessions"], sessions, "{link:#}");
        assert_eq!(r["inbound_sessions"], sessions, "{link:#}");
        let rp = r["false_match_probability"].as_f64().unwrap();
        assert!((1e-9..=1e-6).contains(&rp), "{link:#}");
        let fmp = link["false_match_probability"].as_f64().unwrap();
        assert!(fmp <= 2.0 * rp * (1.0 + 1e-9), "{link:#}");
    }
    // Every candidate judged: true pairs small, every other pair above alpha.
    let truth = true_pairs(&l);
    let mut found = 0;
    for c in out.candidates() {
        let pair = (tuple(&c["inbound"]), tuple(&c["outbound"]));
        let fmp = c["false_match_probability"].as_f64().unwrap();
        if truth.contains(&pair) {
            found += 1;
            assert!(fmp <= 1e-4, "true pair with {fmp}: {c}");
        } else {
            assert!(fmp > p.alpha, "false pair linked: {c}");
        }
    }
    assert_eq!(
        found,
        truth.len(),
        "every labelled relay pair is a candidate"
    );
}

#[test]
fn chain_stops_where_the_telemetry_stops() {
    let l = labels();
    let tmp = tempfile::tempdir().unwrap();
    let case = case_with(tmp.path(), &["victim", "relay2"]);
    let out = trace_case(&case, &TraceParams::new(victim(&l).parse().unwrap())).unwrap();
    let hops = out.json["chains"][0]["hops"].as_array().unwrap().clone();
    let roles: Vec<&str> = hops.iter().map(|h| h["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["victim", "relay", "origin", "unknown-beyond"]);
    let relay1 = l["chains"][0]["path_ips"][1].as_str().unwrap();
    assert_eq!(hops[2]["ip"], relay1);
    assert!(hops[3]["note"].as_str().unwrap().contains(relay1));
}

#[test]
fn same_case_same_bytes_and_the_baseline_runs_on_it_too() {
    let l = labels();
    let tmp = tempfile::tempdir().unwrap();
    let case = case_with(tmp.path(), &["victim", "relay2", "relay1"]);
    let p = TraceParams::new(victim(&l).parse().unwrap());
    let a = serde_json::to_vec(&trace_case(&case, &p).unwrap().json).unwrap();
    let b = serde_json::to_vec(&trace_case(&case, &p).unwrap().json).unwrap();
    assert_eq!(a, b);
    let zp = TraceParams {
        method: TraceMethod::Zp,
        ..p.clone()
    };
    let out = trace_case(&case, &zp).unwrap();
    let truth = true_pairs(&l);
    // The baseline's detections on an undisturbed chain are true pairs only.
    assert!(out.candidates().next().is_some());
    for c in out.candidates() {
        let pair = (tuple(&c["inbound"]), tuple(&c["outbound"]));
        assert!(truth.contains(&pair), "zp detected a false pair: {c}");
        assert_eq!(c["method"], "zp");
    }
}

#[test]
fn netflow_of_the_same_traffic_pairs_into_the_labelled_connections() {
    // softflowd exports one record per direction; trace must join them into the
    // labelled connections (client as originator, both directions' bytes), so flow
    // mode judges the same pairs as packet mode.
    let l = labels();
    let tmp = tempfile::tempdir().unwrap();
    let case = Case::init(&tmp.path().join("case"), "demo-netflow-test").unwrap();
    let mut ro = ReadOptions::default();
    for v in ["victim", "relay2", "relay1"] {
        let o = IngestOptions {
            vantage: format!("{v}-netflow"),
            format: None,
        };
        case.ingest(&demo(&format!("testbed-{v}.netflow-v9.pcap")), &o, &mut ro)
            .unwrap();
    }
    let (obs, load) = relaytrace_trace::conn::load_case(&case).unwrap();
    assert_eq!(load.skipped, 0);
    assert!(obs.iter().all(|o| o.one_way), "softflowd rows are one-way");
    let conns = relaytrace_trace::merge(obs, 1_000_000_000);
    let have: BTreeSet<Tuple> = conns
        .iter()
        .filter(|c| c.orig_bytes.is_some() && c.resp_bytes.is_some())
        .map(|c| {
            (
                c.orig_h.to_string(),
                u64::from(c.orig_p),
                c.resp_h.to_string(),
                u64::from(c.resp_p),
            )
        })
        .collect();
    let ids: BTreeSet<&str> = l["chains"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["hops"].as_array().unwrap().iter())
        .map(|h| h.as_str().unwrap())
        .collect();
    let hops: Vec<Tuple> = l["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| ids.contains(c["id"].as_str().unwrap()))
        .map(tuple)
        .collect();
    assert_eq!(hops.len(), 6, "two sessions of three hops");
    for h in &hops {
        assert!(
            have.contains(h),
            "hop {h:?} not a two-way connection in {have:?}"
        );
    }
    // And flow mode makes every labelled attack pair a candidate.
    let p = TraceParams {
        method: TraceMethod::Flow,
        ..TraceParams::new(victim(&l).parse().unwrap())
    };
    let out = trace_case(&case, &p).unwrap();
    let truth = true_pairs(&l);
    let found: BTreeSet<(Tuple, Tuple)> = out
        .candidates()
        .map(|c| (tuple(&c["inbound"]), tuple(&c["outbound"])))
        .filter(|pair| truth.contains(pair))
        .collect();
    assert!(
        found.len() >= 4,
        "attack pairs among flow candidates: {found:?}"
    );
}
