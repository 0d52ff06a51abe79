//! `relaytrace events`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use relaytrace_model::format_iso8601_us;
use relaytrace_store::Case;
use serde_json::{Map, Value};

use crate::output::{list_rows, ListFormat};

/// Arguments of `events`.
#[derive(Debug, Args)]
#[command(
    after_help = "Fields: id, ts, kind (Zeek log path or EVE event_type), uid (Zeek uid or \
EVE flow_id: joins with conns' uid), community_id, vantage, evidence, record, and json (the whole \
original record).\n\nExample:\n  relaytrace events --case ./case --kind alert --format jsonl"
)]
pub struct EventsArgs {
    /// The case directory.
    #[arg(long)]
    case: PathBuf,
    /// Only events of this kind (ssh, alert, dns...).
    #[arg(long)]
    kind: Option<String>,
    /// Only events linked to this connection uid / flow_id.
    #[arg(long)]
    uid: Option<String>,
    /// Only events at or after this time (ISO 8601, a date for its midnight UTC, or Unix seconds); events without a
    /// time are left out when a window is given.
    #[arg(long, value_name = "TIME", value_parser = super::parse_time_arg)]
    since: Option<i64>,
    /// Only events at or before this time (ISO 8601, a date for its midnight UTC, or Unix seconds).
    #[arg(long, value_name = "TIME", value_parser = super::parse_time_arg)]
    until: Option<i64>,
    /// Print at most this many events.
    #[arg(long)]
    limit: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Table)]
    format: ListFormat,
}

const FIELDS: [&str; 9] = [
    "id",
    "ts",
    "kind",
    "uid",
    "community_id",
    "vantage",
    "evidence",
    "record",
    "json",
];
const TABLE_FIELDS: [&str; 5] = ["ts", "kind", "uid", "vantage", "id"];

/// Runs `events`.
pub fn run(args: EventsArgs) -> Result<ExitCode> {
    super::check_window(args.since, args.until)?;
    let case = Case::open(&args.case)?;
    let shape = |stored: Map<String, Value>| {
        let mut row = Map::new();
        for f in FIELDS {
            let v = match f {
                "ts" => stored
                    .get("ts_ns")
                    .and_then(Value::as_i64)
                    .map(|ns| Value::String(format_iso8601_us(ns)))
                    .unwrap_or(Value::Null),
                other => stored.get(other).cloned().unwrap_or(Value::Null),
            };
            row.insert(f.into(), v);
        }
        row
    };
    let columns: &[&str] = match args.format {
        ListFormat::Table => &TABLE_FIELDS,
        _ => &FIELDS,
    };
    list_rows(
        &case,
        "events",
        args.limit,
        (args.format, columns),
        shape,
        |row| {
            let text = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("");
            let ts = row.get("ts_ns").and_then(Value::as_i64);
            args.kind.as_deref().is_none_or(|k| text("kind") == k)
                && args.uid.as_deref().is_none_or(|u| text("uid") == u)
                && args.since.is_none_or(|t| ts.is_some_and(|e| e >= t))
                && args.until.is_none_or(|t| ts.is_some_and(|e| e <= t))
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
