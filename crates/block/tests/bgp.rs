//! The BGP renderings read by real speakers: GoBGP (`gobgpd` on 127.0.0.1, API on
//! an unprivileged port, no BGP listener) loads the FlowSpec and RTBH routes and
//! gives them back from its RIB, then withdraws them from the expiry rendering;
//! BIRD 2 (`bird -p`) and ExaBGP (`--validate`) parse their configurations, and
//! reject a corrupted one (so the check can fail).

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::*;
use relaytrace_block::render::{expire, render, RenderContext, Speaker, Target};
use serde_json::Value;

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rib(port: u16, family: &str) -> Value {
    let out = sh_ok(&format!(
        "gobgp -u 127.0.0.1 -p {port} global rib -a {family} -j"
    ));
    serde_json::from_str(out.trim()).unwrap_or(Value::Null)
}

fn rib_keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn gobgpd_loads_flowspec_and_rtbh_and_withdraws_them() {
    if !require("GoBGP FlowSpec/RTBH", &["gobgpd", "gobgp"], false) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("gobgpd.toml");
    // port = -1: no BGP listener at all; only the gRPC API on loopback.
    std::fs::write(
        &conf,
        "[global.config]\n  as = 64512\n  router-id = \"127.0.0.1\"\n  port = -1\n",
    )
    .unwrap();
    let port = free_port();
    let _d = Daemon(
        Command::new("gobgpd")
            .args(["-f", conf.to_str().unwrap(), "--api-hosts"])
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gobgpd"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sh(&format!("gobgp -u 127.0.0.1 -p {port} global"))
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "gobgpd did not come up");
        sleep(Duration::from_millis(100));
    }
    let start = now_ns();
    let (plan, cx) = plan_for(
        &[(B4, V4), ("10.200.1.3", V4), (B6, V6)],
        "10.200.9.9",
        "1d",
        start,
        |p| p.replace("destination = \"any\"", "destination = \"victim\""),
    );
    let args = format!("GOBGP_ARGS='-u 127.0.0.1 -p {port}'");
    let run = |script: String| {
        let path = dir.path().join("load.sh");
        std::fs::write(&path, script).unwrap();
        sh_ok(&format!("{args} sh {}", path.display()));
    };
    run(render(&plan, Target::FlowspecGobgp, &cx).unwrap());
    run(render(&plan, Target::Rtbh(Speaker::Gobgp), &cx).unwrap());

    // FlowSpec: source and destination components, discard action (traffic-rate 0).
    // The two adjacent relays .2 and .3 are one /31 in the exact cover.
    let fs4 = rib(port, "ipv4-flowspec");
    let keys = rib_keys(&fs4);
    assert_eq!(keys.len(), 2, "{fs4:#}");
    for src in ["10.200.1.2/31", "10.200.9.9/32"] {
        assert!(
            keys.iter().any(|k| k.contains(&format!("source: {src}"))
                && k.contains("destination: 10.200.3.2/32")),
            "{src} missing: {keys:?}"
        );
    }
    let text = fs4.to_string();
    assert!(
        text.contains("\"subtype\":6") && text.contains("\"rate\":0"),
        "no discard: {text}"
    );
    let fs6 = rib_keys(&rib(port, "ipv6-flowspec"));
    assert_eq!(fs6.len(), 1, "{fs6:?}");
    assert!(fs6[0].contains("fd20:200:1::2/128"), "{fs6:?}");

    // RTBH: the prefixes with BLACKHOLE (65535:666) and NO_EXPORT.
    let u4 = rib(port, "ipv4");
    let mut k4 = rib_keys(&u4);
    k4.sort();
    assert_eq!(k4, ["10.200.1.2/31", "10.200.9.9/32"]);
    let comms = u4["10.200.1.2/31"][0]["attrs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"] == 8)
        .expect("communities attribute")["communities"]
        .clone();
    let blackhole = (65535u64 << 16) | 666;
    let no_export = (65535u64 << 16) | 65281;
    assert_eq!(comms, serde_json::json!([blackhole, no_export]));
    assert_eq!(rib_keys(&rib(port, "ipv6")), ["fd20:200:1::2/128"]);

    // Expiry withdraws them.
    let later = RenderContext {
        now_ns: start + 2 * 86_400_000_000_000,
        ..cx
    };
    run(expire(&plan, Target::FlowspecGobgp, &later).unwrap());
    run(expire(&plan, Target::Rtbh(Speaker::Gobgp), &later).unwrap());
    for fam in ["ipv4-flowspec", "ipv6-flowspec", "ipv4", "ipv6"] {
        assert!(rib_keys(&rib(port, fam)).is_empty(), "{fam} not withdrawn");
    }

    // Rate-limit instead of discard: traffic-rate carries the policy's bytes/s.
    let (plan, cx) = parse_plan();
    run(render(&plan, Target::FlowspecGobgp, &cx).unwrap());
    let text = rib(port, "ipv4-flowspec").to_string();
    assert!(text.contains("\"rate\":125000"), "no rate-limit: {text}");
}

