//! Reading chosen columns of a table, a row group at a time, with Parquet's typed
//! column readers.
//!
//! [`crate::tables::scan_rows`] gives every row back as named JSON values: one reader
//! for every table and output format, and the right tool for listing rows. A stage that
//! reads a few columns of every row of a large case (trace loads every connection and
//! every packet) pays there for a `String` per column name and a JSON value per field;
//! this reader decodes each wanted column of a row group into one vector instead.
//! `relaytrace trace --method flow` on a case of 1 M generated conn.log connections
//! took 6.6–6.9 s through `scan_rows`, 1.6–1.8 s with this reader (README, "Trace").

use std::fs::File;
use std::path::Path;

use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::{ByteArray, DataType};
use parquet::errors::ParquetError;
use parquet::file::reader::{FileReader, SerializedFileReader};

use crate::error::{IoContext, StoreError};
use crate::tables::{META_EVIDENCE, META_VANTAGE};

/// Values decoded per call of a column reader.
const BATCH: usize = 8192;

/// One column of one row group, a value per row (`None` where the row has none).
#[derive(Debug)]
enum Values {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<ByteArray>>),
}

/// The wanted columns of one row group, in the order they were asked for; a column the
/// table does not have reads as null in every row.
#[derive(Debug)]
pub struct ColumnBatch {
    rows: usize,
    columns: Vec<Option<Values>>,
}

impl ColumnBatch {
    /// Rows in this batch.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The integer in column `col` (index into the names asked for) at `row`, if any.
    pub fn int(&self, col: usize, row: usize) -> Option<i64> {
        match self.columns.get(col)? {
            Some(Values::Int(v)) => v.get(row).copied().flatten(),
            _ => None,
        }
    }

    /// The value in column `col` at `row` as JSON (`Null` where there is none), as
    /// [`crate::tables::scan_rows`] gives it.
    pub fn json(&self, col: usize, row: usize) -> serde_json::Value {
        match self.columns.get(col) {
            Some(Some(Values::Int(_))) => self.int(col, row).into(),
            Some(Some(Values::Text(_))) => self.text(col, row).into(),
            _ => serde_json::Value::Null,
        }
    }

    /// The text in column `col` at `row`, if any (and if it is UTF-8, as the writers
    /// make it).
    pub fn text(&self, col: usize, row: usize) -> Option<&str> {
        match self.columns.get(col)? {
            Some(Values::Text(v)) => v.get(row)?.as_ref()?.as_utf8().ok(),
            _ => None,
        }
    }
}

/// What a table file says of all its rows: the evidence it was read from and the
/// vantage that saw it (file metadata, see [`crate::tables`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableMeta {
    /// SHA-256 of the evidence file.
    pub evidence: Option<String>,
    /// Whose sensor saw it.
    pub vantage: Option<String>,
    /// Rows in the whole file (so that a reader can size its output once).
    pub rows: u64,
}

/// Reads the columns `names` of every row group of the table at `path`, calling `f`
/// with the file's metadata and each batch; stops early if `f` returns `false`. A
/// column with another physical type than the writers make, or a chunk with fewer
/// values than its row group has rows, is an error naming the file, row group and
/// column (never rows silently read as empty).
pub fn scan_columns(
    path: &Path,
    names: &[&str],
    mut f: impl FnMut(&TableMeta, &ColumnBatch) -> bool,
) -> Result<(), StoreError> {
    let pq = |source: ParquetError| StoreError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).at(path)?;
    let reader = SerializedFileReader::new(file).map_err(pq)?;
    let meta_data = reader.metadata();
    let key = |k: &str| -> Option<String> {
        meta_data
            .file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.clone())
    };
    let meta = TableMeta {
        evidence: key(META_EVIDENCE),
        vantage: key(META_VANTAGE),
        rows: u64::try_from(meta_data.file_metadata().num_rows()).unwrap_or(0),
    };
    let schema = meta_data.file_metadata().schema_descr();
    // Each wanted name's column index and whether it can hold nulls.
    let wanted: Vec<Option<(usize, i16)>> = names
        .iter()
        .map(|n| {
            (0..schema.num_columns())
                .find(|&i| schema.column(i).name() == *n)
                .map(|i| (i, schema.column(i).max_def_level()))
        })
        .collect();
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g).map_err(pq)?;
        let rows = usize::try_from(group.metadata().num_rows()).unwrap_or(0);
        let mut columns = Vec::with_capacity(wanted.len());
        for w in &wanted {
            let Some((i, max_def)) = *w else {
                columns.push(None);
                continue;
            };
            let name = names[columns.len()];
            let values = match group.get_column_reader(i).map_err(pq)? {
                ColumnReader::Int64ColumnReader(r) => read_whole(r, rows, max_def).map(Values::Int),
                ColumnReader::ByteArrayColumnReader(r) => {
                    read_whole(r, rows, max_def).map(Values::Text)
                }
                // The writers make only INT64 and BYTE_ARRAY columns: anything else is
                // not one of our tables.
                _ => {
                    return Err(pq(ParquetError::General(format!(
                        "column {name} is neither INT64 nor BYTE_ARRAY"
                    ))))
                }
            };
            let values = values.map_err(pq)?;
            let got = match &values {
                Values::Int(v) => v.len(),
                Values::Text(v) => v.len(),
            };
            if got != rows {
                return Err(pq(ParquetError::General(format!(
                    "row group {g}, column {name}: {got} values for {rows} rows"
                ))));
            }
            columns.push(Some(values));
        }
        if !f(&meta, &ColumnBatch { rows, columns }) {
            break;
        }
    }
    Ok(())
}

