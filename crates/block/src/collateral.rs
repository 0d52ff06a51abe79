//! Collateral: what a set of rules would have blocked in the stored flow history
//! that belongs to no attack chain. Measured before anything is enforced, because
//! blocklists that hit shared addresses (CGNAT pools, CDNs) are the most common
//! complaint about shared blocklists.
//!
//! A source-address block drops every packet from the blocked addresses, so a
//! connection is affected when either end lies in a blocked prefix (the blocked
//! side's requests or its replies are dropped). Connections whose row id appears in
//! a trace link (`conn_ids`, `inbound_ids`, `outbound_ids`) are the attack and are
//! counted separately.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::inputs::{AddrInfo, ConnRow};
use crate::policy::CollateralLimits;
use crate::prefix::{Prefix, RangeSet};

/// Flows of one affected network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkCount {
    /// `AS64500 Example Org` when enrichment knows the address, else its /24 (/48).
    pub network: String,
    /// Non-attack flows with a party in that network.
    pub flows: u64,
}

/// Collateral of one rule or one option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Collateral {
    /// Attack-chain connections the rules hit (what blocking is for).
    pub attack_flows: u64,
    /// Other connections the rules hit.
    pub flows: u64,
    /// Distinct addresses outside the blocked prefixes that lose those connections.
    pub hosts: u64,
    /// Distinct addresses inside the blocked prefixes with non-attack connections.
    pub inside_hosts: u64,
    /// Bytes of those connections, both directions.
    pub bytes: u64,
    /// The networks of the outside parties with the most flows (ties by name).
    pub top_networks: Vec<NetworkCount>,
    /// Limits of the policy this exceeds, in words.
    pub warnings: Vec<String>,
}

fn network_of(a: IpAddr, info: &BTreeMap<IpAddr, AddrInfo>) -> String {
    if let Some(i) = info.get(&a) {
        if let Some(asn) = i.asn {
            return match &i.org {
                Some(org) => format!("AS{asn} {org}"),
                None => format!("AS{asn}"),
            };
        }
    }
    let len = if a.is_ipv4() { 24 } else { 48 };
    Prefix::new(a, len).to_string()
}

