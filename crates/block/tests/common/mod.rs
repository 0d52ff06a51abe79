//! Shared by the enforcement tests: the gate for tests needing root and real tools,
//! a plan over private test addresses, and network namespaces that clean up.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use relaytrace_block::inputs::Finding;
use relaytrace_block::plan::{build, PlanInputs};
use relaytrace_block::policy::{load_policy, DEFAULT_POLICY};
use relaytrace_block::render::RenderContext;
use relaytrace_block::{plan_bytes, Plan};
use serde_json::json;

/// True when the tools exist and we are root. Otherwise: a failure when CI asks for
/// network tests (`RELAYTRACE_REQUIRE_NET_TESTS=1`), else a printed skip.
pub fn require(test: &str, tools: &[&str], need_root: bool) -> bool {
    let mut missing: Vec<String> = tools
        .iter()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|t| t.to_string())
        .collect();
    if need_root {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        if uid.as_deref().ok() != Some("0") {
            missing.push("root privileges".into());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "{test}: needs {} (run .ci/install-block.sh as root)",
        missing.join(", ")
    );
    if std::env::var("RELAYTRACE_REQUIRE_NET_TESTS").as_deref() == Ok("1") {
        panic!("{msg}; RELAYTRACE_REQUIRE_NET_TESTS=1 makes this a failure");
    }
    eprintln!("SKIPPED {msg}");
    false
}

/// Runs `sh -c cmd`, returning its output.
pub fn sh(cmd: &str) -> Output {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("run sh")
}

/// Runs `sh -c cmd` and panics with its output unless it succeeds.
pub fn sh_ok(cmd: &str) -> String {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Now, ns since the epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// A plan with one chain per (relay, victim) pair (origin `origin`), strong links,
/// the given expiry for hosts, no builtin allowlist (the tests' own private
/// addresses are the targets), and `policy_edit` applied to the default policy.
pub fn plan_for(
    pairs: &[(&str, &str)],
    origin: &str,
    expiry: &str,
    now_ns: i64,
    policy_edit: impl Fn(String) -> String,
) -> (Plan, RenderContext) {
    let chains: Vec<_> = pairs
        .iter()
        .map(|(relay, victim)| {
            json!({
                "hops": [
                    {"ip": victim, "role": "victim"},
                    {"ip": relay, "role": "relay"},
                    {"ip": origin, "role": "origin"},
                    {"ip": null, "role": "unknown-beyond"}
                ],
                "links": [{"from": origin, "relay": relay, "to": victim, "method": "flow",
                           "score": 0.9, "false_match_probability": 0.001,
                           "conn_ids": [], "inbound_ids": [], "outbound_ids": []}],
                "sessions": 1, "stopped": null
            })
        })
        .collect();
    let trace = Finding {
        path: "findings/trace-test.json".into(),
        sha256: "0".repeat(64),
        json: json!({"chains": chains, "method": "flow"}),
    };
    let text = policy_edit(
        DEFAULT_POLICY
            .replace("builtin = true", "builtin = false")
            .replace("expiry = \"7d\"", &format!("expiry = \"{expiry}\"")),
    );
    let policy = load_policy(&text, "test-policy").unwrap();
    let plan = build(&PlanInputs {
        trace: &trace,
        assess: None,
        info: &BTreeMap::new(),
        conns: &[],
        connections: 0,
        policy: &policy,
        now_ns,
        asn_expansion: None,
    });
    let sha = relaytrace_store::digest::sha256_hex(&plan_bytes(&plan));
    let cx = RenderContext {
        plan_sha256: sha,
        now_ns,
    };
    (plan, cx)
}

/// Four namespaces: `b` (blocked source) and `a` (allowed source) each wired to
/// `m` (the middle host, which forwards and enforces), and `m` wired to `v` (the
/// victim). Addresses: 10.200.{1,2,3}.0/24 and fd20:200:{1,2,3}::/64, `m` being .1
/// on each link. Dropped namespaces take their links with them.
pub struct Net {
    /// Name prefix, unique per test process and topology.
    pub p: String,
}

/// Host addresses of the topology.
pub const B4: &str = "10.200.1.2";
/// Allowed source.
pub const A4: &str = "10.200.2.2";
/// Victim.
pub const V4: &str = "10.200.3.2";
/// Blocked source, IPv6.
pub const B6: &str = "fd20:200:1::2";
/// Allowed source, IPv6.
pub const A6: &str = "fd20:200:2::2";
/// Victim, IPv6.
pub const V6: &str = "fd20:200:3::2";

impl Net {
    /// Builds the topology; `tag` keeps concurrent tests apart.
    pub fn new(tag: &str) -> Net {
        let p = format!("rb{}{tag}", std::process::id() % 100_000);
        let net = Net { p: p.clone() };
        for n in ["m", "b", "a", "v"] {
            sh_ok(&format!(
                "ip netns add {p}{n} && ip -n {p}{n} link set lo up"
            ));
        }
        for (n, i) in [("b", 1), ("a", 2), ("v", 3)] {
            sh_ok(&format!(
                "ip link add {p}m{n} netns {p}m type veth peer name {p}{n}m netns {p}{n} && \
                 ip -n {p}m addr add 10.200.{i}.1/24 dev {p}m{n} && \
                 ip -n {p}m addr add fd20:200:{i}::1/64 dev {p}m{n} nodad && \
                 ip -n {p}{n} addr add 10.200.{i}.2/24 dev {p}{n}m && \
                 ip -n {p}{n} addr add fd20:200:{i}::2/64 dev {p}{n}m nodad && \
                 ip -n {p}m link set {p}m{n} up && ip -n {p}{n} link set {p}{n}m up && \
                 ip -n {p}{n} route add default via 10.200.{i}.1 && \
                 ip -n {p}{n} -6 route add default via fd20:200:{i}::1"
            ));
        }
        sh_ok(&format!(
            "ip netns exec {p}m sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1"
        ));
        // IPv6 needs the routers' link-local addresses past duplicate address
        // detection (about a second) before neighbour discovery answers: wait until
        // every source reaches the victim, and fail if the topology never works.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let ready = ["b", "a"]
                .iter()
                .all(|n| net.reaches(n, V4) && net.reaches(n, V6));
            if ready {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "test topology {p}: sources cannot reach the victim before any rule"
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        net
    }

    /// Runs `cmd` in namespace `n` (`m`, `b`, `a`, `v`).
    pub fn exec(&self, n: &str, cmd: &str) -> Output {
        sh(&format!("ip netns exec {}{n} sh -c '{cmd}'", self.p))
    }

    /// Whether `from` reaches `to` (ICMP echo, two tries).
    pub fn reaches(&self, from: &str, to: &str) -> bool {
        let fam = if to.contains(':') { "-6" } else { "-4" };
        self.exec(from, &format!("ping {fam} -n -c 2 -i 0.2 -W 1 {to}"))
            .status
            .success()
    }

    /// Applies a script file with `tool` (e.g. `nft -f`, `sh`) in the middle host.
    pub fn apply_in_middle(&self, tool: &str, script: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules");
        std::fs::write(&path, script).unwrap();
        let o = sh(&format!(
            "ip netns exec {}m {tool} {}",
            self.p,
            path.display()
        ));
        assert!(
            o.status.success(),
            "{tool} failed: {}{}\n--- script ---\n{script}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in ["m", "b", "a", "v"] {
            let _ = sh(&format!("ip netns del {}{n} 2>/dev/null", self.p));
        }
    }
}
