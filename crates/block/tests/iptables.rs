//! The iptables + ipset rendering enforced in namespaces built by the test, the same
//! way as nftables: blocked source dropped, allowed source passes, the removal
//! rendering lifts the block.

mod common;

use common::*;
use relaytrace_block::render::{expire, render, RenderContext, Target};

#[test]
fn iptables_ipset_drops_the_relay_and_removal_lifts_it() {
    if !require(
        "iptables+ipset enforcement",
        &[
            "ip",
            "ipset",
            "iptables-restore",
            "ip6tables-restore",
            "ping",
        ],
        true,
    ) {
        return;
    }
    let net = Net::new("i");
    let start = now_ns();
    let (plan, cx) = plan_for(&[(B4, V4), (B6, V6)], "10.200.9.9", "1d", start, |p| p);
    let script = render(&plan, Target::Iptables, &cx).unwrap();
    net.apply_in_middle("sh", &script);
    assert!(
        !net.reaches("b", V4),
        "blocked source reached the victim (IPv4)"
    );
    assert!(
        !net.reaches("b", V6),
        "blocked source reached the victim (IPv6)"
    );
    assert!(
        net.reaches("a", V4) && net.reaches("a", V6),
        "allowed source cut off"
    );
    // Loading twice neither fails nor duplicates the hook rules.
    net.apply_in_middle("sh", &script);
    let hooks = String::from_utf8_lossy(&net.exec("m", "iptables -S FORWARD").stdout).into_owned();
    assert_eq!(hooks.matches("RELAYTRACE-BLOCK").count(), 1, "{hooks}");
    assert!(!net.reaches("b", V4));
    let later = RenderContext {
        now_ns: start + 2 * 86_400_000_000_000,
        ..cx
    };
    net.apply_in_middle("sh", &expire(&plan, Target::Iptables, &later).unwrap());
    assert!(
        net.reaches("b", V4) && net.reaches("b", V6),
        "expired rules still enforced"
    );
    let left =
        String::from_utf8_lossy(&net.exec("m", "ipset list relaytrace-block4").stdout).into_owned();
    assert!(!left.contains(B4), "{left}");
}
