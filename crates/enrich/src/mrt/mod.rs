//! MRT RIB dumps (RFC 6396 TABLE_DUMP and TABLE_DUMP_V2, RFC 8050 ADD-PATH): origin
//! AS and upstream ASes per prefix.
//!
//! A RIB holds, per prefix, the AS path each peer of the collector uses. We derive:
//! - the **origin**: the last AS of the path. Peers can disagree (MOAS, or a hijack);
//!   the origin most peers report wins, ties to the lowest AS number. Paths ending in
//!   an AS_SET of several ASes name no single origin and are counted, not used.
//! - the **upstreams**: for paths with the winning origin, the AS just before the
//!   origin once prepending is removed; the set of those is the networks through
//!   which the origin is reached (what shows a KP prefix reached through a CN
//!   network). At most [`MAX_UPSTREAMS`] are kept, lowest AS numbers first.
//!
//! Files may be gzip-compressed (detected by magic). Non-RIB records (BGP4MP updates,
//! state changes) are skipped and counted. [`parser`] holds the pure decoding.

pub mod parser;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::csv::{Loaded, RowProblem};
use crate::error::{EnrichError, IoContext};
use crate::ranges::RangeRow;
use crate::types::{Asn, Family};

/// Upstreams kept per prefix: enough for every transit of a well-connected origin as
/// seen from a collector, bounded so one odd prefix cannot bloat the snapshot.
pub const MAX_UPSTREAMS: usize = 16;

/// What routing data says about a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The origin AS most peers report.
    pub origin: Asn,
    /// ASes adjacent to that origin on the peers' paths (sorted, deduplicated).
    pub upstreams: Vec<Asn>,
}

/// Counts of what a RIB file held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RibStats {
    /// MRT records read.
    pub records: u64,
    /// RIB entries (prefix, peer path) decoded.
    pub entries: u64,
    /// Records of other types (updates, peer tables...) skipped.
    pub skipped_records: u64,
    /// Entries whose path ends in a multi-AS AS_SET or is empty.
    pub no_origin: u64,
    /// Prefixes whose peers reported more than one origin.
    pub moas_prefixes: u64,
}

/// A RIB reduced to one route per prefix.
#[derive(Debug, Clone)]
pub struct Rib {
    /// One row per prefix (prefixes nest; the snapshot applies longest match).
    pub routes: Loaded<Route>,
    /// Counts.
    pub stats: RibStats,
}

#[derive(Default)]
struct PrefixAgg {
    /// origin -> (paths seen, upstreams seen)
    origins: BTreeMap<u32, (u64, BTreeSet<u32>)>,
}

/// Reads a RIB dump file (plain or gzip).
pub fn load_rib(path: &Path) -> Result<Rib, EnrichError> {
    let mut file = BufReader::new(File::open(path).at(path)?);
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).at(path)?;
    let file = BufReader::new(File::open(path).at(path)?);
    if n == 2 && magic == [0x1f, 0x8b] {
        read_rib(path, MultiGzDecoder::new(file))
    } else {
        read_rib(path, file)
    }
}

