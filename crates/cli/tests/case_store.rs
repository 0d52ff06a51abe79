//! The case store through the real binary: tamper detection, idempotent ingest, and
//! crash safety under SIGKILL.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

mod common;
use common::{bin, run, text};

fn demo_input(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo")).join(name)
}

fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
    .join(rel)
}

fn new_case(dir: &Path) -> String {
    let case = dir.join("case");
    let o = run(&["case", "init", case.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    case.to_str().unwrap().to_string()
}

fn ingest(case: &str, vantage: &str, input: &Path) -> Output {
    run(&[
        "ingest",
        "--case",
        case,
        "--vantage",
        vantage,
        input.to_str().unwrap(),
    ])
}

fn verify_json(case: &str) -> (bool, serde_json::Value) {
    let o = run(&["case", "verify", case, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("verify prints JSON");
    (o.status.success(), v)
}

fn count_conns(case: &str) -> usize {
    let o = run(&["conns", "--case", case, "--format", "jsonl"]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).lines().count()
}

/// Flips one byte in the middle of `path` (making it writable first).
fn flip_byte(path: &Path) {
    let mut perms = fs::metadata(path).unwrap().permissions();
    #[expect(
        clippy::permissions_set_readonly_false,
        reason = "the test tampers on purpose"
    )]
    perms.set_readonly(false);
    fs::set_permissions(path, perms).unwrap();
    let mut bytes = fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

fn only_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn verify_catches_a_flipped_byte_in_evidence_table_and_ledger() {
    for target in ["evidence", "table", "ledger"] {
        let dir = tempfile::tempdir().unwrap();
        let case = new_case(dir.path());
        let o = ingest(&case, "victim-edge", &demo_input("victim-edge.conn.log"));
        assert!(o.status.success(), "{}", text(&o));
        let (ok, before) = verify_json(&case);
        assert!(ok, "{before:#}");
        let case_dir = Path::new(&case);
        let victim = match target {
            "evidence" => only_file(&case_dir.join("evidence")),
            "table" => only_file(&case_dir.join("tables/conns")),
            _ => case_dir.join("ledger.jsonl"),
        };
        flip_byte(&victim);
        let (ok, after) = verify_json(&case);
        assert!(!ok, "{target}: verify passed after tampering: {after:#}");
        let problems = after["problems"].to_string();
        let named = match target {
            "evidence" => problems.contains("evidence/"),
            "table" => problems.contains("tables/conns/"),
            _ => problems.contains("ledger.jsonl"),
        };
        assert!(
            named,
            "{target}: problem does not name the file: {problems}"
        );
    }
}

#[test]
fn verify_catches_a_ledger_removed_emptied_or_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    for input in ["victim-edge.conn.log", "relay-isp.eve.json"] {
        assert!(ingest(&case, "v", &demo_input(input)).status.success());
    }
    let (ok, report) = verify_json(&case);
    assert!(ok, "{report:#}");
    assert_eq!(
        report["notes"].as_array().map(Vec::len),
        Some(0),
        "{report:#}"
    );
    let ledger = Path::new(&case).join("ledger.jsonl");
    let original = fs::read_to_string(&ledger).unwrap();
    let first_two: String = original.lines().take(2).map(|l| format!("{l}\n")).collect();
    let drop_first: String = original.lines().skip(1).map(|l| format!("{l}\n")).collect();
    let cases: [(&str, Option<&str>, &str); 4] = [
        ("removed", None, "no entries"),
        ("emptied", Some(""), "no entries"),
        ("cut short", Some(&first_two), "ends at entry 1, but"),
        (
            "first entry removed",
            Some(&drop_first),
            "not the case's `init` entry",
        ),
    ];
    for (what, content, says) in cases {
        match content {
            None => fs::remove_file(&ledger).unwrap(),
            Some(c) => fs::write(&ledger, c).unwrap(),
        }
        let (ok, report) = verify_json(&case);
        assert!(!ok, "{what}: verify passed: {report:#}");
        assert!(
            report["problems"].to_string().contains(says),
            "{what}: {report:#}"
        );
        fs::write(&ledger, &original).unwrap();
    }
    assert!(verify_json(&case).0);
    // A head left one entry behind (a kill between the two writes) is a note only.
    let head = Path::new(&case).join("ledger.head");
    let last_but_one = original.lines().nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(last_but_one).unwrap();
    fs::write(&head, format!("{{\"seq\":1,\"hash\":{}}}\n", v["hash"])).unwrap();
    let (ok, report) = verify_json(&case);
    assert!(ok, "{report:#}");
    assert!(
        report["notes"].to_string().contains("1 entry behind"),
        "{report:#}"
    );
}

#[test]
fn ingesting_the_same_file_twice_adds_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let input = demo_input("relay-isp.eve.json");
    assert!(ingest(&case, "relay-isp", &input).status.success());
    let n = count_conns(&case);
    assert_eq!(n, 5);
    let o = ingest(&case, "other", &input);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("already ingested"), "{}", text(&o));
    assert_eq!(count_conns(&case), n);
    let log = run(&["case", "log", &case, "--format", "json"]);
    assert_eq!(String::from_utf8_lossy(&log.stdout).lines().count(), 2);
}

