//! `relaytrace evidence`: create, extend and list the case's evidence file.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use relaytrace_assess::edit::{hypothesis_block, item_block, skeleton, NewHypothesis, NewItem};
use relaytrace_assess::evidence::{parse, Kind};
use relaytrace_assess::{log_evidence, EVIDENCE_FILE};
use relaytrace_store::Case;

/// `evidence` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Create evidence.toml in a case (format line, default policy, commented example).
    Init {
        /// The case directory.
        #[arg(long)]
        case: PathBuf,
    },
    /// Add a hypothesis or an evidence item (checked before anything is written).
    #[command(subcommand)]
    Add(Box<AddCommand>),
    /// List hypotheses and items with their grades and weights.
    List {
        /// The case directory.
        #[arg(long)]
        case: PathBuf,
    },
}

/// What to add.
#[derive(Debug, Subcommand)]
pub enum AddCommand {
    /// A competing hypothesis, with the network footprint of its actor if known.
    #[command(
        after_help = "Example:\n  relaytrace evidence add hypothesis --case ./c --id kp \
--name \"North Korean state actor\" --country KP --asn 131279 --prefix 175.45.176.0/22"
    )]
    Hypothesis(HypothesisArgs),
    /// An evidence item of a given kind.
    #[command(
        after_help = "Likelihoods: --p HYP=P (P(observation | hypothesis)) for each hypothesis, \
or --p otherwise=P for the rest; or --lr HYP=RATIO (unnamed hypotheses at 1).\n\n\
Example:\n  relaytrace evidence add item --case ./c --id fbi-code --kind malware \
--statement \"FBI: the wiper shares code with earlier DPRK malware\" \
--source \"FBI press release\" --url https://www.fbi.gov/... --date 2014-12-19 \
--reliability B --credibility 3 --group fbi-2014 --spoofable --p kp=0.6 --p otherwise=0.1"
    )]
    Item(ItemArgs),
}

/// Arguments of `evidence add hypothesis`.
#[derive(Debug, Args)]
pub struct HypothesisArgs {
    /// The case directory.
    #[arg(long)]
    case: PathBuf,
    /// Short id (a-z, 0-9, '-', '_').
    #[arg(long)]
    id: String,
    /// What it says.
    #[arg(long)]
    name: String,
    /// Relative prior (default 1; all are normalised): a positive number.
    #[arg(long, value_parser = parse_prior)]
    prior: Option<f64>,
    /// Footprint: a country code (repeatable).
    #[arg(long = "country")]
    countries: Vec<String>,
    /// Footprint: an AS number (repeatable).
    #[arg(long = "asn")]
    asns: Vec<u64>,
    /// Footprint: a prefix (repeatable).
    #[arg(long = "prefix")]
    prefixes: Vec<String>,
}

/// Arguments of `evidence add item`.
#[derive(Debug, Args)]
pub struct ItemArgs {
    /// The case directory.
    #[arg(long)]
    case: PathBuf,
    /// Unique id.
    #[arg(long)]
    id: String,
    /// infrastructure, malware, tradecraft, timing, language, intent or outside-source.
    #[arg(long)]
    kind: String,
    /// What the item says, in one sentence.
    #[arg(long)]
    statement: String,
    /// Who says it.
    #[arg(long)]
    source: String,
    /// Where to read it (http or https).
    #[arg(long)]
    url: String,
    /// Publication date (YYYY-MM-DD), not after today.
    #[arg(long)]
    date: Option<String>,
    /// Admiralty source reliability, A-F.
    #[arg(long)]
    reliability: String,
    /// Admiralty information credibility, 1-6.
    #[arg(long)]
    credibility: i64,
    /// Dependency group (items of one source or artefact count once).
    #[arg(long)]
    group: Option<String>,
    /// The observation could have been planted or borrowed.
    #[arg(long)]
    spoofable: bool,
    /// HYP=P: P(observation | hypothesis); `otherwise=P` for the rest (repeatable).
    #[arg(long = "p", value_name = "HYP=P")]
    p: Vec<String>,
    /// HYP=RATIO: a likelihood ratio (repeatable).
    #[arg(long = "lr", value_name = "HYP=RATIO")]
    lr: Vec<String>,
    /// Who holds better evidence on this point.
    #[arg(long)]
    holder: Option<String>,
}

fn pairs(v: &[String], flag: &str) -> Result<Vec<(String, f64)>> {
    v.iter()
        .map(|s| {
            let (k, x) = s
                .split_once('=')
                .with_context(|| format!("--{flag} {s:?}: expected HYP=NUMBER"))?;
            let x: f64 = x
                .parse()
                .with_context(|| format!("--{flag} {s:?}: {x:?} is not a number"))?;
            Ok((k.to_string(), x))
        })
        .collect()
}

