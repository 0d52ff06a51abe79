//! Copies one input into a directory and hashes it the way `ingest` stores evidence
//! (`CopyingReader`: read, write to the copy, SHA-256, then sync), without parsing: the
//! floor under any ingest of that input, for `bench/ingest`'s budget line.
//! Usage: `evidence-copy FILE DIR`; prints bytes, digest and seconds.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use relaytrace_store::digest::CopyingReader;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(dir)) = (args.next(), args.next()) else {
        return Err("usage: evidence-copy FILE DIR".into());
    };
    let started = Instant::now();
    let copy_path = Path::new(&dir).join("evidence.partial");
    let copy = File::create(&copy_path)?;
    let reader = CopyingReader::new(File::open(&input)?, copy, copy_path.display().to_string());
    // Nothing consumes the bytes: `finish` reads, copies and hashes them all, in the
    // 1 MiB reads it makes for what a format reader leaves unread.
    let (digest, bytes, copy) = reader.finish()?;
    copy.sync_all()?;
    std::fs::remove_file(&copy_path)?;
    println!(
        "{bytes} bytes, sha256 {digest}, {:.3} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
