//! Streaming capture framing: pcap and pcapng records through a bounded buffer.
//!
//! The file framing is `pcap-parser`'s (`LegacyPcapReader`, `PcapNGReader`); this
//! file only keeps the byte offset of every record, turns timestamps into integer
//! nanoseconds, and feeds each frame through link, IP and transport decoding into the
//! connection tracker.

use std::collections::BTreeMap;
use std::io::BufRead;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, Linktype, PcapBlockOwned, PcapError, PcapNGReader};
use relaytrace_model::{Event, Location, Rejection};

use super::conntrack::Tracker;
use super::ip::{self, FragmentTable, IpOutcome};
use super::link::{self, LinkOutcome};
use super::transport;
use super::tunnel;
use super::PcapOptions;
use crate::{IngestError, Sink};

/// Initial read buffer: large enough for any ordinary frame (jumbo frames included)
/// plus read-ahead.
const BUF_BYTES: usize = 1 << 20;

/// Largest record we grow the buffer for. pcapng blocks can claim up to 4 GiB; a
/// hostile length must not make us allocate that, and no real link carries frames
/// beyond 256 KiB (the largest snaplen tcpdump uses), so 16 MiB leaves a wide margin.
const MAX_RECORD_BYTES: usize = 16 << 20;

/// Latest accepted capture time, 2^62 ns (year 2116). Classic pcap cannot go beyond
/// 2106; a pcapng timestamp past this is corrupt, and keeping times well below
/// `i64::MAX` lets the timer arithmetic downstream add timeouts without overflow.
const MAX_TS_NS: i64 = 1 << 62;

/// pcapng Section Header Block magic, the first four bytes of every pcapng file.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// One captured frame, borrowed from the reader's buffer.
pub(crate) struct Frame<'a> {
    /// Byte offset of the frame's record (pcap record header or pcapng block).
    pub offset: u64,
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Link type of the interface the frame was captured on.
    pub linktype: i32,
    /// Captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// Length of the frame on the wire.
    pub orig_len: u32,
}

/// Per-interface facts from a pcapng Interface Description Block.
#[derive(Clone, Copy)]
struct Interface {
    linktype: i32,
    /// Timestamp units per second (`if_tsresol`), `None` when the option is invalid.
    units_per_sec: Option<u64>,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_secs: i64,
}

/// Runs one capture through the pipeline into `sink`.
pub(crate) fn read_capture(
    input: &mut dyn BufRead,
    sink: &mut dyn Sink,
    options: PcapOptions,
) -> Result<(), IngestError> {
    let head = input.fill_buf()?;
    let is_ng = head.len() >= 4 && head[..4] == PCAPNG_MAGIC;
    let mut pipeline = Pipeline::new(options);
    if is_ng {
        let reader = PcapNGReader::new(BUF_BYTES, input)
            .map_err(|e| IngestError::BadHeader(format!("pcapng section header: {e}")))?;
        drive(Box::new(reader), &mut pipeline, sink)?;
    } else {
        let reader = LegacyPcapReader::new(BUF_BYTES, input)
            .map_err(|e| IngestError::BadHeader(format!("pcap file header: {e}")))?;
        drive(Box::new(reader), &mut pipeline, sink)?;
    }
    pipeline.finish(sink)
}

/// What the framing loop knows between records.
#[derive(Default)]
struct FramingState {
    /// Classic pcap: link type and whether fractions are nanoseconds.
    legacy: Option<(i32, bool)>,
    /// pcapng: interfaces of the current section, in IDB order.
    interfaces: Vec<Interface>,
    /// Time of the previous packet, for pcapng Simple Packet Blocks (which carry none).
    last_ts_ns: i64,
}

