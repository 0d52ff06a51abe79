//! What the case's enrichment tables say of each address.

use std::collections::BTreeMap;
use std::net::IpAddr;

use relaytrace_store::{enrichment::read_enrichment, Case};

use crate::chain::HostInfo;
use crate::error::TraceError;

/// Every address the case's enrichment tables know, later snapshots winning
/// ([`read_enrichment`]). No table: an empty map, and every hop's enrichment is null.
pub fn load(case: &Case) -> Result<BTreeMap<IpAddr, HostInfo>, TraceError> {
    Ok(read_enrichment(case)?
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
        .collect())
}
