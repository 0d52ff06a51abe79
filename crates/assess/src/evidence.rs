//! The case's evidence file, `evidence.toml` (format `relaytrace-evidence/1`): parse
//! and check it, and resolve every item's likelihoods against the hypotheses.
//!
//! The format is described field by field in README.md ("Assess") and by the JSON
//! Schema `crates/assess/schema/evidence-1.schema.json`. Parsing is two steps: serde
//! reads the TOML into `Raw*` shapes (unknown fields are errors, so a typo is never
//! silently ignored), then [`parse`] applies the rules a schema cannot express
//! (unique ids, likelihoods naming known hypotheses, the default hypotheses) and
//! reports the first broken rule with its line and field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::error::AssessError;
use crate::footprint::Footprint;
use crate::grade::{Credibility, Reliability};

/// The format string every evidence file starts with.
pub const FORMAT: &str = "relaytrace-evidence/1";

/// Id of the "other / unknown" hypothesis, present in every assessment.
pub const OTHER: &str = "other";
/// Id of the default "false flag" hypothesis.
pub const FALSE_FLAG: &str = "false-flag";
/// Id of the default "rented or compromised infrastructure" hypothesis.
pub const RENTED: &str = "rented-infrastructure";

/// Most hypotheses a file may hold: ACH with more than a few dozen competing
/// explanations is unreadable, and the bound keeps the sensitivity runs small.
pub const MAX_HYPOTHESES: usize = 64;
/// Most items a file may hold (hostile-input bound; sensitivity analysis is
/// quadratic in the number of groups).
pub const MAX_ITEMS: usize = 5000;
/// Largest likelihood ratio accepted: beyond a million to one a ratio is a claim of
/// certainty that no single report supports.
pub const MAX_LR: f64 = 1e6;

/// What an evidence item is about (design section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Addresses, domains, hosting, network paths.
    Infrastructure,
    /// Code, samples, families.
    Malware,
    /// Tactics, techniques and procedures (ATT&CK).
    Tradecraft,
    /// Working hours, time zones, holidays.
    Timing,
    /// Language strings, keyboard layouts, idioms.
    Language,
    /// Aims, targets, demands, who benefits.
    Intent,
    /// Another organisation's attribution or statement.
    OutsideSource,
}

impl Kind {
    /// Every kind, in file order.
    pub const ALL: [Kind; 7] = [
        Kind::Infrastructure,
        Kind::Malware,
        Kind::Tradecraft,
        Kind::Timing,
        Kind::Language,
        Kind::Intent,
        Kind::OutsideSource,
    ];

    /// The name used in files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Infrastructure => "infrastructure",
            Kind::Malware => "malware",
            Kind::Tradecraft => "tradecraft",
            Kind::Timing => "timing",
            Kind::Language => "language",
            Kind::Intent => "intent",
            Kind::OutsideSource => "outside-source",
        }
    }

    /// Parses a name as [`Kind::as_str`] writes it.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A hypothesis with a built-in meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// Someone not listed, or nobody identifiable.
    Other,
    /// Another actor made the evidence point at a listed one.
    FalseFlag,
    /// The infrastructure was rented or compromised; its operator is not the actor.
    RentedInfrastructure,
}

/// One competing explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Short id (`kp`, `insider`, `other`).
    pub id: String,
    /// What it says.
    pub name: String,
    /// Prior probability, normalised over all hypotheses.
    pub prior: f64,
    /// Network footprint of the actor, if believed known.
    pub origin: Option<Footprint>,
    /// Built-in meaning, if any.
    pub special: Option<Special>,
    /// ATT&CK group ids (`G0032`) whose profiles stand for this hypothesis when
    /// tradecraft items list ATT&CK techniques and software.
    pub attack_groups: Vec<String>,
}

/// Where an item's statement comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Who said it (organisation, document title).
    pub name: String,
    /// Where to read it.
    pub url: String,
    /// Publication date, `YYYY-MM-DD`, if known.
    pub date: Option<String>,
}

