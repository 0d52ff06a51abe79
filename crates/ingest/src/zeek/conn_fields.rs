//! Building a `Conn` from Zeek conn.log fields, whatever the log encoding.

use std::borrow::Cow;
use std::net::IpAddr;
use std::str::FromStr;

use relaytrace_model::{parse_decimal_seconds_ns, parse_iso8601_ns, Conn, Proto};

/// A field that could not be used, with the reason; becomes a rejection.
#[derive(Debug)]
pub struct FieldError {
    /// Zeek field name.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

fn err(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

/// Parses a Zeek time value: decimal seconds (TSV, JSON default) or ISO 8601 (JSON
/// with `LogAscii::json_timestamps = JSON::TS_ISO8601`).
pub fn parse_time(field: &'static str, v: &str) -> Result<i64, FieldError> {
    if v.contains('T') && v.contains('-') {
        parse_iso8601_ns(v).map_err(|e| err(field, e.to_string()))
    } else {
        parse_decimal_seconds_ns(v).map_err(|e| err(field, e.to_string()))
    }
}

fn required<'a, F>(get: &F, field: &'static str) -> Result<Cow<'a, str>, FieldError>
where
    F: Fn(&str) -> Option<Cow<'a, str>>,
{
    get(field).ok_or_else(|| err(field, "missing or unset"))
}

fn parsed<'a, T: FromStr, F>(get: &F, field: &'static str) -> Result<Option<T>, FieldError>
where
    F: Fn(&str) -> Option<Cow<'a, str>>,
    T::Err: std::fmt::Display,
{
    match get(field) {
        None => Ok(None),
        Some(v) => v
            .parse::<T>()
            .map(Some)
            .map_err(|e| err(field, format!("{v:?}: {e}"))),
    }
}

/// Builds a connection from a field accessor. `get` returns `None` for absent or
/// unset (`-`) fields and the field's text otherwise.
pub fn conn_from_fields<'a, F>(get: F, record: u64) -> Result<Conn, FieldError>
where
    F: Fn(&str) -> Option<Cow<'a, str>>,
{
    let start_ns = parse_time("ts", &required(&get, "ts")?)?;
    let addr = |field: &'static str| -> Result<IpAddr, FieldError> {
        let v = required(&get, field)?;
        v.parse::<IpAddr>()
            .map_err(|e| err(field, format!("{v:?}: {e}")))
    };
    let port = |field: &'static str| -> Result<u16, FieldError> {
        parsed::<u16, _>(&get, field)?.ok_or_else(|| err(field, "missing or unset"))
    };
    let proto_text = required(&get, "proto")?;
    let proto = Proto::parse(&proto_text)
        .ok_or_else(|| err("proto", format!("unknown protocol {proto_text:?}")))?;
    let mut conn = Conn::new(
        proto,
        addr("id.orig_h")?,
        port("id.orig_p")?,
        addr("id.resp_h")?,
        port("id.resp_p")?,
        start_ns,
    );
    conn.record = record;
    conn.uid = get("uid").map(Cow::into_owned);
    conn.service = get("service").map(Cow::into_owned);
    conn.duration_ns = match get("duration") {
        None => None,
        Some(v) => Some(parse_decimal_seconds_ns(&v).map_err(|e| err("duration", e.to_string()))?),
    };
    conn.orig_bytes = parsed(&get, "orig_bytes")?;
    conn.resp_bytes = parsed(&get, "resp_bytes")?;
    conn.orig_pkts = parsed(&get, "orig_pkts")?;
    conn.resp_pkts = parsed(&get, "resp_pkts")?;
    conn.orig_ip_bytes = parsed(&get, "orig_ip_bytes")?;
    conn.resp_ip_bytes = parsed(&get, "resp_ip_bytes")?;
    conn.missed_bytes = parsed(&get, "missed_bytes")?;
    conn.conn_state = get("conn_state").map(Cow::into_owned);
    conn.history = get("history").map(Cow::into_owned);
    conn.ip_proto = parsed(&get, "ip_proto")?.or(match proto {
        Proto::Tcp => Some(6),
        Proto::Udp => Some(17),
        _ => None,
    });
    Ok(conn)
}

/// Whether a log is a conn log: by its `#path`/`_path`, or, when the path is
/// missing (JSON written without `_path`), by having conn.log's defining columns.
pub fn is_conn_log(path: Option<&str>, has_field: impl Fn(&str) -> bool) -> bool {
    match path {
        Some(p) => p == "conn" || p.starts_with("conn_") || p.ends_with("_conn"),
        None => has_field("conn_state") && has_field("id.orig_h") && has_field("proto"),
    }
}
