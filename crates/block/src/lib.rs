//! Block: rules a partner's network can enforce, with the collateral measured first
//! (design section 6, issue 6).
//!
//! Overview:
//! - [`inputs`] reads what a plan is built from: the newest `trace` and `assess`
//!   findings (digest-checked against the ledger), the enrichment tables, the
//!   stored connections.
//! - [`asn`] expands an AS to every prefix an enrichment snapshot gives it.
//! - [`policy`] is the TOML policy (default embedded: [`policy::DEFAULT_POLICY`]):
//!   gates per target kind, expiries, the allowlist.
//! - [`plan::build`] turns findings into decisions (taken or refused, with the
//!   reason), merges the taken prefixes into minimal covers ([`prefix`]) and
//!   measures each rule's [`collateral`]; [`record`] writes the plan to
//!   `findings/block-plan-<sha16>.json` and logs every decision in the ledger
//!   (kind `block-plan`) with the policy's digest.
//! - [`render`] writes a plan for nftables, iptables+ipset, GoBGP / ExaBGP / BIRD
//!   FlowSpec, RTBH, CIDR lists and STIX; the same plan always renders to the same
//!   bytes, and [`render::expire`] renders the removal of what has run out.

pub mod asn;
pub mod collateral;
pub mod error;
pub mod inputs;
pub mod plan;
pub mod policy;
pub mod prefix;
pub mod render;

use relaytrace_store::{Case, Dedup};
use serde_json::{json, Map, Value};

pub use error::BlockError;
pub use plan::{Decision, Plan, Rule, TargetKind};
pub use policy::{default_policy, load_policy, LoadedPolicy};
pub use prefix::Prefix;

/// Builds a plan for a case from its newest trace (required) and assess (optional)
/// findings, its enrichment and its connections, at time `now_ns`. With a
/// snapshot, origin ASes are expanded to every prefix the snapshot gives them;
/// without, to the prefixes of that AS the case's enrichment tables hold.
pub fn plan_case(
    case: &Case,
    policy: &LoadedPolicy,
    now_ns: i64,
    snapshot: Option<&relaytrace_enrich::Snapshot>,
) -> Result<Plan, BlockError> {
    let trace = inputs::newest_finding(case, "trace")?.ok_or(BlockError::NoTrace)?;
    let assess = inputs::newest_finding(case, "assess")?;
    inputs::check_shape(case, "trace", &trace)?;
    if let Some(a) = &assess {
        inputs::check_shape(case, "assess", a)?;
        // A trace run after the assessment (another victim, a narrower window, a
        // typo) would otherwise be planned from with a judgement made on other chains.
        // (`inputs.trace`: null when no trace existed; an assessment without `inputs`
        // does not say, and is taken as it is.)
        let weighed = a.json.get("inputs").map(|i| &i["trace"]);
        let sha = weighed.map(|t| t["sha256"].as_str());
        if sha.is_some_and(|s| s != Some(trace.sha256.as_str())) {
            let path = weighed.and_then(|t| t["path"].as_str());
            return Err(BlockError::StaleAssessment {
                assess: a.path.clone(),
                weighed: path.map_or("no trace finding".into(), |p| format!("trace finding {p}")),
                trace: trace.path.clone(),
            });
        }
    }
    // What the plan reads of a case that may hold millions of addresses and
    // connections, in passes that keep only what it uses: the enrichment of the hops
    // and of every address of an AS it may target (an AS expanded without a snapshot
    // takes the prefixes the case saw it announce; its country is that of its first
    // address), then the connections with an end inside a prefix it would block, then
    // the enrichment of their other parties (collateral names their networks). The
    // plan is the one every address and connection would give: `build` looks at
    // nothing else.
    let hops = plan::hop_addresses(&trace);
    let assessed = plan::assessed_asns(assess.as_ref());
    let of_hops_or = |asns: &std::collections::BTreeSet<u64>| {
        inputs::enrichment(case, |a, asn| {
            hops.contains(a) || asn.is_some_and(|n| asns.contains(&n))
        })
    };
    let mut info = of_hops_or(&assessed)?;
    check_hop_snapshots(&trace, &info)?;
    let wanted = plan::wanted_asns(&trace, assess.as_ref(), &info);
    if !wanted.is_subset(&assessed) {
        // The origins' ASes, known only now.
        info = of_hops_or(&wanted)?;
    }
    let expansion = snapshot.map(|s| asn::expand(s, &wanted));
    let build = |info: &_, conns: &[inputs::ConnRow], connections| {
        plan::build(&plan::PlanInputs {
            trace: &trace,
            assess: assess.as_ref(),
            info,
            conns,
            connections,
            policy,
            now_ns,
            asn_expansion: expansion.as_ref(),
        })
    };
    let draft = build(&info, &[], 0);
    let measured = prefix::RangeSet::new(&plan::measured_prefixes(&draft));
    let touched = inputs::connections(case, &measured)?;
    let parties: std::collections::BTreeSet<std::net::IpAddr> = touched
        .rows
        .iter()
        .flat_map(|r| [r.orig_h, r.resp_h])
        .filter(|a| !info.contains_key(a))
        .collect();
    if !parties.is_empty() {
        info.extend(inputs::enrichment(case, |a, _| parties.contains(a))?);
    }
    Ok(build(&info, &touched.rows, touched.total))
}

