//! The block policy: what may be blocked, on what evidence, for how long, and what
//! never. TOML, with a documented default embedded in the crate
//! (`default-policy.toml`, printed by `relaytrace block plan --print-default-policy`).

use std::net::IpAddr;

use serde::Deserialize;

use crate::error::BlockError;
use crate::prefix::Prefix;

/// The default policy, as shipped.
pub const DEFAULT_POLICY: &str = include_str!("default-policy.toml");

/// Assessment confidence, ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Low confidence.
    Low,
    /// Moderate confidence.
    Moderate,
    /// High confidence.
    High,
}

impl Confidence {
    /// Parses the assessment's word.
    pub fn parse(s: &str) -> Option<Confidence> {
        match s {
            "low" => Some(Confidence::Low),
            "moderate" => Some(Confidence::Moderate),
            "high" => Some(Confidence::High),
            _ => None,
        }
    }

    /// The word.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Moderate => "moderate",
            Confidence::High => "high",
        }
    }
}

/// Gate for single hosts seen in a trace (relays, origin address).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostGate {
    /// Largest false-match probability of the supporting link.
    pub max_false_match_probability: f64,
    /// Smallest link score.
    pub min_score: f64,
    /// How long the block lasts (`7d`).
    pub expiry: String,
}

/// Gate for networks (prefixes, ASNs): these need an assessment.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkGate {
    /// Smallest probability of the leading hypothesis.
    pub min_probability: f64,
    /// Smallest assessment confidence.
    pub min_confidence: Confidence,
    /// How long the block lasts.
    pub expiry: String,
}

/// What must never be blocked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowlist {
    /// Include [`BUILTIN_ALLOWLIST`].
    pub builtin: bool,
    /// The partner's own prefixes.
    #[serde(default)]
    pub partner_prefixes: Vec<Prefix>,
    /// Anything else.
    #[serde(default)]
    pub extra: Vec<Prefix>,
}

/// Collateral warning limits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollateralLimits {
    /// Warn above this many non-attack flows.
    pub warn_flows: u64,
    /// Warn above this many distinct non-attack hosts.
    pub warn_hosts: u64,
    /// Warn above this many non-attack bytes.
    pub warn_bytes: u64,
    /// Affected networks listed per rule.
    pub top_networks: usize,
}

/// Cover options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverOptions {
    /// Addresses outside the targets a merged cover may add.
    pub max_overblock_addresses: u64,
}

/// FlowSpec action and match scope (copied into the plan so renderings depend on
/// the plan alone).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSpecOptions {
    /// `discard` or `rate-limit`.
    pub action: String,
    /// Bytes per second for `rate-limit`.
    pub rate_limit_bytes_per_second: u64,
    /// `any` or `victim`.
    pub destination: String,
}

/// BGP session parameters for the speaker renderings (copied into the plan).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BgpOptions {
    /// Our AS.
    pub local_as: u32,
    /// The peer's AS.
    pub peer_as: u32,
    /// Router id.
    pub router_id: String,
    /// Neighbour address.
    pub neighbor: String,
    /// IPv4 RTBH next hop.
    pub rtbh_next_hop_v4: IpAddr,
    /// IPv6 RTBH next hop.
    pub rtbh_next_hop_v6: IpAddr,
}

/// A whole policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Relays.
    pub relay: HostGate,
    /// The origin address.
    pub origin_address: HostGate,
    /// Origin prefixes.
    pub origin_prefix: NetworkGate,
    /// Origin ASNs.
    pub origin_asn: NetworkGate,
    /// Never blocked.
    pub allowlist: Allowlist,
    /// Warning limits.
    pub collateral: CollateralLimits,
    /// Cover merging.
    pub cover: CoverOptions,
    /// FlowSpec rendering.
    pub flowspec: FlowSpecOptions,
    /// BGP rendering.
    pub bgp: BgpOptions,
}

/// A policy with its source text's digest, which every decision records.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedPolicy {
    /// The parsed policy.
    pub policy: Policy,
    /// SHA-256 of the TOML text, hex.
    pub sha256: String,
    /// Where it came from (`<default>` or the file path).
    pub source: String,
}

