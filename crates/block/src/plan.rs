//! The block plan: targets from the findings, each decided by the policy (taken or
//! refused, with the reason), the rules that enforce the taken ones (merged into
//! minimal covers), their collateral, and "block the relays" next to "block the
//! origin networks".
//!
//! [`build`] is a pure function of its inputs (findings, enrichment, connections,
//! policy, the time it is given), so the same inputs give the same plan bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::asn::AsnExpansion;
use crate::collateral::{measure, Collateral};
use crate::inputs::{AddrInfo, ConnRow, Finding};
use crate::policy::{
    parse_duration_s, BgpOptions, Confidence, FlowSpecOptions, LoadedPolicy, NetworkGate,
};
use crate::prefix::{bounded_cover, exact_cover, subtract, Prefix};

/// Format tag of plan files, so later versions can read or refuse old plans.
pub const PLAN_FORMAT: &str = "relaytrace-block-plan/1";

/// What a target is, which decides its gate and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// A relay host of a chain.
    Relay,
    /// The furthest upstream host the telemetry shows.
    OriginAddress,
    /// The origin's network prefix.
    OriginPrefix,
    /// Every prefix of the origin's AS known to the case.
    OriginAsn,
}

impl TargetKind {
    /// The kebab-case name used in findings and renderings.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Relay => "relay",
            TargetKind::OriginAddress => "origin-address",
            TargetKind::OriginPrefix => "origin-prefix",
            TargetKind::OriginAsn => "origin-asn",
        }
    }

    /// Whether the kind is a network (needs an assessment).
    pub fn is_network(self) -> bool {
        matches!(self, TargetKind::OriginPrefix | TargetKind::OriginAsn)
    }
}

/// The evidence behind a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Support {
    /// The strongest trace link naming the target (`from -> relay -> to`).
    pub link: Option<String>,
    /// That link's score.
    pub score: Option<f64>,
    /// That link's false-match probability.
    pub false_match_probability: Option<f64>,
    /// The assessment's leading hypothesis id (network targets).
    pub hypothesis: Option<String>,
    /// Its probability.
    pub probability: Option<f64>,
    /// The assessment's confidence.
    pub confidence: Option<String>,
    /// Where the prefix or ASN came from (`enrichment <snapshot>`, `assessment`).
    pub source: Option<String>,
}

/// One decision: a target taken or refused, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Target kind.
    pub kind: TargetKind,
    /// The target as written (`198.51.100.23/32`, `AS64500`).
    pub target: String,
    /// True when the policy lets it be blocked.
    pub blocked: bool,
    /// Why, in words (refusals name the rule of the policy that refused).
    pub reason: String,
    /// Prefixes the target stands for (after allowlist carve-outs when blocked).
    pub prefixes: Vec<Prefix>,
    /// When the block ends (ns since the epoch), for blocked targets.
    pub expires_ns: Option<i64>,
    /// The evidence.
    pub support: Support,
}

/// One enforceable rule: drop traffic from `prefix` until `expires_ns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Source prefix to block.
    pub prefix: Prefix,
    /// Kinds of the targets it serves.
    pub kinds: Vec<TargetKind>,
    /// The targets it serves.
    pub targets: Vec<String>,
    /// When it ends (ns since the epoch).
    pub expires_ns: i64,
    /// The victims of the chains (FlowSpec may match them as destination).
    pub victims: Vec<Prefix>,
    /// What it would have blocked besides the attack.
    pub collateral: Collateral,
}

/// One way of stopping the attack, for the side-by-side comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    /// `block the relays` or `block the origin networks`.
    pub name: String,
    /// Minimal cover of its candidate targets (allowlist carved out).
    pub prefixes: Vec<Prefix>,
    /// Addresses covered (a decimal string: IPv6 counts exceed JSON's safe integers).
    pub addresses: String,
    /// Whether the policy allows every target of it, else the refusals.
    pub policy: String,
    /// Its collateral.
    pub collateral: Collateral,
}

