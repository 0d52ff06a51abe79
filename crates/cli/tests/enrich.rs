//! `data update`, `whois` and `enrich` through the real binary, on the enrich crate's
//! hand-written fixtures and the bundled demo case (no network).

use std::path::{Path, PathBuf};

mod common;
use common::{repo, run, text};

/// Runs `args`, requires success, returns both output streams (`data update` reports
/// on standard error what it fetched).
fn ok(args: &[&str]) -> String {
    let o = run(args);
    let t = text(&o);
    assert!(o.status.success(), "relaytrace {args:?} failed:\n{t}");
    t
}

fn enrich_files(case: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(case.join("tables/enrich"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn whois_and_enrich_carry_the_snapshot_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let asn = repo("crates/enrich/tests/fixtures/asn.csv");
    let out = ok(&[
        "data",
        "update",
        "--data-dir",
        data,
        "--no-defaults",
        "--asn-csv",
        &asn,
    ]);
    assert!(
        out.contains("skipped"),
        "malformed rows are reported: {out}"
    );
    assert!(out.contains("asn.csv:9: start is after end"), "{out}");

    // whois: known and unknown, table and jsonl.
    let table = ok(&["whois", "--data-dir", data, "1.0.0.7", "192.0.2.1"]);
    assert!(
        table.contains("AS13335") && table.contains("Cloudflare, Inc."),
        "{table}"
    );
    let unknown_line = table.lines().find(|l| l.starts_with("192.0.2.1")).unwrap();
    assert!(unknown_line.contains("unknown"), "{unknown_line}");
    let jsonl = ok(&[
        "whois",
        "--data-dir",
        data,
        "--format",
        "jsonl",
        "1.0.0.7",
        "192.0.2.1",
    ]);
    let rows: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows[0]["asn"], 13335);
    assert_eq!(rows[0]["prefix"], "1.0.0.0/24");
    assert_eq!(rows[1]["status"], "unknown");
    let digest1 = rows[0]["snapshot"].as_str().unwrap().to_string();
    assert_eq!(digest1.len(), 64);
    assert!(ok(&["data", "status", "--data-dir", data]).contains(&digest1));

    // enrich the demo case.
    let case = tmp.path().join("case");
    let c = case.to_str().unwrap();
    ok(&["case", "init", c]);
    ok(&["ingest", "--case", c, &repo("demo/victim-edge.conn.log")]);
    let out = ok(&["enrich", "--case", c, "--data-dir", data]);
    assert!(out.contains(&digest1), "{out}");
    let files = enrich_files(&case);
    assert_eq!(files.len(), 1);
    let first = std::fs::read_to_string(&files[0]).unwrap();
    assert!(first.lines().count() > 0);
    for l in first.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(
            v["snapshot"],
            digest1.as_str(),
            "every value carries the digest"
        );
    }
    // Same snapshot, same conns: nothing added.
    assert!(ok(&["enrich", "--case", c, "--data-dir", data]).contains("already enriched"));
    assert_eq!(enrich_files(&case).len(), 1);

    // A new snapshot (country data added): a second table; the first one stays.
    let country = repo("crates/enrich/tests/fixtures/country.csv");
    ok(&[
        "data",
        "update",
        "--data-dir",
        data,
        "--no-defaults",
        "--asn-csv",
        &asn,
        "--country-csv",
        &country,
    ]);
    ok(&["enrich", "--case", c, "--data-dir", data]);
    let files = enrich_files(&case);
    assert_eq!(files.len(), 2);
    assert!(files
        .iter()
        .any(|f| std::fs::read_to_string(f).unwrap() == first));
    let log = ok(&["case", "log", c]);
    assert!(log.matches("enrich").count() >= 2, "{log}");
    let verify = ok(&["case", "verify", c]);
    assert!(!verify.contains("not referenced"), "{verify}");
}

#[test]
fn ingest_enriches_the_case_when_a_snapshot_is_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let asn = repo("crates/enrich/tests/fixtures/asn.csv");
    ok(&[
        "data",
        "update",
        "--data-dir",
        data,
        "--no-defaults",
        "--asn-csv",
        &asn,
    ]);
    let input = repo("demo/relay-isp.eve.json");
    for (name, extra) in [("auto", None), ("off", Some("--no-enrich"))] {
        let case = tmp.path().join(name);
        let case = case.to_str().unwrap();
        ok(&["case", "init", case]);
        let mut args = vec!["ingest", "--case", case, "--data-dir", data];
        args.extend(extra);
        args.push(&input);
        let out = ok(&args);
        let log = ok(&["case", "log", case, "--format", "json"]);
        let enriched = log.lines().any(|l| l.contains("\"kind\":\"enrich\""));
        assert_eq!(enriched, extra.is_none(), "{name}: {out}\n{log}");
        let (_, verified) = (0, ok(&["case", "verify", case]));
        assert!(verified.starts_with("OK"), "{verified}");
    }
}
