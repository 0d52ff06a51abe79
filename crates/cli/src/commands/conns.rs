//! `relaytrace conns`

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use relaytrace_model::format_iso8601_us;
use relaytrace_store::Case;
use relaytrace_trace::Cidr;
use serde_json::{Map, Value};

use crate::output::{list_rows, ListFormat};

/// Arguments of `conns`.
#[derive(Debug, Args)]
#[command(
    after_help = "JSON/CSV fields use Zeek's conn.log names: uid, orig_h, orig_p, resp_h, \
resp_p, proto, service, duration (seconds), orig_bytes, resp_bytes, orig_pkts, resp_pkts, \
orig_ip_bytes, resp_ip_bytes, missed_bytes, conn_state, history, ip_proto; plus id (unique in the \
case), ts (ISO 8601 UTC), start_ns, end_ns, vantage, evidence (sha256 of the input). Unset values \
are null in JSON and empty in CSV.\n\n\
Example:\n  relaytrace conns --case ./case --host 203.0.113.7 --format jsonl\n  \
relaytrace conns --case ./case --host 175.45.176.0/22 --since 2014-11-24T00:00:00Z --until 2014-11-25T00:00:00Z"
)]
pub struct ConnsArgs {
    /// The case directory.
    #[arg(long)]
    case: PathBuf,
    /// Only connections to or from this address, or from or to any address of this
    /// prefix (`203.0.113.0/24`, `2001:db8::/32`).
    #[arg(long, value_name = "ADDR|PREFIX")]
    host: Option<Cidr>,
    /// Only connections active at or after this time (ISO 8601, a date for its midnight UTC, or Unix seconds): those
    /// that end at or after it.
    #[arg(long, value_name = "TIME", value_parser = super::parse_time_arg)]
    since: Option<i64>,
    /// Only connections active at or before this time (ISO 8601, a date for its midnight UTC, or Unix seconds): those
    /// that start at or before it.
    #[arg(long, value_name = "TIME", value_parser = super::parse_time_arg)]
    until: Option<i64>,
    /// Only connections seen at this vantage.
    #[arg(long)]
    vantage: Option<String>,
    /// Only this transport (tcp, udp, icmp, unknown_transport; any letter case).
    #[arg(long, value_parser = super::parse_proto_arg)]
    proto: Option<String>,
    /// Print at most this many connections.
    #[arg(long)]
    limit: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    format: ListFormat,
}

impl ConnsArgs {
    /// A table listing of one host's connections (used by `demo`).
    pub fn for_host(case: PathBuf, host: IpAddr) -> Self {
        ConnsArgs {
            case,
            host: Some(Cidr::host(host)),
            since: None,
            until: None,
            vantage: None,
            proto: None,
            limit: None,
            format: ListFormat::Table,
        }
    }
}

/// Fields of a connection row, in output order.
pub const CONN_FIELDS: [&str; 24] = [
    "id",
    "ts",
    "uid",
    "orig_h",
    "orig_p",
    "resp_h",
    "resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "orig_pkts",
    "resp_pkts",
    "orig_ip_bytes",
    "resp_ip_bytes",
    "missed_bytes",
    "conn_state",
    "history",
    "ip_proto",
    "start_ns",
    "end_ns",
    "vantage",
    "evidence",
];

const TABLE_FIELDS: [&str; 12] = [
    "ts",
    "proto",
    "orig_h",
    "orig_p",
    "resp_h",
    "resp_p",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "vantage",
    "id",
];

/// Turns a stored row into the documented output object.
fn output_row(stored: Map<String, Value>) -> Map<String, Value> {
    let mut row = Map::new();
    for field in CONN_FIELDS {
        let v = match field {
            "ts" => stored
                .get("start_ns")
                .and_then(Value::as_i64)
                .map(|ns| Value::String(format_iso8601_us(ns)))
                .unwrap_or(Value::Null),
            "duration" => stored
                .get("duration_ns")
                .and_then(Value::as_i64)
                .map(|ns| Value::from(ns as f64 / 1e9))
                .unwrap_or(Value::Null),
            other => stored.get(other).cloned().unwrap_or(Value::Null),
        };
        row.insert(field.to_string(), v);
    }
    row
}

/// Runs `conns`.
pub fn run(args: ConnsArgs) -> Result<ExitCode> {
    super::check_window(args.since, args.until)?;
    let case = Case::open(&args.case)?;
    let columns: &[&str] = match args.format {
        ListFormat::Table => &TABLE_FIELDS,
        _ => &CONN_FIELDS,
    };
    list_rows(
        &case,
        "conns",
        args.limit,
        (args.format, columns),
        output_row,
        |row| {
            let text = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("");
            let inside = |h: &Cidr, k: &str| text(k).parse().is_ok_and(|a| h.contains(a));
            let ns = |k: &str| row.get(k).and_then(Value::as_i64);
            args.host
                .as_ref()
                .is_none_or(|h| inside(h, "orig_h") || inside(h, "resp_h"))
                && args.vantage.as_deref().is_none_or(|v| text("vantage") == v)
                && args.proto.as_deref().is_none_or(|p| text("proto") == p)
                && args
                    .since
                    .is_none_or(|t| ns("end_ns").or(ns("start_ns")).is_some_and(|e| e >= t))
                && args
                    .until
                    .is_none_or(|t| ns("start_ns").is_some_and(|s| s <= t))
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
