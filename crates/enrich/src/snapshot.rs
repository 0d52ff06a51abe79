//! The snapshot file: one immutable, digest-named file holding every lookup table.
//!
//! Layout (all integers little-endian; every section starts on a 16-byte boundary so
//! it can be viewed in place as `u32`/`u128` slices after one read):
//! ```text
//! 0   magic "RTSNAP01"
//! 8   u32 format version (1), u32 section count (12)
//! 16  section table: per section, u64 offset and u64 length in bytes
//! ..  sections, in this order:
//!     META       JSON: sources (file, version, licence, credit, SHA-256, counts), precedence
//!     V4_L1      u32 x 65536: entry per /16
//!     V4_L2      u32 blocks of 256: entry per /24 of a mixed /16
//!     V4_L3      u32 blocks of 256: entry per address of a mixed /24
//!     V4_STARTS  u32: first address of each merged IPv4 segment (starts at 0)
//!     V4_RECS    u32: record id of each IPv4 segment
//!     V6_INDEX   u32 x 65537: segment containing (h << 112), for each top-16-bit value h
//!     V6_STARTS  u128: first address of each merged IPv6 segment (starts at 0)
//!     V6_RECS    u32: record id of each IPv6 segment
//!     RECORDS    u32 x 6 per record: asn, org offset, org length,
//!                country (2 bytes) | flags << 16, upstreams offset, upstreams count
//!     STRINGS    UTF-8 organisation names
//!     UPSTREAMS  u32 AS numbers
//! ```
//! IPv4 entries are DIR-16-8-8 style: the top bit set means "pointer to a 256-entry
//! block of the next level", otherwise the entry is a record id. A lookup is one to
//! three dependent loads, with no search and no branch on data beyond the tag bit.
//! IPv6 space is sparse and its prefixes long, so it uses the sorted segments with a
//! top-16-bit index narrowing the binary search to the segments of one /16.
//!
//! The digest is the SHA-256 of the whole file; files are named `<digest>.rtsnap`.
//! Record id 0 is the empty record: an address no source covers.

use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EnrichError, IoContext};
use crate::types::{covering_prefix, key_of, Asn, CountryCode, Family};

/// First eight bytes of every snapshot file.
pub const MAGIC: &[u8; 8] = b"RTSNAP01";
/// Version of the layout above; readers refuse others.
pub const FORMAT_VERSION: u32 = 1;
/// File name extension of snapshots.
pub const EXTENSION: &str = "rtsnap";
/// Tag bit of IPv4 table entries that point to a next-level block.
pub(crate) const PTR: u32 = 1 << 31;
/// Number of sections (see the module documentation for their order).
pub(crate) const SECTIONS: usize = 12;
pub(crate) const META: usize = 0;
pub(crate) const V4_L1: usize = 1;
pub(crate) const V4_L2: usize = 2;
pub(crate) const V4_L3: usize = 3;
pub(crate) const V4_STARTS: usize = 4;
pub(crate) const V4_RECS: usize = 5;
pub(crate) const V6_INDEX: usize = 6;
pub(crate) const V6_STARTS: usize = 7;
pub(crate) const V6_RECS: usize = 8;
pub(crate) const RECORDS: usize = 9;
pub(crate) const STRINGS: usize = 10;
pub(crate) const UPSTREAMS: usize = 11;
/// `u32` words per record in `RECORDS`.
pub(crate) const RECORD_WORDS: usize = 6;

/// Record flag: the record has an AS number.
pub(crate) const F_ASN: u32 = 1;
/// Record flag: the record has a country.
pub(crate) const F_COUNTRY: u32 = 2;
/// Record flag: the AS number comes from routing data (MRT), not a registry.
pub(crate) const F_ROUTED: u32 = 4;
/// Record flag: the record has an organisation name.
pub(crate) const F_ORG: u32 = 8;