fn drive(
    mut reader: Box<dyn PcapReaderIterator + '_>,
    pipeline: &mut Pipeline,
    sink: &mut dyn Sink,
) -> Result<(), IngestError> {
    let mut state = FramingState::default();
    let mut offset: u64 = 0;
    let mut capacity = BUF_BYTES;
    // Guards against a refill that adds nothing (full buffer, `Needed::Unknown`):
    // without it a hostile record could spin this loop forever.
    let mut stalled_at: Option<(u64, usize)> = None;
    loop {
        match reader.next() {
            Ok((size, block)) => {
                stalled_at = None;
                handle_block(&block, offset, &mut state, pipeline, sink)?;
                offset += size as u64;
                reader.consume(size);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                let available = reader.data().len();
                if stalled_at == Some((offset, available)) {
                    if reader.reader_exhausted() {
                        reject(sink, offset, "capture: truncated record at end of file")?;
                        break;
                    }
                    if !grow(&mut *reader, &mut capacity) {
                        reject(sink, offset, "capture: record larger than the 16 MiB limit")?;
                        break;
                    }
                }
                stalled_at = Some((offset, available));
                reader.refill().map_err(|e| read_error(&e))?;
            }
            Err(PcapError::UnexpectedEof) => {
                reject(sink, offset, "capture: truncated record at end of file")?;
                break;
            }
            Err(PcapError::BufferTooSmall) => {
                if !grow(&mut *reader, &mut capacity) {
                    reject(sink, offset, "capture: record larger than the 16 MiB limit")?;
                    break;
                }
                reader.refill().map_err(|e| read_error(&e))?;
            }
            Err(PcapError::ReadError) => {
                return Err(IngestError::Io(std::io::Error::other(
                    "reading capture failed",
                )));
            }
            Err(e) => {
                // Framing is lost: a pcap record header or pcapng block is corrupt and
                // neither format lets us find the next record reliably.
                let reason = format!("capture: corrupt record, reading stopped ({e:?})");
                let reason: String = reason.chars().take(200).collect();
                reject(sink, offset, &reason)?;
                break;
            }
        }
    }
    Ok(())
}

/// Doubles the buffer up to [`MAX_RECORD_BYTES`]; false when the limit is reached.
fn grow(reader: &mut dyn PcapReaderIterator, capacity: &mut usize) -> bool {
    if *capacity >= MAX_RECORD_BYTES {
        return false;
    }
    *capacity = (*capacity * 2).min(MAX_RECORD_BYTES);
    reader.grow(*capacity)
}

fn read_error(e: &PcapError<&[u8]>) -> IngestError {
    IngestError::Io(std::io::Error::other(format!(
        "reading capture failed: {e}"
    )))
}

fn reject(sink: &mut dyn Sink, offset: u64, reason: &str) -> Result<(), IngestError> {
    sink.reject(Rejection {
        location: Location::Offset(offset),
        field: None,
        reason: reason.to_string(),
    })?;
    Ok(())
}

fn handle_block(
    block: &PcapBlockOwned<'_>,
    offset: u64,
    state: &mut FramingState,
    pipeline: &mut Pipeline,
    sink: &mut dyn Sink,
) -> Result<(), IngestError> {
    match block {
        PcapBlockOwned::LegacyHeader(h) => {
            state.legacy = Some((h.network.0, h.is_nanosecond_precision()));
        }
        PcapBlockOwned::Legacy(b) => {
            let (linktype, nanos) = state.legacy.unwrap_or((Linktype::ETHERNET.0, false));
            let frac_ns = if nanos {
                i64::from(b.ts_usec)
            } else {
                i64::from(b.ts_usec) * 1_000
            };
            let ts_ns = i64::from(b.ts_sec) * 1_000_000_000 + frac_ns;
            let cap = (b.caplen as usize).min(b.data.len());
            let frame = Frame {
                offset,
                ts_ns,
                linktype,
                data: &b.data[..cap],
                orig_len: b.origlen,
            };
            pipeline.frame(&frame, sink)?;
        }
        PcapBlockOwned::NG(Block::SectionHeader(_)) => state.interfaces.clear(),
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
            // Bounded: a section could declare millions of interfaces; beyond this
            // many, packets naming them are rejected as "unknown interface".
            if state.interfaces.len() < 65_536 {
                state.interfaces.push(Interface {
                    linktype: idb.linktype.0,
                    units_per_sec: idb.ts_resolution(),
                    offset_secs: idb.ts_offset(),
                });
            }
        }
        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
            let Some(iface) = state.interfaces.get(epb.if_id as usize).copied() else {
                return reject(sink, offset, "pcapng: packet names an undeclared interface");
            };
            let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
            let Some(ts_ns) = pcapng_ts_ns(raw, iface) else {
                return reject(
                    sink,
                    offset,
                    "pcapng: timestamp resolution or value out of range",
                );
            };
            state.last_ts_ns = ts_ns;
            let cap = (epb.caplen as usize).min(epb.data.len());
            let frame = Frame {
                offset,
                ts_ns,
                linktype: iface.linktype,
                data: &epb.data[..cap],
                orig_len: epb.origlen,
            };
            pipeline.frame(&frame, sink)?;
        }
        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
            let Some(iface) = state.interfaces.first().copied() else {
                return reject(sink, offset, "pcapng: simple packet before any interface");
            };
            // Simple Packet Blocks carry no timestamp; the previous packet's time is
            // the best ordering-preserving guess (libpcap would report zero).
            let frame = Frame {
                offset,
                ts_ns: state.last_ts_ns,
                linktype: iface.linktype,
                data: spb.data,
                orig_len: spb.origlen,
            };
            pipeline.frame(&frame, sink)?;
        }
        PcapBlockOwned::NG(_) => {}
    }
    Ok(())
}