/// Special-purpose ranges and public resolvers never blocked when
/// `allowlist.builtin` is true, with the reason shown in refusals.
/// Sources: RFC 6890 (special-purpose registries) with RFC 6598 (shared address
/// space), RFC 5771 (multicast), RFC 4193 (ULA), RFC 4291 (link-local, mapped),
/// RFC 6052/8215 (NAT64), RFC 6666 (discard-only); the resolver addresses are the
/// operators' published ones.
pub const BUILTIN_ALLOWLIST: &[(&str, &str)] = &[
    ("0.0.0.0/8", "this network (RFC 6890)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared address space / CGNAT (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 6890)"),
    ("169.254.0.0/16", "link-local (RFC 3927)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.88.99.0/24", "6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112)"),
    ("::/127", "unspecified and loopback (RFC 4291)"),
    ("::ffff:0:0/96", "IPv4-mapped (RFC 4291)"),
    ("64:ff9b::/96", "NAT64 well-known prefix (RFC 6052)"),
    ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("2001::/23", "IETF protocol assignments (RFC 2928)"),
    ("2002::/16", "6to4 (RFC 3056)"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("fe80::/10", "link-local (RFC 4291)"),
    ("ff00::/8", "multicast (RFC 4291)"),
    ("8.8.8.8/32", "public resolver (Google)"),
    ("8.8.4.4/32", "public resolver (Google)"),
    ("2001:4860:4860::8888/128", "public resolver (Google)"),
    ("2001:4860:4860::8844/128", "public resolver (Google)"),
    ("1.1.1.1/32", "public resolver (Cloudflare)"),
    ("1.0.0.1/32", "public resolver (Cloudflare)"),
    ("2606:4700:4700::1111/128", "public resolver (Cloudflare)"),
    ("2606:4700:4700::1001/128", "public resolver (Cloudflare)"),
    ("9.9.9.9/32", "public resolver (Quad9)"),
    ("149.112.112.112/32", "public resolver (Quad9)"),
    ("2620:fe::fe/128", "public resolver (Quad9)"),
    ("2620:fe::9/128", "public resolver (Quad9)"),
    ("208.67.222.222/32", "public resolver (OpenDNS)"),
    ("208.67.220.220/32", "public resolver (OpenDNS)"),
    ("2620:119:35::35/128", "public resolver (OpenDNS)"),
    ("2620:119:53::53/128", "public resolver (OpenDNS)"),
];

/// One allowlisted range and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    /// The range.
    pub prefix: Prefix,
    /// Why it is spared.
    pub reason: String,
}

impl Policy {
    /// The effective allowlist: builtin entries (if enabled), partner prefixes, extra.
    pub fn allowlist(&self) -> Vec<AllowEntry> {
        let mut out = Vec::new();
        if self.allowlist.builtin {
            for (p, why) in BUILTIN_ALLOWLIST {
                out.push(AllowEntry {
                    prefix: p.parse().expect("builtin allowlist entries parse"),
                    reason: (*why).to_string(),
                });
            }
        }
        for p in &self.allowlist.partner_prefixes {
            out.push(AllowEntry {
                prefix: *p,
                reason: "partner prefix".into(),
            });
        }
        for p in &self.allowlist.extra {
            out.push(AllowEntry {
                prefix: *p,
                reason: "user allowlist".into(),
            });
        }
        out
    }

    fn check(&self) -> Result<(), String> {
        for (name, e) in [
            ("relay.expiry", &self.relay.expiry),
            ("origin_address.expiry", &self.origin_address.expiry),
            ("origin_prefix.expiry", &self.origin_prefix.expiry),
            ("origin_asn.expiry", &self.origin_asn.expiry),
        ] {
            parse_duration_s(e).map_err(|r| format!("{name}: {r}"))?;
        }
        for (name, v) in [
            (
                "relay.max_false_match_probability",
                self.relay.max_false_match_probability,
            ),
            (
                "origin_address.max_false_match_probability",
                self.origin_address.max_false_match_probability,
            ),
            (
                "origin_prefix.min_probability",
                self.origin_prefix.min_probability,
            ),
            (
                "origin_asn.min_probability",
                self.origin_asn.min_probability,
            ),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name}: {v} is not a probability in [0, 1]"));
            }
        }
        match self.flowspec.action.as_str() {
            "discard" => {}
            "rate-limit" if self.flowspec.rate_limit_bytes_per_second > 0 => {}
            "rate-limit" => {
                return Err(
                    "flowspec.rate_limit_bytes_per_second must be > 0 for rate-limit".into(),
                )
            }
            other => {
                return Err(format!(
                    "flowspec.action: {other:?} is not discard or rate-limit"
                ))
            }
        }
        match self.flowspec.destination.as_str() {
            "any" | "victim" => {}
            other => {
                return Err(format!(
                    "flowspec.destination: {other:?} is not any or victim"
                ))
            }
        }
        Ok(())
    }
}

