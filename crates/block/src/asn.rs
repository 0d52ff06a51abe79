//! ASN expansion: every prefix an enrichment snapshot attributes to an AS.
//!
//! The snapshot stores the address space as merged segments, each with one record
//! (AS, organisation, country); walking the segments in order with the public
//! lookup (`Hit::first`/`Hit::last`) visits each once, so expanding any set of ASes
//! costs one pass over the segments, however many ASes are asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use relaytrace_enrich::Snapshot;

use crate::prefix::{exact_cover, range_to_prefixes, Prefix, Range};

/// The prefixes of some ASes in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AsnExpansion {
    /// Digest of the snapshot walked.
    pub snapshot: String,
    /// Minimal exact cover of each AS's address space (empty when the snapshot has
    /// no address for it).
    pub prefixes: BTreeMap<u64, Vec<Prefix>>,
}

/// Walks the snapshot's IPv4 and IPv6 segments and collects those of `asns`.
pub fn expand(snap: &Snapshot, asns: &BTreeSet<u64>) -> AsnExpansion {
    let tables = snap.tables();
    let mut ranges: BTreeMap<u64, Vec<Range>> = asns.iter().map(|a| (*a, Vec::new())).collect();
    for v6 in [false, true] {
        let mut next: u128 = 0;
        loop {
            let addr = if v6 {
                IpAddr::V6(Ipv6Addr::from(next))
            } else {
                IpAddr::V4(Ipv4Addr::from(next as u32))
            };
            let hit = tables.lookup(addr);
            let last = match hit.last {
                IpAddr::V4(a) => u128::from(u32::from(a)),
                IpAddr::V6(a) => u128::from(a),
            };
            if let Some(asn) = hit.record.asn {
                if let Some(v) = ranges.get_mut(&u64::from(asn.0)) {
                    v.push(Range {
                        v6,
                        first: next,
                        last,
                    });
                }
            }
            let end = if v6 { u128::MAX } else { u128::from(u32::MAX) };
            if last >= end {
                break;
            }
            next = last + 1;
        }
    }
    AsnExpansion {
        snapshot: snap.digest().to_string(),
        prefixes: ranges
            .into_iter()
            .map(|(a, rs)| {
                let ps: Vec<Prefix> = rs.into_iter().flat_map(range_to_prefixes).collect();
                (a, exact_cover(&ps))
            })
            .collect(),
    }
}
