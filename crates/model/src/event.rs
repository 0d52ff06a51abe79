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

/// Kinds of the events a reader writes about an input as a whole (what a capture held,
/// what it had to skip) rather than for one of its records: stored with the events,
/// but neither counted as records read nor as events of the input, so an input whose
/// every record was lost reads as "0 read".
pub const READER_SUMMARY_KINDS: [&str; 2] = ["pcap-stats", "netflow-export-stats"];

/// Record numbers of the reader summaries: each summary kind has its own, so the two
/// summaries of a NetFlow export capture get different event ids (a capture's other
/// records are connections, numbered in the conns table). An input is read again
/// only when its earlier ingest wrote no row table at all (`store::ingest`), so a
/// summary's id is never written twice either.
pub const PCAP_STATS_RECORD: u64 = 0;
/// See [`PCAP_STATS_RECORD`].
pub const NETFLOW_EXPORT_STATS_RECORD: u64 = 1;

impl Event {
    /// Whether this is a reader's summary of its input ([`READER_SUMMARY_KINDS`]).
    pub fn is_reader_summary(&self) -> bool {
        READER_SUMMARY_KINDS.contains(&self.kind.as_str())
    }
}