/// One source as recorded in the snapshot, so every enriched value can be traced to
/// the files (and their digests and licences) behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMeta {
    /// What kind of source (`asn-csv`, `country-csv`, `asn-mmdb`, `country-mmdb`, `mrt`).
    pub kind: String,
    /// The file's name (no directory: snapshots must not depend on where data lived).
    pub file: String,
    /// SHA-256 of the file as read.
    pub sha256: String,
    /// The package or dataset it came from, e.g. `@ip-location-db/asn@2.3.2026061719`.
    pub package: Option<String>,
    /// Licence of the data, e.g. `CC-BY-4.0`.
    pub licence: Option<String>,
    /// Attribution the licence requires, shown by `data status`.
    pub credit: Option<String>,
    /// Rows (or networks, or RIB entries) accepted.
    pub rows: u64,
    /// Rows skipped as malformed.
    pub rejected: u64,
    /// Rows that overlapped others and were resolved by the overlap rule.
    pub overlaps: u64,
}

/// The snapshot's own description, stored in its `META` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format: u32,
    /// Sources in precedence order within each field.
    pub sources: Vec<SourceMeta>,
    /// The precedence rule, in words, as applied to this snapshot.
    pub precedence: String,
    /// Merged IPv4 segments.
    pub v4_segments: u64,
    /// Merged IPv6 segments.
    pub v6_segments: u64,
    /// Distinct records (including the empty record 0).
    pub records: u64,
}

/// What the snapshot knows about an address. Fields are `None` when no source says
/// anything; callers print that as "unknown", never as an empty string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Origin AS.
    pub asn: Option<Asn>,
    /// Organisation holding the AS.
    pub org: Option<&'a str>,
    /// Country the address is registered or geolocated in.
    pub country: Option<CountryCode>,
    /// ASes seen adjacent to the origin on AS paths towards this prefix (from MRT
    /// RIBs): the networks through which the origin is reached.
    pub upstreams: Vec<Asn>,
    /// True when `asn` comes from routing data (MRT) rather than registry data.
    pub asn_from_routing: bool,
}

/// A lookup answer with the segment it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'a> {
    /// Record id (0: no source covers the address).
    pub record_id: u32,
    /// What the sources say.
    pub record: Record<'a>,
    /// First address of the merged segment holding the address (a segment is a
    /// maximal run of addresses with the same record).
    pub first: IpAddr,
    /// Last address of that segment.
    pub last: IpAddr,
    /// The largest CIDR block inside the segment that contains the address.
    pub prefix: (IpAddr, u8),
}

/// A loaded snapshot: the file's bytes, read once into 16-byte-aligned memory, and
/// the offsets of its sections. Lookups view the sections in place (no copy, no
/// parsing), so loading costs one read plus a validation pass.
pub struct Snapshot {
    buf: Vec<u128>,
    sections: [Range<usize>; SECTIONS],
    digest: String,
    meta: SnapshotMeta,
    path: PathBuf,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("path", &self.path)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// Borrowed views of a snapshot's tables: the hot-path lookup API.
#[derive(Clone, Copy)]
pub struct Tables<'a> {
    l1: &'a [u32],
    l2: &'a [u32],
    l3: &'a [u32],
    v4_starts: &'a [u32],
    v4_recs: &'a [u32],
    v6_index: &'a [u32],
    v6_starts: &'a [u128],
    v6_recs: &'a [u32],
    records: &'a [u32],
    strings: &'a str,
    upstreams: &'a [u32],
}

