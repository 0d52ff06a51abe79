//! STIX 2.1 (OASIS, 2021): a bundle with one `indicator` per rule, its pattern the
//! blocked prefix (`[ipv4-addr:value = '198.51.100.23/32']`), `valid_from` the
//! rendering time and `valid_until` the rule's expiry. Identifiers are name-based
//! (a SHA-256 of the plan digest and the prefix, shaped as a version-5-style UUID)
//! so the same plan gives the same bundle, and a partner re-importing it updates
//! rather than duplicates.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{active, RenderContext};
use crate::error::BlockError;
use crate::plan::Plan;

fn uuid(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The bundle, pretty JSON with a newline.
pub fn render(plan: &Plan, cx: &RenderContext) -> Result<String, BlockError> {
    let ts = relaytrace_model::format_iso8601_us;
    let now = ts(cx.now_ns);
    let created = ts(plan.created_ns);
    let objects: Vec<Value> = active(plan, cx.now_ns)
        .into_iter()
        .map(|r| {
            let ty = if r.prefix.is_v6() { "ipv6-addr" } else { "ipv4-addr" };
            let kinds: Vec<&str> = r.kinds.iter().map(|k| k.as_str()).collect();
            json!({
                "type": "indicator",
                "spec_version": "2.1",
                "id": format!("indicator--{}", uuid(&format!("{}|{}", cx.plan_sha256, r.prefix))),
                "created": created,
                "modified": created,
                "name": format!("relaytrace block {} ({})", r.prefix, kinds.join(", ")),
                "description": format!(
                    "Traffic from {} is part of a traced attack relay chain ({}). Policy sha256 {}; plan sha256 {}.",
                    r.prefix, r.targets.join(", "), plan.policy_sha256, cx.plan_sha256
                ),
                "indicator_types": ["malicious-activity"],
                "pattern": format!("[{ty}:value = '{}']", r.prefix),
                "pattern_type": "stix",
                "valid_from": now,
                "valid_until": ts(r.expires_ns),
            })
        })
        .collect();
    let bundle = json!({
        "type": "bundle",
        "id": format!("bundle--{}", uuid(&format!("{}|{}", cx.plan_sha256, cx.now_ns))),
        "objects": objects,
    });
    let mut s =
        serde_json::to_string_pretty(&bundle).map_err(|e| BlockError::Render(e.to_string()))?;
    s.push('\n');
    Ok(s)
}
