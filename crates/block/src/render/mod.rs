//! Renderers: one plan, many enforcement points. Each renderer is a pure function
//! of the plan, its digest and the time the rendering counts from (the plan's own
//! creation time unless given), so rendering the same plan twice gives identical
//! bytes.

pub mod bgp;
pub mod cidr;
pub mod iptables;
pub mod nft;
pub mod stix;

use crate::error::BlockError;
use crate::plan::{Plan, Rule};

/// Where a plan is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `nft -f` script: inet table, interval sets with per-element timeouts.
    Nftables,
    /// Shell script feeding `ipset restore` and `iptables-restore`/`ip6tables-restore`.
    Iptables,
    /// `gobgp global rib` commands adding FlowSpec routes.
    FlowspecGobgp,
    /// ExaBGP configuration with `flow` routes.
    FlowspecExabgp,
    /// BIRD 2 configuration with `flow4`/`flow6` static routes.
    FlowspecBird,
    /// Remotely triggered black hole routes (RFC 7999) for one speaker.
    Rtbh(Speaker),
    /// One prefix per line, comments with reason and expiry.
    CidrList,
    /// STIX 2.1 bundle of indicators with validity periods.
    Stix,
}

/// A BGP speaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// GoBGP (`gobgp` CLI commands).
    Gobgp,
    /// ExaBGP (configuration file).
    Exabgp,
    /// BIRD 2 (configuration file).
    Bird,
}

/// How the rendering is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    /// SHA-256 of the plan file (named in every rendering's header).
    pub plan_sha256: String,
    /// Time the rendering counts from (ns); rules expired by then are left out and
    /// timeouts are what remains.
    pub now_ns: i64,
}

/// Rules still in force at `now_ns`.
pub fn active(plan: &Plan, now_ns: i64) -> Vec<&Rule> {
    plan.rules
        .iter()
        .filter(|r| r.expires_ns > now_ns)
        .collect()
}

/// Rules that have run out by `now_ns`.
pub fn expired(plan: &Plan, now_ns: i64) -> Vec<&Rule> {
    plan.rules
        .iter()
        .filter(|r| r.expires_ns <= now_ns)
        .collect()
}

/// Whole seconds left of a rule at `now_ns` (at least 1: nftables and ipset reject 0).
pub fn remaining_s(r: &Rule, now_ns: i64) -> u64 {
    let ns = r.expires_ns.saturating_sub(now_ns).max(0) as u64;
    ns.div_ceil(1_000_000_000).max(1)
}

/// A short comment for a rule: its targets and kinds (at most 120 bytes, ASCII).
pub fn rule_comment(r: &Rule) -> String {
    let kinds: Vec<&str> = r.kinds.iter().map(|k| k.as_str()).collect();
    let mut s = format!("{} {}", kinds.join("+"), r.targets.join(" "));
    s.retain(|c| c.is_ascii_graphic() || c == ' ');
    s = s.replace('"', "'");
    if s.len() > 120 {
        s.truncate(117);
        s.push_str("...");
    }
    s
}

/// Renders the rules in force.
pub fn render(plan: &Plan, to: Target, cx: &RenderContext) -> Result<String, BlockError> {
    Ok(match to {
        Target::Nftables => nft::render(plan, cx),
        Target::Iptables => iptables::render(plan, cx),
        Target::FlowspecGobgp => bgp::gobgp_flowspec(plan, cx, bgp::Verb::Add),
        Target::FlowspecExabgp => bgp::exabgp_flowspec(plan, cx),
        Target::FlowspecBird => bgp::bird_flowspec(plan, cx),
        Target::Rtbh(Speaker::Gobgp) => bgp::gobgp_rtbh(plan, cx, bgp::Verb::Add),
        Target::Rtbh(Speaker::Exabgp) => bgp::exabgp_rtbh(plan, cx),
        Target::Rtbh(Speaker::Bird) => bgp::bird_rtbh(plan, cx),
        Target::CidrList => cidr::render(plan, cx),
        Target::Stix => stix::render(plan, cx)?,
    })
}

/// Renders the removal of the rules that have run out by `cx.now_ns`. Where the
/// enforcement point expires entries itself (nftables and ipset timeouts) the
/// removal is still useful after a reload without timeouts; BGP speakers and
/// external lists have no timeouts, so this is how they learn.
pub fn expire(plan: &Plan, to: Target, cx: &RenderContext) -> Result<String, BlockError> {
    Ok(match to {
        Target::Nftables => nft::removal(plan, cx),
        Target::Iptables => iptables::removal(plan, cx),
        Target::FlowspecGobgp => bgp::gobgp_flowspec(plan, cx, bgp::Verb::Del),
        Target::Rtbh(Speaker::Gobgp) => bgp::gobgp_rtbh(plan, cx, bgp::Verb::Del),
        Target::CidrList => cidr::removal(plan, cx),
        Target::FlowspecExabgp | Target::FlowspecBird | Target::Rtbh(_) => {
            // Configuration-file speakers: the current rendering (without the
            // expired routes) replaces the file, and a reload withdraws them.
            render(plan, to, cx)?
        }
        Target::Stix => {
            return Err(BlockError::Render(
                "STIX indicators carry valid_until; there is nothing to remove".into(),
            ))
        }
    })
}

/// The header line every text rendering starts with (after any interpreter line).
pub fn header(plan: &Plan, cx: &RenderContext, comment: &str) -> String {
    format!(
        "{comment} relaytrace block plan {} (policy sha256 {}), as of {}\n",
        &cx.plan_sha256[..16.min(cx.plan_sha256.len())],
        plan.policy_sha256,
        relaytrace_model::format_iso8601_us(cx.now_ns)
    )
}
