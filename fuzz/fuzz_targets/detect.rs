//! Fuzz target: detection then the detected reader, as `relaytrace ingest` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relaytrace_ingest::{detect_format, read, ReadOptions, VecSink};

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    if let Ok(format) = detect_format(&mut input) {
        let mut sink = VecSink::default();
        let _ = read(format, &mut input, &mut ReadOptions::default(), &mut sink);
    }
});
