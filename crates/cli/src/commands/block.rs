//! `relaytrace block plan|render|expire`: rules a partner's network can enforce,
//! gated by a policy, with collateral measured first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use relaytrace_block::render::{self, RenderContext, Speaker, Target};
use relaytrace_block::{
    default_policy, load_plan, load_policy, plan_case, record, LoadedPolicy, Plan,
};
use relaytrace_model::format_iso8601_us;
use relaytrace_store::Case;

use super::data::DataDirArg;

/// `block` subcommands.
#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Decide what to block from the case's findings, measure collateral, record the plan.
    Plan(PlanArgs),
    /// Render the newest plan for an enforcement point.
    Render(RenderArgs),
    /// Render the removal of what has run out in the newest plan.
    Expire(ExpireArgs),
}

/// Output of `block plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Decisions, rules with collateral, and the comparison, for people.
    Table,
    /// The plan file's JSON.
    Json,
}

/// Rendering targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ToArg {
    /// `nft -f` script (inet table, interval sets with timeouts, counters).
    Nftables,
    /// Shell script for ipset + iptables-restore/ip6tables-restore.
    Iptables,
    /// `gobgp global rib` commands (FlowSpec, RFC 8955).
    FlowspecGobgp,
    /// ExaBGP configuration (FlowSpec).
    FlowspecExabgp,
    /// BIRD 2 configuration (FlowSpec).
    FlowspecBird,
    /// Black-hole routes with community 65535:666 (RFC 7999) for --speaker.
    Rtbh,
    /// One prefix per line with reason and expiry.
    CidrList,
    /// STIX 2.1 bundle of indicators.
    Stix,
}

/// BGP speaker for `--to rtbh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpeakerArg {
    /// GoBGP (gobgp CLI commands).
    Gobgp,
    /// ExaBGP configuration.
    Exabgp,
    /// BIRD 2 configuration.
    Bird,
}

/// Arguments of `block plan`.
#[derive(Debug, Args)]
#[command(
    after_help = "Targets come from the newest trace finding (relays, origin address, origin \
prefix and ASN via the case's enrichment) and the newest assess finding. The policy (TOML; \
--print-default-policy shows the default) decides each: relays and the origin address on the \
strength of their trace link, prefixes and ASNs only with an assessment; the allowlist \
(special-purpose ranges, CGNAT, public resolvers, partner prefixes) is never blocked. Every \
decision is written to the ledger (kind block-plan) with the policy's SHA-256, and the plan to \
findings/block-plan-<sha16>.json.\n\n\
Example:\n  relaytrace block plan --case ./demo-case\n  \
relaytrace block plan --case ./case --policy policy.toml --format json"
)]
pub struct PlanArgs {
    /// The case directory.
    #[arg(long, required_unless_present = "print_default_policy")]
    case: Option<PathBuf>,
    /// Policy file (TOML); the embedded default otherwise.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Time the plan starts from (ISO 8601, a date for its midnight UTC, or Unix seconds); now otherwise.
    #[arg(long)]
    now: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    format: PlanFormat,
    /// Print the default policy and exit.
    #[arg(long)]
    print_default_policy: bool,
    /// Snapshot for expanding origin ASes [default: the one the case was enriched
    /// with, from the data directory, if it is there].
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    #[command(flatten)]
    data: DataDirArg,
}

/// Arguments of `block render`.
#[derive(Debug, Args)]
#[command(
    after_help = "Renders the newest recorded plan. Timeouts and validity count from the plan's \
time unless --now is given; rules already expired are left out. The same plan renders to the \
same bytes.\n\nExample:\n  relaytrace block render --case ./demo-case --to nftables > block.nft && nft -f block.nft"
)]
pub struct RenderArgs {
    /// The case directory.
    #[arg(long)]
    case: PathBuf,
    /// Enforcement point.
    #[arg(long, value_enum)]
    to: ToArg,
    /// Speaker for `--to rtbh`.
    #[arg(long, value_enum, default_value_t = SpeakerArg::Gobgp)]
    speaker: SpeakerArg,
    /// Render as of this time (ISO 8601, a date for its midnight UTC, or Unix seconds) instead of the plan's.
    #[arg(long)]
    now: Option<String>,
}

/// Arguments of `block expire`.
#[derive(Debug, Args)]
#[command(
    after_help = "Lists the rules of the newest plan that have run out by --now (default: now) \
and renders their removal for --to (nftables by default).\n\n\
Example:\n  relaytrace block expire --case ./demo-case --to nftables | nft -f -"
)]
pub struct ExpireArgs {
    /// The case directory.
    #[arg(long)]
    case: PathBuf,
    /// Enforcement point: any of `render`'s but `stix` (STIX indicators carry their own
    /// `valid_until`; there is nothing to remove).
    #[arg(long, value_enum, default_value_t = ToArg::Nftables)]
    to: ToArg,
    /// Speaker for `--to rtbh`.
    #[arg(long, value_enum, default_value_t = SpeakerArg::Gobgp)]
    speaker: SpeakerArg,
    /// The time to expire at (ISO 8601, a date for its midnight UTC, or Unix seconds); now otherwise.
    #[arg(long)]
    now: Option<String>,
}

