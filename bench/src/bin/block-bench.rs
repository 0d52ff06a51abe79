//! block-bench: a large block plan rendered for nftables and loaded in one atomic
//! `nft -f` transaction, next to per-entry `nft add element` calls (the way
//! per-decision bouncers update sets).
//!
//!   `block-bench [ENTRIES] [SAMPLE]`     (defaults 200000 and 2000; root)
//!
//! Everything happens in a network namespace the bench creates and deletes; no
//! packet is sent. The entries are non-adjacent /32s (every other address from
//! 44.0.0.0, so the exact cover cannot merge them: ENTRIES set elements). Per-entry
//! calls are timed on SAMPLE entries and the time for ENTRIES is extrapolated
//! linearly from that rate (printed as such).

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Instant;

use relaytrace_block::collateral::Collateral;
use relaytrace_block::plan::{InputRef, Plan, Rule, TargetKind, PLAN_FORMAT};
use relaytrace_block::policy::default_policy;
use relaytrace_block::render::{render, RenderContext, Target};
use relaytrace_block::Prefix;

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", cmd])
        .status()
        .is_ok_and(|s| s.success())
}

fn plan(entries: usize, now_ns: i64) -> Plan {
    let pol = default_policy();
    let base = u32::from(Ipv4Addr::new(44, 0, 0, 0));
    let rules = (0..entries)
        .map(|i| {
            let a = IpAddr::V4(Ipv4Addr::from(base + 2 * i as u32));
            let prefix = Prefix::host(a);
            Rule {
                prefix,
                kinds: vec![TargetKind::Relay],
                targets: vec![prefix.to_string()],
                expires_ns: now_ns + 7 * 86_400_000_000_000,
                victims: Vec::new(),
                collateral: Collateral::default(),
            }
        })
        .collect();
    Plan {
        format: PLAN_FORMAT.into(),
        created_ns: now_ns,
        policy_sha256: pol.sha256.clone(),
        policy_source: pol.source.clone(),
        trace: InputRef {
            path: "bench".into(),
            sha256: "0".repeat(64),
        },
        assess: None,
        victims: Vec::new(),
        decisions: Vec::new(),
        rules,
        overblock_addresses: "0".into(),
        comparison: Vec::new(),
        connections: 0,
        flowspec: pol.policy.flowspec.clone(),
        bgp: pol.policy.bgp.clone(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let entries: usize = args.get(1).map_or(200_000, |s| s.parse().expect("ENTRIES"));
    let sample: usize = args.get(2).map_or(2_000, |s| s.parse().expect("SAMPLE"));
    let now_ns = 1_764_460_800_000_000_000; // fixed: the rendering is deterministic
    let dir = tempfile::tempdir().expect("temp dir");
    let ns = format!("rtblockbench{}", std::process::id() % 10_000);
    assert!(
        sh(&format!("ip netns add {ns}")),
        "ip netns add (root needed)"
    );
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            sh(&format!("ip netns del {}", self.0));
        }
    }
    let _cleanup = Cleanup(ns.clone());

    let p = plan(entries, now_ns);
    let cx = RenderContext {
        plan_sha256: "b".repeat(64),
        now_ns,
    };
    let t = Instant::now();
    let script = render(&p, Target::Nftables, &cx).expect("render");
    let render_s = t.elapsed().as_secs_f64();
    let file = dir.path().join("block.nft");
    fs::write(&file, &script).expect("write script");

    let t = Instant::now();
    assert!(
        sh(&format!("ip netns exec {ns} nft -f {}", file.display())),
        "nft -f failed"
    );
    let load_s = t.elapsed().as_secs_f64();
    // Check the kernel holds every element.
    let out = Command::new("sh")
        .args([
            "-c",
            &format!("ip netns exec {ns} nft list set inet relaytrace_block block4"),
        ])
        .output()
        .expect("nft list");
    let listed = String::from_utf8_lossy(&out.stdout)
        .matches("expires")
        .count();

    // Per-entry: an empty table, then one `nft add element` process per entry.
    let empty = plan(0, now_ns);
    let efile = dir.path().join("empty.nft");
    fs::write(
        &efile,
        render(&empty, Target::Nftables, &cx).expect("render"),
    )
    .expect("write");
    assert!(sh(&format!(
        "ip netns exec {ns} nft -f {}",
        efile.display()
    )));
    // One shell inside the namespace runs one `nft` process per entry, so the time
    // is nft's own per-call cost (process start, netlink transaction), not ours.
    let calls: String = p
        .rules
        .iter()
        .take(sample)
        .map(|r| {
            format!(
                "nft add element inet relaytrace_block block4 '{{ {} timeout 604800s }}'\n",
                r.prefix
            )
        })
        .collect();
    let cfile = dir.path().join("calls.sh");
    fs::write(&cfile, format!("set -e\n{calls}")).expect("write calls");
    let t = Instant::now();
    assert!(
        sh(&format!("ip netns exec {ns} sh {}", cfile.display())),
        "nft add element failed"
    );
    let per_s = t.elapsed().as_secs_f64();
    let n = sample.min(entries) as f64;
    let rate = n / per_s;
    println!("entries:                          {entries}");
    println!(
        "render (nftables script):         {render_s:.3} s, {:.1} MB",
        script.len() as f64 / 1e6
    );
    println!("nft -f, one atomic transaction:   {load_s:.3} s  ({listed} elements listed back)");
    println!(
        "nft add element, one per call:    {per_s:.3} s for a sample of {n} = {rate:.0} entries/s"
    );
    println!(
        "  extrapolated to {entries} entries: {:.0} s  (linear extrapolation from the sample, not measured)",
        entries as f64 / rate
    );
    println!(
        "one transaction vs per-entry calls: {:.0}x faster",
        (entries as f64 / rate) / load_s
    );
}
