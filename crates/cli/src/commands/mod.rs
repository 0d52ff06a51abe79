//! One module per subcommand.

pub mod assess;
pub mod block;
pub mod case;
pub mod conns;
pub mod data;
pub mod demo;
pub mod enrich;
pub mod events;
pub mod evidence;
pub mod ingest;
pub mod trace;
pub mod whois;

/// A time given on the command line: ISO 8601 (`2014-11-24T08:00:00Z`) or Unix
/// seconds (`1416816000.5`), as nanoseconds since the epoch.
pub fn parse_time_arg(s: &str) -> Result<i64, String> {
    relaytrace_model::parse_iso8601_ns(s)
        .or_else(|_| relaytrace_model::parse_decimal_seconds_ns(s))
        .map_err(|_| format!("not a time (ISO 8601 or Unix seconds): {s:?}"))
}
