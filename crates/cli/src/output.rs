//! Output formats shared by the listing commands.

use std::io::Write;

use anyhow::Result;
use clap::ValueEnum;
use relaytrace_store::{tables::scan_rows, Case};
use serde_json::{Map, Value};

/// Reads a table of the case in ledger order, turning each stored row into an output
/// row with `shape` and keeping those `keep` accepts, up to `limit` rows. Shared by
/// the listing commands so filtering and limits behave the same everywhere.
pub fn collect_rows(
    case: &Case,
    table: &str,
    limit: Option<usize>,
    shape: impl Fn(Map<String, Value>) -> Map<String, Value>,
    keep: impl Fn(&Map<String, Value>) -> bool,
) -> Result<Vec<Map<String, Value>>> {
    let limit = limit.unwrap_or(usize::MAX);
    let mut rows = Vec::new();
    for file in case.table_files(table)? {
        if rows.len() >= limit {
            break;
        }
        scan_rows(&file, |stored| {
            let row = shape(stored.into_iter().collect());
            if keep(&row) {
                rows.push(row);
            }
            rows.len() < limit
        })?;
    }
    Ok(rows)
}

/// Prints rows to standard output (see [`write_rows`]).
pub fn print_rows(format: ListFormat, columns: &[&str], rows: &[Map<String, Value>]) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    write_rows(&mut out, format, columns, rows)?;
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

/// Writes rows (JSON objects with the same keys) in `format`; `columns` picks and
/// orders the fields for table and CSV output.
pub fn write_rows(
    out: &mut dyn Write,
    format: ListFormat,
    columns: &[&str],
    rows: &[Map<String, Value>],
) -> std::io::Result<()> {
    let text = |v: Option<&Value>| match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    match format {
        ListFormat::Jsonl => {
            for row in rows {
                writeln!(out, "{}", Value::Object(row.clone()))?;
            }
        }
        ListFormat::Csv => {
            writeln!(out, "{}", columns.join(","))?;
            for row in rows {
                let cells: Vec<String> = columns
                    .iter()
                    .map(|c| match row.get(*c) {
                        None | Some(Value::Null) => String::new(),
                        v => csv_cell(&text(v)),
                    })
                    .collect();
                writeln!(out, "{}", cells.join(","))?;
            }
        }
        ListFormat::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|row| columns.iter().map(|c| text(row.get(*c))).collect())
                .collect();
            let mut widths: Vec<usize> = columns.iter().map(|c| c.len()).collect();
            for row in &cells {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |vals: Vec<&str>| {
                vals.iter()
                    .zip(&widths)
                    .map(|(v, w)| format!("{v:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            writeln!(out, "{}", line(columns.to_vec()))?;
            for row in &cells {
                writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
            }
        }
    }
    Ok(())
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
