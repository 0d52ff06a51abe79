//! Evidence from the case's newest trace finding (`findings/trace-<sha16>.json`,
//! ledger kind `trace`): items for hops and links, and the gaps where telemetry ends.
//!
//! Relay country and origin country are different claims. A relay hop's network
//! and country are recorded as an item with ratio **1** for every hypothesis: being
//! routed through a country's servers is never, by itself, evidence that the
//! country is the origin. Each link's false-match probability is recorded the same
//! way (ratio 1) and enters where it matters: the chance that the chain is right,
//! `Π (1 − false_match_probability)`, multiplies the weight of the chain's origin
//! item. Only the **origin hop** (the furthest the telemetry reaches) is compared
//! with the hypotheses' footprints, as a spoofable infrastructure item, because the
//! furthest visible hop is often one more rented or compromised relay.
//!
//! The origin model, per hypothesis `h` with a footprint `F_h`: the furthest hop lies
//! inside the actor's own footprint with probability [`P_OWN`] (0.5 — actors relay
//! through others' networks about as often as not, so half is a deliberately weak
//! reading), and inside another hypothesis' footprint with probability [`P_FOREIGN`]
//! (0.02 — a footprint is a small part of the address space). Memberships are taken
//! as independent, so `P(observation | h)` is the product over footprints. An origin
//! hop whose ASN and country are unknown (case not enriched) and that falls in no
//! footprint prefix is recorded with ratio 1.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use relaytrace_store::{digest::file_sha256, tables::scan_rows, Case};
use serde_json::Value;

use crate::error::AssessError;
use crate::evidence::{Hypothesis, Item, Kind, Source, Special, Stated};
use crate::grade::{Credibility, Reliability};

/// P(the furthest visible hop is in the actor's own footprint | that actor).
pub const P_OWN: f64 = 0.5;
/// P(the furthest visible hop is in a given footprint | an actor not operating it).
pub const P_FOREIGN: f64 = 0.02;
/// P(the furthest visible hop is in the framed actor's footprint | false flag):
/// half of [`P_OWN`]. A framer can route through the framed actor's networks, but
/// needs a foothold there, which is harder than planting a string or reusing a
/// tool; so a hop inside a footprint favours its actor over a false flag by 2 : 1,
/// not more.
pub const P_FRAMED: f64 = 0.25;
/// Padding around each session when a request names a time window: sensors' clocks
/// and flow exporters' active timeouts (commonly 60 s) blur edges by about this much.
pub const WINDOW_PAD_NS: i64 = 60_000_000_000;
/// Most chains read from one finding (hostile-input bound).
pub const MAX_CHAINS: usize = 256;

/// One hop of a trace chain, as the finding states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHop {
    /// Address (`None` beyond the origin).
    pub ip: Option<IpAddr>,
    /// `victim`, `relay`, `origin` or `unknown-beyond`.
    pub role: String,
    /// Origin AS number.
    pub asn: Option<u64>,
    /// AS organisation.
    pub org: Option<String>,
    /// Country code.
    pub country: Option<String>,
    /// Enrichment snapshot digest.
    pub snapshot: Option<String>,
    /// The trace's note (e.g. where telemetry ends).
    pub note: Option<String>,
}

impl TraceHop {
    /// "198.51.100.23 (AS64500 Example Net, CN)", with what is known.
    pub fn describe(&self) -> String {
        let ip = self.ip.map_or("?".to_string(), |a| a.to_string());
        let mut parts = Vec::new();
        if let Some(a) = self.asn {
            parts.push(format!("AS{a}"));
        }
        if let Some(o) = &self.org {
            parts.push(o.clone());
        }
        if let Some(c) = &self.country {
            parts.push(c.clone());
        }
        if parts.is_empty() {
            format!("{ip} (ASN and country unknown)")
        } else {
            format!("{ip} ({})", parts.join(", "))
        }
    }
}

