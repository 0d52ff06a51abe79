//! Trace: follow an attack back through relay hosts, with the odds that each link is
//! chance (design section 4, issue 4).
//!
//! Overview:
//! - [`conn`]: the case's connection rows ([`conn::Observation`]) merged across
//!   vantages into [`conn::FlowConn`]s, so one session seen by two sensors counts once
//!   and remembers both.
//! - [`flow`]: flow mode. [`flow::find_links`] pairs each host's inbound and outbound
//!   TCP connections by temporal containment and volume consistency, scores them, and
//!   gives each [`flow::Link`] a false-match probability from a time-shift null over
//!   that host's own background, corrected over the host's candidates. The method and
//!   its reasoning are documented there.
//! - [`chain`]: [`chain::build_chains`] walks from a victim upstream, connection by
//!   connection, labels hops (victim, relay, origin, unknown-beyond) and attaches
//!   enrichment ([`hostinfo::load`]).
//! - [`trace_case`] runs all of it on a case; [`record`] writes the finding to
//!   `findings/trace-<sha16>.json` and logs it in the ledger.
//!
//! - [`packet`]: packet mode from the timelines of pcaps: the Zhang–Paxson baseline
//!   and the default bounded-delay event matching, each with a false-match
//!   probability from the pair's own traffic. [`TraceMethod::Auto`] uses packet mode
//!   for pairs with timelines on both sides and flow mode for the rest.

pub mod chain;
pub mod cidr;
pub mod conn;
pub mod error;
pub mod flow;
pub mod hostinfo;
pub mod packet;
pub mod repeated;
pub mod rowid;
mod shift;
#[cfg(test)]
mod testing;

use relaytrace_store::{Case, Dedup};
use serde_json::{json, Map, Value};

pub use chain::{build_chains, Chain, Role};
pub use cidr::Cidr;
pub use conn::{merge, FlowConn, LoadSummary, Observation};
pub use error::TraceError;
pub use flow::{find_links, FlowParams, Link, LinkDetail, Method, Probability};
pub use packet::{find_packet_links, PacketMethod, PacketParams, Timelines};

/// Which linking methods a trace run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceMethod {
    /// Packet mode (bounded-delay matching) for pairs with packet timelines on both
    /// sides, flow mode for every other pair. The default.
    Auto,
    /// Flow mode only.
    Flow,
    /// Packet mode only (bounded-delay event matching).
    Packet,
    /// Packet mode only, with the Zhang–Paxson baseline detector.
    Zp,
}

impl TraceMethod {
    /// The name used in findings and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            TraceMethod::Auto => "auto",
            TraceMethod::Flow => "flow",
            TraceMethod::Packet => "packet",
            TraceMethod::Zp => "zp",
        }
    }
}

/// Everything a trace run needs besides the case.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceParams {
    /// The victim address or prefix.
    pub victim: Cidr,
    /// Only connections alive at or after this time (ns since the epoch).
    pub since_ns: Option<i64>,
    /// Only connections starting at or before this time (ns since the epoch).
    pub until_ns: Option<i64>,
    /// Which methods link connections.
    pub method: TraceMethod,
    /// Flow-mode parameters.
    pub flow: FlowParams,
    /// Packet-mode parameters (`method` inside is set from [`TraceParams::method`]).
    pub packet: PacketParams,
    /// Links with a per-host false-match probability above this are not followed.
    /// Default 0.01; the smallest value a link can reach is `1/(K+1)`.
    pub alpha: f64,
}

impl TraceParams {
    /// Default parameters for `victim`.
    pub fn new(victim: Cidr) -> Self {
        TraceParams {
            victim,
            since_ns: None,
            until_ns: None,
            method: TraceMethod::Auto,
            flow: FlowParams::default(),
            packet: PacketParams::default(),
            alpha: 0.01,
        }
    }

    /// The parameters as JSON, for findings and the ledger.
    pub fn to_json(&self) -> Value {
        json!({
            "victim": self.victim.to_string(),
            "since_ns": self.since_ns,
            "until_ns": self.until_ns,
            "method": self.method.as_str(),
            "tolerance_ns": self.flow.tolerance_ns,
            "volume_factor": self.flow.volume_factor,
            "null_offsets": self.flow.null_offsets,
            "min_shift_ns": self.flow.min_shift_ns,
            "alpha": self.alpha,
            "packet_delay_bounds_ns": self.packet.delays_ns,
            "packet_null_shifts": self.packet.null_shifts,
            "packet_min_shift_ns": self.packet.min_shift_ns,
            "packet_skew_ns": self.packet.skew_ns,
        })
    }
}

/// The result of [`trace_case`].
#[derive(Debug, Clone, PartialEq)]
pub struct TraceOutcome {
    /// The chains, victim first.
    pub chains: Vec<Chain>,
    /// The finding: `{"chains": [...], "parameters": {...}, "summary": {...}}`,
    /// deterministic (same case and parameters, same bytes).
    pub json: Value,
    /// Rows read and skipped.
    pub load: LoadSummary,
    /// Candidate links before the `alpha` cut.
    pub candidate_links: usize,
    /// The connections the links index into.
    pub conns: Vec<FlowConn>,
    /// Every candidate link, before the `alpha` cut.
    pub links: Vec<Link>,
}

impl TraceOutcome {
    /// Every candidate link as JSON ([`candidate_json`]), built only when asked for:
    /// for scripts that measure detection and calibration against ground truth.
    pub fn candidates(&self) -> impl Iterator<Item = Value> + '_ {
        self.links.iter().map(|l| candidate_json(&self.conns, l))
    }
}

