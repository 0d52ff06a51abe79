//! Enriching a case: the addresses of its connections looked up in one snapshot,
//! written as an enrichment table (`tables/enrich/<snap16>-<content16>.jsonl`, one
//! JSON object per address) and committed by an `enrich` ledger entry that names the
//! snapshot and its sources. Trace and block read the tables back through
//! `relaytrace_store::enrichment` (in ledger order, later answers winning).
//!
//! Enrichment is incremental, because `ingest` runs it after every input: a run looks
//! up only the addresses of conns tables committed since the newest `enrich` entry of
//! the same snapshot that the snapshot has not answered for yet, and writes a table of
//! those alone. Before, each run wrote every address of the case again, so a case fed
//! one file at a time grew by a full table per file (a 2 M-record NetFlow case: 388 MB
//! and 5 s for each six-connection ingest after it). What the snapshot has answered is
//! read from its own tables (one line per distinct address), not from the earlier
//! connections (one row per flow, and as many tables as files fed).

use std::fmt;
use std::fs;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::PathBuf;

use relaytrace_store::{columns::scan_columns, digest::HashingWriter, Case, LedgerEntry};
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::{EnrichError, IoContext};
use crate::types::Asn;
use crate::{Hit, Snapshot};

/// One address as the table (and `relaytrace whois --format json`) states it. Fields
/// in alphabetical order: the order the table's lines have always had, so a table
/// written by this serialiser is byte for byte what the earlier `json!` map gave.
#[derive(Serialize)]
struct HitLine<'a> {
    addr: &'a str,
    asn: Option<u32>,
    asn_source: Option<&'static str>,
    country: Option<&'a str>,
    org: Option<&'a str>,
    #[serde(serialize_with = "prefix_text")]
    prefix: Option<(IpAddr, u8)>,
    snapshot: &'a str,
    status: &'static str,
    #[serde(serialize_with = "asn_numbers")]
    upstreams: &'a [Asn],
}

impl<'a> HitLine<'a> {
    fn new(addr: &'a str, hit: &'a Hit<'a>, snapshot: &'a str) -> Self {
        let r = &hit.record;
        let known = hit.record_id != 0;
        HitLine {
            addr,
            asn: r.asn.map(|a| a.0),
            asn_source: r.asn.map(|_| {
                if r.asn_from_routing {
                    "routing"
                } else {
                    "registry"
                }
            }),
            country: r.country.as_ref().map(|c| c.as_str()),
            org: r.org,
            prefix: known.then_some(hit.prefix),
            snapshot,
            status: if known { "known" } else { "unknown" },
            upstreams: &r.upstreams,
        }
    }
}

fn prefix_text<S: Serializer>(p: &Option<(IpAddr, u8)>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some((ip, len)) => s.collect_str(&format_args!("{ip}/{len}")),
        None => s.serialize_none(),
    }
}

fn asn_numbers<S: Serializer>(asns: &&[Asn], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(asns.len()))?;
    for a in asns.iter() {
        seq.serialize_element(&a.0)?;
    }
    seq.end()
}

/// One address as the table (and `relaytrace whois --format json`) states it.
pub fn hit_json(addr: &str, hit: &Hit<'_>, snapshot: &str) -> Value {
    serde_json::to_value(HitLine::new(addr, hit, snapshot)).expect("a hit always serialises")
}

/// What [`enrich_case`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichOutcome {
    /// Addresses looked up and written by this run: those of the case that the
    /// snapshot had not answered for yet.
    pub addresses: u64,
    /// Of those, the ones the snapshot knows.
    pub known: u64,
    /// Distinct addresses of the whole case the snapshot has now answered for (this
    /// run's and earlier runs').
    pub case_addresses: u64,
    /// The snapshot's digest.
    pub snapshot: String,
    /// The table written, relative to the case; when nothing was added, the newest
    /// table of this snapshot (empty if there is none: a case without connections).
    pub path: String,
    /// False when every address already had this snapshot's answer (no table added).
    pub added: bool,
    /// Conns tables this run read for the first time (committed since the snapshot's
    /// newest run). Without a new address among them the run still records them as
    /// covered: a ledger entry without a table.
    pub new_tables: u64,
    /// Connection rows whose `orig_h` or `resp_h` is not an address (skipped, counted).
    pub skipped: u64,
}