/// How the likelihoods were stated in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stated {
    /// `likelihoods = {...}`: P(observation | hypothesis).
    Probabilities,
    /// `lr = {...}`: ratios, unnamed hypotheses at 1.
    Ratios,
    /// Made by relaytrace from a trace finding.
    Trace,
    /// `attack = {...}`: ratios computed from ATT&CK group profiles
    /// ([`crate::attack::resolve`]); all 1 until then.
    Attack,
}

/// ATT&CK technique and software ids observed (`attack = {...}` of an item).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackQuery {
    /// Technique ids (`T1485`, `T1561.002`).
    #[serde(default)]
    pub techniques: Vec<String>,
    /// Software ids (`S0365`).
    #[serde(default)]
    pub software: Vec<String>,
}

/// One evidence item, resolved against the hypotheses.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Unique id.
    pub id: String,
    /// What it is about.
    pub kind: Kind,
    /// What it says, in one sentence.
    pub statement: String,
    /// Who says it.
    pub source: Source,
    /// Admiralty source reliability.
    pub reliability: Reliability,
    /// Admiralty information credibility.
    pub credibility: Credibility,
    /// Dependency group: items of one group are counted once.
    pub group: String,
    /// Whether the observation could have been planted or borrowed.
    pub spoofable: bool,
    /// P(observation | hypothesis), one per hypothesis in [`EvidenceSet::hypotheses`]
    /// order; for ratios, the ratios themselves (only their proportions matter).
    pub likelihood: Vec<f64>,
    /// How they were given.
    pub stated: Stated,
    /// A further factor on the weight (a trace item's chance that its chain is
    /// right); 1 for items from the file.
    pub factor: f64,
    /// Who holds better evidence on this point, for missing-evidence requests.
    pub holder: Option<String>,
    /// What to ask that holder for.
    pub request: Option<String>,
    /// ATT&CK ids observed, for [`Stated::Attack`] items.
    pub attack: Option<AttackQuery>,
    /// 1-based line in the file (0 for items made from a trace).
    pub line: usize,
}

impl Item {
    /// The weight of the item: Admiralty weight × [`Item::factor`].
    pub fn weight(&self) -> f64 {
        crate::grade::weight(self.reliability, self.credibility) * self.factor
    }
}

/// The decision rule: below it the verdict is "insufficient evidence".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The leading hypothesis must reach this ICD 203 word (default "likely").
    pub min_words: String,
    /// And the confidence must reach this level (default moderate).
    pub min_confidence: crate::confidence::Level,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_words: "likely".into(),
            min_confidence: crate::confidence::Level::Moderate,
        }
    }
}

/// Everything in an evidence file, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceSet {
    /// The hypotheses, file order, then the defaults not already present.
    pub hypotheses: Vec<Hypothesis>,
    /// The items, file order.
    pub items: Vec<Item>,
    /// The decision rule.
    pub policy: Policy,
}

