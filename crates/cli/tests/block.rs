//! `relaytrace block` through the real binary on a case of the hand-written examples: decisions and their
//! reasons (with and without an assessment, allowlist), the ledger entry, covers,
//! collateral, and byte-identical renderings.

use std::fs;
use std::path::Path;

use relaytrace_store::{digest::sha256_hex, Case};
use serde_json::{json, Map, Value};

mod common;
use common::{ok, run};

const NOW: &str = "2026-11-30T00:00:00Z";

/// A case from the hand-written example inputs in `demo/` (documentation addresses:
/// 192.0.2.66 -> relay 198.51.100.23 -> victim 203.0.113.7), traced in flow mode.
fn demo(dir: &Path) -> String {
    let case = dir.join("demo-case");
    let c = case.to_str().unwrap().to_string();
    let input = |name: &str| format!("{}/../../demo/{name}", env!("CARGO_MANIFEST_DIR"));
    ok(&["case", "init", &c]);
    ok(&[
        "ingest",
        "--case",
        &c,
        "--vantage",
        "victim-edge",
        &input("victim-edge.conn.log"),
    ]);
    ok(&[
        "ingest",
        "--case",
        &c,
        "--vantage",
        "relay-isp",
        &input("relay-isp.eve.json"),
    ]);
    ok(&["trace", "--case", &c, "--victim", "203.0.113.7"]);
    c
}

/// Writes a file into the case and logs it in the ledger as `kind` with an output
/// in `table`, the way the producing stage would.
fn add_output(case: &str, kind: &str, table: &str, rel: &str, bytes: &[u8]) {
    let c = Case::open(Path::new(case)).unwrap();
    let path = c.root().join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, bytes).unwrap();
    let mut fields = Map::new();
    fields.insert(
        "outputs".into(),
        json!([{ "table": table, "path": rel, "sha256": sha256_hex(bytes) }]),
    );
    c.ledger().append(kind, fields).unwrap();
}

/// Enrichment for the origin: its covering prefix and AS, as `enrich` writes it.
fn enrich_origin(case: &str) {
    let line = json!({"addr": "192.0.2.66", "prefix": "192.0.2.0/24", "asn": 64496,
        "org": "Example Origin Net", "country": "ZZ", "snapshot": "test-snapshot"});
    add_output(
        case,
        "enrich",
        "enrich",
        "tables/enrich/test.jsonl",
        format!("{line}\n").as_bytes(),
    );
}

fn assess(case: &str, probability: f64, confidence: &str) {
    let finding = json!({
        "verdict": "assessed",
        "hypotheses": [
            {"id": "h1", "name": "actor at the origin network", "probability": probability,
             "words": "likely", "origin": {"countries": [], "asns": [64496], "prefixes": ["192.0.2.0/24"]}},
            {"id": "h2", "name": "someone else", "probability": 1.0 - probability, "words": "unlikely"}
        ],
        "confidence": confidence,
        "leading": "h1",
        "missing_evidence": []
    });
    let bytes = serde_json::to_vec_pretty(&finding).unwrap();
    let rel = format!("findings/assess-{}.json", &sha256_hex(&bytes)[..16]);
    add_output(case, "assess", "findings", &rel, &bytes);
}

fn plan_json(case: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "block", "plan", "--case", case, "--now", NOW, "--format", "json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(&args)).unwrap()
}

fn decision<'a>(plan: &'a Value, kind: &str, target: &str) -> &'a Value {
    plan["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == kind && d["target"] == target)
        .unwrap_or_else(|| panic!("no {kind} {target} in {:#}", plan["decisions"]))
}