/// Reads RIB records from any byte stream (`path` is only used in messages).
pub fn read_rib(path: &Path, mut input: impl Read) -> Result<Rib, EnrichError> {
    let mut stats = RibStats::default();
    let mut problems = Vec::new();
    let mut agg: HashMap<(bool, u128, u8), PrefixAgg> = HashMap::new();
    let mut offset = 0u64;
    let mut body = Vec::new();
    loop {
        let mut hb = [0u8; 12];
        match read_full(&mut input, &mut hb).at(path)? {
            0 => break,
            12 => {}
            _ => {
                return Err(EnrichError::Mrt {
                    path: path.to_path_buf(),
                    offset,
                    reason: "file ends inside a record header",
                })
            }
        }
        let h = parser::header(&hb);
        if h.length > parser::MAX_RECORD_BYTES {
            return Err(EnrichError::Mrt {
                path: path.to_path_buf(),
                offset,
                reason: "record length over 16 MiB: corrupt header",
            });
        }
        body.resize(h.length as usize, 0);
        if read_full(&mut input, &mut body).at(path)? != body.len() {
            return Err(EnrichError::Mrt {
                path: path.to_path_buf(),
                offset,
                reason: "file ends inside a record",
            });
        }
        stats.records += 1;
        let entries = match h.kind {
            parser::TABLE_DUMP => {
                parser::table_dump(h.subtype, &body).map(|e| e.into_iter().collect())
            }
            parser::TABLE_DUMP_V2 => parser::table_dump_v2(h.subtype, &body),
            _ => Ok(Vec::new()),
        };
        match entries {
            Ok(entries) if entries.is_empty() => stats.skipped_records += 1,
            Ok(entries) => {
                for e in entries {
                    stats.entries += 1;
                    let Some((origin, upstream)) =
                        parser::origin_and_upstream(&e.path).filter(|_| !e.set_origin)
                    else {
                        stats.no_origin += 1;
                        continue;
                    };
                    let slot = agg.entry((e.v6, e.prefix, e.len)).or_default();
                    let o = slot.origins.entry(origin).or_default();
                    o.0 += 1;
                    if let Some(u) = upstream {
                        o.1.insert(u);
                    }
                }
            }
            Err(reason) => problems.push(RowProblem {
                path: path.to_path_buf(),
                line: offset,
                reason: format!(
                    "record at byte {offset} (type {} subtype {}): {reason}",
                    h.kind, h.subtype
                ),
            }),
        }
        offset += 12 + u64::from(h.length);
    }
    if stats.entries == 0 {
        return Err(EnrichError::NoRib {
            path: path.to_path_buf(),
            records: stats.records,
            unreadable: problems.first().map(|p| (problems.len(), p.reason.clone())),
        });
    }
    let mut routes = Loaded {
        problems,
        ..Loaded::default()
    };
    let mut prefixes: Vec<_> = agg.into_iter().collect();
    // Deterministic row order, so equal inputs give equal snapshots.
    prefixes.sort_by_key(|((v6, p, l), _)| (*v6, *p, *l));
    for ((v6, prefix, len), a) in prefixes {
        if a.origins.len() > 1 {
            stats.moas_prefixes += 1;
        }
        // Most paths first; BTreeMap order makes the lowest AS win ties.
        let Some((&origin, (_, ups))) = a
            .origins
            .iter()
            .max_by(|x, y| x.1 .0.cmp(&y.1 .0).then(y.0.cmp(x.0)))
        else {
            continue;
        };
        let family = if v6 { Family::V6 } else { Family::V4 };
        let width = if v6 { 128 } else { 32 };
        let host = width - u32::from(len);
        let last = prefix
            | if host >= 128 {
                u128::MAX
            } else {
                (1u128 << host) - 1
            };
        routes.push(
            family,
            RangeRow {
                first: prefix,
                last,
                value: Route {
                    origin: Asn(origin),
                    upstreams: ups.iter().take(MAX_UPSTREAMS).map(|&u| Asn(u)).collect(),
                },
            },
        );
    }
    Ok(Rib { routes, stats })
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file whose RIB records all fail to parse is refused as one without any RIB
    /// entry, with the first problem named (it built an empty snapshot).
    #[test]
    fn a_file_of_unreadable_rib_records_is_refused() {
        let mut file = Vec::new();
        for _ in 0..2 {
            // TABLE_DUMP_V2 / RIB_IPV4_UNICAST with a 1-byte body: cut short.
            file.extend_from_slice(&[0, 0, 0, 0]);
            file.extend_from_slice(&parser::TABLE_DUMP_V2.to_be_bytes());
            file.extend_from_slice(&2u16.to_be_bytes());
            file.extend_from_slice(&1u32.to_be_bytes());
            file.push(0);
        }
        let e = read_rib(Path::new("cut.mrt"), &file[..])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no routing table entry in its 2 MRT record(s)"),
            "{e}"
        );
        assert!(
            e.contains("2 RIB record(s) could not be read, the first: record at byte 0"),
            "{e}"
        );
    }
}
