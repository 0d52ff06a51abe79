//! Chains: from the victim upstream, link by link, with what is known of each hop.
//!
//! A chain starts at a connection into the victim whose originator is a relay with
//! a link for it, and follows links *connection by connection*: the inbound
//! connection of one link must be the outbound connection of the next. Following
//! hosts instead would splice unrelated sessions of a busy relay into one story.
//! Sessions that take the same path of hosts are reported as one chain (`sessions`
//! counts them); per link the best score and the smallest false-match probability
//! over its sessions are given, which stays a valid per-host probability because
//! each is already corrected over all of that relay's candidate pairs.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::cidr::Cidr;
use crate::conn::FlowConn;
use crate::flow::Link;

/// Most links a chain follows: no real chain is longer, and a bound keeps a
/// pathological case (links forming a long path through many hosts) finite.
pub const MAX_DEPTH: usize = 8;

/// What enrichment says of an address (`tables/enrich`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostInfo {
    /// Origin AS number.
    pub asn: Option<u64>,
    /// AS organisation (shared with every address of the same one).
    pub org: Option<Arc<str>>,
    /// Country code (shared).
    pub country: Option<Arc<str>>,
    /// Digest of the snapshot that said it (shared).
    pub snapshot: Option<Arc<str>>,
}

/// Role of a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The attacked host.
    Victim,
    /// A host that received a session and continued it.
    Relay,
    /// The furthest host the telemetry reaches.
    Origin,
    /// Beyond the origin, where no telemetry exists.
    UnknownBeyond,
}

impl Role {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Victim => "victim",
            Role::Relay => "relay",
            Role::Origin => "origin",
            Role::UnknownBeyond => "unknown-beyond",
        }
    }
}

/// One hop of a chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Hop {
    /// Address (`None` for the unknown-beyond hop).
    pub ip: Option<IpAddr>,
    /// Role.
    pub role: Role,
    /// Enrichment, all `None` when the case has none for the address.
    pub info: HostInfo,
    /// A sentence for the reader, e.g. where telemetry ends.
    pub note: Option<String>,
}

/// One link of a chain, merged over the chain's sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainLink {
    /// Upstream end (A of A→R→V).
    pub from: IpAddr,
    /// Downstream end (V).
    pub to: IpAddr,
    /// How the link was found (the best session's method).
    pub method: crate::flow::Method,
    /// The best session's measurements.
    pub detail: crate::flow::LinkDetail,
    /// The relay R.
    pub relay: IpAddr,
    /// Best score over sessions.
    pub score: f64,
    /// Smallest per-host false-match probability over sessions.
    pub false_match_probability: f64,
    /// Smallest uncorrected per-pair value over sessions.
    pub false_match_probability_pair: f64,
    /// Candidate pairs at the relay.
    pub candidates_at_relay: usize,
    /// Repeated-session evidence (either mode) for this hop pair, when it has any (the
    /// one with the smallest probability over the chain's sessions).
    pub repeated: Option<crate::repeated::Repeated>,
    /// Row ids of the inbound connections (A→R), sorted.
    pub inbound_ids: Vec<String>,
    /// Row ids of the outbound connections (R→V), sorted.
    pub outbound_ids: Vec<String>,
    /// Vantages whose telemetry supports the link, sorted.
    pub vantages: Vec<String>,
}

/// A chain, victim first.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// Hops from the victim upstream.
    pub hops: Vec<Hop>,
    /// Links from the victim upstream (`links[i]` is at relay `hops[i + 1]`).
    pub links: Vec<ChainLink>,
    /// Victim-side sessions that took this path.
    pub sessions: usize,
    /// Why the walk stopped early, if it did (cycle, depth bound).
    pub stopped: Option<String>,
}

/// Builds the chains into `victim` from `links` whose per-host false-match
/// probability is at most `alpha`. Where several inbound connections explain one
/// outbound, the one with the smallest probability (then the best score) is
/// followed; chains are ordered by their first session's start.
pub fn build_chains(
    conns: &[FlowConn],
    links: &[Link],
    victim: &Cidr,
    alpha: f64,
    info: &BTreeMap<IpAddr, HostInfo>,
) -> Vec<Chain> {
    let mut best: BTreeMap<usize, &Link> = BTreeMap::new();
    for l in links
        .iter()
        .filter(|l| l.false_match_probability.get() <= alpha)
    {
        let better = best.get(&l.outbound).is_none_or(|b| {
            (l.false_match_probability.get(), -l.score, l.inbound)
                < (b.false_match_probability.get(), -b.score, b.inbound)
        });
        if better {
            best.insert(l.outbound, l);
        }
    }
    // Hosts some vantage saw receiving a connection: for them, an absent inbound
    // link means "none found", not "no data".
    let received: std::collections::BTreeSet<IpAddr> = conns.iter().map(|c| c.resp_h).collect();
    let mut by_path: BTreeMap<Vec<IpAddr>, (i64, Chain)> = BTreeMap::new();
    for (start, c) in conns.iter().enumerate() {
        if !c.is_tcp() || !victim.contains(c.resp_h) || !best.contains_key(&start) {
            continue;
        }
        let mut path = vec![c.resp_h, c.orig_h];
        let mut walked: Vec<&Link> = Vec::new();
        let mut cur = start;
        let mut stopped = None;
        while let Some(l) = best.get(&cur) {
            if walked.len() == MAX_DEPTH {
                stopped = Some(format!("stopped after {MAX_DEPTH} links (depth bound)"));
                break;
            }
            let up = conns[l.inbound].orig_h;
            if path.contains(&up) {
                stopped = Some(format!("stopped at a cycle: {up} is already in the chain"));
                break;
            }
            walked.push(l);
            path.push(up);
            cur = l.inbound;
        }
        let entry = by_path.entry(path.clone()).or_insert_with(|| {
            (
                c.start_ns,
                Chain {
                    hops: hops(&path, &received, info),
                    links: Vec::new(),
                    sessions: 0,
                    stopped: stopped.clone(),
                },
            )
        });
        entry.1.sessions += 1;
        for (n, l) in walked.iter().enumerate() {
            add_link(&mut entry.1.links, n, &path, l, conns);
        }
    }
    let mut chains: Vec<(i64, Chain)> = by_path.into_values().collect();
    chains.sort_by_key(|c| c.0);
    chains.into_iter().map(|(_, c)| c).collect()
}

