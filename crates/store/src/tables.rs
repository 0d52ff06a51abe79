//! Parquet tables: connections, packet timelines, events.
//!
//! Written with the `parquet` crate's low-level column API (no Arrow: Arrow roughly
//! quadruples the clean build, and our schemas are flat). Rows are buffered per
//! column and flushed as a row group every [`ROW_GROUP_ROWS`] rows, so memory stays
//! bounded whatever the input size. Column names follow Zeek's conn.log where Zeek
//! has one; see the README's "Output fields".

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::Type;
use relaytrace_model::{Conn, Direction, Event, PacketTimeline};

use crate::digest::HashingWriter;
use crate::error::{IoContext, StoreError};

/// Rows per row group: large enough for good compression and scans, small enough
/// that buffering one group stays in the tens of megabytes and the writer's memory
/// stays flat. Measured 2026-12-01 (generated inputs, `ingest --no-enrich`, CPU
/// seconds, alternating runs): 32 Ki rows against the former 64 Ki took 1 M NetFlow
/// v9 records from 1.22–1.39 to 0.82–0.94 s, 1 M conn.log lines from 1.96–2.07 to
/// 1.63–1.73 s and 8 M lines from 16.4 to 14.0 s, peak RSS 68 MiB at 1 M and 8 M lines
/// (70–71 MiB before); a 100 MB pcap the same (0.19–0.20 s). Smaller groups gain no
/// more (16 Ki: 0.78–0.93 s, 1.58–1.63 s) and make the writer's memory grow with the
/// input (16 Ki rows: 40 MiB at 1 M lines, 63 MiB at 8 M; with mimalloc's purge delay
/// at 0, 33 → 43 MiB, about 22 KB per row group: the file writer keeps each group's
/// metadata until the footer). The conn table of 1 M lines: 61,275,695 → 61,300,518
/// bytes; `conns --format jsonl` of it 5.97 → 5.74 s of user time.
pub const ROW_GROUP_ROWS: usize = 32 * 1024;

/// Schema of `tables/conns/*.parquet`.
pub const CONN_SCHEMA: &str = "message conn {
  optional binary uid (UTF8);
  required int64 record;
  required binary proto (UTF8);
  optional int64 ip_proto;
  required binary orig_h (UTF8);
  required int64 orig_p;
  required binary resp_h (UTF8);
  required int64 resp_p;
  required int64 start_ns;
  required int64 end_ns;
  optional int64 duration_ns;
  optional binary service (UTF8);
  optional int64 orig_bytes;
  optional int64 resp_bytes;
  optional int64 orig_pkts;
  optional int64 resp_pkts;
  optional int64 orig_ip_bytes;
  optional int64 resp_ip_bytes;
  optional int64 missed_bytes;
  optional binary conn_state (UTF8);
  optional binary history (UTF8);
}";

/// Schema of `tables/packets/*.parquet`: one row per packet carrying new payload.
pub const PACKET_SCHEMA: &str = "message packet {
  required int64 conn_record;
  required binary dir (UTF8);
  required int64 ts_ns;
  required int64 payload_bytes;
}";

/// Schema of `tables/events/*.parquet`.
pub const EVENT_SCHEMA: &str = "message event {
  required int64 record;
  required binary kind (UTF8);
  optional int64 ts_ns;
  optional binary uid (UTF8);
  optional binary community_id (UTF8);
  required binary json (UTF8);
}";

/// File metadata key holding the SHA-256 of the evidence a table file was read from.
pub const META_EVIDENCE: &str = "relaytrace.evidence";
/// File metadata key holding the vantage that saw the evidence.
pub const META_VANTAGE: &str = "relaytrace.vantage";

/// Columns whose values repeat a lot, the only ones dictionary-encoded; see
/// [`writer_properties`].
const DICTIONARY_COLUMNS: [&str; 10] = [
    "proto",
    "ip_proto",
    "resp_p",
    "service",
    "missed_bytes",
    "conn_state",
    "history",
    "dir",
    "payload_bytes",
    "kind",
];

