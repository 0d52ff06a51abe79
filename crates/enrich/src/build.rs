//! [`SnapshotBuilder`]: loads sources and merges them into one snapshot file.
//!
//! ## Precedence
//! Within one source, overlapping rows follow the narrowest-wins rule of
//! [`crate::ranges`]. Across sources, each field is decided on its own:
//! - **AS number**: routing data (MRT RIB origin, longest matching prefix) first,
//!   because it says who originates the route today; then registry sources (AS CSV,
//!   AS MMDB) in the order they were added. The first source that covers an address
//!   decides.
//! - **Organisation**: from the registry row that supplied the AS number; when the AS
//!   number came from MRT and differs from the registry's, the organisation most often
//!   named for that AS anywhere in the registry sources (ties: alphabetically first).
//! - **Country**: country sources (CSV, MMDB) in the order they were added.
//! - **Upstreams**: MRT only (ASes adjacent to the origin on the RIB's AS paths).
//!
//! Building is deterministic: the same inputs added in the same order give a
//! byte-identical file and hence the same digest (no timestamps inside).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::csv::{self, AsnInfo, Loaded, RowProblem};
use crate::error::{EnrichError, IoContext};
use crate::mmdb;
use crate::mrt::{self, Route};
use crate::ranges::RangeMap;
use crate::snapshot::{self, SnapshotMeta, SourceMeta};
use crate::types::{CountryCode, Family};

/// Kinds of source a snapshot can be built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// `start,end,asn,org` CSV.
    AsnCsv,
    /// `start,end,country` CSV.
    CountryCsv,
    /// MaxMind-format AS database (`autonomous_system_number`).
    AsnMmdb,
    /// MaxMind-format country database (`country.iso_code` or `country_code`).
    CountryMmdb,
    /// MRT RIB dump (TABLE_DUMP or TABLE_DUMP_V2; gzip allowed).
    Mrt,
}

impl SourceKind {
    /// The name used in snapshot metadata and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::AsnCsv => "asn-csv",
            SourceKind::CountryCsv => "country-csv",
            SourceKind::AsnMmdb => "asn-mmdb",
            SourceKind::CountryMmdb => "country-mmdb",
            SourceKind::Mrt => "mrt",
        }
    }
}

/// Where a source came from and under which terms, recorded in the snapshot.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// Package or dataset and version, e.g. `@ip-location-db/asn@2.3.2026061719`.
    pub package: Option<String>,
    /// Licence identifier, e.g. `CC-BY-4.0`.
    pub licence: Option<String>,
    /// Required attribution.
    pub credit: Option<String>,
}

/// What adding one source did.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// The source as recorded in the snapshot.
    pub meta: SourceMeta,
    /// The first malformed rows (at most [`MAX_PROBLEMS_KEPT`]), with file and line.
    pub problems: Vec<RowProblem>,
}

/// Malformed rows kept per source for reporting; the rest are only counted, so a
/// garbage file cannot fill memory with problem reports.
pub const MAX_PROBLEMS_KEPT: usize = 100;

struct Layers<V> {
    v4: Vec<RangeMap<V>>,
    v6: Vec<RangeMap<V>>,
}

impl<V> Default for Layers<V> {
    fn default() -> Self {
        Layers {
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }
}

impl<V: Clone + PartialEq> Layers<V> {
    fn add(&mut self, loaded: Loaded<V>) -> u64 {
        let v4 = RangeMap::from_rows(loaded.v4);
        let v6 = RangeMap::from_rows(loaded.v6);
        let overlaps = v4.overlaps + v6.overlaps;
        self.v4.push(v4);
        self.v6.push(v6);
        overlaps
    }

    fn family(&self, f: Family) -> &[RangeMap<V>] {
        match f {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }
}

/// Collects sources, then [`SnapshotBuilder::build`]s the snapshot.
#[derive(Default)]
pub struct SnapshotBuilder {
    sources: Vec<SourceMeta>,
    asn: Layers<AsnInfo>,
    country: Layers<CountryCode>,
    routes: Layers<Route>,
}

/// A built snapshot, not yet written.
pub struct BuiltSnapshot {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 (hex) of `bytes`.
    pub digest: String,
    /// The metadata stored inside.
    pub meta: SnapshotMeta,
}

impl BuiltSnapshot {
    /// Writes `<dir>/<digest>.rtsnap` (via a temporary file and a rename, so a crash
    /// never leaves a partial file under a digest name) and returns its path.
    pub fn write_to_dir(&self, dir: &Path) -> Result<PathBuf, EnrichError> {
        fs::create_dir_all(dir).at(dir)?;
        let path = dir.join(format!("{}.{}", self.digest, snapshot::EXTENSION));
        let tmp = dir.join(format!(".{}.tmp", self.digest));
        fs::write(&tmp, &self.bytes).at(&tmp)?;
        fs::File::open(&tmp).and_then(|f| f.sync_all()).at(&tmp)?;
        fs::rename(&tmp, &path).at(&path)?;
        Ok(path)
    }
}

impl SnapshotBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        SnapshotBuilder::default()
    }