impl EvidenceSet {
    /// Index of the hypothesis `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.hypotheses.iter().position(|h| h.id == id)
    }

    /// Keeps only items whose source is dated on or before `date` (`YYYY-MM-DD`),
    /// plus undated ones: the case as it stood on that day.
    pub fn as_of(&mut self, date: &str) {
        self.items
            .retain(|i| i.source.date.as_deref().is_none_or(|d| d <= date));
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    format: String,
    #[serde(default)]
    policy: Option<RawPolicy>,
    #[serde(default)]
    exclude_defaults: Vec<String>,
    #[serde(default, rename = "hypothesis")]
    hypotheses: Vec<RawHypothesis>,
    #[serde(default, rename = "item")]
    items: Vec<RawItem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    min_words: Option<String>,
    min_confidence: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHypothesis {
    id: Spanned<String>,
    name: String,
    prior: Option<f64>,
    origin: Option<Footprint>,
    #[serde(default)]
    attack_groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    url: String,
    date: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: Spanned<String>,
    kind: String,
    statement: String,
    source: RawSource,
    reliability: String,
    credibility: i64,
    group: Option<String>,
    #[serde(default)]
    spoofable: bool,
    likelihoods: Option<BTreeMap<String, f64>>,
    lr: Option<BTreeMap<String, f64>>,
    holder: Option<String>,
    request: Option<String>,
    attack: Option<AttackQuery>,
}

/// Whether `s` is an ATT&CK id with prefix `p` (`T1485`, `T1561.002`, `S0365`,
/// `G0032`): the letter, four digits, and for techniques an optional `.NNN`.
pub fn is_attack_id(s: &str, p: char) -> bool {
    let Some(rest) = s.strip_prefix(p) else {
        return false;
    };
    let (main, sub) = match rest.split_once('.') {
        Some((m, x)) if p == 'T' => (m, Some(x)),
        Some(_) => return false,
        None => (rest, None),
    };
    main.len() == 4
        && main.bytes().all(|b| b.is_ascii_digit())
        && sub.is_none_or(|x| x.len() == 3 && x.bytes().all(|b| b.is_ascii_digit()))
}

/// Key of `likelihoods` that gives the value for every hypothesis not named.
pub const OTHERWISE: &str = "otherwise";

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The line where `text` sets `key` in its `[table]` (0 when it does not: the error
/// then names the field only). The policy is read as plain values, without spans.
fn key_line(text: &str, table: &str, key: &str) -> usize {
    let header = format!("[{table}]");
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t == header;
        } else if inside && t.split('=').next().is_some_and(|k| k.trim() == key) && t.contains('=')
        {
            return i + 1;
        }
    }
    0
}

/// The line of `key = ...` in the `[[...]]` table that holds line `inside` (1-based;
/// for a nested key such as `source.name`, the line of `source`), or `inside` when the
/// table does not set it there. Items and hypotheses are read with the span of their
/// id only; an error about another field must still point at that field's line.
fn field_line(text: &str, inside: usize, key: &str) -> usize {
    let key = key.split('.').next().unwrap_or(key);
    let lines: Vec<&str> = text.lines().collect();
    let here = inside.saturating_sub(1).min(lines.len());
    let header = (0..here)
        .rev()
        .find(|&i| lines[i].trim_start().starts_with('['));
    let start = header.map_or(0, |i| i + 1);
    for (i, line) in lines.iter().enumerate().skip(start) {
        let t = line.trim();
        if t.starts_with('[') {
            break;
        }
        if t.contains('=') && t.split('=').next().is_some_and(|k| k.trim() == key) {
            return i + 1;
        }
    }
    inside
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether `s` is a `YYYY-MM-DD` date that exists (Gregorian calendar: no
/// February 30th, February 29th in leap years only).
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return false;
    }
    let (Ok(year), Ok(month), Ok(day)) = (
        s[..4].parse::<u32>(),
        s[5..7].parse::<u32>(),
        s[8..10].parse::<u32>(),
    ) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

fn default_hypothesis(id: &str) -> Hypothesis {
    let (name, special) = match id {
        OTHER => ("Other / unknown: an actor not listed, or none identifiable", Special::Other),
        FALSE_FLAG => (
            "False flag: another actor made the evidence point at a listed one",
            Special::FalseFlag,
        ),
        _ => (
            "Rented or compromised infrastructure: the hosts' operators are not the actor, who is not identified",
            Special::RentedInfrastructure,
        ),
    };
    Hypothesis {
        id: id.into(),
        name: name.into(),
        prior: 1.0,
        origin: None,
        special: Some(special),
        attack_groups: Vec::new(),
    }
}

fn special_of(id: &str) -> Option<Special> {
    match id {
        OTHER => Some(Special::Other),
        FALSE_FLAG => Some(Special::FalseFlag),
        RENTED => Some(Special::RentedInfrastructure),
        _ => None,
    }
}

/// Reads and checks `path` (a missing file is [`AssessError::NoEvidence`], which says
/// how to create one).
pub fn load(path: &Path) -> Result<EvidenceSet, AssessError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            AssessError::NoEvidence(path.to_path_buf())
        } else {
            AssessError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    parse(&text, path)
}