/// Time columns: the only ones with min/max statistics (per column chunk, i.e. per
/// row group), so a query engine reading the tables can skip row groups outside a
/// time window. relaytrace's own readers ([`scan_rows`]) read every row and use no
/// statistics; on the other columns they cost a min/max comparison per value for
/// nothing. Measured 2026-11-30 (2 M generated conn.log lines, best of 3): page
/// statistics on every column (the parquet crate's default) 2.43 s user, none 2.32 s,
/// these three only 2.31 s.
const STATISTICS_COLUMNS: [&str; 3] = ["start_ns", "end_ns", "ts_ns"];

/// How each column is encoded and compressed.
///
/// - Repetitive columns ([`DICTIONARY_COLUMNS`]): dictionary. On near-unique ones
///   (ids, addresses, times, byte counts, JSON) a dictionary costs a hash-table
///   probe per value and makes larger files. Measured on 2 M generated conn.log
///   lines (2026-11-30): dictionaries on times and counters too cost 0.4 s of 3.3 s
///   user time and 9% more table bytes.
/// - Other integer columns: DELTA_BINARY_PACKED (differences between neighbours,
///   bit-packed per block of 128: the Parquet format's encoding for integers). Row
///   numbers and start times grow steadily, and counters, ports and durations are
///   small, so this stores a few bits to a few bytes per value where PLAIN stores
///   eight. Measured 2026-11-30, one ingest each, generated inputs: conn.log 2 M
///   lines 174.5 → 122.6 MB of tables and 2.61 → 2.42 s user; NetFlow v9 2 M
///   records 87.3 → 60.9 MB and 1.53 → 1.38 s; pcap 200 MB 2.20 → 1.15 MB.
/// - LZ4_RAW on every column: on delta-packed integers it gains little (turning it
///   off there made no measurable time difference and 1.1 MB larger NetFlow tables);
///   on text it halves addresses (orig_h 33.4 → 16.7 MB).
fn writer_properties(schema: &Type) -> WriterProperties {
    use parquet::basic::Encoding;
    use parquet::file::properties::EnabledStatistics;
    use parquet::schema::types::ColumnPath;

    let mut props = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_created_by(crate::TOOL_VERSION.to_string())
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::None);
    for field in schema.get_fields() {
        let name = field.name();
        if DICTIONARY_COLUMNS.contains(&name) {
            props = props.set_column_dictionary_enabled(ColumnPath::from(name), true);
        } else if field.get_physical_type() == parquet::basic::Type::INT64 {
            props =
                props.set_column_encoding(ColumnPath::from(name), Encoding::DELTA_BINARY_PACKED);
        }
        if STATISTICS_COLUMNS.contains(&name) {
            props = props
                .set_column_statistics_enabled(ColumnPath::from(name), EnabledStatistics::Chunk);
        }
    }
    props.build()
}

/// One buffered column; `None` values become nulls (definition level 0).
enum Column {
    Int(Vec<i64>, Vec<i16>),
    /// Text values are appended to one arena per column and cut into `ByteArray`s
    /// (shared slices, no copy) at flush: one allocation per row group instead of
    /// one per value, which profiling showed dominated ingest.
    Text {
        arena: Vec<u8>,
        spans: Vec<(usize, usize)>,
        defs: Vec<i16>,
    },
}

/// Whether each schema column is `required` (written without definition levels).
fn required_flags(schema: &Type) -> Vec<bool> {
    schema
        .get_fields()
        .iter()
        .map(|f| f.get_basic_info().repetition() == parquet::basic::Repetition::REQUIRED)
        .collect()
}

/// Buffers rows column by column and writes row groups to one Parquet file.
pub struct TableWriter {
    path: PathBuf,
    writer: SerializedFileWriter<HashingWriter<BufWriter<File>>>,
    columns: Vec<Column>,
    required: Vec<bool>,
    rows: usize,
    /// Rows written in total.
    pub total_rows: u64,
}

fn pq(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> StoreError + '_ {
    move |source| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    }
}