    /// Loads one source file. Sources of the same field take precedence in the order
    /// they are added (see the module documentation).
    pub fn add(
        &mut self,
        kind: SourceKind,
        path: &Path,
        provenance: Provenance,
    ) -> Result<SourceReport, EnrichError> {
        let sha256 = file_sha256(path)?;
        let (rows, mut problems, overlaps, rejected) = match kind {
            SourceKind::AsnCsv | SourceKind::AsnMmdb => {
                let l = if kind == SourceKind::AsnCsv {
                    csv::load_asn_csv(path)?
                } else {
                    mmdb::load_asn_mmdb(path)?
                };
                let (rows, rejected) = (l.accepted(), l.problems.len() as u64);
                let problems = l.problems.clone();
                let overlaps = self.asn.add(Loaded {
                    problems: Vec::new(),
                    ..l
                });
                (rows, problems, overlaps, rejected)
            }
            SourceKind::CountryCsv | SourceKind::CountryMmdb => {
                let l = if kind == SourceKind::CountryCsv {
                    csv::load_country_csv(path)?
                } else {
                    mmdb::load_country_mmdb(path)?
                };
                let (rows, rejected) = (l.accepted(), l.problems.len() as u64);
                let problems = l.problems.clone();
                let overlaps = self.country.add(Loaded {
                    problems: Vec::new(),
                    ..l
                });
                (rows, problems, overlaps, rejected)
            }
            SourceKind::Mrt => {
                let rib = mrt::load_rib(path)?;
                let rows = rib.routes.accepted();
                let rejected = rib.routes.problems.len() as u64;
                let problems = rib.routes.problems.clone();
                // Prefixes nest; longest-prefix match is the overlap rule's job, so
                // nesting is not an anomaly worth counting here.
                self.routes.add(Loaded {
                    problems: Vec::new(),
                    ..rib.routes
                });
                (rows, problems, 0, rejected)
            }
        };
        problems.truncate(MAX_PROBLEMS_KEPT);
        let meta = SourceMeta {
            kind: kind.name().into(),
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256,
            package: provenance.package,
            licence: provenance.licence,
            credit: provenance.credit,
            rows,
            rejected,
            overlaps,
        };
        self.sources.push(meta.clone());
        Ok(SourceReport { meta, problems })
    }

    /// Merges every source into the snapshot's tables and serialises them.
    pub fn build(self) -> BuiltSnapshot {
        let mut recs = RecordInterner::new(&self.asn);
        let v4 = merge(Family::V4, &self, &mut recs);
        let v6 = merge(Family::V6, &self, &mut recs);
        let meta = SnapshotMeta {
            format: snapshot::FORMAT_VERSION,
            sources: self.sources,
            precedence: "asn: mrt origin (longest prefix) > registry sources in order added; \
                         org: registry row of that asn, else the registry's most common org for it; \
                         country: country sources in order added; upstreams: mrt; \
                         within a source: narrowest range wins, equal width: last read wins"
                .into(),
            v4_segments: v4.len() as u64,
            v6_segments: v6.len() as u64,
            records: recs.keys.len() as u64,
        };
        let bytes = serialise(&meta, &v4, &v6, &recs);
        let digest = hex::encode(Sha256::digest(&bytes));
        BuiltSnapshot {
            bytes,
            digest,
            meta,
        }
    }
}

/// SHA-256 (hex) of a file, streamed.
pub fn file_sha256(path: &Path) -> Result<String, EnrichError> {
    let mut file = fs::File::open(path).at(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).at(path)?;
    Ok(hex::encode(hasher.finalize()))
}

/// What one merged segment says; interned into record ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
struct RecordKey {
    asn: Option<u32>,
    org: Option<u32>,
    country: Option<[u8; 2]>,
    upstreams: Vec<u32>,
    routed: bool,
}

struct RecordInterner {
    keys: Vec<RecordKey>,
    ids: HashMap<RecordKey, u32>,
    orgs: Vec<String>,
    org_ids: HashMap<String, u32>,
    /// Most common organisation per AS over all registry rows.
    org_of_asn: HashMap<u32, String>,
}

