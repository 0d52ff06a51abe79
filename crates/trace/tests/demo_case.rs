//! The bundled demo case (`demo/`), through the library: the chain the demo's story
//! describes must come out, the unrelated flows must not be linked, the finding must
//! be byte-for-byte repeatable and recorded once, and enrichment must reach the hops.

use std::fs;
use std::path::{Path, PathBuf};

use relaytrace_ingest::ReadOptions;
use relaytrace_store::{digest::sha256_hex, verify, Case, IngestOptions};
use relaytrace_trace::{record, trace_case, Role, TraceParams};
use serde_json::{json, Map, Value};

fn demo_file(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo")).join(name)
}

fn demo_case(dir: &Path) -> Case {
    let case = Case::init(&dir.join("case"), "trace-demo-test").unwrap();
    let mut ro = ReadOptions::default();
    for (name, vantage) in [
        ("victim-edge.conn.log", "victim-edge"),
        ("relay-isp.eve.json", "relay-isp"),
    ] {
        let o = IngestOptions {
            vantage: vantage.into(),
            format: None,
        };
        case.ingest(&demo_file(name), &o, &mut ro).unwrap();
    }
    case
}

fn ips(v: &Value, role_filter: bool) -> Vec<(Option<String>, String)> {
    v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| !role_filter || h["role"] != "unknown-beyond")
        .map(|h| {
            (
                h["ip"].as_str().map(str::to_string),
                h["role"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn demo_chain_victim_relay_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo_case(tmp.path());
    let p = TraceParams::new("203.0.113.7".parse().unwrap());
    let out = trace_case(&case, &p).unwrap();
    let chains = out.json["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 1, "{:#}", out.json);
    let c = &chains[0];
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        ips(c, false),
        [
            (s("203.0.113.7"), "victim".to_string()),
            (s("198.51.100.23"), "relay".to_string()),
            (s("192.0.2.66"), "origin".to_string()),
            (None, "unknown-beyond".to_string()),
        ]
    );
    assert_eq!(
        c["hops"][3]["note"],
        "no data from the network of 192.0.2.66 beyond this hop"
    );
    assert_eq!(c["sessions"], 2);
    let links = c["links"].as_array().unwrap();
    assert_eq!(links.len(), 1);
    let l = &links[0];
    assert_eq!(l["from"], "192.0.2.66");
    assert_eq!(l["to"], "203.0.113.7");
    assert_eq!(l["method"], "flow");
    assert_eq!(l["vantages"], json!(["relay-isp", "victim-edge"]));
    // Two sessions in 40 minutes at a quiet relay: for each alone the arrival floor
    // decides (the shift null finds nothing as good, 1/1001): about 2e-3 each. The same
    // origin came back through the same relay to the same victim, and both sessions
    // matched: the repeated pattern (truncated product of the two) is far less likely by
    // chance, and the link reports twice its value (Bonferroni over the two values).
    let single = l["false_match_probability_pair"].as_f64().unwrap();
    assert!(single > 1e-3 && single <= 1e-2, "{l:#}");
    let r = &l["repeated"];
    assert_eq!(r["sessions"], 2, "{l:#}");
    assert_eq!(r["inbound_sessions"], 2, "{l:#}");
    let rp = r["false_match_probability"].as_f64().unwrap();
    assert!(rp < single * single * 20.0, "{l:#}");
    let fmp = l["false_match_probability"].as_f64().unwrap();
    assert!((fmp - 2.0 * rp).abs() < 1e-15, "{l:#}");
    // Two sessions, each inbound at the ISP; outbound at the ISP and the victim's
    // edge (merged, not counted twice): 2 + 4 ids.
    assert_eq!(l["inbound_ids"].as_array().unwrap().len(), 2);
    assert_eq!(l["outbound_ids"].as_array().unwrap().len(), 4);
    assert_eq!(out.chains[0].hops[1].role, Role::Relay);

    // The DNS flow from the relay and the victim's other traffic are in no link.
    let ids: Vec<&str> = l["conn_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let (obs, _) = relaytrace_trace::conn::load_case(&case).unwrap();
    for o in &obs {
        let linked = ids.contains(&o.id.to_string().as_str());
        let in_chain = &*o.proto == "tcp"
            && ((o.orig_h.to_string() == "192.0.2.66" && o.resp_h.to_string() == "198.51.100.23")
                || (o.orig_h.to_string() == "198.51.100.23"
                    && o.resp_h.to_string() == "203.0.113.7"));
        assert_eq!(linked, in_chain, "{o:?}");
    }
    assert_eq!(out.json["summary"]["candidate_links"], 2);
}

#[test]
fn finding_is_deterministic_and_recorded_once() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo_case(tmp.path());
    let p = TraceParams::new("203.0.113.0/24".parse().unwrap());
    let a = trace_case(&case, &p).unwrap();
    let b = trace_case(&case, &p).unwrap();
    assert_eq!(
        serde_json::to_vec(&a.json).unwrap(),
        serde_json::to_vec(&b.json).unwrap()
    );
    let r1 = record(&case, &a, &p).unwrap();
    assert!(r1.added);
    let bytes = fs::read(case.root().join(&r1.path)).unwrap();
    assert_eq!(sha256_hex(&bytes), r1.sha256);
    assert!(r1.path.starts_with("findings/trace-"));
    let r2 = record(&case, &b, &p).unwrap();
    assert!(!r2.added);
    let traces: Vec<_> = case
        .ledger()
        .entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.kind() == "trace")
        .collect();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].body["parameters"]["victim"], "203.0.113.0/24");
    assert_eq!(traces[0].body["outputs"][0]["sha256"], r1.sha256.as_str());
    // The finding is checked by `case verify` like any output.
    assert!(verify(&case).unwrap().ok());
    fs::write(case.root().join(&r1.path), b"{}").unwrap();
    assert!(!verify(&case).unwrap().ok());
}

#[test]
fn enrichment_reaches_the_hops() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo_case(tmp.path());
    let lines = [
        json!({"addr": "198.51.100.23", "asn": 64500, "org": "Relay Hosting", "country": "ZZ", "snapshot": "ab12"}),
        json!({"addr": "192.0.2.66", "asn": 64501, "org": "Origin Net", "country": "YY", "snapshot": "ab12"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let rel = "tables/enrich/test.jsonl";
    fs::create_dir_all(case.root().join("tables/enrich")).unwrap();
    fs::write(case.root().join(rel), &text).unwrap();
    let mut fields = Map::new();
    fields.insert(
        "outputs".into(),
        json!([{"table": "enrich", "path": rel, "sha256": sha256_hex(text.as_bytes())}]),
    );
    case.ledger().append("enrich", fields).unwrap();
    let out = trace_case(&case, &TraceParams::new("203.0.113.7".parse().unwrap())).unwrap();
    let hops = &out.json["chains"][0]["hops"];
    assert_eq!(hops[0]["asn"], Value::Null, "victim not in the table");
    assert_eq!(hops[1]["asn"], 64500);
    assert_eq!(hops[1]["org"], "Relay Hosting");
    assert_eq!(hops[2]["country"], "YY");
    assert_eq!(hops[2]["snapshot"], "ab12");
}

#[test]
fn outside_the_time_window_nothing_is_linked() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo_case(tmp.path());
    let mut p = TraceParams::new("203.0.113.7".parse().unwrap());
    // A day after the demo's sessions (2026-11-02 03:00–03:42 UTC).
    p.since_ns = Some(1_793_700_000_000_000_000);
    let out = trace_case(&case, &p).unwrap();
    assert!(out.chains.is_empty(), "{:#}", out.json);
}