/// One candidate link as JSON: the relay, both connections' 5-tuples, start times and
/// row ids, the method, score, measurements and both probabilities.
pub fn candidate_json(conns: &[FlowConn], l: &Link) -> Value {
    let side = |c: &FlowConn| {
        json!({
            "orig_h": c.orig_h.to_string(), "orig_p": c.orig_p,
            "resp_h": c.resp_h.to_string(), "resp_p": c.resp_p,
            "start_ns": c.start_ns, "end_ns": c.end_ns,
            "ids": c.ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    };
    json!({
        "relay": l.relay.to_string(),
        "inbound": side(&conns[l.inbound]),
        "outbound": side(&conns[l.outbound]),
        "method": l.detail.method().as_str(),
        "score": (l.score * 1e6).round() / 1e6,
        "detail": l.detail.to_json(),
        "false_match_probability": l.false_match_probability.get(),
        "false_match_probability_pair": l.false_match_probability_pair.get(),
        "candidates_at_relay": l.candidates_at_relay,
        "repeated": l.repeated.map(|r| r.to_json()),
    })
}

/// Runs flow-mode trace on a case: load and merge connections, find links, build
/// chains to the victim.
pub fn trace_case(case: &Case, p: &TraceParams) -> Result<TraceOutcome, TraceError> {
    if !(p.alpha > 0.0 && p.alpha <= 1.0) {
        return Err(TraceError::BadParameter {
            name: "alpha",
            reason: "must be in (0, 1]",
        });
    }
    let (obs, mut load) = conn::load_case(case)?;
    let rows = obs.len();
    let conns: Vec<FlowConn> = merge(obs, p.flow.tolerance_ns)
        .into_iter()
        .filter(|c| p.since_ns.is_none_or(|s| c.end_ns >= s))
        .filter(|c| p.until_ns.is_none_or(|u| c.start_ns <= u))
        .collect();
    let all_timelines = if p.method == TraceMethod::Flow {
        Default::default()
    } else {
        conn::load_timelines(case, &mut load)?
    };
    let timelines = Timelines::new(&conns, &all_timelines);
    let with_timelines = (0..conns.len()).filter(|&i| timelines.has(i)).count();
    let links = find_all_links(&conns, &timelines, p)?;
    // Every hop of a chain is an end of a linked connection: only those are labelled.
    let ends: std::collections::BTreeSet<std::net::IpAddr> = links
        .iter()
        .flat_map(|l| [&conns[l.inbound], &conns[l.outbound]])
        .flat_map(|c| [c.orig_h, c.resp_h])
        .collect();
    let (info, enriched) = hostinfo::load(case, |a| ends.contains(a))?;
    let chains = build_chains(&conns, &links, &p.victim, p.alpha, &info);
    let mut json = chain::chains_json(&chains);
    let summary = json!({
        "rows": load.rows,
        "rows_skipped": load.skipped,
        "observations": rows,
        "connections": conns.len(),
        "connections_with_timelines": with_timelines,
        "candidate_links": links.len(),
        "links_within_alpha": links.iter().filter(|l| l.false_match_probability.get() <= p.alpha).count(),
        "enriched_addresses": enriched,
    });
    if let Value::Object(m) = &mut json {
        m.insert("method".into(), Value::from(p.method.as_str()));
        m.insert("parameters".into(), p.to_json());
        m.insert("summary".into(), summary);
    }
    Ok(TraceOutcome {
        chains,
        json,
        load,
        candidate_links: links.len(),
        conns,
        links,
    })
}

/// The links of every method `p.method` asks for. In [`TraceMethod::Auto`], a pair
/// whose two connections both have packet timelines is judged by packet mode only
/// (timing of every packet says more than two records), every other pair by flow mode.
pub fn find_all_links(
    conns: &[FlowConn],
    timelines: &Timelines<'_>,
    p: &TraceParams,
) -> Result<Vec<Link>, TraceError> {
    let packet = |method| {
        let pp = PacketParams {
            method,
            ..p.packet.clone()
        };
        find_packet_links(conns, timelines, &pp)
    };
    let mut links = match p.method {
        TraceMethod::Flow => find_links(conns, &p.flow)?,
        TraceMethod::Packet => packet(PacketMethod::Counting)?,
        TraceMethod::Zp => packet(PacketMethod::Zp)?,
        TraceMethod::Auto => {
            let mut l: Vec<Link> = find_links(conns, &p.flow)?
                .into_iter()
                .filter(|l| !(timelines.has(l.inbound) && timelines.has(l.outbound)))
                .collect();
            l.extend(packet(PacketMethod::Counting)?);
            l
        }
    };
    crate::flow::sort_links(&mut links, conns);
    Ok(links)
}

/// Where [`record`] put the finding.
pub type Recorded = relaytrace_store::RecordedFinding;

/// Writes the finding to `findings/trace-<sha16>.json` and appends a `trace` ledger
/// entry with its path and digest, the parameters and the method
/// ([`Case::record_finding`]: temporary file, sync, rename, under the case lock). The
/// same finding twice adds nothing, as with `ingest` and `enrich`.
pub fn record(
    case: &Case,
    outcome: &TraceOutcome,
    p: &TraceParams,
) -> Result<Recorded, TraceError> {
    let mut bytes = serde_json::to_vec_pretty(&outcome.json).expect("a Value always serialises");
    bytes.push(b'\n');
    let mut fields = Map::new();
    fields.insert("method".into(), Value::from(p.method.as_str()));
    fields.insert("parameters".into(), p.to_json());
    fields.insert("chains".into(), Value::from(outcome.chains.len() as u64));
    fields.insert(
        "candidate_links".into(),
        Value::from(outcome.candidate_links as u64),
    );
    Ok(case.record_finding("trace", &bytes, fields, Dedup::AnyEarlier)?)
}