fn rules(plan: &Value) -> Vec<String> {
    plan["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["prefix"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn without_assessment_relays_are_blocked_and_networks_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    enrich_origin(&case);
    let plan = plan_json(&case, &[]);
    assert_eq!(
        decision(&plan, "relay", "198.51.100.23/32")["blocked"],
        true
    );
    assert_eq!(
        decision(&plan, "origin-address", "192.0.2.66/32")["blocked"],
        true
    );
    let p = decision(&plan, "origin-prefix", "192.0.2.0/24");
    assert_eq!(p["blocked"], false);
    assert_eq!(p["reason"], "no assessment");
    let a = decision(&plan, "origin-asn", "AS64496");
    assert_eq!(
        (a["blocked"].clone(), a["reason"].clone()),
        (json!(false), json!("no assessment"))
    );
    assert_eq!(rules(&plan), ["192.0.2.66/32", "198.51.100.23/32"]);
    // The victim is never a target.
    assert!(!rules(&plan).iter().any(|r| r.starts_with("203.0.113.7")));
    // Relay rule: the attack's connections are counted apart from the collateral.
    let relay = &plan["rules"][1];
    assert!(relay["collateral"]["attack_flows"].as_u64().unwrap() > 0);
    // Side by side: relays vs the origin network.
    let cmp = plan["comparison"].as_array().unwrap();
    assert_eq!(cmp[0]["addresses"], "2");
    assert_eq!(cmp[1]["addresses"], "256");
    assert!(cmp[1]["policy"].as_str().unwrap().contains("no assessment"));

    // The ledger holds every decision with the policy's digest.
    let c = Case::open(Path::new(&case)).unwrap();
    let entries = c.ledger().entries().unwrap();
    let e = entries
        .iter()
        .rev()
        .find(|e| e.kind() == "block-plan")
        .unwrap();
    assert_eq!(
        e.body["policy_sha256"],
        sha256_hex(relaytrace_block::policy::DEFAULT_POLICY.as_bytes())
    );
    let ds = e.body["decisions"].as_array().unwrap();
    assert!(ds
        .iter()
        .any(|d| d["action"] == "refuse" && d["reason"] == "no assessment"));
    assert!(ds
        .iter()
        .any(|d| d["action"] == "block" && d["target"] == "198.51.100.23/32"));
    ok(&["case", "verify", &case]);
}

#[test]
fn a_likely_assessment_blocks_the_prefix_and_a_weak_one_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    enrich_origin(&case);
    assess(&case, 0.4, "moderate");
    let weak = plan_json(&case, &[]);
    let p = decision(&weak, "origin-prefix", "192.0.2.0/24");
    assert_eq!(p["blocked"], false);
    assert!(
        p["reason"]
            .as_str()
            .unwrap()
            .contains("probability 0.40 < policy minimum 0.55"),
        "{p}"
    );

    assess(&case, 0.7, "low");
    let low = plan_json(&case, &[]);
    let p = decision(&low, "origin-prefix", "192.0.2.0/24");
    assert!(
        p["reason"]
            .as_str()
            .unwrap()
            .contains("confidence low < policy minimum moderate"),
        "{p}"
    );

    assess(&case, 0.7, "moderate");
    let strong = plan_json(&case, &[]);
    assert_eq!(
        decision(&strong, "origin-prefix", "192.0.2.0/24")["blocked"],
        true
    );
    assert_eq!(decision(&strong, "origin-asn", "AS64496")["blocked"], true);
    // The origin /32 lies inside the longer-lasting /24 and is merged away.
    assert_eq!(rules(&strong), ["192.0.2.0/24", "198.51.100.23/32"]);
    assert!(strong["assess"]["path"]
        .as_str()
        .unwrap()
        .starts_with("findings/assess-"));
}

#[test]
fn allowlisted_targets_are_refused_with_the_entry_named() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    let policy = tmp.path().join("policy.toml");
    fs::write(
        &policy,
        relaytrace_block::policy::DEFAULT_POLICY.replace(
            "partner_prefixes = []",
            "partner_prefixes = [\"198.51.100.0/24\"]",
        ),
    )
    .unwrap();
    let plan = plan_json(&case, &["--policy", policy.to_str().unwrap()]);
    let r = decision(&plan, "relay", "198.51.100.23/32");
    assert_eq!(r["blocked"], false);
    assert_eq!(r["reason"], "allowlisted: 198.51.100.0/24 (partner prefix)");
    assert_eq!(rules(&plan), ["192.0.2.66/32"]);
    assert_ne!(
        plan["policy_sha256"],
        sha256_hex(relaytrace_block::policy::DEFAULT_POLICY.as_bytes())
    );
}

