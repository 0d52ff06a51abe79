//! The connection record.

use std::fmt;
use std::net::IpAddr;

/// Transport protocol of a connection, as Zeek names it in conn.log's `proto` column.
///
/// Kept as an enum rather than a free string so that every reader maps its own
/// numbering (IANA protocol numbers in NetFlow, names in EVE) onto one vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
    /// ICMP for IPv4 (1) and ICMPv6 (58); Zeek logs both as `icmp`.
    Icmp,
    /// Anything else; Zeek writes `unknown_transport` and the number in `ip_proto`.
    Unknown,
}

impl Proto {
    /// Maps an IANA IP protocol number to the Zeek vocabulary.
    pub fn from_ip_proto(n: u8) -> Self {
        match n {
            6 => Proto::Tcp,
            17 => Proto::Udp,
            1 | 58 => Proto::Icmp,
            _ => Proto::Unknown,
        }
    }

    /// Parses Zeek/EVE spellings (`tcp`, `TCP`, `unknown_transport`, `IPv6-ICMP`...).
    pub fn parse(s: &str) -> Option<Self> {
        // The usual spellings first, without the lowercase copy (an allocation per
        // conn.log line otherwise).
        match s {
            "tcp" => return Some(Proto::Tcp),
            "udp" => return Some(Proto::Udp),
            "icmp" => return Some(Proto::Icmp),
            _ => {}
        }
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "icmp" | "ipv6-icmp" | "icmpv6" | "icmp6" => Some(Proto::Icmp),
            "unknown_transport" | "sctp" | "gre" | "esp" | "ah" => Some(Proto::Unknown),
            _ => None,
        }
    }

    /// The Zeek name, used in every output format.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Unknown => "unknown_transport",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One connection (or unidirectional-merged flow) as seen by one sensor.
///
/// Field names follow Zeek's conn.log wherever Zeek has one, so that analysts can
/// read our output with what they already know. Times are integer nanoseconds since
/// the Unix epoch: whole seconds are too coarse for relay matching and floats lose
/// the microseconds Zeek prints. Every counter is optional because not every source
/// has it (Zeek writes `-`, NetFlow v5 has no responder direction...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conn {
    /// The source's own connection id (Zeek `uid`, Suricata `flow_id`), if any.
    pub uid: Option<String>,
    /// Transport protocol.
    pub proto: Proto,
    /// IANA protocol number when known (needed for `unknown_transport`).
    pub ip_proto: Option<u8>,
    /// Originator address.
    pub orig_h: IpAddr,
    /// Originator port (ICMP: type, as Zeek does).
    pub orig_p: u16,
    /// Responder address.
    pub resp_h: IpAddr,
    /// Responder port (ICMP: code, as Zeek does).
    pub resp_p: u16,
    /// First packet, nanoseconds since the Unix epoch.
    pub start_ns: i64,
    /// Duration in nanoseconds; `None` when the source left it unset (Zeek `-`).
    pub duration_ns: Option<i64>,
    /// Application protocol(s) detected, comma-separated as in Zeek.
    pub service: Option<String>,
    /// Payload bytes sent by the originator.
    pub orig_bytes: Option<u64>,
    /// Payload bytes sent by the responder.
    pub resp_bytes: Option<u64>,
    /// Packets sent by the originator.
    pub orig_pkts: Option<u64>,
    /// Packets sent by the responder.
    pub resp_pkts: Option<u64>,
    /// IP-level bytes sent by the originator (headers included).
    pub orig_ip_bytes: Option<u64>,
    /// IP-level bytes sent by the responder (headers included).
    pub resp_ip_bytes: Option<u64>,
    /// Bytes the sensor knows it missed (content gaps).
    pub missed_bytes: Option<u64>,
    /// Zeek connection state (`SF`, `S0`, `REJ`, ...).
    pub conn_state: Option<String>,
    /// Zeek history string (`ShADadFf`...).
    pub history: Option<String>,
    /// Where in the input this record came from: line number (text) or record index.
    pub record: u64,
}

impl Conn {
    /// A connection with the five-tuple and start time set and every counter unset;
    /// readers fill in what their source has. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.66`, as dual-stack sockets log IPv4 peers) is stored as the
    /// IPv4 address it is: the same host must be one host for `conns --host`, trace's
    /// relays and enrichment alike.
    pub fn new(
        proto: Proto,
        orig_h: IpAddr,
        orig_p: u16,
        resp_h: IpAddr,
        resp_p: u16,
        start_ns: i64,
    ) -> Self {
        Conn {
            uid: None,
            proto,
            ip_proto: None,
            orig_h: orig_h.to_canonical(),
            orig_p,
            resp_h: resp_h.to_canonical(),
            resp_p,
            start_ns,
            duration_ns: None,
            service: None,
            orig_bytes: None,
            resp_bytes: None,
            orig_pkts: None,
            resp_pkts: None,
            orig_ip_bytes: None,
            resp_ip_bytes: None,
            missed_bytes: None,
            conn_state: None,
            history: None,
            record: 0,
        }
    }

    /// End of the connection (start plus duration, or start when unknown).
    pub fn end_ns(&self) -> i64 {
        self.start_ns.saturating_add(self.duration_ns.unwrap_or(0))
    }
}
