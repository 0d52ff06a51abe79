//! iptables + ipset, for hosts without nftables: a POSIX shell script that loads
//! two `hash:net` sets (IPv4, IPv6) with per-entry timeouts through `ipset restore`
//! and one chain per family that drops their sources, hooked into INPUT and
//! FORWARD once. `maxelem` is raised above the plan's size: ipset's default limit
//! (65,536) is smaller than shared blocklists routinely are.

use std::fmt::Write;

use super::{active, expired, header, remaining_s, RenderContext};
use crate::plan::Plan;

/// Set names (IPv4, IPv6).
pub const SETS: [&str; 2] = ["relaytrace-block4", "relaytrace-block6"];
/// Chain name in both families.
pub const CHAIN: &str = "RELAYTRACE-BLOCK";

fn maxelem(n: usize) -> usize {
    (n.saturating_mul(2)).next_power_of_two().max(65_536)
}

/// The script for the rules in force. The sets are filled under a temporary name
/// and swapped in, so the live set changes in one step.
pub fn render(plan: &Plan, cx: &RenderContext) -> String {
    let rules = active(plan, cx.now_ns);
    let mut out = String::from("#!/bin/sh\n");
    out.push_str(&header(plan, cx, "#"));
    out.push_str("set -e\n");
    out.push_str("ipset restore <<'EOF'\n");
    for (set, v6) in [(SETS[0], false), (SETS[1], true)] {
        let family = if v6 { "inet6" } else { "inet" };
        let n = rules.iter().filter(|r| r.prefix.is_v6() == v6).count();
        let _ = writeln!(
            out,
            "create {set} hash:net family {family} timeout 0 maxelem {} -exist",
            maxelem(n)
        );
        // Fill a fresh set and swap it in: the live set changes in one step.
        let _ = writeln!(
            out,
            "create {set}-new hash:net family {family} timeout 0 maxelem {} -exist",
            maxelem(n)
        );
        let _ = writeln!(out, "flush {set}-new");
        for r in rules.iter().filter(|r| r.prefix.is_v6() == v6) {
            let _ = writeln!(
                out,
                "add {set}-new {} timeout {} -exist",
                r.prefix,
                remaining_s(r, cx.now_ns)
            );
        }
        let _ = writeln!(out, "swap {set}-new {set}");
        let _ = writeln!(out, "destroy {set}-new");
    }
    out.push_str("EOF\n");
    for (tool, set) in [("iptables", SETS[0]), ("ip6tables", SETS[1])] {
        let _ = writeln!(out, "{tool}-restore --noflush <<'EOF'");
        out.push_str("*filter\n");
        let _ = writeln!(out, ":{CHAIN} - [0:0]");
        let _ = writeln!(out, "-A {CHAIN} -m set --match-set {set} src -j DROP");
        out.push_str("COMMIT\nEOF\n");
        for hook in ["INPUT", "FORWARD"] {
            let _ = writeln!(
                out,
                "{tool} -C {hook} -j {CHAIN} 2>/dev/null || {tool} -I {hook} -j {CHAIN}"
            );
        }
    }
    out
}

/// Removes the expired entries from the sets (`-exist`: no error if the kernel
/// already timed them out).
pub fn removal(plan: &Plan, cx: &RenderContext) -> String {
    let mut out = String::from("#!/bin/sh\n");
    out.push_str(&header(plan, cx, "#"));
    out.push_str("set -e\nipset restore <<'EOF'\n");
    for r in expired(plan, cx.now_ns) {
        let set = if r.prefix.is_v6() { SETS[1] } else { SETS[0] };
        let _ = writeln!(out, "del {set} {} -exist", r.prefix);
    }
    out.push_str("EOF\n");
    out
}
