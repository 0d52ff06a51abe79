//! BGP renderings: FlowSpec (RFC 8955) and RTBH (RFC 7999) for GoBGP, ExaBGP and
//! BIRD 2.
//!
//! FlowSpec rules match the blocked source prefix, and the victim as destination
//! when the policy's `flowspec.destination` is `victim`; the action is the
//! traffic-rate extended community (RFC 8955 section 7.3: type 0x8006, a 4-byte
//! IEEE float of bytes per second, 0 meaning discard). RTBH announces the prefix
//! with the BLACKHOLE community 65535:666 (RFC 7999 section 5) and NO_EXPORT
//! (65535:65281), which RFC 7999 section 3.2 recommends so the black hole stays in
//! the neighbouring AS, towards a next hop the router maps to a discard route.

use std::fmt::Write;

use super::{active, header, rule_comment, RenderContext};
use crate::plan::{Plan, Rule};
use crate::prefix::Prefix;

/// Add or withdraw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Announce.
    Add,
    /// Withdraw.
    Del,
}

impl Verb {
    fn word(self) -> &'static str {
        match self {
            Verb::Add => "add",
            Verb::Del => "del",
        }
    }
}

/// BLACKHOLE (RFC 7999) and NO_EXPORT (RFC 1997) communities.
pub const BLACKHOLE: &str = "65535:666";
/// NO_EXPORT.
pub const NO_EXPORT: &str = "65535:65281";

fn rules_for(plan: &Plan, cx: &RenderContext, verb: Verb) -> Vec<Rule> {
    match verb {
        Verb::Add => active(plan, cx.now_ns).into_iter().cloned().collect(),
        Verb::Del => super::expired(plan, cx.now_ns)
            .into_iter()
            .cloned()
            .collect(),
    }
}

/// Destinations a rule's FlowSpec route matches: one route per destination, or one
/// route without destination when the policy asks for none. None at all when the
/// policy limits rules to the victims and no victim is of the rule's address family:
/// a route without destination would drop the source's traffic to everyone, a wider
/// rule than the policy allows (said in the rendering, see [`not_rendered`]).
fn destinations(plan: &Plan, r: &Rule) -> Vec<Option<Prefix>> {
    if plan.flowspec.destination == "victim" {
        return r
            .victims
            .iter()
            .filter(|v| v.is_v6() == r.prefix.is_v6())
            .map(|v| Some(*v))
            .collect();
    }
    vec![None]
}

/// The comment standing for a rule [`destinations`] gives no route.
fn not_rendered(r: &Rule) -> String {
    format!(
        "not rendered: {} (policy flowspec.destination = \"victim\", and no victim of this address family)",
        rule_comment(r)
    )
}

fn rate(plan: &Plan) -> Option<u64> {
    (plan.flowspec.action == "rate-limit").then_some(plan.flowspec.rate_limit_bytes_per_second)
}

/// `gobgp global rib` commands (`GOBGP` and `GOBGP_ARGS` pick the binary and the
/// API address, e.g. `GOBGP_ARGS="-p 50052"`).
pub fn gobgp_flowspec(plan: &Plan, cx: &RenderContext, verb: Verb) -> String {
    let mut out = String::from("#!/bin/sh\n");
    out.push_str(&header(plan, cx, "#"));
    out.push_str("set -e\nGOBGP=${GOBGP:-gobgp}\n");
    let then = match rate(plan) {
        Some(r) => format!("rate-limit {r}"),
        None => "discard".into(),
    };
    for r in rules_for(plan, cx, verb) {
        let fam = if r.prefix.is_v6() {
            "ipv6-flowspec"
        } else {
            "ipv4-flowspec"
        };
        let ds = destinations(plan, &r);
        if ds.is_empty() {
            let _ = writeln!(out, "# {}", not_rendered(&r));
        }
        for d in ds {
            let dst = d.map(|d| format!(" destination {d}")).unwrap_or_default();
            let _ = writeln!(out, "# {}", rule_comment(&r));
            let _ = writeln!(
                out,
                "\"$GOBGP\" $GOBGP_ARGS global rib -a {fam} {} match source {}{dst} then {then}",
                verb.word(),
                r.prefix
            );
        }
    }
    out
}

