//! `relaytrace conns`

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use relaytrace_model::format_iso8601_us;
use relaytrace_store::Case;
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
Example:\n  relaytrace conns --case ./case --host 203.0.113.7 --format jsonl"
)]
pub struct ConnsArgs {
    /// The case directory.
    #[arg(long)]
    case: PathBuf,
    /// Only connections to or from this address.
    #[arg(long)]
    host: Option<IpAddr>,
    /// Only connections seen at this vantage.
    #[arg(long)]
    vantage: Option<String>,
    /// Only this transport (tcp, udp, icmp, unknown_transport).
    #[arg(long)]
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
            host: Some(host),
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
    let case = Case::open(&args.case)?;
    let host = args.host.map(|h| h.to_string());
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
            host.as_deref()
                .is_none_or(|h| text("orig_h") == h || text("resp_h") == h)
                && args.vantage.as_deref().is_none_or(|v| text("vantage") == v)
                && args.proto.as_deref().is_none_or(|p| text("proto") == p)
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