/// Parses `30s`, `90m`, `12h`, `7d` into seconds.
pub fn parse_duration_s(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?} is not a duration (like 30s, 90m, 12h, 7d)")),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (like 30s, 90m, 12h, 7d)"))?;
    if n == 0 {
        return Err(format!("{s:?}: a block must last a positive time"));
    }
    Ok(n * mult)
}

/// The 1-based line where `text` sets `field` (`table.key`): the first `key = ...` line
/// after the `[table]` header and before the next header. `None` when the file does
/// not set it (the default applies) or `field` is not of that form.
fn line_of_field(text: &str, field: &str) -> Option<usize> {
    let (table, key) = field.split_once('.')?;
    let header = format!("[{table}]");
    let mut in_table = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_table = t == header;
        } else if in_table {
            let name = t.split('=').next().unwrap_or("").trim();
            if t.contains('=') && name == key {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Parses a policy; `source` names it in errors (TOML errors carry line and column).
pub fn load_policy(text: &str, source: &str) -> Result<LoadedPolicy, BlockError> {
    let bad = |reason: String| BlockError::BadPolicy {
        path: source.to_string(),
        reason,
    };
    let policy: Policy = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    policy.check().map_err(|reason| {
        // The checks name the field (`relay.expiry: ...`); the TOML parser's own
        // errors give a line, so these do too where the file sets the field.
        let field = reason.split([':', ' ']).next().unwrap_or("");
        match line_of_field(text, field) {
            Some(line) => bad(format!("line {line}: {reason}")),
            None => bad(reason),
        }
    })?;
    Ok(LoadedPolicy {
        policy,
        sha256: relaytrace_store::digest::sha256_hex(text.as_bytes()),
        source: source.to_string(),
    })
}

/// The embedded default policy.
pub fn default_policy() -> LoadedPolicy {
    load_policy(DEFAULT_POLICY, "<default>").expect("the embedded default policy is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_loads_and_spares_cgnat_and_resolvers_not_documentation() {
        let p = default_policy();
        assert_eq!(p.sha256.len(), 64);
        let allow = p.policy.allowlist();
        let hit = |a: &str| allow.iter().any(|e| e.prefix.contains(a.parse().unwrap()));
        for a in [
            "100.64.1.2",
            "10.1.1.1",
            "192.168.0.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "fe80::1",
        ] {
            assert!(hit(a), "{a} must be allowlisted");
        }
        for a in [
            "198.51.100.23",
            "192.0.2.66",
            "203.0.113.7",
            "2001:db8::1",
            "8.8.8.9",
        ] {
            assert!(!hit(a), "{a} must not be allowlisted");
        }
    }

    #[test]
    fn bad_policies_are_named_with_place() {
        let e = load_policy("[relay]\nmax_false_match_probability = \"x\"\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("policy p.toml:"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let text = DEFAULT_POLICY.replace("expiry = \"7d\"", "expiry = \"7 days\"");
        let e = load_policy(&text, "p.toml").unwrap_err().to_string();
        assert!(e.contains("relay.expiry"), "{e}");
        let line = 1 + DEFAULT_POLICY
            .lines()
            .position(|l| l.trim_start().starts_with("expiry = \"7d\""))
            .unwrap();
        assert!(e.contains(&format!("line {line}: relay.expiry")), "{e}");
        let text = DEFAULT_POLICY.replace("action = \"discard\"", "action = \"drop\"");
        assert!(load_policy(&text, "p.toml").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_s("7d"), Ok(604_800));
        assert_eq!(parse_duration_s("90m"), Ok(5_400));
        assert_eq!(parse_duration_s("3s"), Ok(3));
        for bad in ["", "d", "0s", "5w", "-1s"] {
            assert!(parse_duration_s(bad).is_err(), "{bad}");
        }
    }
}