/// `gobgp global rib` commands announcing (or withdrawing) black-hole routes.
pub fn gobgp_rtbh(plan: &Plan, cx: &RenderContext, verb: Verb) -> String {
    let mut out = String::from("#!/bin/sh\n");
    out.push_str(&header(plan, cx, "#"));
    out.push_str("set -e\nGOBGP=${GOBGP:-gobgp}\n");
    for r in rules_for(plan, cx, verb) {
        let (fam, nh) = if r.prefix.is_v6() {
            ("ipv6", plan.bgp.rtbh_next_hop_v6)
        } else {
            ("ipv4", plan.bgp.rtbh_next_hop_v4)
        };
        let _ = writeln!(out, "# {}", rule_comment(&r));
        let _ = writeln!(
            out,
            "\"$GOBGP\" $GOBGP_ARGS global rib -a {fam} {} {} nexthop {nh} community {BLACKHOLE},{NO_EXPORT}",
            verb.word(),
            r.prefix
        );
    }
    out
}

fn exabgp_neighbor(plan: &Plan, out: &mut String, families: &str) {
    let b = &plan.bgp;
    let _ = writeln!(out, "neighbor {} {{", b.neighbor);
    let _ = writeln!(out, "\trouter-id {};", b.router_id);
    let _ = writeln!(out, "\tlocal-address {};", b.router_id);
    let _ = writeln!(out, "\tlocal-as {};", b.local_as);
    let _ = writeln!(out, "\tpeer-as {};", b.peer_as);
    let _ = writeln!(out, "\tfamily {{\n{families}\t}}");
}

/// ExaBGP configuration announcing the FlowSpec routes to the policy's neighbour.
pub fn exabgp_flowspec(plan: &Plan, cx: &RenderContext) -> String {
    let mut out = header(plan, cx, "#");
    exabgp_neighbor(plan, &mut out, "\t\tipv4 flow;\n\t\tipv6 flow;\n");
    let then = match rate(plan) {
        Some(r) => format!("rate-limit {r};"),
        None => "discard;".into(),
    };
    out.push_str("\tflow {\n");
    let mut n = 0;
    for r in active(plan, cx.now_ns) {
        let ds = destinations(plan, r);
        if ds.is_empty() {
            let _ = writeln!(out, "\t\t# {}", not_rendered(r));
        }
        for d in ds {
            n += 1;
            // ExaBGP writes IPv6 FlowSpec prefixes with an offset: prefix/len/offset.
            let fmt = |p: Prefix| {
                if p.is_v6() {
                    format!("{p}/0")
                } else {
                    p.to_string()
                }
            };
            let _ = writeln!(out, "\t\t# {}", rule_comment(r));
            let _ = writeln!(out, "\t\troute relaytrace-{n} {{");
            out.push_str("\t\t\tmatch {\n");
            let _ = writeln!(out, "\t\t\t\tsource {};", fmt(r.prefix));
            if let Some(d) = d {
                let _ = writeln!(out, "\t\t\t\tdestination {};", fmt(d));
            }
            out.push_str("\t\t\t}\n");
            let _ = writeln!(out, "\t\t\tthen {{\n\t\t\t\t{then}\n\t\t\t}}");
            out.push_str("\t\t}\n");
        }
    }
    out.push_str("\t}\n}\n");
    out
}

/// ExaBGP configuration announcing black-hole routes.
pub fn exabgp_rtbh(plan: &Plan, cx: &RenderContext) -> String {
    let mut out = header(plan, cx, "#");
    exabgp_neighbor(plan, &mut out, "\t\tipv4 unicast;\n\t\tipv6 unicast;\n");
    out.push_str("\tstatic {\n");
    for r in active(plan, cx.now_ns) {
        let nh = if r.prefix.is_v6() {
            plan.bgp.rtbh_next_hop_v6
        } else {
            plan.bgp.rtbh_next_hop_v4
        };
        let _ = writeln!(out, "\t\t# {}", rule_comment(r));
        let _ = writeln!(
            out,
            "\t\troute {} next-hop {nh} community [ {BLACKHOLE} {NO_EXPORT} ];",
            r.prefix
        );
    }
    out.push_str("\t}\n}\n");
    out
}