/// Parses and checks the text of an evidence file; `path` is only used in errors.
pub fn parse(text: &str, path: &Path) -> Result<EvidenceSet, AssessError> {
    let raw: RawFile = toml::from_str(text).map_err(|source| AssessError::Toml {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |line: usize, at: String, reason: String| AssessError::Invalid {
        path: path.to_path_buf(),
        line,
        at,
        reason,
    };
    if raw.format != FORMAT {
        return Err(bad(
            1,
            "format".into(),
            format!("is {:?}; this version reads {FORMAT:?}", raw.format),
        ));
    }
    let policy = match raw.policy {
        None => Policy::default(),
        Some(p) => {
            let mut out = Policy::default();
            if let Some(w) = p.min_words {
                if crate::words::lower_bound(&w).is_none_or(|lo| lo < 0.5) {
                    return Err(bad(
                        key_line(text, "policy", "min_words"),
                        "policy field \"min_words\"".into(),
                        format!("{w:?} is not an ICD 203 word at or above \"roughly even chance\""),
                    ));
                }
                out.min_words = w;
            }
            if let Some(c) = p.min_confidence {
                out.min_confidence = crate::confidence::Level::parse(&c).ok_or_else(|| {
                    bad(
                        key_line(text, "policy", "min_confidence"),
                        "policy field \"min_confidence\"".into(),
                        format!("{c:?} is not low, moderate or high"),
                    )
                })?;
            }
            out
        }
    };
    if raw.hypotheses.len() > MAX_HYPOTHESES {
        return Err(bad(
            0,
            "hypothesis".into(),
            format!("more than {MAX_HYPOTHESES}"),
        ));
    }
    if raw.items.len() > MAX_ITEMS {
        return Err(bad(0, "item".into(), format!("more than {MAX_ITEMS}")));
    }
    for x in &raw.exclude_defaults {
        match x.as_str() {
            FALSE_FLAG | RENTED => {}
            OTHER => {
                return Err(bad(
                    0,
                    "exclude_defaults".into(),
                    "\"other\" cannot be excluded: the hypotheses must cover every possibility"
                        .into(),
                ))
            }
            _ => {
                return Err(bad(
                    0,
                    "exclude_defaults".into(),
                    format!(
                        "{x:?} is not a default hypothesis (false-flag, rented-infrastructure)"
                    ),
                ))
            }
        }
    }
    let mut hypotheses: Vec<Hypothesis> = Vec::new();
    for h in &raw.hypotheses {
        let line = line_of(text, h.id.span().start);
        let id = h.id.get_ref();
        let at = format!("hypothesis {id:?}");
        // An error about one field, at that field's line.
        let bad_at = |f: &str, reason: String| {
            bad(
                field_line(text, line, f),
                format!("{at} field {f:?}"),
                reason,
            )
        };
        if !is_id(id) {
            return Err(bad(
                line,
                at,
                "id must be 1-64 of a-z, 0-9, '-', '_'".into(),
            ));
        }
        if hypotheses.iter().any(|x| &x.id == id) {
            return Err(bad(line, at, "id used twice".into()));
        }
        if id == OTHERWISE {
            return Err(bad(
                line,
                at,
                "\"otherwise\" is reserved: in an item's likelihoods it stands for every hypothesis not listed".into(),
            ));
        }
        if raw.exclude_defaults.iter().any(|x| x == id) {
            return Err(bad(line, at, "listed and excluded at once".into()));
        }
        if id == OTHER && h.origin.is_some() {
            return Err(bad(line, at, "\"other\" has no footprint".into()));
        }
        let prior = h.prior.unwrap_or(1.0);
        if !(prior.is_finite() && prior > 0.0) {
            return Err(bad_at(
                "prior",
                "must be a positive number (relative weights; they are normalised)".into(),
            ));
        }
        if let Some(o) = &h.origin {
            o.check().map_err(|r| bad_at("origin", r))?;
        }
        if h.name.trim().is_empty() {
            return Err(bad_at("name", "is empty".into()));
        }
        if let Some(bad_id) = h.attack_groups.iter().find(|g| !is_attack_id(g, 'G')) {
            return Err(bad_at(
                "attack_groups",
                format!("{bad_id:?} is not an ATT&CK group id (G and four digits)"),
            ));
        }
        hypotheses.push(Hypothesis {
            id: id.clone(),
            name: h.name.clone(),
            prior,
            origin: h.origin.clone(),
            special: special_of(id),
            attack_groups: h.attack_groups.clone(),
        });
    }
    for d in [FALSE_FLAG, RENTED, OTHER] {
        if !raw.exclude_defaults.iter().any(|x| x == d) && !hypotheses.iter().any(|h| h.id == d) {
            hypotheses.push(default_hypothesis(d));
        }
    }
    let total: f64 = hypotheses.iter().map(|h| h.prior).sum();
    for h in &mut hypotheses {
        h.prior /= total;
    }
    let ff = hypotheses.iter().position(|h| h.id == FALSE_FLAG);
    let mut items: Vec<Item> = Vec::new();
    let mut seen = BTreeSet::new();
    for it in raw.items {
        let line = line_of(text, it.id.span().start);
        let id = it.id.into_inner();
        let at = format!("item {id:?}");
        let field = |f: &str| format!("{at} field {f:?}");
        // An error about one field, at that field's line.
        let bad_at = |f: &str, reason: String| bad(field_line(text, line, f), field(f), reason);
        if !is_id(&id) {
            return Err(bad(
                line,
                at,
                "id must be 1-64 of a-z, 0-9, '-', '_'".into(),
            ));
        }
        if id.starts_with("trace-") {
            return Err(bad(
                line,
                at,
                "ids starting with \"trace-\" are reserved for items made from trace findings"
                    .into(),
            ));
        }
        if !seen.insert(id.clone()) {
            return Err(bad(line, at, "id used twice".into()));
        }
        let kind = Kind::parse(&it.kind).ok_or_else(|| {
            bad_at(
                "kind",
                format!(
                    "{:?} is not one of {}",
                    it.kind,
                    Kind::ALL.map(Kind::as_str).join(", ")
                ),
            )
        })?;
        let reliability = Reliability::parse(&it.reliability)
            .ok_or_else(|| bad_at("reliability", format!("{:?} is not A-F", it.reliability)))?;
        let credibility = u8::try_from(it.credibility)
            .ok()
            .and_then(Credibility::new)
            .ok_or_else(|| bad_at("credibility", format!("{} is not 1-6", it.credibility)))?;
        if it.statement.trim().is_empty() {
            return Err(bad_at("statement", "is empty".into()));
        }
        if it.source.name.trim().is_empty() {
            return Err(bad_at("source.name", "is empty".into()));
        }
        if !(it.source.url.starts_with("https://") || it.source.url.starts_with("http://")) {
            return Err(bad_at(
                "source.url",
                format!(
                    "{:?} is not an http(s) address; every item cites its source",
                    it.source.url
                ),
            ));
        }
        let date = match it.source.date {
            None => None,
            Some(v) => {
                let s = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Datetime(d) => d.to_string(),
                    other => other.to_string(),
                };
                if !is_date(&s) {
                    return Err(bad_at(
                        "source.date",
                        format!("{s:?} is not a date (YYYY-MM-DD, one that exists)"),
                    ));
                }
                Some(s)
            }
        };
        if let Some(q) = &it.attack {
            if it.likelihoods.is_some() || it.lr.is_some() {
                return Err(bad(
                    line,
                    at,
                    "give one of likelihoods, lr or attack".into(),
                ));
            }
            if q.techniques.is_empty() && q.software.is_empty() {
                return Err(bad_at("attack", "lists no technique or software".into()));
            }
            let bad_id = q
                .techniques
                .iter()
                .find(|t| !is_attack_id(t, 'T'))
                .or_else(|| q.software.iter().find(|x| !is_attack_id(x, 'S')));
            if let Some(b) = bad_id {
                return Err(bad_at("attack", format!("{b:?} is not an ATT&CK technique (T1234, T1234.001) or software (S1234) id"),
                ));
            }
        }
        let (likelihood, stated) = match (it.likelihoods, it.lr) {
            _ if it.attack.is_some() => (vec![1.0; hypotheses.len()], Stated::Attack),
            (Some(_), Some(_)) => {
                return Err(bad(line, at, "give either likelihoods or lr, not both".into()))
            }
            (None, None) => {
                return Err(bad(
                    line,
                    at,
                    "needs likelihoods = { <hypothesis> = P(observation | hypothesis), ..., otherwise = p }, lr = { <hypothesis> = ratio, ... } or attack = { techniques = [...], software = [...] }".into(),
                ))
            }
            (Some(map), None) => {
                let otherwise = map.get(OTHERWISE).copied();
                let mut out = Vec::with_capacity(hypotheses.len());
                for k in map.keys() {
                    if k != OTHERWISE && !hypotheses.iter().any(|h| &h.id == k) {
                        return Err(bad_at("likelihoods", format!("{k:?} is not a hypothesis id")));
                    }
                }
                for (k, v) in &map {
                    if !(v.is_finite() && *v > 0.0 && *v <= 1.0) {
                        return Err(bad_at("likelihoods", if *v == 0.0 {
                                format!("{k} = {v}: a likelihood is a probability in (0, 1]; zero is refused because no later evidence could revise it")
                            } else {
                                format!("{k} = {v}: a likelihood is a probability in (0, 1]")
                            },
                        ));
                    }
                }
                for (i, h) in hypotheses.iter().enumerate() {
                    let v = match map.get(&h.id).copied().or(if Some(i) == ff && it.spoofable {
                        None
                    } else {
                        otherwise
                    }) {
                        Some(v) => v,
                        None if Some(i) == ff && it.spoofable => f64::NAN,
                        None => {
                            return Err(bad_at("likelihoods", format!("no value for hypothesis {:?} and no \"otherwise\"", h.id),
                            ))
                        }
                    };
                    out.push(v);
                }
                (out, Stated::Probabilities)
            }
            (None, Some(map)) => {
                for (k, v) in &map {
                    if !hypotheses.iter().any(|h| &h.id == k) {
                        return Err(bad_at("lr", format!("{k:?} is not a hypothesis id")));
                    }
                    if !(v.is_finite() && *v >= 1.0 / MAX_LR && *v <= MAX_LR) {
                        return Err(bad_at("lr", format!("{k} = {v}: a ratio must be between 1e-6 and 1e6"),
                        ));
                    }
                }
                let out = hypotheses
                    .iter()
                    .enumerate()
                    .map(|(i, h)| match map.get(&h.id) {
                        Some(v) => *v,
                        None if Some(i) == ff && it.spoofable => f64::NAN,
                        None => 1.0,
                    })
                    .collect();
                (out, Stated::Ratios)
            }
        };
        items.push(Item {
            group: it.group.unwrap_or_else(|| id.clone()),
            id,
            kind,
            statement: it.statement,
            source: Source {
                name: it.source.name,
                url: it.source.url,
                date,
            },
            reliability,
            credibility,
            spoofable: it.spoofable,
            likelihood: fill_false_flag(likelihood),
            stated,
            factor: 1.0,
            holder: it.holder,
            request: it.request,
            attack: it.attack,
            line,
        });
    }
    Ok(EvidenceSet {
        hypotheses,
        items,
        policy,
    })
}

/// A spoofable item whose file gives no value under "false flag" gets the largest
/// value of the other hypotheses: whoever plants an artefact plants the one that
/// points at the actor being framed, so the observation is as likely under the
/// false flag as under the best-explained hypothesis (design section 5: spoofable
/// artefacts "carry the false-flag hypothesis explicitly").
fn fill_false_flag(mut v: Vec<f64>) -> Vec<f64> {
    let max = v
        .iter()
        .copied()
        .filter(|x| !x.is_nan())
        .fold(0.0, f64::max);
    for x in &mut v {
        if x.is_nan() {
            *x = max;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
format = "relaytrace-evidence/1"

[[hypothesis]]
id = "a"
name = "Actor A"
origin = { countries = ["KP"] }

[[hypothesis]]
id = "b"
name = "Actor B"

[[item]]
id = "code"
kind = "malware"
statement = "The wiper shares code with A's earlier tools."
source = { name = "Vendor report", url = "https://example.org/r", date = "2016-02-24" }
reliability = "B"
credibility = 2
spoofable = true
likelihoods = { a = 0.6, otherwise = 0.1 }
"#;

    fn parse_str(s: &str) -> Result<EvidenceSet, AssessError> {
        parse(s, Path::new("evidence.toml"))
    }

    fn err(s: &str) -> String {
        parse_str(s).unwrap_err().to_string()
    }

    /// A case without an evidence file is told how to make one, not "No such file".
    #[test]
    fn a_missing_file_says_how_to_create_one() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(&dir.path().join("evidence.toml")).unwrap_err();
        assert!(matches!(e, AssessError::NoEvidence(_)), "{e:?}");
        assert!(e.to_string().contains("relaytrace evidence init"), "{e}");
    }

    #[test]
    fn defaults_are_added_and_priors_normalised() {
        let e = parse_str(MINIMAL).unwrap();
        let ids: Vec<&str> = e.hypotheses.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", FALSE_FLAG, RENTED, OTHER]);
        let total: f64 = e.hypotheses.iter().map(|h| h.prior).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!(e.policy, Policy::default());
    }

    #[test]
    fn spoofable_item_is_as_likely_under_false_flag_as_under_the_framed_actor() {
        let e = parse_str(MINIMAL).unwrap();
        let it = &e.items[0];
        assert_eq!(it.likelihood, vec![0.6, 0.1, 0.6, 0.1, 0.1]);
        assert_eq!(it.line, 14);
        assert_eq!(it.group, "code");
        let not_spoofable = MINIMAL.replace("spoofable = true", "spoofable = false");
        let e = parse_str(&not_spoofable).unwrap();
        assert_eq!(e.items[0].likelihood, vec![0.6, 0.1, 0.1, 0.1, 0.1]);
    }

    #[test]
    fn ratios_default_to_one() {
        let s = MINIMAL.replace(
            "likelihoods = { a = 0.6, otherwise = 0.1 }",
            "lr = { a = 4.0 }",
        );
        let e = parse_str(&s).unwrap();
        assert_eq!(e.items[0].likelihood, vec![4.0, 1.0, 4.0, 1.0, 1.0]);
        assert_eq!(e.items[0].stated, Stated::Ratios);
    }

    #[test]
    fn bad_values_are_named_with_line_and_field() {
        let cases = [
            (
                "reliability = \"B\"",
                "reliability = \"G\"",
                // The field's own line, not the item's id line (14).
                "line 18: item \"code\" field \"reliability\"",
            ),
            (
                "credibility = 2",
                "credibility = 7",
                "line 19: item \"code\" field \"credibility\": 7 is not 1-6",
            ),
            (
                "kind = \"malware\"",
                "kind = \"rumour\"",
                "line 15: item \"code\" field \"kind\"",
            ),
            (
                "name = \"Actor B\"",
                "name = \" \"",
                "line 11: hypothesis \"b\" field \"name\"",
            ),
            ("otherwise = 0.1", "otherwise = 0.0", "zero is refused"),
            (", otherwise = 0.1", "", "no value for hypothesis \"b\""),
            ("a = 0.6", "c = 0.6", "\"c\" is not a hypothesis id"),
            (
                "https://example.org/r",
                "example.org/r",
                "every item cites its source",
            ),
            (
                "2016-02-24",
                "24.02.2016",
                "is not a date (YYYY-MM-DD, one that exists)",
            ),
            (
                "relaytrace-evidence/1",
                "relaytrace-evidence/9",
                "this version reads",
            ),
            ("id = \"code\"", "id = \"Code!\"", "id must be"),
            ("id = \"b\"", "id = \"a\"", "id used twice"),
            (
                "id = \"b\"",
                "id = \"otherwise\"",
                "\"otherwise\" is reserved",
            ),
            (
                "countries = [\"KP\"]",
                "countries = [\"kp\"]",
                "field \"origin\"",
            ),
            (
                "spoofable = true",
                "spoofable = true\nweight = 3",
                "unknown field",
            ),
        ];
        for (from, to, want) in cases {
            assert!(MINIMAL.contains(from), "{from}");
            let got = err(&MINIMAL.replacen(from, to, 1));
            assert!(got.contains(want), "{from} -> {to}: {got}");
            assert!(got.starts_with("evidence.toml"), "{got}");
        }
        // A policy value is named with its line (the policy is read without spans).
        let with_policy = MINIMAL.replacen(
            "\n[[hypothesis]]",
            "\n[policy]\nmin_confidence = \"moderate\"\nmin_words = \"probable\"\n\n[[hypothesis]]",
            1,
        );
        let got = err(&with_policy);
        assert!(got.contains("line 6: policy field \"min_words\""), "{got}");
    }

    #[test]
    fn other_cannot_be_excluded_but_the_other_defaults_can() {
        let s = format!("exclude_defaults = [\"false-flag\"]\n{MINIMAL}");
        let s = s.replacen(
            "exclude_defaults",
            "format = \"relaytrace-evidence/1\"\nexclude_defaults",
            1,
        );
        let s = s.replacen(
            "\nformat = \"relaytrace-evidence/1\"\n\n[[hyp",
            "\n\n[[hyp",
            1,
        );
        let e = parse_str(&s).unwrap();
        assert!(e.index_of(FALSE_FLAG).is_none());
        assert!(e.index_of(OTHER).is_some());
        let s = s.replace("[\"false-flag\"]", "[\"other\"]");
        assert!(err(&s).contains("cannot be excluded"));
    }

    #[test]
    fn as_of_keeps_items_published_by_then() {
        let mut e = parse_str(MINIMAL).unwrap();
        e.as_of("2016-02-23");
        assert!(e.items.is_empty());
        let mut e = parse_str(MINIMAL).unwrap();
        e.as_of("2016-02-24");
        assert_eq!(e.items.len(), 1);
    }

    #[test]
    fn attack_items_and_groups_are_checked() {
        let s = MINIMAL
            .replace(
                "name = \"Actor A\"",
                "name = \"Actor A\"\nattack_groups = [\"G0032\"]",
            )
            .replace(
                "likelihoods = { a = 0.6, otherwise = 0.1 }",
                "attack = { techniques = [\"T1485\", \"T1561.002\"], software = [\"S0365\"] }",
            );
        let e = parse_str(&s).unwrap();
        assert_eq!(e.hypotheses[0].attack_groups, ["G0032"]);
        assert_eq!(e.items[0].stated, Stated::Attack);
        assert_eq!(e.items[0].attack.as_ref().unwrap().software, ["S0365"]);
        assert!(err(&s.replace("T1485", "T14")).contains("not an ATT&CK technique"));
        assert!(err(&s.replace("G0032", "APT38")).contains("not an ATT&CK group id"));
        assert!(is_attack_id("T1561.002", 'T') && !is_attack_id("S0365.001", 'S'));
    }

    #[test]
    fn dates_are_checked() {
        assert!(is_date("2014-12-19"));
        assert!(!is_date("2014-13-19"));
        assert!(!is_date("2014-12-1"));
        assert!(!is_date("2014-02-30"));
        assert!(!is_date("2014-04-31"));
        assert!(!is_date("2014-12-00"));
        assert!(!is_date("2014-02-29") && is_date("2016-02-29"));
        assert!(!is_date("1900-02-29") && is_date("2000-02-29"));
        assert!(!is_date("20141219xx"));
    }
}