/// Fails when a hop of the trace was reported from another enrichment snapshot than
/// the one the case's enrichment answers from now (the case was enriched again with
/// other data): the plan targets what the enrichment says, and must target what the
/// findings say.
fn check_hop_snapshots(
    trace: &inputs::Finding,
    info: &std::collections::BTreeMap<std::net::IpAddr, inputs::AddrInfo>,
) -> Result<(), BlockError> {
    let hops = trace.json["chains"].as_array().into_iter().flatten();
    let hops = hops.filter_map(|c| c["hops"].as_array()).flatten();
    for hop in hops {
        let Some(ip) = hop["ip"]
            .as_str()
            .and_then(|s| s.parse::<std::net::IpAddr>().ok())
        else {
            continue;
        };
        // A hop without a snapshot (reported unenriched, or by a finding older than
        // the field) is planned with the enrichment the case has since, which the plan
        // names: the findings named no network for it to contradict.
        let Some(traced) = hop.get("snapshot").and_then(Value::as_str) else {
            continue;
        };
        let now = info.get(&ip).and_then(|i| i.snapshot.as_deref());
        if now != Some(traced) {
            return Err(BlockError::StaleTrace {
                trace: trace.path.clone(),
                ip: ip.to_string(),
                traced: format!("snapshot {traced}"),
                now: now.map_or("no enrichment".into(), |d| format!("snapshot {d}")),
            });
        }
    }
    Ok(())
}

/// Digest of the snapshot behind the case's newest enrichment (the `snapshot`
/// field of the newest `enrich` ledger entry), to find that snapshot for ASN
/// expansion.
pub fn case_snapshot_digest(case: &Case) -> Result<Option<String>, BlockError> {
    Ok(case
        .ledger()
        .entries()?
        .iter()
        .rev()
        .find(|e| e.kind() == "enrich")
        .and_then(|e| e.str_field("snapshot").map(str::to_string)))
}

/// The plan as file bytes: pretty JSON and a newline (what [`record`] stores).
pub fn plan_bytes(plan: &Plan) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(plan).expect("a plan always serialises");
    b.push(b'\n');
    b
}

/// Where [`record`] put the plan.
pub type Recorded = relaytrace_store::RecordedFinding;