/// The traffic-rate value for BIRD's generic extended community: the low 32 bits
/// are the IEEE float (the 2-byte AS field is 0).
fn traffic_rate_float_bits(plan: &Plan) -> u32 {
    (rate(plan).unwrap_or(0) as f32).to_bits()
}

fn bird_head(plan: &Plan, cx: &RenderContext) -> String {
    let mut out = header(plan, cx, "#");
    let _ = writeln!(out, "router id {};", plan.bgp.router_id);
    out
}

/// BIRD 2 configuration: FlowSpec tables, a static protocol holding the flow
/// routes with the traffic-rate community, and a BGP session exporting them.
pub fn bird_flowspec(plan: &Plan, cx: &RenderContext) -> String {
    let mut out = bird_head(plan, cx);
    let rules = active(plan, cx.now_ns);
    let action = format!(
        "bgp_ext_community.add((generic, 0x80060000, 0x{:08x}));",
        traffic_rate_float_bits(plan)
    );
    for (fam, v6) in [("flow4", false), ("flow6", true)] {
        let _ = writeln!(out, "{fam} table relaytrace_{fam};");
        let _ = writeln!(out, "protocol static relaytrace_{fam}_routes {{");
        let _ = writeln!(out, "\t{fam} {{ table relaytrace_{fam}; }};");
        for r in rules.iter().filter(|r| r.prefix.is_v6() == v6) {
            let ds = destinations(plan, r);
            if ds.is_empty() {
                let _ = writeln!(out, "\t# {}", not_rendered(r));
            }
            for d in ds {
                let dst = d.map(|d| format!(" dst {d};")).unwrap_or_default();
                let _ = writeln!(out, "\t# {}", rule_comment(r));
                let _ = writeln!(
                    out,
                    "\troute {fam} {{ src {};{dst} }} {{ {action} }};",
                    r.prefix
                );
            }
        }
        out.push_str("}\n");
    }
    let b = &plan.bgp;
    out.push_str("protocol bgp relaytrace_peer {\n");
    let _ = writeln!(out, "\tlocal as {};", b.local_as);
    let _ = writeln!(out, "\tneighbor {} as {};", b.neighbor, b.peer_as);
    out.push_str("\tflow4 { table relaytrace_flow4; import none; export all; };\n");
    out.push_str("\tflow6 { table relaytrace_flow6; import none; export all; };\n");
    out.push_str("}\n");
    out
}

/// BIRD 2 configuration: static black-hole routes with the BLACKHOLE and NO_EXPORT
/// communities and the policy's discard next hop (`bgp_next_hop`, kept on export by
/// `next hop keep`, as GoBGP's and ExaBGP's renderings set it), exported over the BGP
/// session.
pub fn bird_rtbh(plan: &Plan, cx: &RenderContext) -> String {
    let mut out = bird_head(plan, cx);
    let rules = active(plan, cx.now_ns);
    for (fam, v6) in [("ipv4", false), ("ipv6", true)] {
        let nh = if v6 {
            plan.bgp.rtbh_next_hop_v6
        } else {
            plan.bgp.rtbh_next_hop_v4
        };
        let _ = writeln!(out, "protocol static relaytrace_rtbh_{fam} {{");
        let _ = writeln!(out, "\t{fam};");
        for r in rules.iter().filter(|r| r.prefix.is_v6() == v6) {
            let _ = writeln!(out, "\t# {}", rule_comment(r));
            let _ = writeln!(
                out,
                "\troute {} blackhole {{ bgp_next_hop = {nh}; bgp_community.add((65535, 666)); bgp_community.add((65535, 65281)); }};",
                r.prefix
            );
        }
        out.push_str("}\n");
    }
    let b = &plan.bgp;
    out.push_str("protocol bgp relaytrace_peer {\n");
    let _ = writeln!(out, "\tlocal as {};", b.local_as);
    let _ = writeln!(out, "\tneighbor {} as {};", b.neighbor, b.peer_as);
    out.push_str(
        "\tipv4 { import none; export where proto ~ \"relaytrace_rtbh_*\"; next hop keep; };\n",
    );
    out.push_str(
        "\tipv6 { import none; export where proto ~ \"relaytrace_rtbh_*\"; next hop keep; };\n",
    );
    out.push_str("}\n");
    out
}
