//! The nftables rendering enforced by the kernel: network namespaces built by the
//! test (private 10.200.0.0/16 and fd20:200::/48 addresses only), rules applied with
//! `nft -f` on the middle host, a blocked source that cannot reach the victim and
//! an allowed one that can, over IPv4 and IPv6; then expiry lifting the block, by
//! element timeout and by the `expire` rendering.

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::*;
use relaytrace_block::render::{expire, render, RenderContext, Target};

fn both_families_blocked(net: &Net) {
    assert!(
        !net.reaches("b", V4),
        "blocked source reached the victim (IPv4)"
    );
    assert!(
        !net.reaches("b", V6),
        "blocked source reached the victim (IPv6)"
    );
    assert!(net.reaches("a", V4), "allowed source cut off (IPv4)");
    assert!(net.reaches("a", V6), "allowed source cut off (IPv6)");
}

#[test]
fn nftables_drops_the_relay_passes_others_and_timeout_lifts_it() {
    if !require("nftables enforcement", &["ip", "nft", "ping"], true) {
        return;
    }
    let net = Net::new("t");
    let (plan, cx) = plan_for(&[(B4, V4), (B6, V6)], "10.200.9.9", "6s", now_ns(), |p| p);
    let script = render(&plan, Target::Nftables, &cx).unwrap();
    net.apply_in_middle("nft -f", &script);
    both_families_blocked(&net);
    // The counters saw the dropped packets.
    let listing = String::from_utf8_lossy(
        &net.exec("m", "nft list chain inet relaytrace_block forward")
            .stdout,
    )
    .into_owned();
    for fam in ["ip saddr", "ip6 saddr"] {
        let line = listing.lines().find(|l| l.contains(fam)).unwrap();
        assert!(!line.contains("packets 0 "), "no drops counted: {line}");
    }
    // Re-applying is one transaction that replaces the table (no duplicate error).
    // Timeouts count from loading, so the block now lasts 6 s from here.
    let loaded = now_ns();
    net.apply_in_middle("nft -f", &script);
    both_families_blocked(&net);
    // The element timeouts lift the block on their own.
    let until = loaded + 7_000_000_000;
    let wait = until - now_ns();
    if wait > 0 {
        sleep(Duration::from_nanos(wait as u64));
    }
    assert!(
        net.reaches("b", V4),
        "block still in force after its timeout (IPv4)"
    );
    assert!(
        net.reaches("b", V6),
        "block still in force after its timeout (IPv6)"
    );
}

#[test]
fn nftables_expire_rendering_removes_what_ran_out() {
    if !require("nftables expiry", &["ip", "nft", "ping"], true) {
        return;
    }
    let net = Net::new("e");
    let start = now_ns();
    let (plan, cx) = plan_for(&[(B4, V4), (B6, V6)], "10.200.9.9", "1d", start, |p| p);
    net.apply_in_middle("nft -f", &render(&plan, Target::Nftables, &cx).unwrap());
    both_families_blocked(&net);
    // An hour later nothing has expired: the removal removes nothing.
    let hour = RenderContext {
        now_ns: start + 3_600_000_000_000,
        ..cx.clone()
    };
    net.apply_in_middle("nft -f", &expire(&plan, Target::Nftables, &hour).unwrap());
    both_families_blocked(&net);
    // Two days later everything has: the removal lifts the block.
    let later = RenderContext {
        now_ns: start + 2 * 86_400_000_000_000,
        ..cx
    };
    let removal = expire(&plan, Target::Nftables, &later).unwrap();
    net.apply_in_middle("nft -f", &removal);
    assert!(
        net.reaches("b", V4) && net.reaches("b", V6),
        "expired rules still enforced"
    );
    // Applying the removal again is harmless.
    net.apply_in_middle("nft -f", &removal);
    // And the rendering as of then holds no element.
    let now_render = render(&plan, Target::Nftables, &later).unwrap();
    assert!(!now_render.contains("elements"), "{now_render}");
}