#[test]
fn an_input_that_added_no_record_can_be_read_again_and_then_counts_as_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    // A wrong forced format: every line rejected, nothing added.
    let input = demo_input("victim-edge.conn.log");
    let path = input.to_str().unwrap();
    let forced = ["ingest", "--case", &case, "--no-enrich", "--input-format"];
    let o = run(&[&forced[..], &["suricata-eve", path]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // The same mistake again: read again, rejected again, its own rejects table.
    let o = run(&[&forced[..], &["suricata-eve", path]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(count_conns(&case), 0);
    let o = run(&["ingest", "--case", &case, "--no-enrich", path]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(
            "read again: an earlier ingest of the same content (ledger entry 2) added no record"
        ),
        "{}",
        text(&o)
    );
    assert_eq!(count_conns(&case), 6);
    // Now it added records: a third run is refused as before.
    let o = run(&["ingest", "--case", &case, "--no-enrich", path]);
    assert!(
        text(&o).contains("already ingested (ledger entry 3"),
        "{}",
        text(&o)
    );
    assert_eq!(count_conns(&case), 6);
    // NetFlow data before its templates: read again once they are known.
    let nf = "netflow/logstash-codec-netflow/netflow9_test_cisco_asa_1";
    let (data, tpl) = (
        corpus(&format!("{nf}_data.dat")),
        corpus(&format!("{nf}_tpl.dat")),
    );
    for (input, conns) in [(&data, 6), (&tpl, 6), (&data, 20)] {
        let o = run(&[
            "ingest",
            "--case",
            &case,
            "--no-enrich",
            input.to_str().unwrap(),
        ]);
        assert_eq!(count_conns(&case), conns, "{}", text(&o));
    }
    // The retry's rejects table did not replace the first run's: every entry verifies.
    let o = run(&["case", "verify", &case]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("0 problems"), "{}", text(&o));
    let rejects = fs::read_dir(Path::new(&case).join("tables/rejects"))
        .unwrap()
        .count();
    assert_eq!(
        rejects, 3,
        "the conn.log's two failed runs and the early NetFlow data"
    );
}

#[test]
fn rejections_are_reported_with_line_and_exit_status_follows_strict() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let broken = corpus("suricata-eve/surevego/eve_broken.json");
    let o = ingest(&case, "sensor", &broken);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("262 read, 7 rejected"), "{out}");
    assert!(out.contains("line 2: field `timestamp`"), "{out}");
    // The ledger records the counts.
    let log = run(&["case", "log", &case, "--format", "json"]);
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&log.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["counts"]["rejected"], 7);

    // --strict turns any rejection into a failure.
    let case2 = {
        let d = dir.path().join("c2");
        assert!(run(&["case", "init", d.to_str().unwrap()]).status.success());
        d.to_str().unwrap().to_string()
    };
    let o = run(&[
        "ingest",
        "--case",
        &case2,
        "--strict",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // A file with nothing readable fails, and an unknown format is an error naming it.
    let junk = dir.path().join("junk.bin");
    fs::write(&junk, b"this is not telemetry\n").unwrap();
    let o = ingest(&case, "sensor", &junk);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("junk.bin"), "{}", text(&o));
    let (ok, v) = verify_json(&case);
    assert!(ok, "{v:#}");
    assert_eq!(v["notes"].as_array().unwrap().len(), 0, "{v:#}");
}

/// Writes a Zeek conn.log with `n` connections.
fn big_conn_log(path: &Path, n: usize) {
    let mut f = std::io::BufWriter::new(fs::File::create(path).unwrap());
    writeln!(f, "#separator \\x09").unwrap();
    writeln!(f, "#path\tconn").unwrap();
    writeln!(
        f,
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\tconn_state"
    )
    .unwrap();
    for i in 0..n {
        writeln!(
            f,
            "{}.{:06}\tC{i}\t10.{}.{}.{}\t{}\t192.0.2.1\t22\ttcp\t1.5\t{}\t{}\tSF",
            1_700_000_000 + i / 1000,
            i % 1_000_000,
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            1024 + i % 60000,
            i % 5000,
            i % 7000
        )
        .unwrap();
    }
}

#[test]
fn sigkill_mid_ingest_leaves_a_verifiable_case_and_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let input = dir.path().join("big.conn.log");
    let n = 400_000;
    big_conn_log(&input, n);
    // Kill once the reader has started writing its table (mid-way by construction:
    // the table file appears at the first connection).
    let killed = common::kill_while_writing(
        &["ingest", "--case", &case, input.to_str().unwrap()],
        &Path::new(&case).join("tables/.tmp"),
        |name| name.ends_with(".conns.parquet"),
    );
    assert!(killed, "ingest finished before it could be killed");

    let (ok, v) = verify_json(&case);
    assert!(ok, "case corrupt after SIGKILL: {v:#}");
    assert_eq!(count_conns(&case), 0, "nothing uncommitted is visible");

    let o = ingest(&case, "default", &input);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count_conns(&case), n, "re-run adds every connection once");
    let (ok, v) = verify_json(&case);
    assert!(ok, "{v:#}");
    assert_eq!(v["notes"].as_array().unwrap().len(), 0, "{v:#}");
}