/// Converts a pcapng timestamp in interface units to nanoseconds since the epoch,
/// exactly (integer arithmetic), or `None` when it does not fit.
fn pcapng_ts_ns(raw: u64, iface: Interface) -> Option<i64> {
    let units = iface.units_per_sec.filter(|u| *u > 0)?;
    let secs = raw / units;
    let frac = raw % units;
    let frac_ns = u128::from(frac) * 1_000_000_000 / u128::from(units);
    let secs = i64::try_from(secs).ok()?.checked_add(iface.offset_secs)?;
    secs.checked_mul(1_000_000_000)?
        .checked_add(i64::try_from(frac_ns).ok()?)
        .filter(|ts| (0..=MAX_TS_NS).contains(ts))
}

/// IPv6 "No Next Header" (RFC 8200 §4.7).
const IPV6_NO_NEXT_HEADER: u8 = 59;

/// Link → IP → transport → connection table, plus the counters reported at the end.
pub(crate) struct Pipeline {
    options: PcapOptions,
    tracker: Tracker,
    /// Set for captures of NetFlow/IPFIX export traffic: UDP payloads go to the
    /// NetFlow decoder instead of the connection table.
    export: Option<super::export::ExportCollector>,
    fragments: FragmentTable,
    frames: u64,
    ip_packets: u64,
    /// Packets found inside GRE / IP-in-IP tunnels.
    tunnelled_packets: u64,
    rejected: u64,
    /// Non-IP frames by kind (`ethertype 0x0806`, `llc`...), so nothing vanishes.
    skipped: BTreeMap<String, u64>,
}

impl Pipeline {
    pub(crate) fn new(options: PcapOptions) -> Self {
        Pipeline {
            export: options
                .netflow_export
                .then(super::export::ExportCollector::default),
            options,
            tracker: Tracker::new(),
            fragments: FragmentTable::new(),
            frames: 0,
            ip_packets: 0,
            tunnelled_packets: 0,
            rejected: 0,
            skipped: BTreeMap::new(),
        }
    }

    fn reject(
        &mut self,
        sink: &mut dyn Sink,
        offset: u64,
        reason: &str,
    ) -> Result<(), IngestError> {
        self.rejected += 1;
        reject(sink, offset, reason)
    }

    pub(crate) fn frame(
        &mut self,
        frame: &Frame<'_>,
        sink: &mut dyn Sink,
    ) -> Result<(), IngestError> {
        self.frames += 1;
        let l3 = match link::decode(frame.linktype, frame.data) {
            LinkOutcome::Ip(bytes) => bytes,
            LinkOutcome::NotIp(kind) => {
                *self.skipped.entry(kind).or_insert(0) += 1;
                return Ok(());
            }
            LinkOutcome::Bad(reason) => return self.reject(sink, frame.offset, reason),
        };
        // Bytes of link framing on the wire, to tell snaplen truncation (fine) from an
        // IP length that exceeds the frame itself (broken).
        let l2_len = frame.data.len() - l3.len();
        let wire_ip_len = (frame.orig_len as usize).saturating_sub(l2_len);
        let packet = match ip::decode(
            l3,
            wire_ip_len,
            frame.ts_ns,
            !self.options.ignore_checksums,
            &mut self.fragments,
        ) {
            IpOutcome::Packet(p) => p,
            IpOutcome::FragmentHeld => return Ok(()),
            IpOutcome::Bad(reason) => return self.reject(sink, frame.offset, reason),
        };
        self.ip_packet(frame, &packet, 0, sink)
    }