fn hops(
    path: &[IpAddr],
    received: &std::collections::BTreeSet<IpAddr>,
    info: &BTreeMap<IpAddr, HostInfo>,
) -> Vec<Hop> {
    let last = path.len() - 1;
    let mut out: Vec<Hop> = path
        .iter()
        .enumerate()
        .map(|(i, ip)| Hop {
            ip: Some(*ip),
            role: if i == 0 {
                Role::Victim
            } else if i == last {
                Role::Origin
            } else {
                Role::Relay
            },
            info: info.get(ip).cloned().unwrap_or_default(),
            note: None,
        })
        .collect();
    let origin = path[last];
    if received.contains(&origin) {
        out[last].note = Some(format!(
            "telemetry shows {origin} receiving connections, but none links to this session"
        ));
    } else {
        out.push(Hop {
            ip: None,
            role: Role::UnknownBeyond,
            info: HostInfo::default(),
            note: Some(format!(
                "no data from the network of {origin} beyond this hop"
            )),
        });
    }
    out
}

fn add_link(links: &mut Vec<ChainLink>, n: usize, path: &[IpAddr], l: &Link, conns: &[FlowConn]) {
    let (inb, out) = (&conns[l.inbound], &conns[l.outbound]);
    if links.len() <= n {
        links.push(ChainLink {
            from: path[n + 2],
            to: path[n],
            relay: path[n + 1],
            method: l.detail.method(),
            detail: l.detail,
            score: l.score,
            false_match_probability: l.false_match_probability.get(),
            false_match_probability_pair: l.false_match_probability_pair.get(),
            candidates_at_relay: l.candidates_at_relay,
            repeated: None,
            inbound_ids: Vec::new(),
            outbound_ids: Vec::new(),
            vantages: Vec::new(),
        });
    }
    let cl = &mut links[n];
    if l.score > cl.score {
        cl.score = l.score;
        cl.method = l.detail.method();
        cl.detail = l.detail;
    }
    cl.false_match_probability = cl
        .false_match_probability
        .min(l.false_match_probability.get());
    cl.false_match_probability_pair = cl
        .false_match_probability_pair
        .min(l.false_match_probability_pair.get());
    if let Some(r) = l.repeated {
        let better = cl
            .repeated
            .is_none_or(|c| r.false_match_probability < c.false_match_probability);
        if better {
            cl.repeated = Some(r);
        }
    }
    cl.inbound_ids
        .extend(inb.ids.iter().map(ToString::to_string));
    cl.outbound_ids
        .extend(out.ids.iter().map(ToString::to_string));
    cl.vantages.extend(
        inb.vantages
            .iter()
            .chain(&out.vantages)
            .map(|v| v.to_string()),
    );
    for v in [&mut cl.inbound_ids, &mut cl.outbound_ids, &mut cl.vantages] {
        v.sort();
        v.dedup();
    }
}

/// Rounds for output: six significant decimals are more than the method's precision,
/// and fewer digits make findings easier to read and diff.
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The JSON of the chains, in the stable shape of issue 4 (`chains[].hops[]`,
/// `chains[].links[]`), with extra fields beside the stable ones.
pub fn chains_json(chains: &[Chain]) -> Value {
    let chains: Vec<Value> = chains
        .iter()
        .map(|c| {
            let hops: Vec<Value> = c
                .hops
                .iter()
                .map(|h| {
                    json!({
                        "ip": h.ip.map(|a| a.to_string()),
                        "role": h.role.as_str(),
                        "asn": h.info.asn,
                        "org": h.info.org,
                        "country": h.info.country,
                        "snapshot": h.info.snapshot,
                        "note": h.note,
                    })
                })
                .collect();
            let links: Vec<Value> = c
                .links
                .iter()
                .map(|l| {
                    let mut ids = l.inbound_ids.clone();
                    ids.extend(l.outbound_ids.iter().cloned());
                    json!({
                        "from": l.from.to_string(),
                        "to": l.to.to_string(),
                        "relay": l.relay.to_string(),
                        "method": l.method.as_str(),
                        "detail": l.detail.to_json(),
                        "score": round6(l.score),
                        "false_match_probability": l.false_match_probability,
                        "false_match_probability_pair": l.false_match_probability_pair,
                        "candidates_at_relay": l.candidates_at_relay,
                        "repeated": l.repeated.map(|r| r.to_json()),
                        "conn_ids": ids,
                        "inbound_ids": l.inbound_ids,
                        "outbound_ids": l.outbound_ids,
                        "vantages": l.vantages,
                    })
                })
                .collect();
            let mut m = Map::new();
            m.insert("hops".into(), Value::Array(hops));
            m.insert("links".into(), Value::Array(links));
            m.insert("sessions".into(), Value::from(c.sessions as u64));
            m.insert("stopped".into(), json!(c.stopped));
            Value::Object(m)
        })
        .collect();
    json!({ "chains": chains })
}