/// Writes the plan to `findings/block-plan-<sha16>.json` and appends a `block-plan`
/// ledger entry holding every decision (target, kind, blocked or refused, reason), the
/// policy's SHA-256 and the input findings ([`Case::record_finding`]: temporary file,
/// sync, rename, under the case lock). The same plan as the newest one adds nothing;
/// re-making an older plan after a different one makes it the current plan again.
pub fn record(case: &Case, plan: &Plan) -> Result<Recorded, BlockError> {
    let bytes = plan_bytes(plan);
    let decisions: Vec<Value> = plan
        .decisions
        .iter()
        .map(|d| {
            json!({
                "kind": d.kind.as_str(),
                "target": d.target,
                "action": if d.blocked { "block" } else { "refuse" },
                "reason": d.reason,
                "prefixes": d.prefixes,
                "expires_ns": d.expires_ns,
            })
        })
        .collect();
    let mut fields = Map::new();
    fields.insert(
        "policy_sha256".into(),
        Value::from(plan.policy_sha256.clone()),
    );
    fields.insert(
        "policy_source".into(),
        Value::from(plan.policy_source.clone()),
    );
    fields.insert("created_ns".into(), Value::from(plan.created_ns));
    fields.insert("decisions".into(), Value::Array(decisions));
    fields.insert("rules".into(), Value::from(plan.rules.len() as u64));
    let mut inputs =
        vec![json!({"kind": "trace", "path": plan.trace.path, "sha256": plan.trace.sha256})];
    if let Some(a) = &plan.assess {
        inputs.push(json!({"kind": "assess", "path": a.path, "sha256": a.sha256}));
    }
    fields.insert("inputs".into(), Value::Array(inputs));
    Ok(case.record_finding("block-plan", &bytes, fields, Dedup::Newest)?)
}

