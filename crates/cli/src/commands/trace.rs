//! `relaytrace trace`: chains from a victim upstream through relay hosts.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use relaytrace_store::Case;
use relaytrace_trace::{record, trace_case, Chain, Cidr, TraceParams};

/// Output format of `trace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    /// Human-readable chains.
    Table,
    /// The finding as JSON (the same bytes as the file in `findings/`).
    Json,
}

/// Linking method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceMethod {
    /// Packet mode where both connections of a pair have packet timelines (pcaps),
    /// flow mode for every other pair.
    Auto,
    /// Flow mode only: temporal containment and volume consistency of records.
    Flow,
    /// Packet mode only: bounded-delay event matching (robust to jitter and chaff).
    Packet,
    /// Packet mode only, with the Zhang–Paxson ON/OFF detector (the baseline).
    Zp,
}

/// Arguments of `trace`.
#[derive(Debug, Args)]
#[command(
    after_help = "Pairs each host's inbound and outbound TCP connections and gives every link a \
false-match probability from the relay's own traffic, corrected over the host's candidate pairs. \
Packet mode (pairs whose both connections come with packet timelines, i.e. from pcaps): every \
burst of the inbound's typing must be followed within a delay bound by a packet of the outbound, \
and every burst of the outbound's answers by one of the inbound's (each direction with its own \
bound, as a relay may delay one way only); the chance rate comes from \
the outbound's own packets shifted in time (robust to delay jitter and chaff). --method zp runs \
the Zhang-Paxson ON/OFF detector instead (the classic baseline; fragile under jitter). Flow \
mode (records only: conn.log, EVE, NetFlow): the outbound must lie inside the inbound within \
1 s, with consistent byte counts; time-shift null over the host's sessions. In both modes, an \
origin that came back through the same relay to the same next hop several times is weighed as \
one pattern (repeated sessions, shown under the link): a few weak sessions together can be \
strong evidence. Then walks from \
the victim upstream through links with probability <= --alpha. Where telemetry ends, the chain \
says so. The finding is written to findings/trace-<sha16>.json \
in the case and recorded in the ledger.\n\n\
Example:\n  relaytrace trace --case ./demo-case --victim 203.0.113.7\n  \
relaytrace trace --case ./case --victim 198.51.100.0/24 --since 2026-11-02T03:00:00Z --format json"
)]
pub struct TraceArgs {
    /// The case directory.
    #[arg(long)]
    case: PathBuf,
    /// Victim address or CIDR prefix.
    #[arg(long)]
    victim: String,
    /// Only connections alive at or after this time (ISO 8601, a date for its midnight UTC, or Unix seconds).
    #[arg(long)]
    since: Option<String>,
    /// Only connections starting at or before this time (ISO 8601, a date for its midnight UTC, or Unix seconds).
    #[arg(long)]
    until: Option<String>,
    /// Linking method.
    #[arg(long, value_enum, default_value_t = TraceMethod::Auto)]
    method: TraceMethod,
    /// Packet mode: the largest delay a relay may add per segment, in seconds
    /// (delay bounds 0.01, 0.1, 0.3, 1, 2 s up to this are tried; larger values add bounds).
    #[arg(long, default_value_t = 2.0)]
    max_delay: f64,
    /// Follow links whose per-host false-match probability is at most this.
    #[arg(long, default_value_t = 0.01)]
    alpha: f64,
    /// Time shifts K of the null [default: 1000 in flow mode, where the smallest
    /// probability is 1/(K+1); 200 in packet mode, which only estimates a chance rate
    /// from them; 2000 for zp, whose probability is a share of shifts].
    #[arg(long, value_name = "K")]
    null_offsets: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TraceFormat::Table)]
    format: TraceFormat,
    /// Also write every candidate link (before the --alpha cut) to this file as JSON
    /// lines: relay, both connections, method, score, probabilities. For measuring
    /// detection and calibration against ground truth (testbed/evaluate.py).
    #[arg(long, value_name = "FILE")]
    candidates: Option<PathBuf>,
}

impl TraceArgs {
    /// Table output for one victim with default parameters (used by `demo`).
    pub fn for_victim(case: PathBuf, victim: &str) -> Self {
        TraceArgs {
            case,
            victim: victim.into(),
            since: None,
            until: None,
            method: TraceMethod::Auto,
            max_delay: 2.0,
            alpha: 0.01,
            null_offsets: None,
            format: TraceFormat::Table,
            candidates: None,
        }
    }
}

/// The delay bounds packet mode tries for `--max-delay` (see
/// [`relaytrace_trace::packet::delay_bounds`]), after checking its range.
fn delay_bounds(max_s: f64) -> Result<Vec<i64>> {
    if !(0.01..=60.0).contains(&max_s) {
        anyhow::bail!("--max-delay must be between 0.01 and 60 seconds, not {max_s}");
    }
    Ok(relaytrace_trace::packet::delay_bounds(
        (max_s * 1e9).round() as i64,
    ))
}

fn parse_time(s: &str) -> Result<i64> {
    super::parse_time_arg(s).map_err(anyhow::Error::msg)
}

