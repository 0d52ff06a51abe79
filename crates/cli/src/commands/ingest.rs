//! `relaytrace ingest`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use relaytrace_ingest::{Format, ReadOptions};
use relaytrace_store::{Case, IngestOptions, IngestOutcome};
use serde_json::json;

use super::case::ReportFormat;

/// Arguments of `ingest`.
#[derive(Debug, Args)]
#[command(
    after_help = "Formats (detected by content, gzip transparently): Zeek TSV and JSON logs \
(conn.log becomes connections, other logs events), Suricata EVE JSON (flow/netflow events become \
connections), NetFlow v5/v9/IPFIX export payloads (raw files, or pcaps of export traffic, decoded with \
templates per exporter), pcap and pcapng (connections with Zeek's conn.log semantics).\n\n\
Every input is copied into the case under its SHA-256 and recorded in the ledger with its \
counts; the same file ingested twice adds nothing. Rejected records are listed with their line \
or byte offset and kept in tables/rejects/.\n\n\
Exit status: 0 when every input yielded records (or NetFlow templates); 1 when an input yielded nothing (or, with \
--strict, had any rejection); 2 on errors.\n\n\
Example:\n  relaytrace ingest --case ./case --vantage victim-edge conn.log eve.json capture.pcapng\n  \
relaytrace ingest --case ./case --vantage relay-isp netflow/*.bin"
)]
pub struct IngestArgs {
    /// The case directory (create it with `relaytrace case init`).
    #[arg(long)]
    case: PathBuf,
    /// Whose sensor saw the data, e.g. victim-edge, relay-isp.
    #[arg(long, default_value = "default")]
    vantage: String,
    /// Skip detection and read every input as this format.
    #[arg(long, value_parser = parse_format)]
    input_format: Option<Format>,
    /// pcap: keep packets with wrong IP/TCP/UDP/ICMP checksums (Zeek's -C). Use it for
    /// captures taken on the sending host, where checksum offloading leaves them wrong.
    #[arg(long)]
    ignore_checksums: bool,
    /// Fail (exit 1) if any record is rejected.
    #[arg(long)]
    strict: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    format: ReportFormat,
    /// Do not enrich the case afterwards (by default, when an enrichment snapshot is
    /// installed — `relaytrace data update` — the case is enriched after ingest).
    #[arg(long)]
    no_enrich: bool,
    #[command(flatten)]
    data: super::data::DataDirArg,
    /// Input files, in order (NetFlow template files before the data files that use them);
    /// `-` reads standard input (once).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s).ok_or_else(|| {
        "expected one of zeek-tsv, zeek-json, suricata-eve, netflow, netflow-pcap, pcap, pcapng"
            .to_string()
    })
}

/// Runs `ingest`.
pub fn run(args: IngestArgs) -> Result<ExitCode> {
    let case = Case::open(&args.case)?;
    let options = IngestOptions {
        vantage: args.vantage.clone(),
        format: args.input_format,
    };
    let mut read_options = ReadOptions::default();
    read_options.pcap.ignore_checksums = args.ignore_checksums;
    let mut failed = false;
    let mut any_read = false;
    let mut reports = Vec::new();
    if args.inputs.iter().filter(|i| i.as_os_str() == "-").count() > 1 {
        anyhow::bail!("`-` (standard input) can be given once: it can be read only once");
    }
    for input in &args.inputs {
        // `-`: standard input, read once as it comes (a pipe: `zcat x.gz | relaytrace
        // ingest --case c -`); recorded under the name `stdin`.
        let stdin = PathBuf::from("/dev/stdin");
        let input = if input.as_os_str() == "-" {
            &stdin
        } else {
            input
        };
        let result = if input.is_dir() {
            // Said here rather than as the OS's "Is a directory": what to do instead.
            Err(anyhow::anyhow!(
                "{}: a directory; ingest reads files: give the files in it (e.g. {}/*)",
                input.display(),
                input.display()
            ))
        } else {
            case.ingest(input, &options, &mut read_options)
                .map_err(anyhow::Error::from)
        };
        match result {
            Ok(outcome) => {
                any_read = true;
                let empty = outcome.already.is_none()
                    && outcome.summary.read == 0
                    && outcome.summary.templates == 0;
                let strict_fail = args.strict && outcome.summary.rejected > 0;
                failed |= empty || strict_fail;
                if args.format == ReportFormat::Text {
                    print_outcome(&outcome);
                }
                reports.push(outcome_json(&outcome));
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
                reports
                    .push(json!({ "input": input.display().to_string(), "error": e.to_string() }));
            }
        }
    }
    if args.format == ReportFormat::Json {
        outln!("{:#}", serde_json::Value::Array(reports));
    }
    // Enrichment follows any input that could be opened (also one ingested before:
    // it catches up on a case whose last enrichment was skipped or interrupted); after
    // inputs that all failed there is nothing to say about it.
    if !args.no_enrich && any_read {
        match super::enrich::auto(&args.case, &args.data) {
            Ok(Some(outcome)) if args.format == ReportFormat::Text => outln!("enrich: {outcome}"),
            Ok(_) => {}
            Err(e) => {
                failed = true;
                eprintln!("error: enrich after ingest: {e:#}");
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_outcome(o: &IngestOutcome) {
    let name = o.input.display();
    if let Some((seq, vantage)) = &o.already {
        let how = if o.already_as_content {
            ": the same content, compressed otherwise"
        } else {
            ""
        };
        outln!(
            "{name}: already ingested (ledger entry {seq}, vantage {vantage}, sha256 {}){how}; nothing added",
            &o.evidence[..16]
        );
        return;
    }
    if let Some(seq) = o.retry_of {
        outln!(
            "{name}: read again: an earlier ingest of the same content (ledger entry {seq}) added no record, only rejections"
        );
    }
    let s = &o.summary;
    outln!(
        "{name}: {} — {} read, {} rejected ({} connections, {} events, {} packet timelines)",
        o.format.map(|f| f.as_str()).unwrap_or("?"),
        s.read,
        s.rejected,
        s.conns,
        s.events,
        s.timelines
    );
    if s.templates > 0 {
        outln!("  {} NetFlow/IPFIX templates learned", s.templates);
    }
    if s.merged > 0 {
        outln!("  {} flow records merged into earlier records of the same flow (active-timeout splits)", s.merged);
    }
    for r in &o.rejections {
        outln!("  rejected {name}: {r}");
    }
    if s.rejected > o.rejections.len() as u64 {
        outln!(
            "  ... and {} more rejections",
            s.rejected - o.rejections.len() as u64
        );
    }
    if let Some(f) = &o.rejects_file {
        if s.rejected > 0 {
            outln!("  all rejections: {}", f.display());
        }
    }
}

fn outcome_json(o: &IngestOutcome) -> serde_json::Value {
    json!({
        "input": o.input.display().to_string(),
        "evidence": o.evidence,
        "already_ingested_as": o.already.as_ref().map(|(seq, _)| seq),
        "read_again_after": o.retry_of,
        "format": o.format.map(|f| f.as_str()),
        "read": o.summary.read,
        "rejected": o.summary.rejected,
        "conns": o.summary.conns,
        "events": o.summary.events,
        "timelines": o.summary.timelines,
        "merged": o.summary.merged,
        "templates": o.summary.templates,
        "rejections": o.rejections.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "rejects_file": o.rejects_file.as_ref().map(|p| p.display().to_string()),
    })
}