/// A finding a plan was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRef {
    /// Path in the case.
    pub path: String,
    /// Its SHA-256.
    pub sha256: String,
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`PLAN_FORMAT`].
    pub format: String,
    /// When it was made (ns since the epoch); expiries count from here.
    pub created_ns: i64,
    /// SHA-256 of the policy text.
    pub policy_sha256: String,
    /// Where the policy came from.
    pub policy_source: String,
    /// The trace finding.
    pub trace: InputRef,
    /// The assessment, if the case has one.
    pub assess: Option<InputRef>,
    /// Victims of the chains (never blocked).
    pub victims: Vec<Prefix>,
    /// Every decision, sorted by kind then target.
    pub decisions: Vec<Decision>,
    /// The rules, sorted by prefix.
    pub rules: Vec<Rule>,
    /// Addresses the covers include beyond the targets (policy `cover`).
    pub overblock_addresses: String,
    /// Relays versus origin networks.
    pub comparison: Vec<Alternative>,
    /// Connections the collateral was measured on.
    pub connections: u64,
    /// FlowSpec options of the policy.
    pub flowspec: FlowSpecOptions,
    /// BGP options of the policy.
    pub bgp: BgpOptions,
}

/// Everything [`build`] reads.
#[derive(Debug, Clone)]
pub struct PlanInputs<'a> {
    /// The trace finding.
    pub trace: &'a Finding,
    /// The assess finding, if any.
    pub assess: Option<&'a Finding>,
    /// Enrichment of the case's addresses.
    pub info: &'a BTreeMap<IpAddr, AddrInfo>,
    /// The stored connections, or at least every one with an end inside a prefix the
    /// plan measures (the others cannot count in any collateral).
    pub conns: &'a [ConnRow],
    /// How many connections the case holds (what the collateral was measured over).
    pub connections: u64,
    /// The policy.
    pub policy: &'a LoadedPolicy,
    /// The plan's time (ns since the epoch).
    pub now_ns: i64,
    /// Origin ASes expanded with an enrichment snapshot, if one was available.
    pub asn_expansion: Option<&'a AsnExpansion>,
}

struct Candidate {
    kind: TargetKind,
    target: String,
    prefixes: Vec<Prefix>,
    support: Support,
    /// Reason the target cannot even be formed (e.g. no prefix known).
    unusable: Option<String>,
    /// For network targets: the country/ASN/prefix the footprint test uses.
    asn: Option<u64>,
    country: Option<String>,
}

fn ip_of(v: &Value) -> Option<IpAddr> {
    v.as_str().and_then(|s| s.parse().ok())
}

/// Per-link support, keeping the strongest (smallest false-match probability).
fn better(cur: &mut Support, link: &Value) {
    let fmp = link.get("false_match_probability").and_then(Value::as_f64);
    let score = link.get("score").and_then(Value::as_f64);
    if cur.false_match_probability.is_some() && cur.false_match_probability <= fmp {
        return;
    }
    let s = |k: &str| link.get(k).and_then(Value::as_str).unwrap_or("?");
    cur.link = Some(format!("{} -> {} -> {}", s("from"), s("relay"), s("to")));
    cur.score = score;
    cur.false_match_probability = fmp;
}

/// The assessment facts a network gate needs.
struct Assessment {
    verdict: String,
    confidence: Option<Confidence>,
    leading: Option<String>,
    probability: Option<f64>,
    countries: Vec<String>,
    asns: Vec<u64>,
    prefixes: Vec<Prefix>,
    has_footprint: bool,
}

fn read_assessment(f: &Finding) -> Assessment {
    let j = &f.json;
    let leading = j.get("leading").and_then(Value::as_str).map(str::to_string);
    let hyp = j
        .get("hypotheses")
        .and_then(Value::as_array)
        .and_then(|hs| {
            hs.iter()
                .find(|h| h.get("id").and_then(Value::as_str) == leading.as_deref())
        });
    let origin = hyp.and_then(|h| h.get("origin"));
    let list = |k: &str| {
        origin
            .and_then(|o| o.get(k))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    Assessment {
        verdict: j
            .get("verdict")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        confidence: j
            .get("confidence")
            .and_then(Value::as_str)
            .and_then(Confidence::parse),
        probability: hyp
            .and_then(|h| h.get("probability"))
            .and_then(Value::as_f64),
        leading,
        countries: list("countries")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        asns: list("asns").iter().filter_map(Value::as_u64).collect(),
        prefixes: list("prefixes")
            .iter()
            .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()))
            .collect(),
        has_footprint: origin.is_some(),
    }
}