    /// Transport decoding and tracking of one IP packet; tunnels (GRE, IP-in-IP) are
    /// opened and their inner packet handled in its place.
    fn ip_packet(
        &mut self,
        frame: &Frame<'_>,
        packet: &ip::IpPacket<'_>,
        depth: usize,
        sink: &mut dyn Sink,
    ) -> Result<(), IngestError> {
        self.ip_packets += 1;
        if self.export.is_none()
            && matches!(
                packet.proto,
                tunnel::GRE | tunnel::IPIP | tunnel::IPV6_IN_IP
            )
        {
            let inner = match tunnel::open(packet.proto, &packet.payload) {
                tunnel::Inner::Ip(bytes) => bytes,
                tunnel::Inner::NotIp(kind) => {
                    *self.skipped.entry(kind).or_insert(0) += 1;
                    return Ok(());
                }
                tunnel::Inner::Bad(reason) => return self.reject(sink, frame.offset, reason),
            };
            return self.tunnelled(frame, inner, depth, sink);
        }
        if packet.proto == IPV6_NO_NEXT_HEADER {
            // Nothing above IP (Teredo bubbles are such packets): no connection, as in
            // Zeek, but counted.
            *self
                .skipped
                .entry("ipv6 no next header".into())
                .or_insert(0) += 1;
            return Ok(());
        }
        let segment = match transport::decode(packet, !self.options.ignore_checksums) {
            Ok(s) => s,
            Err(reason) => return self.reject(sink, frame.offset, reason),
        };
        if let Some(export) = self.export.as_mut() {
            return export.packet(frame, packet, &segment, sink);
        }
        self.tracker.packet(frame.ts_ns, packet, &segment, sink)?;
        if let transport::Segment::Udp(udp) = &segment {
            let end = usize::from(udp.ulen).clamp(8, packet.payload.len().max(8));
            let payload = packet.payload.get(8..end).unwrap_or(&[]);
            if let Some(inner) = tunnel::open_udp(udp.sport, udp.dport, payload) {
                return self.tunnelled(frame, inner, depth, sink);
            }
        }
        Ok(())
    }

    /// Decodes the IP packet found inside a tunnel and handles it in place of (GRE,
    /// IP-in-IP) or next to (GTP-U, Teredo: the outer UDP connection is tracked too)
    /// the outer one.
    fn tunnelled(
        &mut self,
        frame: &Frame<'_>,
        inner: &[u8],
        depth: usize,
        sink: &mut dyn Sink,
    ) -> Result<(), IngestError> {
        if depth >= tunnel::MAX_DEPTH {
            return self.reject(sink, frame.offset, "tunnel: nested deeper than 4");
        }
        let inner_packet = match ip::decode(
            inner,
            inner.len(),
            frame.ts_ns,
            !self.options.ignore_checksums,
            &mut self.fragments,
        ) {
            IpOutcome::Packet(p) => p,
            IpOutcome::FragmentHeld => return Ok(()),
            IpOutcome::Bad(reason) => return self.reject(sink, frame.offset, reason),
        };
        self.tunnelled_packets += 1;
        self.ip_packet(frame, &inner_packet, depth + 1, sink)
    }

