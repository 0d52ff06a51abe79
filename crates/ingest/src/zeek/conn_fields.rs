//! Building a `Conn` from Zeek conn.log fields, whatever the log encoding.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
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

/// An unsigned integer field. Plain digit strings (nearly all values) are converted
/// directly; anything else goes through `FromStr`, which decides and words errors
/// exactly as before. The std parse showed at 5% of a conn.log ingest (perf, 2 M
/// generated lines, 2026-11-30).
fn unsigned<'a, T, F>(get: &F, field: ConnField) -> Result<Option<T>, FieldError>
where
    F: Fn(ConnField) -> Option<Cow<'a, str>>,
    T: FromStr + TryFrom<u64>,
    <T as FromStr>::Err: std::fmt::Display,
{
    let Some(v) = get(field) else {
        return Ok(None);
    };
    if let Some(n) = digits_u64(v.as_bytes()) {
        if let Ok(n) = T::try_from(n) {
            return Ok(Some(n));
        }
    }
    v.parse::<T>()
        .map(Some)
        .map_err(|e| err(field.name(), format!("{v:?}: {e}")))
}

/// A Zeek `count` the store can keep: up to [`relaytrace_model::MAX_COUNT`] (Zeek's
/// counts go to 2^64 − 1; the tables' integer columns are signed 64-bit, and a larger
/// value was clamped without a word).
fn count<'a, F>(get: &F, field: ConnField) -> Result<Option<u64>, FieldError>
where
    F: Fn(ConnField) -> Option<Cow<'a, str>>,
{
    match unsigned::<u64, _>(get, field)? {
        Some(n) if n > relaytrace_model::MAX_COUNT => Err(err(
            field.name(),
            format!(
                "{n} is larger than {}, the largest count the store keeps (a 64-bit signed column)",
                relaytrace_model::MAX_COUNT
            ),
        )),
        other => Ok(other),
    }
}

/// The value of 1 to 19 ASCII digits (always fits in a `u64`); `None` otherwise.
fn digits_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// A dotted-quad IPv4 address without leading zeros (how Zeek writes them), read
/// directly; `None` for anything else, which then goes through `IpAddr::from_str`
/// (the std parser showed at 2% of a conn.log ingest, same measurement as above).
fn ipv4_fast(b: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = b.split(|&c| c == b'.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return None;
        }
        let v = u8::try_from(digits_u64(part)?).ok()?;
        *octet = v;
    }
    parts.next().is_none().then(|| Ipv4Addr::from(octets))
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
        if let Some(a) = ipv4_fast(v.as_bytes()) {
            return Ok(IpAddr::V4(a));
        }
        v.parse::<IpAddr>()
            .map_err(|e| err(field.name(), format!("{v:?}: {e}")))
    };
    let port = |field: ConnField| -> Result<u16, FieldError> {
        unsigned::<u16, _>(&get, field)?.ok_or_else(|| err(field.name(), "missing or unset"))
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
    conn.orig_bytes = count(&get, C::OrigBytes)?;
    conn.resp_bytes = count(&get, C::RespBytes)?;
    conn.orig_pkts = count(&get, C::OrigPkts)?;
    conn.resp_pkts = count(&get, C::RespPkts)?;
    conn.orig_ip_bytes = count(&get, C::OrigIpBytes)?;
    conn.resp_ip_bytes = count(&get, C::RespIpBytes)?;
    conn.missed_bytes = count(&get, C::MissedBytes)?;
    conn.conn_state = get(C::ConnState).map(Cow::into_owned);
    conn.history = get(C::History).map(Cow::into_owned);
    conn.ip_proto = unsigned(&get, C::IpProto)?.or(match proto {
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
