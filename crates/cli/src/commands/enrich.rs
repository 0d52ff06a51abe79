//! `relaytrace enrich --case DIR`: an enrichment table for every address of a case.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use relaytrace_enrich::enrich_case;
use relaytrace_store::Case;

use super::data::DataDirArg;

/// Arguments of `enrich`.
#[derive(Debug, Args)]
#[command(
    after_help = "Writes tables/enrich/<snapshot>-<content>.jsonl: one JSON object per \
distinct address of the case's connections (orig_h and resp_h) with prefix, asn, org, country, \
upstreams, asn_source and the snapshot digest, and records it in the ledger. Incremental: a \
run looks up only the addresses this snapshot has not answered for yet (those of connections \
ingested since its last run), so the enrichment after each ingest costs what the new input \
brings. Re-running with the same snapshot on unchanged connections adds nothing. A new \
snapshot (or going back to an older one) answers for every address again in a new table; \
earlier tables stay, and readers take the newest answer.\n\n\
Example:\n  relaytrace enrich --case ./sony-case"
)]
pub struct EnrichArgs {
    /// The case directory.
    #[arg(long)]
    case: PathBuf,
    /// Use this snapshot file instead of the data directory's current one.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    #[command(flatten)]
    data: DataDirArg,
}

/// Runs `enrich`.
pub fn run(args: EnrichArgs) -> Result<ExitCode> {
    let case = Case::open(&args.case)?;
    let snap = super::whois::load_snapshot(args.snapshot.as_ref(), &args.data)?;
    outln!("{}", enrich_case(&case, &snap)?);
    Ok(ExitCode::SUCCESS)
}

/// Enriches a case with the data directory's current snapshot, if there is one: what
/// `ingest` runs after its inputs so a case is enriched as soon as data exists.
/// Returns the outcome as text, or `None` when no snapshot is installed.
pub fn auto(case_dir: &std::path::Path, data: &DataDirArg) -> Result<Option<String>> {
    let Some(snap) = data.resolve()?.open_current()? else {
        return Ok(None);
    };
    let case = Case::open(case_dir)?;
    Ok(Some(enrich_case(&case, &snap)?.to_string()))
}