    pub(crate) fn finish(mut self, sink: &mut dyn Sink) -> Result<(), IngestError> {
        self.tracker.finish(sink)?;
        if let Some(export) = self.export.take() {
            export.finish(sink)?;
        }
        let mut json = serde_json::Map::new();
        json.insert("frames".into(), self.frames.into());
        json.insert("ip_packets".into(), self.ip_packets.into());
        json.insert("tunnelled_packets".into(), self.tunnelled_packets.into());
        json.insert("rejected_frames".into(), self.rejected.into());
        let skipped: serde_json::Map<String, serde_json::Value> = self
            .skipped
            .iter()
            .map(|(k, v)| (k.clone(), (*v).into()))
            .collect();
        json.insert("skipped_non_ip".into(), skipped.into());
        json.insert(
            "fragments_reassembled".into(),
            self.fragments.reassembled.into(),
        );
        json.insert(
            "fragments_discarded".into(),
            (self.fragments.discarded + self.fragments.pending_fragments()).into(),
        );
        for (k, v) in self.tracker.stats() {
            json.insert(k.into(), v.into());
        }
        sink.event(Event {
            kind: "pcap-stats".into(),
            ts_ns: None,
            uid: None,
            community_id: None,
            json: serde_json::Value::Object(json).to_string(),
            record: relaytrace_model::PCAP_STATS_RECORD,
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::pcap::ip::internet_checksum;
    use crate::VecSink;

    const CORPUS_PCAP: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/zeek-pcap-pairs/scripts.base.protocols.ssh.http-port-22/http-single-conn-22.pcap"
    );

    fn run(bytes: &[u8]) -> VecSink {
        let mut sink = VecSink::default();
        read_capture(&mut Cursor::new(bytes), &mut sink, PcapOptions::default()).expect("read");
        sink
    }

    /// IPv4/UDP packet 10.0.0.1:5000 -> 10.0.0.2:53 with 4 payload bytes, valid IP
    /// header checksum, UDP checksum 0 ("not computed").
    fn ipv4_udp() -> Vec<u8> {
        let mut p = vec![
            0x45, 0x00, 0x00, 32, // version 4, IHL 5; total length 32
            0x00, 0x01, 0x00, 0x00, // id 1; no fragmentation
            64, 17, 0x00, 0x00, // TTL 64, protocol UDP; checksum filled below
            10, 0, 0, 1, // source
            10, 0, 0, 2, // destination
            0x13, 0x88, 0x00, 0x35, // UDP source port 5000, destination port 53
            0x00, 12, 0x00, 0x00, // UDP length 12, checksum 0
            b'q', b'u', b'e', b'r', // payload
        ];
        let sum = !internet_checksum(&p[..20], 0);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p
    }

    /// Offsets of every record in a little-endian classic pcap.
    fn record_offsets(bytes: &[u8]) -> Vec<usize> {
        let mut at = 24;
        let mut offsets = Vec::new();
        while at + 16 <= bytes.len() {
            offsets.push(at);
            let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            at += 16 + caplen as usize;
        }
        offsets
    }

    #[test]
    fn truncated_capture_rejects_the_last_record_at_its_offset() {
        let bytes = std::fs::read(CORPUS_PCAP).expect("corpus pcap");
        let full = run(&bytes);
        assert!(full.rejections.is_empty());
        let last = *record_offsets(&bytes).last().unwrap();
        // Cut in the middle of the last packet's data.
        let cut = &bytes[..last + 16 + 10];
        let sink = run(cut);
        assert_eq!(sink.rejections.len(), 1, "{:?}", sink.rejections);
        assert_eq!(sink.rejections[0].location, Location::Offset(last as u64));
        assert!(sink.rejections[0].reason.contains("truncated"));
        // Everything before the cut is still tracked.
        assert_eq!(sink.conns.len(), 1);
        assert_eq!(
            sink.conns[0].orig_pkts.unwrap() + sink.conns[0].resp_pkts.unwrap(),
            27
        );
        // A cut inside a record header behaves the same.
        let sink = run(&bytes[..last + 7]);
        assert_eq!(sink.rejections[0].location, Location::Offset(last as u64));
    }

    #[test]
    fn garbage_after_a_valid_header_is_rejected_not_fatal() {
        let bytes = std::fs::read(CORPUS_PCAP).expect("corpus pcap");
        // A record header claiming a 4 GiB packet.
        let mut huge = bytes[..24].to_vec();
        huge.extend_from_slice(&[0xff; 64]);
        let sink = run(&huge);
        assert_eq!(sink.rejections.len(), 1);
        assert_eq!(sink.rejections[0].location, Location::Offset(24));
        // Pseudo-random garbage (xorshift): many small bogus records.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut garbage = bytes[..24].to_vec();
        for _ in 0..8192 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            garbage.push(state as u8);
        }
        let _ = run(&garbage);
        // And a stats event is always the last record.
        assert_eq!(
            run(&huge).events.last().map(|e| e.kind.as_str()),
            Some("pcap-stats")
        );
    }

    #[test]
    fn mutated_corpus_captures_never_panic() {
        let bytes = std::fs::read(CORPUS_PCAP).expect("corpus pcap");
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..300 {
            let mut copy = bytes.clone();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = 24 + (state as usize) % (copy.len() - 24);
                copy[at] = (state >> 32) as u8;
            }
            let _ = run(&copy);
        }
    }

    #[test]
    fn nanosecond_big_endian_pcap() {
        let packet = ipv4_udp();
        let mut file = vec![
            0xa1, 0xb2, 0x3c, 0x4d, // magic: nanosecond resolution, big-endian
            0x00, 0x02, 0x00, 0x04, // version 2.4
            0, 0, 0, 0, // thiszone
            0, 0, 0, 0, // sigfigs
            0x00, 0x00, 0xff, 0xff, // snaplen 65535
            0x00, 0x00, 0x00, 101, // link type 101: raw IP
        ];
        file.extend_from_slice(&1_700_000_000u32.to_be_bytes()); // seconds
        file.extend_from_slice(&123_456_789u32.to_be_bytes()); // nanoseconds
        file.extend_from_slice(&(packet.len() as u32).to_be_bytes()); // caplen
        file.extend_from_slice(&(packet.len() as u32).to_be_bytes()); // origlen
        file.extend_from_slice(&packet);
        let sink = run(&file);
        assert!(sink.rejections.is_empty(), "{:?}", sink.rejections);
        let c = &sink.conns[0];
        assert_eq!(c.start_ns, 1_700_000_000_123_456_789);
        assert_eq!((c.orig_p, c.resp_p, c.orig_ip_bytes), (5000, 53, Some(32)));
    }