fn parse_time(s: &str) -> Result<i64> {
    super::parse_time_arg(s).map_err(anyhow::Error::msg)
}

fn now_ns(arg: Option<&str>) -> Result<i64> {
    match arg {
        Some(s) => parse_time(s),
        None => super::clock_ns(),
    }
}

/// How many addresses `prefixes` hold, for people: IPv4 as a count, IPv6 as a power of
/// two (a whole AS's IPv6 space is a 30-digit number that says nothing at a glance;
/// the plan's JSON keeps the exact total).
fn address_count(prefixes: &[relaytrace_block::Prefix]) -> String {
    let (mut v4, mut v6) = (0u128, 0u128);
    for p in prefixes {
        let n = if p.is_v6() { &mut v6 } else { &mut v4 };
        *n = n.saturating_add(p.size());
    }
    let v4 = format!("{v4} IPv4 address(es)");
    match v6 {
        0 => v4,
        n if n < 1 << 20 => format!("{v4} and {n} IPv6 address(es)"),
        n => format!("{v4} and 2^{:.1} IPv6 address(es)", (n as f64).log2()),
    }
}

fn policy(path: Option<&Path>) -> Result<LoadedPolicy> {
    match path {
        None => Ok(default_policy()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading policy {}", p.display()))?;
            Ok(load_policy(&text, &p.display().to_string())?)
        }
    }
}

fn target(to: ToArg, speaker: SpeakerArg) -> Target {
    match to {
        ToArg::Nftables => Target::Nftables,
        ToArg::Iptables => Target::Iptables,
        ToArg::FlowspecGobgp => Target::FlowspecGobgp,
        ToArg::FlowspecExabgp => Target::FlowspecExabgp,
        ToArg::FlowspecBird => Target::FlowspecBird,
        ToArg::CidrList => Target::CidrList,
        ToArg::Stix => Target::Stix,
        ToArg::Rtbh => Target::Rtbh(match speaker {
            SpeakerArg::Gobgp => Speaker::Gobgp,
            SpeakerArg::Exabgp => Speaker::Exabgp,
            SpeakerArg::Bird => Speaker::Bird,
        }),
    }
}

