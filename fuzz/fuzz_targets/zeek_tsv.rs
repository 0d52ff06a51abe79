//! Fuzz target: the zeek_tsv reader must never panic, hang or grow without bound on any
//! input; every byte sequence either yields records or rejections.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relaytrace_ingest::{read, Format, ReadOptions, VecSink};

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let mut sink = VecSink::default();
    let mut options = ReadOptions::default();
    if let Ok(summary) = read(Format::ZeekTsv, &mut input, &mut options, &mut sink) {
        // What the summary counts is what the sink received: nothing dropped silently
        // (a reader's summary of the whole input is an event but no record read).
        assert_eq!(summary.rejected as usize, sink.rejections.len());
        assert_eq!(summary.read as usize, sink.records_read());
    }
});
