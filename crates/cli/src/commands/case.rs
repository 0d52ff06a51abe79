//! `relaytrace case ...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use relaytrace_store::{verify, Case};
use serde_json::json;

/// Report format for `case verify` and `case log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Human-readable lines.
    Text,
    /// JSON: `verify` prints one document; `log` prints one entry per line (JSON Lines,
    /// as the ledger itself is kept).
    Json,
}

/// Subcommands of `case`.
#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    /// Create an empty case directory.
    #[command(after_help = "Example:\n  relaytrace case init ./sony-case --name \"Sony 2014\"")]
    Init {
        /// Directory to create (must not exist, or be empty).
        dir: PathBuf,
        /// Case name recorded in case.json and the ledger (default: directory name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Recompute every digest and the ledger chain; name anything altered or missing.
    ///
    /// Exit status 0 when the case is intact, 1 when anything was altered.
    #[command(after_help = "Example:\n  relaytrace case verify ./sony-case")]
    Verify {
        /// The case directory.
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
    /// Print the ledger: every step taken in the case, in order.
    #[command(after_help = "Example:\n  relaytrace case log ./sony-case --format json")]
    Log {
        /// The case directory.
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
    },
}

/// Runs a `case` subcommand.
pub fn run(cmd: CaseCommand) -> Result<ExitCode> {
    match cmd {
        CaseCommand::Init { dir, name } => {
            let name = name.unwrap_or_else(|| {
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "case".into())
            });
            Case::init(&dir, &name)?;
            outln!("created case {:?} in {}", name, dir.display());
            Ok(ExitCode::SUCCESS)
        }
        CaseCommand::Verify { dir, format } => {
            let case = Case::open(&dir)?;
            let report = verify(&case)?;
            match format {
                ReportFormat::Json => outln!(
                    "{:#}",
                    json!({
                        "ok": report.ok(),
                        "entries": report.entries,
                        "files_checked": report.files_checked,
                        "problems": report.problems,
                        "notes": report.notes,
                    })
                ),
                ReportFormat::Text => {
                    for p in &report.problems {
                        outln!("ALTERED  {p}");
                    }
                    for n in &report.notes {
                        outln!("note     {n}");
                    }
                    outln!(
                        "{}: {} ledger entries, {} files checked, {} problems",
                        if report.ok() { "OK" } else { "FAILED" },
                        report.entries,
                        report.files_checked,
                        report.problems.len()
                    );
                }
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        CaseCommand::Log { dir, format } => {
            let case = Case::open(&dir)?;
            let entries = case.ledger().entries()?;
            for e in entries {
                match format {
                    ReportFormat::Json => {
                        let mut body = e.body.clone();
                        body.insert("hash".into(), e.hash.clone().into());
                        outln!("{}", serde_json::Value::Object(body));
                    }
                    ReportFormat::Text => {
                        let detail = match e.kind() {
                            "ingest" => {
                                let counts = e.body.get("counts").cloned().unwrap_or_default();
                                format!(
                                    "{} ({}, vantage {}): {} read, {} rejected",
                                    e.str_field("input_name").unwrap_or("?"),
                                    e.str_field("format").unwrap_or("?"),
                                    e.str_field("vantage").unwrap_or("?"),
                                    counts["read"],
                                    counts["rejected"]
                                )
                            }
                            "init" => format!("case {:?}", e.str_field("name").unwrap_or("")),
                            "enrich" => {
                                let n = e.body.get("addresses").cloned().unwrap_or_default();
                                // An incremental run (new addresses only) says the total.
                                let what = match e.body.get("case_addresses") {
                                    Some(t) if *t != n => {
                                        format!("{n} new addresses ({t} in the case)")
                                    }
                                    _ => format!("{n} addresses"),
                                };
                                format!(
                                    "snapshot {}: {what}, {} unknown",
                                    e.str_field("snapshot")
                                        .map_or("?", |d| d.get(..16).unwrap_or(d)),
                                    e.body.get("unknown").cloned().unwrap_or_default()
                                )
                            }
                            "trace" => format!(
                                "{} method: {} chain(s) from {} candidate link(s), victim {}",
                                e.str_field("method").unwrap_or("?"),
                                e.body.get("chains").cloned().unwrap_or_default(),
                                e.body.get("candidate_links").cloned().unwrap_or_default(),
                                e.body
                                    .get("parameters")
                                    .and_then(|p| p.get("victim"))
                                    .and_then(|v| v.as_str())
                                    .unwrap_or("?")
                            ),
                            "block-plan" => {
                                let ds = e
                                    .body
                                    .get("decisions")
                                    .and_then(|d| d.as_array())
                                    .cloned()
                                    .unwrap_or_default();
                                let taken = ds.iter().filter(|d| d["action"] == "block").count();
                                format!(
                                    "{} target(s) blocked, {} refused, {} rule(s); policy {}",
                                    taken,
                                    ds.len() - taken,
                                    e.body.get("rules").cloned().unwrap_or_default(),
                                    e.str_field("policy_sha256")
                                        .map_or("?", |d| d.get(..16).unwrap_or(d))
                                )
                            }
                            "evidence" => format!(
                                "{} {}{} (sha256 {})",
                                e.str_field("action").unwrap_or("?"),
                                e.str_field("path").unwrap_or("evidence.toml"),
                                e.str_field("item")
                                    .map_or(String::new(), |i| format!(": {i}")),
                                e.str_field("sha256")
                                    .map_or("?", |d| d.get(..16).unwrap_or(d))
                            ),
                            "assess" => format!(
                                "{}, leading {}, confidence {}",
                                e.str_field("verdict").unwrap_or("?").replace('_', " "),
                                e.str_field("leading").unwrap_or("?"),
                                e.str_field("confidence").unwrap_or("?")
                            ),
                            _ => String::new(),
                        };
                        outln!(
                            "{:>4}  {:<8} {}  {}",
                            e.seq,
                            e.kind(),
                            &e.hash[..12],
                            detail
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
