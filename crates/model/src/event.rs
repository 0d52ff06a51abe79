//! Non-connection records (alerts, protocol logs).

/// Anything a sensor logged that is not itself a connection: a Zeek ssh.log line, a
/// Suricata alert or dns event. Kept whole as JSON so no field is lost, with the keys
/// that link it to a connection pulled out for joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The log or event type (`ssh`, `alert`, `dns`...).
    pub kind: String,
    /// Event time in nanoseconds since the Unix epoch, when the record has one.
    pub ts_ns: Option<i64>,
    /// Link to a connection: Zeek `uid` or Suricata `flow_id` (as a decimal string).
    pub uid: Option<String>,
    /// Community ID flow hash, when present; links records across sensors.
    pub community_id: Option<String>,
    /// The whole record as a JSON object.
    pub json: String,
    /// Line number (text formats) or record index of the record in its input.
    pub record: u64,
}