/// The newest recorded plan of the case (digest-checked), for `render` and `expire`.
pub fn load_plan(case: &Case) -> Result<(Plan, String), BlockError> {
    let f = inputs::newest_finding(case, "block-plan")?.ok_or(BlockError::NoPlan)?;
    let plan: Plan = serde_json::from_value(f.json).map_err(|e| BlockError::BadFinding {
        path: case.root().join(&f.path),
        reason: format!("not a block plan: {e}"),
    })?;
    Ok((plan, f.sha256))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use relaytrace_store::{digest::sha256_hex, IngestOptions};
    use serde_json::json;

    use super::*;

    fn demo(name: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo")).join(name)
    }

    /// Writes `bytes` into the case at `rel` and logs it as the stage `kind` would.
    fn add_output(case: &Case, kind: &str, table: &str, rel: &str, bytes: &[u8]) {
        let path = case.root().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let mut fields = Map::new();
        fields.insert(
            "outputs".into(),
            json!([{ "table": table, "path": rel, "sha256": sha256_hex(bytes) }]),
        );
        case.ledger().append(kind, fields).unwrap();
    }

    fn enrich_table(case: &Case, name: &str, rows: &[(&str, &str, u64, &str)]) {
        let text: String = rows
            .iter()
            .map(|(addr, prefix, asn, org)| {
                let l = json!({"addr": addr, "prefix": prefix, "asn": asn, "org": org,
                               "country": "ZZ", "snapshot": name});
                format!("{l}\n")
            })
            .collect();
        let rel = format!("tables/enrich/{name}.jsonl");
        add_output(case, "enrich", "enrich", &rel, text.as_bytes());
    }

    /// `plan_case` reads a few addresses and connections of the case in passes; the
    /// plan must be the one `build` gives with every address and every connection.
    /// The case makes each pass matter: the origin's AS is not the assessment's (a
    /// second enrichment read), a later table moves one address into that AS (its
    /// prefix joins the AS's expansion) and one out, and the blocked prefixes touch
    /// connections whose other parties are named by their networks.
    #[test]
    fn the_plan_read_in_passes_is_the_plan_of_the_whole_case() {
        let dir = tempfile::tempdir().unwrap();
        let case = Case::init(&dir.path().join("case"), "t").unwrap();
        let mut read = relaytrace_ingest::ReadOptions::default();
        for input in ["victim-edge.conn.log", "relay-isp.eve.json"] {
            case.ingest(
                Path::new(&demo(input)),
                &IngestOptions::default(),
                &mut read,
            )
            .unwrap();
        }
        let all_conns = inputs::connections(
            &case,
            &prefix::RangeSet::new(&["0.0.0.0/0".parse::<Prefix>().unwrap()]),
        )
        .unwrap();
        let addrs: BTreeSet<String> = all_conns
            .rows
            .iter()
            .flat_map(|r| [r.orig_h.to_string(), r.resp_h.to_string()])
            .collect();
        assert!(addrs.len() >= 8, "{addrs:?}");
        let first: Vec<(String, String, u64, String)> = addrs
            .iter()
            .map(|a| {
                let (p, asn, org) = match a.as_str() {
                    a if a.starts_with("192.0.2.") => ("192.0.2.0/24", 64496, "Origin Net"),
                    a if a.starts_with("198.51.100.") => {
                        ("198.51.100.0/24", 64511, "Relay Hosting")
                    }
                    _ => ("203.0.113.0/24", 64500, "Victim Net"),
                };
                (a.clone(), p.to_string(), asn, org.to_string())
            })
            .collect();
        let rows: Vec<(&str, &str, u64, &str)> = first
            .iter()
            .map(|(a, p, n, o)| (a.as_str(), p.as_str(), *n, o.as_str()))
            .collect();
        enrich_table(&case, "s1", &rows);
        enrich_table(
            &case,
            "s2",
            &[
                ("203.0.113.53", "203.0.113.0/26", 64496, "Origin Net"),
                ("192.0.2.200", "192.0.2.192/26", 64499, "Elsewhere"),
            ],
        );
        let chain = json!({
            "hops": [
                {"ip": "203.0.113.7", "role": "victim"},
                {"ip": "198.51.100.23", "role": "relay"},
                {"ip": "192.0.2.66", "role": "origin"}
            ],
            "links": [{"from": "192.0.2.66", "relay": "198.51.100.23", "to": "203.0.113.7",
                       "method": "flow", "score": 0.9, "false_match_probability": 1e-5,
                       "conn_ids": [], "inbound_ids": [], "outbound_ids": []}]
        });
        let trace = serde_json::to_vec(&json!({"chains": [chain], "method": "flow"})).unwrap();
        add_output(&case, "trace", "findings", "findings/trace-t.json", &trace);
        let assess = json!({
            "verdict": "assessed",
            "hypotheses": [
                {"id": "h1", "name": "an actor", "probability": 0.9, "words": "very likely",
                 "origin": {"countries": [], "asns": [64497], "prefixes": []}},
                {"id": "h2", "name": "someone else", "probability": 0.1, "words": "very unlikely"}
            ],
            "confidence": "high", "leading": "h1", "missing_evidence": []
        });
        let assess = serde_json::to_vec(&assess).unwrap();
        add_output(
            &case,
            "assess",
            "findings",
            "findings/assess-t.json",
            &assess,
        );

        let policy = default_policy();
        let now = 1_780_000_000_000_000_000;
        let got = plan_case(&case, &policy, now, None).unwrap();

        let trace = inputs::newest_finding(&case, "trace").unwrap().unwrap();
        let assess = inputs::newest_finding(&case, "assess").unwrap();
        let info = inputs::enrichment(&case, |_, _| true).unwrap();
        let want = plan::build(&plan::PlanInputs {
            trace: &trace,
            assess: assess.as_ref(),
            info: &info,
            conns: &all_conns.rows,
            connections: all_conns.total,
            policy: &policy,
            now_ns: now,
            asn_expansion: None,
        });
        assert_eq!(
            String::from_utf8(plan_bytes(&got)).unwrap(),
            String::from_utf8(plan_bytes(&want)).unwrap()
        );
        // What makes the comparison worth something.
        assert_eq!(got.connections, all_conns.total);
        let asn = got
            .decisions
            .iter()
            .find(|d| d.target == "AS64496")
            .expect("the origin's AS is a target");
        let moved: Prefix = "203.0.113.0/26".parse().unwrap();
        assert!(
            asn.prefixes.iter().any(|p| p.overlaps(&moved)),
            "{:?}",
            asn.prefixes
        );
        let named: Vec<&str> = got
            .rules
            .iter()
            .flat_map(|r| &r.collateral.top_networks)
            .chain(
                got.comparison
                    .iter()
                    .flat_map(|a| &a.collateral.top_networks),
            )
            .map(|n| n.network.as_str())
            .collect();
        assert!(named.iter().any(|n| n.starts_with("AS")), "{named:?}");
        assert!(got.rules.iter().any(|r| r.collateral.flows > 0));
    }
}
