//! MaxMind-format (MMDB) sources: GeoLite2-ASN/Country, DB-IP, IPinfo, ip-location-db.
//!
//! Read with the `maxminddb` crate, which is also the reference our lookups are tested
//! against. Every network of the search tree is visited once (`Reader::networks`) and
//! becomes a range row; MMDB networks never overlap, so the source needs no overlap
//! rule. Field names follow MaxMind's schemas: `autonomous_system_number` and
//! `autonomous_system_organization` for AS data; `country.iso_code` (GeoIP2) or
//! `country_code` (ip-location-db) for countries.
//!
//! IPv4 in an IPv6 database lives at `::/96` (`::a.b.c.d`), where `maxminddb` looks
//! IPv4 addresses up; networks there are added to both tables, so both families agree
//! with the reader. Aliases such as `::ffff:0:0/96` are skipped (we map those
//! addresses to IPv4 before looking up).

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{PathElement, Reader, WithinOptions};

use crate::csv::{AsnInfo, Loaded, RowProblem};
use crate::error::EnrichError;
use crate::ranges::RangeRow;
use crate::types::{Asn, CountryCode, Family};

/// Reads the AS number and organisation of every network of an AS database.
pub fn load_asn_mmdb(path: &Path) -> Result<Loaded<AsnInfo>, EnrichError> {
    load(path, |r| {
        let asn: Option<u32> = r
            .decode_path(&[PathElement::Key("autonomous_system_number")])
            .map_err(|e| e.to_string())?;
        let Some(asn) = asn else {
            return Ok(None);
        };
        let org: Option<String> = r
            .decode_path(&[PathElement::Key("autonomous_system_organization")])
            .map_err(|e| e.to_string())?;
        Ok(Some(AsnInfo {
            asn: Asn(asn),
            org: org.filter(|s| !s.is_empty()),
        }))
    })
}

/// Reads the country of every network of a country database.
pub fn load_country_mmdb(path: &Path) -> Result<Loaded<CountryCode>, EnrichError> {
    load(path, |r| {
        let mut code: Option<String> = r
            .decode_path(&[PathElement::Key("country_code")])
            .map_err(|e| e.to_string())?;
        if code.is_none() {
            code = r
                .decode_path(&[PathElement::Key("country"), PathElement::Key("iso_code")])
                .map_err(|e| e.to_string())?;
        }
        match code {
            None => Ok(None),
            Some(c) => c
                .parse::<CountryCode>()
                .map(Some)
                .map_err(|e| format!("country {c:?}: {e}")),
        }
    })
}

type Lookup<'a> = maxminddb::LookupResult<'a, Vec<u8>>;

fn load<V>(
    path: &Path,
    value: impl Fn(&Lookup<'_>) -> Result<Option<V>, String>,
) -> Result<Loaded<V>, EnrichError>
where
    V: Clone,
{
    let mmdb = |source| EnrichError::Mmdb {
        path: path.to_path_buf(),
        source,
    };
    let reader = Reader::open_readfile(path).map_err(mmdb)?;
    let v6_db = reader.metadata.ip_version == 6;
    let mut out = Loaded::default();
    for (i, item) in reader
        .networks(WithinOptions::default())
        .map_err(mmdb)?
        .enumerate()
    {
        let record = i as u64 + 1;
        let problem = |reason: String| RowProblem {
            path: path.to_path_buf(),
            line: record,
            reason: format!("network #{record}: {reason}"),
        };
        let lookup = item.map_err(mmdb)?;
        let net = lookup.network().map_err(mmdb)?;
        let v = match value(&lookup) {
            Ok(Some(v)) => v,
            Ok(None) => continue,
            Err(reason) => {
                out.problems.push(problem(reason));
                continue;
            }
        };
        let prefix = u32::from(net.prefix());
        match net.network() {
            IpAddr::V4(a) => {
                let first = u128::from(u32::from(a));
                let last = first | host_mask(32, prefix);
                out.push(
                    Family::V4,
                    RangeRow {
                        first,
                        last,
                        value: v,
                    },
                );
            }
            IpAddr::V6(a) => {
                let first = u128::from(a);
                let last = first | host_mask(128, prefix);
                // The IPv4 subtree of an IPv6 database: what IPv4 lookups see.
                if v6_db && first <= u128::from(u32::MAX) {
                    out.push(
                        Family::V4,
                        RangeRow {
                            first,
                            last: last.min(u128::from(u32::MAX)),
                            value: v.clone(),
                        },
                    );
                }
                out.push(
                    Family::V6,
                    RangeRow {
                        first,
                        last,
                        value: v,
                    },
                );
            }
        }
    }
    if out.accepted() == 0 {
        return Err(EnrichError::EmptySource {
            path: path.to_path_buf(),
            rejected: out.problems.len() as u64,
        });
    }
    Ok(out)
}

/// Bits below a prefix of `prefix` bits in a `width`-bit address, all ones.
fn host_mask(width: u32, prefix: u32) -> u128 {
    let host = width.saturating_sub(prefix);
    if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    }
}
