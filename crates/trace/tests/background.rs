//! A relay's background must not produce confident links; a true relay pair hidden in
//! it must. Connections are synthetic (seeded, so every run is the same run), at one
//! busy host that both receives and opens many unrelated TCP sessions.

use std::net::{IpAddr, Ipv4Addr};

mod common;

use common::{conn, Rng};
use relaytrace_trace::{find_links, FlowConn, FlowParams};

const RELAY: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const NS: f64 = 1e9;

/// `n` inbound and `n` outbound unrelated sessions over six hours at RELAY: start
/// uniform, duration log-uniform 5 s – 2 h, bytes per direction log-uniform 2 KB –
/// 5 MB (independent, so some pairs are volume-consistent by chance). Plus one true
/// relay pair (ids `true-in`, `true-out`): a 25-minute session relayed with 0.7 s
/// set-up and 0.4 s tear-down delay and 4–8 % encryption overhead.
fn scenario(seed: u64, n: usize) -> Vec<FlowConn> {
    let mut r = Rng(seed);
    let mut out = Vec::new();
    let relay = IpAddr::V4(RELAY);
    for i in 0..n {
        let peer = IpAddr::V4(Ipv4Addr::new(192, 0, 2, (i % 200) as u8 + 1));
        let (s, d) = (r.unit() * 6.0 * 3600.0, r.log_uniform(5.0, 7200.0));
        let (ob, rb) = (
            r.log_uniform(2e3, 5e6) as u64,
            r.log_uniform(2e3, 5e6) as u64,
        );
        out.push(conn(format!("bg-in-{i}"), peer, relay, s, d, ob, rb));
        let peer = IpAddr::V4(Ipv4Addr::new(203, 0, 113, (i % 200) as u8 + 1));
        let (s, d) = (r.unit() * 6.0 * 3600.0, r.log_uniform(5.0, 7200.0));
        let (ob, rb) = (
            r.log_uniform(2e3, 5e6) as u64,
            r.log_uniform(2e3, 5e6) as u64,
        );
        out.push(conn(format!("bg-out-{i}"), relay, peer, s, d, ob, rb));
    }
    let t = 2.0 * 3600.0 + r.unit() * 3600.0;
    let origin = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 250));
    let victim = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 250));
    out.push(conn(
        "true-in".into(),
        origin,
        relay,
        t,
        1500.0,
        150_000,
        700_000,
    ));
    out.push(conn(
        "true-out".into(),
        relay,
        victim,
        t + 0.7,
        1500.0 - 1.1,
        140_000,
        670_000,
    ));
    out.sort_by_key(|c| c.start_ns);
    out
}

#[test]
fn background_gives_no_confident_link_and_the_true_pair_is_found() {
    // 10 000 offsets, so that 1e-3 is not the floor of the method (1/(K+1)) but
    // allows the true pair up to 9 background pairs as good somewhere at the relay.
    let p = FlowParams {
        null_offsets: 10_000,
        ..FlowParams::default()
    };
    let mut background_links = 0usize;
    for seed in 1..=5u64 {
        let conns = scenario(seed, 150);
        let links = find_links(&conns, &p).unwrap();
        let confident: Vec<(String, String)> = links
            .iter()
            .filter(|l| l.false_match_probability.get() <= 1e-3)
            .map(|l| {
                (
                    conns[l.inbound].ids[0].to_string(),
                    conns[l.outbound].ids[0].to_string(),
                )
            })
            .collect();
        assert_eq!(
            confident,
            [("true-in".to_string(), "true-out".to_string())],
            "seed {seed}"
        );
        let bg = links.len() - 1;
        // The background does produce candidates (containment and volume by chance):
        // the probabilities, not the gates, are what keep them out.
        assert!(bg >= 20, "seed {seed}: only {bg} background candidates");
        background_links += bg;
        // Every candidate at the relay counts in the correction.
        assert!(links.iter().all(|l| l.candidates_at_relay == links.len()));
    }
    assert!(background_links > 100);
}

/// Without the null, the gates alone would accept background pairs as links; the
/// uncorrected per-pair values of background links should look like chance (few
/// small values), which is what makes the corrected ones trustworthy.
#[test]
fn background_pair_probabilities_are_not_small() {
    let p = FlowParams::default();
    let (mut n, mut small) = (0usize, 0usize);
    for seed in 11..=15u64 {
        let conns = scenario(seed, 150);
        for l in find_links(&conns, &p).unwrap() {
            if conns[l.inbound].ids[0] == "true-in" && conns[l.outbound].ids[0] == "true-out" {
                continue;
            }
            n += 1;
            small += usize::from(l.false_match_probability_pair.get() <= 0.05);
        }
    }
    assert!(n > 100, "{n}");
    // Under the null about 5 % would be ≤ 0.05; allow sampling noise, not more.
    assert!(
        (small as f64) / (n as f64) <= 0.10,
        "{small} of {n} background pairs at ≤ 0.05"
    );
}

/// The same pair with the relay's clock 0.9 s off (NetFlow v9 whole seconds) is still
/// found; at 1.5 s off it is outside the tolerance and is not.
#[test]
fn clock_tolerance_is_one_second() {
    let p = FlowParams::default();
    for (skew_s, want) in [(0.0, true), (-0.9, true), (-1.5, false)] {
        let mut conns = scenario(21, 50);
        for c in conns.iter_mut().filter(|c| c.ids[0] == "true-out") {
            c.start_ns += (skew_s * NS) as i64 - (0.7 * NS) as i64;
        }
        let links = find_links(&conns, &p).unwrap();
        let found = links.iter().any(|l| {
            conns[l.inbound].ids[0] == "true-in" && conns[l.outbound].ids[0] == "true-out"
        });
        assert_eq!(found, want, "skew {skew_s}");
    }
}