/// Every hop address of the trace's chains: the addresses a plan looks up first.
pub fn hop_addresses(trace: &Finding) -> BTreeSet<IpAddr> {
    trace
        .json
        .get("chains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("hops").and_then(Value::as_array))
        .flatten()
        .filter_map(|h| h.get("ip").and_then(ip_of))
        .collect()
}

/// The ASes of the assessment's leading hypothesis footprint (none without one).
pub fn assessed_asns(assess: Option<&Finding>) -> BTreeSet<u64> {
    assess
        .map(|a| read_assessment(a).asns.into_iter().collect())
        .unwrap_or_default()
}

/// The prefixes whose collateral a plan measures: its rules' and its alternatives'.
/// Only connections with an end inside them can count.
pub fn measured_prefixes(plan: &Plan) -> Vec<Prefix> {
    plan.rules
        .iter()
        .map(|r| r.prefix)
        .chain(
            plan.comparison
                .iter()
                .flat_map(|a| a.prefixes.iter().copied()),
        )
        .collect()
}

/// The ASes a plan may target: those of the trace's origin addresses (from the
/// enrichment) and those of the assessment's leading hypothesis footprint. Used to
/// expand only what is needed.
pub fn wanted_asns(
    trace: &Finding,
    assess: Option<&Finding>,
    info: &BTreeMap<IpAddr, AddrInfo>,
) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for c in trace
        .json
        .get("chains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for h in c
            .get("hops")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if h.get("role").and_then(Value::as_str) == Some("origin") {
                if let Some(asn) = h
                    .get("ip")
                    .and_then(ip_of)
                    .and_then(|ip| info.get(&ip))
                    .and_then(|i| i.asn)
                {
                    out.insert(asn);
                }
            }
        }
    }
    out.extend(assessed_asns(assess));
    out
}

