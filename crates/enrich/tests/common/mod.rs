//! Shared helpers of the enrich integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::PathBuf;

/// The unpacked default datasets, from `.ci/fetch-data.sh` via `RELAYTRACE_TEST_DATA`.
/// Absent: a loud failure under CI (`CI=true`), a visible skip elsewhere.
pub fn test_data() -> Option<PathBuf> {
    match std::env::var_os("RELAYTRACE_TEST_DATA") {
        Some(d) => {
            let d = PathBuf::from(d);
            assert!(
                d.join("asn-ipv4.csv").is_file(),
                "RELAYTRACE_TEST_DATA={} has no asn-ipv4.csv: run .ci/fetch-data.sh",
                d.display()
            );
            Some(d)
        }
        None if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "RELAYTRACE_TEST_DATA is not set under CI: .ci/run must export it from .ci/fetch-data.sh"
        ),
        None => {
            eprintln!(
                "SKIPPED: RELAYTRACE_TEST_DATA not set; run `export RELAYTRACE_TEST_DATA=$(bash .ci/fetch-data.sh)`"
            );
            None
        }
    }
}

/// Random addresses per family per test (`RELAYTRACE_ENRICH_RANDOM`, default 200 000;
/// the bench does 10 M in a release build).
pub fn random_count() -> usize {
    std::env::var("RELAYTRACE_ENRICH_RANDOM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000)
}

/// splitmix64: a tiny deterministic generator, so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A random IPv6 address: half uniform over the whole space, half inside
    /// 2000::/4 where nearly all allocated space is (uniform alone would almost
    /// never hit data).
    pub fn v6(&mut self) -> u128 {
        let a = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        if self.next_u64() & 1 == 0 {
            a
        } else {
            (a >> 4) | (0x2u128 << 124)
        }
    }
}