fn check(tool: &str, cmd: impl Fn(&str) -> String, text: &str, corrupt: (&str, &str)) {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.conf");
    std::fs::write(&good, text).unwrap();
    let o = sh(&cmd(good.to_str().unwrap()));
    assert!(
        o.status.success(),
        "{tool} rejected the rendering: {}{}\n{text}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains(corrupt.0), "{tool}: nothing to corrupt");
    let bad = dir.path().join("bad.conf");
    std::fs::write(&bad, text.replacen(corrupt.0, corrupt.1, 1)).unwrap();
    assert!(
        !sh(&cmd(bad.to_str().unwrap())).status.success(),
        "{tool} accepted a corrupted configuration"
    );
}

fn parse_plan() -> (relaytrace_block::Plan, RenderContext) {
    plan_for(&[(B4, V4), (B6, V6)], "10.200.9.9", "1d", now_ns(), |p| {
        p.replace("action = \"discard\"", "action = \"rate-limit\"")
            .replace(
                "rate_limit_bytes_per_second = 0",
                "rate_limit_bytes_per_second = 125000",
            )
            .replace("destination = \"any\"", "destination = \"victim\"")
    })
}

#[test]
fn bird_parses_flowspec_and_rtbh() {
    if !require("BIRD config check", &["bird"], false) {
        return;
    }
    let (plan, cx) = parse_plan();
    let bird = |f: &str| format!("bird -p -c {f}");
    let fs = render(&plan, Target::FlowspecBird, &cx).unwrap();
    assert!(fs.contains("src 10.200.1.2/32; dst 10.200.3.2/32;"), "{fs}");
    // 125000 bytes/s as an IEEE float: 0x47f42400.
    assert!(fs.contains("0x80060000, 0x47f42400"), "{fs}");
    check(
        "bird",
        bird,
        &fs,
        ("src 10.200.1.2/32", "src 10.200.1.2/33"),
    );
    let rtbh = render(&plan, Target::Rtbh(Speaker::Bird), &cx).unwrap();
    // The policy's discard next hop, as GoBGP and ExaBGP get it (it had none).
    let nh = format!("bgp_next_hop = {};", plan.bgp.rtbh_next_hop_v4);
    assert!(rtbh.contains(&nh), "{rtbh}");
    assert!(rtbh.contains("next hop keep;"), "{rtbh}");
    check("bird", bird, &rtbh, ("blackhole {", "blackhold {"));
}

#[test]
fn exabgp_validates_flowspec_and_rtbh() {
    if !require("ExaBGP config check", &["exabgp"], false) {
        return;
    }
    let (plan, cx) = parse_plan();
    let exa = |f: &str| format!("timeout 60 exabgp --validate {f} >/dev/null 2>&1");
    let fs = render(&plan, Target::FlowspecExabgp, &cx).unwrap();
    assert!(fs.contains("rate-limit 125000;"), "{fs}");
    check(
        "exabgp",
        exa,
        &fs,
        ("rate-limit 125000;", "rate-limits 125000;"),
    );
    let rtbh = render(&plan, Target::Rtbh(Speaker::Exabgp), &cx).unwrap();
    assert!(
        rtbh.contains("community [ 65535:666 65535:65281 ]"),
        "{rtbh}"
    );
    check("exabgp", exa, &rtbh, ("next-hop", "next-hops"));
}

/// With `destination = "victim"`, a rule whose victims are all of the other address
/// family gets no route: one without destination would drop its traffic to everyone.
/// (Needs no speaker: the renderings are read.)
#[test]
fn a_victim_destination_never_widens_a_rule_of_the_other_family() {
    let (plan, cx) = plan_for(
        &[
            ("fd20:200:1::2", "10.200.3.2"),
            ("10.200.1.2", "10.200.3.2"),
        ],
        "10.200.9.9",
        "1d",
        now_ns(),
        |p| p.replace("destination = \"any\"", "destination = \"victim\""),
    );
    for target in [
        Target::FlowspecGobgp,
        Target::FlowspecExabgp,
        Target::FlowspecBird,
    ] {
        let text = render(&plan, target, &cx).unwrap();
        let routes: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("fd20:200:1::2") && !l.trim_start().starts_with('#'))
            .collect();
        assert!(routes.is_empty(), "{target:?}: {routes:?}\n{text}");
        assert!(text.contains("not rendered"), "{target:?}: {text}");
        assert!(
            text.contains("10.200.1.2"),
            "{target:?}: the IPv4 rule stays"
        );
    }
}