/// Runs `trace`.
pub fn run(args: TraceArgs) -> Result<ExitCode> {
    let case = Case::open(&args.case)?;
    let victim: Cidr = args.victim.parse()?;
    let mut p = TraceParams::new(victim);
    p.since_ns = args.since.as_deref().map(parse_time).transpose()?;
    p.until_ns = args.until.as_deref().map(parse_time).transpose()?;
    super::check_window(p.since_ns, p.until_ns)?;
    p.alpha = args.alpha;
    if let Some(k) = args.null_offsets {
        p.flow.null_offsets = k;
        p.packet.null_shifts = k;
    } else if args.method == TraceMethod::Zp {
        p.packet.null_shifts = 2000;
    }
    p.method = match args.method {
        TraceMethod::Auto => relaytrace_trace::TraceMethod::Auto,
        TraceMethod::Flow => relaytrace_trace::TraceMethod::Flow,
        TraceMethod::Packet => relaytrace_trace::TraceMethod::Packet,
        TraceMethod::Zp => relaytrace_trace::TraceMethod::Zp,
    };
    p.packet.delays_ns = delay_bounds(args.max_delay)?;
    let outcome = trace_case(&case, &p).map_err(|e| match e {
        // The library names its own parameters; the user gave flags.
        relaytrace_trace::error::TraceError::BadParameter { name, reason } => {
            let flag = match name {
                "null_offsets" | "null_shifts" => "--null-offsets",
                "max_delay" => "--max-delay",
                "alpha" => "--alpha",
                other => other,
            };
            anyhow::anyhow!("{flag}: {reason}")
        }
        other => other.into(),
    })?;
    for e in &outcome.load.examples {
        eprintln!("warning: skipped {e}");
    }
    if let Some(path) = &args.candidates {
        use std::io::Write;
        let what = || format!("writing {}", path.display());
        let mut w = std::io::BufWriter::new(std::fs::File::create(path).with_context(what)?);
        for c in outcome.candidates() {
            serde_json::to_writer(&mut w, &c).with_context(what)?;
            w.write_all(b"\n").with_context(what)?;
        }
        w.flush().with_context(what)?;
    }
    let rec = record(&case, &outcome, &p)?;
    match args.format {
        TraceFormat::Json => {
            outln!("{}", serde_json::to_string_pretty(&outcome.json)?);
        }
        TraceFormat::Table => {
            print_table(&outcome.chains);
            if outcome.chains.is_empty() {
                outln!("{}", why_no_chain(&outcome, &p.victim));
            }
            outln!(
                "\n{} chain(s); {} candidate link(s); finding {} ({})",
                outcome.chains.len(),
                outcome.candidate_links,
                rec.path,
                if rec.added {
                    "recorded in the ledger"
                } else {
                    "already in the ledger"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Why a trace found no chain, in terms the user can act on: the victim in no
/// connection at all (a wrong address, or telemetry not ingested), or connections to
/// it of which none is a relay's outbound at the false-match probability asked for.
fn why_no_chain(
    outcome: &relaytrace_trace::TraceOutcome,
    victim: &relaytrace_trace::Cidr,
) -> String {
    let into = outcome
        .conns
        .iter()
        .filter(|c| victim.contains(c.resp_h))
        .count();
    if into == 0 {
        format!(
            "no chain: none of the case's {} connection(s) goes to the victim {victim} (check the address, or ingest telemetry that saw it)",
            outcome.conns.len()
        )
    } else {
        format!(
            "no chain: {into} connection(s) go to the victim {victim}, none of them a relay's outbound at the requested false-match probability ({} candidate link(s) in the case; `--alpha` sets the cut, `--candidates FILE` lists them)",
            outcome.candidate_links
        )
    }
}

fn print_table(chains: &[Chain]) {
    for (n, c) in chains.iter().enumerate() {
        outln!("chain {} ({} session(s))", n + 1, c.sessions);
        for h in &c.hops {
            let ip = h.ip.map_or("-".to_string(), |a| a.to_string());
            let asn = h.info.asn.map_or("-".to_string(), |a| format!("AS{a}"));
            outln!(
                "  {:<15} {:<40} {:<8} {:<3} {}",
                h.role.as_str(),
                ip,
                asn,
                h.info.country.as_deref().unwrap_or("-"),
                h.info.org.as_deref().unwrap_or("-")
            );
            if let Some(note) = &h.note {
                outln!("  {:<15} ({note})", "");
            }
        }
        for l in &c.links {
            outln!(
                "  link {} -> {} -> {} ({}): score {:.3}, false-match probability {:.2e} ({} candidate(s) at the relay), vantages {}",
                l.from,
                l.relay,
                l.to,
                l.method.as_str(),
                l.score,
                l.false_match_probability,
                l.candidates_at_relay,
                l.vantages.join(",")
            );
            if let Some(r) = &l.repeated {
                outln!(
                    "    repeated sessions: {} of {}'s {} session(s) into {} carried one to {} (false-match probability of the pattern {:.2e}, {} host pair(s) at the relay)",
                    r.sessions,
                    l.from,
                    r.inbound_sessions,
                    l.relay,
                    l.to,
                    r.false_match_probability.get(),
                    r.pairs_at_relay
                );
            }
        }
        if let Some(s) = &c.stopped {
            outln!("  ({s})");
        }
    }
}