/// A run that finds the case locked by another says so on standard error before it
/// waits, then does its work once the other has finished.
#[test]
fn a_second_run_says_it_waits_for_the_case_lock() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let input = dir.path().join("big.conn.log");
    big_conn_log(&input, 100_000);
    let mut first = bin()
        .args(["ingest", "--case", &case, input.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first holds the lock once its table is being written.
    let scratch = Path::new(&case).join("tables/.tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline
        && !fs::read_dir(&scratch).is_ok_and(|mut d| d.next().is_some())
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let second = ingest(&case, "default", &demo_input("victim-edge.conn.log"));
    let first = first.wait().unwrap();
    assert!(first.success(), "{first}");
    assert!(second.status.success(), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("waiting: another relaytrace run is writing to the case"),
        "{err}"
    );
    assert_eq!(count_conns(&case), 100_000 + 6);
}

#[test]
fn netflow_templates_carry_across_the_files_of_one_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let (tpl, data) = asa_template_and_data();
    // Data alone: its template is unknown, so every record is rejected, and the
    // reason names the template.
    let alone = dir.path().join("alone");
    assert!(run(&["case", "init", alone.to_str().unwrap()])
        .status
        .success());
    let o = run(&[
        "ingest",
        "--case",
        alone.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("template"), "{}", text(&o));
    // Template file first, then data, in one run: decoded.
    let o = run(&[
        "ingest",
        "--case",
        &case,
        "--vantage",
        "relay-isp",
        tpl.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(count_conns(&case) > 0, "{}", text(&o));
}

#[test]
fn netflow_templates_from_an_earlier_run_of_the_same_vantage_are_used_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let (tpl, data) = asa_template_and_data();
    assert!(ingest(&case, "relay-isp", &tpl).status.success());
    // Another vantage's exporter is another exporter: its templates do not apply.
    let o = ingest(&case, "elsewhere", &data);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let case2 = {
        let d = dir.path().join("c2");
        assert!(run(&["case", "init", d.to_str().unwrap()]).status.success());
        d.to_str().unwrap().to_string()
    };
    assert!(ingest(&case2, "relay-isp", &tpl).status.success());
    let o = ingest(&case2, "relay-isp", &data);
    assert!(o.status.success(), "{}", text(&o));
    assert!(count_conns(&case2) > 0);
    let log = run(&["case", "log", &case2, "--format", "json"]);
    let entries: Vec<serde_json::Value> = String::from_utf8_lossy(&log.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tpl_digest = entries[1]["evidence"].as_str().unwrap();
    assert_eq!(
        entries[2]["templates_from"],
        serde_json::json!([tpl_digest])
    );
}

/// A NetFlow ingest keeps its template cache in the case, and a later run of the
/// vantage starts from it instead of reading the earlier export files again: the data
/// file decodes with the template file's evidence gone. A saved cache that does not
/// match the ledger is refused, by name.
#[test]
fn a_later_netflow_run_starts_from_the_saved_templates_not_from_the_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let (tpl, data) = asa_template_and_data();
    assert!(ingest(&case, "relay-isp", &tpl).status.success());
    let entry = last_entry(&case);
    let outputs = entry["outputs"].as_array().unwrap();
    let saved = outputs
        .iter()
        .find(|o| o["table"] == "netflow-templates")
        .unwrap_or_else(|| panic!("no saved templates: {entry}"));
    let saved_path = Path::new(&case).join(saved["path"].as_str().unwrap());
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&saved_path).unwrap()).unwrap();
    assert_eq!(state["vantage"], "relay-isp");
    assert_eq!(state["sources"], serde_json::json!([entry["evidence"]]));
    assert!(!state["cache"]["exporters"].as_array().unwrap().is_empty());

    // The template file's evidence is not read again (here: not there at all).
    let tpl_evidence = Path::new(&case)
        .join("evidence")
        .join(entry["evidence"].as_str().unwrap());
    let kept = fs::read(&tpl_evidence).unwrap();
    fs::remove_file(&tpl_evidence).unwrap();
    let o = ingest(&case, "relay-isp", &data);
    assert!(o.status.success(), "{}", text(&o));
    assert!(count_conns(&case) > 0, "{}", text(&o));
    assert_eq!(
        last_entry(&case)["templates_from"],
        serde_json::json!([entry["evidence"]])
    );
    fs::write(&tpl_evidence, kept).unwrap();
    let (ok, v) = verify_json(&case);
    assert!(ok, "{v:#}");

    // An altered saved cache is refused with its name, never used.
    let newest = last_entry(&case)["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["table"] == "netflow-templates")
        .map(|o| Path::new(&case).join(o["path"].as_str().unwrap()))
        .unwrap();
    flip_byte(&newest);
    let other = corpus("netflow/logstash-codec-netflow/netflow9_test_cisco_asa_2_data.dat");
    let o = ingest(&case, "relay-isp", &other);
    assert!(!o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("netflow-templates") && t.contains("SHA-256"),
        "{t}"
    );
}

/// A case whose NetFlow ingest predates saved template caches (its ledger entry names
/// no `netflow-templates` output) still lends its templates: the evidence is replayed.
#[test]
fn netflow_templates_of_an_entry_without_a_saved_cache_are_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let (tpl, data) = asa_template_and_data();
    // The entry an earlier version wrote: evidence and counts, no saved cache.
    let store = relaytrace_store::Case::open(Path::new(&case)).unwrap();
    let bytes = fs::read(&tpl).unwrap();
    let digest = relaytrace_store::digest::sha256_hex(&bytes);
    fs::write(store.evidence_path(&digest), &bytes).unwrap();
    let mut fields = serde_json::Map::new();
    for (k, v) in [
        ("evidence", serde_json::json!(digest)),
        ("bytes", serde_json::json!(bytes.len())),
        ("format", serde_json::json!("netflow")),
        ("vantage", serde_json::json!("relay-isp")),
        (
            "input_name",
            serde_json::json!("netflow9_test_cisco_asa_1_tpl.dat"),
        ),
        (
            "counts",
            serde_json::json!({"read": 0, "rejected": 0, "templates": 1}),
        ),
        ("outputs", serde_json::json!([])),
    ] {
        fields.insert(k.into(), v);
    }
    store.ledger().append("ingest", fields).unwrap();
    let o = ingest(&case, "relay-isp", &data);
    assert!(o.status.success(), "{}", text(&o));
    assert!(count_conns(&case) > 0, "{}", text(&o));
    assert_eq!(
        last_entry(&case)["templates_from"],
        serde_json::json!([digest])
    );
}

/// A Cisco ASA template file and the data file that needs it (the corpus's).
fn asa_template_and_data() -> (PathBuf, PathBuf) {
    let nf = corpus("netflow/logstash-codec-netflow");
    (
        nf.join("netflow9_test_cisco_asa_1_tpl.dat"),
        nf.join("netflow9_test_cisco_asa_1_data.dat"),
    )
}

/// The newest ledger entry of a case, as JSON.
fn last_entry(case: &str) -> serde_json::Value {
    let log = run(&["case", "log", case, "--format", "json"]);
    let text = String::from_utf8_lossy(&log.stdout).into_owned();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// Listings print as they read: filters and limits hold, every row is printed once,
/// and a reader that stops early (`| head`) ends the listing quietly, without an
/// error or a panic.
#[test]
fn listings_stream_filter_and_stop_quietly_with_their_reader() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let log = dir.path().join("conn.log");
    let mut f = fs::File::create(&log).unwrap();
    writeln!(f, "#separator \\x09").unwrap();
    writeln!(f, "#path\tconn").unwrap();
    writeln!(
        f,
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\torig_bytes\tresp_bytes\tconn_state"
    )
    .unwrap();
    let n = 5000;
    for i in 0..n {
        writeln!(
            f,
            "{}.5\tC{i}\t10.0.{}.{}\t{}\t192.0.2.{}\t22\ttcp\t1.5\t{i}\t7\tSF",
            1_700_000_000 + i,
            i / 250,
            i % 250,
            20000 + i,
            i % 7
        )
        .unwrap();
    }
    drop(f);
    let o = ingest(&case, "edge", &log);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count_conns(&case), n);

    let o = run(&[
        "conns",
        "--case",
        &case,
        "--host",
        "192.0.2.3",
        "--format",
        "jsonl",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), (0..n).filter(|i| i % 7 == 3).count());
    assert!(rows
        .iter()
        .all(|r| r["resp_h"] == "192.0.2.3" && r["vantage"] == "edge"));

    let o = run(&["conns", "--case", &case, "--limit", "3", "--format", "csv"]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.starts_with("id,ts,uid,orig_h,"), "{csv}");

    // A table is sized by its first rows and then streams: every row once.
    let o = run(&["conns", "--case", &case]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), n + 1);

    // The reader goes away after one line: far more output than a pipe holds is left.
    let mut child = bin()
        .args(["conns", "--case", &case, "--format", "jsonl"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut first).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(first.starts_with('{'), "{first}");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A capture whose every packet is lost reads as "0 read" and fails (the reader's own
/// `pcap-stats` summary is no record of it); the summaries of a NetFlow export
/// capture have ids of their own.
#[test]
fn a_capture_with_no_readable_packet_fails_and_summary_events_have_unique_ids() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let good = corpus("zeek-pcap-pairs/scripts.base.protocols.pop3.basic/pop3.pcap");
    let mut bytes = fs::read(&good).unwrap();
    // The first record's captured length: far beyond the end of the file.
    bytes[24 + 8..24 + 12].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    let bad = dir.path().join("bad.pcap");
    fs::write(&bad, bytes).unwrap();
    let o = ingest(&case, "edge", &bad);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("0 read, 1 rejected"), "{}", text(&o));
    assert!(text(&o).contains("byte offset 24"), "{}", text(&o));

    let o = ingest(&case, "edge", &demo_input("testbed-victim.netflow-v9.pcap"));
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["events", "--case", &case, "--format", "jsonl"]);
    let ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    let kinds = String::from_utf8_lossy(&o.stdout).matches("-stats").count();
    assert!(
        kinds >= 3,
        "pcap-stats of both captures and the export stats: {ids:?}"
    );
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

