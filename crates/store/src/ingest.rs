//! The ingest transaction: evidence in, tables written, one ledger entry committed.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use relaytrace_ingest::{
    detect_format,
    input::{open_input, open_reader_tolerant},
    read, Format, ReadOptions, ReadSummary, Sink,
};
use relaytrace_model::{Conn, Event, Location, PacketTimeline, Rejection};
use serde_json::{json, Map, Value};

use crate::case::Case;
use crate::digest::{file_sha256, sha256_hex, CopyingReader};
use crate::error::{IoContext, StoreError};
use crate::tables::{ConnWriter, EventWriter, PacketWriter};

/// The ledger's table name for saved NetFlow template caches
/// (`tables/netflow-templates/<evidence16>.json`).
const TEMPLATES_TABLE: &str = "netflow-templates";

/// How many rejections an outcome keeps in memory for display; all of them are in
/// the rejects table.
pub const REJECTION_SAMPLE: usize = 20;

/// Choices for one ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Whose sensor saw the data (`victim-edge`, `relay-isp`...).
    pub vantage: String,
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            vantage: "default".into(),
            format: None,
        }
    }
}

/// What one ingest did.
#[derive(Debug, Clone)]
pub struct IngestOutcome {
    /// The input as given.
    pub input: PathBuf,
    /// SHA-256 of the input bytes.
    pub evidence: String,
    /// When the same bytes were ingested before: that ledger entry's sequence
    /// number and vantage; nothing was added this time.
    pub already: Option<(u64, String)>,
    /// With `already`: the earlier input held the same content in other bytes (one of
    /// the two gzip-compressed, or both compressed differently).
    pub already_as_content: bool,
    /// When the same bytes were ingested before without adding a single record (all
    /// rejected: a wrong `--input-format`, NetFlow data whose templates came later):
    /// that ledger entry's sequence number. Such an input is read again rather than
    /// refused, so a mistake can be mended; the earlier entry stays as it was.
    pub retry_of: Option<u64>,
    /// Detected or forced format.
    pub format: Option<Format>,
    /// Counts.
    pub summary: ReadSummary,
    /// The first [`REJECTION_SAMPLE`] rejections.
    pub rejections: Vec<Rejection>,
    /// The file holding every rejection, when there were any.
    pub rejects_file: Option<PathBuf>,
}

/// Whether entry `seq` recorded other bytes than `evidence` (so it matched by its
/// decompressed content, see [`IngestOutcome::already_as_content`]).
fn other_bytes(entries: &[crate::ledger::LedgerEntry], seq: u64, evidence: &str) -> bool {
    entries
        .iter()
        .any(|e| e.seq == seq && e.str_field("evidence") != Some(evidence))
}

/// Whether an ingest entry added no record but rejected some (see
/// [`IngestOutcome::retry_of`]). Entries without outputs or counts (none are written
/// so) count as having added records.
fn added_nothing_but_rejections(e: &crate::ledger::LedgerEntry) -> bool {
    let rejected = e
        .body
        .get("counts")
        .and_then(|c| c.get("rejected"))
        .and_then(Value::as_u64);
    // By the tables it wrote, not its counts: a capture whose every packet was
    // rejected still wrote its `pcap-stats` event, and reading it again would give a
    // second row with the same id.
    let wrote_rows = e
        .body
        .get("outputs")
        .and_then(Value::as_array)
        .is_none_or(|o| {
            o.iter()
                .any(|o| matches!(o["table"].as_str(), Some("conns" | "packets" | "events")))
        });
    !wrote_rows && rejected.is_some_and(|r| r > 0)
}

/// Writes reader output to temporary table files, creating each on first use.
struct TableSink<'a> {
    dir: PathBuf,
    vantage: &'a str,
    conns: Option<ConnWriter>,
    packets: Option<PacketWriter>,
    events: Option<EventWriter>,
    rejects: Option<BufWriter<File>>,
    sample: Vec<Rejection>,
}

fn to_io(e: StoreError) -> std::io::Error {
    std::io::Error::other(e)
}

impl TableSink<'_> {
    fn tmp(&self, table: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("ingest.{table}.{ext}"))
    }
}