impl RecordInterner {
    fn new(asn: &Layers<AsnInfo>) -> Self {
        let mut counts: HashMap<(u32, &str), u64> = HashMap::new();
        for map in asn.v4.iter().chain(&asn.v6) {
            for (_, _, info) in &map.segments {
                if let Some(org) = &info.org {
                    *counts.entry((info.asn.0, org.as_str())).or_default() += 1;
                }
            }
        }
        let mut best: HashMap<u32, (u64, &str)> = HashMap::new();
        for ((asn, org), n) in counts {
            let e = best.entry(asn).or_insert((n, org));
            if n > e.0 || (n == e.0 && org < e.1) {
                *e = (n, org);
            }
        }
        let org_of_asn = best
            .into_iter()
            .map(|(a, (_, o))| (a, o.to_string()))
            .collect();
        let empty = RecordKey::default();
        RecordInterner {
            keys: vec![empty.clone()],
            ids: HashMap::from([(empty, 0)]),
            orgs: Vec::new(),
            org_ids: HashMap::new(),
            org_of_asn,
        }
    }

    fn org(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.org_ids.get(name) {
            return id;
        }
        let id = self.orgs.len() as u32;
        self.orgs.push(name.to_string());
        self.org_ids.insert(name.to_string(), id);
        id
    }

    fn id(&mut self, key: RecordKey) -> u32 {
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.ids.insert(key, id);
        id
    }
}

/// A cursor over one layer's segments, moved forward as the sweep advances.
struct Cursor<'a, V> {
    segs: &'a [(u128, u128, V)],
    i: usize,
}

impl<'a, V> Cursor<'a, V> {
    fn at(&mut self, key: u128) -> Option<&'a V> {
        while self.i < self.segs.len() && self.segs[self.i].1 < key {
            self.i += 1;
        }
        let s = self.segs.get(self.i)?;
        (s.0 <= key).then_some(&s.2)
    }
}

fn cursors<V>(maps: &[RangeMap<V>]) -> Vec<Cursor<'_, V>> {
    maps.iter()
        .map(|m| Cursor {
            segs: &m.segments,
            i: 0,
        })
        .collect()
}

/// Sweeps every boundary of every layer of one family and returns the merged
/// segments `(first, record id)`, starting at 0, adjacent equal records joined.
fn merge(family: Family, b: &SnapshotBuilder, recs: &mut RecordInterner) -> Vec<(u128, u32)> {
    let (asn, country, routes) = (
        b.asn.family(family),
        b.country.family(family),
        b.routes.family(family),
    );
    let mut bounds: Vec<u128> = vec![0];
    let mut add_bounds = |segs: &mut dyn Iterator<Item = (u128, u128)>| {
        for (first, last) in segs {
            bounds.push(first);
            if last < family.max() {
                bounds.push(last + 1);
            }
        }
    };
    for m in asn {
        add_bounds(&mut m.segments.iter().map(|s| (s.0, s.1)));
    }
    for m in country {
        add_bounds(&mut m.segments.iter().map(|s| (s.0, s.1)));
    }
    for m in routes {
        add_bounds(&mut m.segments.iter().map(|s| (s.0, s.1)));
    }
    bounds.sort_unstable();
    bounds.dedup();
    let (mut ca, mut cc, mut cr) = (cursors(asn), cursors(country), cursors(routes));
    let mut out: Vec<(u128, u32)> = Vec::new();
    for &key in &bounds {
        let reg = ca.iter_mut().find_map(|c| c.at(key));
        let route = cr.iter_mut().find_map(|c| c.at(key));
        let mut k = RecordKey {
            country: cc.iter_mut().find_map(|c| c.at(key)).map(|c| c.0),
            ..RecordKey::default()
        };
        match (route, reg) {
            (Some(r), reg) => {
                k.asn = Some(r.origin.0);
                k.routed = true;
                k.upstreams = r.upstreams.iter().map(|a| a.0).collect();
                let org = match reg {
                    Some(info) if info.asn == r.origin => info.org.clone(),
                    _ => recs.org_of_asn.get(&r.origin.0).cloned(),
                };
                k.org = org.map(|o| recs.org(&o));
            }
            (None, Some(info)) => {
                k.asn = Some(info.asn.0);
                k.org = info.org.as_deref().map(|o| recs.org(o));
            }
            (None, None) => {}
        }
        let id = recs.id(k);
        if out.last().map(|l| l.1) != Some(id) {
            out.push((key, id));
        }
    }
    out
}