/// Every value of one column chunk of `rows` rows, `None` where a row has none (a
/// chunk that ends early gives fewer: the caller says so).
fn read_whole<T: DataType>(
    mut r: ColumnReaderImpl<T>,
    rows: usize,
    max_def: i16,
) -> Result<Vec<Option<T::T>>, ParquetError> {
    let mut out = Vec::with_capacity(rows);
    let (mut defs, mut vals) = (Vec::new(), Vec::new());
    while out.len() < rows {
        defs.clear();
        vals.clear();
        let (n, _, _) = r.read_records(BATCH, Some(&mut defs), None, &mut vals)?;
        if n == 0 {
            break;
        }
        spread(n, max_def, &defs, vals.drain(..), &mut out);
    }
    Ok(out)
}

/// Appends `n` rows to `out`: the non-null `values` in order, placed where the
/// definition level says a value is present (every row when the column is required).
fn spread<T>(
    n: usize,
    max_def: i16,
    defs: &[i16],
    mut values: impl Iterator<Item = T>,
    out: &mut Vec<Option<T>>,
) {
    if max_def == 0 {
        out.extend(values.by_ref().take(n).map(Some));
        return;
    }
    for &d in defs.iter().take(n) {
        out.push(if d == max_def { values.next() } else { None });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{scan_rows, ConnWriter};

    /// A column of a type our writers never make is an error naming the file and the
    /// column, not a column of nulls.
    #[test]
    fn a_column_of_another_type_is_refused_by_name() {
        use std::sync::Arc;

        use parquet::data_type::Int32Type;
        use parquet::file::properties::WriterProperties;
        use parquet::file::writer::SerializedFileWriter;
        use parquet::schema::parser::parse_message_type;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.parquet");
        let schema = Arc::new(parse_message_type("message m { required int32 port; }").unwrap());
        let file = File::create(&path).unwrap();
        let mut w =
            SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::default())).unwrap();
        let mut group = w.next_row_group().unwrap();
        let mut col = group.next_column().unwrap().unwrap();
        col.typed::<Int32Type>()
            .write_batch(&[1, 2, 3], None, None)
            .unwrap();
        col.close().unwrap();
        group.close().unwrap();
        w.close().unwrap();
        let err = scan_columns(&path, &["port"], |_, _| true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("port") && err.contains("odd.parquet"), "{err}");
    }

    /// Every wanted column of every row reads back as `scan_rows` reads it, nulls
    /// included, across several row groups; an unknown column reads as null.
    #[test]
    fn columns_read_back_as_rows_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.parquet");
        let mut w = ConnWriter::create(&path, "edge").unwrap();
        let n = crate::tables::ROW_GROUP_ROWS + 1000;
        for i in 0..n {
            w.write(&crate::tables::sample_conn(i)).unwrap();
        }
        w.finish("ab".repeat(32).as_str()).unwrap();
        let names = [
            "record",
            "proto",
            "orig_h",
            "resp_h",
            "orig_bytes",
            "conn_state",
            "nope",
        ];
        let mut rows = Vec::new();
        scan_rows(&path, |r| {
            rows.push(r);
            true
        })
        .unwrap();
        let mut seen = 0;
        let mut batches = 0;
        scan_columns(&path, &names, |meta, b| {
            assert_eq!(meta.vantage.as_deref(), Some("edge"));
            assert_eq!(meta.evidence.as_deref(), Some("ab".repeat(32).as_str()));
            assert_eq!(meta.rows, n as u64);
            batches += 1;
            for r in 0..b.rows() {
                let row = &rows[seen];
                let get = |k: &str| row.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                for (col, name) in names.iter().enumerate() {
                    let want = get(name).unwrap_or(serde_json::Value::Null);
                    let got = match (b.int(col, r), b.text(col, r)) {
                        (Some(i), None) => serde_json::Value::from(i),
                        (None, Some(s)) => serde_json::Value::from(s),
                        (None, None) => serde_json::Value::Null,
                        (Some(_), Some(_)) => unreachable!("one type per column"),
                    };
                    assert_eq!(got, want, "row {seen} column {name}");
                }
                seen += 1;
            }
            true
        })
        .unwrap();
        assert_eq!(seen, n);
        assert_eq!(batches, 2);
    }
}