impl Snapshot {
    /// Loads a snapshot with one read and checks its structure (every table entry
    /// points inside its table), so lookups can never index out of bounds. The
    /// digest is taken from a `<sha256>.rtsnap` file name when there is one (use
    /// [`Snapshot::verify_digest`] to recompute it), otherwise computed.
    pub fn open(path: &Path) -> Result<Snapshot, EnrichError> {
        let mut file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len() as usize;
        let mut buf = vec![0u128; len.div_ceil(16)];
        file.read_exact(&mut bytemuck::cast_slice_mut::<u128, u8>(&mut buf)[..len])
            .at(path)?;
        let named = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .filter(|_| path.extension().and_then(|e| e.to_str()) == Some(EXTENSION))
            .map(str::to_ascii_lowercase);
        let digest = match named {
            Some(d) => d,
            None => hex::encode(Sha256::digest(
                &bytemuck::cast_slice::<u128, u8>(&buf)[..len],
            )),
        };
        Snapshot::from_parts(buf, len, digest, path)
    }

    /// Like [`Snapshot::open`], then recomputes the SHA-256 of the bytes read and
    /// refuses a file whose content does not match its name.
    pub fn open_verified(path: &Path) -> Result<Snapshot, EnrichError> {
        let snap = Snapshot::open(path)?;
        snap.verify_digest()?;
        Ok(snap)
    }

    /// Loads a snapshot from bytes in memory (computing the digest).
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot, EnrichError> {
        let mut buf = vec![0u128; bytes.len().div_ceil(16)];
        bytemuck::cast_slice_mut::<u128, u8>(&mut buf)[..bytes.len()].copy_from_slice(bytes);
        let digest = hex::encode(Sha256::digest(bytes));
        Snapshot::from_parts(buf, bytes.len(), digest, Path::new("<memory>"))
    }

