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

/// Installs a snapshot of the enrich crate's fixtures into `data`: the AS table, and
/// the country table too when `country`.
fn install_fixture_data(data: &str, country: bool) {
    let asn = repo("crates/enrich/tests/fixtures/asn.csv");
    let countries = repo("crates/enrich/tests/fixtures/country.csv");
    let mut args = vec!["data", "update", "--data-dir", data, "--no-defaults"];
    args.extend(["--asn-csv", &asn]);
    if country {
        args.extend(["--country-csv", &countries]);
    }
    ok(&args);
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
    install_fixture_data(data, false);
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
    // Inputs that all fail: an error each, and no word about enrichment.
    let case = tmp.path().join("failed");
    let case = case.to_str().unwrap();
    ok(&["case", "init", case]);
    let missing = tmp.path().join("missing.log");
    let o = run(&[
        "ingest",
        "--case",
        case,
        "--data-dir",
        data,
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("missing.log"), "{}", text(&o));
    assert!(!text(&o).contains("enrich"), "{}", text(&o));
}

/// The distinct `addr` values of an enrichment table.
fn table_addrs(path: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["addr"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The `enrich` ledger entries of a case, as JSON.
fn enrich_entries(case: &str) -> Vec<serde_json::Value> {
    ok(&["case", "log", case, "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "enrich")
        .collect()
}

#[test]
fn each_ingest_enriches_only_the_addresses_not_yet_enriched() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    install_fixture_data(data, false);
    let case = tmp.path().join("case");
    let c = case.to_str().unwrap();
    ok(&["case", "init", c]);
    let addrs_of_case = || -> std::collections::BTreeSet<String> {
        ok(&["conns", "--case", c, "--format", "jsonl"])
            .lines()
            .flat_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                [v["orig_h"].to_string(), v["resp_h"].to_string()]
            })
            .map(|s| s.trim_matches('"').to_string())
            .collect()
    };

    // First input: one table with every address.
    let edge = repo("demo/victim-edge.conn.log");
    ok(&["ingest", "--case", c, "--data-dir", data, &edge]);
    let first_addrs = addrs_of_case();
    let files = enrich_files(&case);
    assert_eq!(files.len(), 1);
    assert_eq!(table_addrs(&files[0]), first_addrs);

    // Second input: a table of its new addresses only.
    let eve = repo("demo/relay-isp.eve.json");
    let out = ok(&["ingest", "--case", c, "--data-dir", data, &eve]);
    let all_addrs = addrs_of_case();
    let new_addrs: std::collections::BTreeSet<String> =
        all_addrs.difference(&first_addrs).cloned().collect();
    assert!(!new_addrs.is_empty(), "the fixture must add addresses");
    let files2 = enrich_files(&case);
    assert_eq!(files2.len(), 2, "{out}");
    let second = files2.iter().find(|f| !files.contains(f)).unwrap();
    assert_eq!(table_addrs(second), new_addrs);
    assert!(
        out.contains(&format!("{} addresses of the case in all", all_addrs.len())),
        "{out}"
    );
    let entries = enrich_entries(c);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["addresses"], new_addrs.len());
    assert_eq!(entries[1]["case_addresses"], all_addrs.len());
    assert_eq!(entries[1]["conns_tables"].as_array().unwrap().len(), 1);
    let log = ok(&["case", "log", c]);
    let said = format!(
        "{} new addresses ({} in the case)",
        new_addrs.len(),
        all_addrs.len()
    );
    assert!(log.contains(&said), "{log}");

    // New content, no new address (another uid): nothing added, no entry.
    let text = std::fs::read_to_string(&edge).unwrap();
    let changed: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with('#') || l.is_empty() {
                return l.to_string();
            }
            let mut f: Vec<&str> = l.split('\t').collect();
            let uid = format!("{}x", f[1]);
            f[1] = &uid;
            f.join("\t")
        })
        .collect();
    let copy = tmp.path().join("edge-copy.conn.log");
    std::fs::write(&copy, changed.join("\n") + "\n").unwrap();
    let out = ok(&[
        "ingest",
        "--case",
        c,
        "--data-dir",
        data,
        copy.to_str().unwrap(),
    ]);
    assert!(
        out.contains("already enriched") && out.contains("no new address in 1 new conns table"),
        "{out}"
    );
    assert_eq!(enrich_files(&case).len(), 2);
    // An entry without a table says the new conns table is covered (the next run
    // does not read it again); an `enrich` with nothing new adds nothing at all.
    let entries = enrich_entries(c);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2]["addresses"], 0, "{}", entries[2]);
    assert_eq!(entries[2]["case_addresses"], all_addrs.len());
    assert_eq!(entries[2]["outputs"], serde_json::json!([]));
    assert_eq!(entries[2]["conns_tables"].as_array().unwrap().len(), 1);
    let out = ok(&["enrich", "--case", c, "--data-dir", data]);
    assert!(out.contains("; nothing added"), "{out}");
    assert_eq!(enrich_entries(c).len(), 3);

    // Another snapshot answers for every address again, and so does going back to the
    // first one (its answers must be the newest again).
    let digest1 = entries[0]["snapshot"].as_str().unwrap().to_string();
    install_fixture_data(data, true);
    ok(&["enrich", "--case", c, "--data-dir", data]);
    let snap1 = Path::new(data)
        .join("snapshots")
        .join(format!("{digest1}.rtsnap"));
    assert!(snap1.exists(), "{}", snap1.display());
    let out = ok(&["enrich", "--case", c, "--snapshot", snap1.to_str().unwrap()]);
    assert!(out.starts_with("enriched"), "{out}");
    let entries = enrich_entries(c);
    assert_eq!(entries.len(), 5);
    for e in &entries[3..] {
        assert_eq!(e["addresses"], all_addrs.len(), "{e}");
    }
    assert_eq!(entries[4]["snapshot"], digest1.as_str());
    let newest = case.join(entries[4]["outputs"][0]["path"].as_str().unwrap());
    assert_eq!(table_addrs(&newest), all_addrs);

    // After that history (first, first, second, first snapshot), an input with one new
    // address among known ones: the first snapshot's newest table answers for the
    // known ones, so its next table holds the new address alone.
    let mut first_line = true;
    let one_new: Vec<String> = changed
        .iter()
        .map(|l| {
            if l.starts_with('#') || l.is_empty() {
                return l.clone();
            }
            let mut f: Vec<&str> = l.split('\t').collect();
            let uid = format!("{}y", f[1]);
            f[1] = &uid;
            if std::mem::take(&mut first_line) {
                f[2] = "198.18.0.9";
            }
            f.join("\t")
        })
        .collect();
    let input = tmp.path().join("one-new.conn.log");
    std::fs::write(&input, one_new.join("\n") + "\n").unwrap();
    ok(&[
        "ingest",
        "--case",
        c,
        "--no-enrich",
        input.to_str().unwrap(),
    ]);
    let out = ok(&["enrich", "--case", c, "--snapshot", snap1.to_str().unwrap()]);
    let entries = enrich_entries(c);
    assert_eq!(entries.len(), 6, "{out}");
    assert_eq!(entries[5]["addresses"], 1, "{}", entries[5]);
    assert_eq!(entries[5]["case_addresses"], all_addrs.len() + 1);
    let newest = case.join(entries[5]["outputs"][0]["path"].as_str().unwrap());
    assert_eq!(
        table_addrs(&newest),
        std::collections::BTreeSet::from(["198.18.0.9".to_string()])
    );
    let verify = ok(&["case", "verify", c]);
    assert!(verify.starts_with("OK"), "{verify}");
}