/// Measures what blocking `prefixes` would have hit.
pub fn measure(
    prefixes: &[Prefix],
    conns: &[ConnRow],
    attack_ids: &BTreeSet<String>,
    info: &BTreeMap<IpAddr, AddrInfo>,
    limits: &CollateralLimits,
) -> Collateral {
    let blocked = RangeSet::new(prefixes);
    let inside = |a: IpAddr| blocked.contains(a);
    let mut c = Collateral::default();
    let mut outside: BTreeSet<IpAddr> = BTreeSet::new();
    let mut ins: BTreeSet<IpAddr> = BTreeSet::new();
    let mut nets: BTreeMap<String, u64> = BTreeMap::new();
    for row in conns {
        let (o, r) = (inside(row.orig_h), inside(row.resp_h));
        if !o && !r {
            continue;
        }
        if row.ids.iter().any(|id| attack_ids.contains(id)) {
            c.attack_flows += 1;
            continue;
        }
        c.flows += 1;
        c.bytes = c.bytes.saturating_add(row.bytes);
        let mut seen_nets = BTreeSet::new();
        for (a, is_in) in [(row.orig_h, o), (row.resp_h, r)] {
            if is_in {
                ins.insert(a);
            } else {
                outside.insert(a);
                seen_nets.insert(network_of(a, info));
            }
        }
        for n in seen_nets {
            *nets.entry(n).or_default() += 1;
        }
    }
    c.hosts = outside.len() as u64;
    c.inside_hosts = ins.len() as u64;
    let mut top: Vec<NetworkCount> = nets
        .into_iter()
        .map(|(network, flows)| NetworkCount { network, flows })
        .collect();
    top.sort_by(|a, b| {
        b.flows
            .cmp(&a.flows)
            .then_with(|| a.network.cmp(&b.network))
    });
    top.truncate(limits.top_networks);
    c.top_networks = top;
    if c.flows > limits.warn_flows {
        c.warnings.push(format!(
            "{} non-attack flows > policy limit {}",
            c.flows, limits.warn_flows
        ));
    }
    // Hosts on either side lose connections: those inside the blocked range lose every
    // one that crosses the enforcement point, and were left out of this warning.
    if c.hosts + c.inside_hosts > limits.warn_hosts {
        c.warnings.push(format!(
            "{} non-attack hosts ({} outside, {} inside the blocked prefixes) > policy limit {}",
            c.hosts + c.inside_hosts,
            c.hosts,
            c.inside_hosts,
            limits.warn_hosts
        ));
    }
    if c.bytes > limits.warn_bytes {
        c.warnings.push(format!(
            "{} non-attack bytes > policy limit {}",
            c.bytes, limits.warn_bytes
        ));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, o: &str, r: &str, bytes: u64) -> ConnRow {
        ConnRow {
            ids: vec![id.into()],
            orig_h: o.parse().unwrap(),
            resp_h: r.parse().unwrap(),
            bytes,
        }
    }

    #[test]
    fn counts_non_attack_flows_hosts_bytes_and_warns() {
        let conns = vec![
            row("a", "192.0.2.66", "198.51.100.23", 100),
            row("b", "198.51.100.23", "203.0.113.7", 90),
            row("c", "198.51.100.23", "203.0.113.50", 10),
            row("d", "203.0.113.51", "198.51.100.23", 20),
            row("e", "203.0.113.51", "198.51.100.24", 5),
            row("f", "203.0.113.52", "203.0.113.53", 5),
        ];
        let attack: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let limits = CollateralLimits {
            warn_flows: 1,
            warn_hosts: 5,
            warn_bytes: 1000,
            top_networks: 5,
        };
        let relay: Prefix = "198.51.100.23".parse().unwrap();
        let c = measure(&[relay], &conns, &attack, &BTreeMap::new(), &limits);
        assert_eq!(
            (c.attack_flows, c.flows, c.hosts, c.inside_hosts, c.bytes),
            (2, 2, 2, 1, 30)
        );
        assert_eq!(
            c.top_networks,
            vec![NetworkCount {
                network: "203.0.113.0/24".into(),
                flows: 2
            }]
        );
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        // Hosts inside the blocked range count toward the host limit too.
        let tight = CollateralLimits {
            warn_hosts: 2,
            ..limits.clone()
        };
        let c = measure(&[relay], &conns, &attack, &BTreeMap::new(), &tight);
        assert!(
            c.warnings
                .iter()
                .any(|w| w.starts_with("3 non-attack hosts (2 outside, 1 inside")),
            "{:?}",
            c.warnings
        );
        let net: Prefix = "198.51.100.0/24".parse().unwrap();
        let wide = measure(&[net], &conns, &attack, &BTreeMap::new(), &limits);
        assert_eq!((wide.flows, wide.inside_hosts, wide.bytes), (3, 2, 35));
        // Several prefixes, both families, membership at range edges.
        let ps: Vec<Prefix> = ["10.0.0.0/31", "203.0.113.52/32", "2001:db8::/126"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let edge = vec![
            row("g", "10.0.0.1", "192.0.2.1", 1),
            row("h", "10.0.0.2", "192.0.2.1", 1),
            row("i", "2001:db8::3", "2001:db8:1::1", 1),
            row("j", "2001:db8::4", "2001:db8:1::1", 1),
        ];
        let all: Vec<ConnRow> = conns.iter().cloned().chain(edge).collect();
        let c = measure(&ps, &all, &attack, &BTreeMap::new(), &limits);
        assert_eq!(c.flows, 3, "f (.52), g (10.0.0.1), i (2001:db8::3)");
    }
}
