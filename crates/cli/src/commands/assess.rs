//! `relaytrace assess`: who is behind it, how likely, how confident, what is missing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use relaytrace_assess::{assess_case, log_evidence, record, requests, Options};
use relaytrace_store::Case;

/// Output format of `assess`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AssessFormat {
    /// Readable summary.
    Text,
    /// The finding as JSON (the same bytes as the file in `findings/`).
    Json,
    /// A Markdown report.
    Markdown,
}

/// Arguments of `assess`.
#[derive(Debug, Args)]
#[command(
    after_help = "Reads the case's evidence.toml (hypotheses, graded evidence items, policy) and \
the newest trace finding (relay hops count for nothing about the origin; the origin hop is \
compared with each hypothesis' footprint), computes a posterior from reliability-discounted \
likelihoods, states it in ICD 203 words, gives the confidence separately, and ranks the \
evidence that would most change the call. The finding is written to \
findings/assess-<sha16>.json and recorded in the ledger.\n\n\
Example:\n  relaytrace assess --case ./sony-case\n  \
relaytrace assess --case ./sony-case --explain\n  \
relaytrace assess --case ./sony-case --requests out/\n  \
relaytrace assess --case ./sony-case --as-of 2014-12-31 --format markdown"
)]
pub struct AssessArgs {
    /// The case directory.
    #[arg(long)]
    pub case: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AssessFormat::Text)]
    pub format: AssessFormat,
    /// Add the ACH matrix, per-item weights, sensitivity and outcomes.
    #[arg(long)]
    pub explain: bool,
    /// Write one Markdown evidence request per holder into this directory.
    #[arg(long, value_name = "OUTDIR")]
    pub requests: Option<PathBuf>,
    /// Use only evidence published on or before this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// ATT&CK v18.1 data directory, for items with `attack = {...}` [default:
    /// $RELAYTRACE_ATTACK_DATA, else what `relaytrace data update --attack` fetched
    /// into the data directory].
    #[arg(long, value_name = "DIR")]
    pub attack_data: Option<PathBuf>,
    #[command(flatten)]
    pub data: super::data::DataDirArg,
}

/// Runs `assess`.
pub fn run(args: AssessArgs) -> Result<ExitCode> {
    let case = Case::open(&args.case)?;
    let opts = Options {
        as_of: args.as_of.clone(),
        attack_data: args
            .attack_data
            .clone()
            .or_else(|| {
                std::env::var_os("RELAYTRACE_ATTACK_DATA")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .or_else(|| {
                super::data::attack_dir(&args.data)
                    .ok()
                    .map(|d| d.join("data"))
                    .filter(|d| d.is_dir())
            }),
    };
    let a = assess_case(&case, &opts)?;
    if log_evidence(&case, "edited", None)? {
        eprintln!(
            "note: evidence.toml changed since the ledger last saw it; its digest is now recorded"
        );
    }
    let rec = record(&case, &a)?;
    match args.format {
        AssessFormat::Json => outln!("{}", serde_json::to_string_pretty(&a.to_json())?),
        AssessFormat::Text => {
            out!("{}", a.text(args.explain));
            outln!(
                "\nfinding {} ({})",
                rec.path,
                if rec.added {
                    "recorded in the ledger"
                } else {
                    "already in the ledger"
                }
            );
        }
        AssessFormat::Markdown => out!("{}", a.markdown(args.explain)),
    }
    if let Some(dir) = &args.requests {
        let written = requests::write(dir, &a)
            .with_context(|| format!("writing requests into {}", dir.display()))?;
        for f in written.files {
            eprintln!("request written: {}", f.display());
        }
        for f in written.removed {
            eprintln!(
                "request removed: {} (an earlier run's; this assessment no longer makes it)",
                f.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
