//! pcap and pcapng captures, with Zeek-compatible connection tracking.
//!
//! Overview: [`read`] streams a capture through five small stages, one file each:
//! - `reader.rs` frames the file with the `pcap-parser` crate (classic pcap in all four
//!   magics, micro- and nanosecond; pcapng with per-interface link types, `if_tsresol`
//!   and `if_tsoffset`) through a bounded buffer, and hands out one frame at a time with
//!   its byte offset;
//! - `link.rs` strips the link layer (Ethernet, 802.1Q/QinQ, MPLS, PPPoE, PPP, Linux
//!   SLL/SLL2, null/loopback, raw IP) down to an IP packet;
//! - `ip.rs` parses IPv4 (reassembling fragments) and IPv6 (walking extension headers);
//! - `transport.rs` parses TCP, UDP, ICMP and ICMPv6 headers and checks checksums;
//! - `conntrack.rs` keeps the connection table with Zeek's semantics (originator
//!   choice and flips, TCP endpoint state machine, history letters, sequence-based byte
//!   counts, content gaps, timers) and turns each finished connection into a
//!   [`relaytrace_model::Conn`], while `timeline.rs` records the
//!   [`relaytrace_model::PacketTimeline`] of each TCP connection.
//!
//! The reference is Zeek 9.1's `conn.log`; the rules used are cited where they are
//! implemented. GRE and IP-in-IP tunnels are opened (`tunnel.rs`) and their inner
//! connections tracked, as Zeek does; UDP tunnels (GTP-U, Teredo, VXLAN) are not yet:
//! their outer packets are tracked as ordinary UDP connections.
//!
//! Hostile input: no byte sequence makes this module panic; every table it keeps is
//! bounded (see the constants in `conntrack.rs` and `ip.rs`). A frame that cannot be
//! decoded becomes a [`relaytrace_model::Rejection`] at the byte offset of its record,
//! naming the layer at fault. Frames that are merely not IP (ARP, LLDP...) are not
//! errors: they are counted by kind and reported in one `pcap-stats` event at the end.

mod conntrack;
mod export;
mod ip;
mod link;
mod reader;
mod timeline;
mod transport;
mod tunnel;

use std::io::BufRead;

use crate::{IngestError, Sink};

/// Choices a caller can make about a capture; the defaults reproduce Zeek's.
#[derive(Debug, Clone, Copy, Default)]
pub struct PcapOptions {
    /// Count packets whose IPv4 header, TCP, UDP or ICMP checksum is wrong instead of
    /// dropping them, as `zeek -C` does. Captures taken on the sending host often
    /// carry wrong checksums because the NIC fills them in after capture
    /// ("checksum offloading"); with the default (off) such a capture loses those
    /// packets, exactly as Zeek would.
    pub ignore_checksums: bool,
    /// The capture holds NetFlow v5/v9/IPFIX export traffic (UDP datagrams from
    /// exporters to a collector): decode each UDP payload as export datagrams, with
    /// templates kept per exporter address, instead of tracking connections.
    pub netflow_export: bool,
}

/// Reads a pcap or pcapng capture with the default [`PcapOptions`]; see
/// [`read_with`].
pub fn read(input: &mut dyn BufRead, sink: &mut dyn Sink) -> Result<(), IngestError> {
    read_with(input, sink, PcapOptions::default())
}

/// Reads a pcap or pcapng capture and emits one connection per tracked flow (with a
/// packet timeline after each TCP connection), one rejection per undecodable frame,
/// and a final `pcap-stats` event.
///
/// Returns an error only when the file header is unusable or reading/writing fails;
/// a truncated or corrupt tail is a rejection at its byte offset.
pub fn read_with(
    input: &mut dyn BufRead,
    sink: &mut dyn Sink,
    options: PcapOptions,
) -> Result<(), IngestError> {
    reader::read_capture(input, sink, options)
}

/// Whether a capture's first bytes hold NetFlow/IPFIX export traffic: at least one
/// UDP datagram, every IP packet UDP, every UDP payload starting with a plausible
/// v5/v9/IPFIX header. Used by format detection on a prefix of the file.
pub fn looks_like_export_capture(head: &[u8]) -> bool {
    export::probe(head)
}