impl TableWriter {
    /// Creates `path` with the given message-type schema.
    pub fn create(path: &Path, schema: &str) -> Result<Self, StoreError> {
        let schema: Type = parse_message_type(schema).map_err(pq(path))?;
        let columns = schema
            .get_fields()
            .iter()
            .map(|f| match f.get_physical_type() {
                parquet::basic::Type::INT64 => Column::Int(Vec::new(), Vec::new()),
                _ => Column::Text {
                    arena: Vec::new(),
                    spans: Vec::new(),
                    defs: Vec::new(),
                },
            })
            .collect();
        let required = required_flags(&schema);
        let props = writer_properties(&schema);
        let file = HashingWriter::new(BufWriter::with_capacity(
            1 << 20,
            File::create(path).at(path)?,
        ));
        let writer =
            SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props)).map_err(pq(path))?;
        Ok(TableWriter {
            path: path.to_path_buf(),
            writer,
            columns,
            required,
            rows: 0,
            total_rows: 0,
        })
    }

    fn push_int(&mut self, col: usize, v: Option<i64>) {
        if let Column::Int(values, defs) = &mut self.columns[col] {
            defs.push(i16::from(v.is_some()));
            if let Some(v) = v {
                values.push(v);
            }
        }
    }

    fn push_text(&mut self, col: usize, v: Option<&str>) {
        if let Column::Text { arena, spans, defs } = &mut self.columns[col] {
            defs.push(i16::from(v.is_some()));
            if let Some(v) = v {
                spans.push((arena.len(), v.len()));
                arena.extend_from_slice(v.as_bytes());
            }
        }
    }

    /// An address in its usual text form; IPv4 is formatted by hand because `Display`
    /// for `Ipv4Addr` showed up at several per cent of ingest time.
    fn push_ip(&mut self, col: usize, ip: std::net::IpAddr) {
        let std::net::IpAddr::V4(v4) = ip else {
            return self.push_display(col, &ip);
        };
        if let Column::Text { arena, spans, defs } = &mut self.columns[col] {
            defs.push(1);
            let start = arena.len();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    arena.push(b'.');
                }
                if octet >= 100 {
                    arena.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    arena.push(b'0' + (octet / 10) % 10);
                }
                arena.push(b'0' + octet % 10);
            }
            spans.push((start, arena.len() - start));
        }
    }

    /// Like `push_text` with a value's `Display` form, written straight into the
    /// arena (no temporary string).
    fn push_display(&mut self, col: usize, v: &dyn std::fmt::Display) {
        use std::io::Write as _;
        if let Column::Text { arena, spans, defs } = &mut self.columns[col] {
            defs.push(1);
            let start = arena.len();
            // Writing to a Vec cannot fail.
            let _ = write!(arena, "{v}");
            spans.push((start, arena.len() - start));
        }
    }

    fn end_row(&mut self) -> Result<(), StoreError> {
        self.rows += 1;
        self.total_rows += 1;
        if self.rows >= ROW_GROUP_ROWS {
            self.flush_group()?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> Result<(), StoreError> {
        if self.rows == 0 {
            return Ok(());
        }
        let path = self.path.clone();
        let mut group = self.writer.next_row_group().map_err(pq(&path))?;
        let mut i = 0;
        while let Some(mut col) = group.next_column().map_err(pq(&path))? {
            let required = self.required[i];
            match &mut self.columns[i] {
                Column::Int(values, defs) => {
                    let defs_opt = (!required).then_some(defs.as_slice());
                    col.typed::<Int64Type>()
                        .write_batch(values, defs_opt, None)
                        .map_err(pq(&path))?;
                    values.clear();
                    defs.clear();
                }
                Column::Text { arena, spans, defs } => {
                    let shared = bytes::Bytes::from(std::mem::take(arena));
                    let values: Vec<ByteArray> = spans
                        .iter()
                        .map(|&(at, len)| ByteArray::from(shared.slice(at..at + len)))
                        .collect();
                    let defs_opt = (!required).then_some(defs.as_slice());
                    col.typed::<ByteArrayType>()
                        .write_batch(&values, defs_opt, None)
                        .map_err(pq(&path))?;
                    spans.clear();
                    defs.clear();
                }
            }
            col.close().map_err(pq(&path))?;
            i += 1;
        }
        group.close().map_err(pq(&path))?;
        self.rows = 0;
        Ok(())
    }

    /// Writes the last row group and the footer with the file-level key/value
    /// `metadata` (values constant for the whole file, such as its evidence digest,
    /// are kept there rather than repeated in every row; given at the end because
    /// the evidence digest is computed while the evidence is read), syncs the file,
    /// and returns the row count and the file's SHA-256 (computed while writing: no
    /// second pass).
    pub fn finish(mut self, metadata: &[(&str, &str)]) -> Result<(u64, String), StoreError> {
        self.flush_group()?;
        for (k, v) in metadata {
            self.writer
                .append_key_value_metadata(KeyValue::new(k.to_string(), v.to_string()));
        }
        let path = self.path.clone();
        let hashing = self.writer.into_inner().map_err(pq(&path))?;
        let (digest, buffered) = hashing.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| e.into_error())
            .at(&path)?;
        file.sync_all().at(&path)?;
        Ok((self.total_rows, digest))
    }
}