/// Builds the plan. Pure: no clock, no files.
pub fn build(inp: &PlanInputs<'_>) -> Plan {
    let pol = &inp.policy.policy;
    let chains = inp
        .trace
        .json
        .get("chains")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut victims = BTreeSet::new();
    let mut relays: BTreeMap<IpAddr, Support> = BTreeMap::new();
    let mut origins: BTreeMap<IpAddr, Support> = BTreeMap::new();
    let mut attack_ids = BTreeSet::new();
    for c in &chains {
        let hops = c
            .get("hops")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let links = c
            .get("links")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for l in &links {
            for k in ["conn_ids", "inbound_ids", "outbound_ids"] {
                for id in l.get(k).and_then(Value::as_array).into_iter().flatten() {
                    if let Some(s) = id.as_str() {
                        attack_ids.insert(s.to_string());
                    }
                }
            }
        }
        for h in &hops {
            let Some(ip) = h.get("ip").and_then(ip_of) else {
                continue;
            };
            let role = h.get("role").and_then(Value::as_str).unwrap_or("");
            let (map, key) = match role {
                "victim" => {
                    victims.insert(Prefix::host(ip));
                    continue;
                }
                "relay" => (&mut relays, "relay"),
                "origin" => (&mut origins, "from"),
                _ => continue,
            };
            let sup = map.entry(ip).or_default();
            for l in &links {
                if l.get(key).and_then(ip_of) == Some(ip) {
                    better(sup, l);
                }
            }
        }
    }
    let assessment = inp.assess.map(read_assessment);

    // Candidates.
    let mut cands: Vec<Candidate> = Vec::new();
    for (kind, map) in [
        (TargetKind::Relay, &relays),
        (TargetKind::OriginAddress, &origins),
    ] {
        for (ip, sup) in map {
            cands.push(Candidate {
                kind,
                target: Prefix::host(*ip).to_string(),
                prefixes: vec![Prefix::host(*ip)],
                support: sup.clone(),
                unusable: None,
                asn: None,
                country: None,
            });
        }
    }
    let mut net_prefixes: BTreeMap<Prefix, (String, Option<u64>, Option<String>)> = BTreeMap::new();
    let mut asns: BTreeMap<u64, String> = BTreeMap::new();
    for ip in origins.keys() {
        match inp.info.get(ip) {
            Some(i) => {
                let snap = i.snapshot.clone().unwrap_or_else(|| "?".into());
                if let Some(p) = i.prefix {
                    net_prefixes.entry(p).or_insert((
                        format!("enrichment snapshot {snap} (covering prefix of {ip})"),
                        i.asn,
                        i.country.as_deref().map(str::to_string),
                    ));
                }
                if let Some(a) = i.asn {
                    asns.entry(a)
                        .or_insert(format!("enrichment snapshot {snap} (AS of {ip})"));
                }
            }
            None => cands.push(Candidate {
                kind: TargetKind::OriginPrefix,
                target: format!("network of {ip}"),
                prefixes: Vec::new(),
                support: Support::default(),
                unusable: Some(format!(
                    "no enrichment for {ip}: its prefix and ASN are unknown (run `relaytrace enrich`)"
                )),
                asn: None,
                country: None,
            }),
        }
    }
    if let Some(a) = &assessment {
        for p in &a.prefixes {
            net_prefixes.entry(*p).or_insert((
                "assessment (leading hypothesis footprint)".into(),
                None,
                None,
            ));
        }
        for n in &a.asns {
            asns.entry(*n)
                .or_insert("assessment (leading hypothesis footprint)".into());
        }
    }
    for (p, (source, asn, country)) in &net_prefixes {
        cands.push(Candidate {
            kind: TargetKind::OriginPrefix,
            target: p.to_string(),
            prefixes: vec![*p],
            support: Support {
                source: Some(source.clone()),
                ..Support::default()
            },
            unusable: None,
            asn: *asn,
            country: country.clone(),
        });
    }
    for (asn, source) in &asns {
        // Expansion: with the snapshot, every prefix it gives the AS; without it,
        // the prefixes of the AS the case's enrichment tables know.
        let (ps, how) = match inp.asn_expansion {
            Some(x) => (
                x.prefixes.get(asn).cloned().unwrap_or_default(),
                format!("every prefix of AS{asn} in snapshot {}", x.snapshot),
            ),
            None => {
                let mut ps: Vec<Prefix> = inp
                    .info
                    .values()
                    .filter(|i| i.asn == Some(*asn))
                    .filter_map(|i| i.prefix)
                    .collect();
                ps.sort();
                ps.dedup();
                (
                    exact_cover(&ps),
                    format!("prefixes of AS{asn} seen in the case's enrichment (snapshot not available)"),
                )
            }
        };
        let country = inp
            .info
            .values()
            .find(|i| i.asn == Some(*asn))
            .and_then(|i| i.country.as_deref().map(str::to_string));
        cands.push(Candidate {
            kind: TargetKind::OriginAsn,
            target: format!("AS{asn}"),
            unusable: ps
                .is_empty()
                .then(|| format!("no prefix of AS{asn} is known ({how})")),
            prefixes: ps,
            support: Support {
                source: Some(format!("{source}; {how}")),
                ..Support::default()
            },
            asn: Some(*asn),
            country,
        });
    }

    // Allowlist: the policy's plus the victims.
    let mut allow = pol.allowlist();
    for v in &victims {
        allow.push(crate::policy::AllowEntry {
            prefix: *v,
            reason: "a victim of the traced attack".into(),
        });
    }
    let allow_prefixes: Vec<Prefix> = allow.iter().map(|e| e.prefix).collect();

    // Decisions.
    let mut decisions: Vec<Decision> = Vec::new();
    for c in cands {
        let mut support = c.support;
        let (gate, expiry) = match c.kind {
            TargetKind::Relay => (host_gate(&support, &pol.relay), &pol.relay.expiry),
            TargetKind::OriginAddress => (
                host_gate(&support, &pol.origin_address),
                &pol.origin_address.expiry,
            ),
            TargetKind::OriginPrefix | TargetKind::OriginAsn => {
                let g = if c.kind == TargetKind::OriginPrefix {
                    &pol.origin_prefix
                } else {
                    &pol.origin_asn
                };
                if let Some(a) = &assessment {
                    support.hypothesis = a.leading.clone();
                    support.probability = a.probability;
                    support.confidence = a.confidence.map(|c| c.as_str().to_string());
                }
                (
                    network_gate(
                        assessment.as_ref(),
                        g,
                        &c.prefixes,
                        c.asn,
                        c.country.as_deref(),
                    ),
                    &g.expiry,
                )
            }
        };
        // A policy refusal comes first (it is the reason that matters to the
        // user); a target that cannot be formed is refused either way.
        let gate = match (gate, c.unusable) {
            // The target's own reason says why its network is unknown.
            (Err(g), Some(u)) if g == NETWORK_UNKNOWN => Err(u),
            (Err(g), Some(u)) => Err(format!("{g}; {u}")),
            (Ok(_), Some(u)) => Err(u),
            (g, None) => g,
        };
        let expiry_s = parse_duration_s(expiry).expect("checked when the policy loaded");
        let mut d = Decision {
            kind: c.kind,
            target: c.target,
            blocked: false,
            reason: String::new(),
            prefixes: c.prefixes.clone(),
            expires_ns: None,
            support,
        };
        match gate {
            Err(why) => d.reason = why,
            Ok(why) => {
                let mut kept = Vec::new();
                let mut spared = BTreeSet::new();
                for p in &c.prefixes {
                    for e in allow.iter().filter(|e| e.prefix.overlaps(p)) {
                        spared.insert(format!("{} ({})", e.prefix, e.reason));
                    }
                    kept.extend(subtract(p, &allow_prefixes));
                }
                let spared: Vec<String> = spared.into_iter().collect();
                if kept.is_empty() {
                    d.reason = format!("allowlisted: {}", spared.join(", "));
                } else {
                    d.blocked = true;
                    d.expires_ns = Some(
                        inp.now_ns
                            .saturating_add((expiry_s as i64).saturating_mul(1_000_000_000)),
                    );
                    d.reason = if spared.is_empty() {
                        why
                    } else {
                        format!(
                            "{why}; allowlisted ranges carved out: {}",
                            spared.join(", ")
                        )
                    };
                    d.prefixes = exact_cover(&kept);
                }
            }
        }
        decisions.push(d);
    }
    decisions.sort_by(|a, b| (a.kind, &a.target).cmp(&(b.kind, &b.target)));

    // Rules: cover per expiry, longest expiry first, narrower rules inside a
    // longer-lasting one dropped.
    let mut by_expiry: BTreeMap<i64, Vec<Prefix>> = BTreeMap::new();
    for d in decisions.iter().filter(|d| d.blocked) {
        by_expiry
            .entry(d.expires_ns.expect("blocked decisions expire"))
            .or_default()
            .extend(d.prefixes.iter().copied());
    }
    let budget = u128::from(pol.cover.max_overblock_addresses);
    let mut spent: u128 = 0;
    let mut placed: Vec<(Prefix, i64)> = Vec::new();
    for (exp, ps) in by_expiry.iter().rev() {
        let ps: Vec<Prefix> = ps
            .iter()
            .copied()
            .filter(|p| !placed.iter().any(|(q, _)| q.covers(p)))
            .collect();
        let cover = bounded_cover(&ps, budget.saturating_sub(spent), &allow_prefixes);
        spent += cover.overblock_addresses;
        placed.extend(cover.prefixes.into_iter().map(|p| (p, *exp)));
    }
    placed.sort();
    let victims_v: Vec<Prefix> = victims.iter().copied().collect();
    let rules: Vec<Rule> = placed
        .into_iter()
        .map(|(prefix, expires_ns)| {
            let served: Vec<&Decision> = decisions
                .iter()
                .filter(|d| d.blocked && d.prefixes.iter().any(|p| p.overlaps(&prefix)))
                .collect();
            let mut kinds: Vec<TargetKind> = served.iter().map(|d| d.kind).collect();
            kinds.sort();
            kinds.dedup();
            Rule {
                prefix,
                kinds,
                targets: served.iter().map(|d| d.target.clone()).collect(),
                expires_ns,
                victims: victims_v.clone(),
                collateral: measure(&[prefix], inp.conns, &attack_ids, inp.info, &pol.collateral),
            }
        })
        .collect();

    // Side by side.
    let mut comparison = Vec::new();
    for (name, kinds) in [
        (
            "block the relays",
            [TargetKind::Relay, TargetKind::OriginAddress],
        ),
        (
            "block the origin networks",
            [TargetKind::OriginPrefix, TargetKind::OriginAsn],
        ),
    ] {
        let ds: Vec<&Decision> = decisions
            .iter()
            .filter(|d| kinds.contains(&d.kind))
            .collect();
        let mut ps = Vec::new();
        for d in &ds {
            for p in &d.prefixes {
                ps.extend(subtract(p, &allow_prefixes));
            }
        }
        let ps = exact_cover(&ps);
        let addresses: u128 = ps.iter().map(Prefix::size).fold(0, u128::saturating_add);
        let refused: Vec<String> = ds
            .iter()
            .filter(|d| !d.blocked)
            .map(|d| format!("{}: {}", d.target, d.reason))
            .collect();
        let policy = if ds.is_empty() {
            "no targets".to_string()
        } else if refused.is_empty() {
            "allowed".to_string()
        } else {
            format!("refused in part: {}", refused.join("; "))
        };
        comparison.push(Alternative {
            name: name.into(),
            collateral: measure(&ps, inp.conns, &attack_ids, inp.info, &pol.collateral),
            addresses: addresses.to_string(),
            prefixes: ps,
            policy,
        });
    }

    Plan {
        format: PLAN_FORMAT.into(),
        created_ns: inp.now_ns,
        policy_sha256: inp.policy.sha256.clone(),
        policy_source: inp.policy.source.clone(),
        trace: InputRef {
            path: inp.trace.path.clone(),
            sha256: inp.trace.sha256.clone(),
        },
        assess: inp.assess.map(|a| InputRef {
            path: a.path.clone(),
            sha256: a.sha256.clone(),
        }),
        victims: victims_v,
        decisions,
        rules,
        overblock_addresses: spent.to_string(),
        comparison,
        connections: inp.connections,
        flowspec: pol.flowspec.clone(),
        bgp: pol.bgp.clone(),
    }
}