impl fmt::Display for EnrichOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.added {
            write!(
                f,
                "enriched {} addresses ({} known, {} unknown) with snapshot {}",
                self.addresses,
                self.known,
                self.addresses - self.known,
                self.snapshot,
            )?;
            if self.case_addresses > self.addresses {
                write!(
                    f,
                    "; {} addresses of the case in all ({} already enriched)",
                    self.case_addresses,
                    self.case_addresses - self.addresses
                )?;
            }
            write!(f, "\n  {}", self.path)?;
        } else {
            write!(
                f,
                "already enriched: {} addresses with snapshot {}",
                self.case_addresses, self.snapshot
            )?;
            if !self.path.is_empty() {
                write!(f, " ({})", self.path)?;
            }
            if self.new_tables > 0 {
                write!(
                    f,
                    "; no new address in {} new conns table(s): ledger entry only, no table",
                    self.new_tables
                )?;
            } else {
                write!(f, "; nothing added")?;
            }
        }
        if self.skipped > 0 {
            write!(
                f,
                "\n  {} value(s) that are not addresses skipped",
                self.skipped
            )?;
        }
        Ok(())
    }
}

/// The case's conns tables in commit order, split where this snapshot's answers end.
struct Coverage {
    /// How many tables have every address answered by this snapshot already.
    covered: usize,
    /// The enrichment tables holding those answers: the tables of this snapshot's
    /// trailing run of `enrich` entries (since another snapshot last answered). The
    /// run's first entry answered for every address of the case then (nothing was
    /// covered), each later one for what came since, so together they hold exactly
    /// the addresses of the covered conns tables, once per distinct address.
    answered: Vec<PathBuf>,
    /// Tables committed since (relative path as the ledger names it, and full path).
    new: Vec<(String, PathBuf)>,
    /// When the newest `enrich` entry used this snapshot: the snapshot's newest table
    /// and the number of case addresses that entry said were covered.
    newest: Option<(String, u64)>,
}