/// A kill while `enrich` writes its table leaves a case that verifies, with no entry
/// and no table of the run visible, and the next run does the whole job once.
#[test]
fn sigkill_mid_enrich_leaves_a_verifiable_case_and_rerun_completes() {
    use std::io::Write as _;

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    install_fixture_data(data, true);
    let case = tmp.path().join("case");
    let c = case.to_str().unwrap();
    ok(&["case", "init", c]);
    // 100,000 connections between distinct addresses: 200,000 to look up and write.
    let input = tmp.path().join("many.conn.log");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    writeln!(w, "#separator \\x09").unwrap();
    writeln!(w, "#path\tconn").unwrap();
    writeln!(
        w,
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto"
    )
    .unwrap();
    writeln!(w, "#types\ttime\tstring\taddr\tport\taddr\tport\tenum").unwrap();
    let n = 100_000u32;
    for i in 0..n {
        let o = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        let r = std::net::Ipv4Addr::from(0xac10_0000 + i);
        writeln!(w, "{}.0\tC{i}\t{o}\t40000\t{r}\t22\ttcp", 1_700_000_000 + i).unwrap();
    }
    drop(w);
    ok(&[
        "ingest",
        "--case",
        c,
        "--no-enrich",
        input.to_str().unwrap(),
    ]);

    // Kill once the table is being written (its temporary file exists).
    let killed = common::kill_while_writing(
        &["enrich", "--case", c, "--data-dir", data],
        &case.join("tables/.tmp"),
        |name| name.starts_with("enrich-"),
    );
    assert!(killed, "enrich finished before it could be killed");

    let verify = ok(&["case", "verify", c]);
    assert!(
        verify.contains("interrupted ingest or enrich") && verify.contains("OK:"),
        "{verify}"
    );
    assert!(enrich_entries(c).is_empty(), "no entry for a killed run");
    assert!(
        !case.join("tables/enrich").exists() || enrich_files(&case).is_empty(),
        "no table of a killed run is visible"
    );

    let out = ok(&["enrich", "--case", c, "--data-dir", data]);
    assert!(out.starts_with("enriched 200000 addresses"), "{out}");
    let entries = enrich_entries(c);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["case_addresses"], 200_000);
    let files = enrich_files(&case);
    assert_eq!(files.len(), 1);
    assert_eq!(table_addrs(&files[0]).len(), 200_000);
    let v = run(&["case", "verify", c, "--format", "json"]);
    assert!(v.status.success(), "{}", text(&v));
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["notes"].as_array().map_or(0, Vec::len), 0, "{v:#}");
}

/// An altered snapshot answers nothing: `whois` (and `enrich`) hash it against its
/// name first (whois answered from it under the original's digest).
#[test]
fn an_altered_snapshot_is_refused_by_whois() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    install_fixture_data(data, false);
    let snaps = Path::new(data).join("snapshots");
    let file = std::fs::read_dir(&snaps)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(run(&["whois", "--data-dir", data, "192.0.2.1"])
        .status
        .success());
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    for args in [
        vec!["whois", "--data-dir", data, "192.0.2.1"],
        vec!["whois", "--snapshot", file.to_str().unwrap(), "192.0.2.1"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("altered"), "{args:?}: {}", text(&o));
    }
}