/// A gzip file cut short keeps the records before the cut, as a plain file cut short
/// does, and the cut is one rejection at its offset (it failed the whole input).
#[test]
fn a_truncated_gzip_input_keeps_its_records_and_reports_the_cut() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let eve = fs::read(corpus("suricata-eve/surevego/eve.json")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&eve).unwrap();
    let whole = gz.finish().unwrap();
    let cut = dir.path().join("eve.json.gz");
    fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let o = ingest(&case, "sensor", &cut);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("gzip stream damaged"), "{out}");
    assert!(out.contains("the records before it were"), "{out}");
    let events = run(&["events", "--case", &case, "--format", "jsonl"]);
    let kept = String::from_utf8_lossy(&events.stdout).lines().count();
    assert!(kept > 100, "{kept} events kept: {out}");
    // `--strict` makes the cut fail the run; the JSON error names no line twice.
    let dir2 = tempfile::tempdir().unwrap();
    let case2 = new_case(dir2.path());
    let o = run(&[
        "ingest",
        "--case",
        &case2,
        "--strict",
        cut.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // The line cut in half is a JSON rejection; its line is said once.
    assert!(text(&o).contains("invalid JSON at column"), "{}", text(&o));
    assert!(!text(&o).contains("at line 1 column"), "{}", text(&o));
}

/// The same content plain and gzip-compressed, or compressed twice differently, is
/// one input: it was ingested once per form, every connection twice.
#[test]
fn the_same_content_compressed_otherwise_is_already_ingested() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let plain = demo_input("victim-edge.conn.log");
    let content = fs::read(&plain).unwrap();
    let gz = |level: u32, name: &str| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(&content).unwrap();
        let path = dir.path().join(name);
        fs::write(&path, e.finish().unwrap()).unwrap();
        path
    };
    let (fast, best) = (gz(1, "fast.log.gz"), gz(9, "best.log.gz"));
    assert_ne!(fs::read(&fast).unwrap(), fs::read(&best).unwrap());
    let o = ingest(&case, "edge", &fast);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count_conns(&case), 6);
    for again in [&plain, &best, &fast] {
        let o = ingest(&case, "edge", again);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains("already ingested (ledger entry 1"),
            "{}",
            text(&o)
        );
        let other_bytes = *again != fast;
        assert_eq!(
            text(&o).contains("the same content, compressed otherwise"),
            other_bytes,
            "{}",
            text(&o)
        );
    }
    assert_eq!(count_conns(&case), 6);
    // And the other way round: plain first, then compressed.
    let dir2 = tempfile::tempdir().unwrap();
    let case2 = new_case(dir2.path());
    assert!(ingest(&case2, "edge", &plain).status.success());
    let o = ingest(&case2, "edge", &best);
    assert!(
        text(&o).contains("the same content, compressed otherwise"),
        "{}",
        text(&o)
    );
    assert_eq!(count_conns(&case2), 6);
}

