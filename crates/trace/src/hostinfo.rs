//! What the case's enrichment tables say of each address.

use std::collections::BTreeMap;
use std::net::IpAddr;

use relaytrace_store::{enrichment::read_enrichment_where, Case};

use crate::chain::HostInfo;
use crate::error::TraceError;

/// What the case's enrichment tables say of the addresses `wanted` asks for, later
/// snapshots winning (`relaytrace_store::enrichment::read_enrichment`), and how many
/// distinct addresses the tables hold in all. No table: an empty map, and every hop's
/// enrichment is null. Only the wanted ones are kept: a case of millions of enriched
/// addresses labels a few hops (2 M one-way NetFlow records, 3.9 M addresses: trace's
/// peak 1.07 GB with every address held).
pub fn load(
    case: &Case,
    wanted: impl Fn(&IpAddr) -> bool,
) -> Result<(BTreeMap<IpAddr, HostInfo>, u64), TraceError> {
    let (rows, distinct) = read_enrichment_where(case, wanted)?;
    let info = rows
        .into_iter()
        .map(|(addr, r)| {
            (
                addr,
                HostInfo {
                    asn: r.asn,
                    org: r.org,
                    country: r.country,
                    snapshot: r.snapshot,
                },
            )
        })
        .collect();
    Ok((info, distinct))
}