fn opt_i64(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// Identifies a record across the case: the first 16 hex digits of its evidence
/// digest and its record number (line or offset), e.g. `c7e25b453687730f:12`.
/// Deterministic, so a re-run of the same ingest yields the same ids.
pub fn record_id(evidence: &str, record: u64) -> String {
    format!("{}:{record}", &evidence[..evidence.len().min(16)])
}

/// Writes connections of one input.
pub struct ConnWriter {
    table: TableWriter,
    vantage: String,
}

impl ConnWriter {
    /// Creates the table file for connections seen at `vantage`.
    pub fn create(path: &Path, vantage: &str) -> Result<Self, StoreError> {
        Ok(ConnWriter {
            table: TableWriter::create(path, CONN_SCHEMA)?,
            vantage: vantage.to_string(),
        })
    }

    /// Buffers one connection (in schema column order).
    pub fn write(&mut self, c: &Conn) -> Result<(), StoreError> {
        let t = &mut self.table;
        t.push_text(0, c.uid.as_deref());
        t.push_int(1, opt_i64(Some(c.record)));
        t.push_text(2, Some(c.proto.as_str()));
        t.push_int(3, c.ip_proto.map(i64::from));
        t.push_ip(4, c.orig_h);
        t.push_int(5, Some(i64::from(c.orig_p)));
        t.push_ip(6, c.resp_h);
        t.push_int(7, Some(i64::from(c.resp_p)));
        t.push_int(8, Some(c.start_ns));
        t.push_int(9, Some(c.end_ns()));
        t.push_int(10, c.duration_ns);
        t.push_text(11, c.service.as_deref());
        t.push_int(12, opt_i64(c.orig_bytes));
        t.push_int(13, opt_i64(c.resp_bytes));
        t.push_int(14, opt_i64(c.orig_pkts));
        t.push_int(15, opt_i64(c.resp_pkts));
        t.push_int(16, opt_i64(c.orig_ip_bytes));
        t.push_int(17, opt_i64(c.resp_ip_bytes));
        t.push_int(18, opt_i64(c.missed_bytes));
        t.push_text(19, c.conn_state.as_deref());
        t.push_text(20, c.history.as_deref());
        t.end_row()
    }

    /// Finishes the file, recording the digest of the `evidence` it was read from;
    /// returns the row count and the file's SHA-256.
    pub fn finish(self, evidence: &str) -> Result<(u64, String), StoreError> {
        self.table
            .finish(&[(META_EVIDENCE, evidence), (META_VANTAGE, &self.vantage)])
    }
}

/// Writes packet timelines of one input.
pub struct PacketWriter {
    table: TableWriter,
}

impl PacketWriter {
    /// Creates the packet table file.
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        Ok(PacketWriter {
            table: TableWriter::create(path, PACKET_SCHEMA)?,
        })
    }

    /// Buffers every packet of one timeline.
    pub fn write(&mut self, tl: &PacketTimeline) -> Result<(), StoreError> {
        let conn_record = opt_i64(Some(tl.conn_record));
        for p in &tl.packets {
            let t = &mut self.table;
            t.push_int(0, conn_record);
            t.push_text(
                1,
                Some(match p.dir {
                    Direction::Orig => "orig",
                    Direction::Resp => "resp",
                }),
            );
            t.push_int(2, Some(p.ts_ns));
            t.push_int(3, Some(i64::from(p.payload_bytes)));
            t.end_row()?;
        }
        Ok(())
    }

    /// Finishes the file, recording the digest of the `evidence` it was read from;
    /// returns the row count and the file's SHA-256.
    pub fn finish(self, evidence: &str) -> Result<(u64, String), StoreError> {
        self.table.finish(&[(META_EVIDENCE, evidence)])
    }
}

