//! `relaytrace demo`: the bundled demo case, end to end.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use relaytrace_ingest::ReadOptions;
use relaytrace_store::{verify, Case, IngestOptions};

use super::case::{run as run_case, CaseCommand, ReportFormat};
use super::conns::{run as run_conns, ConnsArgs};
use super::trace::{run as run_trace, TraceArgs};

// ---- assess step (issue 5) -----------------------------------------------------
use super::assess::{run as run_assess, AssessArgs, AssessFormat};

/// Evidence from public reporting on the 2014 attack on Sony Pictures (cited per
/// item), copied into the demo case by the assess step. See demo/README.md.
const DEMO_EVIDENCE: &str = include_str!("../../../../demo/evidence.toml");
// ---------------------------------------------------------------------------------

/// The demo inputs, compiled in so the demo runs from the binary alone:
/// (file name, vantage, content). See demo/README.md.
const DEMO_INPUTS: [(&str, &str, &str); 2] = [
    (
        "victim-edge.conn.log",
        "victim-edge",
        include_str!("../../../../demo/victim-edge.conn.log"),
    ),
    (
        "relay-isp.eve.json",
        "relay-isp",
        include_str!("../../../../demo/relay-isp.eve.json"),
    ),
];

/// Name written into the demo case, so `demo` only ever replaces its own case.
const DEMO_NAME: &str = "relaytrace-demo";

/// Arguments of `demo`.
#[derive(Debug, Args)]
#[command(
    after_help = "Writes the demo inputs (demo/ in the source tree) next to the case, \
creates the case (replacing an earlier demo case at the same place, never anything else), \
ingests them with their vantages, verifies the case, lists its connections, traces the \
attack from the victim 203.0.113.7 upstream, and assesses the evidence of demo/evidence.toml \
(public reporting on the 2014 Sony Pictures attack).\n\n\
Example:\n  relaytrace demo --case ./demo-case"
)]
pub struct DemoArgs {
    /// Where to build the demo case.
    #[arg(long, default_value = "./demo-case")]
    case: PathBuf,
}

fn is_demo_case(dir: &Path) -> bool {
    fs::read_to_string(dir.join("case.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| {
            v.get("name")
                .and_then(|n| n.as_str())
                .map(|n| n == DEMO_NAME)
        })
        .unwrap_or(false)
}

/// Runs `demo`.
pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let dir = &args.case;
    if dir.exists() {
        if !is_demo_case(dir) {
            bail!(
                "{} exists and is not a demo case; choose another --case",
                dir.display()
            );
        }
        fs::remove_dir_all(dir)
            .with_context(|| format!("removing old demo case {}", dir.display()))?;
    }
    let inputs_dir = dir.with_extension("inputs");
    fs::create_dir_all(&inputs_dir)
        .with_context(|| format!("creating {}", inputs_dir.display()))?;
    println!("== relaytrace demo: case {}", dir.display());
    let case = Case::init(dir, DEMO_NAME)?;
    let mut read_options = ReadOptions::default();
    for (name, vantage, content) in DEMO_INPUTS {
        let path = inputs_dir.join(name);
        fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        let options = IngestOptions {
            vantage: vantage.into(),
            format: None,
        };
        let o = case.ingest(&path, &options, &mut read_options)?;
        println!(
            "ingest {name} (vantage {vantage}): {} — {} read, {} rejected",
            o.format.map(|f| f.as_str()).unwrap_or("?"),
            o.summary.read,
            o.summary.rejected
        );
    }
    let report = verify(&case)?;
    println!(
        "verify: {} ({} ledger entries, {} files checked)",
        if report.ok() { "OK" } else { "FAILED" },
        report.entries,
        report.files_checked
    );
    println!("\n== connections involving the relay 198.51.100.23");
    run_conns(ConnsArgs::for_host(dir.clone(), "198.51.100.23".parse()?))?;
    println!("\n== trace: from the victim 203.0.113.7 upstream");
    run_trace(TraceArgs::for_victim(dir.clone(), "203.0.113.7"))?;
    println!("\n== ledger");
    run_case(CaseCommand::Log {
        dir: dir.clone(),
        format: ReportFormat::Text,
    })?;
    demo_assess(&case)?;
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

// ---- assess step (issue 5), kept apart: the demo scenario will be reworked -------
/// Copies demo/evidence.toml into the case (logged in the ledger with its digest)
/// and prints the assessment twice: with the evidence published by the end of 2014,
/// when a security firm was pointing at an insider, and with everything since.
fn demo_assess(case: &Case) -> Result<()> {
    let dir = case.root().to_path_buf();
    let path = dir.join(relaytrace_assess::EVIDENCE_FILE);
    fs::write(&path, DEMO_EVIDENCE).with_context(|| format!("writing {}", path.display()))?;
    relaytrace_assess::log_evidence(case, "copy", None)?;
    for (title, as_of) in [
        ("as it stood on 2014-12-31", Some("2014-12-31")),
        ("with all the evidence in demo/evidence.toml", None),
    ] {
        println!("\n== assess: the 2014 Sony Pictures attack, {title}");
        run_assess(AssessArgs {
            case: dir.clone(),
            format: AssessFormat::Text,
            explain: false,
            requests: None,
            as_of: as_of.map(str::to_string),
            attack_data: None,
        })?;
    }
    Ok(())
}
