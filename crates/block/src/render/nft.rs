//! nftables: an `nft -f` script. One `inet` table (IPv4 and IPv6 in one place),
//! two interval sets with per-element timeouts (so prefixes and hosts mix and each
//! entry lapses on its own), and `counter drop` rules in the input and forward
//! hooks. The script deletes and re-creates the table, and `nft -f` applies a file
//! as one transaction, so loading it replaces the old rules atomically (nothing is
//! ever half loaded, and a 200,000-entry set loads in one go).

use std::fmt::Write;

use super::{active, expired, header, remaining_s, rule_comment, RenderContext};
use crate::plan::Plan;

/// Table name the renderings use.
pub const TABLE: &str = "relaytrace_block";

fn set_decl(out: &mut String, name: &str, ty: &str) {
    let _ = writeln!(out, "\tset {name} {{");
    let _ = writeln!(out, "\t\ttype {ty}");
    let _ = writeln!(out, "\t\tflags interval, timeout");
}

/// The script for the rules in force at `cx.now_ns`.
pub fn render(plan: &Plan, cx: &RenderContext) -> String {
    let rules = active(plan, cx.now_ns);
    let mut out = String::from("#!/usr/sbin/nft -f\n");
    out.push_str(&header(plan, cx, "#"));
    let _ = writeln!(
        out,
        "# {} rule(s); timeouts count from the time above. One transaction: the table is replaced as a whole.",
        rules.len()
    );
    let _ = writeln!(out, "table inet {TABLE}");
    let _ = writeln!(out, "delete table inet {TABLE}");
    let _ = writeln!(out, "table inet {TABLE} {{");
    for (name, ty, v6) in [
        ("block4", "ipv4_addr", false),
        ("block6", "ipv6_addr", true),
    ] {
        set_decl(&mut out, name, ty);
        let elems: Vec<String> = rules
            .iter()
            .filter(|r| r.prefix.is_v6() == v6)
            .map(|r| {
                format!(
                    "\t\t\t{} timeout {}s comment \"{}\"",
                    r.prefix,
                    remaining_s(r, cx.now_ns),
                    rule_comment(r)
                )
            })
            .collect();
        if !elems.is_empty() {
            out.push_str("\t\telements = {\n");
            out.push_str(&elems.join(",\n"));
            out.push_str("\n\t\t}\n");
        }
        out.push_str("\t}\n");
    }
    for (chain, hook) in [("input", "input"), ("forward", "forward")] {
        let _ = writeln!(out, "\tchain {chain} {{");
        let _ = writeln!(
            out,
            "\t\ttype filter hook {hook} priority filter - 10; policy accept;"
        );
        out.push_str("\t\tip saddr @block4 counter drop\n");
        out.push_str("\t\tip6 saddr @block6 counter drop\n");
        out.push_str("\t}\n");
    }
    out.push_str("}\n");
    out
}

/// The script removing the rules that have run out by `cx.now_ns`. Each element is
/// first (re-)added with a one-second timeout, then deleted, in one transaction:
/// `add` does not fail on an element already there and `delete` then always finds
/// one, so the removal applies whether or not the kernel already timed it out.
pub fn removal(plan: &Plan, cx: &RenderContext) -> String {
    let gone = expired(plan, cx.now_ns);
    let mut out = String::from("#!/usr/sbin/nft -f\n");
    out.push_str(&header(plan, cx, "#"));
    let _ = writeln!(out, "# removal of {} expired rule(s)", gone.len());
    let _ = writeln!(out, "add table inet {TABLE}");
    for (name, ty) in [("block4", "ipv4_addr"), ("block6", "ipv6_addr")] {
        let _ = writeln!(
            out,
            "add set inet {TABLE} {name} {{ type {ty}; flags interval, timeout; }}"
        );
    }
    for r in &gone {
        let set = if r.prefix.is_v6() { "block6" } else { "block4" };
        let _ = writeln!(
            out,
            "add element inet {TABLE} {set} {{ {} timeout 1s }}",
            r.prefix
        );
        let _ = writeln!(out, "delete element inet {TABLE} {set} {{ {} }}", r.prefix);
    }
    out
}
