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

/// Now, as nanoseconds since the epoch (the clock of commands that stamp or judge
/// against the present: block plans, evidence dates).
pub fn clock_ns() -> anyhow::Result<i64> {
    use anyhow::Context as _;
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("system clock before 1970")?;
    Ok(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A time given on the command line: ISO 8601 (`2014-11-24T08:00:00Z`), a date
/// (`2014-11-24`: its midnight, UTC) or Unix seconds (`1416816000.5`), as nanoseconds
/// since the epoch.
pub fn parse_time_arg(s: &str) -> Result<i64, String> {
    // A date alone is its first instant, UTC (`assess --as-of` takes dates).
    let is_date = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if is_date {
        return parse_time_arg(&format!("{s}T00:00:00Z"))
            .map_err(|_| format!("not a date that exists: {s:?}"));
    }
    relaytrace_model::parse_iso8601_ns(s)
        .or_else(|_| relaytrace_model::parse_decimal_seconds_ns(s))
        .map_err(|_| format!("not a time (ISO 8601, a date, or Unix seconds): {s:?}"))
}

/// Refuses a time window given backwards (`--since` after `--until`). For events it
/// selects nothing; for connections (those active in the window: ending at or after
/// `--since`, starting at or before `--until`) it would select only those alive
/// throughout the gap between the two — hardly what a swapped pair of times means,
/// and a trace of it would be recorded as the case's newest finding.
pub fn check_window(since: Option<i64>, until: Option<i64>) -> anyhow::Result<()> {
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            anyhow::bail!(
                "--since ({}) is after --until ({}): the window is given backwards (swap the two times)",
                relaytrace_model::format_iso8601_us(s),
                relaytrace_model::format_iso8601_us(u)
            );
        }
    }
    Ok(())
}

/// A transport name as the store writes it (`tcp`, `udp`, `icmp`,
/// `unknown_transport`), in any letter case; anything else is refused with the list,
/// since a filter on a name no row can have silently prints nothing.
pub fn parse_proto_arg(s: &str) -> Result<String, String> {
    use relaytrace_model::Proto;
    let lower = s.to_ascii_lowercase();
    let known = [Proto::Tcp, Proto::Udp, Proto::Icmp, Proto::Unknown].map(Proto::as_str);
    if known.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!(
            "not a transport the store records: {s:?} (one of {}; other IP protocols are `unknown_transport`, their number in the `ip_proto` column)",
            known.join(", ")
        ))
    }
}