impl Sink for TableSink<'_> {
    fn conn(&mut self, conn: Conn) -> std::io::Result<()> {
        if self.conns.is_none() {
            let path = self.tmp("conns", "parquet");
            self.conns = Some(ConnWriter::create(&path, self.vantage).map_err(to_io)?);
        }
        if let Some(w) = self.conns.as_mut() {
            w.write(&conn).map_err(to_io)?;
        }
        Ok(())
    }

    fn timeline(&mut self, timeline: PacketTimeline) -> std::io::Result<()> {
        if self.packets.is_none() {
            let path = self.tmp("packets", "parquet");
            self.packets = Some(PacketWriter::create(&path).map_err(to_io)?);
        }
        if let Some(w) = self.packets.as_mut() {
            w.write(&timeline).map_err(to_io)?;
        }
        Ok(())
    }

    fn event(&mut self, event: Event) -> std::io::Result<()> {
        if self.events.is_none() {
            let path = self.tmp("events", "parquet");
            self.events = Some(EventWriter::create(&path, self.vantage).map_err(to_io)?);
        }
        if let Some(w) = self.events.as_mut() {
            w.write(&event).map_err(to_io)?;
        }
        Ok(())
    }

    fn reject(&mut self, rejection: Rejection) -> std::io::Result<()> {
        if self.rejects.is_none() {
            self.rejects = Some(BufWriter::new(File::create(self.tmp("rejects", "jsonl"))?));
        }
        let (unit, at) = match rejection.location {
            Location::Line(n) => ("line", n),
            Location::Offset(n) => ("offset", n),
        };
        let line = json!({ unit: at, "field": rejection.field, "reason": rejection.reason });
        if let Some(w) = self.rejects.as_mut() {
            writeln!(w, "{line}")?;
        }
        if self.sample.len() < REJECTION_SAMPLE {
            self.sample.push(rejection);
        }
        Ok(())
    }
}

impl Case {
    /// Loads the NetFlow templates of raw NetFlow evidence ingested earlier from the
    /// same vantage into `read_options`, so a data file can follow its template file
    /// across separate `ingest` runs. Each such ingest keeps the template cache as it
    /// left it (`tables/netflow-templates/<evidence16>.json`, an output of its ledger
    /// entry): the newest one of the vantage is loaded, after its SHA-256 is checked
    /// against the ledger. Only evidence ingested after it without one (by a version
    /// before these files) is replayed, in ledger order; before, every earlier export
    /// file of the vantage was read again at every run, so a case fed one file at a
    /// time paid for all of them each time. Each file is replayed once per run; its
    /// records were counted when it was first ingested.
    fn replay_netflow_templates(
        &self,
        entries: &[crate::LedgerEntry],
        vantage: &str,
        read_options: &mut ReadOptions,
    ) -> Result<(), StoreError> {
        let of_vantage = |e: &crate::LedgerEntry| {
            e.kind() == "ingest"
                && e.str_field("format") == Some(Format::NetflowPayloads.as_str())
                && e.str_field("vantage") == Some(vantage)
        };
        let saved = entries.iter().enumerate().rev().find_map(|(i, e)| {
            if !of_vantage(e) {
                return None;
            }
            let outputs = e.body.get("outputs").and_then(Value::as_array)?;
            outputs
                .iter()
                .find(|o| o.get("table").and_then(Value::as_str) == Some(TEMPLATES_TABLE))
                .map(|o| (i, o.clone()))
        });
        let mut start = 0;
        if let Some((i, out)) = saved {
            start = i + 1;
            self.load_saved_templates(&out, read_options)?;
        }
        for e in &entries[start..] {
            let Some(digest) = e.str_field("evidence") else {
                continue;
            };
            let learned = e
                .body
                .get("counts")
                .and_then(|c| c.get("templates"))
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if !of_vantage(e)
                || learned == 0
                || read_options
                    .netflow_template_sources
                    .iter()
                    .any(|d| d == digest)
            {
                continue;
            }
            let path = self.evidence_path(digest);
            let mut reader = open_input(&path).at(&path)?;
            relaytrace_ingest::netflow::read_payloads(
                &mut reader,
                &mut read_options.netflow_templates,
                &mut relaytrace_ingest::DiscardSink,
            )
            .map_err(|source| StoreError::Ingest {
                path: path.clone(),
                source,
            })?;
            read_options
                .netflow_template_sources
                .push(digest.to_string());
        }
        Ok(())
    }

