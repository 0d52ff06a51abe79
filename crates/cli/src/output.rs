//! Output formats shared by the listing commands.
//!
//! Listings stream: each row is printed as it is read, so listing a case of millions
//! of connections takes the memory of one row group, not of every row (collecting the
//! rows first took 3.1 GB for 1 M connections).

use std::io::{BufWriter, Write};

use anyhow::Result;
use clap::ValueEnum;
use relaytrace_store::{tables::scan_rows, Case};
use serde_json::{Map, Value};

/// Rows a table listing reads before it fixes its column widths; later rows are
/// printed with those widths (a longer value widens its own line only).
pub const TABLE_SIZING_ROWS: usize = 1000;

/// Reads a table of the case in ledger order, keeps the stored rows `keep` accepts (it
/// sees the stored fields, so a filter costs no shaping of rows it drops), turns each
/// into an output row with `shape`, and prints up to `limit` of them, in `format` to
/// standard output as they come. Shared by the listing commands so filtering, limits
/// and formats behave the same everywhere. A reader that stops reading (`| head`)
/// ends the listing quietly.
pub fn list_rows(
    case: &Case,
    table: &str,
    limit: Option<usize>,
    (format, columns): (ListFormat, &[&str]),
    shape: impl Fn(Map<String, Value>) -> Map<String, Value>,
    keep: impl Fn(&Map<String, Value>) -> bool,
) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match write_listing(case, table, limit, &mut out, (format, columns), shape, keep) {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

/// Set once standard output has been found closed: later prints are skipped.
static STDOUT_GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes to standard output. When the reader has gone (a closed pipe: `| head`), the
/// output is dropped silently from then on, and the command goes on with its work
/// (an ingest still commits its inputs, `assess --requests` still writes its files)
/// and ends with its own exit status (`case verify` on an altered case still exits 1):
/// `println!` panicked there instead. Any other write error is reported on standard
/// error once, and output is dropped as well.
pub fn print_or_leave(args: std::fmt::Arguments<'_>) {
    use std::sync::atomic::Ordering;
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: writing to standard output: {e}");
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// [`list_rows`] into any writer.
fn write_listing(
    case: &Case,
    table: &str,
    limit: Option<usize>,
    out: &mut dyn Write,
    (format, columns): (ListFormat, &[&str]),
    shape: impl Fn(Map<String, Value>) -> Map<String, Value>,
    keep: impl Fn(&Map<String, Value>) -> bool,
) -> Result<()> {
    let limit = limit.unwrap_or(usize::MAX);
    let mut writer = RowWriter::new(format, columns);
    let mut printed = 0usize;
    let mut failed = None;
    for file in case.table_files(table)? {
        if printed >= limit {
            break;
        }
        scan_rows(&file, |stored| {
            let stored: Map<String, Value> = stored.into_iter().collect();
            if keep(&stored) {
                if let Err(e) = writer.write(out, &shape(stored)) {
                    failed = Some(e);
                    return false;
                }
                printed += 1;
            }
            printed < limit
        })?;
        if let Some(e) = failed.take() {
            return Err(e.into());
        }
    }
    writer.finish(out)?;
    out.flush()?;
    Ok(())
}

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for people.
    Table,
    /// One JSON object per line, stable field names, for scripts.
    Jsonl,
    /// Comma-separated values with a header line.
    Csv,
}

/// Prints rows (JSON objects with the same keys) one at a time in a [`ListFormat`];
/// `columns` picks and orders the fields for table and CSV output. A table keeps its
/// first [`TABLE_SIZING_ROWS`] rows to size its columns, then prints as it goes.
pub struct RowWriter {
    format: ListFormat,
    columns: Vec<String>,
    /// Table only: the cells of the rows read before the widths are fixed.
    sizing: Vec<Vec<String>>,
    /// Table only: the widths, once fixed.
    widths: Option<Vec<usize>>,
    /// CSV only: whether the header line is out.
    header_done: bool,
}

impl RowWriter {
    /// A writer of rows in `format` with these `columns`.
    pub fn new(format: ListFormat, columns: &[&str]) -> Self {
        RowWriter {
            format,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            sizing: Vec::new(),
            widths: None,
            header_done: false,
        }
    }

    /// Prints one row (or keeps it, while a table is still sizing its columns).
    pub fn write(&mut self, out: &mut dyn Write, row: &Map<String, Value>) -> std::io::Result<()> {
        match self.format {
            ListFormat::Jsonl => {
                serde_json::to_writer(&mut *out, row)?;
                writeln!(out)
            }
            ListFormat::Csv => {
                if !self.header_done {
                    writeln!(out, "{}", self.columns.join(","))?;
                    self.header_done = true;
                }
                let cells: Vec<String> = self
                    .columns
                    .iter()
                    .map(|c| match row.get(c) {
                        None | Some(Value::Null) => String::new(),
                        v => csv_cell(&text(v)),
                    })
                    .collect();
                writeln!(out, "{}", cells.join(","))
            }
            ListFormat::Table => {
                let cells: Vec<String> = self.columns.iter().map(|c| text(row.get(c))).collect();
                match &self.widths {
                    Some(widths) => writeln!(out, "{}", table_line(&cells, widths)),
                    None => {
                        self.sizing.push(cells);
                        if self.sizing.len() >= TABLE_SIZING_ROWS {
                            self.flush_sizing(out)?;
                        }
                        Ok(())
                    }
                }
            }
        }
    }

    /// Prints whatever is still kept (a table shorter than the sizing rows, or the
    /// header of an empty listing).
    pub fn finish(mut self, out: &mut dyn Write) -> std::io::Result<()> {
        match self.format {
            ListFormat::Table if self.widths.is_none() => self.flush_sizing(out),
            ListFormat::Csv if !self.header_done => writeln!(out, "{}", self.columns.join(",")),
            _ => Ok(()),
        }
    }

    /// Fixes a table's widths from the header and the rows kept so far and prints them.
    fn flush_sizing(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &self.sizing {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        writeln!(out, "{}", table_line(&self.columns, &widths))?;
        for row in std::mem::take(&mut self.sizing) {
            writeln!(out, "{}", table_line(&row, &widths))?;
        }
        self.widths = Some(widths);
        Ok(())
    }
}

/// A value as a table or CSV cell: `-` for none, strings bare, others as JSON.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// One table line: cells padded to their widths, two spaces apart, no trailing blanks.
fn table_line(cells: &[String], widths: &[usize]) -> String {
    cells
        .iter()
        .zip(widths)
        .map(|(v, w)| format!("{v:<w$}"))
        .collect::<Vec<_>>()
        .join("  ")
        .trim_end()
        .to_string()
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize, name: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("n".into(), Value::from(i));
        m.insert("name".into(), Value::from(name));
        m.insert("gone".into(), Value::Null);
        m
    }

    fn render(format: ListFormat, rows: &[Map<String, Value>]) -> String {
        let mut out = Vec::new();
        let mut w = RowWriter::new(format, &["n", "name", "gone"]);
        for r in rows {
            w.write(&mut out, r).unwrap();
        }
        w.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_short_table_is_sized_by_all_its_rows() {
        let got = render(ListFormat::Table, &[row(1, "a"), row(22, "long name")]);
        assert_eq!(
            got,
            "n   name       gone\n1   a          -\n22  long name  -\n"
        );
        assert_eq!(render(ListFormat::Table, &[]), "n  name  gone\n");
    }

    /// Past the sizing rows a table prints as it reads, with the widths already fixed:
    /// a longer value widens its own line only.
    #[test]
    fn a_long_table_keeps_the_widths_of_its_first_rows() {
        let mut rows: Vec<_> = (0..TABLE_SIZING_ROWS).map(|i| row(i % 10, "ab")).collect();
        rows.push(row(7, "a much longer name"));
        rows.push(row(8, "cd"));
        let got = render(ListFormat::Table, &rows);
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), TABLE_SIZING_ROWS + 3);
        assert_eq!(lines[0], "n  name  gone");
        assert_eq!(lines[1], "0  ab    -");
        assert_eq!(lines[TABLE_SIZING_ROWS + 1], "7  a much longer name  -");
        assert_eq!(lines[TABLE_SIZING_ROWS + 2], "8  cd    -");
    }

    #[test]
    fn csv_quotes_and_leaves_nulls_empty() {
        let got = render(ListFormat::Csv, &[row(1, "a,\"b\"")]);
        assert_eq!(got, "n,name,gone\n1,\"a,\"\"b\"\"\",\n");
        assert_eq!(render(ListFormat::Csv, &[]), "n,name,gone\n");
    }

    #[test]
    fn jsonl_is_one_object_per_line() {
        let got = render(ListFormat::Jsonl, &[row(1, "a"), row(2, "b")]);
        assert_eq!(
            got,
            "{\"gone\":null,\"n\":1,\"name\":\"a\"}\n{\"gone\":null,\"n\":2,\"name\":\"b\"}\n"
        );
    }
}
