//! `relaytrace trace` through the real binary on the demo case: the printed JSON is
//! the recorded finding, byte for byte, and `demo` ends with the chain.

use std::fs;

mod common;
use common::{run, stdout};

#[test]
fn demo_then_trace_json_is_the_recorded_finding() {
    let tmp = tempfile::tempdir().unwrap();
    let case = tmp.path().join("demo-case");
    let case = case.to_str().unwrap();
    let demo = stdout(&run(&["demo", "--case", case, "--offline"]));
    assert!(demo.contains("== stage 1 trace"), "{demo}");
    // Stage 1 (victim's network and relay2): the chain ends at relay1.
    assert!(
        demo.contains("no data from the network of 1.24.16.10 beyond this hop"),
        "{demo}"
    );
    // Stage 2 (relay1's capture added): it reaches the origin, by packet timing.
    assert!(
        demo.contains("link 175.45.178.10 -> 1.24.16.10 -> 200.87.112.10 (packet)"),
        "{demo}"
    );
    assert!(demo.contains("no data from the network of 175.45.178.10 beyond this hop"));

    let json = stdout(&run(&[
        "trace",
        "--case",
        case,
        "--victim",
        "12.133.7.10",
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
    assert_eq!(
        roles,
        ["victim", "relay", "relay", "origin", "unknown-beyond"]
    );
    // The demo already recorded this finding (stage 2, same parameters): one of its two
    // findings is this output, byte for byte, and no third was added.
    let files: Vec<_> = fs::read_dir(tmp.path().join("demo-case/findings"))
        .unwrap()
        .map(|e| e.unwrap().path())
        // The demo also writes assess-*.json and block-plan-*.json there.
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("trace-")
        })
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().any(|f| fs::read_to_string(f).unwrap() == json));
    let verify = stdout(&run(&["case", "verify", case]));
    assert!(verify.contains("OK"), "{verify}");
}

#[test]
fn trace_help_has_an_example_and_bad_victim_is_refused() {
    let help = stdout(&run(&["trace", "--help"]));
    assert!(help.contains("Example:"), "{help}");
    let tmp = tempfile::tempdir().unwrap();
    let case = tmp.path().join("demo-case");
    stdout(&run(&[
        "demo",
        "--case",
        case.to_str().unwrap(),
        "--offline",
    ]));
    let o = run(&[
        "trace",
        "--case",
        case.to_str().unwrap(),
        "--victim",
        "203.0.113.0/33",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an address or CIDR prefix"));
    // A parameter out of range is refused, named by its flag (not the library's field).
    let refused = |flag: &str, value: &str, says: &str| {
        let c = case.to_str().unwrap();
        let o = run(&["trace", "--case", c, "--victim", "12.133.7.10", flag, value]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{flag} {value}: {err}");
    };
    refused(
        "--null-offsets",
        "0",
        "--null-offsets: must be between 1 and 100000",
    );
    // Below the smallest bound the grid can use (10 ms).
    refused(
        "--max-delay",
        "0.001",
        "--max-delay must be between 0.01 and 60 seconds",
    );

    // No chain says why: an address no connection goes to, or one that connections
    // reach but no relay link does (relay1 of the demo, reached from the origin only).
    let c = case.to_str().unwrap();
    let none = stdout(&run(&["trace", "--case", c, "--victim", "198.18.0.1"]));
    assert!(none.contains("none of the case's"), "{none}");
    assert!(none.contains("goes to the victim 198.18.0.1/32"), "{none}");
    let direct = stdout(&run(&["trace", "--case", c, "--victim", "1.24.16.10"]));
    assert!(
        direct.contains("go to the victim 1.24.16.10/32, none of them a relay's outbound"),
        "{direct}"
    );
}
