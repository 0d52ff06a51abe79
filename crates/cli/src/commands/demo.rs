//! `relaytrace demo`: the bundled demo case, end to end.
//!
//! The story (demo/README.md): an operator in a North Korean prefix reaches a US victim
//! through a relay at a Chinese ISP and a second relay in Bolivia. The captures are the
//! testbed's own (real OpenSSH sessions typed with human-like timing, with unrelated
//! traffic on the same hosts), rewritten to scenario addresses. The demo plays the
//! investigation in two stages: first the victim's network and the host relay2 (the
//! evidence an incident team holds on day one), then relay1's network capture (what its
//! operator would hand over when asked).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use relaytrace_ingest::ReadOptions;
use relaytrace_store::{verify, Case, IngestOptions};

use super::assess::{run as run_assess, AssessArgs, AssessFormat};
use super::case::{run as run_case, CaseCommand, ReportFormat};
use super::conns::{run as run_conns, ConnsArgs};
use super::data::{update_defaults, DataDirArg};
use super::trace::{run as run_trace, TraceArgs};

/// Evidence from public reporting on the 2014 attack on Sony Pictures (cited per item),
/// copied into the demo case before the first assessment. See demo/README.md.
const DEMO_EVIDENCE: &str = include_str!("../../../../demo/evidence.toml");

/// One bundled capture: file name, vantage, what it stands for, content (gzip pcap).
struct DemoInput {
    name: &'static str,
    vantage: &'static str,
    what: &'static str,
    bytes: &'static [u8],
}

/// Day one: the victim's network and the relay host the victim's logs point at.
const STAGE_ONE: [DemoInput; 2] = [
    DemoInput {
        name: "testbed-victim.pcap.gz",
        vantage: "victim-net",
        what: "the victim's network tap",
        bytes: include_bytes!("../../../../demo/testbed-victim.pcap.gz"),
    },
    DemoInput {
        name: "testbed-relay2.pcap.gz",
        vantage: "relay2-host",
        what: "a capture on relay2 (200.87.112.10), handed over by its hosting provider",
        bytes: include_bytes!("../../../../demo/testbed-relay2.pcap.gz"),
    },
];

/// Later: what relay1's network operator hands over when asked.
const STAGE_TWO: [DemoInput; 1] = [DemoInput {
    name: "testbed-relay1.pcap.gz",
    vantage: "relay1-isp",
    what: "relay1's network (1.24.16.10), the operator's answer to the request",
    bytes: include_bytes!("../../../../demo/testbed-relay1.pcap.gz"),
}];

/// The attacked host of the demo scenario.
const VICTIM: &str = "12.133.7.10";

/// Name written into the demo case, so `demo` only ever replaces its own case.
const DEMO_NAME: &str = "relaytrace-demo";