/// Writes events of one input.
pub struct EventWriter {
    table: TableWriter,
    vantage: String,
}

impl EventWriter {
    /// Creates the event table file for events seen at `vantage`.
    pub fn create(path: &Path, vantage: &str) -> Result<Self, StoreError> {
        Ok(EventWriter {
            table: TableWriter::create(path, EVENT_SCHEMA)?,
            vantage: vantage.to_string(),
        })
    }

    /// Buffers one event.
    pub fn write(&mut self, e: &Event) -> Result<(), StoreError> {
        let t = &mut self.table;
        t.push_int(0, opt_i64(Some(e.record)));
        t.push_text(1, Some(&e.kind));
        t.push_int(2, e.ts_ns);
        t.push_text(3, e.uid.as_deref());
        t.push_text(4, e.community_id.as_deref());
        t.push_text(5, Some(&e.json));
        t.end_row()
    }

    /// Finishes the file, recording the digest of the `evidence` it was read from;
    /// returns the row count and the file's SHA-256.
    pub fn finish(self, evidence: &str) -> Result<(u64, String), StoreError> {
        self.table
            .finish(&[(META_EVIDENCE, evidence), (META_VANTAGE, &self.vantage)])
    }
}

/// A table row read back: column names with JSON values (nulls as `Null`), in
/// schema order. Generic so one reader serves every table and output format.
pub type Row = Vec<(String, serde_json::Value)>;

/// Reads every row of a table file, calling `f` for each; stops early if `f`
/// returns `false`.
///
/// The tables relaytrace writes (INT64 and UTF-8 columns only) are read column by
/// column ([`crate::columns::scan_columns`]), a row group at a time; any other file
/// through Parquet's row reader. The two give the same rows (test); the column path
/// is several times faster — the row reader builds a named, typed field per value
/// before it becomes JSON, and a listing of 1 M connections spent most of its time
/// there (README, "Output fields").
pub fn scan_rows(path: &Path, mut f: impl FnMut(Row) -> bool) -> Result<(), StoreError> {
    let Some(names) = columnar_names(path)? else {
        return scan_rows_by_record(path, f);
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let record_col = refs.iter().position(|&n| n == "record");
    let conn_record_col = refs.iter().position(|&n| n == "conn_record");
    crate::columns::scan_columns(path, &refs, |meta, batch| {
        for r in 0..batch.rows() {
            let mut out: Row = Vec::with_capacity(names.len() + 4);
            for (c, name) in names.iter().enumerate() {
                let v = batch.json(c, r);
                if Some(c) == conn_record_col {
                    if let (Some(ev), Some(x)) = (&meta.evidence, v.as_u64()) {
                        out.push(("conn_id".into(), record_id(ev, x).into()));
                    }
                }
                out.push((name.clone(), v));
            }
            let record = record_col
                .and_then(|c| batch.int(c, r))
                .and_then(|v| u64::try_from(v).ok());
            add_file_fields(
                &mut out,
                meta.evidence.as_deref(),
                meta.vantage.as_deref(),
                record,
            );
            if !f(out) {
                return false;
            }
        }
        true
    })
}

/// The column names of a table file when every column is one the column reader
/// reads as the row reader would (a flat INT64, or a flat UTF-8 byte array); `None`
/// otherwise.
fn columnar_names(path: &Path) -> Result<Option<Vec<String>>, StoreError> {
    use parquet::basic::{ConvertedType, Type as Physical};
    let file = File::open(path).at(path)?;
    let reader = SerializedFileReader::new(file).map_err(pq(path))?;
    let schema = reader.metadata().file_metadata().schema_descr();
    let mut names = Vec::with_capacity(schema.num_columns());
    for i in 0..schema.num_columns() {
        let c = schema.column(i);
        let plain = c.max_rep_level() == 0 && c.path().parts().len() == 1;
        let readable = match c.physical_type() {
            Physical::INT64 => c.converted_type() == ConvertedType::NONE,
            Physical::BYTE_ARRAY => c.converted_type() == ConvertedType::UTF8,
            _ => false,
        };
        if !plain || !readable {
            return Ok(None);
        }
        names.push(c.name().to_string());
    }
    Ok(Some(names))
}

/// Appends the fields that are constant per file and kept in its metadata: `id`
/// (evidence digest and record number), `evidence`, `vantage`.
fn add_file_fields(
    out: &mut Row,
    evidence: Option<&str>,
    vantage: Option<&str>,
    record: Option<u64>,
) {
    if let Some(ev) = evidence {
        if let Some(r) = record {
            out.push(("id".into(), serde_json::Value::String(record_id(ev, r))));
        }
        out.push(("evidence".into(), serde_json::Value::String(ev.to_string())));
    }
    if let Some(v) = vantage {
        out.push(("vantage".into(), serde_json::Value::String(v.to_string())));
    }
}

/// [`scan_rows`] through Parquet's row reader: any flat file, whatever its types.
fn scan_rows_by_record(path: &Path, mut f: impl FnMut(Row) -> bool) -> Result<(), StoreError> {
    let file = File::open(path).at(path)?;
    let reader = SerializedFileReader::new(file).map_err(pq(path))?;
    let meta = |key: &str| -> Option<String> {
        reader
            .metadata()
            .file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.clone())
    };
    let evidence = meta(META_EVIDENCE);
    let vantage = meta(META_VANTAGE);
    let iter = reader.get_row_iter(None).map_err(pq(path))?;
    for row in iter {
        let row = row.map_err(pq(path))?;
        let mut out: Row = Vec::with_capacity(row.len() + 3);
        let mut record = None;
        for (name, field) in row.get_column_iter() {
            let v = match field {
                Field::Null => serde_json::Value::Null,
                Field::Long(v) => serde_json::Value::from(*v),
                Field::Int(v) => serde_json::Value::from(*v),
                Field::Str(s) => serde_json::Value::String(s.clone()),
                other => serde_json::Value::String(other.to_string()),
            };
            if name == "record" {
                record = v.as_u64();
            }
            if name == "conn_record" {
                if let (Some(ev), Some(r)) = (&evidence, v.as_u64()) {
                    out.push((
                        "conn_id".into(),
                        serde_json::Value::String(record_id(ev, r)),
                    ));
                }
            }
            out.push((name.clone(), v));
        }
        add_file_fields(&mut out, evidence.as_deref(), vantage.as_deref(), record);
        if !f(out) {
            break;
        }
    }
    Ok(())
}