/// One link of a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceLink {
    /// Upstream end.
    pub from: IpAddr,
    /// The relay.
    pub relay: IpAddr,
    /// Downstream end.
    pub to: IpAddr,
    /// Per-host false-match probability.
    pub false_match_probability: f64,
    /// Connection ids into the relay (from `from`).
    pub inbound_ids: Vec<String>,
}

/// One chain.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceChain {
    /// Hops, victim first.
    pub hops: Vec<TraceHop>,
    /// Links.
    pub links: Vec<TraceLink>,
    /// Why the walk stopped early, if it did.
    pub stopped: Option<String>,
}

/// The newest trace finding of a case.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceFinding {
    /// Path relative to the case.
    pub path: String,
    /// SHA-256 of the file.
    pub sha256: String,
    /// Its chains.
    pub chains: Vec<TraceChain>,
}

/// Where telemetry ends: the furthest hop of a chain, with the sessions that reached
/// the next hop downstream, so a request can name exact windows and addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// 1-based chain number.
    pub chain: usize,
    /// The hop where telemetry ends.
    pub hop: TraceHop,
    /// The host it connected to (the first relay downstream).
    pub downstream: Option<IpAddr>,
    /// Time windows (ns since the epoch, padded by [`WINDOW_PAD_NS`], merged).
    pub windows: Vec<(i64, i64)>,
    /// The connection ids behind the windows.
    pub conn_ids: Vec<String>,
}

fn bad(path: &str, reason: impl Into<String>) -> AssessError {
    AssessError::BadTrace {
        path: PathBuf::from(path),
        reason: reason.into(),
    }
}

/// Reads the newest `trace` entry's finding, or `None` when the case has none.
pub fn load(case: &Case) -> Result<Option<TraceFinding>, AssessError> {
    let entries = case.ledger().entries()?;
    let Some(entry) = entries.iter().rev().find(|e| e.kind() == "trace") else {
        return Ok(None);
    };
    let rel = entry
        .body
        .get("outputs")
        .and_then(|o| o.get(0))
        .and_then(|o| o.get("path"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(
                "ledger.jsonl",
                format!("trace entry {} names no output path", entry.seq),
            )
        })?
        .to_string();
    if rel.contains("..") || rel.starts_with('/') {
        return Err(bad(&rel, "path leaves the case"));
    }
    let full = case.root().join(&rel);
    let text = std::fs::read_to_string(&full).map_err(|source| AssessError::Io {
        path: full.clone(),
        source,
    })?;
    let sha256 = file_sha256(&full)?;
    let json: Value = serde_json::from_str(&text).map_err(|e| bad(&rel, e.to_string()))?;
    let chains = parse_chains(&json).map_err(|r| bad(&rel, r))?;
    Ok(Some(TraceFinding {
        path: rel,
        sha256,
        chains,
    }))
}