#[test]
fn bad_policy_is_reported_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    let policy = tmp.path().join("bad.toml");
    fs::write(&policy, "[relay]\nmin_score = \"high\"\n").unwrap();
    let o = run(&[
        "block",
        "plan",
        "--case",
        &case,
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml") && err.contains("line 2"), "{err}");
}

#[test]
fn renderings_are_byte_identical_and_name_the_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    plan_json(&case, &[]);
    // A time before the plan's would stretch every timeout: refused.
    let early = [
        "block", "render", "--case", &case, "--to", "nftables", "--now",
    ];
    let o = run(&[&early[..], &["2020-01-01"]].concat());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is before the plan was made (2026-11-30T00:00:00"),
        "{err}"
    );
    let targets: [&[&str]; 10] = [
        &["--to", "nftables"],
        &["--to", "iptables"],
        &["--to", "flowspec-gobgp"],
        &["--to", "flowspec-exabgp"],
        &["--to", "flowspec-bird"],
        &["--to", "rtbh"],
        &["--to", "rtbh", "--speaker", "exabgp"],
        &["--to", "rtbh", "--speaker", "bird"],
        &["--to", "cidr-list"],
        &["--to", "stix"],
    ];
    for t in targets {
        let mut args = vec!["block", "render", "--case", &case];
        args.extend_from_slice(t);
        let a = ok(&args);
        let b = ok(&args);
        assert_eq!(a, b, "{t:?} differs between two renderings");
        assert!(a.contains("198.51.100.23/32"), "{t:?}: {a}");
    }
    let stix: Value =
        serde_json::from_str(&ok(&["block", "render", "--case", &case, "--to", "stix"])).unwrap();
    let ind = &stix["objects"][1];
    assert_eq!(ind["pattern"], "[ipv4-addr:value = '198.51.100.23/32']");
    assert_eq!(ind["valid_from"], "2026-11-30T00:00:00.000000Z");
    assert_eq!(ind["valid_until"], "2026-12-07T00:00:00.000000Z");
    let list = ok(&["block", "render", "--case", &case, "--to", "cidr-list"]);
    let lines: Vec<&str> = list.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[1].starts_with("198.51.100.23/32 # relay"), "{list}");
    // Expiry: nothing before the week is up, both rules after.
    let before = run(&[
        "block",
        "expire",
        "--case",
        &case,
        "--to",
        "cidr-list",
        "--now",
        "2026-12-06T23:59:59Z",
    ]);
    assert!(String::from_utf8_lossy(&before.stderr).contains("0 of 2 rule(s) expired"));
    let after = run(&[
        "block",
        "expire",
        "--case",
        &case,
        "--to",
        "cidr-list",
        "--now",
        "2026-12-07T00:00:00Z",
    ]);
    assert!(String::from_utf8_lossy(&after.stderr).contains("2 of 2 rule(s) expired"));
    assert!(String::from_utf8_lossy(&after.stdout).contains("198.51.100.23/32 # expired"));
}

#[test]
fn same_inputs_give_the_same_plan_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    let count = || {
        fs::read_dir(Path::new(&case).join("findings"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("block-plan-")
            })
            .count()
    };
    let a = ok(&[
        "block", "plan", "--case", &case, "--now", NOW, "--format", "json",
    ]);
    let plans = count();
    let table = ok(&["block", "plan", "--case", &case, "--now", NOW]);
    assert!(table.contains("already in the ledger"), "{table}");
    let b = ok(&[
        "block", "plan", "--case", &case, "--now", NOW, "--format", "json",
    ]);
    assert_eq!(a, b);
    assert_eq!(count(), plans, "the same plan was stored twice");
}

#[test]
fn allowlisted_addresses_are_carved_out_of_a_blocked_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    // An assessment whose footprint is a /24 holding a public resolver.
    let finding = json!({
        "verdict": "assessed",
        "hypotheses": [{"id": "h1", "name": "x", "probability": 0.8, "words": "likely",
                        "origin": {"prefixes": ["8.8.8.0/24"]}}],
        "confidence": "high", "leading": "h1", "missing_evidence": []
    });
    let bytes = serde_json::to_vec(&finding).unwrap();
    add_output(
        &case,
        "assess",
        "findings",
        "findings/assess-carve.json",
        &bytes,
    );
    let plan = plan_json(&case, &[]);
    let d = decision(&plan, "origin-prefix", "8.8.8.0/24");
    assert_eq!(d["blocked"], true);
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("carved out: 8.8.8.8/32 (public resolver (Google))"),
        "{d}"
    );
    let ps: Vec<&str> = d["prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(ps.len(), 8, "{ps:?}");
    assert!(!ps.contains(&"8.8.8.8/32"));
    let list = ok(&["block", "render", "--case", &case, "--to", "cidr-list"]);
    assert!(
        list.contains("8.8.8.9/32") && !list.contains("8.8.8.8/32 "),
        "{list}"
    );
}

