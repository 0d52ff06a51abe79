//! Per-packet timing of a TCP connection, for packet-mode relay matching.

/// Which way a packet went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Originator to responder.
    Orig,
    /// Responder to originator.
    Resp,
}

/// One packet that carried new payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelinePacket {
    /// Direction of travel.
    pub dir: Direction,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// New payload bytes carried (retransmitted bytes excluded).
    pub payload_bytes: u32,
}

/// The packets of one connection that carried new data (no pure ACKs, no
/// retransmissions): the ON/OFF structure that stepping-stone detection reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketTimeline {
    /// `record` of the [`crate::Conn`] this timeline belongs to.
    pub conn_record: u64,
    /// Packets in capture order.
    pub packets: Vec<TimelinePacket>,
}