/// A generated connection for the store's tests, numbered `i`: protocols, addresses,
/// counters and text fields vary, and some are unset, in a pattern that fills every
/// kind of column with values and nulls.
#[cfg(test)]
pub(crate) fn sample_conn(i: usize) -> Conn {
    use relaytrace_model::Proto;
    let mut c = Conn::new(
        if i.is_multiple_of(3) {
            Proto::Udp
        } else {
            Proto::Tcp
        },
        format!("192.0.2.{}", i % 250).parse().expect("an address"),
        (1000 + i % 60000) as u16,
        "2001:db8::7".parse().expect("an address"),
        22,
        1_700_000_000_000_000_000 + i as i64 * 1000,
    );
    c.record = i as u64;
    c.duration_ns = (!i.is_multiple_of(5)).then_some(i as i64);
    c.orig_bytes = (!i.is_multiple_of(7)).then_some(i as u64 * 3);
    c.uid = (i.is_multiple_of(4)).then(|| format!("C{i}"));
    c.conn_state = (i.is_multiple_of(2)).then(|| "SF".to_string());
    c.history = (i.is_multiple_of(2)).then(|| "ShADadFf".to_string());
    c
}

#[cfg(test)]
mod tests {
    use relaytrace_model::{Conn, Proto, TimelinePacket};

    use super::*;

    const EVIDENCE: &str = "c7e25b453687730387463c8a9a935cd7adae5ab90692aab55306404b917290ef";