fn host_gate(s: &Support, g: &crate::policy::HostGate) -> Result<String, String> {
    let (Some(fmp), Some(score)) = (s.false_match_probability, s.score) else {
        return Err("no trace link names this host".into());
    };
    if fmp > g.max_false_match_probability {
        return Err(format!(
            "link false-match probability {fmp:.3e} > policy maximum {:.3e}",
            g.max_false_match_probability
        ));
    }
    if score < g.min_score {
        return Err(format!(
            "link score {score:.3} < policy minimum {:.3}",
            g.min_score
        ));
    }
    Ok(format!(
        "trace link {} (score {score:.3}, false-match probability {fmp:.3e} <= {:.3e})",
        s.link.as_deref().unwrap_or("?"),
        g.max_false_match_probability
    ))
}

/// The gate's refusal of a network target of which nothing is known (no prefix, AS or
/// country): it cannot be compared with the footprint, which is not the same as lying
/// outside it.
const NETWORK_UNKNOWN: &str =
    "its network is unknown, so it cannot be compared with the leading hypothesis's footprint";

fn network_gate(
    a: Option<&Assessment>,
    g: &NetworkGate,
    prefixes: &[Prefix],
    asn: Option<u64>,
    country: Option<&str>,
) -> Result<String, String> {
    let Some(a) = a else {
        return Err("no assessment".into());
    };
    if a.verdict != "assessed" {
        return Err(format!(
            "assessment verdict is {:?}, not \"assessed\"",
            a.verdict
        ));
    }
    let Some(p) = a.probability else {
        return Err("assessment names no leading hypothesis with a probability".into());
    };
    if p < g.min_probability {
        return Err(format!(
            "leading hypothesis probability {p:.2} < policy minimum {:.2}",
            g.min_probability
        ));
    }
    let conf = a
        .confidence
        .ok_or("assessment confidence missing or unknown")?;
    if conf < g.min_confidence {
        return Err(format!(
            "assessment confidence {} < policy minimum {}",
            conf.as_str(),
            g.min_confidence.as_str()
        ));
    }
    if !a.has_footprint {
        return Err("the leading hypothesis names no network footprint (origin)".into());
    }
    if prefixes.is_empty() && asn.is_none() && country.is_none() {
        // Not "outside" the footprint: nothing is known of the network to compare.
        return Err(NETWORK_UNKNOWN.into());
    }
    let in_footprint = asn.is_some_and(|n| a.asns.contains(&n))
        || country.is_some_and(|c| a.countries.iter().any(|x| x == c))
        || (!prefixes.is_empty()
            && prefixes
                .iter()
                .all(|p| a.prefixes.iter().any(|q| q.covers(p))));
    if !in_footprint {
        return Err("outside the leading hypothesis's network footprint".into());
    }
    Ok(format!(
        "assessment: leading hypothesis {} at {p:.2} with {} confidence (policy: >= {:.2}, >= {}); within its footprint",
        a.leading.as_deref().unwrap_or("?"),
        conf.as_str(),
        g.min_probability,
        g.min_confidence.as_str()
    ))
}