/// Which conns tables `snapshot` covers: those committed before the newest `enrich`
/// entry, when that entry used `snapshot`. Every run covers every table before it (the
/// first run of a snapshot all of them, a later one what came since), so the newest
/// entry's position says what is covered. When the newest entry used another snapshot
/// its answers win for every address it gave (tables are read in ledger order), so
/// nothing is covered and the run redoes the whole case. Entries written before
/// enrichment was incremental always covered the whole case, so the rule holds for
/// them too.
fn coverage(case: &Case, entries: &[LedgerEntry], snapshot: &str) -> Coverage {
    let mut tables: Vec<String> = Vec::new();
    // A case fed one file at a time has thousands of tables: no linear search per one.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let mut covered_upto = 0;
    let mut newest: Option<&LedgerEntry> = None;
    let mut run: Vec<&str> = Vec::new();
    for e in entries {
        if e.kind() == "enrich" {
            newest = Some(e);
            covered_upto = tables.len();
            if e.str_field("snapshot") != Some(snapshot) {
                run.clear();
            }
            let outputs = e.body.get("outputs").and_then(Value::as_array);
            run.extend(
                outputs
                    .into_iter()
                    .flatten()
                    .filter(|o| o.get("table").and_then(Value::as_str) == Some("enrich"))
                    .filter_map(|o| o.get("path").and_then(Value::as_str)),
            );
            continue;
        }
        let outputs = e.body.get("outputs").and_then(Value::as_array);
        for out in outputs.into_iter().flatten() {
            if out.get("table").and_then(Value::as_str) != Some("conns") {
                continue;
            }
            if let Some(p) = out.get("path").and_then(Value::as_str) {
                if seen.insert(p) {
                    tables.push(p.to_string());
                }
            }
        }
    }
    let newest = newest
        .filter(|e| e.str_field("snapshot") == Some(snapshot))
        .map(|e| {
            // The newest table of the snapshot (an entry that found nothing new has
            // none of its own).
            let path = run.last().map(|p| p.to_string()).unwrap_or_default();
            // Entries from before incremental runs have no `case_addresses`: their
            // table held every address of the case.
            let count = e
                .body
                .get("case_addresses")
                .or_else(|| e.body.get("addresses"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            (path, count)
        });
    if newest.is_none() {
        covered_upto = 0;
        run.clear();
    }
    let root = case.root();
    Coverage {
        covered: covered_upto,
        answered: run.iter().map(|p| root.join(p)).collect(),
        new: tables[covered_upto..]
            .iter()
            .map(|p| (p.clone(), root.join(p)))
            .collect(),
        newest,
    }
}

/// Calls `each` with every address of `files`' `orig_h` and `resp_h` columns (typed
/// column reads of those two columns only); values that are not addresses are counted
/// in `skipped`.
fn for_each_address(
    files: &[PathBuf],
    skipped: &mut u64,
    mut each: impl FnMut(IpAddr),
) -> Result<(), EnrichError> {
    for file in files {
        scan_columns(file, &["orig_h", "resp_h"], |_, batch| {
            for row in 0..batch.rows() {
                for col in 0..2 {
                    match batch.text(col, row).map(str::parse::<IpAddr>) {
                        Some(Ok(a)) => each(a),
                        _ => *skipped += 1,
                    }
                }
            }
            true
        })?;
    }
    Ok(())
}

/// Distinct addresses of `files`, sorted (the table's line order). A sorted,
/// deduplicated vector rather than a set: on 1.9 M mostly distinct addresses, B-tree
/// search and insertion were 30 % of the enrich profile with the `BTreeSet` this
/// replaced (the per-line JSON maps, replaced too, shared those symbols).
fn table_addresses(files: &[PathBuf], skipped: &mut u64) -> Result<Vec<IpAddr>, EnrichError> {
    let mut addrs: Vec<IpAddr> = Vec::new();
    // Compact now and then, so repeated addresses (most of real traffic) do not pile up.
    let mut compact_at = 1 << 20;
    for_each_address(files, skipped, |a| {
        addrs.push(a);
        if addrs.len() >= compact_at {
            addrs.sort_unstable();
            addrs.dedup();
            compact_at = (addrs.len() * 2).max(1 << 20);
        }
    })?;
    addrs.sort_unstable();
    addrs.dedup();
    Ok(addrs)
}

/// The address a table line states: read straight from the line's start when it
/// has the form every table has (`{"addr":"…",` first: the fields are in alphabetical
/// order), else by parsing the line. Only the address is needed, and a full parse of
/// each line was most of the cost of reading a large table back.
fn line_address(line: &str) -> Option<IpAddr> {
    if let Some(rest) = line.strip_prefix(r#"{"addr":""#) {
        if let Some(end) = rest.find('"') {
            if let Ok(a) = rest[..end].parse() {
                return Some(a);
            }
        }
    }
    #[derive(serde::Deserialize)]
    struct AddrOnly {
        addr: Option<String>,
    }
    serde_json::from_str::<AddrOnly>(line)
        .ok()?
        .addr?
        .parse()
        .ok()
}

/// `addrs` (sorted) without those that some line of the enrichment tables `files`
/// states; a line without an address is an error naming file and line. Memory stays with `addrs` (the new input's addresses), however large the
/// tables are.
fn without_answered(addrs: Vec<IpAddr>, files: &[PathBuf]) -> Result<Vec<IpAddr>, EnrichError> {
    use std::io::BufRead as _;
    let mut seen = vec![false; addrs.len()];
    let mut line = String::new();
    for file in files {
        let f = fs::File::open(file).at(file)?;
        let mut r = std::io::BufReader::with_capacity(1 << 16, f);
        let mut n = 0u64;
        loop {
            line.clear();
            if r.read_line(&mut line).at(file)? == 0 {
                break;
            }
            n += 1;
            let text = line.trim_end();
            if text.is_empty() {
                continue;
            }
            // A line without an address is an error, as for every reader of these
            // tables: skipping it would look its address up again without a word.
            let a = line_address(text).ok_or_else(|| EnrichError::BadTableLine {
                path: file.clone(),
                line: n,
            })?;
            if let Ok(i) = addrs.binary_search(&a) {
                seen[i] = true;
            }
        }
    }
    Ok(addrs
        .into_iter()
        .zip(seen)
        .filter_map(|(a, seen)| (!seen).then_some(a))
        .collect())
}

/// Looks up the case's addresses that `snap` has not answered for yet and records
/// them as one table, under the case lock (the caller must not hold it): written to a
/// temporary file while hashed, synced, renamed into `tables/enrich/`, then the ledger
/// entry. Which addresses are new is decided by `coverage`: those of conns tables
/// committed since this snapshot's newest run, less those its tables already answer for.
/// New conns tables without a new address add an entry without a table (so they are
/// not read again); no new conns table adds nothing. The snapshot's digest is
/// rechecked first: evidence must name exactly the data that said it.
pub fn enrich_case(case: &Case, snap: &Snapshot) -> Result<EnrichOutcome, EnrichError> {
    snap.verify_digest()?;
    let _lock = case.lock()?;
    let entries = case.ledger().entries()?;
    let cov = coverage(case, &entries, snap.digest());
    let mut outcome = EnrichOutcome {
        addresses: 0,
        known: 0,
        case_addresses: cov.newest.as_ref().map_or(0, |n| n.1),
        snapshot: snap.digest().to_string(),
        path: cov.newest.as_ref().map(|n| n.0.clone()).unwrap_or_default(),
        added: false,
        new_tables: cov.new.len() as u64,
        skipped: 0,
    };
    if cov.new.is_empty() {
        return Ok(outcome);
    }
    let new_files: Vec<PathBuf> = cov.new.iter().map(|(_, p)| p.clone()).collect();
    let mut addrs = table_addresses(&new_files, &mut outcome.skipped)?;
    if cov.covered > 0 {
        addrs = without_answered(addrs, &cov.answered)?;
    } else {
        outcome.case_addresses = 0;
    }
    if addrs.is_empty() {
        // Nothing to look up, but the ledger must say these tables are covered: without
        // an entry the next run would read them again, and a case fed file by file
        // whose files bring no new address would redo every such file at each ingest.
        let mut fields = entry_fields(snap, &outcome, 0, &cov.new);
        fields.insert("outputs".into(), json!([]));
        case.ledger().append("enrich", fields)?;
        return Ok(outcome);
    }

    let tmp_dir = case.tmp_dir();
    fs::create_dir_all(&tmp_dir).at(&tmp_dir)?;
    remove_interrupted_tables(&tmp_dir)?;
    let tmp = tmp_dir.join(format!("enrich-{}.partial", std::process::id()));
    let file = fs::File::create(&tmp).at(&tmp)?;
    let mut w = HashingWriter::new(BufWriter::new(file));
    let t = snap.tables();
    let mut known = 0u64;
    let mut text = String::new();
    // Lines are serialised into a block and the block written at once: with
    // serde_json's many small writes straight into the hashing writer, `write_all` and
    // `memmove` were 24 % and 14 % of the run's samples (perf, the 2 M-record case).
    let mut block: Vec<u8> = Vec::with_capacity(1 << 17);
    for a in &addrs {
        let hit = t.lookup(*a);
        known += u64::from(hit.record_id != 0);
        text.clear();
        {
            use std::fmt::Write as _;
            write!(text, "{a}").expect("writing to a String");
        }
        serde_json::to_writer(&mut block, &HitLine::new(&text, &hit, snap.digest()))
            .expect("a hit always serialises");
        block.push(b'\n');
        if block.len() >= 1 << 16 {
            w.write_all(&block).at(&tmp)?;
            block.clear();
        }
    }
    w.write_all(&block).at(&tmp)?;
    let (digest, buffered) = w.finish();
    let file = buffered.into_inner().map_err(|e| e.into_error()).at(&tmp)?;
    file.sync_all().at(&tmp)?;
    drop(file);

    let path = format!(
        "tables/enrich/{}-{}.jsonl",
        &snap.digest()[..16],
        &digest[..16]
    );
    outcome.addresses = addrs.len() as u64;
    outcome.known = known;
    outcome.case_addresses += outcome.addresses;
    outcome.path = path.clone();
    let dest = case.root().join(&path);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).at(parent)?;
    }
    // A table with these very bytes may exist (a snapshot used again after another
    // one): same content, same name; the new entry makes its answers the newest.
    fs::rename(&tmp, &dest).at(&dest)?;
    // Scratch directory no longer needed (fails harmlessly if another file is in it).
    fs::remove_dir(&tmp_dir).ok();

    let mut fields = entry_fields(snap, &outcome, known, &cov.new);
    fields.insert(
        "outputs".into(),
        json!([{ "table": "enrich", "path": path, "sha256": digest }]),
    );
    case.ledger().append("enrich", fields)?;
    outcome.added = true;
    Ok(outcome)
}