    #[test]
    fn file_constants_come_back_per_row() {
        let dir = tempfile::tempdir().unwrap();
        let conns = dir.path().join("c.parquet");
        let packets = dir.path().join("p.parquet");
        let mut c = Conn::new(
            Proto::Tcp,
            "192.0.2.1".parse().unwrap(),
            40000,
            "2001:db8::7".parse().unwrap(),
            22,
            1_000,
        );
        c.record = 42;
        c.orig_bytes = Some(7);
        let mut w = ConnWriter::create(&conns, "relay-isp").unwrap();
        w.write(&c).unwrap();
        let (rows, digest) = w.finish(EVIDENCE).unwrap();
        assert_eq!(rows, 1);
        assert_eq!(digest, crate::digest::file_sha256(&conns).unwrap());
        let mut p = PacketWriter::create(&packets).unwrap();
        let tl = PacketTimeline {
            conn_record: 42,
            packets: vec![TimelinePacket {
                dir: Direction::Resp,
                ts_ns: 2_000,
                payload_bytes: 48,
            }],
        };
        p.write(&tl).unwrap();
        p.finish(EVIDENCE).unwrap();

        let mut got = Vec::new();
        scan_rows(&conns, |row| {
            got.push(row);
            true
        })
        .unwrap();
        let row: serde_json::Map<String, serde_json::Value> = got.remove(0).into_iter().collect();
        assert_eq!(row["id"], "c7e25b4536877303:42");
        assert_eq!(row["vantage"], "relay-isp");
        assert_eq!(row["evidence"], EVIDENCE);
        assert_eq!(row["orig_h"], "192.0.2.1");
        assert_eq!(row["resp_h"], "2001:db8::7");
        assert_eq!(row["orig_bytes"], 7);
        assert_eq!(row["resp_bytes"], serde_json::Value::Null);

        let mut got = Vec::new();
        scan_rows(&packets, |row| {
            got.push(row);
            true
        })
        .unwrap();
        let row: serde_json::Map<String, serde_json::Value> = got.remove(0).into_iter().collect();
        assert_eq!(row["conn_id"], "c7e25b4536877303:42");
        assert_eq!(row["dir"], "resp");
        assert_eq!(row["payload_bytes"], 48);
    }

    /// The column path and the row reader give the same rows, in the same order, for
    /// every table the store writes: several row groups, nulls, early stops.
    #[test]
    fn the_column_path_reads_rows_as_the_row_reader_does() {
        use relaytrace_model::Event;

        let dir = tempfile::tempdir().unwrap();
        let (conns, packets, events) = (
            dir.path().join("c.parquet"),
            dir.path().join("p.parquet"),
            dir.path().join("e.parquet"),
        );
        let n = ROW_GROUP_ROWS + 321;
        let mut cw = ConnWriter::create(&conns, "edge").unwrap();
        let mut pw = PacketWriter::create(&packets).unwrap();
        let mut ew = EventWriter::create(&events, "edge").unwrap();
        for i in 0..n {
            cw.write(&sample_conn(i)).unwrap();
            if i % 100 == 0 {
                pw.write(&PacketTimeline {
                    conn_record: i as u64,
                    packets: vec![TimelinePacket {
                        dir: if i % 200 == 0 {
                            Direction::Orig
                        } else {
                            Direction::Resp
                        },
                        ts_ns: i as i64,
                        payload_bytes: 36,
                    }],
                })
                .unwrap();
            }
            ew.write(&Event {
                kind: if i % 2 == 0 { "alert" } else { "dns" }.to_string(),
                ts_ns: (i % 9 != 0).then_some(i as i64),
                uid: None,
                community_id: (i % 3 == 0).then(|| "1:abc".to_string()),
                json: format!("{{\"n\":{i}}}"),
                record: i as u64,
            })
            .unwrap();
        }
        cw.finish(EVIDENCE).unwrap();
        pw.finish(EVIDENCE).unwrap();
        ew.finish(EVIDENCE).unwrap();
        for path in [&conns, &packets, &events] {
            assert!(columnar_names(path).unwrap().is_some(), "{path:?}");
            for stop_after in [usize::MAX, 5] {
                let read = |columnar: bool| {
                    let mut rows = Vec::new();
                    let keep = |row: Row| {
                        rows.push(row);
                        rows.len() < stop_after
                    };
                    if columnar {
                        scan_rows(path, keep).unwrap();
                    } else {
                        scan_rows_by_record(path, keep).unwrap();
                    }
                    rows
                };
                let (by_column, by_record) = (read(true), read(false));
                assert_eq!(by_column.len(), by_record.len().min(stop_after), "{path:?}");
                assert!(by_column.len() >= 5);
                assert_eq!(by_column, by_record, "{path:?}");
            }
        }
    }
}
