//! Prints each column's encodings and compressed/uncompressed bytes in a Parquet
//! table file, summed over row groups: what to look at when choosing per-column
//! encodings and compression (see `tables.rs`).
//!
//! `cargo run --release -p relaytrace-store --example table-columns FILE...`

use std::fs::File;

use parquet::file::reader::{FileReader, SerializedFileReader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for path in std::env::args().skip(1) {
        let reader = SerializedFileReader::new(File::open(&path)?)?;
        let meta = reader.metadata();
        let columns = meta.file_metadata().schema_descr().num_columns();
        let rows = meta.file_metadata().num_rows();
        println!("{path}: {rows} rows, {} row groups", meta.num_row_groups());
        let mut total = (0, 0);
        for c in 0..columns {
            let (mut comp, mut uncomp) = (0i64, 0i64);
            let mut encodings = Vec::new();
            for g in meta.row_groups() {
                let col = g.column(c);
                comp += col.compressed_size();
                uncomp += col.uncompressed_size();
                for e in col.encodings() {
                    if !encodings.contains(&e) {
                        encodings.push(e);
                    }
                }
            }
            total.0 += comp;
            total.1 += uncomp;
            let col = meta.row_group(0).column(c);
            println!(
                "  {:<14} {:>12} {:>12} {:>6.2} B/row  {:?} {:?}",
                col.column_path().string(),
                comp,
                uncomp,
                comp as f64 / rows.max(1) as f64,
                col.compression(),
                encodings
            );
        }
        println!("  {:<14} {:>12} {:>12}", "total", total.0, total.1);
    }
    Ok(())
}