    fn from_parts(
        buf: Vec<u128>,
        len: usize,
        digest: String,
        path: &Path,
    ) -> Result<Snapshot, EnrichError> {
        let bad = |reason: String| EnrichError::BadSnapshot {
            path: path.to_path_buf(),
            reason,
        };
        if cfg!(target_endian = "big") {
            return Err(bad("snapshots are little-endian; this host is not".into()));
        }
        let bytes = &bytemuck::cast_slice::<u128, u8>(&buf)[..len];
        let header = 16 + SECTIONS * 16;
        if len < header || &bytes[..8] != MAGIC {
            return Err(bad("no RTSNAP01 header".into()));
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let long = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        if word(8) != FORMAT_VERSION || word(12) as usize != SECTIONS {
            return Err(bad(format!(
                "format {} with {} sections; this version reads format {FORMAT_VERSION}",
                word(8),
                word(12)
            )));
        }
        let mut sections: [Range<usize>; SECTIONS] = Default::default();
        for (i, s) in sections.iter_mut().enumerate() {
            let off = long(16 + i * 16);
            let n = long(24 + i * 16);
            let end = off.checked_add(n).filter(|&e| e <= len as u64);
            let (Some(end), true) = (end, off % 16 == 0 && off as usize >= header) else {
                return Err(bad(format!(
                    "section {i} lies outside the file or is misaligned"
                )));
            };
            *s = off as usize..end as usize;
        }
        let meta: SnapshotMeta = serde_json::from_slice(&bytes[sections[META].clone()])
            .map_err(|e| bad(format!("metadata: {e}")))?;
        let snap = Snapshot {
            buf,
            sections,
            digest,
            meta,
            path: path.to_path_buf(),
        };
        snap.validate().map_err(bad)?;
        Ok(snap)
    }

    /// SHA-256 (hex) of the snapshot file: the name every enriched value carries.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Sources, counts and precedence recorded in the snapshot.
    pub fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// Size of the snapshot in bytes.
    pub fn size_bytes(&self) -> usize {
        self.sections.iter().map(|s| s.end).max().unwrap_or(0)
    }

    /// Recomputes the SHA-256 of the loaded bytes and compares it with the digest.
    pub fn verify_digest(&self) -> Result<(), EnrichError> {
        let len = self.size_bytes();
        let actual = hex::encode(Sha256::digest(
            &bytemuck::cast_slice::<u128, u8>(&self.buf)[..len],
        ));
        if actual != self.digest {
            return Err(EnrichError::DigestMismatch {
                path: self.path.clone(),
                expected: self.digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    fn bytes(&self, section: usize) -> &[u8] {
        &bytemuck::cast_slice::<u128, u8>(&self.buf)[self.sections[section].clone()]
    }

    fn words(&self, section: usize) -> Result<&[u32], String> {
        bytemuck::try_cast_slice(self.bytes(section))
            .map_err(|e| format!("section {section}: {e:?}"))
    }

    fn tables_checked(&self) -> Result<Tables<'_>, String> {
        Ok(Tables {
            l1: self.words(V4_L1)?,
            l2: self.words(V4_L2)?,
            l3: self.words(V4_L3)?,
            v4_starts: self.words(V4_STARTS)?,
            v4_recs: self.words(V4_RECS)?,
            v6_index: self.words(V6_INDEX)?,
            v6_starts: bytemuck::try_cast_slice(self.bytes(V6_STARTS))
                .map_err(|e| format!("IPv6 starts: {e:?}"))?,
            v6_recs: self.words(V6_RECS)?,
            records: self.words(RECORDS)?,
            strings: std::str::from_utf8(self.bytes(STRINGS))
                .map_err(|e| format!("organisation names: {e}"))?,
            upstreams: self.words(UPSTREAMS)?,
        })
    }

    /// Checks every invariant lookups rely on; run once at load.
    fn validate(&self) -> Result<(), String> {
        let t = self.tables_checked()?;
        if t.records.len() % RECORD_WORDS != 0 || t.records.is_empty() {
            return Err("record table is not a whole number of records".into());
        }
        let nrec = (t.records.len() / RECORD_WORDS) as u32;
        let (l2_blocks, l3_blocks) = ((t.l2.len() / 256) as u32, (t.l3.len() / 256) as u32);
        if t.l1.len() != 1 << 16 || t.l2.len() % 256 != 0 || t.l3.len() % 256 != 0 {
            return Err("IPv4 table levels have the wrong sizes".into());
        }
        let entry_ok = |e: u32, blocks: u32| {
            if e & PTR != 0 {
                e & !PTR < blocks
            } else {
                e < nrec
            }
        };
        if !t.l1.iter().all(|&e| entry_ok(e, l2_blocks))
            || !t.l2.iter().all(|&e| entry_ok(e, l3_blocks))
            || !t.l3.iter().all(|&e| e & PTR == 0 && e < nrec)
        {
            return Err("IPv4 table entry points outside its table".into());
        }
        let segs_ok = |n_starts: usize, recs: &[u32]| {
            n_starts == recs.len() && n_starts > 0 && recs.iter().all(|&r| r < nrec)
        };
        if !segs_ok(t.v4_starts.len(), t.v4_recs)
            || t.v4_starts[0] != 0
            || !t.v4_starts.windows(2).all(|w| w[0] < w[1])
        {
            return Err("IPv4 segments are not sorted from 0".into());
        }
        if !segs_ok(t.v6_starts.len(), t.v6_recs)
            || t.v6_starts[0] != 0
            || !t.v6_starts.windows(2).all(|w| w[0] < w[1])
        {
            return Err("IPv6 segments are not sorted from 0".into());
        }
        let n6 = t.v6_starts.len() as u32;
        if t.v6_index.len() != (1 << 16) + 1
            || !t.v6_index.windows(2).all(|w| w[0] <= w[1])
            || t.v6_index.iter().any(|&i| i >= n6)
        {
            return Err("IPv6 index is not monotonic inside the segments".into());
        }
        for r in t.records.chunks_exact(RECORD_WORDS) {
            let (off, len) = (r[1] as usize, r[2] as usize);
            let end = off.saturating_add(len);
            if end > t.strings.len()
                || !t.strings.is_char_boundary(off)
                || !t.strings.is_char_boundary(end)
            {
                return Err("organisation name outside the string table".into());
            }
            let uend = (r[4] as usize).saturating_add(r[5] as usize);
            if uend > t.upstreams.len() {
                return Err("upstream list outside its table".into());
            }
        }
        Ok(())
    }

    /// Views of the tables for hot loops (validated at load, so this cannot fail).
    pub fn tables(&self) -> Tables<'_> {
        self.tables_checked()
            .expect("validated when the snapshot was loaded")
    }

    /// Everything the snapshot knows about `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Hit<'_> {
        self.tables().lookup(addr)
    }
}

impl<'a> Tables<'a> {
    /// Record id of an IPv4 address: one to three dependent loads.
    #[inline]
    pub fn v4(&self, addr: u32) -> u32 {
        let e = self.l1[(addr >> 16) as usize];
        if e & PTR == 0 {
            return e;
        }
        let e = self.l2[(((e & !PTR) as usize) << 8) | ((addr >> 8) & 0xff) as usize];
        if e & PTR == 0 {
            return e;
        }
        self.l3[(((e & !PTR) as usize) << 8) | (addr & 0xff) as usize]
    }

    /// Record ids of many IPv4 addresses. Lookups are independent, so the CPU
    /// overlaps their memory loads; this is the form trace and block should use.
    pub fn v4_batch(&self, addrs: &[u32], out: &mut [u32]) {
        for (a, o) in addrs.iter().zip(out.iter_mut()) {
            *o = self.v4(*a);
        }
    }

    /// Index of the IPv6 segment holding `addr`.
    #[inline]
    fn v6_segment(&self, addr: u128) -> usize {
        let h = (addr >> 112) as usize;
        let lo = self.v6_index[h] as usize;
        let hi = self.v6_index[h + 1] as usize;
        // starts[lo] <= h << 112 <= addr, so the answer is in lo..=hi.
        lo + self.v6_starts[lo..=hi].partition_point(|&s| s <= addr) - 1
    }

    /// Record id of an IPv6 address: an index load and a binary search among the
    /// segments of its /16.
    #[inline]
    pub fn v6(&self, addr: u128) -> u32 {
        self.v6_recs[self.v6_segment(addr)]
    }

    /// The record with id `id` (ids come from [`Tables::v4`] / [`Tables::v6`]).
    pub fn record(&self, id: u32) -> Record<'a> {
        let base = id as usize * RECORD_WORDS;
        let r = &self.records[base..base + RECORD_WORDS];
        let flags = r[3] >> 16;
        let has = |f: u32| flags & f != 0;
        let [c0, c1, _, _] = r[3].to_le_bytes();
        Record {
            asn: has(F_ASN).then_some(Asn(r[0])),
            org: has(F_ORG).then(|| &self.strings[r[1] as usize..r[1] as usize + r[2] as usize]),
            country: has(F_COUNTRY).then_some(CountryCode([c0, c1])),
            upstreams: self.upstreams[r[4] as usize..r[4] as usize + r[5] as usize]
                .iter()
                .map(|&a| Asn(a))
                .collect(),
            asn_from_routing: has(F_ROUTED),
        }
    }

    /// Everything known about `addr`, with its segment and covering prefix.
    pub fn lookup(&self, addr: IpAddr) -> Hit<'a> {
        let (family, key) = key_of(addr);
        let (id, first, last) = match family {
            Family::V4 => {
                let a = key as u32;
                let i = self.v4_starts.partition_point(|&s| s <= a) - 1;
                let last = self.v4_starts.get(i + 1).map_or(u32::MAX, |&next| next - 1);
                (self.v4(a), u128::from(self.v4_starts[i]), u128::from(last))
            }
            Family::V6 => {
                let i = self.v6_segment(key);
                let last = self.v6_starts.get(i + 1).map_or(u128::MAX, |&n| n - 1);
                (self.v6_recs[i], self.v6_starts[i], last)
            }
        };
        Hit {
            record_id: id,
            record: self.record(id),
            first: family.addr(first),
            last: family.addr(last),
            prefix: covering_prefix(family, key, first, last),
        }
    }
}
