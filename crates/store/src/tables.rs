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
/// that buffering one group stays in the tens of megabytes.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Schema of `tables/conns/*.parquet`.
pub const CONN_SCHEMA: &str = "message conn {
  required binary id (UTF8);
  optional binary uid (UTF8);
  required binary vantage (UTF8);
  required binary evidence (UTF8);
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
  required binary conn_id (UTF8);
  required binary dir (UTF8);
  required int64 ts_ns;
  required int64 payload_bytes;
}";

/// Schema of `tables/events/*.parquet`.
pub const EVENT_SCHEMA: &str = "message event {
  required binary id (UTF8);
  required binary vantage (UTF8);
  required binary evidence (UTF8);
  required int64 record;
  required binary kind (UTF8);
  optional int64 ts_ns;
  optional binary uid (UTF8);
  optional binary community_id (UTF8);
  required binary json (UTF8);
}";

/// Columns whose values are (nearly) all distinct; see [`TableWriter::create`].
const HIGH_CARDINALITY: [&str; 8] = [
    "id", "uid", "orig_h", "resp_h", "history", "json", "conn_id", "record",
];

/// One buffered column; `None` values become nulls (definition level 0).
enum Column {
    Int(Vec<i64>, Vec<i16>),
    Text(Vec<ByteArray>, Vec<i16>),
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
                _ => Column::Text(Vec::new(), Vec::new()),
            })
            .collect();
        let required = required_flags(&schema);
        let mut props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(crate::TOOL_VERSION.to_string());
        // Dictionary encoding only pays on repetitive columns; on near-unique ones
        // (ids, addresses, JSON) it costs a hash-table probe per value and is then
        // abandoned anyway when the dictionary page fills.
        for name in HIGH_CARDINALITY {
            props = props.set_column_dictionary_enabled(
                parquet::schema::types::ColumnPath::from(name),
                false,
            );
        }
        let props = props.build();
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
        if let Column::Text(values, defs) = &mut self.columns[col] {
            defs.push(i16::from(v.is_some()));
            if let Some(v) = v {
                values.push(ByteArray::from(v.as_bytes().to_vec()));
            }
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
                Column::Text(values, defs) => {
                    let defs_opt = (!required).then_some(defs.as_slice());
                    col.typed::<ByteArrayType>()
                        .write_batch(values, defs_opt, None)
                        .map_err(pq(&path))?;
                    values.clear();
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

    /// Writes the last row group and the footer, syncs the file, and returns the
    /// row count and the file's SHA-256 (computed while writing: no second pass).
    pub fn finish(mut self) -> Result<(u64, String), StoreError> {
        self.flush_group()?;
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
    evidence: String,
}

impl ConnWriter {
    /// Creates the table file for connections from `evidence` seen at `vantage`.
    pub fn create(path: &Path, vantage: &str, evidence: &str) -> Result<Self, StoreError> {
        Ok(ConnWriter {
            table: TableWriter::create(path, CONN_SCHEMA)?,
            vantage: vantage.into(),
            evidence: evidence.into(),
        })
    }

    /// Buffers one connection (in schema column order).
    pub fn write(&mut self, c: &Conn) -> Result<(), StoreError> {
        let t = &mut self.table;
        let id = record_id(&self.evidence, c.record);
        t.push_text(0, Some(&id));
        t.push_text(1, c.uid.as_deref());
        t.push_text(2, Some(&self.vantage));
        t.push_text(3, Some(&self.evidence));
        t.push_int(4, opt_i64(Some(c.record)));
        t.push_text(5, Some(c.proto.as_str()));
        t.push_int(6, c.ip_proto.map(i64::from));
        t.push_text(7, Some(&c.orig_h.to_string()));
        t.push_int(8, Some(i64::from(c.orig_p)));
        t.push_text(9, Some(&c.resp_h.to_string()));
        t.push_int(10, Some(i64::from(c.resp_p)));
        t.push_int(11, Some(c.start_ns));
        t.push_int(12, Some(c.end_ns()));
        t.push_int(13, c.duration_ns);
        t.push_text(14, c.service.as_deref());
        t.push_int(15, opt_i64(c.orig_bytes));
        t.push_int(16, opt_i64(c.resp_bytes));
        t.push_int(17, opt_i64(c.orig_pkts));
        t.push_int(18, opt_i64(c.resp_pkts));
        t.push_int(19, opt_i64(c.orig_ip_bytes));
        t.push_int(20, opt_i64(c.resp_ip_bytes));
        t.push_int(21, opt_i64(c.missed_bytes));
        t.push_text(22, c.conn_state.as_deref());
        t.push_text(23, c.history.as_deref());
        t.end_row()
    }

    /// Finishes the file; returns the row count and the file's SHA-256.
    pub fn finish(self) -> Result<(u64, String), StoreError> {
        self.table.finish()
    }
}

/// Writes packet timelines of one input.
pub struct PacketWriter {
    table: TableWriter,
    evidence: String,
}

impl PacketWriter {
    /// Creates the packet table file for `evidence`.
    pub fn create(path: &Path, evidence: &str) -> Result<Self, StoreError> {
        Ok(PacketWriter {
            table: TableWriter::create(path, PACKET_SCHEMA)?,
            evidence: evidence.into(),
        })
    }

    /// Buffers every packet of one timeline.
    pub fn write(&mut self, tl: &PacketTimeline) -> Result<(), StoreError> {
        let conn_id = record_id(&self.evidence, tl.conn_record);
        for p in &tl.packets {
            let t = &mut self.table;
            t.push_text(0, Some(&conn_id));
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

    /// Finishes the file; returns the row count and the file's SHA-256.
    pub fn finish(self) -> Result<(u64, String), StoreError> {
        self.table.finish()
    }
}

/// Writes events of one input.
pub struct EventWriter {
    table: TableWriter,
    vantage: String,
    evidence: String,
}

impl EventWriter {
    /// Creates the event table file for `evidence` seen at `vantage`.
    pub fn create(path: &Path, vantage: &str, evidence: &str) -> Result<Self, StoreError> {
        Ok(EventWriter {
            table: TableWriter::create(path, EVENT_SCHEMA)?,
            vantage: vantage.into(),
            evidence: evidence.into(),
        })
    }

    /// Buffers one event.
    pub fn write(&mut self, e: &Event) -> Result<(), StoreError> {
        let t = &mut self.table;
        t.push_text(0, Some(&record_id(&self.evidence, e.record)));
        t.push_text(1, Some(&self.vantage));
        t.push_text(2, Some(&self.evidence));
        t.push_int(3, opt_i64(Some(e.record)));
        t.push_text(4, Some(&e.kind));
        t.push_int(5, e.ts_ns);
        t.push_text(6, e.uid.as_deref());
        t.push_text(7, e.community_id.as_deref());
        t.push_text(8, Some(&e.json));
        t.end_row()
    }

    /// Finishes the file; returns the row count and the file's SHA-256.
    pub fn finish(self) -> Result<(u64, String), StoreError> {
        self.table.finish()
    }
}

/// A table row read back: column names with JSON values (nulls as `Null`), in
/// schema order. Generic so one reader serves every table and output format.
pub type Row = Vec<(String, serde_json::Value)>;

/// Reads every row of a table file, calling `f` for each; stops early if `f`
/// returns `false`.
pub fn scan_rows(path: &Path, mut f: impl FnMut(Row) -> bool) -> Result<(), StoreError> {
    let file = File::open(path).at(path)?;
    let reader = SerializedFileReader::new(file).map_err(pq(path))?;
    let iter = reader.get_row_iter(None).map_err(pq(path))?;
    for row in iter {
        let row = row.map_err(pq(path))?;
        let out: Row = row
            .get_column_iter()
            .map(|(name, field)| {
                let v = match field {
                    Field::Null => serde_json::Value::Null,
                    Field::Long(v) => serde_json::Value::from(*v),
                    Field::Int(v) => serde_json::Value::from(*v),
                    Field::Str(s) => serde_json::Value::String(s.clone()),
                    other => serde_json::Value::String(other.to_string()),
                };
                (name.clone(), v)
            })
            .collect();
        if !f(out) {
            break;
        }
    }
    Ok(())
}
