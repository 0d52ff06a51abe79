//! Core records shared by every relaytrace stage.
//!
//! Overview: every telemetry reader yields [`Conn`] (one connection or flow, whatever
//! the source), optionally a [`PacketTimeline`] per TCP connection (for packet-mode
//! tracing), and [`Event`]s for everything that is not a connection (Zeek ssh.log
//! lines, Suricata alerts...), linked to connections by `uid` or `community_id`.
//! Records the reader could not accept become a [`Rejection`] carrying the place
//! ([`Location`]) and the reason, so that nothing is dropped silently.
//!
//! This crate does no I/O and depends on no parser, so later stages (trace, assess)
//! can use the records without pulling in readers.

mod conn;
mod event;
mod rejection;
mod time;
mod timeline;

pub use conn::{Conn, Proto};

/// The largest byte or packet count the case store keeps exactly (its integer columns
/// are signed 64-bit): readers reject larger values, naming the field.
pub const MAX_COUNT: u64 = i64::MAX as u64;
pub use event::{Event, NETFLOW_EXPORT_STATS_RECORD, PCAP_STATS_RECORD, READER_SUMMARY_KINDS};
pub use rejection::{Location, Rejection};
pub use time::{format_iso8601_us, parse_decimal_seconds_ns, parse_iso8601_ns, TimeParseError};
pub use timeline::{Direction, PacketTimeline, TimelinePacket};