/// Appends `block` to the case's evidence file after checking the result, then
/// logs the change.
fn append(case: &Path, block: &str, item: &str) -> Result<()> {
    let c = Case::open(case)?;
    let path = c.root().join(EVIDENCE_FILE);
    let mut text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => skeleton(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.push_str(block);
    parse(&text, &path).context("the addition was not written")?;
    let tmp = path.with_extension("toml.partial");
    fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    log_evidence(&c, "add", Some(item))?;
    outln!("added {item} to {}", path.display());
    Ok(())
}

/// Refuses a publication date after today (UTC): a source cannot have appeared in the
/// future, and such a date is nearly always a typo in the year. (Hand-written files are
/// read as they are; `assess --as-of` decides which items count at a date.)
fn refuse_future_date(date: &str) -> Result<()> {
    let today = &relaytrace_model::format_iso8601_us(super::clock_ns()?)[..10];
    // Dates that exist, written YYYY-MM-DD, compare as strings; any other text is left
    // to the evidence file's own check, which names it.
    if relaytrace_assess::evidence::is_date(date) && date > today {
        bail!("--date {date} is after today ({today} UTC): a source cannot have been published in the future (check the year)");
    }
    Ok(())
}

/// Runs `evidence`.
pub fn run(cmd: EvidenceCommand) -> Result<ExitCode> {
    match cmd {
        EvidenceCommand::Init { case } => {
            let c = Case::open(&case)?;
            let path = c.root().join(EVIDENCE_FILE);
            if path.exists() {
                bail!("{} already exists", path.display());
            }
            fs::write(&path, skeleton()).with_context(|| format!("writing {}", path.display()))?;
            log_evidence(&c, "init", None)?;
            outln!("created {}", path.display());
        }
        EvidenceCommand::Add(add) => match *add {
            AddCommand::Hypothesis(a) => {
                let h = NewHypothesis {
                    id: a.id.clone(),
                    name: a.name,
                    prior: a.prior,
                    countries: a.countries,
                    asns: a.asns,
                    prefixes: a.prefixes,
                };
                append(&a.case, &hypothesis_block(&h), &a.id)?;
            }
            AddCommand::Item(a) => {
                if let Some(date) = &a.date {
                    refuse_future_date(date)?;
                }
                let it = NewItem {
                    id: a.id.clone(),
                    kind: a.kind,
                    statement: a.statement,
                    source: a.source,
                    url: a.url,
                    date: a.date,
                    reliability: a.reliability,
                    credibility: a.credibility,
                    group: a.group,
                    spoofable: a.spoofable,
                    likelihoods: pairs(&a.p, "p")?,
                    lr: pairs(&a.lr, "lr")?,
                    holder: a.holder,
                };
                append(&a.case, &item_block(&it), &a.id)?;
            }
        },
        EvidenceCommand::List { case } => {
            let c = Case::open(&case)?;
            let path = c.root().join(EVIDENCE_FILE);
            let set = relaytrace_assess::evidence::load(&path)?;
            outln!("hypotheses:");
            for h in &set.hypotheses {
                let fp = h.origin.as_ref().map_or(String::new(), |o| {
                    format!(
                        "  origin: {} {} {}",
                        o.countries.join(","),
                        o.asns
                            .iter()
                            .map(|a| format!("AS{a}"))
                            .collect::<Vec<_>>()
                            .join(","),
                        o.prefixes.join(",")
                    )
                });
                outln!("  {:<22} prior {:.3}  {}{fp}", h.id, h.prior, h.name);
            }
            outln!("items:");
            for it in &set.items {
                outln!(
                    "  {:<24} {:<15} {}{} w={:.3} group={}{}  {}",
                    it.id,
                    it.kind.as_str(),
                    it.reliability,
                    it.credibility,
                    it.weight(),
                    it.group,
                    if it.spoofable { " spoofable" } else { "" },
                    it.source.name
                );
            }
            // The kinds the items are of (not every kind there is).
            let kinds: Vec<&str> = Kind::ALL
                .iter()
                .filter(|k| set.items.iter().any(|i| i.kind == **k))
                .map(|k| k.as_str())
                .collect();
            outln!(
                "{} hypotheses, {} items (kinds present: {})",
                set.hypotheses.len(),
                set.items.len(),
                kinds.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A relative prior: a positive, finite number (refused here rather than after it was
/// written into the TOML the file is checked as, where NaN read as TOML's `nan`).
fn parse_prior(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a positive number (priors are relative weights; they are normalised)"
        )),
    }
}