/// Filters that could only select nothing are refused, naming the value; a date alone
/// is its midnight; a transport name in capitals is the same transport.
#[test]
fn empty_windows_and_unknown_transports_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    assert!(ingest(&case, "edge", &demo_input("victim-edge.conn.log"))
        .status
        .success());
    let listed = |extra: &[&str]| {
        let o = run(&[
            &["conns", "--case", case.as_str(), "--format", "jsonl"],
            extra,
        ]
        .concat());
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).lines().count(),
            text(&o),
        )
    };
    let (code, _, out) = listed(&["--since", "2014-11-25T00:00:00Z", "--until", "2014-11-24"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(
            "--since (2014-11-25T00:00:00.000000Z) is after --until (2014-11-24T00:00:00.000000Z)"
        ),
        "{out}"
    );
    let o = run(&[
        "events", "--case", &case, "--since", "1000", "--until", "999",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(&[
        "trace",
        "--case",
        &case,
        "--victim",
        "203.0.113.7",
        "--since",
        "1000",
        "--until",
        "999",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("the window is given backwards"),
        "{}",
        text(&o)
    );
    let (code, _, out) = listed(&["--proto", "sctp"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("one of tcp, udp, icmp, unknown_transport"),
        "{out}"
    );
    let all = listed(&[]).1;
    assert!(all > 0);
    assert_eq!(listed(&["--proto", "TCP"]).1, listed(&["--proto", "tcp"]).1);
    let (tcp, udp) = (listed(&["--proto", "tcp"]).1, listed(&["--proto", "Udp"]).1);
    assert_eq!((tcp, udp), (4, 2), "the demo conn.log: 4 TCP, 2 UDP");
    assert_eq!(tcp + udp, all);
    // A date alone: from its midnight on, every connection of that day and after.
    assert_eq!(listed(&["--since", "1970-01-02"]).1, all);
    assert_eq!(listed(&["--until", "1970-01-02"]).1, 0);
}

/// `-` reads standard input, once.
#[test]
fn standard_input_is_read_once_as_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let log = fs::File::open(demo_input("victim-edge.conn.log")).unwrap();
    let o = bin()
        .args(["ingest", "--case", &case, "--no-enrich", "-"])
        .stdin(log)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(count_conns(&case), 6);
    let o = run(&["ingest", "--case", &case, "-", "-"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("can be given once"), "{}", text(&o));
}

/// Every command that prints goes on quietly when its reader has gone before it wrote
/// (`println!` panicked there: "failed printing to stdout: Broken pipe"), does its
/// work and ends with its own status.
#[test]
fn commands_go_on_quietly_when_standard_output_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    assert!(ingest(&case, "edge", &demo_input("victim-edge.conn.log"))
        .status
        .success());
    // Standard output is a pipe whose read end is closed before the command starts:
    // its first write fails, whatever its size.
    let closed = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = bin()
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        (o.status.code(), err)
    };
    for args in [
        vec!["case", "log", case.as_str()],
        vec!["case", "log", case.as_str(), "--format", "json"],
        vec!["case", "verify", case.as_str()],
        vec!["conns", "--case", case.as_str()],
    ] {
        assert_eq!(closed(&args).0, Some(0), "{args:?}");
    }
    // The work is still done: an ingest with nobody reading commits its input.
    let eve = demo_input("relay-isp.eve.json");
    let (code, _) = closed(&["ingest", "--case", &case, eve.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert_eq!(count_conns(&case), 11);
    // And the status is the command's: verify of an altered case still fails.
    let table = fs::read_dir(Path::new(&case).join("tables/conns"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    flip_byte(&table);
    let (code, _) = closed(&["case", "verify", &case]);
    assert_eq!(code, Some(1));
}

/// A directory given as input is refused with what to do instead, and nothing is
/// recorded for it.
#[test]
fn a_directory_input_is_refused_with_what_to_give_instead() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).unwrap();
    let o = run(&[
        "ingest",
        "--no-enrich",
        "--case",
        &case,
        logs.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("a directory") && err.contains("logs/*"),
        "{err}"
    );
    let (ok, v) = verify_json(&case);
    assert!(ok, "{v:#}");
    assert_eq!(count_conns(&case), 0);
}

/// The rows a listing command (`conns`, `events`) prints as JSON lines with `extra`
/// arguments; the command must succeed.
fn listed(command: &str, case: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![command, "--case", case, "--format", "jsonl"];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `conns --host` takes a prefix as well as an address, and `--since`/`--until` keep
/// the connections active in a time window (ISO 8601 or Unix seconds).
#[test]
fn conns_filter_by_prefix_and_time_window() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let o = ingest(&case, "edge", &demo_input("victim-edge.conn.log"));
    assert!(o.status.success(), "{}", text(&o));
    let ids = |extra: &[&str]| -> Vec<String> {
        listed("conns", &case, extra)
            .iter()
            .map(|v| {
                format!(
                    "{}>{}",
                    v["orig_h"].as_str().unwrap(),
                    v["resp_h"].as_str().unwrap()
                )
            })
            .collect()
    };
    // 198.51.100.0/24 holds the relay (two sessions) and one other host.
    let mut got = ids(&["--host", "198.51.100.0/24"]);
    got.sort();
    assert_eq!(
        got,
        [
            "198.51.100.23>203.0.113.7",
            "198.51.100.23>203.0.113.7",
            "198.51.100.77>203.0.113.7"
        ]
    );
    assert_eq!(
        ids(&["--host", "198.51.100.77"]),
        ["198.51.100.77>203.0.113.7"]
    );
    // In [1793590000, 1793590100]: the relay's first session (1793588412.10 + 1803.22 s,
    // still active) and the one that starts at 1793590002.88; not those that ended
    // before (1793589100.31 + 0 s) or start after (1793590300.45).
    let mut got = ids(&["--since", "1793590000", "--until", "1793590100"]);
    got.sort();
    assert_eq!(
        got,
        ["198.51.100.23>203.0.113.7", "203.0.113.7>192.0.2.200"]
    );
    // The same instant written in ISO 8601.
    assert_eq!(
        ids(&["--since", "2026-11-02T03:26:40Z", "--until", "1793590100"]),
        ids(&["--since", "1793590000", "--until", "1793590100"])
    );
    let o = run(&["conns", "--case", &case, "--since", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not a time"), "{}", text(&o));
}

/// `events --since/--until` keep the events of a time window; the two halves split at
/// one event's time cover every event, that one in both.
#[test]
fn events_filter_by_time_window() {
    let dir = tempfile::tempdir().unwrap();
    let case = new_case(dir.path());
    let o = ingest(&case, "ids", &corpus("suricata-eve/surevego/eve.json"));
    assert!(o.status.success(), "{}", text(&o));
    let ts = |extra: &[&str]| -> Vec<String> {
        listed("events", &case, extra)
            .iter()
            .map(|v| v["ts"].as_str().unwrap().to_string())
            .collect()
    };
    let mut all = ts(&[]);
    all.sort();
    assert!(all.len() >= 3, "{all:?}");
    let mid = all[all.len() / 2].clone();
    let before = ts(&["--until", &mid]);
    let after = ts(&["--since", &mid]);
    assert!(before.iter().all(|t| *t <= mid) && after.iter().all(|t| *t >= mid));
    let at = all.iter().filter(|t| **t == mid).count();
    assert_eq!(before.len() + after.len(), all.len() + at);
    assert!(!before.is_empty() && !after.is_empty() && before.len() < all.len());
}
