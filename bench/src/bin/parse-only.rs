//! Reads one input with the relaytrace readers into a counting sink (no store), to
//! separate parsing cost from the store's (copy, hash, Parquet) in `bench/ingest`.
//! Usage: `parse-only FILE`; prints records read and seconds.

use std::time::Instant;

use relaytrace_ingest::{detect_format, input::open_input, read, ReadOptions, Sink};
use relaytrace_model::{Conn, Event, PacketTimeline, Rejection};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Counts what it is given and keeps nothing.
#[derive(Default)]
struct Count(u64);

impl Sink for Count {
    fn conn(&mut self, _: Conn) -> std::io::Result<()> {
        self.0 += 1;
        Ok(())
    }
    fn timeline(&mut self, _: PacketTimeline) -> std::io::Result<()> {
        Ok(())
    }
    fn event(&mut self, _: Event) -> std::io::Result<()> {
        self.0 += 1;
        Ok(())
    }
    fn reject(&mut self, _: Rejection) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: parse-only FILE")?;
    let started = Instant::now();
    let mut input = open_input(std::path::Path::new(&path))?;
    let format = detect_format(&mut input)?;
    let mut sink = Count::default();
    let summary = read(format, &mut input, &mut ReadOptions::default(), &mut sink)?;
    println!(
        "{} records, {} rejected, {:.3} s",
        summary.read,
        summary.rejected,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