/// Runs `block`.
pub fn run(cmd: BlockCommand) -> Result<ExitCode> {
    match cmd {
        BlockCommand::Plan(a) => run_plan(a),
        BlockCommand::Render(a) => {
            let case = Case::open(&a.case)?;
            let (plan, sha) = load_plan(&case)?;
            let now = match a.now.as_deref() {
                Some(s) => parse_time(s)?,
                None => plan.created_ns,
            };
            // Timeouts count from --now: before the plan was made, every rule would be
            // rendered to last longer than its policy allows (a mistyped year gave
            // seven-year timeouts for a seven-day policy).
            if now < plan.created_ns {
                anyhow::bail!(
                    "--now ({}) is before the plan was made ({}): its rules would be rendered to last longer than the policy allows; give a time at or after the plan's",
                    format_iso8601_us(now),
                    format_iso8601_us(plan.created_ns)
                );
            }
            let cx = RenderContext {
                plan_sha256: sha,
                now_ns: now,
            };
            out!("{}", render::render(&plan, target(a.to, a.speaker), &cx)?);
            Ok(ExitCode::SUCCESS)
        }
        BlockCommand::Expire(a) => {
            let case = Case::open(&a.case)?;
            let (plan, sha) = load_plan(&case)?;
            let cx = RenderContext {
                plan_sha256: sha,
                now_ns: now_ns(a.now.as_deref())?,
            };
            let gone = render::expired(&plan, cx.now_ns);
            eprintln!(
                "{} of {} rule(s) expired as of {}",
                gone.len(),
                plan.rules.len(),
                format_iso8601_us(cx.now_ns)
            );
            out!("{}", render::expire(&plan, target(a.to, a.speaker), &cx)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_plan(a: PlanArgs) -> Result<ExitCode> {
    if a.print_default_policy {
        out!("{}", relaytrace_block::policy::DEFAULT_POLICY);
        return Ok(ExitCode::SUCCESS);
    }
    let dir = a.case.expect("clap requires --case");
    let case = Case::open(&dir)?;
    let pol = policy(a.policy.as_deref())?;
    let snap = snapshot_for(&case, a.snapshot.as_deref(), &a.data)?;
    let plan = plan_case(&case, &pol, now_ns(a.now.as_deref())?, snap.as_ref())?;
    let rec = record(&case, &plan)?;
    match a.format {
        PlanFormat::Json => out!(
            "{}",
            String::from_utf8(relaytrace_block::plan_bytes(&plan)).expect("JSON is UTF-8")
        ),
        PlanFormat::Table => {
            print_plan(&plan);
            outln!(
                "\nplan {} ({}); policy {} sha256 {}",
                rec.path,
                if rec.added {
                    "recorded in the ledger"
                } else {
                    "already in the ledger"
                },
                plan.policy_source,
                plan.policy_sha256
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The snapshot for ASN expansion: `--snapshot`, else the one named by the case's
/// newest enrichment if the data directory has it, else none (ASes then expand to
/// the prefixes the case's enrichment tables hold, and the plan says so).
fn snapshot_for(
    case: &Case,
    explicit: Option<&Path>,
    data: &DataDirArg,
) -> Result<Option<relaytrace_enrich::Snapshot>> {
    // Verified (its bytes hashed against its name): a plan must not expand an AS from
    // an altered snapshot and cite the original's digest.
    if let Some(p) = explicit {
        return Ok(Some(relaytrace_enrich::Snapshot::open_verified(p)?));
    }
    let Some(digest) = relaytrace_block::case_snapshot_digest(case)? else {
        return Ok(None);
    };
    let Ok(dir) = data.resolve() else {
        return Ok(None);
    };
    let path = dir.snapshot_path(&digest);
    if !path.is_file() {
        return Ok(None);
    }
    Ok(Some(relaytrace_enrich::Snapshot::open_verified(&path)?))
}

/// The demo's block stage: the plan (default policy, now) as a table, then its
/// nftables rendering.
pub fn demo_step(case: &Path, data: &DataDirArg) -> Result<()> {
    demo_plan(case, data)?;
    outln!("\n== block: the plan rendered for nftables (relaytrace block render --to nftables)");
    run(BlockCommand::Render(RenderArgs {
        case: case.to_path_buf(),
        to: ToArg::Nftables,
        speaker: SpeakerArg::Gobgp,
        now: None,
    }))?;
    Ok(())
}

/// The demo's plan alone, as a table (used after each stage of the demo).
pub fn demo_plan(case: &Path, data: &DataDirArg) -> Result<()> {
    run_plan(PlanArgs {
        case: Some(case.to_path_buf()),
        policy: None,
        now: None,
        format: PlanFormat::Table,
        print_default_policy: false,
        snapshot: None,
        data: data.clone(),
    })?;
    Ok(())
}

/// Prints a plan for people: decisions, rules with collateral, the comparison.
pub fn print_plan(plan: &Plan) {
    outln!("decisions:");
    for d in &plan.decisions {
        outln!(
            "  {:<6} {:<15} {:<20} {}",
            if d.blocked { "BLOCK" } else { "refuse" },
            d.kind.as_str(),
            d.target,
            d.reason
        );
    }
    outln!("rules ({}):", plan.rules.len());
    for r in &plan.rules {
        let c = &r.collateral;
        outln!(
            "  {:<20} until {}  attack flows {}, collateral: {} flow(s), {} host(s) outside and {} inside, {} byte(s)",
            r.prefix.to_string(),
            format_iso8601_us(r.expires_ns),
            c.attack_flows,
            c.flows,
            c.hosts,
            c.inside_hosts,
            c.bytes
        );
        for n in &c.top_networks {
            outln!(
                "  {:<20}   affected: {} ({} flow(s))",
                "",
                n.network,
                n.flows
            );
        }
        for w in &c.warnings {
            outln!("  {:<20}   WARNING: {w}", "");
        }
    }
    outln!("side by side:");
    for alt in &plan.comparison {
        // A whole AS can be thousands of prefixes: name the first few, count the rest
        // (`--format json` has them all).
        const SHOWN: usize = 4;
        let mut ps: Vec<String> = alt
            .prefixes
            .iter()
            .take(SHOWN)
            .map(ToString::to_string)
            .collect();
        if alt.prefixes.len() > SHOWN {
            ps.push(format!("… {} more", alt.prefixes.len() - SHOWN));
        }
        outln!(
            "  {:<26} {} in {} prefix(es) [{}]: attack flows {}, collateral {} flow(s), {} host(s) outside and {} inside, {} byte(s); policy: {}",
            alt.name,
            address_count(&alt.prefixes),
            alt.prefixes.len(),
            ps.join(", "),
            alt.collateral.attack_flows,
            alt.collateral.flows,
            alt.collateral.hosts,
            alt.collateral.inside_hosts,
            alt.collateral.bytes,
            alt.policy
        );
    }
    if plan.overblock_addresses != "0" {
        outln!(
            "covers include {} address(es) beyond the targets (policy cover.max_overblock_addresses)",
            plan.overblock_addresses
        );
    }
}

#[cfg(test)]
mod tests {
    use super::address_count;

    #[test]
    fn address_counts_read_at_a_glance() {
        let p = |s: &str| s.parse::<relaytrace_block::Prefix>().unwrap();
        assert_eq!(
            address_count(&[p("192.0.2.0/24"), p("198.51.100.7/32")]),
            "257 IPv4 address(es)"
        );
        assert_eq!(
            address_count(&[p("192.0.2.0/24"), p("2001:db8::/120")]),
            "256 IPv4 address(es) and 256 IPv6 address(es)"
        );
        assert_eq!(
            address_count(&[p("2001:db8::/32")]),
            "0 IPv4 address(es) and 2^96.0 IPv6 address(es)"
        );
    }
}