#[test]
fn an_origin_asn_expands_to_every_prefix_the_snapshot_gives_it() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    // A snapshot where the origin's AS holds two separate ranges, one of which the
    // case never saw; the relay belongs to another AS.
    let csv = tmp.path().join("asn.csv");
    fs::write(
        &csv,
        "192.0.2.0,192.0.2.255,64496,Origin Net\n\
         203.0.113.128,203.0.113.255,64496,Origin Net\n\
         198.51.100.0,198.51.100.255,64511,Relay Hosting\n",
    )
    .unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    ok(&[
        "data",
        "update",
        "--data-dir",
        data,
        "--no-defaults",
        "--asn-csv",
        csv.to_str().unwrap(),
    ]);
    ok(&["enrich", "--case", &case, "--data-dir", data]);
    assess(&case, 0.7, "moderate");

    let plan = plan_json(&case, &["--data-dir", data]);
    let a = decision(&plan, "origin-asn", "AS64496");
    assert_eq!(a["blocked"], true, "{a}");
    assert_eq!(a["prefixes"], json!(["192.0.2.0/24", "203.0.113.128/25"]));
    assert!(
        a["support"]["source"]
            .as_str()
            .unwrap()
            .contains("every prefix of AS64496 in snapshot"),
        "{a}"
    );
    assert!(
        rules(&plan).contains(&"203.0.113.128/25".to_string()),
        "{:?}",
        rules(&plan)
    );
    // The origin's covering prefix came from the enrichment table.
    assert_eq!(
        decision(&plan, "origin-prefix", "192.0.2.0/24")["blocked"],
        true
    );

    // Without the snapshot (another data directory): only what the case saw.
    let empty = tmp.path().join("empty");
    let plan = plan_json(&case, &["--data-dir", empty.to_str().unwrap()]);
    let a = decision(&plan, "origin-asn", "AS64496");
    assert_eq!(a["prefixes"], json!(["192.0.2.0/24"]));
    assert!(
        a["support"]["source"]
            .as_str()
            .unwrap()
            .contains("snapshot not available"),
        "{a}"
    );
}

/// A case enriched again with other data after the trace: the plan would target the
/// AS the new snapshot gives, not the one the trace (and the assessment) named, so it
/// is refused, naming the hop and both snapshots, until the case is traced again.
#[test]
fn a_plan_refuses_a_trace_whose_hops_were_enriched_from_another_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    let snapshot = |name: &str, origin_asn: u32| {
        let csv = tmp.path().join(format!("{name}.csv"));
        fs::write(
            &csv,
            format!("192.0.2.0,192.0.2.255,{origin_asn},Origin Net\n"),
        )
        .unwrap();
        let data = tmp.path().join(name);
        let data = data.to_str().unwrap().to_string();
        ok(&[
            "data",
            "update",
            "--data-dir",
            &data,
            "--no-defaults",
            "--asn-csv",
            csv.to_str().unwrap(),
        ]);
        data
    };
    let first = snapshot("first", 64496);
    ok(&["enrich", "--case", &case, "--data-dir", &first]);
    ok(&["trace", "--case", &case, "--victim", "203.0.113.7"]);
    assess(&case, 0.7, "moderate");
    let plan = plan_json(&case, &["--data-dir", &first]);
    assert_eq!(decision(&plan, "origin-asn", "AS64496")["blocked"], true);

    // The same address in another AS in newer data.
    let second = snapshot("second", 64511);
    ok(&["enrich", "--case", &case, "--data-dir", &second]);
    let o = run(&[
        "block",
        "plan",
        "--case",
        &case,
        "--now",
        NOW,
        "--data-dir",
        &second,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    // The first hop in the finding's order (the victim; every hop was enriched again).
    assert!(err.contains("reported 203.0.113.7 from snapshot "), "{err}");
    assert!(
        err.contains("enrichment now answers from snapshot "),
        "{err}"
    );
    assert!(err.contains("run `relaytrace trace`"), "{err}");
    let snaps: Vec<&str> = err
        .split("snapshot ")
        .skip(1)
        .map(|s| s.split([',', ':', ' ']).next().unwrap())
        .collect();
    assert_eq!(snaps.len(), 2, "{err}");
    assert_ne!(snaps[0], snaps[1], "{err}");

    // Traced again: the plan targets the AS the findings now name (and still
    // considers the example assessment's AS64496, of which the new data knows no prefix).
    ok(&["trace", "--case", &case, "--victim", "203.0.113.7"]);
    let plan = plan_json(&case, &["--data-dir", &second]);
    let targets: Vec<&str> = plan["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"] == "origin-asn")
        .map(|d| d["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["AS64496", "AS64511"], "{plan}");
    assert_eq!(decision(&plan, "origin-asn", "AS64511")["blocked"], true);
    assert_eq!(decision(&plan, "origin-asn", "AS64496")["blocked"], false);
}

/// An origin without enrichment is refused because its network is unknown, not as
/// "outside the footprint" (which it may well be inside).
#[test]
fn an_unenriched_origin_is_refused_for_its_unknown_network() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    assess(&case, 0.7, "moderate");
    let plan = plan_json(&case, &[]);
    let d = decision(&plan, "origin-prefix", "network of 192.0.2.66");
    assert_eq!(d["blocked"], false);
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no enrichment for 192.0.2.66"),
        "{reason}"
    );
    assert!(!reason.contains("outside"), "{reason}");
}