/// Parses the `chains` of a trace finding (stable names, see CONTEXT/README).
pub fn parse_chains(json: &Value) -> Result<Vec<TraceChain>, String> {
    let chains = json
        .get("chains")
        .and_then(Value::as_array)
        .ok_or("no \"chains\" array")?;
    if chains.len() > MAX_CHAINS {
        return Err(format!("more than {MAX_CHAINS} chains"));
    }
    let ip = |v: Option<&Value>, what: &str| -> Result<Option<IpAddr>, String> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| format!("{what}: {s:?} is not an address")),
            Some(_) => Err(format!("{what}: not a string")),
        }
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let mut out = Vec::with_capacity(chains.len());
    for (n, c) in chains.iter().enumerate() {
        let at = format!("chains[{n}]");
        let mut hops = Vec::new();
        for (k, h) in c
            .get("hops")
            .and_then(Value::as_array)
            .ok_or(format!("{at}: no hops"))?
            .iter()
            .enumerate()
        {
            hops.push(TraceHop {
                ip: ip(h.get("ip"), &format!("{at}.hops[{k}].ip"))?,
                role: text(h, "role").ok_or(format!("{at}.hops[{k}]: no role"))?,
                asn: h.get("asn").and_then(Value::as_u64),
                org: text(h, "org"),
                country: text(h, "country"),
                snapshot: text(h, "snapshot"),
                note: text(h, "note"),
            });
        }
        let mut links = Vec::new();
        for (k, l) in c
            .get("links")
            .and_then(Value::as_array)
            .ok_or(format!("{at}: no links"))?
            .iter()
            .enumerate()
        {
            let at = format!("{at}.links[{k}]");
            let need = |key: &str| -> Result<IpAddr, String> {
                ip(l.get(key), &format!("{at}.{key}"))?.ok_or(format!("{at}: no {key}"))
            };
            let p = l
                .get("false_match_probability")
                .and_then(Value::as_f64)
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or(format!(
                    "{at}: false_match_probability missing or not in [0, 1]"
                ))?;
            links.push(TraceLink {
                from: need("from")?,
                relay: need("relay")?,
                to: need("to")?,
                false_match_probability: p,
                inbound_ids: l
                    .get("inbound_ids")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        out.push(TraceChain {
            hops,
            links,
            stopped: text(c, "stopped"),
        });
    }
    Ok(out)
}

/// The grading of items made from the case's own trace: B (the case's sensors and
/// a versioned enrichment snapshot: usually reliable, but a snapshot can be stale),
/// 2 (probably true: each link is backed by a stated false-match probability).
pub const TRACE_GRADE: (Reliability, u8) = (Reliability::B, 2);

/// Items for every chain of `finding`, resolved against `hypotheses`.
pub fn items(finding: &TraceFinding, hypotheses: &[Hypothesis]) -> Vec<Item> {
    let credibility = Credibility::new(TRACE_GRADE.1).expect("2 is a credibility");
    let source = Source {
        name: format!("relaytrace trace finding {}", finding.path),
        url: format!("case:{}", finding.path),
        date: None,
    };
    let ones = vec![1.0; hypotheses.len()];
    let mk = |id: String,
              group: String,
              statement: String,
              likelihood: Vec<f64>,
              factor: f64,
              spoofable: bool| Item {
        id,
        kind: Kind::Infrastructure,
        statement,
        source: source.clone(),
        reliability: TRACE_GRADE.0,
        credibility,
        group,
        spoofable,
        likelihood,
        stated: Stated::Trace,
        factor,
        holder: None,
        request: None,
        attack: None,
        line: 0,
    };
    let mut out = Vec::new();
    for (n, c) in finding.chains.iter().enumerate() {
        let n = n + 1;
        let chain_group = format!("trace-chain-{n}");
        let right: f64 = c
            .links
            .iter()
            .map(|l| 1.0 - l.false_match_probability)
            .product();
        for (k, h) in c.hops.iter().enumerate().filter(|(_, h)| h.role == "relay") {
            out.push(mk(
                format!("trace-c{n}-relay-{k}"),
                chain_group.clone(),
                format!(
                    "Chain {n}: the sessions were relayed through {}. Relaying through a network says nothing of who operates the session (ratio 1 for every hypothesis).",
                    h.describe()
                ),
                ones.clone(),
                0.0,
                false,
            ));
        }
        for (k, l) in c.links.iter().enumerate() {
            out.push(mk(
                format!("trace-c{n}-link-{}", k + 1),
                chain_group.clone(),
                format!(
                    "Chain {n}: {} -> {} -> {} is one relayed session with false-match probability {:.2e} (enters as the chain's chance of being right, not as a ratio).",
                    l.from, l.relay, l.to, l.false_match_probability
                ),
                ones.clone(),
                0.0,
                false,
            ));
        }
        if let Some(o) = c.hops.iter().find(|h| h.role == "origin") {
            let (lik, reading) = origin_likelihoods(o, hypotheses);
            out.push(mk(
                format!("trace-c{n}-origin"),
                "trace-origins".into(),
                format!(
                    "Chain {n}: the furthest hop the telemetry reaches is {}; {reading}. Weighted by the chance that the chain is right ({:.4}).",
                    o.describe(),
                    right
                ),
                lik,
                right,
                true,
            ));
        }
    }
    out
}

/// `P(observation | h)` for the origin hop `o`, and a phrase saying what was found.
pub fn origin_likelihoods(o: &TraceHop, hypotheses: &[Hypothesis]) -> (Vec<f64>, String) {
    let inside: Vec<Option<bool>> = hypotheses
        .iter()
        .map(|h| {
            h.origin
                .as_ref()
                .map(|f| f.contains(o.ip, o.asn, o.country.as_deref()))
        })
        .collect();
    let any_inside = inside.contains(&Some(true));
    if !any_inside && o.asn.is_none() && o.country.is_none() {
        return (
            vec![1.0; hypotheses.len()],
            "its network is unknown (run `relaytrace enrich`), so it bears on no hypothesis".into(),
        );
    }
    let n_fp = inside.iter().filter(|m| m.is_some()).count().max(1);
    let mut lik = Vec::with_capacity(hypotheses.len());
    for (i, h) in hypotheses.iter().enumerate() {
        let framer = h.special == Some(Special::FalseFlag) && h.origin.is_none();
        let mut p = 1.0;
        for (j, m) in inside.iter().enumerate() {
            let Some(m) = m else { continue };
            let q = if framer {
                P_FRAMED / n_fp as f64
            } else if i == j {
                P_OWN
            } else {
                P_FOREIGN
            };
            p *= if *m { q } else { 1.0 - q };
        }
        lik.push(p);
    }
    let names: Vec<&str> = hypotheses
        .iter()
        .zip(&inside)
        .filter(|(_, m)| **m == Some(true))
        .map(|(h, _)| h.id.as_str())
        .collect();
    let reading = if names.is_empty() {
        "it lies in none of the hypotheses' footprints".to_string()
    } else {
        format!("it lies in the footprint of {}", names.join(", "))
    };
    (lik, reading)
}

/// The gaps of `finding`: per chain, the origin hop beyond which there is no data,
/// with the time windows of its sessions into the next hop (from the case's
/// connection rows).
pub fn gaps(case: &Case, finding: &TraceFinding) -> Result<Vec<Gap>, AssessError> {
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for (n, c) in finding.chains.iter().enumerate() {
        let Some(o) = c.hops.iter().find(|h| h.role == "origin") else {
            continue;
        };
        let ends = c.hops.iter().any(|h| h.role == "unknown-beyond") || c.stopped.is_some();
        if !ends {
            continue;
        }
        let link = c.links.iter().find(|l| Some(l.from) == o.ip);
        let conn_ids: Vec<String> = link.map(|l| l.inbound_ids.clone()).unwrap_or_default();
        wanted.extend(conn_ids.iter().cloned());
        out.push(Gap {
            chain: n + 1,
            hop: o.clone(),
            downstream: link.map(|l| l.relay),
            windows: Vec::new(),
            conn_ids,
        });
    }
    if wanted.is_empty() {
        return Ok(out);
    }
    let mut times: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for file in case.table_files("conns")? {
        scan_rows(&file, |row| {
            let get = |k: &str| row.iter().find(|(n, _)| n == k).map(|(_, v)| v);
            if let Some(id) = get("id").and_then(Value::as_str) {
                if wanted.contains(id) {
                    if let (Some(s), Some(e)) = (
                        get("start_ns").and_then(Value::as_i64),
                        get("end_ns").and_then(Value::as_i64),
                    ) {
                        times.insert(id.to_string(), (s, e));
                    }
                }
            }
            true
        })?;
    }
    for g in &mut out {
        let mut w: Vec<(i64, i64)> = g
            .conn_ids
            .iter()
            .filter_map(|id| times.get(id))
            .map(|(s, e)| {
                (
                    s.saturating_sub(WINDOW_PAD_NS),
                    e.saturating_add(WINDOW_PAD_NS),
                )
            })
            .collect();
        w.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (s, e) in w {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        g.windows = merged;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::evidence::parse;

    fn hyps() -> Vec<Hypothesis> {
        parse(
            "format = \"relaytrace-evidence/1\"\n[[hypothesis]]\nid = \"kp\"\nname = \"KP\"\norigin = { countries = [\"KP\"], prefixes = [\"175.45.176.0/22\"] }\n[[hypothesis]]\nid = \"cn\"\nname = \"CN actor\"\norigin = { countries = [\"CN\"] }\n",
            Path::new("t.toml"),
        )
        .unwrap()
        .hypotheses
    }

    fn finding(relay_country: &str, origin_ip: &str, origin_country: Option<&str>) -> TraceFinding {
        let j = json!({"chains": [{
            "hops": [
                {"ip": "203.0.113.7", "role": "victim", "asn": null, "org": null, "country": "US", "snapshot": null, "note": null},
                {"ip": "198.51.100.23", "role": "relay", "asn": 4837, "org": "Example", "country": relay_country, "snapshot": "d", "note": null},
                {"ip": origin_ip, "role": "origin", "asn": null, "org": null, "country": origin_country, "snapshot": null, "note": null},
                {"ip": null, "role": "unknown-beyond", "asn": null, "org": null, "country": null, "snapshot": null, "note": "no data"}],
            "links": [{"from": origin_ip, "relay": "198.51.100.23", "to": "203.0.113.7", "false_match_probability": 0.01,
                       "inbound_ids": ["e:1"]}],
            "sessions": 1, "stopped": null}]});
        TraceFinding {
            path: "findings/trace-x.json".into(),
            sha256: "0".repeat(64),
            chains: parse_chains(&j).unwrap(),
        }
    }

    #[test]
    fn relay_country_is_never_evidence_of_origin() {
        let h = hyps();
        // The relay sits in CN; the origin's network is unknown.
        let its = items(&finding("CN", "192.0.2.66", None), &h);
        for it in &its {
            let d = crate::engine::discounted(it);
            assert!(crate::engine::force(&d) < 1e-12, "{}: {:?}", it.id, d);
        }
        assert!(its.iter().any(|i| i.id == "trace-c1-relay-1"));
    }

    #[test]
    fn origin_inside_a_footprint_counts_weighted_by_the_chain() {
        let h = hyps();
        let its = items(&finding("CN", "175.45.178.9", None), &h);
        let o = its.iter().find(|i| i.id == "trace-c1-origin").unwrap();
        assert!(o.spoofable);
        assert!((o.factor - 0.99).abs() < 1e-12);
        let kp = h.iter().position(|x| x.id == "kp").unwrap();
        let cn = h.iter().position(|x| x.id == "cn").unwrap();
        let other = h.iter().position(|x| x.id == "other").unwrap();
        let ff = h.iter().position(|x| x.id == "false-flag").unwrap();
        assert!((o.likelihood[kp] - P_OWN * (1.0 - P_FOREIGN)).abs() < 1e-12);
        assert!((o.likelihood[cn] - P_FOREIGN * (1.0 - P_OWN)).abs() < 1e-12);
        assert!((o.likelihood[other] - P_FOREIGN * (1.0 - P_FOREIGN)).abs() < 1e-12);
        // Two footprints: the framer's P_FRAMED is shared between them.
        let q = P_FRAMED / 2.0;
        assert!((o.likelihood[ff] - q * (1.0 - q)).abs() < 1e-12);
    }

    #[test]
    fn malformed_findings_are_refused_with_the_place() {
        let e = parse_chains(
            &json!({"chains": [{"hops": [{"ip": "x", "role": "victim"}], "links": []}]}),
        )
        .unwrap_err();
        assert!(e.contains("chains[0].hops[0].ip"), "{e}");
        let e = parse_chains(&json!({"chains": [{"hops": [], "links": [{"from": "192.0.2.1", "relay": "192.0.2.2", "to": "192.0.2.3", "false_match_probability": 2.0}]}]}))
            .unwrap_err();
        assert!(e.contains("chains[0].links[0]"), "{e}");
        assert!(parse_chains(&json!({})).is_err());
    }
}
