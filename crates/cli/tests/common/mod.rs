//! Helpers shared by the CLI's integration tests: run the real `relaytrace` binary,
//! never against the machine's own data directory (a snapshot installed by `demo` or
//! `data update` would make `ingest` enrich and change what the tests count).

#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// An empty data directory shared by the tests (nothing is ever installed in it:
/// commands that need data name `--data-dir` explicitly).
pub fn no_data_dir() -> PathBuf {
    std::env::temp_dir().join("relaytrace-tests-no-data")
}

/// The binary, with `RELAYTRACE_DATA` pointing at [`no_data_dir`].
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_relaytrace"));
    c.env("RELAYTRACE_DATA", no_data_dir());
    c
}

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run relaytrace")
}

/// Standard output and standard error together, for messages and assertions.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Standard output of a run that must have succeeded (else the test fails with both
/// streams).
pub fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `args`, requires success, returns standard output.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "{args:?} failed: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A path inside the repository, as text.
pub fn repo(rel: &str) -> String {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// Starts the binary with `args` and kills it (SIGKILL) as soon as a file whose name
/// `writing` accepts appears in `scratch` (the run is then mid-way by construction).
/// True when it was killed, false when it ended first (within two minutes).
pub fn kill_while_writing(args: &[&str], scratch: &Path, writing: impl Fn(&str) -> bool) -> bool {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start relaytrace");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut killed = false;
    while Instant::now() < deadline {
        let seen = fs::read_dir(scratch).is_ok_and(|d| {
            d.filter_map(Result::ok)
                .any(|e| writing(&e.file_name().to_string_lossy()))
        });
        if seen {
            child.kill().expect("kill relaytrace"); // SIGKILL on Unix
            killed = true;
            break;
        }
        if child.try_wait().expect("poll relaytrace").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.wait().expect("reap relaytrace");
    killed
}