/// The newest trace finding's `{"path", "sha256"}`, as `assess` records what it weighed.
fn newest_trace(case: &str) -> Value {
    let c = Case::open(Path::new(case)).unwrap();
    let entries = c.ledger().entries().unwrap();
    let e = entries.iter().rev().find(|e| e.kind() == "trace").unwrap();
    let out = &e.body["outputs"][0];
    json!({"path": out["path"], "sha256": out["sha256"]})
}

#[test]
fn a_plan_refuses_an_assessment_made_on_another_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    enrich_origin(&case);
    let assess_on = |trace: Value| {
        let finding = json!({
            "verdict": "assessed",
            "hypotheses": [{"id": "h1", "name": "someone", "probability": 0.5, "words": "roughly even chance"}],
            "confidence": "low", "leading": "h1", "missing_evidence": [],
            "inputs": {"evidence": null, "trace": trace, "as_of": null},
        });
        let bytes = serde_json::to_vec_pretty(&finding).unwrap();
        let rel = format!("findings/assess-{}.json", &sha256_hex(&bytes)[..16]);
        add_output(&case, "assess", "findings", &rel, &bytes);
    };
    assess_on(newest_trace(&case));
    plan_json(&case, &[]);
    // A trace of another victim after the assessment.
    let first = newest_trace(&case);
    ok(&["trace", "--case", &case, "--victim", "198.51.100.99"]);
    let args = ["block", "plan", "--case", &case, "--now", NOW];
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let (old, new) = (
        first["path"].as_str().unwrap(),
        newest_trace(&case)["path"].clone(),
    );
    assert!(
        err.contains(&format!("weighed trace finding {old}")),
        "{err}"
    );
    assert!(err.contains(new.as_str().unwrap()), "{err}");
    assert!(err.contains("run `relaytrace assess` again"), "{err}");
    // An assessment made before any trace is as stale.
    assess_on(Value::Null);
    let err = String::from_utf8_lossy(&run(&args).stderr).to_string();
    assert!(err.contains("weighed no trace finding"), "{err}");
    // Assessed again on the newest trace: planned.
    assess_on(newest_trace(&case));
    plan_json(&case, &[]);
}

#[test]
fn a_malformed_assessment_is_an_error_naming_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let case = demo(tmp.path());
    let finding = json!({"verdict": "assessed", "confidence": "high", "leading": "h1",
        "hypotheses": [{"id": "h1", "probability": 0.9, "origin": {"prefixes": ["192.0.2.0/33"]}}]});
    add_output(
        &case,
        "assess",
        "findings",
        "findings/assess-bad.json",
        finding.to_string().as_bytes(),
    );
    let o = run(&["block", "plan", "--case", &case]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("assess-bad.json") && err.contains("hypotheses[0].origin.prefixes[0]"),
        "{err}"
    );
    // A finding altered after it was recorded is refused too.
    fs::write(Path::new(&case).join("findings/assess-bad.json"), "{}").unwrap();
    let o = run(&["block", "plan", "--case", &case]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("differs from the ledger"), "{err}");
}
