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
    }
    let info = inputs::enrichment(case)?;
    let (conns, _skipped) = inputs::connections(case)?;
    let expansion =
        snapshot.map(|s| asn::expand(s, &plan::wanted_asns(&trace, assess.as_ref(), &info)));
    Ok(plan::build(&plan::PlanInputs {
        trace: &trace,
        assess: assess.as_ref(),
        info: &info,
        conns: &conns,
        policy,
        now_ns,
        asn_expansion: expansion.as_ref(),
    }))
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