/// Builds the IPv4 DIR-16-8-8 levels from merged segments.
fn v4_levels(segs: &[(u128, u32)]) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    use snapshot::PTR;
    let starts: Vec<u32> = segs.iter().map(|s| s.0 as u32).collect();
    let n = starts.len();
    let mut i = 0usize;
    // Moves `i` to the segment containing `a` (addresses are visited in order) and
    // says whether that segment also covers `top`.
    let mut seek = |a: u32, top: u32| -> (u32, bool) {
        while i + 1 < n && starts[i + 1] <= a {
            i += 1;
        }
        (segs[i].1, i + 1 == n || starts[i + 1] > top)
    };
    let mut l1 = Vec::with_capacity(1 << 16);
    let mut l2: Vec<u32> = Vec::new();
    let mut l3: Vec<u32> = Vec::new();
    for h in 0u32..1 << 16 {
        let base = h << 16;
        let (rec, whole) = seek(base, base | 0xffff);
        if whole {
            l1.push(rec);
            continue;
        }
        l1.push(PTR | (l2.len() / 256) as u32);
        for m in 0u32..256 {
            let base2 = base | (m << 8);
            let (rec, whole) = seek(base2, base2 | 0xff);
            if whole {
                l2.push(rec);
                continue;
            }
            l2.push(PTR | (l3.len() / 256) as u32);
            for k in 0u32..256 {
                l3.push(seek(base2 | k, base2 | k).0);
            }
        }
    }
    (l1, l2, l3)
}

/// For each top-16-bit value h, the segment containing `h << 112`; then `n - 1`.
fn v6_index(starts: &[u128]) -> Vec<u32> {
    let mut idx = Vec::with_capacity((1 << 16) + 1);
    for h in 0u128..1 << 16 {
        let a = h << 112;
        idx.push((starts.partition_point(|&s| s <= a) - 1) as u32);
    }
    idx.push((starts.len() - 1) as u32);
    idx
}

fn serialise(
    meta: &SnapshotMeta,
    v4: &[(u128, u32)],
    v6: &[(u128, u32)],
    recs: &RecordInterner,
) -> Vec<u8> {
    use snapshot::*;
    let (l1, l2, l3) = v4_levels(v4);
    let v6_starts: Vec<u128> = v6.iter().map(|s| s.0).collect();
    let mut strings = String::new();
    let mut org_at: Vec<(u32, u32)> = Vec::with_capacity(recs.orgs.len());
    for o in &recs.orgs {
        org_at.push((strings.len() as u32, o.len() as u32));
        strings.push_str(o);
    }
    let mut upstreams: Vec<u32> = Vec::new();
    let mut records: Vec<u32> = Vec::with_capacity(recs.keys.len() * RECORD_WORDS);
    for k in &recs.keys {
        let mut flags = 0;
        let (org_off, org_len) = match k.org {
            Some(o) => {
                flags |= F_ORG;
                org_at[o as usize]
            }
            None => (0, 0),
        };
        if k.asn.is_some() {
            flags |= F_ASN;
        }
        if k.routed {
            flags |= F_ROUTED;
        }
        let country = match k.country {
            Some([a, b]) => {
                flags |= F_COUNTRY;
                u32::from(a) | (u32::from(b) << 8)
            }
            None => 0,
        };
        let up_off = upstreams.len() as u32;
        upstreams.extend(&k.upstreams);
        records.extend([
            k.asn.unwrap_or(0),
            org_off,
            org_len,
            country | (flags << 16),
            up_off,
            k.upstreams.len() as u32,
        ]);
    }
    let meta_json = serde_json::to_vec(meta).expect("metadata serialises");
    let u32s = |v: &[u32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let mut sections: Vec<Vec<u8>> = vec![Vec::new(); SECTIONS];
    sections[META] = meta_json;
    sections[V4_L1] = u32s(&l1);
    sections[V4_L2] = u32s(&l2);
    sections[V4_L3] = u32s(&l3);
    sections[V4_STARTS] = u32s(&v4.iter().map(|s| s.0 as u32).collect::<Vec<_>>());
    sections[V4_RECS] = u32s(&v4.iter().map(|s| s.1).collect::<Vec<_>>());
    sections[V6_INDEX] = u32s(&v6_index(&v6_starts));
    sections[V6_STARTS] = v6_starts.iter().flat_map(|x| x.to_le_bytes()).collect();
    sections[V6_RECS] = u32s(&v6.iter().map(|s| s.1).collect::<Vec<_>>());
    sections[RECORDS] = u32s(&records);
    sections[STRINGS] = strings.into_bytes();
    sections[UPSTREAMS] = u32s(&upstreams);

    let header = 16 + SECTIONS * 16;
    let mut out = Vec::with_capacity(header + sections.iter().map(|s| s.len() + 16).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(SECTIONS as u32).to_le_bytes());
    out.resize(header, 0);
    for (i, s) in sections.iter().enumerate() {
        out.resize(out.len().div_ceil(16) * 16, 0);
        let off = out.len() as u64;
        out[16 + i * 16..24 + i * 16].copy_from_slice(&off.to_le_bytes());
        out[24 + i * 16..32 + i * 16].copy_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s);
    }
    out
}
