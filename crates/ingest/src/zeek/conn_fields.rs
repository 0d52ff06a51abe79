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

/// The conn.log fields relaytrace reads, so readers can look columns up by index
/// (TSV: resolved once per `#fields` header) instead of by name on every line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnField {
    /// `ts`
    Ts,
    /// `uid`
    Uid,
    /// `id.orig_h`
    OrigH,
    /// `id.orig_p`
    OrigP,
    /// `id.resp_h`
    RespH,
    /// `id.resp_p`
    RespP,
    /// `proto`
    Proto,
    /// `service`
    Service,
    /// `duration`
    Duration,
    /// `orig_bytes`
    OrigBytes,
    /// `resp_bytes`
    RespBytes,
    /// `orig_pkts`
    OrigPkts,
    /// `resp_pkts`
    RespPkts,
    /// `orig_ip_bytes`
    OrigIpBytes,
    /// `resp_ip_bytes`
    RespIpBytes,
    /// `missed_bytes`
    MissedBytes,
    /// `conn_state`
    ConnState,
    /// `history`
    History,
    /// `ip_proto`
    IpProto,
}

impl ConnField {
    /// Every field, in discriminant order (index = `field as usize`).
    pub const ALL: [ConnField; 19] = [
        ConnField::Ts,
        ConnField::Uid,
        ConnField::OrigH,
        ConnField::OrigP,
        ConnField::RespH,
        ConnField::RespP,
        ConnField::Proto,
        ConnField::Service,
        ConnField::Duration,
        ConnField::OrigBytes,
        ConnField::RespBytes,
        ConnField::OrigPkts,
        ConnField::RespPkts,
        ConnField::OrigIpBytes,
        ConnField::RespIpBytes,
        ConnField::MissedBytes,
        ConnField::ConnState,
        ConnField::History,
        ConnField::IpProto,
    ];

    /// The Zeek column name.
    pub fn name(self) -> &'static str {
        match self {
            ConnField::Ts => "ts",
            ConnField::Uid => "uid",
            ConnField::OrigH => "id.orig_h",
            ConnField::OrigP => "id.orig_p",
            ConnField::RespH => "id.resp_h",
            ConnField::RespP => "id.resp_p",
            ConnField::Proto => "proto",
            ConnField::Service => "service",
            ConnField::Duration => "duration",
            ConnField::OrigBytes => "orig_bytes",
            ConnField::RespBytes => "resp_bytes",
            ConnField::OrigPkts => "orig_pkts",
            ConnField::RespPkts => "resp_pkts",
            ConnField::OrigIpBytes => "orig_ip_bytes",
            ConnField::RespIpBytes => "resp_ip_bytes",
            ConnField::MissedBytes => "missed_bytes",
            ConnField::ConnState => "conn_state",
            ConnField::History => "history",
            ConnField::IpProto => "ip_proto",
        }
    }
}

fn required<'a, F>(get: &F, field: ConnField) -> Result<Cow<'a, str>, FieldError>
where
    F: Fn(ConnField) -> Option<Cow<'a, str>>,
{
    get(field).ok_or_else(|| err(field.name(), "missing or unset"))
}

fn parsed<'a, T: FromStr, F>(get: &F, field: ConnField) -> Result<Option<T>, FieldError>
where
    F: Fn(ConnField) -> Option<Cow<'a, str>>,
    T::Err: std::fmt::Display,
{
    match get(field) {
        None => Ok(None),
        Some(v) => v
            .parse::<T>()
            .map(Some)
            .map_err(|e| err(field.name(), format!("{v:?}: {e}"))),
    }
}

/// Builds a connection from a field accessor. `get` returns `None` for absent or
/// unset (`-`) fields and the field's text otherwise.
pub fn conn_from_fields<'a, F>(get: F, record: u64) -> Result<Conn, FieldError>
where
    F: Fn(ConnField) -> Option<Cow<'a, str>>,
{
    use ConnField as C;
    let start_ns = parse_time("ts", &required(&get, C::Ts)?)?;
    let addr = |field: ConnField| -> Result<IpAddr, FieldError> {
        let v = required(&get, field)?;
        v.parse::<IpAddr>()
            .map_err(|e| err(field.name(), format!("{v:?}: {e}")))
    };
    let port = |field: ConnField| -> Result<u16, FieldError> {
        parsed::<u16, _>(&get, field)?.ok_or_else(|| err(field.name(), "missing or unset"))
    };
    let proto_text = required(&get, C::Proto)?;
    let proto = Proto::parse(&proto_text)
        .ok_or_else(|| err("proto", format!("unknown protocol {proto_text:?}")))?;
    let mut conn = Conn::new(
        proto,
        addr(C::OrigH)?,
        port(C::OrigP)?,
        addr(C::RespH)?,
        port(C::RespP)?,
        start_ns,
    );
    conn.record = record;
    conn.uid = get(C::Uid).map(Cow::into_owned);
    conn.service = get(C::Service).map(Cow::into_owned);
    conn.duration_ns = match get(C::Duration) {
        None => None,
        Some(v) => Some(parse_decimal_seconds_ns(&v).map_err(|e| err("duration", e.to_string()))?),
    };
    conn.orig_bytes = parsed(&get, C::OrigBytes)?;
    conn.resp_bytes = parsed(&get, C::RespBytes)?;
    conn.orig_pkts = parsed(&get, C::OrigPkts)?;
    conn.resp_pkts = parsed(&get, C::RespPkts)?;
    conn.orig_ip_bytes = parsed(&get, C::OrigIpBytes)?;
    conn.resp_ip_bytes = parsed(&get, C::RespIpBytes)?;
    conn.missed_bytes = parsed(&get, C::MissedBytes)?;
    conn.conn_state = get(C::ConnState).map(Cow::into_owned);
    conn.history = get(C::History).map(Cow::into_owned);
    conn.ip_proto = parsed(&get, C::IpProto)?.or(match proto {
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