    /// Replaces the run's template cache with a saved one (a ledger output `out` of
    /// table [`TEMPLATES_TABLE`]), unless the run already holds every source it was
    /// built from (an earlier file of this run wrote it).
    fn load_saved_templates(
        &self,
        out: &Value,
        read_options: &mut ReadOptions,
    ) -> Result<(), StoreError> {
        let rel = out.get("path").and_then(Value::as_str).unwrap_or_default();
        let path = self.root().join(rel);
        let bytes = fs::read(&path).at(&path)?;
        let bad = |reason: String| StoreError::BadTemplates {
            path: path.clone(),
            reason,
        };
        if out.get("sha256").and_then(Value::as_str) != Some(&sha256_hex(&bytes)) {
            return Err(bad(
                "its SHA-256 is not the one the ledger holds (altered? `relaytrace case verify` names what changed)".into(),
            ));
        }
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        let sources: Vec<String> = v
            .get("sources")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no \"sources\" list".into()))?
            .iter()
            .filter_map(|d| d.as_str().map(str::to_string))
            .collect();
        let held = &read_options.netflow_template_sources;
        if !sources.is_empty() && sources.iter().all(|d| held.contains(d)) {
            return Ok(());
        }
        read_options.netflow_templates =
            relaytrace_ingest::netflow::TemplateCache::from_json(&v["cache"]).map_err(bad)?;
        read_options.netflow_template_sources = sources;
        Ok(())
    }

    /// Ingests one input file.
    ///
    /// The input is read once: copied into `evidence/` under its SHA-256, hashed and
    /// parsed by the reader for its format in the same pass; its tables are then
    /// committed with one ledger entry. The same bytes ingested twice add nothing (the outcome says when
    /// and from which vantage they came first). `read_options` carries state across
    /// the files of one run (NetFlow templates).
    pub fn ingest(
        &self,
        input: &Path,
        options: &IngestOptions,
        read_options: &mut ReadOptions,
    ) -> Result<IngestOutcome, StoreError> {
        let _lock = self.lock()?;
        let result = self.ingest_locked(input, options, read_options);
        if result.is_err() {
            // Best effort: the error being reported matters more than this cleanup,
            // and leftover scratch files are ignored and removed by the next ingest.
            let _ = fs::remove_dir_all(self.tmp_dir());
        }
        result
    }

    fn ingest_locked(
        &self,
        input: &Path,
        options: &IngestOptions,
        read_options: &mut ReadOptions,
    ) -> Result<IngestOutcome, StoreError> {
        let tmp_dir = self.tmp_dir();
        if tmp_dir.exists() {
            // Debris of an interrupted ingest: never committed, safe to remove.
            fs::remove_dir_all(&tmp_dir).at(&tmp_dir)?;
        }
        fs::create_dir_all(&tmp_dir).at(&tmp_dir)?;

        let mut outcome = IngestOutcome {
            input: input.to_path_buf(),
            evidence: String::new(),
            already: None,
            already_as_content: false,
            retry_of: None,
            format: None,
            summary: ReadSummary::default(),
            rejections: Vec::new(),
            rejects_file: None,
        };
        let entries = self.ledger().entries()?;
        fn earlier<'a>(
            entries: &'a [crate::ledger::LedgerEntry],
            digest: &'a str,
        ) -> impl Iterator<Item = &'a crate::ledger::LedgerEntry> {
            // The same bytes, or the same content once decompressed (a gzip input's
            // entry records its content's digest as well).
            entries.iter().filter(move |e| {
                e.kind() == "ingest"
                    && (e.str_field("evidence") == Some(digest)
                        || e.str_field("content_sha256") == Some(digest))
            })
        }
        // An earlier ingest of the same bytes refuses this one unless it added no
        // record and rejected some: then reading again is how the user mends it.
        let already = |digest: &str| {
            earlier(&entries, digest)
                .find(|e| !added_nothing_but_rejections(e))
                .map(|prior| {
                    let vantage = prior.str_field("vantage").unwrap_or("").to_string();
                    (prior.seq, vantage)
                })
        };

        // 1. The same bytes ingested before? Only possible when an earlier ingest had
        // this size (or did not record it); only then is the input hashed up front,
        // so a re-run is refused without copying or parsing. (Inputs that are not
        // regular files, e.g. pipes, can be read once only: checked after reading.)
        let meta = fs::metadata(input).at(input)?;
        let same_size = meta.is_file()
            && entries.iter().any(|e| {
                e.kind() == "ingest"
                    && e.body
                        .get("bytes")
                        .and_then(Value::as_u64)
                        .is_none_or(|b| b == meta.len())
            });
        if same_size {
            let digest = file_sha256(input)?;
            if let Some(prior) = already(&digest) {
                outcome.already_as_content = other_bytes(&entries, prior.0, &digest);
                outcome.evidence = digest;
                outcome.already = Some(prior);
                return Ok(outcome);
            }
        }

        // 2. Copy into the case, hash and parse in one pass: the reader for the
        // format gets exactly the bytes written to the copy (what the ledger will
        // vouch for). Measured on a 200 MB pcap (2026-11-30): a separate
        // copy-and-hash pass was a third of ingest time, and copy_file_range (which
        // avoids user space) was slower here than reading and writing.
        let tmp_copy = tmp_dir.join("evidence.partial");
        let copy = File::create(&tmp_copy).at(&tmp_copy)?;
        let mut copying = CopyingReader::new(
            File::open(input).at(input)?,
            copy,
            tmp_copy.display().to_string(),
        );
        let (mut reader, gzip) = open_reader_tolerant(&mut copying).at(input)?;
        let format = match options.format {
            Some(f) => f,
            None => detect_format(&mut reader).map_err(|source| StoreError::Ingest {
                path: input.to_path_buf(),
                source,
            })?,
        };
        outcome.format = Some(format);
        let templates_from = if format == Format::NetflowPayloads {
            self.replay_netflow_templates(&entries, &options.vantage, read_options)?;
            read_options.netflow_template_sources.clone()
        } else {
            Vec::new()
        };
        let mut sink = TableSink {
            dir: tmp_dir.clone(),
            vantage: &options.vantage,
            conns: None,
            packets: None,
            events: None,
            rejects: None,
            sample: Vec::new(),
        };
        let mut summary = read(format, &mut reader, read_options, &mut sink).map_err(|source| {
            StoreError::Ingest {
                path: input.to_path_buf(),
                source,
            }
        })?;
        // Whatever the format reader left unread, so a gzip input's content digest
        // covers all of it (a plain input's rest is read by the copy below).
        if gzip.is_gzip() && gzip.content_sha256().is_none() {
            std::io::copy(&mut reader, &mut std::io::sink()).at(input)?;
        }
        if let Some(damage) = gzip.take_damage() {
            // The rest of the file is lost, and said so: one rejection at the offset.
            sink.reject(damage).at(input)?;
            summary.rejected += 1;
        }
        let content = gzip.content_sha256();
        drop(reader);
        let (evidence, bytes, copy) = copying.finish().at(input)?;
        copy.sync_all().at(&tmp_copy)?;
        drop(copy);
        outcome.evidence = evidence.clone();
        // An input that could not be hashed up front (not a regular file), one that
        // changed since, or the content of an earlier input compressed otherwise (or
        // not at all): nothing is committed twice.
        let prior = already(&evidence).or_else(|| content.as_deref().and_then(already));
        if let Some(prior) = prior {
            fs::remove_dir_all(&tmp_dir).at(&tmp_dir)?;
            outcome.format = None;
            outcome.already_as_content = other_bytes(&entries, prior.0, &evidence);
            outcome.already = Some(prior);
            return Ok(outcome);
        }
        outcome.retry_of = earlier(&entries, &evidence)
            .chain(content.iter().flat_map(|c| earlier(&entries, c)))
            .map(|e| e.seq)
            .max();
        let evidence_path = self.evidence_path(&evidence);
        if evidence_path.exists() {
            // Left by an ingest interrupted before its commit: same bytes, keep it.
            fs::remove_file(&tmp_copy).at(&tmp_copy)?;
        } else {
            let mut perms = fs::metadata(&tmp_copy).at(&tmp_copy)?.permissions();
            perms.set_readonly(true);
            fs::set_permissions(&tmp_copy, perms).at(&tmp_copy)?;
            fs::rename(&tmp_copy, &evidence_path).at(&evidence_path)?;
        }
        let stem = evidence[..16].to_string();

        // 3. Finish tables, move them into place.
        let mut outputs = Vec::new();
        let mut finished: Vec<(&str, PathBuf, String)> = Vec::new();
        if format == Format::NetflowPayloads {
            if summary.templates > 0 {
                read_options.netflow_template_sources.push(evidence.clone());
            }
            if !read_options.netflow_templates.is_blank() {
                // The template cache as this input left it, for the next run.
                let state = json!({
                    "vantage": options.vantage,
                    "sources": read_options.netflow_template_sources,
                    "cache": read_options.netflow_templates.to_json(),
                });
                let path = sink.tmp(TEMPLATES_TABLE, "json");
                let mut bytes = serde_json::to_vec(&state).expect("JSON values serialise");
                bytes.push(b'\n');
                let mut f = File::create(&path).at(&path)?;
                f.write_all(&bytes).at(&path)?;
                f.sync_all().at(&path)?;
                finished.push((TEMPLATES_TABLE, path, sha256_hex(&bytes)));
            }
        }
        if let Some(w) = sink.conns.take() {
            let (_, digest) = w.finish(&evidence)?;
            finished.push(("conns", sink.tmp("conns", "parquet"), digest));
        }
        if let Some(w) = sink.packets.take() {
            let (_, digest) = w.finish(&evidence)?;
            finished.push(("packets", sink.tmp("packets", "parquet"), digest));
        }
        if let Some(w) = sink.events.take() {
            let (_, digest) = w.finish(&evidence)?;
            finished.push(("events", sink.tmp("events", "parquet"), digest));
        }
        if let Some(w) = sink.rejects.take() {
            let path = sink.tmp("rejects", "jsonl");
            let f = w.into_inner().map_err(|e| e.into_error()).at(&path)?;
            f.sync_all().at(&path)?;
            drop(f);
            let digest = file_sha256(&path)?;
            finished.push(("rejects", path, digest));
        }
        outcome.rejections = std::mem::take(&mut sink.sample);
        for (table, tmp, digest) in finished {
            let ext = match table {
                "rejects" => "jsonl",
                TEMPLATES_TABLE => "json",
                _ => "parquet",
            };
            // A table of an earlier entry of the same evidence (a retry, above) keeps
            // its name and bytes; this run's gets the next free suffix. A file that no
            // entry names is debris of an interrupted run of this input: replaced.
            let named = |rel: &str| {
                entries.iter().any(|e| {
                    e.body
                        .get("outputs")
                        .and_then(Value::as_array)
                        .is_some_and(|o| o.iter().any(|o| o["path"].as_str() == Some(rel)))
                })
            };
            let mut rel = format!("tables/{table}/{stem}.{ext}");
            let mut n = 1;
            while named(&rel) {
                n += 1;
                rel = format!("tables/{table}/{stem}-{n}.{ext}");
            }
            let dest = self.root().join(&rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).at(parent)?;
            }
            fs::rename(&tmp, &dest).at(&dest)?;
            if table == "rejects" {
                outcome.rejects_file = Some(dest.clone());
            }
            outputs.push(json!({ "table": table, "path": rel, "sha256": digest }));
        }

        // 4. Commit.
        let mut fields = Map::new();
        let name = input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        fields.insert("input_name".into(), Value::String(name));
        fields.insert("evidence".into(), Value::String(evidence));
        fields.insert("bytes".into(), Value::from(bytes));
        if let Some(c) = &content {
            fields.insert("content_sha256".into(), Value::String(c.clone()));
        }
        fields.insert("format".into(), Value::String(format.as_str().into()));
        fields.insert("vantage".into(), Value::String(options.vantage.clone()));
        fields.insert("tool".into(), Value::String(crate::TOOL_VERSION.into()));
        fields.insert(
            "counts".into(),
            json!({
                "read": summary.read,
                "rejected": summary.rejected,
                "conns": summary.conns,
                "events": summary.events,
                "timelines": summary.timelines,
                "merged": summary.merged,
                "templates": summary.templates,
            }),
        );
        fields.insert("outputs".into(), Value::Array(outputs));
        if !templates_from.is_empty() {
            fields.insert(
                "templates_from".into(),
                Value::Array(templates_from.into_iter().map(Value::String).collect()),
            );
        }
        self.ledger().append("ingest", fields)?;
        fs::remove_dir_all(&tmp_dir).at(&tmp_dir)?;
        outcome.summary = summary;
        Ok(outcome)
    }
}
