//! What the synthetic-background tests share: a seeded generator and a connection
//! record seen at one relay's ISP.

use std::net::IpAddr;

use relaytrace_trace::FlowConn;

/// SplitMix64: a tiny, well-known seeded generator (no dependency for a test), so
/// every run of a test is the same run.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Log-uniform in [lo, hi).
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.unit() * (hi.ln() - lo.ln())).exp()
    }
}

/// A TCP session `orig` → `resp`:22 from `start_s` for `dur_s` seconds with the given
/// byte counts, as the relay's ISP (vantage `relay-isp`) recorded it.
pub fn conn(
    id: String,
    orig: IpAddr,
    resp: IpAddr,
    start_s: f64,
    dur_s: f64,
    ob: u64,
    rb: u64,
) -> FlowConn {
    FlowConn {
        ids: vec![id.into()].into(),
        vantages: vec!["relay-isp".into()].into(),
        proto: "tcp".into(),
        orig_h: orig,
        orig_p: 40000,
        resp_h: resp,
        resp_p: 22,
        start_ns: (start_s * 1e9) as i64,
        end_ns: ((start_s + dur_s) * 1e9) as i64,
        orig_bytes: Some(ob),
        resp_bytes: Some(rb),
    }
}