    fn pcapng_block(block_type: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        let mut b = block_type.to_le_bytes().to_vec(); // block type
        b.extend_from_slice(&total.to_le_bytes()); // block total length
        b.extend_from_slice(body);
        b.resize(8 + padded, 0); // pad body to 32 bits
        b.extend_from_slice(&total.to_le_bytes()); // block total length again
        b
    }

    #[test]
    fn pcapng_interfaces_keep_their_own_link_type_and_resolution() {
        let packet = ipv4_udp();
        let mut file = pcapng_block(
            0x0a0d_0d0a, // Section Header Block
            &[
                0x4d, 0x3c, 0x2b, 0x1a, // byte-order magic (little-endian)
                0x01, 0x00, 0x00, 0x00, // version 1.0
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // section length unknown
            ],
        );
        // Interface 0: Ethernet, default microsecond resolution, no options.
        file.extend(pcapng_block(1, &[1, 0, 0, 0, 0xff, 0xff, 0, 0]));
        // Interface 1: raw IP, if_tsresol = 9 (nanoseconds).
        file.extend(pcapng_block(
            1,
            &[
                101, 0, 0, 0, // link type 101, reserved
                0xff, 0xff, 0, 0, // snaplen
                9, 0, 1, 0, 9, 0, 0, 0, // option if_tsresol (9), length 1, value 9, pad
                0, 0, 0, 0, // opt_endofopt
            ],
        ));
        let ts: u64 = 1_700_000_000_987_654_321; // in nanoseconds
        let mut epb = vec![1, 0, 0, 0]; // interface id 1
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes()); // timestamp high
        epb.extend_from_slice(&(ts as u32).to_le_bytes()); // timestamp low
        epb.extend_from_slice(&(packet.len() as u32).to_le_bytes()); // captured length
        epb.extend_from_slice(&(packet.len() as u32).to_le_bytes()); // original length
        epb.extend_from_slice(&packet);
        file.extend(pcapng_block(6, &epb));
        // A packet on interface 7, which was never declared.
        let mut stray = vec![7, 0, 0, 0];
        stray.extend_from_slice(&epb[4..]);
        let stray_offset = file.len() as u64;
        file.extend(pcapng_block(6, &stray));
        let sink = run(&file);
        assert_eq!(sink.conns.len(), 1);
        assert_eq!(sink.conns[0].start_ns, ts as i64);
        assert_eq!(sink.rejections.len(), 1);
        assert_eq!(sink.rejections[0].location, Location::Offset(stray_offset));
    }

    #[test]
    fn non_ip_frames_are_counted_in_stats() {
        let mut file = vec![
            0xd4, 0xc3, 0xb2, 0xa1, // magic: microseconds, little-endian
            0x02, 0x00, 0x04, 0x00, // version 2.4
            0, 0, 0, 0, 0, 0, 0, 0, // thiszone, sigfigs
            0xff, 0xff, 0x00, 0x00, // snaplen
            0x01, 0x00, 0x00, 0x00, // link type 1: Ethernet
        ];
        let mut arp = vec![0xffu8; 6]; // destination broadcast
        arp.extend_from_slice(&[0, 1, 2, 3, 4, 5]); // source
        arp.extend_from_slice(&[0x08, 0x06]); // ethertype ARP
        arp.extend_from_slice(&[0u8; 28]); // ARP body
        file.extend_from_slice(&[0u8; 8]); // ts seconds, microseconds
        file.extend_from_slice(&(arp.len() as u32).to_le_bytes());
        file.extend_from_slice(&(arp.len() as u32).to_le_bytes());
        file.extend_from_slice(&arp);
        let sink = run(&file);
        assert!(sink.conns.is_empty() && sink.rejections.is_empty());
        let stats: serde_json::Value = serde_json::from_str(&sink.events[0].json).unwrap();
        assert_eq!(stats["skipped_non_ip"]["ethertype 0x0806"], 1);
    }
}