/// Arguments of `demo`.
#[derive(Debug, Args)]
#[command(
    after_help = "Builds the demo case from the captures bundled in the binary (demo/ in the \
source tree: a testbed run rewritten to scenario addresses), replacing an earlier demo case at \
the same place and never anything else. Stage 1 ingests the victim's network capture and a \
capture of relay2, enriches every address (fetching the pinned public datasets with `data \
update` first if no snapshot is installed, unless --offline), verifies the case and traces from \
the victim 12.133.7.10 upstream: the chain ends at relay1, with no data beyond it. Stage 2 \
ingests relay1's network capture and traces again: the chain reaches the origin. After each \
trace, the evidence of demo/evidence.toml (public reporting on the 2014 Sony Pictures attack, \
cited per item) is assessed with the trace's findings; the demo ends with the block plan.\n\n\
Example:\n  relaytrace demo --case ./demo-case\n  relaytrace demo --case ./demo-case --offline"
)]
pub struct DemoArgs {
    /// Where to build the demo case.
    #[arg(long, default_value = "./demo-case")]
    case: PathBuf,
    /// Do not download datasets: enrich only if a snapshot is already installed.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    data: DataDirArg,
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

fn ingest_all(
    case: &Case,
    inputs_dir: &Path,
    inputs: &[DemoInput],
    read_options: &mut ReadOptions,
) -> Result<()> {
    for i in inputs {
        let path = inputs_dir.join(i.name);
        fs::write(&path, i.bytes).with_context(|| format!("writing {}", path.display()))?;
        let options = IngestOptions {
            vantage: i.vantage.into(),
            format: None,
        };
        let o = case.ingest(&path, &options, read_options)?;
        outln!(
            "ingest {} — {} (vantage {}): {} — {} read, {} rejected",
            i.name,
            i.what,
            i.vantage,
            o.format.map(|f| f.as_str()).unwrap_or("?"),
            o.summary.read,
            o.summary.rejected
        );
    }
    Ok(())
}

/// Enriches the case with the current snapshot; fetches one first when there is none
/// and `offline` is not set.
fn enrich(dir: &Path, data: &DataDirArg, offline: bool) -> Result<()> {
    let installed = data.resolve()?.open_current()?.is_some();
    if !installed {
        if offline {
            outln!("enrich: no snapshot installed and --offline: hops will have no ASN or country");
            return Ok(());
        }
        outln!("enrich: no snapshot installed yet; fetching the pinned public datasets (relaytrace data update)");
        update_defaults(data)?;
    }
    if let Some(line) = super::enrich::auto(dir, data)? {
        outln!("enrich: {line}");
    }
    Ok(())
}

/// Copies demo/evidence.toml into the case, logged in the ledger with its digest.
fn write_evidence(case: &Case) -> Result<()> {
    let path = case.root().join(relaytrace_assess::EVIDENCE_FILE);
    fs::write(&path, DEMO_EVIDENCE).with_context(|| format!("writing {}", path.display()))?;
    relaytrace_assess::log_evidence(case, "copy", None)?;
    Ok(())
}

/// Prints the assessment of the case as it stands (recorded in findings/).
fn assess(dir: &Path, data: &DataDirArg) -> Result<()> {
    run_assess(AssessArgs {
        case: dir.to_path_buf(),
        format: AssessFormat::Text,
        explain: false,
        requests: None,
        as_of: None,
        attack_data: None,
        data: data.clone(),
    })?;
    Ok(())
}

/// Runs `demo`.
pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let dir = &args.case;
    // An empty directory is taken as `case init` takes it.
    let empty_dir = fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
    if dir.exists() && !empty_dir {
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
    outln!("== relaytrace demo: case {}", dir.display());
    let case = Case::init(dir, DEMO_NAME)?;
    let mut read_options = ReadOptions::default();

    outln!("\n== stage 1: the victim's network and relay2");
    ingest_all(&case, &inputs_dir, &STAGE_ONE, &mut read_options)?;
    enrich(dir, &args.data, args.offline)?;
    let report = verify(&case)?;
    outln!(
        "verify: {} ({} ledger entries, {} files checked)",
        if report.ok() { "OK" } else { "FAILED" },
        report.entries,
        report.files_checked
    );
    outln!("\n== stage 1: connections involving relay2 (200.87.112.10)");
    run_conns(ConnsArgs::for_host(dir.clone(), "200.87.112.10".parse()?))?;
    outln!("\n== stage 1 trace: from the victim {VICTIM} upstream");
    run_trace(TraceArgs::for_victim(dir.clone(), VICTIM))?;
    write_evidence(&case)?;
    outln!("\n== stage 1 assess: the evidence file (public reporting on the 2014 Sony Pictures attack) and the trace so far");
    assess(dir, &args.data)?;
    outln!("\n== stage 1 block plan: what the policy allows on this much proof");
    super::block::demo_plan(dir, &args.data)?;

    outln!("\n== stage 2: relay1's operator answers with its network capture");
    ingest_all(&case, &inputs_dir, &STAGE_TWO, &mut read_options)?;
    enrich(dir, &args.data, true)?;
    outln!("\n== stage 2 trace: from the victim {VICTIM} upstream");
    run_trace(TraceArgs::for_victim(dir.clone(), VICTIM))?;
    outln!("\n== stage 2 assess: the same evidence file and the longer chain");
    assess(dir, &args.data)?;

    let report = verify(&case)?;
    outln!(
        "\nverify: {} ({} ledger entries, {} files checked)",
        if report.ok() { "OK" } else { "FAILED" },
        report.entries,
        report.files_checked
    );
    // Block (issue 6): a separate last stage over the newest findings.
    outln!("\n== block: what the default policy lets a partner block, and at what cost");
    super::block::demo_step(dir, &args.data)?;
    outln!("\n== ledger");
    run_case(CaseCommand::Log {
        dir: dir.clone(),
        format: ReportFormat::Text,
    })?;
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
