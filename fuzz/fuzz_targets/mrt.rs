//! Fuzz target: the MRT RIB reader (enrich) must never panic on any byte stream; bad
//! records are reported, not guessed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = relaytrace_enrich::mrt::read_rib(std::path::Path::new("<fuzz>"), data);
});
