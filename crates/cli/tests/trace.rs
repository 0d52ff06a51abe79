//! `relaytrace trace` through the real binary on the demo case: the printed JSON is
//! the recorded finding, byte for byte, and `demo` ends with the chain.

use std::fs;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relaytrace"))
        .args(args)
        // No enrichment snapshot: hops stay unenriched whatever this machine has.
        .env(
            "RELAYTRACE_DATA",
            std::env::temp_dir().join("relaytrace-tests-no-data"),
        )
        .output()
        .expect("run relaytrace")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn demo_then_trace_json_is_the_recorded_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let case = tmp.path().join("demo-case");
    let case = case.to_str().unwrap();
    let demo = stdout(&run(&["demo", "--case", case]));
    assert!(demo.contains("== trace"), "{demo}");
    assert!(
        demo.contains("link 192.0.2.66 -> 198.51.100.23 -> 203.0.113.7"),
        "{demo}"
    );
    assert!(demo.contains("no data from the network of 192.0.2.66 beyond this hop"));

    let json = stdout(&run(&[
        "trace",
        "--case",
        case,
        "--victim",
        "203.0.113.7",
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let roles: Vec<&str> = v["chains"][0]["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["victim", "relay", "origin", "unknown-beyond"]);
    // The demo already recorded this finding (same parameters): same file, same bytes.
    let files: Vec<_> = fs::read_dir(tmp.path().join("demo-case/findings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        // The demo's assess step writes assess-*.json next to it.
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("trace-")
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(fs::read_to_string(&files[0]).unwrap(), json);
    let verify = stdout(&run(&["case", "verify", case]));
    assert!(verify.contains("OK"), "{verify}");
}

#[test]
fn trace_help_has_an_example_and_bad_victim_is_refused() {
    let help = stdout(&run(&["trace", "--help"]));
    assert!(help.contains("Example:"), "{help}");
    let tmp = tempfile::tempdir().unwrap();
    let case = tmp.path().join("demo-case");
    stdout(&run(&["demo", "--case", case.to_str().unwrap()]));
    let o = run(&[
        "trace",
        "--case",
        case.to_str().unwrap(),
        "--victim",
        "203.0.113.0/33",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an address or CIDR prefix"));
}
