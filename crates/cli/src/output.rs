//! Output formats shared by the listing commands.

use std::io::Write;

use clap::ValueEnum;
use serde_json::{Map, Value};

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
