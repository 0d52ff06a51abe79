//! Helpers shared by the unit tests of trace's modules (compiled for tests only).

use crate::conn::FlowConn;

/// A TCP connection record from `orig` to `resp` (port 22), times in seconds, byte
/// counts per direction if known: the shape every flow-mode and candidate test needs.
pub(crate) fn record(
    orig: &str,
    resp: &str,
    start_s: f64,
    end_s: f64,
    bytes: Option<(u64, u64)>,
) -> FlowConn {
    FlowConn {
        ids: smallvec::smallvec![format!("{orig}-{resp}-{start_s}").into()],
        vantages: smallvec::smallvec!["v".into()],
        proto: "tcp".into(),
        orig_h: orig.parse().expect("test address"),
        orig_p: 40000,
        resp_h: resp.parse().expect("test address"),
        resp_p: 22,
        start_ns: (start_s * 1e9) as i64,
        end_ns: (end_s * 1e9) as i64,
        orig_bytes: bytes.map(|b| b.0),
        resp_bytes: bytes.map(|b| b.1),
    }
}