/// Removes the tables of interrupted runs (`enrich-<pid>.partial` in the scratch
/// directory): under the case lock no other run is writing one, and none was ever
/// committed. Without this the debris stayed until the next ingest (which empties the
/// directory), noted by every `case verify` meanwhile.
fn remove_interrupted_tables(tmp_dir: &std::path::Path) -> Result<(), EnrichError> {
    for e in fs::read_dir(tmp_dir).at(tmp_dir)? {
        let path = e.at(tmp_dir)?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.starts_with("enrich-") && n.ends_with(".partial")) {
            fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(())
}

/// The fields of an `enrich` ledger entry but its outputs: the snapshot and its
/// sources, what this run added, what the case now has, the conns tables it read.
fn entry_fields(
    snap: &Snapshot,
    outcome: &EnrichOutcome,
    known: u64,
    read: &[(String, PathBuf)],
) -> Map<String, Value> {
    let m = snap.meta();
    let sources: Vec<Value> = m
        .sources
        .iter()
        .map(|s| json!({ "kind": s.kind, "file": s.file, "package": s.package, "sha256": s.sha256, "licence": s.licence }))
        .collect();
    let mut fields = Map::new();
    fields.insert("snapshot".into(), Value::String(snap.digest().into()));
    fields.insert("snapshot_sources".into(), Value::Array(sources));
    fields.insert("addresses".into(), Value::from(outcome.addresses));
    fields.insert("known".into(), Value::from(known));
    fields.insert("unknown".into(), Value::from(outcome.addresses - known));
    fields.insert("case_addresses".into(), Value::from(outcome.case_addresses));
    fields.insert(
        "conns_tables".into(),
        read.iter().map(|(p, _)| Value::from(p.as_str())).collect(),
    );
    fields.insert(
        "tool".into(),
        Value::String(relaytrace_store::TOOL_VERSION.into()),
    );
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The address comes from the line's start when the line has the table's form, and
    /// from a full parse when its fields come in another order; a line without one
    /// gives none.
    #[test]
    fn a_table_line_gives_its_address() {
        let a = |s: &str| line_address(s).map(|a| a.to_string());
        assert_eq!(
            a(r#"{"addr":"192.0.2.7","asn":64500,"status":"known"}"#).as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            a(r#"{"addr":"2001:db8::1","asn":null}"#).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            a(r#"{"asn":64500, "addr": "198.51.100.9"}"#).as_deref(),
            Some("198.51.100.9")
        );
        assert_eq!(a(r#"{"addr":"not an address"}"#), None);
        assert_eq!(a(r#"{"asn":1}"#), None);
        assert_eq!(a("garbage"), None);
    }

    /// Reading what a snapshot answered keeps the addresses no table states, and a
    /// table line without an address is an error naming the file and the line.
    #[test]
    fn answered_tables_are_read_line_by_line_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.jsonl");
        fs::write(&good, "{\"addr\":\"192.0.2.1\",\"asn\":1}\n\n").unwrap();
        let addrs: Vec<IpAddr> = ["192.0.2.1", "192.0.2.2"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let left = without_answered(addrs.clone(), std::slice::from_ref(&good)).unwrap();
        assert_eq!(left, [addrs[1]]);
        let bad = dir.path().join("bad.jsonl");
        fs::write(&bad, "{\"addr\":\"192.0.2.1\"}\n{\"asn\":1}\n").unwrap();
        let e = without_answered(addrs, &[good, bad])
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.jsonl") && e.contains("line 2"), "{e}");
    }
}
